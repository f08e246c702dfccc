//! Validator set changes as governance makes them, drawn from the seed: a validator joins, one
//! leaves, one's key is replaced, or voting powers change. Each change takes effect at a fixed
//! height that every node knows in advance (as the ledger's changes activate two heights after
//! the block that carries them), and every set it yields keeps the assumption the checker relies
//! on: Byzantine power below a third of the set's total, and at least one validator.
//!
//! Sets are described by seats, in set order: which simulated node holds each place, with which
//! of its keys (a rotation moves the node to its next key), and with what power. A new validator
//! takes the last place and a removal closes the gap, as the ledger's sets do, so a removal
//! changes the index of every validator after the one that left.

use crate::types::{Height, ValidatorIndex};

use super::rng::Rng;
use super::scenario::Behaviour;

/// Most nodes a run adds to the genesis cluster: observers that join the set later.
pub const JOINERS_MAX: usize = 3;

/// One place in a validator set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Seat {
    /// The simulated node that holds it: genesis nodes first, then the joiners.
    pub node: ValidatorIndex,
    /// Which of the node's keys signs for it: 0 at first, one more after each rotation.
    pub key: u8,
    pub power: u64,
}

/// What one set change does.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    /// A node that was following as an observer joins the set.
    Add(ValidatorIndex),
    /// A validator leaves the set; its node keeps running as an observer.
    Remove(ValidatorIndex),
    /// A validator's key is replaced by its next key; the node signs with it from this height.
    Rotate(ValidatorIndex),
    /// Voting powers change, membership stays.
    Power,
}

impl Change {
    /// The kinds, in the order of [`Change::kind`]: for counting a campaign's changes.
    pub const KINDS: [&'static str; 4] = ["add", "remove", "rotate", "power"];

    /// This change's index in [`Change::KINDS`].
    pub fn kind(self) -> usize {
        match self {
            Change::Add(_) => 0,
            Change::Remove(_) => 1,
            Change::Rotate(_) => 2,
            Change::Power => 3,
        }
    }
}

/// A set change: from height `at` on, the set is `seats`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SetChange {
    pub at: Height,
    pub change: Change,
    pub seats: Vec<Seat>,
}

impl SetChange {
    /// New powers for the genesis nodes, with their first keys, from height `at` on.
    pub fn reweigh(at: Height, powers: &[u64]) -> SetChange {
        SetChange {
            at,
            change: Change::Power,
            seats: genesis_seats(powers),
        }
    }
}

/// The genesis set: node `i` with its first key and power `powers[i]`.
pub fn genesis_seats(powers: &[u64]) -> Vec<Seat> {
    powers
        .iter()
        .enumerate()
        .map(|(i, &power)| Seat {
            node: i as ValidatorIndex,
            key: 0,
            power,
        })
        .collect()
}

/// Whether a set keeps the checker's assumption: not empty, and Byzantine power below a third.
pub fn is_safe(seats: &[Seat], byzantine: &[(ValidatorIndex, Behaviour)]) -> bool {
    let total: u64 = seats.iter().map(|s| s.power).sum();
    let faulty: u64 = seats
        .iter()
        .filter(|s| byzantine.iter().any(|(b, _)| *b == s.node))
        .map(|s| s.power)
        .sum();
    !seats.is_empty() && 3 * faulty < total
}

/// Draws one to three changes, of random kinds, one to three heights apart from height 2, 3 or
/// 4 on (heights reached before and after GST); a change whose set would break the safety assumption is
/// dropped. Returns the changes and how many nodes they add.
pub fn draw(
    rng: &mut Rng,
    powers: &[u64],
    byzantine: &[(ValidatorIndex, Behaviour)],
) -> (Vec<SetChange>, usize) {
    let is_byzantine = |node: ValidatorIndex| byzantine.iter().any(|(b, _)| *b == node);
    let mut seats = genesis_seats(powers);
    let mut joiners = 0;
    let mut changes = Vec::new();
    let mut at = 1;
    for _ in 0..rng.range(1, 3) {
        at += rng.range(1, 3);
        let mut next = seats.clone();
        let pick = rng.below(next.len() as u64) as usize;
        let change = match rng.below(4) {
            0 if joiners < JOINERS_MAX => {
                let node = (powers.len() + joiners) as ValidatorIndex;
                next.push(Seat {
                    node,
                    key: 0,
                    power: rng.range(1, 8),
                });
                Change::Add(node)
            }
            1 => Change::Remove(next.remove(pick).node),
            2 => {
                next[pick].key += 1;
                Change::Rotate(next[pick].node)
            }
            _ => {
                for seat in &mut next {
                    if !is_byzantine(seat.node) {
                        seat.power = rng.range(1, 8);
                    }
                }
                Change::Power
            }
        };
        if !is_safe(&next, byzantine) {
            continue;
        }
        if let Change::Add(_) = change {
            joiners += 1;
        }
        seats = next.clone();
        changes.push(SetChange {
            at,
            change,
            seats: next,
        });
    }
    (changes, joiners)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_drawn_set_keeps_byzantine_power_below_a_third() {
        let mut kinds = [0; 4];
        for seed in 0..2_000 {
            let mut rng = Rng::new(seed);
            let powers: Vec<u64> = (0..4 + seed % 7).map(|_| rng.range(1, 5)).collect();
            let byzantine = vec![(0, Behaviour::Silent)];
            let (changes, joiners) = draw(&mut rng, &powers, &byzantine);
            let mut last = 1;
            for c in &changes {
                assert!(
                    c.at > last,
                    "seed {seed}: changes at increasing heights, saw {changes:?}"
                );
                last = c.at;
                assert!(
                    is_safe(&c.seats, &byzantine),
                    "seed {seed}: unsafe set {:?}",
                    c.seats
                );
                kinds[c.change.kind()] += 1;
            }
            let added = changes
                .iter()
                .filter(|c| matches!(c.change, Change::Add(_)))
                .count();
            assert_eq!(added, joiners, "seed {seed}: one joiner per addition");
        }
        assert!(
            kinds.iter().all(|&k| k > 100),
            "every kind is drawn often, saw {kinds:?}"
        );
    }
}
