//! The signed-request header every API call carries (`x-cradle-signature`, hex):
//! `SignedApiRequest::from_header`, then `check` against the very node, method, path, body hash
//! and time the request names, where only its signature can still be wrong.
#![no_main]

use cradle_fuzz::consortium;
use cradle_ledger::api_request::{ApiAuthError, SignedApiRequest};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(value) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(signed) = SignedApiRequest::from_header(value) else {
        return;
    };
    // Hex of the canonical encoding, upper or lower case.
    assert!(signed.to_header().eq_ignore_ascii_case(value));
    match SignedApiRequest::from_header(&signed.to_header()) {
        Ok(again) => assert_eq!(again, signed),
        Err(e) => panic!("the header it writes does not parse: {e}"),
    }
    let c = consortium();
    let r = &signed.request;
    let result = signed.check(
        &c.chain_id,
        &r.node,
        r.method.as_str(),
        r.path.as_str(),
        &r.body_sha256,
        r.time_ms,
        0,
    );
    assert!(
        matches!(result, Ok(()) | Err(ApiAuthError::BadSignature)),
        "a request checked against its own fields failed for {result:?}"
    );
    // Any other node, path or time is refused before the signature is looked at.
    let mut other = r.node;
    other.0[0] ^= 1;
    assert_eq!(
        signed.check(
            &c.chain_id,
            &other,
            r.method.as_str(),
            r.path.as_str(),
            &r.body_sha256,
            r.time_ms,
            0
        ),
        Err(ApiAuthError::WrongNode)
    );
    assert!(matches!(
        signed.check(
            &c.chain_id,
            &r.node,
            r.method.as_str(),
            r.path.as_str(),
            &r.body_sha256,
            r.time_ms.wrapping_add(2),
            1
        ),
        Err(ApiAuthError::Stale { .. })
    ));
});
