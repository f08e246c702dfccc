//! The portal's key-change vectors (`node/portal/test/vectors/key_change.json`), made by the
//! ledger itself: a mother rotates her keys, then the member that enrolled her recovers her, and
//! the events the two transactions append to her log are written with their bytes and leaf
//! hashes, so the page reads her key changes exactly as the ledger logs them.
//! `node --test node/portal/test/key_change.test.mjs` reads the same file.
//!
//! By default this test checks that the file in the repository holds what it builds (the
//! `source` field aside); with `CRADLE_WRITE_PORTAL_VECTORS=1` it writes the file instead.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;
mod vector_file;

use common::*;
use cradle_ledger::access::EventOutcome;
use cradle_ledger::merkle::log::leaf_hash;
use cradle_ledger::tx::{Category, RecoverPatient, RotatePatientKey, TxBody, prove_keys};
use cradle_ledger::*;
use serde_json::{Value, json};

const FORMAT: &str = "cradle-portal-vectors/1";
const SOURCE: &str = "ledger/tests/portal_key_change_vectors.rs";

fn vectors() -> Value {
    let mut w = World::new(Policy::default());
    let hospital = Keypair::from_seed(&[1; 32]);
    let mother = patient_key(1);
    let tx = w.enrol(&hospital, &mother);
    w.commit_one(tx).unwrap();
    let tx = w.register(
        &hospital,
        &mother,
        archive_id(1),
        Category::Ultrasound,
        vec![],
    );
    w.commit_one(tx).unwrap();

    let (phone, lost) = (patient_key(2), patient_key(3));
    let (new_key, new_x25519, proof) = prove_keys(&phone, &w.chain_id());
    let rotate = w.sign(
        &mother,
        TxBody::RotatePatientKey(RotatePatientKey {
            new_key,
            new_x25519,
            proof,
        }),
    );
    let (new_key, new_x25519, proof) = prove_keys(&lost, &w.chain_id());
    let recover = w.sign(
        &hospital,
        TxBody::RecoverPatient(RecoverPatient {
            patient: mother.public_key(),
            new_key,
            new_x25519,
            proof,
        }),
    );
    let mut events = Vec::new();
    for (name, tx) in [("rotated", rotate), ("recovered", recover)] {
        let hash = tx.hash();
        let executed = w.commit_one(tx).unwrap();
        let logged = &executed.events[0];
        let e = &logged.event;
        assert_eq!(e.tx_hash, Digest32(hash));
        let new_key = match e.outcome {
            EventOutcome::Rotated { new_key } | EventOutcome::Recovered { new_key } => new_key,
            other => panic!("{other:?}"),
        };
        let bytes = e.leaf_bytes();
        assert_eq!(leaf_hash(&bytes), e.leaf_hash());
        events.push(json!({
            "name": name,
            "kind": name,
            "new_key": hex::encode(new_key.0),
            "accessor": hex::encode(e.accessor.0),
            "patient": hex::encode(e.patient.0),
            "patient_index": logged.patient_index,
            "about_archive": e.about_archive(),
            "in_break_glass_log": e.outcome.in_break_glass_log(),
            "bytes": hex::encode(&bytes),
            "leaf_hash": hex::encode(e.leaf_hash()),
        }));
    }
    json!({
        "format": FORMAT,
        "source": SOURCE,
        "chain_id": hex::encode(w.chain_id()),
        "events": events,
    })
}

#[test]
fn key_change_vectors_match_the_ledger() {
    vector_file::check_or_write("key_change.json", vectors());
}
