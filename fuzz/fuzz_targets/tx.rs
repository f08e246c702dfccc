//! A client's transaction (`POST /v1/txs`) or one from a peer: the node's `verify_one` (bounded
//! decode under genesis `tx_bytes_max`, chain id, signature) and the batched path `verify_many`
//! must agree, and an accepted transaction re-encodes to its own bytes.
#![no_main]

use cradle_fuzz::{assert_canonical, consortium};
use cradle_ledger::tx::SignedTransaction;
use cradle_node::verify::{verify_many, verify_one};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let c = consortium();
    let max = c.limits.tx_bytes_max as usize;
    if let Ok(tx) = SignedTransaction::decode(data, max) {
        assert_canonical(data, &tx, |b| SignedTransaction::decode(b, max));
        let _ = tx.tx.body.kind();
    }
    let one = verify_one(data.to_vec(), &c.chain_id, max);
    let many = verify_many(vec![data.to_vec()], &c.chain_id, max);
    assert_eq!(many.len(), 1);
    assert_eq!(
        one.is_ok(),
        many[0].is_ok(),
        "single and batched checks disagree: {:?} vs {:?}",
        one.as_ref().err(),
        many[0].as_ref().err()
    );
    if let Ok(v) = one {
        assert_eq!(v.encoded, data);
        assert_eq!(v.hash, cradle_ledger::crypto::sha256(data));
        assert_eq!(v.tx.tx.chain_id, c.chain_id);
    }
});
