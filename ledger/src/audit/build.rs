//! Building answers on the node's side, from a consistent snapshot of its storage.

use super::{
    AUDIT_EVENTS_MAX, AUDIT_LEAVES_MAX, AuditAnswer, AuditEvents, AuditSubject,
    CONSISTENCY_PROOF_MAX, CommitCertificate, ConsistencyAnswer, IndexedEvent,
};
use crate::access::AccessEvent;
use crate::block::BlockHeader;
use crate::codec::BoundedVec;
use crate::crypto;
use crate::error::Error;
use crate::merkle::log::{self, SubtreeSource};
use crate::merkle::smt;
use crate::state::{LogState, StateExt, StateReader, TreeNodes};

/// What the node provides to answer audit queries. Every method must read the same snapshot:
/// the state and the events as they stand right after the block [`AuditSource::tip`] returns.
pub trait AuditSource {
    type State: StateReader + ?Sized;

    /// The last finalised header and its commit certificate; `None` before the first block.
    fn tip(&self) -> Result<Option<(BlockHeader, CommitCertificate)>, Error>;

    /// The committed state after the tip, tree nodes included (see [`TreeNodes`]).
    fn state(&self) -> &Self::State;

    /// Every event in the subject's log, in log order (global-log order, filtered to the
    /// subject): as many as the subject's committed log holds.
    fn events(&self, subject: &AuditSubject) -> Result<Vec<AccessEvent>, Error>;
}

pub(super) fn tip_of(src: &impl AuditSource) -> Result<(BlockHeader, CommitCertificate), Error> {
    let (header, certificate) = src.tip()?.ok_or(Error::NoBlocks)?;
    let root = src.state().state_root_dyn()?;
    if root != header.state_root.0 {
        return Err(Error::Corrupt("the state snapshot is not the tip's".into()));
    }
    Ok((header, certificate))
}

/// Answers an audit query about `subject`, over the whole history or, with `range`, the events
/// with `from_ms <= time_ms <= to_ms`. Fails with [`Error::TooMany`] when the answer would
/// exceed the wire bounds, and with [`Error::Corrupt`] when the event index disagrees with the
/// committed log.
pub fn build_answer(
    src: &impl AuditSource,
    subject: AuditSubject,
    range: Option<(u64, u64)>,
) -> Result<AuditAnswer, Error> {
    let (header, certificate) = tip_of(src)?;
    let key = subject.state_key();
    let state = src.state();
    let log_proof = smt::prove(&TreeNodes(state), &crypto::sha256(&key))?;
    let log_value = state.get(&key)?;
    let committed: LogState = state.log(&key)?;

    // Refuse on the committed size, before a single event is read: a subject's log can be far
    // larger than any answer may carry.
    let max = if range.is_some() {
        AUDIT_LEAVES_MAX
    } else {
        AUDIT_EVENTS_MAX
    };
    let size = usize::try_from(committed.size()).unwrap_or(usize::MAX);
    if size > max {
        return Err(Error::TooMany { len: size, max });
    }
    let events = src.events(&subject)?;
    let leaves: Vec<_> = events.iter().map(AccessEvent::leaf_hash).collect();
    if leaves.len() as u64 != committed.size() || log::root_of(&leaves) != committed.root() {
        return Err(Error::Corrupt(format!(
            "the event index holds {} events for the subject, its committed log {}",
            leaves.len(),
            committed.size()
        )));
    }
    let events = match range {
        None => AuditEvents::Whole(BoundedVec::new(events)?),
        Some((from_ms, to_ms)) => {
            if leaves.len() > AUDIT_LEAVES_MAX {
                return Err(Error::TooMany {
                    len: leaves.len(),
                    max: AUDIT_LEAVES_MAX,
                });
            }
            let run = range_run(&events, from_ms, to_ms);
            if run.len() > AUDIT_EVENTS_MAX {
                return Err(Error::TooMany {
                    len: run.len(),
                    max: AUDIT_EVENTS_MAX,
                });
            }
            let events = run
                .map(|i| IndexedEvent {
                    index: i as u64,
                    event: events[i].clone(),
                })
                .collect();
            AuditEvents::Range {
                from_ms,
                to_ms,
                leaves: BoundedVec::new(leaves)?,
                events: BoundedVec::new(events)?,
            }
        }
    };
    Ok(AuditAnswer {
        header,
        certificate,
        subject,
        log_proof,
        log_value: log_value.map(BoundedVec::new).transpose()?,
        events,
    })
}

/// The indices of the events in `[from_ms, to_ms]` plus one on each side, if there is one.
/// Events are in log order, so their times never decrease.
fn range_run(events: &[AccessEvent], from_ms: u64, to_ms: u64) -> std::ops::Range<usize> {
    let first_in = events.partition_point(|e| e.time_ms < from_ms);
    let first_after = events.partition_point(|e| e.time_ms <= to_ms).max(first_in);
    let start = first_in.saturating_sub(1);
    let end = (first_after + 1).min(events.len());
    start..end
}

/// A consistency proof of the global access log from `from_size` leaves to the tip's size,
/// read from the node's stored log subtrees. From size 0, or to the same size, the proof is
/// empty.
pub fn build_consistency(
    src: &impl AuditSource,
    global_log: &impl SubtreeSource,
    from_size: u64,
) -> Result<ConsistencyAnswer, Error> {
    let (header, certificate) = tip_of(src)?;
    let to_size = header.access_log_size;
    let proof = if from_size == 0 {
        Vec::new()
    } else {
        log::consistency_proof(global_log, from_size, to_size).map_err(Error::Proof)?
    };
    debug_assert!(proof.len() <= CONSISTENCY_PROOF_MAX);
    Ok(ConsistencyAnswer {
        header,
        certificate,
        from_size,
        proof: BoundedVec::new(proof)?,
    })
}

/// The state root of a possibly unsized reader.
trait StateRootDyn {
    fn state_root_dyn(&self) -> Result<crypto::Hash, Error>;
}

impl<S: StateReader + ?Sized> StateRootDyn for S {
    fn state_root_dyn(&self) -> Result<crypto::Hash, Error> {
        smt::root(&TreeNodes(self)).map_err(Error::from)
    }
}
