//! The `evidence` column family: equivocation evidence this node's consensus core collected,
//! kept across restarts for regulators.
//!
//! It promises that
//! - only evidence that verifies against the validator set is stored, so what regulators are
//!   served always proves itself;
//! - one offence is one entry: the key is the evidence's slot (height, round, step, validator),
//!   so the same equivocation seen again, or proven by another pair of messages, adds nothing;
//! - the column family holds at most [`EVIDENCE_STORED_MAX`] entries, so one Byzantine
//!   validator cannot grow the disk without bound: beyond it new evidence is refused (the
//!   caller logs it) and what is stored stays;
//! - a list answers at most [`EVIDENCE_PAGE_MAX`] items.

use cradle_consensus::{Equivocation, ValidatorSet};
use cradle_ledger::audit::EVIDENCE_PAGE_MAX;
use cradle_ledger::codec;
use rocksdb::{IteratorMode, WriteOptions};

use super::schema::{CF_EVIDENCE, EVIDENCE_VALUE_BYTES_MAX};
use super::{StorageError, Store};

/// Most pieces of evidence a store keeps.
pub const EVIDENCE_STORED_MAX: u64 = 10_000;

/// What became of evidence handed to [`Store::put_evidence`].
#[derive(Debug, PartialEq, Eq)]
pub enum EvidenceStored {
    /// Written and synced.
    Stored,
    /// Evidence of the same offence is already stored.
    Duplicate,
    /// The store holds its maximum; nothing was written.
    Full { stored: u64 },
    /// It does not verify against the validator set; nothing was written.
    Invalid(cradle_consensus::Error),
}

/// One page of stored evidence, in key order, and how many pieces are stored in all.
#[derive(Debug, PartialEq, Eq)]
pub struct EvidencePage {
    pub total: u64,
    pub items: Vec<Equivocation>,
}

/// Counts the stored evidence when the store opens (at most [`EVIDENCE_STORED_MAX`] keys, and a
/// few more if an older build kept more).
pub(super) fn count(db: &rocksdb::DB) -> Result<u64, StorageError> {
    let cf = db
        .cf_handle(CF_EVIDENCE)
        .ok_or(StorageError::MissingColumnFamily(CF_EVIDENCE))?;
    let mut n = 0u64;
    for item in db.iterator_cf(cf, IteratorMode::Start) {
        item?;
        n += 1;
    }
    Ok(n)
}

impl Store {
    /// Verifies `evidence` against `validators` on `chain_id` and stores it, synced, unless the
    /// same offence is stored or the store is full. A write error is returned (and is fatal to
    /// the caller); a refusal is an [`EvidenceStored`] and changes nothing.
    pub fn put_evidence(
        &self,
        evidence: &Equivocation,
        chain_id: &[u8; 32],
        validators: &ValidatorSet,
    ) -> Result<EvidenceStored, StorageError> {
        if let Err(e) = evidence.verify(chain_id, validators) {
            return Ok(EvidenceStored::Invalid(e));
        }
        let key = evidence.slot().key();
        let mut stored = self
            .evidence_count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cf = self.view().cf(CF_EVIDENCE)?;
        if self.db.get_pinned_cf(cf, key)?.is_some() {
            return Ok(EvidenceStored::Duplicate);
        }
        if *stored >= self.evidence_max {
            return Ok(EvidenceStored::Full { stored: *stored });
        }
        let mut opts = WriteOptions::default();
        opts.set_sync(true);
        self.db
            .put_cf_opt(cf, key, codec::encode(evidence), &opts)?;
        *stored += 1;
        Ok(EvidenceStored::Stored)
    }

    /// Up to `limit` (at most [`EVIDENCE_PAGE_MAX`]) pieces of evidence from position `offset`
    /// on, in (height, round, step, validator) order.
    pub fn evidence(&self, offset: u64, limit: usize) -> Result<EvidencePage, StorageError> {
        let limit = limit.min(EVIDENCE_PAGE_MAX);
        // Held while listing, so the total agrees with the entries a page can see.
        let total = self
            .evidence_count
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let cf = self.view().cf(CF_EVIDENCE)?;
        let skip = usize::try_from(offset).unwrap_or(usize::MAX);
        let mut items = Vec::new();
        for item in self
            .db
            .iterator_cf(cf, IteratorMode::Start)
            .skip(skip)
            .take(limit)
        {
            let (key, value) = item?;
            let corrupt = |detail: String| StorageError::Corrupt {
                cf: CF_EVIDENCE,
                what: "evidence",
                detail,
            };
            let evidence: Equivocation = codec::decode(&value, EVIDENCE_VALUE_BYTES_MAX)
                .map_err(|e| corrupt(e.to_string()))?;
            if evidence.slot().key().as_slice() != &*key {
                return Err(corrupt(format!(
                    "stored under key {}, names {:?}",
                    hex::encode(&key),
                    evidence.slot()
                )));
            }
            items.push(evidence);
        }
        Ok(EvidencePage {
            total: *total,
            items,
        })
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use cradle_consensus::{SignedVote, ValueId, Vote, VoteKind};
    use cradle_ledger::{Keypair, Policy};
    use cradle_testkit::TestConsortium;

    use super::*;

    const CHAIN: [u8; 32] = [3; 32];

    /// The test consortium: three validators (indices 0 to 2) and a regulator.
    fn setup() -> TestConsortium {
        TestConsortium::new(Policy::default())
    }

    fn vote(key: &Keypair, who: u16, height: u64, value: u8) -> SignedVote {
        Vote {
            kind: VoteKind::Prevote,
            height,
            round: 0,
            value: Some(ValueId([value; 32])),
            validator: who,
        }
        .sign(&CHAIN, key.signing_key())
    }

    fn equivocation(keys: &[&Keypair], who: u16, height: u64, a: u8, b: u8) -> Equivocation {
        let key = keys[usize::from(who)];
        Equivocation::Vote {
            first: vote(key, who, height, a),
            second: vote(key, who, height, b),
        }
    }

    #[test]
    fn evidence_is_stored_once_per_offence_and_survives_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let t = setup();
        let (keys, set) = (t.validators(), t.consortium.validators());
        let store = Store::open(dir.path()).unwrap();
        let ev = equivocation(&keys, 2, 7, 1, 2);
        assert_eq!(
            store.put_evidence(&ev, &CHAIN, set).unwrap(),
            EvidenceStored::Stored
        );
        assert_eq!(
            store.put_evidence(&ev, &CHAIN, set).unwrap(),
            EvidenceStored::Duplicate
        );
        // Another pair of votes proving the same offence is the same entry.
        let again = equivocation(&keys, 2, 7, 2, 9);
        assert_eq!(
            store.put_evidence(&again, &CHAIN, set).unwrap(),
            EvidenceStored::Duplicate
        );
        // Evidence that does not verify is never stored.
        let mut forged = equivocation(&keys, 1, 8, 1, 2);
        if let Equivocation::Vote { second, .. } = &mut forged {
            second.signature[0] ^= 1;
        }
        assert!(matches!(
            store.put_evidence(&forged, &CHAIN, set).unwrap(),
            EvidenceStored::Invalid(_)
        ));
        let earlier = equivocation(&keys, 0, 2, 5, 6);
        store.put_evidence(&earlier, &CHAIN, set).unwrap();
        drop(store);
        let store = Store::open(dir.path()).unwrap();
        let page = store.evidence(0, 100).unwrap();
        assert_eq!(page.total, 2);
        assert_eq!(page.items, vec![earlier, ev.clone()], "height order");
        assert_eq!(store.evidence(1, 100).unwrap().items, vec![ev]);
    }

    #[test]
    fn a_full_evidence_store_refuses_new_evidence_and_keeps_the_old() {
        let dir = tempfile::tempdir().unwrap();
        let t = setup();
        let (keys, set) = (t.validators(), t.consortium.validators());
        let mut store = Store::open(dir.path()).unwrap();
        store.evidence_max = 5;
        for height in 1..=5 {
            let ev = equivocation(&keys, 2, height, 1, 2);
            assert_eq!(
                store.put_evidence(&ev, &CHAIN, set).unwrap(),
                EvidenceStored::Stored
            );
        }
        let more = equivocation(&keys, 2, 6, 1, 2);
        assert_eq!(
            store.put_evidence(&more, &CHAIN, set).unwrap(),
            EvidenceStored::Full { stored: 5 }
        );
        // A duplicate of stored evidence is still recognised as such when full.
        let old = equivocation(&keys, 2, 1, 1, 2);
        assert_eq!(
            store.put_evidence(&old, &CHAIN, set).unwrap(),
            EvidenceStored::Duplicate
        );
        let page = store.evidence(0, usize::MAX).unwrap();
        assert_eq!((page.total, page.items.len()), (5, 5));
        assert!(page.items.iter().all(|e| e.slot().height <= 5));
        // A page is bounded whatever the caller asks.
        assert_eq!(store.evidence(3, 1).unwrap().items.len(), 1);
        assert!(store.evidence(u64::MAX, 10).unwrap().items.is_empty());
    }

    #[test]
    fn a_store_written_before_the_evidence_column_family_opens() {
        let dir = tempfile::tempdir().unwrap();
        {
            let mut opts = rocksdb::Options::default();
            opts.create_if_missing(true);
            opts.create_missing_column_families(true);
            let old: Vec<_> = crate::storage::schema::COLUMN_FAMILIES
                .iter()
                .filter(|cf| **cf != CF_EVIDENCE)
                .collect();
            let db = rocksdb::DB::open_cf(&opts, dir.path(), old).unwrap();
            assert!(db.cf_handle(CF_EVIDENCE).is_none());
        }
        let t = setup();
        let (keys, set) = (t.validators(), t.consortium.validators());
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.evidence(0, 10).unwrap().total, 0);
        let ev = equivocation(&keys, 0, 1, 1, 2);
        assert_eq!(
            store.put_evidence(&ev, &CHAIN, set).unwrap(),
            EvidenceStored::Stored
        );
    }
}
