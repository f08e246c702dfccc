//! The custodian's archive store: encrypted archives on disk, named by the SHA-256 of their
//! ciphertext.
//!
//! An upload is written to a temporary file while it is hashed, synced, checked against the
//! hash its signed request declared, and only then renamed into place (and the directory
//! synced), so a crash or a bad upload never leaves a partial or mislabelled object. Reads hash
//! what they serve and report a mismatch, so a file damaged on disk is never passed off as the
//! archive the ledger registered.

use std::fs::{self, File};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cradle_genesis::durable::FlushingFile;
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

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> ArchiveStoreError + '_ {
    move |source| ArchiveStoreError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// Where the ciphertexts are: the local directory, or an S3-compatible bucket.
enum Backend {
    Local,
    S3(super::s3::S3Backend),
}

pub struct ArchiveStore {
    backend: Backend,
    objects: PathBuf,
    tmp: PathBuf,
    archive_bytes_max: u64,
    store_bytes_max: u64,
    used: AtomicU64,
    /// Free space its file system must keep (`archives.disk_reserve_bytes`).
    disk_reserve: u64,
    /// Free bytes on its file system when an upload last looked.
    disk_free: AtomicU64,
}

impl ArchiveStore {
    /// Opens (creating) the store under `root`; leftovers of interrupted uploads are removed.
    pub fn open(
        root: &Path,
        archive_bytes_max: u64,
        store_bytes_max: u64,
    ) -> Result<Self, ArchiveStoreError> {
        let objects = root.join("objects");
        let tmp = root.join("tmp");
        fs::create_dir_all(&objects).map_err(io(&objects))?;
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        let mut used = 0u64;
        for entry in fs::read_dir(&objects).map_err(io(&objects))? {
            let entry = entry.map_err(io(&objects))?;
            used += entry.metadata().map_err(io(&entry.path()))?.len();
        }
        Ok(Self {
            backend: Backend::Local,
            objects,
            tmp,
            archive_bytes_max,
            store_bytes_max,
            used: AtomicU64::new(used),
            disk_reserve: 0,
            disk_free: AtomicU64::new(0),
        })
    }

    /// A store on an S3-compatible bucket; `root` keeps nothing but is where a local store
    /// would be. Lists the bucket to count what it holds: call it on a blocking thread.
    pub fn open_s3(
        backend: super::s3::S3Backend,
        root: &Path,
        archive_bytes_max: u64,
        store_bytes_max: u64,
    ) -> Result<Self, ArchiveStoreError> {
        let used = backend.used_bytes()?;
        Ok(Self {
            backend: Backend::S3(backend),
            objects: root.join("objects"),
            tmp: root.join("tmp"),
            archive_bytes_max,
            store_bytes_max,
            used: AtomicU64::new(used),
            disk_reserve: 0,
            disk_free: AtomicU64::new(0),
        })
    }

    /// Checks that the backend answers (a bucket: one request about `sha256`). Blocking.
    pub fn reachable(&self, sha256: &Hash) -> Result<(), ArchiveStoreError> {
        match &self.backend {
            Backend::Local => Ok(()),
            Backend::S3(s3) => s3.size(sha256).map(|_| ()),
        }
    }

    /// Whether the ciphertexts are in object storage rather than under the data directory.
    pub fn is_object_storage(&self) -> bool {
        matches!(self.backend, Backend::S3(_))
    }

    /// Keeps `bytes` free on the store's file system: uploads that would leave less are refused.
    pub fn with_disk_reserve(mut self, bytes: u64) -> Self {
        self.disk_reserve = bytes;
        self
    }

    /// Free bytes on the store's file system when an upload last looked.
    pub fn disk_free_bytes(&self) -> u64 {
        self.disk_free.load(Ordering::Relaxed)
    }

    /// Free bytes on the store's file system, for an unprivileged writer.
    fn free_bytes(&self) -> Result<u64, ArchiveStoreError> {
        let st = rustix::fs::statvfs(&self.objects).map_err(|e| ArchiveStoreError::Io {
            path: self.objects.clone(),
            source: e.into(),
        })?;
        let free = st.f_bavail.saturating_mul(st.f_frsize);
        self.disk_free.store(free, Ordering::Relaxed);
        Ok(free)
    }

    pub fn archive_bytes_max(&self) -> u64 {
        self.archive_bytes_max
    }

    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn object_path(&self, sha256: &Hash) -> PathBuf {
        self.objects.join(hex::encode(sha256))
    }

    pub fn contains(&self, sha256: &Hash) -> bool {
        match &self.backend {
            Backend::Local => self.object_path(sha256).is_file(),
            Backend::S3(s3) => matches!(s3.size(sha256), Ok(Some(_))),
        }
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
        // Object storage keeps its own space; only a local store's disk is watched here.
        if matches!(self.backend, Backend::S3(_)) {
            return Ok(());
        }
        let free = self.free_bytes()?;
        if free < declared_len.saturating_add(self.disk_reserve) {
            return Err(ArchiveStoreError::DiskReserve {
                free,
                reserve: self.disk_reserve,
            });
        }
        Ok(())
    }

    /// Starts an upload of `declared_len` bytes that must hash to `expected`.
    pub fn begin(
        &self,
        expected: Hash,
        declared_len: u64,
    ) -> Result<Upload<'_>, ArchiveStoreError> {
        self.admit(declared_len)?;
        if let Backend::S3(s3) = &self.backend {
            return Ok(Upload::S3 {
                store: self,
                upload: s3.begin(expected, declared_len)?,
            });
        }
        let mut name = [0u8; 16];
        getrandom::fill(&mut name)
            .map_err(|e| ArchiveStoreError::Interrupted(format!("random source: {e}")))?;
        let path = self.tmp.join(hex::encode(name));
        let file = File::create_new(&path)
            .and_then(FlushingFile::new)
            .map_err(io(&path))?;
        Ok(Upload::Local(LocalUpload {
            store: self,
            path,
            file: Some(file),
            hasher: Sha256::new(),
            written: 0,
            expected,
            declared_len,
        }))
    }

    /// Opens a stored archive for reading, with its length. Blocking.
    pub fn open_object(
        &self,
        sha256: &Hash,
    ) -> Result<Option<(ObjectReader, u64)>, ArchiveStoreError> {
        if let Backend::S3(s3) = &self.backend {
            return s3.open(sha256);
        }
        let path = self.object_path(sha256);
        match File::open(&path) {
            Ok(f) => {
                let len = f.metadata().map_err(io(&path))?.len();
                Ok(Some((Box::new(f), len)))
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }
}

/// A stored archive as it is read: a local file, or an object streaming from the bucket.
pub type ObjectReader = Box<dyn Read + Send>;

/// An upload in progress, to either backend; dropped unfinished, nothing is stored.
pub enum Upload<'a> {
    Local(LocalUpload<'a>),
    S3 {
        store: &'a ArchiveStore,
        upload: super::s3::S3Upload,
    },
}

impl Upload<'_> {
    pub fn write(&mut self, piece: &[u8]) -> Result<(), ArchiveStoreError> {
        match self {
            Upload::Local(u) => u.write(piece),
            Upload::S3 { upload, .. } => upload.write(piece),
        }
    }

    /// Checks length and hash and stores the object. Returns whether it was new.
    pub fn finish(self) -> Result<bool, ArchiveStoreError> {
        match self {
            Upload::Local(u) => u.finish(),
            Upload::S3 { store, upload } => {
                let written = upload.written();
                let new = upload.finish()?;
                if new {
                    store.used.fetch_add(written, Ordering::Relaxed);
                }
                Ok(new)
            }
        }
    }
}

/// An upload to the local directory; dropped without [`LocalUpload::finish`], its temporary
/// file is removed.
pub struct LocalUpload<'a> {
    store: &'a ArchiveStore,
    path: PathBuf,
    file: Option<FlushingFile>,
    hasher: Sha256,
    written: u64,
    expected: Hash,
    declared_len: u64,
}

impl LocalUpload<'_> {
    pub fn write(&mut self, piece: &[u8]) -> Result<(), ArchiveStoreError> {
        let got = self.written + piece.len() as u64;
        if got > self.declared_len {
            return Err(ArchiveStoreError::LengthMismatch {
                declared: self.declared_len,
                got,
            });
        }
        self.hasher.update(piece);
        let Some(file) = self.file.as_mut() else {
            return Err(ArchiveStoreError::Interrupted(
                "upload already finished".into(),
            ));
        };
        file.write_all(piece).map_err(io(&self.path))?;
        self.written = got;
        Ok(())
    }

    /// Checks length and hash, syncs, and moves the object into place. Returns whether the
    /// object was new (an identical object already stored is kept).
    pub fn finish(mut self) -> Result<bool, ArchiveStoreError> {
        if self.written != self.declared_len {
            return Err(ArchiveStoreError::LengthMismatch {
                declared: self.declared_len,
                got: self.written,
            });
        }
        let got: Hash = std::mem::take(&mut self.hasher).finalize().into();
        if got != self.expected {
            return Err(ArchiveStoreError::HashMismatch {
                expected: hex::encode(self.expected),
                got: hex::encode(got),
            });
        }
        let Some(file) = self.file.take() else {
            return Err(ArchiveStoreError::Interrupted(
                "upload already finished".into(),
            ));
        };
        file.sync_all().map_err(io(&self.path))?;
        let target = self.store.object_path(&self.expected);
        if target.is_file() {
            fs::remove_file(&self.path).map_err(io(&self.path))?;
            return Ok(false);
        }
        fs::rename(&self.path, &target).map_err(io(&target))?;
        File::open(&self.store.objects)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.store.objects))?;
        self.store.used.fetch_add(self.written, Ordering::Relaxed);
        Ok(true)
    }
}

impl Drop for LocalUpload<'_> {
    fn drop(&mut self) {
        if self.file.is_some() || self.path.exists() {
            self.file = None;
            if let Err(e) = fs::remove_file(&self.path)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(path = %self.path.display(), error = %e, "could not remove an unfinished upload");
            }
        }
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
