//! Every rule of the state transition, each with a case it accepts and a case it refuses with
//! the right error; refused transactions and blocks leave the state root as it was.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use common::*;
use cradle_ledger::access::{AccessOutcome, DenialReason, EventOutcome};
use cradle_ledger::block::ChainTip;
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::crypto::Digest32;
use cradle_ledger::state::StateExt;
use cradle_ledger::tx::*;
use cradle_ledger::*;

fn unwrap_tx_error(e: Error) -> Error {
    match e {
        Error::InvalidTx { source, .. } => *source,
        other => other,
    }
}

/// Commits `tx`, expecting `want`; checks that a refusal changed nothing.
fn refused(w: &mut World, tx: SignedTransaction, want: Error) {
    let before = w.root();
    let got = w.commit_one(tx).map(|_| ()).map_err(unwrap_tx_error);
    assert_eq!(got, Err(want), "refusal expected");
    assert_eq!(
        w.root(),
        before,
        "a refused transaction must not change state"
    );
}

/// A world with patient P enrolled by hospital A and one prenatal archive held by A.
fn with_patient_and_archive() -> (World, Keypair, ArchiveId) {
    let mut w = World::new(Policy::default());
    let p = patient_key(1);
    let a = w.hospital_a.clone_key();
    let enrol = w.enrol(&a, &p);
    w.commit_one(enrol).unwrap();
    let archive = archive_id(1);
    let reg = w.register(&a, &p, archive, Category::PrenatalVisit, vec![]);
    w.commit_one(reg).unwrap();
    (w, p, archive)
}

trait CloneKey {
    fn clone_key(&self) -> Keypair;
}
impl CloneKey for Keypair {
    fn clone_key(&self) -> Keypair {
        Keypair::from_secret_parts(&self.ed25519_seed(), &self.x25519_secret())
    }
}

#[test]
fn care_providers_enrol_patients_and_regulators_cannot() {
    let mut w = World::new(Policy::default());
    let (a, c, r) = (
        w.hospital_a.clone_key(),
        w.clinic.clone_key(),
        w.regulator.clone_key(),
    );
    let tx = w.enrol(&a, &patient_key(1));
    w.commit_one(tx).unwrap();
    let tx = w.enrol(&c, &patient_key(2));
    w.commit_one(tx).unwrap();
    assert!(
        w.store
            .patient(&patient_key(2).public_key())
            .unwrap()
            .is_some()
    );
    let tx = w.enrol(&r, &patient_key(3));
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "enrol patients",
            signer: r.public_key(),
        },
    );
    let stranger = patient_key(9);
    let tx = w.enrol(&stranger, &patient_key(4));
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "enrol patients",
            signer: stranger.public_key(),
        },
    );
}

#[test]
fn a_patient_is_enrolled_once_and_never_as_a_member() {
    let mut w = World::new(Policy::default());
    let a = w.hospital_a.clone_key();
    let b = w.hospital_b.clone_key();
    let tx = w.enrol(&a, &patient_key(1));
    w.commit_one(tx).unwrap();
    let tx = w.enrol(&b, &patient_key(1));
    refused(
        &mut w,
        tx,
        Error::AlreadyEnrolled(patient_key(1).public_key()),
    );
    let tx = w.enrol(&a, &b);
    refused(&mut w, tx, Error::PatientIsMember);
}

/// The patient's proof is checked where every signature is: on a node's admission
/// (`SignedTransaction::verify`) and in the block's batch; both name the patient.
fn refused_without_proof(w: &mut World, tx: SignedTransaction, patient: PublicKey) {
    assert_eq!(
        tx.verify(&w.chain_id()),
        Err(Error::BadEnrolmentProof(patient))
    );
    refused(w, tx, Error::BadEnrolmentProof(patient));
}

#[test]
fn a_clinic_cannot_pair_a_mothers_signing_key_with_its_own_x25519_key() {
    let mut w = World::new(Policy::default());
    let clinic = w.clinic.clone_key();
    let mother = patient_key(1);
    let chain = w.chain_id();
    let her_proof = EnrolPatient::prove(&mother, &chain);
    let forgeries = [
        // Her real proof, with the clinic's X25519 key put in place of hers.
        EnrolPatient {
            x25519: clinic.x25519_public(),
            ..her_proof.clone()
        },
        // A proof the clinic signed itself over her signing key and its X25519 key.
        EnrolPatient {
            patient: mother.public_key(),
            x25519: clinic.x25519_public(),
            proof: clinic.sign(
                crypto::TAG_ENROLMENT,
                &chain,
                &(mother.public_key(), clinic.x25519_public()),
            ),
        },
        // No proof at all.
        EnrolPatient {
            patient: mother.public_key(),
            x25519: clinic.x25519_public(),
            proof: Signature([0; 64]),
        },
    ];
    for forged in forgeries {
        let tx = w.sign(&clinic, TxBody::EnrolPatient(forged));
        refused_without_proof(&mut w, tx, mother.public_key());
    }
    assert_eq!(w.store.patient(&mother.public_key()).unwrap(), None);
    // Her own enrolment still goes through, by the same clinic, with her X25519 key.
    let tx = w.sign(&clinic, TxBody::EnrolPatient(her_proof));
    tx.verify(&chain).unwrap();
    w.commit_one(tx).unwrap();
    let record = w.store.patient(&mother.public_key()).unwrap().unwrap();
    assert_eq!(record.x25519, mother.x25519_public());
    assert_eq!(record.enrolled_by, clinic.public_key());
}

#[test]
fn an_enrolment_proof_for_another_chain_or_another_purpose_is_refused() {
    let mut w = World::new(Policy::default());
    let a = w.hospital_a.clone_key();
    let mother = patient_key(1);
    let chain = w.chain_id();
    let elsewhere = EnrolPatient::prove(&mother, &[9; 32]);
    let tx = w.sign(&a, TxBody::EnrolPatient(elsewhere));
    refused_without_proof(&mut w, tx, mother.public_key());
    // Her signature over the same keys under another tag (say, a transaction's) is no proof.
    let keys = (mother.public_key(), mother.x25519_public());
    let other_tag = EnrolPatient {
        patient: keys.0,
        x25519: keys.1,
        proof: mother.sign(crypto::TAG_TRANSACTION, &chain, &keys),
    };
    let tx = w.sign(&a, TxBody::EnrolPatient(other_tag));
    refused_without_proof(&mut w, tx, mother.public_key());
    // A block batch names the transaction whose proof fails.
    let good = w.enrol(&a, &patient_key(2));
    let bad = w.sign(
        &a,
        TxBody::EnrolPatient(EnrolPatient::prove(&patient_key(3), &[9; 32])),
    );
    assert_eq!(
        block::verify_signatures(&[good.clone(), bad], &chain),
        Err(Error::InvalidTx {
            index: 1,
            source: Box::new(Error::BadEnrolmentProof(patient_key(3).public_key()))
        })
    );
    w.commit_one(good).unwrap();
    let tx = w.enrol(&a, &mother);
    w.commit_one(tx).unwrap();
}

#[test]
fn replayed_and_reused_nonces_are_refused() {
    let mut w = World::new(Policy::default());
    let a = w.hospital_a.clone_key();
    let tx = w.enrol(&a, &patient_key(1));
    w.commit_one(tx.clone()).unwrap();
    // Hospital A's first nonce went to registering its obstetrician.
    refused(&mut w, tx.clone(), Error::StaleNonce { got: 2, last: 2 });
    // A fresh body signed with an old nonce is refused too.
    let old = Transaction {
        chain_id: w.chain_id(),
        signer: a.public_key(),
        nonce: 1,
        body: TxBody::EnrolPatient(EnrolPatient::prove(&patient_key(2), &w.chain_id())),
    }
    .sign(&a);
    refused(&mut w, old, Error::StaleNonce { got: 1, last: 2 });
    // Gaps are fine: nonces only have to grow.
    let gap = Transaction {
        nonce: 10,
        ..tx.tx.clone()
    };
    let gap = Transaction {
        body: TxBody::EnrolPatient(EnrolPatient::prove(&patient_key(3), &w.chain_id())),
        ..gap
    }
    .sign(&a);
    w.commit_one(gap).unwrap();
}

#[test]
fn wrong_chain_bad_signature_and_oversize_are_refused() {
    let mut w = World::new(Policy::default());
    let a = w.hospital_a.clone_key();
    let mut tx = w.enrol(&a, &patient_key(1));
    let other_chain = Transaction {
        chain_id: [9; 32],
        ..tx.tx.clone()
    }
    .sign(&a);
    refused(&mut w, other_chain.clone(), Error::WrongChain);
    assert_eq!(other_chain.verify(&w.chain_id()), Err(Error::WrongChain));
    tx.signature.0[3] ^= 1;
    assert_eq!(tx.verify(&w.chain_id()), Err(Error::BadSignature));
    assert_eq!(
        block::verify_signatures(std::slice::from_ref(&tx), &w.chain_id()),
        Err(Error::InvalidTx {
            index: 0,
            source: Box::new(Error::BadSignature)
        })
    );
    // Signed by someone else than the signer field says.
    let forged = Transaction {
        signer: w.hospital_b.public_key(),
        ..tx.tx.clone()
    }
    .sign(&a);
    assert_eq!(forged.verify(&w.chain_id()), Err(Error::BadSignature));
    // An oversized transaction: a grant listing too many archive keys to fit the limit.
    let p = patient_key(5);
    let keys: Vec<ArchiveKey> = (0..1000)
        .map(|i| ArchiveKey {
            archive: archive_id(i),
            key: wrapped(1),
        })
        .collect();
    let big = w.sign(
        &p,
        TxBody::GrantConsent(GrantConsent {
            grantee: a.public_key(),
            scope: Scope::All,
            purposes: BoundedVec::new(vec![Purpose::Treat]).unwrap(),
            roles: BoundedVec::default(),
            valid_from_ms: 0,
            expires_at_ms: u64::MAX,
            archive_keys: BoundedVec::new(keys).unwrap(),
        }),
    );
    let len = big.encode().len();
    refused(
        &mut w,
        big,
        Error::TooLarge {
            len,
            max: 64 * 1024,
        },
    );
}

#[test]
fn custodians_register_archives_for_enrolled_patients() {
    let (mut w, p, archive) = with_patient_and_archive();
    let rec = w.store.archive(&archive).unwrap().unwrap();
    assert_eq!(rec.custodian, w.hospital_a.public_key());
    assert_eq!(rec.patient, p.public_key());
    let a = w.hospital_a.clone_key();
    let r = w.regulator.clone_key();
    let tx = w.register(&a, &p, archive, Category::Ultrasound, vec![]);
    refused(&mut w, tx, Error::ArchiveExists(archive));
    let tx = w.register(&r, &p, archive_id(2), Category::Ultrasound, vec![]);
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "hold archives",
            signer: r.public_key(),
        },
    );
    let stranger = patient_key(7);
    let tx = w.register(&a, &stranger, archive_id(3), Category::Ultrasound, vec![]);
    refused(&mut w, tx, Error::UnknownPatient(stranger.public_key()));
    let mut tx = w.register(&a, &p, archive_id(4), Category::Ultrasound, vec![]);
    if let TxBody::RegisterArchive(r) = &mut tx.tx.body {
        r.size_bytes = 0;
    }
    let tx = tx.tx.sign(&a);
    refused(&mut w, tx, Error::EmptyArchive);
}

#[test]
fn a_new_archive_must_wrap_its_key_for_every_covering_grant_and_no_other() {
    let (mut w, p, first) = with_patient_and_archive();
    let (a, b, c) = (
        w.hospital_a.clone_key(),
        w.hospital_b.clone_key(),
        w.clinic.clone_key(),
    );
    let (g, gid) = w.grant(
        &p,
        &b,
        Scope::Categories(BoundedVec::new(vec![Category::Ultrasound]).unwrap()),
        &[Purpose::Treat],
        30,
        &[],
    );
    w.commit_one(g).unwrap();
    let (g2, gid2) = w.grant(&p, &c, Scope::All, &[Purpose::Treat], 30, &[first]);
    w.commit_one(g2).unwrap();
    // An ultrasound is covered by both grants.
    let tx = w.register(&a, &p, archive_id(2), Category::Ultrasound, vec![gid2]);
    refused(&mut w, tx, Error::MissingGrantKey(gid));
    // A prenatal visit is covered by the clinic's grant only.
    let tx = w.register(
        &a,
        &p,
        archive_id(3),
        Category::PrenatalVisit,
        vec![gid, gid2],
    );
    refused(&mut w, tx, Error::UnexpectedGrantKey(gid));
    let tx = w.register(&a, &p, archive_id(2), Category::Ultrasound, vec![gid, gid2]);
    w.commit_one(tx).unwrap();
    assert_eq!(
        w.store.grant_key(&gid, &archive_id(2)).unwrap(),
        Some(wrapped(7))
    );
    // A revoked grant gets no key.
    let rv = w.revoke(&p, gid);
    w.commit_one(rv).unwrap();
    let tx = w.register(&a, &p, archive_id(5), Category::Ultrasound, vec![gid2]);
    w.commit_one(tx).unwrap();
}

#[test]
fn only_the_patient_grants_and_grants_are_checked() {
    let (mut w, p, archive) = with_patient_and_archive();
    let b = w.hospital_b.clone_key();
    let (tx, gid) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 30, &[archive]);
    w.commit_one(tx).unwrap();
    let g = w.store.grant(&gid).unwrap().unwrap();
    assert_eq!(g.grantee, b.public_key());
    assert!(g.is_active(w.now_ms));
    assert_eq!(w.store.grant_key(&gid, &archive).unwrap(), Some(wrapped(9)));

    // A member cannot grant on a patient's behalf.
    let (tx, _) = w.grant(&b, &b, Scope::All, &[Purpose::Treat], 30, &[archive]);
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "grant consent (not an enrolled patient)",
            signer: b.public_key(),
        },
    );
    // The grantee must be a member institution.
    let other = patient_key(2);
    let (tx, _) = w.grant(&p, &other, Scope::All, &[Purpose::Treat], 30, &[archive]);
    refused(
        &mut w,
        tx,
        Error::InvalidGrant("the grantee is not a member institution"),
    );
    let (tx, _) = w.grant(&p, &b, Scope::All, &[], 30, &[archive]);
    refused(&mut w, tx, Error::InvalidGrant("no purpose"));
    let (tx, _) = w.grant(
        &p,
        &b,
        Scope::All,
        &[Purpose::Treat, Purpose::Treat],
        30,
        &[archive],
    );
    refused(&mut w, tx, Error::Duplicate("purpose".into()));
    let (tx, _) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 0, &[archive]);
    refused(&mut w, tx, Error::InvalidGrant("expires before it starts"));
    let (tx, _) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 20 * 365, &[archive]);
    refused(&mut w, tx, Error::InvalidGrant("longer than policy allows"));
    let (tx, _) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 30, &[]);
    refused(&mut w, tx, Error::MissingArchiveKey(archive));
    let (tx, _) = w.grant(
        &p,
        &b,
        Scope::All,
        &[Purpose::Treat],
        30,
        &[archive, archive_id(77)],
    );
    refused(&mut w, tx, Error::UnexpectedArchiveKey(archive_id(77)));
    let cats = Scope::Categories(BoundedVec::new(vec![Category::Ultrasound]).unwrap());
    let (tx, _) = w.grant(&p, &b, cats, &[Purpose::Treat], 30, &[archive]);
    refused(&mut w, tx, Error::UnexpectedArchiveKey(archive));
}

#[test]
fn only_the_patient_revokes_her_grant_once() {
    let (mut w, p, archive) = with_patient_and_archive();
    let b = w.hospital_b.clone_key();
    let (tx, gid) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 30, &[archive]);
    w.commit_one(tx).unwrap();
    let other = patient_key(2);
    let a = w.hospital_a.clone_key();
    let tx = w.enrol(&a, &other);
    w.commit_one(tx).unwrap();
    let tx = w.revoke(&other, gid);
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "revoke another patient's grant",
            signer: other.public_key(),
        },
    );
    let tx = w.revoke(&p, gid);
    w.commit_one(tx).unwrap();
    assert!(
        w.store
            .grant(&gid)
            .unwrap()
            .unwrap()
            .revoked_at_ms
            .is_some()
    );
    let tx = w.revoke(&p, gid);
    refused(&mut w, tx, Error::AlreadyRevoked(gid));
    let unknown = GrantId([5; 32]);
    let tx = w.revoke(&p, unknown);
    refused(&mut w, tx, Error::UnknownGrant(unknown));
}

#[test]
fn access_follows_the_consent_lifecycle_and_every_outcome_is_logged() {
    let (mut w, p, archive) = with_patient_and_archive();
    let (a, b) = (w.hospital_a.clone_key(), w.hospital_b.clone_key());

    // The patient and the custodian may always read.
    let req = w.request(&p, archive, Purpose::PatientRequest, None, 1);
    let tx = w.record(&a, req, None, permitted());
    w.commit_one(tx).unwrap();
    let req = w.request(w.staff(&a), archive, Purpose::Treat, None, 2);
    let tx = w.record(&a, req, None, permitted());
    w.commit_one(tx).unwrap();

    // B has no grant: denied, and the denial is logged.
    let req = w.request(w.staff(&b), archive, Purpose::Treat, None, 3);
    let tx = w.record(&a, req.clone(), None, permitted());
    assert!(matches!(
        unwrap_tx_error(w.commit_one(tx).unwrap_err()),
        Error::OutcomeMismatch { .. }
    ));
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::NoGrant,
        },
    );
    let ex = w.commit_one(tx).unwrap();
    assert_eq!(
        ex.events[0].event.outcome,
        EventOutcome::Denied {
            reason: DenialReason::NoGrant
        }
    );
    assert_eq!(ex.events[0].global_index, 2);

    // P grants B TREAT for 30 days: permitted through that grant; HRESCH is not covered.
    let (tx, gid) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 30, &[archive]);
    w.commit_one(tx).unwrap();
    let req = w.request(w.staff(&b), archive, Purpose::Treat, None, 4);
    let tx = w.record(&a, req.clone(), None, permitted());
    assert!(matches!(
        unwrap_tx_error(w.commit_one(tx).unwrap_err()),
        Error::OutcomeMismatch { .. }
    ));
    let tx = w.record(&a, req, Some(gid), permitted());
    w.commit_one(tx).unwrap();
    let req = w.request(w.staff(&b), archive, Purpose::Research, None, 5);
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::PurposeNotCovered,
        },
    );
    w.commit_one(tx).unwrap();

    // Revoked: denied from the next block on.
    let tx = w.revoke(&p, gid);
    w.commit_one(tx).unwrap();
    let req = w.request(w.staff(&b), archive, Purpose::Treat, None, 6);
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::GrantRevoked,
        },
    );
    w.commit_one(tx).unwrap();

    // Break-glass: ETREAT with a justification is permitted and flagged; without, denied.
    let req = w.request(
        w.staff(&b),
        archive,
        Purpose::EmergencyTreat,
        Some("postpartum haemorrhage, patient unconscious"),
        7,
    );
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::BreakGlass {
            key_for_accessor: wrapped(3),
        },
    );
    let ex = w.commit_one(tx).unwrap();
    assert!(ex.events[0].event.outcome.is_break_glass());
    let req = w.request(w.staff(&b), archive, Purpose::EmergencyTreat, None, 8);
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::JustificationRequired,
        },
    );
    w.commit_one(tx).unwrap();
    // Another patient is neither a member nor this archive's patient: her request is no one's
    // to record, so not even a denial of it enters this mother's history.
    let q = patient_key(3);
    let req = w.request(&q, archive, Purpose::EmergencyTreat, Some("x"), 9);
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::BreakGlassNotMember,
        },
    );
    assert!(matches!(w.commit_one(tx), Err(Error::NotAuthorized { .. })));

    assert_eq!(w.patient_log_size(&p), 8);
    assert_eq!(w.store.access_log().unwrap().size(), 8);
}

#[test]
fn expired_and_not_yet_valid_grants_deny() {
    let (mut w, p, archive) = with_patient_and_archive();
    let (a, b) = (w.hospital_a.clone_key(), w.hospital_b.clone_key());
    let (tx, _) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 1, &[archive]);
    w.commit_one(tx).unwrap();
    w.advance(2 * DAY_MS);
    let req = w.request(w.staff(&b), archive, Purpose::Treat, None, 1);
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::GrantExpired,
        },
    );
    w.commit_one(tx).unwrap();
    let mut tx = w
        .grant(&p, &b, Scope::All, &[Purpose::Treat], 3, &[archive])
        .0;
    if let TxBody::GrantConsent(g) = &mut tx.tx.body {
        g.valid_from_ms = w.now_ms + DAY_MS;
    }
    let tx = tx.tx.sign(&p);
    w.commit_one(tx).unwrap();
    let req = w.request(w.staff(&b), archive, Purpose::Treat, None, 2);
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::GrantNotYetValid,
        },
    );
    w.commit_one(tx).unwrap();
}

#[test]
fn break_glass_is_denied_when_policy_forbids_it() {
    let mut w = World::new(Policy {
        break_glass_allowed: false,
        ..Policy::default()
    });
    let (a, b) = (w.hospital_a.clone_key(), w.hospital_b.clone_key());
    let p = patient_key(1);
    let tx = w.enrol(&a, &p);
    w.commit_one(tx).unwrap();
    let tx = w.register(&a, &p, archive_id(1), Category::LabourAndDelivery, vec![]);
    w.commit_one(tx).unwrap();
    let req = w.request(
        w.staff(&b),
        archive_id(1),
        Purpose::EmergencyTreat,
        Some("eclampsia"),
        1,
    );
    let tx = w.record(
        &a,
        req.clone(),
        None,
        AccessOutcome::BreakGlass {
            key_for_accessor: wrapped(3),
        },
    );
    assert!(matches!(
        unwrap_tx_error(w.commit_one(tx).unwrap_err()),
        Error::OutcomeMismatch { .. }
    ));
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::BreakGlassNotAllowed,
        },
    );
    w.commit_one(tx).unwrap();
}

#[test]
fn only_the_custodian_records_fresh_unreplayed_requests() {
    let (mut w, p, archive) = with_patient_and_archive();
    let (b, c) = (w.hospital_b.clone_key(), w.clinic.clone_key());
    let a = w.hospital_a.clone_key();
    let req = w.request(&p, archive, Purpose::PatientRequest, None, 1);
    let tx = w.record(&c, req.clone(), None, permitted());
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "record access to another custodian's archive",
            signer: c.public_key(),
        },
    );
    let tx = w.record(&a, req.clone(), None, permitted());
    w.commit_one(tx).unwrap();
    let tx = w.record(&a, req, None, permitted());
    refused(&mut w, tx, Error::RequestReplayed);
    let old = w.request(w.staff(&b), archive, Purpose::Treat, None, 2);
    w.advance(11 * 60 * 1000);
    let now = w.now_ms + 1000;
    let requested_at_ms = old.request.requested_at_ms;
    let tx = w.record(
        &a,
        old,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::NoGrant,
        },
    );
    refused(
        &mut w,
        tx,
        Error::StaleRequest {
            requested_at_ms,
            now_ms: now,
        },
    );
    // A request whose accessor signature is forged is refused when signatures are checked.
    let mut forged = w.request(w.staff(&b), archive, Purpose::Treat, None, 3);
    forged.signature.0[0] ^= 0x40;
    let tx = w.record(
        &a,
        forged,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::NoGrant,
        },
    );
    assert_eq!(tx.verify(&w.chain_id()), Err(Error::BadSignature));
    assert_eq!(
        block::verify_signatures(&[tx], &w.chain_id()),
        Err(Error::InvalidTx {
            index: 0,
            source: Box::new(Error::BadSignature)
        })
    );
    let unknown = archive_id(99);
    let req = w.request(w.staff(&b), unknown, Purpose::Treat, None, 4);
    let tx = w.record(&a, req, None, permitted());
    refused(&mut w, tx, Error::UnknownArchive(unknown));
}

#[test]
fn blocks_must_extend_the_tip_and_match_their_header() {
    let (mut w, p, _) = with_patient_and_archive();
    let a = w.hospital_a.clone_key();
    let tx = w.enrol(&a, &patient_key(2));
    let dup = w.enrol(&a, &p);
    let built = block::build_block(
        &w.store,
        &w.consortium,
        &w.tip,
        w.now_ms + 1000,
        a.public_key(),
        vec![tx],
    )
    .unwrap();
    let good = built.block;
    let root = w.root();
    let check = |block: &block::Block, tip: &ChainTip| {
        block::execute(
            &w.store,
            &w.consortium,
            block::check_block(&w.consortium, tip, block)?,
        )
    };

    let mut b = good.clone();
    b.header.height += 1;
    assert_eq!(
        check(&b, &w.tip),
        Err(Error::WrongHeight {
            got: w.tip.height + 2,
            want: w.tip.height + 1
        })
    );
    let mut b = good.clone();
    b.header.prev_hash = Digest32([0; 32]);
    assert_eq!(check(&b, &w.tip), Err(Error::WrongParent));
    let mut b = good.clone();
    b.header.time_ms = w.tip.time_ms;
    assert_eq!(
        check(&b, &w.tip),
        Err(Error::TimeNotIncreasing {
            got: w.tip.time_ms,
            prev: w.tip.time_ms
        })
    );
    let mut b = good.clone();
    b.header.proposer = w.regulator.public_key();
    assert_eq!(
        check(&b, &w.tip),
        Err(Error::NotAValidator(w.regulator.public_key()))
    );
    let mut b = good.clone();
    b.header.state_root = Digest32([1; 32]);
    assert_eq!(check(&b, &w.tip), Err(Error::HeaderMismatch("state_root")));
    let mut b = good.clone();
    b.header.tx_root = Digest32([1; 32]);
    assert_eq!(check(&b, &w.tip), Err(Error::HeaderMismatch("tx_root")));
    let mut b = good.clone();
    b.header.chain_id = Digest32([1; 32]);
    assert_eq!(check(&b, &w.tip), Err(Error::WrongChain));
    // A block smuggling in a refused transaction is refused whole.
    let mut b = good.clone();
    let mut txs = b.txs.to_vec();
    txs.push(dup);
    b.txs = BoundedVec::new(txs).unwrap();
    b.header.tx_count = 2;
    b.header.tx_root = Digest32(block::tx_root(&b.txs));
    assert_eq!(
        check(&b, &w.tip),
        Err(Error::InvalidTx {
            index: 1,
            source: Box::new(Error::AlreadyEnrolled(p.public_key()))
        })
    );
    assert_eq!(w.root(), root);
    check(&good, &w.tip).unwrap();
}

#[test]
fn signatures_verified_on_admission_are_skipped_and_a_bad_one_is_named_by_block_index() {
    let mut w = World::new(Policy::default());
    let a = w.hospital_a.clone_key();
    let txs: Vec<_> = (1..=3).map(|i| w.enrol(&a, &patient_key(i))).collect();
    let built = block::build_block(
        &w.store,
        &w.consortium,
        &w.tip,
        w.now_ms + 1000,
        a.public_key(),
        txs,
    )
    .unwrap();
    let mut bad = built.block.clone();
    let mut txs = bad.txs.to_vec();
    txs[0].signature.0[3] ^= 1;
    txs[2].signature.0[3] ^= 1;
    let (first, last) = (txs[0].hash(), txs[2].hash());
    bad.txs = BoundedVec::new(txs).unwrap();
    bad.header.tx_root = Digest32(block::tx_root(&bad.txs));
    let chain_id = w.chain_id();
    let envelope = || block::check_envelope(&w.consortium, &w.tip, &bad).unwrap();

    assert_eq!(
        envelope().verify_signatures(&chain_id).err(),
        Some(Error::InvalidTx {
            index: 0,
            source: Box::new(Error::BadSignature)
        })
    );
    // The first was "admitted" to a mempool, so only the third is checked, and named as the
    // block's third transaction.
    assert_eq!(
        envelope()
            .verify_signatures_except(&chain_id, |h| *h == first)
            .err(),
        Some(Error::InvalidTx {
            index: 2,
            source: Box::new(Error::BadSignature)
        })
    );
    // Whoever vouches for a transaction owns that promise: nothing checks it again.
    let checked = envelope()
        .verify_signatures_except(&chain_id, |h| *h == first || *h == last)
        .unwrap();
    assert!(std::ptr::eq(checked.block(), &bad));

    // A block whose transactions were all admitted executes as if fully checked.
    let good = &built.block;
    let all = block::check_envelope(&w.consortium, &w.tip, good)
        .unwrap()
        .verify_signatures_except(&chain_id, |_| true)
        .unwrap();
    assert_eq!(
        block::execute(&w.store, &w.consortium, all).unwrap(),
        built.executed
    );
}

#[test]
fn commit_certificates_make_blocks_final_for_light_clients() {
    let (w, _, _) = with_patient_and_archive();
    for fb in &w.blocks {
        fb.verify_certificate(&w.consortium).unwrap();
    }
    let mut fb = w.blocks[0].clone();
    fb.block.header.state_root = Digest32([3; 32]);
    assert!(
        fb.verify_certificate(&w.consortium).is_err(),
        "certificate must bind the header"
    );
    let mut fb = w.blocks[0].clone();
    fb.certificate.signatures.truncate(2);
    assert!(matches!(
        fb.verify_certificate(&w.consortium),
        Err(Error::Consensus(
            cradle_consensus::Error::InsufficientPower { .. }
        ))
    ));
    let bytes = w.blocks[1].encode();
    assert_eq!(
        block::FinalizedBlock::decode(&bytes, bytes.len()).unwrap(),
        w.blocks[1]
    );
}

#[test]
fn every_access_grows_the_patient_archive_accessor_and_break_glass_logs() {
    let (mut w, p, archive) = with_patient_and_archive();
    let (a, b) = (w.hospital_a.clone_key(), w.hospital_b.clone_key());
    let other = archive_id(2);
    let reg = w.register(&a, &p, other, Category::Ultrasound, vec![]);
    w.commit_one(reg).unwrap();
    let sizes = |w: &World| {
        let log = |k: Vec<u8>| w.store.log(&k).unwrap().size();
        (
            w.patient_log_size(&p),
            log(state::keys::archive_log(&archive)),
            log(state::keys::archive_log(&other)),
            log(state::keys::accessor_log(&b.public_key())),
            log(state::keys::accessor_log(&p.public_key())),
            log(state::keys::break_glass_log()),
        )
    };
    assert_eq!(sizes(&w), (0, 0, 0, 0, 0, 0));

    // The patient reads her own archive.
    let req = w.request(&p, archive, Purpose::PatientRequest, None, 1);
    let tx = w.record(&a, req, None, permitted());
    w.commit_one(tx).unwrap();
    assert_eq!(sizes(&w), (1, 1, 0, 0, 1, 0));

    // Hospital B without a grant: denied, logged under B and the archive.
    let req = w.request(w.staff(&b), other, Purpose::Treat, None, 2);
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::NoGrant,
        },
    );
    w.commit_one(tx).unwrap();
    assert_eq!(sizes(&w), (2, 1, 1, 1, 1, 0));

    // Hospital B breaks the glass: the break-glass log grows too.
    let req = w.request(
        w.staff(&b),
        archive,
        Purpose::EmergencyTreat,
        Some("haemorrhage"),
        3,
    );
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::BreakGlass {
            key_for_accessor: wrapped(3),
        },
    );
    let executed = w.commit_one(tx).unwrap();
    assert_eq!(sizes(&w), (3, 2, 1, 2, 1, 1));

    // Each log's root is the RFC 6962 root of the leaves it should hold.
    let leaf = executed.events[0].event.leaf_hash();
    let bg = w.store.log(&state::keys::break_glass_log()).unwrap();
    assert_eq!(bg.root(), merkle::log::root_of(&[leaf]));
    assert_eq!(w.store.access_log().unwrap().size(), 3);
}

#[test]
fn expired_grants_do_not_count_toward_the_open_grant_cap() {
    let (mut w, p, archive) = with_patient_and_archive();
    let b = w.hospital_b.clone_key();
    let max = cradle_ledger::rules::OPEN_GRANTS_MAX;
    for _ in 0..max {
        let (tx, _) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 1, &[archive]);
        w.commit_one(tx).unwrap();
    }
    // At the cap while they are all in force.
    let (tx, _) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 1, &[archive]);
    assert!(matches!(
        w.commit_one(tx),
        Err(Error::TooManyGrants { open, .. }) if open == max
    ));
    // Once they expired, she can grant again, and the count is only what is in force.
    w.advance(2 * DAY_MS);
    let (tx, _) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 1, &[archive]);
    w.commit_one(tx).unwrap();
    assert_eq!(
        w.store
            .patient(&p.public_key())
            .unwrap()
            .unwrap()
            .open_grants,
        1
    );
}
