//! Storage faults, with real processes on disks the tests make (root needed):
//! - a member whose data disk runs low refuses new transactions with a clear 507, goes on
//!   following the chain, and takes work again once space is freed;
//! - a member whose disk fails under it (fsync errors: a loop device whose backing tmpfs
//!   fills) stops rather than vote from state it could not save, and after the operator frees
//!   space and repairs the file system it resumes and agrees with every other member;
//! - a member whose vote record or database is corrupted refuses to start, and says why.

use std::path::Path;
use std::time::{Duration, Instant};

use cradle_client::api::ApiError;
use cradle_genesis::config::NodeConfig;
use cradle_tests::Cluster;
use cradle_tests::cli::{member_upload, mother_with_archive, ok, shared_record};
use cradle_tests::disk::{LoopDisk, Tmpfs, fill, free_bytes};
use cradle_tests::txs::{enrol, patient};

const MIB: u64 = 1 << 20;

fn set_reserve(c: &Cluster, i: usize, bytes: u64) {
    let path = c.nodes[i].home.join("config.toml");
    let mut config = NodeConfig::load(&path).expect("the member's config");
    config.archives.disk_reserve_bytes = bytes;
    config.save(&path).expect("saving the member's config");
}

/// Submits an enrolment signed by member `signer` to member `node` and waits for its commit.
fn submit(c: &Cluster, node: usize, signer: usize, k: u64) -> Result<serde_json::Value, ApiError> {
    let key = c.member_key(signer).expect("the member's key");
    let tx = enrol(c.chain_id(), &key, &patient(k));
    c.anonymous(node).submit(&tx, true)
}

/// Waits for member `i`'s process to exit; its status.
fn exited(c: &mut Cluster, i: usize, within: Duration) -> Option<std::process::ExitStatus> {
    let until = Instant::now() + within;
    while Instant::now() < until {
        if let Some(child) = c.nodes[i].child.as_mut()
            && let Ok(Some(status)) = child.try_wait()
        {
            c.nodes[i].child = None;
            return Some(status);
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    None
}

#[test]
fn a_member_whose_disk_runs_low_refuses_new_work_until_space_is_freed() {
    let mut c = Cluster::write(4, &[]).unwrap();
    let data = c.nodes[0].home.join("data");
    let _disk = Tmpfs::mount(&data, 256).unwrap();
    set_reserve(&c, 0, 64 * MIB);
    for i in 0..4 {
        c.start_node(i).unwrap();
    }
    c.wait_height(0, 2, Duration::from_secs(30)).unwrap();
    submit(&c, 0, 0, 1).expect("a submission with room on the disk");
    let work = c.dir.path().join("work");
    let record = shared_record("Karla_Kessler_eb2955c7-1c46-47bd-bffc-bae94824b629.json");
    let mother = mother_with_archive(&c, &work, 0, &record);
    let upload = || member_upload(&c, 0, &record, &mother.public);

    // Leave 32 MiB: below the 64 MiB the node keeps for the chain's blocks.
    let ballast = data.join("ballast");
    let free = free_bytes(&data).unwrap();
    fill(&ballast, free - 32 * MIB).unwrap();
    match submit(&c, 0, 0, 2) {
        Err(ApiError::Refused { status, reason, .. }) => {
            assert_eq!(status, 507, "{reason}");
            assert!(reason.contains("disk is nearly full"), "{reason}");
        }
        other => panic!("a submission on a nearly full disk: {other:?}"),
    }
    let refused = upload();
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        !refused.status.success() && stderr.contains("507"),
        "an upload on a nearly full disk: {stderr}"
    );
    // The member goes on following the chain in its reserve, and the others take work.
    submit(&c, 1, 0, 3).expect("another member takes the transaction");
    let h = c.height(1).unwrap();
    c.wait_height(0, h + 3, Duration::from_secs(30)).unwrap();

    std::fs::remove_file(&ballast).unwrap();
    let r = submit(&c, 0, 0, 4).expect("a submission once space is freed");
    assert!(r["height"].as_u64().is_some(), "{r}");
    ok(upload());
}

#[test]
fn a_member_whose_disk_fails_stops_then_resumes_once_repaired_and_agrees_with_the_others() {
    let mut c = Cluster::write(4, &[]).unwrap();
    let work = c.dir.path().join("disk0");
    let data = c.nodes[0].home.join("data");
    // 1 GiB of ext4 as the node sees it, 160 MiB of memory behind it.
    let mut disk = LoopDisk::create(&work, &data, 1024, 160).unwrap();
    set_reserve(&c, 0, 16 * MIB);
    for i in 0..4 {
        c.start_node(i).unwrap();
    }
    c.wait_height(0, 3, Duration::from_secs(30)).unwrap();
    for k in 0..5 {
        submit(&c, 0, 0, 100 + k).expect("a submission before the fault");
    }

    // The disk behind the file system fills: the node's next syncs fail.
    let behind = disk.backing.path.join("ballast");
    fill(&behind, free_bytes(&disk.backing.path).unwrap()).unwrap();
    let failed_at = c.height(1).unwrap();
    let status = exited(&mut c, 0, Duration::from_secs(60))
        .expect("the member whose disk fails stops within 60 s");
    assert!(
        !status.success(),
        "it stopped as if all were well: {status}"
    );
    let log = c.log(0);
    let reason = log
        .lines()
        .rev()
        .find(|l| l.contains("cradle-node:"))
        .unwrap_or_default();
    assert!(
        ["No space left", "Input/output error", "IO error"]
            .iter()
            .any(|w| reason.contains(w)),
        "its last words do not say the disk failed: {reason:?}\n{}",
        c.log_tail(0, 20)
    );
    // The others go on without it.
    c.wait_height(1, failed_at + 3, Duration::from_secs(30))
        .unwrap();
    submit(&c, 1, 1, 200).expect("the others take work while it is down");

    // The operator frees space and repairs the file system; the member resumes and catches up.
    std::fs::remove_file(&behind).unwrap();
    disk.repair().unwrap();
    c.start_node(0).unwrap();
    let tip = c.height(1).unwrap();
    c.wait_height(0, tip, Duration::from_secs(60)).unwrap();
    for h in 1..=tip {
        assert_eq!(
            c.block_at(0, h).unwrap(),
            c.block_at(1, h).unwrap(),
            "the repaired member disagrees at height {h}"
        );
    }
    submit(&c, 0, 0, 300).expect("the repaired member takes work");
}

/// Overwrites one value in a stopped member's database, as a bad disk or a careless hand would.
fn overwrite(home: &Path, cf: &str, key: &[u8], value: &[u8]) {
    let path = home.join("data/ledger");
    let cfs =
        rocksdb::DB::list_cf(&rocksdb::Options::default(), &path).expect("its column families");
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), &path, cfs).expect("its database");
    let handle = db.cf_handle(cf).expect("the column family");
    db.put_cf(&handle, key, value).expect("the write");
    db.flush_cf(&handle).expect("the flush");
}

#[test]
fn a_member_whose_vote_record_or_database_is_corrupted_refuses_to_start() {
    use cradle_node::storage::schema::{CF_CONSENSUS, CONSENSUS_STATE};
    let mut c = Cluster::start(4, &[]).unwrap();
    c.wait_height(0, 3, Duration::from_secs(30)).unwrap();
    c.kill(0);

    // The record of what it signed at the current height no longer decodes.
    overwrite(
        &c.nodes[0].home,
        CF_CONSENSUS,
        CONSENSUS_STATE,
        b"\x07garbage",
    );
    c.start_node(0).unwrap();
    let status = exited(&mut c, 0, Duration::from_secs(30)).expect("it refuses to start");
    assert!(!status.success());
    let log = c.log(0);
    assert!(
        log.contains("corrupt") && log.contains("consensus"),
        "no clear reason in its log:\n{}",
        c.log_tail(0, 10)
    );

    // The database's own manifest is damaged.
    let ledger = c.nodes[0].home.join("data/ledger");
    let current = std::fs::read_to_string(ledger.join("CURRENT")).unwrap();
    let manifest = ledger.join(current.trim());
    let mut bytes = std::fs::read(&manifest).unwrap();
    let mid = bytes.len() / 2;
    for b in &mut bytes[mid..] {
        *b ^= 0x5a;
    }
    std::fs::write(&manifest, bytes).unwrap();
    let before = c.log(0).len();
    c.start_node(0).unwrap();
    let status = exited(&mut c, 0, Duration::from_secs(30)).expect("it refuses to start");
    assert!(!status.success());
    let log = c.log(0)[before..].to_string();
    assert!(
        log.contains("opening the store") && log.contains("Corruption"),
        "no clear reason in its log:\n{log}"
    );
    // The other members never noticed.
    let h = c.height(1).unwrap();
    c.wait_height(1, h + 2, Duration::from_secs(30)).unwrap();
}
