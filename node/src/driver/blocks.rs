//! Blocks: proposing one from the mempool, validating a peer's proposal, and committing a
//! decided block, which also tells every waiter its receipt.

use std::collections::BTreeMap;
use std::sync::atomic::Ordering;
use std::time::Instant;

use cradle_consensus::{Height, Input, Value};
use cradle_ledger::Hash;
use cradle_ledger::PublicKey;
use cradle_ledger::block::{self, Block, ChainTip, Executed, FinalizedBlock};
use cradle_ledger::tx::TxBody;
use tracing::{debug, info, warn};

use super::DriverError;
use super::actor::Driver;
use super::receipts::Receipt;
use cradle_genesis::clock::now_ms;

impl Driver {
    /// Builds and proposes a block once the block interval has passed, or at once when the
    /// mempool already holds a full block.
    pub(super) fn maybe_propose(&mut self, now: Instant) -> Result<(), DriverError> {
        let Some((height, round, at)) = self.propose else {
            return Ok(());
        };
        let full = self.mempool.len() >= self.consortium.limits.block_txs_max as usize;
        if now < at && !full {
            return Ok(());
        }
        self.propose = None;
        if height != self.core.height() || height != self.tip.height + 1 {
            return Ok(());
        }
        let limits = &self.consortium.limits;
        let candidates = self.mempool.candidates(
            limits.block_txs_max as usize,
            limits.block_bytes_max as usize,
        );
        let time_ms = now_ms().max(self.tip.time_ms + 1);
        let built = block::build_block(
            &*self.store,
            &self.consortium,
            &self.tip,
            time_ms,
            self.me,
            candidates,
        )?;
        for (hash, reason) in &built.rejected {
            self.drop_refused(hash, reason);
        }
        let block = built.block;
        debug!(height, round, txs = block.txs.len(), "proposing");
        self.executed.insert(block.id(), built.executed);
        self.feed(Input::ProposeValue {
            height,
            round,
            value: block,
        })
    }

    /// The ledger's verdict on a proposed block: envelope, time, signatures (those this node
    /// has not checked already) and the rules, with the header's commitments.
    pub(super) fn validate(&mut self, height: Height, block: &Block) -> bool {
        let id = block.id();
        if self.executed.contains_key(&id) {
            return true;
        }
        if height != self.tip.height + 1 {
            return false;
        }
        let result = (|| -> Result<Executed, cradle_ledger::Error> {
            let envelope = block::check_envelope(&self.consortium, &self.tip, block)?;
            let horizon = now_ms() + self.config.clock_drift_ms_max;
            if block.header.time_ms > horizon {
                return Err(cradle_ledger::Error::TimeNotIncreasing {
                    got: block.header.time_ms,
                    prev: horizon,
                });
            }
            // The mempool admits a transaction only once its signatures are checked.
            let checked = envelope.verify_signatures_except(&self.consortium.chain_id, |hash| {
                self.mempool.contains(hash)
            })?;
            block::execute(&*self.store, &self.consortium, checked)
        })();
        match result {
            Ok(executed) => {
                self.executed.insert(id, executed);
                true
            }
            Err(e) => {
                warn!(height, error = %e, "refusing proposed block");
                false
            }
        }
    }

    /// Writes a decided block and its certificate in one synced batch, then moves on.
    pub(super) fn commit(
        &mut self,
        fb: FinalizedBlock,
        from_sync: bool,
    ) -> Result<(), DriverError> {
        let id = fb.block.id();
        let header = &fb.block.header;
        // Never break: the chain grows one height at a time, and only final blocks are written.
        assert!(
            header.height == self.tip.height + 1,
            "commit of height {} on tip {}",
            header.height,
            self.tip.height
        );
        if let Err(e) = fb.verify_certificate(&self.consortium) {
            panic!(
                "refusing to write block {} without a valid certificate: {e}",
                header.height
            );
        }
        let executed = match self.executed.remove(&id) {
            Some(e) => e,
            None => {
                let checked = block::check_block(&self.consortium, &self.tip, &fb.block)?;
                block::execute(&*self.store, &self.consortium, checked)?
            }
        };
        self.store.commit_block(&fb, &executed)?;
        let header = &fb.block.header;
        let height = header.height;
        self.tip = ChainTip::of(header);
        self.executed.clear();
        self.propose = None;
        let now = Instant::now();
        self.metrics
            .block_time
            .observe_s(now.duration_since(self.last_commit).as_secs_f64());
        self.last_commit = now;
        let mut last_nonce: BTreeMap<PublicKey, u64> = BTreeMap::new();
        for (index, stx) in fb.block.txs.iter().enumerate() {
            let hash = stx.hash();
            self.mempool.remove(&hash);
            let index = u32::try_from(index).unwrap_or(u32::MAX);
            self.receipts
                .resolve(&hash, Receipt::Committed { height, index });
            if let Some(t) = self.admitted_at.remove(&hash) {
                self.metrics
                    .commit_latency
                    .observe_s(now.duration_since(t).as_secs_f64());
            }
            let n = last_nonce.entry(stx.tx.signer).or_insert(0);
            *n = (*n).max(stx.tx.nonce);
        }
        for (signer, nonce) in last_nonce {
            for hash in self.mempool.drop_stale(&signer, nonce) {
                self.admitted_at.remove(&hash);
                self.receipts.resolve(
                    &hash,
                    Receipt::Rejected {
                        reason: format!(
                            "a committed transaction of the same signer used nonce {nonce} or above"
                        ),
                        stale_nonce: true,
                    },
                );
            }
        }
        self.metrics
            .txs_committed
            .fetch_add(fb.block.txs.len() as u64, Ordering::Relaxed);
        self.metrics
            .access_events
            .fetch_add(executed.events.len() as u64, Ordering::Relaxed);
        self.metrics.height.store(header.height, Ordering::Relaxed);
        if from_sync {
            self.metrics.blocks_synced.fetch_add(1, Ordering::Relaxed);
        }
        info!(
            height = header.height,
            txs = fb.block.txs.len(),
            hash = %hex::encode(&id.0[..8]),
            "committed"
        );
        self.recheck_waited()?;
        self.publish_status()
    }

    /// Drops a pending transaction the rules refused and tells its waiter why.
    fn drop_refused(&mut self, hash: &Hash, reason: &cradle_ledger::Error) {
        debug!(tx = %hex::encode(hash), %reason, "dropping transaction the rules refuse");
        self.mempool.remove(hash);
        self.admitted_at.remove(hash);
        self.metrics.txs_rejected.fetch_add(1, Ordering::Relaxed);
        self.receipts.resolve(
            hash,
            Receipt::Rejected {
                reason: reason.to_string(),
                stale_nonce: matches!(reason, cradle_ledger::Error::StaleNonce { .. }),
            },
        );
    }

    /// After a commit, checks again the access records someone waits on: one the new state
    /// refuses (its grant was revoked or expired after the custodian decided) is dropped at once,
    /// so the clinician hears it now rather than when this node next proposes. Only access
    /// records: the custodian decided them on committed state, so they never depend on another
    /// pending transaction, and a dry run against the tip judges them as the next block would.
    fn recheck_waited(&mut self) -> Result<(), DriverError> {
        let mut waited: Vec<_> = self
            .receipts
            .waited()
            .filter_map(|h| self.mempool.get(h))
            .filter(|t| matches!(t.tx.body, TxBody::RecordAccess(_)))
            .cloned()
            .collect();
        if waited.is_empty() {
            return Ok(());
        }
        waited.sort_by_key(|t| (t.tx.signer, t.tx.nonce));
        let time_ms = now_ms().max(self.tip.time_ms + 1);
        let dry = block::build_block(
            &*self.store,
            &self.consortium,
            &self.tip,
            time_ms,
            self.me,
            waited,
        )?;
        for (hash, reason) in &dry.rejected {
            self.drop_refused(hash, reason);
        }
        Ok(())
    }
}
