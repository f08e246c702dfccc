//! The wall clock, read here and nowhere else.
//!
//! The node (block times, request freshness, nonces), the client (request times, nonces), the
//! genesis tool (a new chain's genesis time) and the test programs all read it through these
//! two functions. The consensus core and the ledger's rules never read it: time reaches them as
//! an input, so that a simulator can replay them from a seed.
//!
//! [`skew_for_tests`] shifts every read, for the clock-fault tests' own node binary
//! (`cradle-tests`' `cradle-node-skewed`); no shipped binary or setting calls it.

use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// Milliseconds added to every read of this process's clock (negative: behind).
static SKEW_MS: AtomicI64 = AtomicI64::new(0);

/// Makes this process's clock read `ms` milliseconds ahead (behind, if negative) of the
/// system's: a member whose server clock is wrong, for tests of clock faults.
pub fn skew_for_tests(ms: i64) {
    SKEW_MS.store(ms, Ordering::SeqCst);
}

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    since_epoch().as_millis() as u64
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn now_us() -> u64 {
    since_epoch().as_micros() as u64
}

fn since_epoch() -> Duration {
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    let skew = SKEW_MS.load(Ordering::Relaxed);
    let by = Duration::from_millis(skew.unsigned_abs());
    if skew >= 0 {
        now.saturating_add(by)
    } else {
        now.saturating_sub(by)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clock_reads_agree_and_are_after_2025() {
        let (ms, us) = (now_ms(), now_us());
        assert!(ms > 1_735_689_600_000, "clock reads {ms} ms");
        assert!(
            us / 1000 >= ms && us / 1000 - ms < 60_000,
            "{us} us vs {ms} ms"
        );
    }
}
