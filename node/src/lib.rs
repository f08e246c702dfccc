//! `cradle-node`: the daemon each member institution runs.
//!
//! It drives the consensus core over libp2p among the genesis members only, executes decided
//! blocks with the ledger's rules, stores them durably in RocksDB, and serves the client API.

pub mod network;
pub mod storage;
