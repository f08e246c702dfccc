//! Reviews of break-glass accesses by the regional health commission: one regulator's finding,
//! once per access, written into the patient's verified history and the break-glass log; every
//! other signer, entry or replay is refused with its own error and changes nothing.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use common::audit_world::Snapshot;
use common::*;
use cradle_ledger::access::{AccessOutcome, EventOutcome};
use cradle_ledger::audit::{AuditSubject, build_answer, verify_answer};
use cradle_ledger::codec;
use cradle_ledger::crypto::Digest32;
use cradle_ledger::state::{BreakGlassEntry, StateExt, keys};
use cradle_ledger::tx::*;
use cradle_ledger::*;

fn unwrap_tx_error(e: Error) -> Error {
    match e {
        Error::InvalidTx { source, .. } => *source,
        other => other,
    }
}

/// Patient P with one archive at hospital A; B's obstetrician broke the glass on it (the
/// access's transaction hash is returned), and A's own obstetrician read it (permitted).
fn world() -> (World, Keypair, ArchiveId, Digest32, Digest32) {
    let mut w = World::new(Policy::default());
    let p = patient_key(1);
    let a = Keypair::from_seed(&[1; 32]);
    let b = Keypair::from_seed(&[2; 32]);
    let tx = w.enrol(&a, &p);
    w.commit_one(tx).unwrap();
    let archive = archive_id(1);
    let tx = w.register(&a, &p, archive, Category::LabourAndDelivery, vec![]);
    w.commit_one(tx).unwrap();
    let req = w.request(
        w.staff(&b),
        archive,
        Purpose::EmergencyTreat,
        Some("haemorrhage on arrival"),
        1,
    );
    let bg = w.record(
        &a,
        req,
        None,
        AccessOutcome::BreakGlass {
            key_for_accessor: wrapped(3),
        },
    );
    w.commit_one(bg.clone()).unwrap();
    let req = w.request(w.staff(&a), archive, Purpose::Treat, None, 2);
    let read = w.record(&a, req, None, permitted());
    w.commit_one(read.clone()).unwrap();
    (w, p, archive, Digest32(bg.hash()), Digest32(read.hash()))
}

fn review(
    w: &mut World,
    by: &Keypair,
    entry: Digest32,
    decision: ReviewDecision,
) -> SignedTransaction {
    w.sign(by, TxBody::ReviewAccess(ReviewAccess { entry, decision }))
}

/// Commits `tx`, wants it refused with an error `want` accepts, and the state untouched.
fn refused(w: &mut World, tx: SignedTransaction, want: impl Fn(&Error) -> bool, what: &str) {
    let root = w.root();
    let events = w.events.len();
    let e = unwrap_tx_error(w.commit_one(tx).unwrap_err());
    assert!(want(&e), "{what}: refused with {e:?}");
    assert_eq!(w.root(), root, "{what}: the state changed");
    assert_eq!(w.events.len(), events, "{what}: an event was logged");
}

#[test]
fn a_regulators_review_is_in_the_patients_verified_history_and_the_break_glass_log() {
    let (mut w, p, archive, entry, _) = world();
    let regulator = copy(&w.regulator);
    let tx = review(&mut w, &regulator, entry, ReviewDecision::NotJustified);
    let ex = w.commit_one(tx.clone()).unwrap();
    assert_eq!(ex.events.len(), 1);
    let logged = &ex.events[0].event;
    assert_eq!(
        logged.outcome,
        EventOutcome::Reviewed {
            entry,
            decision: ReviewDecision::NotJustified
        }
    );
    assert_eq!(logged.patient, p.public_key());
    assert_eq!(logged.archive, archive);
    assert_eq!(logged.accessor, regulator.public_key());
    assert_eq!(logged.purpose, Purpose::Oversight);
    assert_eq!(logged.tx_hash, Digest32(tx.hash()));

    let snap = Snapshot::of(&w);
    // Her history: the break-glass access, the custodian's read, then the review; verified.
    let answer = build_answer(&snap, AuditSubject::Patient(p.public_key()), None).unwrap();
    let v = verify_answer(&w.consortium, &answer).unwrap();
    let outcomes: Vec<_> = v.events.iter().map(|e| e.event.outcome).collect();
    assert_eq!(outcomes.len(), 3, "{outcomes:?}");
    assert!(outcomes[0].is_break_glass());
    assert!(outcomes[2].is_review());
    // The break-glass log holds the access and its review, so it shows none awaits review.
    let answer = build_answer(&snap, AuditSubject::BreakGlass, None).unwrap();
    let v = verify_answer(&w.consortium, &answer).unwrap();
    let kinds: Vec<_> = v
        .events
        .iter()
        .map(|e| {
            (
                e.event.outcome.is_break_glass(),
                e.event.outcome.is_review(),
            )
        })
        .collect();
    assert_eq!(kinds, vec![(true, false), (false, true)]);
    assert_eq!(v.events[0].event.tx_hash, entry);
    // The regulator's own log and the archive's hold it too, and verify.
    for subject in [
        AuditSubject::Accessor(regulator.public_key()),
        AuditSubject::Archive(archive),
    ] {
        let answer = build_answer(&snap, subject.clone(), None).unwrap();
        let v = verify_answer(&w.consortium, &answer).unwrap();
        assert!(
            v.events.iter().any(|e| e.event.outcome.is_review()),
            "{subject:?}"
        );
    }
    let stored: BreakGlassEntry = w
        .store
        .record(&keys::break_glass_entry(&entry))
        .unwrap()
        .unwrap();
    let r = stored.review.unwrap();
    assert_eq!(
        (r.regulator, r.decision),
        (regulator.public_key(), ReviewDecision::NotJustified)
    );
}

#[test]
fn only_a_regulator_may_review() {
    let (mut w, p, _, entry, _) = world();
    let hospital = copy(&w.hospital_a);
    let clinician = copy(w.staff(&w.hospital_b));
    for (who, key) in [
        ("a hospital", hospital),
        ("a clinician", clinician),
        ("the patient", copy(&p)),
        ("a stranger", Keypair::from_seed(&[99; 32])),
    ] {
        let tx = review(&mut w, &key, entry, ReviewDecision::Justified);
        refused(
            &mut w,
            tx,
            |e| matches!(e, Error::NotAuthorized { .. }),
            who,
        );
    }
}

#[test]
fn an_unknown_entry_or_one_that_is_not_break_glass_is_refused() {
    let (mut w, _, _, _, permitted_read) = world();
    let regulator = copy(&w.regulator);
    let unknown = Digest32([7; 32]);
    let tx = review(&mut w, &regulator, unknown, ReviewDecision::Justified);
    refused(
        &mut w,
        tx,
        |e| matches!(e, Error::UnknownBreakGlass(d) if *d == Digest32([7; 32])),
        "an unknown entry",
    );
    let tx = review(
        &mut w,
        &regulator,
        permitted_read,
        ReviewDecision::Justified,
    );
    refused(
        &mut w,
        tx,
        |e| matches!(e, Error::UnknownBreakGlass(_)),
        "a permitted read",
    );
}

#[test]
fn one_review_per_access_and_no_replay() {
    let (mut w, _, _, entry, _) = world();
    let regulator = copy(&w.regulator);
    let first = review(&mut w, &regulator, entry, ReviewDecision::Justified);
    w.commit_one(first.clone()).unwrap();
    // The same signed transaction again: its nonce is spent.
    refused(
        &mut w,
        first,
        |e| matches!(e, Error::StaleNonce { .. }),
        "a replay",
    );
    // A second, different finding on the same access.
    let second = review(&mut w, &regulator, entry, ReviewDecision::NotJustified);
    refused(
        &mut w,
        second,
        |e| matches!(e, Error::AlreadyReviewed(d) if *d == entry),
        "a second review",
    );
}

#[test]
fn a_review_signed_for_another_chain_is_refused() {
    let (mut w, _, _, entry, _) = world();
    let regulator = copy(&w.regulator);
    let tx = Transaction {
        chain_id: [9; 32],
        signer: regulator.public_key(),
        nonce: 1,
        body: TxBody::ReviewAccess(ReviewAccess {
            entry,
            decision: ReviewDecision::Justified,
        }),
    }
    .sign(&regulator);
    refused(
        &mut w,
        tx,
        |e| matches!(e, Error::WrongChain),
        "another chain",
    );
}

#[test]
fn a_review_with_an_unknown_decision_does_not_decode() {
    let (mut w, _, _, entry, _) = world();
    let regulator = copy(&w.regulator);
    let tx = review(&mut w, &regulator, entry, ReviewDecision::Justified);
    let mut bytes = tx.encode();
    // The decision is the last byte before the 64-byte signature.
    let at = bytes.len() - 65;
    assert_eq!(bytes[at], ReviewDecision::Justified as u8);
    bytes[at] = 3;
    assert!(SignedTransaction::decode(&bytes, 1 << 20).is_err());
    bytes[at] = 0;
    assert!(SignedTransaction::decode(&bytes, 1 << 20).is_err());
    // Trailing bytes are refused too.
    let mut long = tx.encode();
    long.push(0);
    assert!(codec::decode::<SignedTransaction>(&long, 1 << 20).is_err());
}
