//! Catch-up's batched path, `driver::catchup::apply_certified`, against the block-by-block one:
//! a chain made by the ledger's test consortium (patients, archives, a grant, access records,
//! and a new clinic voted in halfway, whose votes certify the later blocks) is written once a
//! block at a time and once in peers' runs, and the two RocksDB stores must hold the same bytes
//! in every column family. Then a peer's lies: a forged signature under a valid certificate, a
//! certificate of another block, a gap, bytes that do not decode; each ends the run at the bad
//! block with its reason, and the blocks before it are written.
#![allow(clippy::unwrap_used)]

#[path = "../../ledger/tests/common/mod.rs"]
mod common;

use std::path::Path;

use common::*;
use cradle_ledger::block::{self, ChainTip, FinalizedBlock};
use cradle_ledger::governance::Change;
use cradle_ledger::tx::{Category, Purpose, Scope, prove_keys};
use cradle_ledger::{Keypair, Policy, Role};
use cradle_node::driver::catchup::{Refused, Run, apply_certified};
use cradle_node::members::Members;
use cradle_node::storage::Store;
use cradle_node::storage::schema::COLUMN_FAMILIES;
use cradle_testkit::member;
use tempfile::TempDir;

/// A chain of `30` blocks or so with every kind of write a catch-up meets, the member set
/// changing in the middle (a fourth validator from the activation height on).
fn chain() -> World {
    let mut w = World::new(Policy::default());
    let (a, b, c) = (copy(&w.hospital_a), copy(&w.hospital_b), copy(&w.clinic));
    let (p1, p2) = (patient_key(1), patient_key(2));
    let txs = vec![w.enrol(&a, &p1), w.enrol(&c, &p2)];
    w.commit(txs).unwrap();
    let txs = vec![
        w.register(&a, &p1, archive_id(1), Category::PrenatalVisit, vec![]),
        w.register(&c, &p2, archive_id(2), Category::Ultrasound, vec![]),
    ];
    w.commit(txs).unwrap();
    let (tx, grant) = w.grant(&p1, &b, Scope::All, &[Purpose::Treat], 30, &[archive_id(1)]);
    w.commit_one(tx).unwrap();
    let reads = |w: &mut World, k: u8| {
        let req = w.request(&p1, archive_id(1), Purpose::PatientRequest, None, k);
        let own = w.record(&a, req, None, permitted());
        let req = w.request(w.staff(&b), archive_id(1), Purpose::Treat, None, k);
        let granted = w.record(&a, req, Some(grant), permitted());
        w.commit(vec![own, granted]).unwrap();
    };
    for k in 0..8 {
        reads(&mut w, k);
    }
    // A new clinic, adopted by the three validators, in force two blocks later.
    let newcomer = Keypair::from_seed(&[40; 32]);
    let (_, _, proof) = prove_keys(&newcomer, &w.chain_id());
    let mut clinic = member("Lake Clinic", Role::Clinic, &newcomer, 1);
    clinic.p2p_addr = Some("/ip4/127.0.0.1/tcp/26610".into());
    clinic.api_addr = Some("127.0.0.1:8610".into());
    let change = Change::AddMember {
        member: clinic,
        proof,
    };
    let id = propose(&mut w, &a, change).unwrap();
    approve(&mut w, &b, id).unwrap();
    approve(&mut w, &c, id).unwrap();
    w.joined.push(copy(&newcomer));
    w.advance(1000);
    let p3 = patient_key(3);
    let tx = w.enrol(&newcomer, &p3);
    w.commit_one(tx).unwrap();
    assert_eq!(w.consortium.validators().len(), 4, "the clinic votes now");
    for k in 8..20 {
        reads(&mut w, k);
    }
    w
}

fn encoded(blocks: &[FinalizedBlock]) -> Vec<Vec<u8>> {
    blocks.iter().map(FinalizedBlock::encode).collect()
}

/// A column family's name and its entries, in key order.
type Family = (String, Vec<(Box<[u8]>, Box<[u8]>)>);

/// Every key and value of every column family of the closed store at `path`.
fn dump(path: &Path) -> Vec<Family> {
    let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), path, COLUMN_FAMILIES).unwrap();
    COLUMN_FAMILIES
        .iter()
        .map(|cf| {
            let handle = db.cf_handle(cf).unwrap();
            let entries = db
                .iterator_cf(handle, rocksdb::IteratorMode::Start)
                .map(Result::unwrap)
                .collect();
            (cf.to_string(), entries)
        })
        .collect()
}

/// Applies `blocks` as one peer's answer to the store at its tip.
fn apply(store: &Store, members: &Members, blocks: &[FinalizedBlock]) -> Run {
    let tip = store
        .tip()
        .unwrap()
        .unwrap_or_else(|| ChainTip::genesis(members.genesis()));
    apply_certified(store, members, tip, &encoded(blocks)).unwrap()
}

#[test]
fn runs_write_the_same_bytes_as_blocks_one_at_a_time_and_follow_the_set_change() {
    let w = chain();
    let (one_by_one, in_runs) = (TempDir::new().unwrap(), TempDir::new().unwrap());
    {
        let store = Store::open(one_by_one.path()).unwrap();
        for (fb, executed) in w.blocks.iter().zip(&w.executed) {
            store.commit_block(fb, executed).unwrap();
        }
    }
    let adopted_at;
    {
        let store = Store::open(in_runs.path()).unwrap();
        let members = Members::load(w.genesis.clone(), &store, 0).unwrap();
        let mut adopted = Vec::new();
        // Runs of 7 blocks: the adoption, its activation and the first block the new set
        // certifies fall inside runs and across their ends.
        for run in w.blocks.chunks(7) {
            let done = apply(&store, &members, run);
            assert!(done.refused.is_none(), "{:?}", done.refused);
            assert_eq!(done.applied.len(), run.len());
            for a in &done.applied {
                if let Some((activation, set)) = &a.adopted {
                    adopted.push((a.block.block.header.height, *activation, set.epoch));
                }
            }
        }
        assert_eq!(store.tip().unwrap(), Some(w.tip));
        assert_eq!(
            adopted.len(),
            1,
            "one set change, taken up once: {adopted:?}"
        );
        let (height, activation, epoch) = adopted[0];
        assert_eq!((activation, epoch), (height + 2, 1));
        adopted_at = height;
        assert_eq!(members.current().validators().len(), 4);
        // A restarted node loads the same sets from what the runs wrote.
        let reloaded = Members::load(w.genesis.clone(), &store, w.tip.height).unwrap();
        assert_eq!(reloaded.current(), members.current());
    }
    assert!(adopted_at > 1 && adopted_at < w.tip.height - 2);
    assert_eq!(dump(in_runs.path()), dump(one_by_one.path()));
}

#[test]
fn a_forged_signature_under_a_valid_certificate_ends_the_run_at_its_block() {
    let w = chain();
    let last = w.blocks.len() - 1;
    // Whichever half of the run (one thread's batch or the other's) holds the forgery.
    for forged_at in [last - 5, last] {
        let dir = TempDir::new().unwrap();
        let store = Store::open(dir.path()).unwrap();
        let members = Members::load(w.genesis.clone(), &store, 0).unwrap();
        let run = apply(&store, &members, &w.blocks[..last - 5]);
        assert!(run.refused.is_none());

        // The block a Byzantine quorum would have to sign: one transaction's signature
        // altered, the header committing to it, and a certificate over that header.
        let mut blocks = w.blocks[last - 5..].to_vec();
        let fb = &mut blocks[forged_at - (last - 5)];
        let mut txs = fb.block.txs.to_vec();
        txs[1].signature.0[7] ^= 1;
        fb.block.txs = cradle_ledger::codec::BoundedVec::new(txs).unwrap();
        fb.block.header.tx_root = cradle_ledger::Digest32(block::tx_root(&fb.block.txs));
        fb.certificate = w.certify(&fb.block.header);
        let height = fb.block.header.height;
        fb.verify_certificate(&w.consortium).unwrap();

        let run = apply(&store, &members, &blocks);
        match &run.refused {
            Some(Refused::Invalid { height: h, source }) => {
                assert_eq!(*h, height);
                assert!(source.to_string().contains("signature"), "{source}");
            }
            other => panic!("the forgery passed or was refused for another reason: {other:?}"),
        }
        assert_eq!(run.applied.len(), forged_at - (last - 5));
        assert_eq!(store.tip().unwrap().unwrap().height, height - 1);
        assert_eq!(
            store.block(height - 1).unwrap().as_ref(),
            Some(&w.blocks[forged_at - 1])
        );
        assert!(store.block(height).unwrap().is_none());
    }
}

#[test]
fn a_peers_lies_end_the_run_with_their_reason_and_nothing_after_is_written() {
    let w = chain();
    let dir = TempDir::new().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let members = Members::load(w.genesis.clone(), &store, 0).unwrap();
    let first = apply(&store, &members, &w.blocks[..4]);
    assert_eq!(first.applied.len(), 4);

    // Another block's certificate on block 6.
    let mut blocks = w.blocks[4..8].to_vec();
    blocks[1].certificate = w.blocks[4].certificate.clone();
    let run = apply(&store, &members, &blocks);
    assert!(
        matches!(run.refused, Some(Refused::Certificate { height: 6, .. })),
        "{:?}",
        run.refused
    );
    assert_eq!(run.applied.len(), 1);
    assert_eq!(store.tip().unwrap().unwrap().height, 5);

    // A gap: block 8 after block 6.
    let blocks = [w.blocks[5].clone(), w.blocks[7].clone()];
    let run = apply(&store, &members, &blocks);
    assert!(
        matches!(run.refused, Some(Refused::OutOfOrder { height: 8, tip: 6 })),
        "{:?}",
        run.refused
    );
    assert_eq!(store.tip().unwrap().unwrap().height, 6);

    // Bytes that do not decode, after a block this node has (skipped) and a good one.
    let tip = store.tip().unwrap().unwrap();
    let mut garbage = w.blocks[7].encode();
    garbage.truncate(garbage.len() / 2);
    let bytes = vec![w.blocks[5].encode(), w.blocks[6].encode(), garbage];
    let run = apply_certified(&store, &members, tip, &bytes).unwrap();
    assert!(
        matches!(run.refused, Some(Refused::Malformed(_))),
        "{:?}",
        run.refused
    );
    assert_eq!(run.skipped, 1);
    assert_eq!(run.applied.len(), 1);
    assert_eq!(store.tip().unwrap().unwrap().height, 7);

    // An honest peer's answer then completes the chain.
    let run = apply(&store, &members, &w.blocks[7..]);
    assert!(run.refused.is_none());
    assert_eq!(store.tip().unwrap(), Some(w.tip));
}
