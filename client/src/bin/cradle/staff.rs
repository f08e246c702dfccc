//! `cradle staff`: an institution's administrator (the institution's key, or a clinician of
//! role administrator) registers, suspends, reinstates, retires and re-keys its clinicians.

use std::path::Path;

use anyhow::{Context, bail};
use cradle_client::session::enrolment::read_public_key_file;
use cradle_client::session::staff::DirectoryEntry;
use cradle_ledger::PublicKey;
use cradle_ledger::staff::{StaffKeys, StaffStatus};
use serde_json::json;

use crate::cli::{Cli, Format, StaffCommand};
use crate::{emit, session};

/// A clinician's public key file (written by `cradle keygen` with the genesis), with her proof
/// over both her keys for this chain.
fn proven_keys(path: &str, chain_id: &cradle_ledger::Hash) -> anyhow::Result<StaffKeys> {
    let e = read_public_key_file(Path::new(path))?
        .enrolment_for(chain_id)
        .with_context(|| format!("{path} carries no proof of her keys for this chain"))?;
    Ok(StaffKeys {
        key: e.patient,
        x25519: e.x25519,
        proof: e.proof,
    })
}

fn staff_key(arg: &str) -> anyhow::Result<PublicKey> {
    if let Ok(k) = PublicKey::from_hex(arg) {
        return Ok(k);
    }
    let id = cradle_genesis::keyfile::read_public_identity(arg)
        .with_context(|| format!("{arg} is neither a public key in hex nor a key file"))?;
    Ok(id.public_key)
}

pub(crate) fn run(cli: &Cli, cmd: &StaffCommand) -> anyhow::Result<()> {
    let s = session(cli)?;
    match cmd {
        StaffCommand::Add {
            pubkey,
            role,
            department,
            name,
            staff_number,
            format,
        } => {
            let keys = proven_keys(pubkey, &s.chain_id)?;
            let key = keys.key;
            let entry = DirectoryEntry {
                name: name.clone(),
                staff_number: staff_number.clone(),
            };
            let r = s.register_staff(keys, *role, *department, &entry)?;
            let rec = s.staff_record(&key)?;
            emit(
                *format,
                &json!({
                    "key": key,
                    "id": rec.id,
                    "role": role,
                    "department": department,
                    "tx": r.hash,
                    "height": r.height,
                }),
                &format!(
                    "registered {} {} (staff id {}) at height {}",
                    role,
                    key.to_hex(),
                    rec.id,
                    r.height
                ),
            )
        }
        StaffCommand::Suspend { staff, format } => {
            status(&s, staff, StaffStatus::Suspended, *format)
        }
        StaffCommand::Reinstate { staff, format } => {
            status(&s, staff, StaffStatus::Active, *format)
        }
        StaffCommand::Retire { staff, format } => status(&s, staff, StaffStatus::Retired, *format),
        StaffCommand::RotateKey {
            staff,
            new_pubkey,
            format,
        } => {
            let old = staff_key(staff)?;
            let keys = proven_keys(new_pubkey, &s.chain_id)?;
            let new = keys.key;
            let r = s.rotate_staff_key(old, keys)?;
            emit(
                *format,
                &json!({ "old": old, "new": new, "tx": r.hash, "height": r.height }),
                &format!(
                    "{} replaces {} from height {}",
                    new.to_hex(),
                    old.to_hex(),
                    r.height + 1
                ),
            )
        }
        StaffCommand::List {
            institution,
            format,
        } => {
            let institution = match institution {
                Some(i) => s.member(i)?.public_key,
                None => s.own_institution()?,
            };
            let staff = s.list_staff(&institution)?;
            match format {
                Format::Json => {
                    let list: Vec<_> = staff
                        .iter()
                        .map(|l| json!({ "key": l.key, "record": l.record, "directory": l.directory }))
                        .collect();
                    println!("{}", serde_json::to_string_pretty(&list)?);
                }
                Format::Table => {
                    let rows: Vec<Vec<String>> = staff
                        .iter()
                        .map(|l| {
                            let (name, number) = match &l.directory {
                                Some(d) => (d.name.clone(), d.staff_number.clone()),
                                None => ("-".into(), "-".into()),
                            };
                            vec![
                                l.record.id.to_hex(),
                                l.record.role.to_string(),
                                l.record.department.to_string(),
                                l.record.status.to_string(),
                                number,
                                name,
                                l.key.to_hex(),
                            ]
                        })
                        .collect();
                    let header = [
                        "STAFF ID",
                        "ROLE",
                        "DEPARTMENT",
                        "STATUS",
                        "STAFF NO",
                        "NAME",
                        "KEY",
                    ];
                    print!("{}", cradle_client::audit::columns(&header, &rows));
                }
            }
            Ok(())
        }
    }
}

fn status(
    s: &cradle_client::session::Session,
    staff: &str,
    status: StaffStatus,
    format: Format,
) -> anyhow::Result<()> {
    let key = staff_key(staff)?;
    if status == StaffStatus::Rotated {
        bail!("a key is replaced with `cradle staff rotate-key`");
    }
    let r = s.set_staff_status(key, status)?;
    emit(
        format,
        &json!({ "key": key, "status": status, "tx": r.hash, "height": r.height }),
        &format!(
            "{} is {} from height {}",
            key.to_hex(),
            status,
            r.height + 1
        ),
    )
}
