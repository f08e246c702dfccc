//! RFC 9162 inclusion and consistency proofs of the access logs (inside audit and consistency
//! answers): the verifiers on sizes, indices, roots and paths from the input must refuse
//! without panicking, and agree with the root they compute. Then the same for proofs the
//! prover makes over a small log built from the input, which must verify.
#![no_main]

use cradle_ledger::merkle::log::{
    MemoryLog, consistency_proof, inclusion_proof, leaf_hash, root_from_consistency_proof,
    root_from_inclusion_proof, verify_consistency, verify_inclusion,
};
use libfuzzer_sys::fuzz_target;

fn u64_at(b: &[u8]) -> u64 {
    let mut a = [0u8; 8];
    a.copy_from_slice(&b[..8]);
    u64::from_le_bytes(a)
}

fn h32(b: &[u8]) -> [u8; 32] {
    let mut a = [0u8; 32];
    a.copy_from_slice(&b[..32]);
    a
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 80 {
        return;
    }
    let (a, b) = (u64_at(data), u64_at(&data[8..]));
    let (h1, h2) = (h32(&data[16..]), h32(&data[48..]));
    let path: Vec<[u8; 32]> = data[80..].chunks_exact(32).take(128).map(h32).collect();

    let computed = root_from_inclusion_proof(&h1, a, b, &path);
    let verified = verify_inclusion(&h1, a, b, &path, &h2);
    assert_eq!(verified.is_ok(), computed.as_ref().is_ok_and(|r| *r == h2));
    let computed = root_from_consistency_proof(a, b, &path, &h1);
    let verified = verify_consistency(a, b, &path, &h1, &h2);
    assert_eq!(verified.is_ok(), computed.as_ref().is_ok_and(|r| *r == h2));

    // A log of up to 300 leaves from the input: every proof the prover makes verifies.
    let n = (a % 300) + 1;
    let mut log = MemoryLog::new();
    for i in 0..n {
        let mut leaf = i.to_le_bytes().to_vec();
        leaf.extend_from_slice(&h1);
        log.append(leaf_hash(&leaf));
    }
    let index = b % n;
    let root = log.root();
    let mut leaf = index.to_le_bytes().to_vec();
    leaf.extend_from_slice(&h1);
    match inclusion_proof(&log, index, n) {
        Ok(p) => assert!(verify_inclusion(&leaf_hash(&leaf), index, n, &p, &root).is_ok()),
        Err(e) => panic!("no inclusion proof for leaf {index} of {n}: {e}"),
    }
    let size1 = (u64::from(h2[0]) % n) + 1;
    let Ok(root1) = log.root_at(size1) else {
        panic!("the log has no root at size {size1} of {n}");
    };
    match consistency_proof(&log, size1, n) {
        Ok(p) => assert!(verify_consistency(size1, n, &p, &root1, &root).is_ok()),
        Err(e) => panic!("no consistency proof from {size1} to {n}: {e}"),
    }
});
