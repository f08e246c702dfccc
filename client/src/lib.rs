//! `cradle-client`: the API client, archive encryption and the `cradle` command-line tool (key
//! wrapping lives in `cradle_ledger::keywrap`; proof verification joins with the audit work).
//!
//! - [`api`]: a blocking client for a node's HTTP/JSON API;
//! - [`seal`]: streaming, chunked AES-256-GCM encryption of archive files.

pub mod api;
pub mod seal;
