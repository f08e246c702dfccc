//! The HTTP contract between a node and its clients, defined once for both sides: header names,
//! the machine-readable error codes, and the JSON answers both parse.
//!
//! The transport lives in `cradle-node` (serving) and `cradle-client` (asking); this module only
//! names what they exchange, so the two can never drift apart. Limits and header names are
//! defined beside the types they bound and re-exported here.

use serde::{Deserialize, Serialize};

pub use crate::access::ACCESS_REQUEST_BYTES_MAX;
pub use crate::api_request::{
    ACCESS_TX_HEADER, AUTH_HEADER, CIPHERTEXT_SHA256_HEADER, OUTCOME_HEADER, WRAPPED_KEY_HEADER,
};
/// `POST /v1/txs/batch`: most transactions, and most bytes, in one batch.
pub use crate::tx::{TX_BATCH_BYTES_MAX, TX_BATCH_MAX, TxBatch};

/// What went wrong, for programs: stable across releases, unlike the one-line `error` text.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ErrorCode {
    /// The request is malformed: bad hex, bad encoding, bad parameters.
    BadRequest,
    /// A transaction failed decoding or its signature check.
    InvalidTx,
    /// The signed-request header is missing, malformed, stale or badly signed.
    Unauthorized,
    /// The signed request was seen before.
    Replayed,
    /// The caller may not do or read this.
    Forbidden,
    /// The access rule denied the fetch; the denial is recorded on the ledger.
    AccessDenied,
    NotFound,
    /// The archive is held by another member's node.
    Misdirected,
    /// The transaction conflicts with a pending one (duplicate, nonce taken or stale).
    TxConflict,
    /// The ledger dropped the transaction; `error` carries its reason.
    TxRejected,
    /// The access request is already on the ledger: sign a new one.
    AlreadyRecorded,
    /// The access request's time is outside the ledger's window.
    StaleRequest,
    PayloadTooLarge,
    LengthRequired,
    InsufficientStorage,
    /// The mempool is full.
    MempoolFull,
    /// Too much is in flight; retry shortly.
    Busy,
    /// Too many requests from this address or key; retry after `Retry-After` seconds.
    RateLimited,
    /// The node cannot do it right now (shutting down, no blocks yet, archive unavailable).
    Unavailable,
    /// The transaction was accepted but not committed within the wait.
    CommitTimeout,
    /// A fault inside the node; details are in its log only.
    Internal,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::BadRequest => "bad_request",
            Self::InvalidTx => "invalid_tx",
            Self::Unauthorized => "unauthorized",
            Self::Replayed => "replayed",
            Self::Forbidden => "forbidden",
            Self::AccessDenied => "access_denied",
            Self::NotFound => "not_found",
            Self::Misdirected => "misdirected",
            Self::TxConflict => "tx_conflict",
            Self::TxRejected => "tx_rejected",
            Self::AlreadyRecorded => "already_recorded",
            Self::StaleRequest => "stale_request",
            Self::PayloadTooLarge => "payload_too_large",
            Self::LengthRequired => "length_required",
            Self::InsufficientStorage => "insufficient_storage",
            Self::MempoolFull => "mempool_full",
            Self::Busy => "busy",
            Self::RateLimited => "rate_limited",
            Self::Unavailable => "unavailable",
            Self::CommitTimeout => "commit_timeout",
            Self::Internal => "internal",
        }
    }
}

/// Every error answer: `{"error": "one-line reason", "code": "..."}`, with extra fields where
/// a route documents them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorAnswer {
    pub error: String,
    pub code: ErrorCode,
}

/// The answer to `POST /v1/txs`: the hash, and with `?wait=commit` where it committed.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SubmitAnswer {
    /// Hex SHA-256 of the encoded transaction.
    pub hash: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub height: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub index: Option<u32>,
}

/// The 403 answer to a denied fetch: the denial is itself on the ledger.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct FetchDenied {
    pub error: String,
    pub code: ErrorCode,
    /// The rule's reason, snake case (see `access::DenialReason`).
    pub reason: crate::access::DenialReason,
    /// Hex hash of the committed access record.
    pub access_tx: String,
    pub height: u64,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_codes_serialize_as_their_stable_names() {
        for code in [
            ErrorCode::BadRequest,
            ErrorCode::AccessDenied,
            ErrorCode::TxRejected,
            ErrorCode::CommitTimeout,
        ] {
            let json = serde_json::to_string(&code).unwrap_or_default();
            assert_eq!(json, format!("\"{}\"", code.as_str()));
        }
    }
}
