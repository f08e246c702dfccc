//! The member sets a client verified, kept between runs: one file per chain,
//! `sets-<chain id>.json` under the state directory (`~/.local/state/cradle` unless
//! `$XDG_STATE_HOME` says otherwise), mode 0600, written whole (a temporary file, synced, then
//! renamed over the old) under a lock so that two clients running at once cannot make it go
//! backwards, at most [`FILE_BYTES_MAX`] bytes, and at most [`CHAINS_MAX`] chains (the least
//! recently written go first).
//!
//! It is a cache of proofs, not a source of trust: what it holds is verified from genesis again
//! each time it is read. A file that is too large, unreadable or does not verify is reported,
//! never trusted and never silently forgotten (forgetting would take the client back to
//! genesis's keys, which is what the file exists to prevent).

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use cradle_ledger::Consortium;
use cradle_ledger::governance::SetChanges;
use serde::{Deserialize, Serialize};

use super::{Confirmation, Known, TrustError, Verified};

/// The file format's name and version.
const FORMAT: &str = "cradle-member-sets/1";
/// Largest file read: the largest answer of set changes a node may give, in hex, and a little.
pub const FILE_BYTES_MAX: u64 = 2 * crate::api::SET_CHANGES_BYTES_MAX as u64 + 64 * 1024;
/// Most chains kept.
pub const CHAINS_MAX: usize = 64;

/// The file as written.
#[derive(Serialize, Deserialize)]
struct SetsFile {
    format: String,
    chain_id: String,
    /// The member set changes, borsh-encoded as a node serves them, in hex.
    set_changes: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confirmed_ms: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    confirmed_by: Option<String>,
}

/// Where a client keeps what it verified; nowhere when it has no state directory.
#[derive(Clone, Debug)]
pub struct Store {
    dir: Option<PathBuf>,
}

impl Store {
    pub fn new(dir: Option<PathBuf>) -> Self {
        Self { dir }
    }

    /// The file for the chain `genesis` starts, if there is a state directory.
    pub fn path(&self, genesis: &Consortium) -> Option<PathBuf> {
        let id = hex::encode(genesis.chain_id);
        self.dir.as_ref().map(|d| d.join(format!("sets-{id}.json")))
    }

    /// What was kept for the chain `genesis` starts, verified from it again; `None` if
    /// nothing was.
    pub fn load(&self, genesis: &Consortium) -> Result<Option<Known>, TrustError> {
        let Some(path) = self.path(genesis) else {
            return Ok(None);
        };
        let failed = |reason: String| TrustError::StateFile {
            path: path.clone(),
            reason,
        };
        let file = match File::open(&path) {
            Ok(f) => f,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
            Err(e) => return Err(failed(format!("cannot be read: {e}"))),
        };
        let len = file
            .metadata()
            .map_err(|e| failed(format!("cannot be read: {e}")))?
            .len();
        if len > FILE_BYTES_MAX {
            return Err(failed(format!(
                "is {len} bytes, more than the {FILE_BYTES_MAX} a member set history takes"
            )));
        }
        let mut text = Vec::new();
        file.take(FILE_BYTES_MAX + 1)
            .read_to_end(&mut text)
            .map_err(|e| failed(format!("cannot be read: {e}")))?;
        if text.len() as u64 > FILE_BYTES_MAX {
            return Err(failed(format!(
                "grew past the {FILE_BYTES_MAX} bytes a member set history takes"
            )));
        }
        let parsed: SetsFile =
            serde_json::from_slice(&text).map_err(|e| failed(format!("is corrupt: {e}")))?;
        if parsed.format != FORMAT {
            return Err(failed(format!(
                "is in format {:?}, not {FORMAT:?}",
                parsed.format
            )));
        }
        if parsed.chain_id != hex::encode(genesis.chain_id) {
            return Err(failed("is for another chain".into()));
        }
        let bytes = hex::decode(&parsed.set_changes)
            .map_err(|e| failed(format!("is corrupt: set changes: {e}")))?;
        let changes: SetChanges =
            cradle_ledger::codec::decode(&bytes, crate::api::SET_CHANGES_BYTES_MAX)
                .map_err(|e| failed(format!("is corrupt: set changes: {e}")))?;
        let verified = Verified::verify(genesis.clone(), changes.into_inner()).map_err(|e| {
            failed(format!(
                "holds a set change that does not verify from genesis: {e}"
            ))
        })?;
        let confirmed = match (parsed.confirmed_ms, parsed.confirmed_by) {
            (Some(at_ms), Some(by)) => Some(Confirmation { at_ms, by }),
            _ => None,
        };
        Ok(Some(Known {
            verified,
            confirmed,
        }))
    }

    /// Keeps `known` for the chain `genesis` starts, merged under the lock with what another
    /// client may have kept meanwhile: the newer sets, the later confirmation.
    pub fn save(&self, genesis: &Consortium, known: &Known) -> Result<(), TrustError> {
        let (Some(dir), Some(path)) = (self.dir.as_ref(), self.path(genesis)) else {
            return Ok(());
        };
        let failed = |what: &str, e: std::io::Error| TrustError::StateFile {
            path: path.clone(),
            reason: format!("cannot be written ({what}: {e})"),
        };
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .map_err(|e| failed("creating its directory", e))?;
        let lock = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .mode(0o600)
            .open(path.with_extension("lock"))
            .map_err(|e| failed("opening its lock", e))?;
        lock.lock().map_err(|e| failed("taking its lock", e))?;
        let merged = match self.load(genesis)? {
            None => known.clone(),
            Some(on_disk) => {
                let confirmed = match (&on_disk.confirmed, &known.confirmed) {
                    (Some(a), Some(b)) if a.at_ms >= b.at_ms => Some(a.clone()),
                    (a, b) => b.clone().or_else(|| a.clone()),
                };
                let same = on_disk.verified.epoch() >= known.verified.epoch()
                    && on_disk.confirmed == confirmed;
                let verified = on_disk.verified.newest(known.verified.clone())?;
                if same {
                    return Ok(());
                }
                Known {
                    verified,
                    confirmed,
                }
            }
        };
        let changes = SetChanges::new(merged.verified.changes().to_vec()).map_err(|e| {
            TrustError::StateFile {
                path: path.clone(),
                reason: format!("cannot hold these sets: {e}"),
            }
        })?;
        let file = SetsFile {
            format: FORMAT.into(),
            chain_id: hex::encode(genesis.chain_id),
            set_changes: hex::encode(cradle_ledger::codec::encode(&changes)),
            confirmed_ms: merged.confirmed.as_ref().map(|c| c.at_ms),
            confirmed_by: merged.confirmed.as_ref().map(|c| c.by.clone()),
        };
        let text = serde_json::to_vec_pretty(&file).map_err(|e| TrustError::StateFile {
            path: path.clone(),
            reason: format!("cannot be written: {e}"),
        })?;
        let tmp = path.with_extension("json.tmp");
        let mut out = OpenOptions::new()
            .create(true)
            .truncate(true)
            .write(true)
            .mode(0o600)
            .open(&tmp)
            .map_err(|e| failed("creating a temporary file", e))?;
        out.write_all(&text)
            .and_then(|()| out.sync_all())
            .map_err(|e| failed("writing a temporary file", e))?;
        fs::rename(&tmp, &path).map_err(|e| failed("renaming the temporary file", e))?;
        // The rename is durable once the directory is.
        if let Ok(d) = File::open(dir) {
            let _ = d.sync_all();
        }
        prune(dir, &path);
        Ok(())
    }
}

/// Removes the least recently written chains' files past [`CHAINS_MAX`], never `keep`.
fn prune(dir: &Path, keep: &Path) {
    let Ok(entries) = fs::read_dir(dir) else {
        return;
    };
    let mut files: Vec<_> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with("sets-") && n.ends_with(".json"))
        })
        .filter_map(|p| Some((fs::metadata(&p).ok()?.modified().ok()?, p)))
        .collect();
    if files.len() <= CHAINS_MAX {
        return;
    }
    files.sort();
    let excess = files.len() - CHAINS_MAX;
    for (_, p) in files.into_iter().filter(|(_, p)| p != keep).take(excess) {
        let _ = fs::remove_file(p.with_extension("lock"));
        let _ = fs::remove_file(&p);
    }
}
