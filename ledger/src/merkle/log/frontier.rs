//! The frontier (compact range `[0, size)`): the roots of the perfect subtrees along the right
//! border of the tree, one per set bit of `size`, largest first.
//!
//! It is stored inside the ledger state, once per patient, so its encoding is small (8 bytes plus
//! 32 per set bit of `size`) and its decoders refuse anything that is not a frontier: more than
//! 64 hashes, or a hash count different from `popcount(size)`.

use super::{SubtreeSource, empty_root, node_hash};
use crate::merkle::{Hash, ProofError};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// A frontier never holds more hashes than a `u64` size has bits.
pub const MAX_FRONTIER_HASHES: usize = 64;

/// Append-only O(log n) state of an RFC 6962 tree: its size and its right border.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "FrontierWire", into = "FrontierWire")]
pub struct Frontier {
    size: u64,
    /// Roots of the perfect subtrees covering `[0, size)`, left to right (so largest first).
    hashes: Vec<Hash>,
}

impl Frontier {
    /// The frontier of the empty tree.
    pub fn new() -> Self {
        Self::default()
    }

    /// Rebuilds a frontier from its parts, refusing an inconsistent hash count.
    pub fn from_parts(size: u64, hashes: Vec<Hash>) -> Result<Self, ProofError> {
        let frontier = Self { size, hashes };
        frontier.validate()?;
        Ok(frontier)
    }

    /// Rebuilds the frontier of the first `size` leaves from stored perfect subtrees, with one
    /// lookup per set bit of `size`.
    pub fn from_source(src: &impl SubtreeSource, size: u64) -> Result<Self, ProofError> {
        let mut hashes = Vec::with_capacity(size.count_ones() as usize);
        let mut start = 0u64;
        for level in (0..u64::BITS).rev() {
            if size & (1u64 << level) != 0 {
                hashes.push(src.perfect_subtree(level, start >> level)?);
                start += 1u64 << level;
            }
        }
        Ok(Self { size, hashes })
    }

    /// Checks the invariant every decoder relies on: one hash per set bit of `size`.
    pub fn validate(&self) -> Result<(), ProofError> {
        if self.hashes.len() > MAX_FRONTIER_HASHES {
            return Err(ProofError::TooManyHashes {
                got: self.hashes.len(),
                max: MAX_FRONTIER_HASHES,
            });
        }
        let want = self.size.count_ones() as usize;
        if self.hashes.len() != want {
            return Err(ProofError::FrontierHashCount {
                size: self.size,
                got: self.hashes.len(),
                want,
            });
        }
        Ok(())
    }

    /// Number of leaves appended so far.
    pub fn size(&self) -> u64 {
        self.size
    }

    /// The perfect-subtree roots, largest (leftmost) first.
    pub fn hashes(&self) -> &[Hash] {
        &self.hashes
    }

    /// Appends one leaf hash.
    ///
    /// # Panics
    /// If the tree already holds `u64::MAX` leaves, which no ledger reaches.
    pub fn append(&mut self, leaf_hash: Hash) {
        self.append_nodes(leaf_hash);
    }

    /// Appends one leaf hash and returns every perfect subtree the leaf completed, as
    /// `(level, index, hash)`, lowest level first (level 0 is the leaf itself). A node stores
    /// these so that [`super::inclusion_proof`] and [`super::consistency_proof`] can later read
    /// them back through a [`SubtreeSource`].
    ///
    /// # Panics
    /// If the tree already holds `u64::MAX` leaves.
    pub fn append_nodes(&mut self, leaf_hash: Hash) -> Vec<(u32, u64, Hash)> {
        let index = self.size;
        let size = index.checked_add(1).expect("log tree size overflows u64");
        // Each trailing one bit of the old size is a perfect subtree that now has a right
        // sibling of the same height: merge them, carrying upward like binary addition.
        let merges = index.trailing_ones();
        let mut completed = Vec::with_capacity(merges as usize + 1);
        let mut acc = leaf_hash;
        completed.push((0, index, acc));
        for level in 1..=merges {
            let left = self
                .hashes
                .pop()
                .expect("popcount invariant: a hash per set bit");
            acc = node_hash(&left, &acc);
            completed.push((level, index >> level, acc));
        }
        self.hashes.push(acc);
        self.size = size;
        debug_assert_eq!(self.hashes.len(), self.size.count_ones() as usize);
        completed
    }

    /// The RFC 6962 root of the tree so far.
    pub fn root(&self) -> Hash {
        // The RFC splits a tree at its largest power of two, which is exactly the leftmost
        // perfect subtree, so the root folds the border from the right.
        let mut iter = self.hashes.iter().rev();
        match iter.next() {
            None => empty_root(),
            Some(last) => iter.fold(*last, |acc, left| node_hash(left, &acc)),
        }
    }
}

/// The serde form, so that deserializing goes through [`Frontier::validate`].
#[derive(Serialize, Deserialize)]
struct FrontierWire {
    size: u64,
    hashes: Vec<Hash>,
}

impl TryFrom<FrontierWire> for Frontier {
    type Error = ProofError;
    fn try_from(wire: FrontierWire) -> Result<Self, ProofError> {
        Frontier::from_parts(wire.size, wire.hashes)
    }
}

impl From<Frontier> for FrontierWire {
    fn from(f: Frontier) -> Self {
        FrontierWire {
            size: f.size,
            hashes: f.hashes,
        }
    }
}

// Borsh layout: size (u64 LE), hash count (u32 LE), hashes. The same bytes a derive would give,
// but the decoder checks the count before it allocates.
impl BorshSerialize for Frontier {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.size, writer)?;
        BorshSerialize::serialize(&self.hashes, writer)
    }
}

impl BorshDeserialize for Frontier {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let invalid = |e: ProofError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let size = u64::deserialize_reader(reader)?;
        let count = u32::deserialize_reader(reader)? as usize;
        let want = size.count_ones() as usize;
        if count != want {
            return Err(invalid(ProofError::FrontierHashCount {
                size,
                got: count,
                want,
            }));
        }
        let mut hashes = Vec::with_capacity(count);
        for _ in 0..count {
            hashes.push(<Hash>::deserialize_reader(reader)?);
        }
        Ok(Self { size, hashes })
    }
}

#[cfg(test)]
mod tests {
    use super::super::{MemoryLog, completed_subtrees, leaf_hash, root_of};
    use super::*;

    fn leaves(n: u64) -> Vec<Hash> {
        (0..n).map(|i| leaf_hash(&i.to_le_bytes())).collect()
    }

    #[test]
    fn frontier_root_matches_root_of_at_every_size() {
        let all = leaves(100);
        let mut f = Frontier::new();
        assert_eq!(f.root(), root_of(&[]));
        for (i, leaf) in all.iter().enumerate() {
            f.append(*leaf);
            assert_eq!(f.size(), i as u64 + 1);
            assert_eq!(f.root(), root_of(&all[..=i]), "size {}", i + 1);
            f.validate().expect("valid");
        }
    }

    #[test]
    fn append_nodes_reports_the_subtrees_completed_helper_predicts() {
        let mut f = Frontier::new();
        let mut log = MemoryLog::new();
        for (n, leaf) in leaves(40).into_iter().enumerate() {
            let nodes = f.append_nodes(leaf);
            log.append(leaf);
            let positions: Vec<(u32, u64)> = nodes.iter().map(|(l, i, _)| (*l, *i)).collect();
            assert_eq!(positions, completed_subtrees(n as u64));
            for (level, index, hash) in nodes {
                assert_eq!(log.perfect_subtree(level, index), Ok(hash));
            }
        }
    }

    #[test]
    fn from_source_rebuilds_the_frontier() {
        let mut log = MemoryLog::new();
        let mut f = Frontier::new();
        for leaf in leaves(37) {
            log.append(leaf);
            f.append(leaf);
            assert_eq!(Frontier::from_source(&log, f.size()), Ok(f.clone()));
        }
    }

    #[test]
    fn borsh_and_serde_round_trip() {
        let mut f = Frontier::new();
        for leaf in leaves(13) {
            f.append(leaf);
        }
        let bytes = borsh::to_vec(&f).expect("encode");
        assert_eq!(bytes.len(), 8 + 4 + 32 * 3);
        assert_eq!(borsh::from_slice::<Frontier>(&bytes).expect("decode"), f);
        let json = serde_json::to_string(&f).expect("json");
        assert_eq!(serde_json::from_str::<Frontier>(&json).expect("json"), f);
    }

    #[test]
    fn decoders_reject_a_hash_count_that_is_not_popcount() {
        // size 3 needs two hashes; claim one, then claim 2^32 - 1 (must not allocate).
        let mut bytes = 3u64.to_le_bytes().to_vec();
        bytes.extend(1u32.to_le_bytes());
        bytes.extend([7u8; 32]);
        assert!(borsh::from_slice::<Frontier>(&bytes).is_err());
        let mut huge = 3u64.to_le_bytes().to_vec();
        huge.extend(u32::MAX.to_le_bytes());
        assert!(borsh::from_slice::<Frontier>(&huge).is_err());
        // Trailing bytes are refused by borsh::from_slice.
        let mut f = Frontier::new();
        f.append([1; 32]);
        let mut ok = borsh::to_vec(&f).expect("encode");
        ok.push(0);
        assert!(borsh::from_slice::<Frontier>(&ok).is_err());

        let json = format!(r#"{{"size":3,"hashes":[{:?}]}}"#, [0u8; 32]);
        assert!(serde_json::from_str::<Frontier>(&json).is_err());
        assert!(Frontier::from_parts(0, vec![[0; 32]]).is_err());
        assert!(Frontier::from_parts(u64::MAX, vec![[0; 32]; 65]).is_err());
    }
}
