//! The authenticated sparse Merkle tree over the key-value state.
//!
//! What it owns: the commitment to the whole state (a 256-level binary tree indexed by
//! SHA-256 of the state key), incremental updates of it, and proofs that a key is present with a
//! given value or absent.
//!
//! Shape. The tree is compressed: a subtree that holds a single leaf is stored as that leaf, at
//! the highest position where it is alone (as Diem's Jellyfish Merkle tree does, but binary), and
//! empty subtrees are not stored at all. With n keys the tree is about log2(n) deep and holds
//! about 2.5 n nodes. The shape is a function of the set of keys alone.
//!
//! Hashing. leaf = SHA-256(0x00 || key_hash || value_hash); internal =
//! SHA-256(0x01 || left || right); an empty subtree hashes to 32 zero bytes, which is also the
//! root of the empty tree.
//!
//! What it promises:
//! - the root depends only on the set of (key_hash, value_hash) pairs, never on insertion order
//!   or on how the changes were split into batches;
//! - [`update`] touches O(depth) nodes per changed key and returns the exact nodes to put and
//!   delete, so the store holds the canonical tree and nothing else; it writes nothing itself,
//!   so the caller can commit it atomically with the rest of a block;
//! - a proof that [`SmtProof::verify`] accepts against a root is a proof about the tree with that
//!   root (under SHA-256 collision resistance); decoding a proof is bounded.

mod node;
mod proof;
#[cfg(test)]
mod tests;
mod update;

pub use node::{
    EMPTY_HASH, MAX_DEPTH, NODE_BYTES, NODE_KEY_BYTES_MAX, Node, NodeKey, internal_hash, leaf_hash,
};
pub use proof::{MAX_SIBLINGS, SmtProof, prove};
pub use update::{TreeUpdate, update};

use crate::merkle::Hash;
#[cfg(test)]
use crate::merkle::ProofError;
use std::collections::BTreeMap;

/// Why a tree operation failed. Both failures are the store's, not the caller's: the state
/// cannot be trusted and the node must stop.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SmtError {
    #[error("storage failed: {0}")]
    Storage(String),
    #[error("missing node {key}")]
    MissingNode { key: NodeKey },
    #[error("corrupt node {key}: {reason}")]
    CorruptNode { key: NodeKey, reason: &'static str },
}

/// Read access to the stored nodes. The ledger's store implements it over its own key prefix.
pub trait TreeReader {
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, SmtError>;
}

impl<T: TreeReader + ?Sized> TreeReader for &T {
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, SmtError> {
        (**self).node(key)
    }
}

/// The current root: [`EMPTY_HASH`] for the empty tree.
pub fn root(reader: &impl TreeReader) -> Result<Hash, SmtError> {
    Ok(reader
        .node(&NodeKey::root())?
        .map_or(EMPTY_HASH, |node| node.hash()))
}

/// A tree held in memory, for tests and for in-memory state.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryTree {
    nodes: BTreeMap<NodeKey, Node>,
}

impl MemoryTree {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies the result of [`update`] computed against this tree.
    pub fn apply(&mut self, update: &TreeUpdate) {
        for key in &update.delete {
            self.nodes.remove(key);
        }
        for (key, node) in &update.put {
            self.nodes.insert(*key, *node);
        }
    }

    /// Number of stored nodes.
    pub fn len(&self) -> usize {
        self.nodes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.nodes.is_empty()
    }

    /// Every stored node, in [`NodeKey`] order.
    pub fn nodes(&self) -> impl Iterator<Item = (&NodeKey, &Node)> {
        self.nodes.iter()
    }
}

impl TreeReader for MemoryTree {
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, SmtError> {
        Ok(self.nodes.get(key).copied())
    }
}
