//! Batch updates of the sparse Merkle tree in one pass.
//!
//! The sorted changes are pushed down from the root. At each position the changes split by the
//! next key bit, so keys that share a path share the reads and the hashing of that path, and a
//! subtree without changes is never read: its hash comes from its parent. Coming back up, a
//! subtree left with a single leaf hands that leaf to its parent, which places it as high as it
//! can go; this is how deletions keep the tree in the same compressed shape that inserting the
//! remaining keys from scratch would give.
//!
//! Every node read is checked against the hash its parent holds, so a corrupt store is reported
//! instead of being built upon.

use super::node::{EMPTY_HASH, MAX_DEPTH, Node, NodeKey, bit};
use super::{SmtError, TreeReader};
use crate::merkle::Hash;

/// What [`update`] computed: the new root and the nodes to write and to delete, each list in
/// [`NodeKey`] order and disjoint from the other. Applying both atomically gives the new tree.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct TreeUpdate {
    pub root: Hash,
    pub put: Vec<(NodeKey, Node)>,
    pub delete: Vec<NodeKey>,
}

/// Applies `updates` (key hash to `Some(value hash)` to insert or replace, `None` to delete;
/// when a key appears more than once the last change wins) to the tree that `reader` holds.
pub fn update(
    reader: &impl TreeReader,
    updates: &[(Hash, Option<Hash>)],
) -> Result<TreeUpdate, SmtError> {
    // Sorting puts the keys of every subtree next to each other, left before right. The sort
    // is stable, so of a key's changes the last is the last of its run, and that one stays.
    let mut changes: Vec<(Hash, Option<Hash>)> = updates.to_vec();
    changes.sort_by_key(|c| c.0);
    let changes = last_of_each_key(changes);

    let root_key = NodeKey::root();
    let mut pass = Pass {
        reader,
        old: Vec::new(),
        new: Vec::new(),
    };
    let existing = match reader.node(&root_key)? {
        None => Existing::Empty,
        Some(node) => {
            node.check_at(&root_key)?;
            pass.old.push((root_key, node));
            Existing::from(node)
        }
    };
    if changes.is_empty() {
        let root = pass.old.first().map_or(EMPTY_HASH, |(_, node)| node.hash());
        return Ok(TreeUpdate {
            root,
            ..TreeUpdate::default()
        });
    }
    let outcome = pass.apply(root_key, existing, &changes)?;
    let root = pass.place(root_key, outcome);

    let (put, delete) = diff(pass.old, pass.new);
    Ok(TreeUpdate { root, put, delete })
}

/// Keeps the last of each run of equal keys in `sorted` (sorted by key, stably).
fn last_of_each_key<K: PartialEq, V>(sorted: Vec<(K, V)>) -> Vec<(K, V)> {
    let mut out: Vec<(K, V)> = Vec::with_capacity(sorted.len());
    for (k, v) in sorted {
        match out.last_mut() {
            Some(last) if last.0 == k => last.1 = v,
            _ => out.push((k, v)),
        }
    }
    out
}

/// From the nodes read and the nodes of the new tree on the changed paths (each recorded in
/// visiting order, a position at most once), the nodes to put (new or changed) and the
/// positions to delete (read, and no longer in the tree), both in [`NodeKey`] order.
fn diff(
    mut old: Vec<(NodeKey, Node)>,
    mut new: Vec<(NodeKey, Node)>,
) -> (Vec<(NodeKey, Node)>, Vec<NodeKey>) {
    // A pass visits each position once, so neither list repeats a key and an unstable sort
    // (in place, no buffer) gives the one order there is.
    old.sort_unstable_by_key(|n| n.0);
    new.sort_unstable_by_key(|n| n.0);
    debug_assert!(old.windows(2).all(|w| w[0].0 < w[1].0), "a node read twice");
    debug_assert!(new.windows(2).all(|w| w[0].0 < w[1].0), "a node made twice");
    let mut put = Vec::with_capacity(new.len());
    let mut delete = Vec::new();
    let mut old = old.into_iter().peekable();
    for (key, node) in new {
        while let Some((gone, _)) = old.next_if(|(k, _)| *k < key) {
            delete.push(gone);
        }
        match old.next_if(|(k, _)| *k == key) {
            Some((_, before)) if before == node => {}
            _ => put.push((key, node)),
        }
    }
    delete.extend(old.map(|(k, _)| k));
    (put, delete)
}

/// The content of a subtree before the changes.
#[derive(Clone, Copy)]
enum Existing {
    Empty,
    /// A single leaf: stored here, or pushed down from an ancestor that a change now splits.
    Leaf {
        key: Hash,
        value: Hash,
    },
    Internal {
        left: Hash,
        right: Hash,
    },
}

impl From<Node> for Existing {
    fn from(node: Node) -> Self {
        match node {
            Node::Internal { left, right } => Existing::Internal { left, right },
            Node::Leaf {
                key_hash,
                value_hash,
            } => Existing::Leaf {
                key: key_hash,
                value: value_hash,
            },
        }
    }
}

/// The content of a subtree after the changes.
#[derive(Clone, Copy)]
enum Outcome {
    Empty,
    /// A single leaf, not yet placed: it goes where the parent decides.
    Leaf {
        key: Hash,
        value: Hash,
    },
    /// An internal node, stored at the subtree's own position.
    Internal(Hash),
    /// Unchanged and not read: a leaf or an internal node already stored at its position.
    Untouched(Hash),
}

struct Pass<'a, R> {
    reader: &'a R,
    /// Every node read, with its position, in reading order: the candidates for deletion.
    old: Vec<(NodeKey, Node)>,
    /// Every node of the new tree on the changed paths, with its position, in the order made.
    new: Vec<(NodeKey, Node)>,
}

impl<R: TreeReader> Pass<'_, R> {
    /// Reads the node at `key`, which its parent says hashes to `expected`.
    fn read(&mut self, key: NodeKey, expected: &Hash) -> Result<Node, SmtError> {
        let node = self
            .reader
            .node(&key)?
            .ok_or(SmtError::MissingNode { key })?;
        if node.hash() != *expected {
            return Err(SmtError::CorruptNode {
                key,
                reason: "hash does not match the parent's",
            });
        }
        node.check_at(&key)?;
        self.old.push((key, node));
        Ok(node)
    }

    /// The subtree at `pos` after `changes` (sorted, unique, all under `pos`).
    fn apply(
        &mut self,
        pos: NodeKey,
        existing: Existing,
        changes: &[(Hash, Option<Hash>)],
    ) -> Result<Outcome, SmtError> {
        match (existing, changes) {
            (Existing::Empty, []) => return Ok(Outcome::Empty),
            (Existing::Leaf { key, value }, []) => return Ok(Outcome::Leaf { key, value }),
            (Existing::Empty, [(key, change)]) => return Ok(leaf_or_empty(*key, *change)),
            (Existing::Leaf { key, .. }, [(changed, change)]) if *changed == key => {
                return Ok(leaf_or_empty(key, *change));
            }
            (Existing::Leaf { key, value }, _) if changes.iter().all(|(_, c)| c.is_none()) => {
                // Only deletions: of this leaf, or of keys that are not here at all.
                let deleted = changes.iter().any(|(k, _)| *k == key);
                return Ok(if deleted {
                    Outcome::Empty
                } else {
                    Outcome::Leaf { key, value }
                });
            }
            _ => {}
        }
        let depth = pos.depth();
        if depth >= MAX_DEPTH {
            // Distinct keys always part before depth 256; reaching it means the store is bad.
            return Err(SmtError::CorruptNode {
                key: pos,
                reason: "distinct keys share all 256 bits",
            });
        }
        let split = changes.partition_point(|(key, _)| !bit(key, depth));
        let (left_changes, right_changes) = changes.split_at(split);
        let (left_pos, right_pos) = (pos.child(false), pos.child(true));
        let (left, right) = match existing {
            Existing::Empty => (
                self.apply(left_pos, Existing::Empty, left_changes)?,
                self.apply(right_pos, Existing::Empty, right_changes)?,
            ),
            Existing::Leaf { key, .. } => {
                // The leaf moves down to the side its key goes to, and meets the changes there.
                let (l, r) = if bit(&key, depth) {
                    (Existing::Empty, existing)
                } else {
                    (existing, Existing::Empty)
                };
                (
                    self.apply(left_pos, l, left_changes)?,
                    self.apply(right_pos, r, right_changes)?,
                )
            }
            Existing::Internal { left, right } => (
                self.child(left_pos, &left, left_changes)?,
                self.child(right_pos, &right, right_changes)?,
            ),
        };
        self.combine(pos, left, right)
    }

    /// The child subtree at `pos`, which its parent says hashes to `hash`, after `changes`.
    fn child(
        &mut self,
        pos: NodeKey,
        hash: &Hash,
        changes: &[(Hash, Option<Hash>)],
    ) -> Result<Outcome, SmtError> {
        if *hash == EMPTY_HASH {
            return self.apply(pos, Existing::Empty, changes);
        }
        if changes.is_empty() {
            return Ok(Outcome::Untouched(*hash));
        }
        let node = self.read(pos, hash)?;
        self.apply(pos, Existing::from(node), changes)
    }

    /// Joins the two children of `pos` into the subtree at `pos`.
    fn combine(
        &mut self,
        pos: NodeKey,
        left: Outcome,
        right: Outcome,
    ) -> Result<Outcome, SmtError> {
        // An unread child whose sibling is now empty must be read: if it is a leaf it floats up.
        let (left, right) = match (left, right) {
            (Outcome::Untouched(h), Outcome::Empty) => (self.resolve(pos.child(false), &h)?, right),
            (Outcome::Empty, Outcome::Untouched(h)) => (left, self.resolve(pos.child(true), &h)?),
            other => other,
        };
        match (left, right) {
            (Outcome::Empty, Outcome::Empty) => Ok(Outcome::Empty),
            (leaf @ Outcome::Leaf { .. }, Outcome::Empty)
            | (Outcome::Empty, leaf @ Outcome::Leaf { .. }) => Ok(leaf),
            (left, right) => {
                let node = Node::Internal {
                    left: self.place(pos.child(false), left),
                    right: self.place(pos.child(true), right),
                };
                let hash = node.hash();
                self.new.push((pos, node));
                Ok(Outcome::Internal(hash))
            }
        }
    }

    /// Reads an unchanged child to learn whether it is a leaf (which may float up) or an
    /// internal node (which stays where it is).
    fn resolve(&mut self, pos: NodeKey, hash: &Hash) -> Result<Outcome, SmtError> {
        Ok(match self.read(pos, hash)? {
            Node::Leaf {
                key_hash,
                value_hash,
            } => Outcome::Leaf {
                key: key_hash,
                value: value_hash,
            },
            node @ Node::Internal { .. } => {
                self.new.push((pos, node));
                Outcome::Internal(*hash)
            }
        })
    }

    /// Stores `outcome` at `pos` if it is a leaf looking for a place, and returns its hash.
    fn place(&mut self, pos: NodeKey, outcome: Outcome) -> Hash {
        match outcome {
            Outcome::Empty => EMPTY_HASH,
            Outcome::Leaf { key, value } => {
                let node = Node::Leaf {
                    key_hash: key,
                    value_hash: value,
                };
                self.new.push((pos, node));
                node.hash()
            }
            Outcome::Internal(hash) | Outcome::Untouched(hash) => hash,
        }
    }
}

fn leaf_or_empty(key: Hash, change: Option<Hash>) -> Outcome {
    match change {
        Some(value) => Outcome::Leaf { key, value },
        None => Outcome::Empty,
    }
}
