//! The custodian's archive store: encrypted archives named by the SHA-256 of their
//! ciphertext, on one of two backends behind [`ObjectBackend`]: the node's own directory
//! ([`super::local`], the default) or an S3-compatible bucket ([`super::s3`]).
//!
//! Whatever the backend, an upload is hashed as it is written and becomes an object only once
//! its length and hash are the ones its signed request declared, so a crash or a bad upload
//! never leaves a partial or mislabelled object; and a read is hashed as it is served
//! ([`VerifiedReader`]), so an object damaged at rest is never passed off as the archive the
//! ledger registered. The limits (largest archive, the store's size, the disk reserve) are
//! checked here, before any byte is read.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cradle_ledger::Hash;
use sha2::{Digest, Sha256};

/// Bytes read from disk per piece of a download.
pub const READ_PIECE_BYTES: usize = 1 << 20;

#[derive(Debug, thiserror::Error)]
pub enum ArchiveStoreError {
    #[error("archive store i/o on {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("the upload is {got} bytes, above the limit of {max}")]
    TooLarge { got: u64, max: u64 },
    #[error("the archive store is full ({used} of {max} bytes used)")]
    Full { used: u64, max: u64 },
    #[error(
        "the archive store's disk has {free} bytes free; this upload would leave less than the \
         {reserve} bytes kept in reserve"
    )]
    DiskReserve { free: u64, reserve: u64 },
    #[error("the uploaded bytes hash to {got}, not the signed {expected}")]
    HashMismatch { expected: String, got: String },
    #[error("the upload is {got} bytes but declared {declared}")]
    LengthMismatch { declared: u64, got: u64 },
    #[error("the upload was interrupted: {0}")]
    Interrupted(String),
    #[error("the archive store's object storage is unavailable: {0}")]
    Unavailable(String),
}

pub(super) fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveStoreError + '_ {
    move |source| ArchiveStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// A stored archive as it is read: a local file, or an object streaming from the bucket.
pub type ObjectReader = Box<dyn Read + Send>;

/// Where the ciphertexts live. Every method may block (disk or network): call them on a
/// blocking thread, or within `block_in_place`.
pub trait ObjectBackend: Send + Sync {
    /// The bytes stored in all, counted when the store opens.
    fn stored_bytes(&self) -> Result<u64, ArchiveStoreError>;
    /// An object's size, or `None` when it is absent; quick to fail when the backend is down.
    fn size(&self, sha256: &Hash) -> Result<Option<u64>, ArchiveStoreError>;
    /// An object as a reader, with its size.
    fn open(&self, sha256: &Hash) -> Result<Option<(ObjectReader, u64)>, ArchiveStoreError>;
    /// Starts writing the object that must hash to `expected` and be `declared_len` long.
    fn begin(
        &self,
        expected: Hash,
        declared_len: u64,
    ) -> Result<Box<dyn ObjectUpload>, ArchiveStoreError>;
    /// Free bytes where the objects are, for the disk reserve; `None` where the backend keeps
    /// its own space (object storage).
    fn free_bytes(&self) -> Result<Option<u64>, ArchiveStoreError>;
}

/// An object being written. Dropped unfinished, nothing is stored.
pub trait ObjectUpload: Send {
    /// Appends a piece, hashing it; refuses more than the declared length.
    fn write(&mut self, piece: &[u8]) -> Result<(), ArchiveStoreError>;
    /// Bytes written so far.
    fn written(&self) -> u64;
    /// Stores the object if its length and hash are the declared ones. Returns whether it was
    /// new (an identical object already stored is kept).
    fn finish(self: Box<Self>) -> Result<bool, ArchiveStoreError>;
}

pub struct ArchiveStore {
    backend: Box<dyn ObjectBackend>,
    archive_bytes_max: u64,
    store_bytes_max: u64,
    used: AtomicU64,
    /// Free space the local disk must keep (`archives.disk_reserve_bytes`).
    disk_reserve: u64,
    /// Free bytes on it when an upload last looked.
    disk_free: AtomicU64,
    object_storage: bool,
}

impl ArchiveStore {
    /// Opens (creating) a store in the directory `root`; leftovers of interrupted uploads are
    /// removed.
    pub fn open(
        root: &Path,
        archive_bytes_max: u64,
        store_bytes_max: u64,
    ) -> Result<Self, ArchiveStoreError> {
        let backend = super::local::LocalBackend::open(root)?;
        Self::on(Box::new(backend), archive_bytes_max, store_bytes_max, false)
    }

    /// A store on an S3-compatible bucket. Lists the bucket to count what it holds: call it on
    /// a blocking thread.
    pub fn open_s3(
        backend: super::s3::S3Backend,
        archive_bytes_max: u64,
        store_bytes_max: u64,
    ) -> Result<Self, ArchiveStoreError> {
        Self::on(Box::new(backend), archive_bytes_max, store_bytes_max, true)
    }

    fn on(
        backend: Box<dyn ObjectBackend>,
        archive_bytes_max: u64,
        store_bytes_max: u64,
        object_storage: bool,
    ) -> Result<Self, ArchiveStoreError> {
        let used = backend.stored_bytes()?;
        Ok(Self {
            backend,
            archive_bytes_max,
            store_bytes_max,
            used: AtomicU64::new(used),
            disk_reserve: 0,
            disk_free: AtomicU64::new(0),
            object_storage,
        })
    }

    /// Checks that the backend answers (for a bucket, one request about `sha256`). Blocking.
    pub fn reachable(&self, sha256: &Hash) -> Result<(), ArchiveStoreError> {
        self.backend.size(sha256).map(|_| ())
    }

    /// Whether the ciphertexts are in object storage rather than under the data directory.
    pub fn is_object_storage(&self) -> bool {
        self.object_storage
    }

    /// Keeps `bytes` free on the store's disk: uploads that would leave less are refused.
    pub fn with_disk_reserve(mut self, bytes: u64) -> Self {
        self.disk_reserve = bytes;
        self
    }

    /// Free bytes on the store's disk when an upload last looked.
    pub fn disk_free_bytes(&self) -> u64 {
        self.disk_free.load(Ordering::Relaxed)
    }

    pub fn archive_bytes_max(&self) -> u64 {
        self.archive_bytes_max
    }

    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    /// Whether the object is stored. Blocking.
    pub fn contains(&self, sha256: &Hash) -> bool {
        matches!(self.backend.size(sha256), Ok(Some(_)))
    }

    /// Checks a declared upload against the limits before any byte is read.
    pub fn admit(&self, declared_len: u64) -> Result<(), ArchiveStoreError> {
        if declared_len > self.archive_bytes_max {
            return Err(ArchiveStoreError::TooLarge {
                got: declared_len,
                max: self.archive_bytes_max,
            });
        }
        let used = self.used_bytes();
        if used.saturating_add(declared_len) > self.store_bytes_max {
            return Err(ArchiveStoreError::Full {
                used,
                max: self.store_bytes_max,
            });
        }
        if let Some(free) = self.backend.free_bytes()? {
            self.disk_free.store(free, Ordering::Relaxed);
            if free < declared_len.saturating_add(self.disk_reserve) {
                return Err(ArchiveStoreError::DiskReserve {
                    free,
                    reserve: self.disk_reserve,
                });
            }
        }
        Ok(())
    }

    /// Starts an upload of `declared_len` bytes that must hash to `expected`. Blocking.
    pub fn begin(
        &self,
        expected: Hash,
        declared_len: u64,
    ) -> Result<Upload<'_>, ArchiveStoreError> {
        self.admit(declared_len)?;
        Ok(Upload {
            store: self,
            inner: self.backend.begin(expected, declared_len)?,
        })
    }

    /// Opens a stored archive for reading, with its length. Blocking.
    pub fn open_object(
        &self,
        sha256: &Hash,
    ) -> Result<Option<(ObjectReader, u64)>, ArchiveStoreError> {
        self.backend.open(sha256)
    }
}

/// An upload in progress; dropped without [`Upload::finish`], nothing is stored.
pub struct Upload<'a> {
    store: &'a ArchiveStore,
    inner: Box<dyn ObjectUpload>,
}

impl Upload<'_> {
    pub fn write(&mut self, piece: &[u8]) -> Result<(), ArchiveStoreError> {
        self.inner.write(piece)
    }

    /// Checks length and hash and stores the object. Returns whether it was new.
    pub fn finish(self) -> Result<bool, ArchiveStoreError> {
        let written = self.inner.written();
        let new = self.inner.finish()?;
        if new {
            self.store.used.fetch_add(written, Ordering::Relaxed);
        }
        Ok(new)
    }
}

/// Reads a stored archive piece by piece, hashing it; the last call tells whether the bytes
/// served match the ledger's hash.
pub struct VerifiedReader {
    file: ObjectReader,
    hasher: Sha256,
    expected: Hash,
    remaining: u64,
}

/// One step of a verified read.
pub enum Piece {
    Data(Vec<u8>),
    /// Every byte was served and matched the expected hash.
    Done,
}

impl VerifiedReader {
    pub fn new(file: ObjectReader, len: u64, expected: Hash) -> Self {
        Self {
            file,
            hasher: Sha256::new(),
            expected,
            remaining: len,
        }
    }

    pub fn next_piece(&mut self) -> Result<Piece, String> {
        if self.remaining == 0 {
            let got: Hash = std::mem::take(&mut self.hasher).finalize().into();
            if got != self.expected {
                return Err(format!(
                    "stored archive hashes to {}, not the ledger's {}",
                    hex::encode(got),
                    hex::encode(self.expected)
                ));
            }
            return Ok(Piece::Done);
        }
        let n = self.remaining.min(READ_PIECE_BYTES as u64) as usize;
        // Filled by the read, never zeroed first: a piece is a megabyte.
        let mut buf = Vec::with_capacity(n);
        let got = (&mut self.file)
            .take(n as u64)
            .read_to_end(&mut buf)
            .map_err(|e| format!("reading the stored archive: {e}"))?;
        if got != n {
            return Err(format!(
                "the stored archive ended {} bytes early",
                self.remaining - got as u64
            ));
        }
        self.hasher.update(&buf);
        self.remaining -= n as u64;
        Ok(Piece::Data(buf))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn sha(data: &[u8]) -> Hash {
        Sha256::digest(data).into()
    }

    #[test]
    fn upload_is_checked_then_stored_under_its_hash() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArchiveStore::open(dir.path(), 1024, 4096).unwrap();
        let data = b"ciphertext bytes".to_vec();
        let mut up = store.begin(sha(&data), data.len() as u64).unwrap();
        up.write(&data[..5]).unwrap();
        up.write(&data[5..]).unwrap();
        assert!(up.finish().unwrap());
        assert!(store.contains(&sha(&data)));
        assert_eq!(store.used_bytes(), data.len() as u64);

        let (file, len) = store.open_object(&sha(&data)).unwrap().unwrap();
        let mut r = VerifiedReader::new(file, len, sha(&data));
        let mut got = Vec::new();
        while let Piece::Data(p) = r.next_piece().unwrap() {
            got.extend(p);
        }
        assert_eq!(got, data);
    }

    #[test]
    fn wrong_hash_wrong_length_and_oversize_leave_nothing_behind() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArchiveStore::open(dir.path(), 16, 20).unwrap();
        let data = b"0123456789".to_vec();

        let mut up = store.begin(sha(b"other"), 10).unwrap();
        up.write(&data).unwrap();
        assert!(matches!(
            up.finish(),
            Err(ArchiveStoreError::HashMismatch { .. })
        ));

        let mut up = store.begin(sha(&data), 9).unwrap();
        assert!(matches!(
            up.write(&data),
            Err(ArchiveStoreError::LengthMismatch { .. })
        ));
        drop(up);

        let up = store.begin(sha(&data), 11).unwrap();
        assert!(matches!(
            up.finish(),
            Err(ArchiveStoreError::LengthMismatch { .. })
        ));

        assert!(matches!(
            store.begin(sha(&data), 17),
            Err(ArchiveStoreError::TooLarge { .. })
        ));
        assert_eq!(fs::read_dir(dir.path().join("tmp")).unwrap().count(), 0);
        assert_eq!(fs::read_dir(dir.path().join("objects")).unwrap().count(), 0);

        let mut up = store.begin(sha(&data), 10).unwrap();
        up.write(&data).unwrap();
        up.finish().unwrap();
        assert!(matches!(
            store.begin(sha(b"x"), 11),
            Err(ArchiveStoreError::Full { .. })
        ));
    }

    #[test]
    fn a_damaged_object_is_reported_on_read() {
        let dir = tempfile::tempdir().unwrap();
        let store = ArchiveStore::open(dir.path(), 1 << 22, 1 << 23).unwrap();
        let data = vec![7u8; READ_PIECE_BYTES + 10];
        let mut up = store.begin(sha(&data), data.len() as u64).unwrap();
        up.write(&data).unwrap();
        up.finish().unwrap();
        let path = dir.path().join("objects").join(hex::encode(sha(&data)));
        let mut bytes = fs::read(&path).unwrap();
        bytes[3] ^= 1;
        fs::write(&path, bytes).unwrap();
        let (file, len) = store.open_object(&sha(&data)).unwrap().unwrap();
        let mut r = VerifiedReader::new(file, len, sha(&data));
        let mut err = None;
        for _ in 0..4 {
            match r.next_piece() {
                Ok(Piece::Data(_)) => continue,
                Ok(Piece::Done) => break,
                Err(e) => {
                    err = Some(e);
                    break;
                }
            }
        }
        assert!(err.unwrap().contains("not the ledger's"));
    }
}
