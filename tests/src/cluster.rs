//! A consortium of real node processes on loopback.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use cradle_client::api::ApiClient;
use cradle_ledger::Keypair;
use serde_json::Value;

/// The directory holding the workspace's release binaries: next to the test executable's
/// `deps/` folder.
pub fn bin_dir() -> PathBuf {
    let exe = std::env::current_exe().unwrap_or_default();
    let mut dir = exe.parent().map(Path::to_path_buf).unwrap_or_default();
    if dir.ends_with("deps") {
        dir.pop();
    }
    dir
}

pub fn bin(name: &str) -> anyhow::Result<PathBuf> {
    let path = bin_dir().join(name);
    if !path.exists() {
        bail!(
            "{} is not built: run `cargo build --release --workspace --bins` first",
            path.display()
        );
    }
    Ok(path)
}

/// Ports are handed out per test so that tests running in parallel never collide; the base
/// moves with the process id so two test binaries at once are unlikely to meet either. All stay
/// below 32768, where Linux's ephemeral ports (outgoing connections' local ports) begin, so a
/// node never finds its port taken by some client's connection.
fn next_base_port(members: u16) -> u16 {
    static NEXT: AtomicU16 = AtomicU16::new(0);
    // Each member takes three ports: p2p, API and metrics.
    let offset = NEXT.fetch_add(members * 3 + 2, Ordering::SeqCst);
    20_000 + (std::process::id() % 120) as u16 * 100 + offset
}

/// The genesis file of each node URL the clusters of this process started, so the `cradle`
/// helper can trust the right one (the CLI takes members' keys only from a genesis file).
static GENESIS_OF: std::sync::Mutex<Vec<(String, PathBuf)>> = std::sync::Mutex::new(Vec::new());

/// Remembers that `url` is served for the cluster whose genesis is `path`.
pub fn remember_genesis(url: &str, path: &Path) {
    let mut all = GENESIS_OF.lock().unwrap_or_else(|p| p.into_inner());
    all.retain(|(u, _)| u != url);
    all.push((url.to_string(), path.to_path_buf()));
}

/// The genesis file of the cluster that serves `url`, if this process started one there.
pub fn genesis_for(url: &str) -> Option<PathBuf> {
    let all = GENESIS_OF.lock().unwrap_or_else(|p| p.into_inner());
    all.iter().find(|(u, _)| u == url).map(|(_, p)| p.clone())
}

pub struct Node {
    pub home: PathBuf,
    pub api: String,
    pub child: Option<Child>,
    /// The network namespace the node runs in (see [`crate::netns`]), if not the test's own.
    pub netns: Option<String>,
    /// Runs the node with its clock this many milliseconds off (`cradle-node-skewed`).
    pub clock_offset_ms: Option<i64>,
}

/// Clusters in one test binary run one at a time: four nodes per test already load both cores.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

pub struct Cluster {
    _turn: std::sync::MutexGuard<'static, ()>,
    pub dir: tempfile::TempDir,
    pub nodes: Vec<Node>,
    pub genesis: cradle_genesis::GenesisDoc,
}

impl Cluster {
    /// Writes an `n`-member localnet (deterministic keys, `extra` flags passed on) and starts
    /// every member.
    pub fn start(n: u16, extra: &[&str]) -> anyhow::Result<Self> {
        let cluster = Self::write(n, extra)?;
        let mut cluster = cluster;
        for i in 0..cluster.nodes.len() {
            cluster.start_node(i)?;
        }
        Ok(cluster)
    }

    pub fn write(n: u16, extra: &[&str]) -> anyhow::Result<Self> {
        // A test that panicked while holding the turn poisons nothing worth keeping.
        let turn = ONE_AT_A_TIME.lock().unwrap_or_else(|p| p.into_inner());
        let dir = tempfile::tempdir()?;
        let out = dir.path().join("net");
        let base = next_base_port(n).to_string();
        let members = n.to_string();
        let mut args = vec![
            "localnet",
            "--members",
            &members,
            "--base-port",
            &base,
            "--deterministic",
        ];
        args.extend_from_slice(extra);
        let out_s = out.to_string_lossy().to_string();
        args.extend_from_slice(&["--out", &out_s]);
        let status = Command::new(bin("cradle-genesis")?)
            .args(&args)
            .stdout(Stdio::null())
            .status()
            .context("running cradle-genesis")?;
        if !status.success() {
            bail!("cradle-genesis localnet failed");
        }
        let genesis = cradle_genesis::GenesisDoc::load(out.join("genesis.json"))?;
        // A deterministic localnet's chain id repeats when its ports do (another test binary,
        // an earlier run): member sets a client kept for that other chain must not be taken
        // for this one's.
        if let Some(dir) = cradle_client::trust::default_state_dir() {
            let chain = hex::encode(genesis.chain_id());
            let _ = std::fs::remove_file(dir.join(format!("sets-{chain}.json")));
        }
        let mut nodes = Vec::new();
        for i in 0..n {
            let home = out.join(format!("node{i}"));
            let config = cradle_genesis::config::NodeConfig::load(home.join("config.toml"))?;
            nodes.push(Node {
                home,
                api: format!("https://{}", config.api.listen),
                child: None,
                netns: None,
                clock_offset_ms: None,
            });
        }
        for node in &nodes {
            remember_genesis(&node.api, &out.join("genesis.json"));
        }
        Ok(Self {
            _turn: turn,
            dir,
            nodes,
            genesis,
        })
    }

    pub fn start_node(&mut self, i: usize) -> anyhow::Result<()> {
        let node = &mut self.nodes[i];
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(node.home.join("node.log"))?;
        let (node_bin, run) = match node.clock_offset_ms {
            Some(ms) => (bin("cradle-node-skewed")?, ms.to_string()),
            None => (bin("cradle-node")?, "run".to_string()),
        };
        let mut command = match &node.netns {
            // `ip netns exec` execs the node in place: the child's pid is the node's.
            Some(ns) => {
                let mut c = Command::new("ip");
                c.args(["netns", "exec", ns]).arg(node_bin);
                c
            }
            None => Command::new(node_bin),
        };
        let child = command
            .args([run.as_str(), "--home"])
            .arg(&node.home)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .context("starting cradle-node")?;
        node.child = Some(child);
        Ok(())
    }

    /// `kill -9`: no chance to flush or say goodbye.
    pub fn kill(&mut self, i: usize) {
        if let Some(mut child) = self.nodes[i].child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// SIGTERM, as systemd stops a service; waits up to `wait` for the exit and returns its
    /// status (`None` if it was not running or did not exit in time, then killed).
    pub fn terminate(&mut self, i: usize, wait: Duration) -> Option<std::process::ExitStatus> {
        let mut child = self.nodes[i].child.take()?;
        let _ = Command::new("kill")
            .args(["-TERM", &child.id().to_string()])
            .status();
        let until = std::time::Instant::now() + wait;
        while std::time::Instant::now() < until {
            if let Ok(Some(status)) = child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = child.kill();
        let _ = child.wait();
        None
    }

    /// The process id of member `i`'s node, if it runs.
    pub fn pid(&self, i: usize) -> Option<u32> {
        self.nodes[i].child.as_ref().map(Child::id)
    }

    pub fn is_running(&mut self, i: usize) -> bool {
        match self.nodes[i].child.as_mut() {
            Some(c) => matches!(c.try_wait(), Ok(None)),
            None => false,
        }
    }

    /// An HTTPS client for member `i`, pinned from the cluster's genesis, signing as member `i`.
    pub fn client(&self, i: usize) -> ApiClient {
        let key = self.member_key(i).expect("the member's key file");
        self.anonymous(i).signed_by(&key, self.genesis.chain_id())
    }

    /// Member `i`'s Prometheus metrics, from its operator-only metrics address.
    pub fn metrics(&self, i: usize) -> anyhow::Result<String> {
        let config =
            cradle_genesis::config::NodeConfig::load(self.nodes[i].home.join("config.toml"))?;
        let addr = config
            .api
            .metrics_listen
            .context("the localnet gives every member a metrics address")?;
        let bytes = ApiClient::plaintext(&format!("http://{addr}")).get_bytes("/metrics")?;
        Ok(String::from_utf8(bytes)?)
    }

    /// Member `i`'s height from its operator metrics: readable whatever key its API proves
    /// (a member that joined after genesis, or whose key a vote rotated).
    pub fn metric_height(&self, i: usize) -> Option<u64> {
        let text = self.metrics(i).ok()?;
        text.lines()
            .find_map(|l| l.strip_prefix("cradle_height "))
            .and_then(|v| v.trim().parse().ok())
    }

    /// An HTTPS client for member `i` that signs nothing.
    pub fn anonymous(&self, i: usize) -> ApiClient {
        ApiClient::new(&self.nodes[i].api, &self.genesis).expect("an https:// URL")
    }

    pub fn status(&self, i: usize) -> anyhow::Result<Value> {
        Ok(self.client(i).status()?)
    }

    pub fn height(&self, i: usize) -> Option<u64> {
        self.status(i)
            .ok()
            .and_then(|s| s.get("height").and_then(Value::as_u64))
    }

    /// Waits until node `i` reaches `height`, failing after `timeout`.
    pub fn wait_height(&self, i: usize, height: u64, timeout: Duration) -> anyhow::Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let h = self.height(i);
            if h.is_some_and(|h| h >= height) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!(
                    "node {i} at height {h:?}, wanted {height} within {timeout:?}; log:\n{}",
                    self.log_tail(i, 30)
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn member_key(&self, i: usize) -> anyhow::Result<Keypair> {
        Ok(cradle_genesis::keyfile::read_key_file(
            self.nodes[i].home.join("node.key"),
        )?)
    }

    pub fn chain_id(&self) -> [u8; 32] {
        self.genesis.chain_id()
    }

    pub fn log(&self, i: usize) -> String {
        std::fs::read_to_string(self.nodes[i].home.join("node.log")).unwrap_or_default()
    }

    pub fn log_tail(&self, i: usize, lines: usize) -> String {
        let log = self.log(i);
        let all: Vec<&str> = log.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Block hash and state root of node `i` at `height`.
    pub fn block_at(&self, i: usize, height: u64) -> anyhow::Result<(String, String)> {
        let b = self.client(i).block(height)?;
        let hash = b
            .get("hash")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let root = b
            .get("state_root")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        Ok((hash, root))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        for i in 0..self.nodes.len() {
            self.kill(i);
        }
    }
}
