//! `cradle-genesis`: the consortium's founding document, its members' keys and each node's
//! home.
//!
//! - [`doc`]: the genesis document ([`GenesisDoc`]), its chain id and its validation;
//! - [`keyfile`]: key files (mode 0600) and the public identity files shared beside them;
//! - [`config`]: a node's own parameters ([`NodeConfig`], `config.toml`);
//! - [`home`]: a node's home directory, loaded and cross-checked ([`Home`]);
//! - [`localnet`]: a whole loopback consortium in one step;
//! - [`addr`]: the p2p and API address forms genesis accepts;
//! - [`clock`]: the wall clock, for every crate that may read it.
//!
//! The library logs with `tracing` and never prints; secrets are never logged.

pub mod addr;
pub mod clock;
pub mod config;
pub mod doc;
pub mod durable;
pub mod error;
pub mod fsutil;
pub mod home;
pub mod join;
pub mod keyfile;
pub mod localnet;
pub mod ratecfg;
pub mod tlscert;

#[cfg(test)]
mod doc_tests;

pub use config::NodeConfig;
pub use doc::{ConsensusParams, GenesisDoc, GenesisMember};
pub use error::{GenesisError, GenesisErrors};
pub use home::{CONFIG_FILE, DATA_DIR, GENESIS_FILE, Home, KEY_FILE};
pub use keyfile::{
    PublicIdentity, public_file_path, read_key_file, read_public_identity, write_key_file,
    write_public_file,
};
pub use localnet::{Localnet, LocalnetOptions, write_localnet};
