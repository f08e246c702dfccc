//! A 2 GiB archive encrypts and decrypts in under 64 MiB of memory. Its own test binary, so the
//! process's peak resident size (VmHWM) measures this test alone.
#![allow(clippy::unwrap_used)]

use std::io::{self, Read, Write};

use cradle_client::seal::{ArchiveKey, EncryptingReader, ciphertext_digest, decrypt_to};
use cradle_ledger::ArchiveId;
use sha2::{Digest, Sha256};

/// 2 GiB and a few bytes, so the last chunk is a short one.
const PLAINTEXT_BYTES: u64 = (2 << 30) + 7;
const PEAK_BYTES_MAX: u64 = 64 << 20;

/// A deterministic plaintext that never exists in memory: word `i` is a function of `i`.
/// Hashes what it yields, so the decrypted output can be compared with it.
struct Pattern {
    pos: u64,
    len: u64,
    hasher: Sha256,
}

impl Pattern {
    fn new(len: u64) -> Self {
        Self {
            pos: 0,
            len,
            hasher: Sha256::new(),
        }
    }
}

impl Read for Pattern {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = buf.len().min((self.len - self.pos) as usize);
        for (k, b) in buf[..n].iter_mut().enumerate() {
            let i = self.pos + k as u64;
            let word = (i / 8).wrapping_mul(0x9e37_79b9_7f4a_7c15);
            *b = word.to_le_bytes()[(i % 8) as usize];
        }
        self.hasher.update(&buf[..n]);
        self.pos += n as u64;
        Ok(n)
    }
}

/// An output that keeps only the SHA-256 and length of what it is given.
struct HashingSink {
    hasher: Sha256,
    bytes: u64,
}

impl Write for HashingSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        self.bytes += buf.len() as u64;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

fn peak_resident_bytes() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status
        .lines()
        .find(|l| l.starts_with("VmHWM:"))
        .unwrap_or_else(|| panic!("no VmHWM in /proc/self/status:\n{status}"));
    let kib: u64 = line
        .trim_start_matches("VmHWM:")
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .unwrap();
    kib * 1024
}

#[test]
fn two_gib_archive_round_trips_in_under_64_mib() {
    let key = ArchiveKey::from_bytes(&[0x5a; 32]);
    let archive = ArchiveId([0x3c; 32]);

    // First pass: the ciphertext's hash, as a custodian learns it before uploading.
    let summary = ciphertext_digest(&key, &archive, Pattern::new(PLAINTEXT_BYTES)).unwrap();
    assert_eq!(summary.plaintext_bytes, PLAINTEXT_BYTES);

    // Second pass: ciphertext streams straight from the encrypting reader into decryption.
    let mut encrypting = EncryptingReader::new(&key, &archive, Pattern::new(PLAINTEXT_BYTES));
    let mut sink = HashingSink {
        hasher: Sha256::new(),
        bytes: 0,
    };
    let written = decrypt_to(
        &key,
        &archive,
        &summary.ciphertext_sha256,
        summary.ciphertext_bytes,
        &mut encrypting,
        &mut sink,
        &mut |_| {},
    )
    .unwrap();
    let plaintext_hash: [u8; 32] = encrypting.get_ref().hasher.clone().finalize().into();
    assert_eq!(encrypting.get_ref().pos, PLAINTEXT_BYTES);
    assert_eq!(encrypting.finish().unwrap(), summary);

    assert_eq!(written, PLAINTEXT_BYTES);
    assert_eq!(sink.bytes, PLAINTEXT_BYTES);
    let out_hash: [u8; 32] = sink.hasher.finalize().into();
    assert_eq!(
        out_hash, plaintext_hash,
        "decrypted text differs from the plaintext"
    );

    let peak = peak_resident_bytes();
    assert!(
        peak < PEAK_BYTES_MAX,
        "peak resident size {} MiB, want under {} MiB",
        peak >> 20,
        PEAK_BYTES_MAX >> 20
    );
    eprintln!(
        "peak resident size: {:.1} MiB",
        peak as f64 / (1 << 20) as f64
    );
}
