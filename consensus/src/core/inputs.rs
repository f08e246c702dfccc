//! The core's reactions to inputs from outside: start, a proposal, a vote, a value to propose,
//! the passing of time. Each verifies what it is given before changing anything, keeps every
//! store within its bound, and hands over to the `upon` rules in `rules.rs`.

use super::{Core, EVIDENCE_MAX, NEXT_HEIGHT_BUFFER_MAX, TIMERS_MAX};
use crate::config::Step;
use crate::core::io::Effect;
use crate::evidence::Equivocation;
use crate::keeper::{AddOutcome, ROUNDS_AHEAD_MAX, ROUNDS_BEHIND_MAX};
use crate::proposal::{Message, SignedProposal, Value};
use crate::types::{Error, Height, Round, SignedVote};

impl<V: Value> Core<V> {
    pub(super) fn on_start(&mut self, fx: &mut Vec<Effect<V>>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.restored && self.step != Step::Propose {
            // Resume mid-round: send again what was signed, and let the rules re-arm timeouts
            // as votes come back in.
            for v in self.own_votes.iter().filter(|v| v.vote.round == self.round) {
                assert_eq!(
                    v.vote.height, self.height,
                    "restored a vote of another height"
                );
                fx.push(Effect::Broadcast(Message::Vote(*v)));
            }
        } else {
            self.start_round(self.round, fx); // L10: upon start do StartRound(0)
        }
        self.process(fx);
    }

    pub(super) fn on_proposal(
        &mut self,
        p: SignedProposal<V>,
        fx: &mut Vec<Effect<V>>,
    ) -> Result<(), Error> {
        let (height, round) = (p.proposal.height, p.proposal.round);
        if height != self.height {
            self.buffer_next(height, Message::Proposal(p));
            return Ok(());
        }
        if !self.round_in_window(round) {
            return Ok(());
        }
        let expected = self.schedule.proposer(height, round);
        if p.proposal.proposer != expected {
            return Err(Error::WrongProposer {
                height,
                round,
                got: p.proposal.proposer,
            });
        }
        if let Some(first) = self.proposals.get(&round)
            && first.header() == p.header()
        {
            return Ok(()); // A re-send of the proposal we hold.
        }
        p.verify(&self.chain_id, &self.validators)?;
        if let Some(first) = self.proposals.get(&round) {
            let evidence = Equivocation::Proposal {
                first: first.header(),
                second: p.header(),
            };
            self.record_evidence(evidence, fx);
            return Ok(());
        }
        let id = p.proposal.value;
        if !self.validity.contains_key(&id) && self.validation_requested.insert(id) {
            fx.push(Effect::ValidateValue {
                height,
                round,
                value: p.value.clone(),
            });
        }
        self.proposals.insert(round, p);
        // Proposals are kept for the rounds of the keeper's window only.
        assert!(
            self.proposals.len() <= (ROUNDS_AHEAD_MAX + ROUNDS_BEHIND_MAX + 1) as usize,
            "{} proposals kept at height {}",
            self.proposals.len(),
            self.height
        );
        if self.started {
            self.process(fx);
        }
        Ok(())
    }

    pub(super) fn on_vote(&mut self, v: SignedVote, fx: &mut Vec<Effect<V>>) -> Result<(), Error> {
        if v.vote.height != self.height {
            self.buffer_next(v.vote.height, Message::Vote(v));
            return Ok(());
        }
        match self
            .keeper
            .add(v, self.round, &self.chain_id, &self.validators)?
        {
            AddOutcome::Duplicate =>
            {
                #[cfg(feature = "sim")]
                if self.defects.count_duplicate_votes && self.started {
                    self.process(fx);
                }
            }
            AddOutcome::Equivocation(evidence) => {
                self.record_evidence(*evidence, fx);
                if self.started {
                    self.process(fx);
                }
            }
            AddOutcome::Added | AddOutcome::OutOfWindow => {
                if self.started {
                    self.process(fx);
                }
            }
        }
        Ok(())
    }

    pub(super) fn on_propose_value(
        &mut self,
        height: Height,
        round: Round,
        value: V,
        fx: &mut Vec<Effect<V>>,
    ) {
        let already = self.own_proposals.iter().any(|p| p.proposal.round == round);
        if height == self.height
            && round == self.round
            && self.step == Step::Propose
            && self.is_proposer(round)
            && !already
        {
            self.propose(value, None, fx); // L18-L19: proposal ← getValue(); broadcast
            assert!(
                self.own_proposals.iter().any(|p| p.proposal.round == round),
                "the proposer signed no proposal for round {round}"
            );
            self.process(fx);
        }
    }

    pub(super) fn on_tick(&mut self, now_ms: u64, fx: &mut Vec<Effect<V>>) {
        self.now_ms = self.now_ms.max(now_ms);
        assert!(self.timers.len() <= TIMERS_MAX, "timers exceed their bound");
        self.timers.sort_by_key(|t| t.deadline_ms);
        while let Some(t) = self.timers.first().copied() {
            if t.deadline_ms > self.now_ms {
                break;
            }
            self.timers.remove(0);
            self.on_timeout(t.height, t.round, t.step, fx);
        }
    }

    /// Keeps a bounded number of messages for the next height; drops everything else.
    pub(super) fn buffer_next(&mut self, height: Height, message: Message<V>) {
        if height == self.height.saturating_add(1)
            && self.next_height.len() < NEXT_HEIGHT_BUFFER_MAX
            && !self.next_height.contains(&message)
        {
            self.next_height.push(message);
        }
        assert!(
            self.next_height.len() <= NEXT_HEIGHT_BUFFER_MAX,
            "next-height buffer exceeds its bound"
        );
    }

    pub(super) fn round_in_window(&self, round: Round) -> bool {
        round <= self.round.saturating_add(ROUNDS_AHEAD_MAX)
            && round >= self.round.saturating_sub(ROUNDS_BEHIND_MAX)
    }

    pub(super) fn record_evidence(&mut self, evidence: Equivocation, fx: &mut Vec<Effect<V>>) {
        let key = |e: &Equivocation| match e {
            Equivocation::Vote { first, .. } => (
                first.vote.validator,
                first.vote.round,
                first.vote.kind as u8,
            ),
            Equivocation::Proposal { first, .. } => {
                (first.proposal.proposer, first.proposal.round, 0)
            }
        };
        let k = key(&evidence);
        if self.evidence.len() < EVIDENCE_MAX && !self.evidence.iter().any(|e| key(e) == k) {
            self.evidence.push(evidence.clone());
            fx.push(Effect::Evidence(Box::new(evidence)));
        }
        assert!(
            self.evidence.len() <= EVIDENCE_MAX,
            "evidence exceeds its bound"
        );
    }

    pub(super) fn is_proposer(&self, round: Round) -> bool {
        self.signer
            .as_ref()
            .is_some_and(|(i, _)| *i == self.schedule.proposer(self.height, round))
    }
}
