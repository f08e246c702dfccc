//! Governance with real processes on a running 4-member localnet: a fifth clinic is voted in,
//! starts from the home `cradle-genesis join` writes, catches up from genesis and votes; a
//! removed member is cut off; a member whose node never starts does not halt the chain; every
//! refused change gets its error while the chain keeps committing.
#![allow(clippy::unwrap_used)]

use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use cradle_tests::Cluster;
use cradle_tests::cli::{cradle, keygen, ok};
use cradle_tests::cluster::{Node, bin};
use serde_json::Value;

const WAIT: Duration = Duration::from_secs(60);

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    let l = TcpListener::bind("127.0.0.1:0").expect("a free port");
    l.local_addr().expect("its address").port()
}

fn genesis_path(c: &Cluster) -> PathBuf {
    c.dir.path().join("net/genesis.json")
}

fn member_key_path(c: &Cluster, i: usize) -> PathBuf {
    c.nodes[i].home.join("node.key")
}

/// `cradle governance ARGS --format json` as member `i`, at its node; the parsed answer.
fn governance(c: &Cluster, i: usize, args: &[&str]) -> Value {
    let mut all = vec!["governance"];
    all.extend_from_slice(args);
    all.extend_from_slice(&["--format", "json"]);
    let out = ok(cradle(&c.nodes[i].api, &member_key_path(c, i), &all));
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{e}: {out}"))
}

/// The same, expected to be refused; returns what it said.
fn refused(c: &Cluster, i: usize, key: &Path, args: &[&str]) -> String {
    let mut all = vec!["governance"];
    all.extend_from_slice(args);
    let out = cradle(&c.nodes[i].api, key, &all);
    assert!(
        !out.status.success(),
        "{args:?} was accepted: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8_lossy(&out.stderr).to_string()
}

/// Writes a new institution's key with its proof for this chain, as it would on its own
/// machine; returns the key file (its `.pub` is beside it).
fn institution_key(c: &Cluster, name: &str) -> PathBuf {
    let key = c.dir.path().join(format!("{name}.key"));
    keygen(&genesis_path(c), &key);
    key
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let until = Instant::now() + WAIT;
    while !done() {
        assert!(Instant::now() < until, "timed out waiting until {what}");
        std::thread::sleep(Duration::from_millis(200));
    }
}

/// Proposes `args` as member 0 and has members `approvers` approve it; returns the height the
/// change takes effect at.
fn vote(c: &Cluster, args: &[&str], approvers: &[usize]) -> u64 {
    let mut propose = vec!["propose"];
    propose.extend_from_slice(args);
    let p = governance(c, 0, &propose);
    let id = p["proposal"].as_str().expect("a proposal id").to_string();
    let mut last = Value::Null;
    for &i in approvers {
        last = governance(c, i, &["approve", &id]);
    }
    assert_eq!(last["now"]["status"], "adopted", "{last}");
    let activation = last["now"]["activation_height"].as_u64().unwrap();
    assert_eq!(
        activation,
        last["now"]["adopted_height"].as_u64().unwrap() + 2,
        "a change takes effect two heights after its adoption"
    );
    activation
}

#[test]
fn a_fifth_clinic_is_voted_in_catches_up_and_votes_and_once_removed_is_cut_off() {
    let mut c = Cluster::start(4, &[]).unwrap();
    c.wait_height(0, 2, WAIT).unwrap();
    let key = institution_key(&c, "riverside");
    let pubkey = format!("{}.pub", key.display());
    let (p2p, api, metrics) = (free_port(), free_port(), free_port());
    let p2p_addr = format!("/ip4/127.0.0.1/tcp/{p2p}");
    let api_addr = format!("127.0.0.1:{api}");

    // Three of the four members (more than two thirds of the power) vote the clinic in.
    let activation = vote(
        &c,
        &[
            "add-member",
            &pubkey,
            "--name",
            "Riverside Clinic",
            "--role",
            "clinic",
            "--p2p",
            &p2p_addr,
            "--api",
            &api_addr,
        ],
        &[1, 2],
    );
    let list = governance(&c, 3, &["list"]);
    assert_eq!(list["proposals"][0]["status"], "adopted", "{list}");
    c.wait_height(0, activation + 1, WAIT).unwrap();

    // Its home: genesis, its own key, and a config that says it joins.
    let home = c.dir.path().join("riverside");
    let out = Command::new(bin("cradle-genesis").unwrap())
        .arg("join")
        .arg("--genesis")
        .arg(genesis_path(&c))
        .arg("--key")
        .arg(&key)
        .args(["--name", "Riverside Clinic", "--p2p-listen", &p2p_addr])
        .args(["--api-listen", &api_addr])
        .args(["--metrics-listen", &format!("127.0.0.1:{metrics}")])
        .arg("--out")
        .arg(&home)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    c.nodes.push(Node {
        home,
        api: format!("https://{api_addr}"),
        child: None,
        netns: None,
        clock_offset_ms: None,
    });
    c.start_node(4).unwrap();

    // It catches up from genesis, following the set change on the way.
    let target = c.height(0).unwrap();
    wait_until("the new clinic caught up", || {
        c.metric_height(4).is_some_and(|h| h >= target)
    });
    assert!(
        c.log(4).contains("member set in force"),
        "{}",
        c.log_tail(4, 30)
    );

    // Its votes count: with one original member stopped, three originals hold 3 of the 5
    // votes, less than the quorum of 4; the chain goes on only with the clinic's.
    c.kill(3);
    let h = c.height(0).unwrap();
    c.wait_height(0, h + 3, WAIT).unwrap();
    c.start_node(3).unwrap();
    c.wait_height(3, h + 3, WAIT).unwrap();

    // Removed by four of the five, the clinic's node is cut off and its key refused.
    let activation = vote(&c, &["remove-member", "Riverside Clinic"], &[1, 2, 3]);
    c.wait_height(0, activation + 2, WAIT).unwrap();
    wait_until("the removed clinic was disconnected", || {
        c.metrics(4)
            .is_ok_and(|m| m.contains("cradle_peers_connected 0\n"))
    });
    let stuck = c.metric_height(4).unwrap();
    let h = c.height(0).unwrap();
    c.wait_height(0, h + 3, WAIT).unwrap();
    assert!(
        c.metric_height(4).unwrap() <= stuck.max(activation),
        "a removed member's node keeps following"
    );
    let said = refused(
        &c,
        0,
        &key,
        &["propose", "set-power", "County Hospital 1", "2"],
    );
    assert!(said.contains("403") || said.contains("not"), "{said}");
    // The chain keeps committing without it.
    c.wait_height(1, h + 3, WAIT).unwrap();
}

#[test]
fn a_member_whose_node_never_starts_does_not_halt_the_chain_and_bad_changes_are_refused() {
    let c = Cluster::start(4, &[]).unwrap();
    c.wait_height(0, 2, WAIT).unwrap();
    let key = institution_key(&c, "hillside");
    let pubkey = format!("{}.pub", key.display());
    let activation = vote(
        &c,
        &[
            "add-member",
            &pubkey,
            "--name",
            "Hillside Clinic",
            "--role",
            "clinic",
            "--p2p",
            &format!("/ip4/127.0.0.1/tcp/{}", free_port()),
        ],
        &[1, 2],
    );
    // Five validators, one of them never up: four of five are still a quorum.
    c.wait_height(0, activation + 5, WAIT).unwrap();

    let me = member_key_path(&c, 0);
    let cases: &[(&[&str], &str)] = &[
        // A key already a member's.
        (
            &[
                "propose",
                "add-member",
                &pubkey,
                "--name",
                "Another",
                "--role",
                "clinic",
                "--p2p",
                "/ip4/127.0.0.1/tcp/9",
            ],
            "listed twice",
        ),
        // Removing or re-weighing someone who is not a member.
        (&["propose", "remove-member", "Nobody Clinic"], "no member"),
        // A regulator with voting power.
        (
            &["propose", "set-power", "Regional Health Commission", "1"],
            "voting power",
        ),
        // Approving a proposal that does not exist.
        (&["approve", &"ab".repeat(32)], "no proposal"),
    ];
    for (args, expect) in cases {
        let said = refused(&c, 0, &me, args);
        assert!(said.contains(expect), "{args:?}: {said}");
    }
    // A patient-like stranger's key cannot propose.
    let stranger = institution_key(&c, "stranger");
    let said = refused(
        &c,
        0,
        &stranger,
        &["propose", "remove-member", "Hillside Clinic"],
    );
    assert!(!said.is_empty());
    let h = c.height(0).unwrap();
    c.wait_height(0, h + 2, WAIT).unwrap();
}
