//! Whom catch-up sync asks for blocks, and how far it believes the heights peers announce.
//!
//! A height a peer announces (in a status message, or by sending consensus messages for a later
//! height) is a claim that nothing checks until the blocks arrive, and a Byzantine member can
//! claim any height. So a claim only ever chooses whom to ask: it sizes nothing and loops over
//! nothing (a request always asks for a fixed batch after our own tip), and nothing but sync reads
//! it. A peer that fails to back its claim (the request fails or times out, or the answer holds
//! no block we lack, or a block that does not verify) has its claim forgotten and its further
//! announcements ignored for a while, longer after each failure, so the next request goes to
//! another peer that is ahead. A peer that serves blocks we lacked is trusted again, and is
//! asked first while it is still ahead, so a liar whose distrust has lapsed does not interrupt a
//! catch-up that is going well.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use cradle_ledger::PublicKey;

/// How long a peer's announcements are ignored after its first failure to back one.
pub(super) const DISTRUST_MIN: Duration = Duration::from_secs(10);
/// The longest a peer's announcements are ignored after repeated failures.
pub(super) const DISTRUST_MAX: Duration = Duration::from_secs(300);

/// What we believe of one peer's announced height.
#[derive(Clone, Copy, Debug, Default)]
struct Claim {
    /// The highest height it announced since it last failed us; 0 when forgotten.
    height: u64,
    /// Its announcements are ignored until then.
    distrusted_until: Option<Instant>,
    /// Failures since it last served a block, which lengthen the distrust.
    failures: u32,
}

/// The announced heights of the peers, and whom to ask. Keyed by authenticated members only,
/// so it holds at most one entry per member.
#[derive(Debug, Default)]
pub(super) struct SyncPeers {
    claims: HashMap<PublicKey, Claim>,
    /// The peer that last served blocks we lacked, until it fails.
    preferred: Option<PublicKey>,
}

impl SyncPeers {
    fn trusted(claim: &Claim, now: Instant) -> bool {
        claim.distrusted_until.is_none_or(|until| now >= until)
    }

    /// Records that `peer` announced `height`; ignored while the peer is distrusted.
    pub(super) fn note(&mut self, peer: PublicKey, height: u64, now: Instant) {
        let claim = self.claims.entry(peer).or_default();
        if Self::trusted(claim, now) {
            claim.height = claim.height.max(height);
        }
    }

    /// The height `peer` claims, as far as it is believed now (0 while distrusted).
    pub(super) fn claimed(&self, peer: &PublicKey, now: Instant) -> u64 {
        self.claims
            .get(peer)
            .filter(|c| Self::trusted(c, now))
            .map_or(0, |c| c.height)
    }

    /// The trusted peer to ask for the blocks after ours: the one that served us last if it
    /// still claims a height above `above`, else the one claiming the highest (ties to the lowest
    /// key, so the choice is reproducible). A liar claiming the most is asked, fails once, and is
    /// passed over for its distrust period.
    pub(super) fn pick(&self, above: u64, now: Instant) -> Option<PublicKey> {
        if let Some(peer) = self.preferred
            && self.claimed(&peer, now) > above
        {
            return Some(peer);
        }
        self.claims
            .iter()
            .filter(|(_, c)| Self::trusted(c, now) && c.height > above)
            .max_by(|(ka, a), (kb, b)| a.height.cmp(&b.height).then(kb.cmp(ka)))
            .map(|(k, _)| *k)
    }

    /// `peer` served blocks we lacked: its claims count in full again.
    pub(super) fn served(&mut self, peer: &PublicKey) {
        self.preferred = Some(*peer);
        if let Some(claim) = self.claims.get_mut(peer) {
            claim.failures = 0;
            claim.distrusted_until = None;
        }
    }

    /// `peer` did not back its claim: forget it and ignore the peer's announcements for
    /// [`DISTRUST_MIN`], doubled for each further failure up to [`DISTRUST_MAX`].
    pub(super) fn failed(&mut self, peer: PublicKey, now: Instant) -> Duration {
        if self.preferred == Some(peer) {
            self.preferred = None;
        }
        let claim = self.claims.entry(peer).or_default();
        let shift = claim.failures.min(16);
        claim.failures = claim.failures.saturating_add(1);
        let period = DISTRUST_MIN.saturating_mul(1u32 << shift).min(DISTRUST_MAX);
        claim.height = 0;
        claim.distrusted_until = Some(now + period);
        period
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> PublicKey {
        PublicKey([i; 32])
    }

    #[test]
    fn a_peer_claiming_a_false_height_is_asked_once_then_passed_over_for_an_honest_one() {
        let t0 = Instant::now();
        let (liar, honest) = (key(9), key(1));
        let mut peers = SyncPeers::default();
        peers.note(honest, 120, t0);
        peers.note(liar, 1_000_000_000_000, t0);
        // Our tip is 100: both are ahead, and the larger claim goes first.
        assert_eq!(peers.pick(101, t0), Some(liar));
        // The liar serves nothing: it is passed over, and its new claims are not believed.
        assert_eq!(peers.failed(liar, t0), DISTRUST_MIN);
        assert_eq!(peers.pick(101, t0), Some(honest));
        peers.note(liar, u64::MAX, t0 + Duration::from_secs(1));
        assert_eq!(peers.claimed(&liar, t0), 0);
        assert_eq!(peers.pick(101, t0 + Duration::from_secs(1)), Some(honest));
        // Once the distrust lapses it may claim again, and a second failure costs it longer.
        let later = t0 + DISTRUST_MIN;
        peers.note(liar, u64::MAX, later);
        assert_eq!(peers.pick(101, later), Some(liar));
        assert_eq!(peers.failed(liar, later), 2 * DISTRUST_MIN);
        assert_eq!(
            peers.pick(101, later + DISTRUST_MIN),
            Some(honest),
            "still distrusted half way through its second period"
        );
        // The honest peer serves; when the liar's distrust lapses again, the peer that serves
        // stays first while it is ahead, and the liar is asked only once it is not.
        peers.served(&honest);
        let lapsed = later + DISTRUST_MAX;
        peers.note(liar, u64::MAX, lapsed);
        assert_eq!(peers.pick(101, lapsed), Some(honest));
        assert_eq!(peers.pick(120, lapsed), Some(liar));
    }

    #[test]
    fn distrust_is_capped_and_ends_when_the_peer_serves() {
        let t0 = Instant::now();
        let mut peers = SyncPeers::default();
        let mut last = Duration::ZERO;
        for _ in 0..40 {
            last = peers.failed(key(1), t0);
        }
        assert_eq!(last, DISTRUST_MAX);
        peers.served(&key(1));
        peers.note(key(1), 7, t0);
        assert_eq!(peers.pick(5, t0), Some(key(1)));
        assert_eq!(
            peers.failed(key(1), t0),
            DISTRUST_MIN,
            "served resets the backoff"
        );
    }

    #[test]
    fn nobody_is_asked_when_no_trusted_peer_is_ahead() {
        let t0 = Instant::now();
        let mut peers = SyncPeers::default();
        peers.note(key(1), 10, t0);
        peers.note(key(2), 10, t0);
        assert_eq!(peers.pick(10, t0), None);
        assert_eq!(peers.pick(9, t0), Some(key(1)), "ties go to the lowest key");
    }
}
