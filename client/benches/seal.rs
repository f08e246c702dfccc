//! Criterion benchmarks of archive encryption over a 64 MiB in-memory archive, with the raw
//! primitives beside them to show what the chunking and hashing cost:
//! - `seal/encrypt`: `encrypt_to` into a sink (AES-256-GCM and SHA-256 of the ciphertext);
//! - `seal/decrypt`: `decrypt_to` into a sink (the same, plus the checks);
//! - `raw/aes256gcm_1MiB_chunks`: AES-256-GCM alone, in place, 1 MiB at a time;
//! - `raw/sha256`: SHA-256 alone over the whole buffer.

use std::hint::black_box;
use std::io;
use std::time::Duration;

use aes_gcm::aead::{AeadInOut, Nonce};
use aes_gcm::{Aes256Gcm, KeyInit};
use cradle_client::seal::{
    ArchiveKey, CHUNK_BYTES, EncryptingReader, ciphertext_digest, decrypt_to, encrypt_to,
};
use cradle_ledger::ArchiveId;
use criterion::measurement::WallTime;
use criterion::{BenchmarkGroup, Criterion, Throughput, criterion_group, criterion_main};
use sha2::{Digest, Sha256};

const ARCHIVE_BYTES: usize = 64 << 20;

fn archive() -> Vec<u8> {
    (0..ARCHIVE_BYTES)
        .map(|i| (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15).to_le_bytes()[7])
        .collect()
}

fn configure<'a>(c: &'a mut Criterion, name: &str) -> BenchmarkGroup<'a, WallTime> {
    let mut group = c.benchmark_group(name);
    group.sample_size(10);
    group.warm_up_time(Duration::from_secs(1));
    group.measurement_time(Duration::from_secs(3));
    group.throughput(Throughput::Bytes(ARCHIVE_BYTES as u64));
    group
}

fn seal(c: &mut Criterion) {
    let key = ArchiveKey::from_bytes(&[0x11; 32]);
    let archive_id = ArchiveId([0x22; 32]);
    let plaintext = archive();
    let mut ciphertext = Vec::new();
    let summary = encrypt_to(
        &key,
        &archive_id,
        &plaintext[..],
        &mut ciphertext,
        &mut |_| {},
    )
    .expect("encrypting the bench archive");

    let mut group = configure(c, "seal");
    group.bench_function("encrypt", |b| {
        b.iter(|| {
            encrypt_to(
                &key,
                &archive_id,
                black_box(&plaintext[..]),
                io::sink(),
                &mut |_| {},
            )
            .expect("encrypt")
        })
    });
    // What `archive put` does first: the ciphertext's hash, encryption and hashing on two threads.
    group.bench_function("digest", |b| {
        b.iter(|| ciphertext_digest(&key, &archive_id, black_box(&plaintext[..])).expect("digest"))
    });
    // What `archive put` uploads: encryption alone, the hash being known.
    group.bench_function("encrypt_upload_pass", |b| {
        b.iter(|| {
            let mut reader =
                EncryptingReader::without_digest(&key, &archive_id, black_box(&plaintext[..]));
            io::copy(&mut reader, &mut io::sink()).expect("encrypt")
        })
    });
    group.bench_function("decrypt", |b| {
        b.iter(|| {
            decrypt_to(
                &key,
                &archive_id,
                &summary.ciphertext_sha256,
                summary.ciphertext_bytes,
                black_box(&ciphertext[..]),
                io::sink(),
                &mut |_| {},
            )
            .expect("decrypt")
        })
    });
    group.finish();
}

fn raw(c: &mut Criterion) {
    let cipher = Aes256Gcm::new(&[0x33u8; 32].into());
    let plaintext = archive();
    let mut buf = plaintext.clone();

    let mut group = configure(c, "raw");
    group.bench_function("aes256gcm_1MiB_chunks", |b| {
        b.iter(|| {
            for (i, chunk) in buf.chunks_mut(CHUNK_BYTES).enumerate() {
                let mut nonce = [0u8; 12];
                nonce[..8].copy_from_slice(&(i as u64).to_be_bytes());
                let tag = cipher
                    .encrypt_inout_detached(&Nonce::<Aes256Gcm>::from(nonce), b"", chunk.into())
                    .expect("aes-gcm");
                black_box(tag);
            }
        })
    });
    group.bench_function("sha256", |b| {
        b.iter(|| {
            let digest: [u8; 32] = Sha256::digest(black_box(&plaintext)).into();
            digest
        })
    });
    group.finish();
}

criterion_group!(benches, seal, raw);
criterion_main!(benches);
