//! The steps of Algorithm 1, each labelled with the lines of the paper it implements.
//!
//! `process` evaluates the `upon` rules after every input until none fires. Each firing moves
//! the state strictly forward (a higher height, a higher round, a later step, or a "for the
//! first time" flag set), so the loop ends.

use super::{Core, RoundFlags, TIMERS_MAX, Timer};
use crate::config::Step;
use crate::core::io::Effect;
use crate::keeper::{ROUNDS_BEHIND_MAX, VoteKeeper};
use crate::proposal::{Message, Proposal, Value};
use crate::types::{CommitCertificate, Height, Round, ValueId, Vote, VoteKind};

impl<V: Value> Core<V> {
    /// L11: Function StartRound(round).
    pub(super) fn start_round(&mut self, round: Round, fx: &mut Vec<Effect<V>>) {
        assert!(
            round >= self.round,
            "rounds only move forward within a height: height {} round {} asked to start round {round}",
            self.height,
            self.round
        );
        assert!(
            self.own_votes.iter().all(|v| v.vote.height == self.height),
            "own votes of another height kept at height {}",
            self.height
        );
        self.round = round; // L12
        self.step = Step::Propose; // L13
        self.flags = RoundFlags::default();
        self.keeper.prune(round);
        let floor = round.saturating_sub(ROUNDS_BEHIND_MAX);
        self.proposals = self.proposals.split_off(&floor);
        self.own_votes.retain(|v| v.vote.round >= floor);
        self.own_proposals.retain(|p| p.proposal.round >= floor);
        if self.is_proposer(round) {
            // L14: if proposer(h_p, round_p) = p
            if let Some(p) = self
                .own_proposals
                .iter()
                .find(|p| p.proposal.round == round)
            {
                // Restarted after signing this round's proposal: send the same one again.
                fx.push(Effect::Broadcast(Message::Proposal(p.clone())));
            } else if let Some((valid_round, value)) = self.valid.clone() {
                // L15-L16: proposal ← validValue_p, with validRound_p
                self.propose(value, Some(valid_round), fx);
            } else {
                // L18: proposal ← getValue(); the driver answers with ProposeValue.
                fx.push(Effect::RequestValue {
                    height: self.height,
                    round,
                });
            }
        }
        // L21: schedule OnTimeoutPropose(h_p, round_p). The proposer arms it too, so that a
        // value that never comes from the driver cannot stall the round.
        self.schedule_timeout(Step::Propose, fx);
    }

    /// L19: broadcast ⟨PROPOSAL, h_p, round_p, proposal, validRound_p⟩.
    pub(super) fn propose(
        &mut self,
        value: V,
        valid_round: Option<Round>,
        fx: &mut Vec<Effect<V>>,
    ) {
        let Some((index, key)) = &self.signer else {
            return;
        };
        assert!(
            !self
                .own_proposals
                .iter()
                .any(|p| p.proposal.round == self.round),
            "never sign two proposals for one height and round: height {} round {}",
            self.height,
            self.round
        );
        assert!(
            valid_round.is_none_or(|vr| vr < self.round),
            "a proposal's valid round {valid_round:?} must precede its round {}",
            self.round
        );
        let id = value.id();
        let proposal = Proposal {
            height: self.height,
            round: self.round,
            value: id,
            valid_round,
            proposer: *index,
        }
        .sign(value, &self.chain_id, key);
        self.validity.insert(id, true);
        self.proposals.insert(self.round, proposal.clone());
        self.own_proposals.push(proposal.clone());
        fx.push(Effect::PersistAndBroadcastProposal {
            state: Box::new(self.persisted_state()),
            proposal,
        });
        // A re-proposal travels with its proof of lock: the 2f+1 prevotes for v in round vr
        // that L28 needs, which validators that missed them could otherwise never get.
        if let Some(vr) = valid_round {
            for vote in self.keeper.votes_for(vr, VoteKind::Prevote, id) {
                fx.push(Effect::Broadcast(Message::Vote(*vote)));
            }
        }
    }

    /// Signs, counts and emits this validator's vote for the current round. Refuses to sign a
    /// second, different vote for one (height, round, kind): re-sends the first instead.
    fn cast_vote(&mut self, kind: VoteKind, value: Option<ValueId>, fx: &mut Vec<Effect<V>>) {
        let Some((index, key)) = &self.signer else {
            return;
        };
        let (height, round) = (self.height, self.round);
        let step = match kind {
            VoteKind::Prevote => Step::Prevote,
            VoteKind::Precommit => Step::Precommit,
        };
        assert_eq!(
            self.step, step,
            "a {kind:?} is cast only in its own step (height {height} round {round})"
        );
        // `own_votes` is the record every `PersistAndBroadcast…` effect persists, restored
        // after a restart, so this check holds across crashes too.
        if let Some(first) = self
            .own_votes
            .iter()
            .find(|v| (v.vote.height, v.vote.round, v.vote.kind) == (height, round, kind))
        {
            assert_eq!(
                first.vote.value, value,
                "never two different votes for one (height, round, step): {kind:?} at height \
                 {height} round {round}"
            );
            fx.push(Effect::Broadcast(Message::Vote(*first)));
            return;
        }
        let vote = Vote {
            kind,
            height,
            round,
            value,
            validator: *index,
        }
        .sign(&self.chain_id, key);
        self.keeper.add_own(vote, &self.validators);
        self.own_votes.push(vote);
        fx.push(Effect::PersistAndBroadcastVote {
            state: Box::new(self.persisted_state()),
            vote,
        });
    }

    fn schedule_timeout(&mut self, step: Step, fx: &mut Vec<Effect<V>>) {
        let duration_ms = self.config.timeout_ms(step, self.round);
        let (height, round) = (self.height, self.round);
        self.timers
            .retain(|t| (t.height, t.round) >= (height, round.saturating_sub(1)));
        assert!(duration_ms > 0, "a zero timeout would end {step:?} at once");
        if self.timers.len() >= TIMERS_MAX {
            self.timers.remove(0);
        }
        self.timers.push(Timer {
            deadline_ms: self.now_ms.saturating_add(duration_ms),
            height,
            round,
            step,
        });
        assert!(self.timers.len() <= TIMERS_MAX, "timers exceed their bound");
        fx.push(Effect::ScheduleTimeout {
            height,
            round,
            step,
            duration_ms,
        });
    }

    /// Evaluates the `upon` rules until none fires.
    pub(super) fn process(&mut self, fx: &mut Vec<Effect<V>>) {
        if !self.started {
            return;
        }
        loop {
            if self.try_decide(fx) {
                continue;
            }
            // L55: upon f+1 ⟨∗, h_p, round, ∗, ∗⟩ with round > round_p do StartRound(round)
            if let Some(round) = self.keeper.skip_round(self.round, &self.validators) {
                self.start_round(round, fx);
                continue;
            }
            if self.step == Step::Propose && self.try_prevote_on_proposal(fx) {
                continue;
            }
            // L34: upon 2f+1 ⟨PREVOTE, h_p, round_p, ∗⟩ while step_p = prevote for the first time
            if self.step == Step::Prevote
                && !self.flags.prevote_timeout_scheduled
                && self
                    .keeper
                    .has_quorum_any(self.round, VoteKind::Prevote, &self.validators)
            {
                self.flags.prevote_timeout_scheduled = true;
                self.schedule_timeout(Step::Prevote, fx); // L35
                continue;
            }
            if self.step >= Step::Prevote && !self.flags.quorum_prevote_seen && self.try_lock(fx) {
                continue;
            }
            // L44: upon 2f+1 ⟨PREVOTE, h_p, round_p, nil⟩ while step_p = prevote
            if self.step == Step::Prevote
                && self
                    .keeper
                    .has_quorum_for(self.round, VoteKind::Prevote, None, &self.validators)
            {
                self.step = Step::Precommit; // L46
                self.cast_vote(VoteKind::Precommit, None, fx); // L45
                continue;
            }
            // L47: upon 2f+1 ⟨PRECOMMIT, h_p, round_p, ∗⟩ for the first time
            if !self.flags.precommit_timeout_scheduled
                && self
                    .keeper
                    .has_quorum_any(self.round, VoteKind::Precommit, &self.validators)
            {
                self.flags.precommit_timeout_scheduled = true;
                self.schedule_timeout(Step::Precommit, fx); // L48
                continue;
            }
            break;
        }
    }

    /// L22 and L28, while step_p = propose.
    fn try_prevote_on_proposal(&mut self, fx: &mut Vec<Effect<V>>) -> bool {
        assert_eq!(
            self.step,
            Step::Propose,
            "L22/L28 fire only in the propose step"
        );
        let Some(p) = self.proposals.get(&self.round) else {
            return false;
        };
        let id = p.proposal.value;
        let Some(&valid) = self.validity.get(&id) else {
            return false; // valid(v) is not known yet: wait for ValueValidated or the timeout.
        };
        let locked_on_v = self.locked.as_ref().is_some_and(|(_, l)| l.id() == id);
        #[cfg(feature = "sim")]
        let ignore_lock = self.defects.ignore_lock;
        #[cfg(not(feature = "sim"))]
        let ignore_lock = false;
        let accept = match p.proposal.valid_round {
            // L22: upon ⟨PROPOSAL, h_p, round_p, v, −1⟩ from proposer(h_p, round_p)
            None => {
                // L23: if valid(v) ∧ (lockedRound_p = −1 ∨ lockedValue_p = v)
                valid && (self.locked.is_none() || locked_on_v || ignore_lock)
            }
            // L28: upon ⟨PROPOSAL, h_p, round_p, v, vr⟩ from proposer(h_p, round_p) AND
            // 2f+1 ⟨PREVOTE, h_p, vr, id(v)⟩ while vr ≥ 0 ∧ vr < round_p
            Some(vr) => {
                if vr >= self.round
                    || !self.keeper.has_quorum_for(
                        vr,
                        VoteKind::Prevote,
                        Some(id),
                        &self.validators,
                    )
                {
                    return false;
                }
                // L29: if valid(v) ∧ (lockedRound_p ≤ vr ∨ lockedValue_p = v)
                let lock_ok = self.locked.as_ref().is_none_or(|(lr, _)| *lr <= vr);
                valid && (lock_ok || locked_on_v || ignore_lock)
            }
        };
        self.step = Step::Prevote; // L27 / L33
        // L24 / L30: broadcast ⟨PREVOTE, h_p, round_p, id(v)⟩, else (L26 / L32) nil.
        self.cast_vote(VoteKind::Prevote, accept.then_some(id), fx);
        assert_eq!(self.step, Step::Prevote, "casting a prevote moved the step");
        true
    }

    /// L36: upon ⟨PROPOSAL, h_p, round_p, v, ∗⟩ from proposer(h_p, round_p) AND
    /// 2f+1 ⟨PREVOTE, h_p, round_p, id(v)⟩ while valid(v) ∧ step_p ≥ prevote for the first time.
    fn try_lock(&mut self, fx: &mut Vec<Effect<V>>) -> bool {
        assert!(
            self.step >= Step::Prevote,
            "L36 fires only from the prevote step"
        );
        let Some(p) = self.proposals.get(&self.round) else {
            return false;
        };
        let id = p.proposal.value;
        if self.validity.get(&id) != Some(&true)
            || !self.keeper.has_quorum_for(
                self.round,
                VoteKind::Prevote,
                Some(id),
                &self.validators,
            )
        {
            return false;
        }
        let value = p.value.clone();
        self.flags.quorum_prevote_seen = true;
        // L42-L43: validValue_p ← v; validRound_p ← round_p (set first, so that it is persisted
        // together with the precommit below).
        self.valid = Some((self.round, value.clone()));
        if self.step == Step::Prevote {
            // L38-L41: lock on v, precommit it, step ← precommit
            self.locked = Some((self.round, value));
            self.step = Step::Precommit;
            self.cast_vote(VoteKind::Precommit, Some(id), fx);
        }
        // The lock never runs ahead of the valid value: both move to this round together.
        assert!(
            self.locked_round() <= self.valid_round(),
            "locked round {:?} after valid round {:?}",
            self.locked_round(),
            self.valid_round()
        );
        true
    }

    /// L49: upon ⟨PROPOSAL, h_p, r, v, ∗⟩ from proposer(h_p, r) AND 2f+1 ⟨PRECOMMIT, h_p, r,
    /// id(v)⟩ while decision_p[h_p] = nil.
    fn try_decide(&mut self, fx: &mut Vec<Effect<V>>) -> bool {
        let decided = self.proposals.iter().find(|(r, p)| {
            self.validity.get(&p.proposal.value) == Some(&true) // L50: if valid(v)
                && self.keeper.has_quorum_for(
                    **r,
                    VoteKind::Precommit,
                    Some(p.proposal.value),
                    &self.validators,
                )
        });
        let Some((&round, p)) = decided else {
            return false;
        };
        let value = p.value.clone();
        let id = p.proposal.value;
        let certificate = CommitCertificate::from_precommits(
            self.height,
            round,
            id,
            self.keeper.votes_for(round, VoteKind::Precommit, id),
        );
        assert!(
            self.decided.is_none_or(|d| d < self.height),
            "decided heights strictly increase: decided {:?}, now deciding {}",
            self.decided,
            self.height
        );
        debug_assert!(
            certificate.verify(&self.chain_id, &self.validators).is_ok(),
            "the core's own commit certificate must verify"
        );
        self.decided = Some(self.height);
        // L51: decision_p[h_p] = v
        fx.push(Effect::Decide {
            height: self.height,
            round,
            value,
            certificate,
        });
        // L52-L54: h_p ← h_p + 1; reset; StartRound(0)
        self.enter_height(self.height.saturating_add(1), fx);
        true
    }

    /// L57 OnTimeoutPropose, L61 OnTimeoutPrevote, L65 OnTimeoutPrecommit.
    pub(super) fn on_timeout(
        &mut self,
        height: Height,
        round: Round,
        step: Step,
        fx: &mut Vec<Effect<V>>,
    ) {
        if height != self.height || round != self.round || !self.started {
            return;
        }
        match step {
            Step::Propose if self.step == Step::Propose => {
                // L58-L60: broadcast ⟨PREVOTE, h_p, round_p, nil⟩; step_p ← prevote
                self.step = Step::Prevote;
                self.cast_vote(VoteKind::Prevote, None, fx);
            }
            Step::Prevote if self.step == Step::Prevote => {
                // L62-L64: broadcast ⟨PRECOMMIT, h_p, round_p, nil⟩; step_p ← precommit
                self.step = Step::Precommit;
                self.cast_vote(VoteKind::Precommit, None, fx);
            }
            Step::Precommit => {
                // L66: StartRound(round_p + 1)
                if let Some(next) = self.round.checked_add(1) {
                    self.start_round(next, fx);
                }
            }
            _ => {}
        }
        self.process(fx);
    }

    /// L52-L54: move to `height` with fresh per-height state, start round 0, and replay the
    /// buffered messages of that height.
    pub(super) fn enter_height(&mut self, height: Height, fx: &mut Vec<Effect<V>>) {
        assert!(
            height > self.height,
            "heights only move forward: at {} asked to enter {height}",
            self.height
        );
        self.height = height;
        self.take_up_set(height);
        self.round = 0;
        self.step = Step::Propose;
        self.locked = None;
        self.valid = None;
        self.keeper = self.fresh_keeper(height);
        self.proposals.clear();
        self.validity.clear();
        self.validation_requested.clear();
        self.own_votes.clear();
        self.own_proposals.clear();
        self.evidence.clear();
        self.flags = RoundFlags::default();
        self.restored = false;
        self.timers.clear();
        let buffered = std::mem::take(&mut self.next_height);
        if self.started {
            self.start_round(0, fx);
        }
        for message in buffered.into_iter().filter(|m| m.height() == height) {
            // A buffered message that fails verification is dropped, as it would have been
            // had it arrived now.
            let _ = match message {
                Message::Proposal(p) => self.on_proposal(p, fx),
                Message::Vote(v) => self.on_vote(v, fx),
            };
        }
    }

    fn fresh_keeper(&self, height: Height) -> VoteKeeper {
        #[allow(unused_mut)]
        let mut keeper = VoteKeeper::new(height, &self.validators);
        #[cfg(feature = "sim")]
        {
            keeper.defect_count_duplicates = self.defects.count_duplicate_votes;
        }
        keeper
    }
}
