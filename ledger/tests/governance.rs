//! Governance on the ledger: a change is adopted by more than two thirds of the voting power,
//! takes effect two heights later at every node alike, and each change that would break the
//! consortium is refused with its error while the chain goes on.
#![allow(clippy::unwrap_used)]

mod common;

use common::*;
use cradle_ledger::block;
use cradle_ledger::crypto::Digest32;
use cradle_ledger::governance::{self, Change, ProposeChange};
use cradle_ledger::tx::{EnrolPatient, TxBody, prove_keys};
use cradle_ledger::*;

/// A new clinic's member entry and its proof of its keys.
fn new_clinic(chain: &Hash, key: &Keypair, name: &str) -> Change {
    let (_, _, proof) = prove_keys(key, chain);
    let mut m = member(name, Role::Clinic, key, 1);
    m.p2p_addr = Some("/ip4/127.0.0.1/tcp/26610".into());
    m.api_addr = Some("127.0.0.1:8610".into());
    Change::AddMember { member: m, proof }
}

/// The world's hospitals, clinic and regulator, by the seeds [`World::new`] gives them.
fn keys(w: &World) -> (Keypair, Keypair, Keypair, Keypair) {
    let k = |seed: u8| Keypair::from_seed(&[seed; 32]);
    let out = (k(1), k(2), k(3), k(4));
    assert_eq!(out.0.public_key(), w.hospital_a.public_key());
    assert_eq!(out.3.public_key(), w.regulator.public_key());
    out
}

fn enrol_by(w: &mut World, by: &Keypair, patient: &Keypair) -> Result<(), Error> {
    let tx = w.sign(
        by,
        TxBody::EnrolPatient(EnrolPatient::prove(patient, &w.chain_id())),
    );
    w.commit_one(tx).map(drop)
}

#[test]
fn a_new_clinic_is_adopted_by_two_thirds_and_takes_effect_two_blocks_later() {
    let mut w = World::new(Policy::default());
    let chain = w.chain_id();
    let (a, b, c, _) = keys(&w);
    let newcomer = Keypair::from_seed(&[40; 32]);
    let id = propose(
        &mut w,
        &a,
        new_clinic(&chain, &newcomer, "Riverside Clinic"),
    )
    .unwrap();
    approve(&mut w, &b, id).unwrap();
    // Two of three: not more than two thirds, so nothing is scheduled.
    assert!(governance::membership(&w.store).unwrap().is_none());
    approve(&mut w, &c, id).unwrap();
    let adopted_at = w.tip.height;
    let record = governance::proposal(&w.store, &id).unwrap().unwrap();
    assert_eq!(
        record.adoption,
        governance::Adoption::Adopted {
            height: adopted_at,
            activation: adopted_at + 2
        }
    );
    // The next block is still judged by the old set: the newcomer cannot act yet...
    let patient = patient_key(1);
    let err = enrol_by(&mut w, &newcomer, &patient).unwrap_err();
    assert!(matches!(err, Error::NotAuthorized { .. }), "{err}");
    w.advance(1000);
    let h1 = &w.blocks.last().unwrap().block.header;
    assert_eq!(h1.height, adopted_at + 1);
    assert_eq!(w.consortium.epoch, 0);
    // ...but its header names the set that takes over at the next height.
    let next = governance::membership(&w.store).unwrap().unwrap();
    assert_eq!(h1.next_members_hash.0, next.newest().hash());
    assert_ne!(h1.next_members_hash.0, w.genesis.members_hash());
    // From the activation height on, the newcomer is a member and a validator.
    enrol_by(&mut w, &newcomer, &patient).unwrap();
    assert_eq!(w.tip.height, adopted_at + 2);
    assert_eq!(w.consortium.epoch, 1);
    assert_eq!(w.consortium.validators().len(), 4);
    let joined = w.consortium.member(&newcomer.public_key()).unwrap();
    assert_eq!(joined.name, "Riverside Clinic");
    assert_eq!(joined.p2p_addr.as_deref(), Some("/ip4/127.0.0.1/tcp/26610"));
}

#[test]
fn removing_members_down_to_the_last_validator_is_refused_and_a_removed_key_is_dead() {
    let mut w = World::new(Policy::default());
    let chain = w.chain_id();
    let (a, b, c, regulator) = keys(&w);
    let id = propose(
        &mut w,
        &a,
        Change::RemoveMember {
            member: c.public_key(),
        },
    )
    .unwrap();
    approve(&mut w, &b, id).unwrap();
    // A regulator approves, but holds no voting power: still two of three.
    approve(&mut w, &regulator, id).unwrap();
    assert!(governance::membership(&w.store).unwrap().is_none());
    approve(&mut w, &c, id).unwrap();
    w.advance(1000);
    w.advance(1000);
    assert!(w.consortium.member(&c.public_key()).is_none());
    assert_eq!(w.consortium.validators().len(), 2);
    // The removed clinic can no longer act, nor come back, nor become a patient.
    let err = enrol_by(&mut w, &c, &patient_key(2)).unwrap_err();
    assert!(matches!(err, Error::NotAuthorized { .. }), "{err}");
    let back = new_clinic(&chain, &c, "Township Clinic Again");
    let err = propose(&mut w, &a, back).unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeyInUse {
                by: "a member that left",
                ..
            }
        ),
        "{err}"
    );
    let err = enrol_by(&mut w, &a, &c).unwrap_err();
    assert!(
        matches!(
            err,
            Error::KeyInUse {
                by: "a member that left",
                ..
            }
        ),
        "{err}"
    );
    // Two validators left: both must approve. Then one is left, and removing it is refused.
    let id = propose(
        &mut w,
        &a,
        Change::RemoveMember {
            member: b.public_key(),
        },
    )
    .unwrap();
    approve(&mut w, &b, id).unwrap();
    w.advance(1000);
    w.advance(1000);
    assert_eq!(w.consortium.validators().len(), 1);
    let err = propose(
        &mut w,
        &a,
        Change::RemoveMember {
            member: a.public_key(),
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::NoValidatorLeft), "{err}");
    let err = propose(
        &mut w,
        &a,
        Change::SetVotingPower {
            member: a.public_key(),
            voting_power: 0,
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::NoValidatorLeft), "{err}");
    // The chain goes on.
    w.advance(1000);
}

#[test]
fn bad_changes_are_refused_each_with_its_error_and_change_nothing() {
    let mut w = World::new(Policy::default());
    let chain = w.chain_id();
    let (a, b, _, regulator) = keys(&w);
    let root = w.root();
    let stranger = Keypair::from_seed(&[41; 32]);
    // A member already in the consortium, by key.
    let dup = new_clinic(&chain, &b, "Another Name");
    assert!(matches!(
        propose(&mut w, &a, dup).unwrap_err(),
        Error::DuplicateMember(_)
    ));
    // A name already taken.
    let named = new_clinic(&chain, &stranger, "County Hospital");
    assert!(matches!(
        propose(&mut w, &a, named).unwrap_err(),
        Error::InvalidMember(_)
    ));
    // An unknown member removed or re-weighed.
    let gone = Change::RemoveMember {
        member: stranger.public_key(),
    };
    assert!(matches!(
        propose(&mut w, &a, gone).unwrap_err(),
        Error::UnknownMember(_)
    ));
    let weigh = Change::SetVotingPower {
        member: stranger.public_key(),
        voting_power: 3,
    };
    assert!(matches!(
        propose(&mut w, &a, weigh).unwrap_err(),
        Error::UnknownMember(_)
    ));
    // A regulator given voting power.
    let reg = Change::SetVotingPower {
        member: regulator.public_key(),
        voting_power: 1,
    };
    assert!(matches!(
        propose(&mut w, &a, reg).unwrap_err(),
        Error::RegulatorValidates(_)
    ));
    // Limits and policies that make no sense.
    let limits = Limits {
        block_txs_max: 0,
        ..Limits::default()
    };
    let err = propose(&mut w, &a, Change::SetLimits { limits }).unwrap_err();
    assert!(matches!(err, Error::InvalidLimits), "{err}");
    let policy = Policy {
        proposal_ttl_ms: 0,
        ..Policy::default()
    };
    let err = propose(&mut w, &a, Change::SetPolicy { policy }).unwrap_err();
    assert!(matches!(err, Error::InvalidPolicy), "{err}");
    // Proposals and approvals from anyone but a member.
    let patient = patient_key(3);
    let err = propose(&mut w, &patient, new_clinic(&chain, &stranger, "X Clinic")).unwrap_err();
    assert!(matches!(err, Error::NotAuthorized { .. }), "{err}");
    let id = propose(&mut w, &a, new_clinic(&chain, &stranger, "Hill Clinic")).unwrap();
    let root_after_proposal = w.root();
    for outsider in [&patient, &stranger] {
        let err = approve(&mut w, outsider, id).unwrap_err();
        assert!(matches!(err, Error::NotAuthorized { .. }), "{err}");
    }
    // Approving twice, or a proposal that does not exist.
    assert!(matches!(
        approve(&mut w, &a, id).unwrap_err(),
        Error::AlreadyApproved(_)
    ));
    let err = approve(&mut w, &b, ProposalId([9; 32])).unwrap_err();
    assert!(matches!(err, Error::UnknownProposal(_)), "{err}");
    // Only the proposal changed the state; every refusal left it as it was.
    assert_ne!(root, root_after_proposal);
    assert_eq!(w.root(), root_after_proposal);
    // A new member's proof must be its own: a proposal carrying another key's proof fails
    // the signature check every node runs before the rules.
    let Change::AddMember { member: m, .. } = new_clinic(&chain, &stranger, "Lake Clinic") else {
        unreachable!()
    };
    let (_, _, wrong_proof) = prove_keys(&patient, &w.chain_id());
    let forged = Change::AddMember {
        member: m,
        proof: wrong_proof,
    };
    let tx = w.sign(&a, TxBody::ProposeChange(ProposeChange { change: forged }));
    assert!(matches!(
        tx.verify(&w.chain_id()),
        Err(Error::BadEnrolmentProof(_))
    ));
}

#[test]
fn proposals_expire_and_an_adopted_change_supersedes_the_others() {
    let mut w = World::new(Policy::default());
    let chain = w.chain_id();
    let (a, b, c, _) = keys(&w);
    let one = Keypair::from_seed(&[42; 32]);
    let two = Keypair::from_seed(&[43; 32]);
    let first = propose(&mut w, &a, new_clinic(&chain, &one, "First Clinic")).unwrap();
    let second = propose(&mut w, &b, new_clinic(&chain, &two, "Second Clinic")).unwrap();
    approve(&mut w, &b, first).unwrap();
    approve(&mut w, &c, first).unwrap();
    // Adopted, waiting for its height: no new proposal, and the other one is closed.
    let err = propose(
        &mut w,
        &a,
        Change::RemoveMember {
            member: c.public_key(),
        },
    )
    .unwrap_err();
    assert!(matches!(err, Error::ChangePending { .. }), "{err}");
    let err = approve(&mut w, &a, second).unwrap_err();
    assert!(
        matches!(
            err,
            Error::ProposalClosed {
                why: "superseded",
                ..
            }
        ),
        "{err}"
    );
    w.advance(1000);
    w.advance(1000);
    assert_eq!(w.consortium.validators().len(), 4);
    // A proposal left open past the policy's window expires.
    let third = propose(&mut w, &a, new_clinic(&chain, &two, "Second Clinic")).unwrap();
    w.advance(Policy::default().proposal_ttl_ms);
    let err = approve(&mut w, &b, third).unwrap_err();
    assert!(
        matches!(err, Error::ProposalClosed { why: "expired", .. }),
        "{err}"
    );
}

#[test]
fn a_policy_can_require_a_regulator_for_membership_changes() {
    let policy = Policy {
        membership_needs_regulator: true,
        ..Policy::default()
    };
    let mut w = World::new(policy);
    let (a, b, c, regulator) = keys(&w);
    let id = propose(
        &mut w,
        &a,
        Change::RemoveMember {
            member: c.public_key(),
        },
    )
    .unwrap();
    approve(&mut w, &b, id).unwrap();
    approve(&mut w, &c, id).unwrap();
    // Every validator approved, but no regulator yet.
    assert!(governance::membership(&w.store).unwrap().is_none());
    approve(&mut w, &regulator, id).unwrap();
    assert!(governance::membership(&w.store).unwrap().is_some());
    w.advance(1000);
    w.advance(1000);
    // A policy change is not a membership change: the validators alone adopt it.
    let relaxed = Policy {
        break_glass_allowed: false,
        ..w.consortium.policy.clone()
    };
    let id = propose(&mut w, &a, Change::SetPolicy { policy: relaxed }).unwrap();
    approve(&mut w, &b, id).unwrap();
    w.advance(1000);
    w.advance(1000);
    assert!(!w.consortium.policy.break_glass_allowed);
}

#[test]
fn a_block_is_judged_by_the_set_in_force_at_its_own_height() {
    let mut w = World::new(Policy::default());
    let chain = w.chain_id();
    let (a, b, c, _) = keys(&w);
    let newcomer = Keypair::from_seed(&[44; 32]);
    let id = propose(&mut w, &a, new_clinic(&chain, &newcomer, "Valley Clinic")).unwrap();
    approve(&mut w, &b, id).unwrap();
    approve(&mut w, &c, id).unwrap();
    w.advance(1000);
    // The next block is at the activation height: executing it with the old set is refused.
    let old = w.genesis.clone();
    let new = governance::in_force(&w.genesis, &w.store, w.tip.height + 1).unwrap();
    assert_eq!(new.epoch, 1);
    let built = block::build_block(
        &w.store,
        &new,
        &w.tip,
        w.now_ms + 1000,
        a.public_key(),
        vec![],
    )
    .unwrap();
    let err = block::build_block(
        &w.store,
        &old,
        &w.tip,
        w.now_ms + 1000,
        a.public_key(),
        vec![],
    )
    .err()
    .unwrap();
    assert!(
        matches!(err, Error::WrongMemberSet { got: 0, want: 1 }),
        "{err}"
    );
    let checked = block::check_block(&new, &w.tip, &built.block).unwrap();
    assert!(block::execute(&w.store, &new, checked).is_ok());
    let checked = block::check_block(&old, &w.tip, &built.block).unwrap();
    let err = block::execute(&w.store, &old, checked).unwrap_err();
    assert!(matches!(err, Error::WrongMemberSet { .. }), "{err}");
    // A header that names the wrong next set is refused by every validator.
    let mut lying = built.block.clone();
    lying.header.next_members_hash = Digest32(w.genesis.members_hash());
    let checked = block::check_block(&new, &w.tip, &lying).unwrap();
    let err = block::execute(&w.store, &new, checked).unwrap_err();
    assert!(
        matches!(err, Error::HeaderMismatch("next_members_hash")),
        "{err}"
    );
}

/// The proof of each change the store holds, as a node serves it: the set, and the certified
/// header of the height before its first.
fn set_changes(w: &World) -> Vec<governance::SetChange> {
    governance::history(&w.store, 100)
        .unwrap()
        .into_iter()
        .map(|(first, set)| {
            // `blocks[0]` is height 1.
            let fb = &w.blocks[(first - 2) as usize];
            assert_eq!(fb.block.header.height, first - 1);
            governance::SetChange {
                set,
                header: fb.block.header.clone(),
                certificate: fb.certificate.clone(),
            }
        })
        .collect()
}

#[test]
fn a_light_client_follows_every_change_and_refuses_what_it_was_not_shown() {
    use cradle_consensus::{CommitCertificate, Vote, VoteKind};
    use governance::{HeaderTrust, Sets};

    let mut w = World::new(Policy::default());
    let chain = w.chain_id();
    let (a, b, c, _) = keys(&w);
    let newcomer = Keypair::from_seed(&[45; 32]);
    w.joined.push(Keypair::from_seed(&[45; 32]));
    let id = propose(&mut w, &a, new_clinic(&chain, &newcomer, "Bay Clinic")).unwrap();
    approve(&mut w, &b, id).unwrap();
    approve(&mut w, &c, id).unwrap();
    w.advance(1000);
    w.advance(1000);
    let id = propose(
        &mut w,
        &a,
        Change::RemoveMember {
            member: c.public_key(),
        },
    )
    .unwrap();
    approve(&mut w, &b, id).unwrap();
    approve(&mut w, &newcomer, id).unwrap();
    w.advance(1000);
    w.advance(1000);
    w.advance(1000);
    let changes = set_changes(&w);
    assert_eq!(changes.len(), 2);

    // Shown both changes, a client checks every header of the chain.
    let sets = Sets::following(w.genesis.clone(), &changes).unwrap();
    assert_eq!(sets.latest().epoch, 2);
    for fb in &w.blocks {
        sets.check_header(&fb.block.header, &fb.certificate)
            .unwrap_or_else(|e| panic!("height {}: {e}", fb.block.header.height));
    }
    // Never skips one: shown only the first, it refuses the header that names the second, and
    // with none, the header that names the first; never judged by an older set.
    let partial = Sets::following(w.genesis.clone(), &changes[..1]).unwrap();
    let names_second = &changes[1];
    let err = partial
        .check_header(&names_second.header, &names_second.certificate)
        .unwrap_err();
    assert!(matches!(err, Error::UnfollowedSetChange { .. }), "{err}");
    let names_first = &changes[0];
    let err = w
        .genesis
        .check_header(&names_first.header, &names_first.certificate)
        .unwrap_err();
    assert!(matches!(err, Error::UnfollowedSetChange { .. }), "{err}");
    let last = w.blocks.last().unwrap();
    assert!(
        partial
            .check_header(&last.block.header, &last.certificate)
            .is_err()
    );

    // Changes out of order, or a set other than the one the header names, are refused.
    let err = Sets::following(w.genesis.clone(), &changes[1..]).unwrap_err();
    assert!(matches!(err, Error::SetChangeOutOfOrder { .. }), "{err}");
    let mut altered = changes.clone();
    altered[1].set.policy.break_glass_allowed = !altered[1].set.policy.break_glass_allowed;
    let err = Sets::following(w.genesis.clone(), &altered).unwrap_err();
    assert!(
        matches!(err, Error::HeaderMismatch("next_members_hash")),
        "{err}"
    );

    // A certificate carrying the removed clinic's precommit, in the place its key held before,
    // does not finalise a header of the new set.
    let header = &last.block.header;
    let set = sets.at(header.height);
    let votes: Vec<_> = [&a, &b, &c]
        .iter()
        .enumerate()
        .map(|(i, k)| {
            Vote {
                kind: VoteKind::Precommit,
                height: header.height,
                round: 0,
                value: Some(header.value_id()),
                validator: i as u16,
            }
            .sign(&chain, k.signing_key())
        })
        .collect();
    let forged = CommitCertificate::from_precommits(header.height, 0, header.value_id(), &votes);
    assert_eq!(set.validators().len(), 3);
    assert!(sets.check_header(header, &forged).is_err());
}

#[test]
fn no_member_fills_the_room_for_proposals_and_expired_ones_free_it() {
    let mut w = World::new(Policy::default());
    let chain = w.chain_id();
    let (a, b, _, _) = keys(&w);
    for i in 0..governance::OPEN_PROPOSALS_PER_MEMBER_MAX {
        let k = Keypair::from_seed(&[50 + i as u8; 32]);
        propose(&mut w, &a, new_clinic(&chain, &k, &format!("Clinic {i}"))).unwrap();
    }
    let k = Keypair::from_seed(&[60; 32]);
    let err = propose(&mut w, &a, new_clinic(&chain, &k, "One Too Many")).unwrap_err();
    assert!(matches!(err, Error::TooManyProposals { .. }), "{err}");
    // Another member still has room.
    propose(&mut w, &b, new_clinic(&chain, &k, "One Too Many")).unwrap();
    // Once they expire, the member may propose again.
    w.advance(Policy::default().proposal_ttl_ms);
    let k = Keypair::from_seed(&[61; 32]);
    propose(&mut w, &a, new_clinic(&chain, &k, "After The Week")).unwrap();
}
