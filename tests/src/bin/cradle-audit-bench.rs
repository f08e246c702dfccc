//! `cradle-audit-bench`: how fast a member's node answers "who has seen this patient's records?"
//! with a completeness proof, once its ledger holds a million access records, and how long the
//! client takes to check the answer from genesis alone. The last line on stdout is JSON.
//!
//! 1. `cradle-genesis localnet --members 1 --deterministic` writes one validator's home.
//! 2. Before the node starts, blocks are written straight into its store, each one built and
//!    applied by the ledger's own rules and finalised by the validator's precommit, exactly as
//!    the consensus driver would commit it: one clinician's registration, the patients'
//!    enrolments, one archive per patient in the member's custody, then `--records` access
//!    records, each embedding the accessor's signed request. Accessors are the custodian's
//!    clinician (60 %, the archive key re-wrapped for her in each record), the patient (30 %) or
//!    a key the rule denies (10 %). One "probe" patient has
//!    about 200 events spread over the whole run, a few "quiet" patients have 5 each, the rest
//!    share the remainder at random (about 50 each by default). Block times are spread over the
//!    months between genesis and now, so histories span a pregnancy rather than minutes.
//! 3. `cradle-node run` resumes from that tip (a lone validator keeps committing empty blocks),
//!    and `--queries` sequential `GET /v1/audit/patient/{key}` over loopback are timed: 80 % for
//!    the probe, 10 % for quiet patients, 10 % for typical ones. Every answer is decoded and
//!    checked with `audit::verify_answer` (certificate, state proof, log root), timed apart, and
//!    must hold exactly the events written for that patient.
//!
//!   cradle-audit-bench --dir DIR [--patients N] [--records N] [--block-txs N] [--queries N]
//!                      [--warmup N] [--base-port P]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cradle_client::api::ApiClient;
use cradle_consensus::{CommitCertificate, Vote, VoteKind};
use cradle_genesis::Home;
use cradle_genesis::clock::now_ms;
use cradle_ledger::access::{AccessOutcome, AccessRequest, DenialReason, SignedAccessRequest};
use cradle_ledger::api_request::AUTH_HEADER;
use cradle_ledger::audit::{AuditAnswer, verify_answer};
use cradle_ledger::block::{self, ChainTip, Executed, FinalizedBlock};
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::crypto::{self, TAG_ACCESS_REQUEST};
use cradle_ledger::staff::{Department, RegisterStaff, StaffKeys, StaffRole};
use cradle_ledger::tx::*;
use cradle_ledger::{ArchiveId, Consortium, Keypair, keywrap};
use cradle_node::storage::Store;
use cradle_tests::cluster::bin;
use cradle_tests::stats::dir_bytes;
use serde_json::{Value, json};

/// Events of the probe patient, the one most queries ask about.
const PROBE_EVENTS: u64 = 200;
/// Patients with only a handful of events each.
const QUIET_PATIENTS: u64 = 16;
const QUIET_EVENTS: u64 = 5;
/// Clinicians outside the consortium whose requests the rule denies.
const HOUR_MS: u64 = 3600 * 1000;

struct Args {
    dir: PathBuf,
    patients: u64,
    records: u64,
    block_txs: u64,
    queries: u64,
    warmup: u64,
    base_port: u16,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        dir: PathBuf::new(),
        patients: 20_000,
        records: 1_000_000,
        block_txs: 2_000,
        queries: 2_000,
        warmup: 20,
        base_port: 41_800,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--dir" => args.dir = PathBuf::from(v),
            "--patients" => args.patients = v.parse()?,
            "--records" => args.records = v.parse()?,
            "--block-txs" => args.block_txs = v.parse()?,
            "--queries" => args.queries = v.parse()?,
            "--warmup" => args.warmup = v.parse()?,
            "--base-port" => args.base_port = v.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if args.dir.as_os_str().is_empty() {
        bail!("--dir is required (a fresh directory for the node's home)");
    }
    if args.patients < 100 || args.records < 10_000 || args.queries == 0 {
        bail!("--patients must be at least 100, --records at least 10000, --queries positive");
    }
    if !(1..=10_000).contains(&args.block_txs) {
        bail!("--block-txs must be within 1..=10000 (the genesis limit)");
    }
    Ok(args)
}

/// A fixed pseudo-random stream (SplitMix64), so every run writes the same history.
fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn seeded(tag: u8, i: u64) -> Keypair {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(&seed)
}

/// Patient `p`'s archive key.
fn archive_key(p: u64) -> [u8; 32] {
    crypto::sha256_parts(&[b"archive key".as_slice(), &archive_of(p).0])
}

fn archive_of(p: u64) -> ArchiveId {
    ArchiveId(crypto::sha256_parts(&[
        b"audit-bench".as_slice(),
        &p.to_le_bytes(),
    ]))
}

/// Who each access record is about and who asked. Patient 0 is the probe, 1..=QUIET_PATIENTS
/// are quiet, the rest are typical.
struct Plan {
    patients: u64,
    records: u64,
}

enum Accessor {
    Custodian,
    Patient,
    Outsider(u64),
}

impl Plan {
    fn patient_of(&self, i: u64) -> u64 {
        let probe_every = self.records / PROBE_EVENTS;
        let quiet_every = self.records / (QUIET_PATIENTS * QUIET_EVENTS);
        if i % probe_every == probe_every / 2 && i / probe_every < PROBE_EVENTS {
            0
        } else if i % quiet_every == quiet_every / 4
            && i / quiet_every < QUIET_PATIENTS * QUIET_EVENTS
        {
            1 + (i / quiet_every) % QUIET_PATIENTS
        } else {
            1 + QUIET_PATIENTS + mix(i) % (self.patients - 1 - QUIET_PATIENTS)
        }
    }

    fn accessor_of(&self, i: u64) -> Accessor {
        match mix(i ^ 0xacce55) % 10 {
            0..=5 => Accessor::Custodian,
            6..=8 => Accessor::Patient,
            // Denied: a member's own key (the regulator, the one member besides the custodian
            // here): records are read by people; only a clinician, a member or the archive's
            // patient has an access recorded.
            _ => Accessor::Outsider(0),
        }
    }
}

/// Everything a signer thread needs; the member signs every transaction, nonces in plan order.
struct Signer<'a> {
    chain: crypto::Hash,
    member: &'a Keypair,
    /// The custodian's obstetrician, who reads for it.
    clinician: &'a Keypair,
    /// Each patient's archive key wrapped for the clinician.
    clinician_keys: &'a [WrappedKey],
    patients: &'a [Keypair],
    outsiders: &'a [Keypair],
    plan: &'a Plan,
}

impl Signer<'_> {
    fn sign(&self, nonce: u64, body: TxBody) -> SignedTransaction {
        Transaction {
            chain_id: self.chain,
            signer: self.member.public_key(),
            nonce,
            body,
        }
        .sign(self.member)
    }

    /// The member registers its clinician, before any other transaction (nonce 0).
    fn register_clinician(&self) -> SignedTransaction {
        self.sign(
            0,
            TxBody::RegisterStaff(RegisterStaff {
                institution: self.member.public_key(),
                keys: StaffKeys::prove(self.clinician, &self.chain),
                role: StaffRole::Obstetrician,
                department: Department::Obstetrics,
            }),
        )
    }

    fn enrol(&self, p: u64) -> SignedTransaction {
        let pk = &self.patients[p as usize];
        let body = EnrolPatient::prove(pk, &self.chain);
        self.sign(1 + p, TxBody::EnrolPatient(body))
    }

    fn register(&self, p: u64) -> anyhow::Result<SignedTransaction> {
        let pk = &self.patients[p as usize];
        let archive = archive_of(p);
        let key = archive_key(p);
        let body = RegisterArchive {
            archive,
            custodian: self.member.public_key(),
            patient: pk.public_key(),
            ciphertext_sha256: crypto::sha256(&key),
            size_bytes: 600_000,
            category: Category::PrenatalVisit,
            key_for_patient: keywrap::wrap_key(&key, &archive, &pk.x25519_public())?,
            key_for_custodian: keywrap::wrap_key(&key, &archive, &self.member.x25519_public())?,
            grant_keys: BoundedVec::empty(),
        };
        Ok(self.sign(1 + self.plan.patients + p, TxBody::RegisterArchive(body)))
    }

    fn access(&self, i: u64, time_ms: u64) -> SignedTransaction {
        let p = self.plan.patient_of(i);
        let (accessor, purpose, outcome) = match self.plan.accessor_of(i) {
            Accessor::Custodian => (
                self.clinician,
                Purpose::Treat,
                AccessOutcome::Permitted {
                    key_for_accessor: Some(self.clinician_keys[p as usize]),
                },
            ),
            Accessor::Patient => (
                &self.patients[p as usize],
                Purpose::PatientRequest,
                AccessOutcome::Permitted {
                    key_for_accessor: None,
                },
            ),
            Accessor::Outsider(k) => (
                &self.outsiders[k as usize],
                Purpose::Treat,
                AccessOutcome::Denied {
                    reason: DenialReason::InstitutionKey,
                },
            ),
        };
        let mut request_id = [0u8; 16];
        request_id[..8].copy_from_slice(&i.to_le_bytes());
        let request = AccessRequest {
            accessor: accessor.public_key(),
            archive: archive_of(p),
            purpose,
            justification: None,
            requested_at_ms: time_ms,
            request_id,
        };
        let signature = accessor.sign(TAG_ACCESS_REQUEST, &self.chain, &request);
        let body = RecordAccess {
            request: SignedAccessRequest { request, signature },
            grant: None,
            outcome,
        };
        self.sign(1 + 2 * self.plan.patients + i, TxBody::RecordAccess(body))
    }
}

/// `f` over `range` on both cores, results in order.
fn on_two_cores<T: Send>(
    range: std::ops::Range<u64>,
    f: &(impl Fn(u64) -> anyhow::Result<T> + Sync),
) -> anyhow::Result<Vec<T>> {
    let mid = range.start + (range.end - range.start) / 2;
    std::thread::scope(|s| {
        let upper = s.spawn(|| (mid..range.end).map(f).collect::<anyhow::Result<Vec<T>>>());
        let mut out = (range.start..mid)
            .map(f)
            .collect::<anyhow::Result<Vec<T>>>()?;
        let upper = upper
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))?;
        out.extend(upper);
        Ok(out)
    })
}

/// Appends finalised blocks to the store as the consensus driver would: built and applied by the
/// ledger's rules, certified by the lone validator's precommit, committed in one synced batch.
struct Writer<'a> {
    store: &'a Store,
    consortium: &'a Consortium,
    member: &'a Keypair,
    validator: u16,
    tip: ChainTip,
    interval_ms: u64,
}

impl Writer<'_> {
    fn next_time_ms(&self) -> u64 {
        self.consortium.genesis_time_ms + (self.tip.height + 1) * self.interval_ms
    }

    fn commit(&mut self, txs: Vec<SignedTransaction>) -> anyhow::Result<Executed> {
        let n = txs.len();
        let built = block::build_block(
            self.store,
            self.consortium,
            &self.tip,
            self.next_time_ms(),
            self.member.public_key(),
            txs,
        )?;
        if let Some((hash, e)) = built.rejected.first() {
            bail!(
                "block {}: {} of {n} transactions refused, first {}: {e}",
                self.tip.height + 1,
                built.rejected.len(),
                hex::encode(hash)
            );
        }
        let header = &built.block.header;
        let value = header.value_id();
        let vote = Vote {
            kind: VoteKind::Precommit,
            height: header.height,
            round: 0,
            value: Some(value),
            validator: self.validator,
        }
        .sign(&self.consortium.chain_id, self.member.signing_key());
        let certificate = CommitCertificate::from_precommits(header.height, 0, value, &[vote]);
        let tip = ChainTip::of(header);
        let fb = FinalizedBlock {
            block: built.block,
            certificate,
        };
        fb.verify_certificate(self.consortium)?;
        self.store.commit_block(&fb, &built.executed)?;
        self.tip = tip;
        Ok(built.executed)
    }
}

/// Writes the whole history into the store at `path`; returns the tip and each patient's count
/// of events.
fn generate(
    path: &Path,
    consortium: &Consortium,
    member: &Keypair,
    denied: Keypair,
    args: &Args,
) -> anyhow::Result<(ChainTip, Vec<u64>)> {
    let store = Store::open(path)?;
    if store.tip()?.is_some() {
        bail!("the store at {} is not empty", path.display());
    }
    let plan = Plan {
        patients: args.patients,
        records: args.records,
    };
    let patients: Vec<Keypair> = (0..args.patients).map(|p| seeded(0x5a, p)).collect();
    let outsiders: Vec<Keypair> = vec![denied];
    let mut counts = vec![0u64; args.patients as usize];
    for i in 0..args.records {
        counts[plan.patient_of(i) as usize] += 1;
    }
    let per = args.block_txs;
    let blocks = 1 + 2 * args.patients.div_ceil(per) + args.records.div_ceil(per);
    let clinician = seeded(0xc1, 0);
    let clinician_keys = on_two_cores(0..args.patients, &|p| {
        Ok(keywrap::wrap_key(
            &archive_key(p),
            &archive_of(p),
            &clinician.x25519_public(),
        )?)
    })?;
    // Spread the blocks over the time since genesis, at most 12 hours apart, ending an hour ago.
    let span = now_ms()
        .saturating_sub(consortium.genesis_time_ms)
        .saturating_sub(HOUR_MS);
    let interval_ms = (span / (blocks + 1)).min(12 * HOUR_MS);
    if interval_ms == 0 {
        bail!("genesis time is too recent to place {blocks} blocks before now");
    }
    let validator = consortium
        .validators()
        .index_of(&member.public_key().0)
        .context("the member is not a validator")?;
    let mut w = Writer {
        store: &store,
        consortium,
        member,
        validator,
        tip: ChainTip::genesis(consortium),
        interval_ms,
    };
    let s = Signer {
        chain: consortium.chain_id,
        member,
        clinician: &clinician,
        clinician_keys: &clinician_keys,
        patients: &patients,
        outsiders: &outsiders,
        plan: &plan,
    };
    eprintln!(
        "generating: {} patients, {} access records, {per} per block, {blocks} blocks {} min apart",
        args.patients,
        args.records,
        interval_ms / 60_000
    );
    w.commit(vec![s.register_clinician()])?;
    for start in (0..args.patients).step_by(per as usize) {
        let end = (start + per).min(args.patients);
        w.commit(on_two_cores(start..end, &|p| Ok(s.enrol(p)))?)?;
    }
    for start in (0..args.patients).step_by(per as usize) {
        let end = (start + per).min(args.patients);
        w.commit(on_two_cores(start..end, &|p| s.register(p))?)?;
    }
    // Signing the next block (both cores) overlaps applying this one.
    let started = Instant::now();
    let first_height = w.tip.height + 1;
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (tx, rx) = mpsc::sync_channel::<Vec<SignedTransaction>>(2);
        let s = &s;
        scope.spawn(move || {
            for (b, start) in (0..args.records).step_by(per as usize).enumerate() {
                let end = (start + per).min(args.records);
                let time_ms = consortium.genesis_time_ms + (first_height + b as u64) * interval_ms;
                let Ok(txs) = on_two_cores(start..end, &|i| Ok(s.access(i, time_ms))) else {
                    return;
                };
                if tx.send(txs).is_err() {
                    return;
                }
            }
        });
        let mut done = 0u64;
        for txs in rx {
            done += txs.len() as u64;
            w.commit(txs)?;
            if w.tip.height.is_multiple_of(50) || done == args.records {
                let s = started.elapsed().as_secs_f64();
                eprintln!(
                    "  {done} access records in {s:.0} s ({:.0}/s), height {}",
                    done as f64 / s,
                    w.tip.height
                );
            }
        }
        if done != args.records {
            bail!(
                "the signer stopped after {done} of {} records",
                args.records
            );
        }
        Ok(())
    })?;
    Ok((w.tip, counts))
}

/// The node process, killed when dropped.
struct Node {
    child: Child,
    log: PathBuf,
}

impl Node {
    fn start(home: &Path) -> anyhow::Result<Self> {
        let log = home.join("node.log");
        let out = std::fs::File::create(&log)?;
        let child = Command::new(bin("cradle-node")?)
            .args(["run", "--home"])
            .arg(home)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(out)
            .spawn()
            .context("starting cradle-node")?;
        std::fs::write(home.join("node.pid"), child.id().to_string())?;
        Ok(Self { child, log })
    }

    fn log_tail(&self) -> String {
        let log = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = log.lines().collect();
        lines[lines.len().saturating_sub(20)..].join("\n")
    }

    /// Waits until the node serves a height of at least `height`; fails if it exits first.
    fn wait_height(&mut self, api: &ApiClient, height: u64) -> anyhow::Result<Value> {
        let deadline = Instant::now() + Duration::from_secs(120);
        while Instant::now() < deadline {
            if let Some(status) = self.child.try_wait()? {
                bail!("cradle-node exited ({status}); log:\n{}", self.log_tail());
            }
            if let Ok(s) = api.status()
                && s["height"].as_u64().is_some_and(|h| h >= height)
            {
                return Ok(s);
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        bail!(
            "cradle-node did not reach height {height} in 120 s; log:\n{}",
            self.log_tail()
        )
    }

    fn rss_mb(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id()));
        status
            .ok()
            .and_then(|s| {
                let line = s.lines().find(|l| l.starts_with("VmRSS:"))?.to_owned();
                line.split_whitespace().nth(1)?.parse::<f64>().ok()
            })
            .map_or(0.0, |kb| kb / 1024.0)
    }
}

impl Drop for Node {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn percentile(sorted: &[f64], q: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    sorted[((sorted.len() as f64 - 1.0) * q).round() as usize]
}

fn ms(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let net = args.dir.join("net");
    let status = Command::new(bin("cradle-genesis")?)
        .args([
            "localnet",
            "--members",
            "1",
            "--deterministic",
            "--base-port",
        ])
        .arg(args.base_port.to_string())
        .arg("--out")
        .arg(&net)
        .stdout(Stdio::null())
        .status()
        .context("running cradle-genesis")?;
    if !status.success() {
        bail!("cradle-genesis localnet failed");
    }
    let home_dir = net.join("node0");
    let home = Home::open(&home_dir)?;
    let consortium = home.consortium()?;
    let ledger = home.data_dir().join("ledger");

    let started = Instant::now();
    let regulator = cradle_genesis::keyfile::read_key_file(
        net.join(cradle_genesis::localnet::REGULATOR_DIR)
            .join("regulator.key"),
    )?;
    let (tip, counts) = generate(&ledger, &consortium, &home.keypair, regulator, &args)?;
    let generation_s = started.elapsed().as_secs_f64();
    let store_mb = dir_bytes(&ledger) as f64 / 1e6;
    eprintln!(
        "generated {} blocks in {generation_s:.0} s; store {store_mb:.0} MB",
        tip.height
    );

    let mut node = Node::start(&home_dir)?;
    let api = ApiClient::new(
        &format!("https://{}", home.config.api.listen),
        &home.genesis,
    )?;
    // One block past the written tip: the node resumed from the store and extends its chain.
    let first = node.wait_height(&api, tip.height + 1)?;
    eprintln!(
        "cradle-node resumed at height {} and is committing on top: height {}",
        tip.height, first["height"]
    );

    let patients: Vec<Keypair> = (0..args.patients).map(|p| seeded(0x5a, p)).collect();
    let typical = args.patients - 1 - QUIET_PATIENTS;
    let mut all = Vec::new();
    let mut probe = Vec::new();
    let mut verify = Vec::new();
    let (mut probe_bytes, mut probe_events, mut events_total) = (0usize, 0usize, 0u64);
    for q in 0..args.warmup + args.queries {
        let p = match q % 10 {
            0..=7 => 0,
            8 => 1 + (q / 10) % QUIET_PATIENTS,
            _ => 1 + QUIET_PATIENTS + mix(q) % typical,
        };
        let path = format!(
            "/v1/audit/patient/{}",
            hex::encode(patients[p as usize].public_key().0)
        );
        // The patient asks for her own history, as the node requires.
        let auth = api.auth_with(
            &patients[p as usize],
            &consortium.chain_id,
            "GET",
            &path,
            crypto::sha256(b""),
        )?;
        let t = Instant::now();
        let bytes = api.get_bytes_signed(&path, AUTH_HEADER, &auth)?;
        let latency = t.elapsed().as_secs_f64() * 1000.0;
        let answer = AuditAnswer::decode(&bytes)?;
        let t = Instant::now();
        let verified = verify_answer(&consortium, &answer)
            .map_err(|e| anyhow::anyhow!("answer for patient {p} refused: {e}"))?;
        let verify_ms = t.elapsed().as_secs_f64() * 1000.0;
        if verified.events.len() as u64 != counts[p as usize] {
            bail!(
                "patient {p}: the verified answer holds {} events, {} were written",
                verified.events.len(),
                counts[p as usize]
            );
        }
        if q < args.warmup {
            continue;
        }
        all.push(latency);
        verify.push(verify_ms);
        events_total += verified.events.len() as u64;
        if p == 0 {
            probe.push(latency);
            probe_bytes = bytes.len();
            probe_events = verified.events.len();
        }
    }
    let height = api.status()?["height"].as_u64().unwrap_or(0);
    let rss_mb = node.rss_mb();
    drop(node);

    for v in [&mut all, &mut probe, &mut verify] {
        v.sort_by(f64::total_cmp);
    }
    let result = json!({
        "patients": args.patients,
        "records": args.records,
        "blocks_written": tip.height,
        "generation_s": generation_s.round(),
        "store_mb": store_mb.round(),
        "queries": args.queries,
        "latency_p50_ms": ms(percentile(&all, 0.50)),
        "latency_p99_ms": ms(percentile(&all, 0.99)),
        "latency_max_ms": ms(percentile(&all, 1.0)),
        "probe_latency_p50_ms": ms(percentile(&probe, 0.50)),
        "probe_latency_p99_ms": ms(percentile(&probe, 0.99)),
        "probe_events": probe_events,
        "probe_answer_bytes": probe_bytes,
        "events_per_answer_mean": ms(events_total as f64 / args.queries as f64),
        "verify_p50_ms": ms(percentile(&verify, 0.50)),
        "verify_p99_ms": ms(percentile(&verify, 0.99)),
        "node_height_after": height,
        "node_rss_mb": rss_mb.round(),
    });
    println!(
        "{} records, {} patients: {} audit queries, latency p50 {} ms p99 {} ms max {} ms; probe \
         answer {} events {} bytes; verify p50 {} ms p99 {} ms; store {} MB, generated in {} s",
        args.records,
        args.patients,
        args.queries,
        result["latency_p50_ms"],
        result["latency_p99_ms"],
        result["latency_max_ms"],
        probe_events,
        probe_bytes,
        result["verify_p50_ms"],
        result["verify_p99_ms"],
        result["store_mb"],
        result["generation_s"],
    );
    println!("{result}");
    Ok(())
}
