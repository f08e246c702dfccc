//! Transactions: admitting a verified one to the mempool (with its receipt waiter), and
//! gossiping batches to and from peers.

use std::sync::atomic::Ordering;
use std::time::Instant;

use cradle_genesis::clock::now_us;
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::state::StateExt;
use cradle_ledger::tx::NONCE_AHEAD_MAX_US;
use cradle_ledger::{Hash, PublicKey};
use tokio::sync::oneshot;
use tracing::{debug, error, warn};

use super::actor::Driver;
use super::ingress::{Ingress, SubmitError, VerifiedTx};
use super::receipts::Receipt;
use crate::mempool::SignerLimit;
use crate::wire::{NetMessage, TX_BATCH_MAX};

/// Most peer transaction batches verified at once; further ones are dropped until one finishes.
pub const GOSSIP_VERIFY_TASKS_MAX: usize = 8;
/// Most pending transactions of one member (a quarter of the pool's bytes at most, too).
pub const MEMBER_PENDING_TXS_MAX: usize = 20_000;
/// Most pending transactions of one patient: she grants and revokes by hand.
pub const PATIENT_PENDING_TXS_MAX: usize = 64;
/// Most pending bytes of one patient.
pub const PATIENT_PENDING_BYTES_MAX: usize = 1024 * 1024;

impl Driver {
    /// Puts a verified transaction in the mempool, gossiping it on if it came from a client.
    /// A `receipt` waiter is registered in the same step, and only if the mempool takes it.
    pub(super) fn admit(
        &mut self,
        tx: VerifiedTx,
        from_client: bool,
        receipt: Option<oneshot::Sender<Receipt>>,
    ) -> Result<Hash, SubmitError> {
        if receipt.is_some() && !self.receipts.has_room() {
            return Err(SubmitError::Busy);
        }
        // The ledger refuses a nonce far beyond its block's time; refuse it here before it takes
        // space (with the same bound against this node's clock).
        let horizon = now_us().saturating_add(NONCE_AHEAD_MAX_US);
        if tx.tx.tx.nonce > horizon {
            self.metrics.txs_rejected.fetch_add(1, Ordering::Relaxed);
            return Err(SubmitError::Invalid(format!(
                "nonce {} is beyond {horizon}: nonces follow the clock in microseconds",
                tx.tx.tx.nonce
            )));
        }
        // Only a key the ledger knows takes space: a member, or an enrolled patient, each held
        // to its share, so throwaway keys cannot fill the pool and delay access records.
        let signer = tx.tx.tx.signer;
        let limit = if self.consortium.member(&signer).is_some() {
            SignerLimit {
                txs: MEMBER_PENDING_TXS_MAX,
                bytes: self.mempool.bytes_max() / 4,
            }
        } else if self
            .store
            .patient(&signer)
            .map_err(|e| SubmitError::Invalid(format!("state unavailable: {e}")))?
            .is_some()
        {
            SignerLimit {
                txs: PATIENT_PENDING_TXS_MAX,
                bytes: PATIENT_PENDING_BYTES_MAX,
            }
        } else {
            self.metrics.txs_rejected.fetch_add(1, Ordering::Relaxed);
            return Err(SubmitError::UnknownSigner);
        };
        let last = self
            .store
            .last_nonce(&signer)
            .map_err(|e| SubmitError::Invalid(format!("state unavailable: {e}")))?;
        let result = self
            .mempool
            .insert_limited(tx.hash, tx.tx, tx.encoded.len(), last, limit);
        match result {
            Ok(()) => {
                self.admitted_at.insert(tx.hash, Instant::now());
                if let Some(waiter) = receipt {
                    self.receipts.register(tx.hash, waiter);
                }
                if from_client {
                    self.outbox.push(tx.encoded);
                    if self.outbox.len() >= TX_BATCH_MAX {
                        self.flush_outbox();
                    }
                }
                Ok(tx.hash)
            }
            Err(e) => {
                self.metrics.txs_rejected.fetch_add(1, Ordering::Relaxed);
                Err(e.into())
            }
        }
    }

    pub(super) fn flush_outbox(&mut self) {
        if self.outbox.is_empty() {
            return;
        }
        let batch = std::mem::take(&mut self.outbox);
        match BoundedVec::new(batch) {
            Ok(batch) => self
                .network
                .broadcast(NetMessage::Txs(batch).encode().into()),
            Err(e) => error!(error = %e, "transaction batch over its bound"),
        }
    }

    /// Checks a peer's transaction batch on a blocking thread (signatures cost), then hands
    /// the good ones back to the driver.
    pub(super) fn verify_gossip(
        &mut self,
        from: PublicKey,
        batch: BoundedVec<Vec<u8>, TX_BATCH_MAX>,
    ) {
        // A transaction's hash is the hash of its canonical bytes: skip what we already hold
        // without decoding or verifying it again.
        let fresh: Vec<Vec<u8>> = batch
            .into_inner()
            .into_iter()
            .filter(|b| !self.mempool.contains(&cradle_ledger::crypto::sha256(b)))
            .collect();
        if fresh.is_empty() {
            return;
        }
        // Bounded: a peer flooding batches cannot queue unlimited signature work.
        if self.gossip_verifying.load(Ordering::Acquire) >= GOSSIP_VERIFY_TASKS_MAX {
            debug!(peer = %from, txs = fresh.len(), "busy verifying gossip: dropping a batch");
            return;
        }
        self.gossip_verifying.fetch_add(1, Ordering::AcqRel);
        let chain_id = self.consortium.chain_id;
        let tx_max = self.consortium.limits.tx_bytes_max as usize;
        let ingress = self.ingress_tx.clone();
        let metrics = self.metrics.clone();
        let verifying = self.gossip_verifying.clone();
        tokio::task::spawn_blocking(move || {
            let txs = crate::verify::verify_batch(fresh, &chain_id, tx_max, &metrics, &from);
            verifying.fetch_sub(1, Ordering::AcqRel);
            if !txs.is_empty() && ingress.try_send(Ingress::Gossiped { txs }).is_err() {
                warn!(peer = %from, "driver mailbox full: dropping gossiped transactions");
            }
        });
    }
}
