//! `cradle-client`: the API client and the `cradle` command-line tool (archive encryption, key
//! wrapping and proof verification join it with the archive and audit work), and the FHIR R4
//! export of the access log and consents.

pub mod api;
pub mod fhir;
