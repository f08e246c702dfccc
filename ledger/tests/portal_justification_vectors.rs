//! The justification vectors of the regulator's page (`node/portal/test/vectors/justification.json`),
//! made by the Rust implementation: a break-glass justification sealed for a patient and the
//! regulator, the inputs of the request context it is bound to, the record-access transaction
//! that carries it (its canonical bytes, its hash, the hash of the embedded signed request, and
//! the JSON a node answers at `GET /v1/txs/{hash}`), the readers' X25519 secrets, and sealed
//! justifications that must not open (moved to another request, an altered byte, another
//! commitment, an altered wrap, a reader it is not sealed for).
//! `node --test node/portal/test/justification.test.mjs` opens the same file in JavaScript.
//!
//! Sealing is random (a fresh key, salt and ephemeral keys), so the sealed justification is the
//! one input this test does not make again: by default it reads it from the file on disk, opens
//! it with the Rust implementation, rebuilds everything else from it and checks that the file
//! holds exactly that; with `CRADLE_WRITE_PORTAL_VECTORS=1` it seals a new one and writes the
//! file instead, as `portal_vectors.rs` does for the others.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod vector_file;

use cradle_ledger::access::{AccessOutcome, AccessRequest, SignedAccessRequest};
use cradle_ledger::codec::{self, BoundedBytes, BoundedVec};
use cradle_ledger::crypto::{TAG_ACCESS_REQUEST, sha256};
use cradle_ledger::justification::{
    self, SealedJustification, TAG_JUSTIFICATION_COMMIT, TAG_JUSTIFICATION_CONTEXT,
    TAG_JUSTIFICATION_WRAP,
};
use cradle_ledger::keywrap::wrap_key_with_ephemeral;
use cradle_ledger::tx::{Purpose, RecordAccess, SignedTransaction, Transaction, TxBody};
use cradle_ledger::{ArchiveId, Digest32, Error, Keypair, Policy};
use cradle_testkit::{GENESIS_MS, TestConsortium, patient_key};
use serde_json::{Value, json};

const FORMAT: &str = "cradle-portal-vectors/1";
const SOURCE: &str = "ledger/tests/portal_justification_vectors.rs";
const TEXT: &str = "postpartum haemorrhage on arrival, patient unconscious; 产后出血";
/// The custodian's nonce: its clock in microseconds at genesis, plus one.
const NONCE_0: u64 = GENESIS_MS * 1000 + 1;
/// Where the record sits, as the node's answer says (the page does not rely on it).
const HEIGHT: u64 = 7;
const PHYSICIAN_SEED: [u8; 32] = [0x21; 32];
const STRANGER_SEED: [u8; 32] = [0x09; 32];

fn dec(v: u64) -> Value {
    Value::String(v.to_string())
}

/// A reader's keys as the page imports them from a key file.
fn reader(name: &str, seed: &[u8; 32], key: &Keypair) -> Value {
    assert_eq!(Keypair::from_seed(seed).public_key(), key.public_key());
    json!({
        "name": name,
        "seed": hex::encode(seed),
        "x25519_secret": hex::encode(*key.x25519_secret()),
        "x25519_public": hex::encode(key.x25519_public().0),
        "public_key": hex::encode(key.public_key().0),
    })
}

fn request(sealed: Option<SealedJustification>, request_id: [u8; 16]) -> AccessRequest {
    AccessRequest {
        accessor: Keypair::from_seed(&PHYSICIAN_SEED).public_key(),
        archive: ArchiveId([0x3c; 32]),
        purpose: Purpose::EmergencyTreat,
        justification: sealed,
        requested_at_ms: GENESIS_MS + 60_000,
        request_id,
    }
}

/// The context inputs of `r` and the context Rust computes from them.
fn context_of(t: &TestConsortium, r: &AccessRequest) -> Value {
    json!({
        "chain_id": hex::encode(t.chain_id()),
        "accessor": hex::encode(r.accessor.0),
        "archive": hex::encode(r.archive.0),
        "purpose": r.purpose.code(),
        "purpose_code": r.purpose as u8,
        "requested_at_ms": dec(r.requested_at_ms),
        "request_id": hex::encode(r.request_id),
        "context": hex::encode(r.justification_context(&t.chain_id())),
    })
}

/// A sealed justification that `me` must not read, and why (`unreadable` or `not-a-reader`).
fn refused(
    name: &str,
    sealed: &SealedJustification,
    context: &[u8; 32],
    me: &Keypair,
    who: &str,
) -> Value {
    let want = match justification::open(sealed, context, me) {
        Err(Error::JustificationUnreadable) => "unreadable",
        Err(Error::NotAJustificationReader) => "not-a-reader",
        other => panic!("{name}: Rust should refuse it, got {other:?}"),
    };
    json!({
        "name": name,
        "reader": who,
        "context": hex::encode(context),
        "sealed": serde_json::to_value(sealed).unwrap(),
        "want": want,
    })
}

fn altered_ciphertext(sealed: &SealedJustification, at: usize) -> SealedJustification {
    let mut bytes = sealed.ciphertext.as_bytes().to_vec();
    bytes[at] ^= 1;
    SealedJustification {
        ciphertext: BoundedBytes::new(bytes).unwrap(),
        ..sealed.clone()
    }
}

fn vectors(t: &TestConsortium, sealed: SealedJustification) -> Value {
    let chain_id = t.chain_id();
    let regulator = &t.regulator;
    let patient = patient_key(1);
    let physician = Keypair::from_seed(&PHYSICIAN_SEED);
    let stranger = Keypair::from_seed(&STRANGER_SEED);

    let req = request(Some(sealed.clone()), [0x7e; 16]);
    let context = req.justification_context(&chain_id);
    // Both readers open it to the clinician's words, and the ledger's shape check passes.
    assert_eq!(
        justification::open(&sealed, &context, regulator).unwrap(),
        TEXT
    );
    assert_eq!(
        justification::open(&sealed, &context, &patient).unwrap(),
        TEXT
    );
    assert!(
        sealed.is_sealed_for(
            &[patient.x25519_public(), regulator.x25519_public()]
                .into_iter()
                .collect()
        )
    );

    let signature = physician.sign(TAG_ACCESS_REQUEST, &chain_id, &req);
    let signed_request = SignedAccessRequest {
        request: req.clone(),
        signature,
    };
    signed_request.verify(&chain_id).unwrap();
    let request_bytes = codec::encode(&signed_request);
    let key_for_accessor = wrap_key_with_ephemeral(
        &[0x11; 32],
        &req.archive,
        &physician.x25519_public(),
        &[0x22; 32],
    )
    .unwrap();
    let tx = Transaction {
        chain_id,
        signer: t.hospital_a.public_key(),
        nonce: NONCE_0,
        body: TxBody::RecordAccess(RecordAccess {
            request: signed_request,
            grant: None,
            outcome: AccessOutcome::BreakGlass { key_for_accessor },
        }),
    };
    let signed = tx.sign(&t.hospital_a);
    let encoded = signed.encode();
    let back = SignedTransaction::decode(&encoded, codec::TX_BYTES_HARD_MAX as usize).unwrap();
    assert_eq!(back, signed);
    back.verify(&chain_id).unwrap();
    // What `GET /v1/txs/{hash}` answers (node/src/http/txs.rs, `get`), and the JSON reads back.
    let answer = json!({
        "hash": hex::encode(signed.hash()),
        "height": HEIGHT,
        "index": 0,
        "kind": signed.tx.body.kind(),
        "tx": serde_json::to_value(&signed).unwrap(),
    });
    let from_json: SignedTransaction = serde_json::from_value(answer["tx"].clone()).unwrap();
    assert_eq!(from_json.hash(), signed.hash());

    // The same sealed text moved into another request of the same clinician does not open.
    let moved = request(Some(sealed.clone()), [0x7f; 16]);
    let moved_context = moved.justification_context(&chain_id);
    let mut bad_wrap = sealed.clone();
    let mut wraps = bad_wrap.wraps.clone().into_inner();
    for w in &mut wraps {
        w.key.sealed[5] ^= 1;
    }
    bad_wrap.wraps = BoundedVec::new(wraps).unwrap();
    let refusals = vec![
        refused(
            "moved-to-another-request",
            &sealed,
            &moved_context,
            regulator,
            "regulator",
        ),
        refused(
            "altered-ciphertext",
            &altered_ciphertext(&sealed, 20),
            &context,
            regulator,
            "regulator",
        ),
        refused(
            "altered-tag",
            &altered_ciphertext(&sealed, sealed.ciphertext.as_bytes().len() - 1),
            &context,
            regulator,
            "regulator",
        ),
        refused(
            "recommitted",
            &SealedJustification {
                commitment: Digest32([0; 32]),
                ..sealed.clone()
            },
            &context,
            regulator,
            "regulator",
        ),
        refused("altered-wrap", &bad_wrap, &context, regulator, "regulator"),
        refused("not-a-reader", &sealed, &context, &stranger, "stranger"),
    ];

    json!({
        "format": FORMAT,
        "source": SOURCE,
        "chain_id": hex::encode(chain_id),
        "tags": {
            "context": hex::encode(TAG_JUSTIFICATION_CONTEXT),
            "commit": hex::encode(TAG_JUSTIFICATION_COMMIT),
            "wrap": hex::encode(TAG_JUSTIFICATION_WRAP),
        },
        "readers": [
            reader("regulator", &[4; 32], regulator),
            reader("patient", &patient_seed(), &patient),
            reader("stranger", &STRANGER_SEED, &stranger),
        ],
        "text": TEXT,
        "request": context_of(t, &req),
        "moved_request": context_of(t, &moved),
        "sealed": serde_json::to_value(&sealed).unwrap(),
        "sealed_borsh": hex::encode(borsh::to_vec(&sealed).unwrap()),
        "signed_request": hex::encode(&request_bytes),
        "request_hash": hex::encode(sha256(&request_bytes)),
        "encoded": hex::encode(&encoded),
        "tx_hash": hex::encode(signed.hash()),
        "answer": answer,
        "refused": refusals,
    })
}

/// The seed `patient_key(1)` derives its keys from (checked against its public key).
fn patient_seed() -> [u8; 32] {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&1u64.to_le_bytes());
    seed[31] = 0xaa;
    seed
}

#[test]
fn justification_vectors_match_the_rust_implementation() {
    let t = TestConsortium::new(Policy::default());
    const FILE: &str = "justification.json";
    if vector_file::writing() {
        let readers = [patient_key(1).x25519_public(), t.regulator.x25519_public()];
        let context = request(None, [0x7e; 16]).justification_context(&t.chain_id());
        let sealed = justification::seal(TEXT, &context, &readers).unwrap();
        vector_file::write(FILE, &vectors(&t, sealed));
        return;
    }
    // Sealing is random: the check rebuilds the rest around the file's sealed justification.
    let kept = vector_file::read(FILE);
    let sealed: SealedJustification = serde_json::from_value(kept["sealed"].clone())
        .unwrap_or_else(|e| panic!("the file's sealed justification does not read: {e}"));
    let doc = vectors(&t, sealed);
    assert!(
        vector_file::same(kept, doc),
        "{FILE} {}",
        vector_file::STALE
    );
}
