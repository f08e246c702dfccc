//! Reads: one implementation over a [`View`], which reads either the live database or a
//! RocksDB snapshot, so [`super::Store`] and [`StoreSnapshot`] answer the same questions the
//! same way. Every value read is length-checked or decoded with a bound; bad bytes are
//! [`StorageError::Corrupt`], never a panic.

use rocksdb::{ColumnFamily, DB, Direction, IteratorMode, ReadOptions, SnapshotWithThreadMode};

use cradle_ledger::access::LoggedEvent;
use cradle_ledger::block::{ChainTip, FinalizedBlock};
use cradle_ledger::codec;
use cradle_ledger::crypto::{Hash, PublicKey};
use cradle_ledger::merkle::ProofError;
use cradle_ledger::merkle::log::SubtreeSource;
use cradle_ledger::state::{Entry, StateReader};

use super::StorageError;
use super::schema::*;

/// Most entries one index read returns, whatever the caller asks for.
pub const EVENTS_PAGE_MAX: usize = 10_000;

/// The database as of now (no snapshot) or as of a snapshot.
#[derive(Clone, Copy)]
pub(super) struct View<'a> {
    pub(super) db: &'a DB,
    pub(super) snapshot: Option<&'a SnapshotWithThreadMode<'a, DB>>,
}

impl<'a> View<'a> {
    pub(super) fn cf(&self, name: &'static str) -> Result<&'a ColumnFamily, StorageError> {
        self.db
            .cf_handle(name)
            .ok_or(StorageError::MissingColumnFamily(name))
    }

    fn read_options(&self) -> ReadOptions {
        let mut opts = ReadOptions::default();
        if let Some(s) = self.snapshot {
            opts.set_snapshot(s);
        }
        opts
    }

    pub(super) fn get(
        &self,
        cf: &'static str,
        key: &[u8],
    ) -> Result<Option<Vec<u8>>, StorageError> {
        Ok(self
            .db
            .get_cf_opt(self.cf(cf)?, key, &self.read_options())?)
    }

    /// Up to `limit` entries of `cf` whose keys start with `prefix`, from `start` on, in key
    /// order. The iterator is bounded above by the prefix, so it never reads past it.
    fn scan(
        &self,
        cf: &'static str,
        prefix: &[u8],
        start: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, StorageError> {
        let mut opts = self.read_options();
        if let Some(end) = prefix_successor(prefix) {
            opts.set_iterate_upper_bound(end);
        }
        let from = std::cmp::max(start, prefix);
        let iter = self.db.iterator_cf_opt(
            self.cf(cf)?,
            opts,
            IteratorMode::From(from, Direction::Forward),
        );
        let mut out = Vec::new();
        for item in iter {
            if out.len() >= limit {
                break;
            }
            let (k, v) = item?;
            if !k.starts_with(prefix) {
                break;
            }
            out.push((k.into_vec(), v.into_vec()));
        }
        Ok(out)
    }

    pub(super) fn tip(&self) -> Result<Option<ChainTip>, StorageError> {
        self.get(CF_META, META_TIP)?
            .map(|b| {
                codec::decode::<ChainTip>(&b, TIP_VALUE_BYTES_MAX).map_err(|e| {
                    StorageError::Corrupt {
                        cf: CF_META,
                        what: "tip",
                        detail: e.to_string(),
                    }
                })
            })
            .transpose()
    }

    pub(super) fn chain_id(&self) -> Result<Option<Hash>, StorageError> {
        self.get(CF_META, META_CHAIN_ID)?
            .map(|b| decode_hash(CF_META, "chain id", &b))
            .transpose()
    }

    pub(super) fn block_bytes(&self, height: u64) -> Result<Option<Vec<u8>>, StorageError> {
        self.get(CF_BLOCKS, &height_key(height))
    }

    pub(super) fn block(&self, height: u64) -> Result<Option<FinalizedBlock>, StorageError> {
        let Some(bytes) = self.block_bytes(height)? else {
            return Ok(None);
        };
        let corrupt = |detail: String| StorageError::Corrupt {
            cf: CF_BLOCKS,
            what: "block",
            detail,
        };
        let fb = FinalizedBlock::decode(&bytes, BLOCK_VALUE_BYTES_MAX)
            .map_err(|e| corrupt(format!("height {height}: {e}")))?;
        if fb.block.header.height != height {
            return Err(corrupt(format!(
                "stored under height {height}, says {}",
                fb.block.header.height
            )));
        }
        Ok(Some(fb))
    }

    pub(super) fn height_of(&self, block_hash: &Hash) -> Result<Option<u64>, StorageError> {
        self.get(CF_BLOCK_HASHES, block_hash)?
            .map(|b| decode_u64(CF_BLOCK_HASHES, "height", &b))
            .transpose()
    }

    pub(super) fn tx_location(&self, tx_hash: &Hash) -> Result<Option<(u64, u32)>, StorageError> {
        self.get(CF_TXS, tx_hash)?
            .map(|b| decode_tx_location(&b))
            .transpose()
    }

    pub(super) fn event(&self, global_index: u64) -> Result<Option<LoggedEvent>, StorageError> {
        let Some(bytes) = self.get(CF_EVENTS, &height_key(global_index))? else {
            return Ok(None);
        };
        let corrupt = |detail: String| StorageError::Corrupt {
            cf: CF_EVENTS,
            what: "event",
            detail,
        };
        let ev: LoggedEvent = codec::decode(&bytes, EVENT_VALUE_BYTES_MAX)
            .map_err(|e| corrupt(format!("index {global_index}: {e}")))?;
        if ev.global_index != global_index {
            return Err(corrupt(format!(
                "stored under index {global_index}, says {}",
                ev.global_index
            )));
        }
        Ok(Some(ev))
    }

    /// The events an index lists under `id`, with global index `>= from_index`, in order.
    pub(super) fn events_by(
        &self,
        cf: &'static str,
        id: &[u8; 32],
        from_index: u64,
        limit: usize,
    ) -> Result<Vec<LoggedEvent>, StorageError> {
        let limit = limit.min(EVENTS_PAGE_MAX);
        let entries = self.scan(cf, id, &index_key(id, from_index), limit)?;
        let mut out = Vec::with_capacity(entries.len());
        for (key, _) in entries {
            let global = index_key_global(cf, &key)?;
            let ev = self.event(global)?.ok_or(StorageError::Corrupt {
                cf,
                what: "index entry",
                detail: format!("names missing event {global}"),
            })?;
            out.push(ev);
        }
        Ok(out)
    }

    pub(super) fn consensus_state(&self) -> Result<Option<Vec<u8>>, StorageError> {
        self.get(CF_CONSENSUS, CONSENSUS_STATE)
    }

    pub(super) fn state_get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, cradle_ledger::Error> {
        self.get(CF_STATE, key).map_err(ledger_error)
    }

    pub(super) fn state_scan(
        &self,
        prefix: &[u8],
        limit: usize,
    ) -> Result<Vec<Entry>, cradle_ledger::Error> {
        self.scan(CF_STATE, prefix, prefix, limit)
            .map_err(ledger_error)
    }
}

fn ledger_error(e: StorageError) -> cradle_ledger::Error {
    cradle_ledger::Error::Storage(e.to_string())
}

impl StateReader for View<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, cradle_ledger::Error> {
        self.state_get(key)
    }

    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, cradle_ledger::Error> {
        self.state_scan(prefix, limit)
    }
}

/// The stored perfect-subtree hashes of the global access log, or of one patient's log: what
/// [`cradle_ledger::merkle::log::inclusion_proof`] and `consistency_proof` read.
pub struct LogNodes<'a> {
    view: View<'a>,
    patient: Option<PublicKey>,
}

impl<'a> LogNodes<'a> {
    pub(super) fn global(view: View<'a>) -> Self {
        Self {
            view,
            patient: None,
        }
    }

    pub(super) fn patient(view: View<'a>, patient: PublicKey) -> Self {
        Self {
            view,
            patient: Some(patient),
        }
    }
}

impl SubtreeSource for LogNodes<'_> {
    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        let missing = ProofError::MissingSubtree { level, index };
        let Ok(level_byte) = u8::try_from(level) else {
            return Err(missing);
        };
        let (cf, found) = match &self.patient {
            None => (
                CF_LOG_NODES,
                self.view
                    .get(CF_LOG_NODES, &log_node_key(level_byte, index)),
            ),
            Some(p) => (
                CF_PATIENT_LOG_NODES,
                self.view.get(
                    CF_PATIENT_LOG_NODES,
                    &patient_log_node_key(&p.0, level_byte, index),
                ),
            ),
        };
        let bytes = found
            .map_err(|e| ProofError::Source(e.to_string()))?
            .ok_or(missing)?;
        decode_hash(cf, "subtree hash", &bytes).map_err(|e| ProofError::Source(e.to_string()))
    }
}

/// A consistent, read-only view of the store as of one moment: every read through it sees the
/// same committed block, however many commits land meanwhile. Cheap to take; holding one keeps
/// RocksDB from discarding the versions it sees, so drop it when the request is answered.
pub struct StoreSnapshot<'a> {
    pub(super) snapshot: SnapshotWithThreadMode<'a, DB>,
    pub(super) db: &'a DB,
}

impl StoreSnapshot<'_> {
    fn view(&self) -> View<'_> {
        View {
            db: self.db,
            snapshot: Some(&self.snapshot),
        }
    }

    super::read_methods!();
}

impl StateReader for StoreSnapshot<'_> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, cradle_ledger::Error> {
        self.view().state_get(key)
    }

    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, cradle_ledger::Error> {
        self.view().state_scan(prefix, limit)
    }
}
