//! One committed record proven against a certified header: a patient's keys or an archive's
//! record, checked by a client from genesis alone, so a node cannot forge the hash it must
//! check a download against or the key it must encrypt for.

use borsh::{BorshDeserialize, BorshSerialize};

use super::verify::check_certificate;
use super::{AuditError, AuditSource, CommitCertificate};
use crate::block::BlockHeader;
use crate::codec::{self, BoundedVec};
use crate::crypto;
use crate::error::Error;
use crate::governance::HeaderTrust;
use crate::merkle::smt::{self, SmtProof};
use crate::state::{ArchiveRecord, PatientRecord, StateReader, TreeNodes, VALUE_BYTES_MAX, keys};
use crate::{ArchiveId, PublicKey};

/// Longest state key a record answer names.
pub const RECORD_KEY_BYTES_MAX: usize = 128;
/// Largest encoded record answer.
pub const RECORD_ANSWER_BYTES_MAX: usize = VALUE_BYTES_MAX + 256 * 1024;

/// A record as the tip's state root commits to it (or its absence).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct RecordAnswer {
    pub header: BlockHeader,
    pub certificate: CommitCertificate,
    pub key: BoundedVec<u8, RECORD_KEY_BYTES_MAX>,
    pub proof: SmtProof,
    pub value: Option<BoundedVec<u8, VALUE_BYTES_MAX>>,
}

impl RecordAnswer {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        codec::decode(bytes, RECORD_ANSWER_BYTES_MAX)
    }
}

/// The record at state `key` with its proof against the tip.
pub fn build_record(src: &impl AuditSource, key: Vec<u8>) -> Result<RecordAnswer, Error> {
    let (header, certificate) = super::build::tip_of(src)?;
    let state = src.state();
    let proof = smt::prove(&TreeNodes(state), &crypto::sha256(&key))?;
    let value = state.get(&key)?.map(BoundedVec::new).transpose()?;
    Ok(RecordAnswer {
        header,
        certificate,
        key: BoundedVec::new(key)?,
        proof,
        value,
    })
}

/// Checks `answer` from genesis alone and that it is about `key`; returns the proven value
/// (`None`: the state has no such record) and the header it is proven against.
pub fn verify_record<T: BorshDeserialize>(
    trust: &(impl HeaderTrust + ?Sized),
    answer: &RecordAnswer,
    key: &[u8],
) -> Result<(Option<T>, BlockHeader), AuditError> {
    if answer.key[..] != *key {
        return Err(AuditError::StateProof(
            "the answer is about another record".into(),
        ));
    }
    check_certificate(trust, &answer.header, &answer.certificate)?;
    let value = answer.value.as_deref();
    answer
        .proof
        .verify(
            &answer.header.state_root.0,
            &crypto::sha256(key),
            value.map(crypto::sha256).as_ref(),
        )
        .map_err(|e| AuditError::StateProof(e.to_string()))?;
    let record = value
        .map(|bytes| codec::decode(bytes, VALUE_BYTES_MAX))
        .transpose()
        .map_err(|e| AuditError::StateProof(format!("record value: {e}")))?;
    Ok((record, answer.header.clone()))
}

/// An archive's record, proven.
pub fn verify_archive(
    trust: &(impl HeaderTrust + ?Sized),
    answer: &RecordAnswer,
    id: &ArchiveId,
) -> Result<(Option<ArchiveRecord>, BlockHeader), AuditError> {
    verify_record(trust, answer, &keys::archive(id))
}

/// A patient's record (her keys), proven.
pub fn verify_patient(
    trust: &(impl HeaderTrust + ?Sized),
    answer: &RecordAnswer,
    patient: &PublicKey,
) -> Result<(Option<PatientRecord>, BlockHeader), AuditError> {
    verify_record(trust, answer, &keys::patient(patient))
}
