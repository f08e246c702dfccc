//! `cradle-client`: the API client, archive encryption, the FHIR R4 export and the `cradle`
//! command-line tool.

pub mod api;
pub mod fhir;
pub mod seal;
