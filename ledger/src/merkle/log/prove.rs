//! Proof generation from stored perfect subtrees.
//!
//! A node of an RFC 6962 tree is either perfect (it covers `2^level` leaves starting at a
//! multiple of `2^level`, and never changes once complete) or lies on the right border of the
//! tree (it covers `[start, size)` and changes as the log grows). Storing only the perfect ones,
//! as they complete, is append-only and needs no rewriting; any border node is then the fold of
//! at most 64 perfect ones. Inclusion and consistency proofs each need at most one border node,
//! so generating a proof costs O(log n) lookups.

use super::{empty_root, node_hash};
use crate::merkle::{Hash, ProofError};

/// Where proof generation reads perfect-subtree hashes from (the node: RocksDB; tests:
/// [`MemoryLog`]).
pub trait SubtreeSource {
    /// Hash of the perfect subtree covering leaves `[index << level, (index + 1) << level)`;
    /// level 0 is the leaf hash itself. Errors if that subtree is not complete or not stored.
    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, ProofError>;
}

/// The `(level, index)` of every perfect subtree that becomes complete when the leaf with
/// 0-based index `leaf_index` is appended, lowest level first. A node stores exactly these.
pub fn completed_subtrees(leaf_index: u64) -> Vec<(u32, u64)> {
    (0..=leaf_index.trailing_ones())
        .map(|level| (level, leaf_index >> level))
        .collect()
}

/// Root of the tree made of the first `size` leaves of `src`.
pub fn root_at(src: &impl SubtreeSource, size: u64) -> Result<Hash, ProofError> {
    if size == 0 {
        return Ok(empty_root());
    }
    range_hash(src, 0, size)
}

/// Hash of the tree node covering `[start, end)`, which must be a node of some RFC 6962 tree:
/// `start < end` and `start` a multiple of the smallest power of two `>= end - start`.
fn range_hash(src: &impl SubtreeSource, start: u64, end: u64) -> Result<Hash, ProofError> {
    debug_assert!(start < end);
    debug_assert!(
        (end - start)
            .checked_next_power_of_two()
            .is_none_or(|width| start.is_multiple_of(width))
    );
    // Split [start, end) into perfect subtrees, largest first, then fold from the right: this is
    // the RFC's recursive split at the largest power of two, unrolled.
    let len = end - start;
    let mut parts = Vec::with_capacity(len.count_ones() as usize);
    let mut pos = start;
    for level in (0..u64::BITS).rev() {
        if len & (1u64 << level) != 0 {
            parts.push(src.perfect_subtree(level, pos >> level)?);
            pos += 1u64 << level;
        }
    }
    let mut iter = parts.into_iter().rev();
    let last = iter.next().ok_or(ProofError::IndexOutOfRange {
        index: start,
        size: end,
    })?;
    Ok(iter.fold(last, |acc, left| node_hash(&left, &acc)))
}

/// Largest power of two strictly below `n` (`n >= 2`): where RFC 6962 splits a tree of size n.
fn split_point(n: u64) -> u64 {
    debug_assert!(n >= 2);
    1u64 << (u64::BITS - 1 - (n - 1).leading_zeros())
}

/// RFC 9162 §2.1.3.1 inclusion proof (audit path) for leaf `index` in the tree of the first
/// `size` leaves, ordered from the leaf upward.
pub fn inclusion_proof(
    src: &impl SubtreeSource,
    index: u64,
    size: u64,
) -> Result<Vec<Hash>, ProofError> {
    if index >= size {
        return Err(ProofError::IndexOutOfRange { index, size });
    }
    // PATH(m, D[start..start+n]), unrolled from the top; siblings come out root-first.
    let (mut start, mut n, mut m) = (0u64, size, index);
    let mut path = Vec::with_capacity(64);
    while n > 1 {
        let k = split_point(n);
        if m < k {
            path.push(range_hash(src, start + k, start + n)?);
            n = k;
        } else {
            path.push(range_hash(src, start, start + k)?);
            start += k;
            m -= k;
            n -= k;
        }
    }
    path.reverse();
    Ok(path)
}

/// RFC 9162 §2.1.4.1 consistency proof between the trees of the first `size1` and `size2`
/// leaves, ordered from the bottom up. Empty when the sizes are equal; refused from the empty
/// tree, as the verifier refuses it.
pub fn consistency_proof(
    src: &impl SubtreeSource,
    size1: u64,
    size2: u64,
) -> Result<Vec<Hash>, ProofError> {
    if size1 > size2 {
        return Err(ProofError::SizeDecreased { size1, size2 });
    }
    if size1 == size2 {
        return Ok(Vec::new());
    }
    if size1 == 0 {
        return Err(ProofError::EmptyTreeConsistency { size2 });
    }
    // SUBPROOF(m, D[start..start+n], b), unrolled from the top.
    let (mut start, mut n, mut m, mut whole) = (0u64, size2, size1, true);
    let mut proof = Vec::with_capacity(64);
    loop {
        if m == n {
            if !whole {
                proof.push(range_hash(src, start, start + m)?);
            }
            break;
        }
        let k = split_point(n);
        if m <= k {
            proof.push(range_hash(src, start + k, start + n)?);
            n = k;
        } else {
            proof.push(range_hash(src, start, start + k)?);
            start += k;
            m -= k;
            n -= k;
            whole = false;
        }
    }
    proof.reverse();
    Ok(proof)
}

/// An in-memory log holding every perfect subtree, for tests and small logs.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MemoryLog {
    /// `levels[l][i]` is the perfect subtree `(l, i)`.
    levels: Vec<Vec<Hash>>,
}

impl MemoryLog {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a leaf hash and stores every perfect subtree it completes.
    pub fn append(&mut self, leaf_hash: Hash) {
        let mut acc = leaf_hash;
        let mut level = 0;
        loop {
            if self.levels.len() == level {
                self.levels.push(Vec::new());
            }
            self.levels[level].push(acc);
            let row = &self.levels[level];
            if row.len() % 2 == 1 {
                break;
            }
            acc = node_hash(&row[row.len() - 2], &row[row.len() - 1]);
            level += 1;
        }
    }

    pub fn size(&self) -> u64 {
        self.levels.first().map_or(0, |leaves| leaves.len() as u64)
    }

    pub fn root(&self) -> Hash {
        self.root_at(self.size())
            .expect("a memory log holds every subtree of its own size")
    }

    /// Root of the tree of the first `size` leaves.
    pub fn root_at(&self, size: u64) -> Result<Hash, ProofError> {
        if size > self.size() {
            return Err(ProofError::IndexOutOfRange {
                index: size,
                size: self.size(),
            });
        }
        root_at(self, size)
    }
}

impl SubtreeSource for MemoryLog {
    fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
        let missing = ProofError::MissingSubtree { level, index };
        let row = self.levels.get(level as usize).ok_or(missing.clone())?;
        let index_usize = usize::try_from(index).map_err(|_| missing.clone())?;
        row.get(index_usize).copied().ok_or(missing)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{leaf_hash, root_of, verify_consistency, verify_inclusion};
    use super::*;

    fn log_of(n: u64) -> (MemoryLog, Vec<Hash>) {
        let leaves: Vec<Hash> = (0..n).map(|i| leaf_hash(&i.to_be_bytes())).collect();
        let mut log = MemoryLog::new();
        for leaf in &leaves {
            log.append(*leaf);
        }
        (log, leaves)
    }

    #[test]
    fn roots_at_every_size_match_root_of() {
        let (log, leaves) = log_of(90);
        for n in 0..=90 {
            assert_eq!(
                log.root_at(n),
                Ok(root_of(&leaves[..n as usize])),
                "size {n}"
            );
        }
        assert_eq!(log.root(), root_of(&leaves));
        assert!(log.root_at(91).is_err());
    }

    #[test]
    fn generated_proofs_verify_for_all_small_trees() {
        let (log, leaves) = log_of(40);
        for size in 1..=40u64 {
            let root = log.root_at(size).expect("root");
            for index in 0..size {
                let proof = inclusion_proof(&log, index, size).expect("proof");
                verify_inclusion(&leaves[index as usize], index, size, &proof, &root)
                    .unwrap_or_else(|e| panic!("index {index} size {size}: {e}"));
            }
            for size1 in 1..=size {
                let proof = consistency_proof(&log, size1, size).expect("proof");
                let root1 = log.root_at(size1).expect("root");
                verify_consistency(size1, size, &proof, &root1, &root)
                    .unwrap_or_else(|e| panic!("{size1} -> {size}: {e}"));
            }
        }
    }

    #[test]
    fn generation_refuses_bad_ranges() {
        let (log, _) = log_of(5);
        assert_eq!(
            inclusion_proof(&log, 5, 5),
            Err(ProofError::IndexOutOfRange { index: 5, size: 5 })
        );
        assert!(
            inclusion_proof(&log, 0, 6).is_err(),
            "beyond the stored log"
        );
        assert_eq!(
            consistency_proof(&log, 3, 2),
            Err(ProofError::SizeDecreased { size1: 3, size2: 2 })
        );
        assert_eq!(
            consistency_proof(&log, 0, 2),
            Err(ProofError::EmptyTreeConsistency { size2: 2 })
        );
        assert_eq!(consistency_proof(&log, 4, 4), Ok(vec![]));
    }

    /// Counts lookups, to check that proofs cost O(log n) reads of the store.
    struct Counting<'a>(&'a MemoryLog, std::cell::Cell<usize>);

    impl SubtreeSource for Counting<'_> {
        fn perfect_subtree(&self, level: u32, index: u64) -> Result<Hash, ProofError> {
            self.1.set(self.1.get() + 1);
            self.0.perfect_subtree(level, index)
        }
    }

    #[test]
    fn proofs_read_logarithmically_many_subtrees() {
        let (log, leaves) = log_of(300_001);
        let src = Counting(&log, std::cell::Cell::new(0));
        let size = log.size();
        let root = log.root();
        // log2(300_001) < 19: at most 19 siblings, one of them a border node of at most 19 parts.
        for index in [0, 1, 150_000, 262_143, 262_144, 300_000] {
            src.1.set(0);
            let proof = inclusion_proof(&src, index, size).expect("proof");
            assert!(
                src.1.get() <= 2 * 19,
                "{} lookups for index {index}",
                src.1.get()
            );
            assert_eq!(
                verify_inclusion(&leaves[index as usize], index, size, &proof, &root),
                Ok(())
            );
        }
        for size1 in [1, 3, 1000, 131_072, 299_999] {
            src.1.set(0);
            let proof = consistency_proof(&src, size1, size).expect("proof");
            assert!(
                src.1.get() <= 2 * 19 + 19,
                "{} lookups from {size1}",
                src.1.get()
            );
            let root1 = log.root_at(size1).expect("root");
            assert_eq!(
                verify_consistency(size1, size, &proof, &root1, &root),
                Ok(())
            );
        }
    }

    #[test]
    fn completed_subtrees_for_small_indices() {
        assert_eq!(completed_subtrees(0), vec![(0, 0)]);
        assert_eq!(completed_subtrees(1), vec![(0, 1), (1, 0)]);
        assert_eq!(completed_subtrees(2), vec![(0, 2)]);
        assert_eq!(completed_subtrees(7), vec![(0, 7), (1, 3), (2, 1), (3, 0)]);
        assert_eq!(completed_subtrees((1 << 40) - 1).len(), 41);
    }
}
