//! The mempool: verified transactions waiting for a block.
//!
//! Bounded in count and bytes. It admits only transactions whose signatures the driver has
//! checked (once per transaction per node), that carry the chain id and a nonce above the
//! signer's last committed one, and that it does not already hold. Proposers take candidates in
//! arrival order; within a proposal each signer's transactions go in nonce order, so a client
//! that submits several at once sees them applied in the order it numbered them.

use std::collections::{BTreeMap, HashMap};

use cradle_ledger::tx::SignedTransaction;
use cradle_ledger::{Hash, PublicKey};

/// Why the mempool refused a transaction.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MempoolError {
    #[error("transaction is already pending")]
    Duplicate,
    #[error("nonce {got} is not above the signer's last committed nonce")]
    StaleNonce { got: u64, last: u64 },
    #[error("another pending transaction of this signer already uses nonce {0}")]
    NonceTaken(u64),
    #[error("mempool is full ({txs} transactions, {bytes} bytes)")]
    Full { txs: usize, bytes: usize },
    #[error("signer already has {0} pending transactions")]
    SignerBacklog(usize),
    #[error("signer already has {0} bytes of pending transactions")]
    SignerBytes(usize),
}

/// How much of the pool one signer may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignerLimit {
    pub txs: usize,
    pub bytes: usize,
}

/// Limits of a mempool.
#[derive(Clone, Copy, Debug)]
pub struct MempoolConfig {
    pub txs_max: usize,
    pub bytes_max: usize,
    /// Most pending transactions of one signer, so no single key can fill the pool.
    pub per_signer_max: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            txs_max: 50_000,
            bytes_max: 64 * 1024 * 1024,
            per_signer_max: 20_000,
        }
    }
}

struct Entry {
    tx: SignedTransaction,
    len: usize,
    seq: u64,
}

/// Pending transactions, by hash and by arrival.
pub struct Mempool {
    config: MempoolConfig,
    by_hash: HashMap<Hash, Entry>,
    by_seq: BTreeMap<u64, Hash>,
    /// Pending transactions and bytes per signer.
    per_signer: HashMap<PublicKey, (usize, usize)>,
    by_signer_nonce: BTreeMap<(PublicKey, u64), Hash>,
    bytes: usize,
    next_seq: u64,
}

impl Mempool {
    pub fn new(config: MempoolConfig) -> Self {
        Self {
            config,
            by_hash: HashMap::new(),
            by_seq: BTreeMap::new(),
            per_signer: HashMap::new(),
            by_signer_nonce: BTreeMap::new(),
            bytes: 0,
            next_seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    /// The most bytes the pool holds.
    pub fn bytes_max(&self) -> usize {
        self.config.bytes_max
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Admits a verified transaction. `last_nonce` is the signer's last committed nonce.
    pub fn insert(
        &mut self,
        hash: Hash,
        tx: SignedTransaction,
        len: usize,
        last_nonce: Option<u64>,
    ) -> Result<(), MempoolError> {
        let limit = SignerLimit {
            txs: self.config.per_signer_max,
            bytes: self.config.bytes_max,
        };
        self.insert_limited(hash, tx, len, last_nonce, limit)
    }

    /// [`Mempool::insert`] with the signer held to `limit`.
    pub fn insert_limited(
        &mut self,
        hash: Hash,
        tx: SignedTransaction,
        len: usize,
        last_nonce: Option<u64>,
        limit: SignerLimit,
    ) -> Result<(), MempoolError> {
        if self.by_hash.contains_key(&hash) {
            return Err(MempoolError::Duplicate);
        }
        if self
            .by_signer_nonce
            .contains_key(&(tx.tx.signer, tx.tx.nonce))
        {
            return Err(MempoolError::NonceTaken(tx.tx.nonce));
        }
        if let Some(last) = last_nonce
            && tx.tx.nonce <= last
        {
            return Err(MempoolError::StaleNonce {
                got: tx.tx.nonce,
                last,
            });
        }
        if self.by_hash.len() >= self.config.txs_max || self.bytes + len > self.config.bytes_max {
            return Err(MempoolError::Full {
                txs: self.by_hash.len(),
                bytes: self.bytes,
            });
        }
        let (txs, bytes) = self
            .per_signer
            .get(&tx.tx.signer)
            .copied()
            .unwrap_or((0, 0));
        if txs >= limit.txs.min(self.config.per_signer_max) {
            return Err(MempoolError::SignerBacklog(txs));
        }
        if bytes.saturating_add(len) > limit.bytes {
            return Err(MempoolError::SignerBytes(bytes));
        }
        self.per_signer
            .insert(tx.tx.signer, (txs + 1, bytes.saturating_add(len)));
        let seq = self.next_seq;
        self.next_seq += 1;
        self.bytes += len;
        self.by_seq.insert(seq, hash);
        self.by_signer_nonce
            .insert((tx.tx.signer, tx.tx.nonce), hash);
        self.by_hash.insert(hash, Entry { tx, len, seq });
        Ok(())
    }

    /// Up to `max_txs` / `max_bytes` of the oldest pending transactions, each signer's in nonce
    /// order.
    pub fn candidates(&self, max_txs: usize, max_bytes: usize) -> Vec<SignedTransaction> {
        let mut picked: Vec<&Entry> = Vec::new();
        let mut bytes = 0;
        for hash in self.by_seq.values() {
            let Some(e) = self.by_hash.get(hash) else {
                continue;
            };
            if picked.len() >= max_txs || bytes + e.len > max_bytes {
                break;
            }
            bytes += e.len;
            picked.push(e);
        }
        // Keep arrival order between signers (by each signer's first pick) but nonce order
        // within one signer.
        let mut first_seq: HashMap<PublicKey, u64> = HashMap::new();
        for e in &picked {
            first_seq.entry(e.tx.tx.signer).or_insert(e.seq);
        }
        picked.sort_by_key(|e| (first_seq[&e.tx.tx.signer], e.tx.tx.nonce));
        picked.into_iter().map(|e| e.tx.clone()).collect()
    }

    /// A pending transaction.
    pub fn get(&self, hash: &Hash) -> Option<&SignedTransaction> {
        self.by_hash.get(hash).map(|e| &e.tx)
    }

    /// Removes a transaction (committed, or refused by the rules).
    pub fn remove(&mut self, hash: &Hash) -> bool {
        let Some(e) = self.by_hash.remove(hash) else {
            return false;
        };
        self.by_seq.remove(&e.seq);
        self.by_signer_nonce
            .remove(&(e.tx.tx.signer, e.tx.tx.nonce));
        self.bytes -= e.len;
        if let Some((n, b)) = self.per_signer.get_mut(&e.tx.tx.signer) {
            *n = n.saturating_sub(1);
            *b = b.saturating_sub(e.len);
            if *n == 0 {
                self.per_signer.remove(&e.tx.tx.signer);
            }
        }
        true
    }

    /// Drops every pending transaction of `signer` whose nonce is at or below `last`, which a
    /// committed block made stale; returns their hashes.
    pub fn drop_stale(&mut self, signer: &PublicKey, last: u64) -> Vec<Hash> {
        let stale: Vec<Hash> = self
            .by_signer_nonce
            .range((*signer, 0)..=(*signer, last))
            .map(|(_, h)| *h)
            .collect();
        for h in &stale {
            self.remove(h);
        }
        stale
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cradle_ledger::Keypair;
    use cradle_ledger::tx::{EnrolPatient, Transaction, TxBody};

    fn tx(key: &Keypair, nonce: u64) -> (Hash, SignedTransaction) {
        let p = Keypair::from_seed(&[nonce as u8; 32]);
        let stx = Transaction {
            chain_id: [1; 32],
            signer: key.public_key(),
            nonce,
            body: TxBody::EnrolPatient(EnrolPatient::prove(&p, &[1; 32])),
        }
        .sign(key);
        (stx.hash(), stx)
    }

    #[test]
    fn refuses_duplicates_stale_nonces_and_overflow() {
        let k = Keypair::from_seed(&[1; 32]);
        let mut m = Mempool::new(MempoolConfig {
            txs_max: 2,
            ..MempoolConfig::default()
        });
        let (h1, t1) = tx(&k, 5);
        m.insert(h1, t1.clone(), 100, Some(4)).unwrap();
        assert_eq!(m.insert(h1, t1, 100, Some(4)), Err(MempoolError::Duplicate));
        let (h2, t2) = tx(&k, 3);
        assert_eq!(
            m.insert(h2, t2, 100, Some(4)),
            Err(MempoolError::StaleNonce { got: 3, last: 4 })
        );
        let (h3, t3) = tx(&k, 6);
        m.insert(h3, t3, 100, Some(4)).unwrap();
        let (h4, t4) = tx(&k, 7);
        assert!(matches!(
            m.insert(h4, t4, 100, None),
            Err(MempoolError::Full { .. })
        ));
        assert_eq!(m.len(), 2);
        assert_eq!(m.bytes(), 200);
    }

    #[test]
    fn candidates_put_each_signers_transactions_in_nonce_order() {
        let a = Keypair::from_seed(&[1; 32]);
        let b = Keypair::from_seed(&[2; 32]);
        let mut m = Mempool::new(MempoolConfig::default());
        for (key, nonce) in [(&a, 9), (&b, 1), (&a, 8), (&b, 2)] {
            let (h, t) = tx(key, nonce);
            m.insert(h, t, 10, None).unwrap();
        }
        let order: Vec<(PublicKey, u64)> = m
            .candidates(10, 1000)
            .iter()
            .map(|t| (t.tx.signer, t.tx.nonce))
            .collect();
        assert_eq!(
            order,
            vec![
                (a.public_key(), 8),
                (a.public_key(), 9),
                (b.public_key(), 1),
                (b.public_key(), 2)
            ]
        );
        assert_eq!(m.candidates(1, 1000).len(), 1);
        m.drop_stale(&a.public_key(), 9);
        assert_eq!(m.len(), 2);
    }
}
