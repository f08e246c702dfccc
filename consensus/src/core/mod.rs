//! The consensus core: one validator's Tendermint state machine (Algorithm 1 of "The latest
//! gossip on BFT consensus"), driven by [`Input`]s and answering with [`Effect`]s.
//!
//! The core holds the validator's signing key and signs its own votes and proposals; it never
//! signs two different votes (or proposals) for one height, round and step, also across a
//! restart from the [`PersistedState`] carried by every `PersistAndBroadcast…` effect.
//! Messages are verified before they change anything; an input that returns `Err` leaves the
//! core as it was. Every store is bounded: proposals and votes by the keeper's round window,
//! messages for the next height by [`NEXT_HEIGHT_BUFFER_MAX`], evidence by [`EVIDENCE_MAX`].
//!
//! # Driving the core (what `cradle-node` does)
//! 1. Read the last committed height `h` from the block store and the last [`PersistedState`]
//!    from the consensus write-ahead column; `Core::new(config, validators, chain_id,
//!    Some(key), h + 1, persisted)`; then `handle(Input::Start)`.
//! 2. Feed every verified-size-bounded network message as `Input::Proposal` / `Input::Vote`,
//!    every elapsed timer as `Input::TimeoutElapsed` (or tick with `Input::Tick`), the answer
//!    to `RequestValue` as `Input::ProposeValue`, the answer to `ValidateValue` as
//!    `Input::ValueValidated`, and each block applied from catch-up sync as
//!    `Input::Committed`. An `Err` means the input was rejected and nothing changed.
//! 3. Carry out the returned effects strictly in order: persist and fsync the state of a
//!    `PersistAndBroadcast…` before sending; commit the block of a `Decide` (with its
//!    certificate) before the effects that follow it, which already belong to the next height.
//! 4. Every few seconds, send [`Core::own_messages`] again: gossip that makes lost messages
//!    arrive eventually, which Tendermint's liveness needs.
//! 5. When a peer sends messages for a height below ours, send it that height's block and
//!    certificate; when we receive one for our height, verify, apply, and feed `Committed`.

mod io;
mod rules;

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;

pub use io::{Effect, Input, PersistedState};

use crate::config::{Config, Step};
use crate::keeper::{AddOutcome, ROUNDS_AHEAD_MAX, ROUNDS_BEHIND_MAX, VoteKeeper};
use crate::proposal::{Equivocation, Message, SignedProposal, Value};
use crate::proposer::ProposerSchedule;
use crate::types::{Error, Height, Round, SignedVote, ValidatorIndex, ValidatorSet, ValueId};

/// Most messages for the next height held until this one is decided.
pub const NEXT_HEIGHT_BUFFER_MAX: usize = 256;
/// Most pieces of equivocation evidence kept per height.
pub const EVIDENCE_MAX: usize = 64;
/// Most pending timers kept for [`Input::Tick`].
const TIMERS_MAX: usize = 8;

/// Deliberate protocol bugs, for proving that the simulator's checker catches them.
#[cfg(feature = "sim")]
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Defects {
    /// Prevote for any valid proposal, whatever the lock (breaks L22/L28).
    pub ignore_lock: bool,
    /// Count a vote again each time it is received (breaks the keeper's once-per-validator rule).
    pub count_duplicate_votes: bool,
}

#[derive(Clone, Copy, Debug, Default)]
struct RoundFlags {
    /// L34's "for the first time".
    prevote_timeout_scheduled: bool,
    /// L36's "for the first time".
    quorum_prevote_seen: bool,
    /// L47's "for the first time".
    precommit_timeout_scheduled: bool,
}

#[derive(Clone, Copy, Debug)]
struct Timer {
    deadline_ms: u64,
    height: Height,
    round: Round,
    step: Step,
}

/// One validator's (or observer's) consensus state machine.
pub struct Core<V: Value> {
    config: Config,
    validators: ValidatorSet,
    chain_id: [u8; 32],
    signer: Option<(ValidatorIndex, SigningKey)>,
    schedule: ProposerSchedule,
    started: bool,
    restored: bool,
    height: Height,
    round: Round,
    step: Step,
    locked: Option<(Round, V)>,
    valid: Option<(Round, V)>,
    keeper: VoteKeeper,
    /// The first verified proposal of each round's proposer.
    proposals: BTreeMap<Round, SignedProposal<V>>,
    /// `valid(v)` as answered by the driver.
    validity: BTreeMap<ValueId, bool>,
    validation_requested: BTreeSet<ValueId>,
    own_votes: Vec<SignedVote>,
    own_proposals: Vec<SignedProposal<V>>,
    flags: RoundFlags,
    next_height: Vec<Message<V>>,
    evidence: Vec<Equivocation>,
    now_ms: u64,
    timers: Vec<Timer>,
    #[cfg(feature = "sim")]
    defects: Defects,
}

impl<V: Value> Core<V> {
    /// A core at `height` (the last committed height + 1). `signer` is this validator's key, or
    /// `None` for an observer that follows without voting. `persisted` is the last state the
    /// driver persisted: restored when it is for `height`, ignored when older.
    pub fn new(
        config: Config,
        validators: ValidatorSet,
        chain_id: [u8; 32],
        signer: Option<SigningKey>,
        height: Height,
        persisted: Option<PersistedState<V>>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let signer = match signer {
            Some(key) => {
                let index = validators
                    .index_of(&key.verifying_key().to_bytes())
                    .ok_or(Error::SignerNotValidator)?;
                Some((index, key))
            }
            None => None,
        };
        let mut core = Self {
            config,
            schedule: ProposerSchedule::new(&validators),
            keeper: VoteKeeper::new(height, &validators),
            validators,
            chain_id,
            signer,
            started: false,
            restored: false,
            height,
            round: 0,
            step: Step::Propose,
            locked: None,
            valid: None,
            proposals: BTreeMap::new(),
            validity: BTreeMap::new(),
            validation_requested: BTreeSet::new(),
            own_votes: Vec::new(),
            own_proposals: Vec::new(),
            flags: RoundFlags::default(),
            next_height: Vec::new(),
            evidence: Vec::new(),
            now_ms: 0,
            timers: Vec::new(),
            #[cfg(feature = "sim")]
            defects: Defects::default(),
        };
        if let Some(state) = persisted {
            if state.height > height {
                return Err(Error::PersistedStateAhead {
                    persisted: state.height,
                    start: height,
                });
            }
            if state.height == height {
                core.restore(state)?;
            }
        }
        Ok(core)
    }

    fn restore(&mut self, state: PersistedState<V>) -> Result<(), Error> {
        let me = self.signer.as_ref().map(|(i, _)| *i);
        for v in &state.own_votes {
            if Some(v.vote.validator) != me || v.vote.height != state.height {
                return Err(Error::CorruptPersistedState {
                    reason: "vote of another validator or height",
                });
            }
        }
        for p in &state.own_proposals {
            if Some(p.proposal.proposer) != me || p.proposal.height != state.height {
                return Err(Error::CorruptPersistedState {
                    reason: "proposal of another validator or height",
                });
            }
        }
        self.round = state.round;
        self.step = state.step;
        self.locked = state.locked;
        self.valid = state.valid;
        for v in &state.own_votes {
            self.keeper.add_own(*v, &self.validators);
        }
        for p in &state.own_proposals {
            self.validity.insert(p.proposal.value, true);
            self.proposals.insert(p.proposal.round, p.clone());
        }
        if let Some((_, v)) = &self.valid {
            self.validity.insert(v.id(), true);
        }
        if let Some((_, v)) = &self.locked {
            self.validity.insert(v.id(), true);
        }
        self.own_votes = state.own_votes;
        self.own_proposals = state.own_proposals;
        self.restored = true;
        Ok(())
    }

    /// Turns on deliberate bugs (simulator tests only).
    #[cfg(feature = "sim")]
    pub fn inject_defects(&mut self, defects: Defects) {
        self.keeper.defect_count_duplicates = defects.count_duplicate_votes;
        self.defects = defects;
    }

    /// Applies one input and returns the effects to carry out, in order.
    pub fn handle(&mut self, input: Input<V>) -> Result<Vec<Effect<V>>, Error> {
        let mut fx = Vec::new();
        match input {
            Input::Start => self.on_start(&mut fx),
            Input::Proposal(p) => self.on_proposal(p, &mut fx)?,
            Input::Vote(v) => self.on_vote(v, &mut fx)?,
            Input::TimeoutElapsed {
                height,
                round,
                step,
            } => {
                self.timers
                    .retain(|t| (t.height, t.round, t.step) != (height, round, step));
                self.on_timeout(height, round, step, &mut fx);
            }
            Input::ProposeValue {
                height,
                round,
                value,
            } => self.on_propose_value(height, round, value, &mut fx),
            Input::ValueValidated { height, id, valid } => {
                if height == self.height
                    && self.validation_requested.contains(&id)
                    && !self.validity.contains_key(&id)
                {
                    self.validity.insert(id, valid);
                    self.process(&mut fx);
                }
            }
            Input::Committed { certificate } => {
                if certificate.height >= self.height {
                    certificate.verify(&self.chain_id, &self.validators)?;
                    self.enter_height(certificate.height.saturating_add(1), &mut fx);
                    self.process(&mut fx);
                }
            }
            Input::Tick { now_ms } => self.on_tick(now_ms, &mut fx),
        }
        Ok(fx)
    }

    fn on_start(&mut self, fx: &mut Vec<Effect<V>>) {
        if self.started {
            return;
        }
        self.started = true;
        if self.restored && self.step != Step::Propose {
            // Resume mid-round: send again what was signed, and let the rules re-arm timeouts
            // as votes come back in.
            for v in self.own_votes.iter().filter(|v| v.vote.round == self.round) {
                fx.push(Effect::Broadcast(Message::Vote(*v)));
            }
        } else {
            self.start_round(self.round, fx); // L10: upon start do StartRound(0)
        }
        self.process(fx);
    }

    fn on_proposal(&mut self, p: SignedProposal<V>, fx: &mut Vec<Effect<V>>) -> Result<(), Error> {
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
        if self.started {
            self.process(fx);
        }
        Ok(())
    }

    fn on_vote(&mut self, v: SignedVote, fx: &mut Vec<Effect<V>>) -> Result<(), Error> {
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

    fn on_propose_value(
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
            self.process(fx);
        }
    }

    fn on_tick(&mut self, now_ms: u64, fx: &mut Vec<Effect<V>>) {
        self.now_ms = self.now_ms.max(now_ms);
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
    fn buffer_next(&mut self, height: Height, message: Message<V>) {
        if height == self.height.saturating_add(1)
            && self.next_height.len() < NEXT_HEIGHT_BUFFER_MAX
            && !self.next_height.contains(&message)
        {
            self.next_height.push(message);
        }
    }

    fn round_in_window(&self, round: Round) -> bool {
        round <= self.round.saturating_add(ROUNDS_AHEAD_MAX)
            && round >= self.round.saturating_sub(ROUNDS_BEHIND_MAX)
    }

    fn record_evidence(&mut self, evidence: Equivocation, fx: &mut Vec<Effect<V>>) {
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
    }

    fn is_proposer(&self, round: Round) -> bool {
        self.signer
            .as_ref()
            .is_some_and(|(i, _)| *i == self.schedule.proposer(self.height, round))
    }

    /// The state a driver must persist now (also carried by every `PersistAndBroadcast…`).
    pub fn persisted_state(&self) -> PersistedState<V> {
        PersistedState {
            height: self.height,
            round: self.round,
            step: self.step,
            locked: self.locked.clone(),
            valid: self.valid.clone(),
            own_votes: self.own_votes.clone(),
            own_proposals: self.own_proposals.clone(),
        }
    }

    /// What to gossip again periodically at the current height: everything this validator
    /// signed, and the proof of lock of its valid value (the prevote quorum that made it
    /// valid). Tendermint's liveness assumes that a message one honest validator received
    /// reaches every honest validator; over a lossy network only re-sending provides that.
    pub fn own_messages(&self) -> Vec<Message<V>> {
        let proposals = self
            .own_proposals
            .iter()
            .filter(|p| p.proposal.round == self.round)
            .map(|p| Message::Proposal(p.clone()));
        let votes = self.own_votes.iter().map(|v| Message::Vote(*v));
        let proof_of_lock = self.valid.iter().flat_map(|(vr, v)| {
            self.keeper
                .votes_for(*vr, crate::types::VoteKind::Prevote, v.id())
                .map(|v| Message::Vote(*v))
        });
        let me = self.validator_index();
        proposals
            .chain(votes)
            .chain(
                proof_of_lock
                    .filter(|m| !matches!(m, Message::Vote(v) if Some(v.vote.validator) == me)),
            )
            .collect()
    }

    pub fn height(&self) -> Height {
        self.height
    }
    pub fn round(&self) -> Round {
        self.round
    }
    pub fn step(&self) -> Step {
        self.step
    }
    pub fn locked_round(&self) -> Option<Round> {
        self.locked.as_ref().map(|(r, _)| *r)
    }
    pub fn valid_round(&self) -> Option<Round> {
        self.valid.as_ref().map(|(r, _)| *r)
    }
    /// This validator's index, or `None` for an observer.
    pub fn validator_index(&self) -> Option<ValidatorIndex> {
        self.signer.as_ref().map(|(i, _)| *i)
    }
    pub fn proposer(&self, height: Height, round: Round) -> ValidatorIndex {
        self.schedule.proposer(height, round)
    }
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }
    pub fn chain_id(&self) -> &[u8; 32] {
        &self.chain_id
    }
    pub fn config(&self) -> &Config {
        &self.config
    }
    /// The equivocation evidence gathered at this height.
    pub fn evidence(&self) -> &[Equivocation] {
        &self.evidence
    }
}

#[cfg(test)]
mod tests;
