//! Decided heights per second of the consensus core alone: a fault-free cluster on the
//! simulator's zero-latency network, so the figure is the cores' own cost (signing, verifying,
//! tallying, certificates) with no waiting.
//!
//! `cargo bench -p cradle-consensus` → `consensus::decide/validators=N`, in heights per second.

use cradle_consensus::core::Defects;
use cradle_consensus::sim::{self, Scenario};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};

const HEIGHTS: u64 = 20;

fn decide(c: &mut Criterion) {
    let mut group = c.benchmark_group("consensus::decide");
    group.sample_size(10);
    group.throughput(Throughput::Elements(HEIGHTS));
    for validators in [4usize, 10] {
        let scenario = Scenario::ideal(validators, HEIGHTS);
        group.bench_function(format!("validators={validators}"), |b| {
            b.iter(|| {
                let report = sim::run_with(&scenario, Defects::default());
                assert!(
                    report.violations.is_empty(),
                    "the benchmark cluster must stay correct: {:?}",
                    report.violations
                );
                report.heights
            })
        });
    }
    group.finish();
}

criterion_group!(benches, decide);
criterion_main!(benches);
