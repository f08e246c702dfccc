//! Archive transfers served at once: at most `api.transfers_max` in all and
//! `api.transfers_per_key_max` for one signer, so no key holding downloads open (or reading them
//! a byte at a time) can take every place. A transfer beyond either bound gets 503 `busy` with
//! `Retry-After`, before anything is read or an access recorded.

use std::collections::HashMap;
use std::sync::atomic::Ordering::Relaxed;
use std::sync::{Arc, Mutex};

use axum::http::StatusCode;
use cradle_ledger::PublicKey;
use cradle_ledger::contract::ErrorCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::HttpError;
use crate::metrics::Metrics;

pub struct Transfers {
    places: Arc<Semaphore>,
    per_key: Mutex<HashMap<PublicKey, usize>>,
    per_key_max: usize,
    metrics: Arc<Metrics>,
}

/// A transfer's place, given back when it ends (for a download, when its last byte is sent or
/// the client goes).
pub struct TransferPermit {
    _place: OwnedSemaphorePermit,
    key: PublicKey,
    transfers: Arc<Transfers>,
}

impl Transfers {
    pub fn new(max: usize, per_key_max: usize, metrics: Arc<Metrics>) -> Arc<Self> {
        Arc::new(Self {
            places: Arc::new(Semaphore::new(max)),
            per_key: Mutex::new(HashMap::new()),
            per_key_max,
            metrics,
        })
    }

    fn per_key(&self) -> std::sync::MutexGuard<'_, HashMap<PublicKey, usize>> {
        self.per_key
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn busy(&self, why: &str) -> HttpError {
        self.metrics.transfers_refused.fetch_add(1, Relaxed);
        HttpError::new(StatusCode::SERVICE_UNAVAILABLE, ErrorCode::Busy, why).retry_after_s(1)
    }

    /// A place for `key`'s transfer, or the refusal.
    pub fn take(self: &Arc<Self>, key: PublicKey) -> Result<TransferPermit, HttpError> {
        {
            let mut per_key = self.per_key();
            let mine = per_key.entry(key).or_insert(0);
            if *mine >= self.per_key_max {
                drop(per_key);
                return Err(self.busy(
                    "this key has as many archive transfers under way as one key may; retry when one ends",
                ));
            }
            *mine += 1;
        }
        match self.places.clone().try_acquire_owned() {
            Ok(place) => {
                self.metrics.transfers_active.fetch_add(1, Relaxed);
                Ok(TransferPermit {
                    _place: place,
                    key,
                    transfers: self.clone(),
                })
            }
            Err(_) => {
                self.release_key(&key);
                Err(self.busy(
                    "as many archive transfers as this node serves at once are under way; retry shortly",
                ))
            }
        }
    }

    fn release_key(&self, key: &PublicKey) {
        let mut per_key = self.per_key();
        if let Some(n) = per_key.get_mut(key) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                per_key.remove(key);
            }
        }
    }
}

impl Drop for TransferPermit {
    fn drop(&mut self) {
        self.transfers.release_key(&self.key);
        self.transfers
            .metrics
            .transfers_active
            .fetch_sub(1, Relaxed);
    }
}
