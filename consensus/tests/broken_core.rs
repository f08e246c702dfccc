//! The checker can fail: cores with deliberate protocol bugs must be caught by the simulator.

use cradle_consensus::core::Defects;
use cradle_consensus::sim::{self, Scenario};

/// Runs seeds with a defective core until one breaks a property; returns what broke, and how
/// many runs it took.
fn first_violation(defects: Defects, seeds: impl Iterator<Item = u64>) -> Option<(u64, String)> {
    first_violation_in(defects, seeds.map(Scenario::from_seed))
}

fn first_violation_in(
    defects: Defects,
    scenarios: impl Iterator<Item = Scenario>,
) -> Option<(u64, String)> {
    let mut runs = 0;
    for scenario in scenarios {
        runs += 1;
        let seed = scenario.seed;
        let report = sim::run_with(&scenario, defects);
        if let Some(v) = report.violations.first() {
            println!("seed {seed}: {v}");
            println!("simulated {runs} runs, 1 violations");
            return Some((seed, v.property.to_string()));
        }
    }
    println!("simulated {runs} runs, 0 violations");
    None
}

#[test]
fn simulator_catches_a_core_that_counts_a_repeated_vote_twice() {
    let defects = Defects {
        count_duplicate_votes: true,
        ..Defects::default()
    };
    let found = first_violation(defects, 0..400);
    assert!(
        found.is_some(),
        "a core that counts duplicates must break agreement or certificates"
    );
}

#[test]
fn simulator_catches_a_core_that_ignores_its_lock() {
    let defects = Defects {
        ignore_lock: true,
        ..Defects::default()
    };
    // Breaking a lock takes a Byzantine validator's help and a lossy network, so that some
    // validators lock on a value the others never see a quorum for: a small cluster with one
    // Byzantine voter and heavy loss, and many heights before GST.
    let lock_breakers = (0..2_000).map(|seed| {
        let mut scenario = Scenario::from_seed(seed);
        scenario.powers = vec![1; 4];
        scenario.byzantine = vec![((seed % 4) as u16, sim::Behaviour::UnknownBlockVoter)];
        // Its set changes were drawn for the seed's own Byzantine validators.
        scenario.set_changes.clear();
        scenario.crashes.clear();
        scenario.net.partitions.clear();
        scenario.net.loss_permille = 250;
        scenario.net.jitter_before_gst_ms = 60;
        scenario.gst_ms = 3_000;
        scenario
    });
    let found = first_violation_in(defects, lock_breakers);
    assert!(
        found.is_some(),
        "a core that ignores its lock must break agreement"
    );
}

#[test]
fn simulator_catches_a_core_that_judges_votes_by_the_wrong_heights_set() {
    let defects = Defects {
        ignore_set_changes: true,
        ..Defects::default()
    };
    // Four equal validators, then one of them holds most of the power: a core still counting
    // the old powers takes three small votes for a quorum and decides on a certificate the new
    // set does not accept.
    let reweighed = (0..400).map(|seed| {
        let mut scenario = Scenario::from_seed(seed);
        scenario.powers = vec![1; 4];
        scenario.byzantine.clear();
        // Crashes and partitions were drawn for the seed's own cluster size.
        scenario.crashes.retain(|(v, _, _)| *v < 4);
        scenario.net.partitions.clear();
        let heavy = (seed % 4) as usize;
        let mut powers = vec![1; 4];
        powers[heavy] = 10;
        scenario.set_changes = vec![(3, powers)];
        scenario
    });
    let found = first_violation_in(defects, reweighed);
    assert!(
        found.is_some(),
        "a core that keeps the old set must decide on certificates the new set refuses"
    );
}

#[test]
fn a_correct_core_keeps_every_property_across_the_same_set_changes() {
    let reweighed = (0..100).map(|seed| {
        let mut scenario = Scenario::from_seed(seed);
        scenario.powers = vec![1; 4];
        scenario.byzantine.clear();
        // Crashes and partitions were drawn for the seed's own cluster size.
        scenario.crashes.retain(|(v, _, _)| *v < 4);
        scenario.net.partitions.clear();
        let mut powers = vec![1; 4];
        powers[(seed % 4) as usize] = 10;
        scenario.set_changes = vec![(3, powers)];
        scenario
    });
    assert_eq!(first_violation_in(Defects::default(), reweighed), None);
}
