//! Checking transactions from outside before they reach the mempool: bounded decode, chain id,
//! and signatures, batched.

use cradle_ledger::block;
use cradle_ledger::tx::SignedTransaction;
use cradle_ledger::{Error, Hash, PublicKey};
use std::sync::atomic::Ordering;
use tracing::warn;

use crate::metrics::Metrics;

/// A transaction whose encoding, chain id and signatures were already checked.
pub struct VerifiedTx {
    pub hash: Hash,
    pub tx: SignedTransaction,
    pub encoded: Vec<u8>,
}

/// Decodes and verifies one client transaction.
pub fn verify_one(
    bytes: Vec<u8>,
    chain_id: &Hash,
    tx_bytes_max: usize,
) -> Result<VerifiedTx, Error> {
    let tx = SignedTransaction::decode(&bytes, tx_bytes_max)?;
    tx.verify(chain_id)?;
    Ok(VerifiedTx {
        hash: cradle_ledger::crypto::sha256(&bytes),
        tx,
        encoded: bytes,
    })
}

/// Decodes and verifies many transactions in one batched signature check, falling back to
/// single checks to sort good from bad when the batch fails: one answer per transaction, in
/// order. A batch costs about half as much per signature as checking them one by one.
pub fn verify_many(
    batch: Vec<Vec<u8>>,
    chain_id: &Hash,
    tx_bytes_max: usize,
) -> Vec<Result<VerifiedTx, Error>> {
    let mut out: Vec<Result<VerifiedTx, Error>> = batch
        .into_iter()
        .map(|bytes| {
            let tx = SignedTransaction::decode(&bytes, tx_bytes_max)?;
            if &tx.tx.chain_id != chain_id {
                return Err(Error::WrongChain);
            }
            Ok(VerifiedTx {
                hash: cradle_ledger::crypto::sha256(&bytes),
                tx,
                encoded: bytes,
            })
        })
        .collect();
    let decoded = out.iter().filter_map(|r| r.as_ref().ok()).map(|v| &v.tx);
    if block::verify_signatures_of(decoded, chain_id).is_ok() {
        return out;
    }
    for item in &mut out {
        if let Ok(v) = item
            && let Err(e) = v.tx.verify(chain_id)
        {
            *item = Err(e);
        }
    }
    out
}

/// [`verify_many`] over a peer's batch: bad transactions are counted and dropped.
pub fn verify_batch(
    batch: Vec<Vec<u8>>,
    chain_id: &Hash,
    tx_bytes_max: usize,
    metrics: &Metrics,
    from: &PublicKey,
) -> Vec<VerifiedTx> {
    verify_many(batch, chain_id, tx_bytes_max)
        .into_iter()
        .filter_map(|item| match item {
            Ok(v) => Some(v),
            Err(e) => {
                metrics.messages_invalid.fetch_add(1, Ordering::Relaxed);
                warn!(peer = %from, error = %e, "peer sent a malformed, foreign or badly signed transaction");
                None
            }
        })
        .collect()
}
