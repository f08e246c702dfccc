//! The ledger's one error type. A function that returns an error has changed nothing.

use crate::crypto::PublicKey;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Error {
    // Encoding.
    #[error("bad hex for {what}: want {len} bytes")]
    BadHex { what: &'static str, len: usize },
    #[error("input of {len} bytes exceeds the limit of {max}")]
    TooLarge { len: usize, max: usize },
    #[error("unsupported encoding version {0}")]
    UnsupportedVersion(u8),
    #[error("malformed encoding: {0}")]
    Malformed(String),

    // Keys and signatures.
    #[error("invalid ed25519 public key")]
    InvalidPublicKey,
    #[error("bad signature")]
    BadSignature,
    #[error("random source failed: {0}")]
    Random(String),

    // Consortium.
    #[error("unknown role {0:?}: want hospital, clinic or regulator")]
    UnknownRole(String),
    #[error("member {0} is listed twice")]
    DuplicateMember(PublicKey),
    #[error("invalid size limits")]
    InvalidLimits,
    #[error("consensus: {0}")]
    Consensus(cradle_consensus::Error),
}
