//! `ed25519::verify_batch/sigs=N`: what one core pays per Ed25519 signature in a batch check,
//! the ceiling of any verifier of the chain's history on this machine. Messages of 200 bytes
//! (about a transaction's signing bytes), signed by 8 keys as institutions sign most
//! transactions; each key parsed once, as `block::verify_signatures_of` does.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};

fn bench_batch(c: &mut Criterion) {
    let keys: Vec<SigningKey> = (0u8..8)
        .map(|i| SigningKey::from_bytes(&[i.wrapping_add(1); 32]))
        .collect();
    let mut group = c.benchmark_group("ed25519");
    for n in [17usize, 340, 2_720] {
        let messages: Vec<Vec<u8>> = (0..n)
            .map(|i| {
                let mut m = vec![0u8; 200];
                m[..8].copy_from_slice(&(i as u64).to_le_bytes());
                m
            })
            .collect();
        let signatures: Vec<Signature> = messages
            .iter()
            .enumerate()
            .map(|(i, m)| keys[i % keys.len()].sign(m))
            .collect();
        let verifying: Vec<VerifyingKey> = (0..n)
            .map(|i| keys[i % keys.len()].verifying_key())
            .collect();
        let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
        group.throughput(Throughput::Elements(n as u64));
        group.bench_with_input(
            BenchmarkId::new("verify_batch", format!("sigs={n}")),
            &n,
            |b, _| {
                b.iter(|| {
                    ed25519_dalek::verify_batch(&refs, &signatures, &verifying)
                        .expect("the signatures are valid")
                })
            },
        );
        group.bench_with_input(
            BenchmarkId::new("verify_one_by_one", format!("sigs={n}")),
            &n,
            |b, _| {
                b.iter(|| {
                    for ((m, s), k) in refs.iter().zip(&signatures).zip(&verifying) {
                        k.verify_strict(m, s).expect("the signature is valid");
                    }
                })
            },
        );
    }
    group.finish();
}

criterion_group!(benches, bench_batch);
criterion_main!(benches);
