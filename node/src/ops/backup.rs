//! Backups while the node runs, and restores onto a fresh machine.
//!
//! `cradle-node backup --home DIR --out OUT` writes into OUT (which must not exist):
//! - `ledger/`: a RocksDB checkpoint of the whole store, consistent at one committed block.
//!   While the node runs, the node makes it (`POST /admin/checkpoint` on its operator address,
//!   written inside its own data directory and then moved), since only the running process may
//!   open its database; when it is stopped, the command opens the store itself.
//! - `archives/objects/`: every ciphertext the node holds, each checked against its SHA-256
//!   name as it is copied (a damaged object stops the backup: it names it).
//! - `staff-directory.json`, `config.toml`, `genesis.json` and `node.key` (the member's secret
//!   key: a backup must be kept like the key itself; every file is mode 0600, every directory
//!   0700).
//! - `MANIFEST.json`: the chain, the member, the height and block hash of the checkpoint, and
//!   every archive object with its size.
//!
//! `cradle-node restore --from OUT --home DIR` puts them into a home whose ledger is absent,
//! checking every archive object against the manifest and the restored store's tip against the
//! manifest's. The restored node resumes from that block and catches up from its peers.

use std::fs;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use cradle_genesis::Home;
use cradle_ledger::block::ChainTip;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use crate::http::{HttpError, HttpResult, HttpState};
use crate::storage::{StorageError, Store};

/// Where the running node writes checkpoints, inside its data directory.
pub const STAGING_DIR: &str = "backup-staging";
/// The manifest's file name and format.
pub const MANIFEST_FILE: &str = "MANIFEST.json";
pub const MANIFEST_FORMAT: u32 = 1;

#[derive(Debug, thiserror::Error)]
pub enum BackupError {
    #[error("{what} {path}: {source}")]
    Io {
        what: &'static str,
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the ledger: {0}")]
    Storage(#[from] StorageError),
    #[error("{0}")]
    Refused(String),
}

fn io<'p>(what: &'static str, path: &'p Path) -> impl FnOnce(std::io::Error) -> BackupError + 'p {
    move |source| BackupError::Io {
        what,
        path: path.to_path_buf(),
        source,
    }
}

/// One archive object of the backup.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct ObjectEntry {
    pub sha256: String,
    pub bytes: u64,
}

/// What a backup holds.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Manifest {
    pub format: u32,
    pub chain_id: String,
    pub member: String,
    pub height: u64,
    pub block_hash: String,
    pub created_ms: u64,
    pub archives: Vec<ObjectEntry>,
}

/// The running node's checkpoints: one at a time, inside its data directory.
pub struct Checkpoints {
    data_dir: PathBuf,
    store: Arc<Store>,
    busy: tokio::sync::Mutex<()>,
}

impl Checkpoints {
    pub fn new(data_dir: PathBuf, store: Arc<Store>) -> Self {
        Self {
            data_dir,
            store,
            busy: tokio::sync::Mutex::new(()),
        }
    }

    /// A new checkpoint under the staging directory; earlier ones left behind (a backup that
    /// never came for its copy) are removed first, so staging never holds more than one.
    fn create(&self) -> Result<PathBuf, BackupError> {
        let staging = self.data_dir.join(STAGING_DIR);
        if staging.exists() {
            fs::remove_dir_all(&staging).map_err(io("removing", &staging))?;
        }
        create_private_dir(&staging)?;
        let dir = staging.join(format!("{}", cradle_genesis::clock::now_ms()));
        self.store.checkpoint(&dir)?;
        Ok(dir)
    }
}

/// `POST /admin/checkpoint` (operator address only): makes a checkpoint of the ledger inside the
/// data directory and answers its path. 503 `busy` with `Retry-After` while another is being
/// made.
pub async fn checkpoint_handler(State(state): State<Arc<HttpState>>) -> HttpResult {
    let backups = state.backups.clone();
    let Ok(guard) = backups.busy.try_lock() else {
        return Err(HttpError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            cradle_ledger::contract::ErrorCode::Busy,
            "a checkpoint is being made: try again when it is done",
        )
        .retry_after_s(1));
    };
    let made = {
        let backups = backups.clone();
        tokio::task::spawn_blocking(move || backups.create())
            .await
            .map_err(HttpError::internal)?
    };
    drop(guard);
    let dir = made.map_err(HttpError::internal)?;
    tracing::info!(dir = %dir.display(), "ledger checkpoint made for a backup");
    Ok(axum::Json(serde_json::json!({ "path": dir })).into_response())
}

fn create_private_dir(dir: &Path) -> Result<(), BackupError> {
    let mut b = fs::DirBuilder::new();
    b.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        b.mode(0o700);
    }
    b.create(dir).map_err(io("creating", dir))
}

/// Copies `from` to `to` (which must not exist) as mode 0600, returning its SHA-256 and size.
fn copy_private(from: &Path, to: &Path) -> Result<([u8; 32], u64), BackupError> {
    let mut src = fs::File::open(from).map_err(io("reading", from))?;
    let mut options = fs::OpenOptions::new();
    options.write(true).create_new(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    let mut dst = options.open(to).map_err(io("writing", to))?;
    let mut hash = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    let mut total = 0u64;
    loop {
        let n = src.read(&mut buf).map_err(io("reading", from))?;
        if n == 0 {
            break;
        }
        hash.update(&buf[..n]);
        dst.write_all(&buf[..n]).map_err(io("writing", to))?;
        total = total.saturating_add(n as u64);
    }
    dst.sync_all().map_err(io("syncing", to))?;
    Ok((hash.finalize().into(), total))
}

/// Copies a directory tree (a store checkpoint: files only, one level of subdirectories at
/// most), privately.
fn copy_tree(from: &Path, to: &Path) -> Result<(), BackupError> {
    create_private_dir(to)?;
    for entry in fs::read_dir(from).map_err(io("listing", from))? {
        let entry = entry.map_err(io("listing", from))?;
        let path = entry.path();
        let target = to.join(entry.file_name());
        if entry.file_type().map_err(io("reading", &path))?.is_dir() {
            copy_tree(&path, &target)?;
        } else {
            copy_private(&path, &target)?;
        }
    }
    Ok(())
}

/// Moves a tree, or copies and removes it when it is on another file system.
fn move_tree(from: &Path, to: &Path) -> Result<(), BackupError> {
    if fs::rename(from, to).is_ok() {
        return Ok(());
    }
    copy_tree(from, to)?;
    fs::remove_dir_all(from).map_err(io("removing", from))
}

/// Asks the running node at its operator address for a checkpoint; `None` when no node answers
/// there (it is stopped).
fn checkpoint_from_running_node(home: &Home) -> Result<Option<PathBuf>, BackupError> {
    let Some(addr) = home
        .config
        .metrics_listen()
        .map_err(|e| BackupError::Refused(e.to_string()))?
    else {
        return Ok(None);
    };
    if std::net::TcpStream::connect_timeout(&addr, std::time::Duration::from_secs(2)).is_err() {
        return Ok(None);
    }
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_global(Some(std::time::Duration::from_secs(600)))
        .http_status_as_error(false)
        .build()
        .into();
    let url = format!("http://{addr}/admin/checkpoint");
    let mut answer = agent
        .post(&url)
        .send_empty()
        .map_err(|e| BackupError::Refused(format!("asking the node at {url}: {e}")))?;
    let status = answer.status();
    let body: serde_json::Value = answer
        .body_mut()
        .with_config()
        .limit(64 * 1024)
        .read_json()
        .map_err(|e| BackupError::Refused(format!("the node's answer at {url}: {e}")))?;
    if !status.is_success() {
        return Err(BackupError::Refused(format!(
            "the node refused a checkpoint ({status}): {}",
            body["error"].as_str().unwrap_or("no reason")
        )));
    }
    let path = body["path"]
        .as_str()
        .ok_or_else(|| BackupError::Refused("the node named no checkpoint".into()))?;
    let path = PathBuf::from(path);
    // Only a checkpoint inside this home's staging directory is taken.
    let staging = home.data_dir().join(STAGING_DIR);
    if path.parent() != Some(staging.as_path()) {
        return Err(BackupError::Refused(format!(
            "the node at {addr} named a checkpoint outside {}: is it this home's node?",
            staging.display()
        )));
    }
    Ok(Some(path))
}

/// Backs up the node of `home` into `out`, whether it runs or not. Returns the manifest.
pub fn backup(home: &Home, out: &Path) -> Result<Manifest, BackupError> {
    if out.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists: a backup goes into a new directory",
            out.display()
        )));
    }
    create_private_dir(out)?;
    let ledger_out = out.join("ledger");
    match checkpoint_from_running_node(home)? {
        Some(dir) => move_tree(&dir, &ledger_out)?,
        None => {
            let store = Store::open(&home.data_dir().join("ledger")).map_err(|e| {
                BackupError::Refused(format!(
                    "no node answers at the operator address (api.metrics_listen) and the \
                     ledger cannot be opened: {e}; a running node is backed up through its \
                     operator address"
                ))
            })?;
            store.checkpoint(&ledger_out)?;
        }
    }
    let tip = tip_of(&ledger_out)?;
    let mut archives = Vec::new();
    let objects = home.data_dir().join("archives").join("objects");
    let objects_out = out.join("archives").join("objects");
    create_private_dir(&objects_out)?;
    // Archives in object storage are the bucket's to keep (its versioning and replication);
    // only a local store's objects are copied.
    if objects.is_dir() && home.config.archives.s3.is_none() {
        let mut names: Vec<_> = fs::read_dir(&objects)
            .map_err(io("listing", &objects))?
            .collect::<Result<_, _>>()
            .map_err(io("listing", &objects))?;
        names.sort_by_key(fs::DirEntry::file_name);
        for entry in names {
            let name = entry.file_name().to_string_lossy().into_owned();
            let (sha, bytes) = copy_private(&entry.path(), &objects_out.join(&name))?;
            if hex::encode(sha) != name {
                return Err(BackupError::Refused(format!(
                    "archive object {name} is damaged (its content hashes to {}): restore it \
                     from an earlier backup first",
                    hex::encode(sha)
                )));
            }
            archives.push(ObjectEntry {
                sha256: name,
                bytes,
            });
        }
    }
    let directory = home.data_dir().join("staff-directory.json");
    if directory.is_file() {
        copy_private(&directory, &out.join("staff-directory.json"))?;
    }
    for (from, name) in [
        (home.config_path(), "config.toml"),
        (home.genesis_path(), "genesis.json"),
        (home.key_path(), "node.key"),
    ] {
        copy_private(&from, &out.join(name))?;
    }
    let manifest = Manifest {
        format: MANIFEST_FORMAT,
        chain_id: hex::encode(home.chain_id),
        member: home.member_name().to_string(),
        height: tip.height,
        block_hash: hex::encode(tip.hash),
        created_ms: cradle_genesis::clock::now_ms(),
        archives,
    };
    write_private(
        &out.join(MANIFEST_FILE),
        &serde_json::to_vec_pretty(&manifest).map_err(|e| BackupError::Refused(e.to_string()))?,
    )?;
    Ok(manifest)
}

fn write_private(path: &Path, bytes: &[u8]) -> Result<(), BackupError> {
    cradle_genesis::fsutil::write_replace(path, bytes, 0o600)
        .map_err(|e| io("writing", path)(std::io::Error::other(e.to_string())))
}

/// The tip of the store at `dir`, which must have one.
fn tip_of(dir: &Path) -> Result<ChainTip, BackupError> {
    Store::open(dir)?
        .tip()?
        .ok_or_else(|| BackupError::Refused("the ledger has no committed block yet".into()))
}

/// Restores the backup at `from` into the home `dir`: its config, genesis and key where the
/// home has none (and checked against the backup's where it has), the ledger, the archive
/// objects (each checked against the manifest) and the staff directory. Refuses a home that
/// already holds a ledger.
pub fn restore(from: &Path, dir: &Path) -> Result<Manifest, BackupError> {
    let manifest: Manifest = serde_json::from_slice(
        &fs::read(from.join(MANIFEST_FILE)).map_err(io("reading", &from.join(MANIFEST_FILE)))?,
    )
    .map_err(|e| BackupError::Refused(format!("{MANIFEST_FILE}: {e}")))?;
    if manifest.format != MANIFEST_FORMAT {
        return Err(BackupError::Refused(format!(
            "backup format {} (this node reads {MANIFEST_FORMAT})",
            manifest.format
        )));
    }
    create_private_dir(dir)?;
    for name in ["config.toml", "genesis.json", "node.key"] {
        let target = dir.join(name);
        if target.exists() {
            if fs::read(&target).map_err(io("reading", &target))?
                != fs::read(from.join(name)).map_err(io("reading", &from.join(name)))?
            {
                return Err(BackupError::Refused(format!(
                    "{} differs from the backup's: restore into a home of this member",
                    target.display()
                )));
            }
        } else {
            copy_private(&from.join(name), &target)?;
        }
    }
    let home = Home::open(dir).map_err(|e| BackupError::Refused(e.to_string()))?;
    if hex::encode(home.chain_id) != manifest.chain_id {
        return Err(BackupError::Refused(
            "the backup is of another chain than the home's genesis".into(),
        ));
    }
    let data = home.data_dir();
    let ledger = data.join("ledger");
    if ledger.exists() {
        return Err(BackupError::Refused(format!(
            "{} exists: restore into a home without a ledger (move it away first)",
            ledger.display()
        )));
    }
    create_private_dir(&data)?;
    copy_tree(&from.join("ledger"), &ledger)?;
    let objects = data.join("archives").join("objects");
    create_private_dir(&objects)?;
    create_private_dir(&data.join("archives").join("tmp"))?;
    for entry in &manifest.archives {
        let target = objects.join(&entry.sha256);
        if target.exists() {
            continue;
        }
        let (sha, bytes) = copy_private(
            &from.join("archives").join("objects").join(&entry.sha256),
            &target,
        )?;
        if hex::encode(sha) != entry.sha256 || bytes != entry.bytes {
            let _ = fs::remove_file(&target);
            return Err(BackupError::Refused(format!(
                "the backup's archive object {} is damaged",
                entry.sha256
            )));
        }
    }
    let directory = from.join("staff-directory.json");
    if directory.is_file() {
        copy_private(&directory, &data.join("staff-directory.json"))?;
    }
    let tip = tip_of(&ledger)?;
    if tip.height != manifest.height || hex::encode(tip.hash) != manifest.block_hash {
        return Err(BackupError::Refused(format!(
            "the restored ledger ends at height {}, the manifest says {}",
            tip.height, manifest.height
        )));
    }
    Ok(manifest)
}
