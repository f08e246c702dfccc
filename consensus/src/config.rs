//! Consensus parameters: the timeouts of Algorithm 1 and how they grow with the round.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::types::{Error, Round};

/// Longest any single timeout may be, configured or grown: ten minutes.
pub const TIMEOUT_MS_MAX: u64 = 600_000;

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

/// Timeouts of one round are `base + delta × round` milliseconds, capped at [`TIMEOUT_MS_MAX`],
/// so that after the network stabilises some round is long enough for honest validators to hear
/// each other (the paper's assumption that timeouts grow with the round).
#[derive(Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
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
    /// Every base timeout in `1..=TIMEOUT_MS_MAX` and the growth at most `TIMEOUT_MS_MAX`.
    pub fn validate(&self) -> Result<(), Error> {
        let bases = [
            ("timeout_propose_ms", self.timeout_propose_ms),
            ("timeout_prevote_ms", self.timeout_prevote_ms),
            ("timeout_precommit_ms", self.timeout_precommit_ms),
        ];
        for (name, value) in bases {
            if value == 0 || value > TIMEOUT_MS_MAX {
                return Err(Error::InvalidConfig {
                    field: name,
                    value,
                    max: TIMEOUT_MS_MAX,
                });
            }
        }
        if self.timeout_delta_ms > TIMEOUT_MS_MAX {
            return Err(Error::InvalidConfig {
                field: "timeout_delta_ms",
                value: self.timeout_delta_ms,
                max: TIMEOUT_MS_MAX,
            });
        }
        Ok(())
    }

    /// The timeout that ends `step` in `round`: `timeoutPropose(round)` and friends.
    pub fn timeout_ms(&self, step: Step, round: Round) -> u64 {
        let base = match step {
            Step::Propose => self.timeout_propose_ms,
            Step::Prevote => self.timeout_prevote_ms,
            Step::Precommit => self.timeout_precommit_ms,
        };
        base.saturating_add(self.timeout_delta_ms.saturating_mul(u64::from(round)))
            .min(TIMEOUT_MS_MAX)
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
        assert_eq!(c.timeout_ms(Step::Prevote, Round::MAX), TIMEOUT_MS_MAX);
    }

    #[test]
    fn config_rejects_zero_and_huge_timeouts() {
        let zero = Config {
            timeout_prevote_ms: 0,
            ..Config::default()
        };
        assert!(zero.validate().is_err());
        let huge = Config {
            timeout_delta_ms: TIMEOUT_MS_MAX + 1,
            ..Config::default()
        };
        assert!(huge.validate().is_err());
    }
}
