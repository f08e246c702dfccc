//! Peer-to-peer networking among genesis members (libp2p).
//!
//! # What this module owns
//! The node's libp2p swarm: TCP, noise (XX, ed25519 identities) and yamux; which peers may
//! connect; dialing and redialing members; framing; per-peer queues; and delivery of inbound
//! bytes to the node as [`NetEvent`]s. Messages are opaque bytes here.
//!
//! # What it promises
//! - A node's `PeerId` is its genesis member ed25519 key. Noise authenticates that key during
//!   the handshake, and a connection whose remote `PeerId` is not a genesis member is refused
//!   (allow-list behaviour) and logged at warn level with the peer id and address. The node never
//!   dials anyone but the members it was given.
//! - Every [`NetEvent`] it delivers comes from an authenticated member and is at most
//!   [`NetworkConfig::message_bytes_max`] bytes. The frame reader refuses an oversized frame from
//!   its length prefix, before reading or allocating the body. Checking the *contents*
//!   (signatures, chain id, membership of embedded keys) is the caller's job.
//! - Nothing a peer does can stall the swarm or the other peers: each peer has its own writer
//!   task behind a bounded queue ([`NetworkConfig::outbound_queue_max`]); a full queue drops the
//!   new message and counts it. The inbound event channel is bounded ([`EVENTS_MAX`]); when the
//!   consumer falls behind, new messages are dropped (counted, warned with the peer) rather than
//!   blocking the readers, and a reserve of slots is kept for connect/disconnect events.
//! - The bytes waiting for the node are bounded too, per peer
//!   ([`NetworkConfig::inbound_peer_bytes_max`]) and in all ([`NetworkConfig::inbound_bytes_max`]):
//!   each [`NetEvent::Message`] holds its bytes' share of the budget until the node drops it, and
//!   a message from a peer over its share is dropped and counted. A flooding member loses its own
//!   messages, not the others'.
//! - Members with an address are dialed at start and redialed with capped exponential backoff
//!   while disconnected; a connection whose ping times out is closed (and so redialed).
//!
//! # Why long-lived streams (`libp2p-stream`) and not `request_response`
//! The node broadcasts transaction batches and consensus votes at high rates. `request_response`
//! opens (and negotiates) a new yamux substream per message, needs an ack per message, gives no
//! ordering between messages, and caps concurrent streams per connection. Here each direction of
//! each member pair has one long-lived stream (`/cradle/msg/1`) of length-prefixed frames: one
//! protocol negotiation per connection, messages arrive in order, and the writer coalesces what
//! is queued into one flush, which keeps loopback latency well under a millisecond. Requests
//! (block sync) use one short stream each (`/cradle/req/1`) so that a large response never sits
//! in front of a consensus vote.
//!
//! # Layout
//! `mod.rs` (this file): the API, configuration, errors and statistics. `actor.rs`: the swarm
//! task. `peer.rs`: per-peer writer and reader tasks and request serving. `budget.rs`: the bytes each
//! peer has waiting for the node. `behaviour.rs`: the libp2p behaviour and swarm construction.
//! `codec.rs`: frames.

mod actor;
mod behaviour;
mod budget;
pub mod codec;
mod handle;
mod peer;

use cradle_genesis::GenesisDoc;
use cradle_ledger::{Keypair, PublicKey};
use libp2p::{Multiaddr, PeerId};
use std::sync::atomic::{AtomicU64, Ordering};
use zeroize::Zeroizing;

pub use budget::InboundPermit;
pub use handle::NetworkHandle;

/// Default cap on one message or request/response, in bytes (16 MiB).
pub const MESSAGE_BYTES_MAX_DEFAULT: usize = 16 * 1024 * 1024;
/// Default bound of each peer's outbound queue, in messages.
pub const OUTBOUND_QUEUE_MAX_DEFAULT: usize = 1024;
/// Default request timeout, in milliseconds.
pub const REQUEST_TIMEOUT_MS_DEFAULT: u64 = 10_000;
/// Default bytes of inbound messages one peer may have waiting for the node (64 MiB): four
/// messages at the largest size, thousands of votes or transaction batches.
pub const INBOUND_PEER_BYTES_MAX_DEFAULT: usize = 64 * 1024 * 1024;
/// Default bytes of inbound messages all peers together may have waiting (512 MiB). It bounds
/// the node's memory; it takes eight members flooding at once, more than the Byzantine third
/// of a consortium of up to 24, to fill it and crowd out the others.
pub const INBOUND_BYTES_MAX_DEFAULT: usize = 512 * 1024 * 1024;
/// Capacity of the inbound event channel returned by [`start`].
pub const EVENTS_MAX: usize = 4096;
/// Slots of the event channel kept free of messages for connect/disconnect/request events.
pub const EVENTS_RESERVED: usize = 64;
/// Inbound requests served at once, over all peers; more are refused.
pub const INBOUND_REQUESTS_MAX: usize = 64;
/// Inbound requests served at once for one peer.
pub const INBOUND_REQUESTS_PER_PEER_MAX: usize = 8;
/// First redial delay after a disconnect or failed dial, in milliseconds.
pub const REDIAL_BACKOFF_MIN_MS: u64 = 100;
/// Longest delay between two dials of a disconnected member, in milliseconds.
pub const REDIAL_BACKOFF_MAX_MS: u64 = 5_000;
/// Largest consortium this layer is configured for (matches genesis' member cap).
pub const PEERS_MAX: usize = cradle_genesis::doc::MEMBERS_MAX;

/// Errors of the networking layer.
#[derive(Debug, thiserror::Error)]
pub enum NetworkError {
    #[error("bad p2p address {addr:?}: {reason}")]
    BadAddress { addr: String, reason: String },
    #[error("bad network config: {0}")]
    Config(String),
    #[error("local key is not a genesis member")]
    NotAMember,
    #[error("member key {0} is not a valid ed25519 key")]
    BadPeerKey(PublicKey),
    #[error("transport: {0}")]
    Transport(String),
    #[error("peer {0} is not a member")]
    UnknownPeer(PublicKey),
    #[error("peer {0} is not connected")]
    NotConnected(PublicKey),
    #[error("message of {len} bytes exceeds the cap of {max} bytes")]
    TooLarge { len: usize, max: usize },
    #[error("request to {peer} timed out after {timeout_ms} ms")]
    Timeout { peer: PublicKey, timeout_ms: u64 },
    #[error("request to {peer} failed: {reason}")]
    RequestFailed { peer: PublicKey, reason: String },
    #[error("network is shut down")]
    Shutdown,
}

/// A member this node talks to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Peer {
    pub public_key: PublicKey,
    /// Where to dial it; `None` for a member that only dials in (or runs no node).
    pub addr: Option<Multiaddr>,
}

/// Parameters of the networking layer.
pub struct NetworkConfig {
    /// Where to listen, like `/ip4/0.0.0.0/tcp/26600` (port 0 picks one).
    pub listen: Multiaddr,
    /// This member's ed25519 seed; the libp2p identity is built from it.
    pub keypair_seed: Zeroizing<[u8; 32]>,
    /// Every genesis member except this node.
    pub peers: Vec<Peer>,
    pub message_bytes_max: usize,
    /// Bound of each peer's outbound queue, in messages.
    pub outbound_queue_max: usize,
    pub request_timeout_ms: u64,
    /// Bytes of inbound messages one peer may have waiting for the node; at least
    /// `message_bytes_max`.
    pub inbound_peer_bytes_max: usize,
    /// Bytes of inbound messages all peers together may have waiting; at least
    /// `inbound_peer_bytes_max`.
    pub inbound_bytes_max: usize,
}

impl std::fmt::Debug for NetworkConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NetworkConfig")
            .field("listen", &self.listen)
            .field("keypair_seed", &"<redacted>")
            .field("peers", &self.peers)
            .field("message_bytes_max", &self.message_bytes_max)
            .field("outbound_queue_max", &self.outbound_queue_max)
            .field("request_timeout_ms", &self.request_timeout_ms)
            .field("inbound_peer_bytes_max", &self.inbound_peer_bytes_max)
            .field("inbound_bytes_max", &self.inbound_bytes_max)
            .finish()
    }
}

/// Parses a p2p address as genesis and the node config write it.
pub fn parse_addr(s: &str) -> Result<Multiaddr, NetworkError> {
    s.parse::<Multiaddr>()
        .map_err(|e| NetworkError::BadAddress {
            addr: s.to_owned(),
            reason: e.to_string(),
        })
}

/// The libp2p `PeerId` of a member key.
pub fn peer_id_of(key: &PublicKey) -> Result<PeerId, NetworkError> {
    let ed = libp2p::identity::ed25519::PublicKey::try_from_bytes(&key.0)
        .map_err(|_| NetworkError::BadPeerKey(*key))?;
    Ok(PeerId::from_public_key(&libp2p::identity::PublicKey::from(
        ed,
    )))
}

impl NetworkConfig {
    /// A config with default limits.
    pub fn new(listen: Multiaddr, keypair_seed: Zeroizing<[u8; 32]>, peers: Vec<Peer>) -> Self {
        Self {
            listen,
            keypair_seed,
            peers,
            message_bytes_max: MESSAGE_BYTES_MAX_DEFAULT,
            outbound_queue_max: OUTBOUND_QUEUE_MAX_DEFAULT,
            request_timeout_ms: REQUEST_TIMEOUT_MS_DEFAULT,
            inbound_peer_bytes_max: INBOUND_PEER_BYTES_MAX_DEFAULT,
            inbound_bytes_max: INBOUND_BYTES_MAX_DEFAULT,
        }
    }

    /// The config for member `me` of `genesis`, listening on `listen`: every other member is a
    /// peer, dialed at its genesis `p2p_addr` if it has one.
    pub fn from_genesis(
        genesis: &GenesisDoc,
        me: &Keypair,
        listen: &str,
    ) -> Result<Self, NetworkError> {
        let my_key = me.public_key();
        if genesis.member_by_key(&my_key).is_none() {
            return Err(NetworkError::NotAMember);
        }
        let peers = genesis
            .members
            .iter()
            .filter(|m| m.public_key != my_key)
            .map(|m| {
                let addr = m.p2p_addr.as_deref().map(parse_addr).transpose()?;
                Ok(Peer {
                    public_key: m.public_key,
                    addr,
                })
            })
            .collect::<Result<Vec<_>, NetworkError>>()?;
        let config = Self::new(parse_addr(listen)?, me.ed25519_seed(), peers);
        config.validate()?;
        Ok(config)
    }

    /// The config for a node listening on `listen` whose peers are `peers`: the members of the
    /// set in force, which for a member that joined after genesis is the only list there is.
    pub fn for_peers(me: &Keypair, listen: &str, peers: Vec<Peer>) -> Result<Self, NetworkError> {
        let config = Self::new(parse_addr(listen)?, me.ed25519_seed(), peers);
        config.validate()?;
        Ok(config)
    }

    /// Checks the limits and the peer list.
    pub fn validate(&self) -> Result<(), NetworkError> {
        if self.message_bytes_max == 0 || self.message_bytes_max > u32::MAX as usize {
            return Err(NetworkError::Config(format!(
                "message_bytes_max must be in 1..={}",
                u32::MAX
            )));
        }
        if self.outbound_queue_max == 0 {
            return Err(NetworkError::Config(
                "outbound_queue_max must be > 0".into(),
            ));
        }
        // A peer must be able to have at least one message of the largest size waiting, or it
        // could never send one.
        if self.inbound_peer_bytes_max < self.message_bytes_max
            || self.inbound_bytes_max < self.inbound_peer_bytes_max
        {
            return Err(NetworkError::Config(
                "need message_bytes_max <= inbound_peer_bytes_max <= inbound_bytes_max".into(),
            ));
        }
        if self.request_timeout_ms == 0 {
            return Err(NetworkError::Config(
                "request_timeout_ms must be > 0".into(),
            ));
        }
        if self.peers.len() > PEERS_MAX {
            return Err(NetworkError::Config(format!(
                "{} peers exceed the cap of {PEERS_MAX}",
                self.peers.len()
            )));
        }
        let mut seen = std::collections::HashSet::new();
        for peer in &self.peers {
            peer_id_of(&peer.public_key)?;
            if !seen.insert(peer.public_key) {
                return Err(NetworkError::Config(format!(
                    "peer {} listed twice",
                    peer.public_key
                )));
            }
        }
        let me = cradle_ledger::Keypair::from_secret_parts(&self.keypair_seed, &[0u8; 32]);
        if seen.contains(&me.public_key()) {
            return Err(NetworkError::Config("own key listed as a peer".into()));
        }
        Ok(())
    }
}

/// What the network delivers to the node.
#[derive(Debug)]
pub enum NetEvent {
    /// A message from an authenticated member, at most `message_bytes_max` bytes.
    Message {
        from: PublicKey,
        bytes: Vec<u8>,
        /// The bytes' share of the sender's inbound budget, given back when the event is dropped:
        /// keep the event until the message is handled.
        permit: InboundPermit,
    },
    /// A request; send the response on `reply` (dropping it fails the request).
    Request {
        from: PublicKey,
        bytes: Vec<u8>,
        reply: tokio::sync::oneshot::Sender<Vec<u8>>,
    },
    PeerConnected(PublicKey),
    PeerDisconnected(PublicKey),
}

/// A snapshot of the network counters, for the node's metrics.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct NetworkStats {
    pub messages_in: u64,
    pub messages_out: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    /// Outbound messages dropped: peer queue full, peer not connected, or over the cap.
    pub messages_dropped_out: u64,
    /// Inbound messages dropped because the consumer of [`NetEvent`]s fell behind.
    pub messages_dropped_in: u64,
    /// Inbound messages dropped because their sender, or all peers together, had their budget's
    /// worth of bytes waiting for the node.
    pub messages_over_budget: u64,
    /// Bytes of the inbound messages dropped, for either reason.
    pub bytes_dropped_in: u64,
    /// Inbound frames refused for exceeding `message_bytes_max`.
    pub messages_oversized: u64,
    pub requests_in: u64,
    pub requests_out: u64,
    pub requests_failed: u64,
    /// Inbound connections refused (not a member, or over a connection limit).
    pub connections_refused: u64,
    pub peers_connected: u64,
}

/// The live counters behind [`NetworkStats`].
#[derive(Default)]
pub(crate) struct Counters {
    pub messages_in: AtomicU64,
    pub messages_out: AtomicU64,
    pub bytes_in: AtomicU64,
    pub bytes_out: AtomicU64,
    pub messages_dropped_out: AtomicU64,
    pub messages_dropped_in: AtomicU64,
    pub messages_over_budget: AtomicU64,
    pub bytes_dropped_in: AtomicU64,
    pub messages_oversized: AtomicU64,
    pub requests_in: AtomicU64,
    pub requests_out: AtomicU64,
    pub requests_failed: AtomicU64,
    pub connections_refused: AtomicU64,
}

impl Counters {
    pub(crate) fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    fn snapshot(&self, peers_connected: usize) -> NetworkStats {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        NetworkStats {
            messages_in: get(&self.messages_in),
            messages_out: get(&self.messages_out),
            bytes_in: get(&self.bytes_in),
            bytes_out: get(&self.bytes_out),
            messages_dropped_out: get(&self.messages_dropped_out),
            messages_dropped_in: get(&self.messages_dropped_in),
            messages_over_budget: get(&self.messages_over_budget),
            bytes_dropped_in: get(&self.bytes_dropped_in),
            messages_oversized: get(&self.messages_oversized),
            requests_in: get(&self.requests_in),
            requests_out: get(&self.requests_out),
            requests_failed: get(&self.requests_failed),
            connections_refused: get(&self.connections_refused),
            peers_connected: peers_connected as u64,
        }
    }
}

/// Builds the swarm, starts listening, spawns the swarm task and returns the handle and the
/// inbound events. Must be called inside a tokio runtime.
pub async fn start(
    config: NetworkConfig,
) -> Result<(NetworkHandle, tokio::sync::mpsc::Receiver<NetEvent>), NetworkError> {
    config.validate()?;
    actor::spawn(config).await
}
