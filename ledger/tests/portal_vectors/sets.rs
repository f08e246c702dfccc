//! The portal's member-set vectors (`node/portal/test/vectors/sets.json`): the sets a page
//! follows from genesis as `GET /v1/governance/sets` serves them, each proven by the certified
//! header before it takes effect, and what a follower must refuse. Every expectation is the
//! Rust verdict: [`Sets::following`] for each list of changes and [`HeaderTrust::check_header`]
//! for each header, so `want` is what `client/src/api.rs` (`member_sets`) and the client's light
//! client conclude.
//!
//! The scenario, from the testkit consortium (validators County, City and Township, seeds 1-3):
//! epoch 1 adds "Riverside Clinic" (seed 5) at height 5; epoch 2 rotates City Hospital's key to
//! seed 6 at height 10 (and sets consensus timeouts, so the set's `Option` is exercised); epoch 3
//! removes Township Clinic at height 15.

use cradle_consensus::{CommitCertificate, Config, Vote, VoteKind};
use cradle_ledger::block::BlockHeader;
use cradle_ledger::codec::{self, BoundedVec};
use cradle_ledger::governance::{HeaderTrust, SetChange, SetChanges, Sets};
use cradle_ledger::{Digest32, Error, Hash, Keypair, MemberSet, Role};
use cradle_testkit::{GENESIS_MS, TestConsortium, member, seeded_key};
use serde_json::{Value, json};

use super::dec;

fn header(t: &TestConsortium, height: u64, next: Hash) -> BlockHeader {
    BlockHeader {
        chain_id: Digest32(t.chain_id()),
        height,
        time_ms: GENESIS_MS + height * 1000,
        prev_hash: Digest32([0x11; 32]),
        proposer: t.hospital_a.public_key(),
        tx_count: 0,
        tx_root: Digest32([0x22; 32]),
        state_root: Digest32([0x33; 32]),
        access_log_size: 0,
        access_log_root: Digest32([0x44; 32]),
        next_members_hash: Digest32(next),
    }
}

/// Precommits for `header` at round 0, each `(validator index, key that signs)`.
fn certify(
    chain_id: &Hash,
    header: &BlockHeader,
    signers: &[(u16, &Keypair)],
) -> CommitCertificate {
    let votes: Vec<_> = signers
        .iter()
        .map(|(i, key)| {
            Vote {
                kind: VoteKind::Precommit,
                height: header.height,
                round: 0,
                value: Some(header.value_id()),
                validator: *i,
            }
            .sign(chain_id, key.signing_key())
        })
        .collect();
    CommitCertificate::from_precommits(header.height, 0, header.value_id(), &votes)
}

/// The verdict's code, as `js/sets.js` names it.
fn code(e: &Error) -> &'static str {
    match e {
        Error::SetChangeOutOfOrder { .. } => "out-of-order",
        Error::WrongChain => "wrong-chain",
        Error::Consensus(_) => "uncertified",
        Error::HeaderMismatch(_) => "next-members-hash",
        Error::UnfollowedSetChange { .. } => "unfollowed",
        _ => "invalid-set",
    }
}

fn encoded(changes: &[SetChange]) -> String {
    hex::encode(codec::encode(
        &SetChanges::new(changes.to_vec()).expect("few changes"),
    ))
}

pub fn vectors(t: &TestConsortium) -> Value {
    let chain = t.chain_id();
    let (a, b, clinic) = (&t.hospital_a, &t.hospital_b, &t.clinic);
    let (riverside, b_new) = (seeded_key(5), seeded_key(6));
    let genesis = t.consortium.member_set();
    // Epoch 1: Riverside Clinic joins; the validators are County, City, Township, Riverside.
    let mut set1 = genesis.clone();
    set1.epoch = 1;
    set1.members
        .push(member("Riverside Clinic", Role::Clinic, &riverside, 1));
    // Epoch 2: City Hospital signs with a new key from now on.
    let mut set2 = set1.clone();
    set2.epoch = 2;
    set2.members[1].signing_key = Some(b_new.public_key());
    set2.timeouts = Some(Config::default());
    // Epoch 3: Township Clinic leaves; the validators are County, City (new key), Riverside.
    let mut set3 = set2.clone();
    set3.epoch = 3;
    set3.members.remove(2);
    let change = |set: &MemberSet, height: u64, signers: &[(u16, &Keypair)]| {
        let h = header(t, height, set.hash());
        SetChange {
            set: set.clone(),
            certificate: certify(&chain, &h, signers),
            header: h,
        }
    };
    let c1 = change(&set1, 4, &[(0, a), (1, b), (2, clinic)]);
    let c2 = change(&set2, 9, &[(0, a), (1, b), (3, &riverside)]);
    let c3 = change(&set3, 14, &[(0, a), (1, &b_new), (3, &riverside)]);
    let good = vec![c1.clone(), c2.clone(), c3.clone()];
    let sets = Sets::following(t.consortium.clone(), &good).expect("the scenario follows");

    // Lists a follower must refuse, each with the Rust verdict.
    let mut set4 = set3.clone();
    set4.epoch = 4;
    set4.policy.grant_duration_max_ms /= 2;
    let mut mismatch = c1.clone();
    mismatch.header.next_members_hash = Digest32(set2.hash());
    mismatch.certificate = certify(&chain, &mismatch.header, &[(0, a), (1, b), (2, clinic)]);
    let mut dup_x25519 = set1.clone();
    dup_x25519.members[4].x25519 = a.x25519_public();
    let mut other_chain = c1.clone();
    other_chain.header.chain_id = Digest32([0x99; 32]);
    let bad: Vec<(&str, Vec<SetChange>)> = vec![
        ("skips-a-change", vec![c1.clone(), c3.clone()]),
        ("replays-a-change", vec![c1.clone(), c1.clone()]),
        ("not-from-genesis", vec![c2.clone(), c3.clone()]),
        (
            "height-before-the-last-change",
            vec![
                c1.clone(),
                change(&set2, 3, &[(0, a), (1, b), (3, &riverside)]),
            ],
        ),
        (
            "signed-by-a-rotated-out-key",
            vec![
                c1.clone(),
                c2.clone(),
                change(&set3, 14, &[(0, a), (1, b), (3, &riverside)]),
            ],
        ),
        (
            "signed-by-a-removed-member",
            vec![
                c1.clone(),
                c2.clone(),
                c3.clone(),
                change(&set4, 20, &[(0, a), (1, &b_new), (2, clinic)]),
            ],
        ),
        (
            "without-a-quorum",
            vec![change(&set1, 4, &[(0, a), (1, b)])],
        ),
        ("names-another-set", vec![mismatch]),
        (
            "invalid-set",
            vec![change(&dup_x25519, 4, &[(0, a), (1, b), (2, clinic)])],
        ),
        ("another-chain", vec![other_chain]),
    ];
    let bad_changes: Vec<Value> = bad
        .iter()
        .map(|(name, list)| {
            let err = Sets::following(t.consortium.clone(), list)
                .err()
                .unwrap_or_else(|| panic!("{name} is followed"));
            json!({ "name": name, "encoded": encoded(list), "error": code(&err) })
        })
        .collect();

    // Headers after the changes, judged by the sets followed.
    let h = |height: u64, next: Hash, signers: &[(u16, &Keypair)]| {
        let h = header(t, height, next);
        let cert = certify(&chain, &h, signers);
        (h, cert)
    };
    let cases = vec![
        (
            "genesis-set",
            h(3, genesis.hash(), &[(0, a), (1, b), (2, clinic)]),
        ),
        (
            "epoch-1",
            h(7, set1.hash(), &[(0, a), (2, clinic), (3, &riverside)]),
        ),
        (
            "epoch-2-new-key",
            h(12, set2.hash(), &[(0, a), (1, &b_new), (2, clinic)]),
        ),
        (
            "epoch-2-rotated-out-key",
            h(12, set2.hash(), &[(0, a), (1, b), (2, clinic)]),
        ),
        (
            "epoch-3",
            h(20, set3.hash(), &[(0, a), (1, &b_new), (2, &riverside)]),
        ),
        (
            "epoch-3-removed-member",
            h(20, set3.hash(), &[(0, a), (1, &b_new), (2, clinic)]),
        ),
        (
            "epoch-3-by-genesis-validators",
            h(20, set3.hash(), &[(0, a), (1, b), (2, clinic)]),
        ),
        (
            "epoch-1-by-genesis-quorum",
            h(7, set1.hash(), &[(0, a), (1, b)]),
        ),
        (
            "names-an-unfollowed-set",
            h(20, set4.hash(), &[(0, a), (1, &b_new), (2, &riverside)]),
        ),
        (
            "old-header-names-the-old-set",
            h(12, set1.hash(), &[(0, a), (1, &b_new), (2, clinic)]),
        ),
    ];
    let headers: Vec<Value> = cases
        .iter()
        .map(|(name, (h, cert))| {
            let verdict = sets.check_header(h, cert).err().map(|e| code(&e));
            // Genesis alone refuses every header after the first change.
            let genesis_only = t.consortium.check_header(h, cert).err().map(|e| code(&e));
            json!({
                "name": name, "height": dec(h.height),
                "header": hex::encode(borsh::to_vec(h).expect("encodes")),
                "certificate": hex::encode(borsh::to_vec(cert).expect("encodes")),
                "error": verdict, "error_genesis_only": genesis_only,
            })
        })
        .collect();

    let set_json = |s: &MemberSet, first: u64| {
        json!({ "epoch": dec(s.epoch), "first_height": dec(first),
                "borsh": hex::encode(borsh::to_vec(s).expect("encodes")), "hash": hex::encode(s.hash()) })
    };
    let bounded: BoundedVec<SetChange, 3> = BoundedVec::new(good.clone()).expect("three");
    json!({
        "genesis": set_json(&genesis, 1),
        "sets": [set_json(&set1, 5), set_json(&set2, 10), set_json(&set3, 15)],
        "changes": encoded(&good),
        "change_borsh": bounded.iter().map(|c| hex::encode(borsh::to_vec(c).expect("encodes"))).collect::<Vec<_>>(),
        "bad_changes": bad_changes,
        "headers": headers,
    })
}
