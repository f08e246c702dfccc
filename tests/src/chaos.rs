//! The chaos run's parts: a seeded fault schedule, a steady load of signed transactions whose
//! commit receipts are kept, a height monitor, and the history checker that holds the cluster
//! to what the receipts promised.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail, ensure};
use cradle_client::api::ApiClient;
use cradle_ledger::{Hash, Keypair};
use cradle_node::storage::Store;

use crate::Cluster;
use crate::netns::Netns;

/// A small deterministic generator (SplitMix64): one seed gives one schedule.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Self(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in `0..n` (n > 0).
    pub fn below(&mut self, n: u64) -> u64 {
        self.next_u64() % n.max(1)
    }
}

/// What the schedule did, and when.
#[derive(Clone, Debug)]
pub struct Event {
    pub at: Instant,
    pub what: String,
    /// After the event: which members run, and which links are cut.
    pub up: Vec<bool>,
    pub cut: Vec<(usize, usize)>,
}

impl Event {
    /// More than two thirds of the (equal) voting power up and pairwise connected: some
    /// `need` running members with no cut link between any two of them.
    pub fn quorum(&self, need: usize) -> bool {
        let n = self.up.len();
        (0u32..1 << n).any(|set| {
            let members: Vec<usize> = (0..n).filter(|i| set & (1 << i) != 0).collect();
            members.len() >= need
                && members.iter().all(|&i| self.up[i])
                && members.iter().all(|&a| {
                    members
                        .iter()
                        .all(|&b| a >= b || !self.cut.contains(&(b.min(a), b.max(a))))
                })
        })
    }
}

/// A commit receipt a client got: the transaction is in the chain at `height`, index `index`.
#[derive(Clone, Copy, Debug)]
pub struct Receipt {
    pub hash: Hash,
    pub height: u64,
    pub index: u32,
}

/// Clients submitting signed enrolments, each waiting for its commit receipt, to members in
/// turn, until stopped.
pub struct Load {
    stop: Arc<AtomicBool>,
    threads: Vec<std::thread::JoinHandle<(Vec<Receipt>, u64)>>,
}

impl Load {
    pub fn start(c: &Cluster, clients: usize) -> anyhow::Result<Self> {
        let stop = Arc::new(AtomicBool::new(false));
        let n = c.nodes.len();
        let chain_id = c.chain_id();
        let mut threads = Vec::new();
        for t in 0..clients {
            let apis: Vec<ApiClient> = (0..n).map(|i| c.anonymous(i)).collect();
            let keys: Vec<Keypair> = (0..n).map(|i| c.member_key(i)).collect::<Result<_, _>>()?;
            let stop = stop.clone();
            threads.push(std::thread::spawn(move || {
                let (mut receipts, mut refused) = (Vec::new(), 0u64);
                let mut k = t as u64 * 1_000_000;
                while !stop.load(Ordering::Acquire) {
                    k += 1;
                    let at = (k as usize + t) % apis.len();
                    let tx = crate::txs::enrol(chain_id, &keys[at], &crate::txs::patient(k));
                    match apis[at].submit(&tx, true) {
                        Ok(answer) => match receipt_of(&answer) {
                            Some(r) => receipts.push(r),
                            None => refused += 1,
                        },
                        Err(_) => {
                            refused += 1;
                            std::thread::sleep(Duration::from_millis(100));
                        }
                    }
                }
                (receipts, refused)
            }));
        }
        Ok(Self { stop, threads })
    }

    /// Stops the clients; every receipt they got, and how many submissions got none.
    pub fn stop(self) -> (Vec<Receipt>, u64) {
        self.stop.store(true, Ordering::Release);
        let (mut all, mut refused) = (Vec::new(), 0);
        for t in self.threads {
            if let Ok((r, f)) = t.join() {
                all.extend(r);
                refused += f;
            }
        }
        (all, refused)
    }
}

fn receipt_of(answer: &serde_json::Value) -> Option<Receipt> {
    let hash = hex::decode(answer.get("hash")?.as_str()?).ok()?;
    Some(Receipt {
        hash: hash.try_into().ok()?,
        height: answer.get("height")?.as_u64()?,
        index: u32::try_from(answer.get("index")?.as_u64()?).ok()?,
    })
}

/// Every member's height as its API reports it, sampled by one thread per member.
pub struct Monitor {
    stop: Arc<AtomicBool>,
    pub samples: Arc<Mutex<Vec<(Instant, usize, u64)>>>,
    threads: Vec<std::thread::JoinHandle<()>>,
}

impl Monitor {
    pub fn start(c: &Cluster) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let samples = Arc::new(Mutex::new(Vec::new()));
        let threads = (0..c.nodes.len())
            .map(|i| {
                let (api, stop, samples) = (c.anonymous(i), stop.clone(), samples.clone());
                std::thread::spawn(move || {
                    while !stop.load(Ordering::Acquire) {
                        if let Some(h) = api.status().ok().and_then(|s| s["height"].as_u64()) {
                            let mut all = samples.lock().unwrap_or_else(|p| p.into_inner());
                            all.push((Instant::now(), i, h));
                        }
                        std::thread::sleep(Duration::from_millis(200));
                    }
                })
            })
            .collect();
        Self {
            stop,
            samples,
            threads,
        }
    }

    /// The highest height any member reported so far.
    pub fn max_height(&self) -> u64 {
        let all = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        all.iter().map(|s| s.2).max().unwrap_or(0)
    }

    /// Each member's latest height reported after `since` (0 for none yet).
    pub fn latest_since(&self, since: Instant, members: usize) -> Vec<u64> {
        let all = self.samples.lock().unwrap_or_else(|p| p.into_inner());
        (0..members)
            .map(|i| {
                all.iter()
                    .rev()
                    .take_while(|s| s.0 >= since)
                    .find(|s| s.1 == i)
                    .map_or(0, |s| s.2)
            })
            .collect()
    }

    pub fn stop(self) -> Vec<(Instant, usize, u64)> {
        self.stop.store(true, Ordering::Release);
        for t in self.threads {
            let _ = t.join();
        }
        Arc::try_unwrap(self.samples)
            .map(|m| m.into_inner().unwrap_or_else(|p| p.into_inner()))
            .unwrap_or_default()
    }
}

/// Applies one random fault (or repair) to the cluster: at most one member down at a time.
pub fn step(c: &mut Cluster, net: &mut Netns, rng: &mut Rng) -> anyhow::Result<String> {
    let n = c.nodes.len();
    // A member that stopped by itself is a crash under faults: the run fails on it.
    for i in 0..n {
        if c.nodes[i].child.is_some() && !c.is_running(i) {
            bail!(
                "member {i} exited on its own; the end of its log:\n{}",
                c.log_tail(i, 30)
            );
        }
    }
    let down: Vec<usize> = (0..n).filter(|&i| c.nodes[i].child.is_none()).collect();
    if let Some(&d) = down.first()
        && rng.below(2) == 0
    {
        c.start_node(d)?;
        return Ok(format!("restart {d}"));
    }
    let (a, b) = (rng.below(n as u64) as usize, rng.below(n as u64) as usize);
    Ok(match rng.below(10) {
        0..=2 if down.is_empty() => {
            c.kill(a);
            format!("kill -9 {a}")
        }
        3..=4 if a != b => {
            net.cut(a, b)?;
            format!("cut {a}-{b}")
        }
        5 => {
            for o in (0..n).filter(|&o| o != a) {
                net.cut(a, o)?;
            }
            format!("isolate {a}")
        }
        6 => {
            // Two against two (or the nearest split): no side has a quorum.
            let side: Vec<bool> = (0..n).map(|i| (i + a) % n < n / 2).collect();
            for x in 0..n {
                for y in x + 1..n {
                    if side[x] != side[y] {
                        net.cut(x, y)?;
                    }
                }
            }
            format!("split {side:?}")
        }
        _ => {
            net.heal_all()?;
            "heal all links".to_string()
        }
    })
}

/// Longest time the chain may go without a commit while a quorum is up and connected: a
/// restarted member's catch-up, and rounds whose timeouts grew during a split, fit in it.
pub const PROGRESS_BOUND: Duration = Duration::from_secs(30);

/// Checks that the chain committed at least once every [`PROGRESS_BOUND`] while a quorum was
/// up and connected. Returns the quorum time checked and the longest quiet spell within it.
pub fn check_progress(
    events: &[Event],
    samples: &[(Instant, usize, u64)],
    end: Instant,
    need: usize,
) -> anyhow::Result<(Duration, Duration)> {
    // The moments the highest height seen grew.
    let mut grew = Vec::new();
    let mut best = 0;
    let mut sorted = samples.to_vec();
    sorted.sort_by_key(|s| s.0);
    for (at, _, h) in sorted {
        if h > best {
            best = h;
            grew.push(at);
        }
    }
    let (mut covered, mut longest) = (Duration::ZERO, Duration::ZERO);
    for (k, e) in events.iter().enumerate() {
        let until = events.get(k + 1).map_or(end, |next| next.at);
        if !e.quorum(need) {
            continue;
        }
        // A quorum window may span several events: start it at the first event of the run.
        let start = events[..=k]
            .iter()
            .rev()
            .take_while(|x| x.quorum(need))
            .last()
            .map_or(e.at, |x| x.at);
        covered += until.saturating_duration_since(e.at);
        let mut last = start;
        for &g in grew.iter().filter(|&&g| g > start && g <= until) {
            longest = longest.max(g - last);
            last = g;
        }
        let quiet = until.saturating_duration_since(last);
        longest = longest.max(quiet);
        ensure!(
            quiet <= PROGRESS_BOUND,
            "no commit for {quiet:?} with a quorum up and connected (after {:?}: {})",
            e.at.saturating_duration_since(events[0].at),
            e.what
        );
    }
    Ok((covered, longest))
}

/// What the stores of the stopped members say, checked against each other and the receipts.
pub struct Verdict {
    pub blocks_compared: u64,
    pub receipts_checked: usize,
    pub tips: Vec<u64>,
}

/// Opens every stopped member's store: all agree on every block's hash and state root up to
/// the lowest tip, every receipted transaction is where its receipt said in each, and no
/// member recorded evidence of a double vote.
pub fn check_stores(c: &Cluster, receipts: &[Receipt]) -> anyhow::Result<Verdict> {
    let stores: Vec<Store> = c
        .nodes
        .iter()
        .map(|n| Store::open(&n.home.join("data/ledger")))
        .collect::<Result<_, _>>()
        .context("opening a stopped member's store")?;
    let mut tips = Vec::new();
    for s in &stores {
        tips.push(s.tip()?.map_or(0, |t| t.height));
    }
    let lowest = tips.iter().copied().min().unwrap_or(0);
    for h in 1..=lowest {
        let mut seen: Option<(Hash, [u8; 32])> = None;
        for (i, s) in stores.iter().enumerate() {
            let b = s
                .block(h)?
                .with_context(|| format!("member {i} lacks block {h}"))?;
            let this = (b.block.header.hash(), b.block.header.state_root.0);
            match seen {
                None => seen = Some(this),
                Some(first) if first != this => {
                    bail!("member {i} disagrees at height {h}: block or state root differs")
                }
                Some(_) => {}
            }
        }
    }
    for r in receipts {
        for (i, s) in stores.iter().enumerate() {
            let at = s.tx_location(&r.hash)?;
            ensure!(
                at == Some((r.height, r.index)),
                "member {i} has receipted tx {} at {at:?}, receipt said ({}, {}); tips {tips:?}",
                hex::encode(r.hash),
                r.height,
                r.index
            );
        }
    }
    for (i, s) in stores.iter().enumerate() {
        let page = s.evidence(0, 10)?;
        ensure!(
            page.total == 0,
            "member {i} holds evidence of {} double votes: {:?}",
            page.total,
            page.items
        );
    }
    Ok(Verdict {
        blocks_compared: lowest,
        receipts_checked: receipts.len(),
        tips,
    })
}
