//! The bytes of inbound messages each peer has waiting for the node.
//!
//! The event channel bounds how many messages wait ([`super::EVENTS_MAX`]), not their size: at
//! the 16 MiB message cap one member filling it would make the node hold 64 GiB. So every message
//! handed to the node carries an [`InboundPermit`] for its bytes, charged to its sender and to the
//! total over all peers, and given back when the node drops the event, that is once it has handled
//! it. A reader whose peer is over its own budget drops the new message (counted) rather than
//! delivering it: a flooding member loses its own messages, and because each peer's budget is a
//! small share of the total, the members that do not flood still find room for theirs.

use super::handle::lock;
use cradle_ledger::PublicKey;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};

/// Bytes queued toward the node, by sender and in all.
pub(crate) struct InboundBudget {
    peer_bytes_max: usize,
    total_bytes_max: usize,
    queued: Mutex<Queued>,
}

#[derive(Default)]
struct Queued {
    total: usize,
    /// Only peers with bytes queued; readers exist only for members, so at most one entry per
    /// member.
    by_peer: HashMap<PublicKey, usize>,
}

/// Why a message was not charged.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum OverBudget {
    /// The sender already has its budget's worth of bytes waiting.
    Peer { queued: usize },
    /// All peers together have the total's worth waiting.
    Total { queued: usize },
}

impl InboundBudget {
    pub(crate) fn new(peer_bytes_max: usize, total_bytes_max: usize) -> Arc<Self> {
        Arc::new(Self {
            peer_bytes_max,
            total_bytes_max,
            queued: Mutex::new(Queued::default()),
        })
    }

    /// Charges `bytes` to `peer` if both its budget and the total have room; the permit gives
    /// them back when dropped. Charges nothing when it refuses.
    pub(crate) fn try_charge(
        self: &Arc<Self>,
        peer: PublicKey,
        bytes: usize,
    ) -> Result<InboundPermit, OverBudget> {
        let mut q = lock(&self.queued);
        let mine = q.by_peer.get(&peer).copied().unwrap_or(0);
        let peer_after = mine
            .checked_add(bytes)
            .filter(|n| *n <= self.peer_bytes_max)
            .ok_or(OverBudget::Peer { queued: mine })?;
        let total_after = q
            .total
            .checked_add(bytes)
            .filter(|n| *n <= self.total_bytes_max)
            .ok_or(OverBudget::Total { queued: q.total })?;
        q.by_peer.insert(peer, peer_after);
        q.total = total_after;
        debug_assert!(q.by_peer.values().sum::<usize>() == q.total);
        Ok(InboundPermit {
            budget: self.clone(),
            peer,
            bytes,
        })
    }

    fn release(&self, peer: &PublicKey, bytes: usize) {
        let mut q = lock(&self.queued);
        // Every release matches one charge, so neither count can go below zero; saturating
        // keeps a bookkeeping slip from wrapping into a budget that is never free again.
        q.total = q.total.saturating_sub(bytes);
        if let Some(mine) = q.by_peer.get_mut(peer) {
            *mine = mine.saturating_sub(bytes);
            if *mine == 0 {
                q.by_peer.remove(peer);
            }
        }
    }

    /// Bytes `peer` has waiting now.
    #[cfg(test)]
    fn queued(&self, peer: &PublicKey) -> usize {
        lock(&self.queued).by_peer.get(peer).copied().unwrap_or(0)
    }
}

/// The bytes of one delivered message, charged to its sender until this is dropped.
pub struct InboundPermit {
    budget: Arc<InboundBudget>,
    peer: PublicKey,
    bytes: usize,
}

impl Drop for InboundPermit {
    fn drop(&mut self) {
        self.budget.release(&self.peer, self.bytes);
    }
}

impl std::fmt::Debug for InboundPermit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("InboundPermit")
            .field("bytes", &self.bytes)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> PublicKey {
        PublicKey([i; 32])
    }

    #[test]
    fn a_peer_over_its_budget_is_refused_while_another_still_fits() {
        let budget = InboundBudget::new(100, 250);
        let held: Vec<_> = (0..4)
            .map(|_| {
                budget
                    .try_charge(key(1), 25)
                    .expect("within peer 1's budget")
            })
            .collect();
        assert_eq!(
            budget.try_charge(key(1), 1).err(),
            Some(OverBudget::Peer { queued: 100 })
        );
        let other = budget
            .try_charge(key(2), 100)
            .expect("peer 2 has its own budget");
        assert_eq!(budget.queued(&key(1)), 100);
        // 200 of 250 taken: a third peer fits 50 bytes, not 51.
        assert_eq!(
            budget.try_charge(key(3), 51).err(),
            Some(OverBudget::Total { queued: 200 })
        );
        assert_eq!(budget.queued(&key(3)), 0, "a refusal charges nothing");
        let third = budget
            .try_charge(key(3), 50)
            .expect("the rest of the total");
        drop(held);
        assert_eq!(budget.queued(&key(1)), 0, "dropped permits give bytes back");
        assert!(budget.try_charge(key(1), 100).is_ok());
        drop((other, third));
    }

    #[test]
    fn an_absurd_size_does_not_wrap() {
        let budget = InboundBudget::new(usize::MAX, usize::MAX);
        let _one = budget.try_charge(key(1), 1).expect("fits");
        assert!(budget.try_charge(key(1), usize::MAX).is_err());
    }
}
