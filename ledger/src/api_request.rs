//! Signed client requests to a node's archive endpoints.
//!
//! A signed request carries, in the `x-cradle-auth` header, the requester's signature over the
//! node it is for (that node's member key), the method, the path with its query, the SHA-256 of
//! the body, the time and a random nonce: `TAG_API_REQUEST || chain_id || borsh(ApiRequest)`.
//! The node checks the signature, that it is the node named, that method, path and body are the
//! ones signed, that the time is within its allowed skew, and that it has not seen the nonce
//! before, so a captured request cannot be replayed (to this node or another), redirected or
//! given another body.

use borsh::{BorshDeserialize, BorshSerialize};

use crate::codec::{self, BoundedString};
use crate::crypto::{Hash, Keypair, PublicKey, Signature, TAG_API_REQUEST};
use crate::error::Error;

/// The HTTP header that carries a hex-encoded [`SignedApiRequest`].
pub const AUTH_HEADER: &str = "x-cradle-auth";
/// Header of a permitted fetch's answer: `permitted` or `break_glass`.
pub const OUTCOME_HEADER: &str = "x-cradle-outcome";
/// Header of a fetch's answer: the hash of the access record the custodian committed.
pub const ACCESS_TX_HEADER: &str = "x-cradle-access-tx";
/// Header of a permitted fetch's answer: the archive key wrapped for the accessor, in hex.
pub const WRAPPED_KEY_HEADER: &str = "x-cradle-wrapped-key";
/// Header of a permitted fetch's answer: the SHA-256 of the ciphertext that follows, in hex.
pub const CIPHERTEXT_SHA256_HEADER: &str = "x-cradle-ciphertext-sha256";
/// Longest method name signed.
pub const METHOD_BYTES_MAX: usize = 8;
/// Longest path (with query) signed.
pub const PATH_BYTES_MAX: usize = 1024;
/// Largest encoded signed request.
pub const SIGNED_BYTES_MAX: usize =
    1 + 32 + 32 + 4 + METHOD_BYTES_MAX + 4 + PATH_BYTES_MAX + 32 + 8 + 16 + 64;

/// What the requester signs.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct ApiRequest {
    pub signer: PublicKey,
    /// The member key of the node the request is for.
    pub node: PublicKey,
    pub method: BoundedString<METHOD_BYTES_MAX>,
    /// The path and query exactly as sent, e.g. `/v1/archives/ab12.../fetch`.
    pub path: BoundedString<PATH_BYTES_MAX>,
    /// SHA-256 of the whole request body (of the empty string when there is none).
    pub body_sha256: Hash,
    pub time_ms: u64,
    pub nonce: [u8; 16],
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize)]
pub struct SignedApiRequest {
    pub request: ApiRequest,
    pub signature: Signature,
}

impl ApiRequest {
    /// A request for the node of member key `node`, with a fresh random nonce.
    pub fn new(
        signer: PublicKey,
        node: PublicKey,
        method: &str,
        path: &str,
        body_sha256: Hash,
        time_ms: u64,
    ) -> Result<Self, Error> {
        let mut nonce = [0u8; 16];
        getrandom::fill(&mut nonce).map_err(|e| Error::Random(e.to_string()))?;
        Ok(Self {
            signer,
            node,
            method: BoundedString::new(method.to_string())?,
            path: BoundedString::new(path.to_string())?,
            body_sha256,
            time_ms,
            nonce,
        })
    }

    pub fn sign(self, key: &Keypair, chain_id: &Hash) -> SignedApiRequest {
        let signature = key.sign(TAG_API_REQUEST, chain_id, &self);
        SignedApiRequest {
            request: self,
            signature,
        }
    }
}

impl SignedApiRequest {
    /// The header value: hex of the canonical encoding.
    pub fn to_header(&self) -> String {
        hex::encode(codec::encode(self))
    }

    /// Parses a header value; checks nothing but the encoding.
    pub fn from_header(value: &str) -> Result<Self, Error> {
        if value.len() > 2 * SIGNED_BYTES_MAX {
            return Err(Error::TooLarge {
                len: value.len() / 2,
                max: SIGNED_BYTES_MAX,
            });
        }
        let bytes = hex::decode(value).map_err(|_| Error::BadHex {
            what: "request signature header",
            len: SIGNED_BYTES_MAX,
        })?;
        codec::decode(&bytes, SIGNED_BYTES_MAX)
    }

    /// Checks the signature and that it signs this node, method, path and body hash, at a time
    /// within `skew_ms` of `now_ms`. The caller checks the nonce for replays.
    #[allow(clippy::too_many_arguments)]
    pub fn check(
        &self,
        chain_id: &Hash,
        node: &PublicKey,
        method: &str,
        path: &str,
        body_sha256: &Hash,
        now_ms: u64,
        skew_ms: u64,
    ) -> Result<(), ApiAuthError> {
        let r = &self.request;
        if &r.node != node {
            return Err(ApiAuthError::WrongNode);
        }
        if r.method.as_str() != method || r.path.as_str() != path {
            return Err(ApiAuthError::WrongTarget);
        }
        if &r.body_sha256 != body_sha256 {
            return Err(ApiAuthError::BodyMismatch);
        }
        if r.time_ms.abs_diff(now_ms) > skew_ms {
            return Err(ApiAuthError::Stale {
                time_ms: r.time_ms,
                now_ms,
            });
        }
        r.signer
            .verify(TAG_API_REQUEST, chain_id, r, &self.signature)
            .map_err(|_| ApiAuthError::BadSignature)
    }
}

/// Why a signed request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ApiAuthError {
    #[error("the request is not signed: add the {AUTH_HEADER} header")]
    Missing,
    #[error("malformed {AUTH_HEADER} header: {0}")]
    Malformed(String),
    #[error("the signature is for another method or path")]
    WrongTarget,
    #[error("the request was signed for another node")]
    WrongNode,
    #[error("the body is not the one that was signed")]
    BodyMismatch,
    #[error("the request was signed at {time_ms} ms but the node's clock says {now_ms} ms")]
    Stale { time_ms: u64, now_ms: u64 },
    #[error("bad request signature")]
    BadSignature,
    #[error("the request was already used (replay)")]
    Replayed,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::sha256;

    #[test]
    fn signed_request_checks_target_body_time_and_signature() {
        let key = Keypair::from_seed(&[7; 32]);
        let chain = [1u8; 32];
        let body = sha256(b"body");
        let node = Keypair::from_seed(&[8; 32]).public_key();
        let signed = ApiRequest::new(key.public_key(), node, "POST", "/v1/x", body, 1_000)
            .unwrap()
            .sign(&key, &chain);
        let parsed = SignedApiRequest::from_header(&signed.to_header()).unwrap();
        assert_eq!(parsed, signed);
        parsed
            .check(&chain, &node, "POST", "/v1/x", &body, 1_500, 1_000)
            .unwrap();
        assert_eq!(
            parsed.check(
                &chain,
                &key.public_key(),
                "POST",
                "/v1/x",
                &body,
                1_500,
                1_000
            ),
            Err(ApiAuthError::WrongNode)
        );
        assert_eq!(
            parsed.check(&chain, &node, "GET", "/v1/x", &body, 1_500, 1_000),
            Err(ApiAuthError::WrongTarget)
        );
        assert_eq!(
            parsed.check(&chain, &node, "POST", "/v1/y", &body, 1_500, 1_000),
            Err(ApiAuthError::WrongTarget)
        );
        assert_eq!(
            parsed.check(
                &chain,
                &node,
                "POST",
                "/v1/x",
                &sha256(b"other"),
                1_500,
                1_000
            ),
            Err(ApiAuthError::BodyMismatch)
        );
        assert!(matches!(
            parsed.check(&chain, &node, "POST", "/v1/x", &body, 5_000, 1_000),
            Err(ApiAuthError::Stale { .. })
        ));
        assert_eq!(
            parsed.check(&[2; 32], &node, "POST", "/v1/x", &body, 1_500, 1_000),
            Err(ApiAuthError::BadSignature)
        );
        assert!(SignedApiRequest::from_header("zz").is_err());
        assert!(SignedApiRequest::from_header(&"00".repeat(SIGNED_BYTES_MAX + 1)).is_err());
    }
}
