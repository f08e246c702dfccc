//! A fetch sent straight to a custodian's node, its access request and header signed by hand:
//! what a client that skips every check of its own would send, and the answer as it comes.

use std::path::Path;

use cradle_client::api::Fetched;
use cradle_ledger::access::{AccessRequest, SignedAccessRequest};
use cradle_ledger::crypto::{TAG_ACCESS_REQUEST, sha256};
use cradle_ledger::tx::Purpose;

use crate::Cluster;

/// `key`'s signed request for `archive` (hex) with `purpose`, sent to member `i`'s node.
///
/// # Panics
/// If the key file, the archive id or the connection fails: test setup, not the answer.
pub fn signed_fetch(c: &Cluster, i: usize, key: &Path, archive: &str, purpose: Purpose) -> Fetched {
    let who = cradle_genesis::keyfile::read_key_file(key).expect("the key file");
    let chain = c.genesis.chain_id();
    let archive = cradle_ledger::ArchiveId::from_hex(archive).expect("an archive id");
    let mut request_id = [0u8; 16];
    getrandom::fill(&mut request_id).expect("random request id");
    let request = AccessRequest {
        accessor: who.public_key(),
        archive,
        purpose,
        justification: None,
        requested_at_ms: cradle_genesis::clock::now_ms(),
        request_id,
    };
    let signature = who.sign(TAG_ACCESS_REQUEST, &chain, &request);
    let body = SignedAccessRequest { request, signature }.encode();
    let path = format!("/v1/archives/{}/fetch", archive.to_hex());
    let api = c.anonymous(i);
    let auth = api
        .auth_with(&who, &chain, "POST", &path, sha256(&body))
        .expect("signing the request");
    api.fetch(&path, &auth, "x-cradle-auth", &body)
        .expect("reaching the node")
}

/// The mother's own fetch of `archive` from member `i`: the ciphertext as it arrives.
///
/// # Panics
/// If the node refuses it.
pub fn download(c: &Cluster, i: usize, key: &Path, archive: &str) -> Box<dyn std::io::Read + Send> {
    match signed_fetch(c, i, key, archive, Purpose::PatientRequest) {
        Fetched::Stream(s) => s.body,
        Fetched::Refused { status, reason, .. } => {
            panic!("the mother's fetch was refused: {status} {reason}")
        }
    }
}
