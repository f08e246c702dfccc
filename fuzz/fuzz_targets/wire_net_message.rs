//! A consensus or gossip message from a peer: `NetMessage::decode`, then the checks the driver
//! runs before anything reaches consensus or the mempool.
#![no_main]

use cradle_fuzz::{assert_canonical, consortium};
use cradle_node::wire::NetMessage;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(msg) = NetMessage::decode(data) else {
        return;
    };
    assert_canonical(data, &msg, NetMessage::decode);
    let c = consortium();
    match &msg {
        NetMessage::Proposal(p) => {
            let _ = p.verify(&c.chain_id, c.validators());
            let _ = cradle_ledger::block::check_block(
                c,
                &cradle_ledger::block::ChainTip::genesis(c),
                &p.value,
            );
        }
        NetMessage::Vote(v) => {
            let _ = v.verify(&c.chain_id, c.validators());
        }
        NetMessage::Txs(batch) => {
            let encoded: Vec<Vec<u8>> = batch.iter().cloned().collect();
            let verified = cradle_node::verify::verify_many(
                encoded.clone(),
                &c.chain_id,
                c.limits.tx_bytes_max as usize,
            );
            assert_eq!(verified.len(), encoded.len(), "one answer per transaction");
            for (answer, bytes) in verified.iter().zip(&encoded) {
                if let Ok(v) = answer {
                    assert_eq!(&v.encoded, bytes);
                    assert_eq!(v.hash, cradle_ledger::crypto::sha256(bytes));
                }
            }
        }
        NetMessage::Status { .. } => {}
    }
});
