//! Light verification of audit answers: from the genesis document alone, with a checkpoint
//! remembered between runs.
//!
//! The client trusts nothing the node says. It reads the consortium from the genesis document,
//! checks the answer's commit certificate, state proof and completeness
//! ([`cradle_ledger::audit::verify_answer`]), and moves its checkpoint forward only over a
//! consistency proof of the global access log. A node that drops, alters or reorders an event,
//! serves an unfinalised header, or a history that forks from what the client saw before, is
//! refused with an error that says which.
//!
//! # Node endpoints (the contract)
//!
//! Every answer is `application/octet-stream`: the ledger's canonical encoding (one version
//! byte, then borsh). Errors are HTTP 4xx/5xx with a JSON body `{"error": "..."}`.
//!
//! - `GET /v1/audit/patient/{key}`, `GET /v1/audit/archive/{archive_id}`,
//!   `GET /v1/audit/accessor/{key}`, `GET /v1/audit/break-glass`: an
//!   [`AuditAnswer::encode`] built with [`cradle_ledger::audit::build_answer`] against the
//!   node's current tip. `{key}` and `{archive_id}` are 64 lowercase hex characters. With the
//!   query `?from_ms={u64}&to_ms={u64}` (both or neither) the answer is a time-range answer for
//!   `from_ms <= time_ms <= to_ms`; without it, the whole history.
//! - `GET /v1/audit/consistency?from={size}`: a [`ConsistencyAnswer::encode`] built with
//!   [`cradle_ledger::audit::build_consistency`] from `size` leaves of the global access log to
//!   the node's current tip (HTTP 400 if `size` exceeds the tip's log size).

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use cradle_genesis::{GenesisDoc, GenesisError};
use cradle_ledger::access::{AccessEvent, EventOutcome};
use cradle_ledger::audit::{
    AuditAnswer, AuditError, AuditSubject, Checkpoint, ConsistencyAnswer, IndexedEvent,
    VerifiedAudit, advance_checkpoint, verify_answer,
};
use cradle_ledger::governance::HeaderTrust;
use cradle_ledger::{Consortium, Digest32, Hash, Keypair, PublicKey, StaffId};

use crate::api::{ApiClient, ApiError};
use crate::session::justification::JustificationView;

/// Largest checkpoint file the client reads.
const CHECKPOINT_BYTES_MAX: u64 = 64 * 1024;

/// Why an audit could not be verified.
#[derive(Debug, thiserror::Error)]
pub enum AuditClientError {
    #[error("genesis: {0}")]
    Genesis(#[from] GenesisError),
    #[error("node: {0}")]
    Api(#[from] ApiError),
    #[error("the node's answer does not decode: {0}")]
    Decode(cradle_ledger::Error),
    #[error("refused: {0}")]
    Verify(#[from] AuditError),
    #[error("the node answered another question: {0}")]
    NotAsked(&'static str),
    #[error("checkpoint file {path}: {reason}")]
    Checkpoint { path: PathBuf, reason: String },
    #[error(
        "stale node: its newest proven block (height {height}) is {age_ms} ms old, more than \
         the {max_age_ms} ms allowed (--max-age); ask another node"
    )]
    StaleNode {
        height: u64,
        age_ms: u64,
        max_age_ms: u64,
    },
}

/// Reads and validates the genesis document and returns the consortium it founds.
pub fn load_genesis(path: impl AsRef<Path>) -> Result<Consortium, AuditClientError> {
    Ok(GenesisDoc::load(path)?.consortium()?)
}

fn checkpoint_error(path: &Path, reason: impl ToString) -> AuditClientError {
    AuditClientError::Checkpoint {
        path: path.to_path_buf(),
        reason: reason.to_string(),
    }
}

/// The remembered checkpoint; `None` if the file does not exist.
pub fn load_checkpoint(path: &Path) -> Result<Option<Checkpoint>, AuditClientError> {
    let file = match fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(checkpoint_error(path, e)),
    };
    let mut bytes = Vec::new();
    std::io::Read::read_to_end(
        &mut std::io::Read::take(file, CHECKPOINT_BYTES_MAX + 1),
        &mut bytes,
    )
    .map_err(|e| checkpoint_error(path, e))?;
    if bytes.len() as u64 > CHECKPOINT_BYTES_MAX {
        return Err(checkpoint_error(path, "file too large"));
    }
    serde_json::from_slice(&bytes)
        .map(Some)
        .map_err(|e| checkpoint_error(path, e))
}

/// Writes the checkpoint atomically: a temporary file beside it, synced, then renamed over it.
pub fn save_checkpoint(path: &Path, checkpoint: &Checkpoint) -> Result<(), AuditClientError> {
    let mut json =
        serde_json::to_string_pretty(checkpoint).map_err(|e| checkpoint_error(path, e))?;
    json.push('\n');
    let mut tmp = path.as_os_str().to_owned();
    tmp.push(".tmp");
    let tmp = PathBuf::from(tmp);
    let write = || -> std::io::Result<()> {
        let mut f = fs::File::create(&tmp)?;
        f.write_all(json.as_bytes())?;
        f.sync_all()?;
        fs::rename(&tmp, path)
    };
    write().map_err(|e| {
        let _ = fs::remove_file(&tmp);
        checkpoint_error(path, e)
    })
}

/// The API path of an audit query (see the module docs).
pub fn audit_path(subject: &AuditSubject, range: Option<(u64, u64)>) -> String {
    let mut path = match subject {
        AuditSubject::Patient(k) => format!("/v1/audit/patient/{}", k.to_hex()),
        AuditSubject::Archive(a) => format!("/v1/audit/archive/{}", a.to_hex()),
        AuditSubject::Accessor(k) => format!("/v1/audit/accessor/{}", k.to_hex()),
        AuditSubject::BreakGlass => "/v1/audit/break-glass".to_string(),
    };
    if let Some((from_ms, to_ms)) = range {
        let _ = write!(path, "?from_ms={from_ms}&to_ms={to_ms}");
    }
    path
}

/// Fetches an audit answer (unverified).
///
/// The request is signed with `key`: a node answers a patient's history to the patient herself,
/// an archive's to its patient and custodian, an institution's to the institution, and any of
/// them (break-glass included) to a regulator.
pub fn fetch_audit(
    api: &ApiClient,
    key: &Keypair,
    chain_id: &Hash,
    subject: &AuditSubject,
    range: Option<(u64, u64)>,
) -> Result<AuditAnswer, AuditClientError> {
    let bytes = signed_get(api, key, chain_id, &audit_path(subject, range))?;
    AuditAnswer::decode(&bytes).map_err(AuditClientError::Decode)
}

/// A GET signed with `key` for this chain (audit requests are answered only to whom they
/// concern, or a regulator).
pub(crate) fn signed_get(
    api: &ApiClient,
    key: &Keypair,
    chain_id: &Hash,
    path: &str,
) -> Result<Vec<u8>, AuditClientError> {
    Ok(api.get_signed_as(key, chain_id, path)?)
}

/// Fetches a consistency proof of the global access log from `from_size` to the node's tip
/// (unverified), asking as `key`.
pub fn fetch_consistency(
    api: &ApiClient,
    key: &Keypair,
    chain_id: &Hash,
    from_size: u64,
) -> Result<ConsistencyAnswer, AuditClientError> {
    let path = format!("/v1/audit/consistency?from={from_size}");
    let bytes = signed_get(api, key, chain_id, &path)?;
    ConsistencyAnswer::decode(&bytes).map_err(AuditClientError::Decode)
}

/// Fetches and verifies an audit answer, and moves the checkpoint at `checkpoint_path` to it.
///
/// The answer must be about `subject` and `range`, verify from genesis, and (with
/// `max_age_ms`) be proven against a header no older than that. With a remembered
/// checkpoint, an older header is refused, one at the same height must be the same block, and a
/// newer one whose access log grew needs the node's consistency proof from the checkpoint; the
/// proof's header must be the answer's or newer (both are finalised by the genesis validators).
/// The checkpoint file is written only once all of that passed.
pub fn audit_verified(
    api: &ApiClient,
    key: &Keypair,
    trust: &(impl HeaderTrust + ?Sized),
    checkpoint_path: &Path,
    subject: &AuditSubject,
    range: Option<(u64, u64)>,
    max_age_ms: Option<u64>,
) -> Result<VerifiedAudit, AuditClientError> {
    let answer = fetch_audit(api, key, &trust.chain_id(), subject, range)?;
    if answer.subject != *subject {
        return Err(AuditClientError::NotAsked("another subject"));
    }
    if answer.range() != range {
        return Err(AuditClientError::NotAsked("another time range"));
    }
    let verified = verify_answer(trust, &answer)?;
    // A genuine but old certified answer proves only that history up to then: a node that
    // stopped (or a proxy replaying what it saw) could hide every access since.
    if let Some(max_age_ms) = max_age_ms {
        let age_ms = cradle_genesis::clock::now_ms().saturating_sub(answer.header.time_ms);
        if age_ms > max_age_ms {
            return Err(AuditClientError::StaleNode {
                height: answer.header.height,
                age_ms,
                max_age_ms,
            });
        }
    }
    let old = load_checkpoint(checkpoint_path)?;
    let header = &answer.header;
    let needs_proof = old.as_ref().is_some_and(|cp| {
        header.height > cp.height
            && cp.access_log_size > 0
            && header.access_log_size != cp.access_log_size
    });
    let new = match old.as_ref() {
        Some(cp) if needs_proof => {
            let consistency = fetch_consistency(api, key, &trust.chain_id(), cp.access_log_size)?;
            let newer = consistency.header.height > header.height;
            if !newer && consistency.header != *header {
                return Err(AuditError::InconsistentCheckpoint(
                    "the consistency proof is not for the answer's block or a later one".into(),
                )
                .into());
            }
            consistency.advance(trust, Some(cp))?
        }
        _ => advance_checkpoint(trust, old.as_ref(), header, &answer.certificate, None)?,
    };
    save_checkpoint(checkpoint_path, &new)?;
    Ok(verified)
}

/// `YYYY-MM-DDTHH:MM:SS.mmmZ` for milliseconds since the Unix epoch.
pub fn iso8601_utc(ms: u64) -> String {
    crate::fhir::instant(ms)
}

/// The member's name, or the key's first twelve hex digits.
fn institution(consortium: &Consortium, key: &PublicKey) -> String {
    match consortium.member_by_any_key(key) {
        Some(m) => m.name.clone(),
        None => format!("{}…", &key.to_hex()[..12]),
    }
}

fn outcome(o: &EventOutcome) -> String {
    match o {
        EventOutcome::Permitted => "permitted".into(),
        EventOutcome::Denied { reason } => format!("denied: {}", reason.as_str()),
        EventOutcome::BreakGlass => "break-glass".into(),
        EventOutcome::Reviewed { entry, decision } => format!(
            "reviewed by the commission: {} (access {}…)",
            decision.code().replace('_', " "),
            &entry.to_hex()[..12]
        ),
        EventOutcome::Rotated { new_key } => format!(
            "keys rotated by the patient: new key {}…",
            &new_key.to_hex()[..12]
        ),
        EventOutcome::Recovered { new_key } => format!(
            "recovered by the member: new key {}…",
            &new_key.to_hex()[..12]
        ),
    }
}

/// Break-glass justifications as the reader sees them, by access record
/// ([`crate::session::justification::read_justifications`]).
pub type Justifications = BTreeMap<Digest32, JustificationView>;

/// The names of the clinicians the reader is entitled to know, by pseudonymous id, as their
/// institutions' nodes told them ([`crate::session::Session::staff_names`]).
pub type Names = BTreeMap<StaffId, String>;

/// Who asked, for a table: the institution (a clinician's, or the accessor itself).
fn asking_institution(consortium: &Consortium, e: &AccessEvent) -> String {
    match &e.staff {
        Some(s) => institution(consortium, &s.institution),
        // Her own key rotated her keys.
        None if matches!(e.outcome, EventOutcome::Rotated { .. }) => "(the patient)".into(),
        None => institution(consortium, &e.accessor),
    }
}

/// Who asked, for a table: the clinician's role, pseudonymous id and (where the reader may
/// know it) name; `-` for a patient or an institution's own key.
pub fn person(e: &AccessEvent, names: &Names) -> String {
    match &e.staff {
        Some(s) => {
            let id = &s.id.to_hex()[..8];
            match names.get(&s.id) {
                Some(name) => format!("{} {} ({id})", s.role, one_line(name)),
                None => format!("{} {id}", s.role),
            }
        }
        None => "-".into(),
    }
}

/// A plain-text table, one row per event: time (UTC), institution, the person who asked,
/// archive category, purpose, outcome and a break-glass flag.
pub fn render_table(events: &[IndexedEvent], consortium: &Consortium) -> String {
    render_table_with(events, consortium, &Justifications::new(), &Names::new())
}

/// [`render_table`], with a last column for the justifications of emergency accesses when
/// there are any.
pub fn render_table_with(
    events: &[IndexedEvent],
    consortium: &Consortium,
    justifications: &Justifications,
    names: &Names,
) -> String {
    let mut header = vec![
        "TIME (UTC)",
        "INSTITUTION",
        "PERSON",
        "CATEGORY",
        "PURPOSE",
        "OUTCOME",
        "FLAG",
    ];
    if !justifications.is_empty() {
        header.push("JUSTIFICATION");
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|ie| {
            let e = &ie.event;
            let mut row = vec![
                iso8601_utc(e.time_ms),
                asking_institution(consortium, e),
                person(e, names),
                if e.about_archive() {
                    e.category.code().to_string()
                } else {
                    "-".into()
                },
                e.purpose.code().to_string(),
                outcome(&e.outcome),
                match e.outcome {
                    EventOutcome::BreakGlass => "BREAK-GLASS".into(),
                    EventOutcome::Recovered { .. } => "RECOVERY".into(),
                    _ => String::new(),
                },
            ];
            if !justifications.is_empty() {
                row.push(
                    justifications
                        .get(&e.tx_hash)
                        .map(|j| one_line(&j.display()))
                        .unwrap_or_default(),
                );
            }
            row
        })
        .collect();
    columns(&header, &rows)
}

/// Free text on one line of a table: control characters (line breaks, escapes) as spaces.
fn one_line(text: &str) -> String {
    text.chars()
        .map(|c| if c.is_control() { ' ' } else { c })
        .collect()
}

/// A plain-text table: the header, then one line per row, columns padded to their widest cell.
pub fn columns(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[&str]| {
        let mut l = String::new();
        for (i, (cell, w)) in cells.iter().zip(&widths).enumerate() {
            if i > 0 {
                l.push_str("  ");
            }
            let _ = write!(l, "{cell:<w$}");
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(header);
    for row in rows {
        line(&row.iter().map(String::as_str).collect::<Vec<_>>());
    }
    out
}

/// The verified audit as JSON: what was proven, against which block, and the events.
pub fn render_json(verified: &VerifiedAudit, consortium: &Consortium) -> String {
    render_json_with(verified, consortium, &Justifications::new(), &Names::new())
}

/// [`render_json`], each emergency access with its justification as the reader sees it:
/// `{"status": "read", "text": ...}`, `{"status": "sealed"}` or `{"status": "unreadable"}`.
pub fn render_json_with(
    verified: &VerifiedAudit,
    consortium: &Consortium,
    justifications: &Justifications,
    names: &Names,
) -> String {
    let events: Vec<serde_json::Value> = verified
        .events
        .iter()
        .map(|ie| {
            let e = &ie.event;
            serde_json::json!({
                "index": ie.index,
                "time": iso8601_utc(e.time_ms),
                "time_ms": e.time_ms,
                "height": e.height,
                "institution": asking_institution(consortium, e),
                "accessor": e.accessor,
                "staff": e.staff.map(|s| serde_json::json!({
                    "id": s.id,
                    "role": s.role,
                    "institution": s.institution,
                    "name": names.get(&s.id),
                })),
                "patient": e.patient,
                "archive": e.archive,
                "custodian": e.custodian,
                "category": e.category,
                "purpose": e.purpose,
                "grant": e.grant,
                "outcome": outcome(&e.outcome),
                "break_glass": e.outcome.is_break_glass(),
                "key_change": match e.outcome {
                    EventOutcome::Rotated { new_key } => {
                        serde_json::json!({ "by": "patient", "new_key": new_key })
                    }
                    EventOutcome::Recovered { new_key } => {
                        serde_json::json!({ "by": "member", "new_key": new_key })
                    }
                    _ => serde_json::Value::Null,
                },
                "justification": justifications.get(&e.tx_hash),
                "tx_hash": e.tx_hash,
            })
        })
        .collect();
    let doc = serde_json::json!({
        "subject": verified.subject,
        "range": verified.range.map(|(from_ms, to_ms)| serde_json::json!({
            "from_ms": from_ms,
            "to_ms": to_ms,
        })),
        "height": verified.height,
        "time": iso8601_utc(verified.time_ms),
        "header_hash": hex::encode(verified.header_hash),
        "log_size": verified.log_size,
        "log_root": hex::encode(verified.log_root),
        "access_log_size": verified.access_log_size,
        "access_log_root": hex::encode(verified.access_log_root),
        "events": events,
    });
    serde_json::to_string_pretty(&doc).unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn justifications_show_in_their_own_column_on_one_line() {
        use cradle_ledger::Policy;
        use cradle_ledger::tx::Purpose;
        use cradle_testkit::{TestConsortium, access_event, patient_key};
        let t = TestConsortium::new(Policy::default());
        let p = patient_key(0).public_key();
        let (a, b) = (t.hospital_a.public_key(), t.hospital_b.public_key());
        let events = [
            access_event(1, &p, &a, &b, Purpose::Treat, EventOutcome::Permitted),
            access_event(
                2,
                &p,
                &a,
                &b,
                Purpose::EmergencyTreat,
                EventOutcome::BreakGlass,
            ),
        ];
        let plain = render_table(&events, &t.consortium);
        assert!(!plain.contains("JUSTIFICATION"), "{plain}");
        // A justification cannot forge rows of the table with line breaks or escapes.
        let mut j = Justifications::new();
        j.insert(
            events[1].event.tx_hash,
            JustificationView::Read("eclampsia\n2026-01-01  Forged Clinic\x1b[2K".into()),
        );
        let table = render_table_with(&events, &t.consortium, &j, &Names::new());
        assert_eq!(table.lines().count(), 3, "{table}");
        assert!(table.lines().next().unwrap().ends_with("JUSTIFICATION"));
        assert!(
            table.contains("eclampsia 2026-01-01  Forged Clinic [2K"),
            "{table}"
        );
        j.insert(events[1].event.tx_hash, JustificationView::Sealed);
        let table = render_table_with(&events, &t.consortium, &j, &Names::new());
        assert!(table.contains("(sealed for the patient and the regulators)"));
    }

    #[test]
    fn iso8601_matches_known_instants() {
        assert_eq!(iso8601_utc(0), "1970-01-01T00:00:00.000Z");
        assert_eq!(iso8601_utc(951_782_400_123), "2000-02-29T00:00:00.123Z");
        assert_eq!(iso8601_utc(1_780_000_000_000), "2026-05-28T20:26:40.000Z");
    }

    #[test]
    fn a_missing_checkpoint_file_is_no_checkpoint_and_saving_round_trips() {
        let dir = std::env::temp_dir().join(format!("cradle-cp-{}", std::process::id()));
        fs::create_dir_all(&dir).unwrap_or_default();
        let path = dir.join("checkpoint.json");
        let _ = fs::remove_file(&path);
        assert!(matches!(load_checkpoint(&path), Ok(None)));
        let cp = Checkpoint {
            height: 3,
            header_hash: cradle_ledger::Digest32([1; 32]),
            time_ms: 5,
            access_log_size: 2,
            access_log_root: cradle_ledger::Digest32([2; 32]),
        };
        assert!(save_checkpoint(&path, &cp).is_ok());
        assert_eq!(load_checkpoint(&path).ok().flatten(), Some(cp));
        let _ = fs::remove_dir_all(&dir);
    }
}
