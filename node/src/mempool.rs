//! The mempool: verified transactions waiting for a block.
//!
//! Bounded in count and bytes, in two lanes. Access records, which a clinician waits on before
//! the first byte of an archive leaves the custodian, have a lane of their own with capacity no
//! other transaction can take, and proposers take them first; everything else shares the
//! ordinary lane. Each signer is held to a share of its lane; when the ordinary lane is full, a
//! newcomer evicts the newest transaction of the signer holding the most of it (never its own),
//! so a flood from one key costs that key its place rather than everyone else theirs.
//!
//! It admits only transactions whose signatures the driver has checked (once per transaction per
//! node), that carry the chain id and a nonce above the signer's last committed one, and that it
//! does not already hold. Proposers take candidates in arrival order, access records first;
//! within a proposal each signer's transactions go in nonce order, so a client that submits
//! several at once sees them applied in the order it numbered them.

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

/// Which part of the pool a transaction waits in.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Lane {
    /// A custodian's access records: a clinician waits on each before the first byte.
    Access,
    /// Everything else.
    Ordinary,
}

/// How much of its lane one signer may hold.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SignerLimit {
    pub txs: usize,
    pub bytes: usize,
}

/// Limits of a mempool.
#[derive(Clone, Copy, Debug)]
pub struct MempoolConfig {
    /// The ordinary lane.
    pub txs_max: usize,
    pub bytes_max: usize,
    /// The access lane, reserved for access records.
    pub access_txs_max: usize,
    pub access_bytes_max: usize,
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            txs_max: 10_000,
            bytes_max: 64 * 1024 * 1024,
            access_txs_max: 4_096,
            access_bytes_max: 16 * 1024 * 1024,
        }
    }
}

impl MempoolConfig {
    /// The most a lane holds.
    pub fn capacity(&self, lane: Lane) -> SignerLimit {
        match lane {
            Lane::Access => SignerLimit {
                txs: self.access_txs_max,
                bytes: self.access_bytes_max,
            },
            Lane::Ordinary => SignerLimit {
                txs: self.txs_max,
                bytes: self.bytes_max,
            },
        }
    }
}

struct Entry {
    tx: SignedTransaction,
    len: usize,
    seq: u64,
    lane: Lane,
}

/// Transactions and bytes held.
#[derive(Clone, Copy, Default, Debug, PartialEq, Eq)]
struct Held {
    txs: usize,
    bytes: usize,
}

/// Pending transactions, by hash, by lane and arrival, and by signer.
pub struct Mempool {
    config: MempoolConfig,
    by_hash: HashMap<Hash, Entry>,
    by_seq: BTreeMap<(Lane, u64), Hash>,
    lanes: HashMap<Lane, Held>,
    /// What each signer holds in each lane.
    per_signer: HashMap<(Lane, PublicKey), Held>,
    by_signer_nonce: BTreeMap<(PublicKey, u64), Hash>,
    next_seq: u64,
}

impl Mempool {
    pub fn new(config: MempoolConfig) -> Self {
        Self {
            config,
            by_hash: HashMap::new(),
            by_seq: BTreeMap::new(),
            lanes: HashMap::new(),
            per_signer: HashMap::new(),
            by_signer_nonce: BTreeMap::new(),
            next_seq: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.by_hash.len()
    }

    pub fn is_empty(&self) -> bool {
        self.by_hash.is_empty()
    }

    pub fn config(&self) -> &MempoolConfig {
        &self.config
    }

    /// Bytes held in both lanes.
    pub fn bytes(&self) -> usize {
        self.lanes.values().map(|h| h.bytes).sum()
    }

    /// Transactions held in one lane.
    pub fn lane_len(&self, lane: Lane) -> usize {
        self.lanes.get(&lane).map_or(0, |h| h.txs)
    }

    pub fn contains(&self, hash: &Hash) -> bool {
        self.by_hash.contains_key(hash)
    }

    /// Admits a verified transaction to the ordinary lane, the signer held to a quarter of it.
    /// `last_nonce` is the signer's last committed nonce. Returns the hashes it evicted.
    pub fn insert(
        &mut self,
        hash: Hash,
        tx: SignedTransaction,
        len: usize,
        last_nonce: Option<u64>,
    ) -> Result<Vec<Hash>, MempoolError> {
        let cap = self.config.capacity(Lane::Ordinary);
        let limit = SignerLimit {
            txs: cap.txs / 4,
            bytes: cap.bytes / 4,
        };
        self.insert_limited(hash, tx, len, last_nonce, Lane::Ordinary, limit)
    }

    /// Admits a verified transaction to `lane`, its signer held to `limit` there. When the
    /// ordinary lane is full, the newest transactions of the signer that holds the most of it
    /// make room, as long as that signer would still hold more than this one; their hashes are
    /// returned, and their submitters should be told.
    pub fn insert_limited(
        &mut self,
        hash: Hash,
        tx: SignedTransaction,
        len: usize,
        last_nonce: Option<u64>,
        lane: Lane,
        limit: SignerLimit,
    ) -> Result<Vec<Hash>, MempoolError> {
        let signer = tx.tx.signer;
        if self.by_hash.contains_key(&hash) {
            return Err(MempoolError::Duplicate);
        }
        if self.by_signer_nonce.contains_key(&(signer, tx.tx.nonce)) {
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
        let mine = self.held_by(lane, &signer);
        if mine.txs >= limit.txs {
            return Err(MempoolError::SignerBacklog(mine.txs));
        }
        if mine.bytes.saturating_add(len) > limit.bytes {
            return Err(MempoolError::SignerBytes(mine.bytes));
        }
        let evicted = self.make_room(lane, &signer, len)?;
        let seq = self.next_seq;
        self.next_seq = self.next_seq.saturating_add(1);
        self.add_held(lane, signer, len);
        self.by_seq.insert((lane, seq), hash);
        self.by_signer_nonce.insert((signer, tx.tx.nonce), hash);
        self.by_hash.insert(hash, Entry { tx, len, seq, lane });
        Ok(evicted)
    }

    fn held_by(&self, lane: Lane, signer: &PublicKey) -> Held {
        self.per_signer
            .get(&(lane, *signer))
            .copied()
            .unwrap_or_default()
    }

    fn fits(&self, lane: Lane, len: usize) -> bool {
        let cap = self.config.capacity(lane);
        let held = self.lanes.get(&lane).copied().unwrap_or_default();
        held.txs < cap.txs && held.bytes.saturating_add(len) <= cap.bytes
    }

    /// Evicts ordinary work until `len` bytes from `signer` fit, or refuses with nothing
    /// evicted.
    fn make_room(
        &mut self,
        lane: Lane,
        signer: &PublicKey,
        len: usize,
    ) -> Result<Vec<Hash>, MempoolError> {
        let full = || {
            let held = self.lanes.get(&lane).copied().unwrap_or_default();
            MempoolError::Full {
                txs: held.txs,
                bytes: held.bytes,
            }
        };
        if self.fits(lane, len) {
            return Ok(Vec::new());
        }
        // Access records are never evicted: a clinician waits on each one.
        if lane == Lane::Access || len > self.config.capacity(lane).bytes {
            return Err(full());
        }
        // Plan first, so that a refusal evicts nothing.
        let mine = self.held_by(lane, signer).bytes.saturating_add(len);
        let mut shares: Vec<(usize, PublicKey)> = self
            .per_signer
            .iter()
            .filter(|((l, k), _)| *l == lane && k != signer)
            .map(|((_, k), h)| (h.bytes, *k))
            .collect();
        let cap = self.config.capacity(lane);
        let held = self.lanes.get(&lane).copied().unwrap_or_default();
        let (mut txs, mut bytes) = (held.txs, held.bytes);
        let mut victims = Vec::new();
        let mut taken: HashMap<PublicKey, u64> = HashMap::new();
        while txs >= cap.txs || bytes.saturating_add(len) > cap.bytes {
            // The largest holder loses its newest transaction while it holds more than the
            // newcomer's signer would.
            let Some(top) = shares.iter_mut().max_by_key(|(b, _)| *b) else {
                return Err(full());
            };
            if top.0 <= mine {
                return Err(full());
            }
            let victim = top.1;
            let below = taken.get(&victim).copied().unwrap_or(u64::MAX);
            let newest = self
                .by_signer_nonce
                .range((victim, 0)..(victim, below))
                .rev()
                .find(|(_, h)| self.by_hash.get(*h).is_some_and(|e| e.lane == lane));
            let Some((&(_, nonce), &h)) = newest else {
                top.0 = 0;
                continue;
            };
            let e_len = self.by_hash.get(&h).map_or(0, |e| e.len);
            top.0 = top.0.saturating_sub(e_len);
            taken.insert(victim, nonce);
            txs = txs.saturating_sub(1);
            bytes = bytes.saturating_sub(e_len);
            victims.push(h);
        }
        for h in &victims {
            self.remove(h);
        }
        Ok(victims)
    }

    fn add_held(&mut self, lane: Lane, signer: PublicKey, len: usize) {
        for held in [
            self.lanes.entry(lane).or_default(),
            self.per_signer.entry((lane, signer)).or_default(),
        ] {
            held.txs = held.txs.saturating_add(1);
            held.bytes = held.bytes.saturating_add(len);
        }
    }

    /// Up to `max_txs` / `max_bytes` of pending transactions: access records first, then the
    /// ordinary lane, each in arrival order; each signer's in nonce order. An access record
    /// brings its signer's pending transactions of lower nonce along, so that committing it
    /// never makes them stale.
    pub fn candidates(&self, max_txs: usize, max_bytes: usize) -> Vec<SignedTransaction> {
        let mut picked: Vec<&Entry> = Vec::new();
        let mut in_block: std::collections::HashSet<Hash> = std::collections::HashSet::new();
        let mut bytes = 0usize;
        'pick: for (&(lane, _), hash) in &self.by_seq {
            if in_block.contains(hash) {
                continue;
            }
            let Some(e) = self.by_hash.get(hash) else {
                continue;
            };
            let mut group: Vec<(&Hash, &Entry)> = Vec::new();
            if lane == Lane::Access {
                let signer = e.tx.tx.signer;
                for (_, h) in self
                    .by_signer_nonce
                    .range((signer, 0)..(signer, e.tx.tx.nonce))
                {
                    if !in_block.contains(h)
                        && let Some(before) = self.by_hash.get(h)
                    {
                        group.push((h, before));
                    }
                }
            }
            group.push((hash, e));
            let group_bytes: usize = group.iter().map(|(_, e)| e.len).sum();
            if picked.len().saturating_add(group.len()) > max_txs
                || bytes.saturating_add(group_bytes) > max_bytes
            {
                if lane == Lane::Access {
                    // Later access records may still fit; the ordinary lane waits its turn.
                    continue 'pick;
                }
                break;
            }
            bytes = bytes.saturating_add(group_bytes);
            for (h, e) in group {
                in_block.insert(*h);
                picked.push(e);
            }
        }
        // Keep pick order between signers (by each signer's first pick) but nonce order
        // within one signer.
        let mut first: HashMap<PublicKey, usize> = HashMap::new();
        for (i, e) in picked.iter().enumerate() {
            first.entry(e.tx.tx.signer).or_insert(i);
        }
        picked.sort_by_key(|e| (first.get(&e.tx.tx.signer).copied(), e.tx.tx.nonce));
        picked.into_iter().map(|e| e.tx.clone()).collect()
    }

    /// A pending transaction.
    pub fn get(&self, hash: &Hash) -> Option<&SignedTransaction> {
        self.by_hash.get(hash).map(|e| &e.tx)
    }

    /// Removes a transaction (committed, evicted, or refused by the rules).
    pub fn remove(&mut self, hash: &Hash) -> bool {
        let Some(e) = self.by_hash.remove(hash) else {
            return false;
        };
        let signer = e.tx.tx.signer;
        self.by_seq.remove(&(e.lane, e.seq));
        self.by_signer_nonce.remove(&(signer, e.tx.tx.nonce));
        if let Some(held) = self.lanes.get_mut(&e.lane) {
            held.txs = held.txs.saturating_sub(1);
            held.bytes = held.bytes.saturating_sub(e.len);
        }
        if let Some(held) = self.per_signer.get_mut(&(e.lane, signer)) {
            held.txs = held.txs.saturating_sub(1);
            held.bytes = held.bytes.saturating_sub(e.len);
            if held.txs == 0 {
                self.per_signer.remove(&(e.lane, signer));
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

    const ALL: SignerLimit = SignerLimit {
        txs: usize::MAX,
        bytes: usize::MAX,
    };

    fn put(m: &mut Mempool, key: &Keypair, nonce: u64, len: usize, lane: Lane) -> Vec<Hash> {
        let (h, t) = tx(key, nonce);
        m.insert_limited(h, t, len, None, lane, ALL).unwrap()
    }

    #[test]
    fn refuses_duplicates_stale_nonces_and_overflow() {
        let k = Keypair::from_seed(&[1; 32]);
        let mut m = Mempool::new(MempoolConfig {
            txs_max: 2,
            ..MempoolConfig::default()
        });
        let (h1, t1) = tx(&k, 5);
        let ord = Lane::Ordinary;
        m.insert_limited(h1, t1.clone(), 100, Some(4), ord, ALL)
            .unwrap();
        assert_eq!(
            m.insert_limited(h1, t1, 100, Some(4), ord, ALL),
            Err(MempoolError::Duplicate)
        );
        let (h2, t2) = tx(&k, 3);
        assert_eq!(
            m.insert_limited(h2, t2, 100, Some(4), ord, ALL),
            Err(MempoolError::StaleNonce { got: 3, last: 4 })
        );
        put(&mut m, &k, 6, 100, ord);
        // A signer never evicts its own work.
        let (h4, t4) = tx(&k, 7);
        assert!(matches!(
            m.insert_limited(h4, t4, 100, None, ord, ALL),
            Err(MempoolError::Full { .. })
        ));
        assert_eq!(m.len(), 2);
        assert_eq!(m.bytes(), 200);
    }

    #[test]
    fn a_signer_is_held_to_its_share() {
        let k = Keypair::from_seed(&[1; 32]);
        let mut m = Mempool::new(MempoolConfig::default());
        let limit = SignerLimit { txs: 2, bytes: 250 };
        for nonce in 1..=2 {
            let (h, t) = tx(&k, nonce);
            m.insert_limited(h, t, 100, None, Lane::Ordinary, limit)
                .unwrap();
        }
        let (h, t) = tx(&k, 3);
        assert_eq!(
            m.insert_limited(h, t.clone(), 100, None, Lane::Ordinary, limit),
            Err(MempoolError::SignerBacklog(2))
        );
        let wide = SignerLimit { txs: 9, bytes: 250 };
        assert_eq!(
            m.insert_limited(h, t, 100, None, Lane::Ordinary, wide),
            Err(MempoolError::SignerBytes(200))
        );
        // The default insert holds a signer to a quarter of the ordinary lane.
        let mut m = Mempool::new(MempoolConfig {
            txs_max: 8,
            ..MempoolConfig::default()
        });
        for nonce in 1..=2 {
            let (h, t) = tx(&k, nonce);
            m.insert(h, t, 10, None).unwrap();
        }
        let (h, t) = tx(&k, 3);
        assert_eq!(
            m.insert(h, t, 10, None),
            Err(MempoolError::SignerBacklog(2))
        );
    }

    #[test]
    fn a_flooder_loses_its_newest_work_to_a_newcomer() {
        let flooder = Keypair::from_seed(&[1; 32]);
        let mother = Keypair::from_seed(&[2; 32]);
        let mut m = Mempool::new(MempoolConfig {
            txs_max: 5,
            bytes_max: 900,
            ..MempoolConfig::default()
        });
        for nonce in 1..=5 {
            put(&mut m, &flooder, nonce, 180, Lane::Ordinary);
        }
        // Full by count: the flooder's newest goes.
        let evicted = put(&mut m, &mother, 1, 100, Lane::Ordinary);
        assert_eq!(evicted, vec![tx(&flooder, 5).0]);
        // Full by count and bytes (820 of 900 held): 300 more take the flooder's two newest, and its
        // older work stays, without a gap in its nonces.
        let evicted = put(&mut m, &mother, 2, 300, Lane::Ordinary);
        assert_eq!(evicted, vec![tx(&flooder, 4).0, tx(&flooder, 3).0]);
        assert!(m.contains(&tx(&flooder, 2).0));
        assert_eq!((m.len(), m.bytes()), (4, 760));
        // Now the mother would hold more than the flooder: a big one of hers is refused
        // rather than taking the flooder's last, and nothing changes.
        let (h, t) = tx(&mother, 3);
        assert!(matches!(
            m.insert_limited(h, t, 400, None, Lane::Ordinary, ALL),
            Err(MempoolError::Full { .. })
        ));
        // Nor can the flooder evict her.
        let (h, t) = tx(&flooder, 9);
        assert!(matches!(
            m.insert_limited(h, t, 300, None, Lane::Ordinary, ALL),
            Err(MempoolError::Full { .. })
        ));
        assert_eq!((m.len(), m.bytes()), (4, 760));
    }

    #[test]
    fn access_records_have_a_lane_no_flood_can_take_and_go_first() {
        let flooder = Keypair::from_seed(&[1; 32]);
        let custodian = Keypair::from_seed(&[3; 32]);
        let mut m = Mempool::new(MempoolConfig {
            txs_max: 3,
            access_txs_max: 2,
            ..MempoolConfig::default()
        });
        put(&mut m, &custodian, 10, 50, Lane::Ordinary);
        for nonce in 1..=2 {
            put(&mut m, &flooder, nonce, 50, Lane::Ordinary);
        }
        let (h, t) = tx(&flooder, 3);
        assert!(matches!(
            m.insert_limited(h, t, 50, None, Lane::Ordinary, ALL),
            Err(MempoolError::Full { .. })
        ));
        // The ordinary lane is full; an access record still gets in.
        assert!(put(&mut m, &custodian, 11, 50, Lane::Access).is_empty());
        // A block with room for two: the access record, with its signer's earlier work so that
        // work is not made stale; the flood waits.
        let order: Vec<(PublicKey, u64)> = m
            .candidates(2, 10_000)
            .iter()
            .map(|t| (t.tx.signer, t.tx.nonce))
            .collect();
        assert_eq!(
            order,
            vec![(custodian.public_key(), 10), (custodian.public_key(), 11)]
        );
        // The access lane is not evicted into: when it is full, the record is refused.
        put(&mut m, &custodian, 12, 50, Lane::Access);
        let (h, t) = tx(&custodian, 13);
        assert!(matches!(
            m.insert_limited(h, t, 50, None, Lane::Access, ALL),
            Err(MempoolError::Full { .. })
        ));
        assert_eq!(m.lane_len(Lane::Access), 2);
        assert_eq!(m.lane_len(Lane::Ordinary), 3);
    }

    #[test]
    fn candidates_put_each_signers_transactions_in_nonce_order() {
        let a = Keypair::from_seed(&[1; 32]);
        let b = Keypair::from_seed(&[2; 32]);
        let mut m = Mempool::new(MempoolConfig::default());
        for (key, nonce) in [(&a, 9), (&b, 1), (&a, 8), (&b, 2)] {
            put(&mut m, key, nonce, 10, Lane::Ordinary);
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
