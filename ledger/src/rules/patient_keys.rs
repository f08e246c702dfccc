//! A patient's keys over her lifetime: she rotates them herself, or a care-providing member
//! recovers her with new ones when she lost her device, with her present (her new device proves
//! the new keys). Either way she stays the patient she enrolled as: her records name her
//! enrolment key, the new key signs for her from the next block, the old one is refused for
//! good, and the change is kept in her history ([`KeyChange`]); a recovery also in the
//! regulators' list. Her archives' custodians then wrap each archive key again for her new
//! X25519 key ([`RewrapForPatient`]).

use crate::access::{AccessEvent, EventOutcome, LoggedEvent, NO_ARCHIVE};
use crate::crypto::{Digest32, Hash, PublicKey, X25519Public};
use crate::error::Error;
use crate::identity::Consortium;
use crate::state::{KeyChange, Overlay, StateExt, StateReader, keys};
use crate::tx::{Category, Purpose, RecoverPatient, RewrapForPatient, RotatePatientKey};

use super::{BlockContext, care_provider};

/// The patient a transaction signed by `key` acts as: her enrolment key, when `key` is her
/// current key; `key` itself when it is no patient's (the rule of the transaction decides);
/// refused when it is a key she rotated away from.
pub(super) fn acting_patient<S: StateReader + ?Sized>(
    state: &S,
    key: &PublicKey,
) -> Result<PublicKey, Error> {
    match state.patient_by_key(key)? {
        Some((identity, _, true)) => Ok(identity),
        Some((_, _, false)) => Err(Error::KeyRotatedOut(*key)),
        None => Ok(*key),
    }
}

/// A transaction as the event it logs names it: its hash, and the key that signed it.
pub(super) struct Signed<'a> {
    pub tx_hash: &'a Hash,
    pub key: &'a PublicKey,
}

/// The patient enrolled as `patient` rotates her keys, signing with `by.key`, her current key.
pub(super) fn rotate<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    patient: &PublicKey,
    by: Signed<'_>,
    b: &RotatePatientKey,
    events: &mut Vec<LoggedEvent>,
) -> Result<(), Error> {
    change_keys(state, c, ctx, patient, b.new_key, b.new_x25519, None)?;
    let outcome = EventOutcome::Rotated { new_key: b.new_key };
    events.push(log_key_change(state, ctx, patient, by, outcome)?);
    Ok(())
}

/// The member `signer` recovers the patient `b.patient` with new keys; the recovery is in her
/// log, the member's and the break-glass log, and listed under [`keys::recovery`].
pub(super) fn recover<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    tx_hash: &Hash,
    b: &RecoverPatient,
    events: &mut Vec<LoggedEvent>,
) -> Result<(), Error> {
    care_provider(c, signer, "recover patients")?;
    her_recoverer(state, c, signer, &b.patient)?;
    change_keys(
        state,
        c,
        ctx,
        &b.patient,
        b.new_key,
        b.new_x25519,
        Some(*signer),
    )?;
    state.put(keys::recovery(ctx.height, &b.patient), signer);
    let by = Signed {
        tx_hash,
        key: signer,
    };
    let outcome = EventOutcome::Recovered { new_key: b.new_key };
    events.push(log_key_change(state, ctx, &b.patient, by, outcome)?);
    Ok(())
}

/// Logs a change of the keys of the patient enrolled as `identity`, as an event of her history
/// (and of the signer's, and for a recovery the break-glass log): no archive, no request, purpose
/// PATRQT (she asked for it, on her own device or in person).
fn log_key_change<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    ctx: BlockContext,
    identity: &PublicKey,
    by: Signed<'_>,
    outcome: EventOutcome,
) -> Result<LoggedEvent, Error> {
    let event = AccessEvent {
        height: ctx.height,
        time_ms: ctx.time_ms,
        tx_hash: Digest32(*by.tx_hash),
        request_hash: Digest32([0; 32]),
        patient: *identity,
        archive: NO_ARCHIVE,
        category: Category::Other,
        custodian: PublicKey([0; 32]),
        accessor: *by.key,
        staff: None,
        purpose: Purpose::PatientRequest,
        grant: None,
        outcome,
    };
    let mut logs = vec![keys::accessor_log(by.key)];
    if outcome.in_break_glass_log() {
        logs.push(keys::break_glass_log());
    }
    super::access::log_event(state, event, logs)
}

/// Archives looked at, at most, to find a patient's earliest: deterministic and bounded.
const ARCHIVE_SCAN_MAX: usize = 1024;

/// Whether `member` may recover the patient enrolled as `identity`. Binding her identity to a
/// new key hands over everything she has, so exactly one member may: the member that enrolled
/// her (it vouched for her in person then); once it has left the consortium, the custodian of
/// her earliest archive. Nothing a member does later makes it that member: a grant she gives
/// or an archive it registers for her do not (an attack found both ways to take a mother over
/// when any tie to her sufficed).
fn her_recoverer<S: StateReader + ?Sized>(
    state: &Overlay<'_, S>,
    c: &Consortium,
    member: &PublicKey,
    identity: &PublicKey,
) -> Result<(), Error> {
    let record = state
        .patient(identity)?
        .ok_or(Error::UnknownPatient(*identity))?;
    let recoverer = if c.member(&record.enrolled_by).is_some() {
        Some(record.enrolled_by)
    } else if usize::try_from(record.archives).map_or(true, |n| n > ARCHIVE_SCAN_MAX) {
        None
    } else {
        state
            .patient_archives(identity, ARCHIVE_SCAN_MAX)?
            .into_iter()
            .min_by_key(|(id, archive)| (archive.height, *id))
            .map(|(_, archive)| archive.custodian)
    };
    if recoverer.as_ref() == Some(member) {
        Ok(())
    } else {
        Err(Error::NotAuthorized {
            action: "recover a patient it did not enrol (only the member that enrolled her may; \
                     once it has left, the custodian of her earliest archive)",
            signer: *member,
        })
    }
}

/// Makes `new_key` the key that signs for the patient enrolled as `identity`.
fn change_keys<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    identity: &PublicKey,
    new_key: PublicKey,
    new_x25519: X25519Public,
    recovered_by: Option<PublicKey>,
) -> Result<(), Error> {
    let mut record = state.patient(identity)?.ok_or(Error::NotAuthorized {
        action: "change a patient's keys (not an enrolled patient)",
        signer: *identity,
    })?;
    new_key.verifying_key()?;
    // A key serves one party for good: never a member's, a clinician's or another patient's,
    // nor one this patient had before.
    let by = if c.holds_key(&new_key) || state.former_member(&new_key)? {
        Some("a member institution")
    } else if state.staff(&new_key)?.is_some() {
        Some("a clinician")
    } else if state.patient_key_taken(&new_key)? {
        Some("a patient")
    } else {
        None
    };
    if let Some(by) = by {
        return Err(Error::KeyInUse { key: new_key, by });
    }
    let index = record.key_changes;
    record.key_changes = index
        .checked_add(1)
        .ok_or(Error::InvalidKeyChange("too many key changes"))?;
    record.current_key = Some(new_key);
    record.x25519 = new_x25519;
    state.put(keys::patient(identity), &record);
    state.put(keys::patient_alias(&new_key), identity);
    state.put(
        keys::key_change(identity, index),
        &KeyChange {
            height: ctx.height,
            time_ms: ctx.time_ms,
            new_key,
            new_x25519,
            recovered_by,
        },
    );
    Ok(())
}

pub(super) fn rewrap<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    signer: &PublicKey,
    b: &RewrapForPatient,
) -> Result<(), Error> {
    let mut archive = state
        .archive(&b.archive)?
        .ok_or(Error::UnknownArchive(b.archive))?;
    if &archive.custodian != signer {
        return Err(Error::NotAuthorized {
            action: "wrap the key of another custodian's archive",
            signer: *signer,
        });
    }
    let patient = state
        .patient(&archive.patient)?
        .ok_or(Error::UnknownPatient(archive.patient))?;
    if patient.key_changes == 0 {
        return Err(Error::InvalidKeyChange(
            "the patient's keys never changed: her archive key needs no new wrap",
        ));
    }
    archive.key_for_patient = b.key_for_patient;
    state.put(keys::archive(&b.archive), &archive);
    Ok(())
}
