//! A seeded whole-cluster simulator (in the spirit of TigerBeetle's VOPR and commonware's
//! deterministic runtime): N cores over a simulated network with latency, jitter, loss,
//! duplication, reordering and partitions that heal at GST; honest validators that crash and
//! restart from their persisted state; Byzantine validators up to f; and validator set changes
//! (validators added, removed, rotated to a new key, reweighed) at heights every node knows. After every run the
//! [`checker`] says whether agreement, validity, certificates, accountability and liveness held.
//!
//! One seed determines everything, and the run's trace hash proves it: the same seed gives the
//! same hash. Replay a failing seed with
//! `CRADLE_SIM_SEED=<seed> cargo test -p cradle-consensus --release replay -- --nocapture`.

pub mod byzantine;
pub mod checker;
mod cluster;
pub mod membership;
pub mod network;
mod node;
pub mod rng;
pub mod scenario;
pub mod sets;
pub mod value;

pub use checker::Violation;
pub use cluster::run_with;
pub use membership::{Change, Seat, SetChange};
pub use scenario::{Behaviour, Mix, Scenario};
pub use value::SimValue;

use crate::core::Defects;
use crate::types::Height;

/// What one run did and whether it kept every property.
#[derive(Clone, Debug)]
pub struct Report {
    pub seed: u64,
    pub trace_hash: [u8; 32],
    pub violations: Vec<Violation>,
    /// Each honest validator's height at the end.
    pub heights: Vec<Height>,
    pub events: u64,
    pub sim_time_ms: u64,
    pub evidence: u64,
    pub rejected: u64,
    /// Precommits of added validators and rotated keys in decided certificates (one
    /// certificate per height).
    pub new_key_precommits: u64,
    /// Simulated time from GST until the last honest validator decided its K heights.
    pub liveness_ms: Option<u64>,
    /// Each node's final height, round, step, locked and valid rounds.
    pub states: Vec<String>,
}

/// Runs `seed`'s scenario with a correct core.
pub fn run(seed: u64) -> Report {
    run_with(&Scenario::from_seed(seed), Defects::default())
}

/// The command that replays one seed.
pub fn replay_command(seed: u64) -> String {
    format!("CRADLE_SIM_SEED={seed} cargo test -p cradle-consensus --release replay -- --nocapture")
}

/// Checks one seed, including determinism when `twice`: every failure as one readable paragraph.
pub fn check_seed(seed: u64, twice: bool) -> Result<Report, String> {
    let scenario = Scenario::from_seed(seed);
    let report = run_with(&scenario, Defects::default());
    let mut problems: Vec<String> = report.violations.iter().map(|v| v.to_string()).collect();
    if !problems.is_empty() {
        problems.push(format!("final states: {}", report.states.join("; ")));
    }
    if twice {
        let again = run_with(&scenario, Defects::default());
        if again.trace_hash != report.trace_hash {
            problems.push(format!(
                "determinism violated: saw trace hashes {} and {}; wanted one hash per seed",
                hex32(&report.trace_hash),
                hex32(&again.trace_hash)
            ));
        }
    }
    if problems.is_empty() {
        return Ok(report);
    }
    Err(format!(
        "seed {seed} failed ({})\n  {}\n  replay: {}",
        scenario.describe(),
        problems.join("\n  "),
        replay_command(seed)
    ))
}

pub fn hex32(bytes: &[u8; 32]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
