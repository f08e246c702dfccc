//! The RFC 6962 / RFC 9162 append-only log tree (SHA-256, leaf prefix 0x00, node prefix 0x01).
//!
//! What it owns:
//! - the hashing rules ([`leaf_hash`], [`node_hash`], [`empty_root`], [`root_of`]);
//! - [`Frontier`]: the O(log n) state needed to keep appending and to compute the root, small
//!   enough to live inside the ledger state (one per patient, one for the global access log);
//! - proof generation over a [`SubtreeSource`] of perfect-subtree hashes, so a node can serve
//!   proofs for logs of millions of leaves from storage, and [`MemoryLog`] for small logs;
//! - verification exactly as RFC 9162 §2.1.3.2 and §2.1.4.2 describe it.
//!
//! What it promises: a tree built here has the same root and the same proofs as any RFC 6962
//! implementation (checked against the transparency-dev/merkle vectors), and a verifier returns
//! `Ok` only for a proof that really ties the claimed leaf or old root to the given root.

mod frontier;
mod prove;
mod verify;

pub use frontier::{Frontier, MAX_FRONTIER_HASHES};
pub use prove::{
    MemoryLog, SubtreeSource, completed_subtrees, consistency_proof, inclusion_proof, root_at,
};
pub use verify::{
    root_from_consistency_proof, root_from_inclusion_proof, verify_consistency, verify_inclusion,
};

use super::Hash;
use sha2::{Digest, Sha256};

/// RFC 6962 leaf hash: SHA-256(0x00 || data).
pub fn leaf_hash(data: &[u8]) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(data)
        .finalize()
        .into()
}

/// RFC 6962 interior node hash: SHA-256(0x01 || left || right).
pub fn node_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// Root of the empty tree: SHA-256 of the empty string.
pub fn empty_root() -> Hash {
    Sha256::digest([]).into()
}

/// Root of the tree whose leaves have the given hashes (RFC 6962 MTH), in O(n) time and
/// O(log n) space.
pub fn root_of(leaf_hashes: &[Hash]) -> Hash {
    let mut frontier = Frontier::new();
    for leaf in leaf_hashes {
        frontier.append(*leaf);
    }
    frontier.root()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// MTH exactly as RFC 6962 §2.1 writes it, to check the iterative versions against.
    fn mth(leaves: &[Hash]) -> Hash {
        match leaves.len() {
            0 => empty_root(),
            1 => leaves[0],
            n => {
                let k = 1usize << (usize::BITS - 1 - (n - 1).leading_zeros());
                node_hash(&mth(&leaves[..k]), &mth(&leaves[k..]))
            }
        }
    }

    #[test]
    fn empty_root_is_sha256_of_nothing() {
        assert_eq!(
            hex::encode(empty_root()),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
        assert_eq!(root_of(&[]), empty_root());
    }

    #[test]
    fn root_of_matches_the_recursive_definition() {
        let leaves: Vec<Hash> = (0u32..70).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        for n in 0..=leaves.len() {
            assert_eq!(root_of(&leaves[..n]), mth(&leaves[..n]), "size {n}");
        }
    }

    #[test]
    fn rfc6962_reference_root_of_eight_leaves() {
        // The Certificate Transparency reference leaves and root (RFC 6962 test data).
        let leaves = [
            "",
            "00",
            "10",
            "2021",
            "3031",
            "40414243",
            "5051525354555657",
            "606162636465666768696a6b6c6d6e6f",
        ];
        let hashes: Vec<Hash> = leaves
            .iter()
            .map(|h| leaf_hash(&hex::decode(h).expect("hex")))
            .collect();
        assert_eq!(
            hex::encode(root_of(&hashes)),
            "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
        );
    }
}
