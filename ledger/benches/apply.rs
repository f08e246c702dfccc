//! `ledger::apply/txs=1000`: a validator's whole check of a block of 1,000 mixed signed
//! transactions — envelope, batched signature verification (transactions and the accessors'
//! embedded requests), the rules, and the sparse Merkle state root — on a state that already
//! holds 2,000 patients with their archives and grants.

#[path = "../tests/common/mod.rs"]
mod common;

use common::*;
use cradle_ledger::access::{AccessOutcome, DenialReason};
use cradle_ledger::tx::{Category, Purpose, Scope};
use cradle_ledger::*;
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

fn copy(k: &Keypair) -> Keypair {
    Keypair::from_secret_parts(&k.ed25519_seed(), &k.x25519_secret())
}

fn bench_apply(c: &mut Criterion) {
    let mut w = World::new(Policy::default());
    let a = copy(&w.hospital_a);
    let b = copy(&w.hospital_b);
    // Existing state: 2,000 patients, each with one archive; the first 400 granted B access.
    let patients: Vec<Keypair> = (0..2000).map(patient_key).collect();
    for chunk in patients.chunks(500) {
        let txs = chunk.iter().map(|p| w.enrol(&a, p)).collect();
        w.commit(txs).expect("enrol");
    }
    for (i, chunk) in patients.chunks(500).enumerate() {
        let txs = chunk
            .iter()
            .enumerate()
            .map(|(j, p)| {
                let id = archive_id((i * 500 + j) as u64);
                w.register(&a, p, id, Category::PrenatalVisit, vec![])
            })
            .collect();
        w.commit(txs).expect("register");
    }
    let mut grants = Vec::new();
    let txs: Vec<_> = (0..400)
        .map(|i| {
            let (tx, id) = w.grant(
                &patients[i],
                &b,
                Scope::All,
                &[Purpose::Treat],
                30,
                &[archive_id(i as u64)],
            );
            grants.push(id);
            tx
        })
        .collect();
    w.commit(txs).expect("grants");

    // The block under test: 200 of each kind of transaction.
    let mut txs = Vec::with_capacity(1000);
    for i in 0..200u64 {
        txs.push(w.enrol(&a, &patient_key(10_000 + i)));
    }
    for i in 0..200usize {
        let p = &patients[1000 + i];
        txs.push(w.register(
            &a,
            p,
            archive_id(50_000 + i as u64),
            Category::Ultrasound,
            vec![],
        ));
    }
    for i in 0..200usize {
        let p = &patients[1200 + i];
        txs.push(
            w.grant(
                p,
                &b,
                Scope::All,
                &[Purpose::Treat],
                30,
                &[archive_id(1200 + i as u64)],
            )
            .0,
        );
    }
    for i in 0..200usize {
        // Half read through a grant, half are denied.
        let archive = archive_id(i as u64 * 2);
        let req = w.request(w.staff(&b), archive, Purpose::Treat, None, 0);
        let mut req = req;
        req.request.request_id[..8].copy_from_slice(&(i as u64).to_le_bytes());
        req.signature = b.sign(
            cradle_ledger::crypto::TAG_ACCESS_REQUEST,
            &w.chain_id(),
            &req.request,
        );
        let idx = i * 2;
        let tx = if idx < 400 {
            w.record(&a, req, Some(grants[idx]), permitted())
        } else {
            w.record(
                &a,
                req,
                None,
                AccessOutcome::Denied {
                    reason: DenialReason::NoGrant,
                },
            )
        };
        txs.push(tx);
    }
    for i in 0..200usize {
        txs.push(w.revoke(&patients[2 * i + 1], grants[2 * i + 1]));
    }
    let built = block::build_block(
        &w.store,
        &w.consortium,
        &w.tip,
        w.now_ms + 1000,
        a.public_key(),
        txs,
    )
    .expect("build");
    assert!(
        built.rejected.is_empty(),
        "bench block must be valid: {:?}",
        built.rejected.first()
    );
    assert_eq!(built.block.txs.len(), 1000);
    let block = built.block;

    let mut group = c.benchmark_group("ledger::apply");
    group.throughput(Throughput::Elements(1000));
    group.sample_size(20);
    group.bench_function("txs=1000", |bench| {
        bench.iter(|| {
            let checked = block::check_block(&w.consortium, &w.tip, &block).expect("checks");
            block::execute(&w.store, &w.consortium, checked).expect("valid")
        })
    });
    group.finish();
}

criterion_group!(benches, bench_apply);
criterion_main!(benches);
