//! The on-disk layout: column families, key and value encodings, and RocksDB tuning.
//!
//! Every integer in a key is big-endian, so RocksDB's byte order is numeric order and a prefix
//! scan over `id || index` returns one identity's entries oldest first. Fixed-size values are
//! decoded by length-checking helpers that report a wrong size as corruption.

use rocksdb::{
    BlockBasedIndexType, BlockBasedOptions, Cache, DBCompressionType, Options, WriteBufferManager,
};

use cradle_ledger::codec::BLOCK_BYTES_HARD_MAX;
use cradle_ledger::crypto::Hash;

use super::StorageError;

/// The tip, the chain id and the schema version.
pub const CF_META: &str = "meta";
/// Height → the encoded [`cradle_ledger::block::FinalizedBlock`].
pub const CF_BLOCKS: &str = "blocks";
/// Block (header) hash → height.
pub const CF_BLOCK_HASHES: &str = "block_hashes";
/// Transaction hash → height || index in the block.
pub const CF_TXS: &str = "txs";
/// The ledger's key-value state, sparse Merkle tree nodes included, exactly as the rules wrote it.
pub const CF_STATE: &str = "state";
/// Global index → the encoded [`cradle_ledger::access::LoggedEvent`].
pub const CF_EVENTS: &str = "events";
/// Level || index → the global access log's perfect-subtree hash.
pub const CF_LOG_NODES: &str = "log_nodes";
/// Patient || level || index → the patient's log's perfect-subtree hash.
pub const CF_PATIENT_LOG_NODES: &str = "patient_log_nodes";
/// Patient || global index → nothing.
pub const CF_IDX_PATIENT: &str = "idx_patient";
/// Archive || global index → nothing.
pub const CF_IDX_ARCHIVE: &str = "idx_archive";
/// Accessor || global index → nothing.
pub const CF_IDX_ACCESSOR: &str = "idx_accessor";
/// The consensus core's write-ahead record, one value.
pub const CF_CONSENSUS: &str = "consensus";
/// Block id → the encoded block, for each block the write-ahead record names.
pub const CF_WAL_BLOCKS: &str = "consensus_blocks";
/// Break-glass events: [`BREAK_GLASS_ID`] ‖ global index → ().
pub const CF_IDX_BREAK_GLASS: &str = "idx_break_glass";
/// Equivocation evidence: `EvidenceSlot::key` (height ‖ round ‖ step ‖ validator) → the encoded
/// [`cradle_consensus::Equivocation`]. Not part of any block: what this node's core saw.
pub const CF_EVIDENCE: &str = "evidence";
/// The one id the break-glass index is kept under.
pub const BREAK_GLASS_ID: [u8; 32] = [0; 32];

/// Every column family the store opens (RocksDB's `default` is opened too, and left empty).
/// A column family added later is created when an older store is opened
/// (`create_missing_column_families`), so existing data directories keep working.
pub const COLUMN_FAMILIES: [&str; 15] = [
    CF_META,
    CF_BLOCKS,
    CF_BLOCK_HASHES,
    CF_TXS,
    CF_STATE,
    CF_EVENTS,
    CF_LOG_NODES,
    CF_PATIENT_LOG_NODES,
    CF_IDX_PATIENT,
    CF_IDX_ARCHIVE,
    CF_IDX_ACCESSOR,
    CF_CONSENSUS,
    CF_IDX_BREAK_GLASS,
    CF_EVIDENCE,
    CF_WAL_BLOCKS,
];

/// `meta` key of the last committed block's [`cradle_ledger::block::ChainTip`].
pub const META_TIP: &[u8] = b"tip";
/// `meta` key of the chain id, fixed by the first block.
pub const META_CHAIN_ID: &[u8] = b"chain_id";
/// `meta` key of the layout version, written when the store is created.
pub const META_SCHEMA_VERSION: &[u8] = b"schema_version";
/// The layout this build writes and reads. 2: the consensus record names blocks by id.
pub const SCHEMA_VERSION: u8 = 2;
/// `consensus` key of the one saved consensus state.
pub const CONSENSUS_STATE: &[u8] = b"state";

/// Largest stored finalized block: the hard block bound plus room for its certificate.
pub const BLOCK_VALUE_BYTES_MAX: usize = BLOCK_BYTES_HARD_MAX as usize + 8 * 1024 * 1024;
/// Largest stored access event (a few hundred bytes in practice).
pub const EVENT_VALUE_BYTES_MAX: usize = 4096;
/// Largest stored piece of evidence (two signed headers or votes: about 260 bytes).
pub const EVIDENCE_VALUE_BYTES_MAX: usize = 1024;
/// Largest stored chain tip.
pub const TIP_VALUE_BYTES_MAX: usize = 256;

/// Bytes of the shared block cache (data, index and filter blocks of every column family).
pub const BLOCK_CACHE_BYTES: usize = 48 * 1024 * 1024;
/// Bytes of one partition of a table's index or filter.
pub const METADATA_BLOCK_BYTES: usize = 4096;
/// Bytes all memtables together may hold before RocksDB flushes the largest.
pub const WRITE_BUFFERS_TOTAL_BYTES: usize = 32 * 1024 * 1024;
/// Bytes of one column family's memtable.
pub const WRITE_BUFFER_BYTES: usize = 8 * 1024 * 1024;
/// Bytes of write-ahead log kept before the column families holding it back are flushed.
pub const WAL_TOTAL_BYTES_MAX: u64 = 64 * 1024 * 1024;
/// Background flush and compaction threads: the machine has two cores and runs several nodes.
pub const BACKGROUND_JOBS: i32 = 2;
/// Table files kept open (each open file pins its table reader).
pub const OPEN_FILES_MAX: i32 = 256;

/// Options shared by the database and its column families. Caches and the write buffer
/// manager are shared, so the bounds above hold for the whole store, not per column family.
pub struct Tuning {
    cache: Cache,
    write_buffers: WriteBufferManager,
}

impl Default for Tuning {
    fn default() -> Self {
        let cache = Cache::new_lru_cache(BLOCK_CACHE_BYTES);
        let write_buffers =
            WriteBufferManager::new_write_buffer_manager(WRITE_BUFFERS_TOTAL_BYTES, false);
        Self {
            cache,
            write_buffers,
        }
    }
}

impl Tuning {
    pub(super) fn cache(&self) -> &Cache {
        &self.cache
    }

    pub fn db_options(&self) -> Options {
        let mut opts = self.cf_options();
        opts.create_if_missing(true);
        opts.create_missing_column_families(true);
        opts.set_max_background_jobs(BACKGROUND_JOBS);
        opts.set_max_open_files(OPEN_FILES_MAX);
        opts.set_write_buffer_manager(&self.write_buffers);
        // Rarely written column families (consensus, meta) would otherwise pin old WAL files.
        opts.set_max_total_wal_size(WAL_TOTAL_BYTES_MAX);
        opts.set_bytes_per_sync(1024 * 1024);
        opts.set_keep_log_file_num(3);
        opts.set_max_log_file_size(4 * 1024 * 1024);
        opts
    }

    pub fn cf_options(&self) -> Options {
        let mut table = BlockBasedOptions::default();
        table.set_block_cache(&self.cache);
        // Index and filter blocks live in the block cache, so the store's memory stays within
        // its bounds whatever the data size (kept with each table reader they grew with every
        // key stored). Partitioned, a miss reads one small partition rather than a table's
        // whole filter (whole filters evicted by large block values and re-read on every state
        // read cost a fifth of a node's time in an earlier profile); the top-level index of
        // each table and level 0's blocks stay pinned, and all of them go in the cache's
        // high-priority pool, evicted after data blocks.
        table.set_cache_index_and_filter_blocks(true);
        table.set_cache_index_and_filter_blocks_with_high_priority(true);
        table.set_index_type(BlockBasedIndexType::TwoLevelIndexSearch);
        table.set_partition_filters(true);
        table.set_metadata_block_size(METADATA_BLOCK_BYTES);
        table.set_pin_top_level_index_and_filter(true);
        table.set_pin_l0_filter_and_index_blocks_in_cache(true);
        table.set_bloom_filter(10.0, false);
        let mut opts = Options::default();
        opts.set_block_based_table_factory(&table);
        opts.set_compression_type(DBCompressionType::None);
        opts.set_bottommost_compression_type(DBCompressionType::None);
        opts.set_write_buffer_size(WRITE_BUFFER_BYTES);
        opts.set_max_write_buffer_number(2);
        opts
    }
}

pub fn height_key(height: u64) -> [u8; 8] {
    height.to_be_bytes()
}

/// `id || index`: a secondary index entry, or the event key when `id` is empty.
pub fn index_key(id: &[u8; 32], global_index: u64) -> [u8; 40] {
    let mut k = [0u8; 40];
    k[..32].copy_from_slice(id);
    k[32..].copy_from_slice(&global_index.to_be_bytes());
    k
}

/// `level || index` in `log_nodes`. Levels of a tree of at most `u64::MAX` leaves fit a byte.
pub fn log_node_key(level: u8, index: u64) -> [u8; 9] {
    let mut k = [0u8; 9];
    k[0] = level;
    k[1..].copy_from_slice(&index.to_be_bytes());
    k
}

/// `patient || level || index` in `patient_log_nodes`.
pub fn patient_log_node_key(patient: &[u8; 32], level: u8, index: u64) -> [u8; 41] {
    let mut k = [0u8; 41];
    k[..32].copy_from_slice(patient);
    k[32..].copy_from_slice(&log_node_key(level, index));
    k
}

/// `height || index` in `txs`.
pub fn tx_location_value(height: u64, index: u32) -> [u8; 12] {
    let mut v = [0u8; 12];
    v[..8].copy_from_slice(&height.to_be_bytes());
    v[8..].copy_from_slice(&index.to_be_bytes());
    v
}

/// The smallest key greater than every key that starts with `prefix`, if there is one.
pub fn prefix_successor(prefix: &[u8]) -> Option<Vec<u8>> {
    let mut next = prefix.to_vec();
    while let Some(last) = next.pop() {
        if last < u8::MAX {
            next.push(last + 1);
            return Some(next);
        }
    }
    None
}

fn fixed<const N: usize>(
    cf: &'static str,
    what: &'static str,
    bytes: &[u8],
) -> Result<[u8; N], StorageError> {
    bytes.try_into().map_err(|_| StorageError::Corrupt {
        cf,
        what,
        detail: format!("{} bytes, want {N}", bytes.len()),
    })
}

pub fn decode_u64(cf: &'static str, what: &'static str, bytes: &[u8]) -> Result<u64, StorageError> {
    fixed::<8>(cf, what, bytes).map(u64::from_be_bytes)
}

pub fn decode_hash(
    cf: &'static str,
    what: &'static str,
    bytes: &[u8],
) -> Result<Hash, StorageError> {
    fixed::<32>(cf, what, bytes)
}

pub fn decode_tx_location(bytes: &[u8]) -> Result<(u64, u32), StorageError> {
    let v = fixed::<12>(CF_TXS, "transaction location", bytes)?;
    let (h, i) = v.split_at(8);
    let height = decode_u64(CF_TXS, "transaction location", h)?;
    let index = fixed::<4>(CF_TXS, "transaction location", i).map(u32::from_be_bytes)?;
    Ok((height, index))
}

/// The global index at the end of a secondary index key (`id || index`, 40 bytes).
pub fn index_key_global(cf: &'static str, key: &[u8]) -> Result<u64, StorageError> {
    let key = fixed::<40>(cf, "index key", key)?;
    decode_u64(cf, "index key", &key[32..])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn storage_keys_sort_numerically() {
        let id = [7u8; 32];
        let mut keys: Vec<_> = [300u64, 2, 1 << 40, 0, 255]
            .iter()
            .map(|i| index_key(&id, *i))
            .collect();
        keys.sort();
        let order: Vec<u64> = keys
            .iter()
            .map(|k| index_key_global(CF_IDX_PATIENT, k).unwrap())
            .collect();
        assert_eq!(order, vec![0, 2, 255, 300, 1 << 40]);
        assert!(log_node_key(0, u64::MAX) < log_node_key(1, 0));
    }

    #[test]
    fn storage_prefix_successor_bounds_the_prefix() {
        assert_eq!(prefix_successor(b"ab"), Some(b"ac".to_vec()));
        assert_eq!(prefix_successor(&[1, 0xff, 0xff]), Some(vec![2]));
        assert_eq!(prefix_successor(&[0xff, 0xff]), None);
        assert_eq!(prefix_successor(&[]), None);
    }

    #[test]
    fn storage_fixed_values_refuse_wrong_sizes() {
        assert_eq!(
            decode_tx_location(&tx_location_value(9, 3)).unwrap(),
            (9, 3)
        );
        assert!(matches!(
            decode_tx_location(&[0; 11]),
            Err(StorageError::Corrupt { .. })
        ));
        assert!(decode_u64(CF_BLOCK_HASHES, "height", &[1, 2]).is_err());
        assert!(index_key_global(CF_IDX_ARCHIVE, &[0; 39]).is_err());
    }
}
