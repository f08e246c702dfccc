//! The vote keeper: the prevotes and precommits of one height, tallied by voting power.
//!
//! It promises that
//! - each validator counts once per (round, kind, value): a repeat of the identical signed vote
//!   is a duplicate (recognised before any signature check, so gossip re-sends are cheap);
//! - a validator that signs conflicting votes yields [`Equivocation`] evidence. Its first vote
//!   counts towards "any" totals (L34, L47) and each of its first [`VOTES_PER_SLOT_MAX`] votes
//!   counts towards its own value's total. This is safe: two quorums for different values
//!   intersect in more than a third of the power, so they would need an honest validator to
//!   vote twice. It is needed for liveness: the equivocator's vote may be the one that
//!   completed a quorum some honest validator saw (a proof of lock the others must accept,
//!   L28), so counting only whichever vote arrived first could stall the cluster forever;
//! - votes from non-validators and votes whose signature does not verify are rejected with an
//!   error and change nothing;
//! - memory is bounded: it stores votes only for rounds in
//!   `[current − ROUNDS_BEHIND_MAX, current + ROUNDS_AHEAD_MAX]`. For rounds further ahead it
//!   keeps just each validator's highest round, which is all the round skip (L55) needs.

use std::collections::BTreeMap;

use crate::evidence::Equivocation;
use crate::types::{Error, Height, Round, SignedVote, ValidatorSet, ValueId, VoteKind};

/// Rounds ahead of the current one whose votes are stored.
pub const ROUNDS_AHEAD_MAX: Round = 8;
/// Rounds behind the current one whose votes are kept (for L28 re-proposals and L49 decisions).
pub const ROUNDS_BEHIND_MAX: Round = 32;
/// Most conflicting votes kept from one validator for one round and kind.
pub const VOTES_PER_SLOT_MAX: usize = 3;

/// What happened to a vote the keeper accepted without error.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum AddOutcome {
    /// Counted.
    Added,
    /// The identical signed vote was already counted.
    Duplicate,
    /// A verified vote for a round outside the stored window: only its round was noted.
    OutOfWindow,
    /// A second, different vote of one validator for one round and kind: evidence, counted
    /// for its own value only (see the module docs).
    Equivocation(Box<Equivocation>),
}

#[derive(Clone, Debug)]
struct Tally {
    /// Per validator: its first vote, then any conflicting ones (at most VOTES_PER_SLOT_MAX).
    votes: Vec<Vec<SignedVote>>,
    power: BTreeMap<Option<ValueId>, u64>,
    total: u64,
}

impl Tally {
    fn new(n: usize) -> Self {
        Self {
            votes: vec![Vec::new(); n],
            power: BTreeMap::new(),
            total: 0,
        }
    }
}

#[derive(Clone, Debug)]
struct RoundVotes {
    prevotes: Tally,
    precommits: Tally,
}

impl RoundVotes {
    fn tally(&self, kind: VoteKind) -> &Tally {
        match kind {
            VoteKind::Prevote => &self.prevotes,
            VoteKind::Precommit => &self.precommits,
        }
    }
    fn tally_mut(&mut self, kind: VoteKind) -> &mut Tally {
        match kind {
            VoteKind::Prevote => &mut self.prevotes,
            VoteKind::Precommit => &mut self.precommits,
        }
    }
}

/// The votes of one height.
#[derive(Clone, Debug)]
pub struct VoteKeeper {
    height: Height,
    rounds: BTreeMap<Round, RoundVotes>,
    /// Each validator's highest round seen at this height, for the round skip.
    highest_round: Vec<Option<Round>>,
    #[cfg(feature = "sim")]
    pub(crate) defect_count_duplicates: bool,
}

impl VoteKeeper {
    pub fn new(height: Height, validators: &ValidatorSet) -> Self {
        Self {
            height,
            rounds: BTreeMap::new(),
            highest_round: vec![None; validators.len()],
            #[cfg(feature = "sim")]
            defect_count_duplicates: false,
        }
    }

    pub fn height(&self) -> Height {
        self.height
    }

    /// Verifies and counts a vote of this height. `current` is the caller's round, which sets
    /// the stored window. Errors leave the keeper unchanged.
    pub fn add(
        &mut self,
        vote: SignedVote,
        current: Round,
        chain_id: &[u8; 32],
        validators: &ValidatorSet,
    ) -> Result<AddOutcome, Error> {
        let v = vote.vote;
        if v.height != self.height {
            return Err(Error::WrongHeight {
                got: v.height,
                want: self.height,
            });
        }
        let index = v.validator;
        if validators.get(index).is_none() {
            return Err(Error::UnknownValidator { index });
        }
        let slot = usize::from(index);
        let stored: &[SignedVote] = self
            .rounds
            .get(&v.round)
            .map_or(&[], |r| r.tally(v.kind).votes[slot].as_slice());
        if stored.iter().any(|s| s.vote == v) {
            // The same vote again (or re-signed: ed25519 signing is deterministic, so only the
            // validator itself could produce a second signature): never counted twice.
            #[cfg(feature = "sim")]
            if self.defect_count_duplicates {
                self.count(vote, validators, true);
            }
            return Ok(AddOutcome::Duplicate);
        }
        let first = stored.first().copied();
        vote.verify(chain_id, validators)?;
        self.note_round(slot, v.round);
        if let Some(first) = first {
            self.count(vote, validators, false);
            return Ok(AddOutcome::Equivocation(Box::new(Equivocation::Vote {
                first,
                second: vote,
            })));
        }
        if v.round > current.saturating_add(ROUNDS_AHEAD_MAX)
            || v.round < current.saturating_sub(ROUNDS_BEHIND_MAX)
        {
            return Ok(AddOutcome::OutOfWindow);
        }
        self.count(vote, validators, true);
        Ok(AddOutcome::Added)
    }

    /// Counts a vote this validator signed itself (no signature check).
    pub(crate) fn add_own(&mut self, vote: SignedVote, validators: &ValidatorSet) {
        let slot = usize::from(vote.vote.validator);
        let empty = self
            .rounds
            .get(&vote.vote.round)
            .is_none_or(|r| r.tally(vote.vote.kind).votes[slot].is_empty());
        if empty && slot < self.highest_round.len() {
            self.note_round(slot, vote.vote.round);
            self.count(vote, validators, true);
        }
    }

    fn note_round(&mut self, slot: usize, round: Round) {
        let highest = &mut self.highest_round[slot];
        if highest.is_none_or(|h| round > h) {
            *highest = Some(round);
        }
    }

    /// Stores and counts a vote; `first` says whether it is its validator's first in the slot
    /// (which alone counts towards the "any" total).
    fn count(&mut self, vote: SignedVote, validators: &ValidatorSet, first: bool) {
        let v = vote.vote;
        let n = validators.len();
        let power = validators.get(v.validator).map_or(0, |x| x.voting_power);
        let round = self.rounds.entry(v.round).or_insert_with(|| RoundVotes {
            prevotes: Tally::new(n),
            precommits: Tally::new(n),
        });
        let tally = round.tally_mut(v.kind);
        let slot = &mut tally.votes[usize::from(v.validator)];
        if slot.len() >= VOTES_PER_SLOT_MAX {
            return;
        }
        if !slot.iter().any(|s| s.vote == v) {
            slot.push(vote);
        }
        *tally.power.entry(v.value).or_insert(0) += power;
        if first {
            tally.total += power;
        }
    }

    /// Drops the rounds that fell out of the window behind `current`.
    pub fn prune(&mut self, current: Round) {
        let floor = current.saturating_sub(ROUNDS_BEHIND_MAX);
        self.rounds = self.rounds.split_off(&floor);
    }

    /// The value (or nil) that more than two thirds of the power voted for, if any.
    pub fn quorum_value(
        &self,
        round: Round,
        kind: VoteKind,
        validators: &ValidatorSet,
    ) -> Option<Option<ValueId>> {
        let tally = self.rounds.get(&round)?.tally(kind);
        tally
            .power
            .iter()
            .find(|(_, p)| validators.is_quorum(**p))
            .map(|(v, _)| *v)
    }

    /// True when more than two thirds of the power voted for `value` (`None` is nil).
    pub fn has_quorum_for(
        &self,
        round: Round,
        kind: VoteKind,
        value: Option<ValueId>,
        validators: &ValidatorSet,
    ) -> bool {
        self.rounds
            .get(&round)
            .and_then(|r| r.tally(kind).power.get(&value))
            .is_some_and(|p| validators.is_quorum(*p))
    }

    /// True when more than two thirds of the power voted, for anything (`2f+1 ⟨∗⟩`).
    pub fn has_quorum_any(&self, round: Round, kind: VoteKind, validators: &ValidatorSet) -> bool {
        self.rounds
            .get(&round)
            .is_some_and(|r| validators.is_quorum(r.tally(kind).total))
    }

    /// The rounds with a stored vote of this kind, lowest first.
    pub fn rounds(&self) -> impl Iterator<Item = Round> + '_ {
        self.rounds.keys().copied()
    }

    /// The highest round above `current` that validators with more than one third of the power
    /// have reached (L55): at least one honest validator is there, so skipping to it is safe.
    pub fn skip_round(&self, current: Round, validators: &ValidatorSet) -> Option<Round> {
        let mut ahead: Vec<(Round, u64)> = self
            .highest_round
            .iter()
            .enumerate()
            .filter_map(|(i, r)| {
                let r = (*r)?;
                let power = validators.validators().get(i)?.voting_power;
                (r > current).then_some((r, power))
            })
            .collect();
        ahead.sort_unstable_by_key(|a| std::cmp::Reverse(a.0));
        let mut power: u64 = 0;
        for (round, p) in ahead {
            power = power.saturating_add(p);
            if validators.is_one_third(power) {
                return Some(round);
            }
        }
        None
    }

    /// The votes of `kind` for `value` in `round`: a commit certificate's precommits, or the
    /// proof of lock that accompanies a re-proposal.
    pub fn votes_for(
        &self,
        round: Round,
        kind: VoteKind,
        value: ValueId,
    ) -> impl Iterator<Item = &SignedVote> + '_ {
        self.rounds
            .get(&round)
            .into_iter()
            .flat_map(move |r| r.tally(kind).votes.iter().flatten())
            .filter(move |v| v.vote.value == Some(value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::types::{Validator, Vote};
    use ed25519_dalek::SigningKey;

    const CHAIN: [u8; 32] = [7; 32];

    fn setup(powers: &[u64]) -> (Vec<SigningKey>, ValidatorSet) {
        let keys: Vec<_> = (0..powers.len())
            .map(|i| SigningKey::from_bytes(&[i as u8 + 1; 32]))
            .collect();
        let vs = keys
            .iter()
            .zip(powers)
            .map(|(k, p)| Validator {
                public_key: k.verifying_key().to_bytes(),
                voting_power: *p,
            })
            .collect();
        (keys, ValidatorSet::new(vs).unwrap())
    }

    fn vote(keys: &[SigningKey], who: u16, kind: VoteKind, round: Round, value: u8) -> SignedVote {
        Vote {
            kind,
            height: 1,
            round,
            value: (value != 0).then_some(ValueId([value; 32])),
            validator: who,
        }
        .sign(&CHAIN, &keys[usize::from(who)])
    }

    #[test]
    fn quorum_needs_more_than_two_thirds_of_the_power() {
        let (keys, vs) = setup(&[1, 1, 1, 1]);
        let mut k = VoteKeeper::new(1, &vs);
        for who in 0..2 {
            k.add(vote(&keys, who, VoteKind::Prevote, 0, 9), 0, &CHAIN, &vs)
                .unwrap();
        }
        assert_eq!(k.quorum_value(0, VoteKind::Prevote, &vs), None);
        k.add(vote(&keys, 2, VoteKind::Prevote, 0, 9), 0, &CHAIN, &vs)
            .unwrap();
        assert_eq!(
            k.quorum_value(0, VoteKind::Prevote, &vs),
            Some(Some(ValueId([9; 32])))
        );
    }

    #[test]
    fn repeated_vote_counts_once() {
        let (keys, vs) = setup(&[1, 1, 1, 1]);
        let mut k = VoteKeeper::new(1, &vs);
        let v = vote(&keys, 0, VoteKind::Precommit, 0, 9);
        assert_eq!(k.add(v, 0, &CHAIN, &vs).unwrap(), AddOutcome::Added);
        for _ in 0..5 {
            assert_eq!(k.add(v, 0, &CHAIN, &vs).unwrap(), AddOutcome::Duplicate);
        }
        k.add(vote(&keys, 1, VoteKind::Precommit, 0, 9), 0, &CHAIN, &vs)
            .unwrap();
        assert!(!k.has_quorum_any(0, VoteKind::Precommit, &vs));
    }

    #[test]
    fn conflicting_second_vote_is_evidence_and_counts_only_for_its_own_value() {
        let (keys, vs) = setup(&[1, 1, 1, 1]);
        let mut k = VoteKeeper::new(1, &vs);
        k.add(vote(&keys, 3, VoteKind::Prevote, 0, 9), 0, &CHAIN, &vs)
            .unwrap();
        let out = k
            .add(vote(&keys, 3, VoteKind::Prevote, 0, 8), 0, &CHAIN, &vs)
            .unwrap();
        let AddOutcome::Equivocation(ev) = out else {
            panic!("wanted evidence, got {out:?}");
        };
        ev.verify(&CHAIN, &vs).unwrap();
        assert_eq!(ev.offender(), 3);
        // Validator 3 counts once for 9 and once for 8, but only once in the total.
        for who in 0..2 {
            k.add(vote(&keys, who, VoteKind::Prevote, 0, 8), 0, &CHAIN, &vs)
                .unwrap();
        }
        assert!(k.has_quorum_for(0, VoteKind::Prevote, Some(ValueId([8; 32])), &vs));
        assert!(!k.has_quorum_for(0, VoteKind::Prevote, Some(ValueId([9; 32])), &vs));
        let again = k.add(vote(&keys, 3, VoteKind::Prevote, 0, 8), 0, &CHAIN, &vs);
        assert_eq!(again.unwrap(), AddOutcome::Duplicate);
    }

    #[test]
    fn bad_signature_and_unknown_validator_are_rejected_without_change() {
        let (keys, vs) = setup(&[1, 1, 1]);
        let mut k = VoteKeeper::new(1, &vs);
        let mut bad = vote(&keys, 0, VoteKind::Prevote, 0, 9);
        bad.signature[0] ^= 1;
        assert_eq!(
            k.add(bad, 0, &CHAIN, &vs),
            Err(Error::BadSignature { index: 0 })
        );
        let mut stranger = vote(&keys, 0, VoteKind::Prevote, 0, 9);
        stranger.vote.validator = 7;
        assert_eq!(
            k.add(stranger, 0, &CHAIN, &vs),
            Err(Error::UnknownValidator { index: 7 })
        );
        // The genuine vote is still accepted after the forgery.
        let good = vote(&keys, 0, VoteKind::Prevote, 0, 9);
        assert_eq!(k.add(good, 0, &CHAIN, &vs).unwrap(), AddOutcome::Added);
    }

    #[test]
    fn weighted_round_skip_needs_more_than_one_third_ahead() {
        let (keys, vs) = setup(&[7, 1, 1, 1]);
        let mut k = VoteKeeper::new(1, &vs);
        for who in 1..4 {
            k.add(vote(&keys, who, VoteKind::Prevote, 50, 0), 0, &CHAIN, &vs)
                .unwrap();
        }
        assert_eq!(
            k.skip_round(0, &vs),
            None,
            "3 of 10 is not more than a third"
        );
        k.add(vote(&keys, 0, VoteKind::Prevote, 5, 0), 0, &CHAIN, &vs)
            .unwrap();
        assert_eq!(k.skip_round(0, &vs), Some(5));
    }

    #[test]
    fn votes_far_ahead_are_not_stored() {
        let (keys, vs) = setup(&[1, 1, 1, 1]);
        let mut k = VoteKeeper::new(1, &vs);
        let far = vote(&keys, 0, VoteKind::Prevote, ROUNDS_AHEAD_MAX + 1, 9);
        assert_eq!(k.add(far, 0, &CHAIN, &vs).unwrap(), AddOutcome::OutOfWindow);
        assert_eq!(k.rounds().count(), 0);
    }
}
