//! Merkle commitments and proofs.
