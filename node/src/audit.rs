//! Audit answers with their proofs, served from one RocksDB snapshot.
//!
//! Every answer is proven against the tip's header and commit certificate, so the client checks
//! it from genesis and need not trust this node. Who read whose records is itself private: who
//! may have which history is `http::policy::audit`'s to say (a patient's to the patient, an
//! archive's to its patient and its custodian, an institution's accesses to the institution,
//! the break-glass log and everything else to regulators).
//!
//! Equivocation evidence (two conflicting messages a validator signed) is for regulators too.
//! It is not on the ledger and needs no proof against a header: each item carries the
//! offender's signatures, which the client checks from genesis.

use cradle_ledger::Error;
use cradle_ledger::access::AccessEvent;
use cradle_ledger::audit::{
    AuditAnswer, AuditSource, AuditSubject, CommitCertificate, ConsistencyAnswer,
    EVIDENCE_PAGE_MAX, EvidenceAnswer, build_answer, build_consistency,
};
use cradle_ledger::block::BlockHeader;
use cradle_ledger::codec::BoundedVec;

use crate::storage::{EVENTS_PAGE_MAX, StorageError, Store, StoreSnapshot};

/// Why an audit answer was not given.
#[derive(Debug, thiserror::Error)]
pub enum AuditError {
    #[error("no block is committed yet: nothing to prove against")]
    NoBlocks,
    #[error("{0}: ask for a time range")]
    TooMany(String),
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Internal(String),
}

impl From<Error> for AuditError {
    fn from(e: Error) -> Self {
        match e {
            Error::NoBlocks => Self::NoBlocks,
            Error::TooMany { .. } => Self::TooMany(e.to_string()),
            other => Self::Internal(other.to_string()),
        }
    }
}

/// Up to [`EVIDENCE_PAGE_MAX`] pieces of the evidence this node stored, from position
/// `offset` on. Blocking: run it off the async runtime.
pub fn evidence(store: &Store, offset: u64) -> Result<EvidenceAnswer, AuditError> {
    let page = store
        .evidence(offset, EVIDENCE_PAGE_MAX)
        .map_err(|e| AuditError::Internal(e.to_string()))?;
    let items = BoundedVec::new(page.items).map_err(|e| AuditError::Internal(e.to_string()))?;
    Ok(EvidenceAnswer {
        total: page.total,
        offset,
        items,
    })
}

/// The answer about `subject`, over its whole history or the events in `range` (inclusive
/// milliseconds). Blocking: run it off the async runtime.
pub fn answer(
    store: &Store,
    subject: AuditSubject,
    range: Option<(u64, u64)>,
) -> Result<AuditAnswer, AuditError> {
    let src = SnapshotSource::new(store.snapshot());
    Ok(build_answer(&src, subject, range)?)
}

/// The record at state `key` proven against the tip. Blocking.
pub fn record(
    store: &Store,
    key: Vec<u8>,
) -> Result<cradle_ledger::audit::RecordAnswer, AuditError> {
    let src = SnapshotSource::new(store.snapshot());
    Ok(cradle_ledger::audit::build_record(&src, key)?)
}

/// A consistency proof of the global access log from `from` entries to the tip. Blocking.
pub fn consistency(store: &Store, from: u64) -> Result<ConsistencyAnswer, AuditError> {
    let src = SnapshotSource::new(store.snapshot());
    let size = src.tip()?.map_or(0, |(h, _)| h.access_log_size);
    if from > size {
        return Err(AuditError::BadRequest(format!(
            "the access log has {size} entries, fewer than {from}"
        )));
    }
    Ok(build_consistency(&src, &src.snapshot().global_log(), from)?)
}

/// An [`AuditSource`] over one consistent snapshot of the store.
pub struct SnapshotSource<'a> {
    snapshot: StoreSnapshot<'a>,
}

impl<'a> SnapshotSource<'a> {
    pub fn new(snapshot: StoreSnapshot<'a>) -> Self {
        Self { snapshot }
    }

    pub fn snapshot(&self) -> &StoreSnapshot<'a> {
        &self.snapshot
    }
}

fn storage(e: StorageError) -> Error {
    Error::Storage(e.to_string())
}

impl<'a> AuditSource for SnapshotSource<'a> {
    type State = StoreSnapshot<'a>;

    fn tip(&self) -> Result<Option<(BlockHeader, CommitCertificate)>, Error> {
        let Some(tip) = self.snapshot.tip().map_err(storage)? else {
            return Ok(None);
        };
        let fb = self
            .snapshot
            .block(tip.height)
            .map_err(storage)?
            .ok_or_else(|| Error::Corrupt(format!("tip block {} missing", tip.height)))?;
        Ok(Some((fb.block.header, fb.certificate)))
    }

    fn state(&self) -> &Self::State {
        &self.snapshot
    }

    fn events(&self, subject: &AuditSubject) -> Result<Vec<AccessEvent>, Error> {
        let mut out = Vec::new();
        let mut from = 0u64;
        loop {
            let page = match subject {
                AuditSubject::Patient(p) => {
                    self.snapshot.events_for_patient(p, from, EVENTS_PAGE_MAX)
                }
                AuditSubject::Archive(a) => {
                    self.snapshot.events_for_archive(a, from, EVENTS_PAGE_MAX)
                }
                AuditSubject::Accessor(k) => {
                    self.snapshot.events_for_accessor(k, from, EVENTS_PAGE_MAX)
                }
                AuditSubject::BreakGlass => self.snapshot.events_break_glass(from, EVENTS_PAGE_MAX),
            }
            .map_err(storage)?;
            let full = page.len() == EVENTS_PAGE_MAX;
            if let Some(last) = page.last() {
                from = last.global_index.saturating_add(1);
            }
            out.extend(page.into_iter().map(|e| e.event));
            if !full {
                return Ok(out);
            }
        }
    }
}
