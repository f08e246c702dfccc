//! `cradle-bench`: drives a running localnet with a realistic mix of signed transactions at a
//! set rate for a set time, and reports committed transactions per second, commit latency
//! percentiles and the largest node's resident memory. The last line is JSON.
//!
//! The mix, after an untimed setup that enrols patients and registers one archive each:
//! 40 % access records (a custodian logging a patient's read of her own archive), 30 % new
//! enrolments, 20 % archive registrations, 10 % consent grants; about 300 bytes on average.
//! Every member submits its own transactions to its own node, as a hospital would.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cradle_client::api::ApiClient;
use cradle_genesis::clock::now_ms;
use cradle_ledger::access::{AccessOutcome, AccessRequest, SignedAccessRequest};
use cradle_ledger::codec::{self, BoundedVec};
use cradle_ledger::crypto::{self, TAG_ACCESS_REQUEST};
use cradle_ledger::tx::*;
use cradle_ledger::{ArchiveId, Hash, Keypair, PublicKey, X25519Public};
use cradle_tests::stats::percentile;
use cradle_tests::txs::{fresh_nonce, patient};
use serde_json::{Value, json};

struct Args {
    localnet: PathBuf,
    rate: u64,
    duration_s: u64,
    patients: u64,
}

fn parse_args() -> anyhow::Result<Args> {
    let mut args = Args {
        localnet: PathBuf::from("localnet"),
        rate: 2000,
        duration_s: 60,
        patients: 2000,
    };
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let v = it.next().with_context(|| format!("{a} needs a value"))?;
        match a.as_str() {
            "--localnet" => args.localnet = PathBuf::from(v),
            "--rate" => args.rate = v.parse()?,
            "--duration" => args.duration_s = v.parse()?,
            "--patients" => args.patients = v.parse()?,
            other => bail!("unknown flag {other}"),
        }
    }
    if args.rate == 0 || args.duration_s == 0 || args.patients < 16 {
        bail!("--rate and --duration must be positive and --patients at least 16");
    }
    Ok(args)
}

/// The load only needs keys of the right shape; the archive work wraps real ones.
fn wrapped(tag: u8) -> WrappedKey {
    WrappedKey {
        ephemeral: X25519Public([tag; 32]),
        sealed: [tag; 48],
    }
}

struct Member {
    key: Arc<Keypair>,
    api: String,
    pid: Option<u32>,
}

fn load_members(dir: &Path) -> anyhow::Result<Vec<Member>> {
    let mut out = Vec::new();
    for i in 0.. {
        let home = dir.join(format!("node{i}"));
        if !home.exists() {
            break;
        }
        let config = cradle_genesis::config::NodeConfig::load(home.join("config.toml"))?;
        let key = cradle_genesis::keyfile::read_key_file(home.join("node.key"))?;
        let pid = std::fs::read_to_string(home.join("node.pid"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        out.push(Member {
            key: Arc::new(key),
            api: format!("https://{}", config.api.listen),
            pid,
        });
    }
    if out.is_empty() {
        bail!("no node homes under {}", dir.display());
    }
    Ok(out)
}

/// A transaction of the timed load: signed already (a patient's), or a member's, signed when
/// it is sent.
enum Pending {
    Signed(Vec<u8>),
    Member(Box<TxBody>),
}

fn sign(chain: Hash, key: &Keypair, body: TxBody) -> Vec<u8> {
    Transaction {
        chain_id: chain,
        signer: key.public_key(),
        nonce: fresh_nonce(),
        body,
    }
    .sign(key)
    .encode()
}

fn archive_of(run: u64, p: u64) -> ArchiveId {
    ArchiveId(crypto::sha256(
        &[run.to_le_bytes(), p.to_le_bytes()].concat(),
    ))
}

/// Posts one batch: per transaction, `None` if the node took it, else why not (all of them
/// when the batch was refused whole, 503 or 429 while the node is backlogged).
fn post_batch(api: &ApiClient, chunk: &[Vec<u8>]) -> anyhow::Result<Vec<Option<String>>> {
    let batch = TxBatch::new(chunk.to_vec())?;
    let answer = match api.post_bytes("/v1/txs/batch", &codec::encode(&batch)) {
        Ok(answer) => answer,
        Err(cradle_client::api::ApiError::Refused {
            status: status @ (503 | 429),
            reason,
            ..
        }) => {
            say_batch_refused(status, &reason);
            return Ok(vec![Some(reason); chunk.len()]);
        }
        Err(e) => return Err(e.into()),
    };
    let results = answer["results"].as_array().cloned().unwrap_or_default();
    Ok((0..chunk.len())
        .map(|i| match results.get(i) {
            Some(r) if r.get("hash").is_some() => None,
            Some(r) => Some(r["error"].as_str().unwrap_or("refused").to_string()),
            None => Some("no answer".into()),
        })
        .collect())
}

/// Submits in batches; returns how many the node refused.
fn submit_all(api: &ApiClient, txs: &[Vec<u8>]) -> anyhow::Result<usize> {
    let mut errors = 0;
    for chunk in txs.chunks(1024) {
        errors += post_batch(api, chunk)?.iter().flatten().count();
    }
    Ok(errors)
}

/// The untimed setup, each member's transactions to its own node, in rounds below the nodes'
/// backlog bound, each round committed before the next; what a node refuses for the moment
/// (busy after the previous load) is sent again a little later.
fn submit_setup(apis: &[ApiClient], per_member: &[Vec<Vec<u8>>]) -> anyhow::Result<()> {
    const ROUND: usize = 800;
    let per = ROUND / per_member.len().max(1);
    let rounds = per_member
        .iter()
        .map(|t| t.len().div_ceil(per))
        .max()
        .unwrap_or(0);
    for r in 0..rounds {
        for (api, txs) in apis.iter().zip(per_member) {
            let mut chunk: Vec<Vec<u8>> = txs
                .get(r * per..((r + 1) * per).min(txs.len()))
                .unwrap_or(&[])
                .to_vec();
            for attempt in 0.. {
                let answers = post_batch(api, &chunk)?;
                let refused: Vec<(Vec<u8>, String)> = chunk
                    .into_iter()
                    .zip(answers)
                    .filter_map(|(tx, a)| a.map(|why| (tx, why)))
                    .collect();
                let Some((_, why)) = refused.first() else {
                    break;
                };
                if attempt == 40 {
                    bail!(
                        "setup: the node still refuses {} transactions: {why}",
                        refused.len()
                    );
                }
                std::thread::sleep(Duration::from_millis(250));
                chunk = refused.into_iter().map(|(tx, _)| tx).collect();
            }
        }
        wait_drained(apis, Duration::from_secs(120))?;
    }
    Ok(())
}

/// The first whole-batch refusal of the run, on stderr, so a run that loses batches says why.
fn say_batch_refused(status: u16, reason: &str) {
    static SAID: std::sync::Once = std::sync::Once::new();
    SAID.call_once(|| eprintln!("a batch was refused whole (HTTP {status}): {reason}"));
}

fn wait_drained(apis: &[ApiClient], timeout: Duration) -> anyhow::Result<()> {
    let deadline = Instant::now() + timeout;
    while Instant::now() < deadline {
        let mut pending = 0;
        for api in apis {
            pending += api.status()?["mempool_txs"].as_u64().unwrap_or(0);
        }
        if pending == 0 {
            return Ok(());
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    bail!("setup transactions not committed within {timeout:?}")
}

fn rss_mb(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    let kb: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb / 1024.0)
}

fn main() -> anyhow::Result<()> {
    let args = parse_args()?;
    let genesis = cradle_genesis::GenesisDoc::load(args.localnet.join("genesis.json"))?;
    let chain = genesis.chain_id();
    let members = load_members(&args.localnet)?;
    let n = members.len() as u64;
    let apis: Vec<ApiClient> = members
        .iter()
        .map(|m| ApiClient::new(&m.api, &genesis))
        .collect::<Result<_, _>>()?;
    let run = fresh_nonce();
    let mine = |p: u64| p % n; // patient p's custodian

    // Setup (untimed): patients enrolled and one archive each, by their custodian.
    eprintln!("setup: {} patients with one archive each", args.patients);
    let pkeys: Vec<Keypair> = (0..args.patients).map(|p| patient(run + p)).collect();
    let mut setup: Vec<Vec<Vec<u8>>> = vec![Vec::new(); members.len()];
    for (i, m) in members.iter().enumerate() {
        let txs: Vec<Vec<u8>> = (0..args.patients)
            .filter(|&p| mine(p) == i as u64)
            .map(|p| {
                let pk = &pkeys[p as usize];
                let body = EnrolPatient::prove(pk, &chain);
                sign(chain, &m.key, TxBody::EnrolPatient(body))
            })
            .collect();
        setup[i] = txs;
    }
    submit_setup(&apis, &setup)?;
    let register = |custodian: PublicKey, p: u64, archive: ArchiveId, category: Category| {
        TxBody::RegisterArchive(RegisterArchive {
            archive,
            custodian,
            patient: pkeys[p as usize].public_key(),
            ciphertext_sha256: archive.0,
            size_bytes: 600_000,
            category,
            key_for_patient: wrapped(1),
            key_for_custodian: wrapped(2),
            grant_keys: BoundedVec::empty(),
        })
    };
    for (i, m) in members.iter().enumerate() {
        let txs: Vec<Vec<u8>> = (0..args.patients)
            .filter(|&p| mine(p) == i as u64)
            .map(|p| {
                let body = register(
                    m.key.public_key(),
                    p,
                    archive_of(run, p),
                    Category::PrenatalVisit,
                );
                sign(chain, &m.key, body)
            })
            .collect();
        setup[i] = txs;
    }
    submit_setup(&apis, &setup)?;

    // The timed load, built in advance. Patients sign theirs (grants, and the access requests
    // inside access records) now; a member's transactions are signed just before they are sent:
    // its node's custodian signs access records with the same key and a nonce of the moment,
    // which would make anything signed earlier and sent later stale. Patients below `granted`
    // receive grants; new archives go to the others, so no registration has to wrap keys for
    // grants.
    let total = args.rate * args.duration_s;
    let granted = args.patients / 2;
    eprintln!("preparing {total} transactions");
    let mut per_member: Vec<Vec<Pending>> = (0..members.len()).map(|_| Vec::new()).collect();
    for k in 0..total {
        let m = (k % n) as usize;
        let round = k / 10;
        // A patient of this custodian, from the upper (ungranted) or lower half.
        let own = |upper: bool| {
            let half = args.patients / 2;
            let slot = (round % (half / n).max(1)) * n + m as u64;
            if upper {
                (half + slot).min(args.patients - 1)
            } else {
                slot.min(half - 1)
            }
        };
        let tx = match k % 10 {
            0..=3 => {
                let p = own(k % 2 == 0);
                let pk = &pkeys[p as usize];
                let mut request_id = [0u8; 16];
                request_id[..8].copy_from_slice(&k.to_le_bytes());
                request_id[8..].copy_from_slice(&run.to_le_bytes());
                let request = AccessRequest {
                    accessor: pk.public_key(),
                    archive: archive_of(run, p),
                    purpose: Purpose::PatientRequest,
                    justification: None,
                    requested_at_ms: now_ms(),
                    request_id,
                };
                let signature = pk.sign(TAG_ACCESS_REQUEST, &chain, &request);
                Pending::Member(Box::new(TxBody::RecordAccess(RecordAccess {
                    request: SignedAccessRequest { request, signature },
                    grant: None,
                    outcome: AccessOutcome::Permitted {
                        key_for_accessor: None,
                    },
                })))
            }
            4..=6 => {
                let pk = patient(run + 1_000_000_000 + k);
                Pending::Member(Box::new(TxBody::EnrolPatient(EnrolPatient::prove(
                    &pk, &chain,
                ))))
            }
            7 | 8 => Pending::Member(Box::new(register(
                members[m].key.public_key(),
                own(true),
                archive_of(run + 1, k),
                Category::Ultrasound,
            ))),
            _ => {
                let p = (round % granted.max(1)).min(args.patients - 1);
                let pk = &pkeys[p as usize];
                let archive = archive_of(run, p);
                let body = GrantConsent {
                    grantee: members[(p as usize + 1) % members.len()].key.public_key(),
                    scope: Scope::Archives(BoundedVec::new(vec![archive])?),
                    purposes: BoundedVec::new(vec![Purpose::Treat])?,
                    roles: BoundedVec::empty(),
                    valid_from_ms: now_ms(),
                    expires_at_ms: now_ms() + 30 * 24 * 3600 * 1000,
                    archive_keys: BoundedVec::new(vec![ArchiveKey {
                        archive,
                        key: wrapped(3),
                    }])?,
                };
                // The patient's own client would send it to her hospital's node.
                Pending::Signed(sign(chain, pk, TxBody::GrantConsent(body)))
            }
        };
        per_member[m].push(tx);
    }

    // Submitters: each member's node gets its share in ten slices a second.
    let submitted: Arc<Mutex<HashMap<Hash, Instant>>> = Arc::new(Mutex::new(HashMap::new()));
    let refused = Arc::new(Mutex::new(0usize));
    let bytes_sent = Arc::new(AtomicUsize::new(0));
    let start = Instant::now() + Duration::from_millis(500);
    // Scripts that measure something else under this load wait for this line.
    eprintln!(
        "load: submitting {} tx/s for {} s",
        args.rate, args.duration_s
    );
    let slices = args.duration_s * 10;
    let mut handles = Vec::new();
    for (m, txs) in per_member.into_iter().enumerate() {
        let api = ApiClient::new(&members[m].api, &genesis)?;
        let key = members[m].key.clone();
        let submitted = submitted.clone();
        let refused = refused.clone();
        let bytes_sent = bytes_sent.clone();
        handles.push(std::thread::spawn(move || {
            let per_slice = txs.len().div_ceil(slices as usize);
            for (s, chunk) in txs.chunks(per_slice.max(1)).enumerate() {
                let at = start + Duration::from_millis(100 * s as u64);
                if let Some(wait) = at.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
                let chunk: Vec<Vec<u8>> = chunk
                    .iter()
                    .map(|p| match p {
                        Pending::Signed(bytes) => bytes.clone(),
                        Pending::Member(body) => sign(chain, &key, (**body).clone()),
                    })
                    .collect();
                let chunk = &chunk[..];
                bytes_sent.fetch_add(chunk.iter().map(Vec::len).sum(), Ordering::Relaxed);
                let sent = Instant::now();
                {
                    let mut map = submitted.lock().unwrap_or_else(|p| p.into_inner());
                    for tx in chunk {
                        map.insert(crypto::sha256(tx), sent);
                    }
                }
                match submit_all(&api, chunk) {
                    Ok(e) => *refused.lock().unwrap_or_else(|p| p.into_inner()) += e,
                    Err(e) => eprintln!("member {m}: submission failed: {e}"),
                }
            }
        }));
    }

    // Watcher: node 0's committed blocks, for throughput and latency; and every node's RSS.
    // Blocks are answered only to members: the watcher reads as member 0.
    let observer = ApiClient::new(&members[0].api, &genesis)?.signed_by(&members[0].key, chain);
    let first_height = observer.status()?["height"].as_u64().unwrap_or(0);
    let end = start + Duration::from_secs(args.duration_s);
    let drain_until = end + Duration::from_secs(20);
    let mut latencies = Vec::new();
    let mut committed_in_window = 0u64;
    // The longest stretch of the window in which no new transaction of the load committed.
    let mut last_commit_seen = start;
    let mut gap_max = Duration::ZERO;
    let mut next = first_height + 1;
    let mut rss_max: f64 = 0.0;
    // Bounded: the watcher stops at the drain deadline whatever happens.
    while Instant::now() < drain_until {
        for m in &members {
            if let Some(pid) = m.pid {
                rss_max = rss_max.max(rss_mb(pid).unwrap_or(0.0));
            }
        }
        let height = observer.status()?["height"].as_u64().unwrap_or(0);
        while next <= height {
            let block: Value = observer.block(next)?;
            let seen = Instant::now();
            let map = submitted.lock().unwrap_or_else(|p| p.into_inner());
            let before = latencies.len();
            for h in block["txs"].as_array().into_iter().flatten() {
                let mut hash = [0u8; 32];
                if hex::decode_to_slice(h.as_str().unwrap_or(""), &mut hash).is_ok()
                    && let Some(sent) = map.get(&hash)
                {
                    latencies.push(seen.duration_since(*sent).as_secs_f64() * 1000.0);
                    if seen <= end {
                        committed_in_window += 1;
                    }
                }
            }
            if latencies.len() > before && seen <= end {
                gap_max = gap_max.max(seen.saturating_duration_since(last_commit_seen));
                last_commit_seen = seen;
            }
            next += 1;
        }
        if Instant::now() > end && latencies.len() as u64 >= total {
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    for h in handles {
        let _ = h.join();
    }
    gap_max = gap_max.max(end.saturating_duration_since(last_commit_seen));
    latencies.sort_by(f64::total_cmp);
    eprintln!(
        "average transaction: {} bytes",
        bytes_sent.load(Ordering::Relaxed) as u64 / total
    );
    let window = args.duration_s as f64;
    let refused = *refused.lock().unwrap_or_else(|p| p.into_inner());
    let result = json!({
        "offered_tx_per_s": args.rate,
        "duration_s": args.duration_s,
        "members": n,
        "submitted": total,
        "refused": refused,
        "committed": latencies.len(),
        "committed_tx_per_s": (committed_in_window as f64 / window).round(),
        "latency_p50_ms": percentile(&latencies, 0.50).round(),
        "latency_p99_ms": percentile(&latencies, 0.99).round(),
        "rss_mb_max": rss_max.round(),
        "commit_gap_max_ms": gap_max.as_millis() as u64,
    });
    println!(
        "committed {} of {} transactions; {} tx/s in the {} s window; latency p50 {} ms, p99 {} ms; largest node RSS {} MB",
        latencies.len(),
        total,
        result["committed_tx_per_s"],
        args.duration_s,
        result["latency_p50_ms"],
        result["latency_p99_ms"],
        result["rss_mb_max"]
    );
    println!("{result}");
    Ok(())
}
