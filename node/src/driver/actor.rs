//! The driver's task loop: network events, timers, submissions and sync answers in; the
//! core's effects carried out in order. Proposing, validating and committing blocks are in
//! [`super::blocks`]; admitting and gossiping transactions in [`super::txs`].

use std::collections::{BTreeMap, HashMap, VecDeque};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cradle_consensus::{Core, Effect, Equivocation, Height, Input, Round, Step, Value, ValueId};
use cradle_ledger::block::{Block, ChainTip, Executed, FinalizedBlock};
use cradle_ledger::state::StateExt;
use cradle_ledger::{Hash, PublicKey};
use tokio::sync::mpsc;
use tracing::{debug, error, info, warn};

use super::ingress::Ingress;
use super::receipts::Receipts;
use super::sync_peers::SyncPeers;
use super::{DriverConfig, DriverError, DriverParts, Status};
use crate::mempool::Mempool;
use crate::metrics::Metrics;
use crate::network::{NetEvent, NetworkHandle};
use crate::storage::{EvidenceStored, Store};
use crate::wire::NetMessage;

pub(super) struct Driver {
    pub(super) config: DriverConfig,
    /// The set in force at the next height (`tip.height + 1`).
    pub(super) consortium: Arc<cradle_ledger::Consortium>,
    /// Every set by height; the driver tells it of each commit.
    pub(super) members: Arc<crate::members::Members>,
    pub(super) me: PublicKey,
    pub(super) core: Core<Block>,
    pub(super) store: Arc<Store>,
    pub(super) network: NetworkHandle,
    pub(super) mempool: Mempool,
    pub(super) metrics: Arc<Metrics>,
    pub(super) status: tokio::sync::watch::Sender<Status>,
    pub(super) ingress_tx: mpsc::Sender<Ingress>,
    pub(super) tip: ChainTip,
    /// Timers the core asked for, by deadline.
    pub(super) timers: BTreeMap<(Instant, u64), (Height, Round, Step)>,
    pub(super) timer_seq: u64,
    /// Blocks this node executed at the current height (its own or validated), by id.
    pub(super) executed: HashMap<ValueId, Executed>,
    /// Blocks a catch-up run wrote to disk whose bookkeeping ([`Driver::committed`]) is still
    /// to come, by height: the core may decide one of them meanwhile, from votes it buffered,
    /// when it is handed the certificate of the block before ([`Driver::commit`] then writes
    /// nothing).
    pub(super) written_ahead: BTreeMap<Height, ValueId>,
    /// The core asked us to propose at this height and round; [`Driver::propose_wait`] says when.
    pub(super) propose: Option<(Height, Round)>,
    pub(super) last_commit: Instant,
    /// When the mempool last went from empty to holding a transaction: the batching window
    /// counts from there.
    pub(super) pending_since: Option<Instant>,
    /// When each pending transaction entered this node's mempool, for commit latency.
    pub(super) admitted_at: HashMap<Hash, Instant>,
    /// Transactions to gossip in the next batch.
    pub(super) outbox: Vec<Vec<u8>>,
    /// Heights peers announced, as far as they are believed; read by catch-up sync only.
    pub(super) sync_peers: SyncPeers,
    pub(super) sync_in_flight: Option<(PublicKey, Instant)>,
    /// Who waits to hear whether their transaction committed.
    pub(super) receipts: Receipts,
    /// Each peer's transaction batches: the one being checked, and those waiting.
    pub(super) gossip: super::gossip::GossipQueues,
    /// Votes and proposals waiting for the synced write of the consensus record.
    pub(super) held: super::persist::Held,
    /// The INFO line that sums up committed blocks.
    pub(super) commit_log: super::blocks::CommitLog,
    /// Transactions committed per block over the last [`super::txs::BACKLOG_WINDOW`], for the
    /// backlog bound.
    pub(super) recent_commits: VecDeque<(Instant, usize)>,
    /// Their sum, kept as they come and go: every member's admission reads it.
    pub(super) recent_committed: usize,
}

/// Network events handled in one turn of the loop, under one synced write of the consensus
/// record: enough to take a burst of votes together, few enough that timers and submissions
/// wait little.
const BATCH_EVENTS_MAX: usize = 64;

/// Runs the driver until the network closes or a fatal error; a fatal error stops the node.
pub async fn run(parts: DriverParts) -> Result<(), DriverError> {
    let DriverParts {
        config,
        members,
        keypair,
        store,
        network,
        mut net_events,
        metrics,
        status,
        ingress_tx,
        mut ingress_rx,
        mut shutdown,
    } = parts;
    let tip = store
        .tip()?
        .unwrap_or_else(|| ChainTip::genesis(members.genesis()));
    let consortium = members.at(tip.height + 1);
    let persisted = store
        .load_consensus_state()
        .map_err(|e| DriverError::CorruptState(e.to_string()))?
        // A record for a height already committed belongs to the past.
        .filter(|state| state.height == tip.height + 1);
    let me = keypair.public_key();
    // The core votes at the heights whose set has this key, and follows at the others.
    let signer = Some(ed25519_dalek::SigningKey::from_bytes(
        &keypair.ed25519_seed(),
    ));
    let resumed = persisted.is_some();
    let mut core = Core::new(
        // Timeouts a governance vote changed since genesis, or genesis's.
        consortium.timeouts.unwrap_or(config.consensus),
        consortium.validators().clone(),
        consortium.chain_id,
        signer,
        tip.height + 1,
        persisted,
    )?;
    // A set adopted in the tip's block takes over at the height after the next.
    let after = members.at(tip.height + 2);
    if after.epoch != consortium.epoch {
        core.set_validators_from(tip.height + 2, after.validators().clone())?;
    }
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
        members,
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
        written_ahead: BTreeMap::new(),
        propose: None,
        last_commit: Instant::now(),
        pending_since: None,
        admitted_at: HashMap::new(),
        outbox: Vec::new(),
        sync_peers: SyncPeers::default(),
        sync_in_flight: None,
        receipts: Receipts::default(),
        gossip: Default::default(),
        recent_commits: VecDeque::new(),
        recent_committed: 0,
        held: Default::default(),
        commit_log: Default::default(),
    };
    d.publish_status()?;
    d.feed(Input::Start)?;
    d.release()?;

    let gossip_every = Duration::from_millis(d.config.gossip_interval_ms);
    let flush_every = Duration::from_millis(d.config.tx_flush_interval_ms.max(1));
    let mut next_gossip = Instant::now() + gossip_every;
    let mut next_flush = Instant::now() + flush_every;
    loop {
        let mut wake = next_gossip.min(next_flush);
        if let Some((&(t, _), _)) = d.timers.first_key_value() {
            wake = wake.min(t);
        }
        if d.propose.is_some() {
            let now = Instant::now();
            wake = wake.min(now + d.propose_wait(now));
        }
        tokio::select! {
            event = net_events.recv() => match event {
                Some(event) => {
                    d.on_net_event(event)?;
                    // Whatever else has arrived joins this batch and its one synced write.
                    for _ in 1..BATCH_EVENTS_MAX {
                        match net_events.try_recv() {
                            Ok(event) => d.on_net_event(event)?,
                            Err(_) => break,
                        }
                    }
                }
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
            _ = shutdown.changed() => {
                info!(height = d.tip.height, "driver stops between blocks: the node is shutting down");
                return Ok(());
            }
        }
        let now = Instant::now();
        d.fire_timers(now)?;
        d.maybe_propose(now)?;
        // Before anything else leaves: gossip resends the core's own messages.
        d.release()?;
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
            // Held until the batch's one synced write of the record ([`super::persist`]).
            Effect::PersistAndBroadcastVote { state, vote } => {
                self.hold(state, NetMessage::Vote(vote));
            }
            Effect::PersistAndBroadcastProposal { state, proposal } => {
                self.hold(state, NetMessage::Proposal(Box::new(proposal)));
            }
            Effect::Broadcast(message) => {
                self.send_in_order(NetMessage::from_consensus(message));
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
                self.propose = Some((height, round));
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
            Effect::Evidence(evidence) => self.keep_evidence(&evidence)?,
        }
        Ok(None)
    }

    /// Stores evidence for regulators. The store checks it again and keeps one entry per
    /// offence up to its bound; a refusal is logged, a failed write stops the node.
    fn keep_evidence(&mut self, evidence: &Equivocation) -> Result<(), DriverError> {
        self.metrics.equivocations.fetch_add(1, Ordering::Relaxed);
        let slot = evidence.slot();
        warn!(
            height = slot.height,
            round = slot.round,
            kind = slot.kind.as_str(),
            validator = slot.validator,
            ?evidence,
            "equivocation: a validator signed two conflicting messages"
        );
        let consortium = self.members.at(slot.height);
        match self
            .store
            .put_evidence(evidence, &consortium.chain_id, consortium.validators())?
        {
            EvidenceStored::Stored => info!(validator = slot.validator, "evidence stored"),
            EvidenceStored::Duplicate => debug!("evidence of this offence is already stored"),
            EvidenceStored::Full { stored } => warn!(
                stored,
                "evidence store is full: this evidence is logged but not kept"
            ),
            EvidenceStored::Invalid(e) => {
                error!(error = %e, "the consensus core reported evidence that does not verify")
            }
        }
        Ok(())
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
        self.metrics.record_network(&self.network.stats());
        self.metrics
            .mempool_txs
            .store(self.mempool.len() as u64, Ordering::Relaxed);
        self.metrics
            .mempool_bytes
            .store(self.mempool.bytes() as u64, Ordering::Relaxed);
        self.metrics.mempool_access_txs.store(
            self.mempool.lane_len(crate::mempool::Lane::Access) as u64,
            Ordering::Relaxed,
        );
        self.status.send_replace(status);
        Ok(())
    }

    fn on_net_event(&mut self, event: NetEvent) -> Result<(), DriverError> {
        match event {
            // The event, and with it the message's charge on its sender's inbound budget, lives
            // until this returns: the bytes count as the sender's until they are handled.
            NetEvent::Message { from, bytes, .. } => {
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
                    if !super::blocks::names_its_builder(&self.core, &p) {
                        self.metrics
                            .messages_invalid
                            .fetch_add(1, Ordering::Relaxed);
                        warn!(peer = %from, height = h, round = p.proposal.round,
                            proposer = p.proposal.proposer, named = %p.value.header.proposer,
                            "refusing a proposal whose block names another proposer");
                        return Ok(());
                    }
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
            Ingress::Submit { tx, reply, receipt } => {
                let result = self.admit(*tx, true, receipt);
                let _ = reply.send(result);
            }
            Ingress::Gossiped { from, txs } => self.gossip_checked(from, txs),
            Ingress::Synced { from, result } => self.on_synced(from, result)?,
        }
        Ok(())
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
        // Bookkeeping of pending transactions never outlives them.
        self.receipts.prune_closed();
        let mempool = &self.mempool;
        self.admitted_at.retain(|h, _| mempool.contains(h));
        let _ = self.publish_status();
    }
}
