//! `cradle-node`: the daemon each member institution runs.
//!
//! It drives the consensus core over libp2p among the members in force only, executes decided
//! blocks with the ledger's rules, stores them durably in RocksDB, and serves the client API.
//!
//! - [`network`]: libp2p among the members in force; [`wire`]: what nodes say to each other;
//! - [`members`]: the member set in force at each height, as governance changes it;
//! - [`driver`]: the consensus driver (timers, write-ahead vote record, commit, catch-up);
//! - [`mempool`] and [`verify`]: admitting transactions, each verified once;
//! - [`submit`]: the one way into the mempool, with commit receipts from the driver;
//! - [`storage`]: RocksDB; [`metrics`]: Prometheus text;
//! - [`custodian`]: the encrypted archive store, uploads, and the log-before-release fetch;
//! - [`audit`]: audit answers with the proofs a client checks from genesis, and who may read them;
//! - [`http`]: the HTTP/JSON layer over all of the above, which nothing else imports.
//!
//! Dependencies point one way: `http` → `custodian`, `audit`, `submit` → `driver`, `storage`,
//! `mempool` → `wire`.

pub mod audit;
pub mod custodian;
pub mod daemon;
pub mod directory;
pub mod driver;
pub mod http;
pub mod members;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod ops;
pub mod storage;
pub mod submit;
pub mod verify;
pub mod wire;
