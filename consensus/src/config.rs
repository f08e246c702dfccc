//! Consensus parameters: the timeouts of Algorithm 1, how they grow with the round, and the one
//! set of bounds on them. Genesis embeds [`Config`] as is (its JSON field names and borsh
//! encoding are part of the genesis document) and validates it with [`Config::problems`].

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::types::{Error, Round};

/// Shortest configured timeout: below it, rounds end before messages can cross a network.
pub const TIMEOUT_MS_MIN: u64 = 50;
/// Longest configured timeout or growth per round: one minute. Genesis bounds the block
/// interval by it too.
pub const TIMEOUT_MS_MAX: u64 = 60_000;
/// Longest any timeout grows to with the round: ten minutes.
pub const TIMEOUT_GROWN_MS_MAX: u64 = 600_000;

/// The three steps of a round; timeouts are named after the step they end.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, BorshSerialize, BorshDeserialize,
)]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum Step {
    Propose = 0,
    Prevote = 1,
    Precommit = 2,
}

/// Timeouts of one round are `base + delta × round` milliseconds, capped at
/// [`TIMEOUT_GROWN_MS_MAX`], so that after the network stabilises some round is long enough for
/// honest validators to hear each other (the paper's assumption that timeouts grow with the
/// round).
///
/// The field order is the borsh encoding genesis hashes into its chain id; do not reorder. No
/// `deny_unknown_fields`: genesis flattens this struct into its `consensus` object, which
/// refuses unknown fields itself.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct Config {
    pub timeout_propose_ms: u64,
    pub timeout_prevote_ms: u64,
    pub timeout_precommit_ms: u64,
    /// Growth of every timeout per round.
    pub timeout_delta_ms: u64,
}

impl Default for Config {
    fn default() -> Self {
        Self {
            timeout_propose_ms: 3_000,
            timeout_prevote_ms: 1_000,
            timeout_precommit_ms: 1_000,
            timeout_delta_ms: 500,
        }
    }
}

impl Config {
    /// The first of [`Config::problems`], if any.
    pub fn validate(&self) -> Result<(), Error> {
        match self.problems().into_iter().next() {
            Some(problem) => Err(problem),
            None => Ok(()),
        }
    }

    /// Every problem at once: each base timeout must lie in
    /// [`TIMEOUT_MS_MIN`]`..=`[`TIMEOUT_MS_MAX`], the growth in `1..=`[`TIMEOUT_MS_MAX`] (timeouts
    /// that never grow break the liveness argument) and at most the propose timeout.
    pub fn problems(&self) -> Vec<Error> {
        let bounded = [
            (
                "timeout_propose_ms",
                self.timeout_propose_ms,
                TIMEOUT_MS_MIN,
            ),
            (
                "timeout_prevote_ms",
                self.timeout_prevote_ms,
                TIMEOUT_MS_MIN,
            ),
            (
                "timeout_precommit_ms",
                self.timeout_precommit_ms,
                TIMEOUT_MS_MIN,
            ),
            ("timeout_delta_ms", self.timeout_delta_ms, 1),
        ];
        let mut problems: Vec<Error> = bounded
            .into_iter()
            .filter(|(_, value, min)| !(*min..=TIMEOUT_MS_MAX).contains(value))
            .map(|(field, value, min)| Error::InvalidConfig {
                field,
                value,
                min,
                max: TIMEOUT_MS_MAX,
            })
            .collect();
        if self.timeout_delta_ms > self.timeout_propose_ms {
            problems.push(Error::TimeoutDeltaExceedsPropose {
                delta_ms: self.timeout_delta_ms,
                propose_ms: self.timeout_propose_ms,
            });
        }
        problems
    }

    /// The timeout that ends `step` in `round`: `timeoutPropose(round)` and friends.
    pub fn timeout_ms(&self, step: Step, round: Round) -> u64 {
        let base = match step {
            Step::Propose => self.timeout_propose_ms,
            Step::Prevote => self.timeout_prevote_ms,
            Step::Precommit => self.timeout_precommit_ms,
        };
        base.saturating_add(self.timeout_delta_ms.saturating_mul(u64::from(round)))
            .min(TIMEOUT_GROWN_MS_MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeouts_grow_with_the_round_and_stay_bounded() {
        let c = Config::default();
        c.validate().unwrap();
        assert!(c.timeout_ms(Step::Propose, 3) > c.timeout_ms(Step::Propose, 2));
        assert_eq!(
            c.timeout_ms(Step::Prevote, Round::MAX),
            TIMEOUT_GROWN_MS_MAX
        );
    }

    #[test]
    fn config_rejects_short_long_and_flat_timeouts() {
        let short = Config {
            timeout_prevote_ms: TIMEOUT_MS_MIN - 1,
            ..Config::default()
        };
        assert!(matches!(
            short.validate(),
            Err(Error::InvalidConfig {
                field: "timeout_prevote_ms",
                ..
            })
        ));
        let huge = Config {
            timeout_delta_ms: TIMEOUT_MS_MAX + 1,
            ..Config::default()
        };
        assert!(huge.validate().is_err());
        let flat = Config {
            timeout_delta_ms: 0,
            ..Config::default()
        };
        assert!(flat.validate().is_err());
    }

    #[test]
    fn config_reports_every_problem_at_once() {
        let c = Config {
            timeout_propose_ms: 1,
            ..Config::default()
        };
        let problems = c.problems();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(matches!(
            problems[1],
            Error::TimeoutDeltaExceedsPropose {
                delta_ms: 500,
                propose_ms: 1
            }
        ));
    }
}
