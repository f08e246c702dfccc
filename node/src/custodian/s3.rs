//! The archive store on S3-compatible object storage (`[archives.s3]`), through `object_store`.
//!
//! The store's readers and writers run on blocking threads (see [`super::store`]); here they
//! drive the object store's async client through the runtime's handle. A ciphertext streams up
//! as a multipart upload of 8 MiB parts (at most four in flight), hashed as it goes, and is
//! completed only if its length and SHA-256 are the signed ones, so a damaged or cut upload
//! never becomes an object. A download streams down piece by piece and is hashed by the same
//! [`super::store::VerifiedReader`] as a local file, so a damaged object, or a server that stops
//! mid-transfer, ends the answer with an error instead of serving it.

use std::io::Read;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use cradle_genesis::config::S3Config;
use cradle_ledger::Hash;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::aws::{AmazonS3, AmazonS3Builder};
use object_store::path::Path as ObjectPath;
use object_store::{ClientOptions, ObjectStore, ObjectStoreExt, RetryConfig, WriteMultipart};
use serde::Deserialize;
use sha2::{Digest, Sha256};
use tokio::runtime::Handle;

use super::store::{ArchiveStoreError, ObjectBackend, ObjectReader, ObjectUpload};

/// Size of one multipart part, and how many may be in flight at once: a transfer holds at most
/// about 40 MiB in memory, whatever the archive's size.
const PART_BYTES: usize = 8 << 20;
const PARTS_IN_FLIGHT: usize = 4;

fn s3_error(what: &str, e: impl std::fmt::Display) -> ArchiveStoreError {
    ArchiveStoreError::Unavailable(format!("{what}: {e}"))
}

/// `credentials_file`'s contents.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Credentials {
    access_key_id: String,
    secret_access_key: String,
}

/// The credentials file: small, and readable by its owner only.
fn read_private(path: &Path) -> Result<zeroize::Zeroizing<String>, ArchiveStoreError> {
    let meta = std::fs::metadata(path).map_err(|e| s3_error("credentials file", e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        if meta.permissions().mode() & 0o077 != 0 {
            return Err(s3_error(
                "credentials file",
                format!("{} is readable by others: chmod 600 it", path.display()),
            ));
        }
    }
    if meta.len() > 4096 {
        return Err(s3_error("credentials file", "larger than 4 KiB"));
    }
    std::fs::read_to_string(path)
        .map(zeroize::Zeroizing::new)
        .map_err(|e| s3_error("credentials file", e))
}

/// A bucket holding a node's ciphertexts, under `prefix/objects/`.
pub struct S3Backend {
    store: Arc<AmazonS3>,
    /// The same bucket without retries, to tell at once whether it answers.
    probe: Arc<AmazonS3>,
    prefix: ObjectPath,
    handle: Handle,
}

impl S3Backend {
    /// Connects to the bucket of `config` (credentials from the environment, or from the file
    /// relative to `home`, which must be private). Nothing is sent until the first request.
    pub fn new(config: &S3Config, home: &Path, handle: Handle) -> Result<Self, ArchiveStoreError> {
        let mut builder = AmazonS3Builder::from_env()
            .with_endpoint(&config.endpoint)
            .with_bucket_name(&config.bucket)
            .with_region(&config.region)
            // Path-style requests: MinIO, Ceph RGW and servers on one host name want them.
            .with_virtual_hosted_style_request(false);
        if let Some(file) = &config.credentials_file {
            let path = home.join(file);
            let text = read_private(&path)?;
            let creds: Credentials = toml::from_str(&text).map_err(|e| {
                s3_error(
                    "credentials file",
                    format!(
                        "{} is not access_key_id and secret_access_key: {}",
                        path.display(),
                        e.message()
                    ),
                )
            })?;
            builder = builder
                .with_access_key_id(creds.access_key_id)
                .with_secret_access_key(creds.secret_access_key);
        }
        // The client options carry whether plain HTTP is allowed: set with them, not before.
        let client = ClientOptions::new()
            .with_allow_http(config.endpoint.starts_with("http://"))
            .with_connect_timeout(Duration::from_secs(3))
            .with_timeout(Duration::from_secs(60));
        let store = builder
            .clone()
            .with_client_options(client.clone())
            .with_retry(RetryConfig {
                max_retries: 3,
                retry_timeout: Duration::from_secs(20),
                ..RetryConfig::default()
            })
            .build()
            .map_err(|e| s3_error("configuration", e))?;
        let probe = builder
            .with_client_options(client.with_timeout(Duration::from_secs(3)))
            .with_retry(RetryConfig {
                max_retries: 0,
                retry_timeout: Duration::from_secs(3),
                ..RetryConfig::default()
            })
            .build()
            .map_err(|e| s3_error("configuration", e))?;
        let prefix = if config.prefix.is_empty() {
            ObjectPath::from("objects")
        } else {
            ObjectPath::from(config.prefix.as_str()).join("objects")
        };
        Ok(Self {
            store: Arc::new(store),
            probe: Arc::new(probe),
            prefix,
            handle,
        })
    }

    fn path(&self, sha256: &Hash) -> ObjectPath {
        self.prefix.clone().join(hex::encode(sha256))
    }
}

impl ObjectBackend for S3Backend {
    /// The bytes stored in all: every object under the prefix.
    fn stored_bytes(&self) -> Result<u64, ArchiveStoreError> {
        self.handle.block_on(async {
            let mut listing = self.store.list(Some(&self.prefix));
            let mut used = 0u64;
            while let Some(meta) = listing.next().await {
                used = used.saturating_add(meta.map_err(|e| s3_error("listing", e))?.size);
            }
            Ok(used)
        })
    }

    /// An object's size, or `None` when it is absent; asked once, without retries, so an
    /// unreachable server is known at once.
    fn size(&self, sha256: &Hash) -> Result<Option<u64>, ArchiveStoreError> {
        match self.handle.block_on(self.probe.head(&self.path(sha256))) {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(s3_error("looking up an object", e)),
        }
    }

    /// An object as it streams from the server, with its size.
    fn open(&self, sha256: &Hash) -> Result<Option<(ObjectReader, u64)>, ArchiveStoreError> {
        let got = match self.handle.block_on(self.store.get(&self.path(sha256))) {
            Ok(got) => got,
            Err(object_store::Error::NotFound { .. }) => return Ok(None),
            Err(e) => return Err(s3_error("reading an object", e)),
        };
        let len = got.meta.size;
        let reader = StreamReader {
            stream: got.into_stream(),
            buf: Bytes::new(),
            handle: self.handle.clone(),
        };
        Ok(Some((Box::new(reader), len)))
    }

    /// Starts a multipart upload of the object named by `expected`.
    fn begin(
        &self,
        expected: Hash,
        declared_len: u64,
    ) -> Result<Box<dyn ObjectUpload>, ArchiveStoreError> {
        let exists = self.size(&expected)?.is_some();
        let upload = self
            .handle
            .block_on(self.store.put_multipart(&self.path(&expected)))
            .map_err(|e| s3_error("starting an upload", e))?;
        Ok(Box::new(S3Upload {
            writer: Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES)),
            handle: self.handle.clone(),
            hasher: Sha256::new(),
            written: 0,
            expected,
            declared_len,
            exists,
        }))
    }

    /// Object storage keeps its own space.
    fn free_bytes(&self) -> Result<Option<u64>, ArchiveStoreError> {
        Ok(None)
    }
}

/// A download as a `Read`, for the blocking reader that hashes it.
struct StreamReader {
    stream: BoxStream<'static, object_store::Result<Bytes>>,
    buf: Bytes,
    handle: Handle,
}

impl Read for StreamReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.buf.is_empty() {
            match self.handle.block_on(self.stream.next()) {
                Some(Ok(bytes)) => self.buf = bytes,
                Some(Err(e)) => {
                    return Err(std::io::Error::other(format!("object storage: {e}")));
                }
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.buf.len());
        out[..n].copy_from_slice(&self.buf.split_to(n));
        Ok(n)
    }
}

/// A multipart upload in progress; dropped unfinished, it is aborted and no object appears.
pub struct S3Upload {
    writer: Option<WriteMultipart>,
    handle: Handle,
    hasher: Sha256,
    written: u64,
    expected: Hash,
    declared_len: u64,
    /// An identical object is already stored: the upload is checked, then dropped.
    exists: bool,
}

impl ObjectUpload for S3Upload {
    fn written(&self) -> u64 {
        self.written
    }

    fn write(&mut self, piece: &[u8]) -> Result<(), ArchiveStoreError> {
        let got = self.written.saturating_add(piece.len() as u64);
        if got > self.declared_len {
            return Err(ArchiveStoreError::LengthMismatch {
                declared: self.declared_len,
                got,
            });
        }
        self.hasher.update(piece);
        let Some(writer) = self.writer.as_mut() else {
            return Err(ArchiveStoreError::Interrupted(
                "upload already finished".into(),
            ));
        };
        // Parts upload on the runtime while this thread goes on; at most a few at once.
        let _runtime = self.handle.enter();
        writer.write(piece);
        self.handle
            .block_on(writer.wait_for_capacity(PARTS_IN_FLIGHT))
            .map_err(|e| s3_error("uploading a part", e))?;
        self.written = got;
        Ok(())
    }

    /// Completes the upload if its length and hash are the signed ones; aborts it otherwise.
    /// Returns whether the object is new.
    fn finish(mut self: Box<Self>) -> Result<bool, ArchiveStoreError> {
        let Some(writer) = self.writer.take() else {
            return Err(ArchiveStoreError::Interrupted(
                "upload already finished".into(),
            ));
        };
        let got: Hash = std::mem::take(&mut self.hasher).finalize().into();
        let refusal = if self.written != self.declared_len {
            Some(ArchiveStoreError::LengthMismatch {
                declared: self.declared_len,
                got: self.written,
            })
        } else if got != self.expected {
            Some(ArchiveStoreError::HashMismatch {
                expected: hex::encode(self.expected),
                got: hex::encode(got),
            })
        } else {
            None
        };
        if refusal.is_some() || self.exists {
            let _ = self.handle.block_on(writer.abort());
            return refusal.map_or(Ok(false), Err);
        }
        let _runtime = self.handle.enter();
        self.handle
            .block_on(writer.finish())
            .map_err(|e| s3_error("completing the upload", e))?;
        Ok(true)
    }
}

impl Drop for S3Upload {
    fn drop(&mut self) {
        if let Some(writer) = self.writer.take() {
            // Best effort: an abandoned multipart upload is invisible in any case, and the
            // bucket's lifecycle rule removes its parts.
            self.handle.spawn(async move {
                let _ = writer.abort().await;
            });
        }
    }
}
