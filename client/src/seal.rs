//! Streaming encryption of archive files, in constant memory.
//!
//! An archive is cut into chunks of [`CHUNK_BYTES`] of plaintext (the last one shorter, and an
//! empty archive is one empty chunk). Each chunk is sealed with AES-256-GCM under the archive's
//! own key and stored as `ciphertext || 16-byte tag`. The nonce is `index (u64 BE) || final flag
//! || 0 0 0` and the associated data is `TAG_CHUNK || archive id || index (u64 BE) || final
//! flag`, so every chunk is bound to its archive, its position and whether it ends the archive:
//! reordered, dropped, altered or appended chunks, a cut at a chunk boundary, or another
//! archive's ciphertext under the same key all fail to open.
//!
//! Since the nonce is a function of the chunk index, encryption is deterministic for a given key,
//! archive and plaintext: [`ciphertext_digest`] learns the ciphertext's SHA-256 (which the ledger
//! records) before the upload, and a second pass produces the same bytes. A key must therefore
//! never seal two different plaintexts: every archive gets a fresh [`ArchiveKey`].
//!
//! Memory stays at a few chunk buffers (about 1 MiB each) whatever the archive's size.

use std::io::{self, Read, Write};
use std::sync::mpsc;

use aes_gcm::aead::{AeadInOut, Nonce};
use aes_gcm::{Aes256Gcm, KeyInit, Tag};
use cradle_ledger::ArchiveId;
use sha2::{Digest, Sha256};
use zeroize::Zeroizing;

/// Plaintext bytes per chunk.
pub const CHUNK_BYTES: usize = 1 << 20;
/// Bytes of AES-GCM tag after each chunk's ciphertext.
pub const TAG_BYTES: usize = 16;
/// Bytes of a sealed full chunk.
const SEALED_CHUNK_BYTES: usize = CHUNK_BYTES + TAG_BYTES;
/// Associated-data prefix of every chunk; NUL-terminated like every Cradle tag.
pub const TAG_CHUNK: &[u8] = b"cradle.archive.chunk.v1\0";

/// Why an archive could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
pub enum SealError {
    #[error("could not read or write the archive: {0}")]
    Io(#[from] io::Error),
    #[error("the random number source failed: {0}")]
    Random(String),
    /// Chunk `index` (from 0) was altered, is out of place, or belongs to another archive or key.
    #[error("part {index} of the archive is damaged or altered, or the key does not fit it")]
    ChunkAuth { index: u64 },
    #[error("the archive is incomplete: its end is missing")]
    Truncated,
    #[error("the archive has extra data after its end")]
    TrailingData,
    #[error("the archive ends after {got} bytes but {expected} bytes were expected")]
    LengthMismatch { expected: u64, got: u64 },
    #[error("the archive's SHA-256 differs from the one recorded on the ledger")]
    HashMismatch,
    #[error("encryption was stopped before the end of the archive")]
    Unfinished,
    #[error("this encryption pass did not hash its output")]
    NoDigest,
}

/// A fresh 256-bit key for one archive; wiped when dropped.
pub struct ArchiveKey(Zeroizing<[u8; 32]>);

impl ArchiveKey {
    /// A new key from the operating system's random source.
    pub fn generate() -> Result<Self, SealError> {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut()).map_err(|e| SealError::Random(e.to_string()))?;
        Ok(Self(key))
    }

    /// A key known already, for instance unwrapped from the ledger.
    pub fn from_bytes(bytes: &[u8; 32]) -> Self {
        Self(Zeroizing::new(*bytes))
    }

    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }

    fn cipher(&self) -> Aes256Gcm {
        Aes256Gcm::new((&*self.0).into())
    }
}

impl std::fmt::Debug for ArchiveKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("ArchiveKey(…)")
    }
}

/// What sealing an archive produced: the figures a custodian registers on the ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SealSummary {
    pub plaintext_bytes: u64,
    pub ciphertext_bytes: u64,
    pub ciphertext_sha256: [u8; 32],
}

/// Length of the ciphertext of a plaintext of `plaintext_len` bytes (saturating at `u64::MAX`,
/// far beyond any archive).
pub fn ciphertext_len(plaintext_len: u64) -> u64 {
    let chunks = plaintext_len.div_ceil(CHUNK_BYTES as u64).max(1);
    plaintext_len.saturating_add(chunks.saturating_mul(TAG_BYTES as u64))
}

/// Length of the plaintext inside a ciphertext of `ciphertext_len` bytes, or `None` if no
/// ciphertext has that length (its last chunk would be shorter than a tag).
pub fn plaintext_len(ciphertext_len: u64) -> Option<u64> {
    let sealed = SEALED_CHUNK_BYTES as u64;
    let full = ciphertext_len / sealed;
    let rest = ciphertext_len % sealed;
    match rest {
        0 if full > 0 => Some(full * CHUNK_BYTES as u64),
        r if r >= TAG_BYTES as u64 => Some(full * CHUNK_BYTES as u64 + r - TAG_BYTES as u64),
        _ => None,
    }
}

fn chunk_nonce(index: u64, last: bool) -> Nonce<Aes256Gcm> {
    let mut n = [0u8; 12];
    n[..8].copy_from_slice(&index.to_be_bytes());
    n[8] = u8::from(last);
    Nonce::<Aes256Gcm>::from(n)
}

const AAD_BYTES: usize = TAG_CHUNK.len() + 32 + 8 + 1;

fn chunk_aad(archive: &ArchiveId, index: u64, last: bool) -> [u8; AAD_BYTES] {
    let mut aad = [0u8; AAD_BYTES];
    let (tag, rest) = aad.split_at_mut(TAG_CHUNK.len());
    tag.copy_from_slice(TAG_CHUNK);
    rest[..32].copy_from_slice(&archive.0);
    rest[32..40].copy_from_slice(&index.to_be_bytes());
    rest[40] = u8::from(last);
    aad
}

/// Reads until `buf` is full or the reader ends; returns how many bytes were read.
fn read_full<R: Read + ?Sized>(r: &mut R, buf: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buf.len() {
        match r.read(&mut buf[filled..]) {
            Ok(0) => break,
            Ok(n) => filled += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(filled)
}

/// A [`Read`] that yields the ciphertext of the plaintext it reads, one chunk at a time.
///
/// It reads one byte ahead of each chunk to learn whether that chunk is the last one, so a
/// chunk is sealed only once its successor (or the end) is known. If the plaintext reader fails,
/// every later read fails too: the bytes read so far are gone and the ciphertext could not
/// continue correctly.
pub struct EncryptingReader<R: Read> {
    inner: R,
    cipher: Aes256Gcm,
    archive: ArchiveId,
    /// The current sealed chunk, `ciphertext || tag`, of which `buf[pos..end]` is still unread.
    buf: Zeroizing<Vec<u8>>,
    pos: usize,
    end: usize,
    /// First plaintext byte of the next chunk, read to learn that the current one is not last.
    peeked: Option<u8>,
    index: u64,
    sealed_last: bool,
    failed: bool,
    /// `None` for a reader made [`EncryptingReader::without_digest`].
    hasher: Option<Sha256>,
    plaintext_bytes: u64,
    ciphertext_bytes: u64,
}

impl<R: Read> EncryptingReader<R> {
    pub fn new(key: &ArchiveKey, archive: &ArchiveId, plaintext: R) -> Self {
        Self {
            inner: plaintext,
            cipher: key.cipher(),
            archive: *archive,
            buf: Zeroizing::new(vec![0u8; SEALED_CHUNK_BYTES]),
            pos: 0,
            end: 0,
            peeked: None,
            index: 0,
            sealed_last: false,
            failed: false,
            hasher: Some(Sha256::new()),
            plaintext_bytes: 0,
            ciphertext_bytes: 0,
        }
    }

    /// Like [`EncryptingReader::new`] but without hashing what it yields, for a second pass
    /// whose ciphertext hash is known already (see [`ciphertext_digest`]): it saves a SHA-256
    /// pass over the whole archive. Its [`EncryptingReader::finish`] reports
    /// [`SealError::NoDigest`].
    pub fn without_digest(key: &ArchiveKey, archive: &ArchiveId, plaintext: R) -> Self {
        let mut reader = Self::new(key, archive, plaintext);
        reader.hasher = None;
        reader
    }

    /// The plaintext reader.
    pub fn get_ref(&self) -> &R {
        &self.inner
    }

    /// Plaintext bytes read so far.
    pub fn plaintext_bytes(&self) -> u64 {
        self.plaintext_bytes
    }

    /// The summary, once every ciphertext byte has been read; [`SealError::Unfinished`] before.
    pub fn finish(self) -> Result<SealSummary, SealError> {
        if self.failed || !self.sealed_last || self.pos < self.end {
            return Err(SealError::Unfinished);
        }
        debug_assert_eq!(self.ciphertext_bytes, ciphertext_len(self.plaintext_bytes));
        let hasher = self.hasher.ok_or(SealError::NoDigest)?;
        Ok(SealSummary {
            plaintext_bytes: self.plaintext_bytes,
            ciphertext_bytes: self.ciphertext_bytes,
            ciphertext_sha256: hasher.finalize().into(),
        })
    }

    /// Seals the next chunk into `buf`; returns `false` once the last chunk has been sealed.
    fn seal_next(&mut self) -> io::Result<bool> {
        if self.failed {
            return Err(io::Error::other("an earlier read of the archive failed"));
        }
        if self.sealed_last {
            return Ok(false);
        }
        let result = self.seal_next_inner();
        if result.is_err() {
            self.failed = true;
        }
        result.map(|()| true)
    }

    fn seal_next_inner(&mut self) -> io::Result<()> {
        let mut len = 0;
        if let Some(b) = self.peeked.take() {
            self.buf[0] = b;
            len = 1;
        }
        len += read_full(&mut self.inner, &mut self.buf[len..CHUNK_BYTES])?;
        let last = if len < CHUNK_BYTES {
            true
        } else {
            let mut one = [0u8; 1];
            let more = read_full(&mut self.inner, &mut one)? == 1;
            if more {
                self.peeked = Some(one[0]);
            }
            !more
        };

        let (body, tag_out) = self.buf[..len + TAG_BYTES].split_at_mut(len);
        let tag = self
            .cipher
            .encrypt_inout_detached(
                &chunk_nonce(self.index, last),
                &chunk_aad(&self.archive, self.index, last),
                body.into(),
            )
            // Only refused for messages beyond GCM's 64 GiB limit; a chunk is 1 MiB.
            .map_err(|_| io::Error::other("aes-gcm refused a chunk"))?;
        tag_out.copy_from_slice(&tag);

        let sealed = &self.buf[..len + TAG_BYTES];
        if let Some(h) = self.hasher.as_mut() {
            h.update(sealed);
        }
        self.plaintext_bytes += len as u64;
        self.ciphertext_bytes += sealed.len() as u64;
        self.pos = 0;
        self.end = sealed.len();
        self.index += 1;
        self.sealed_last = last;
        Ok(())
    }
}

impl<R: Read> Read for EncryptingReader<R> {
    fn read(&mut self, out: &mut [u8]) -> io::Result<usize> {
        if out.is_empty() {
            return Ok(0);
        }
        while self.pos == self.end {
            if !self.seal_next()? {
                return Ok(0);
            }
        }
        let n = out.len().min(self.end - self.pos);
        out[..n].copy_from_slice(&self.buf[self.pos..self.pos + n]);
        self.pos += n;
        Ok(n)
    }
}

/// Encrypts `plaintext` into `out`. `progress` is called after each chunk with the plaintext
/// bytes read so far.
pub fn encrypt_to<R: Read, W: Write>(
    key: &ArchiveKey,
    archive: &ArchiveId,
    plaintext: R,
    mut out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<SealSummary, SealError> {
    let mut reader = EncryptingReader::new(key, archive, plaintext);
    while reader.seal_next()? {
        out.write_all(&reader.buf[..reader.end])?;
        reader.pos = reader.end;
        progress(reader.plaintext_bytes);
    }
    out.flush()?;
    reader.finish()
}

/// The summary (lengths and ciphertext SHA-256) of encrypting `plaintext`, without keeping the
/// ciphertext: encryption is deterministic, so a later [`encrypt_to`] produces these bytes.
///
/// Encryption and hashing run on two threads, a few chunks apart, so the pass takes about as
/// long as the slower of the two rather than their sum.
pub fn ciphertext_digest<R: Read>(
    key: &ArchiveKey,
    archive: &ArchiveId,
    plaintext: R,
) -> Result<SealSummary, SealError> {
    let (full_tx, full_rx) = mpsc::sync_channel::<Zeroizing<Vec<u8>>>(PIPELINE_CHUNKS);
    let (free_tx, free_rx) = mpsc::sync_channel::<Zeroizing<Vec<u8>>>(PIPELINE_CHUNKS + 1);
    for _ in 0..=PIPELINE_CHUNKS {
        let _ = free_tx.send(Zeroizing::new(Vec::with_capacity(SEALED_CHUNK_BYTES)));
    }
    std::thread::scope(|scope| {
        let hashing = scope.spawn(move || {
            let mut hasher = Sha256::new();
            for chunk in full_rx {
                hasher.update(chunk.as_slice());
                // The encrypting side may have stopped; its buffers are no longer wanted.
                let _ = free_tx.send(chunk);
            }
            <[u8; 32]>::from(hasher.finalize())
        });
        let mut reader = EncryptingReader::without_digest(key, archive, plaintext);
        let sealed = (|| -> Result<(), SealError> {
            while reader.seal_next()? {
                let mut chunk = free_rx
                    .recv()
                    .map_err(|_| io::Error::other("the hashing thread stopped"))?;
                chunk.clear();
                chunk.extend_from_slice(&reader.buf[..reader.end]);
                reader.pos = reader.end;
                full_tx
                    .send(chunk)
                    .map_err(|_| io::Error::other("the hashing thread stopped"))?;
            }
            Ok(())
        })();
        drop(full_tx);
        let digest = hashing
            .join()
            .map_err(|_| io::Error::other("the hashing thread panicked"))?;
        sealed?;
        if !reader.sealed_last {
            return Err(SealError::Unfinished);
        }
        Ok(SealSummary {
            plaintext_bytes: reader.plaintext_bytes,
            ciphertext_bytes: reader.ciphertext_bytes,
            ciphertext_sha256: digest,
        })
    })
}

/// Chunks in flight between the two threads of a pipelined pass.
const PIPELINE_CHUNKS: usize = 3;

/// What the reading side of [`decrypt_to`] hands the decrypting side.
enum ReadAhead {
    /// The next sealed chunk, read and hashed.
    Chunk(Zeroizing<Vec<u8>>),
    /// The input ended exactly where expected, and its SHA-256 is this.
    End([u8; 32]),
    Failed(SealError),
}

/// Decrypts `ciphertext` into `out`, checking it against the length and SHA-256 the ledger
/// records. Returns the number of plaintext bytes written.
///
/// Each chunk is authenticated before its plaintext is written, and the last chunk is written
/// only once the whole input has been checked (no trailing data, the expected SHA-256), so on
/// any error `out` holds at most authentic, in-order plaintext from the start of the archive,
/// never the plaintext of a bad chunk. Even so, that is a prefix of an archive that failed its
/// checks: callers write to a temporary file and rename it into place only on `Ok`.
///
/// The input is read at most one byte past `expected_len`, and `progress` is called after each
/// chunk with the ciphertext bytes read so far.
pub fn decrypt_to<R: Read + Send, W: Write>(
    key: &ArchiveKey,
    archive: &ArchiveId,
    expected_sha256: &[u8; 32],
    expected_len: u64,
    mut ciphertext: R,
    mut out: W,
    progress: &mut dyn FnMut(u64),
) -> Result<u64, SealError> {
    // No ciphertext has this length: its last chunk would end inside its tag.
    if plaintext_len(expected_len).is_none() {
        return Err(SealError::Truncated);
    }
    let chunks = expected_len.div_ceil(SEALED_CHUNK_BYTES as u64);
    let cipher = key.cipher();
    let (full_tx, full_rx) = mpsc::sync_channel::<ReadAhead>(PIPELINE_CHUNKS);
    let (free_tx, free_rx) = mpsc::sync_channel::<Zeroizing<Vec<u8>>>(PIPELINE_CHUNKS + 2);
    for _ in 0..PIPELINE_CHUNKS + 2 {
        let _ = free_tx.send(Zeroizing::new(vec![0u8; SEALED_CHUNK_BYTES]));
    }

    // `move`: when decryption stops early, the channel ends it holds are dropped before the
    // scope waits for the reading thread, so that thread's next send fails and it stops.
    std::thread::scope(move |scope| {
        // Reading and hashing on one thread, a few chunks ahead of decryption on this one.
        scope.spawn(move || {
            let mut hasher = Sha256::new();
            let mut read_bytes = 0u64;
            for _ in 0..chunks {
                let Ok(mut buf) = free_rx.recv() else {
                    return;
                };
                let want = (expected_len - read_bytes).min(SEALED_CHUNK_BYTES as u64) as usize;
                buf.resize(want, 0);
                let message = match read_full(&mut ciphertext, &mut buf[..]) {
                    Ok(got) if got == want => {
                        read_bytes += want as u64;
                        hasher.update(buf.as_slice());
                        ReadAhead::Chunk(buf)
                    }
                    Ok(_) => ReadAhead::Failed(SealError::Truncated),
                    Err(e) => ReadAhead::Failed(SealError::Io(e)),
                };
                let stop = matches!(message, ReadAhead::Failed(_));
                if full_tx.send(message).is_err() || stop {
                    return;
                }
            }
            let mut one = [0u8; 1];
            let end = match read_full(&mut ciphertext, &mut one) {
                Ok(0) => ReadAhead::End(hasher.finalize().into()),
                Ok(_) => ReadAhead::Failed(SealError::TrailingData),
                Err(e) => ReadAhead::Failed(SealError::Io(e)),
            };
            let _ = full_tx.send(end);
        });

        let stopped = || SealError::Io(io::Error::other("the reading thread stopped"));
        let mut read_bytes = 0u64;
        let mut written = 0u64;
        for index in 0..chunks {
            let last = index + 1 == chunks;
            let mut buf = match full_rx.recv().map_err(|_| stopped())? {
                ReadAhead::Chunk(buf) => buf,
                ReadAhead::Failed(e) => return Err(e),
                ReadAhead::End(_) => return Err(stopped()),
            };
            let want = buf.len();
            read_bytes += want as u64;

            let (body, tag) = buf.split_at_mut(want - TAG_BYTES);
            let tag: &Tag = (&*tag)
                .try_into()
                .map_err(|_| SealError::ChunkAuth { index })?;
            let opened = cipher.decrypt_inout_detached(
                &chunk_nonce(index, last),
                &chunk_aad(archive, index, last),
                (&mut *body).into(),
                tag,
            );
            if opened.is_err() {
                // aes-gcm checks the tag before it decrypts, so `body` still holds the
                // ciphertext: try the other end marker only to say what went wrong.
                let other = cipher.decrypt_inout_detached(
                    &chunk_nonce(index, !last),
                    &chunk_aad(archive, index, !last),
                    body.into(),
                    tag,
                );
                return Err(match (other.is_ok(), last) {
                    // Sealed as a middle chunk: the rest of the archive was cut off.
                    (true, true) => SealError::Truncated,
                    // Sealed as the last chunk: the archive really ends here.
                    (true, false) => SealError::LengthMismatch {
                        expected: expected_len,
                        got: read_bytes,
                    },
                    (false, _) => SealError::ChunkAuth { index },
                });
            }

            if last {
                // The last chunk's plaintext goes out only once the whole input checked out.
                match full_rx.recv().map_err(|_| stopped())? {
                    ReadAhead::End(digest) if &digest == expected_sha256 => {}
                    ReadAhead::End(_) => return Err(SealError::HashMismatch),
                    ReadAhead::Failed(e) => return Err(e),
                    ReadAhead::Chunk(_) => return Err(SealError::TrailingData),
                }
            }
            out.write_all(body)?;
            written += body.len() as u64;
            progress(read_bytes);
            // The reading side may have finished; then the buffer is simply dropped (zeroized).
            let _ = free_tx.send(buf);
        }
        out.flush()?;
        debug_assert_eq!(Some(written), plaintext_len(expected_len));
        Ok(written)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lengths_invert() {
        let c = CHUNK_BYTES as u64;
        for p in [0, 1, c - 1, c, c + 1, 3 * c + 5, 2048 * c] {
            assert_eq!(plaintext_len(ciphertext_len(p)), Some(p), "plaintext {p}");
        }
        assert_eq!(ciphertext_len(0), 16);
        assert_eq!(ciphertext_len(c), c + 16);
        assert_eq!(ciphertext_len(c + 1), c + 33);
        for bad in [0, 1, 15, c + 16 + 15] {
            assert_eq!(plaintext_len(bad), None, "ciphertext {bad}");
        }
    }

    #[test]
    fn nonce_and_aad_carry_index_and_end_marker() {
        let a = ArchiveId([7; 32]);
        assert_ne!(chunk_nonce(1, false), chunk_nonce(1, true));
        assert_ne!(chunk_nonce(1, false), chunk_nonce(2, false));
        assert_eq!(
            &chunk_nonce(0x0102, true)[..],
            &[0, 0, 0, 0, 0, 0, 1, 2, 1, 0, 0, 0]
        );
        let aad = chunk_aad(&a, 5, true);
        assert!(aad.starts_with(TAG_CHUNK));
        assert_eq!(&aad[24..56], &[7; 32]);
        assert_eq!(&aad[56..], &[0, 0, 0, 0, 0, 0, 0, 5, 1]);
    }
}
