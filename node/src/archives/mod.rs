//! The custodian side of archives: the encrypted archive store, signed client requests, and
//! the fetch flow that records every access on the ledger before it releases a byte.
//!
//! - [`store`]: content-addressed ciphertext on disk, checked on write and on every read;
//! - [`api`]: the upload and fetch handlers;
//! - [`records`]: the ledger reads a client needs to encrypt for and decrypt from its
//!   counterparts.

pub mod api;
pub mod records;
pub mod store;

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;

use cradle_ledger::{Keypair, PublicKey};

use crate::clock::now_us;

pub use store::{ArchiveStore, ArchiveStoreError};

/// Most signed-request nonces remembered at once; beyond it new requests wait for old ones to
/// age out rather than weaken replay protection.
pub const REPLAY_ENTRIES_MAX: usize = 200_000;

/// The member institution this node runs as, when it acts as a custodian: it signs access
/// records. Its nonces follow the clock (in microseconds) so that they stay above the ones the
/// institution's own clients use with the same key.
pub struct Custodian {
    key: Keypair,
    last_nonce: Mutex<u64>,
}

impl Custodian {
    pub fn new(key: Keypair) -> Self {
        Self {
            key,
            last_nonce: Mutex::new(0),
        }
    }

    pub fn key(&self) -> &Keypair {
        &self.key
    }

    pub fn public_key(&self) -> PublicKey {
        self.key.public_key()
    }

    /// A nonce above `committed`, above every nonce this node handed out, and at least the
    /// current time in microseconds.
    pub fn next_nonce(&self, committed: Option<u64>) -> u64 {
        let mut last = self
            .last_nonce
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let next = now_us().max(committed.map_or(0, |c| c + 1)).max(*last + 1);
        *last = next;
        next
    }
}

/// Signed-request nonces seen within the allowed clock skew.
pub struct ReplayCache {
    seen: HashMap<(PublicKey, [u8; 16]), u64>,
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
        }
        if self.seen.contains_key(&(signer, nonce)) {
            return Err(ReplayError::Replayed);
        }
        if self.seen.len() >= REPLAY_ENTRIES_MAX {
            return Err(ReplayError::Busy);
        }
        let expires = now_ms + self.keep_ms;
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
        c.check_and_insert(a, [9; 16], 10).unwrap();
        assert_eq!(
            c.check_and_insert(a, [9; 16], 20),
            Err(ReplayError::Replayed)
        );
        c.check_and_insert(b, [9; 16], 20).unwrap();
        c.check_and_insert(a, [9; 16], 1_011).unwrap();
    }

    #[test]
    fn custodian_nonces_grow_past_committed_and_clock() {
        let c = Custodian::new(Keypair::from_seed(&[3; 32]));
        let a = c.next_nonce(None);
        let b = c.next_nonce(Some(u64::MAX / 2));
        assert!(b > a && b > u64::MAX / 2);
        assert!(c.next_nonce(None) > b);
    }
}
