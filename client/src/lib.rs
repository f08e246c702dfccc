//! `cradle-client`: everything a member, patient or regulator runs on their own machine.
//!
//! - [`seal`]: archive encryption, streaming AES-256-GCM chunks bound to the archive;
//! - [`session`]: enrol, put, get, grant, revoke and list through a node, with the archive
//!   keys made, wrapped and unwrapped here;
//! - [`audit`]: light verification of audit answers from genesis, with a remembered checkpoint;
//! - [`evidence`]: equivocation evidence for regulators, each item checked from genesis;
//! - [`fhir`]: FHIR R4 exports of the access log (AuditEvent) and of consents (Consent);
//! - [`api`]: the blocking HTTPS client for a node's API, over [`tls`]: TLS 1.3 pinned to the
//!   members' keys, no certificate authority;
//! - [`trust`]: which keys those are now: the member sets from genesis on, kept between runs,
//!   never a node's word about them (a key a vote rotated out is refused).

pub mod api;
pub mod audit;
pub mod evidence;
pub mod fhir;
pub mod seal;
pub mod session;
pub mod tls;
pub mod trust;
