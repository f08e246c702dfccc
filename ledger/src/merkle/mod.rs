//! Merkle commitments and proofs.
//!
//! Two structures, both over SHA-256 with distinct leaf (0x00) and node (0x01) prefixes so a leaf
//! can never be passed off as an interior node:
//! - [`log`]: the RFC 6962 / RFC 9162 append-only tree behind the global access log and each
//!   patient's access history. Any RFC 6962 verifier accepts its inclusion and consistency proofs.
//! - [`smt`]: a compressed sparse Merkle tree over the key-value state, with proofs of presence
//!   and of absence, updated in O(depth) per changed key.
//!
//! Verification never panics on hostile input: every malformed proof is an `Err`.

pub mod log;
pub mod smt;

/// A SHA-256 digest.
pub type Hash = [u8; 32];

/// Why a proof (or a proof request) was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ProofError {
    #[error("index {index} out of range for tree size {size}")]
    IndexOutOfRange { index: u64, size: u64 },
    #[error("wrong proof length: got {got}, want {want}")]
    WrongProofLength { got: usize, want: usize },
    #[error("root mismatch")]
    RootMismatch,
    #[error("tree size decreased from {size1} to {size2}")]
    SizeDecreased { size1: u64, size2: u64 },
    #[error("consistency with the empty tree proves nothing (size1 0, size2 {size2})")]
    EmptyTreeConsistency { size2: u64 },
    #[error("root of the empty tree must be sha256(\"\")")]
    NotEmptyRoot,
    #[error("subtree at level {level} index {index} is not available")]
    MissingSubtree { level: u32, index: u64 },
    #[error("proof source failed: {0}")]
    Source(String),
    #[error("frontier of size {size} must hold {want} hashes, got {got}")]
    FrontierHashCount { size: u64, got: usize, want: usize },
    #[error("too many hashes: got {got}, max {max}")]
    TooManyHashes { got: usize, max: usize },
    #[error("invalid node key: {reason}")]
    InvalidNodeKey { reason: &'static str },
    #[error("sibling bitmap does not match: {set} bits set, {siblings} siblings")]
    SiblingBitmapMismatch { set: usize, siblings: usize },
    #[error("proof depth {depth} exceeds 256")]
    DepthOutOfRange { depth: u16 },
    #[error("key is absent")]
    KeyAbsent,
    #[error("key is present")]
    KeyPresent,
    #[error("value mismatch")]
    ValueMismatch,
    #[error("leaf in proof is not on the key's path")]
    LeafOffPath,
}
