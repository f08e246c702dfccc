//! Black-box tests that start real Cradle processes and talk to them as a user would.
//!
//! [`Cluster`] writes a loopback consortium with `cradle-genesis localnet`, starts one
//! `cradle-node` process per member from the built release binaries, and talks to them over
//! their HTTPS APIs, pinned from the genesis file as the client pins them. Processes are killed when the cluster is dropped.

pub mod chain_gen;
pub mod chaos;
pub mod cli;
pub mod cluster;
pub mod disk;
pub mod fetch;
pub mod netns;
pub mod promise;
pub mod stats;
pub mod tls;
pub mod txs;

pub use cluster::Cluster;
