//! Chaos: four real `cradle-node` processes, each in a network namespace of its own, under a
//! steady load of signed transactions whose commit receipts are kept, while a seeded schedule
//! kills members with `kill -9` (at most one down at a time), restarts them, and cuts links
//! between members (one link, one member from all, two against two). It ends by healing
//! everything, and a checker holds the cluster to its promises:
//! - after healing every member reaches the chain's height within 10 s;
//! - the chain committed at least once every `PROGRESS_BOUND` while more than two thirds of the
//!   power was up and connected;
//! - every member holds every block with the same hash and state root;
//! - every transaction whose commit receipt a client got is in every member's chain where the
//!   receipt said;
//! - no member saw a validator sign two different votes for one height, round and step.
//!
//! `CRADLE_CHAOS_SECONDS=N` runs the faults for N seconds (default 40), `CRADLE_CHAOS_SEED=S`
//! replays a schedule (the seed is printed). Needs root: it makes network namespaces.

use std::time::{Duration, Instant};

use cradle_tests::Cluster;
use cradle_tests::chaos::{self, Event, Load, Monitor, Rng};
use cradle_tests::netns::Netns;

const MEMBERS: usize = 4;
/// More than two thirds of four equal votes.
const QUORUM: usize = 3;
const CONVERGE: Duration = Duration::from_secs(10);

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.parse().ok())
}

fn snapshot(c: &Cluster, net: &Netns, what: String) -> Event {
    Event {
        at: Instant::now(),
        what,
        up: c.nodes.iter().map(|n| n.child.is_some()).collect(),
        cut: net.cut_links(),
    }
}

#[test]
fn no_acknowledged_write_is_lost_under_kills_and_partitions() {
    let seconds = env_u64("CRADLE_CHAOS_SECONDS").unwrap_or(40);
    let seed = env_u64("CRADLE_CHAOS_SEED").unwrap_or_else(cradle_genesis::clock::now_us);
    eprintln!("chaos: seed {seed}, {seconds} s of faults (CRADLE_CHAOS_SEED={seed} replays it)");
    let mut rng = Rng::new(seed);

    let mut net = Netns::create(MEMBERS).expect("network namespaces (the chaos test needs root)");
    let hosts = net.hosts_arg();
    let mut c = Cluster::write(MEMBERS as u16, &["--hosts", &hosts]).unwrap();
    for i in 0..MEMBERS {
        c.nodes[i].netns = Some(net.node_ns(i));
        c.start_node(i).unwrap();
    }
    // The clients, the monitor and the load live in the hub, beside the members' links.
    net.enter_hub().unwrap();
    c.wait_height(0, 2, Duration::from_secs(30)).unwrap();

    let monitor = Monitor::start(&c);
    let load = Load::start(&c, 4).unwrap();
    let mut events = vec![snapshot(&c, &net, "start".into())];
    let until = Instant::now() + Duration::from_secs(seconds);
    while Instant::now() < until {
        std::thread::sleep(Duration::from_millis(1_500 + rng.below(3_500)));
        let what =
            chaos::step(&mut c, &mut net, &mut rng).unwrap_or_else(|e| panic!("{e}; seed {seed}"));
        events.push(snapshot(&c, &net, what));
    }

    let (receipts, unanswered) = load.stop();
    net.heal_all().unwrap();
    for i in 0..MEMBERS {
        if c.nodes[i].child.is_none() {
            c.start_node(i).unwrap();
        }
    }
    let healed = Instant::now();
    events.push(snapshot(&c, &net, "heal everything".into()));
    // Every member must reach the highest height seen, and every receipt's: the monitor samples
    // only every 200 ms, and a receipt may name a block it has not seen yet.
    let receipted = receipts.iter().map(|r| r.height).max().unwrap_or(0);
    let target = monitor.max_height().max(receipted);
    let converged = loop {
        let latest = monitor.latest_since(healed, MEMBERS);
        if latest.iter().all(|&h| h >= target) {
            break healed.elapsed();
        }
        assert!(
            healed.elapsed() < CONVERGE,
            "members at {latest:?} {CONVERGE:?} after healing, wanted {target}; schedule: {:?}",
            events.iter().map(|e| &e.what).collect::<Vec<_>>()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let end = Instant::now();
    let samples = monitor.stop();
    let (quorum_time, quiet) = chaos::check_progress(&events, &samples, end, QUORUM)
        .unwrap_or_else(|e| panic!("{e}; seed {seed}"));

    for i in 0..MEMBERS {
        c.terminate(i, Duration::from_secs(10));
    }
    let verdict = chaos::check_stores(&c, &receipts).unwrap_or_else(|e| panic!("{e}; seed {seed}"));
    assert!(
        receipts.len() >= 10,
        "only {} receipts in {seconds} s: the load did not get through",
        receipts.len()
    );

    let kills = events.iter().filter(|e| e.what.starts_with("kill")).count();
    let cuts = events
        .iter()
        .filter(|e| {
            ["cut", "isolate", "split"]
                .iter()
                .any(|w| e.what.starts_with(w))
        })
        .count();
    eprintln!(
        "chaos: seed {seed}: {} faults ({kills} kills, {cuts} partitions), {} receipts checked \
         on {MEMBERS} members ({unanswered} submissions unanswered), {} blocks agree (tips {:?}), \
         quorum up {:.0} s with the longest quiet spell {:.1} s, converged {:.1} s after healing",
        events.len() - 2,
        verdict.receipts_checked,
        verdict.blocks_compared,
        verdict.tips,
        quorum_time.as_secs_f64(),
        quiet.as_secs_f64(),
        converged.as_secs_f64()
    );
}
