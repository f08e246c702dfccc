//! Registering an archive: its custodian (or one of its active clinicians, on its behalf) records
//! the ciphertext's hash and the archive key, wrapped for the patient, for the custodian and for
//! every open grant that covers the archive.

use std::collections::BTreeSet;

use crate::access::NO_ARCHIVE;
use crate::crypto::{GrantId, PublicKey};
use crate::error::Error;
use crate::identity::Consortium;
use crate::state::{ArchiveRecord, Overlay, StateExt, StateReader, keys};
use crate::tx::RegisterArchive;

use super::{BlockContext, OPEN_GRANTS_MAX, care_provider, exactly_once};

pub(super) fn register_archive<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    b: &RegisterArchive,
) -> Result<(), Error> {
    care_provider(c, &b.custodian, "hold archives")?;
    // The institution registers its own archives, or one of its active clinicians does for it.
    if signer != &b.custodian {
        match state.staff(signer)? {
            Some(s) if s.institution == b.custodian && s.is_active() => {}
            _ => {
                return Err(Error::NotAuthorized {
                    action: "register archives for this custodian",
                    signer: *signer,
                });
            }
        }
    }
    let mut patient = state
        .patient(&b.patient)?
        .ok_or(Error::UnknownPatient(b.patient))?;
    if b.archive == NO_ARCHIVE {
        return Err(Error::ArchiveIdReserved(b.archive));
    }
    if state.archive(&b.archive)?.is_some() {
        return Err(Error::ArchiveExists(b.archive));
    }
    if b.size_bytes == 0 {
        return Err(Error::EmptyArchive);
    }
    // Every open, unexpired grant covering the new archive must get its key, and no other.
    let open = state.open_grants(&b.patient, OPEN_GRANTS_MAX as usize)?;
    let required: BTreeSet<GrantId> = open
        .iter()
        .filter(|(_, g)| ctx.time_ms < g.expires_at_ms && g.scope.covers(&b.archive, b.category))
        .map(|(id, _)| *id)
        .collect();
    exactly_once(
        b.grant_keys.iter().map(|gk| gk.grant),
        &required,
        "grant",
        Error::UnexpectedGrantKey,
        Error::MissingGrantKey,
    )?;
    let record = ArchiveRecord {
        patient: b.patient,
        custodian: b.custodian,
        ciphertext_sha256: b.ciphertext_sha256,
        size_bytes: b.size_bytes,
        category: b.category,
        registered_at_ms: ctx.time_ms,
        height: ctx.height,
        key_for_patient: b.key_for_patient,
        key_for_custodian: b.key_for_custodian,
    };
    state.put(keys::archive(&b.archive), &record);
    state.put(keys::patient_archive(&b.patient, &b.archive), &());
    for gk in &b.grant_keys {
        state.put(keys::grant_key(&gk.grant, &b.archive), &gk.key);
    }
    patient.archives = patient.archives.saturating_add(1);
    state.put(keys::patient(&b.patient), &patient);
    Ok(())
}
