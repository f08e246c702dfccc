//! A member's keys rotated by a vote: the member keeps its identity (what its records name),
//! the new key signs, votes and is the validator from the activation height on, and the old
//! key is refused as signer, voter and as anyone's key for good.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use cradle_consensus::{CommitCertificate, Vote, VoteKind};
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::crypto;
use cradle_ledger::governance::{self, Change, HeaderTrust, Sets};
use cradle_ledger::state::StateExt;
use cradle_ledger::tx::{Category, RegisterArchive, TxBody, prove_keys};
use cradle_ledger::*;

fn rotate(member: &Keypair, new: &Keypair, chain: &Hash) -> Change {
    let (_, _, proof) = prove_keys(new, chain);
    Change::RotateMemberKey {
        member: member.public_key(),
        new_key: new.public_key(),
        new_x25519: new.x25519_public(),
        proof,
    }
}

/// The clinic's archive for `patient`, registered by whichever key signs for the clinic.
fn register_as(w: &mut World, signer: &Keypair, patient: &Keypair, id: u64) -> Result<(), Error> {
    let archive = archive_id(id);
    let tx = w.sign(
        signer,
        TxBody::RegisterArchive(RegisterArchive {
            archive,
            custodian: w.clinic.public_key(),
            patient: patient.public_key(),
            ciphertext_sha256: crypto::sha256(&archive.0),
            size_bytes: 4096,
            category: Category::Postpartum,
            key_for_patient: wrapped(1),
            key_for_custodian: wrapped(2),
            grant_keys: BoundedVec::new(vec![]).unwrap(),
        }),
    );
    w.commit_one(tx).map(drop)
}

/// Rotates the clinic's keys to `new` by the votes of the three validators (the clinic's
/// current key among them), and passes the two heights to the activation.
fn rotate_clinic(w: &mut World, current: &Keypair, new: &Keypair) {
    let chain = w.chain_id();
    let (a, b) = (copy(&w.hospital_a), copy(&w.hospital_b));
    let id = propose(w, &a, rotate(&copy(&w.clinic), new, &chain)).unwrap();
    approve(w, &b, id).unwrap();
    approve(w, current, id).unwrap();
    assert!(matches!(
        governance::proposal(&w.store, &id)
            .unwrap()
            .unwrap()
            .adoption,
        governance::Adoption::Adopted { .. }
    ));
    w.joined.push(copy(new));
    w.advance(1000);
    w.advance(1000);
}

#[test]
fn a_rotated_member_signs_with_its_new_key_and_its_records_keep_its_identity() {
    let mut w = World::new(Policy::default());
    let clinic = copy(&w.clinic);
    let patient = patient_key(1);
    let tx = w.enrol(&clinic, &patient);
    w.commit_one(tx).unwrap();
    register_as(&mut w, &clinic, &patient, 1).unwrap();

    let new = Keypair::from_seed(&[50; 32]);
    rotate_clinic(&mut w, &clinic, &new);
    assert_eq!(w.consortium.epoch, 1);
    let me = w.consortium.signer(&new.public_key()).unwrap();
    assert_eq!(me.public_key, clinic.public_key(), "the identity stays");
    assert_eq!(me.x25519, new.x25519_public());
    assert!(w.consortium.signer(&clinic.public_key()).is_none());
    let validators = w.consortium.validators();
    assert!(validators.index_of(&new.public_key().0).is_some());
    assert!(validators.index_of(&clinic.public_key().0).is_none());

    // The old key signs nothing any more: not an enrolment, a registration or a vote.
    let second = patient_key(2);
    let tx = w.enrol(&clinic, &second);
    let err = w.commit_one(tx).unwrap_err();
    assert_eq!(err, Error::KeyRotatedOut(clinic.public_key()));
    let err = register_as(&mut w, &clinic, &patient, 2).unwrap_err();
    assert_eq!(err, Error::KeyRotatedOut(clinic.public_key()));

    // The new key acts as the clinic: its enrolment names the clinic, and it registers
    // archives in the clinic's custody, beside the one registered before the rotation.
    let tx = w.enrol(&new, &second);
    w.commit_one(tx).unwrap();
    let enrolled = w.store.patient(&second.public_key()).unwrap().unwrap();
    assert_eq!(enrolled.enrolled_by, clinic.public_key());
    register_as(&mut w, &new, &second, 2).unwrap();
    for id in [1, 2] {
        let a = w.store.archive(&archive_id(id)).unwrap().unwrap();
        assert_eq!(a.custodian, clinic.public_key());
    }

    // A light client that followed the change checks every header, and refuses a certificate
    // carrying the old key's precommit after the activation.
    let changes: Vec<_> = governance::history(&w.store, 10)
        .unwrap()
        .into_iter()
        .map(|(first, set)| governance::SetChange {
            set,
            header: w.blocks[(first - 2) as usize].block.header.clone(),
            certificate: w.blocks[(first - 2) as usize].certificate.clone(),
        })
        .collect();
    let sets = Sets::following(w.genesis.clone(), &changes).unwrap();
    for fb in &w.blocks {
        sets.check_header(&fb.block.header, &fb.certificate)
            .unwrap_or_else(|e| panic!("height {}: {e}", fb.block.header.height));
    }
    let last = &w.blocks.last().unwrap().block.header;
    let consortium = sets.at(last.height);
    let votes: Vec<_> = [&w.hospital_a, &w.hospital_b, &clinic]
        .into_iter()
        .enumerate()
        .map(|(i, k)| {
            Vote {
                kind: VoteKind::Precommit,
                height: last.height,
                round: 0,
                value: Some(last.value_id()),
                validator: i as u16,
            }
            .sign(&consortium.chain_id, k.signing_key())
        })
        .collect();
    let forged = CommitCertificate::from_precommits(last.height, 0, last.value_id(), &votes);
    assert!(sets.check_header(last, &forged).is_err());
}

#[test]
fn bad_rotations_are_refused_and_a_rotated_out_key_is_nobodys_again() {
    let mut w = World::new(Policy::default());
    let chain = w.chain_id();
    let (a, clinic) = (copy(&w.hospital_a), copy(&w.clinic));
    let b = copy(&w.hospital_b);
    let stranger = Keypair::from_seed(&[60; 32]);
    let err = propose(
        &mut w,
        &a,
        rotate(&stranger, &Keypair::from_seed(&[61; 32]), &chain),
    );
    assert_eq!(
        err.unwrap_err(),
        Error::UnknownMember(stranger.public_key())
    );
    // To another member's key: two members would answer to one key.
    let err = propose(&mut w, &a, rotate(&clinic, &b, &chain)).unwrap_err();
    assert!(matches!(err, Error::DuplicateMember(_)), "{err}");
    // To an enrolled patient's key.
    let patient = patient_key(3);
    let tx = w.enrol(&clinic, &patient);
    w.commit_one(tx).unwrap();
    let err = propose(&mut w, &a, rotate(&clinic, &patient, &chain)).unwrap_err();
    assert!(matches!(err, Error::KeyInUse { .. }), "{err}");
    // A proof made by another key than the new one.
    let new = Keypair::from_seed(&[62; 32]);
    let (_, _, wrong_proof) = prove_keys(&stranger, &chain);
    let forged = Change::RotateMemberKey {
        member: clinic.public_key(),
        new_key: new.public_key(),
        new_x25519: new.x25519_public(),
        proof: wrong_proof,
    };
    assert!(propose(&mut w, &a, forged).is_err());
    assert!(governance::membership(&w.store).unwrap().is_none());

    // Two rotations in a row: each retired key is refused, as signer and as a new key.
    rotate_clinic(&mut w, &clinic, &new);
    let newer = Keypair::from_seed(&[63; 32]);
    rotate_clinic(&mut w, &new, &newer);
    assert_eq!(w.consortium.epoch, 2);
    let tx = w.enrol(&new, &patient_key(4));
    assert!(matches!(
        w.commit_one(tx).unwrap_err(),
        Error::NotAuthorized { .. }
    ));
    let tx = w.enrol(&newer, &patient_key(4));
    w.commit_one(tx).unwrap();
    // Back to a key it had: refused.
    let err = propose(&mut w, &a, rotate(&clinic, &new, &chain)).unwrap_err();
    assert!(matches!(err, Error::KeyInUse { .. }), "{err}");
    let err = propose(&mut w, &a, rotate(&clinic, &clinic, &chain)).unwrap_err();
    assert!(matches!(err, Error::InvalidKeyChange(_)), "{err}");
    // Nor can a patient enrol with a key the clinic rotated away from.
    let tx = w.enrol(&newer, &new);
    assert!(w.commit_one(tx).is_err());
}
