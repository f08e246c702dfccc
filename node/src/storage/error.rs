//! The storage module's one error type.

use cradle_ledger::crypto::Digest32;

/// Why a storage operation failed. A failed write leaves the store as it was and is fatal to the
/// caller: the driver stops the node rather than run on a store it cannot trust.
#[derive(Debug, thiserror::Error)]
pub enum StorageError {
    #[error("rocksdb: {0}")]
    Db(#[from] rocksdb::Error),
    #[error("creating the store directory {path}: {source}")]
    CreateDir {
        path: std::path::PathBuf,
        source: std::io::Error,
    },
    #[error("column family {0} is missing")]
    MissingColumnFamily(&'static str),
    #[error("store schema version {found} is not {want}")]
    SchemaVersion { found: u8, want: u8 },
    #[error("corrupt {what} in {cf}: {detail}")]
    Corrupt {
        cf: &'static str,
        what: &'static str,
        detail: String,
    },
    #[error("block at height {got} does not follow the tip at height {tip}")]
    WrongHeight { got: u64, tip: u64 },
    #[error("block at height {height} builds on {got}, not on the tip {want}")]
    WrongParent {
        height: u64,
        got: Digest32,
        want: Digest32,
    },
    #[error("block is for chain {got}, the store holds chain {want}")]
    WrongChain { got: Digest32, want: Digest32 },
    #[error("block at height {height} disagrees with its execution or certificate: {what}")]
    Mismatch { height: u64, what: &'static str },
    #[error("ledger state: {0}")]
    Ledger(#[from] cradle_ledger::Error),
}
