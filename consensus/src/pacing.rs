//! When a proposer proposes. No fixed interval sits on the critical path: a proposer that holds
//! transactions proposes as soon as the core asks, after a short batching window counted from
//! the moment the first of them arrived (so that a burst shares one block); a proposer with
//! nothing to propose waits for the heartbeat, so that an idle chain still makes one empty
//! block per heartbeat and block time, which grant expiry reads, keeps advancing.
//!
//! The rule is a pure function of elapsed times, shared by the node and the simulator, which
//! runs it against random transaction arrivals.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::config::{Config, TIMEOUT_MS_MIN};
use crate::types::Error;

/// Longest batching window: a tenth of a second. Longer windows only add latency.
pub const BATCH_WINDOW_MS_MAX: u64 = 100;

/// The proposer's pacing, from genesis.
///
/// The field order is the borsh encoding genesis hashes into its chain id; do not reorder.
/// Genesis flattens this struct into its `consensus` object, which refuses unknown fields.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Pacing {
    /// How long the first pending transaction waits for others to share its block.
    pub batch_window_ms: u64,
    /// Longest time between two blocks while no transaction is pending.
    pub heartbeat_ms: u64,
}

impl Default for Pacing {
    fn default() -> Self {
        Self {
            batch_window_ms: 5,
            heartbeat_ms: 1_000,
        }
    }
}

impl Pacing {
    /// Every problem at once: the window at most [`BATCH_WINDOW_MS_MAX`]; the heartbeat at least
    /// [`TIMEOUT_MS_MIN`] and the window, and below `timeout_propose_ms`, since the other
    /// validators give up on an idle proposer after that long.
    pub fn problems(&self, timeouts: &Config) -> Vec<Error> {
        let mut problems = Vec::new();
        if self.batch_window_ms > BATCH_WINDOW_MS_MAX {
            problems.push(Error::InvalidConfig {
                field: "batch_window_ms",
                value: self.batch_window_ms,
                min: 0,
                max: BATCH_WINDOW_MS_MAX,
            });
        }
        // Each bound only from a value that is itself valid: one mistake, one problem.
        let heartbeat_min = TIMEOUT_MS_MIN.max(self.batch_window_ms.min(BATCH_WINDOW_MS_MAX));
        let heartbeat_max = match timeouts.timeout_propose_ms {
            propose if propose >= TIMEOUT_MS_MIN => propose - 1,
            _ => u64::MAX,
        };
        if !(heartbeat_min..=heartbeat_max).contains(&self.heartbeat_ms) {
            problems.push(Error::InvalidConfig {
                field: "heartbeat_ms",
                value: self.heartbeat_ms,
                min: heartbeat_min,
                max: heartbeat_max,
            });
        }
        problems
    }

    /// How many more milliseconds the proposer waits before it builds its block, given how long
    /// ago the previous height was decided and how long the oldest pending transaction has
    /// waited (`None`: the mempool is empty). 0 means now.
    ///
    /// Late rounds propose at once: by then the round's timeouts have outlasted the heartbeat.
    pub fn wait_ms(&self, since_decided_ms: u64, pending_for_ms: Option<u64>) -> u64 {
        let heartbeat_left = self.heartbeat_ms.saturating_sub(since_decided_ms);
        match pending_for_ms {
            Some(waited) => self
                .batch_window_ms
                .saturating_sub(waited)
                .min(heartbeat_left),
            None => heartbeat_left,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pending_transactions_wait_only_the_window_from_their_arrival() {
        let p = Pacing {
            batch_window_ms: 10,
            heartbeat_ms: 1_000,
        };
        // The previous block was just decided; a transaction arrived 3 ms ago.
        assert_eq!(p.wait_ms(0, Some(3)), 7);
        // Transactions that waited through the previous height go in at once.
        assert_eq!(p.wait_ms(0, Some(40)), 0);
        // A burst at the very end of the heartbeat does not delay the heartbeat's block.
        assert_eq!(p.wait_ms(995, Some(0)), 5);
        assert_eq!(p.wait_ms(1_000, Some(0)), 0);
    }

    #[test]
    fn an_idle_proposer_waits_for_the_heartbeat_and_no_longer() {
        let p = Pacing::default();
        assert_eq!(p.wait_ms(0, None), 1_000);
        assert_eq!(p.wait_ms(400, None), 600);
        // A later round: the timeouts already outlasted the heartbeat.
        assert_eq!(p.wait_ms(3_500, None), 0);
    }

    #[test]
    fn the_heartbeat_must_end_before_the_others_give_up_on_the_proposer() {
        let timeouts = Config::default();
        assert!(Pacing::default().problems(&timeouts).is_empty());
        let slow = Pacing {
            heartbeat_ms: timeouts.timeout_propose_ms,
            ..Pacing::default()
        };
        assert!(matches!(
            slow.problems(&timeouts)[..],
            [Error::InvalidConfig {
                field: "heartbeat_ms",
                ..
            }]
        ));
        let both = Pacing {
            batch_window_ms: BATCH_WINDOW_MS_MAX + 1,
            heartbeat_ms: 0,
        };
        assert_eq!(both.problems(&timeouts).len(), 2);
    }
}
