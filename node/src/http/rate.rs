//! Request rates: a token bucket per IP address and per signing key, with patients' fetches
//! and break-glass fetches drawing on buckets of their own.
//!
//! An anonymous request spends a token of its address's bucket before anything else is done for
//! it ([`per_ip`]). A signed request spends one of its key's once its signature is checked and
//! before it takes a slot in the replay cache, or, if it fails, one of its address's
//! ([`super::auth::authenticate`]): so a flood from an address that clinicians share uses up
//! the address's anonymous capacity and never their own. A refusal is 429 `rate_limited` with
//! `Retry-After`, counted in the metrics; it costs the node a hash lookup and nothing else.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};

use axum::extract::{ConnectInfo, Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cradle_genesis::clock::now_ms;
use cradle_genesis::ratecfg::RateConfig;
use cradle_ledger::PublicKey;
use cradle_ledger::api_request::AUTH_HEADER;
use cradle_ledger::contract::ErrorCode;

use super::{HttpError, HttpState};

/// One token, in the buckets' units (millionths of a request).
const TOKEN: u64 = 1_000_000;
/// Most buckets kept per table; past it, full buckets (which are as good as absent) are
/// dropped, and if none is, new parties wait.
pub const BUCKETS_MAX: usize = 200_000;

/// What a signed request draws on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Ordinary,
    /// A fetch, which writes an access record: a patient's have a rate of their own (an
    /// institution's count as its ordinary requests).
    Fetch,
    /// An emergency fetch: capacity that ordinary traffic cannot take.
    BreakGlass,
}

/// A refill rate and a capacity.
#[derive(Clone, Copy, Debug)]
struct Rate {
    /// Millionths of a request per millisecond.
    per_ms: u64,
    burst: u64,
}

impl Rate {
    fn per_s(n: u32, burst: u32) -> Self {
        Self {
            per_ms: u64::from(n).saturating_mul(TOKEN) / 1_000,
            burst: u64::from(burst).max(1).saturating_mul(TOKEN),
        }
    }
    fn per_minute(n: u32, burst: u32) -> Self {
        Self {
            per_ms: (u64::from(n).saturating_mul(TOKEN) / 60_000).max(1),
            burst: u64::from(burst).max(1).saturating_mul(TOKEN),
        }
    }
}

#[derive(Clone, Copy, Debug)]
struct Bucket {
    tokens: u64,
    at_ms: u64,
}

impl Bucket {
    fn refill(&mut self, now_ms: u64, rate: Rate) {
        let elapsed = now_ms.saturating_sub(self.at_ms);
        self.tokens = self
            .tokens
            .saturating_add(elapsed.saturating_mul(rate.per_ms))
            .min(rate.burst);
        self.at_ms = self.at_ms.max(now_ms);
    }
}

/// Buckets by party, all at one rate, bounded in number.
struct Table<K> {
    rate: Rate,
    buckets: HashMap<K, Bucket>,
}

impl<K: Eq + Hash + Copy> Table<K> {
    fn new(rate: Rate) -> Self {
        Self {
            rate,
            buckets: HashMap::new(),
        }
    }

    /// Spends a token of `party`'s bucket, or says in how many milliseconds one will be there.
    fn take(&mut self, party: K, now_ms: u64) -> Result<(), u64> {
        let rate = self.rate;
        if !self.buckets.contains_key(&party) && self.buckets.len() >= BUCKETS_MAX {
            self.buckets.retain(|_, b| {
                let mut b = *b;
                b.refill(now_ms, rate);
                b.tokens < rate.burst
            });
            if self.buckets.len() >= BUCKETS_MAX {
                return Err(1_000);
            }
        }
        let bucket = self.buckets.entry(party).or_insert(Bucket {
            tokens: rate.burst,
            at_ms: now_ms,
        });
        bucket.refill(now_ms, rate);
        if bucket.tokens >= TOKEN {
            bucket.tokens -= TOKEN;
            return Ok(());
        }
        let missing = TOKEN - bucket.tokens;
        Err(missing.div_ceil(rate.per_ms.max(1)))
    }
}

/// The API's request buckets: per address, and per key for each [`Class`].
pub struct RateLimiter {
    ips: Mutex<Table<IpAddr>>,
    keys: Mutex<Table<PublicKey>>,
    keys_fetch: Mutex<Table<PublicKey>>,
    keys_break_glass: Mutex<Table<PublicKey>>,
    /// A key's denied fetches of one patient's records, by (key, patient), each an entry in
    /// her history.
    per_patient: Mutex<Table<(PublicKey, PublicKey)>>,
}

/// Who ran out.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Limited {
    Ip { retry_after_ms: u64 },
    Key { retry_after_ms: u64 },
    Patient { retry_after_ms: u64 },
}

impl RateLimiter {
    pub fn new(config: &RateConfig) -> Self {
        fn table<K: Eq + Hash + Copy>(rate: Rate) -> Mutex<Table<K>> {
            Mutex::new(Table::new(rate))
        }
        Self {
            ips: table(Rate::per_s(config.per_ip, config.per_ip_burst)),
            keys: table(Rate::per_s(config.per_key, config.per_key_burst)),
            keys_fetch: table(Rate::per_minute(
                config.patient_fetches_per_minute,
                config.patient_fetch_burst,
            )),
            keys_break_glass: table(Rate::per_minute(
                config.break_glass_per_key_per_minute,
                config.break_glass_burst,
            )),
            per_patient: table(Rate::per_minute(
                config.denials_per_patient_per_minute,
                config.denial_per_patient_burst,
            )),
        }
    }

    /// Charges a denial of `key`'s fetch of one of `patient`'s records: what bounds the
    /// denials one key can write into one mother's history.
    pub fn take_patient(
        &self,
        key: PublicKey,
        patient: PublicKey,
        now_ms: u64,
    ) -> Result<(), Limited> {
        lock(&self.per_patient)
            .take((key, patient), now_ms)
            .map_err(|retry_after_ms| Limited::Patient { retry_after_ms })
    }

    pub fn take_ip(&self, ip: IpAddr, now_ms: u64) -> Result<(), Limited> {
        lock(&self.ips)
            .take(ip, now_ms)
            .map_err(|retry_after_ms| Limited::Ip { retry_after_ms })
    }

    pub fn take_key(&self, key: PublicKey, class: Class, now_ms: u64) -> Result<(), Limited> {
        let table = match class {
            Class::Ordinary => &self.keys,
            Class::Fetch => &self.keys_fetch,
            Class::BreakGlass => &self.keys_break_glass,
        };
        lock(table)
            .take(key, now_ms)
            .map_err(|retry_after_ms| Limited::Key { retry_after_ms })
    }
}

impl Limited {
    pub fn retry_after_ms(self) -> u64 {
        match self {
            Limited::Ip { retry_after_ms }
            | Limited::Key { retry_after_ms }
            | Limited::Patient { retry_after_ms } => retry_after_ms,
        }
    }
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    m.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// The 429 answer for a refusal, counted.
pub fn refusal(state: &HttpState, limited: Limited) -> HttpError {
    let (counter, who, ms) = match limited {
        Limited::Ip { retry_after_ms } => (
            &state.metrics.requests_rate_limited_ip,
            "this address",
            retry_after_ms,
        ),
        Limited::Key { retry_after_ms } => (
            &state.metrics.requests_rate_limited_key,
            "this key",
            retry_after_ms,
        ),
        Limited::Patient { retry_after_ms } => (
            &state.metrics.requests_rate_limited_key,
            "this key: too many denied fetches of this patient's records",
            retry_after_ms,
        ),
    };
    counter.fetch_add(1, Ordering::Relaxed);
    HttpError::new(
        StatusCode::TOO_MANY_REQUESTS,
        ErrorCode::RateLimited,
        format!("too many requests from {who}; retry in {ms} ms"),
    )
    .retry_after_s(ms.div_ceil(1_000).max(1))
}

/// The address a request came from, as [`super::serve`] records it on each request.
pub fn peer_ip(request: &Request) -> Option<IpAddr> {
    request
        .extensions()
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip())
}

/// Charges an anonymous request (one without a signature header) to its address, before
/// anything else is done for it; a signed one is charged when its signature is checked.
pub async fn per_ip(State(state): State<Arc<HttpState>>, request: Request, next: Next) -> Response {
    if let Some(ip) = peer_ip(&request)
        && !request.headers().contains_key(AUTH_HEADER)
        && let Err(limited) = state.rate.take_ip(ip, now_ms())
    {
        return refusal(&state, limited).into_response();
    }
    next.run(request).await
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limiter(per_key: u32, burst: u32) -> RateLimiter {
        RateLimiter::new(&RateConfig {
            per_key,
            per_key_burst: burst,
            break_glass_per_key_per_minute: 6,
            break_glass_burst: 2,
            patient_fetches_per_minute: 60,
            patient_fetch_burst: 1,
            ..RateConfig::default()
        })
    }

    #[test]
    fn a_key_gets_its_burst_then_its_rate() {
        let l = limiter(10, 3);
        let k = PublicKey([1; 32]);
        for _ in 0..3 {
            assert_eq!(l.take_key(k, Class::Ordinary, 1_000), Ok(()));
        }
        // Empty: one token comes back every 100 ms.
        assert_eq!(
            l.take_key(k, Class::Ordinary, 1_000),
            Err(Limited::Key {
                retry_after_ms: 100
            })
        );
        assert_eq!(l.take_key(k, Class::Ordinary, 1_100), Ok(()));
        assert!(l.take_key(k, Class::Ordinary, 1_150).is_err());
        // Another key is untouched.
        assert_eq!(
            l.take_key(PublicKey([2; 32]), Class::Ordinary, 1_150),
            Ok(())
        );
        // A clock that steps back refunds nothing and does not panic.
        assert!(l.take_key(k, Class::Ordinary, 0).is_err());
    }

    #[test]
    fn break_glass_keeps_its_own_capacity() {
        let l = limiter(1, 1);
        let k = PublicKey([1; 32]);
        assert_eq!(l.take_key(k, Class::Ordinary, 0), Ok(()));
        assert!(l.take_key(k, Class::Ordinary, 0).is_err());
        // The ordinary bucket is empty; emergencies still get their burst of two...
        assert_eq!(l.take_key(k, Class::BreakGlass, 0), Ok(()));
        assert_eq!(l.take_key(k, Class::BreakGlass, 0), Ok(()));
        // ...and then six a minute.
        assert_eq!(
            l.take_key(k, Class::BreakGlass, 0),
            Err(Limited::Key {
                retry_after_ms: 10_000
            })
        );
        assert_eq!(l.take_key(k, Class::BreakGlass, 10_000), Ok(()));
        // A patient's fetches have their own: one at once, then one a second.
        assert_eq!(l.take_key(k, Class::Fetch, 10_000), Ok(()));
        assert!(l.take_key(k, Class::Fetch, 10_000).is_err());
        assert_eq!(l.take_key(k, Class::Fetch, 11_000), Ok(()));
    }

    #[test]
    fn a_keys_denials_for_one_patients_records_have_a_bucket_per_patient() {
        let l = RateLimiter::new(&RateConfig {
            denials_per_patient_per_minute: 6,
            denial_per_patient_burst: 2,
            ..RateConfig::default()
        });
        let (midwife, mother, other) = (PublicKey([1; 32]), PublicKey([2; 32]), PublicKey([3; 32]));
        assert_eq!(l.take_patient(midwife, mother, 0), Ok(()));
        assert_eq!(l.take_patient(midwife, mother, 0), Ok(()));
        assert_eq!(
            l.take_patient(midwife, mother, 0),
            Err(Limited::Patient {
                retry_after_ms: 10_000
            })
        );
        // Another mother's records, and another key's fetches of hers, are untouched.
        assert_eq!(l.take_patient(midwife, other, 0), Ok(()));
        assert_eq!(l.take_patient(other, mother, 0), Ok(()));
        // Its ordinary requests too.
        assert_eq!(l.take_key(midwife, Class::Ordinary, 0), Ok(()));
        assert_eq!(l.take_patient(midwife, mother, 10_000), Ok(()));
    }

    #[test]
    fn addresses_are_counted_apart() {
        let l = RateLimiter::new(&RateConfig {
            per_ip: 1,
            per_ip_burst: 1,
            ..RateConfig::default()
        });
        let a: IpAddr = [127, 0, 0, 2].into();
        let b: IpAddr = [127, 0, 0, 3].into();
        assert_eq!(l.take_ip(a, 0), Ok(()));
        assert!(l.take_ip(a, 0).is_err());
        assert_eq!(l.take_ip(b, 0), Ok(()));
        assert_eq!(l.take_ip(a, 1_000), Ok(()));
    }

    #[test]
    fn the_table_stays_bounded() {
        let mut t: Table<u64> = Table::new(Rate::per_s(1, 1));
        for i in 0..BUCKETS_MAX as u64 {
            assert_eq!(t.take(i, 0), Ok(()));
        }
        // Every bucket is empty: a newcomer waits rather than growing the table.
        assert!(t.take(u64::MAX, 0).is_err());
        assert_eq!(t.buckets.len(), BUCKETS_MAX);
        // A second later every bucket is full again and is dropped to make room.
        assert_eq!(t.take(u64::MAX, 1_000), Ok(()));
        assert_eq!(t.buckets.len(), 1);
    }
}
