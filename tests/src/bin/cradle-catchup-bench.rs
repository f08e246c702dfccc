//! `cradle-catchup-bench`: how fast a member that joins a long-running chain verifies and applies
//! the whole certified history, as its node does on catch-up. The last line on stdout is JSON.
//!
//! 1. Untimed: a chain of `--blocks` blocks is generated in memory with the ledger's own rules
//!    (`block::build_block` on a `MemoryStore`), each certified by precommits from more than two
//!    thirds of the validators in force at its height, and encoded as a peer would send it. The
//!    consortium starts with four validators (two hospitals, a maternal and child health centre
//!    and a township clinic) and a regulator. Blocks hold `--block-txs` transactions of the mix
//!    of `cradle-bench`: 40 % access records (a custodian logging a patient's read of her own
//!    archive, with the patient's signed request inside), 30 % enrolments (with the patient's
//!    proof of her keys), 20 % archive registrations, 10 % consent grants signed by patients.
//!    Halfway, a fifth clinic is proposed and approved by three of the four, so the history holds
//!    a validator set change: from its activation height on, blocks are certified by four of
//!    five, and the new clinic proposes blocks and enrols patients like the others.
//! 2. Timed: a fresh node store (`cradle_node::storage::Store`, RocksDB, in a temporary
//!    directory) takes every block in order, in runs of `SYNC_BATCH` blocks as a peer's sync
//!    responses carry them, each run through the driver's own
//!    `cradle_node::driver::catchup::apply_certified`: decode, the transactions' signatures in
//!    two ed25519 batches on two threads, each certificate against the set in force at its
//!    height, the envelope, `block::execute` on the state the run's earlier blocks left, the
//!    driver's `Members` following governance to the next set, and one synced
//!    `Store::commit_blocks` per run.
//!
//!   cradle-catchup-bench [--blocks N] [--block-txs N] [--dir DIR]
//!
//! The default is 40,000 blocks of 10; `--blocks 100000` measures the 100,000 the issue names
//! (the untimed generation takes most of a run's time).
//!
//! The node's store goes under `--dir` (default: `$TMPDIR`), deleted at the end.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cradle_ledger::block::ChainTip;
use cradle_ledger::{Consortium, Keypair};
use cradle_node::driver::catchup::{self, SYNC_BATCH, Timings};
use cradle_node::members::Members;
use cradle_node::storage::Store;
use cradle_tests::stats::dir_bytes;
use serde_json::json;

use cradle_tests::chain_gen::*;

struct Args {
    blocks: u64,
    block_txs: u64,
    dir: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        blocks: 40_000,
        block_txs: 10,
        dir: std::env::temp_dir(),
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--blocks" => args.blocks = v.parse().context("--blocks")?,
            "--block-txs" => args.block_txs = v.parse().context("--block-txs")?,
            "--dir" => args.dir = PathBuf::from(v),
            other => bail!("unknown flag {other}"),
        }
    }
    if !(20..=10_000_000).contains(&args.blocks) {
        bail!("--blocks must be within 20..=10000000 (the governance change sits halfway)");
    }
    // The genesis limit, less the three governance transactions a block may carry besides.
    if !(1..=9_990).contains(&args.block_txs) {
        bail!("--block-txs must be within 1..=9990");
    }
    Ok(args)
}

struct CaughtUp {
    timings: Timings,
    wall: Duration,
    runs: u64,
    set_changes: u32,
    validators: usize,
    store_bytes: u64,
    /// Keys the blocks wrote (state, tree nodes), without the node's own indexes.
    writes: u64,
}

/// The joining node's work, timed: the chain in the runs a peer's sync responses carry, each
/// applied by the driver's own [`catchup::apply_certified`] (decode, certificates against the
/// set in force at each height, signatures, execution, following the sets, one synced write).
fn catch_up(genesis: &Consortium, chain: &Chain, path: &Path) -> anyhow::Result<CaughtUp> {
    let store = Store::open(path)?;
    let members = Members::load(genesis.clone(), &store, 0)?;
    let epoch = members.current().epoch;
    let mut tip = ChainTip::genesis(genesis);
    let mut timings = Timings::default();
    let mut set_changes = 0u32;
    let mut writes = 0u64;
    let mut runs = 0u64;
    let mut reported = 0u64;
    let started = Instant::now();
    for blocks in chain.blocks.chunks(usize::from(SYNC_BATCH)) {
        let run = catchup::apply_certified(&store, &members, tip, blocks)?;
        if let Some(refused) = run.refused {
            bail!("the joining node refused a block of the chain: {refused}");
        }
        let Some(last) = run.applied.last() else {
            bail!("a run of {} blocks applied none", blocks.len());
        };
        tip = ChainTip::of(&last.block.block.header);
        timings += run.timings;
        runs += 1;
        for a in &run.applied {
            writes += a.executed.writes.len() as u64;
            set_changes += u32::from(a.adopted.is_some());
        }
        if tip.height / 10_000 > reported {
            reported = tip.height / 10_000;
            let s = started.elapsed().as_secs_f64();
            eprintln!(
                "  caught up {} blocks in {s:.0} s ({:.0} blocks/s)",
                tip.height,
                tip.height as f64 / s
            );
        }
    }
    let wall = started.elapsed();
    if tip != chain.tip || store.tip()? != Some(chain.tip) {
        bail!("the joining node ended at another tip than the chain's");
    }
    let consortium = members.current();
    if consortium.epoch == epoch {
        bail!("the joining node did not take up the chain's member set change");
    }
    Ok(CaughtUp {
        timings,
        wall,
        runs,
        set_changes,
        validators: consortium.validators().len(),
        store_bytes: dir_bytes(path),
        writes,
    })
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let started = Instant::now();
    let members: Vec<Keypair> = (0..=JOINER as u64).map(|i| seeded(0xc0, i)).collect();
    // Member 0 proposes the new clinic.
    let plan = plan(args.blocks, args.block_txs, &members[0].public_key())?;
    let patients: Vec<u64> = (0..u64::from(plan.patients)).collect();
    let keys = Keys {
        members,
        patients: on_two_cores(&patients, &|p| Ok(seeded(0x5a, *p)))?,
    };
    let genesis = genesis(&keys)?;
    eprintln!(
        "generating {} blocks of {} transactions ({} patients, {} archives; a fifth validator \
         from height {})",
        args.blocks,
        args.block_txs,
        plan.patients,
        plan.archives.len(),
        plan.activation
    );
    let chain = generate(&genesis, &keys, &plan)?;
    drop(keys);
    let generation_s = started.elapsed().as_secs_f64();
    eprintln!(
        "generated {} blocks, {} transactions, {} MB encoded, in {generation_s:.0} s",
        chain.blocks.len(),
        chain.txs,
        chain.bytes / 1_000_000
    );

    let dir = tempfile::Builder::new()
        .prefix("cradle-catchup-")
        .tempdir_in(&args.dir)
        .with_context(|| format!("a temporary directory in {}", args.dir.display()))?;
    eprintln!("catching up into a fresh store in {}", dir.path().display());
    let done = catch_up(&genesis, &chain, &dir.path().join("ledger"))?;
    if done.set_changes != 1 || done.validators != 5 {
        bail!(
            "the joining node took up {} set changes and ends with {} validators; want 1 and 5",
            done.set_changes,
            done.validators
        );
    }

    let wall = done.wall.as_secs_f64();
    let blocks = chain.blocks.len() as f64;
    let signatures = chain.tx_signatures + chain.certificate_signatures;
    let s = &done.timings;
    let part = |d: Duration| round2(d.as_secs_f64());
    let share = |d: Duration| (d.as_secs_f64() / wall * 1000.0).round() / 10.0;
    let result = json!({
        "blocks": chain.blocks.len(),
        "block_txs": args.block_txs,
        "txs": chain.txs,
        "signatures": signatures,
        "tx_signatures": chain.tx_signatures,
        "certificate_signatures": chain.certificate_signatures,
        "set_changes": done.set_changes,
        "catchup_s": round2(wall),
        "blocks_per_s": round2(blocks / wall),
        "txs_per_s": (chain.txs as f64 / wall).round(),
        "signatures_per_s": (signatures as f64 / wall).round(),
        "decode_s": part(s.decode),
        "certificates_s": part(s.certificates),
        "signatures_s": part(s.signatures),
        "execution_s": part(s.execution),
        "storage_s": part(s.storage),
        "runs": done.runs,
        "storage_ms_per_block": round2(s.storage.as_secs_f64() * 1000.0 / blocks),
        "state_writes_per_block": (done.writes as f64 / blocks).round(),
        "generation_s": generation_s.round(),
        "chain_mb": round2(chain.bytes as f64 / 1e6),
        "store_mb": round2(done.store_bytes as f64 / 1e6),
    });
    println!(
        "caught up {} blocks, {} transactions in {:.1} s: {:.0} blocks/s, {} tx/s, {} \
         signatures/s verified; time: decode {:.1} %, transaction signatures {:.1} % (two \
         threads), certificates {:.1} %, execution {:.1} % (envelopes, rules, state tree, following \
         the sets), storage (one synced write per run of {} blocks) {:.1} %; store {} MB; \
         generation {} s",
        chain.blocks.len(),
        chain.txs,
        wall,
        blocks / wall,
        result["txs_per_s"],
        result["signatures_per_s"],
        share(s.decode),
        share(s.signatures),
        share(s.certificates),
        share(s.execution),
        SYNC_BATCH,
        share(s.storage),
        result["store_mb"],
        result["generation_s"],
    );
    println!("{result}");
    Ok(())
}
