//! Sparse Merkle tree over the key-value state (in progress).
