//! The handle the node uses: send, broadcast, request, observe, shut down.
//!
//! Sending never goes through the swarm task: the handle puts the bytes straight into the
//! bounded queue of each connected peer's writer task, so a broadcast costs one `try_send` per
//! peer and never waits.

use super::budget::InboundBudget;
use super::{Counters, NetworkError, NetworkStats, peer};
use bytes::Bytes;
use cradle_ledger::PublicKey;
use libp2p::{Multiaddr, PeerId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;

/// The sending side of one connected peer's outbound queue.
pub(crate) struct PeerTx {
    pub tx: mpsc::Sender<Bytes>,
    /// Messages dropped for this peer since it connected, to rate-limit the warning.
    pub dropped: AtomicU64,
}

/// State shared by the handle, the swarm task and the per-peer tasks.
pub(crate) struct Shared {
    pub local_peer_id: PeerId,
    /// Every member but this node, both ways; changes when a governance change takes effect.
    pub members: RwLock<Members>,
    /// Exactly the connected members, each with its writer's queue.
    pub outbound: Mutex<HashMap<PeerId, PeerTx>>,
    pub listen_addrs: Mutex<Vec<Multiaddr>>,
    pub counters: Counters,
    /// Bytes of inbound messages waiting for the node, per peer and in all.
    pub inbound: Arc<InboundBudget>,
    pub message_bytes_max: usize,
    pub request_timeout: Duration,
    pub control: libp2p_stream::Control,
}

/// The members this node talks to, by PeerId and by key.
#[derive(Default)]
pub(crate) struct Members {
    pub by_peer: HashMap<PeerId, PublicKey>,
    pub by_key: HashMap<PublicKey, PeerId>,
}

/// Locks a mutex, recovering the data if a panicking thread poisoned it (the maps stay valid).
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

/// Reads an RwLock, recovering the data if a panicking thread poisoned it.
pub(crate) fn read<T>(m: &RwLock<T>) -> std::sync::RwLockReadGuard<'_, T> {
    m.read().unwrap_or_else(|e| e.into_inner())
}

pub(crate) fn write<T>(m: &RwLock<T>) -> std::sync::RwLockWriteGuard<'_, T> {
    m.write().unwrap_or_else(|e| e.into_inner())
}

/// Warn on the first drop and then every this many, so a stuck peer cannot flood the log.
const DROP_WARN_EVERY: u64 = 1024;

impl Shared {
    /// The member key of `peer`, if it is a member now.
    pub fn member_key(&self, peer: &PeerId) -> Option<PublicKey> {
        read(&self.members).by_peer.get(peer).copied()
    }

    pub fn is_member(&self, peer: &PeerId) -> bool {
        read(&self.members).by_peer.contains_key(peer)
    }

    fn peer_id(&self, key: &PublicKey) -> Option<PeerId> {
        read(&self.members).by_key.get(key).copied()
    }

    /// Queues `bytes` for one connected peer; drops and counts if its queue is full.
    fn enqueue(&self, peer: &PeerId, slot: &PeerTx, bytes: Bytes) {
        match slot.tx.try_send(bytes) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) | Err(mpsc::error::TrySendError::Closed(_)) => {
                Counters::add(&self.counters.messages_dropped_out, 1);
                let n = slot.dropped.fetch_add(1, Ordering::Relaxed);
                if n.is_multiple_of(DROP_WARN_EVERY) {
                    tracing::warn!(%peer, dropped = n + 1, "outbound queue full, dropping message");
                }
            }
        }
    }

    fn check_size(&self, len: usize) -> Result<(), NetworkError> {
        if len > self.message_bytes_max {
            Counters::add(&self.counters.messages_dropped_out, 1);
            tracing::warn!(
                len,
                max = self.message_bytes_max,
                "refusing to send oversized message"
            );
            return Err(NetworkError::TooLarge {
                len,
                max: self.message_bytes_max,
            });
        }
        Ok(())
    }
}

/// What stops the swarm task, and the task itself; taken by the first `shutdown`.
pub(crate) type TaskControl = (oneshot::Sender<()>, JoinHandle<()>);

/// A cloneable handle to the running network.
#[derive(Clone)]
pub struct NetworkHandle {
    pub(crate) shared: Arc<Shared>,
    pub(crate) task: Arc<Mutex<Option<TaskControl>>>,
    /// The member list the swarm task should take up next.
    pub(crate) members_tx: Arc<tokio::sync::watch::Sender<Option<Vec<super::Peer>>>>,
}

impl NetworkHandle {
    /// Queues `bytes` for every connected member. Never blocks; a member whose queue is full
    /// misses this message (counted in `messages_dropped_out`), the others still get it.
    pub fn broadcast(&self, bytes: Bytes) {
        if self.shared.check_size(bytes.len()).is_err() {
            return;
        }
        let outbound = lock(&self.shared.outbound);
        for (peer, slot) in outbound.iter() {
            self.shared.enqueue(peer, slot, bytes.clone());
        }
    }

    /// Queues `bytes` for one member. Never blocks; drops (and counts) if the member is not
    /// connected or its queue is full.
    pub fn send(&self, to: &PublicKey, bytes: Bytes) {
        if self.shared.check_size(bytes.len()).is_err() {
            return;
        }
        let Some(peer) = self.shared.peer_id(to) else {
            Counters::add(&self.shared.counters.messages_dropped_out, 1);
            tracing::warn!(%to, "not sending to a key that is not a member");
            return;
        };
        let outbound = lock(&self.shared.outbound);
        match outbound.get(&peer) {
            Some(slot) => self.shared.enqueue(&peer, slot, bytes),
            None => {
                Counters::add(&self.shared.counters.messages_dropped_out, 1);
                tracing::debug!(%to, "member not connected, dropping message");
            }
        }
    }

    /// Sends a request to a connected member and waits for its response, at most
    /// `request_timeout_ms`. The response is capped at `message_bytes_max` like any message.
    pub async fn request(&self, to: &PublicKey, bytes: Vec<u8>) -> Result<Vec<u8>, NetworkError> {
        let shared = &self.shared;
        shared.check_size(bytes.len())?;
        let peer = shared.peer_id(to).ok_or(NetworkError::UnknownPeer(*to))?;
        if !lock(&shared.outbound).contains_key(&peer) {
            return Err(NetworkError::NotConnected(*to));
        }
        Counters::add(&shared.counters.requests_out, 1);
        let result =
            tokio::time::timeout(shared.request_timeout, peer::request(shared, peer, &bytes)).await;
        let result = match result {
            Ok(Ok(response)) => return Ok(response),
            Ok(Err(reason)) => NetworkError::RequestFailed { peer: *to, reason },
            Err(_) => NetworkError::Timeout {
                peer: *to,
                timeout_ms: u64::try_from(shared.request_timeout.as_millis()).unwrap_or(u64::MAX),
            },
        };
        Counters::add(&shared.counters.requests_failed, 1);
        Err(result)
    }

    /// Makes `peers` the members this node talks to, from now on: connections of members no
    /// longer listed are closed and refused, new members are admitted and dialed. The driver
    /// calls it when a governance change takes effect.
    pub fn set_members(&self, peers: Vec<super::Peer>) {
        self.members_tx.send_replace(Some(peers));
    }

    /// The members connected now.
    pub fn connected_peers(&self) -> Vec<PublicKey> {
        lock(&self.shared.outbound)
            .keys()
            .filter_map(|p| self.shared.member_key(p))
            .collect()
    }

    pub fn local_peer_id(&self) -> PeerId {
        self.shared.local_peer_id
    }

    /// The addresses the node listens on (known once `start` has returned).
    pub fn listen_addrs(&self) -> Vec<Multiaddr> {
        lock(&self.shared.listen_addrs).clone()
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> NetworkStats {
        let connected = lock(&self.shared.outbound).len();
        self.shared.counters.snapshot(connected)
    }

    /// Stops the swarm task and every peer task and closes all connections. Other clones of
    /// the handle stay valid but reach no one.
    pub async fn shutdown(self) {
        let task = lock(&self.task).take();
        if let Some((stop, join)) = task {
            let _ = stop.send(());
            if let Err(e) = join.await {
                tracing::warn!(error = %e, "network task ended abnormally");
            }
        }
        lock(&self.shared.outbound).clear();
    }
}
