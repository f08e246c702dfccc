//! Catch-up: fetching decided blocks from peers when this node is behind, and serving them.
//!
//! Every block received is checked as a light client would (its commit certificate against
//! the validators in force at its own height, for its hash) and then re-executed in full,
//! signatures included, before it is committed: a peer's whole answer at once, as
//! [`super::catchup`] says. A peer cannot make this node accept anything the
//! consortium did not decide, nor hold catch-up by announcing heights it does not serve: see
//! [`super::sync_peers`] for whom a request goes to.

use std::time::{Duration, Instant};

use cradle_consensus::{Input, Value};
use cradle_ledger::PublicKey;
use cradle_ledger::codec::BoundedVec;
use tokio::sync::oneshot;
use tracing::{debug, info, warn};

use super::DriverError;
use super::actor::Driver;
use super::blocks::Adoption;
use super::catchup::{self, SYNC_BATCH};
use super::ingress::Ingress;
use crate::wire::{MESSAGE_BYTES_MAX, SYNC_BLOCKS_MAX, SyncRequest, SyncResponse};

/// A sync request unanswered for this long is given up and may go to another peer.
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a node one block behind a peer waits for consensus before fetching the block.
const SYNC_STUCK_AFTER: Duration = Duration::from_secs(3);
/// Bytes of blocks one response carries at most, under the message cap.
const SYNC_RESPONSE_BYTES_MAX: usize = MESSAGE_BYTES_MAX / 2;

impl Driver {
    /// Records the height a peer announced; if a peer we believe is ahead of us, asks it for the
    /// blocks we miss.
    pub(super) fn note_peer_height(&mut self, peer: PublicKey, height: u64) {
        let now = Instant::now();
        self.sync_peers.note(peer, height, now);
        self.maybe_request_blocks(now);
    }

    /// Asks the trusted peer furthest ahead for the blocks after our tip, unless a request is
    /// already out.
    fn maybe_request_blocks(&mut self, now: Instant) {
        if let Some((_, since)) = self.sync_in_flight
            && now.saturating_duration_since(since) < SYNC_TIMEOUT
        {
            return;
        }
        // A peer one block ahead is normal at every height: its precommits for the block we
        // are deciding are on their way. Fetch only from a peer further ahead, or when we have
        // been stuck behind one for a while; serving blocks is not free for the peer.
        let stuck = self.last_commit.elapsed() >= SYNC_STUCK_AFTER;
        let above = if stuck {
            self.tip.height
        } else {
            self.tip.height.saturating_add(1)
        };
        if let Some(peer) = self.sync_peers.pick(above, now) {
            self.request_blocks(peer, now);
        }
    }

    fn request_blocks(&mut self, peer: PublicKey, now: Instant) {
        self.sync_in_flight = Some((peer, now));
        let request = SyncRequest {
            from_height: self.tip.height + 1,
            max_blocks: SYNC_BATCH,
        };
        debug!(%peer, from = request.from_height, "requesting blocks");
        let network = self.network.clone();
        let ingress = self.ingress_tx.clone();
        tokio::spawn(async move {
            let result =
                match tokio::time::timeout(SYNC_TIMEOUT, network.request(&peer, request.encode()))
                    .await
                {
                    Err(_) => Err("timed out".to_string()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Ok(Ok(bytes)) => SyncResponse::decode(&bytes).map_err(|e| e.to_string()),
                };
            let _ = ingress.send(Ingress::Synced { from: peer, result }).await;
        });
    }

    /// Applies the blocks a peer sent, each checked against its certificate and re-executed.
    pub(super) fn on_synced(
        &mut self,
        from: PublicKey,
        result: Result<SyncResponse, String>,
    ) -> Result<(), DriverError> {
        // The answer to a request given up on may come after the next one went out: it does not
        // end that one, but its blocks are checked like any others.
        if self.sync_in_flight.is_some_and(|(peer, _)| peer == from) {
            self.sync_in_flight = None;
        }
        let now = Instant::now();
        let response = match result {
            Ok(r) => r,
            Err(e) => {
                let ignored_for = self.sync_peers.failed(from, now);
                warn!(peer = %from, error = %e, ?ignored_for, "block sync failed");
                self.maybe_request_blocks(now);
                return Ok(());
            }
        };
        // What the peer claimed when it was asked: it owes us blocks up to there.
        let claimed = self.sync_peers.claimed(&from, now);
        let run = catchup::apply_certified(&self.store, &self.members, self.tip, &response.blocks)?;
        let applied = run.applied.len();
        let bad = match &run.refused {
            Some(reason) => {
                warn!(peer = %from, tip = self.tip.height, error = %reason, "peer sent a block that fails its checks");
                true
            }
            None => false,
        };
        // The whole run is on disk now; the driver and the core learn it block by block, as if
        // each had been decided here, so a set change is taken up at its own height.
        self.written_ahead = run
            .applied
            .iter()
            .map(|a| (a.block.block.header.height, a.block.block.id()))
            .collect();
        let learnt = (|| {
            for a in run.applied {
                let certificate = a.block.certificate.clone();
                self.written_ahead.remove(&a.block.block.header.height);
                self.committed(&a.block, &a.executed, true, Adoption::Known(a.adopted))?;
                self.feed(Input::Committed { certificate })?;
            }
            Ok::<_, DriverError>(())
        })();
        self.written_ahead.clear();
        learnt?;
        if applied > 0 {
            info!(peer = %from, applied, height = self.tip.height, "caught up from peer");
            self.sync_peers.served(&from);
        }
        // A peer that sent something false, or nothing while we are still below the height it
        // claimed, has not backed its claim (our own tip passing the claim meanwhile is no fault
        // of its). Heights only grow, so an honest peer never claims what it cannot serve.
        if bad || (applied == 0 && self.tip.height < claimed) {
            let ignored_for = self.sync_peers.failed(from, now);
            warn!(peer = %from, claimed, tip = self.tip.height, ?ignored_for,
                "peer did not serve the blocks it announced; asking others");
        } else {
            self.sync_peers.note(from, response.tip_height, now);
        }
        self.maybe_request_blocks(now);
        Ok(())
    }

    /// Answers a peer's request for blocks from our store, off the driver's task.
    pub(super) fn serve_sync(
        &mut self,
        from: PublicKey,
        bytes: Vec<u8>,
        reply: oneshot::Sender<Vec<u8>>,
    ) {
        let request = match SyncRequest::decode(&bytes) {
            Ok(r) => r,
            Err(e) => {
                warn!(peer = %from, error = %e, "malformed sync request");
                return;
            }
        };
        let store = self.store.clone();
        let tip_height = self.tip.height;
        tokio::task::spawn_blocking(move || {
            let mut blocks = Vec::new();
            let mut size = 0;
            let count = usize::from(request.max_blocks).min(SYNC_BLOCKS_MAX);
            for height in request.from_height..request.from_height.saturating_add(count as u64) {
                if height > tip_height {
                    break;
                }
                match store.block_bytes(height) {
                    Ok(Some(b)) => {
                        if size + b.len() > SYNC_RESPONSE_BYTES_MAX && !blocks.is_empty() {
                            break;
                        }
                        size += b.len();
                        blocks.push(b);
                    }
                    Ok(None) => break,
                    Err(e) => {
                        warn!(error = %e, "reading blocks for a peer failed");
                        break;
                    }
                }
            }
            let blocks = BoundedVec::new(blocks).unwrap_or_else(|_| BoundedVec::empty());
            let _ = reply.send(SyncResponse { tip_height, blocks }.encode());
        });
    }
}
