//! Proofs of presence and absence in the sparse Merkle tree.
//!
//! A proof follows the key's path from the root to where it ends: at a leaf (the key itself, or
//! for absence the one other key in that subtree) or at an empty subtree. It carries the siblings
//! along the path, deepest first, with empty siblings left out and marked in a bitmap, so a
//! proof in a tree of n keys holds about log2(n) hashes.

use super::node::{EMPTY_HASH, MAX_DEPTH, Node, NodeKey, bit, internal_hash, leaf_hash};
use super::{SmtError, TreeReader};
use crate::merkle::{Hash, ProofError};
use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

/// A path never has more siblings than the tree has levels.
pub const MAX_SIBLINGS: usize = MAX_DEPTH as usize;

/// A proof that a key is present with some value, or absent.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "SmtProofWire", into = "SmtProofWire")]
pub struct SmtProof {
    /// Depth at which the path ends.
    depth: u16,
    /// Bit j (in key-bit order) is set when the sibling at depth j + 1, the child of the path
    /// node at depth j that is off the path, is non-empty. Zero from `depth` on.
    bitmap: [u8; 32],
    /// The non-empty siblings, deepest first.
    siblings: Vec<Hash>,
    /// The leaf where the path ends, as (key hash, value hash); `None` for an empty subtree.
    leaf: Option<(Hash, Hash)>,
}

/// Builds the proof for `key_hash` in the tree that `reader` holds: a presence proof if the key
/// is there, an absence proof otherwise.
pub fn prove(reader: &impl TreeReader, key_hash: &Hash) -> Result<SmtProof, SmtError> {
    let mut pos = NodeKey::root();
    let mut node = reader.node(&pos)?;
    // Siblings from the root down; reversed below.
    let mut path = Vec::new();
    let leaf = loop {
        let Some(current) = node else { break None };
        current.check_at(&pos)?;
        match current {
            Node::Leaf {
                key_hash: k,
                value_hash: v,
            } => break Some((k, v)),
            Node::Internal { left, right } => {
                let right_side = bit(key_hash, pos.depth());
                let (next, sibling) = if right_side {
                    (right, left)
                } else {
                    (left, right)
                };
                path.push(sibling);
                pos = pos.child(right_side);
                if next == EMPTY_HASH {
                    break None;
                }
                let child = reader
                    .node(&pos)?
                    .ok_or(SmtError::MissingNode { key: pos })?;
                if child.hash() != next {
                    return Err(SmtError::CorruptNode {
                        key: pos,
                        reason: "hash does not match the parent's",
                    });
                }
                node = Some(child);
            }
        }
    };
    let depth = pos.depth();
    let mut bitmap = [0u8; 32];
    let mut siblings = Vec::with_capacity(path.len());
    for (j, sibling) in path.iter().enumerate().rev() {
        if *sibling != EMPTY_HASH {
            bitmap[j / 8] |= 0x80 >> (j % 8);
            siblings.push(*sibling);
        }
    }
    Ok(SmtProof {
        depth,
        bitmap,
        siblings,
        leaf,
    })
}

impl SmtProof {
    /// Checks the proof against `root` for `key_hash`: `Some(value_hash)` claims the key is
    /// present with that value, `None` claims it is absent.
    pub fn verify(
        &self,
        root: &Hash,
        key_hash: &Hash,
        value_hash: Option<&Hash>,
    ) -> Result<(), ProofError> {
        self.validate()?;
        if let Some((leaf_key, _)) = &self.leaf
            && !NodeKey::for_key(key_hash, self.depth).is_prefix_of(leaf_key)
        {
            return Err(ProofError::LeafOffPath);
        }
        if self.root_for(key_hash) != *root {
            return Err(ProofError::RootMismatch);
        }
        let found = match &self.leaf {
            Some((k, v)) if k == key_hash => Some(v),
            _ => None,
        };
        match (value_hash, found) {
            (Some(want), Some(got)) if want == got => Ok(()),
            (Some(_), Some(_)) => Err(ProofError::ValueMismatch),
            (Some(_), None) => Err(ProofError::KeyAbsent),
            (None, Some(_)) => Err(ProofError::KeyPresent),
            (None, None) => Ok(()),
        }
    }

    /// The root this proof implies for `key_hash`'s path.
    fn root_for(&self, key_hash: &Hash) -> Hash {
        let mut hash = self.leaf.map_or(EMPTY_HASH, |(k, v)| leaf_hash(&k, &v));
        let mut siblings = self.siblings.iter();
        for j in (0..self.depth).rev() {
            let sibling = if bit(&self.bitmap, j) {
                // validate() matched the bitmap to the siblings; a missing one cannot verify.
                siblings.next().copied().unwrap_or(EMPTY_HASH)
            } else {
                EMPTY_HASH
            };
            hash = if bit(key_hash, j) {
                internal_hash(&sibling, &hash)
            } else {
                internal_hash(&hash, &sibling)
            };
        }
        hash
    }

    /// Checks the shape every decoder relies on.
    pub fn validate(&self) -> Result<(), ProofError> {
        if self.depth > MAX_DEPTH {
            return Err(ProofError::DepthOutOfRange { depth: self.depth });
        }
        if self.siblings.len() > MAX_SIBLINGS {
            return Err(ProofError::TooManyHashes {
                got: self.siblings.len(),
                max: MAX_SIBLINGS,
            });
        }
        let beyond = NodeKey::for_key(&self.bitmap, self.depth).path() != &self.bitmap;
        let set: usize = self.bitmap.iter().map(|b| b.count_ones() as usize).sum();
        if beyond || set != self.siblings.len() {
            return Err(ProofError::SiblingBitmapMismatch {
                set,
                siblings: self.siblings.len(),
            });
        }
        Ok(())
    }

    /// Depth at which the key's path ends.
    pub fn depth(&self) -> u16 {
        self.depth
    }

    /// The non-empty siblings, deepest first.
    pub fn siblings(&self) -> &[Hash] {
        &self.siblings
    }

    /// The leaf at the end of the path, as (key hash, value hash), if the path ends at a leaf.
    pub fn leaf(&self) -> Option<(&Hash, &Hash)> {
        self.leaf.as_ref().map(|(k, v)| (k, v))
    }

    /// The value hash this proof claims for `key_hash` (unverified): `None` means absent.
    pub fn claimed_value(&self, key_hash: &Hash) -> Option<&Hash> {
        self.leaf
            .as_ref()
            .and_then(|(k, v)| (k == key_hash).then_some(v))
    }
}

/// The serde form, so that deserializing goes through [`SmtProof::validate`].
#[derive(Serialize, Deserialize)]
struct SmtProofWire {
    depth: u16,
    bitmap: [u8; 32],
    siblings: Vec<Hash>,
    leaf: Option<(Hash, Hash)>,
}

impl TryFrom<SmtProofWire> for SmtProof {
    type Error = ProofError;
    fn try_from(w: SmtProofWire) -> Result<Self, ProofError> {
        let proof = SmtProof {
            depth: w.depth,
            bitmap: w.bitmap,
            siblings: w.siblings,
            leaf: w.leaf,
        };
        proof.validate()?;
        Ok(proof)
    }
}

impl From<SmtProof> for SmtProofWire {
    fn from(p: SmtProof) -> Self {
        SmtProofWire {
            depth: p.depth,
            bitmap: p.bitmap,
            siblings: p.siblings,
            leaf: p.leaf,
        }
    }
}

// Borsh layout: depth (u16), bitmap (32 bytes), sibling count (u32) and siblings, leaf (option).
// The decoder checks the count against the bitmap before it allocates.
impl BorshSerialize for SmtProof {
    fn serialize<W: std::io::Write>(&self, writer: &mut W) -> std::io::Result<()> {
        BorshSerialize::serialize(&self.depth, writer)?;
        BorshSerialize::serialize(&self.bitmap, writer)?;
        BorshSerialize::serialize(&self.siblings, writer)?;
        BorshSerialize::serialize(&self.leaf, writer)
    }
}

impl BorshDeserialize for SmtProof {
    fn deserialize_reader<R: std::io::Read>(reader: &mut R) -> std::io::Result<Self> {
        let invalid = |e: ProofError| std::io::Error::new(std::io::ErrorKind::InvalidData, e);
        let depth = u16::deserialize_reader(reader)?;
        let bitmap = <[u8; 32]>::deserialize_reader(reader)?;
        let count = u32::deserialize_reader(reader)? as usize;
        let mut proof = SmtProof {
            depth,
            bitmap,
            siblings: Vec::new(),
            leaf: None,
        };
        let set: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
        if count != set {
            return Err(invalid(ProofError::SiblingBitmapMismatch {
                set,
                siblings: count,
            }));
        }
        proof.siblings.reserve_exact(count);
        for _ in 0..count {
            proof.siblings.push(<Hash>::deserialize_reader(reader)?);
        }
        proof.leaf = Option::<(Hash, Hash)>::deserialize_reader(reader)?;
        proof.validate().map_err(invalid)?;
        Ok(proof)
    }
}
