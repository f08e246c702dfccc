//! `cradle audit`: who read what, and which validators equivocated; verified from genesis on
//! request.

use std::path::PathBuf;

use anyhow::Context;
use cradle_client::api::ApiClient;
use cradle_ledger::{ArchiveId, PublicKey};
use serde_json::json;

use crate::cli::{AuditAction, AuditArgs, Cli, Format, RecordFormat};
use crate::{genesis, key, public_identity};

pub(crate) fn audit(cli: &Cli, args: &AuditArgs) -> anyhow::Result<()> {
    use cradle_client::audit as a;
    use cradle_ledger::audit::{AuditEvents, AuditSubject, IndexedEvent};

    if let Some(AuditAction::Review {
        entry,
        not_justified,
        format,
        ..
    }) = &args.action
    {
        return review(cli, entry, *not_justified, *format);
    }

    let genesis = genesis(cli)?;
    // Audit requests are signed: the node answers only whom the history concerns, or a
    // regulator. The session checks the node's key against the newest member sets verified
    // from genesis (a key a vote rotated out is refused), and those sets check the history:
    // each header with the set in force at its height; the names are the newest set's.
    let session = crate::session(cli)?;
    let me = key(cli)?;
    let api = &session.api;
    let sets = session.sets.clone();
    let consortium = sets.latest().clone();
    if args.evidence {
        return evidence(api, &me, &sets, args);
    }
    let subject = if let Some(p) = &args.patient {
        AuditSubject::Patient(public_identity(p, None)?.0)
    } else if let Some(id) = &args.archive {
        AuditSubject::Archive(
            ArchiveId::from_hex(id).context("the archive id must be 64 hex digits")?,
        )
    } else if let Some(m) = &args.accessor {
        let key = consortium
            .members
            .iter()
            .find(|x| x.name == *m)
            .map(|x| x.public_key)
            .map_or_else(|| PublicKey::from_hex(m), Ok)
            .with_context(|| format!("{m:?} is neither a member's name nor a public key"))?;
        AuditSubject::Accessor(key)
    } else {
        AuditSubject::BreakGlass
    };
    let range = args.from_ms.zip(args.to_ms);
    let (events, verified): (
        Vec<IndexedEvent>,
        Option<cradle_ledger::audit::VerifiedAudit>,
    ) = if args.verify {
        let checkpoint = match &args.checkpoint {
            Some(p) => p.clone(),
            None => default_checkpoint(&consortium)?,
        };
        let max_age_ms = match args.max_age {
            Some(s) => s.saturating_mul(1000),
            None => genesis.consensus.pacing.heartbeat_ms.saturating_add(5_000),
        };
        let v = a::audit_verified(
            api,
            &me,
            &sets,
            &checkpoint,
            &subject,
            range,
            Some(max_age_ms),
        )?;
        (v.events.clone(), Some(v))
    } else {
        let answer = a::fetch_audit(api, &me, &consortium.chain_id, &subject, range)?;
        let events = match answer.events {
            AuditEvents::Whole(list) => list
                .into_inner()
                .into_iter()
                .enumerate()
                .map(|(i, event)| IndexedEvent {
                    index: i as u64,
                    event,
                })
                .collect(),
            AuditEvents::Range {
                from_ms,
                to_ms,
                events,
                ..
            } => events
                .into_inner()
                .into_iter()
                .filter(|e| (from_ms..=to_ms).contains(&e.event.time_ms))
                .collect(),
        };
        (events, None)
    };
    // Emergency accesses carry a sealed justification: the patient and the regulators read it
    // with their key, anyone else sees that one exists.
    let justifications = cradle_client::session::justification::read_justifications(
        api,
        &me,
        &consortium.chain_id,
        &events,
    )?;
    // Each clinician's name comes from her institution's node, to whom may know it.
    let names = session.staff_names(&events);
    match args.format {
        RecordFormat::Table => {
            print!(
                "{}",
                a::render_table_with(&events, &consortium, &justifications, &names)
            );
            match &verified {
                Some(v) => println!(
                    "verified: {} events, complete at height {} ({}) (log root {}), certificate and proofs checked from genesis",
                    events.len(),
                    v.height,
                    a::iso8601_utc(v.time_ms),
                    hex::encode(v.log_root),
                ),
                None => println!("{} events (not verified: add --verify)", events.len()),
            }
        }
        RecordFormat::Json => match &verified {
            Some(v) => println!(
                "{}",
                a::render_json_with(v, &consortium, &justifications, &names)
            ),
            None => {
                let items: Vec<_> = events
                    .iter()
                    .map(|ie| {
                        json!({
                            "index": ie.index,
                            "event": ie.event,
                            "name": ie.event.staff.and_then(|s| names.get(&s.id)),
                            "justification": justifications.get(&ie.event.tx_hash),
                        })
                    })
                    .collect();
                println!(
                    "{}",
                    serde_json::to_string_pretty(&json!({ "verified": false, "events": items }))?
                );
            }
        },
        RecordFormat::Fhir => {
            let bundle = cradle_client::fhir::audit_bundle_with(
                &events,
                &consortium,
                &hex::encode(consortium.chain_id),
                &justifications,
                &names,
            );
            println!("{}", serde_json::to_string_pretty(&bundle)?);
        }
    }
    Ok(())
}

/// `cradle audit --evidence`: every item checked from genesis with --verify, the whole answer
/// refused if one fails.
/// `cradle audit review ENTRY --justified|--not-justified`.
fn review(cli: &Cli, entry: &str, not_justified: bool, format: Format) -> anyhow::Result<()> {
    use cradle_ledger::tx::ReviewDecision;
    let entry = cradle_ledger::Digest32::from_hex(entry)
        .context("ENTRY is the 64-hex-digit hash of the access record's transaction")?;
    let decision = if not_justified {
        ReviewDecision::NotJustified
    } else {
        ReviewDecision::Justified
    };
    let session = crate::session(cli)?;
    let r = session.review_break_glass(entry, decision)?;
    crate::emit(
        format,
        &json!({ "entry": entry, "decision": decision, "tx": r.hash, "height": r.height }),
        &format!(
            "reviewed break-glass access {entry} at height {}: {}",
            r.height,
            decision.code().replace('_', " ")
        ),
    )
}

fn evidence(
    api: &ApiClient,
    me: &cradle_ledger::Keypair,
    sets: &cradle_ledger::governance::Sets,
    args: &AuditArgs,
) -> anyhow::Result<()> {
    use cradle_client::evidence as e;
    if args.format == RecordFormat::Fhir {
        anyhow::bail!("equivocation evidence has no FHIR form: use --format table or json");
    }
    let items = if args.verify {
        e::evidence_verified(api, me, sets)?
    } else {
        e::evidence_unverified(api, me, sets)?
    };
    match args.format {
        RecordFormat::Table => {
            print!("{}", e::render_evidence_table(&items));
            if args.verify {
                println!(
                    "verified: {} pieces of evidence, every signature checked from genesis",
                    items.len()
                );
            } else {
                println!(
                    "{} pieces of evidence (not verified: add --verify)",
                    items.len()
                );
            }
        }
        RecordFormat::Json | RecordFormat::Fhir => {
            println!("{}", e::render_evidence_json(&items, args.verify));
        }
    }
    Ok(())
}

/// `~/.cradle/checkpoint-<chain id prefix>.json`, its directory created.
fn default_checkpoint(consortium: &cradle_ledger::Consortium) -> anyhow::Result<PathBuf> {
    let home = std::env::var_os("HOME").context("HOME is not set: give --checkpoint FILE")?;
    let dir = PathBuf::from(home).join(".cradle");
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir.join(format!(
        "checkpoint-{}.json",
        &hex::encode(consortium.chain_id)[..16]
    )))
}
