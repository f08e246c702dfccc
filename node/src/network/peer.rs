//! Per-peer tasks: the writer behind each outbound queue, the reader of each inbound message
//! stream, and the serving of inbound requests.
//!
//! Readers and request servers only deliver to the node with `try_send`: a consumer that falls
//! behind loses messages (counted and warned per peer) but never blocks a reader, so a flood from
//! one peer cannot hold the streams of the others. A message is delivered only with a charge on
//! its sender's inbound byte budget ([`super::budget`]), so a flood cannot fill the node's memory
//! or the room the others' messages need either.

use super::behaviour::{MSG_PROTOCOL, REQ_PROTOCOL};
use super::codec::{FrameError, read_frame, write_frame};
use super::handle::Shared;
use super::{
    Counters, EVENTS_RESERVED, INBOUND_REQUESTS_MAX, INBOUND_REQUESTS_PER_PEER_MAX, NetEvent,
};
use bytes::Bytes;
use futures::StreamExt as _;
use futures::io::{AsyncWriteExt as _, BufReader, BufWriter};
use libp2p::{PeerId, Stream};
use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::{AbortHandle, JoinSet};

/// Frames written before one flush, so one busy peer's batch stays bounded.
const WRITE_BATCH_MAX: usize = 256;
/// Socket-side buffers of the message streams.
const STREAM_BUFFER_BYTES: usize = 64 * 1024;
/// How long opening a stream may take before the writer retries.
const OPEN_STREAM_TIMEOUT: Duration = Duration::from_secs(5);
/// Writer retry delays after a failed stream.
const REOPEN_BACKOFF_MIN: Duration = Duration::from_millis(50);
const REOPEN_BACKOFF_MAX: Duration = Duration::from_secs(2);
const DROP_WARN_EVERY: u64 = 1024;

/// Drains one peer's outbound queue into a long-lived message stream until the queue closes
/// (the swarm task closes it when the peer disconnects). A failed stream is reopened; messages
/// queued meanwhile wait in the bounded queue, and new ones are dropped when it is full. The
/// batch a stream failed on is written once more on the next stream: when two members dial
/// each other at once, the first stream may be on the connection that is then closed, and its
/// first messages would otherwise be lost (a receiver drops what it already has).
pub async fn run_writer(shared: Arc<Shared>, peer: PeerId, mut rx: mpsc::Receiver<Bytes>) {
    let mut control = shared.control.clone();
    let mut backoff = REOPEN_BACKOFF_MIN;
    let mut carried: Option<Vec<Bytes>> = None;
    loop {
        let stream = match tokio::time::timeout(
            OPEN_STREAM_TIMEOUT,
            control.open_stream(peer, MSG_PROTOCOL),
        )
        .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "cannot open message stream, retrying");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(REOPEN_BACKOFF_MAX);
                continue;
            }
            Err(_) => {
                tracing::debug!(%peer, "opening message stream timed out, retrying");
                continue;
            }
        };
        backoff = REOPEN_BACKOFF_MIN;
        let mut writer = BufWriter::with_capacity(STREAM_BUFFER_BYTES, stream);
        loop {
            let (batch, retry) = match carried.take() {
                Some(batch) => (batch, true),
                None => {
                    let Some(first) = rx.recv().await else {
                        let _ = writer.close().await;
                        return;
                    };
                    let mut batch = vec![first];
                    while batch.len() < WRITE_BATCH_MAX {
                        match rx.try_recv() {
                            Ok(bytes) => batch.push(bytes),
                            Err(_) => break,
                        }
                    }
                    (batch, false)
                }
            };
            match write_batch(&mut writer, &batch).await {
                Ok(()) => {
                    let bytes: usize = batch.iter().map(Bytes::len).sum();
                    Counters::add(&shared.counters.messages_out, batch.len() as u64);
                    Counters::add(&shared.counters.bytes_out, bytes as u64);
                }
                Err(e) if !retry => {
                    tracing::debug!(%peer, error = %e, "message stream failed; its batch goes on the next");
                    carried = Some(batch);
                    break;
                }
                Err(e) => {
                    Counters::add(&shared.counters.messages_dropped_out, batch.len() as u64);
                    tracing::debug!(%peer, error = %e, lost = batch.len(), "message stream failed");
                    break;
                }
            }
        }
    }
}

async fn write_batch(writer: &mut BufWriter<Stream>, batch: &[Bytes]) -> std::io::Result<()> {
    for bytes in batch {
        write_frame(writer, bytes).await?;
    }
    writer.flush().await
}

/// Accepts the message streams members open to us: one reader per peer; a newer stream from
/// the same peer (its writer reconnected) replaces the older one.
pub async fn accept_messages(
    shared: Arc<Shared>,
    events: mpsc::Sender<NetEvent>,
    mut incoming: libp2p_stream::IncomingStreams,
) {
    let mut readers = JoinSet::new();
    let mut by_peer: HashMap<PeerId, AbortHandle> = HashMap::new();
    loop {
        tokio::select! {
            next = incoming.next() => {
                let Some((peer, stream)) = next else { return };
                if !shared.is_member(&peer) {
                    tracing::warn!(%peer, "dropping message stream from a non-member");
                    continue;
                }
                let handle = readers.spawn(run_reader(shared.clone(), events.clone(), peer, stream));
                if let Some(old) = by_peer.insert(peer, handle) {
                    old.abort();
                }
            }
            Some(_) = readers.join_next(), if !readers.is_empty() => {
                by_peer.retain(|_, h| !h.is_finished());
            }
        }
    }
}

/// Reads one peer's message stream and delivers each frame as a [`NetEvent::Message`].
async fn run_reader(
    shared: Arc<Shared>,
    events: mpsc::Sender<NetEvent>,
    peer: PeerId,
    stream: Stream,
) {
    let Some(from) = shared.member_key(&peer) else {
        return;
    };
    let mut reader = BufReader::with_capacity(STREAM_BUFFER_BYTES, stream);
    let mut dropped: u64 = 0;
    loop {
        let bytes = match read_frame(&mut reader, shared.message_bytes_max).await {
            Ok(Some(bytes)) => bytes,
            Ok(None) => return,
            Err(FrameError::TooLarge { len, max }) => {
                // The stream cannot be resynchronised without reading the body, so it is
                // dropped (reset); the peer's writer opens a new one for later messages.
                Counters::add(&shared.counters.messages_oversized, 1);
                tracing::warn!(%peer, len, max, "oversized message refused, resetting stream");
                return;
            }
            Err(e) => {
                tracing::debug!(%peer, error = %e, "message stream ended");
                return;
            }
        };
        let len = bytes.len() as u64;
        let permit = match shared.inbound.try_charge(from, bytes.len()) {
            Ok(permit) => permit,
            Err(over) => {
                Counters::add(&shared.counters.messages_over_budget, 1);
                Counters::add(&shared.counters.bytes_dropped_in, len);
                if dropped.is_multiple_of(DROP_WARN_EVERY) {
                    tracing::warn!(%peer, dropped = dropped + 1, ?over, len,
                        "inbound byte budget spent, dropping inbound message");
                }
                dropped += 1;
                continue;
            }
        };
        // Messages may not take the last slots: connect/disconnect and requests need them.
        // A message not delivered drops its permit here, which gives its bytes back.
        let delivered = if events.capacity() <= EVENTS_RESERVED {
            Err(None)
        } else {
            events
                .try_send(NetEvent::Message {
                    from,
                    bytes,
                    permit,
                })
                .map_err(Some)
        };
        match delivered {
            Ok(()) => {
                Counters::add(&shared.counters.messages_in, 1);
                Counters::add(&shared.counters.bytes_in, len);
            }
            Err(Some(mpsc::error::TrySendError::Closed(_))) => return,
            Err(_) => {
                Counters::add(&shared.counters.messages_dropped_in, 1);
                Counters::add(&shared.counters.bytes_dropped_in, len);
                if dropped.is_multiple_of(DROP_WARN_EVERY) {
                    tracing::warn!(%peer, dropped = dropped + 1, "event consumer behind, dropping inbound message");
                }
                dropped += 1;
            }
        }
    }
}

/// Accepts request streams and serves each in its own task, at most
/// [`INBOUND_REQUESTS_MAX`] at once over all peers and [`INBOUND_REQUESTS_PER_PEER_MAX`] per
/// peer, so one member cannot take every slot from the others.
pub async fn accept_requests(
    shared: Arc<Shared>,
    events: mpsc::Sender<NetEvent>,
    mut incoming: libp2p_stream::IncomingStreams,
) {
    let mut servers = JoinSet::new();
    let mut per_peer: HashMap<PeerId, usize> = HashMap::new();
    loop {
        tokio::select! {
            next = incoming.next() => {
                let Some((peer, stream)) = next else { return };
                if !shared.is_member(&peer) {
                    tracing::warn!(%peer, "dropping request stream from a non-member");
                    continue;
                }
                let in_flight = per_peer.entry(peer).or_default();
                if servers.len() >= INBOUND_REQUESTS_MAX || *in_flight >= INBOUND_REQUESTS_PER_PEER_MAX {
                    Counters::add(&shared.counters.requests_failed, 1);
                    tracing::warn!(%peer, in_flight = *in_flight, "too many inbound requests, refusing one");
                    continue;
                }
                *in_flight += 1;
                let shared = shared.clone();
                let events = events.clone();
                servers.spawn(async move {
                    serve_request(&shared, &events, peer, stream).await;
                    peer
                });
            }
            Some(done) = servers.join_next(), if !servers.is_empty() => {
                // A server that panicked is not attributed; its slot stays taken, which only
                // tightens that peer's limit.
                if let Ok(peer) = done
                    && let Some(n) = per_peer.get_mut(&peer)
                {
                    *n = n.saturating_sub(1);
                    if *n == 0 {
                        per_peer.remove(&peer);
                    }
                }
            }
        }
    }
}

async fn serve_request(
    shared: &Shared,
    events: &mpsc::Sender<NetEvent>,
    peer: PeerId,
    mut stream: Stream,
) {
    let Some(from) = shared.member_key(&peer) else {
        return;
    };
    let deadline = shared.request_timeout;
    let bytes =
        match tokio::time::timeout(deadline, read_frame(&mut stream, shared.message_bytes_max))
            .await
        {
            Ok(Ok(Some(bytes))) => bytes,
            Ok(Err(FrameError::TooLarge { len, max })) => {
                Counters::add(&shared.counters.messages_oversized, 1);
                tracing::warn!(%peer, len, max, "oversized request refused");
                return;
            }
            Ok(_) | Err(_) => {
                tracing::debug!(%peer, "request stream ended before a request");
                return;
            }
        };
    let (reply, response) = oneshot::channel();
    if events
        .try_send(NetEvent::Request { from, bytes, reply })
        .is_err()
    {
        Counters::add(&shared.counters.messages_dropped_in, 1);
        tracing::warn!(%peer, "event consumer behind, dropping inbound request");
        return;
    }
    Counters::add(&shared.counters.requests_in, 1);
    let Ok(Ok(response)) = tokio::time::timeout(deadline, response).await else {
        tracing::debug!(%peer, "request not answered");
        return;
    };
    if response.len() > shared.message_bytes_max {
        tracing::warn!(%peer, len = response.len(), "response over the cap not sent");
        return;
    }
    let sent = async {
        write_frame(&mut stream, &response).await?;
        stream.close().await
    };
    if let Err(e) = sent.await {
        tracing::debug!(%peer, error = %e, "response not delivered");
    }
}

/// The client side of one request: open a stream, write the request, half-close, read the
/// response. The caller applies the timeout.
pub async fn request(shared: &Shared, peer: PeerId, bytes: &[u8]) -> Result<Vec<u8>, String> {
    let mut control = shared.control.clone();
    let mut stream = control
        .open_stream(peer, REQ_PROTOCOL)
        .await
        .map_err(|e| e.to_string())?;
    write_frame(&mut stream, bytes)
        .await
        .map_err(|e| e.to_string())?;
    stream.close().await.map_err(|e| e.to_string())?;
    match read_frame(&mut stream, shared.message_bytes_max).await {
        Ok(Some(response)) => Ok(response),
        Ok(None) => Err("peer closed the stream without a response".into()),
        Err(e) => Err(e.to_string()),
    }
}
