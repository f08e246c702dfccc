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

/// Decodes and verifies a peer's batch: one batched signature check, falling back to single
/// checks to sort good from bad when the batch fails. Bad transactions are counted and dropped.
pub fn verify_batch(
    batch: Vec<Vec<u8>>,
    chain_id: &Hash,
    tx_bytes_max: usize,
    metrics: &Metrics,
    from: &PublicKey,
) -> Vec<VerifiedTx> {
    let mut decoded = Vec::with_capacity(batch.len());
    for bytes in batch {
        match SignedTransaction::decode(&bytes, tx_bytes_max) {
            Ok(tx) if &tx.tx.chain_id == chain_id => decoded.push(VerifiedTx {
                hash: cradle_ledger::crypto::sha256(&bytes),
                tx,
                encoded: bytes,
            }),
            Ok(_) | Err(_) => {
                metrics.messages_invalid.fetch_add(1, Ordering::Relaxed);
                warn!(peer = %from, "peer sent a malformed or foreign transaction");
            }
        }
    }
    let txs: Vec<SignedTransaction> = decoded.iter().map(|v| v.tx.clone()).collect();
    if block::verify_signatures(&txs, chain_id).is_ok() {
        return decoded;
    }
    decoded
        .into_iter()
        .filter(|v| {
            let ok = v.tx.verify(chain_id).is_ok();
            if !ok {
                metrics.messages_invalid.fetch_add(1, Ordering::Relaxed);
                warn!(peer = %from, "peer sent a badly signed transaction");
            }
            ok
        })
        .collect()
}
