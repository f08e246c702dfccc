//! `cradle-fetch-bench`: what a clinician waits for at the bedside. A grantee's clinician
//! fetches one archive from its custodian again and again, each fetch at a random moment (so
//! that fetches do not line up behind blocks), and the program reports, p50 and p99:
//! - time to first byte: from asking for the archive until the custodian's answer begins, which
//!   it sends only once the access record is committed (log-before-release);
//! - time to a verified decrypted file: until the file is written, its ciphertext hash checked
//!   against the ledger, decrypted, and the access proven committed from genesis alone.
//!
//! Every fetch's output must equal `--expect`. The last line is JSON.
//!
//!   cradle-fetch-bench --genesis G --node URL --key KEY --archive ID --expect FILE
//!       [--fetches N] [--gap-ms MAX] [--label L] [--work DIR]

use std::cell::Cell;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use cradle_client::session::{Progress, Session};
use cradle_ledger::ArchiveId;
use cradle_ledger::crypto::sha256;
use cradle_ledger::tx::Purpose;
use cradle_tests::stats::percentile;
use serde_json::json;

struct Args {
    genesis: PathBuf,
    node: String,
    key: PathBuf,
    archive: ArchiveId,
    expect: PathBuf,
    fetches: usize,
    gap_ms: u64,
    label: String,
    work: PathBuf,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut genesis = None;
    let mut node = None;
    let mut key = None;
    let mut archive = None;
    let mut expect = None;
    let mut fetches = 200;
    let mut gap_ms = 400;
    let mut label = "idle".to_string();
    let mut work = std::env::temp_dir();
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--genesis" => genesis = Some(PathBuf::from(v)),
            "--node" => node = Some(v),
            "--key" => key = Some(PathBuf::from(v)),
            "--archive" => {
                archive = Some(ArchiveId::from_hex(&v).context("--archive is 64 hex digits")?)
            }
            "--expect" => expect = Some(PathBuf::from(v)),
            "--fetches" => fetches = v.parse()?,
            "--gap-ms" => gap_ms = v.parse()?,
            "--label" => label = v,
            "--work" => work = PathBuf::from(v),
            other => bail!("unknown flag {other}"),
        }
    }
    ensure!(fetches > 0, "--fetches must be positive");
    Ok(Args {
        genesis: genesis.context("--genesis is required")?,
        node: node.context("--node is required")?,
        key: key.context("--key is required")?,
        archive: archive.context("--archive is required")?,
        expect: expect.context("--expect is required")?,
        fetches,
        gap_ms,
        label,
        work,
    })
}

/// Notes when the download starts: the client calls `start` as soon as the custodian's answer
/// has begun, before reading any of the body.
struct FirstByte(Cell<Option<Instant>>);

impl Progress for FirstByte {
    fn start(&self, _what: &str, _total: u64) {
        if self.0.get().is_none() {
            self.0.set(Some(Instant::now()));
        }
    }
}

/// A small xorshift generator: the gaps only need to be spread, not secret.
struct Gaps(u64);

impl Gaps {
    fn next_ms(&mut self, max: u64) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0 % max.saturating_add(1)
    }
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let genesis = cradle_genesis::GenesisDoc::load(&args.genesis)?;
    let key = cradle_genesis::keyfile::read_key_file(&args.key)?;
    let expected = sha256(&std::fs::read(&args.expect)?);
    let session = Session::connect(&args.node, genesis, key)?;
    let out = args
        .work
        .join(format!("fetch-bench-{}.out", std::process::id()));
    let mut gaps = Gaps(cradle_tests::txs::fresh_nonce() | 1);
    let (mut first_byte_ms, mut file_ms) = (Vec::new(), Vec::new());
    for i in 0..args.fetches {
        std::thread::sleep(Duration::from_millis(gaps.next_ms(args.gap_ms)));
        let first = FirstByte(Cell::new(None));
        let asked = Instant::now();
        let receipt = session
            .get_archive(args.archive, Purpose::Treat, None, &out, &first)
            .with_context(|| format!("fetch {i}"))?;
        let done = Instant::now();
        ensure!(
            receipt.outcome == "permitted",
            "fetch {i}: outcome {}",
            receipt.outcome
        );
        ensure!(
            sha256(&std::fs::read(&out)?) == expected,
            "fetch {i}: the file read back differs from --expect"
        );
        std::fs::remove_file(&out)?;
        let began = first.0.get().context("the download never started")?;
        first_byte_ms.push(began.duration_since(asked).as_secs_f64() * 1000.0);
        file_ms.push(done.duration_since(asked).as_secs_f64() * 1000.0);
    }
    first_byte_ms.sort_by(f64::total_cmp);
    file_ms.sort_by(f64::total_cmp);
    let round1 = |v: f64| (v * 10.0).round() / 10.0;
    let result = json!({
        "label": args.label,
        "fetches": args.fetches,
        "first_byte_p50_ms": round1(percentile(&first_byte_ms, 0.50)),
        "first_byte_p99_ms": round1(percentile(&first_byte_ms, 0.99)),
        "file_p50_ms": round1(percentile(&file_ms, 0.50)),
        "file_p99_ms": round1(percentile(&file_ms, 0.99)),
    });
    eprintln!(
        "{}: {} fetches; first byte p50 {} ms, p99 {} ms; verified file p50 {} ms, p99 {} ms",
        args.label,
        args.fetches,
        result["first_byte_p50_ms"],
        result["first_byte_p99_ms"],
        result["file_p50_ms"],
        result["file_p99_ms"]
    );
    println!("{result}");
    Ok(())
}
