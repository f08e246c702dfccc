//! A mother's keys over her lifetime: she rotates them herself; a member recovers her when she
//! lost them, with her present. She stays the patient she enrolled as, the old key is refused
//! from the next block, and each change is kept in her history.
#![allow(clippy::unwrap_used)]

mod common;

use common::audit_world::Snapshot;
use common::*;
use cradle_ledger::access::{AccessOutcome, DenialReason, EventOutcome, NO_ARCHIVE};
use cradle_ledger::audit::{AuditSubject, build_answer, verify_answer};
use cradle_ledger::block::Executed;
use cradle_ledger::governance::Change;
use cradle_ledger::rules::decide_access;
use cradle_ledger::state::{KeyChange, StateExt, StateReader, keys};
use cradle_ledger::tx::{
    Category, Purpose, RecoverPatient, RewrapForPatient, RotatePatientKey, Scope, TxBody,
    prove_keys,
};
use cradle_ledger::*;

fn rotate(w: &mut World, by: &Keypair, new: &Keypair) -> Result<(), Error> {
    rotated(w, by, new).map(drop)
}

fn rotated(w: &mut World, by: &Keypair, new: &Keypair) -> Result<Executed, Error> {
    let (new_key, new_x25519, proof) = prove_keys(new, &w.chain_id());
    let tx = w.sign(
        by,
        TxBody::RotatePatientKey(RotatePatientKey {
            new_key,
            new_x25519,
            proof,
        }),
    );
    w.commit_one(tx)
}

fn recover(w: &mut World, by: &Keypair, patient: &Keypair, new: &Keypair) -> Result<(), Error> {
    recovered(w, by, patient, new).map(drop)
}

fn recovered(
    w: &mut World,
    by: &Keypair,
    patient: &Keypair,
    new: &Keypair,
) -> Result<Executed, Error> {
    let (new_key, new_x25519, proof) = prove_keys(new, &w.chain_id());
    let tx = w.sign(
        by,
        TxBody::RecoverPatient(RecoverPatient {
            patient: patient.public_key(),
            new_key,
            new_x25519,
            proof,
        }),
    );
    w.commit_one(tx)
}

/// Whom the access rule lets `accessor` read `archive` as.
fn decision(w: &World, accessor: &Keypair, archive: ArchiveId) -> String {
    let req = w.request(accessor, archive, Purpose::PatientRequest, None, 9);
    let rec = w.store.archive(&archive).unwrap().unwrap();
    let d = decide_access(&w.store, &w.consortium, &rec, &req.request, w.now_ms + 1000).unwrap();
    format!("{d:?}")
}

#[test]
fn a_mother_rotates_her_keys_and_a_member_recovers_her_after_a_loss() {
    let mut w = World::new(Policy::default());
    let (a, b) = (Keypair::from_seed(&[1; 32]), Keypair::from_seed(&[2; 32]));
    let mother = patient_key(1);
    let archive = archive_id(1);
    let tx = w.enrol(&a, &mother);
    w.commit_one(tx).unwrap();
    let tx = w.register(&a, &mother, archive, Category::PrenatalVisit, vec![]);
    w.commit_one(tx).unwrap();
    assert!(decision(&w, &mother, archive).contains("Patient"));

    // She rotates to a key made on her new phone.
    let phone = patient_key(2);
    rotate(&mut w, &mother, &phone).unwrap();
    let rec = w.store.patient(&mother.public_key()).unwrap().unwrap();
    assert_eq!(rec.current_key, Some(phone.public_key()));
    assert_eq!(rec.x25519, phone.x25519_public());
    assert_eq!(rec.key_changes, 1);
    // The old key is refused from now on, for her transactions and her reads.
    let (tx, _) = w.grant(&mother, &b, Scope::All, &[Purpose::Treat], 30, &[archive]);
    assert!(matches!(w.commit_one(tx), Err(Error::KeyRotatedOut(_))));
    assert!(decision(&w, &mother, archive).contains("NoGrant"));
    // The new one acts as the patient she enrolled as: her grant names her enrolment key.
    assert!(decision(&w, &phone, archive).contains("Patient"));
    let (tx, _) = w.grant(&phone, &b, Scope::All, &[Purpose::Treat], 30, &[archive]);
    w.commit_one(tx).unwrap();
    let grants = w
        .store
        .grants_to(&mother.public_key(), &b.public_key(), 10)
        .unwrap();
    assert_eq!(grants.len(), 1);
    // A read by the lost key is recorded as a denial in her history, for her to see.
    let req = w.request(&mother, archive, Purpose::PatientRequest, None, 3);
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::NoGrant,
        },
    );
    w.commit_one(tx).unwrap();
    // Her history: her rotation, then the denial.
    assert_eq!(w.patient_log_size(&mother), 2);

    // She loses the phone; the clinic's hospital recovers her with a key from a new one.
    let regulator = Keypair::from_seed(&[4; 32]);
    let lost = patient_key(3);
    let err = recover(&mut w, &regulator, &mother, &lost).unwrap_err();
    assert!(matches!(err, Error::NotAuthorized { .. }), "{err}");
    // A member she has no tie to (it did not enrol her, holds none of her archives and no
    // grant of hers in force) cannot take her identity: that would hand it her records.
    let stranger = Keypair::from_seed(&[3; 32]);
    let err = recover(&mut w, &stranger, &mother, &lost).unwrap_err();
    assert!(
        matches!(err, Error::NotAuthorized { action, .. } if action.contains("did not enrol")),
        "{err}"
    );
    assert_eq!(
        w.store
            .patient(&mother.public_key())
            .unwrap()
            .unwrap()
            .key_changes,
        1,
        "the refused recovery changed her keys"
    );
    // Nor can the hospital she granted treatment access: a grant is for reading her records,
    // not for vouching for her; only the hospital that enrolled her may.
    let err = recover(&mut w, &b, &mother, &lost).unwrap_err();
    assert!(
        matches!(err, Error::NotAuthorized { action, .. } if action.contains("did not enrol")),
        "{err}"
    );
    recover(&mut w, &a, &mother, &lost).unwrap();
    let change: KeyChange = w
        .store
        .record(&keys::key_change(&mother.public_key(), 1))
        .unwrap()
        .unwrap();
    assert_eq!(change.recovered_by, Some(a.public_key()));
    assert_eq!(change.new_key, lost.public_key());
    let flagged = w.store.scan_prefix(&keys::recoveries(), 10).unwrap();
    assert_eq!(flagged.len(), 1, "the regulators see every recovery");
    assert!(decision(&w, &phone, archive).contains("NoGrant"));
    assert!(decision(&w, &lost, archive).contains("Patient"));

    // Her custodian wraps the archive key again for her new X25519 key; no one else may.
    let rewrap = TxBody::RewrapForPatient(RewrapForPatient {
        archive,
        key_for_patient: wrapped(33),
    });
    let tx = w.sign(&b, rewrap.clone());
    assert!(matches!(w.commit_one(tx), Err(Error::NotAuthorized { .. })));
    let tx = w.sign(&a, rewrap);
    w.commit_one(tx).unwrap();
    let rec = w.store.archive(&archive).unwrap().unwrap();
    assert_eq!(rec.key_for_patient, wrapped(33));
}

/// The outcomes of the verified answer about `subject`.
fn verified_outcomes(w: &World, subject: AuditSubject) -> Vec<EventOutcome> {
    let snap = Snapshot::of(w);
    let answer = build_answer(&snap, subject, None).unwrap();
    let v = verify_answer(&w.consortium, &answer).unwrap();
    v.events.iter().map(|e| e.event.outcome).collect()
}

#[test]
fn each_key_change_is_in_her_verified_history_and_a_recovery_in_the_commissions_log() {
    let mut w = World::new(Policy::default());
    let a = Keypair::from_seed(&[1; 32]);
    let mother = patient_key(1);
    let archive = archive_id(1);
    let tx = w.enrol(&a, &mother);
    w.commit_one(tx).unwrap();
    let tx = w.register(&a, &mother, archive, Category::PrenatalVisit, vec![]);
    w.commit_one(tx).unwrap();

    // Her own rotation: one event, signed by her key, naming the new key and no archive.
    let phone = patient_key(2);
    let ex = rotated(&mut w, &mother, &phone).unwrap();
    assert_eq!(ex.events.len(), 1);
    let e = &ex.events[0].event;
    assert_eq!(
        e.outcome,
        EventOutcome::Rotated {
            new_key: phone.public_key()
        }
    );
    assert_eq!(
        (e.patient, e.accessor, e.archive),
        (mother.public_key(), mother.public_key(), NO_ARCHIVE)
    );
    assert!(!e.about_archive());
    assert_eq!(e.purpose, Purpose::PatientRequest);

    // A recovery by the member that enrolled her: signed by the member, in the break-glass log.
    let lost = patient_key(3);
    let ex = recovered(&mut w, &a, &mother, &lost).unwrap();
    let e = &ex.events[0].event;
    let recovery = EventOutcome::Recovered {
        new_key: lost.public_key(),
    };
    assert_eq!(e.outcome, recovery);
    assert_eq!(
        (e.patient, e.accessor),
        (mother.public_key(), a.public_key())
    );

    // Her verified history shows both, in order: a node cannot hide either.
    let mine = verified_outcomes(&w, AuditSubject::Patient(mother.public_key()));
    assert_eq!(
        mine,
        vec![
            EventOutcome::Rotated {
                new_key: phone.public_key()
            },
            recovery
        ]
    );
    // The commission's log holds the recovery, not her own rotation; so does the member's.
    assert_eq!(
        verified_outcomes(&w, AuditSubject::BreakGlass),
        vec![recovery]
    );
    assert_eq!(
        verified_outcomes(&w, AuditSubject::Accessor(a.public_key())),
        vec![recovery]
    );
    // No archive's log holds a key change.
    assert!(verified_outcomes(&w, AuditSubject::Archive(archive)).is_empty());
    assert!(verified_outcomes(&w, AuditSubject::Archive(NO_ARCHIVE)).is_empty());

    // A refused recovery logs nothing.
    let stranger = Keypair::from_seed(&[3; 32]);
    assert!(recover(&mut w, &stranger, &mother, &patient_key(4)).is_err());
    assert_eq!(w.patient_log_size(&mother), 2);
}

#[test]
fn only_the_member_that_enrolled_her_recovers_her_and_no_later_tie_makes_another_one() {
    let mut w = World::new(Policy::default());
    let (a, b, clinic) = (
        Keypair::from_seed(&[1; 32]),
        Keypair::from_seed(&[2; 32]),
        Keypair::from_seed(&[3; 32]),
    );
    let mother = patient_key(1);
    let tx = w.enrol(&clinic, &mother);
    w.commit_one(tx).unwrap();
    // Her first archive is the hospital's; the clinic that enrolled her holds none.
    let tx = w.register(&a, &mother, archive_id(1), Category::PrenatalVisit, vec![]);
    w.commit_one(tx).unwrap();
    // She grants the other hospital treatment access, and it registers an archive of its own
    // for her (a member needs no consent for that): neither makes it the one who may recover.
    let (tx, grant) = w.grant(
        &mother,
        &b,
        Scope::All,
        &[Purpose::Treat],
        30,
        &[archive_id(1)],
    );
    w.commit_one(tx).unwrap();
    let tx = w.register(&b, &mother, archive_id(2), Category::Other, vec![grant]);
    w.commit_one(tx).unwrap();
    for by in [&a, &b] {
        let err = recover(&mut w, by, &mother, &patient_key(2)).unwrap_err();
        assert!(
            matches!(err, Error::NotAuthorized { action, .. } if action.contains("did not enrol")),
            "{err}"
        );
    }
    assert_eq!(
        w.patient_log_size(&mother),
        0,
        "a refused recovery was logged"
    );
    // The all-zeros archive id names no archive in a history; none may be registered under it.
    let tx = w.register(&a, &mother, NO_ARCHIVE, Category::Other, vec![grant]);
    assert!(matches!(w.commit_one(tx), Err(Error::ArchiveIdReserved(_))));

    // The clinic leaves the consortium: the custodian of her earliest archive may recover her
    // now, and still no one else.
    let id = propose(
        &mut w,
        &a,
        Change::RemoveMember {
            member: clinic.public_key(),
        },
    )
    .unwrap();
    approve(&mut w, &b, id).unwrap();
    approve(&mut w, &clinic, id).unwrap();
    w.advance(1000);
    w.advance(1000);
    assert!(w.consortium.member(&clinic.public_key()).is_none());
    let err = recover(&mut w, &b, &mother, &patient_key(2)).unwrap_err();
    assert!(matches!(err, Error::NotAuthorized { .. }), "{err}");
    recover(&mut w, &a, &mother, &patient_key(2)).unwrap();
    let rec = w.store.patient(&mother.public_key()).unwrap().unwrap();
    assert_eq!(rec.current_key, Some(patient_key(2).public_key()));
}

#[test]
fn a_new_key_must_be_no_one_elses_and_never_hers_before() {
    let mut w = World::new(Policy::default());
    let a = Keypair::from_seed(&[1; 32]);
    let (mother, other) = (patient_key(1), patient_key(2));
    for p in [&mother, &other] {
        let tx = w.enrol(&a, p);
        w.commit_one(tx).unwrap();
    }
    let root = w.root();
    // Another patient's key, a member's, her own current one.
    for taken in [&other, &a, &mother] {
        let err = rotate(&mut w, &mother, taken).unwrap_err();
        assert!(matches!(err, Error::KeyInUse { .. }), "{err}");
    }
    // A clinician's key.
    // County Hospital's obstetrician, registered by the world with seed 11.
    let obstetrician = Keypair::from_seed(&[11; 32]);
    assert_eq!(w.staff(&a).public_key(), obstetrician.public_key());
    let err = rotate(&mut w, &mother, &obstetrician).unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeyInUse {
                by: "a clinician",
                ..
            }
        ),
        "{err}"
    );
    assert_eq!(w.root(), root, "every refusal left the state as it was");
    // Once rotated away from, a key cannot come back, nor be enrolled as someone new.
    let phone = patient_key(3);
    rotate(&mut w, &mother, &phone).unwrap();
    let err = rotate(&mut w, &phone, &mother).unwrap_err();
    assert!(matches!(err, Error::KeyInUse { .. }), "{err}");
    let tx = w.enrol(&a, &phone);
    assert!(matches!(w.commit_one(tx), Err(Error::AlreadyEnrolled(_))));
    // A custodian cannot re-wrap for a patient whose keys never changed.
    let archive = archive_id(5);
    let tx = w.register(&a, &other, archive, Category::Ultrasound, vec![]);
    w.commit_one(tx).unwrap();
    let tx = w.sign(
        &a,
        TxBody::RewrapForPatient(RewrapForPatient {
            archive,
            key_for_patient: wrapped(3),
        }),
    );
    assert!(matches!(w.commit_one(tx), Err(Error::InvalidKeyChange(_))));
}
