//! Blocks: proposing one from the mempool, validating a peer's proposal, and committing a
//! decided block, which also tells every waiter its receipt.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cradle_consensus::{Core, Height, Input, SignedProposal, Value};
use cradle_ledger::PublicKey;
use cradle_ledger::block::{self, Block, ChainTip, Executed, FinalizedBlock};
use cradle_ledger::tx::TxBody;
use cradle_ledger::{Consortium, Hash};
use tracing::{debug, info, warn};

use super::DriverError;
use super::actor::Driver;
use super::receipts::Receipt;
use cradle_genesis::clock::now_ms;

/// How often the committed blocks are summed up at INFO: a line per block (each is at DEBUG)
/// came to about 20 a second under load, hundreds of megabytes of log a day.
const COMMIT_LOG_EVERY: Duration = Duration::from_secs(10);

/// The blocks committed since the last INFO line.
#[derive(Default)]
pub(super) struct CommitLog {
    /// When the last line was logged; none yet, so the node's first block logs at once.
    since: Option<Instant>,
    blocks: u64,
    txs: u64,
}

impl CommitLog {
    /// Counts a committed block; the first, and then one every [`COMMIT_LOG_EVERY`], is logged
    /// with the height reached and what came since the last line.
    fn note(&mut self, now: Instant, height: Height, txs: usize) {
        self.blocks += 1;
        self.txs = self.txs.saturating_add(txs as u64);
        if self
            .since
            .is_none_or(|since| now.duration_since(since) >= COMMIT_LOG_EVERY)
        {
            info!(height, blocks = self.blocks, txs = self.txs, "committed");
            *self = Self {
                since: Some(now),
                blocks: 0,
                txs: 0,
            };
        }
    }
}

/// Where a committed block's adoption of a member set is learnt.
pub(super) enum Adoption {
    /// From the store, whose state is the block's: [`crate::members::Members::committed`] reads it.
    InStore,
    /// Already taken up by catch-up, which executed the block on a run's state.
    Known(Option<(u64, Arc<Consortium>)>),
}

/// Whether a peer's proposal names, in its block's header, the validator that built the block:
/// the proposer of its round for a fresh block, the proposer of an earlier round for a
/// re-proposed one ([`Core::may_have_built`] says why). A validator cannot build a block and
/// pass it off as another's.
///
/// This is a check of the proposal, not of the block, and runs before the core sees the
/// proposal: the core asks the ledger once per block whatever round proposes it, and the same
/// block may rightly be re-proposed by another validator in a later round. A block that
/// arrives by sync with its commit certificate is not checked here: the quorum that decided it
/// has already checked its proposal.
pub(super) fn names_its_builder(core: &Core<Block>, proposal: &SignedProposal<Block>) -> bool {
    core.validators()
        .index_of(&proposal.value.header.proposer.0)
        .is_some_and(|builder| core.may_have_built(&proposal.proposal, builder))
}

impl Driver {
    /// How long the proposer still waits before it builds its block: the pacing's batching
    /// window from the first pending transaction, or the heartbeat when none is pending; no wait
    /// at all when the mempool already holds a full block.
    pub(super) fn propose_wait(&self, now: Instant) -> Duration {
        let pending = self.mempool.len();
        if pending >= self.consortium.limits.block_txs_max as usize {
            return Duration::ZERO;
        }
        let ms = |since: Instant| {
            u64::try_from(now.saturating_duration_since(since).as_millis()).unwrap_or(u64::MAX)
        };
        let pending_for = self.pending_since.filter(|_| pending > 0).map(ms);
        Duration::from_millis(
            self.config
                .pacing
                .wait_ms(ms(self.last_commit), pending_for),
        )
    }

    /// Builds and proposes a block once [`Driver::propose_wait`] has passed.
    pub(super) fn maybe_propose(&mut self, now: Instant) -> Result<(), DriverError> {
        let Some((height, round)) = self.propose else {
            return Ok(());
        };
        if !self.propose_wait(now).is_zero() {
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
        if block.txs.is_empty() {
            // Whatever is pending cannot go in now (the rules refused it): wait for the next
            // arrival or the heartbeat rather than building empty blocks back to back.
            self.pending_since = None;
        }
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
        if let Some(written) = self.written_ahead.get(&header.height) {
            // Catch-up wrote this height already, and says so to the driver next. Two
            // certificates for two blocks of one height would mean more than a third of the
            // voting power signed both: stop rather than pick one.
            if *written != id {
                return Err(DriverError::CorruptState(format!(
                    "the consensus decided a block at height {} other than the certified one \
                     catch-up wrote there",
                    header.height
                )));
            }
            info!(
                height = header.height,
                "decided a block catch-up already wrote"
            );
            return Ok(());
        }
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
        self.committed(&fb, &executed, from_sync, Adoption::InStore)
    }

    /// After a block is on disk (written alone by [`Driver::commit`], or in a run by catch-up):
    /// what the core said at its height leaves, waiters hear their receipts, the mempool
    /// forgets its transactions, and a member set it adopted is taken up.
    pub(super) fn committed(
        &mut self,
        fb: &FinalizedBlock,
        executed: &Executed,
        from_sync: bool,
        adoption: Adoption,
    ) -> Result<(), DriverError> {
        let id = fb.block.id();
        // The block's synced write superseded any consensus record of its height.
        self.drop_superseded(fb.block.header.height);
        // The block is on disk: what the core said at its height may leave now.
        self.release()?;
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
                debug!(tx = %hex::encode(hash), %signer, nonce, "dropping a transaction a later one of its signer overtook");
                self.admitted_at.remove(&hash);
                self.metrics.txs_rejected.fetch_add(1, Ordering::Relaxed);
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
        self.note_commits(now, fb.block.txs.len());
        self.metrics
            .access_events
            .fetch_add(executed.events.len() as u64, Ordering::Relaxed);
        self.metrics.height.store(header.height, Ordering::Relaxed);
        if from_sync {
            self.metrics.blocks_synced.fetch_add(1, Ordering::Relaxed);
        }
        debug!(
            height = header.height,
            txs = fb.block.txs.len(),
            hash = %hex::encode(&id.0[..8]),
            "committed block"
        );
        self.commit_log.note(now, header.height, fb.block.txs.len());
        self.follow_members(height, adoption)?;
        self.recheck_waited()?;
        self.publish_status()
    }

    /// After block `height`: hands a set it adopted to the core (for its first height, two
    /// on), and when the next height starts a new set, takes it up: the next block is built,
    /// checked and certified by it, and the network admits exactly its members.
    fn follow_members(&mut self, height: u64, adoption: Adoption) -> Result<(), DriverError> {
        let adopted = match adoption {
            Adoption::InStore => self.members.committed(height, &*self.store)?,
            Adoption::Known(adopted) => adopted,
        };
        if let Some((activation, adopted)) = adopted {
            info!(
                height,
                activation,
                epoch = adopted.epoch,
                members = adopted.members.len(),
                validators = adopted.validators().len(),
                "governance change adopted"
            );
            self.core
                .set_validators_from(activation, adopted.validators().clone())?;
        }
        let next = self.members.current();
        if next.epoch != self.consortium.epoch {
            info!(
                height = height + 1,
                epoch = next.epoch,
                validator = next.validators().index_of(&self.me.0).is_some(),
                "member set in force"
            );
            self.network
                .set_members(crate::members::peers_of(&next, &self.me));
            if next.timeouts != self.consortium.timeouts {
                let timeouts = next.timeouts.unwrap_or(self.config.consensus);
                info!(?timeouts, "consensus timeouts in force");
                self.core.set_config(timeouts)?;
            }
            self.consortium = next;
        }
        Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;
    use cradle_consensus::{Config, Proposal, Round};
    use cradle_ledger::Digest32;
    use cradle_ledger::Policy;
    use cradle_ledger::codec::BoundedVec;
    use cradle_testkit::TestConsortium;

    /// A proposal at height 1 of `round`, signed by nobody (this check reads no signature), for
    /// a block whose header names `builder`.
    fn proposal(
        core: &Core<Block>,
        round: Round,
        valid_round: Option<Round>,
        builder: PublicKey,
    ) -> SignedProposal<Block> {
        let block = Block {
            header: block::BlockHeader {
                chain_id: Digest32(*core.chain_id()),
                height: 1,
                time_ms: 1,
                prev_hash: Digest32(*core.chain_id()),
                proposer: builder,
                tx_count: 0,
                tx_root: Digest32([0; 32]),
                state_root: Digest32([0; 32]),
                access_log_size: 0,
                access_log_root: Digest32([0; 32]),
                next_members_hash: Digest32([0; 32]),
            },
            txs: BoundedVec::empty(),
        };
        SignedProposal {
            proposal: Proposal {
                height: 1,
                round,
                value: block.id(),
                valid_round,
                proposer: core.proposer(1, round),
            },
            signature: [0; 64],
            value: block,
        }
    }

    #[test]
    fn a_proposal_whose_header_names_another_validator_is_refused() {
        let t = TestConsortium::new(Policy::default());
        let c = &t.consortium;
        let core: Core<Block> = Core::new(
            Config::default(),
            c.validators().clone(),
            c.chain_id,
            None,
            1,
            None,
        )
        .expect("a core for the test consortium");
        let key_of = |round: Round| {
            let index = usize::from(core.proposer(1, round));
            t.validators()[index].public_key()
        };
        let (p0, p1, p2) = (key_of(0), key_of(1), key_of(2));
        assert!(
            p0 != p1 && p1 != p2 && p0 != p2,
            "three validators take turns"
        );

        assert!(names_its_builder(&core, &proposal(&core, 1, None, p1)));
        assert!(
            !names_its_builder(&core, &proposal(&core, 1, None, p0)),
            "round 1's proposer passes off a block as round 0's"
        );
        assert!(
            !names_its_builder(&core, &proposal(&core, 1, None, t.regulator.public_key())),
            "a member without voting power named as the proposer"
        );
        // Round 2 re-proposes the block that had a quorum in round 1: it was built in round 0
        // or 1, by their proposers, never by round 2's.
        assert!(names_its_builder(&core, &proposal(&core, 2, Some(1), p0)));
        assert!(names_its_builder(&core, &proposal(&core, 2, Some(1), p1)));
        assert!(!names_its_builder(&core, &proposal(&core, 2, Some(1), p2)));
    }
}
