//! `[api.rate]`: how many requests the API takes per IP address and per signing key.
//!
//! ```toml
//! [api.rate]
//! per_ip = 1000                          # requests per second from one IP address
//! per_ip_burst = 2000
//! per_key = 200                          # signed requests per second from one key
//! per_key_burst = 400
//! patient_fetches_per_minute = 60        # each writes an access record
//! patient_fetch_burst = 20
//! break_glass_per_key_per_minute = 30    # emergency fetches, counted apart
//! break_glass_burst = 10
//! denials_per_patient_per_minute = 6     # one key's denied fetches of one mother's records
//! denial_per_patient_burst = 12
//! ```
//! The per-address rate applies to anonymous requests and to signed ones that fail their
//! check; a signed request that passes counts against its key only, so clinicians who share
//! a hospital's address are not shut out by a flood from it. Break-glass fetches draw on
//! buckets of their own, so ordinary traffic, however heavy, can never use up the capacity an
//! emergency needs; and a patient's fetches, each of which writes an access record, have a
//! slower rate than her other requests. A key's fetches that are denied (no grant, a purpose
//! or role the grant does not cover) are held to a small rate per patient, since each one
//! writes an entry into her history: no one can flood a mother's history with denials. Past
//! it the request is refused (429) before anything is recorded.

use serde::{Deserialize, Serialize};

/// Most requests per second any limit may be set to.
pub const RATE_PER_S_MAX: u32 = 1_000_000;

/// The API's request rates.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct RateConfig {
    pub per_ip: u32,
    pub per_ip_burst: u32,
    pub per_key: u32,
    pub per_key_burst: u32,
    pub patient_fetches_per_minute: u32,
    pub patient_fetch_burst: u32,
    pub break_glass_per_key_per_minute: u32,
    pub break_glass_burst: u32,
    pub denials_per_patient_per_minute: u32,
    pub denial_per_patient_burst: u32,
}

impl Default for RateConfig {
    fn default() -> Self {
        Self {
            per_ip: 1_000,
            per_ip_burst: 2_000,
            per_key: 200,
            per_key_burst: 400,
            patient_fetches_per_minute: 60,
            patient_fetch_burst: 20,
            break_glass_per_key_per_minute: 30,
            break_glass_burst: 10,
            denials_per_patient_per_minute: 6,
            denial_per_patient_burst: 12,
        }
    }
}

impl RateConfig {
    /// The first field out of bounds, with why.
    pub fn problem(&self) -> Option<(&'static str, String)> {
        let fields = [
            ("api.rate.per_ip", self.per_ip),
            ("api.rate.per_ip_burst", self.per_ip_burst),
            ("api.rate.per_key", self.per_key),
            ("api.rate.per_key_burst", self.per_key_burst),
            (
                "api.rate.patient_fetches_per_minute",
                self.patient_fetches_per_minute,
            ),
            ("api.rate.patient_fetch_burst", self.patient_fetch_burst),
            (
                "api.rate.break_glass_per_key_per_minute",
                self.break_glass_per_key_per_minute,
            ),
            ("api.rate.break_glass_burst", self.break_glass_burst),
            (
                "api.rate.denials_per_patient_per_minute",
                self.denials_per_patient_per_minute,
            ),
            (
                "api.rate.denial_per_patient_burst",
                self.denial_per_patient_burst,
            ),
        ];
        fields
            .into_iter()
            .find(|(_, v)| !(1..=RATE_PER_S_MAX).contains(v))
            .map(|(k, v)| (k, format!("{v} is outside 1..={RATE_PER_S_MAX}")))
    }
}
