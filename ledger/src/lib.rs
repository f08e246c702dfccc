//! `cradle-ledger`: what the consortium records and the rules for it.
//!
//! - [`identity`]: member institutions, roles and the consortium's policy (genesis, then
//!   [`governance`]: changes by a two-thirds vote, in force two blocks after adoption);
//! - [`tx`] and [`access`]: the transactions and the access rule;
//! - [`staff`]: clinicians, their roles and keys, registered by their institutions;
//! - [`rules`]: what each transaction may do to state, one module per kind;
//! - [`block`]: headers, blocks and their commit certificates, and the block pipeline: envelope,
//!   batched signatures, execution (which takes proof that signatures were checked), building;
//! - [`state`]: the key-value state and the overlay a block's changes accumulate in;
//! - [`audit`]: audit answers proven complete from genesis, and light-client checkpoints;
//! - [`merkle`]: RFC 6962 logs and the sparse Merkle tree behind the state root;
//! - [`contract`] and [`api_request`]: the HTTP contract between node and client, and signed
//!   API requests;
//! - [`codec`] and [`crypto`]: canonical, bounded encoding and domain-separated signatures;
//! - [`keywrap`]: archive keys wrapped for one recipient and one archive;
//! - [`justification`]: break-glass justifications sealed for the patient and the regulators.
//!
//! Pure and deterministic: no clock, no randomness in the rules, no I/O. The node feeds it blocks
//! and stores what it returns.

pub mod access;
pub mod api_request;
pub mod audit;
pub mod block;
pub mod codec;
pub mod contract;
pub mod crypto;
pub mod error;
pub mod governance;
pub mod identity;
pub mod justification;
pub mod keywrap;
pub mod merkle;
pub mod rules;
pub mod staff;
pub mod state;
pub mod tx;

pub use crypto::{
    ArchiveId, Digest32, GrantId, Hash, Keypair, ProposalId, PublicKey, Signature, StaffId,
    X25519Public,
};
pub use error::Error;
pub use identity::{Consortium, Limits, Member, MemberSet, Policy, Role};
