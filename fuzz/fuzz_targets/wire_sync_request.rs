//! A peer's request for blocks: `SyncRequest::decode`, the only bytes the sync responder reads.
#![no_main]

use cradle_fuzz::assert_canonical;
use cradle_node::wire::SyncRequest;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(req) = SyncRequest::decode(data) else {
        return;
    };
    assert_canonical(data, &req, SyncRequest::decode);
    assert_eq!(req.encode(), data);
});
