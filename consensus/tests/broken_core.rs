//! The checker can fail: cores with deliberate protocol bugs must be caught by the simulator.

use cradle_consensus::core::Defects;
use std::collections::BTreeSet;

use cradle_consensus::sim::{self, Change, Scenario, SetChange};

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

/// Runs scenarios with a defective core until one breaks `property` in a way whose report
/// contains `saying`.
fn first_violation_of(
    defects: Defects,
    property: &str,
    saying: &str,
    scenarios: impl Iterator<Item = Scenario>,
) -> Option<(u64, String)> {
    let mut runs = 0;
    for scenario in scenarios {
        runs += 1;
        let report = sim::run_with(&scenario, defects);
        let found = report
            .violations
            .iter()
            .find(|v| v.property == property && v.seen.contains(saying));
        if let Some(v) = found {
            println!("seed {}: {v}\n  {}", scenario.seed, scenario.describe());
            println!("simulated {runs} runs, 1 violations");
            return Some((scenario.seed, v.to_string()));
        }
    }
    println!("simulated {runs} runs, 0 violations");
    None
}

/// The kinds of membership change (not reweighing) a scenario makes.
fn membership_kinds(scenario: &Scenario) -> BTreeSet<&'static str> {
    scenario
        .set_changes
        .iter()
        .filter(|c| c.change != Change::Power)
        .map(|c| Change::KINDS[c.change.kind()])
        .collect()
}

/// The seeds of the simulator campaign (its first 2,000, the default run).
fn campaign() -> impl Iterator<Item = Scenario> {
    (0..2_000).map(Scenario::from_seed)
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
        scenario.joiners = 0;
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
        scenario.set_changes = vec![SetChange::reweigh(3, &powers)];
        scenario.joiners = 0;
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
        scenario.set_changes = vec![SetChange::reweigh(3, &powers)];
        scenario.joiners = 0;
        scenario
    });
    assert_eq!(first_violation_in(Defects::default(), reweighed), None);
}

#[test]
fn campaign_catches_a_core_that_ignores_added_removed_and_rotated_validators() {
    let defects = Defects {
        ignore_set_changes: true,
        ..Defects::default()
    };
    // For each kind, the campaign's own seeds whose membership changes are all of that kind
    // (reweighing may come with them): a core that keeps judging by the genesis set must break
    // a property on one of them, and the correct core must keep every property on that seed.
    for kind in ["add", "remove", "rotate"] {
        let seeds = campaign().filter(|s| membership_kinds(s) == BTreeSet::from([kind]));
        let found = first_violation_in(defects, seeds);
        let Some((seed, property)) = found else {
            panic!("saw no violation on the campaign's seeds with {kind} changes; wanted one");
        };
        println!("{kind}: caught at seed {seed} ({property})");
        let correct = sim::run_with(&Scenario::from_seed(seed), Defects::default());
        assert!(
            correct.violations.is_empty(),
            "seed {seed}: the correct core saw {:?}; wanted no violation",
            correct.violations
        );
    }
}

#[test]
fn checker_names_the_removed_or_rotated_out_key_a_broken_core_counts() {
    let defects = Defects {
        ignore_set_changes: true,
        ..Defects::default()
    };
    // A core that keeps the genesis set still counts the precommits of a validator removed
    // since (whose node keeps running with the old set too) or of a Byzantine validator still
    // signing with its rotated-out key: the checker must name that key, not just fail the
    // certificate.
    for (kind, retired) in [
        ("remove", "removed from the set"),
        ("rotate", "rotated out of the set"),
    ] {
        let seeds = campaign().filter(|s| membership_kinds(s).contains(kind));
        let found = first_violation_of(defects, "set membership", retired, seeds);
        assert!(
            found.is_some(),
            "saw no certificate with a precommit of a key {retired} on the campaign's seeds \
             with {kind} changes; wanted the checker to name one"
        );
    }
}
