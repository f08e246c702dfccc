//! Checks `merkle::log` against the transparency-dev/merkle RFC 6962 vectors in
//! `shared/testdata/rfc6962` (beside the repository clone), and checks that the proofs we
//! generate verify and equal the reference proofs where the trees coincide.
//!
//! Every JSON file is one case; `wantErr` says whether a verifier must refuse it. The Go vectors
//! carry hashes as byte strings of any length, while our API takes `[u8; 32]`:
//! - a leaf hash that is not 32 bytes is refused at decoding (Go's verifier refuses it too, with
//!   an explicit length check);
//! - a root or proof element that is not 32 bytes (for example "don't care 1") is replaced by
//!   a stand-in, SHA-256 of a tag and the bytes, so equal inputs stay equal and different ones
//!   stay different, and the verifier itself decides the case. Go compares roots as opaque
//!   bytes, so this keeps its meaning: the one accepted case with such roots says that equal
//!   sizes with equal roots and an empty proof are consistent.

use base64::Engine;
use base64::engine::general_purpose::STANDARD;
use cradle_ledger::merkle::Hash;
use cradle_ledger::merkle::log::{
    MemoryLog, consistency_proof, inclusion_proof, leaf_hash, root_from_inclusion_proof,
    verify_consistency, verify_inclusion,
};
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

fn vectors_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/testdata/rfc6962")
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let entries = std::fs::read_dir(dir).unwrap_or_else(|e| panic!("read {}: {e}", dir.display()));
    for entry in entries {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|ext| ext == "json") {
            out.push(path);
        }
    }
}

/// Why a case was refused: while decoding it into our types, or by the verifier.
enum Refusal {
    Decode(String),
    Verifier(String),
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Decode(why) => write!(f, "refused at decode: {why}"),
            Refusal::Verifier(why) => write!(f, "refused by the verifier: {why}"),
        }
    }
}

fn bytes_field(case: &Value, name: &str) -> Result<Vec<u8>, Refusal> {
    match case.get(name) {
        // Go encodes a nil byte slice as null: the empty string of bytes.
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::String(s)) => STANDARD
            .decode(s)
            .map_err(|e| Refusal::Decode(format!("{name}: bad base64: {e}"))),
        Some(other) => Err(Refusal::Decode(format!("{name}: not a string: {other}"))),
    }
}

fn u64_field(case: &Value, name: &str) -> Result<u64, Refusal> {
    case.get(name)
        .and_then(Value::as_u64)
        .ok_or_else(|| Refusal::Decode(format!("{name}: missing or not a u64")))
}

fn stand_in(bytes: &[u8]) -> Hash {
    match <Hash>::try_from(bytes) {
        Ok(hash) => hash,
        Err(_) => Sha256::new()
            .chain_update(b"cradle test stand-in for a non-32-byte value")
            .chain_update(bytes)
            .finalize()
            .into(),
    }
}

fn root_field(case: &Value, name: &str) -> Result<Hash, Refusal> {
    Ok(stand_in(&bytes_field(case, name)?))
}

fn leaf_field(case: &Value, name: &str) -> Result<Hash, Refusal> {
    let bytes = bytes_field(case, name)?;
    <Hash>::try_from(bytes.as_slice())
        .map_err(|_| Refusal::Decode(format!("{name}: {} bytes, want 32", bytes.len())))
}

fn proof_field(case: &Value) -> Result<Vec<Hash>, Refusal> {
    match case.get("proof") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Null => Ok(stand_in(&[])),
                Value::String(s) => STANDARD
                    .decode(s)
                    .map(|b| stand_in(&b))
                    .map_err(|e| Refusal::Decode(format!("proof: bad base64: {e}"))),
                other => Err(Refusal::Decode(format!("proof: not a string: {other}"))),
            })
            .collect(),
        Some(other) => Err(Refusal::Decode(format!("proof: not an array: {other}"))),
    }
}

/// A decoded happy-path case, kept to compare against our own generator.
enum Happy {
    Inclusion {
        index: u64,
        size: u64,
        leaf: Hash,
        root: Hash,
        proof: Vec<Hash>,
    },
    Consistency {
        size1: u64,
        size2: u64,
        root1: Hash,
        root2: Hash,
        proof: Vec<Hash>,
    },
}

fn run_inclusion(case: &Value) -> Result<Happy, Refusal> {
    let index = u64_field(case, "leafIdx")?;
    let size = u64_field(case, "treeSize")?;
    let root = root_field(case, "root")?;
    let leaf = leaf_field(case, "leafHash")?;
    let proof = proof_field(case)?;
    verify_inclusion(&leaf, index, size, &proof, &root)
        .map_err(|e| Refusal::Verifier(e.to_string()))?;
    let recomputed = root_from_inclusion_proof(&leaf, index, size, &proof)
        .map_err(|e| Refusal::Verifier(e.to_string()))?;
    assert_eq!(
        recomputed, root,
        "root_from_inclusion_proof disagrees with verify_inclusion"
    );
    Ok(Happy::Inclusion {
        index,
        size,
        leaf,
        root,
        proof,
    })
}

fn run_consistency(case: &Value) -> Result<Happy, Refusal> {
    let size1 = u64_field(case, "size1")?;
    let size2 = u64_field(case, "size2")?;
    let root1 = root_field(case, "root1")?;
    let root2 = root_field(case, "root2")?;
    let proof = proof_field(case)?;
    verify_consistency(size1, size2, &proof, &root1, &root2)
        .map_err(|e| Refusal::Verifier(e.to_string()))?;
    Ok(Happy::Consistency {
        size1,
        size2,
        root1,
        root2,
        proof,
    })
}

#[derive(Default, Debug)]
struct Counts {
    cases: usize,
    accepted: usize,
    refused_by_verifier: usize,
    refused_at_decode: usize,
}

/// The RFC 6962 / Certificate Transparency reference leaves the vectors' trees are built from.
const REFERENCE_LEAVES: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// 64 leaves: the 8 reference leaves, then our own, so every prefix of up to 8 leaves is one of
/// the reference trees.
fn reference_log() -> (MemoryLog, Vec<Hash>) {
    let mut leaves: Vec<Hash> = REFERENCE_LEAVES
        .iter()
        .map(|h| leaf_hash(&hex::decode(h).expect("hex")))
        .collect();
    leaves.extend((8u32..64).map(|i| leaf_hash(&i.to_be_bytes())));
    let mut log = MemoryLog::new();
    for leaf in &leaves {
        log.append(*leaf);
    }
    (log, leaves)
}

#[test]
fn rfc6962_vectors_verify_and_match_generated_proofs() {
    let dir = vectors_dir();
    let mut files = Vec::new();
    json_files(&dir, &mut files);
    files.sort();

    let (mut inclusion, mut consistency) = (Counts::default(), Counts::default());
    let mut happy = Vec::new();
    let mut failures = Vec::new();
    for path in &files {
        let name = path
            .strip_prefix(&dir)
            .unwrap_or(path)
            .display()
            .to_string();
        let text = std::fs::read_to_string(path).expect("read vector");
        let case: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let want_err = match case.get("wantErr").and_then(Value::as_bool) {
            Some(w) => w,
            // The README: happy-path files verify, every other file is a corrupted probe.
            None => !name.ends_with("happy-path.json"),
        };
        let (counts, outcome) = if case.get("leafIdx").is_some() || case.get("treeSize").is_some() {
            (&mut inclusion, run_inclusion(&case))
        } else if case.get("size1").is_some() || case.get("size2").is_some() {
            (&mut consistency, run_consistency(&case))
        } else {
            panic!("{name}: neither an inclusion nor a consistency case");
        };
        counts.cases += 1;
        match (outcome, want_err) {
            (Ok(h), false) => {
                counts.accepted += 1;
                happy.push((name, h));
            }
            (Ok(_), true) => failures.push(format!("{name}: accepted, want refusal")),
            (Err(Refusal::Verifier(_)), true) => counts.refused_by_verifier += 1,
            (Err(why @ Refusal::Decode(_)), true) => {
                println!("{name}: {why}");
                counts.refused_at_decode += 1;
            }
            (Err(why), false) => failures.push(format!("{name}: {why}, want accept")),
        }
    }
    println!("vectors from {}", dir.display());
    println!("inclusion:   {inclusion:?}");
    println!("consistency: {consistency:?}");
    assert!(
        failures.is_empty(),
        "{} failures:\n{}",
        failures.len(),
        failures.join("\n")
    );
    for (kind, c) in [("inclusion", &inclusion), ("consistency", &consistency)] {
        assert!(
            c.cases > 0,
            "no {kind} vectors found under {}",
            dir.display()
        );
        assert!(c.accepted > 0, "no {kind} vector was expected to verify");
        assert!(
            c.refused_by_verifier > 0,
            "no {kind} vector exercised the verifier's refusals"
        );
    }

    // Our generator on the reference tree: every proof up to size 64 verifies, and equals the
    // vector's proof wherever a happy vector describes the same tree (same leaf, same roots).
    let (log, leaves) = reference_log();
    assert_eq!(
        hex::encode(log.root_at(8).expect("root")),
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"
    );
    let mut checked = 0usize;
    for size in 1..=64u64 {
        let root = log.root_at(size).expect("root");
        for index in 0..size {
            let proof = inclusion_proof(&log, index, size).expect("inclusion proof");
            verify_inclusion(&leaves[index as usize], index, size, &proof, &root)
                .unwrap_or_else(|e| panic!("generated inclusion {index}/{size}: {e}"));
            checked += 1;
        }
        for size1 in 1..=size {
            let proof = consistency_proof(&log, size1, size).expect("consistency proof");
            let root1 = log.root_at(size1).expect("root");
            verify_consistency(size1, size, &proof, &root1, &root)
                .unwrap_or_else(|e| panic!("generated consistency {size1}->{size}: {e}"));
            checked += 1;
        }
    }
    let (mut same_inclusion, mut same_consistency) = (0usize, 0usize);
    for (name, h) in &happy {
        match h {
            Happy::Inclusion {
                index,
                size,
                leaf,
                root,
                proof,
            } => {
                if *size > 64 || log.root_at(*size).ok() != Some(*root) {
                    continue;
                }
                if leaves.get(*index as usize) != Some(leaf) {
                    continue;
                }
                let ours = inclusion_proof(&log, *index, *size).expect("proof");
                assert_eq!(&ours, proof, "{name}: generated inclusion proof differs");
                same_inclusion += 1;
            }
            Happy::Consistency {
                size1,
                size2,
                root1,
                root2,
                proof,
            } => {
                if *size2 > 64
                    || log.root_at(*size1).ok() != Some(*root1)
                    || log.root_at(*size2).ok() != Some(*root2)
                {
                    continue;
                }
                let ours = consistency_proof(&log, *size1, *size2).expect("proof");
                assert_eq!(&ours, proof, "{name}: generated consistency proof differs");
                same_consistency += 1;
            }
        }
    }
    println!(
        "generated: {checked} proofs verified; equal to the vectors: {same_inclusion} inclusion, \
         {same_consistency} consistency"
    );
    assert!(
        same_inclusion > 0 && same_consistency > 0,
        "no overlap with the reference trees"
    );
}
