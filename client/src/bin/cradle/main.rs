//! `cradle`: the command-line tool for members, patients and regulators.
//!
//! Exit codes: 0 success, 1 refused or failed (one-line reason on stderr), 2 bad usage.

mod audit;
mod cli;
mod consent;
mod governance;
mod keys;
mod progress;
mod staff;

use std::process::ExitCode;

use anyhow::{Context, bail};
use clap::Parser;
use cradle_client::api::ApiClient;
use cradle_client::session::Session;
use cradle_client::trust::TrustConfig;
use cradle_genesis::GenesisDoc;
use cradle_ledger::{ArchiveId, GrantId, Keypair, PublicKey, X25519Public};
use serde_json::{Value, json};

use crate::cli::{
    ArchiveCommand, Cli, Command, ConsentCommand, Format, PatientCommand, RecordFormat,
};
use crate::consent::{grant_status, parse_duration_ms, parse_scope, scope_text};
use crate::progress::Bar;

fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            let code = if e.use_stderr() { 2 } else { 0 };
            let _ = e.print();
            return ExitCode::from(code);
        }
    };
    match run(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cradle: {}", format!("{e:#}").replace('\n', " "));
            ExitCode::from(1)
        }
    }
}

pub(crate) fn key(cli: &Cli) -> anyhow::Result<Keypair> {
    let Some(path) = &cli.key else {
        bail!("--key FILE is required for this command");
    };
    cradle_genesis::keyfile::read_key_file(path)
        .with_context(|| format!("reading the key {}", path.display()))
}

/// The genesis document the user trusts (`--genesis` or `CRADLE_GENESIS`).
pub(crate) fn genesis(cli: &Cli) -> anyhow::Result<GenesisDoc> {
    let Some(path) = &cli.genesis else {
        bail!(
            "--genesis FILE (or CRADLE_GENESIS) is required: the genesis document you trust, \
             from which the client takes the chain, the members' keys and each node's identity"
        );
    };
    GenesisDoc::load(path).with_context(|| format!("reading the genesis {}", path.display()))
}

/// How much the client trusts the member sets it verified before (`--sets-max-age`).
fn trust_config(cli: &Cli) -> anyhow::Result<TrustConfig> {
    let mut config = TrustConfig::from_env()?;
    if let Some(secs) = cli.sets_max_age {
        config.max_age_ms = secs.saturating_mul(1000);
    }
    Ok(config)
}

/// What the client went on without while checking the node, on stderr.
fn print_notes(notes: &[String]) {
    for note in notes {
        eprintln!("cradle: note: {note}");
    }
}

pub(crate) fn session(cli: &Cli) -> anyhow::Result<Session> {
    let genesis = genesis(cli)?;
    let config = trust_config(cli)?;
    let s = if cli.insecure_plaintext {
        Session::over_with(plaintext(cli)?, genesis, key(cli)?, &config)?
    } else {
        Session::connect_with(node_url(cli)?, genesis, key(cli)?, &config)?
    };
    print_notes(&s.notes);
    Ok(s)
}

/// A public identity from a key file or hex (with the X25519 key given separately).
pub(crate) fn public_identity(
    arg: &str,
    x25519: Option<&str>,
) -> anyhow::Result<(PublicKey, Option<X25519Public>)> {
    if let Ok(key) = PublicKey::from_hex(arg) {
        let x = x25519
            .map(X25519Public::from_hex)
            .transpose()
            .context("--x25519 must be 64 hex digits")?;
        return Ok((key, x));
    }
    let id = cradle_genesis::keyfile::read_public_identity(arg)
        .with_context(|| format!("{arg} is neither a public key in hex nor a readable key file"))?;
    Ok((id.public_key, Some(id.x25519_public)))
}

fn node_url(cli: &Cli) -> anyhow::Result<&str> {
    cli.node
        .as_deref()
        .context("--node URL is required for this command")
}

/// The API client for `--node`, its key checked against the newest member sets verified from
/// `genesis` (see `cradle_client::trust`), and signed by `--key` when given: every command
/// refuses a node whose key a vote rotated out, as a session does.
pub(crate) fn node(cli: &Cli) -> anyhow::Result<ApiClient> {
    let genesis = genesis(cli)?;
    let config = trust_config(cli)?;
    let key = cli.key.as_ref().map(|_| key(cli)).transpose()?;
    let checked = if cli.insecure_plaintext {
        let api = plaintext(cli)?;
        let api = match &key {
            Some(k) => api.signed_by(k, genesis.chain_id()),
            None => api,
        };
        cradle_client::trust::check(api, &genesis, key.as_ref(), &config)?
    } else {
        cradle_client::trust::connect(node_url(cli)?, &genesis, key.as_ref(), &config)?
    };
    print_notes(&checked.notes);
    Ok(checked.api)
}

/// A plain-HTTP client for `--node`, when the operator turned TLS off and the user asked for
/// it. Unauthenticated: its key is the node's own word, checked against the member sets like a
/// TLS key, so at least it names a member's key.
fn plaintext(cli: &Cli) -> anyhow::Result<ApiClient> {
    let url = node_url(cli)?;
    if !url.starts_with("http://") {
        bail!("--insecure-plaintext is for http:// URLs");
    }
    let api = ApiClient::plaintext(url);
    api.node_key()?;
    Ok(api)
}

fn print_object(v: &Value, format: Format, fields: &[&str]) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(v)?),
        Format::Table => {
            for f in fields {
                let value = match v.get(*f) {
                    Some(Value::String(s)) => s.clone(),
                    Some(other) => other.to_string(),
                    None => continue,
                };
                println!("{f:<16} {value}");
            }
        }
    }
    Ok(())
}

fn run(cli: Cli) -> anyhow::Result<()> {
    match &cli.command {
        Command::Keygen { out } => keys::keygen(&cli, out)?,
        Command::Status { format } => {
            let v = node(&cli)?.status()?;
            print_object(
                &v,
                *format,
                &[
                    "member",
                    "chain_id",
                    "height",
                    "block_hash",
                    "time_ms",
                    "state_root",
                    "access_log_size",
                    "access_log_root",
                    "round",
                    "peers",
                    "mempool_txs",
                ],
            )?;
        }
        Command::Block { height, format } => {
            let v = node(&cli)?.block(*height)?;
            print_object(
                &v,
                *format,
                &[
                    "height",
                    "hash",
                    "time_ms",
                    "prev_hash",
                    "proposer",
                    "tx_count",
                    "tx_root",
                    "state_root",
                    "access_log_size",
                    "access_log_root",
                ],
            )?;
        }
        Command::Patient(PatientCommand::Enrol {
            pubkey,
            x25519,
            proof,
            format,
        }) => keys::enrol(&cli, pubkey, x25519.as_deref(), proof.as_deref(), *format)?,
        Command::Patient(PatientCommand::ProveKeys { out, format }) => {
            keys::prove_keys(&cli, out.as_deref(), *format)?
        }
        Command::Patient(PatientCommand::RotateKey { new_pubkey, format }) => {
            let s = session(&cli)?;
            let identity = s.identity()?;
            let r = s.rotate_patient_key(new_pubkey)?;
            emit(
                *format,
                &json!({ "patient": identity, "tx": r.hash, "height": r.height }),
                &format!(
                    "keys of patient {identity} replaced at height {}: sign with the new key from now on",
                    r.height
                ),
            )?;
        }
        Command::Patient(PatientCommand::Recover {
            patient,
            new_pubkey,
            format,
        }) => {
            let s = session(&cli)?;
            let (patient, _) = public_identity(patient, None)?;
            let r = s.recover_patient(&patient, new_pubkey)?;
            emit(
                *format,
                &json!({
                    "patient": patient,
                    "tx": r.receipt.hash,
                    "height": r.receipt.height,
                    "rewrapped": r.rewrapped,
                }),
                &format!(
                    "patient {patient} recovered at height {} with new keys; {} archive key(s) in your custody wrapped again",
                    r.receipt.height,
                    r.rewrapped.len()
                ),
            )?;
        }
        Command::Patient(PatientCommand::Rewrap { patient, format }) => {
            let s = session(&cli)?;
            let (patient, _) = public_identity(patient, None)?;
            let done = s.rewrap_for_patient(&patient)?;
            emit(
                *format,
                &json!({ "patient": patient, "rewrapped": done }),
                &format!(
                    "{} archive key(s) wrapped again for patient {patient}",
                    done.len()
                ),
            )?;
        }
        Command::Archive(ArchiveCommand::Put {
            file,
            patient,
            category,
            format,
        }) => {
            let (patient, _) = public_identity(patient, None)?;
            let r = session(&cli)?.put_archive(file, patient, *category, &Bar::new())?;
            emit(
                *format,
                &json!({
                    "archive": r.archive,
                    "ciphertext_sha256": hex::encode(r.ciphertext_sha256),
                    "ciphertext_bytes": r.ciphertext_bytes,
                    "plaintext_bytes": r.plaintext_bytes,
                    "grants_covered": r.grants_covered,
                    "tx": r.tx.hash,
                    "height": r.tx.height,
                }),
                &r.archive.to_hex(),
            )?;
        }
        Command::Archive(ArchiveCommand::Get {
            id,
            purpose,
            justification,
            out,
            custodian,
            format,
        }) => {
            let id = ArchiveId::from_hex(id).context("the archive id must be 64 hex digits")?;
            let mut s = session(&cli)?;
            if let Some(url) = custodian {
                let api = if cli.insecure_plaintext {
                    ApiClient::plaintext(url)
                } else {
                    // Pinned by the set the session verified: the custodian's key may have
                    // been rotated since genesis.
                    ApiClient::with_pins(
                        url,
                        cradle_client::tls::Pins::for_url_in(s.consortium(), url),
                    )?
                };
                s.api = api.signed_by(&s.key, s.chain_id);
            }
            let r = s.get_archive(id, *purpose, justification.as_deref(), out, &Bar::new())?;
            emit(
                *format,
                &json!({
                    "archive": id,
                    "out": out,
                    "plaintext_bytes": r.plaintext_bytes,
                    "outcome": r.outcome,
                    "access_tx": r.access_tx,
                }),
                &format!(
                    "{} bytes written to {} ({}, access recorded in {})",
                    r.plaintext_bytes,
                    out.display(),
                    r.outcome,
                    r.access_tx
                ),
            )?;
        }
        Command::Staff(cmd) => staff::run(&cli, cmd)?,
        Command::Governance(cmd) => governance::run(&cli, cmd)?,
        Command::Consent(ConsentCommand::Grant {
            grantee,
            purpose,
            scope,
            roles,
            expires,
            format,
        }) => {
            let s = session(&cli)?;
            let member = s.member(grantee)?;
            let now = cradle_genesis::clock::now_ms();
            let expires_at = now + parse_duration_ms(expires)?;
            let (id, r) = s.grant(
                &member,
                parse_scope(scope)?,
                purpose.clone(),
                roles.clone(),
                now,
                expires_at,
            )?;
            emit(
                *format,
                &json!({
                    "grant": id,
                    "grantee": member.name,
                    "roles": roles,
                    "expires_at_ms": expires_at,
                    "tx": r.hash,
                    "height": r.height,
                }),
                &id.to_hex(),
            )?;
        }
        Command::Consent(ConsentCommand::Revoke { grant, format }) => {
            let id = GrantId::from_hex(grant).context("the grant id must be 64 hex digits")?;
            let r = session(&cli)?.revoke(id)?;
            emit(
                *format,
                &json!({ "grant": id, "tx": r.hash, "height": r.height }),
                &format!("revoked {} at height {}", id.to_hex(), r.height),
            )?;
        }
        Command::Consent(ConsentCommand::List { patient, format }) => {
            let s = session(&cli)?;
            let patient = match patient {
                Some(p) => public_identity(p, None)?.0,
                None => s.identity()?,
            };
            let grants = s.grants(&patient)?;
            let now = cradle_genesis::clock::now_ms();
            match format {
                RecordFormat::Fhir => {
                    let consortium = s.consortium();
                    let pairs: Vec<_> = grants.iter().map(|(id, g, _)| (*id, g.clone())).collect();
                    let bundle =
                        cradle_client::fhir::consent_resources(&patient, &pairs, consortium, now);
                    println!("{}", serde_json::to_string_pretty(&bundle)?);
                }
                RecordFormat::Json => {
                    let items: Vec<_> = grants
                        .iter()
                        .map(|(id, g, name)| {
                            json!({
                                "grant": id,
                                "grantee": g.grantee,
                                "grantee_name": name,
                                "scope": g.scope,
                                "purposes": g.purposes,
                                "valid_from_ms": g.valid_from_ms,
                                "expires_at_ms": g.expires_at_ms,
                                "revoked_at_ms": g.revoked_at_ms,
                                "status": grant_status(g, now),
                            })
                        })
                        .collect();
                    println!(
                        "{}",
                        serde_json::to_string_pretty(
                            &json!({ "patient": patient, "grants": items })
                        )?
                    );
                }
                RecordFormat::Table => {
                    println!(
                        "{:<64}  {:<28}  {:<16}  {:<9}  {:<24}  scope",
                        "grant", "grantee", "purposes", "status", "expires (UTC)"
                    );
                    for (id, g, name) in &grants {
                        let purposes = g
                            .purposes
                            .iter()
                            .map(|p| p.code())
                            .collect::<Vec<_>>()
                            .join(",");
                        println!(
                            "{:<64}  {:<28}  {:<16}  {:<9}  {:<24}  {}",
                            id.to_hex(),
                            name.clone()
                                .unwrap_or_else(|| g.grantee.to_hex()[..16].to_string()),
                            purposes,
                            grant_status(g, now),
                            cradle_client::fhir::instant(g.expires_at_ms),
                            scope_text(&g.scope),
                        );
                    }
                }
            }
        }
        Command::Audit(args) => audit::audit(&cli, args)?,
    }
    Ok(())
}

/// Prints `v` as JSON, or the one-line `table` text.
fn emit(format: Format, v: &Value, table: &str) -> anyhow::Result<()> {
    match format {
        Format::Json => println!("{}", serde_json::to_string_pretty(v)?),
        Format::Table => println!("{table}"),
    }
    Ok(())
}
