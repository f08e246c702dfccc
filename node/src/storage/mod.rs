//! Durable storage of blocks, state and the access log (RocksDB).
//!
//! What it owns: one RocksDB database per node, with a column family per kind of record (see
//! [`schema`]): finalized blocks by height and by hash, transaction locations, the ledger's
//! key-value state (sparse Merkle nodes included), every access event by global index with
//! secondary indexes by patient, archive and accessor, the RFC 6962 perfect-subtree hashes of
//! the global access log and of each patient's log (so inclusion and consistency proofs can be
//! served from disk), the chain tip, the consensus core's write-ahead state, and the
//! equivocation evidence the core collected ([`evidence`]: verified, once per offence, bounded).
//!
//! What it promises:
//! - [`Store::commit_block`] writes everything a block changes in one `WriteBatch`, synced to
//!   disk before it returns. After a crash the store holds either the whole block or none of
//!   it, so the tip's header always matches the stored state root and log roots.
//! - It refuses, writing nothing, a block that does not extend the tip (height, parent, chain)
//!   or whose header disagrees with the execution results it is given.
//! - [`Store::save_consensus_state`] is synced before it returns: a vote sent after it cannot
//!   be forgotten by a restart. It names blocks by id and writes each block once ([`wal`]).
//! - Reads never panic on what they find on disk: bad bytes are [`StorageError::Corrupt`].
//!   [`Store::snapshot`] gives reads that all see one committed block.
//! - Memory is bounded whatever the data size: one 48 MiB block cache (index and filter blocks
//!   included) and 32 MiB of memtables, shared by every column family.
//!
//! Any write error is returned; the caller (the consensus driver) treats it as fatal.

mod commit;
mod error;
pub mod evidence;
mod memory;
mod read;
pub mod schema;
mod tree_cache;
mod wal;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use rocksdb::{ColumnFamilyDescriptor, DB, WriteOptions};

use cradle_ledger::state::{Entry, StateReader};

pub use error::StorageError;
pub use evidence::{EVIDENCE_STORED_MAX, EvidencePage, EvidenceStored};
pub use memory::MemoryUsage;
use read::View;
pub use read::{EVENTS_PAGE_MAX, LogNodes, StoreSnapshot};
use schema::*;

/// The node's durable store. `Send + Sync`: share it behind an `Arc`; commits are serialized
/// internally, reads run concurrently with them.
pub struct Store {
    db: DB,
    /// Held across a commit's tip check, its reads of the logs' frontiers and its write, so two
    /// commits cannot both build on one tip.
    commit_lock: Mutex<()>,
    path: PathBuf,
    /// How many pieces of evidence are stored; held across an evidence write's checks.
    evidence_count: Mutex<u64>,
    /// At most this many are kept ([`EVIDENCE_STORED_MAX`]; less in tests).
    evidence_max: u64,
    /// The committed tree's upper levels, for [`Store`]'s own state reads (a snapshot reads
    /// the database as of its moment instead).
    tree_cache: tree_cache::TreeCache,
    /// The blocks the consensus record's saves wrote since the last commit.
    wal_written: Mutex<wal::Written>,
    /// The shared block cache and write buffer manager the database was opened with.
    tuning: Tuning,
}

const _: () = {
    const fn send_sync<T: Send + Sync>() {}
    send_sync::<Store>();
};

/// Read methods shared by [`Store`] (live reads) and [`StoreSnapshot`] (reads as of one
/// moment); each implementation provides `fn view(&self) -> View<'_>`.
macro_rules! read_methods {
    () => {
        /// The last committed block's tip, `None` before the first block.
        pub fn tip(
            &self,
        ) -> Result<Option<cradle_ledger::block::ChainTip>, $crate::storage::StorageError> {
            self.view().tip()
        }

        /// The finalized block at `height`, decoded and checked to be stored where it says.
        pub fn block(
            &self,
            height: u64,
        ) -> Result<Option<cradle_ledger::block::FinalizedBlock>, $crate::storage::StorageError> {
            self.view().block(height)
        }

        /// The finalized block at `height` as stored (its canonical encoding), for serving sync.
        pub fn block_bytes(
            &self,
            height: u64,
        ) -> Result<Option<Vec<u8>>, $crate::storage::StorageError> {
            self.view().block_bytes(height)
        }

        /// The height of the block whose header hashes to `block_hash`.
        pub fn height_of(
            &self,
            block_hash: &cradle_ledger::crypto::Hash,
        ) -> Result<Option<u64>, $crate::storage::StorageError> {
            self.view().height_of(block_hash)
        }

        /// The height of the block holding the transaction and its index in that block.
        pub fn tx_location(
            &self,
            tx_hash: &cradle_ledger::crypto::Hash,
        ) -> Result<Option<(u64, u32)>, $crate::storage::StorageError> {
            self.view().tx_location(tx_hash)
        }

        /// The access event at `global_index` in the global log.
        pub fn event(
            &self,
            global_index: u64,
        ) -> Result<Option<cradle_ledger::access::LoggedEvent>, $crate::storage::StorageError> {
            self.view().event(global_index)
        }

        /// The patient's events with global index `>= from_index`, oldest first, at most
        /// `limit` (and at most [`EVENTS_PAGE_MAX`](crate::storage::EVENTS_PAGE_MAX)).
        pub fn events_for_patient(
            &self,
            patient: &cradle_ledger::crypto::PublicKey,
            from_index: u64,
            limit: usize,
        ) -> Result<Vec<cradle_ledger::access::LoggedEvent>, $crate::storage::StorageError> {
            self.view().events_by(
                $crate::storage::schema::CF_IDX_PATIENT,
                &patient.0,
                from_index,
                limit,
            )
        }

        /// The events on one archive, as [`Self::events_for_patient`].
        pub fn events_for_archive(
            &self,
            archive: &cradle_ledger::crypto::ArchiveId,
            from_index: u64,
            limit: usize,
        ) -> Result<Vec<cradle_ledger::access::LoggedEvent>, $crate::storage::StorageError> {
            self.view().events_by(
                $crate::storage::schema::CF_IDX_ARCHIVE,
                &archive.0,
                from_index,
                limit,
            )
        }

        /// The events one accessor asked for, as [`Self::events_for_patient`].
        pub fn events_for_accessor(
            &self,
            accessor: &cradle_ledger::crypto::PublicKey,
            from_index: u64,
            limit: usize,
        ) -> Result<Vec<cradle_ledger::access::LoggedEvent>, $crate::storage::StorageError> {
            self.view().events_by(
                $crate::storage::schema::CF_IDX_ACCESSOR,
                &accessor.0,
                from_index,
                limit,
            )
        }

        /// The break-glass events, as [`Self::events_for_patient`].
        pub fn events_break_glass(
            &self,
            from_index: u64,
            limit: usize,
        ) -> Result<Vec<cradle_ledger::access::LoggedEvent>, $crate::storage::StorageError> {
            self.view().events_by(
                $crate::storage::schema::CF_IDX_BREAK_GLASS,
                &$crate::storage::schema::BREAK_GLASS_ID,
                from_index,
                limit,
            )
        }

        /// The global access log's stored subtrees, to generate proofs from.
        pub fn global_log(&self) -> $crate::storage::LogNodes<'_> {
            $crate::storage::LogNodes::global(self.view())
        }

        /// One patient's log's stored subtrees, to generate proofs from.
        pub fn patient_log(
            &self,
            patient: &cradle_ledger::crypto::PublicKey,
        ) -> $crate::storage::LogNodes<'_> {
            $crate::storage::LogNodes::patient(self.view(), *patient)
        }
    };
}
use read_methods;

impl Store {
    /// A consistent copy of the whole store at `dir` (which must not exist), made while the
    /// store is in use: RocksDB's checkpoint, hard links to the immutable table files where
    /// `dir` is on the same file system, copies otherwise. It opens as a store of its own.
    pub fn checkpoint(&self, dir: &Path) -> Result<(), StorageError> {
        rocksdb::checkpoint::Checkpoint::new(&self.db)?.create_checkpoint(dir)?;
        Ok(())
    }

    /// Opens the store at `path`, creating the directory, the database and any missing column
    /// family; a new store is stamped with [`SCHEMA_VERSION`], another version is refused.
    pub fn open(path: &Path) -> Result<Self, StorageError> {
        std::fs::create_dir_all(path).map_err(|source| StorageError::CreateDir {
            path: path.to_path_buf(),
            source,
        })?;
        let tuning = Tuning::default();
        let cfs = COLUMN_FAMILIES
            .iter()
            .map(|name| ColumnFamilyDescriptor::new(*name, tuning.cf_options()));
        let db = DB::open_cf_descriptors(&tuning.db_options(), path, cfs)?;
        let evidence_stored = evidence::count(&db)?;
        let store = Self {
            db,
            commit_lock: Mutex::new(()),
            path: path.to_path_buf(),
            evidence_count: Mutex::new(evidence_stored),
            evidence_max: EVIDENCE_STORED_MAX,
            tree_cache: tree_cache::TreeCache::default(),
            wal_written: Mutex::new(wal::Written::default()),
            tuning,
        };
        store.check_schema()?;
        let tip = store.tip()?;
        tracing::info!(
            path = %path.display(),
            tip_height = tip.map(|t| t.height),
            evidence_stored,
            block_cache_bytes = BLOCK_CACHE_BYTES,
            write_buffers_total_bytes = WRITE_BUFFERS_TOTAL_BYTES,
            background_jobs = BACKGROUND_JOBS,
            "storage opened"
        );
        Ok(store)
    }

    /// Writes the schema version into a new store; refuses a store of another version.
    fn check_schema(&self) -> Result<(), StorageError> {
        match self.view().get(CF_META, META_SCHEMA_VERSION)? {
            None => {
                let mut opts = WriteOptions::default();
                opts.set_sync(true);
                let cf = self.view().cf(CF_META)?;
                self.db
                    .put_cf_opt(cf, META_SCHEMA_VERSION, [SCHEMA_VERSION], &opts)?;
                Ok(())
            }
            Some(v) if v.as_slice() == [SCHEMA_VERSION] => Ok(()),
            Some(v) => Err(StorageError::SchemaVersion {
                found: v.first().copied().unwrap_or(0),
                want: SCHEMA_VERSION,
            }),
        }
    }

    /// Where the database lives.
    pub fn path(&self) -> &Path {
        &self.path
    }

    fn view(&self) -> View<'_> {
        View {
            db: &self.db,
            snapshot: None,
        }
    }

    read_methods!();

    /// A consistent read-only view as of now.
    pub fn snapshot(&self) -> StoreSnapshot<'_> {
        StoreSnapshot {
            snapshot: self.db.snapshot(),
            db: &self.db,
        }
    }
}

impl StateReader for Store {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, cradle_ledger::Error> {
        if tree_cache::cached(key) {
            return self.tree_cache.get(key, || self.view().state_get(key));
        }
        self.view().state_get(key)
    }

    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, cradle_ledger::Error> {
        self.view().state_scan(prefix, limit)
    }
}
