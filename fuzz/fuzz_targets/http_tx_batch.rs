//! The body of `POST /v1/txs/batch`: the handler's `decode_batch`, then the submitter's
//! `verify_many`, one answer per transaction in order.
#![no_main]

use cradle_fuzz::{assert_canonical, consortium};
use cradle_ledger::contract::{TX_BATCH_BYTES_MAX, TxBatch};
use cradle_node::http::txs::decode_batch;
use cradle_node::verify::verify_many;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(batch) = decode_batch(data) else {
        return;
    };
    assert_canonical(data, &batch, |b| {
        cradle_ledger::codec::decode::<TxBatch>(b, TX_BATCH_BYTES_MAX)
    });
    let c = consortium();
    let txs = batch.into_inner();
    let answers = verify_many(txs.clone(), &c.chain_id, c.limits.tx_bytes_max as usize);
    assert_eq!(answers.len(), txs.len(), "one answer per transaction");
    for (answer, bytes) in answers.iter().zip(&txs) {
        if let Ok(v) = answer {
            assert_eq!(&v.encoded, bytes);
            assert!(v.tx.verify(&c.chain_id).is_ok());
        }
    }
});
