//! Seeded whole-cluster simulation campaigns: every run must keep agreement, validity,
//! verifying certificates, accountability, liveness after GST, and determinism.
//!
//! `cargo test` runs 2,000 seeds (500 per fault mix); `CRADLE_SIM_SEEDS=N` runs N instead, and
//! `CRADLE_SIM_SEED=S` with the `replay` test replays one seed with its details.

use cradle_consensus::sim::{self, Mix};

const DEFAULT_SEEDS: u64 = 2_000;
/// Every this many seeds, the run is repeated to check that its trace hash is the same.
const DETERMINISM_EVERY: u64 = 10;

fn seeds_total() -> u64 {
    std::env::var("CRADLE_SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(DEFAULT_SEEDS)
}

/// Runs the seeds of one mix (those congruent to its index modulo 4), prints the summary line
/// and fails with every failing seed's report.
fn campaign(mix: Mix) {
    let index = Mix::ALL
        .iter()
        .position(|m| *m == mix)
        .expect("a known mix") as u64;
    let total = seeds_total();
    let runs = total / 4 + u64::from(index < total % 4);
    let started = std::time::Instant::now();
    let mut failures = Vec::new();
    let mut worst_liveness_ms = 0;
    let mut evidence = 0;
    let mut rejected = 0;
    for i in 0..runs {
        let seed = i * 4 + index;
        match sim::check_seed(seed, i % DETERMINISM_EVERY == 0) {
            Ok(report) => {
                worst_liveness_ms = worst_liveness_ms.max(report.liveness_ms.unwrap_or(0));
                evidence += report.evidence;
                rejected += report.rejected;
            }
            Err(failure) => {
                println!("{failure}");
                failures.push(failure);
            }
        }
    }
    println!(
        "{mix:?}: {runs} runs in {:.1} s; slowest recovery after GST {worst_liveness_ms} ms \
         (simulated); {evidence} pieces of evidence, {rejected} messages rejected",
        started.elapsed().as_secs_f64()
    );
    println!("simulated {runs} runs, {} violations", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {runs} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
}

#[test]
fn honest_cluster_keeps_safety_and_liveness_over_a_lossy_reordering_network() {
    campaign(Mix::Network);
}

#[test]
fn validators_that_crash_and_restart_amid_partitions_never_equivocate_or_diverge() {
    campaign(Mix::CrashesAndPartitions);
}

#[test]
fn up_to_f_byzantine_validators_cannot_break_agreement_or_stall_the_cluster() {
    campaign(Mix::Byzantine);
}

#[test]
fn byzantine_validators_crashes_and_partitions_together_keep_every_property() {
    campaign(Mix::Everything);
}

/// `CRADLE_SIM_SEED=S cargo test -p cradle-consensus --release replay -- --nocapture`
#[test]
fn replay() {
    let seed = std::env::var("CRADLE_SIM_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let scenario = sim::Scenario::from_seed(seed);
    println!("seed {seed}: {}", scenario.describe());
    let result = sim::check_seed(seed, true);
    let violations = usize::from(result.is_err());
    match &result {
        Ok(r) => println!(
            "heights {:?}, {} events, {} ms simulated, recovery after GST {:?} ms, evidence {}, \
             rejected {}, trace {}",
            r.heights,
            r.events,
            r.sim_time_ms,
            r.liveness_ms,
            r.evidence,
            r.rejected,
            sim::hex32(&r.trace_hash)
        ),
        Err(failure) => println!("{failure}"),
    }
    println!("simulated 1 runs, {violations} violations");
    assert!(result.is_ok());
}
