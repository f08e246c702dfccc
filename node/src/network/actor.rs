//! The swarm task: owns the libp2p swarm, turns connection events into peer state (writer
//! tasks, [`NetEvent::PeerConnected`] / [`NetEvent::PeerDisconnected`]), logs refusals, and
//! (re)dials members with capped exponential backoff.

use super::behaviour::{Behaviour, BehaviourEvent, MSG_PROTOCOL, REQ_PROTOCOL, build_swarm};
use super::budget::InboundBudget;
use super::handle::{Members, NetworkHandle, PeerTx, Shared, lock, read, write};
use super::{
    Counters, EVENTS_MAX, NetEvent, NetworkConfig, NetworkError, Peer, REDIAL_BACKOFF_MAX_MS,
    REDIAL_BACKOFF_MIN_MS, peer, peer_id_of,
};
use futures::StreamExt as _;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ListenError, SwarmEvent};
use libp2p::{Multiaddr, PeerId, Swarm, ping};
use std::collections::HashMap;
use std::sync::atomic::AtomicU64;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::Instant;

/// How often the task looks for members to redial.
const DIAL_TICK: Duration = Duration::from_millis(100);
/// A connection that lasted this long resets the redial backoff when it ends.
const STABLE_CONNECTION: Duration = Duration::from_secs(10);

impl PeerState {
    fn new(addr: Option<Multiaddr>, now: Instant) -> Self {
        Self {
            addr,
            connections: 0,
            writer: None,
            next_dial: now,
            backoff: Duration::from_millis(REDIAL_BACKOFF_MIN_MS),
            connected_at: None,
        }
    }
}

/// What the swarm task knows about one member.
struct PeerState {
    addr: Option<Multiaddr>,
    connections: u32,
    writer: Option<AbortHandle>,
    next_dial: Instant,
    backoff: Duration,
    /// When the current connection (if any) was established.
    connected_at: Option<Instant>,
}

struct Actor {
    swarm: Swarm<Behaviour>,
    shared: Arc<Shared>,
    peers: HashMap<PeerId, PeerState>,
    outbound_queue_max: usize,
    /// Writers and the two accept loops; aborted together at shutdown.
    tasks: JoinSet<()>,
    events: mpsc::Sender<NetEvent>,
}

pub async fn spawn(
    config: NetworkConfig,
) -> Result<(NetworkHandle, mpsc::Receiver<NetEvent>), NetworkError> {
    let mut seed = config.keypair_seed.clone();
    let keypair = libp2p::identity::Keypair::ed25519_from_bytes(seed.as_mut_slice())
        .map_err(|e| NetworkError::Config(format!("bad keypair seed: {e}")))?;
    let local_peer_id = keypair.public().to_peer_id();

    let mut members = HashMap::new();
    let mut peer_ids = HashMap::new();
    let mut peers = HashMap::new();
    let now = Instant::now();
    for p in &config.peers {
        let id = peer_id_of(&p.public_key)?;
        members.insert(id, p.public_key);
        peer_ids.insert(p.public_key, id);
        peers.insert(id, PeerState::new(p.addr.clone(), now));
    }
    if members.contains_key(&local_peer_id) {
        return Err(NetworkError::Config("own key listed as a peer".into()));
    }

    let mut swarm = build_swarm(keypair, members.keys().copied(), members.len())?;
    let mut control = swarm.behaviour().stream.new_control();
    let incoming_messages = control
        .accept(MSG_PROTOCOL)
        .map_err(|e| NetworkError::Transport(e.to_string()))?;
    let incoming_requests = control
        .accept(REQ_PROTOCOL)
        .map_err(|e| NetworkError::Transport(e.to_string()))?;
    swarm
        .listen_on(config.listen.clone())
        .map_err(|e| NetworkError::Transport(format!("listen on {}: {e}", config.listen)))?;

    // Wait for the listener's first address so `listen_addrs` is useful when `start` returns
    // (the port is known even when the config asked for port 0).
    let first_addr = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match swarm.select_next_some().await {
                SwarmEvent::NewListenAddr { address, .. } => return Ok(address),
                SwarmEvent::ListenerClosed { reason, .. } => {
                    return Err(format!("listener closed: {reason:?}"));
                }
                SwarmEvent::ListenerError { error, .. } => return Err(error.to_string()),
                _ => {}
            }
        }
    })
    .await
    .map_err(|_| NetworkError::Transport("no listen address within 10 s".into()))?
    .map_err(NetworkError::Transport)?;

    let (events_tx, events_rx) = mpsc::channel(EVENTS_MAX);
    let shared = Arc::new(Shared {
        local_peer_id,
        members: RwLock::new(Members {
            by_peer: members,
            by_key: peer_ids,
        }),
        outbound: Mutex::new(HashMap::new()),
        listen_addrs: Mutex::new(vec![first_addr]),
        counters: Counters::default(),
        inbound: InboundBudget::new(config.inbound_peer_bytes_max, config.inbound_bytes_max),
        message_bytes_max: config.message_bytes_max,
        request_timeout: Duration::from_millis(config.request_timeout_ms),
        control,
    });
    // The event sender lives only in the swarm task and its children (never in the handle),
    // so the node's receiver sees the channel close once the network has shut down.
    let mut tasks = JoinSet::new();
    tasks.spawn(peer::accept_messages(
        shared.clone(),
        events_tx.clone(),
        incoming_messages,
    ));
    tasks.spawn(peer::accept_requests(
        shared.clone(),
        events_tx.clone(),
        incoming_requests,
    ));
    tracing::info!(
        %local_peer_id,
        listen = ?lock(&shared.listen_addrs),
        peers = read(&shared.members).by_peer.len(),
        message_bytes_max = config.message_bytes_max,
        outbound_queue_max = config.outbound_queue_max,
        request_timeout_ms = config.request_timeout_ms,
        inbound_peer_bytes_max = config.inbound_peer_bytes_max,
        inbound_bytes_max = config.inbound_bytes_max,
        "network started"
    );

    let actor = Actor {
        swarm,
        shared: shared.clone(),
        peers,
        outbound_queue_max: config.outbound_queue_max,
        tasks,
        events: events_tx,
    };
    let (stop_tx, stop_rx) = oneshot::channel();
    let (members_tx, members_rx) = watch::channel(None);
    let join = tokio::spawn(actor.run(stop_rx, members_rx));
    let handle = NetworkHandle {
        shared,
        task: Arc::new(Mutex::new(Some((stop_tx, join)))),
        members_tx: Arc::new(members_tx),
    };
    Ok((handle, events_rx))
}

impl Actor {
    async fn run(
        mut self,
        mut stop: oneshot::Receiver<()>,
        mut members: watch::Receiver<Option<Vec<Peer>>>,
    ) {
        let mut tick = tokio::time::interval(DIAL_TICK);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                event = self.swarm.select_next_some() => self.on_swarm_event(event),
                _ = tick.tick() => self.dial_due(),
                Ok(()) = members.changed() => {
                    let peers = members.borrow_and_update().clone();
                    if let Some(peers) = peers {
                        self.set_members(peers);
                    }
                }
                Some(_) = self.tasks.join_next(), if !self.tasks.is_empty() => {}
            }
        }
        self.tasks.shutdown().await;
        lock(&self.shared.outbound).clear();
        tracing::info!(local_peer_id = %self.shared.local_peer_id, "network stopped");
    }

    /// Takes up a new member list: removed members are refused from now on (their connections
    /// closed at once), new members admitted and dialed, moved ones dialed at their new
    /// address.
    fn set_members(&mut self, peers: Vec<Peer>) {
        let mut next = HashMap::new();
        for p in peers {
            match peer_id_of(&p.public_key) {
                Ok(id) if id != self.shared.local_peer_id => {
                    next.insert(id, p);
                }
                Ok(_) => {}
                Err(e) => {
                    tracing::warn!(key = %p.public_key, error = %e, "member key is no PeerId")
                }
            }
        }
        let gone: Vec<PeerId> = self
            .peers
            .keys()
            .filter(|id| !next.contains_key(id))
            .copied()
            .collect();
        for id in gone {
            let key = self.shared.member_key(&id);
            self.swarm.behaviour_mut().allow.disallow_peer(id);
            if let Some(state) = self.peers.remove(&id)
                && let Some(writer) = state.writer
            {
                writer.abort();
            }
            lock(&self.shared.outbound).remove(&id);
            if let Some(key) = key {
                let mut m = write(&self.shared.members);
                m.by_peer.remove(&id);
                m.by_key.remove(&key);
                drop(m);
                tracing::info!(peer = %id, member = %key, "member removed: connections closed and refused");
                let _ = self.events.try_send(NetEvent::PeerDisconnected(key));
            }
        }
        let now = Instant::now();
        for (id, p) in next {
            match self.peers.get_mut(&id) {
                Some(state) => {
                    if state.addr != p.addr {
                        state.addr = p.addr;
                        state.next_dial = now;
                    }
                }
                None => {
                    self.swarm.behaviour_mut().allow.allow_peer(id);
                    let mut m = write(&self.shared.members);
                    m.by_peer.insert(id, p.public_key);
                    m.by_key.insert(p.public_key, id);
                    drop(m);
                    tracing::info!(peer = %id, member = %p.public_key, "member admitted");
                    self.peers.insert(id, PeerState::new(p.addr, now));
                }
            }
        }
        *self.swarm.behaviour_mut().limits.limits_mut() =
            super::behaviour::limits(self.peers.len());
    }

    /// Dials each disconnected member whose backoff has expired.
    fn dial_due(&mut self) {
        let now = Instant::now();
        let max = Duration::from_millis(REDIAL_BACKOFF_MAX_MS);
        for (id, state) in &mut self.peers {
            let Some(addr) = &state.addr else { continue };
            if state.connections > 0 || state.next_dial > now {
                continue;
            }
            state.next_dial = now + state.backoff;
            state.backoff = (state.backoff * 2).min(max);
            let opts = DialOpts::peer_id(*id)
                .addresses(vec![addr.clone()])
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                tracing::debug!(peer = %id, error = %e, "dial not started");
            }
        }
    }

    fn on_swarm_event(&mut self, event: SwarmEvent<BehaviourEvent>) {
        match event {
            SwarmEvent::ConnectionEstablished {
                peer_id,
                connection_id,
                endpoint,
                ..
            } => {
                let Some(state) = self.peers.get_mut(&peer_id) else {
                    // The allow list should have refused it; never keep such a connection.
                    tracing::warn!(peer = %peer_id, addr = %endpoint.get_remote_address(),
                        "closing connection from a non-member");
                    self.swarm.close_connection(connection_id);
                    return;
                };
                state.connections += 1;
                if state.connections == 1 {
                    state.connected_at = Some(Instant::now());
                    let (tx, rx) = mpsc::channel(self.outbound_queue_max);
                    let writer =
                        self.tasks
                            .spawn(peer::run_writer(self.shared.clone(), peer_id, rx));
                    state.writer = Some(writer);
                    lock(&self.shared.outbound).insert(
                        peer_id,
                        PeerTx {
                            tx,
                            dropped: AtomicU64::new(0),
                        },
                    );
                    tracing::info!(peer = %peer_id, addr = %endpoint.get_remote_address(),
                        "member connected");
                    self.emit(peer_id, true);
                }
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                cause,
                ..
            } => {
                let Some(state) = self.peers.get_mut(&peer_id) else {
                    return;
                };
                state.connections = num_established;
                if num_established == 0 {
                    if let Some(writer) = state.writer.take() {
                        writer.abort();
                    }
                    // A connection that lasted is redialed at once; one the peer drops as soon
                    // as it is up (a peer whose genesis refuses us) keeps its growing backoff,
                    // so we do not reconnect to it ten times a second.
                    if state
                        .connected_at
                        .take()
                        .is_some_and(|at| at.elapsed() >= STABLE_CONNECTION)
                    {
                        state.backoff = Duration::from_millis(REDIAL_BACKOFF_MIN_MS);
                    }
                    state.next_dial = Instant::now() + state.backoff;
                    lock(&self.shared.outbound).remove(&peer_id);
                    tracing::info!(peer = %peer_id, cause = ?cause, "member disconnected");
                    self.emit(peer_id, false);
                }
            }
            SwarmEvent::IncomingConnectionError {
                peer_id,
                send_back_addr,
                error,
                ..
            } => match error {
                ListenError::Denied { cause } => {
                    Counters::add(&self.shared.counters.connections_refused, 1);
                    let peer = peer_id.map_or_else(|| "unknown".to_owned(), |p| p.to_string());
                    tracing::warn!(%peer, addr = %send_back_addr, %cause, "refused inbound connection");
                }
                other => {
                    tracing::debug!(peer = ?peer_id, addr = %send_back_addr, error = %other,
                        "inbound connection failed");
                }
            },
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                tracing::debug!(peer = ?peer_id, %error, "dial failed");
            }
            SwarmEvent::NewListenAddr { address, .. } => {
                let mut addrs = lock(&self.shared.listen_addrs);
                if !addrs.contains(&address) {
                    addrs.push(address);
                }
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                lock(&self.shared.listen_addrs).retain(|a| a != &address);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Ping(ping)) => {
                match ping.result {
                    Ok(_) => {}
                    // A peer without ping is not a Cradle node, but it can still be a live one.
                    Err(ping::Failure::Unsupported) => {
                        tracing::debug!(peer = %ping.peer, "peer does not support ping");
                    }
                    Err(failure) => {
                        tracing::warn!(peer = %ping.peer, %failure, "ping failed, closing connection");
                        self.swarm.close_connection(ping.connection);
                    }
                }
            }
            _ => {}
        }
    }

    fn emit(&self, peer: PeerId, connected: bool) {
        let Some(key) = self.shared.member_key(&peer) else {
            return;
        };
        let event = if connected {
            NetEvent::PeerConnected(key)
        } else {
            NetEvent::PeerDisconnected(key)
        };
        if let Err(mpsc::error::TrySendError::Full(_)) = self.events.try_send(event) {
            tracing::error!(%peer, connected, "event channel full, peer event lost");
        }
    }
}
