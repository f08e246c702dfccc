//! A patient's keys over her lifetime, from the client's side: she rotates them with her
//! current key; a care-providing member recovers her with new ones when she lost her device,
//! and wraps again, for her new X25519 key, the keys of the archives in its custody.
//!
//! She stays the patient she enrolled as: [`Session::identity`] proves, from genesis, which
//! enrolment key the session's key signs for.

use std::path::Path;

use cradle_ledger::audit::{RecordAnswer, verify_record};
use cradle_ledger::keywrap::{unwrap_key, wrap_key};
use cradle_ledger::state::keys;
use cradle_ledger::tx::{RecoverPatient, RewrapForPatient, RotatePatientKey, TxBody};
use cradle_ledger::{ArchiveId, PublicKey};

use super::enrolment::read_public_key_file;
use super::{ClientError, Receipt, Session};

/// What a recovery did.
pub struct Recovered {
    pub receipt: Receipt,
    /// The archives in this member's custody whose key was wrapped again for her.
    pub rewrapped: Vec<ArchiveId>,
}

impl Session {
    /// The patient this session's key signs for: the key she enrolled with, proven from
    /// genesis; the key itself when it is an enrolment key (or no patient's).
    pub fn identity(&self) -> Result<PublicKey, ClientError> {
        let me = self.key.public_key();
        let bytes = self
            .api
            .get_bytes(&format!("/v1/patients/{}/identity/proof", me.to_hex()))?;
        let answer =
            RecordAnswer::decode(&bytes).map_err(|e| ClientError::Unproven(e.to_string()))?;
        let (identity, _) =
            verify_record::<PublicKey>(&self.sets, &answer, &keys::patient_alias(&me))
                .map_err(|e| ClientError::Unproven(e.to_string()))?;
        Ok(identity.unwrap_or(me))
    }

    /// Replaces this patient's keys with the ones in `new_pubkey` (written with its proof by
    /// `cradle keygen --genesis` on her new device); this session's key is refused from the
    /// next block.
    pub fn rotate_patient_key(&self, new_pubkey: &Path) -> Result<Receipt, ClientError> {
        let e = read_public_key_file(new_pubkey)?.enrolment_for(&self.chain_id)?;
        self.submit(TxBody::RotatePatientKey(RotatePatientKey {
            new_key: e.patient,
            new_x25519: e.x25519,
            proof: e.proof,
        }))
    }

    /// As a member with the patient present: gives the patient enrolled as `patient` the keys
    /// in `new_pubkey` (made and proven on her new device), then wraps again for her new
    /// X25519 key the key of every archive of hers in this member's custody.
    pub fn recover_patient(
        &self,
        patient: &PublicKey,
        new_pubkey: &Path,
    ) -> Result<Recovered, ClientError> {
        let e = read_public_key_file(new_pubkey)?.enrolment_for(&self.chain_id)?;
        let receipt = self.submit(TxBody::RecoverPatient(RecoverPatient {
            patient: *patient,
            new_key: e.patient,
            new_x25519: e.x25519,
            proof: e.proof,
        }))?;
        let rewrapped = self.rewrap_for_patient(patient)?;
        Ok(Recovered { receipt, rewrapped })
    }

    /// Wraps again, for the patient's current X25519 key (proven from genesis), the key of
    /// every archive of hers this member holds.
    pub fn rewrap_for_patient(&self, patient: &PublicKey) -> Result<Vec<ArchiveId>, ClientError> {
        // Records name the member by its identity, whichever key signs for it now.
        let me = self.own_institution()?;
        let current = self.patient(patient)?.x25519;
        let mut done = Vec::new();
        for (id, rec) in self.patient_archives(patient)? {
            if rec.custodian != me {
                continue;
            }
            let key = unwrap_key(&rec.key_for_custodian, &id, &self.key)?;
            self.submit(TxBody::RewrapForPatient(RewrapForPatient {
                archive: id,
                key_for_patient: wrap_key(&key, &id, &current)?,
            }))?;
            done.push(id);
        }
        Ok(done)
    }
}
