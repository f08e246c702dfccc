//! The driver's task loop: network events, timers, submissions and sync answers in; the
//! core's effects carried out in order.

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cradle_consensus::{Core, Effect, Height, Input, PersistedState, Round, Step, Value, ValueId};
use cradle_ledger::apply::{self, Executed};
use cradle_ledger::block::{Block, ChainTip, FinalizedBlock};
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::state::StateExt;
use cradle_ledger::{Hash, PublicKey};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::ingress::{Ingress, SubmitError, VerifiedTx};
use super::{DriverConfig, DriverError, DriverParts, Status};
use crate::clock::now_ms;
use crate::mempool::Mempool;
use crate::metrics::Metrics;
use crate::network::{NetEvent, NetworkHandle};
use crate::storage::Store;
use crate::wire::{NetMessage, TX_BATCH_MAX};

pub(super) struct Driver {
    pub(super) config: DriverConfig,
    pub(super) consortium: Arc<cradle_ledger::Consortium>,
    pub(super) me: PublicKey,
    pub(super) core: Core<Block>,
    pub(super) store: Arc<Store>,
    pub(super) network: NetworkHandle,
    pub(super) mempool: Mempool,
    pub(super) metrics: Arc<Metrics>,
    status: tokio::sync::watch::Sender<Status>,
    pub(super) ingress_tx: mpsc::Sender<Ingress>,
    pub(super) tip: ChainTip,
    /// Timers the core asked for, by deadline.
    timers: BTreeMap<(Instant, u64), (Height, Round, Step)>,
    timer_seq: u64,
    /// Blocks this node executed at the current height (its own or validated), by id.
    executed: HashMap<ValueId, Executed>,
    /// The core asked us to propose: at this height and round, from this moment.
    propose: Option<(Height, Round, Instant)>,
    pub(super) last_commit: Instant,
    /// When each pending transaction entered this node's mempool, for commit latency.
    admitted_at: HashMap<Hash, Instant>,
    /// Transactions to gossip in the next batch.
    outbox: Vec<Vec<u8>>,
    /// Heights peers announced.
    pub(super) peer_heights: HashMap<PublicKey, u64>,
    pub(super) sync_in_flight: Option<(PublicKey, Instant)>,
}

/// Runs the driver until the network closes or a fatal error; a fatal error stops the node.
pub async fn run(parts: DriverParts) -> Result<(), DriverError> {
    let DriverParts {
        config,
        consortium,
        keypair,
        store,
        network,
        mut net_events,
        metrics,
        status,
        ingress_tx,
        mut ingress_rx,
    } = parts;
    let tip = store
        .tip()?
        .unwrap_or_else(|| ChainTip::genesis(&consortium));
    let persisted = match store.load_consensus_state()? {
        None => None,
        Some(bytes) => {
            let state: PersistedState<Block> =
                borsh::from_slice(&bytes).map_err(|e| DriverError::CorruptState(e.to_string()))?;
            // A record for a height already committed belongs to the past.
            (state.height == tip.height + 1).then_some(state)
        }
    };
    let me = keypair.public_key();
    let signer = consortium
        .validators()
        .index_of(&me.0)
        .map(|_| ed25519_dalek::SigningKey::from_bytes(&keypair.ed25519_seed()));
    let resumed = persisted.is_some();
    let core = Core::new(
        config.consensus,
        consortium.validators().clone(),
        consortium.chain_id,
        signer,
        tip.height + 1,
        persisted,
    )?;
    info!(
        height = tip.height,
        resumed,
        validator = core.validator_index().is_some(),
        "driver starting"
    );
    let mut d = Driver {
        mempool: Mempool::new(config.mempool),
        config,
        consortium,
        me,
        core,
        store,
        network,
        metrics,
        status,
        ingress_tx,
        tip,
        timers: BTreeMap::new(),
        timer_seq: 0,
        executed: HashMap::new(),
        propose: None,
        last_commit: Instant::now(),
        admitted_at: HashMap::new(),
        outbox: Vec::new(),
        peer_heights: HashMap::new(),
        sync_in_flight: None,
    };
    d.publish_status()?;
    d.feed(Input::Start)?;

    let gossip_every = Duration::from_millis(d.config.gossip_interval_ms);
    let flush_every = Duration::from_millis(d.config.tx_flush_interval_ms.max(1));
    let mut next_gossip = Instant::now() + gossip_every;
    let mut next_flush = Instant::now() + flush_every;
    loop {
        let mut wake = next_gossip.min(next_flush);
        if let Some((&(t, _), _)) = d.timers.first_key_value() {
            wake = wake.min(t);
        }
        if let Some((_, _, at)) = d.propose {
            wake = wake.min(at);
        }
        tokio::select! {
            event = net_events.recv() => match event {
                Some(event) => d.on_net_event(event)?,
                None => {
                    info!("network closed; driver stops");
                    return Ok(());
                }
            },
            msg = ingress_rx.recv() => match msg {
                Some(msg) => d.on_ingress(msg)?,
                None => return Ok(()),
            },
            _ = tokio::time::sleep_until(wake.into()) => {}
        }
        let now = Instant::now();
        d.fire_timers(now)?;
        d.maybe_propose(now)?;
        if now >= next_flush {
            d.flush_outbox();
            next_flush = now + flush_every;
        }
        if now >= next_gossip {
            d.gossip();
            next_gossip = now + gossip_every;
        }
    }
}

impl Driver {
    /// Feeds one input and carries out every effect, including the inputs effects produce.
    pub(super) fn feed(&mut self, input: Input<Block>) -> Result<(), DriverError> {
        let mut queue = VecDeque::from([input]);
        while let Some(input) = queue.pop_front() {
            let effects = match self.core.handle(input) {
                Ok(effects) => effects,
                Err(e) => {
                    // A refused input changed nothing: a bad or stale message from a peer.
                    debug!(error = %e, "consensus refused input");
                    self.metrics
                        .messages_invalid
                        .fetch_add(1, Ordering::Relaxed);
                    continue;
                }
            };
            for effect in effects {
                if let Some(next) = self.carry_out(effect)? {
                    queue.push_back(next);
                }
            }
        }
        self.metrics
            .round
            .store(u64::from(self.core.round()), Ordering::Relaxed);
        Ok(())
    }

    fn carry_out(&mut self, effect: Effect<Block>) -> Result<Option<Input<Block>>, DriverError> {
        match effect {
            Effect::PersistAndBroadcastVote { state, vote } => {
                self.store
                    .save_consensus_state(&borsh::to_vec(&*state).map_err(io_to_state)?)?;
                self.network
                    .broadcast(NetMessage::Vote(vote).encode().into());
            }
            Effect::PersistAndBroadcastProposal { state, proposal } => {
                self.store
                    .save_consensus_state(&borsh::to_vec(&*state).map_err(io_to_state)?)?;
                self.network
                    .broadcast(NetMessage::Proposal(Box::new(proposal)).encode().into());
            }
            Effect::Broadcast(message) => {
                self.network
                    .broadcast(NetMessage::from_consensus(message).encode().into());
            }
            Effect::ScheduleTimeout {
                height,
                round,
                step,
                duration_ms,
            } => {
                let at = Instant::now() + Duration::from_millis(duration_ms);
                self.timer_seq += 1;
                self.timers
                    .insert((at, self.timer_seq), (height, round, step));
            }
            Effect::RequestValue { height, round } => {
                let earliest =
                    self.last_commit + Duration::from_millis(self.config.block_interval_ms);
                self.propose = Some((height, round, earliest.max(Instant::now())));
            }
            Effect::ValidateValue {
                height,
                round: _,
                value,
            } => {
                let id = value.id();
                let valid = self.validate(height, &value);
                return Ok(Some(Input::ValueValidated { height, id, valid }));
            }
            Effect::Decide {
                height,
                round,
                value,
                certificate,
            } => {
                debug!(height, round, "decided");
                self.commit(
                    FinalizedBlock {
                        block: value,
                        certificate,
                    },
                    false,
                )?;
            }
            Effect::Evidence(evidence) => {
                self.metrics.equivocations.fetch_add(1, Ordering::Relaxed);
                warn!(
                    ?evidence,
                    "equivocation: a validator signed two conflicting messages"
                );
            }
        }
        Ok(None)
    }

    fn fire_timers(&mut self, now: Instant) -> Result<(), DriverError> {
        while let Some(entry) = self.timers.first_entry() {
            if entry.key().0 > now {
                break;
            }
            let (height, round, step) = entry.remove();
            self.feed(Input::TimeoutElapsed {
                height,
                round,
                step,
            })?;
        }
        Ok(())
    }

    /// Builds and proposes a block once the block interval has passed, or at once when the
    /// mempool already holds a full block.
    fn maybe_propose(&mut self, now: Instant) -> Result<(), DriverError> {
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
        let built = apply::build_block(
            &*self.store,
            &self.consortium,
            &self.tip,
            time_ms,
            self.me,
            candidates,
        )?;
        for (hash, reason) in &built.rejected {
            debug!(tx = %hex::encode(hash), %reason, "dropping transaction the rules refuse");
            self.mempool.remove(hash);
            self.admitted_at.remove(hash);
            self.metrics.txs_rejected.fetch_add(1, Ordering::Relaxed);
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
    fn validate(&mut self, height: Height, block: &Block) -> bool {
        let id = block.id();
        if self.executed.contains_key(&id) {
            return true;
        }
        if height != self.tip.height + 1 {
            return false;
        }
        let result = (|| -> Result<Executed, cradle_ledger::Error> {
            apply::check_envelope(&self.consortium, &self.tip, block)?;
            let horizon = now_ms() + self.config.clock_drift_ms_max;
            if block.header.time_ms > horizon {
                return Err(cradle_ledger::Error::TimeNotIncreasing {
                    got: block.header.time_ms,
                    prev: horizon,
                });
            }
            let unchecked: Vec<_> = block
                .txs
                .iter()
                .filter(|t| !self.mempool.contains(&t.hash()))
                .cloned()
                .collect();
            apply::verify_signatures(&unchecked, &self.consortium.chain_id)?;
            apply::apply_checked_block(&*self.store, &self.consortium, block)
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
        let executed = match self.executed.remove(&id) {
            Some(e) => e,
            None => apply::apply_block(&*self.store, &self.consortium, &self.tip, &fb.block)?,
        };
        self.store.commit_block(&fb, &executed)?;
        let header = &fb.block.header;
        self.tip = ChainTip::of(header);
        self.executed.clear();
        self.propose = None;
        let now = Instant::now();
        self.metrics
            .block_time
            .observe_s(now.duration_since(self.last_commit).as_secs_f64());
        self.last_commit = now;
        let mut last_nonce: BTreeMap<PublicKey, u64> = BTreeMap::new();
        for stx in fb.block.txs.iter() {
            let hash = stx.hash();
            self.mempool.remove(&hash);
            if let Some(t) = self.admitted_at.remove(&hash) {
                self.metrics
                    .commit_latency
                    .observe_s(now.duration_since(t).as_secs_f64());
            }
            let n = last_nonce.entry(stx.tx.signer).or_insert(0);
            *n = (*n).max(stx.tx.nonce);
        }
        for (signer, nonce) in last_nonce {
            self.mempool.drop_stale(&signer, nonce);
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
        self.publish_status()
    }

    pub(super) fn publish_status(&mut self) -> Result<(), DriverError> {
        let log = self.store.access_log()?;
        let state_root = self.store.state_root()?;
        let status = Status {
            tip: (self.tip.height > 0).then_some(self.tip),
            state_root,
            access_log_size: log.size(),
            access_log_root: log.root(),
            round: self.core.round(),
            peers: self.network.connected_peers().len(),
            mempool_txs: self.mempool.len(),
        };
        self.metrics
            .peers
            .store(status.peers as u64, Ordering::Relaxed);
        self.metrics
            .mempool_txs
            .store(self.mempool.len() as u64, Ordering::Relaxed);
        self.metrics
            .mempool_bytes
            .store(self.mempool.bytes() as u64, Ordering::Relaxed);
        self.status.send_replace(status);
        Ok(())
    }

    fn on_net_event(&mut self, event: NetEvent) -> Result<(), DriverError> {
        match event {
            NetEvent::Message { from, bytes } => {
                let message = match NetMessage::decode(&bytes) {
                    Ok(m) => m,
                    Err(e) => {
                        self.metrics
                            .messages_invalid
                            .fetch_add(1, Ordering::Relaxed);
                        warn!(peer = %from, error = %e, "malformed message");
                        return Ok(());
                    }
                };
                self.on_message(from, message)?;
            }
            NetEvent::Request { from, bytes, reply } => self.serve_sync(from, bytes, reply),
            NetEvent::PeerConnected(peer) => {
                info!(%peer, "peer connected");
                self.network.send(
                    &peer,
                    NetMessage::Status {
                        height: self.tip.height,
                    }
                    .encode()
                    .into(),
                );
                self.publish_status()?;
            }
            NetEvent::PeerDisconnected(peer) => {
                info!(%peer, "peer disconnected");
                self.publish_status()?;
            }
        }
        Ok(())
    }

    fn on_message(&mut self, from: PublicKey, message: NetMessage) -> Result<(), DriverError> {
        let height = self.core.height();
        match message {
            NetMessage::Proposal(p) => {
                let h = p.proposal.height;
                if h > height {
                    self.note_peer_height(from, h.saturating_sub(1));
                }
                // The core keeps messages for this height and the next; anything further
                // ahead only tells us we are behind.
                if h >= height && h <= height + 1 {
                    self.feed(Input::Proposal(*p))?;
                }
            }
            NetMessage::Vote(v) => {
                let h = v.vote.height;
                if h > height {
                    self.note_peer_height(from, h.saturating_sub(1));
                }
                if h >= height && h <= height + 1 {
                    self.feed(Input::Vote(v))?;
                }
            }
            NetMessage::Status { height: theirs } => self.note_peer_height(from, theirs),
            NetMessage::Txs(batch) => self.verify_gossip(from, batch),
        }
        Ok(())
    }

    fn on_ingress(&mut self, msg: Ingress) -> Result<(), DriverError> {
        match msg {
            Ingress::Submit { tx, reply } => {
                let result = self.admit(*tx, true);
                let _ = reply.send(result);
            }
            Ingress::Gossiped { txs } => {
                for tx in txs {
                    let _ = self.admit(tx, false);
                }
            }
            Ingress::Synced { from, result } => self.on_synced(from, result)?,
        }
        Ok(())
    }

    /// Puts a verified transaction in the mempool, gossiping it on if it came from a client.
    fn admit(&mut self, tx: VerifiedTx, from_client: bool) -> Result<Hash, SubmitError> {
        let last = self
            .store
            .last_nonce(&tx.tx.tx.signer)
            .map_err(|e| SubmitError::Invalid(format!("state unavailable: {e}")))?;
        let result = self.mempool.insert(tx.hash, tx.tx, tx.encoded.len(), last);
        match result {
            Ok(()) => {
                self.admitted_at.insert(tx.hash, Instant::now());
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

    fn flush_outbox(&mut self) {
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
    fn verify_gossip(&mut self, from: PublicKey, batch: BoundedVec<Vec<u8>, TX_BATCH_MAX>) {
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
        let chain_id = self.consortium.chain_id;
        let tx_max = self.consortium.limits.tx_bytes_max as usize;
        let ingress = self.ingress_tx.clone();
        let metrics = self.metrics.clone();
        tokio::task::spawn_blocking(move || {
            let txs = crate::verify::verify_batch(fresh, &chain_id, tx_max, &metrics, &from);
            if !txs.is_empty() && ingress.try_send(Ingress::Gossiped { txs }).is_err() {
                warn!(peer = %from, "driver mailbox full: dropping gossiped transactions");
            }
        });
    }

    /// Sends our own consensus messages again and announces our height: lost messages arrive
    /// eventually, and peers learn whether someone is behind.
    fn gossip(&mut self) {
        if self.last_commit.elapsed() >= Duration::from_millis(self.config.gossip_interval_ms) {
            for m in self.core.own_messages() {
                self.network
                    .broadcast(NetMessage::from_consensus(m).encode().into());
            }
        }
        self.network.broadcast(
            NetMessage::Status {
                height: self.tip.height,
            }
            .encode()
            .into(),
        );
        let _ = self.publish_status();
    }
}

fn io_to_state(e: std::io::Error) -> DriverError {
    DriverError::CorruptState(e.to_string())
}
