//! The body of `POST /v1/archives/{id}/fetch`: `SignedAccessRequest::decode` (which the handler
//! runs to classify an emergency and the custodian runs again), its signature check, and the
//! justification context a break-glass request is sealed under.
#![no_main]

use cradle_fuzz::{assert_canonical, consortium};
use cradle_ledger::access::{ACCESS_REQUEST_BYTES_MAX, SignedAccessRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = SignedAccessRequest::decode(data) else {
        return;
    };
    assert!(data.len() <= ACCESS_REQUEST_BYTES_MAX);
    assert_canonical(data, &req, SignedAccessRequest::decode);
    assert_eq!(req.encode(), data);
    let c = consortium();
    let _ = req.verify(&c.chain_id);
    let _ = req.request.justification_context(&c.chain_id);
});
