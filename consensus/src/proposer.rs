//! Weighted round-robin proposer selection.
//!
//! The schedule is Tendermint's proposer-priority rule without re-centring (the "smooth weighted
//! round-robin" of nginx): every step each validator's priority grows by its power, the highest
//! priority proposes (ties to the lowest index) and pays back the total power. Over one period
//! of `total power` steps each validator proposes exactly as often as its power, spread out
//! rather than in runs. The proposer of `(height, round)` is entry `height + round` of that
//! period, a pure function every validator computes alike.

use crate::types::{Height, Round, ValidatorIndex, ValidatorSet};

/// Longest schedule kept; larger total powers are scaled down proportionally to fit (each
/// validator keeps at least one slot).
pub const SCHEDULE_LEN_MAX: u64 = 4_096;

/// The precomputed proposer order of a validator set.
#[derive(Clone, Debug)]
pub struct ProposerSchedule {
    order: Vec<ValidatorIndex>,
}

impl ProposerSchedule {
    pub fn new(validators: &ValidatorSet) -> Self {
        let total = validators.total_power();
        let weights: Vec<i128> = validators
            .validators()
            .iter()
            .map(|v| {
                let w = if total > SCHEDULE_LEN_MAX {
                    (u128::from(v.voting_power) * u128::from(SCHEDULE_LEN_MAX) / u128::from(total))
                        .max(1)
                } else {
                    u128::from(v.voting_power)
                };
                i128::try_from(w).unwrap_or(i128::MAX)
            })
            .collect();
        let period: i128 = weights.iter().sum();
        let mut priority = vec![0i128; weights.len()];
        let mut order = Vec::new();
        for _ in 0..period {
            for (p, w) in priority.iter_mut().zip(&weights) {
                *p += w;
            }
            let mut best = 0;
            for (i, p) in priority.iter().enumerate() {
                if *p > priority[best] {
                    best = i;
                }
            }
            priority[best] -= period;
            order.push(ValidatorIndex::try_from(best).unwrap_or(ValidatorIndex::MAX));
        }
        Self { order }
    }

    /// `proposer(h, r)` of Algorithm 1.
    pub fn proposer(&self, height: Height, round: Round) -> ValidatorIndex {
        let len = self.order.len() as u64;
        let slot = (height % len + u64::from(round) % len) % len;
        self.order[usize::try_from(slot).unwrap_or(0)]
    }

    pub fn period(&self) -> usize {
        self.order.len()
    }

    /// Whether `builder` can be the validator that built the value of a proposal in
    /// `(height, round)` that names `valid_round`.
    ///
    /// A fresh value (`valid_round` is `None`, the paper's −1) is built by the proposer of the
    /// round that proposes it, so it must be that validator. A re-proposed value (L16: `vr ≥ 0`)
    /// keeps the body, and so the builder, of the round it was first proposed in: it had a quorum
    /// of prevotes in `vr`, so it was the proposal of round `vr`, itself fresh or re-proposed from
    /// an earlier round; the first of these is at most `vr`, and nothing tells which it was. So
    /// the builder must be the proposer of some round `0..=vr`. The schedule repeats every
    /// [`Self::period`] rounds, which bounds the search whatever `vr` a peer names.
    pub fn may_have_built(
        &self,
        height: Height,
        round: Round,
        valid_round: Option<Round>,
        builder: ValidatorIndex,
    ) -> bool {
        let Some(vr) = valid_round else {
            return self.proposer(height, round) == builder;
        };
        let rounds = u64::from(vr).saturating_add(1).min(self.order.len() as u64);
        (0..rounds).any(|r| Round::try_from(r).is_ok_and(|r| self.proposer(height, r) == builder))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::Validator;

    fn set(powers: &[u64]) -> ValidatorSet {
        let vs = powers
            .iter()
            .enumerate()
            .map(|(i, p)| Validator {
                public_key: ed25519_dalek::SigningKey::from_bytes(&[i as u8 + 1; 32])
                    .verifying_key()
                    .to_bytes(),
                voting_power: *p,
            })
            .collect();
        ValidatorSet::new(vs).unwrap()
    }

    #[test]
    fn each_validator_proposes_in_proportion_to_its_power() {
        let s = ProposerSchedule::new(&set(&[3, 1, 2]));
        assert_eq!(s.period(), 6);
        let mut counts = [0; 3];
        for h in 0..6 {
            counts[usize::from(s.proposer(h, 0))] += 1;
        }
        assert_eq!(counts, [3, 1, 2]);
    }

    #[test]
    fn equal_power_rotates_through_every_validator_by_round() {
        let s = ProposerSchedule::new(&set(&[1, 1, 1, 1]));
        let rounds: Vec<_> = (0..4).map(|r| s.proposer(5, r)).collect();
        let mut sorted = rounds.clone();
        sorted.sort();
        assert_eq!(sorted, vec![0, 1, 2, 3]);
    }

    #[test]
    fn a_fresh_value_is_built_by_its_rounds_proposer_and_a_re_proposed_one_by_an_earlier_one() {
        let s = ProposerSchedule::new(&set(&[1, 1, 1, 1]));
        let (h, p) = (7, |r| s.proposer(7, r));
        assert!(s.may_have_built(h, 2, None, p(2)));
        assert!(
            !s.may_have_built(h, 2, None, p(1)),
            "fresh, built by another"
        );
        // Round 2 re-proposes the value with a quorum in round 1: first proposed in round 0 or 1.
        assert!(s.may_have_built(h, 2, Some(1), p(0)));
        assert!(s.may_have_built(h, 2, Some(1), p(1)));
        assert!(
            !s.may_have_built(h, 2, Some(1), p(2)),
            "the re-proposer did not build it"
        );
        assert!(!s.may_have_built(h, 2, Some(1), p(3)));
        // A valid round far out costs one period, and every validator has a slot in it.
        assert!((0..4).all(|v| s.may_have_built(h, Round::MAX, Some(Round::MAX - 1), v)));
        assert!(
            !s.may_have_built(h, Round::MAX, Some(Round::MAX - 1), 4),
            "not a validator"
        );
    }

    #[test]
    fn huge_powers_are_scaled_into_a_bounded_schedule() {
        let s = ProposerSchedule::new(&set(&[u64::MAX / 4, 1, u64::MAX / 4]));
        assert!(s.period() as u64 <= SCHEDULE_LEN_MAX + 3);
        assert!((0..s.period() as u64).any(|h| s.proposer(h, 0) == 1));
    }
}
