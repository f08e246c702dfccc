//! `cradle-consensus`: Tendermint BFT ("The latest gossip on BFT consensus", Buchman, Kwon and
//! Milosevic, 2018, Algorithm 1) as a pure, deterministic state machine.
//!
//! The crate owns the protocol and nothing else: no clock, no randomness, no storage, no network.
//! Time and messages come in as inputs; votes to persist and broadcast, timeouts to schedule and
//! decisions come out as effects, which the node carries out in order.
//!
//! - [`types`]: the wire-level vocabulary other crates rely on (votes, their signing bytes,
//!   validator sets and commit certificates). Its signing format is a stable contract: the
//!   ledger verifies the commit certificates that this crate produces.
//! - [`proposal`]: proposals, the [`Value`] trait and messages; [`evidence`]: equivocation
//!   evidence, checkable from the validator set alone.
//! - [`config`]: timeouts; [`pacing`]: when a proposer proposes; [`proposer`]: weighted round-robin; [`keeper`]: the vote keeper.
//! - [`core`]: the state machine the node drives.
//! - `sim` (feature `sim`): a seeded whole-cluster simulator with Byzantine actors and a checker.

pub mod config;
pub mod core;
pub mod evidence;
pub mod keeper;
pub mod pacing;
pub mod proposal;
pub mod proposer;
#[cfg(feature = "sim")]
pub mod sim;
pub mod types;

pub use config::{Config, Step};
pub use core::{Core, Effect, Input, PersistedState};
pub use evidence::{Equivocation, EvidenceKind, EvidenceSlot};
pub use pacing::Pacing;
pub use proposal::{Message, Proposal, SignedProposal, SignedProposalHeader, Value};
pub use types::{
    CommitCertificate, CommitSig, Error, Height, Round, SignedVote, Validator, ValidatorIndex,
    ValidatorSet, ValueId, Vote, VoteKind,
};
