//! Criterion benchmarks of the Merkle hot paths, under stable names:
//! - `merkle::smt_update/keys=1000`: computing the update for a block of 1,000 new keys into a
//!   state tree that already holds 100,000 keys;
//! - `merkle::smt_prove_verify/keys=100000`: proving and verifying one key in that tree;
//! - `merkle::log_append/leaves=1000`: appending 1,000 leaves to the frontier of a log of a
//!   million leaves, collecting the completed subtrees a node would store;
//! - `merkle::inclusion_proof_verify`: verifying an inclusion proof in a log of a million leaves.

use cradle_ledger::merkle::Hash;
use cradle_ledger::merkle::log::{
    Frontier, MemoryLog, inclusion_proof, leaf_hash as log_leaf_hash, verify_inclusion,
};
use cradle_ledger::merkle::smt::{MemoryTree, prove, update};
use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use sha2::{Digest, Sha256};
use std::hint::black_box;

fn key(i: u64) -> Hash {
    Sha256::digest(i.to_le_bytes()).into()
}

fn value(i: u64) -> Hash {
    Sha256::digest((!i).to_le_bytes()).into()
}

fn state_tree(keys: u64) -> MemoryTree {
    let mut tree = MemoryTree::new();
    let changes: Vec<(Hash, Option<Hash>)> = (0..keys).map(|i| (key(i), Some(value(i)))).collect();
    let up = update(&tree, &changes).expect("building the state tree");
    tree.apply(&up);
    tree
}

fn smt(c: &mut Criterion) {
    let tree = state_tree(100_000);
    let block: Vec<(Hash, Option<Hash>)> = (1_000_000..1_001_000u64)
        .map(|i| (key(i), Some(value(i))))
        .collect();
    let mut group = c.benchmark_group("merkle::smt_update");
    group.sample_size(20);
    group.bench_function("keys=1000", |b| {
        b.iter(|| update(black_box(&tree), black_box(&block)).expect("update"))
    });
    group.finish();

    let root = cradle_ledger::merkle::smt::root(&tree).expect("root");
    let k = key(4242);
    let v = value(4242);
    c.bench_function("merkle::smt_prove_verify/keys=100000", |b| {
        b.iter(|| {
            let proof = prove(black_box(&tree), black_box(&k)).expect("prove");
            proof.verify(&root, &k, Some(&v)).expect("verify")
        })
    });
}

fn log(c: &mut Criterion) {
    let mut frontier = Frontier::new();
    for i in 0..1_000_000u64 {
        frontier.append(log_leaf_hash(&i.to_le_bytes()));
    }
    let leaves: Vec<Hash> = (0..1000u64)
        .map(|i| log_leaf_hash(&(i + 1_000_000).to_le_bytes()))
        .collect();
    c.bench_function("merkle::log_append/leaves=1000", |b| {
        b.iter_batched(
            || frontier.clone(),
            |mut f| {
                let mut stored = 0usize;
                for leaf in &leaves {
                    stored += f.append_nodes(*leaf).len();
                }
                (f.root(), stored)
            },
            BatchSize::SmallInput,
        )
    });

    let mut memory = MemoryLog::new();
    for i in 0..1_000_000u64 {
        memory.append(log_leaf_hash(&i.to_le_bytes()));
    }
    let size = memory.size();
    let index = 654_321;
    let proof = inclusion_proof(&memory, index, size).expect("proof");
    let root = memory.root();
    let leaf = log_leaf_hash(&index.to_le_bytes());
    c.bench_function("merkle::inclusion_proof_verify", |b| {
        b.iter(|| {
            verify_inclusion(black_box(&leaf), index, size, black_box(&proof), &root)
                .expect("verify")
        })
    });
}

criterion_group!(benches, smt, log);
criterion_main!(benches);
