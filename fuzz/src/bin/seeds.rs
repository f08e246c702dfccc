//! Writes the seed corpora: real encodings made with the project's own fixtures, one directory
//! per fuzz target under the directory given (`fuzz/corpus`).
//!
//! The ledger's test world (`ledger/tests/common`, the same file the ledger, node and client
//! tests include) commits the audit scenario: enrolments, archives, a grant, reads under it, a
//! denial and a break-glass, each block with its commit certificate. Its blocks, transactions,
//! audit, record and consistency answers and proofs are the seeds; wire messages wrap them as
//! peers send them; `write_localnet` with deterministic keys writes the key files, genesis
//! document and configs. A file is named by the SHA-256 of its content; the sealed
//! justification of the break-glass access is random, so a rerun adds a few new files.

#![allow(clippy::unwrap_used, clippy::expect_used)] // A tool: a panic is its error report.

// cargo-fuzz builds every binary of this crate with coverage instrumentation, which needs
// libFuzzer's runtime linked in; a target that does nothing brings it. This file's own `main`
// runs, not libFuzzer's.
libfuzzer_sys::fuzz_target!(|_data: &[u8]| {});

#[path = "../../../ledger/tests/common/mod.rs"]
mod common;

use std::path::{Path, PathBuf};

use common::audit_world::{Snapshot, scenario};
use cradle_consensus::{Equivocation, Proposal, Vote, VoteKind};
use cradle_ledger::api_request::ApiRequest;
use cradle_ledger::audit::{
    AuditAnswer, EvidenceAnswer, build_answer, build_consistency, build_record,
};
use cradle_ledger::codec::{self, BoundedVec};
use cradle_ledger::crypto::sha256;
use cradle_ledger::merkle::log::{consistency_proof, inclusion_proof, leaf_hash};
use cradle_ledger::state::keys;
use cradle_ledger::tx::TxBatch;
use cradle_node::network::codec::write_frame;
use cradle_node::wire::{NetMessage, SyncRequest, SyncResponse};

struct Corpus {
    root: PathBuf,
    written: usize,
}

impl Corpus {
    fn put(&mut self, target: &str, bytes: &[u8]) {
        let dir = self.root.join(target);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(hex::encode(&sha256(bytes)[..20]));
        if !path.exists() {
            std::fs::write(&path, bytes).unwrap();
            self.written += 1;
        }
    }
}

fn main() {
    let out = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "fuzz/corpus".into());
    let mut c = Corpus {
        root: PathBuf::from(out),
        written: 0,
    };
    ledger_seeds(&mut c);
    genesis_seeds(&mut c);
    http_seeds(&mut c);
    println!("{} new seed files under {}", c.written, c.root.display());
}

fn ledger_seeds(c: &mut Corpus) {
    let s = scenario();
    let w = &s.world;
    let chain = w.chain_id();
    let snap = Snapshot::of(w);
    // The targets verify against this consortium: the seeds must be of it to get past the checks.
    assert_eq!(&w.consortium, cradle_fuzz::consortium());
    for fb in &w.blocks {
        fb.verify_certificate(cradle_fuzz::consortium()).unwrap();
    }

    // Blocks with certificates, transactions, and the wire messages that carry them.
    let mut encoded_blocks = Vec::new();
    for fb in &w.blocks {
        let bytes = fb.encode();
        c.put("block", &bytes);
        encoded_blocks.push(bytes);
        let txs: Vec<Vec<u8>> = fb.block.txs.iter().map(|t| t.encode()).collect();
        for tx in &txs {
            c.put("tx", tx);
        }
        let batch = TxBatch::new(txs).unwrap();
        c.put("http_tx_batch", &codec::encode(&batch));
        c.put("wire_net_message", &NetMessage::Txs(batch).encode());
        let h = &fb.block.header;
        let proposal = Proposal {
            height: h.height,
            round: 0,
            value: h.value_id(),
            valid_round: None,
            proposer: 0,
        }
        .sign(fb.block.clone(), &chain, w.hospital_a.signing_key());
        c.put(
            "wire_net_message",
            &NetMessage::Proposal(Box::new(proposal)).encode(),
        );
        let vote = Vote {
            kind: VoteKind::Prevote,
            height: h.height,
            round: 0,
            value: Some(h.value_id()),
            validator: 1,
        }
        .sign(&chain, w.hospital_b.signing_key());
        c.put("wire_net_message", &NetMessage::Vote(vote).encode());
        c.put(
            "wire_net_message",
            &NetMessage::Status { height: h.height }.encode(),
        );
    }
    for (i, chunk) in encoded_blocks.chunks(3).enumerate() {
        let resp = SyncResponse {
            tip_height: w.blocks.len() as u64,
            blocks: BoundedVec::new(chunk.to_vec()).unwrap(),
        };
        c.put("wire_sync_response", &resp.encode());
        let req = SyncRequest {
            from_height: (i * 3 + 1) as u64,
            max_blocks: 3,
        };
        c.put("wire_sync_request", &req.encode());
        // The stream framing around a request and its answer.
        let mut frames = futures::io::Cursor::new(Vec::new());
        futures::executor::block_on(async {
            write_frame(&mut frames, &req.encode()).await.unwrap();
            write_frame(&mut frames, &resp.encode()).await.unwrap();
        });
        c.put("net_frame", &frames.into_inner());
    }

    // Audit answers for every subject, whole and over a time range, with their proofs.
    let t0 = w.blocks[0].block.header.time_ms;
    let t_end = w.blocks.last().unwrap().block.header.time_ms;
    for subject in s.subjects() {
        for range in [None, Some((t0 + 4000, t_end - 2000)), Some((t0, t0))] {
            let answer = build_answer(&snap, subject.clone(), range).unwrap();
            c.put("audit_answer", &answer.encode());
            smt_seed(c, &answer);
        }
    }
    let global = snap.global_log();
    let size = global.size();
    for from in 1..=size {
        let answer = build_consistency(&snap, &global, from).unwrap();
        c.put("audit_consistency", &answer.encode());
    }
    log_seeds(c, &snap);

    // Records a client checks before trusting an archive's hash or a patient's keys.
    for key in [
        keys::archive(&s.a1),
        keys::archive(&s.a3),
        keys::patient(&s.p.public_key()),
        keys::archive(&common::archive_id(99)),
    ] {
        c.put("audit_record", &build_record(&snap, key).unwrap().encode());
    }

    // Equivocation evidence: two precommits of one validator for different blocks, and two
    // proposals of one proposer.
    let h = &w.blocks[1].block.header;
    let other = w.blocks[2].block.header.value_id();
    let vote = |value| Vote {
        kind: VoteKind::Precommit,
        height: h.height,
        round: 0,
        value,
        validator: 2,
    };
    let proposal = |value| Proposal {
        height: h.height,
        round: 1,
        value,
        valid_round: None,
        proposer: 1,
    };
    let items = vec![
        Equivocation::Vote {
            first: vote(Some(h.value_id())).sign(&chain, w.clinic.signing_key()),
            second: vote(None).sign(&chain, w.clinic.signing_key()),
        },
        Equivocation::Proposal {
            first: proposal(h.value_id())
                .sign(
                    w.blocks[1].block.clone(),
                    &chain,
                    w.hospital_b.signing_key(),
                )
                .header(),
            second: proposal(other)
                .sign(
                    w.blocks[2].block.clone(),
                    &chain,
                    w.hospital_b.signing_key(),
                )
                .header(),
        },
    ];
    for (offset, page) in [(0u64, items.clone()), (1, items[1..].to_vec()), (0, vec![])] {
        let page = EvidenceAnswer {
            total: 2,
            offset,
            items: BoundedVec::new(page).unwrap(),
        };
        c.put("audit_evidence", &page.encode());
    }

    // Fetch bodies and signed-request headers.
    let a1 = s.a1;
    let w = &s.world;
    for (i, purpose) in [
        cradle_ledger::tx::Purpose::Treat,
        cradle_ledger::tx::Purpose::EmergencyTreat,
    ]
    .into_iter()
    .enumerate()
    {
        let justification = (i == 1).then_some("postpartum haemorrhage");
        let req = w.request(
            w.staff(&w.hospital_b),
            a1,
            purpose,
            justification,
            50 + i as u8,
        );
        c.put("http_access_request", &req.encode());
    }
    let node = w.hospital_a.public_key();
    for (key, method, path, body) in [
        (&s.p, "GET", "/v1/audit/patient/00".to_string(), Vec::new()),
        (
            &w.hospital_b,
            "POST",
            format!("/v1/archives/{}/fetch", a1.to_hex()),
            vec![1, 2],
        ),
        (
            &w.regulator,
            "GET",
            "/v1/audit/consistency?from=3".to_string(),
            Vec::new(),
        ),
    ] {
        let mut req =
            ApiRequest::new(key.public_key(), node, method, &path, sha256(&body), t_end).unwrap();
        req.nonce = [method.len() as u8; 16];
        let req = req.sign(key, &chain);
        c.put("api_request", req.to_header().as_bytes());
    }
}

/// `root || key hash || value hash || proof` from an answer's state proof.
fn smt_seed(c: &mut Corpus, answer: &AuditAnswer) {
    let mut bytes = answer.header.state_root.0.to_vec();
    bytes.extend_from_slice(&sha256(&answer.subject.state_key()));
    let value = answer.log_value.as_deref().map(sha256).unwrap_or([0; 32]);
    bytes.extend_from_slice(&value);
    bytes.extend_from_slice(&codec::encode(&answer.log_proof));
    c.put("merkle_smt", &bytes);
}

/// `index || size || leaf || root || path` for inclusion, `size1 || size2 || root1 || root2 ||
/// path` for consistency, from the global access log.
fn log_seeds(c: &mut Corpus, snap: &Snapshot) {
    let log = snap.global_log();
    let size = log.size();
    for index in 0..size {
        let leaf = leaf_hash(&snap.events[index as usize].leaf_bytes());
        let path = inclusion_proof(&log, index, size).unwrap();
        let mut bytes = index.to_le_bytes().to_vec();
        bytes.extend_from_slice(&size.to_le_bytes());
        bytes.extend_from_slice(&leaf);
        bytes.extend_from_slice(&log.root());
        path.iter().for_each(|h| bytes.extend_from_slice(h));
        c.put("merkle_log", &bytes);
    }
    for size1 in 1..size {
        let path = consistency_proof(&log, size1, size).unwrap();
        let mut bytes = size1.to_le_bytes().to_vec();
        bytes.extend_from_slice(&size.to_le_bytes());
        bytes.extend_from_slice(&log.root_at(size1).unwrap());
        bytes.extend_from_slice(&log.root());
        path.iter().for_each(|h| bytes.extend_from_slice(h));
        c.put("merkle_log", &bytes);
    }
}

/// What `cradle-genesis localnet --deterministic` writes: key files, public identities, the
/// genesis document and each member's config.
fn genesis_seeds(c: &mut Corpus) {
    let dir = tempfile::tempdir().unwrap();
    for (members, break_glass) in [(4, true), (1, false), (7, true)] {
        let out = dir.path().join(format!("localnet-{members}"));
        let mut opts = cradle_genesis::LocalnetOptions::new(members, &out);
        opts.deterministic = true;
        opts.break_glass_allowed = break_glass;
        cradle_genesis::write_localnet(&opts).unwrap();
        localnet_seeds(c, &out);
    }
}

fn localnet_seeds(c: &mut Corpus, out: &Path) {
    visit(out, &mut |path| {
        let bytes = std::fs::read(path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy();
        if name.ends_with(".key") || name.ends_with(".pub") {
            c.put("keyfile", &bytes);
        } else if name == "genesis.json" {
            c.put("genesis_doc", &bytes);
        } else if name == "config.toml" {
            c.put("node_config", &bytes);
        }
    });
}

fn visit(dir: &Path, f: &mut impl FnMut(&Path)) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            visit(&path, f);
        } else {
            f(&path);
        }
    }
}

fn http_seeds(c: &mut Corpus) {
    for body in [
        r#"{"name":"Zhang Wei","staff_number":"CH2-0311"}"#,
        r#"{"name":"Li Na","staff_number":"CH1-0042"}"#,
        r#"{"name":"  ","staff_number":"x"}"#,
        r#"{"name":"A\u202eB","staff_number":"1"}"#,
    ] {
        c.put("http_directory_entry", body.as_bytes());
    }
    let archive = common::archive_id(1).to_hex();
    for query in [
        "from_ms=1780000000000&to_ms=1780000100000",
        "from_ms=5&to_ms=4",
        "from=3",
        "offset=100",
        "wait=commit",
        archive.as_str(),
    ] {
        c.put("http_query", query.as_bytes());
    }
}
