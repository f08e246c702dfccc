//! Clock faults, with real processes: members whose server clocks are wrong by more than the
//! drift validators allow (2 s) run `cradle-node-skewed`, the daemon itself with its clock
//! shifted. Block time is the chain's, never one node's: a clock ahead cannot push it forward,
//! a clock behind cannot hold the chain, and a grant expires when the chain's time passes it,
//! whatever the custodian's clock says.

use std::path::Path;
use std::time::Duration;

use cradle_genesis::clock::now_ms;
use cradle_tests::Cluster;
use cradle_tests::cli::{clinician, cradle, mother_with_archive, ok, shared_record};
use serde_json::Value;

const AHEAD_MS: i64 = 120_000;

fn block(c: &Cluster, node: usize, height: u64) -> Value {
    c.client(node).block(height).expect("a committed block")
}

/// Node `i`'s height as its operator endpoint reports it: requests signed by this test's
/// clock would be refused by a node whose clock is two minutes off.
fn committed_height(c: &Cluster, i: usize) -> u64 {
    let text = c.metrics(i).expect("the node's metrics");
    text.lines()
        .find_map(|l| l.strip_prefix("cradle_height "))
        .and_then(|h| h.trim().parse().ok())
        .expect("cradle_height in the metrics")
}

#[test]
fn members_whose_clocks_are_wrong_neither_stall_the_chain_nor_set_its_time() {
    let mut c = Cluster::write(4, &[]).unwrap();
    c.nodes[3].clock_offset_ms = Some(AHEAD_MS);
    c.nodes[2].clock_offset_ms = Some(-AHEAD_MS);
    for i in 0..4 {
        c.start_node(i).unwrap();
    }
    let keys: Vec<String> = (0..4)
        .map(|i| hex::encode(c.member_key(i).unwrap().public_key().0))
        .collect();

    // The chain keeps committing: each member proposes in turn, and the one ahead's turns go
    // to the next round.
    let target = 16;
    c.wait_height(0, target, Duration::from_secs(120)).unwrap();

    let mut prev = c.genesis.genesis_time_ms;
    let mut seen = Vec::new();
    for h in 1..=target {
        let b = block(&c, 0, h);
        let (time, proposer) = (b["time_ms"].as_u64().unwrap(), b["proposer"].to_string());
        let read_at = now_ms();
        seen.push((
            keys.iter().position(|k| proposer.contains(k)),
            time.saturating_sub(prev),
        ));
        assert!(time > prev, "block {h}'s time {time} is not after {prev}");
        assert!(
            time <= read_at + 2_000,
            "block {h} carries a time {} ms ahead of the wall clock: {b}",
            time - read_at
        );
        assert!(
            !proposer.contains(&keys[3]),
            "block {h} from the member whose clock is ahead was accepted: {b}"
        );
        if proposer.contains(&keys[2]) {
            // Its clock is two minutes behind: its block takes the earliest time allowed,
            // just after the previous block's, and time never runs backwards.
            assert_eq!(time, prev + 1, "block {h} from the member behind: {b}");
        }
        prev = time;
    }
    // Both follow the chain: the one ahead votes with the others, the one behind refuses
    // their proposals (their times are past its horizon) and takes each block from its peers.
    for i in [2, 3] {
        let last = committed_height(&c, i);
        assert!(
            last + 2 >= target,
            "member {i} (clock off by {:?} ms) is at height {last} of {target}; blocks \
             (proposer, time since the previous block): {seen:?}",
            c.nodes[i].clock_offset_ms
        );
    }
    // Both wrong clocks are still members at work, not crashed.
    assert!(c.is_running(2) && c.is_running(3));
}

/// The custodian (member 0) runs 30 s ahead: by its clock, a grant of 20 s has expired the
/// moment it is made. The ledger decides at block time, and so does the custodian: the
/// grantee's read is permitted until the chain's time passes the expiry, then denied.
#[test]
fn a_grant_expires_at_the_chains_time_not_at_the_custodians_clock() {
    let mut c = Cluster::write(4, &[]).unwrap();
    c.nodes[0].clock_offset_ms = Some(30_000);
    for i in 0..4 {
        c.start_node(i).unwrap();
    }
    c.wait_height(1, 2, Duration::from_secs(30)).unwrap();
    // A node takes only requests signed after it started, by its clock: 30 s from now.
    c.wait_height(0, 2, Duration::from_secs(60)).unwrap();
    let work = c.dir.path().join("work");
    let record = shared_record("Karla_Kessler_eb2955c7-1c46-47bd-bffc-bae94824b629.json");
    let mother = mother_with_archive(&c, &work, 0, &record);
    let midwife = clinician(&c, &work, 1, "midwife", "midwifery", "Grace Otieno");
    let (custodian, hospital) = (c.nodes[0].api.clone(), c.nodes[1].api.clone());

    ok(cradle(
        &hospital,
        &mother.key,
        &[
            "consent",
            "grant",
            "--grantee",
            "County Hospital 2",
            "--purpose",
            "TREAT",
            "--expires",
            "20s",
        ],
    ));
    let granted_at = now_ms();
    let get = |out: &Path| {
        cradle(
            &custodian,
            &midwife.key,
            &[
                "archive",
                "get",
                &mother.archive,
                "--purpose",
                "TREAT",
                "--out",
                out.to_str().unwrap(),
            ],
        )
    };

    let first = work.join("first.json");
    let o = get(&first);
    assert!(
        o.status.success(),
        "the grantee's read within the grant was refused: {}",
        String::from_utf8_lossy(&o.stderr)
    );
    assert!(
        now_ms() < granted_at + 20_000,
        "the setup took the grant's whole life"
    );
    assert_eq!(
        std::fs::read(&first).unwrap(),
        std::fs::read(&record).unwrap()
    );

    // Once the chain's time is past the expiry, the same read is denied, and recorded.
    std::thread::sleep(Duration::from_millis(
        (granted_at + 22_000).saturating_sub(now_ms()),
    ));
    let late = work.join("late.json");
    let o = get(&late);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(
        !o.status.success() && stderr.contains("the grant has expired"),
        "{stderr}"
    );
    assert!(!late.exists());
}
