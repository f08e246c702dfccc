//! `cradle-consensus`: Tendermint BFT ("The latest gossip on BFT consensus", Buchman, Kwon and
//! Milosevic, 2018, Algorithm 1) as a pure, deterministic state machine.
//!
//! The crate owns the protocol and nothing else: no clock, no randomness, no storage, no network.
//! Time and messages come in as inputs; votes to persist and broadcast, timeouts to schedule and
//! decisions come out as effects, which the node carries out in order.
//!
//! [`types`] holds the wire-level vocabulary that other crates rely on (votes, their signing
//! bytes, validator sets and commit certificates). Its signing format is a stable contract: the
//! ledger verifies the commit certificates that this crate produces.

pub mod types;

pub use types::{
    CommitCertificate, CommitSig, Error, Height, Round, SignedVote, Validator, ValidatorIndex,
    ValidatorSet, ValueId, Vote, VoteKind,
};
