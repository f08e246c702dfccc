//! A real consortium of four `cradle-node` processes on loopback: agreement, crash recovery,
//! loss of quorum, and hostile API input.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

use std::time::{Duration, Instant};

use cradle_client::api::ApiError;
use cradle_tests::Cluster;
use cradle_tests::txs::{enrol, patient};

const WAIT: Duration = Duration::from_secs(60);

/// Every running node has the same block hash and state root at every height up to `upto`.
fn assert_agree(c: &Cluster, nodes: &[usize], upto: u64) {
    for h in 1..=upto {
        let first = c.block_at(nodes[0], h).unwrap();
        for &i in &nodes[1..] {
            let other = c.block_at(i, h).unwrap();
            assert_eq!(
                first, other,
                "node {} and node {i} disagree at height {h}",
                nodes[0]
            );
        }
    }
}

#[test]
fn four_nodes_commit_transactions_submitted_to_any_and_agree_on_every_block() {
    let c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    let chain = c.chain_id();
    let member = c.member_key(0).unwrap();
    let mut heights = Vec::new();
    for k in 0..8u64 {
        let tx = enrol(chain, &member, &patient(k));
        let answer = c.client((k % 4) as usize).submit(&tx, true).unwrap();
        heights.push(answer["height"].as_u64().unwrap());
    }
    let top = *heights.iter().max().unwrap();
    for i in 0..4 {
        c.wait_height(i, top, WAIT).unwrap();
    }
    assert_agree(&c, &[0, 1, 2, 3], top);
    let statuses: Vec<_> = (0..4).map(|i| c.status(i).unwrap()).collect();
    assert!(
        statuses.iter().all(|s| s["peers"].as_u64() == Some(3)),
        "{statuses:?}"
    );

    // Idle, the chain makes one empty block per heartbeat (genesis `heartbeat_ms`, 1 s): block
    // time keeps advancing for grant expiry, and no proposer builds empty blocks back to back.
    let before = c.height(0).unwrap();
    std::thread::sleep(Duration::from_secs(3));
    let idle = c.height(0).unwrap() - before;
    assert!(
        (1..=4).contains(&idle),
        "{idle} blocks in 3 s without transactions"
    );
}

#[test]
fn a_killed_node_catches_up_to_the_same_root_after_restart() {
    let mut c = Cluster::start(4, &[]).unwrap();
    c.wait_height(3, 1, WAIT).unwrap();
    let chain = c.chain_id();
    let member = c.member_key(1).unwrap();
    c.kill(3);
    let from = c.height(0).unwrap();
    for k in 0..20u64 {
        let tx = enrol(chain, &member, &patient(100 + k));
        c.client((k % 3) as usize).submit(&tx, false).unwrap();
    }
    // The other three keep committing without it.
    c.wait_height(0, from + 3, WAIT).unwrap();
    let target = c.height(0).unwrap();
    c.start_node(3).unwrap();
    c.wait_height(3, target, WAIT).unwrap();
    assert_agree(&c, &[0, 3], target);
    assert!(
        c.log(3).contains("caught up from peer"),
        "node 3 should have synced blocks"
    );
}

#[test]
fn without_a_quorum_nothing_commits_and_one_restart_resumes_commits() {
    let mut c = Cluster::start(4, &[]).unwrap();
    for i in 0..4 {
        c.wait_height(i, 1, WAIT).unwrap();
    }
    c.kill(2);
    c.kill(3);
    std::thread::sleep(Duration::from_secs(2));
    let stuck = c.height(0).unwrap();
    let chain = c.chain_id();
    let member = c.member_key(0).unwrap();
    let tx = enrol(chain, &member, &patient(500));
    c.client(0).submit(&tx, false).unwrap();
    std::thread::sleep(Duration::from_secs(6));
    let h0 = c.height(0).unwrap();
    let h1 = c.height(1).unwrap();
    assert!(
        h0 <= stuck + 1 && h1 <= stuck + 1,
        "two of four validators cannot commit: {stuck} -> {h0}/{h1}"
    );
    let frozen = h0.max(h1);
    std::thread::sleep(Duration::from_secs(3));
    assert_eq!(
        c.height(0).unwrap().max(c.height(1).unwrap()),
        frozen,
        "no block without a quorum"
    );
    c.start_node(2).unwrap();
    c.wait_height(0, frozen + 2, WAIT).unwrap();
    c.wait_height(2, frozen + 2, WAIT).unwrap();
    assert_agree(&c, &[0, 1, 2], frozen + 2);
}

#[test]
fn malformed_oversized_and_badly_signed_api_requests_are_refused_and_nodes_keep_running() {
    let c = Cluster::start(4, &[]).unwrap();
    c.wait_height(0, 1, WAIT).unwrap();
    let api = c.client(0);
    let chain = c.chain_id();
    let member = c.member_key(0).unwrap();

    let refused = |r: Result<serde_json::Value, ApiError>, want: u16| match r {
        Err(ApiError::Refused { status, reason, .. }) => {
            assert_eq!(status, want, "{reason}");
            assert!(!reason.is_empty() && !reason.contains('\n'));
        }
        other => panic!("expected HTTP {want}, got {other:?}"),
    };
    refused(api.submit(b"not a transaction", false), 400);
    // Over the 64 KiB transaction limit (small enough that the client finishes sending and
    // reads the answer).
    refused(api.submit(&vec![1u8; 100 * 1024], false), 413);
    let mut bad_sig = enrol(chain, &member, &patient(900));
    let last = bad_sig.len() - 1;
    bad_sig[last] ^= 1;
    refused(api.submit(&bad_sig, false), 400);
    let foreign = enrol([7; 32], &member, &patient(901));
    refused(api.submit(&foreign, false), 400);
    // Committed once; the same transaction again is a replay.
    let good = enrol(chain, &member, &patient(902));
    api.submit(&good, true).unwrap();
    refused(api.submit(&good, false), 409);
    refused(api.get_json("/v1/blocks/notanumber"), 400);
    refused(api.get_json("/v1/blocks/999999"), 404);
    refused(api.get_json("/v1/txs/zz"), 400);
    refused(api.get_json("/v1/nowhere"), 404);

    let metrics = c.metrics(0).unwrap();
    for name in [
        "cradle_height",
        "cradle_round",
        "cradle_commit_latency_seconds_bucket",
        "cradle_mempool_txs",
        "cradle_peers_connected",
        "cradle_txs_committed_total",
    ] {
        assert!(metrics.contains(name), "metrics lack {name}");
    }
    let before = c.height(0).unwrap();
    let deadline = Instant::now() + WAIT;
    while c.height(0).unwrap() < before + 2 {
        assert!(
            Instant::now() < deadline,
            "node stopped committing after bad requests"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}
