//! The regulator page's vectors (`node/portal/test/vectors/review.json`), made by the Rust
//! implementation: the review transactions a regulator's page builds and signs (both
//! decisions), byte for byte as the ledger encodes, signs and hashes them, one it must refuse
//! (an unknown decision code), and the access events a review logs, with their leaf hashes, so
//! the page reads reviews in a history exactly as the ledger wrote them.
//! `node --test node/portal/test/review.test.mjs` reads the same file.
//!
//! By default this test checks that the file in the repository holds what it builds (the
//! `source` field aside); with `CRADLE_WRITE_PORTAL_VECTORS=1` it writes the file instead, as
//! `portal_vectors.rs` does for the others.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod vector_file;

use cradle_ledger::access::EventOutcome;
use cradle_ledger::codec;
use cradle_ledger::crypto::TAG_TRANSACTION;
use cradle_ledger::merkle::log::leaf_hash;
use cradle_ledger::tx::{
    Purpose, ReviewAccess, ReviewDecision, SignedTransaction, Transaction, TxBody,
};
use cradle_ledger::{Digest32, Policy};
use cradle_testkit::{GENESIS_MS, TestConsortium, access_event, patient_key};
use serde_json::{Value, json};

const FORMAT: &str = "cradle-portal-vectors/1";
const SOURCE: &str = "ledger/tests/portal_review_vectors.rs";
/// The first nonce: a client's clock in microseconds at genesis, plus one.
const NONCE_0: u64 = GENESIS_MS * 1000 + 1;

fn dec(v: u64) -> Value {
    Value::String(v.to_string())
}

fn vectors(t: &TestConsortium) -> Value {
    let regulator = &t.regulator;
    let entry = Digest32([0x5a; 32]);
    let mut txs = Vec::new();
    for (i, decision) in [ReviewDecision::Justified, ReviewDecision::NotJustified]
        .into_iter()
        .enumerate()
    {
        let tx = Transaction {
            chain_id: t.chain_id(),
            signer: regulator.public_key(),
            nonce: NONCE_0 + i as u64,
            body: TxBody::ReviewAccess(ReviewAccess { entry, decision }),
        };
        let borsh = borsh::to_vec(&tx).unwrap();
        let signed = tx.sign(regulator);
        let encoded = signed.encode();
        // The ledger reads it back and its signature verifies.
        let back = SignedTransaction::decode(&encoded, codec::TX_BYTES_HARD_MAX as usize).unwrap();
        assert_eq!(back, signed);
        back.verify(&t.chain_id()).unwrap();
        txs.push(json!({
            "name": format!("review-{}", decision.code()),
            "nonce": dec(signed.tx.nonce),
            "body": { "kind": "review_access", "entry": entry.to_hex(), "decision": decision.code() },
            "borsh": hex::encode(&borsh),
            "signing_bytes": hex::encode(signed.signing_bytes()),
            "signature": hex::encode(signed.signature.0),
            "encoded": hex::encode(&encoded),
            "hash": hex::encode(signed.hash()),
        }));
    }
    // An unknown decision code: the ledger does not decode it.
    let mut bad = hex::decode(txs[0]["encoded"].as_str().unwrap()).unwrap();
    let at = bad.len() - 65;
    bad[at] = 3;
    assert!(SignedTransaction::decode(&bad, codec::TX_BYTES_HARD_MAX as usize).is_err());

    let patient = patient_key(1).public_key();
    let events: Vec<Value> = [ReviewDecision::Justified, ReviewDecision::NotJustified]
        .into_iter()
        .enumerate()
        .map(|(i, decision)| {
            let e = access_event(
                i as u8 + 1,
                &patient,
                &t.hospital_a.public_key(),
                &regulator.public_key(),
                Purpose::Oversight,
                EventOutcome::Reviewed { entry, decision },
            )
            .event;
            let bytes = e.leaf_bytes();
            assert_eq!(leaf_hash(&bytes), e.leaf_hash());
            json!({
                "name": format!("reviewed-{}", decision.code()),
                "entry": entry.to_hex(),
                "decision": decision.code(),
                "accessor": hex::encode(regulator.public_key().0),
                "bytes": hex::encode(&bytes),
                "leaf_hash": hex::encode(e.leaf_hash()),
            })
        })
        .collect();
    json!({
        "format": FORMAT,
        "source": SOURCE,
        "chain_id": hex::encode(t.chain_id()),
        "tag_transaction": hex::encode(TAG_TRANSACTION),
        "regulator": {
            "seed": hex::encode([4u8; 32]),
            "public_key": hex::encode(regulator.public_key().0),
        },
        "transactions": txs,
        "refused": [{ "name": "unknown-decision", "encoded": hex::encode(&bad), "want": "malformed" }],
        "events": events,
    })
}

#[test]
fn review_vectors_match_the_rust_implementation() {
    let t = TestConsortium::new(Policy::default());
    vector_file::check_or_write("review.json", vectors(&t));
}
