//! Inclusion and consistency proof verification, RFC 9162 §2.1.3.2 and §2.1.4.2.
//!
//! The RFC walks the proof bit by bit; like transparency-dev/merkle's `proof` package we first
//! split the proof into its "inner" part (below the point where the path to the leaf leaves the
//! right border) and its "border" part. The result is the same, and a proof of the wrong length
//! is refused up front with the length it should have had.
//!
//! Edge cases, as the transparency-dev vectors fix them: the empty tree contains no leaf; a tree
//! is consistent with itself only through an empty proof and equal roots (and the root of the
//! empty tree is SHA-256 of ""); a consistency proof from the empty tree is refused as meaningless.

use super::{empty_root, node_hash};
use crate::merkle::{Hash, ProofError};

/// Lengths of the inner and border parts of the inclusion proof for leaf `index` of `size`.
fn decompose(index: u64, size: u64) -> (usize, usize) {
    let inner = (u64::BITS - (index ^ (size - 1)).leading_zeros()) as usize;
    // inner is 64 when the paths split at the root of a 2^64-leaf-wide tree; a plain shift by
    // 64 would panic on hostile sizes.
    let border = index.checked_shr(inner as u32).unwrap_or(0).count_ones() as usize;
    (inner, border)
}

/// Hashes `seed` up through inner proof nodes; bit i of `index` says which side it is on.
fn chain_inner(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        seed = if (index >> i) & 1 == 0 {
            node_hash(&seed, h)
        } else {
            node_hash(h, &seed)
        };
    }
    seed
}

/// Like [`chain_inner`], but keeps only the siblings on the left: the result is the same
/// subtree as it was before the nodes to the right of the path were appended.
fn chain_inner_right(mut seed: Hash, proof: &[Hash], index: u64) -> Hash {
    for (i, h) in proof.iter().enumerate() {
        if (index >> i) & 1 == 1 {
            seed = node_hash(h, &seed);
        }
    }
    seed
}

/// Hashes up along the right border, where every sibling is on the left.
fn chain_border_right(seed: Hash, proof: &[Hash]) -> Hash {
    proof.iter().fold(seed, |acc, h| node_hash(h, &acc))
}

fn check_match(calculated: &Hash, expected: &Hash) -> Result<(), ProofError> {
    if calculated == expected {
        Ok(())
    } else {
        Err(ProofError::RootMismatch)
    }
}

/// The root that an inclusion proof for `leaf_hash` at `index` in a tree of `size` implies.
pub fn root_from_inclusion_proof(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
) -> Result<Hash, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    let (inner, border) = decompose(index, size);
    if proof.len() != inner + border {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want: inner + border,
        });
    }
    let res = chain_inner(*leaf_hash, &proof[..inner], index);
    Ok(chain_border_right(res, &proof[inner..]))
}

/// Checks that `proof` proves the leaf `leaf_hash` sits at `index` in the tree of `size`
/// leaves whose root is `root`.
pub fn verify_inclusion(
    leaf_hash: &Hash,
    index: u64,
    size: u64,
    proof: &[Hash],
    root: &Hash,
) -> Result<(), ProofError> {
    let calculated = root_from_inclusion_proof(leaf_hash, index, size, proof)?;
    check_match(&calculated, root)
}

/// The root of the tree of `size2` that a consistency proof from (`size1`, `root1`) implies,
/// after checking that the proof also reproduces `root1`.
pub fn root_from_consistency_proof(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
) -> Result<Hash, ProofError> {
    if size2 < size1 {
        return Err(ProofError::SizeDecreased { size1, size2 });
    }
    if size1 == size2 {
        if !proof.is_empty() {
            return Err(ProofError::WrongProofLength {
                got: proof.len(),
                want: 0,
            });
        }
        if size1 == 0 && *root1 != empty_root() {
            return Err(ProofError::NotEmptyRoot);
        }
        return Ok(*root1);
    }
    if size1 == 0 {
        return Err(ProofError::EmptyTreeConsistency { size2 });
    }

    // The proof is, after an optional seed, a suffix of the inclusion proof for leaf size1 - 1
    // in the tree of size2, starting at the level of the largest perfect subtree that ends at
    // size1 (level `shift`).
    let (inner, border) = decompose(size1 - 1, size2);
    let shift = size1.trailing_zeros() as usize;
    let inner = inner - shift; // shift < inner because size1 < size2.
    // If size1 is itself a power of two, that subtree is the whole old tree and its hash is
    // root1; otherwise the proof carries it first.
    let seeded_by_root1 = size1 == 1u64 << shift;
    let start = usize::from(!seeded_by_root1);
    let want = start + inner + border;
    if proof.len() != want {
        return Err(ProofError::WrongProofLength {
            got: proof.len(),
            want,
        });
    }
    let seed = if seeded_by_root1 { *root1 } else { proof[0] };
    let proof = &proof[start..];
    let mask = (size1 - 1) >> shift;

    let hash1 = chain_inner_right(seed, &proof[..inner], mask);
    let hash1 = chain_border_right(hash1, &proof[inner..]);
    check_match(&hash1, root1)?;

    let hash2 = chain_inner(seed, &proof[..inner], mask);
    Ok(chain_border_right(hash2, &proof[inner..]))
}

/// Checks that the tree of `size2` leaves with root `root2` extends the tree of `size1` leaves
/// with root `root1`.
pub fn verify_consistency(
    size1: u64,
    size2: u64,
    proof: &[Hash],
    root1: &Hash,
    root2: &Hash,
) -> Result<(), ProofError> {
    let calculated = root_from_consistency_proof(size1, size2, proof, root1)?;
    check_match(&calculated, root2)
}

#[cfg(test)]
mod tests {
    use super::super::leaf_hash;
    use super::*;

    #[test]
    fn single_leaf_tree_root_is_the_leaf() {
        let leaf = leaf_hash(b"data");
        assert_eq!(verify_inclusion(&leaf, 0, 1, &[], &leaf), Ok(()));
        assert_eq!(
            verify_inclusion(&leaf, 0, 1, &[leaf], &leaf),
            Err(ProofError::WrongProofLength { got: 1, want: 0 })
        );
        assert_eq!(
            verify_inclusion(&leaf, 1, 1, &[], &leaf),
            Err(ProofError::IndexOutOfRange { index: 1, size: 1 })
        );
    }

    #[test]
    fn empty_tree_edge_cases() {
        let e = empty_root();
        assert_eq!(verify_consistency(0, 0, &[], &e, &e), Ok(()));
        assert_eq!(
            verify_consistency(0, 0, &[], &[1; 32], &[1; 32]),
            Err(ProofError::NotEmptyRoot)
        );
        assert_eq!(
            verify_consistency(0, 1, &[], &e, &[1; 32]),
            Err(ProofError::EmptyTreeConsistency { size2: 1 })
        );
        assert_eq!(
            verify_inclusion(&e, 0, 0, &[], &e),
            Err(ProofError::IndexOutOfRange { index: 0, size: 0 })
        );
    }

    #[test]
    fn large_sizes_do_not_overflow() {
        let h = [3u8; 32];
        let size = u64::MAX;
        // The last leaf of a tree of 2^64 - 1 leaves has one border sibling per other set bit.
        let proof = vec![h; 63];
        assert_eq!(
            verify_inclusion(&h, size - 1, size, &proof, &h),
            Err(ProofError::RootMismatch)
        );
        assert!(verify_consistency(size - 1, size, &proof, &h, &h).is_err());
        assert!(verify_consistency(1, size, &[], &h, &h).is_err());
    }
}
