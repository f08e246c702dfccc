//! The custodian: what this node does for the archives its institution holds.
//!
//! - [`store`]: content-addressed ciphertext on disk, checked on write and on every read;
//! - [`upload`]: storing an archive its own institution's client sealed;
//! - [`fetch`]: log before release — decide on committed state, sign the access record,
//!   submit it, await its commit receipt, and only then hand back a verified reader.
//!
//! Nothing here knows HTTP: the `http` layer authenticates the request, calls in, and formats
//! the outcome.

pub mod fetch;
pub mod local;
pub mod rewrap;
pub mod s3;
pub mod store;
pub mod upload;

use std::sync::{Arc, Mutex};

use cradle_ledger::{Consortium, Keypair, PublicKey};

use crate::members::Members;
use crate::metrics::Metrics;
use crate::storage::Store;
use crate::submit::Submitter;
use cradle_genesis::clock::now_us;

pub use fetch::{FetchError, FetchOutcome, Released};
pub use store::{ArchiveStore, ArchiveStoreError};
pub use upload::UploadError;

/// The member institution this node runs as, acting as a custodian: it holds archives and signs
/// access records. Its nonces follow the clock (in microseconds) so that they stay above the
/// ones the institution's own clients use with the same key.
pub struct Custodian {
    key: Keypair,
    /// The member's earlier keys, newest first: archive keys wrapped for an X25519 key it
    /// rotated away from stay readable with it.
    earlier_keys: Vec<Keypair>,
    last_nonce: Mutex<u64>,
    archives: Arc<ArchiveStore>,
    ledger: Arc<Store>,
    members: Arc<Members>,
    submitter: Submitter,
    metrics: Arc<Metrics>,
    /// How far past the last block's time the next block's may be: its access decisions are
    /// made at this node's clock, held within that window (see `fetch::Custodian::decide`).
    block_time_lead_ms: u64,
}

/// [`Custodian::with_block_time_lead`]'s default: a heartbeat and the proposal drift allowed.
pub const BLOCK_TIME_LEAD_MS: u64 = 3_000;

impl Custodian {
    pub fn new(
        key: Keypair,
        archives: Arc<ArchiveStore>,
        ledger: Arc<Store>,
        members: Arc<Members>,
        submitter: Submitter,
        metrics: Arc<Metrics>,
    ) -> Self {
        Self {
            key,
            earlier_keys: Vec::new(),
            last_nonce: Mutex::new(0),
            archives,
            ledger,
            members,
            submitter,
            metrics,
            block_time_lead_ms: BLOCK_TIME_LEAD_MS,
        }
    }

    /// Sets how far past the last block's time the next block's time may be: the heartbeat
    /// (an idle chain's longest gap) and the clock drift validators allow a proposal.
    pub fn with_block_time_lead(mut self, ms: u64) -> Self {
        self.block_time_lead_ms = ms;
        self
    }

    /// Gives the custodian the member's earlier keys (its home's key ring, newest first).
    pub fn with_earlier_keys(mut self, keys: Vec<Keypair>) -> Self {
        self.earlier_keys = keys;
        self
    }

    /// The key this node signs with.
    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// The member this node runs as, as its records name it: its identity, which differs from
    /// the signing key once a vote rotated the key.
    pub fn identity(&self) -> PublicKey {
        let me = self.public_key();
        self.consortium().signer(&me).map_or(me, |m| m.public_key)
    }

    /// Opens an archive key wrapped for this member: for its X25519 key now, or for one it
    /// rotated away from (an archive registered before the rotation).
    fn unwrap_own(
        &self,
        wrapped: &cradle_ledger::tx::WrappedKey,
        archive: &cradle_ledger::ArchiveId,
    ) -> Result<zeroize::Zeroizing<[u8; 32]>, cradle_ledger::Error> {
        let mut result = cradle_ledger::keywrap::unwrap_key(wrapped, archive, &self.key);
        for earlier in &self.earlier_keys {
            if result.is_ok() {
                break;
            }
            result = cradle_ledger::keywrap::unwrap_key(wrapped, archive, earlier);
        }
        result
    }

    /// The consortium in force at the next block: who may upload, fetch and be named.
    fn consortium(&self) -> Arc<Consortium> {
        self.members.current()
    }

    pub fn archives(&self) -> &ArchiveStore {
        &self.archives
    }

    /// A nonce above `committed`, above every nonce this node handed out, and at least the
    /// current time in microseconds. Saturates rather than overflows: a nonce at the top of the
    /// range (which no honest client reaches) leaves the custodian refused by the ledger's
    /// nonce rule, not crashed.
    fn next_nonce(&self, committed: Option<u64>) -> u64 {
        let mut last = self
            .last_nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = advance_nonce(*last, committed, now_us());
        *last = next;
        next
    }

    /// The name of the member holding `key`, or the key itself.
    fn member_name(&self, key: &PublicKey) -> String {
        self.consortium()
            .member_by_any_key(key)
            .map_or_else(|| key.to_string(), |m| m.name.clone())
    }
}

/// The nonce after `last`: above the committed one and at least the clock, saturating.
fn advance_nonce(last: u64, committed: Option<u64>, now_us: u64) -> u64 {
    now_us
        .max(committed.map_or(0, |c| c.saturating_add(1)))
        .max(last.saturating_add(1))
}

#[cfg(test)]
mod tests {
    use super::advance_nonce;

    #[test]
    fn custodian_nonces_grow_past_committed_and_clock() {
        let a = advance_nonce(0, None, 1_000);
        assert_eq!(a, 1_000);
        let b = advance_nonce(a, Some(u64::MAX / 2), 1_001);
        assert!(b > u64::MAX / 2);
        assert_eq!(advance_nonce(b, None, 1_002), b + 1);
    }

    #[test]
    fn custodian_nonce_at_the_top_of_the_range_does_not_panic() {
        assert_eq!(advance_nonce(0, Some(u64::MAX), 5), u64::MAX);
        assert_eq!(advance_nonce(u64::MAX, None, 5), u64::MAX);
    }
}
