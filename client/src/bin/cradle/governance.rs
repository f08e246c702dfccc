//! `cradle governance`: a member proposes a change to the consortium, members approve it, and
//! anyone of the consortium sees where the proposals stand.

use std::path::Path;

use anyhow::Context;
use cradle_client::session::Session;
use cradle_client::session::governance::NewMember;
use cradle_ledger::governance::Change;
use cradle_ledger::{Limits, Policy, ProposalId};
use serde_json::{Value, json};

use crate::cli::{Cli, Format, GovernanceCommand, ProposeCommand};
use crate::{emit, session};

/// Largest policy or limits file read.
const PARAMS_FILE_BYTES_MAX: u64 = 64 * 1024;

fn read_json<T: serde::de::DeserializeOwned>(path: &Path, what: &str) -> anyhow::Result<T> {
    use std::io::Read;
    let mut text = String::new();
    std::fs::File::open(path)
        .with_context(|| format!("opening {}", path.display()))?
        .take(PARAMS_FILE_BYTES_MAX + 1)
        .read_to_string(&mut text)
        .with_context(|| format!("reading {}", path.display()))?;
    if text.len() as u64 > PARAMS_FILE_BYTES_MAX {
        anyhow::bail!(
            "{} is larger than {PARAMS_FILE_BYTES_MAX} bytes",
            path.display()
        );
    }
    serde_json::from_str(&text).with_context(|| format!("{} is not a valid {what}", path.display()))
}

fn member_key(s: &Session, name_or_key: &str) -> anyhow::Result<cradle_ledger::PublicKey> {
    Ok(s.member(name_or_key)?.public_key)
}

pub(crate) fn run(cli: &Cli, cmd: &GovernanceCommand) -> anyhow::Result<()> {
    let s = session(cli)?;
    match cmd {
        GovernanceCommand::Propose(p) => {
            let (change, format) = change(&s, p)?;
            let kind = change.kind();
            let (r, id) = s.propose(change)?;
            emit(
                format,
                &json!({ "proposal": id, "change": kind, "tx": r.hash, "height": r.height }),
                &format!("proposed {kind} as {id} at height {}", r.height),
            )
        }
        GovernanceCommand::Approve { id, format } => {
            let id = ProposalId::from_hex(id).context("a proposal id is 64 hex digits")?;
            let r = s.approve(id)?;
            let status = s
                .proposals()?
                .get("proposals")
                .and_then(Value::as_array)
                .and_then(|l| l.iter().find(|p| p["id"] == json!(id)).cloned())
                .unwrap_or(Value::Null);
            emit(
                *format,
                &json!({ "proposal": id, "tx": r.hash, "height": r.height, "now": status }),
                &format!(
                    "approved {id} at height {}: {}{}",
                    r.height,
                    status["status"].as_str().unwrap_or("unknown"),
                    status["activation_height"]
                        .as_u64()
                        .map(|h| format!(", in force from height {h}"))
                        .unwrap_or_default()
                ),
            )
        }
        GovernanceCommand::List { format } => {
            let v = s.proposals()?;
            let mut table = format!(
                "member set epoch {} ({} members)\n",
                v["epoch"],
                s.consortium().members.len()
            );
            for p in v["proposals"].as_array().into_iter().flatten() {
                table.push_str(&format!(
                    "{}  {:<16} {:<10} approvals {}  proposed at {}{}\n",
                    p["id"].as_str().unwrap_or("?"),
                    p["change"]["change"].as_str().unwrap_or("?"),
                    p["status"].as_str().unwrap_or("?"),
                    p["approvals"].as_array().map_or(0, Vec::len),
                    p["proposed_height"],
                    p["activation_height"]
                        .as_u64()
                        .map(|h| format!(", in force from {h}"))
                        .unwrap_or_default()
                ));
            }
            emit(*format, &v, table.trim_end())
        }
    }
}

/// The change a `propose` command asks for, and its output format.
fn change(s: &Session, p: &ProposeCommand) -> anyhow::Result<(Change, Format)> {
    Ok(match p {
        ProposeCommand::AddMember {
            pubkey,
            name,
            role,
            power,
            p2p,
            api,
            format,
        } => (
            s.add_member_change(
                pubkey,
                NewMember {
                    name: name.clone(),
                    role: *role,
                    voting_power: *power,
                    p2p_addr: p2p.clone(),
                    api_addr: api.clone(),
                },
            )?,
            *format,
        ),
        ProposeCommand::RemoveMember { member, format } => (
            Change::RemoveMember {
                member: member_key(s, member)?,
            },
            *format,
        ),
        ProposeCommand::RotateKey {
            member,
            pubkey,
            format,
        } => (
            s.rotate_member_key_change(member_key(s, member)?, pubkey)?,
            *format,
        ),
        ProposeCommand::SetPower {
            member,
            power,
            format,
        } => (
            Change::SetVotingPower {
                member: member_key(s, member)?,
                voting_power: *power,
            },
            *format,
        ),
        ProposeCommand::SetPolicy { file, format } => (
            Change::SetPolicy {
                policy: read_json::<Policy>(file, "policy")?,
            },
            *format,
        ),
        ProposeCommand::SetLimits { file, format } => (
            Change::SetLimits {
                limits: read_json::<Limits>(file, "limits")?,
            },
            *format,
        ),
        ProposeCommand::SetParam { file, format } => (
            Change::SetTimeouts {
                timeouts: read_json::<cradle_consensus::Config>(file, "consensus timeouts")?,
            },
            *format,
        ),
    })
}
