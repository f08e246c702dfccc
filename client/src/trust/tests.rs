//! The decisions of [`super`], on certified set changes made here: when another member's node
//! is asked, what a refusal or a replayed prefix gets, and the state file's limits.
#![allow(clippy::unwrap_used)]

use std::cell::Cell;

use cradle_consensus::{CommitCertificate, Vote, VoteKind};
use cradle_ledger::block::BlockHeader;
use cradle_ledger::governance::SetChange;
use cradle_ledger::identity::MemberSet;
use cradle_ledger::{Consortium, Digest32, Keypair, Policy};
use cradle_testkit::{GENESIS_MS, TestConsortium, seeded_key};

use super::store::{CHAINS_MAX, FILE_BYTES_MAX};
use super::*;

const HOUR_MS: u64 = 3_600_000;
const NOW_MS: u64 = GENESIS_MS + 100 * HOUR_MS;

/// The test consortium, and `signers` (the keys signing for its members now, in member
/// order) for the sets that follow.
struct Chain {
    genesis: Consortium,
    signers: Vec<Keypair>,
    changes: Vec<SetChange>,
}

impl Chain {
    fn new() -> Self {
        let t = TestConsortium::new(Policy::default());
        Self {
            genesis: t.consortium.clone(),
            signers: vec![t.hospital_a, t.hospital_b, t.clinic, t.regulator],
            changes: Vec::new(),
        }
    }

    fn latest(&self) -> Consortium {
        Verified::verify(self.genesis.clone(), self.changes.clone())
            .unwrap()
            .latest()
            .clone()
    }

    /// A vote rotates member `i`'s key to `new`, named by a header at `height` that the
    /// validators in force certify.
    fn rotate(&mut self, i: usize, new: Keypair, height: u64) -> SetChange {
        let prev = self.latest();
        let mut members = prev.members.clone();
        members[i].signing_key = Some(new.public_key());
        members[i].x25519 = new.x25519_public();
        let set = MemberSet {
            epoch: prev.epoch + 1,
            members,
            policy: prev.policy.clone(),
            limits: prev.limits.clone(),
            timeouts: prev.timeouts,
        };
        let header = BlockHeader {
            chain_id: Digest32(prev.chain_id),
            height,
            time_ms: GENESIS_MS + height * 1000,
            prev_hash: Digest32([height as u8; 32]),
            proposer: self.signers[0].public_key(),
            tx_count: 0,
            tx_root: Digest32([0; 32]),
            state_root: Digest32([0; 32]),
            access_log_size: 0,
            access_log_root: Digest32([0; 32]),
            next_members_hash: Digest32(set.hash()),
        };
        let value = header.value_id();
        let votes: Vec<_> = prev
            .members
            .iter()
            .zip(&self.signers)
            .filter(|(m, _)| m.voting_power > 0)
            .enumerate()
            .map(|(index, (_, key))| {
                Vote {
                    kind: VoteKind::Precommit,
                    height,
                    round: 0,
                    value: Some(value),
                    validator: index as u16,
                }
                .sign(&prev.chain_id, key.signing_key())
            })
            .collect();
        let change = SetChange {
            set,
            certificate: CommitCertificate::from_precommits(height, 0, value, &votes),
            header,
        };
        self.signers[i] = new;
        self.changes.push(change.clone());
        change
    }

    fn verified(&self, epochs: usize) -> Verified {
        Verified::verify(self.genesis.clone(), self.changes[..epochs].to_vec()).unwrap()
    }
}

/// City Hospital's key (member 1) rotated at epoch 1, the clinic's (member 2) at epoch 2.
fn rotated_twice() -> (Chain, PublicKey) {
    let mut c = Chain::new();
    let old = c.signers[1].public_key();
    c.rotate(1, seeded_key(21), 10);
    c.rotate(2, seeded_key(22), 20);
    (c, old)
}

fn known(verified: Verified, confirmed_at: Option<u64>) -> Known {
    Known {
        verified,
        confirmed: confirmed_at.map(|at_ms| Confirmation {
            at_ms,
            by: "County Hospital".into(),
        }),
    }
}

fn never_asked(_: &Verified) -> Others {
    panic!("another member's node was asked on the common path")
}

#[test]
fn the_certified_changes_made_here_verify() {
    let (c, old) = rotated_twice();
    let v = c.verified(2);
    assert_eq!(v.epoch(), 2);
    assert!(v.latest().signer(&old).is_none());
    assert!(v.latest().signer(&c.signers[1].public_key()).is_some());
}

#[test]
fn a_node_refusing_the_sets_has_another_member_asked_and_its_rotated_out_key_refused() {
    let (c, old) = rotated_twice();
    let asked = Cell::new(0);
    let settled = settle(
        Known::genesis(c.genesis.clone()),
        NodeAnswer::Refused,
        |v| {
            asked.set(asked.get() + 1);
            assert_eq!(v.epoch(), 0, "asked with what the client knew");
            Others::Served {
                verified: c.verified(2),
                by: "County Hospital".into(),
            }
        },
        NOW_MS,
        HOUR_MS,
    )
    .unwrap();
    assert_eq!(asked.get(), 1);
    assert_eq!(settled.verified.epoch(), 2);
    assert_eq!(settled.confirmed.as_ref().unwrap().at_ms, NOW_MS);
    let said = settled.verified.check_key(&old).unwrap_err().to_string();
    assert!(said.contains("signs for no member now"), "{said}");
    assert!(
        said.contains("City Hospital's key in the member sets up to epoch 0"),
        "{said}"
    );
}

#[test]
fn a_refusal_that_no_other_member_can_check_is_refused() {
    let (c, _) = rotated_twice();
    let said = settle(
        Known::genesis(c.genesis.clone()),
        NodeAnswer::Refused,
        |_| Others::Unreachable("connection refused".into()),
        NOW_MS,
        HOUR_MS,
    )
    .unwrap_err()
    .to_string();
    assert!(said.contains("refused to show the member sets"), "{said}");
    assert!(said.contains("connection refused"), "{said}");
}

#[test]
fn a_key_the_chain_does_not_know_is_checked_against_what_this_machine_verified() {
    // Every member's node refuses it the sets (a patient before her enrolment): the node's
    // refusal is what an honest node does, and the sets kept here still judge the node.
    let (c, old) = rotated_twice();
    let settled = settle(
        known(c.verified(1), Some(NOW_MS - 2 * HOUR_MS)),
        NodeAnswer::Refused,
        |_| Others::Refused,
        NOW_MS,
        HOUR_MS,
    )
    .unwrap();
    assert_eq!(settled.verified.epoch(), 1);
    assert!(settled.verified.check_key(&old).is_err());
}

#[test]
fn a_replayed_prefix_is_refused_once_newer_sets_are_stored() {
    let (c, old) = rotated_twice();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(Some(dir.path().to_path_buf()));
    store
        .save(&c.genesis, &known(c.verified(1), Some(NOW_MS - 60_000)))
        .unwrap();
    let kept = store.load(&c.genesis).unwrap().unwrap();
    assert_eq!(kept.verified.epoch(), 1);
    // The impostor serves the genuinely certified sets from before the rotation.
    let prefix = Verified::genesis(c.genesis.clone());
    assert_eq!(
        reason_to_ask(&kept, &NodeAnswer::Served(prefix.clone()), NOW_MS, HOUR_MS),
        Some(Ask::Behind { node: 0, known: 1 })
    );
    let asked = Cell::new(false);
    let settled = settle(
        kept,
        NodeAnswer::Served(prefix),
        |_| {
            asked.set(true);
            Others::Unreachable("timed out".into())
        },
        NOW_MS,
        HOUR_MS,
    )
    .unwrap();
    assert!(
        asked.get(),
        "a node behind what was verified has another member asked"
    );
    assert_eq!(settled.verified.epoch(), 1, "the sets went backwards");
    let said = settled.verified.check_key(&old).unwrap_err().to_string();
    assert!(said.contains("signs for no member now"), "{said}");
}

#[test]
fn a_prefix_with_stale_stored_sets_and_no_other_member_is_refused() {
    let (c, _) = rotated_twice();
    let said = settle(
        known(c.verified(1), Some(NOW_MS - 2 * HOUR_MS)),
        NodeAnswer::Served(Verified::genesis(c.genesis.clone())),
        |_| Others::Unreachable("timed out".into()),
        NOW_MS,
        HOUR_MS,
    )
    .unwrap_err()
    .to_string();
    assert!(said.contains("older than the epoch 1"), "{said}");
}

#[test]
fn the_common_path_asks_no_other_member() {
    let (c, _) = rotated_twice();
    let kept = known(c.verified(1), Some(NOW_MS - HOUR_MS / 2));
    let settled = settle(
        kept.clone(),
        NodeAnswer::Served(c.verified(1)),
        never_asked,
        NOW_MS,
        HOUR_MS,
    )
    .unwrap();
    assert_eq!(settled.confirmed, kept.confirmed);
    // Newer sets from the node itself are taken up, and still ask no one.
    let settled = settle(
        kept,
        NodeAnswer::Served(c.verified(2)),
        never_asked,
        NOW_MS,
        HOUR_MS,
    )
    .unwrap();
    assert_eq!(settled.verified.epoch(), 2);
    // Without a key nothing can be asked.
    assert_eq!(
        reason_to_ask(
            &Known::genesis(c.genesis.clone()),
            &NodeAnswer::NotAsked,
            NOW_MS,
            HOUR_MS
        ),
        None
    );
}

#[test]
fn sets_confirmed_too_long_ago_are_confirmed_again_or_the_node_refused() {
    let (c, _) = rotated_twice();
    let old = known(c.verified(1), Some(NOW_MS - 2 * HOUR_MS));
    assert_eq!(
        reason_to_ask(&old, &NodeAnswer::Served(c.verified(1)), NOW_MS, HOUR_MS),
        Some(Ask::Stale {
            age_ms: 2 * HOUR_MS
        })
    );
    let settled = settle(
        old.clone(),
        NodeAnswer::Served(c.verified(1)),
        |_| Others::Served {
            verified: c.verified(2),
            by: "Township Clinic".into(),
        },
        NOW_MS,
        HOUR_MS,
    )
    .unwrap();
    assert_eq!(settled.verified.epoch(), 2);
    assert_eq!(
        settled.confirmed,
        Some(Confirmation {
            at_ms: NOW_MS,
            by: "Township Clinic".into()
        })
    );
    let said = settle(
        old,
        NodeAnswer::Served(c.verified(1)),
        |_| Others::Unreachable("connection refused".into()),
        NOW_MS,
        HOUR_MS,
    )
    .unwrap_err()
    .to_string();
    assert!(
        said.contains("last confirmed by County Hospital's node 7200 s ago"),
        "{said}"
    );
    // A confirmation dated in the future (a tampered file, a wild clock) is none.
    let ahead = known(c.verified(1), Some(NOW_MS + 2 * HOUR_MS));
    assert_eq!(
        reason_to_ask(&ahead, &NodeAnswer::Served(c.verified(1)), NOW_MS, HOUR_MS),
        Some(Ask::Unconfirmed)
    );
}

#[test]
fn a_one_node_consortium_has_no_one_else_to_ask() {
    let (c, _) = rotated_twice();
    let settled = settle(
        Known::genesis(c.genesis.clone()),
        NodeAnswer::Served(c.verified(2)),
        |_| Others::NoneToAsk,
        NOW_MS,
        HOUR_MS,
    )
    .unwrap();
    assert_eq!(settled.verified.epoch(), 2);
    assert_eq!(settled.confirmed, None);
}

#[test]
fn two_certified_sets_for_one_epoch_are_refused() {
    let (c, _) = rotated_twice();
    let mut fork = Chain::new();
    fork.rotate(1, seeded_key(31), 10);
    let said = c
        .verified(2)
        .newest(fork.verified(1))
        .unwrap_err()
        .to_string();
    assert!(
        said.contains("two different certified member sets for epoch 1"),
        "{said}"
    );
}

#[test]
fn a_node_key_no_member_ever_held_is_named_so() {
    let (c, _) = rotated_twice();
    let said = c
        .verified(2)
        .check_key(&seeded_key(99).public_key())
        .unwrap_err()
        .to_string();
    assert!(said.contains("no member's key"), "{said}");
}

#[test]
fn the_state_file_never_goes_backwards_and_keeps_the_later_confirmation() {
    let (c, _) = rotated_twice();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(Some(dir.path().join("cradle")));
    assert!(store.load(&c.genesis).unwrap().is_none());
    store
        .save(&c.genesis, &known(c.verified(2), Some(NOW_MS - HOUR_MS)))
        .unwrap();
    // Another client that knew less, confirmed later, saves after.
    store
        .save(&c.genesis, &known(c.verified(1), Some(NOW_MS)))
        .unwrap();
    let kept = store.load(&c.genesis).unwrap().unwrap();
    assert_eq!(kept.verified.epoch(), 2);
    assert_eq!(kept.confirmed.unwrap().at_ms, NOW_MS);
    use std::os::unix::fs::PermissionsExt;
    let path = store.path(&c.genesis).unwrap();
    let mode = std::fs::metadata(&path).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600, "{path:?} is {mode:o}");
}

#[test]
fn a_corrupt_state_file_is_a_clear_error_not_a_reset_to_genesis() {
    let (c, _) = rotated_twice();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(Some(dir.path().to_path_buf()));
    store.save(&c.genesis, &known(c.verified(2), None)).unwrap();
    let path = store.path(&c.genesis).unwrap();

    std::fs::write(&path, b"{\"format\": \"cradle-member-sets/1\", ").unwrap();
    let said = store.load(&c.genesis).unwrap_err().to_string();
    assert!(said.contains("is corrupt"), "{said}");
    assert!(said.contains("remove it"), "{said}");

    // Well-formed, but a set change altered: it no longer verifies from genesis.
    store
        .save(&c.genesis, &known(c.verified(2), None))
        .unwrap_err();
    std::fs::remove_file(&path).unwrap();
    store.save(&c.genesis, &known(c.verified(2), None)).unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    let mut file: serde_json::Value = serde_json::from_str(&text).unwrap();
    let mut changes = hex::decode(file["set_changes"].as_str().unwrap()).unwrap();
    let last = changes.len() - 1;
    changes[last] ^= 1;
    file["set_changes"] = hex::encode(changes).into();
    std::fs::write(&path, file.to_string()).unwrap();
    let said = store.load(&c.genesis).unwrap_err().to_string();
    assert!(said.contains(path.to_str().unwrap()), "{said}");

    // Another chain's file under this chain's name.
    let other = Store::new(Some(dir.path().join("other")));
    let mut fork = Chain::new();
    fork.genesis = Consortium::new(
        [7; 32],
        GENESIS_MS,
        fork.genesis.members.clone(),
        Policy::default(),
        fork.genesis.limits.clone(),
    )
    .unwrap();
    other
        .save(&fork.genesis, &Known::genesis(fork.genesis.clone()))
        .unwrap();
    std::fs::copy(other.path(&fork.genesis).unwrap(), &path).unwrap();
    let said = store.load(&c.genesis).unwrap_err().to_string();
    assert!(said.contains("another chain"), "{said}");
}

#[test]
fn an_oversized_state_file_is_refused_unread() {
    let (c, _) = rotated_twice();
    let dir = tempfile::tempdir().unwrap();
    let store = Store::new(Some(dir.path().to_path_buf()));
    let path = store.path(&c.genesis).unwrap();
    let file = std::fs::File::create(&path).unwrap();
    file.set_len(FILE_BYTES_MAX + 1).unwrap();
    let said = store.load(&c.genesis).unwrap_err().to_string();
    assert!(said.contains("more than the"), "{said}");
}

#[test]
fn no_more_than_chains_max_chains_are_kept() {
    let (c, _) = rotated_twice();
    let dir = tempfile::tempdir().unwrap();
    for i in 0..CHAINS_MAX + 5 {
        std::fs::write(dir.path().join(format!("sets-{i:064x}.json")), b"{}").unwrap();
    }
    let store = Store::new(Some(dir.path().to_path_buf()));
    store.save(&c.genesis, &known(c.verified(1), None)).unwrap();
    let kept = std::fs::read_dir(dir.path())
        .unwrap()
        .filter(|e| {
            let name = e.as_ref().unwrap().file_name();
            let name = name.to_str().unwrap();
            name.starts_with("sets-") && name.ends_with(".json")
        })
        .count();
    assert_eq!(kept, CHAINS_MAX);
    assert!(
        store.load(&c.genesis).unwrap().is_some(),
        "its own file was pruned"
    );
}
