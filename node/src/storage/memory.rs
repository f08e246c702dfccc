//! What the store holds in memory, for `/metrics` and the soak: the bounds in [`super::schema`]
//! are only worth something if an operator can see them hold.

use super::schema::COLUMN_FAMILIES;
use super::{StorageError, Store};

/// Bytes (and entries) of the store's in-memory structures.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct MemoryUsage {
    /// The shared block cache: data blocks, and index and filter partitions.
    pub block_cache_bytes: u64,
    /// Of those, the blocks pinned by open table readers (top-level indexes, level-0 files).
    pub block_cache_pinned_bytes: u64,
    /// Memory the open table readers hold outside the block cache.
    pub table_readers_bytes: u64,
    /// Every column family's memtables (bounded by the shared write buffer manager).
    pub memtables_bytes: u64,
    /// Positions held by the cache of the sparse Merkle tree's upper levels.
    pub tree_cache_nodes: u64,
    /// Table files of every column family.
    pub sst_files: u64,
}

impl Store {
    /// The store's memory now, summed over its column families.
    pub fn memory_usage(&self) -> Result<MemoryUsage, StorageError> {
        let cache = self.tuning.cache();
        let mut usage = MemoryUsage {
            block_cache_bytes: cache.get_usage() as u64,
            block_cache_pinned_bytes: cache.get_pinned_usage() as u64,
            tree_cache_nodes: self.tree_cache.len() as u64,
            ..MemoryUsage::default()
        };
        let view = self.view();
        for name in COLUMN_FAMILIES {
            let cf = view.cf(name)?;
            let int = |property| -> Result<u64, StorageError> {
                Ok(self.db.property_int_value_cf(cf, property)?.unwrap_or(0))
            };
            usage.table_readers_bytes = usage
                .table_readers_bytes
                .saturating_add(int(rocksdb::properties::ESTIMATE_TABLE_READERS_MEM)?);
            usage.memtables_bytes = usage
                .memtables_bytes
                .saturating_add(int(rocksdb::properties::CUR_SIZE_ALL_MEM_TABLES)?);
        }
        usage.sst_files = self.db.live_files()?.len() as u64;
        Ok(usage)
    }
}
