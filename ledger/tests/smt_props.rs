//! Properties of `merkle::smt`, checked against a naive reference that rebuilds the compressed
//! tree from the full sorted key set.
//!
//! Keys come from a small pool so that deletions and replacements hit present keys, and half of
//! the pool are "neighbours" that share a long prefix with another key (they differ in one late
//! bit), so deep shared paths, chains of one-child nodes and leaves at depth 256 all occur.

use cradle_ledger::merkle::Hash;
use cradle_ledger::merkle::smt::{
    EMPTY_HASH, MemoryTree, SmtProof, TreeUpdate, internal_hash, leaf_hash, prove, root, update,
};
use proptest::prelude::*;
use sha2::{Digest, Sha256};
use std::collections::BTreeMap;

type Change = (Hash, Option<Hash>);

fn bit(k: &Hash, i: usize) -> bool {
    (k[i / 8] >> (7 - i % 8)) & 1 == 1
}

/// The compressed tree's root, straight from the definition.
fn naive_root(entries: &[(Hash, Hash)], depth: usize) -> Hash {
    match entries {
        [] => EMPTY_HASH,
        [(k, v)] => leaf_hash(k, v),
        _ => {
            let split = entries.partition_point(|(k, _)| !bit(k, depth));
            internal_hash(
                &naive_root(&entries[..split], depth + 1),
                &naive_root(&entries[split..], depth + 1),
            )
        }
    }
}

fn reference_root(model: &BTreeMap<Hash, Hash>) -> Hash {
    let entries: Vec<(Hash, Hash)> = model.iter().map(|(k, v)| (*k, *v)).collect();
    naive_root(&entries, 0)
}

/// Pool key `i`: an independent key for even `i`, and for odd `i` the key `i - 1` with one bit
/// flipped at a depth from 8 to 255.
fn pool_key(i: u8) -> Hash {
    let mut k: Hash = Sha256::digest([i & !1]).into();
    if i & 1 == 1 {
        let b = 8 + usize::from(i.wrapping_mul(97)) % 248;
        k[b / 8] ^= 0x80 >> (b % 8);
    }
    k
}

fn value(v: u8) -> Hash {
    Sha256::digest([b'v', v]).into()
}

fn change() -> impl Strategy<Value = Change> {
    (0u8..48, prop::option::weighted(0.7, any::<u8>()))
        .prop_map(|(k, v)| (pool_key(k), v.map(value)))
}

fn apply(tree: &mut MemoryTree, changes: &[Change]) -> TreeUpdate {
    let up = update(&*tree, changes).expect("update");
    tree.apply(&up);
    up
}

/// The stored tree that inserting `model` from scratch in one batch gives.
fn canonical(model: &BTreeMap<Hash, Hash>) -> MemoryTree {
    let mut tree = MemoryTree::new();
    let changes: Vec<Change> = model.iter().map(|(k, v)| (*k, Some(*v))).collect();
    apply(&mut tree, &changes);
    tree
}

/// Splits `changes` into batches at the given cut points.
fn batches(changes: &[Change], cuts: &[usize]) -> Vec<Vec<Change>> {
    let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (changes.len() + 1)).collect();
    cuts.push(0);
    cuts.push(changes.len());
    cuts.sort_unstable();
    cuts.windows(2)
        .map(|w| changes[w[0]..w[1]].to_vec())
        .collect()
}

fn tamper(proof: &SmtProof, edit: impl FnOnce(&mut serde_json::Value)) -> Option<SmtProof> {
    let mut json = serde_json::to_value(proof).expect("to json");
    edit(&mut json);
    // A tampered proof that no longer decodes is refused already.
    serde_json::from_value(json).ok()
}

proptest! {
    // Failures print their shrunk input; persisting them would write files outside the
    // module's folders, so a case worth keeping becomes a named unit test instead.
    #![proptest_config(ProptestConfig {
        cases: 200,
        failure_persistence: None,
        ..ProptestConfig::default()
    })]

    /// Any batching of any change sequence gives the reference root, and stores exactly the
    /// nodes of the canonical tree: deletions leave nothing behind.
    #[test]
    fn batched_updates_match_the_reference(
        changes in prop::collection::vec(change(), 0..120),
        cuts in prop::collection::vec(any::<usize>(), 0..6),
    ) {
        let mut tree = MemoryTree::new();
        let mut model = BTreeMap::new();
        for batch in batches(&changes, &cuts) {
            let up = apply(&mut tree, &batch);
            for (k, v) in &batch {
                match v {
                    Some(v) => model.insert(*k, *v),
                    None => model.remove(k),
                };
            }
            prop_assert_eq!(up.root, reference_root(&model));
            prop_assert_eq!(root(&tree).expect("root"), up.root);
        }
        prop_assert_eq!(&tree, &canonical(&model));
    }

    /// Inserting a set one key at a time, in any order, equals inserting it in one batch; and
    /// deleting every key, in any order, empties the store.
    #[test]
    fn order_does_not_matter_and_deleting_all_empties_the_tree(
        keys in prop::collection::btree_map(0u8..48, any::<u8>(), 0..48)
            .prop_map(|m| m.into_iter().map(|(k, v)| (pool_key(k), value(v))).collect::<Vec<_>>())
            .prop_shuffle(),
        delete_order in Just(()).prop_perturb(|_, mut rng| rng.random::<u64>()),
    ) {
        let model: BTreeMap<Hash, Hash> = keys.iter().copied().collect();
        let mut one_by_one = MemoryTree::new();
        for (k, v) in &keys {
            apply(&mut one_by_one, &[(*k, Some(*v))]);
        }
        prop_assert_eq!(&one_by_one, &canonical(&model));

        let mut doomed: Vec<Hash> = keys.iter().map(|(k, _)| *k).collect();
        doomed.sort_by_key(|k| Sha256::new().chain_update(k).chain_update(delete_order.to_le_bytes()).finalize().to_vec());
        let mut tree = one_by_one;
        for k in doomed {
            apply(&mut tree, &[(k, None)]);
        }
        prop_assert_eq!(root(&tree).expect("root"), EMPTY_HASH);
        prop_assert!(tree.is_empty());
    }

    /// Presence proofs verify with the right value only; absence proofs verify for absent keys
    /// only; tampered proofs fail.
    #[test]
    fn proofs_verify_exactly_what_is_true(changes in prop::collection::vec(change(), 0..120)) {
        let mut tree = MemoryTree::new();
        let mut model = BTreeMap::new();
        for (k, v) in &changes {
            match v {
                Some(v) => model.insert(*k, *v),
                None => model.remove(k),
            };
        }
        let up = apply(&mut tree, &changes);
        let r = up.root;
        let wrong = value(0xff).map(|b| b ^ 1);
        for i in 0..48u8 {
            let k = pool_key(i);
            let proof = prove(&tree, &k).expect("prove");
            match model.get(&k) {
                Some(v) => {
                    prop_assert_eq!(proof.verify(&r, &k, Some(v)), Ok(()));
                    prop_assert!(proof.verify(&r, &k, Some(&wrong)).is_err());
                    prop_assert!(proof.verify(&r, &k, None).is_err());
                }
                None => {
                    prop_assert_eq!(proof.verify(&r, &k, None), Ok(()));
                    prop_assert!(proof.verify(&r, &k, Some(&value(0))).is_err());
                }
            }
            let claim = model.get(&k);
            // Against another root, nothing verifies (unless the tree is empty both ways).
            if r != EMPTY_HASH {
                prop_assert!(proof.verify(&[0x42; 32], &k, claim).is_err());
            }
            // Flip one bit in each sibling.
            for s in 0..proof.siblings().len() {
                let bad = tamper(&proof, |j| {
                    let byte = &mut j["siblings"][s][0];
                    *byte = (byte.as_u64().expect("byte") ^ 1).into();
                });
                if let Some(bad) = bad {
                    prop_assert!(bad.verify(&r, &k, claim).is_err(), "flipped sibling {}", s);
                }
            }
            // Drop the deepest sibling, and clear its bit so the proof still decodes.
            if !proof.siblings().is_empty() {
                let depth = usize::from(proof.depth());
                let deepest = (0..depth).rev().find(|&b| {
                    let bm = proof_bitmap(&proof);
                    bit(&bm, b)
                }).expect("a set bit");
                let bad = tamper(&proof, |j| {
                    j["siblings"].as_array_mut().expect("array").remove(0);
                    let byte = &mut j["bitmap"][deepest / 8];
                    *byte = (byte.as_u64().expect("byte") ^ (0x80 >> (deepest % 8))).into();
                });
                let bad = bad.expect("still well-formed");
                prop_assert!(bad.verify(&r, &k, claim).is_err(), "dropped sibling");
            }
            // Shorten or lengthen the path.
            for delta in [-1i64, 1] {
                let bad = tamper(&proof, |j| {
                    j["depth"] = (j["depth"].as_i64().expect("depth") + delta).into();
                });
                if let Some(bad) = bad {
                    prop_assert!(bad.verify(&r, &k, claim).is_err(), "depth {}", delta);
                }
            }
        }
    }
}

fn proof_bitmap(proof: &SmtProof) -> Hash {
    let json = serde_json::to_value(proof).expect("to json");
    let bytes: Vec<u8> = serde_json::from_value(json["bitmap"].clone()).expect("bitmap");
    bytes.try_into().expect("32 bytes")
}

/// With random keys the store holds O(n) nodes (about 2.44 n for a binary trie), and proofs stay
/// about log2(n) deep.
#[test]
fn stored_nodes_stay_linear_in_the_number_of_keys() {
    let mut tree = MemoryTree::new();
    let mut model = BTreeMap::new();
    for round in 0..4u32 {
        let changes: Vec<Change> = (0..1000u32)
            .map(|i| {
                let k: Hash = Sha256::digest((round * 1000 + i).to_be_bytes()).into();
                (k, Some(value(i as u8)))
            })
            .collect();
        apply(&mut tree, &changes);
        model.extend(changes.iter().map(|(k, v)| (*k, v.expect("insert"))));
        // Delete a tenth of what is there, to make sure removal also keeps the tree tight.
        let doomed: Vec<Change> = model.keys().step_by(10).map(|k| (*k, None)).collect();
        apply(&mut tree, &doomed);
        for (k, _) in &doomed {
            model.remove(k);
        }
        let n = model.len();
        println!("{n} keys: {} nodes", tree.len());
        assert!(tree.len() <= 3 * n, "{} nodes for {n} keys", tree.len());
        assert_eq!(root(&tree).expect("root"), reference_root(&model));
    }
    let deepest = model
        .keys()
        .map(|k| prove(&tree, k).expect("prove").depth())
        .max()
        .expect("keys");
    assert!(
        deepest <= 40,
        "deepest path {deepest} for {} keys",
        model.len()
    );
}
