//! Signed requests: the `x-cradle-auth` header checked against the request it came with, and
//! the replay cache that refuses a nonce seen within the allowed clock skew.

use std::collections::{HashMap, VecDeque};
use std::net::IpAddr;

use axum::http::{HeaderMap, StatusCode, Uri};
use cradle_ledger::api_request::{AUTH_HEADER, ApiAuthError, SignedApiRequest};
use cradle_ledger::contract::ErrorCode;
use cradle_ledger::state::StateExt;
use cradle_ledger::{Hash, PublicKey};

use super::rate::{self, Class};
use super::{HttpError, HttpState};
use cradle_genesis::clock::now_ms;

/// Most signed-request nonces remembered at once; beyond it new requests wait for old ones to
/// age out rather than weaken replay protection.
pub const REPLAY_ENTRIES_MAX: usize = 200_000;
/// How far ahead of this node's clock a signed request may be dated (it may be up to the
/// configured skew behind).
pub const REQUEST_AHEAD_MAX_MS: u64 = 2_000;
/// Most nonces remembered for one signer: one busy key cannot take the whole cache.
pub const REPLAY_PER_SIGNER_MAX: usize = 20_000;

fn unauthorized(e: ApiAuthError) -> HttpError {
    let (status, code) = match e {
        ApiAuthError::Replayed => (StatusCode::UNAUTHORIZED, ErrorCode::Replayed),
        ApiAuthError::Stale { .. } => (StatusCode::UNAUTHORIZED, ErrorCode::StaleRequest),
        ApiAuthError::WrongNode => (StatusCode::MISDIRECTED_REQUEST, ErrorCode::Misdirected),
        _ => (StatusCode::UNAUTHORIZED, ErrorCode::Unauthorized),
    };
    HttpError::new(status, code, e.to_string())
}

/// Checks the signed-request header against this request; returns the signer. A request that
/// fails, for any reason, is charged to its address's rate (`peer`) as an anonymous one is; one
/// that passes is charged to its key's, so no one sharing an address can use up another's.
pub fn authenticate(
    state: &HttpState,
    peer: Option<IpAddr>,
    headers: &HeaderMap,
    method: &str,
    uri: &Uri,
    body_sha256: &Hash,
    class: Class,
) -> Result<PublicKey, HttpError> {
    check(state, headers, method, uri, body_sha256, class).map_err(|e| {
        match peer.map(|ip| state.rate.take_ip(ip, now_ms())) {
            Some(Err(limited)) => rate::refusal(state, limited),
            _ => e,
        }
    })
}

fn check(
    state: &HttpState,
    headers: &HeaderMap,
    method: &str,
    uri: &Uri,
    body_sha256: &Hash,
    class: Class,
) -> Result<PublicKey, HttpError> {
    let value = headers
        .get(AUTH_HEADER)
        .ok_or_else(|| unauthorized(ApiAuthError::Missing))?
        .to_str()
        .map_err(|_| unauthorized(ApiAuthError::Malformed("not ASCII".into())))?;
    let signed = SignedApiRequest::from_header(value)
        .map_err(|e| unauthorized(ApiAuthError::Malformed(e.to_string())))?;
    let now = now_ms();
    signed
        .check(
            &state.consortium().chain_id,
            &state.node_key,
            method,
            &path_of(uri),
            body_sha256,
            now,
            state.request_skew_ms,
        )
        .map_err(unauthorized)?;
    let r = &signed.request;
    // The replay cache starts empty at each start. A request the previous run accepted was
    // dated at most REQUEST_AHEAD_MAX_MS past that run's clock, so anything dated before this
    // start plus that margin is refused rather than remembered (for that long after a start,
    // fresh requests are refused too, and signed again).
    if r.time_ms > now.saturating_add(REQUEST_AHEAD_MAX_MS) {
        return Err(unauthorized(ApiAuthError::Stale {
            time_ms: r.time_ms,
            now_ms: now,
        }));
    }
    let fresh_from = state.started_ms.saturating_add(REQUEST_AHEAD_MAX_MS);
    if r.time_ms < fresh_from {
        return Err(HttpError::new(
            StatusCode::UNAUTHORIZED,
            ErrorCode::StaleRequest,
            format!(
                "the node has just started: it takes requests signed from {fresh_from} ms on; \
                 sign again"
            ),
        ));
    }
    // Only a known key (a member, an active clinician, or an enrolled patient) may take a slot
    // in the replay cache: throwaway keys cannot fill it and lock everyone else out. A
    // suspended, retired or rotated-out clinician's key is nobody's from the next block on: it
    // reads nothing and writes nothing, not even a refusal into a mother's history.
    let staff = state.store.staff(&r.signer).map_err(HttpError::internal)?;
    if staff.as_ref().is_some_and(|s| !s.is_active()) {
        state
            .metrics
            .requests_refused_unknown
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(HttpError::forbidden(
            "the request is signed by a clinician who is suspended, retired or rotated out",
        ));
    }
    // A patient is known by her current key; one she rotated away from is no one's now.
    let known = state.consortium().signer(&r.signer).is_some()
        || staff.is_some()
        || state
            .store
            .patient_by_key(&r.signer)
            .map_err(HttpError::internal)?
            .is_some_and(|(_, _, current)| current);
    if !known {
        state
            .metrics
            .requests_refused_unknown
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        return Err(HttpError::forbidden(
            "the request is signed by a key that is neither a member, a clinician nor an enrolled patient",
        ));
    }
    // Each known key is held to its rate before it takes a slot in the replay cache. An
    // institution's or a clinician's fetches count as its other requests do; a patient's,
    // which each write an access record, have a slower rate of their own.
    let class = match class {
        Class::Fetch if state.consortium().signer(&r.signer).is_some() || staff.is_some() => {
            Class::Ordinary
        }
        other => other,
    };
    state
        .rate
        .take_key(r.signer, class, now)
        .map_err(|limited| rate::refusal(state, limited))?;
    let mut replay = state
        .replay
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    match replay.check_and_insert(r.signer, r.nonce, now) {
        Ok(()) => Ok(r.signer),
        Err(ReplayError::Replayed) => Err(unauthorized(ApiAuthError::Replayed)),
        Err(ReplayError::Busy) => Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            ErrorCode::Busy,
            "too many signed requests in flight; retry shortly",
        )),
    }
}

/// The path with its query, as the signer signed it.
fn path_of(uri: &Uri) -> String {
    uri.path_and_query()
        .map(|p| p.as_str().to_string())
        .unwrap_or_else(|| uri.path().to_string())
}

/// Signed-request nonces seen within the allowed clock skew.
pub struct ReplayCache {
    seen: HashMap<(PublicKey, [u8; 16]), u64>,
    per_signer: HashMap<PublicKey, usize>,
    order: VecDeque<(u64, PublicKey, [u8; 16])>,
    keep_ms: u64,
}

/// Why a nonce was not accepted.
#[derive(Debug, PartialEq, Eq)]
pub enum ReplayError {
    Replayed,
    Busy,
}

impl ReplayCache {
    /// Remembers nonces for `keep_ms` (twice the allowed skew: a request older than that is
    /// refused as stale anyway).
    pub fn new(keep_ms: u64) -> Self {
        Self {
            seen: HashMap::new(),
            per_signer: HashMap::new(),
            order: VecDeque::new(),
            keep_ms,
        }
    }

    pub fn check_and_insert(
        &mut self,
        signer: PublicKey,
        nonce: [u8; 16],
        now_ms: u64,
    ) -> Result<(), ReplayError> {
        while let Some(&(expires, k, n)) = self.order.front() {
            if expires > now_ms {
                break;
            }
            self.order.pop_front();
            self.seen.remove(&(k, n));
            if let Some(c) = self.per_signer.get_mut(&k) {
                *c = c.saturating_sub(1);
                if *c == 0 {
                    self.per_signer.remove(&k);
                }
            }
        }
        if self.seen.contains_key(&(signer, nonce)) {
            return Err(ReplayError::Replayed);
        }
        let mine = self.per_signer.get(&signer).copied().unwrap_or(0);
        if self.seen.len() >= REPLAY_ENTRIES_MAX || mine >= REPLAY_PER_SIGNER_MAX {
            return Err(ReplayError::Busy);
        }
        self.per_signer.insert(signer, mine + 1);
        let expires = now_ms.saturating_add(self.keep_ms);
        self.seen.insert((signer, nonce), expires);
        self.order.push_back((expires, signer, nonce));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replay_cache_refuses_a_nonce_twice_until_it_ages_out() {
        let mut c = ReplayCache::new(1_000);
        let a = PublicKey([1; 32]);
        let b = PublicKey([2; 32]);
        assert_eq!(c.check_and_insert(a, [9; 16], 10), Ok(()));
        assert_eq!(
            c.check_and_insert(a, [9; 16], 20),
            Err(ReplayError::Replayed)
        );
        assert_eq!(c.check_and_insert(b, [9; 16], 20), Ok(()));
        assert_eq!(c.check_and_insert(a, [9; 16], 1_011), Ok(()));
    }

    #[test]
    fn one_signer_cannot_take_the_whole_cache() {
        let mut c = ReplayCache::new(1_000_000);
        let (busy, other) = (PublicKey([1; 32]), PublicKey([2; 32]));
        for i in 0..REPLAY_PER_SIGNER_MAX as u64 {
            let mut n = [0u8; 16];
            n[..8].copy_from_slice(&i.to_le_bytes());
            assert_eq!(c.check_and_insert(busy, n, 10), Ok(()));
        }
        assert_eq!(
            c.check_and_insert(busy, [0xff; 16], 10),
            Err(ReplayError::Busy)
        );
        assert_eq!(c.check_and_insert(other, [0xff; 16], 10), Ok(()));
        // Once the busy signer's nonces age out, it is served again.
        assert_eq!(c.check_and_insert(busy, [0xff; 16], 2_000_000), Ok(()));
    }
}
