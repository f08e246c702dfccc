//! Access records: a custodian records every access to an archive it holds, permitted,
//! break-glass or denied, and the outcome must be the access rule's. Each record appends one
//! event to the global log, the patient's, the archive's, the accessor's and, for break-glass,
//! the break-glass log.

use std::collections::BTreeSet;

use crate::access::{
    self, AccessEvent, AccessOutcome, AccessRequest, Accessor, Decision, EventOutcome, LoggedEvent,
};
use crate::crypto::{self, Digest32, Hash, PublicKey, X25519Public};
use crate::error::Error;
use crate::identity::Consortium;
use crate::staff::StaffRecord;
use crate::state::{ArchiveRecord, BreakGlassEntry, Overlay, StateExt, StateReader, keys};
use crate::tx::{Purpose, RecordAccess};

use super::{BlockContext, OPEN_GRANTS_MAX};

/// What the access rule decides for `req` on an archive in `state` at `now_ms`, once the
/// request passed the checks every access record must: made within the policy's request TTL,
/// and not recorded before. Applying an access record asks this at block time; a custodian asks
/// it on committed state before it records an access, so both decide alike.
pub fn decide_access<S: StateReader + ?Sized>(
    state: &S,
    c: &Consortium,
    archive: &ArchiveRecord,
    req: &AccessRequest,
    now_ms: u64,
) -> Result<Decision, Error> {
    let staff = state.staff(&req.accessor)?;
    decide_with(state, c, archive, req, staff.as_ref(), now_ms)
}

/// [`decide_access`], given the accessor's staff record as already read.
fn decide_with<S: StateReader + ?Sized>(
    state: &S,
    c: &Consortium,
    archive: &ArchiveRecord,
    req: &AccessRequest,
    staff: Option<&StaffRecord>,
    now_ms: u64,
) -> Result<Decision, Error> {
    if req.requested_at_ms.abs_diff(now_ms) > c.policy.access_request_ttl_ms {
        return Err(Error::StaleRequest {
            requested_at_ms: req.requested_at_ms,
            now_ms,
        });
    }
    if state
        .get(&keys::request_seen(&req.accessor, &req.request_id))?
        .is_some()
    {
        return Err(Error::RequestReplayed);
    }
    let accessor = match staff {
        None if c.signer(&req.accessor).is_none() && is_patient(state, archive, req)? => {
            Accessor::Patient
        }
        _ => accessor_of(c, &req.accessor, staff),
    };
    let grants = match accessor.grantee() {
        Some(grantee) => {
            state.grants_to(&archive.patient, &grantee, OPEN_GRANTS_MAX as usize * 4)?
        }
        None => Vec::new(),
    };
    let readers = if req.purpose == Purpose::EmergencyTreat {
        justification_readers(state, c, &archive.patient)?
    } else {
        BTreeSet::new()
    };
    Ok(access::decide(
        &c.policy, archive, req, accessor, &grants, &readers, now_ms,
    ))
}

/// Whether the request is the archive's patient's, signed by her current key.
fn is_patient<S: StateReader + ?Sized>(
    state: &S,
    archive: &ArchiveRecord,
    req: &AccessRequest,
) -> Result<bool, Error> {
    Ok(state
        .patient_by_key(&req.accessor)?
        .is_some_and(|(identity, _, current)| current && identity == archive.patient))
}

/// Who `key` is to the access rule, given its staff record if it has one; the patient is
/// recognised by her current key, which only the state knows ([`decide_access`]).
pub fn accessor_of<'a>(
    c: &Consortium,
    key: &PublicKey,
    staff: Option<&'a StaffRecord>,
) -> Accessor<'a> {
    match (staff, c.signer(key)) {
        (Some(record), _) => Accessor::Staff {
            record,
            institution_role: c.member(&record.institution).map(|m| m.role),
        },
        (None, Some(m)) => Accessor::Institution(m.role),
        (None, None) => Accessor::Other,
    }
}

/// Whom a break-glass justification about `patient`'s archive must be sealed for: the
/// patient's X25519 key and every regulator's.
pub fn justification_readers<S: StateReader + ?Sized>(
    state: &S,
    c: &Consortium,
    patient: &PublicKey,
) -> Result<BTreeSet<X25519Public>, Error> {
    let record = state
        .patient(patient)?
        .ok_or(Error::UnknownPatient(*patient))?;
    let mut readers: BTreeSet<X25519Public> = c.regulators().map(|m| m.x25519).collect();
    readers.insert(record.x25519);
    Ok(readers)
}

pub(super) fn record_access<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    tx_hash: &Hash,
    b: &RecordAccess,
    events: &mut Vec<LoggedEvent>,
) -> Result<(), Error> {
    let req = &b.request.request;
    let archive = state
        .archive(&req.archive)?
        .ok_or(Error::UnknownArchive(req.archive))?;
    if &archive.custodian != signer {
        return Err(Error::NotAuthorized {
            action: "record access to another custodian's archive",
            signer: *signer,
        });
    }
    // Only a party that could be entitled has an access recorded: an active clinician, a
    // member institution or the archive's own patient. A stranger's request, or one from a
    // clinician no longer active (whom no institution answers for any more), is refused by the
    // custodian off the ledger; refusing it here too keeps a custodian from writing noise into a
    // mother's history.
    let staff = state.staff(&req.accessor)?;
    let recordable = match &staff {
        Some(s) => s.is_active(),
        // The patient's keys, current or rotated out: a read by a key she lost is hers to see.
        None => {
            c.signer(&req.accessor).is_some()
                || state
                    .patient_by_key(&req.accessor)?
                    .is_some_and(|(identity, _, _)| identity == archive.patient)
        }
    };
    if !recordable {
        return Err(Error::NotAuthorized {
            action: "record an access by a key that is neither an active clinician, a member nor the archive's patient",
            signer: *signer,
        });
    }
    let staff_ref = accessor_of(c, &req.accessor, staff.as_ref()).staff_ref();
    let decision = decide_with(&*state, c, &archive, req, staff.as_ref(), ctx.time_ms)?;
    // A clinician's permitted read carries the key re-wrapped for her; the patient's, none.
    if let AccessOutcome::Permitted { key_for_accessor } = &b.outcome
        && key_for_accessor.is_some() != staff_ref.is_some()
    {
        return Err(Error::OutcomeMismatch {
            recorded: "a permitted read with the key wrapped for the wrong party".into(),
            rule: "the key re-wrapped for a clinician, and none for the patient".into(),
        });
    }
    let seen = keys::request_seen(&req.accessor, &req.request_id);
    let recorded = EventOutcome::from(&b.outcome);
    let rule = match decision {
        Decision::Permitted(_) => EventOutcome::Permitted,
        Decision::BreakGlass => EventOutcome::BreakGlass,
        Decision::Denied(reason) => EventOutcome::Denied { reason },
    };
    if recorded != rule || b.grant != decision.grant() {
        return Err(Error::OutcomeMismatch {
            recorded: format!("{recorded:?} via {:?}", b.grant),
            rule: format!("{rule:?} via {:?}", decision.grant()),
        });
    }
    state.put(seen, &());

    let event = AccessEvent {
        height: ctx.height,
        time_ms: ctx.time_ms,
        tx_hash: Digest32(*tx_hash),
        request_hash: Digest32(crypto::sha256(&crate::codec::encode(&b.request))),
        patient: archive.patient,
        archive: req.archive,
        category: archive.category,
        custodian: archive.custodian,
        accessor: req.accessor,
        staff: staff_ref,
        purpose: req.purpose,
        grant: b.grant,
        outcome: rule,
    };
    // Every audit subject has its own committed log, so an answer about it proves completeness.
    // A clinician's access is also her institution's, which answers for its staff.
    let mut subject_logs = vec![
        keys::archive_log(&req.archive),
        keys::accessor_log(&req.accessor),
    ];
    if let Some(s) = &staff_ref {
        subject_logs.push(keys::accessor_log(&s.institution));
    }
    if rule.is_break_glass() {
        subject_logs.push(keys::break_glass_log());
        // What a regulator's review of it names ([`super::review`]).
        state.put(
            keys::break_glass_entry(&Digest32(*tx_hash)),
            &BreakGlassEntry {
                patient: archive.patient,
                archive: req.archive,
                category: archive.category,
                custodian: archive.custodian,
                height: ctx.height,
                time_ms: ctx.time_ms,
                review: None,
            },
        );
    }
    events.push(log_event(state, event, subject_logs)?);
    Ok(())
}

/// Appends `event` to the global access log, its patient's log and the logs named by
/// `subject_logs`; the event with its positions in the first two.
pub(super) fn log_event<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    event: AccessEvent,
    subject_logs: impl IntoIterator<Item = Vec<u8>>,
) -> Result<LoggedEvent, Error> {
    let leaf = event.leaf_hash();
    let mut global = state.access_log()?;
    let mut own = state.patient_log(&event.patient)?;
    let (global_index, patient_index) = (global.size(), own.size());
    global.frontier.append(leaf);
    own.frontier.append(leaf);
    state.put(keys::access_log(), &global);
    state.put(keys::patient_log(&event.patient), &own);
    for key in subject_logs {
        let mut log = state.log(&key)?;
        log.frontier.append(leaf);
        state.put(key, &log);
    }
    Ok(LoggedEvent {
        global_index,
        patient_index,
        event,
    })
}
