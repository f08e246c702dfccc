//! Positions and nodes of the sparse Merkle tree, and its hashing rules.
//!
//! A position is a depth (0 for the root, up to 256) and the first `depth` bits of the path
//! from the root, bit 0 being the most significant bit of the key hash's first byte; bit 0 of a
//! path goes left, 1 goes right.

use super::SmtError;
use crate::merkle::{Hash, ProofError};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// The hash of an empty subtree, and the root of the empty tree.
pub const EMPTY_HASH: Hash = [0u8; 32];

/// Length of a node's borsh encoding: a one-byte variant tag and two hashes.
pub const NODE_BYTES: usize = 65;

/// Deepest level of the tree: one bit per bit of a SHA-256 key hash.
pub const MAX_DEPTH: u16 = 256;

/// Bit `i` (0 = most significant bit of byte 0) of a 256-bit value.
pub(crate) fn bit(bits: &Hash, i: u16) -> bool {
    debug_assert!(i < MAX_DEPTH);
    let i = usize::from(i);
    (bits[i / 8] >> (7 - i % 8)) & 1 == 1
}

/// Leaf hash: SHA-256(0x00 || key_hash || value_hash).
pub fn leaf_hash(key_hash: &Hash, value_hash: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x00])
        .chain_update(key_hash)
        .chain_update(value_hash)
        .finalize()
        .into()
}

/// Internal node hash: SHA-256(0x01 || left || right), an empty child counting as [`EMPTY_HASH`].
pub fn internal_hash(left: &Hash, right: &Hash) -> Hash {
    Sha256::new()
        .chain_update([0x01])
        .chain_update(left)
        .chain_update(right)
        .finalize()
        .into()
}

/// A position in the tree. Orders by depth, then by path, like its byte encoding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct NodeKey {
    depth: u16,
    /// The path bits; every bit at or after `depth` is zero, so equal positions compare equal.
    path: [u8; 32],
}

impl Ord for NodeKey {
    /// Depth, then the path bytes in lexicographic order (as a derived order would), compared
    /// as two big-endian 128-bit words: updates sort and search many positions, and a byte
    /// comparison of the path is a call to `memcmp`.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.depth
            .cmp(&other.depth)
            .then_with(|| path_words(&self.path).cmp(&path_words(&other.path)))
    }
}

impl PartialOrd for NodeKey {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

/// A 256-bit path as two big-endian words, which order as the bytes do.
fn path_words(path: &[u8; 32]) -> (u128, u128) {
    let (hi, lo) = path.split_at(16);
    let word = |half: &[u8]| {
        let mut w = [0u8; 16];
        w.copy_from_slice(half);
        u128::from_be_bytes(w)
    };
    (word(hi), word(lo))
}

/// Longest encoding of a [`NodeKey`]: two depth bytes and 32 path bytes.
pub const NODE_KEY_BYTES_MAX: usize = 34;

impl NodeKey {
    /// Writes [`Self::to_bytes`] into `out` without allocating; returns its length.
    pub fn write_bytes(&self, out: &mut [u8; NODE_KEY_BYTES_MAX]) -> usize {
        let used = usize::from(self.depth).div_ceil(8);
        out[..2].copy_from_slice(&self.depth.to_be_bytes());
        out[2..2 + used].copy_from_slice(&self.path[..used]);
        2 + used
    }

    /// The root position.
    pub fn root() -> Self {
        Self {
            depth: 0,
            path: [0; 32],
        }
    }

    /// The position at `depth` on the path to `key_hash` (`depth` is capped at 256).
    pub fn for_key(key_hash: &Hash, depth: u16) -> Self {
        let depth = depth.min(MAX_DEPTH);
        let mut path = *key_hash;
        let full = usize::from(depth / 8);
        if full < 32 {
            path[full] &= !(0xffu8.checked_shr(u32::from(depth % 8)).unwrap_or(0));
            path[full + 1..].fill(0);
        }
        Self { depth, path }
    }

    pub fn depth(&self) -> u16 {
        self.depth
    }

    /// The path bits, zero from `depth` on.
    pub fn path(&self) -> &[u8; 32] {
        &self.path
    }

    /// Whether this position lies on the path to `key_hash`.
    pub fn is_prefix_of(&self, key_hash: &Hash) -> bool {
        Self::for_key(key_hash, self.depth) == *self
    }

    /// The child on the `right` (bit 1) or left (bit 0) side. Callers stop at depth 256.
    pub(crate) fn child(&self, right: bool) -> Self {
        debug_assert!(self.depth < MAX_DEPTH);
        let mut path = self.path;
        if right {
            let i = usize::from(self.depth);
            path[i / 8] |= 0x80 >> (i % 8);
        }
        Self {
            depth: self.depth + 1,
            path,
        }
    }

    /// Compact, prefix-free and order-preserving encoding: the depth as two big-endian bytes,
    /// then the `ceil(depth / 8)` path bytes. The depth fixes the length, so no encoding is a
    /// prefix of another, and byte order equals [`Ord`] order.
    pub fn to_bytes(&self) -> Vec<u8> {
        let used = usize::from(self.depth).div_ceil(8);
        let mut out = Vec::with_capacity(2 + used);
        out.extend(self.depth.to_be_bytes());
        out.extend(&self.path[..used]);
        out
    }

    /// Decodes [`Self::to_bytes`], refusing any other encoding of the same position.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, ProofError> {
        let invalid = |reason| ProofError::InvalidNodeKey { reason };
        let (head, rest) = bytes.split_first_chunk::<2>().ok_or(invalid("too short"))?;
        let depth = u16::from_be_bytes(*head);
        if depth > MAX_DEPTH {
            return Err(invalid("depth above 256"));
        }
        if rest.len() != usize::from(depth).div_ceil(8) {
            return Err(invalid("length does not match depth"));
        }
        let mut path = [0u8; 32];
        path[..rest.len()].copy_from_slice(rest);
        let key = Self { depth, path };
        if Self::for_key(&path, depth) != key {
            return Err(invalid("bits set beyond depth"));
        }
        Ok(key)
    }
}

impl std::fmt::Display for NodeKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let used = usize::from(self.depth).div_ceil(8);
        write!(f, "{}/{}", self.depth, hex::encode(&self.path[..used]))
    }
}

/// A stored node. An internal node keeps both child hashes so that a proof or an update reads
/// one node per level; a leaf sits at the highest position where it is alone in its subtree.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub enum Node {
    Internal { left: Hash, right: Hash },
    Leaf { key_hash: Hash, value_hash: Hash },
}

impl Node {
    pub fn hash(&self) -> Hash {
        match self {
            Node::Internal { left, right } => internal_hash(left, right),
            Node::Leaf {
                key_hash,
                value_hash,
            } => leaf_hash(key_hash, value_hash),
        }
    }

    /// Checks what can be checked of a node read from storage at `key`: a leaf lies on its own
    /// path, an internal node has a non-empty child and is not below the last level.
    pub(crate) fn check_at(&self, key: &NodeKey) -> Result<(), SmtError> {
        let corrupt = |reason| SmtError::CorruptNode { key: *key, reason };
        match self {
            Node::Leaf { key_hash, .. } if !key.is_prefix_of(key_hash) => {
                Err(corrupt("leaf is not on its key's path"))
            }
            Node::Internal { left, right } if *left == EMPTY_HASH && *right == EMPTY_HASH => {
                Err(corrupt("internal node without children"))
            }
            Node::Internal { .. } if key.depth() >= MAX_DEPTH => {
                Err(corrupt("internal node below the last level"))
            }
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn node_key_bytes_round_trip_and_sort_like_ord() {
        let key: Hash = std::array::from_fn(|i| (i as u8).wrapping_mul(37) ^ 0xa5);
        let mut keys: Vec<NodeKey> = (0..=256).map(|d| NodeKey::for_key(&key, d)).collect();
        keys.extend((0..=256).map(|d| NodeKey::for_key(&[0xff; 32], d)));
        keys.extend((0..=256).map(|d| NodeKey::for_key(&[0; 32], d)));
        for k in &keys {
            assert_eq!(NodeKey::from_bytes(&k.to_bytes()), Ok(*k), "{k}");
            let mut buf = [0u8; NODE_KEY_BYTES_MAX];
            let len = k.write_bytes(&mut buf);
            assert_eq!(&buf[..len], k.to_bytes().as_slice(), "{k}");
            assert!(
                k.is_prefix_of(&key) || k.is_prefix_of(&[0xff; 32]) || k.is_prefix_of(&[0; 32])
            );
        }
        let mut by_ord = keys.clone();
        by_ord.sort();
        let mut by_bytes = keys;
        by_bytes.sort_by_key(|k| k.to_bytes());
        assert_eq!(by_ord, by_bytes);
    }

    #[test]
    fn node_key_children_extend_the_path() {
        let key = [0b1010_0000u8; 32];
        let mut pos = NodeKey::root();
        for d in 0..MAX_DEPTH {
            pos = pos.child(bit(&key, d));
            assert_eq!(pos, NodeKey::for_key(&key, d + 1));
        }
        assert_eq!(pos.path(), &key);
    }

    #[test]
    fn node_key_rejects_non_canonical_bytes() {
        assert!(NodeKey::from_bytes(&[]).is_err());
        assert!(NodeKey::from_bytes(&[0]).is_err());
        assert!(NodeKey::from_bytes(&[1, 1]).is_err(), "depth 257");
        assert!(NodeKey::from_bytes(&[0, 3]).is_err(), "missing path byte");
        assert!(
            NodeKey::from_bytes(&[0, 3, 0b0001_0000]).is_err(),
            "bit beyond depth"
        );
        assert!(NodeKey::from_bytes(&[0, 3, 0b1110_0000]).is_ok());
        assert!(NodeKey::from_bytes(&[0, 0, 0]).is_err(), "trailing byte");
    }

    #[test]
    fn node_borsh_round_trip_is_fixed_size() {
        let leaf = Node::Leaf {
            key_hash: [1; 32],
            value_hash: [2; 32],
        };
        let bytes = borsh::to_vec(&leaf).expect("encode");
        assert_eq!(bytes.len(), NODE_BYTES);
        assert_eq!(borsh::from_slice::<Node>(&bytes).expect("decode"), leaf);
        assert!(borsh::from_slice::<Node>(&[2; 65]).is_err(), "unknown tag");
        assert_ne!(leaf.hash(), internal_hash(&[1; 32], &[2; 32]));
    }
}
