//! `cradle-client`: the API client and the `cradle` command-line tool (archive encryption, key
//! wrapping and proof verification join it with the archive and audit work).

pub mod api;
