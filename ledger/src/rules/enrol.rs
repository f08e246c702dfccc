//! Enrolling a patient: a care-providing member records a patient's keys, once.
//!
//! The enrolment carries the patient's proof, her signature over both her keys for this chain
//! ([`EnrolPatient::verify_proof`]): no member can enrol her signing key with an X25519 key of
//! its own. Like every signature, the proof is checked before any rule runs, in the block's
//! one signature batch and on a node's admission of the transaction ([`crate::block`]), and
//! fails with [`Error::BadEnrolmentProof`].

use crate::crypto::PublicKey;
use crate::error::Error;
use crate::identity::Consortium;
use crate::state::{Overlay, PatientRecord, StateExt, StateReader, keys};
use crate::tx::EnrolPatient;

use super::{BlockContext, care_provider};

pub(super) fn enrol_patient<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    b: &EnrolPatient,
) -> Result<(), Error> {
    care_provider(c, signer, "enrol patients")?;
    if c.holds_key(&b.patient) {
        return Err(Error::PatientIsMember);
    }
    b.patient.verifying_key()?;
    if state.staff(&b.patient)?.is_some() {
        return Err(Error::KeyInUse {
            key: b.patient,
            by: "a clinician",
        });
    }
    if state.former_member(&b.patient)? {
        return Err(Error::KeyInUse {
            key: b.patient,
            by: "a member that left",
        });
    }
    if state.patient_key_taken(&b.patient)? {
        return Err(Error::AlreadyEnrolled(b.patient));
    }
    let record = PatientRecord {
        x25519: b.x25519,
        enrolled_by: *signer,
        enrolled_at_ms: ctx.time_ms,
        archives: 0,
        open_grants: 0,
        current_key: None,
        key_changes: 0,
    };
    state.put(keys::patient(&b.patient), &record);
    Ok(())
}
