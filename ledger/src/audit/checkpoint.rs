//! Checkpoints: the last header a client verified, moved forward only over consistency proofs
//! of the global access log.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use super::verify::check_certificate;
use super::{AuditError, CONSISTENCY_ANSWER_BYTES_MAX, CONSISTENCY_PROOF_MAX, CommitCertificate};
use crate::block::BlockHeader;
use crate::codec::{self, BoundedVec};
use crate::crypto::{Digest32, Hash};
use crate::error::Error;
use crate::governance::HeaderTrust;
use crate::merkle::log;

/// The last finalised header a client verified, and the global access log it committed to.
/// Kept in a local JSON file.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Checkpoint {
    pub height: u64,
    pub header_hash: Digest32,
    pub time_ms: u64,
    pub access_log_size: u64,
    pub access_log_root: Digest32,
}

impl Checkpoint {
    /// The checkpoint of a header (that the caller has verified).
    pub fn of(header: &BlockHeader) -> Self {
        Self {
            height: header.height,
            header_hash: Digest32(header.hash()),
            time_ms: header.time_ms,
            access_log_size: header.access_log_size,
            access_log_root: header.access_log_root,
        }
    }
}

/// A node's proof that its tip's global access log extends the log of `from_size` leaves.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ConsistencyAnswer {
    pub header: BlockHeader,
    pub certificate: CommitCertificate,
    pub from_size: u64,
    /// RFC 9162 consistency proof from `from_size` to `header.access_log_size`; empty from 0
    /// or to the same size.
    pub proof: BoundedVec<Hash, CONSISTENCY_PROOF_MAX>,
}

impl ConsistencyAnswer {
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        codec::decode(bytes, CONSISTENCY_ANSWER_BYTES_MAX)
    }

    /// [`advance_checkpoint`] over this answer, which must start at the checkpoint's size.
    pub fn advance(
        &self,
        trust: &(impl HeaderTrust + ?Sized),
        old: Option<&Checkpoint>,
    ) -> Result<Checkpoint, AuditError> {
        if let Some(old) = old
            && old.access_log_size != self.from_size
        {
            return Err(AuditError::InconsistentCheckpoint(format!(
                "the proof starts at log size {}, the checkpoint is at {}",
                self.from_size, old.access_log_size
            )));
        }
        advance_checkpoint(
            trust,
            old,
            &self.header,
            &self.certificate,
            Some(&self.proof),
        )
    }
}

/// Moves a checkpoint to `header`, once `certificate` finalises it: never back to an older
/// height, never to another block at the same height, and forward only if the global access
/// log at `header` extends the remembered one (`consistency` proves it; from an empty log, or
/// with no growth, no proof is needed). Returns the new checkpoint; the old one is unchanged.
pub fn advance_checkpoint(
    trust: &(impl HeaderTrust + ?Sized),
    old: Option<&Checkpoint>,
    header: &BlockHeader,
    certificate: &CommitCertificate,
    consistency: Option<&[Hash]>,
) -> Result<Checkpoint, AuditError> {
    check_certificate(trust, header, certificate)?;
    let new = Checkpoint::of(header);
    let Some(old) = old else {
        return Ok(new);
    };
    if header.height < old.height {
        return Err(AuditError::StaleAnswer {
            remembered_height: old.height,
            got: header.height,
        });
    }
    if header.height == old.height {
        return if new == *old {
            Ok(new)
        } else {
            Err(AuditError::InconsistentCheckpoint(format!(
                "another block at the remembered height {}",
                old.height
            )))
        };
    }
    if header.time_ms <= old.time_ms {
        return Err(AuditError::InconsistentCheckpoint(
            "a later block that is not later in time".into(),
        ));
    }
    let (size1, size2) = (old.access_log_size, header.access_log_size);
    if size2 < size1 {
        return Err(AuditError::InconsistentCheckpoint(format!(
            "the access log shrank from {size1} to {size2} entries"
        )));
    }
    if size1 == 0 {
        if old.access_log_root.0 != log::empty_root() {
            return Err(AuditError::InconsistentCheckpoint(
                "the remembered empty log has a non-empty root".into(),
            ));
        }
        return Ok(new);
    }
    let proof = match consistency {
        Some(p) => p,
        None if size1 == size2 => &[],
        None => {
            return Err(AuditError::MissingConsistencyProof {
                from_size: size1,
                to_size: size2,
            });
        }
    };
    log::verify_consistency(
        size1,
        size2,
        proof,
        &old.access_log_root.0,
        &header.access_log_root.0,
    )
    .map_err(|e| {
        AuditError::InconsistentCheckpoint(format!(
            "the access log of {size2} entries does not extend the remembered {size1}: {e}"
        ))
    })?;
    Ok(new)
}
