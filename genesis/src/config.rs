//! The node's own parameters (`config.toml`), separate from genesis and from its key.
//!
//! ```toml
//! member = "County Hospital 1"
//! data_dir = "data"        # relative to the home directory
//! log = "info"
//!
//! [p2p]
//! listen = "/ip4/127.0.0.1/tcp/26600"
//!
//! [api]
//! listen = "127.0.0.1:8600"
//!
//! [mempool]
//! txs_max = 10000
//! bytes_max = 67108864
//! access_txs_max = 4096          # reserved for access records
//! access_bytes_max = 16777216
//! ```
//! Unknown keys are rejected, so a misspelt setting fails loudly instead of being ignored.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::addr::{P2pAddr, parse_api_addr};
use crate::error::GenesisError;
use crate::fsutil;

/// Largest config file read, in bytes.
pub const CONFIG_FILE_BYTES_MAX: u64 = 1024 * 1024;
/// Most transactions a mempool may be configured to hold.
pub const MEMPOOL_TXS_MAX: usize = 1_000_000;
/// Most bytes a mempool may be configured to hold.
pub const MEMPOOL_BYTES_MAX: u64 = 1024 * 1024 * 1024;

const LOG_LEVELS: [&str; 6] = ["off", "error", "warn", "info", "debug", "trace"];

/// Where the node listens for its peers.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct P2pConfig {
    /// libp2p multiaddr to listen on.
    pub listen: String,
}

/// Where the node serves its HTTP API.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApiConfig {
    /// `IP:PORT` to listen on.
    pub listen: String,
    /// Most client connections open at once; further ones are closed on accept.
    #[serde(default = "default_connections_max")]
    pub connections_max: usize,
    /// Most client connections open at once from one IP address.
    #[serde(default = "default_connections_per_ip_max")]
    pub connections_per_ip_max: usize,
    /// How long a client has to send a request's headers, and how long an idle connection is
    /// kept between requests, in milliseconds.
    #[serde(default = "default_header_read_timeout_ms")]
    pub header_read_timeout_ms: u64,
    /// How long a request in flight may make no progress (its handler working, its body
    /// read, its answer taken by the client) before its connection is closed, in milliseconds.
    #[serde(default = "default_answer_stall_ms")]
    pub answer_stall_ms: u64,
    /// Serve plain HTTP instead of TLS. Only for a node behind the operator's own TLS
    /// terminator on a private network: nothing a client reads from it is authenticated, and
    /// signed requests sent to it can be read on the way. Never set in a localnet.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub plaintext: bool,
    /// `IP:PORT` of the operator's metrics endpoint (`GET /metrics`, plain HTTP), kept off the
    /// API's address; keep it on loopback or a management network. None: no metrics served.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metrics_listen: Option<String>,
    /// A certificate the operator provides (a PEM chain, e.g. from the hospital's or a public
    /// certificate authority), served only to clients that ask by SNI for one of
    /// `tls_server_names`: browsers opening the portal, which cannot pin from genesis. Every
    /// other client gets the member certificate, which Cradle's client pins from genesis.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_cert_file: Option<std::path::PathBuf>,
    /// The operator certificate's private key (PEM; keep it mode 0600).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls_key_file: Option<std::path::PathBuf>,
    /// The DNS names the operator certificate is served for; never the name in genesis's
    /// `api_addr`, which must keep the member certificate.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tls_server_names: Vec<String>,
    /// Mutual TLS for members: every client must present a certificate over a key that signs
    /// for a member in the set in force (genesis's, then as votes add, remove and rotate; `cradle`
    /// presents one when its `--key` is a member's), for a node whose API serves
    /// member institutions only. Patients and regulators then use another member's node.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub member_tls: bool,
    /// Requests per IP address and per key ([`crate::ratecfg`]).
    #[serde(default)]
    pub rate: crate::ratecfg::RateConfig,
    /// Archive uploads and downloads served at once; beyond it a new one gets 503 `busy` with
    /// `Retry-After` before anything is read or recorded.
    #[serde(default = "default_transfers_max")]
    pub transfers_max: usize,
    /// Of those, at most this many for one signer.
    #[serde(default = "default_transfers_per_key_max")]
    pub transfers_per_key_max: usize,
}

impl ApiConfig {
    /// Listening on `listen`, with the default connection limits.
    pub fn new(listen: impl Into<String>) -> Self {
        Self {
            listen: listen.into(),
            connections_max: default_connections_max(),
            connections_per_ip_max: default_connections_per_ip_max(),
            header_read_timeout_ms: default_header_read_timeout_ms(),
            answer_stall_ms: default_answer_stall_ms(),
            plaintext: false,
            metrics_listen: None,
            tls_cert_file: None,
            tls_key_file: None,
            tls_server_names: Vec::new(),
            member_tls: false,
            rate: crate::ratecfg::RateConfig::default(),
            transfers_max: default_transfers_max(),
            transfers_per_key_max: default_transfers_per_key_max(),
        }
    }
}

/// Archive uploads and downloads served at once, by default.
fn default_transfers_max() -> usize {
    64
}

/// Archive transfers one signer may have under way at once, by default.
fn default_transfers_per_key_max() -> usize {
    4
}

/// Defaults well under a common 1,024 open-file limit, leaving room for RocksDB and peers.
fn default_connections_max() -> usize {
    512
}
fn default_connections_per_ip_max() -> usize {
    64
}
fn default_header_read_timeout_ms() -> u64 {
    10_000
}
/// Above the longest a handler waits (30 s for a commit).
fn default_answer_stall_ms() -> u64 {
    60_000
}

/// Bounds of the API's connection limits, for `validate`.
pub const API_CONNECTIONS_MAX: usize = 65_536;
pub const API_HEADER_READ_TIMEOUT_MS_MAX: u64 = 300_000;

/// Bounds on pending transactions.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MempoolConfig {
    /// The ordinary lane: every transaction but access records.
    pub txs_max: usize,
    pub bytes_max: u64,
    /// The lane reserved for access records, which clinicians wait on.
    #[serde(default = "default_access_txs_max")]
    pub access_txs_max: usize,
    #[serde(default = "default_access_bytes_max")]
    pub access_bytes_max: u64,
}

fn default_access_txs_max() -> usize {
    4_096
}

fn default_access_bytes_max() -> u64 {
    16 * 1024 * 1024
}

impl Default for MempoolConfig {
    fn default() -> Self {
        Self {
            txs_max: 10_000,
            bytes_max: 64 * 1024 * 1024,
            access_txs_max: default_access_txs_max(),
            access_bytes_max: default_access_bytes_max(),
        }
    }
}

/// The custodian's encrypted archive store.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ArchivesConfig {
    /// Largest single archive (ciphertext bytes) the node accepts.
    pub archive_bytes_max: u64,
    /// Most bytes the store holds in all; uploads beyond it are refused.
    pub store_bytes_max: u64,
    /// How far a signed request's time may be from the node's clock, in milliseconds.
    pub request_skew_ms: u64,
    /// Free space the data disk must keep: an upload that would leave less on the archive
    /// store's file system is refused (507), and while the ledger's has less the node takes no
    /// new transactions (507) but goes on writing the chain's blocks into the reserve.
    #[serde(default = "default_disk_reserve_bytes")]
    pub disk_reserve_bytes: u64,
    /// Keep the ciphertexts in S3-compatible object storage instead of `data/archives`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub s3: Option<S3Config>,
}

/// An S3-compatible bucket for the archive store (Ceph RGW, MinIO, a cloud bucket).
/// Credentials come from the environment (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`) or from
/// `credentials_file` (TOML with `access_key_id` and `secret_access_key`, mode 0600); they are
/// never in `config.toml` and never logged.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct S3Config {
    /// `https://host:port` (or `http://` for a server on this machine).
    pub endpoint: String,
    pub bucket: String,
    #[serde(default = "default_s3_region")]
    pub region: String,
    /// Key prefix inside the bucket, for several nodes sharing one.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub prefix: String,
    /// Relative to the home directory.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credentials_file: Option<PathBuf>,
}

fn default_s3_region() -> String {
    "us-east-1".into()
}

fn default_disk_reserve_bytes() -> u64 {
    1024 * 1024 * 1024
}

impl Default for ArchivesConfig {
    fn default() -> Self {
        Self {
            archive_bytes_max: 4 * 1024 * 1024 * 1024,
            store_bytes_max: 256 * 1024 * 1024 * 1024,
            request_skew_ms: 60_000,
            disk_reserve_bytes: default_disk_reserve_bytes(),
            s3: None,
        }
    }
}

/// The node daemon's parameters.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NodeConfig {
    /// Name of the genesis member this node runs as; must match the node key's genesis entry.
    /// For a joining member, the name the governance proposal gives it.
    pub member: String,
    /// The member is not in genesis: it joins by a governance vote. The node follows the chain
    /// from genesis and takes part once the ledger admits its key (`cradle-genesis join`
    /// writes such a home).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub joining: bool,
    /// Storage directory; a relative path is relative to the home directory.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// A level (`info`) or comma-separated `target=level` directives (`info,cradle_node=debug`).
    #[serde(default = "default_log")]
    pub log: String,
    /// `text` (the default) or `json`: one JSON object per line, for a log pipeline.
    #[serde(default)]
    pub log_format: LogFormat,
    /// How long a SIGTERM waits for in-flight API transfers and the current commit before the
    /// node stops anyway, in milliseconds.
    #[serde(default = "default_shutdown_grace_ms")]
    pub shutdown_grace_ms: u64,
    pub p2p: P2pConfig,
    pub api: ApiConfig,
    #[serde(default)]
    pub mempool: MempoolConfig,
    #[serde(default)]
    pub archives: ArchivesConfig,
}

fn default_data_dir() -> PathBuf {
    PathBuf::from(crate::home::DATA_DIR)
}

fn default_log() -> String {
    "info".into()
}

fn default_shutdown_grace_ms() -> u64 {
    30_000
}

/// Longest shutdown grace accepted.
pub const SHUTDOWN_GRACE_MS_MAX: u64 = 600_000;

/// How the node writes its log lines.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    #[default]
    Text,
    Json,
}

impl Default for NodeConfig {
    fn default() -> Self {
        Self {
            member: String::new(),
            joining: false,
            data_dir: default_data_dir(),
            log: default_log(),
            log_format: LogFormat::Text,
            shutdown_grace_ms: default_shutdown_grace_ms(),
            p2p: P2pConfig {
                listen: "/ip4/127.0.0.1/tcp/26600".into(),
            },
            api: ApiConfig::new("127.0.0.1:8600"),
            mempool: MempoolConfig::default(),
            archives: ArchivesConfig::default(),
        }
    }
}

fn bad(field: &'static str, reason: impl Into<String>) -> GenesisError {
    GenesisError::BadConfig {
        field,
        reason: reason.into(),
    }
}

impl NodeConfig {
    /// Checks every field; the first problem is returned.
    pub fn validate(&self) -> Result<(), GenesisError> {
        if self.member.trim().is_empty() {
            return Err(bad("member", "empty"));
        }
        P2pAddr::parse(&self.p2p.listen).map_err(|r| bad("p2p.listen", r))?;
        parse_api_addr(&self.api.listen).map_err(|r| bad("api.listen", r))?;
        let api = &self.api;
        let operator_cert = (
            api.tls_cert_file.is_some(),
            api.tls_key_file.is_some(),
            !api.tls_server_names.is_empty(),
        );
        if !matches!(operator_cert, (false, false, false) | (true, true, true)) {
            return Err(bad(
                "api.tls_cert_file",
                "an operator certificate needs tls_cert_file, tls_key_file and \
                 tls_server_names together",
            ));
        }
        if api.plaintext && operator_cert.0 {
            return Err(bad(
                "api.plaintext",
                "plain HTTP and an operator certificate exclude each other",
            ));
        }
        if !(1..=API_CONNECTIONS_MAX).contains(&api.connections_max) {
            return Err(bad(
                "api.connections_max",
                format!(
                    "{} is outside 1..={API_CONNECTIONS_MAX}",
                    api.connections_max
                ),
            ));
        }
        if !(1_000..=API_HEADER_READ_TIMEOUT_MS_MAX).contains(&api.answer_stall_ms) {
            return Err(bad(
                "api.answer_stall_ms",
                format!(
                    "{} is outside 1000..={API_HEADER_READ_TIMEOUT_MS_MAX}",
                    api.answer_stall_ms
                ),
            ));
        }
        if let Some((field, reason)) = api.rate.problem() {
            return Err(bad(field, reason));
        }
        if !(1..=api.connections_max).contains(&api.transfers_max) {
            return Err(bad(
                "api.transfers_max",
                format!(
                    "{} is outside 1..=api.connections_max ({})",
                    api.transfers_max, api.connections_max
                ),
            ));
        }
        if !(1..=api.transfers_max).contains(&api.transfers_per_key_max) {
            return Err(bad(
                "api.transfers_per_key_max",
                format!(
                    "{} is outside 1..=api.transfers_max ({})",
                    api.transfers_per_key_max, api.transfers_max
                ),
            ));
        }
        if !(1..=api.connections_max).contains(&api.connections_per_ip_max) {
            return Err(bad(
                "api.connections_per_ip_max",
                format!(
                    "{} is outside 1..=api.connections_max ({})",
                    api.connections_per_ip_max, api.connections_max
                ),
            ));
        }
        if !(100..=API_HEADER_READ_TIMEOUT_MS_MAX).contains(&api.header_read_timeout_ms) {
            return Err(bad(
                "api.header_read_timeout_ms",
                format!(
                    "{} is outside 100..={API_HEADER_READ_TIMEOUT_MS_MAX}",
                    api.header_read_timeout_ms
                ),
            ));
        }
        if self.data_dir.as_os_str().is_empty() {
            return Err(bad("data_dir", "empty"));
        }
        if let Some(s3) = &self.archives.s3 {
            if !(s3.endpoint.starts_with("https://") || s3.endpoint.starts_with("http://")) {
                return Err(bad("archives.s3.endpoint", "not an http(s):// URL"));
            }
            if s3.bucket.trim().is_empty() {
                return Err(bad("archives.s3.bucket", "empty"));
            }
        }
        if !(1_000..=SHUTDOWN_GRACE_MS_MAX).contains(&self.shutdown_grace_ms) {
            return Err(bad(
                "shutdown_grace_ms",
                format!(
                    "{} is outside 1000..={SHUTDOWN_GRACE_MS_MAX}",
                    self.shutdown_grace_ms
                ),
            ));
        }
        if !valid_log_filter(&self.log) {
            return Err(bad(
                "log",
                format!(
                    "{:?} is not a level ({}) or target=level list",
                    self.log,
                    LOG_LEVELS.join(", ")
                ),
            ));
        }
        let m = &self.mempool;
        for (key, txs) in [
            ("mempool.txs_max", m.txs_max),
            ("mempool.access_txs_max", m.access_txs_max),
        ] {
            if !(1..=MEMPOOL_TXS_MAX).contains(&txs) {
                return Err(bad(key, format!("{txs} is outside 1..={MEMPOOL_TXS_MAX}")));
            }
        }
        for (key, bytes) in [
            ("mempool.bytes_max", m.bytes_max),
            ("mempool.access_bytes_max", m.access_bytes_max),
        ] {
            if !(1024..=MEMPOOL_BYTES_MAX).contains(&bytes) {
                return Err(bad(
                    key,
                    format!("{bytes} is outside 1024..={MEMPOOL_BYTES_MAX}"),
                ));
            }
        }
        let a = &self.archives;
        if a.archive_bytes_max == 0 || a.archive_bytes_max > a.store_bytes_max {
            return Err(bad(
                "archives.archive_bytes_max",
                format!(
                    "{} must be above 0 and at most archives.store_bytes_max ({})",
                    a.archive_bytes_max, a.store_bytes_max
                ),
            ));
        }
        if !(1_000..=3_600_000).contains(&a.request_skew_ms) {
            return Err(bad(
                "archives.request_skew_ms",
                format!("{} is outside 1000..=3600000", a.request_skew_ms),
            ));
        }
        Ok(())
    }

    /// The metrics listen address, parsed, if there is one.
    pub fn metrics_listen(&self) -> Result<Option<std::net::SocketAddr>, GenesisError> {
        self.api
            .metrics_listen
            .as_deref()
            .map(|a| parse_api_addr(a).map_err(|r| bad("api.metrics_listen", r)))
            .transpose()
    }

    /// The API listen address, parsed (valid after [`NodeConfig::validate`]).
    pub fn api_listen(&self) -> Result<std::net::SocketAddr, GenesisError> {
        parse_api_addr(&self.api.listen).map_err(|r| bad("api.listen", r))
    }

    /// The data directory, resolved against `home`.
    pub fn data_dir_in(&self, home: &Path) -> PathBuf {
        home.join(&self.data_dir)
    }

    /// Reads, parses and validates `path`.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, GenesisError> {
        let path = path.as_ref();
        let text = fsutil::read_bounded_string(path, CONFIG_FILE_BYTES_MAX)?;
        Self::parse(&text, path)
    }

    /// Parses and validates the text of a config file read from `path` (named in errors): what
    /// [`NodeConfig::load`] does after the read.
    pub fn parse(text: &str, path: &Path) -> Result<Self, GenesisError> {
        let config: Self = toml::from_str(text).map_err(|e| GenesisError::Toml {
            path: path.into(),
            reason: e.message().to_string(),
        })?;
        config.validate()?;
        Ok(config)
    }

    /// The config as TOML text.
    pub fn to_toml(&self) -> Result<String, GenesisError> {
        toml::to_string(self).map_err(|e| bad("(all)", e.to_string()))
    }

    /// Writes the config atomically, mode 0644.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<(), GenesisError> {
        fsutil::write_replace(path.as_ref(), self.to_toml()?.as_bytes(), 0o644)
    }
}

/// A level, or comma-separated directives each a level or `target=level`.
fn valid_log_filter(s: &str) -> bool {
    !s.trim().is_empty()
        && s.split(',').all(|d| {
            let d = d.trim();
            let level = match d.split_once('=') {
                Some((target, level)) => {
                    let target_ok = !target.is_empty()
                        && target
                            .bytes()
                            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b':');
                    if !target_ok {
                        return false;
                    }
                    level
                }
                None => d,
            };
            LOG_LEVELS.contains(&level.to_ascii_lowercase().as_str())
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn valid() -> NodeConfig {
        NodeConfig {
            member: "County Hospital 1".into(),
            ..NodeConfig::default()
        }
    }

    #[test]
    fn config_round_trips_through_toml() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        let c = valid();
        c.save(&p).unwrap();
        assert_eq!(NodeConfig::load(&p).unwrap(), c);
    }

    #[test]
    fn defaults_fill_optional_fields() {
        let c: NodeConfig = toml::from_str(
            "member = \"A\"\n[p2p]\nlisten = \"/ip4/127.0.0.1/tcp/1\"\n[api]\nlisten = \"127.0.0.1:2\"\n",
        )
        .unwrap();
        assert_eq!(c.data_dir, PathBuf::from("data"));
        assert_eq!(c.log, "info");
        assert_eq!(c.mempool, MempoolConfig::default());
        c.validate().unwrap();
    }

    #[test]
    fn unknown_keys_are_rejected() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("config.toml");
        let text = valid().to_toml().unwrap() + "\nmempol_size = 3\n";
        std::fs::write(&p, text).unwrap();
        assert!(matches!(
            NodeConfig::load(&p),
            Err(GenesisError::Toml { .. })
        ));
    }

    #[test]
    fn each_bad_field_is_named() {
        type Breaker = fn(&mut NodeConfig);
        let cases: [(&str, Breaker); 8] = [
            ("member", |c| c.member = " ".into()),
            ("p2p.listen", |c| c.p2p.listen = "127.0.0.1:1".into()),
            ("api.listen", |c| c.api.listen = "/ip4/1.2.3.4/tcp/1".into()),
            ("log", |c| c.log = "loud".into()),
            ("mempool.txs_max", |c| c.mempool.txs_max = 0),
            ("mempool.bytes_max", |c| c.mempool.bytes_max = 1),
            ("mempool.access_txs_max", |c| c.mempool.access_txs_max = 0),
            ("api.rate.per_key", |c| c.api.rate.per_key = 0),
        ];
        for (field, breaker) in cases {
            let mut c = valid();
            breaker(&mut c);
            match c.validate() {
                Err(GenesisError::BadConfig { field: f, .. }) => assert_eq!(f, field),
                other => panic!("{field}: want BadConfig, got {other:?}"),
            }
        }
    }

    #[test]
    fn log_filters() {
        for ok in [
            "info",
            "WARN",
            "info,cradle_node=debug",
            "cradle_node::p2p=trace",
        ] {
            assert!(valid_log_filter(ok), "{ok}");
        }
        for bad in ["", "loud", "info,", "=debug", "a b=info"] {
            assert!(!valid_log_filter(bad), "{bad}");
        }
    }
}
