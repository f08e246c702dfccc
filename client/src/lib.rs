//! `cradle-client`: archive encryption and key wrapping, the API client, proof verification and
//! the `cradle` command-line tool. Filled by the archives and audit work.
