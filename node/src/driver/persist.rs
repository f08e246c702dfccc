//! Group persistence of the consensus record: one synced write covers every vote and proposal
//! the core produced while the driver handled a batch of inputs.
//!
//! The core hands each vote or proposal over with the state that must be on disk before it
//! leaves (vote-before-send). The state is one value, and each one the core hands over contains
//! all that the earlier ones of its height did (its own votes and proposals, its lock), so only
//! the latest needs writing. The driver holds the messages and the latest state, and
//! [`Driver::release`] writes the state, synced, and only then sends the messages, in the
//! order the core produced them. A crash before the release loses messages that no one saw:
//! to the others, the same as a message lost on the way.
//!
//! A decision needs no write of its own height's record: the block's synced commit supersedes
//! it (a restarted node starts at the next height and never votes at the decided one again), so
//! [`Driver::drop_superseded`] drops such a record and the held messages leave after the
//! commit.

use std::sync::atomic::Ordering;

use bytes::Bytes;
use cradle_consensus::{Height, PersistedState};
use cradle_ledger::block::Block;

use super::DriverError;
use super::actor::Driver;
use crate::wire::NetMessage;

/// What waits for the next synced write of the consensus record.
#[derive(Default)]
pub(super) struct Held {
    state: Option<Box<PersistedState<Block>>>,
    messages: Vec<Bytes>,
}

impl Driver {
    /// Keeps a message until `state` (or a later one) is on disk.
    pub(super) fn hold(&mut self, state: Box<PersistedState<Block>>, message: NetMessage) {
        if self.held.state.is_some() {
            self.metrics
                .consensus_saves_grouped
                .fetch_add(1, Ordering::Relaxed);
        }
        self.held.state = Some(state);
        self.held.messages.push(message.encode().into());
    }

    /// Sends a message that needs no write; after the held ones when there are any, so peers
    /// see the core's messages in its order.
    pub(super) fn send_in_order(&mut self, message: NetMessage) {
        let bytes: Bytes = message.encode().into();
        if self.held.messages.is_empty() {
            self.network.broadcast(bytes);
        } else {
            self.held.messages.push(bytes);
        }
    }

    /// Writes the latest held state, synced, then sends the held messages.
    pub(super) fn release(&mut self) -> Result<(), DriverError> {
        if let Some(state) = self.held.state.take() {
            self.store.save_consensus_state(&state)?;
            self.metrics.consensus_saves.fetch_add(1, Ordering::Relaxed);
        }
        for bytes in std::mem::take(&mut self.held.messages) {
            self.network.broadcast(bytes);
        }
        Ok(())
    }

    /// Before the synced commit of `height`: a held record of that height or below is
    /// superseded by it and dropped; its messages go with the next [`Driver::release`], which
    /// the commit makes once its block is on disk.
    pub(super) fn drop_superseded(&mut self, height: Height) {
        if self.held.state.as_ref().is_some_and(|s| s.height <= height) {
            self.held.state = None;
            self.metrics
                .consensus_saves_grouped
                .fetch_add(1, Ordering::Relaxed);
        }
    }
}
