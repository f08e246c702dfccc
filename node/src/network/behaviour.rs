//! The libp2p behaviour and the swarm it runs in.
//!
//! Order matters: the allow list is asked first, so a stranger's connection is refused as "not
//! allowed" (and logged as such) before any connection limit is charged for it.

use super::{NetworkError, PEERS_MAX};
use libp2p::{
    PeerId, StreamProtocol, Swarm, allow_block_list, connection_limits, noise, ping,
    swarm::NetworkBehaviour, tcp, yamux,
};
use std::time::Duration;

/// Long-lived stream of length-prefixed messages, one per direction per member pair.
pub const MSG_PROTOCOL: StreamProtocol = StreamProtocol::new("/cradle/msg/1");
/// One request and one response per stream.
pub const REQ_PROTOCOL: StreamProtocol = StreamProtocol::new("/cradle/req/1");

/// Connections kept per member: two, because two members that dial each other at the same
/// moment end up with one connection each way, and refusing either could refuse both.
const CONNECTIONS_PER_PEER_MAX: u32 = 2;
/// Ping cadence; a peer that misses a ping for `PING_TIMEOUT` is disconnected (and redialed).
const PING_INTERVAL: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections stay open while members are quiet; ping and the message streams keep them busy.
const IDLE_CONNECTION_TIMEOUT: Duration = Duration::from_secs(3600);

#[derive(NetworkBehaviour)]
pub struct Behaviour {
    pub allow: allow_block_list::Behaviour<allow_block_list::AllowedPeers>,
    pub limits: connection_limits::Behaviour,
    pub ping: ping::Behaviour,
    pub stream: libp2p_stream::Behaviour,
}

/// The connection limits for a consortium of `peers` other members.
pub(super) fn limits(peers: usize) -> connection_limits::ConnectionLimits {
    let peers = u32::try_from(peers.min(PEERS_MAX)).unwrap_or(u32::MAX);
    let established = peers.saturating_mul(CONNECTIONS_PER_PEER_MAX).max(1);
    connection_limits::ConnectionLimits::default()
        // Handshakes in flight: room for every member plus a few strangers being turned away.
        .with_max_pending_incoming(Some(peers.saturating_add(8)))
        .with_max_pending_outgoing(Some(peers.max(1)))
        .with_max_established_incoming(Some(established))
        .with_max_established_outgoing(Some(established))
        .with_max_established(Some(established))
        .with_max_established_per_peer(Some(CONNECTIONS_PER_PEER_MAX))
}

/// Builds the swarm for `keypair`, allowing exactly `members`.
pub fn build_swarm(
    keypair: libp2p::identity::Keypair,
    members: impl Iterator<Item = PeerId>,
    peer_count: usize,
) -> Result<Swarm<Behaviour>, NetworkError> {
    let mut allow = allow_block_list::Behaviour::<allow_block_list::AllowedPeers>::default();
    for peer in members {
        allow.allow_peer(peer);
    }
    let swarm = libp2p::SwarmBuilder::with_existing_identity(keypair)
        .with_tokio()
        .with_tcp(
            tcp::Config::default().nodelay(true),
            noise::Config::new,
            yamux::Config::default,
        )
        .map_err(|e| NetworkError::Transport(e.to_string()))?
        .with_behaviour(|_key| Behaviour {
            allow,
            limits: connection_limits::Behaviour::new(limits(peer_count)),
            ping: ping::Behaviour::new(
                ping::Config::new()
                    .with_interval(PING_INTERVAL)
                    .with_timeout(PING_TIMEOUT),
            ),
            stream: libp2p_stream::Behaviour::new(),
        })
        .map_err(|e| NetworkError::Transport(e.to_string()))?
        .with_swarm_config(|c| c.with_idle_connection_timeout(IDLE_CONNECTION_TIMEOUT))
        .build();
    Ok(swarm)
}
