//! Commit receipts: whoever submits a transaction and asks to wait is told, once, whether it
//! committed (at which height and index) or why the ledger dropped it.
//!
//! This is the driver's answer to raft-rs's `Ready`: the driver is the only one that knows when a
//! block is written or a pending transaction is dropped, so it owns the waiters. A waiter is
//! registered in the same step that admits its transaction to the mempool, so no outcome can
//! slip between the two.

use std::collections::HashMap;

use cradle_ledger::Hash;
use tokio::sync::oneshot;

/// Most transactions waited on at once. Every waited transaction is also in the mempool, so
/// this only keeps the map smaller than the pool when many clients wait.
pub const WAITERS_MAX: usize = 16_384;

/// What became of a submitted transaction.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Receipt {
    /// Written in a committed block, at `index` among its transactions.
    Committed { height: u64, index: u32 },
    /// Dropped: the ledger's rules refused it, or a committed transaction made it stale
    /// (`stale_nonce`: the same content signed again with a fresh nonce may yet commit).
    Rejected { reason: String, stale_nonce: bool },
}

/// The waiters, by transaction hash.
#[derive(Default)]
pub struct Receipts {
    waiters: HashMap<Hash, oneshot::Sender<Receipt>>,
}

impl Receipts {
    /// Whether one more waiter fits.
    pub fn has_room(&self) -> bool {
        self.waiters.len() < WAITERS_MAX
    }

    /// Registers the waiter of an admitted transaction. The caller checked [`Self::has_room`]
    /// before admitting it.
    pub fn register(&mut self, hash: Hash, waiter: oneshot::Sender<Receipt>) {
        assert!(
            self.waiters.len() < WAITERS_MAX,
            "receipt waiters over their bound"
        );
        self.waiters.insert(hash, waiter);
    }

    /// The hashes someone waits on.
    pub fn waited(&self) -> impl Iterator<Item = &Hash> {
        self.waiters.keys()
    }

    /// Tells the waiter of `hash`, if any, what became of it. A waiter that went away (its
    /// client disconnected) is simply forgotten.
    pub fn resolve(&mut self, hash: &Hash, receipt: Receipt) {
        if let Some(waiter) = self.waiters.remove(hash) {
            let _ = waiter.send(receipt);
        }
    }

    /// Forgets waiters whose receiving side is gone.
    pub fn prune_closed(&mut self) {
        self.waiters.retain(|_, w| !w.is_closed());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_waiter_hears_once_and_is_forgotten() {
        let mut r = Receipts::default();
        let (tx, mut rx) = oneshot::channel();
        r.register([1; 32], tx);
        assert!(r.waited().any(|h| h == &[1; 32]));
        r.resolve(
            &[1; 32],
            Receipt::Committed {
                height: 7,
                index: 2,
            },
        );
        assert_eq!(
            rx.try_recv().ok(),
            Some(Receipt::Committed {
                height: 7,
                index: 2
            })
        );
        assert_eq!(r.waited().count(), 0);
        // A second outcome for the same hash reaches no one and does not panic.
        r.resolve(
            &[1; 32],
            Receipt::Rejected {
                reason: "late".into(),
                stale_nonce: false,
            },
        );
    }

    #[test]
    fn closed_waiters_are_pruned() {
        let mut r = Receipts::default();
        let (tx, rx) = oneshot::channel();
        r.register([2; 32], tx);
        drop(rx);
        r.prune_closed();
        assert_eq!(r.waited().count(), 0);
    }
}
