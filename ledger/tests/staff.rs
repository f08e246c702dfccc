//! Clinicians on the ledger: who may register and change them, and the access rule in terms of
//! people. Every refusal leaves the state root as it was.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use common::*;
use cradle_ledger::access::{AccessOutcome, DenialReason, EventOutcome};
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::staff::*;
use cradle_ledger::state::StateExt;
use cradle_ledger::tx::*;
use cradle_ledger::*;

fn unwrap_tx_error(e: Error) -> Error {
    match e {
        Error::InvalidTx { source, .. } => *source,
        other => other,
    }
}

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

fn copy(k: &Keypair) -> Keypair {
    Keypair::from_secret_parts(&k.ed25519_seed(), &k.x25519_secret())
}

fn denied(reason: DenialReason) -> AccessOutcome {
    AccessOutcome::Denied { reason }
}

/// Patient P enrolled at hospital A with one ultrasound A holds, and a grant to hospital B for
/// treatment limited to `roles`.
struct Setup {
    w: World,
    a: Keypair,
    b: Keypair,
    p: Keypair,
    archive: ArchiveId,
    grant: GrantId,
}

fn setup(roles: &[StaffRole]) -> Setup {
    let mut w = World::new(Policy::default());
    let (a, b) = (copy(&w.hospital_a), copy(&w.hospital_b));
    let p = patient_key(1);
    let archive = archive_id(1);
    let tx = w.enrol(&a, &p);
    w.commit_one(tx).unwrap();
    let tx = w.register(&a, &p, archive, Category::Ultrasound, vec![]);
    w.commit_one(tx).unwrap();
    let (mut tx, grant) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 30, &[archive]);
    if let TxBody::GrantConsent(g) = &mut tx.tx.body {
        g.roles = BoundedVec::new(roles.to_vec()).unwrap();
    }
    let tx = tx.tx.sign(&p);
    w.commit_one(tx).unwrap();
    Setup {
        w,
        a,
        b,
        p,
        archive,
        grant,
    }
}

impl Setup {
    /// `who` asks for the archive with `purpose`; A records `outcome`. Returns the commit.
    fn read(
        &mut self,
        who: &Keypair,
        purpose: Purpose,
        justification: Option<&str>,
        id: u8,
        grant: Option<GrantId>,
        outcome: AccessOutcome,
    ) -> Result<block::Executed, Error> {
        let req = self
            .w
            .request(who, self.archive, purpose, justification, id);
        let tx = self.w.record(&self.a, req, grant, outcome);
        self.w.commit_one(tx).map_err(unwrap_tx_error)
    }

    /// A key no institution answers for any more: its request cannot be recorded at all, not
    /// even as a denial, so it writes nothing into the mother's history.
    fn not_recordable(&mut self, who: &Keypair, id: u8) {
        let before = self.w.patient_log_size(&self.p);
        let got = self.read(
            who,
            Purpose::Treat,
            None,
            id,
            None,
            denied(DenialReason::StaffNotActive),
        );
        assert_eq!(
            got.map(|_| ()),
            Err(Error::NotAuthorized {
                action: "record an access by a key that is neither an active clinician, a member nor the archive's patient",
                signer: self.a.public_key(),
            })
        );
        assert_eq!(self.w.patient_log_size(&self.p), before);
    }

    fn add(&mut self, by: &Keypair, institution: &Keypair, seed: u8, role: StaffRole) -> Keypair {
        let clinician = Keypair::from_seed(&[seed; 32]);
        let tx = self.w.register_staff(by, institution, &clinician, role);
        self.w.commit_one(tx).unwrap();
        clinician
    }
}

#[test]
fn an_institution_key_cannot_read_and_the_refusal_is_logged() {
    let mut s = setup(&[]);
    let b = copy(&s.b);
    let grant = s.grant;
    // Recording it as permitted is refused by every validator...
    assert!(matches!(
        s.read(&b, Purpose::Treat, None, 1, Some(grant), permitted()),
        Err(Error::OutcomeMismatch { .. })
    ));
    // ...and the honest record is a denial, in the patient's history.
    let ex = s
        .read(
            &b,
            Purpose::Treat,
            None,
            1,
            None,
            denied(DenialReason::InstitutionKey),
        )
        .unwrap();
    let event = &ex.events[0].event;
    assert_eq!(event.accessor, b.public_key());
    assert_eq!(event.staff, None);
    // The custodian's own key is refused too: a person reads, with her own key.
    let a = copy(&s.a);
    s.read(
        &a,
        Purpose::Treat,
        None,
        2,
        None,
        denied(DenialReason::InstitutionKey),
    )
    .unwrap();
}

#[test]
fn a_grant_covers_the_institutions_active_clinicians_and_names_each() {
    let mut s = setup(&[]);
    let b_doc = copy(s.w.staff(&s.b));
    let grant = s.grant;
    let ex = s
        .read(&b_doc, Purpose::Treat, None, 1, Some(grant), permitted())
        .unwrap();
    let event = &ex.events[0].event;
    assert_eq!(event.outcome, EventOutcome::Permitted);
    let b_rec = s.w.store.staff(&b_doc.public_key()).unwrap().unwrap();
    assert_eq!(
        event.staff,
        Some(StaffRef {
            id: b_rec.id,
            institution: s.b.public_key(),
            role: StaffRole::Obstetrician,
        })
    );
    // The custodian's clinician reads without a grant.
    let a_doc = copy(s.w.staff(&s.a));
    s.read(&a_doc, Purpose::Treat, None, 2, None, permitted())
        .unwrap();
    // The clinic's midwife has no grant.
    let midwife = copy(s.w.staff(&s.w.clinic));
    s.read(
        &midwife,
        Purpose::Treat,
        None,
        3,
        None,
        denied(DenialReason::NoGrant),
    )
    .unwrap();
    // A permitted read that does not carry the key re-wrapped for the clinician is refused.
    let req = s.w.request(&b_doc, s.archive, Purpose::Treat, None, 4);
    let tx = s.w.sign(
        &s.a,
        TxBody::RecordAccess(RecordAccess {
            request: req,
            grant: Some(grant),
            outcome: permitted(),
        }),
    );
    refused(
        &mut s.w,
        tx,
        Error::OutcomeMismatch {
            recorded: "a permitted read with the key wrapped for the wrong party".into(),
            rule: "the key re-wrapped for a clinician, and none for the patient".into(),
        },
    );
    // The patient reads with no key in the record (hers is in the archive record).
    let p = copy(&s.p);
    s.read(&p, Purpose::PatientRequest, None, 5, None, permitted())
        .unwrap();
}

#[test]
fn suspended_retired_and_rotated_out_keys_are_refused_from_the_next_block() {
    let mut s = setup(&[]);
    let b = copy(&s.b);
    let grant = s.grant;
    let doc = s.add(&b, &b, 40, StaffRole::Midwife);
    s.read(&doc, Purpose::Treat, None, 1, Some(grant), permitted())
        .unwrap();

    let tx = s.w.sign(
        &b,
        TxBody::SetStaffStatus(SetStaffStatus {
            staff: doc.public_key(),
            status: StaffStatus::Suspended,
        }),
    );
    s.w.commit_one(tx).unwrap();
    s.not_recordable(&doc, 2);
    let tx = s.w.sign(
        &b,
        TxBody::SetStaffStatus(SetStaffStatus {
            staff: doc.public_key(),
            status: StaffStatus::Active,
        }),
    );
    s.w.commit_one(tx).unwrap();
    s.read(&doc, Purpose::Treat, None, 3, Some(grant), permitted())
        .unwrap();

    // A stolen laptop: new keys, the same person; the old key is refused.
    let new = Keypair::from_seed(&[41; 32]);
    let old_id = s.w.store.staff(&doc.public_key()).unwrap().unwrap().id;
    let tx = s.w.sign(
        &b,
        TxBody::RotateStaffKey(RotateStaffKey {
            staff: doc.public_key(),
            new_keys: StaffKeys::prove(&new, &s.w.chain_id()),
        }),
    );
    s.w.commit_one(tx).unwrap();
    s.not_recordable(&doc, 4);
    let ex = s
        .read(&new, Purpose::Treat, None, 5, Some(grant), permitted())
        .unwrap();
    assert_eq!(ex.events[0].event.staff.unwrap().id, old_id);
    // The old key changes no more; the new one is the one to name.
    let tx = s.w.sign(
        &b,
        TxBody::SetStaffStatus(SetStaffStatus {
            staff: doc.public_key(),
            status: StaffStatus::Active,
        }),
    );
    refused(
        &mut s.w,
        tx,
        Error::InvalidStaffChange("this key was replaced: name the clinician's current key"),
    );

    let tx = s.w.sign(
        &b,
        TxBody::SetStaffStatus(SetStaffStatus {
            staff: new.public_key(),
            status: StaffStatus::Retired,
        }),
    );
    s.w.commit_one(tx).unwrap();
    s.not_recordable(&new, 6);
    let tx = s.w.sign(
        &b,
        TxBody::SetStaffStatus(SetStaffStatus {
            staff: new.public_key(),
            status: StaffStatus::Active,
        }),
    );
    refused(
        &mut s.w,
        tx,
        Error::InvalidStaffChange("the clinician is retired"),
    );
}

#[test]
fn a_role_scoped_grant_admits_its_roles_only() {
    let mut s = setup(&[StaffRole::Obstetrician, StaffRole::Midwife]);
    let b = copy(&s.b);
    let grant = s.grant;
    let obstetrician = copy(s.w.staff(&s.b));
    s.read(
        &obstetrician,
        Purpose::Treat,
        None,
        1,
        Some(grant),
        permitted(),
    )
    .unwrap();
    let admin = s.add(&b, &b, 42, StaffRole::Administrator);
    s.read(
        &admin,
        Purpose::Treat,
        None,
        2,
        None,
        denied(DenialReason::RoleNotCovered),
    )
    .unwrap();
    // Recording the administrator's read as permitted is refused.
    assert!(matches!(
        s.read(&admin, Purpose::Treat, None, 3, Some(grant), permitted()),
        Err(Error::OutcomeMismatch { .. })
    ));
}

#[test]
fn break_glass_is_for_the_roles_the_policy_names_and_the_record_names_her() {
    let mut s = setup(&[]);
    let c = copy(&s.w.clinic);
    let er = s.add(&c, &c, 43, StaffRole::EmergencyPhysician);
    let ex = s
        .read(
            &er,
            Purpose::EmergencyTreat,
            Some("antepartum haemorrhage, unconscious"),
            1,
            None,
            AccessOutcome::BreakGlass {
                key_for_accessor: wrapped(3),
            },
        )
        .unwrap();
    let event = &ex.events[0].event;
    assert!(event.outcome.is_break_glass());
    let staff = event.staff.unwrap();
    assert_eq!(staff.role, StaffRole::EmergencyPhysician);
    assert_eq!(staff.institution, c.public_key());
    // The clinic's midwife may not break the glass under the default policy.
    let midwife = copy(s.w.staff(&s.w.clinic));
    s.read(
        &midwife,
        Purpose::EmergencyTreat,
        Some("bleeding"),
        2,
        None,
        denied(DenialReason::BreakGlassRoleNotAllowed),
    )
    .unwrap();
}

#[test]
fn who_may_register_and_change_clinicians() {
    let mut w = World::new(Policy::default());
    let (a, b, r) = (copy(&w.hospital_a), copy(&w.hospital_b), copy(&w.regulator));
    let admin = Keypair::from_seed(&[50; 32]);
    let tx = w.register_staff(&a, &a, &admin, StaffRole::Administrator);
    w.commit_one(tx).unwrap();
    // A's administrator registers a nurse at A, not at B.
    let nurse = Keypair::from_seed(&[51; 32]);
    let tx = w.register_staff(&admin, &a, &nurse, StaffRole::Nurse);
    w.commit_one(tx).unwrap();
    let other = Keypair::from_seed(&[52; 32]);
    let tx = w.register_staff(&admin, &b, &other, StaffRole::Nurse);
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "register clinicians of this institution",
            signer: admin.public_key(),
        },
    );
    // B cannot change A's nurse; a nurse cannot register anyone.
    let tx = w.sign(
        &b,
        TxBody::SetStaffStatus(SetStaffStatus {
            staff: nurse.public_key(),
            status: StaffStatus::Retired,
        }),
    );
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "change the status of this clinician",
            signer: b.public_key(),
        },
    );
    let tx = w.register_staff(&nurse, &a, &other, StaffRole::Nurse);
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "register clinicians of this institution",
            signer: nurse.public_key(),
        },
    );
    // A regulator employs no clinicians.
    let tx = w.register_staff(&r, &r, &other, StaffRole::Nurse);
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "employ clinicians",
            signer: r.public_key(),
        },
    );
    // A key serves one party: not a second clinician, a member or a patient.
    let tx = w.register_staff(&a, &a, &nurse, StaffRole::Midwife);
    refused(
        &mut w,
        tx,
        Error::KeyInUse {
            key: nurse.public_key(),
            by: "a clinician",
        },
    );
    let tx = w.register_staff(&a, &a, &copy(&b), StaffRole::Midwife);
    refused(
        &mut w,
        tx,
        Error::KeyInUse {
            key: b.public_key(),
            by: "a member institution",
        },
    );
    let p = patient_key(3);
    let tx = w.enrol(&a, &p);
    w.commit_one(tx).unwrap();
    let tx = w.register_staff(&a, &a, &p, StaffRole::Midwife);
    refused(
        &mut w,
        tx,
        Error::KeyInUse {
            key: p.public_key(),
            by: "a patient",
        },
    );
    let tx = w.enrol(&a, &nurse);
    refused(
        &mut w,
        tx,
        Error::KeyInUse {
            key: nurse.public_key(),
            by: "a clinician",
        },
    );
    // A proof made for another key pair is refused before any rule runs.
    let mut keys = StaffKeys::prove(&other, &w.chain_id());
    keys.x25519 = a.x25519_public();
    let tx = w.sign(
        &a,
        TxBody::RegisterStaff(RegisterStaff {
            institution: a.public_key(),
            keys,
            role: StaffRole::Nurse,
            department: Department::Emergency,
        }),
    );
    let got = w.commit_one(tx).map(|_| ()).map_err(unwrap_tx_error);
    assert_eq!(got, Err(Error::BadEnrolmentProof(other.public_key())));
    // A suspended administrator manages no one.
    let tx = w.sign(
        &a,
        TxBody::SetStaffStatus(SetStaffStatus {
            staff: admin.public_key(),
            status: StaffStatus::Suspended,
        }),
    );
    w.commit_one(tx).unwrap();
    let tx = w.register_staff(&admin, &a, &other, StaffRole::Nurse);
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "register clinicians of this institution",
            signer: admin.public_key(),
        },
    );
    let listed = w.store.institution_staff(&a.public_key(), 100).unwrap();
    assert_eq!(
        listed.len(),
        3,
        "the obstetrician, the administrator, the nurse"
    );
}

#[test]
fn a_clinician_registers_archives_for_her_own_institution_only() {
    let mut w = World::new(Policy::default());
    let (a, b) = (copy(&w.hospital_a), copy(&w.hospital_b));
    let p = patient_key(1);
    let tx = w.enrol(&a, &p);
    w.commit_one(tx).unwrap();
    let a_doc = copy(w.staff(&a));
    let tx = w.register(&a_doc, &p, archive_id(1), Category::PrenatalVisit, vec![]);
    if let TxBody::RegisterArchive(r) = &tx.tx.body {
        assert_eq!(
            r.custodian,
            a_doc.public_key(),
            "the helper names the signer"
        );
    }
    // On behalf of hospital A: A stays the custodian.
    let mut body = match tx.tx.body {
        TxBody::RegisterArchive(r) => r,
        _ => unreachable!(),
    };
    body.custodian = a.public_key();
    let tx = w.sign(&a_doc, TxBody::RegisterArchive(body.clone()));
    w.commit_one(tx).unwrap();
    let rec = w.store.archive(&archive_id(1)).unwrap().unwrap();
    assert_eq!(rec.custodian, a.public_key());
    // Not on behalf of hospital B.
    body.archive = archive_id(2);
    body.custodian = b.public_key();
    let tx = w.sign(&a_doc, TxBody::RegisterArchive(body));
    refused(
        &mut w,
        tx,
        Error::NotAuthorized {
            action: "register archives for this custodian",
            signer: a_doc.public_key(),
        },
    );
}
