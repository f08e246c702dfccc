//! The core's interface with its driver: inputs, effects and the state to persist.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::config::Step;
use crate::evidence::Equivocation;
use crate::proposal::{Message, SignedProposal};
use crate::types::{CommitCertificate, Height, Round, SignedVote, ValueId};

/// Everything that can happen to a validator. The driver feeds inputs one at a time.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Input<V> {
    /// Begin (or, after a restore, resume) the current height. L10: `upon start do StartRound(0)`.
    Start,
    /// A proposal received from the network.
    Proposal(SignedProposal<V>),
    /// A vote received from the network.
    Vote(SignedVote),
    /// A timeout the core asked for with [`Effect::ScheduleTimeout`] has elapsed.
    TimeoutElapsed {
        height: Height,
        round: Round,
        step: Step,
    },
    /// The value to propose, in answer to [`Effect::RequestValue`] (the paper's `getValue()`).
    ProposeValue {
        height: Height,
        round: Round,
        value: V,
    },
    /// The verdict of the ledger's rules on a proposed value, in answer to
    /// [`Effect::ValidateValue`] (the paper's `valid(v)`).
    ValueValidated {
        height: Height,
        id: ValueId,
        valid: bool,
    },
    /// The driver has applied, from catch-up sync, a block decided at `certificate.height` by
    /// the others: the core checks the certificate and moves on to the next height.
    Committed { certificate: CommitCertificate },
    /// The current time, for drivers that would rather tick than arm timers one by one: every
    /// timeout whose deadline has passed fires.
    Tick { now_ms: u64 },
}

/// What the driver must do, in the order given. Carry out each effect before the next: in
/// particular the state in a `PersistAndBroadcast…` effect is written and synced before the
/// message goes out, and a `Decide` is committed before any effect that follows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Effect<V> {
    /// Persist `state` durably (fsync), then broadcast the vote.
    PersistAndBroadcastVote {
        state: Box<PersistedState<V>>,
        vote: SignedVote,
    },
    /// Persist `state` durably (fsync), then broadcast the proposal.
    PersistAndBroadcastProposal {
        state: Box<PersistedState<V>>,
        proposal: SignedProposal<V>,
    },
    /// Send again a message that was already persisted (after a restart, or for gossip).
    Broadcast(Message<V>),
    /// Call back with [`Input::TimeoutElapsed`] after `duration_ms`.
    ScheduleTimeout {
        height: Height,
        round: Round,
        step: Step,
        duration_ms: u64,
    },
    /// This validator proposes in `(height, round)`: answer with [`Input::ProposeValue`].
    RequestValue { height: Height, round: Round },
    /// Check `value` against the ledger's rules: answer with [`Input::ValueValidated`].
    ValidateValue {
        height: Height,
        round: Round,
        value: V,
    },
    /// `value` is decided at `height`; the certificate proves it to anyone with the genesis.
    Decide {
        height: Height,
        round: Round,
        value: V,
        certificate: CommitCertificate,
    },
    /// A validator signed two conflicting messages: report it.
    Evidence(Box<Equivocation>),
}

/// What a validator must have on disk before any vote or proposal it signs goes out. Restored
/// with [`crate::Core::new`], it guarantees the validator never signs a different vote or
/// proposal for a height, round and step it already signed for.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct PersistedState<V> {
    pub height: Height,
    pub round: Round,
    pub step: Step,
    /// `(lockedRound, lockedValue)`.
    pub locked: Option<(Round, V)>,
    /// `(validRound, validValue)`.
    pub valid: Option<(Round, V)>,
    /// Every vote this validator signed at this height (bounded by the round window).
    pub own_votes: Vec<SignedVote>,
    /// Every proposal this validator signed at this height (bounded by the round window).
    pub own_proposals: Vec<SignedProposal<V>>,
}
