//! The archive store's default backend: one directory of the node's data, `objects/` named by
//! SHA-256, and `tmp/` for uploads in progress. An upload is written to a temporary file while
//! it is hashed, synced, checked, and only then renamed into place (and the directory synced).

use std::fs::{self, File};
use std::io::Write;
use std::path::{Path, PathBuf};

use cradle_genesis::durable::FlushingFile;
use cradle_ledger::Hash;
use sha2::{Digest, Sha256};

use super::store::{ArchiveStoreError, ObjectBackend, ObjectReader, ObjectUpload, io};

pub struct LocalBackend {
    objects: PathBuf,
    tmp: PathBuf,
}

impl LocalBackend {
    /// Opens (creating) the directories under `root`; leftovers of interrupted uploads are
    /// removed.
    pub fn open(root: &Path) -> Result<Self, ArchiveStoreError> {
        let objects = root.join("objects");
        let tmp = root.join("tmp");
        fs::create_dir_all(&objects).map_err(io(&objects))?;
        if tmp.exists() {
            fs::remove_dir_all(&tmp).map_err(io(&tmp))?;
        }
        fs::create_dir_all(&tmp).map_err(io(&tmp))?;
        Ok(Self { objects, tmp })
    }

    fn object_path(&self, sha256: &Hash) -> PathBuf {
        self.objects.join(hex::encode(sha256))
    }
}

impl ObjectBackend for LocalBackend {
    fn stored_bytes(&self) -> Result<u64, ArchiveStoreError> {
        let mut used = 0u64;
        for entry in fs::read_dir(&self.objects).map_err(io(&self.objects))? {
            let entry = entry.map_err(io(&self.objects))?;
            used = used.saturating_add(entry.metadata().map_err(io(&entry.path()))?.len());
        }
        Ok(used)
    }

    fn size(&self, sha256: &Hash) -> Result<Option<u64>, ArchiveStoreError> {
        let path = self.object_path(sha256);
        match fs::metadata(&path) {
            Ok(m) if m.is_file() => Ok(Some(m.len())),
            Ok(_) => Ok(None),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io(&path)(e)),
        }
    }

    fn open(&self, sha256: &Hash) -> Result<Option<(ObjectReader, u64)>, ArchiveStoreError> {
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

    fn begin(
        &self,
        expected: Hash,
        declared_len: u64,
    ) -> Result<Box<dyn ObjectUpload>, ArchiveStoreError> {
        let mut name = [0u8; 16];
        getrandom::fill(&mut name)
            .map_err(|e| ArchiveStoreError::Interrupted(format!("random source: {e}")))?;
        let path = self.tmp.join(hex::encode(name));
        let file = File::create_new(&path)
            .and_then(FlushingFile::new)
            .map_err(io(&path))?;
        Ok(Box::new(LocalUpload {
            objects: self.objects.clone(),
            path,
            file: Some(file),
            hasher: Sha256::new(),
            written: 0,
            expected,
            declared_len,
        }))
    }

    /// Free bytes on the objects' file system, for an unprivileged writer.
    fn free_bytes(&self) -> Result<Option<u64>, ArchiveStoreError> {
        let st = rustix::fs::statvfs(&self.objects).map_err(|e| ArchiveStoreError::Io {
            path: self.objects.clone(),
            source: e.into(),
        })?;
        Ok(Some(st.f_bavail.saturating_mul(st.f_frsize)))
    }
}

/// An upload to the local directory; dropped without [`LocalUpload::finish`], its temporary
/// file is removed.
pub struct LocalUpload {
    /// The objects directory it moves into.
    objects: PathBuf,
    path: PathBuf,
    file: Option<FlushingFile>,
    hasher: Sha256,
    written: u64,
    expected: Hash,
    declared_len: u64,
}

impl ObjectUpload for LocalUpload {
    fn write(&mut self, piece: &[u8]) -> Result<(), ArchiveStoreError> {
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
    fn written(&self) -> u64 {
        self.written
    }

    fn finish(mut self: Box<Self>) -> Result<bool, ArchiveStoreError> {
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
        let target = self.objects.join(hex::encode(self.expected));
        if target.is_file() {
            fs::remove_file(&self.path).map_err(io(&self.path))?;
            return Ok(false);
        }
        fs::rename(&self.path, &target).map_err(io(&target))?;
        File::open(&self.objects)
            .and_then(|d| d.sync_all())
            .map_err(io(&self.objects))?;
        Ok(true)
    }
}

impl Drop for LocalUpload {
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
