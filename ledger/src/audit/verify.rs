//! Checking an answer with nothing but genesis (and the set changes followed from it).

use serde::Serialize;

use super::{
    AuditAnswer, AuditError, AuditEvents, AuditSubject, IndexedEvent, LOG_VALUE_BYTES_MAX,
};
use crate::access::AccessEvent;
use crate::block::BlockHeader;
use crate::codec;
use crate::crypto::{self, Hash};
use crate::error::Error;
use crate::governance::HeaderTrust;
use crate::merkle::log;
use crate::state::LogState;

/// What a verified answer proves: these are the subject's events (all of them, or all of them
/// in the range), as of the finalised header at `height`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct VerifiedAudit {
    pub subject: AuditSubject,
    pub range: Option<(u64, u64)>,
    /// The events, with their indices in the subject's log; for a range answer only those in
    /// the range (the boundary events are left out).
    pub events: Vec<IndexedEvent>,
    pub height: u64,
    pub time_ms: u64,
    pub header_hash: Hash,
    pub log_size: u64,
    pub log_root: Hash,
    pub access_log_size: u64,
    pub access_log_root: Hash,
    /// The header the answer is proven against, to move a checkpoint to.
    #[serde(skip)]
    pub header: BlockHeader,
}

/// Checks that `certificate` finalises `header` on the chain, under the set in force at its
/// height (see [`HeaderTrust`]).
pub(super) fn check_certificate(
    trust: &(impl HeaderTrust + ?Sized),
    header: &BlockHeader,
    certificate: &super::CommitCertificate,
) -> Result<(), AuditError> {
    match trust.check_header(header, certificate) {
        Ok(()) => Ok(()),
        Err(Error::WrongChain) => Err(AuditError::WrongChain),
        Err(e) => Err(AuditError::BadCertificate(e.to_string())),
    }
}

/// Verifies an audit answer from genesis alone: the certificate, the state proof of the
/// subject's log, completeness, subject and order, and for a range its boundaries.
pub fn verify_answer(
    trust: &(impl HeaderTrust + ?Sized),
    answer: &AuditAnswer,
) -> Result<VerifiedAudit, AuditError> {
    let header = &answer.header;
    check_certificate(trust, header, &answer.certificate)?;
    let log = proven_log(answer)?;
    let (size, root) = (log.size(), log.root());
    let subject = &answer.subject;

    let events = match &answer.events {
        AuditEvents::Whole(events) => {
            if events.len() as u64 != size {
                return Err(AuditError::IncompleteHistory {
                    expected: size,
                    got: events.len() as u64,
                });
            }
            let indexed: Vec<IndexedEvent> = events
                .iter()
                .enumerate()
                .map(|(i, e)| IndexedEvent {
                    index: i as u64,
                    event: e.clone(),
                })
                .collect();
            check_subject_and_order(subject, &indexed)?;
            let leaves: Vec<Hash> = events.iter().map(AccessEvent::leaf_hash).collect();
            if log::root_of(&leaves) != root {
                return Err(AuditError::RootMismatch);
            }
            indexed
        }
        AuditEvents::Range {
            from_ms,
            to_ms,
            leaves,
            events,
        } => {
            if leaves.len() as u64 != size {
                return Err(AuditError::IncompleteHistory {
                    expected: size,
                    got: leaves.len() as u64,
                });
            }
            if log::root_of(leaves) != root {
                return Err(AuditError::RootMismatch);
            }
            for ie in events.iter() {
                let committed = usize::try_from(ie.index)
                    .ok()
                    .and_then(|i| leaves.get(i))
                    .ok_or(AuditError::RangeBoundary(
                        "an event index is beyond the log",
                    ))?;
                if ie.event.leaf_hash() != *committed {
                    return Err(AuditError::AlteredEvent { index: ie.index });
                }
            }
            check_subject_and_order(subject, events)?;
            check_range(events, size, *from_ms, *to_ms)?
        }
    };
    Ok(VerifiedAudit {
        subject: subject.clone(),
        range: answer.range(),
        events,
        height: header.height,
        time_ms: header.time_ms,
        header_hash: header.hash(),
        log_size: size,
        log_root: root,
        access_log_size: header.access_log_size,
        access_log_root: header.access_log_root.0,
        header: header.clone(),
    })
}

/// The subject's log as the header's state root commits to it.
fn proven_log(answer: &AuditAnswer) -> Result<LogState, AuditError> {
    let key_hash = crypto::sha256(&answer.subject.state_key());
    let value = answer.log_value.as_deref();
    let value_hash = value.map(crypto::sha256);
    answer
        .log_proof
        .verify(&answer.header.state_root.0, &key_hash, value_hash.as_ref())
        .map_err(|e| AuditError::StateProof(e.to_string()))?;
    match value {
        None => Ok(LogState::default()),
        Some(bytes) => codec::decode(bytes, LOG_VALUE_BYTES_MAX)
            .map_err(|e| AuditError::StateProof(format!("log value: {e}"))),
    }
}

/// Every event is about the subject, and events come in log order: strictly increasing
/// indices, never-decreasing heights and times (blocks append to the log in order).
fn check_subject_and_order(
    subject: &AuditSubject,
    events: &[IndexedEvent],
) -> Result<(), AuditError> {
    for (i, ie) in events.iter().enumerate() {
        if !subject.matches(&ie.event) {
            return Err(AuditError::WrongSubject { index: ie.index });
        }
        if let Some(prev) = i.checked_sub(1).map(|p| &events[p])
            && (ie.index <= prev.index
                || ie.event.height < prev.event.height
                || ie.event.time_ms < prev.event.time_ms)
        {
            return Err(AuditError::OutOfOrder { index: ie.index });
        }
    }
    Ok(())
}

/// A range answer's events are one contiguous run of the log: an optional event before the
/// range, then the events in it, then an optional event after it. Where a side has no boundary
/// event, the run must reach that end of the log. Returns the events in the range.
fn check_range(
    events: &[IndexedEvent],
    size: u64,
    from_ms: u64,
    to_ms: u64,
) -> Result<Vec<IndexedEvent>, AuditError> {
    if from_ms > to_ms {
        return Err(AuditError::RangeBoundary("the range ends before it starts"));
    }
    let (Some(first), Some(last)) = (events.first(), events.last()) else {
        return if size == 0 {
            Ok(Vec::new())
        } else {
            Err(AuditError::RangeBoundary("no events for a non-empty log"))
        };
    };
    if events.windows(2).any(|w| w[1].index != w[0].index + 1) {
        return Err(AuditError::RangeBoundary("the events are not contiguous"));
    }
    let before = first.event.time_ms < from_ms;
    let after = last.event.time_ms > to_ms;
    if !before && first.index != 0 {
        return Err(AuditError::RangeBoundary(
            "no boundary event before the range",
        ));
    }
    if !after && last.index + 1 != size {
        return Err(AuditError::RangeBoundary(
            "no boundary event after the range",
        ));
    }
    // One event cannot lie both before and after the range, so the run never inverts.
    let inner = &events[usize::from(before)..events.len() - usize::from(after)];
    if inner
        .iter()
        .any(|ie| ie.event.time_ms < from_ms || ie.event.time_ms > to_ms)
    {
        return Err(AuditError::RangeBoundary(
            "a boundary event lies inside the run",
        ));
    }
    Ok(inner.to_vec())
}
