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
//! 6. When a committed block fixes a new validator set for a later height (a governance change,
//!    two heights ahead), hand it over with [`Core::set_validators_from`] before feeding the next
//!    input: every message of a height is judged by that height's set, including the ones
//!    buffered for the next height, and the core votes only at heights whose set has its key.

mod inputs;
mod io;
mod rules;

use std::collections::{BTreeMap, BTreeSet};

use ed25519_dalek::SigningKey;

pub use io::{Effect, Input, PersistedState};

use crate::config::{Config, Step};
use crate::evidence::Equivocation;
use crate::keeper::{ROUNDS_BEHIND_MAX, VoteKeeper};
use crate::proposal::{Message, Proposal, SignedProposal, Value};
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
    /// Keep judging votes by the set the core started with, whatever later heights' sets are
    /// (checks votes against the wrong height's set).
    pub ignore_set_changes: bool,
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
    /// Sets that take over at later heights, by the first height of each.
    upcoming: BTreeMap<Height, ValidatorSet>,
    chain_id: [u8; 32],
    /// This node's key, whether or not the current set has it.
    own_key: Option<SigningKey>,
    /// Its index in the current set and its key, when it validates at this height.
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
    /// Height of the last decision this core emitted, to assert that heights only grow.
    decided: Option<Height>,
    now_ms: u64,
    timers: Vec<Timer>,
    #[cfg(feature = "sim")]
    defects: Defects,
}

impl<V: Value> Core<V> {
    /// A core at `height` (the last committed height + 1) under `validators`, the set in force
    /// there. `signer` is this node's key: it votes at every height whose set has it, and
    /// follows as an observer at the others; `None` makes an observer for good. `persisted` is
    /// the last state the driver persisted: restored when it is for `height`, ignored when
    /// older.
    pub fn new(
        config: Config,
        validators: ValidatorSet,
        chain_id: [u8; 32],
        signer: Option<SigningKey>,
        height: Height,
        persisted: Option<PersistedState<V>>,
    ) -> Result<Self, Error> {
        config.validate()?;
        let own_key = signer;
        let signer = signer_in(&validators, own_key.as_ref());
        let mut core = Self {
            config,
            upcoming: BTreeMap::new(),
            own_key,
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
            decided: None,
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

    /// Takes up `state` after checking it is one this core could have persisted: its own
    /// messages of this height from the kept rounds, at most one per round and step, and no
    /// lock or valid value from a later round.
    fn restore(&mut self, state: PersistedState<V>) -> Result<(), Error> {
        let corrupt = |reason| Err(Error::CorruptPersistedState { reason });
        let me = self.signer.as_ref().map(|(i, _)| *i);
        let kept = state.round.saturating_sub(ROUNDS_BEHIND_MAX)..=state.round;
        for (i, v) in state.own_votes.iter().enumerate() {
            if Some(v.vote.validator) != me || v.vote.height != state.height {
                return corrupt("vote of another validator or height");
            }
            if !kept.contains(&v.vote.round) {
                return corrupt("vote from a round outside the kept window");
            }
            let slot = (v.vote.round, v.vote.kind);
            if state.own_votes[..i]
                .iter()
                .any(|w| (w.vote.round, w.vote.kind) == slot)
            {
                return corrupt("two own votes for one round and step");
            }
        }
        for (i, p) in state.own_proposals.iter().enumerate() {
            if Some(p.proposal.proposer) != me || p.proposal.height != state.height {
                return corrupt("proposal of another validator or height");
            }
            if !kept.contains(&p.proposal.round) {
                return corrupt("proposal from a round outside the kept window");
            }
            if state.own_proposals[..i]
                .iter()
                .any(|q| q.proposal.round == p.proposal.round)
            {
                return corrupt("two own proposals for one round");
            }
        }
        let round_of = |x: &Option<(Round, V)>| x.as_ref().map(|(r, _)| *r);
        let (locked, valid) = (round_of(&state.locked), round_of(&state.valid));
        // Only L36 sets them, from the prevote step on, to the round of that moment.
        let latest = match state.step {
            Step::Propose => state.round.checked_sub(1),
            Step::Prevote | Step::Precommit => Some(state.round),
        };
        if locked > valid || valid > latest {
            return corrupt("lock or valid value out of order");
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
        let before = (self.height, self.round);
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
        // Tuples order by height, then round: the round may fall back only to a new height's 0.
        assert!(
            (self.height, self.round) >= before,
            "height and round only move forward: ({}, {}) became ({}, {})",
            before.0,
            before.1,
            self.height,
            self.round
        );
        Ok(fx)
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
    /// See [`crate::proposer::ProposerSchedule::may_have_built`].
    pub fn may_have_built(&self, proposal: &Proposal, builder: ValidatorIndex) -> bool {
        self.schedule.may_have_built(
            proposal.height,
            proposal.round,
            proposal.valid_round,
            builder,
        )
    }
    pub fn validators(&self) -> &ValidatorSet {
        &self.validators
    }

    /// Makes `validators` the set from `height` on (until a later one given here). A height
    /// the core has already entered is refused: its messages were judged by another set.
    pub fn set_validators_from(
        &mut self,
        height: Height,
        validators: ValidatorSet,
    ) -> Result<(), Error> {
        if height <= self.height {
            return Err(Error::SetChangeTooLate {
                height,
                current: self.height,
            });
        }
        self.upcoming.insert(height, validators);
        Ok(())
    }

    /// Replaces the timeouts (a governance change in force): rounds started from now on wait
    /// by the new ones. Timeouts bear on liveness only, so a node taking them up a little
    /// earlier or later than another is harmless.
    pub fn set_config(&mut self, config: Config) -> Result<(), Error> {
        config.validate()?;
        self.config = config;
        Ok(())
    }

    /// At a new height: takes up the set given for it, if any, and finds this node in it.
    pub(super) fn take_up_set(&mut self, height: Height) {
        let mut due = None;
        while let Some(entry) = self.upcoming.first_entry() {
            if *entry.key() > height {
                break;
            }
            due = Some(entry.remove());
        }
        #[cfg(feature = "sim")]
        if self.defects.ignore_set_changes {
            return;
        }
        if let Some(set) = due {
            self.schedule = ProposerSchedule::new(&set);
            self.signer = signer_in(&set, self.own_key.as_ref());
            self.validators = set;
        }
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

/// `key`'s index in `validators` with the key, if the set has it.
fn signer_in(
    validators: &ValidatorSet,
    key: Option<&SigningKey>,
) -> Option<(ValidatorIndex, SigningKey)> {
    let key = key?;
    let index = validators.index_of(&key.verifying_key().to_bytes())?;
    Some((index, key.clone()))
}

#[cfg(test)]
mod tests;
