//! The upper levels of the committed sparse Merkle tree, in memory.
//!
//! Every block rewrites the paths from its changed keys to the root, and the top levels of
//! those paths are the same for every block: reading them from RocksDB again and again was the
//! largest single cost of executing a block (a fifth of a node's CPU under load). The cache
//! holds the nodes of depth at most [`CACHED_DEPTH_MAX`] (present or absent) as the last
//! committed block left them: at most 2^(depth + 1) positions, so a few tens of megabytes
//! whatever the state's size.
//!
//! It is consistent with the database by construction: a miss reads the database and fills the
//! cache under the same lock that a commit holds across its write and the cache's update, so no
//! reader can see a node older than the database's.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard};

use cradle_ledger::state::TREE_PREFIX;

/// Deepest level kept: 2^17 positions at most, about 25 MB with their keys and the map.
pub const CACHED_DEPTH_MAX: u16 = 16;

type Nodes = HashMap<Box<[u8]>, Option<Box<[u8]>>>;

#[derive(Default)]
pub(super) struct TreeCache {
    nodes: Mutex<Nodes>,
}

/// Whether a state key is a tree node's that the cache keeps: the tree prefix, then the
/// position's depth in two big-endian bytes.
pub(super) fn cached(key: &[u8]) -> bool {
    match key {
        [TREE_PREFIX, hi, lo, ..] => u16::from_be_bytes([*hi, *lo]) <= CACHED_DEPTH_MAX,
        _ => false,
    }
}

impl TreeCache {
    /// The node's bytes, from the cache, or from `read` (the database) when missing, and then
    /// kept. Only for keys that [`cached`] accepts.
    pub(super) fn get<E>(
        &self,
        key: &[u8],
        read: impl FnOnce() -> Result<Option<Vec<u8>>, E>,
    ) -> Result<Option<Vec<u8>>, E> {
        let mut nodes = self.lock();
        if let Some(hit) = nodes.get(key) {
            return Ok(hit.as_deref().map(<[u8]>::to_vec));
        }
        let value = read()?;
        nodes.insert(key.into(), value.as_deref().map(Box::from));
        Ok(value)
    }

    /// Positions held now.
    pub(super) fn len(&self) -> usize {
        self.lock().len()
    }

    /// Held by a commit across its write: readers wait, then see the new nodes.
    pub(super) fn lock(&self) -> MutexGuard<'_, Nodes> {
        // A poisoned lock means a reader panicked between two map operations, each of which
        // leaves the map whole.
        self.nodes.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// After a commit's write, under its lock: the block's writes to cached positions.
pub(super) fn apply<'w>(
    nodes: &mut Nodes,
    writes: impl IntoIterator<Item = (&'w [u8], Option<&'w [u8]>)>,
) {
    for (key, value) in writes {
        if cached(key) {
            nodes.insert(key.into(), value.map(Box::from));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cradle_ledger::merkle::smt::NodeKey;
    use cradle_ledger::state::keys;

    #[test]
    fn only_upper_tree_positions_are_cached() {
        let at = |depth| keys::tree_node(&NodeKey::for_key(&[0xab; 32], depth));
        assert!(cached(&at(0)));
        assert!(cached(&at(CACHED_DEPTH_MAX)));
        assert!(!cached(&at(CACHED_DEPTH_MAX + 1)));
        assert!(!cached(&at(256)));
        assert!(!cached(b"Nsome nonce key"));
        assert!(!cached(&[TREE_PREFIX]));
    }

    #[test]
    fn a_miss_reads_once_and_a_commit_overwrites() {
        let cache = TreeCache::default();
        let key = keys::tree_node(&NodeKey::root());
        let mut reads = 0;
        let mut read = || {
            reads += 1;
            Ok::<_, ()>(Some(vec![1]))
        };
        assert_eq!(cache.get(&key, &mut read), Ok(Some(vec![1])));
        assert_eq!(cache.get(&key, &mut read), Ok(Some(vec![1])));
        assert_eq!(reads, 1, "the second read is the cache's");
        let writes = [(key.clone(), Some(vec![2]))];
        apply(
            &mut cache.lock(),
            writes.iter().map(|(k, v)| (k.as_slice(), v.as_deref())),
        );
        assert_eq!(
            cache.get(&key, || Err(())),
            Ok(Some(vec![2])),
            "the committed node, without a read"
        );
        let deleted: [(Vec<u8>, Option<Vec<u8>>); 1] = [(key.clone(), None)];
        apply(
            &mut cache.lock(),
            deleted.iter().map(|(k, v)| (k.as_slice(), v.as_deref())),
        );
        assert_eq!(cache.get(&key, || Err(())), Ok(None));
    }
}
