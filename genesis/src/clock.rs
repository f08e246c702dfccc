//! The wall clock, read here and nowhere else.
//!
//! The node (block times, request freshness, nonces), the client (request times, nonces), the
//! genesis tool (a new chain's genesis time) and the test programs all read it through these
//! two functions. The consensus core and the ledger's rules never read it: time reaches them as
//! an input, so that a simulator can replay them from a seed.

use std::time::{SystemTime, UNIX_EPOCH};

/// Milliseconds since the Unix epoch (0 if the clock is before it).
pub fn now_ms() -> u64 {
    since_epoch().as_millis() as u64
}

/// Microseconds since the Unix epoch (0 if the clock is before it).
pub fn now_us() -> u64 {
    since_epoch().as_micros() as u64
}

fn since_epoch() -> std::time::Duration {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
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
