//! A sparse Merkle proof (`SmtProof`, inside audit and record answers): bounded decode, then
//! `verify` for presence and for absence against a root, key and value from the input. No proof
//! may show a key both present and absent under one root.
#![no_main]

use cradle_fuzz::assert_canonical;
use cradle_ledger::codec;
use cradle_ledger::merkle::smt::SmtProof;
use libfuzzer_sys::fuzz_target;

/// A proof's largest encoding: depth, bitmap, 256 siblings, a leaf, the version byte.
const PROOF_BYTES_MAX: usize = 1 + 2 + 32 + 4 + 256 * 32 + 1 + 64;

fuzz_target!(|data: &[u8]| {
    if data.len() < 96 {
        return;
    }
    let (head, proof_bytes) = data.split_at(96);
    let mut root = [0u8; 32];
    let mut key = [0u8; 32];
    let mut value = [0u8; 32];
    root.copy_from_slice(&head[..32]);
    key.copy_from_slice(&head[32..64]);
    value.copy_from_slice(&head[64..96]);
    let decode = |b: &[u8]| codec::decode::<SmtProof>(b, PROOF_BYTES_MAX);
    let Ok(proof) = decode(proof_bytes) else {
        return;
    };
    assert_canonical(proof_bytes, &proof, decode);
    let present = proof.verify(&root, &key, Some(&value)).is_ok();
    let absent = proof.verify(&root, &key, None).is_ok();
    assert!(
        !(present && absent),
        "one proof shows the key present and absent"
    );
    // The serde form (JSON) goes through the same validation.
    let json = match serde_json::to_string(&proof) {
        Ok(json) => json,
        Err(e) => panic!("a decoded proof does not serialise: {e}"),
    };
    match serde_json::from_str::<SmtProof>(&json) {
        Ok(back) => assert_eq!(back, proof),
        Err(e) => panic!("a decoded proof does not come back from JSON: {e}"),
    }
});
