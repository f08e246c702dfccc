//! `cradle-client`: the API client and the `cradle` command-line tool (archive encryption, key
//! wrapping and proof verification join it with the archive and audit work).
//!
//! - [`api`]: a blocking client for a node's HTTP API;
//! - [`audit`]: audit answers verified from the genesis document, with a local checkpoint.

pub mod api;
pub mod audit;
