//! `cradle-node`: the daemon each member institution runs.
//!
//! It drives the consensus core over libp2p among the genesis members only, executes decided
//! blocks with the ledger's rules, stores them durably in RocksDB, and serves the client API.
//!
//! - [`network`]: libp2p among genesis members; [`wire`]: what nodes say to each other;
//! - [`driver`]: the consensus driver (timers, write-ahead vote record, commit, catch-up);
//! - [`mempool`] and [`verify`]: admitting transactions, each verified once;
//! - [`storage`]: RocksDB; [`api`]: HTTP/JSON; [`metrics`]: Prometheus text;
//! - [`archives`]: the custodian's encrypted archive store and the log-before-release fetch;
//! - [`audit`]: audit answers with the proofs a client checks from genesis.

pub mod api;
pub mod archives;
pub mod audit;
pub mod clock;
pub mod driver;
pub mod mempool;
pub mod metrics;
pub mod network;
pub mod storage;
pub mod verify;
pub mod wire;
