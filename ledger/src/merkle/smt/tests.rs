//! Unit tests of the tree's shape, its storage diff and its refusal of a corrupt store.
//! Randomised properties live in `ledger/tests/smt_props.rs`.

use super::*;
use sha2::{Digest, Sha256};

fn key(i: u32) -> Hash {
    Sha256::digest(i.to_be_bytes()).into()
}

fn with_bit_flipped(mut k: Hash, i: usize) -> Hash {
    k[i / 8] ^= 0x80 >> (i % 8);
    k
}

fn apply(tree: &mut MemoryTree, changes: &[(Hash, Option<Hash>)]) -> TreeUpdate {
    let up = update(&*tree, changes).expect("update");
    tree.apply(&up);
    assert_eq!(root(&*tree), Ok(up.root));
    up
}

#[test]
fn empty_tree_has_zero_root_and_proves_absence() {
    let tree = MemoryTree::new();
    assert_eq!(root(&tree), Ok(EMPTY_HASH));
    assert_eq!(update(&tree, &[]), Ok(TreeUpdate::default()));
    let proof = prove(&tree, &key(1)).expect("prove");
    assert_eq!(proof.verify(&EMPTY_HASH, &key(1), None), Ok(()));
    assert_eq!(
        proof.verify(&EMPTY_HASH, &key(1), Some(&[1; 32])),
        Err(ProofError::KeyAbsent)
    );
}

#[test]
fn single_key_is_a_leaf_at_the_root() {
    let mut tree = MemoryTree::new();
    let up = apply(&mut tree, &[(key(1), Some([7; 32]))]);
    assert_eq!(up.root, leaf_hash(&key(1), &[7; 32]));
    assert_eq!(up.put.len(), 1);
    assert_eq!(up.put[0].0, NodeKey::root());
    let proof = prove(&tree, &key(1)).expect("prove");
    assert_eq!(proof.depth(), 0);
    assert_eq!(proof.verify(&up.root, &key(1), Some(&[7; 32])), Ok(()));
    // Another key is absent: the path ends at key(1)'s leaf.
    let other = prove(&tree, &key(2)).expect("prove");
    assert_eq!(other.verify(&up.root, &key(2), None), Ok(()));
}

#[test]
fn keys_sharing_255_bits_split_at_the_last_level_and_merge_back() {
    let a = key(5);
    let b = with_bit_flipped(a, 255);
    let mut tree = MemoryTree::new();
    apply(&mut tree, &[(a, Some([1; 32])), (b, Some([2; 32]))]);
    // 256 internal nodes down the shared path, then the two leaves at depth 256.
    assert_eq!(tree.len(), 256 + 2);
    for (k, v) in [(a, [1; 32]), (b, [2; 32])] {
        let proof = prove(&tree, &k).expect("prove");
        assert_eq!(proof.depth(), 256);
        assert_eq!(
            proof.siblings().len(),
            1,
            "only the other leaf is non-empty"
        );
        assert_eq!(
            proof.verify(&root(&tree).expect("root"), &k, Some(&v)),
            Ok(())
        );
    }
    let up = apply(&mut tree, &[(b, None)]);
    assert_eq!(
        up.delete.len(),
        256 + 1,
        "the chain and b's leaf go, a's leaf moves"
    );
    assert_eq!(tree.len(), 1);
    assert_eq!(up.root, leaf_hash(&a, &[1; 32]));
}

#[test]
fn no_op_changes_write_nothing() {
    let mut tree = MemoryTree::new();
    let changes: Vec<_> = (0..50).map(|i| (key(i), Some([i as u8; 32]))).collect();
    apply(&mut tree, &changes);
    let before = root(&tree).expect("root");
    let up = update(&tree, &[(key(3), Some([3; 32])), (key(999), None)]).expect("update");
    assert!(up.put.is_empty() && up.delete.is_empty(), "{up:?}");
    assert_eq!(up.root, before);
    // An empty batch on a non-empty tree must not touch the root either.
    assert_eq!(
        update(&tree, &[]),
        Ok(TreeUpdate {
            root: before,
            ..TreeUpdate::default()
        })
    );
}

#[test]
fn duplicate_changes_last_one_wins() {
    let mut a = MemoryTree::new();
    apply(
        &mut a,
        &[
            (key(1), Some([1; 32])),
            (key(1), None),
            (key(1), Some([9; 32])),
        ],
    );
    let mut b = MemoryTree::new();
    apply(&mut b, &[(key(1), Some([9; 32]))]);
    assert_eq!(a, b);
    let up = update(&a, &[(key(1), Some([2; 32])), (key(1), None)]).expect("update");
    assert_eq!(up.root, EMPTY_HASH);
}

#[test]
fn corrupt_or_missing_nodes_are_reported() {
    let mut tree = MemoryTree::new();
    let changes: Vec<_> = (0..20).map(|i| (key(i), Some([1; 32]))).collect();
    apply(&mut tree, &changes);

    // Replace a leaf's value behind the tree's back: its parent's hash no longer matches.
    let (leaf_pos, leaf) = tree
        .nodes()
        .find(|(_, n)| matches!(n, Node::Leaf { .. }))
        .map(|(k, n)| (*k, *n))
        .expect("a leaf");
    let Node::Leaf { key_hash, .. } = leaf else {
        unreachable!()
    };
    let mut corrupt = tree.clone();
    corrupt.nodes.insert(
        leaf_pos,
        Node::Leaf {
            key_hash,
            value_hash: [0xee; 32],
        },
    );
    assert!(matches!(
        update(&corrupt, &[(key_hash, None)]),
        Err(SmtError::CorruptNode { .. })
    ));
    assert!(matches!(
        prove(&corrupt, &key_hash),
        Err(SmtError::CorruptNode { .. })
    ));

    let mut missing = tree.clone();
    missing.nodes.remove(&leaf_pos);
    assert_eq!(
        update(&missing, &[(key_hash, Some([2; 32]))]),
        Err(SmtError::MissingNode { key: leaf_pos })
    );
    assert_eq!(
        prove(&missing, &key_hash),
        Err(SmtError::MissingNode { key: leaf_pos })
    );
}

struct FailingStore;

impl TreeReader for FailingStore {
    fn node(&self, _: &NodeKey) -> Result<Option<Node>, SmtError> {
        Err(SmtError::Storage("disk on fire".into()))
    }
}

#[test]
fn storage_errors_propagate() {
    let err = SmtError::Storage("disk on fire".into());
    assert_eq!(update(&FailingStore, &[(key(1), None)]), Err(err.clone()));
    assert_eq!(prove(&FailingStore, &key(1)), Err(err.clone()));
    assert_eq!(root(&FailingStore), Err(err));
}

#[test]
fn proofs_round_trip_through_borsh_and_serde() {
    let mut tree = MemoryTree::new();
    let changes: Vec<_> = (0..100).map(|i| (key(i), Some([i as u8; 32]))).collect();
    apply(&mut tree, &changes);
    for k in [key(7), key(1000)] {
        let proof = prove(&tree, &k).expect("prove");
        let bytes = borsh::to_vec(&proof).expect("encode");
        assert_eq!(
            borsh::from_slice::<SmtProof>(&bytes).expect("decode"),
            proof
        );
        let json = serde_json::to_string(&proof).expect("json");
        assert_eq!(
            serde_json::from_str::<SmtProof>(&json).expect("json"),
            proof
        );
    }
    // A sibling count that disagrees with the bitmap, or a huge one, is refused before
    // allocating.
    let mut bytes = 0u16.to_le_bytes().to_vec();
    bytes.extend([0u8; 32]);
    bytes.extend(u32::MAX.to_le_bytes());
    assert!(borsh::from_slice::<SmtProof>(&bytes).is_err());
    // Bitmap bits beyond the depth are refused.
    let mut bytes = 1u16.to_le_bytes().to_vec();
    let mut bitmap = [0u8; 32];
    bitmap[0] = 0b0100_0000;
    bytes.extend(bitmap);
    bytes.extend(1u32.to_le_bytes());
    bytes.extend([5u8; 32]);
    bytes.push(0);
    assert!(borsh::from_slice::<SmtProof>(&bytes).is_err());
}
