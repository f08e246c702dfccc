//! The parts of a request the router parses before a handler runs: the query strings of the
//! audit and transaction routes (axum's `Query`, serde_urlencoded, into the handlers' own
//! structs, then `RangeQuery::range`) and the hex path segments (`http::hex32`).
#![no_main]

use cradle_node::http::audit::{ConsistencyQuery, EvidenceQuery, RangeQuery};
use cradle_node::http::hex32;
use cradle_node::http::txs::SubmitQuery;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(q) = serde_urlencoded::from_bytes::<RangeQuery>(data)
        && let Ok(Some((from, to))) = q.range()
    {
        assert!(from <= to, "a range query ends before it starts");
    }
    let _ = serde_urlencoded::from_bytes::<ConsistencyQuery>(data);
    let _ = serde_urlencoded::from_bytes::<EvidenceQuery>(data);
    let _ = serde_urlencoded::from_bytes::<SubmitQuery>(data);
    if let Ok(segment) = std::str::from_utf8(data)
        && let Ok(bytes) = hex32(segment, "archive id")
    {
        assert!(hex::encode(bytes).eq_ignore_ascii_case(segment));
    }
});
