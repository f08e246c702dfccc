//! Transactions from peers: each batch checked on a blocking thread (signatures cost), the
//! batches of one peer strictly in the order it sent them.
//!
//! Order matters: the ledger takes a signer's transaction only with a nonce above the last one
//! it committed, so a later transaction admitted and committed before an earlier one of the same
//! signer makes the earlier one stale, and it is dropped everywhere. A peer sends its batches in
//! order over one stream; checking them in parallel let a small later batch overtake a large
//! earlier one (under load a fifth of a hospital's transactions were lost so). One batch per
//! peer is checked at a time; what arrives meanwhile waits, merged into batches of up to
//! [`TX_BATCH_MAX`] (a custodian sends each access record at once, so batches come small and
//! often), at most [`GOSSIP_QUEUE_BYTES_MAX`] of them: a peer that sends faster than this node
//! checks loses its excess, which its own node still holds.

use std::collections::{HashMap, VecDeque};

use cradle_ledger::PublicKey;
use cradle_ledger::codec::BoundedVec;
use tracing::debug;

use super::actor::Driver;
use super::ingress::{Ingress, VerifiedTx};
use crate::wire::TX_BATCH_MAX;

/// Most bytes of one peer's transactions waiting behind the batch being checked.
pub const GOSSIP_QUEUE_BYTES_MAX: usize = 16 * 1024 * 1024;

/// One peer's batches: whether one is being checked, and those waiting, with their bytes.
#[derive(Default)]
pub(super) struct PeerBatches {
    checking: bool,
    waiting: VecDeque<Vec<Vec<u8>>>,
    waiting_bytes: usize,
}

impl PeerBatches {
    /// Queues `batch` behind the others, into the last one while it stays within a batch.
    fn wait(&mut self, batch: Vec<Vec<u8>>) -> Result<(), Vec<Vec<u8>>> {
        let bytes: usize = batch.iter().map(Vec::len).sum();
        if self.waiting_bytes.saturating_add(bytes) > GOSSIP_QUEUE_BYTES_MAX {
            return Err(batch);
        }
        self.waiting_bytes += bytes;
        match self.waiting.back_mut() {
            Some(last) if last.len() + batch.len() <= TX_BATCH_MAX => last.extend(batch),
            _ => self.waiting.push_back(batch),
        }
        Ok(())
    }

    fn next(&mut self) -> Option<Vec<Vec<u8>>> {
        let batch = self.waiting.pop_front()?;
        let bytes: usize = batch.iter().map(Vec::len).sum();
        self.waiting_bytes = self.waiting_bytes.saturating_sub(bytes);
        Some(batch)
    }
}

/// Every peer's, by key (peers are members: a handful).
pub(super) type GossipQueues = HashMap<PublicKey, PeerBatches>;

impl Driver {
    /// Takes a peer's batch: checked now if none of its batches is, else queued behind them.
    pub(super) fn verify_gossip(
        &mut self,
        from: PublicKey,
        batch: BoundedVec<Vec<u8>, TX_BATCH_MAX>,
    ) {
        let fresh = self.fresh(batch.into_inner());
        if fresh.is_empty() {
            return;
        }
        let peer = self.gossip.entry(from).or_default();
        if !peer.checking {
            self.check_batch(from, fresh);
        } else if let Err(dropped) = peer.wait(fresh) {
            debug!(peer = %from, txs = dropped.len(), "peer sends faster than it is checked: dropping a batch");
        }
    }

    /// The peer's batch was checked: its good transactions go in, in order, then its next one.
    pub(super) fn gossip_checked(&mut self, from: PublicKey, txs: Vec<VerifiedTx>) {
        for tx in txs {
            let _ = self.admit(tx, false, None);
        }
        if let Some(peer) = self.gossip.get_mut(&from) {
            peer.checking = false;
        }
        while let Some(next) = self.gossip.get_mut(&from).and_then(PeerBatches::next) {
            let fresh = self.fresh(next);
            if !fresh.is_empty() {
                self.check_batch(from, fresh);
                break;
            }
        }
    }

    /// A transaction's hash is the hash of its canonical bytes: what the mempool already holds
    /// is skipped without decoding or checking it again.
    fn fresh(&self, batch: Vec<Vec<u8>>) -> Vec<Vec<u8>> {
        batch
            .into_iter()
            .filter(|b| !self.mempool.contains(&cradle_ledger::crypto::sha256(b)))
            .collect()
    }

    fn check_batch(&mut self, from: PublicKey, batch: Vec<Vec<u8>>) {
        self.gossip.entry(from).or_default().checking = true;
        let chain_id = self.consortium.chain_id;
        let tx_max = self.consortium.limits.tx_bytes_max as usize;
        let ingress = self.ingress_tx.clone();
        let metrics = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            let txs = crate::verify::verify_batch(batch, &chain_id, tx_max, &metrics, &from);
            // Always answered, even empty: the peer's next batch waits for it. Blocking on a
            // full mailbox holds one blocking thread per peer at most.
            let _ = ingress.blocking_send(Ingress::Gossiped { from, txs });
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_batches_merge_in_order_and_the_queue_is_bounded_by_bytes() {
        let mut peer = PeerBatches::default();
        for i in 0..5u8 {
            peer.wait(vec![vec![i; 10], vec![i; 10]]).unwrap();
        }
        let merged = peer.next().unwrap();
        assert_eq!(merged.len(), 10, "five small batches wait as one");
        assert!(
            merged.windows(2).all(|w| w[0][0] <= w[1][0]),
            "in arrival order"
        );
        assert!(peer.next().is_none());
        assert_eq!(peer.waiting_bytes, 0);

        let big = vec![vec![0u8; 1024 * 1024]; 16];
        peer.wait(big).unwrap();
        assert!(peer.wait(vec![vec![1]]).is_err(), "over the byte bound");
        assert!(peer.next().is_some());
        assert!(peer.wait(vec![vec![1]]).is_ok(), "room again once checked");
    }
}
