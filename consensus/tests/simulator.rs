//! Seeded whole-cluster simulation campaigns: every run must keep agreement, validity,
//! certificates that verify under their height's set and count no key outside it,
//! accountability, recovery, liveness after GST, and determinism. Half the runs change the
//! validator set (add, remove, rotate a key, reweigh) as they go.
//!
//! `cargo test` runs 2,000 seeds (500 per fault mix); `CRADLE_SIM_SEEDS=N` runs N instead, and
//! `CRADLE_SIM_SEED=S` with the `replay` test replays one seed with its details.

use cradle_consensus::sim::{self, Change, Mix, Scenario};

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
    let mut changes = ChangeCounts::default();
    let mut new_key_precommits = 0;
    for i in 0..runs {
        let seed = i * 4 + index;
        changes.count(&Scenario::from_seed(seed));
        match sim::check_seed(seed, i % DETERMINISM_EVERY == 0) {
            Ok(report) => {
                worst_liveness_ms = worst_liveness_ms.max(report.liveness_ms.unwrap_or(0));
                evidence += report.evidence;
                rejected += report.rejected;
                new_key_precommits += report.new_key_precommits;
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
    println!(
        "{mix:?}: {}; {new_key_precommits} precommits of added validators and rotated keys in \
         decided certificates",
        changes.describe()
    );
    println!("simulated {runs} runs, {} violations", failures.len());
    assert!(
        failures.is_empty(),
        "{} of {runs} seeds failed:\n{}",
        failures.len(),
        failures.join("\n")
    );
    // Added validators and new keys must take part, not just be in the sets.
    assert!(
        changes.runs[0] + changes.runs[2] == 0 || new_key_precommits > 0,
        "{mix:?}: saw no precommit of an added validator or a rotated key in {} runs that add \
         and {} that rotate; wanted them in decided certificates",
        changes.runs[0],
        changes.runs[2]
    );
}

/// How many set changes of each kind a campaign's seeds draw, and in how many runs.
#[derive(Default)]
struct ChangeCounts {
    /// Changes per kind, in the order of `Change::KINDS`.
    changes: [u64; 4],
    /// Runs with at least one change of each kind.
    runs: [u64; 4],
    /// Runs with a removed or rotated Byzantine validator that goes on voting under its old key.
    refusing: u64,
}

impl ChangeCounts {
    fn count(&mut self, scenario: &Scenario) {
        let mut seen = [false; 4];
        for c in &scenario.set_changes {
            self.changes[c.change.kind()] += 1;
            seen[c.change.kind()] = true;
        }
        for (runs, seen) in self.runs.iter_mut().zip(seen) {
            *runs += u64::from(seen);
        }
        self.refusing += u64::from(
            scenario
                .byzantine
                .iter()
                .any(|(v, _)| scenario.refuses_to_leave(*v)),
        );
    }

    fn describe(&self) -> String {
        let kinds: Vec<String> = Change::KINDS
            .iter()
            .enumerate()
            .map(|(k, name)| format!("{name} {} in {} runs", self.changes[k], self.runs[k]))
            .collect();
        format!(
            "set changes: {}; {} runs with a Byzantine validator voting on after it left",
            kinds.join(", "),
            self.refusing
        )
    }
}

#[test]
fn the_campaign_draws_every_kind_of_set_change_and_byzantine_validators_that_refuse_to_leave() {
    let mut counts = ChangeCounts::default();
    let total = seeds_total();
    for seed in 0..total {
        counts.count(&Scenario::from_seed(seed));
    }
    println!("{total} seeds: {}", counts.describe());
    // About a run in eight has a change of each kind (half the runs change the set, one to
    // three times); the bound leaves room for chance but not for a kind that is never drawn.
    for (k, name) in Change::KINDS.iter().enumerate() {
        assert!(
            counts.runs[k] >= total / 20,
            "saw {name} changes in {} of {total} runs; wanted at least {}",
            counts.runs[k],
            total / 20
        );
    }
    assert!(
        counts.refusing >= total / 200,
        "saw {} runs with a removed or rotated Byzantine validator in {total}; wanted at least {}",
        counts.refusing,
        total / 200
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
             rejected {}, new-key precommits {}, trace {}",
            r.heights,
            r.events,
            r.sim_time_ms,
            r.liveness_ms,
            r.evidence,
            r.rejected,
            r.new_key_precommits,
            sim::hex32(&r.trace_hash)
        ),
        Err(failure) => println!("{failure}"),
    }
    println!("simulated 1 runs, {violations} violations");
    assert!(result.is_ok());
}
