//! `cradle-ledger`: what the consortium records and the rules for it.
//!
//! Pure and deterministic: no clock, no randomness in the rules, no I/O. The node feeds it blocks
//! and stores what it returns.

pub mod codec;
pub mod crypto;
pub mod error;
pub mod identity;
pub mod merkle;

pub use crypto::{Hash, Keypair, PublicKey, Signature, X25519Public};
pub use error::Error;
pub use identity::{Consortium, Limits, Member, Policy, Role};
