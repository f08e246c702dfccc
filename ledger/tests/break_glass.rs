//! Break-glass justifications on the ledger: sealed for the patient and every regulator, never
//! in clear; the rule refuses one sealed for anyone else or missing a reader, and one moved
//! into another request no longer opens.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use common::*;
use cradle_ledger::access::{AccessOutcome, DenialReason};
use cradle_ledger::justification::{self, SealedJustification};
use cradle_ledger::tx::*;
use cradle_ledger::*;

const TEXT: &str = "postpartum haemorrhage on arrival, patient unconscious";

fn unwrap_tx_error(e: Error) -> Error {
    match e {
        Error::InvalidTx { source, .. } => *source,
        other => other,
    }
}

/// Patient P enrolled by hospital A with one archive A holds; B has no grant.
fn world() -> (World, Keypair, ArchiveId) {
    let mut w = World::new(Policy::default());
    let p = patient_key(1);
    let a = Keypair::from_seed(&[1; 32]);
    let tx = w.enrol(&a, &p);
    w.commit_one(tx).unwrap();
    let archive = archive_id(1);
    let tx = w.register(&a, &p, archive, Category::LabourAndDelivery, vec![]);
    w.commit_one(tx).unwrap();
    (w, p, archive)
}

fn break_glass() -> AccessOutcome {
    AccessOutcome::BreakGlass {
        key_for_accessor: wrapped(3),
    }
}

fn denied(reason: DenialReason) -> AccessOutcome {
    AccessOutcome::Denied { reason }
}

/// The justification a committed access record carries.
fn sealed_in(stx: &SignedTransaction) -> (&SealedJustification, Hash) {
    let TxBody::RecordAccess(r) = &stx.tx.body else {
        panic!("not an access record: {:?}", stx.tx.body.kind());
    };
    let req = &r.request.request;
    (
        req.justification.as_ref().unwrap(),
        req.justification_context(&stx.tx.chain_id),
    )
}

#[test]
fn a_break_glass_justification_is_sealed_and_only_the_patient_and_regulators_read_it() {
    let (mut w, p, archive) = world();
    let a = Keypair::from_seed(&[1; 32]);
    let b = Keypair::from_seed(&[2; 32]);
    let regulator = Keypair::from_seed(&[4; 32]);
    let req = w.request(w.staff(&b), archive, Purpose::EmergencyTreat, Some(TEXT), 1);
    let tx = w.record(&a, req, None, break_glass());
    w.commit_one(tx.clone()).unwrap();

    // Nothing of the text on the ledger: not in the transaction's bytes, the block's, or JSON.
    let block = w.blocks.last().unwrap();
    let raw = cradle_ledger::codec::encode(block);
    for needle in [TEXT.as_bytes(), b"haemorrhage", b"unconscious"] {
        assert!(
            !raw.windows(needle.len()).any(|win| win == needle),
            "justification in clear in the block"
        );
    }
    let json = serde_json::to_string(&tx).unwrap();
    assert!(
        !json.contains("haemorrhage"),
        "justification in clear in JSON: {json}"
    );

    let (sealed, context) = sealed_in(&tx);
    assert_eq!(justification::open(sealed, &context, &p).unwrap(), TEXT);
    assert_eq!(
        justification::open(sealed, &context, &regulator).unwrap(),
        TEXT
    );
    // The custodian, the accessor and anyone else see only that one exists.
    for other in [&a, &b, &w.clinic] {
        assert_eq!(
            justification::open(sealed, &context, other),
            Err(Error::NotAJustificationReader)
        );
    }
}

#[test]
fn a_justification_missing_a_reader_or_sealed_for_a_stranger_is_denied() {
    let (mut w, p, archive) = world();
    let a = Keypair::from_seed(&[1; 32]);
    let b = Keypair::from_seed(&[2; 32]);
    let regulator = w.regulator.x25519_public();
    let clinic = w.clinic.x25519_public();
    let cases: [(&[X25519Public], u8); 4] = [
        // The regulator cannot read it.
        (&[p.x25519_public()], 1),
        // The patient cannot read it.
        (&[regulator], 2),
        // The clinic can read it too.
        (&[p.x25519_public(), regulator, clinic], 3),
        // Sealed for a key of the accessor's own choosing in place of the patient's.
        (&[b.x25519_public(), regulator], 4),
    ];
    for (readers, id) in cases {
        let req = w.request_sealed(
            w.staff(&b),
            archive,
            Purpose::EmergencyTreat,
            Some((TEXT, readers)),
            id,
        );
        let tx = w.record(&a, req.clone(), None, break_glass());
        assert!(
            matches!(
                unwrap_tx_error(w.commit_one(tx).unwrap_err()),
                Error::OutcomeMismatch { .. }
            ),
            "break-glass recorded with a justification sealed for {readers:?}"
        );
        let tx = w.record(&a, req, None, denied(DenialReason::JustificationNotSealed));
        let ex = w.commit_one(tx).unwrap();
        assert!(!ex.events[0].event.outcome.is_break_glass());
    }
    // No justification at all is still denied as before.
    let req = w.request(w.staff(&b), archive, Purpose::EmergencyTreat, None, 5);
    let tx = w.record(&a, req, None, denied(DenialReason::JustificationRequired));
    w.commit_one(tx).unwrap();
}

#[test]
fn a_sealed_justification_moved_to_another_request_or_archive_no_longer_opens() {
    let (mut w, p, archive) = world();
    let a = Keypair::from_seed(&[1; 32]);
    let b = Keypair::from_seed(&[2; 32]);
    let regulator = Keypair::from_seed(&[4; 32]);
    let req = w.request(w.staff(&b), archive, Purpose::EmergencyTreat, Some(TEXT), 1);
    let tx = w.record(&a, req.clone(), None, break_glass());
    w.commit_one(tx).unwrap();
    let original = req.request.justification.clone().unwrap();

    // B signs a new request carrying the old sealed justification, then one for another
    // archive of hers: the ledger cannot open it to tell, but no reader can open it either.
    let other = archive_id(2);
    let tx = w.register(&a, &p, other, Category::Postpartum, vec![]);
    w.commit_one(tx).unwrap();
    for (target, id) in [(archive, 2), (other, 3)] {
        let mut moved = w.request(w.staff(&b), target, Purpose::EmergencyTreat, None, id);
        moved.request.justification = Some(original.clone());
        moved.signature = b.sign(crypto::TAG_ACCESS_REQUEST, &w.chain_id(), &moved.request);
        let context = moved.request.justification_context(&w.chain_id());
        for reader in [&p, &regulator] {
            assert_eq!(
                justification::open(&original, &context, reader),
                Err(Error::JustificationUnreadable)
            );
        }
    }
    // Nor does a request of another chain.
    let context = req.request.justification_context(&[9; 32]);
    assert_eq!(
        justification::open(&original, &context, &p),
        Err(Error::JustificationUnreadable)
    );
}

#[test]
fn a_consortium_with_more_regulators_than_a_justification_can_name_is_refused() {
    let validator = Keypair::from_seed(&[1; 32]);
    let mut members = vec![member("County Hospital", Role::Hospital, &validator, 1)];
    for i in 0..justification::JUSTIFICATION_READERS_MAX {
        let key = Keypair::from_seed(&[i as u8 + 100; 32]);
        members.push(member(&format!("Commission {i}"), Role::Regulator, &key, 0));
    }
    let chain = crypto::sha256(b"many regulators");
    assert!(matches!(
        Consortium::new(
            chain,
            GENESIS_MS,
            members.clone(),
            Policy::default(),
            Limits::default()
        ),
        Err(Error::TooManyRegulators { .. })
    ));
    members.pop();
    Consortium::new(
        chain,
        GENESIS_MS,
        members,
        Policy::default(),
        Limits::default(),
    )
    .unwrap();
}
