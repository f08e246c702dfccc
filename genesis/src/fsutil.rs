//! Atomic file writes and bounded reads.
//!
//! A file is written to a temporary file beside it, synced, then moved into place, so a reader
//! (or a crash) never sees half a genesis or half a key. [`write_new`] moves the file in with a
//! hard link, which fails if the target exists: a key is never overwritten, even by a race.

use std::fs::{self, File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use zeroize::Zeroizing;

use crate::error::GenesisError;

static TEMP_COUNTER: AtomicU64 = AtomicU64::new(0);

fn temp_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let n = TEMP_COUNTER.fetch_add(1, Ordering::Relaxed);
    path.with_file_name(format!(".{name}.tmp.{}.{n}", std::process::id()))
}

/// Writes `bytes` to a fresh temporary file beside `path` with exactly `mode`, synced.
fn write_temp(path: &Path, bytes: &[u8], mode: u32) -> Result<PathBuf, GenesisError> {
    let tmp = temp_path(path);
    let result = (|| {
        let mut f = OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&tmp)?;
        // The umask may have cleared bits the caller wants (0644 for public files).
        f.set_permissions(fs::Permissions::from_mode(mode))?;
        f.write_all(bytes)?;
        f.sync_all()
    })();
    match result {
        Ok(()) => Ok(tmp),
        Err(e) => {
            let _ = fs::remove_file(&tmp);
            Err(GenesisError::io(path)(e))
        }
    }
}

fn sync_parent(path: &Path) {
    // Best effort: the rename is already atomic; syncing the directory makes it durable.
    let parent = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    if let Ok(d) = File::open(parent) {
        let _ = d.sync_all();
    }
}

/// Atomically writes `bytes` to `path` with `mode`, replacing any existing file.
pub fn write_replace(path: &Path, bytes: &[u8], mode: u32) -> Result<(), GenesisError> {
    let tmp = write_temp(path, bytes, mode)?;
    if let Err(e) = fs::rename(&tmp, path) {
        let _ = fs::remove_file(&tmp);
        return Err(GenesisError::io(path)(e));
    }
    sync_parent(path);
    Ok(())
}

/// Atomically creates `path` holding `bytes` with `mode`; fails with
/// [`GenesisError::KeyFileExists`] if anything already exists at `path`.
pub(crate) fn write_new(path: &Path, bytes: &[u8], mode: u32) -> Result<(), GenesisError> {
    if path.symlink_metadata().is_ok() {
        return Err(GenesisError::KeyFileExists { path: path.into() });
    }
    let tmp = write_temp(path, bytes, mode)?;
    let linked = fs::hard_link(&tmp, path);
    let _ = fs::remove_file(&tmp);
    match linked {
        Ok(()) => {
            sync_parent(path);
            Ok(())
        }
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
            Err(GenesisError::KeyFileExists { path: path.into() })
        }
        Err(e) => Err(GenesisError::io(path)(e)),
    }
}

/// Reads at most `max` bytes of `path` into memory that is zeroed when dropped; a larger file is
/// refused before it is read.
pub(crate) fn read_bounded(path: &Path, max: u64) -> Result<Zeroizing<Vec<u8>>, GenesisError> {
    let f = File::open(path).map_err(GenesisError::io(path))?;
    let len = f.metadata().map_err(GenesisError::io(path))?.len();
    if len > max {
        return Err(GenesisError::FileTooLarge {
            path: path.into(),
            len,
            max,
        });
    }
    // Reserve the whole file up front so the buffer never reallocates and leaves copies of
    // secrets behind; `take` guards against a file that grows while it is read.
    let mut buf = Zeroizing::new(Vec::with_capacity(len as usize + 1));
    f.take(max + 1)
        .read_to_end(&mut buf)
        .map_err(GenesisError::io(path))?;
    if buf.len() as u64 > max {
        return Err(GenesisError::FileTooLarge {
            path: path.into(),
            len: buf.len() as u64,
            max,
        });
    }
    Ok(buf)
}

/// [`read_bounded`], as UTF-8.
pub(crate) fn read_bounded_string(
    path: &Path,
    max: u64,
) -> Result<Zeroizing<String>, GenesisError> {
    let bytes = read_bounded(path, max)?;
    match std::str::from_utf8(&bytes) {
        Ok(s) => Ok(Zeroizing::new(s.to_owned())),
        Err(_) => Err(GenesisError::Io {
            path: path.into(),
            error: std::io::Error::new(std::io::ErrorKind::InvalidData, "not utf-8"),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn write_new_refuses_an_existing_file_and_leaves_no_temp_behind() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("k");
        write_new(&p, b"one", 0o600).unwrap();
        let err = write_new(&p, b"two", 0o600).unwrap_err();
        assert!(matches!(err, GenesisError::KeyFileExists { .. }), "{err}");
        assert_eq!(fs::read(&p).unwrap(), b"one");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o600
        );
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 1);
    }

    #[test]
    fn write_replace_sets_the_exact_mode() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("g");
        write_replace(&p, b"a", 0o644).unwrap();
        write_replace(&p, b"b", 0o644).unwrap();
        assert_eq!(fs::read(&p).unwrap(), b"b");
        assert_eq!(
            fs::metadata(&p).unwrap().permissions().mode() & 0o777,
            0o644
        );
    }

    #[test]
    fn read_bounded_refuses_large_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("big");
        fs::write(&p, vec![b'x'; 100]).unwrap();
        assert!(matches!(
            read_bounded(&p, 99),
            Err(GenesisError::FileTooLarge { len: 100, .. })
        ));
        assert_eq!(read_bounded(&p, 100).unwrap().len(), 100);
    }
}
