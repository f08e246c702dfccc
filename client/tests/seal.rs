//! Archive encryption: round trips at chunk-boundary sizes, and every kind of tampering is caught
//! before the plaintext of the bad chunk (or anything after it) reaches the output.
#![allow(clippy::unwrap_used)]

use std::io::{self, Read};

use cradle_client::seal::{
    ArchiveKey, CHUNK_BYTES, EncryptingReader, SealError, SealSummary, TAG_BYTES,
    ciphertext_digest, ciphertext_len, decrypt_to, encrypt_to,
};
use cradle_ledger::ArchiveId;
use sha2::{Digest, Sha256};

const C: usize = CHUNK_BYTES;
const SEALED: usize = CHUNK_BYTES + TAG_BYTES;
const ARCHIVE: ArchiveId = ArchiveId([0xa7; 32]);

fn key() -> ArchiveKey {
    ArchiveKey::from_bytes(&[0x11; 32])
}

/// Distinct bytes in every chunk, so a swapped chunk would not decrypt to the same text.
fn plaintext(len: usize) -> Vec<u8> {
    (0..len)
        .map(|i| (i as u64).wrapping_mul(2_654_435_761).rotate_right(13) as u8)
        .collect()
}

fn seal(pt: &[u8]) -> (Vec<u8>, SealSummary) {
    let mut ct = Vec::new();
    let summary = encrypt_to(&key(), &ARCHIVE, pt, &mut ct, &mut |_| {}).unwrap();
    (ct, summary)
}

/// Decrypts with the given expectations; returns the result and everything written to the output.
fn open_with(
    key: &ArchiveKey,
    archive: &ArchiveId,
    ct: &[u8],
    sha: &[u8; 32],
    len: u64,
) -> (Result<u64, SealError>, Vec<u8>) {
    let mut out = Vec::new();
    let r = decrypt_to(key, archive, sha, len, ct, &mut out, &mut |_| {});
    (r, out)
}

fn sha(data: &[u8]) -> [u8; 32] {
    Sha256::digest(data).into()
}

/// Reads at most 7 bytes at a time and is interrupted now and then, like a slow pipe.
struct Trickle<'a> {
    data: &'a [u8],
    calls: u32,
}

impl Read for Trickle<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.calls += 1;
        if self.calls.is_multiple_of(5) {
            return Err(io::ErrorKind::Interrupted.into());
        }
        let n = buf.len().min(7).min(self.data.len());
        buf[..n].copy_from_slice(&self.data[..n]);
        self.data = &self.data[n..];
        Ok(n)
    }
}

#[test]
fn round_trip_at_chunk_boundary_sizes() {
    for len in [0, 1, C - 1, C, C + 1, 3 * C + 5] {
        let pt = plaintext(len);
        let mut seen = Vec::new();
        let mut ct = Vec::new();
        let summary =
            encrypt_to(&key(), &ARCHIVE, &pt[..], &mut ct, &mut |n| seen.push(n)).unwrap();
        assert_eq!(ct.len() as u64, ciphertext_len(len as u64), "len {len}");
        assert_eq!(summary.plaintext_bytes, len as u64);
        assert_eq!(summary.ciphertext_bytes, ct.len() as u64);
        assert_eq!(summary.ciphertext_sha256, sha(&ct));
        assert_eq!(
            seen.last().copied(),
            Some(len as u64),
            "progress for len {len}"
        );
        if len > 0 {
            assert_ne!(
                &ct[..len.min(C)],
                &pt[..len.min(C)],
                "ciphertext is not plaintext"
            );
        }

        let mut progress = Vec::new();
        let mut out = Vec::new();
        let n = decrypt_to(
            &key(),
            &ARCHIVE,
            &summary.ciphertext_sha256,
            summary.ciphertext_bytes,
            &ct[..],
            &mut out,
            &mut |n| progress.push(n),
        )
        .unwrap();
        assert_eq!(n, len as u64);
        assert!(out == pt, "len {len}: decrypted text differs");
        assert_eq!(progress.last().copied(), Some(ct.len() as u64));
    }
}

#[test]
fn empty_archive_is_one_empty_final_chunk() {
    let (ct, summary) = seal(&[]);
    assert_eq!(ct.len(), TAG_BYTES);
    assert_eq!(summary.ciphertext_bytes, 16);
    let (r, out) = open_with(&key(), &ARCHIVE, &ct, &summary.ciphertext_sha256, 16);
    assert_eq!(r.unwrap(), 0);
    assert!(out.is_empty());
}

#[test]
fn reader_digest_and_encrypt_to_agree_and_are_deterministic() {
    let pt = plaintext(2 * C + 3);
    let (ct, summary) = seal(&pt);

    let mut reader = EncryptingReader::new(
        &key(),
        &ARCHIVE,
        Trickle {
            data: &pt,
            calls: 0,
        },
    );
    let mut via_reader = Vec::new();
    let mut small = [0u8; 1000];
    loop {
        let n = reader.read(&mut small).unwrap();
        if n == 0 {
            break;
        }
        via_reader.extend_from_slice(&small[..n]);
    }
    assert_eq!(reader.finish().unwrap(), summary);
    assert!(via_reader == ct, "reader and encrypt_to disagree");
    assert_eq!(
        ciphertext_digest(&key(), &ARCHIVE, &pt[..]).unwrap(),
        summary
    );
}

#[test]
fn finish_before_the_end_is_an_error() {
    let pt = plaintext(C + 10);
    let mut reader = EncryptingReader::new(&key(), &ARCHIVE, &pt[..]);
    let mut buf = vec![0u8; 100];
    reader.read_exact(&mut buf).unwrap();
    assert!(matches!(reader.finish(), Err(SealError::Unfinished)));
}

/// Four chunks: three full and a last one of 5 bytes.
fn four_chunks() -> (Vec<u8>, Vec<u8>, SealSummary) {
    let pt = plaintext(3 * C + 5);
    let (ct, summary) = seal(&pt);
    assert_eq!(ct.len(), 3 * SEALED + 5 + TAG_BYTES);
    (pt, ct, summary)
}

/// Asserts the error and that the output got exactly the first `good_chunks` chunks' plaintext.
fn assert_refused(
    got: (Result<u64, SealError>, Vec<u8>),
    want: fn(&SealError) -> bool,
    pt: &[u8],
    good_chunks: usize,
) {
    let (r, out) = got;
    match r {
        Err(ref e) if want(e) => {}
        other => panic!("wanted a specific error, got {other:?}"),
    }
    assert_eq!(
        out.len(),
        good_chunks * C,
        "output should hold exactly {good_chunks} good chunks"
    );
    assert!(out == pt[..out.len()], "output is not the archive's prefix");
}

#[test]
fn swapped_chunks_are_refused_at_the_first_one_out_of_place() {
    let (pt, mut ct, s) = four_chunks();
    let (a, b) = ct.split_at_mut(2 * SEALED);
    a[SEALED..].swap_with_slice(&mut b[..SEALED]);
    let got = open_with(
        &key(),
        &ARCHIVE,
        &ct,
        &s.ciphertext_sha256,
        s.ciphertext_bytes,
    );
    assert_refused(
        got,
        |e| matches!(e, SealError::ChunkAuth { index: 1 }),
        &pt,
        1,
    );
}

#[test]
fn dropped_middle_chunk_is_refused() {
    let (pt, ct, s) = four_chunks();
    let mut cut = ct[..SEALED].to_vec();
    cut.extend_from_slice(&ct[2 * SEALED..]);
    let got = open_with(
        &key(),
        &ARCHIVE,
        &cut,
        &s.ciphertext_sha256,
        s.ciphertext_bytes,
    );
    assert_refused(
        got,
        |e| matches!(e, SealError::ChunkAuth { index: 1 }),
        &pt,
        1,
    );
    // Even if the recorded length and hash were changed to match.
    let got = open_with(&key(), &ARCHIVE, &cut, &sha(&cut), cut.len() as u64);
    assert_refused(
        got,
        |e| matches!(e, SealError::ChunkAuth { index: 1 }),
        &pt,
        1,
    );
}

#[test]
fn dropped_last_chunk_is_truncation() {
    let (pt, ct, s) = four_chunks();
    let cut = &ct[..3 * SEALED];
    let got = open_with(
        &key(),
        &ARCHIVE,
        cut,
        &s.ciphertext_sha256,
        s.ciphertext_bytes,
    );
    assert_refused(got, |e| matches!(e, SealError::Truncated), &pt, 3);
    // With a length and hash that match the cut, the end marker still gives it away: chunk 2
    // was not sealed as the last one, and it is not written.
    let got = open_with(&key(), &ARCHIVE, cut, &sha(cut), cut.len() as u64);
    assert_refused(got, |e| matches!(e, SealError::Truncated), &pt, 2);
}

#[test]
fn cut_inside_a_chunk_is_truncation() {
    let (pt, ct, s) = four_chunks();
    let cut = &ct[..2 * SEALED + 1000];
    let got = open_with(
        &key(),
        &ARCHIVE,
        cut,
        &s.ciphertext_sha256,
        s.ciphertext_bytes,
    );
    assert_refused(got, |e| matches!(e, SealError::Truncated), &pt, 2);
    // A recorded length no ciphertext can have (the last chunk would end inside its tag).
    let got = open_with(&key(), &ARCHIVE, cut, &sha(cut), (SEALED + 10) as u64);
    assert_refused(got, |e| matches!(e, SealError::Truncated), &pt, 0);
}

#[test]
fn appended_bytes_are_trailing_data_and_the_last_chunk_is_withheld() {
    let (pt, mut ct, s) = four_chunks();
    ct.extend_from_slice(b"extra");
    let got = open_with(
        &key(),
        &ARCHIVE,
        &ct,
        &s.ciphertext_sha256,
        s.ciphertext_bytes,
    );
    assert_refused(got, |e| matches!(e, SealError::TrailingData), &pt, 3);
}

#[test]
fn chunk_appended_after_the_last_one_is_a_length_mismatch() {
    // Two full chunks, the second sealed as last; then a third taken from a longer archive under
    // the same key, and a recorded length that counts it.
    let pt = plaintext(3 * C);
    let (short_ct, _) = seal(&pt[..2 * C]);
    let (long_ct, _) = seal(&pt);
    let mut forged = short_ct.clone();
    forged.extend_from_slice(&long_ct[2 * SEALED..]);
    let got = open_with(
        &key(),
        &ARCHIVE,
        &forged,
        &sha(&forged),
        forged.len() as u64,
    );
    let want = |e: &SealError| {
        matches!(e, SealError::LengthMismatch { expected, got }
            if *expected == 3 * SEALED as u64 && *got == 2 * SEALED as u64)
    };
    assert_refused(got, want, &pt, 1);
}

#[test]
fn flipped_bit_in_second_chunk_is_refused() {
    let (pt, mut ct, s) = four_chunks();
    ct[SEALED + 12345] ^= 0x04;
    let got = open_with(
        &key(),
        &ARCHIVE,
        &ct,
        &s.ciphertext_sha256,
        s.ciphertext_bytes,
    );
    assert_refused(
        got,
        |e| matches!(e, SealError::ChunkAuth { index: 1 }),
        &pt,
        1,
    );
    // The same with the hash recomputed: authentication, not the hash, catches it.
    let got = open_with(&key(), &ARCHIVE, &ct, &sha(&ct), s.ciphertext_bytes);
    assert_refused(
        got,
        |e| matches!(e, SealError::ChunkAuth { index: 1 }),
        &pt,
        1,
    );
}

#[test]
fn another_archive_id_or_key_opens_nothing() {
    let (pt, ct, s) = four_chunks();
    let other = ArchiveId([0xa8; 32]);
    let got = open_with(
        &key(),
        &other,
        &ct,
        &s.ciphertext_sha256,
        s.ciphertext_bytes,
    );
    assert_refused(
        got,
        |e| matches!(e, SealError::ChunkAuth { index: 0 }),
        &pt,
        0,
    );
    let wrong = ArchiveKey::from_bytes(&[0x12; 32]);
    let got = open_with(
        &wrong,
        &ARCHIVE,
        &ct,
        &s.ciphertext_sha256,
        s.ciphertext_bytes,
    );
    assert_refused(
        got,
        |e| matches!(e, SealError::ChunkAuth { index: 0 }),
        &pt,
        0,
    );
}

#[test]
fn wrong_expected_hash_withholds_the_last_chunk() {
    let (pt, ct, s) = four_chunks();
    let mut bad = s.ciphertext_sha256;
    bad[0] ^= 1;
    let got = open_with(&key(), &ARCHIVE, &ct, &bad, s.ciphertext_bytes);
    assert_refused(got, |e| matches!(e, SealError::HashMismatch), &pt, 3);
}

#[test]
fn generated_keys_differ() {
    let a = ArchiveKey::generate().unwrap();
    let b = ArchiveKey::generate().unwrap();
    assert_ne!(a.as_bytes(), b.as_bytes());
    assert!(!format!("{a:?}").contains(&hex::encode(a.as_bytes())));
}
