//! Transactions: admitting a verified one to the mempool (with its receipt waiter), and
//! gossiping batches to and from peers.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cradle_genesis::clock::now_us;
use cradle_ledger::Hash;
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::state::StateExt;
use cradle_ledger::tx::NONCE_AHEAD_MAX_US;
use tokio::sync::oneshot;
use tracing::{debug, error};

use super::actor::Driver;
use super::ingress::{SubmitError, VerifiedTx};
use super::receipts::Receipt;
use crate::mempool::{Lane, SignerLimit};
use crate::wire::{NetMessage, TX_BATCH_MAX};
use cradle_ledger::tx::TxBody;

/// Most pending transactions of one patient: she grants and revokes by hand.
pub const PATIENT_PENDING_TXS_MAX: usize = 64;
/// Most pending bytes of one patient.
pub const PATIENT_PENDING_BYTES_MAX: usize = 1024 * 1024;
/// The most of the ordinary lane one member may hold, as a fraction (1/4).
pub const MEMBER_ORDINARY_SHARE: usize = 4;
/// How much of the cluster's recent commit rate may wait in the ordinary lane: beyond it a
/// member's new transaction would wait longer than this, and is refused with 503 instead.
pub const BACKLOG_TARGET: Duration = Duration::from_millis(500);
/// Over how long the commit rate is measured.
pub const BACKLOG_WINDOW: Duration = Duration::from_secs(2);
/// The bound is never below this, so a quiet cluster takes a burst.
pub const BACKLOG_FLOOR_TXS: usize = 1_000;

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
        // to its share of its lane, so throwaway keys cannot fill the pool, and a member's
        // access records wait in a lane no flood can take.
        let signer = tx.tx.tx.signer;
        let (lane, limit) = self.lane_of(&tx)?;
        if from_client
            && lane == Lane::Ordinary
            && self.consortium.signer(&signer).is_some()
            && self.backlogged()
        {
            self.metrics.txs_backlogged.fetch_add(1, Ordering::Relaxed);
            return Err(SubmitError::Busy);
        }
        let last = self
            .store
            .last_nonce(&signer)
            .map_err(|e| SubmitError::Invalid(format!("state unavailable: {e}")))?;
        let result =
            self.mempool
                .insert_limited(tx.hash, tx.tx, tx.encoded.len(), last, lane, limit);
        match result {
            Ok(evicted) => {
                self.evicted(&evicted);
                let now = Instant::now();
                self.admitted_at.insert(tx.hash, now);
                if self.pending_since.is_none() || self.mempool.len() == 1 {
                    self.pending_since = Some(now);
                }
                if let Some(waiter) = receipt {
                    self.receipts.register(tx.hash, waiter);
                }
                if from_client {
                    self.outbox.push(tx.encoded);
                    // An access record goes out at once: a clinician waits on it, and every
                    // proposer should hold it.
                    if lane == Lane::Access || self.outbox.len() >= TX_BATCH_MAX {
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

    /// Most ordinary transactions pending before members' new ones are refused: about
    /// [`BACKLOG_TARGET`] of the commits of the last [`BACKLOG_WINDOW`], at least
    /// [`BACKLOG_FLOOR_TXS`] (an idle cluster takes a burst), at most the lane. Patients and
    /// access records are never held to it, nor are transactions that peers pass on (their
    /// sender's node took them).
    fn backlog_cap(&self) -> usize {
        let committed = self.recent_committed;
        let per_target =
            committed as f64 / BACKLOG_WINDOW.as_secs_f64() * BACKLOG_TARGET.as_secs_f64();
        (per_target as usize)
            .max(BACKLOG_FLOOR_TXS)
            .min(self.mempool.config().txs_max)
    }

    /// Whether the ordinary lane holds [`Self::backlog_cap`]; published for the API, which
    /// then refuses batches before checking their signatures.
    pub(super) fn backlogged(&self) -> bool {
        let full = self.mempool.lane_len(Lane::Ordinary) >= self.backlog_cap();
        self.metrics
            .backlogged
            .store(u64::from(full), Ordering::Relaxed);
        full
    }

    /// Counts a commit's transactions towards the backlog bound.
    pub(super) fn note_commits(&mut self, now: Instant, txs: usize) {
        self.recent_commits.push_back((now, txs));
        self.recent_committed = self.recent_committed.saturating_add(txs);
        while let Some(&(at, n)) = self.recent_commits.front() {
            if now.saturating_duration_since(at) <= BACKLOG_WINDOW {
                break;
            }
            self.recent_commits.pop_front();
            self.recent_committed = self.recent_committed.saturating_sub(n);
        }
        self.backlogged();
    }

    /// The lane a transaction waits in and its signer's share there; unknown signers refused.
    fn lane_of(&self, tx: &VerifiedTx) -> Result<(Lane, SignerLimit), SubmitError> {
        let signer = tx.tx.tx.signer;
        let config = *self.mempool.config();
        // One `n`th of a lane.
        let share = |lane: Lane, n: usize| {
            let cap = config.capacity(lane);
            let n = n.max(1);
            (
                lane,
                SignerLimit {
                    txs: cap.txs / n,
                    bytes: cap.bytes / n,
                },
            )
        };
        if self.consortium.signer(&signer).is_some() {
            if matches!(tx.tx.tx.body, TxBody::RecordAccess(_)) {
                // Every member can have a share of the access lane at once.
                return Ok(share(Lane::Access, self.consortium.members.len()));
            }
            return Ok(share(Lane::Ordinary, MEMBER_ORDINARY_SHARE));
        }
        let unavailable =
            |e: cradle_ledger::Error| SubmitError::Invalid(format!("state unavailable: {e}"));
        // A clinician signs for her institution (an archive, a staff change) now and then: an
        // active one holds a patient's share of the ordinary lane.
        let staff = self.store.staff(&signer).map_err(unavailable)?;
        let patient = match staff {
            Some(s) if s.is_active() => Some(()),
            Some(_) => None,
            // A patient by the key that signs for her now: her enrolment key, or one she got
            // since; a key she rotated away from takes no space.
            None => self
                .store
                .patient_by_key(&signer)
                .map_err(unavailable)?
                .and_then(|(_, _, current)| current.then_some(())),
        };
        if patient.is_none() {
            self.metrics.txs_rejected.fetch_add(1, Ordering::Relaxed);
            return Err(SubmitError::UnknownSigner);
        }
        Ok((
            Lane::Ordinary,
            SignerLimit {
                txs: PATIENT_PENDING_TXS_MAX,
                bytes: PATIENT_PENDING_BYTES_MAX,
            },
        ))
    }

    /// Tells the submitters of evicted transactions, which will not be committed.
    fn evicted(&mut self, evicted: &[Hash]) {
        for hash in evicted {
            self.admitted_at.remove(hash);
            self.metrics.txs_evicted.fetch_add(1, Ordering::Relaxed);
            self.receipts.resolve(
                hash,
                Receipt::Rejected {
                    reason: "evicted: the mempool is full and this signer held the largest share \
                             of it; submit again later"
                        .into(),
                    stale_nonce: false,
                },
            );
        }
        if !evicted.is_empty() {
            debug!(
                txs = evicted.len(),
                "evicted pending transactions to make room"
            );
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
}
