//! Verifiable audit answers: who accessed what, proven complete from the genesis document alone.
//!
//! Every audit subject (a patient, an archive, an accessor, or break-glass access as a whole)
//! has its own RFC 6962 log in the state, under [`AuditSubject::state_key`], holding the leaf
//! hash of every access event about it in global-log order. An [`AuditAnswer`] carries a block
//! header, the commit certificate that makes it final, a sparse Merkle proof of the subject's
//! log (its size and root) against the header's state root, and the events themselves. A
//! verifier that trusts only the genesis validators checks, in [`verify_answer`]:
//! - the certificate finalises the header on this chain;
//! - the state proof gives the subject log's size and root (an absent key is the empty log);
//! - the events hash, in order, to exactly that root: none left out, added, altered or moved;
//! - every event is about the subject; a time-range answer covers its range with no gap.
//!
//! A client also keeps a [`Checkpoint`], the last header it verified, and moves it forward only
//! over an RFC 6962 consistency proof of the global access log ([`advance_checkpoint`]), so a
//! node cannot later show it a history that forgets what it has already seen.
//!
//! Equivocation evidence ([`EvidenceAnswer`]) is audited too, but proves itself item by item
//! from the validator set in force at its height ([`verify_evidence`]): it is not on the ledger.
//!
//! What it owns: the wire types (canonical, bounded encoding), the answer builder over a small
//! [`AuditSource`] the node implements on a storage snapshot, and the verifiers. Pure: no I/O.

mod build;
mod checkpoint;
mod evidence;
mod record;
mod verify;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

pub use build::{AuditSource, build_answer, build_consistency};
pub use checkpoint::{Checkpoint, ConsistencyAnswer, advance_checkpoint};
pub use cradle_consensus::CommitCertificate;
pub use evidence::{
    EVIDENCE_ANSWER_BYTES_MAX, EVIDENCE_PAGE_MAX, Equivocation, EvidenceAnswer, EvidenceItem,
    EvidenceKind, EvidenceSlot, describe, verify_evidence,
};
pub use record::{
    RECORD_ANSWER_BYTES_MAX, RecordAnswer, build_record, verify_archive, verify_patient,
    verify_record,
};
pub use verify::{VerifiedAudit, verify_answer};

use crate::access::AccessEvent;
use crate::block::BlockHeader;
use crate::codec::{self, BoundedVec};
use crate::crypto::{ArchiveId, Hash, PublicKey};
use crate::error::Error;
use crate::merkle::smt::SmtProof;
use crate::state::keys;

/// Most full events one answer carries.
pub const AUDIT_EVENTS_MAX: usize = 100_000;
/// Most leaf hashes a time-range answer carries (the whole subject log): 32 MiB of hashes.
pub const AUDIT_LEAVES_MAX: usize = 1_000_000;
/// Largest encoded audit answer a client decodes.
pub const AUDIT_ANSWER_BYTES_MAX: usize = 64 * 1024 * 1024;
/// Largest stored log value (`codec::encode(LogState)`: a size and at most 64 hashes).
pub const LOG_VALUE_BYTES_MAX: usize = 4096;
/// Most hashes in a consistency proof of a log of up to 2^64 leaves.
pub const CONSISTENCY_PROOF_MAX: usize = 130;
/// Largest encoded consistency answer a client decodes.
pub const CONSISTENCY_ANSWER_BYTES_MAX: usize = 1024 * 1024;

/// Whose access history is asked for.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "subject", content = "id", rename_all = "snake_case")]
pub enum AuditSubject {
    /// Every access to the patient's archives.
    Patient(PublicKey),
    /// Every access to one archive.
    Archive(ArchiveId),
    /// Every access one institution or person asked for.
    Accessor(PublicKey),
    /// Every break-glass access in the consortium, every regulator's review of one, and every
    /// recovery of a patient by a member: what the commission oversees.
    BreakGlass,
}

impl AuditSubject {
    /// The state key of the subject's log.
    pub fn state_key(&self) -> Vec<u8> {
        match self {
            AuditSubject::Patient(p) => keys::patient_log(p),
            AuditSubject::Archive(a) => keys::archive_log(a),
            AuditSubject::Accessor(k) => keys::accessor_log(k),
            AuditSubject::BreakGlass => keys::break_glass_log(),
        }
    }

    /// Whether `event` belongs in the subject's log.
    pub fn matches(&self, event: &AccessEvent) -> bool {
        match self {
            AuditSubject::Patient(p) => event.patient == *p,
            AuditSubject::Archive(a) => event.about_archive() && event.archive == *a,
            // An institution answers for its clinicians' accesses too.
            AuditSubject::Accessor(k) => {
                event.accessor == *k || event.staff.is_some_and(|s| s.institution == *k)
            }
            AuditSubject::BreakGlass => event.outcome.in_break_glass_log(),
        }
    }
}

/// An event with its 0-based position in the subject's log.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct IndexedEvent {
    pub index: u64,
    pub event: AccessEvent,
}

/// The events an answer carries.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub enum AuditEvents {
    /// The whole subject log, in log order.
    Whole(BoundedVec<AccessEvent, AUDIT_EVENTS_MAX>),
    /// The events with `from_ms <= time_ms <= to_ms`, proven against the leaf hashes of the
    /// whole subject log. `events` is one contiguous run of the log: the event just before the
    /// range (unless the run starts at index 0), every event in the range, and the event just
    /// after it (unless the run ends at the log's last event).
    Range {
        from_ms: u64,
        to_ms: u64,
        leaves: BoundedVec<Hash, AUDIT_LEAVES_MAX>,
        events: BoundedVec<IndexedEvent, AUDIT_EVENTS_MAX>,
    },
}

/// A node's answer to an audit query, proven against a finalised header.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct AuditAnswer {
    pub header: BlockHeader,
    pub certificate: CommitCertificate,
    pub subject: AuditSubject,
    /// Presence or absence of [`AuditSubject::state_key`] under `header.state_root`.
    pub log_proof: SmtProof,
    /// The stored value of the subject's log (`codec::encode(LogState)`); `None` if absent.
    pub log_value: Option<BoundedVec<u8, LOG_VALUE_BYTES_MAX>>,
    pub events: AuditEvents,
}

impl AuditAnswer {
    /// `VERSION || borsh(self)`.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Bounded decode of an answer from a node.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        codec::decode(bytes, AUDIT_ANSWER_BYTES_MAX)
    }

    /// The time range asked for, if any (inclusive at both ends).
    pub fn range(&self) -> Option<(u64, u64)> {
        match &self.events {
            AuditEvents::Whole(_) => None,
            AuditEvents::Range { from_ms, to_ms, .. } => Some((*from_ms, *to_ms)),
        }
    }
}

/// Why an audit answer, a consistency proof or a checkpoint move was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuditError {
    #[error("the answer does not decode: {0}")]
    Malformed(String),
    #[error("the header is for another chain")]
    WrongChain,
    #[error("the header is not finalised by the genesis validators: {0}")]
    BadCertificate(String),
    #[error("the subject's log is not proven by the header's state root: {0}")]
    StateProof(String),
    #[error("incomplete history: the committed log holds {expected} entries, the answer {got}")]
    IncompleteHistory { expected: u64, got: u64 },
    #[error("the events do not hash to the committed log root")]
    RootMismatch,
    #[error("event at log index {index} differs from the committed one")]
    AlteredEvent { index: u64 },
    #[error("event at log index {index} is out of log order")]
    OutOfOrder { index: u64 },
    #[error("event at log index {index} is not about the subject")]
    WrongSubject { index: u64 },
    #[error("the time range is not covered: {0}")]
    RangeBoundary(&'static str),
    #[error(
        "header at height {got} is older than the remembered checkpoint at {remembered_height}"
    )]
    StaleAnswer { remembered_height: u64, got: u64 },
    #[error("a consistency proof from log size {from_size} to {to_size} is needed")]
    MissingConsistencyProof { from_size: u64, to_size: u64 },
    #[error("inconsistent with the remembered checkpoint: {0}")]
    InconsistentCheckpoint(String),
    #[error("evidence item {index} does not verify: {reason}")]
    BadEvidence { index: usize, reason: String },
}

impl From<Error> for AuditError {
    fn from(e: Error) -> Self {
        AuditError::Malformed(e.to_string())
    }
}
