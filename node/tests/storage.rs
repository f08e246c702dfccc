//! The RocksDB store against the ledger's in-memory reference: blocks produced by the ledger's
//! test consortium are committed to a real database in a temporary directory, then read back,
//! reopened, proven from and corrupted. The crash test kills a committing child process (this
//! very test binary) with SIGKILL and checks that the store always reopens at a consistent tip.
#![allow(clippy::unwrap_used)]

#[path = "../../ledger/tests/common/mod.rs"]
mod common;

mod storage {
    use std::io::{BufRead, BufReader};
    use std::path::Path;
    use std::process::{Command, Stdio};
    use std::sync::Arc;
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use cradle_consensus::{PersistedState, Proposal, Round, SignedProposal, Step, Value};
    use cradle_ledger::access::{AccessOutcome, DenialReason, LoggedEvent};
    use cradle_ledger::block::{self, Block, ChainTip, Executed, FinalizedBlock};
    use cradle_ledger::merkle::log::{
        consistency_proof, inclusion_proof, root_at, verify_consistency, verify_inclusion,
    };
    use cradle_ledger::state::{StateExt, TREE_PREFIX};
    use cradle_ledger::tx::{Category, Purpose, Scope};
    use cradle_ledger::{Digest32, GrantId, Keypair, Policy, PublicKey};
    use cradle_node::storage::schema::{self, COLUMN_FAMILIES};
    use cradle_node::storage::{StorageError, Store};
    use tempfile::TempDir;

    use super::common::{World, archive_id, patient_key, permitted};

    fn clone_key(k: &Keypair) -> Keypair {
        Keypair::from_secret_parts(&k.ed25519_seed(), &k.x25519_secret())
    }

    /// A deterministic chain: two patients enrolled, three archives over three custodians, a
    /// grant, then blocks of four access records each (permitted by patient, by grant, denied
    /// by custodian and by lack of grant). `blocks` counts every block, at least 5 (the clinicians' registration first).
    struct Chain {
        world: World,
        executed: Vec<Executed>,
        patients: [PublicKey; 2],
        grant: GrantId,
    }

    impl Chain {
        fn build(blocks: usize) -> Self {
            let mut w = World::new(Policy::default());
            let (a, b, c) = (
                clone_key(&w.hospital_a),
                clone_key(&w.hospital_b),
                clone_key(&w.clinic),
            );
            let (p1, p2) = (patient_key(1), patient_key(2));
            let (ar1, ar2, ar3) = (archive_id(1), archive_id(2), archive_id(3));
            // The world's first block registered its clinicians.
            let mut executed = w.executed.clone();
            let txs = vec![w.enrol(&a, &p1), w.enrol(&c, &p2)];
            executed.push(w.commit(txs).unwrap());
            let txs = vec![
                w.register(&a, &p1, ar1, Category::PrenatalVisit, vec![]),
                w.register(&c, &p2, ar2, Category::Ultrasound, vec![]),
                w.register(&c, &p1, ar3, Category::LabourAndDelivery, vec![]),
            ];
            executed.push(w.commit(txs).unwrap());
            let (tx, gid) = w.grant(&p1, &b, Scope::All, &[Purpose::Treat], 30, &[ar1, ar3]);
            executed.push(w.commit_one(tx).unwrap());
            executed.push(w.commit(vec![]).unwrap());
            for k in 0..blocks.saturating_sub(5) {
                let k = u8::try_from(k).unwrap();
                executed.push(access_block(&mut w, k, &p1, gid));
            }
            Self {
                world: w,
                executed,
                patients: [p1.public_key(), p2.public_key()],
                grant: gid,
            }
        }

        fn blocks(&self) -> &[FinalizedBlock] {
            &self.world.blocks
        }

        fn events(&self) -> Vec<LoggedEvent> {
            self.executed
                .iter()
                .flat_map(|e| e.events.clone())
                .collect()
        }

        fn commit_all(&self, store: &Store) {
            for (fb, ex) in self.blocks().iter().zip(&self.executed) {
                store.commit_block(fb, ex).unwrap();
            }
        }
    }

    fn access_block(w: &mut World, k: u8, p1: &Keypair, gid: GrantId) -> Executed {
        let (a, b, c) = (
            clone_key(&w.hospital_a),
            clone_key(&w.hospital_b),
            clone_key(&w.clinic),
        );
        let denied = AccessOutcome::Denied {
            reason: DenialReason::NoGrant,
        };
        let mut txs = Vec::new();
        let req = w.request(p1, archive_id(1), Purpose::PatientRequest, None, k);
        txs.push(w.record(&a, req, None, permitted()));
        let req = w.request(w.staff(&b), archive_id(1), Purpose::Treat, None, k);
        txs.push(w.record(&a, req, Some(gid), permitted()));
        let req = w.request(
            w.staff(&b),
            archive_id(2),
            Purpose::Treat,
            None,
            k.wrapping_add(128),
        );
        txs.push(w.record(&c, req, None, denied.clone()));
        let req = w.request(w.staff(&a), archive_id(3), Purpose::Treat, None, k);
        txs.push(w.record(&c, req, None, denied));
        w.commit(txs).unwrap()
    }

    fn open(dir: &TempDir) -> Store {
        Store::open(dir.path()).unwrap()
    }

    #[test]
    fn storage_commits_read_back_and_match_the_memory_store() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        assert_eq!(store.tip().unwrap(), None);
        assert!(store.block(1).unwrap().is_none());
        let mut chain = Chain::build(8);
        chain.commit_all(&store);

        assert_eq!(store.tip().unwrap(), Some(chain.world.tip));
        for fb in chain.blocks() {
            let h = fb.block.header.height;
            assert_eq!(store.block(h).unwrap().as_ref(), Some(fb));
            assert_eq!(store.block_bytes(h).unwrap(), Some(fb.encode()));
            assert_eq!(store.height_of(&fb.block.hash()).unwrap(), Some(h));
            for (i, stx) in fb.block.txs.iter().enumerate() {
                assert_eq!(store.tx_location(&stx.hash()).unwrap(), Some((h, i as u32)));
            }
        }
        assert_eq!(store.tx_location(&[9; 32]).unwrap(), None);
        assert_eq!(store.height_of(&[9; 32]).unwrap(), None);
        for ev in chain.events() {
            assert_eq!(store.event(ev.global_index).unwrap(), Some(ev));
        }
        assert_eq!(store.state_root().unwrap(), chain.world.root());
        assert_eq!(
            store.access_log().unwrap(),
            chain.world.store.access_log().unwrap()
        );

        // The next block, executed over RocksDB, gives what it gives over memory.
        let tip = chain.world.tip;
        let gid = chain.grant;
        let on_memory = access_block(&mut chain.world, 100, &patient_key(1), gid);
        let next = chain.world.blocks.last().unwrap();
        let checked = block::check_block(&chain.world.consortium, &tip, &next.block).unwrap();
        let on_rocks = block::execute(&store, &chain.world.consortium, checked).unwrap();
        assert_eq!(on_rocks, on_memory);
        store.commit_block(next, &on_rocks).unwrap();
        assert_eq!(store.state_root().unwrap(), chain.world.root());
    }

    #[test]
    fn storage_persists_everything_across_reopen() {
        let dir = TempDir::new().unwrap();
        let chain = Chain::build(7);
        {
            let store = open(&dir);
            chain.commit_all(&store);
            store
                .save_consensus_state(&wal_state(&chain.blocks()[0].block, 3))
                .unwrap();
        }
        let store = open(&dir);
        assert_eq!(store.tip().unwrap(), Some(chain.world.tip));
        for fb in chain.blocks() {
            assert_eq!(
                store.block(fb.block.header.height).unwrap().as_ref(),
                Some(fb)
            );
        }
        for ev in chain.events() {
            assert_eq!(store.event(ev.global_index).unwrap(), Some(ev));
        }
        assert_eq!(store.state_root().unwrap(), chain.world.root());
        assert_eq!(
            store.load_consensus_state().unwrap(),
            Some(wal_state(&chain.blocks()[0].block, 3))
        );
    }

    #[test]
    fn storage_reports_its_memory_within_its_bounds() {
        let chain = Chain::build(12);
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let empty = store.memory_usage().unwrap();
        assert_eq!((empty.tree_cache_nodes, empty.sst_files), (0, 0));
        chain.commit_all(&store);
        let written = store.memory_usage().unwrap();
        assert!(written.memtables_bytes > 0, "{written:?}");
        assert!(
            written.tree_cache_nodes > 0,
            "commits fill the tree cache: {written:?}"
        );
        drop(store);
        // Reopening flushes the recovered memtables to table files; reading them goes through
        // the block cache, which never holds more than its capacity.
        let store = open(&dir);
        for h in 1..=chain.blocks().len() as u64 {
            assert!(store.block(h).unwrap().is_some());
        }
        let read = store.memory_usage().unwrap();
        assert!(read.sst_files > 0, "{read:?}");
        assert!(read.block_cache_bytes > 0, "{read:?}");
        assert!(
            read.block_cache_bytes <= schema::BLOCK_CACHE_BYTES as u64,
            "{read:?}"
        );
        assert!(
            read.block_cache_pinned_bytes <= read.block_cache_bytes,
            "{read:?}"
        );
    }

    /// A record as the core saves it at a precommit: locked on `block`, which it proposed.
    fn wal_state(block: &Block, round: Round) -> PersistedState<Block> {
        PersistedState {
            height: block.header.height,
            round,
            step: Step::Precommit,
            locked: Some((round, block.clone())),
            valid: Some((round, block.clone())),
            own_votes: Vec::new(),
            own_proposals: vec![SignedProposal {
                proposal: Proposal {
                    height: block.header.height,
                    round,
                    value: block.id(),
                    valid_round: None,
                    proposer: 0,
                },
                signature: [7; 64],
                value: block.clone(),
            }],
        }
    }

    #[test]
    fn storage_consensus_state_round_trips_is_replaced_and_ends_with_its_height() {
        let dir = TempDir::new().unwrap();
        let chain = Chain::build(3);
        let (first, second) = (&chain.blocks()[0], &chain.blocks()[1]);
        let store = open(&dir);
        assert_eq!(store.load_consensus_state().unwrap(), None);
        store
            .save_consensus_state(&wal_state(&first.block, 0))
            .unwrap();
        let later = wal_state(&first.block, 2);
        store.save_consensus_state(&later).unwrap();
        assert_eq!(store.load_consensus_state().unwrap(), Some(later.clone()));
        drop(store);
        let store = open(&dir);
        assert_eq!(store.load_consensus_state().unwrap(), Some(later));

        // Each block is stored once, however many saves name it; the commit of the height
        // drops the record and its blocks.
        drop(store);
        assert_eq!(wal_blocks(dir.path()), 1);
        let store = open(&dir);
        store.commit_block(first, &chain.executed[0]).unwrap();
        assert_eq!(store.load_consensus_state().unwrap(), None);
        store
            .save_consensus_state(&wal_state(&second.block, 0))
            .unwrap();
        drop(store);
        assert_eq!(wal_blocks(dir.path()), 1, "only the next height's block");

        // A record whose block is damaged or missing is refused, not half-loaded.
        let id = second.block.id().0;
        poke(dir.path(), schema::CF_WAL_BLOCKS, &id, b"not a block");
        assert!(matches!(
            open(&dir).load_consensus_state(),
            Err(StorageError::Corrupt { .. })
        ));
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), dir.path(), COLUMN_FAMILIES)
            .unwrap();
        db.delete_cf(db.cf_handle(schema::CF_WAL_BLOCKS).unwrap(), id)
            .unwrap();
        drop(db);
        assert!(matches!(
            open(&dir).load_consensus_state(),
            Err(StorageError::Corrupt { .. })
        ));
    }

    /// Everything a refused commit could have touched, to compare before and after.
    fn fingerprint(store: &Store, heights: u64) -> impl PartialEq + std::fmt::Debug {
        let blocks: Vec<_> = (1..=heights + 2)
            .map(|h| store.block_bytes(h).unwrap())
            .collect();
        let events: Vec<_> = (0..64).map(|i| store.event(i).unwrap()).collect();
        (
            store.tip().unwrap(),
            store.state_root().unwrap(),
            blocks,
            events,
        )
    }

    #[test]
    fn storage_refuses_blocks_that_do_not_extend_the_tip_and_writes_nothing() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let chain = Chain::build(7);
        let (blocks, executed) = (chain.blocks(), &chain.executed);

        // Before the first block: only height 1 whose parent is the chain id.
        let err = store.commit_block(&blocks[1], &executed[1]).unwrap_err();
        assert!(
            matches!(err, StorageError::WrongHeight { got: 2, tip: 0 }),
            "{err}"
        );
        let mut orphan = blocks[0].clone();
        orphan.block.header.prev_hash.0 = [7; 32];
        let err = store.commit_block(&orphan, &executed[0]).unwrap_err();
        assert!(
            matches!(err, StorageError::WrongParent { height: 1, .. }),
            "{err}"
        );
        assert_eq!(store.tip().unwrap(), None);

        for (fb, ex) in blocks[..5].iter().zip(executed) {
            store.commit_block(fb, ex).unwrap();
        }
        let before = fingerprint(&store, 5);
        // Replays, gaps, a wrong parent, and results that are not the block's.
        let err = store.commit_block(&blocks[4], &executed[4]).unwrap_err();
        assert!(
            matches!(err, StorageError::WrongHeight { got: 5, tip: 5 }),
            "{err}"
        );
        let err = store.commit_block(&blocks[6], &executed[6]).unwrap_err();
        assert!(
            matches!(err, StorageError::WrongHeight { got: 7, tip: 5 }),
            "{err}"
        );
        let mut fork = blocks[5].clone();
        fork.block.header.prev_hash = Digest32(blocks[3].block.header.hash());
        let err = store.commit_block(&fork, &executed[5]).unwrap_err();
        assert!(
            matches!(err, StorageError::WrongParent { height: 6, .. }),
            "{err}"
        );
        let err = store.commit_block(&blocks[5], &executed[4]).unwrap_err();
        assert!(
            matches!(err, StorageError::Mismatch { height: 6, .. }),
            "{err}"
        );
        let mut uncertified = blocks[5].clone();
        uncertified.certificate = blocks[4].certificate.clone();
        let err = store.commit_block(&uncertified, &executed[5]).unwrap_err();
        assert!(
            matches!(
                err,
                StorageError::Mismatch {
                    what: "certificate",
                    ..
                }
            ),
            "{err}"
        );
        assert_eq!(fingerprint(&store, 5), before);

        store.commit_block(&blocks[5], &executed[5]).unwrap();
        assert_eq!(
            store.tip().unwrap(),
            Some(ChainTip::of(&blocks[5].block.header))
        );
    }

    #[test]
    fn storage_indexes_return_events_in_order_with_limits() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let chain = Chain::build(10);
        chain.commit_all(&store);
        let events = chain.events();
        assert_eq!(events.len(), 20);

        type Query<'a> = Box<dyn Fn(u64, usize) -> Vec<LoggedEvent> + 'a>;
        let w = &chain.world;
        let [p1, p2] = chain.patients;
        let b = w.hospital_b.public_key();
        let cases: Vec<(&str, Query, Vec<LoggedEvent>)> = vec![
            (
                "patient 1",
                Box::new(|f, l| store.events_for_patient(&p1, f, l).unwrap()),
                events
                    .iter()
                    .filter(|e| e.event.patient == p1)
                    .cloned()
                    .collect(),
            ),
            (
                "patient 2",
                Box::new(|f, l| store.events_for_patient(&p2, f, l).unwrap()),
                events
                    .iter()
                    .filter(|e| e.event.patient == p2)
                    .cloned()
                    .collect(),
            ),
            (
                "archive 3",
                Box::new(|f, l| store.events_for_archive(&archive_id(3), f, l).unwrap()),
                events
                    .iter()
                    .filter(|e| e.event.archive == archive_id(3))
                    .cloned()
                    .collect(),
            ),
            (
                "accessor B",
                Box::new(|f, l| store.events_for_accessor(&b, f, l).unwrap()),
                events
                    .iter()
                    .filter(|e| {
                        e.event.accessor == b || e.event.staff.is_some_and(|s| s.institution == b)
                    })
                    .cloned()
                    .collect(),
            ),
        ];
        for (name, query, want) in cases {
            assert!(!want.is_empty(), "{name}: the scenario must produce events");
            assert_eq!(query(0, 1000), want, "{name}: all");
            assert_eq!(query(0, 2), want[..2].to_vec(), "{name}: first page");
            // Paging by `last global index + 1` walks the same list.
            let mut paged = Vec::new();
            let mut from = 0;
            loop {
                let page = query(from, 3);
                match page.last() {
                    None => break,
                    Some(last) => from = last.global_index + 1,
                }
                paged.extend(page);
            }
            assert_eq!(paged, want, "{name}: paged");
            assert!(query(u64::MAX, 10).is_empty(), "{name}: past the end");
            assert!(query(0, 0).is_empty(), "{name}: limit 0");
        }
        let nobody = patient_key(77).public_key();
        assert!(store.events_for_patient(&nobody, 0, 10).unwrap().is_empty());
        assert!(
            store
                .events_for_accessor(&nobody, 0, 10)
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn storage_serves_inclusion_and_consistency_proofs_that_verify() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let chain = Chain::build(11);
        chain.commit_all(&store);
        let last = &chain.blocks().last().unwrap().block.header;
        let size = last.access_log_size;
        assert_eq!(size, 24);
        let log = store.global_log();
        for ev in chain.events() {
            let proof = inclusion_proof(&log, ev.global_index, size).unwrap();
            verify_inclusion(
                &ev.event.leaf_hash(),
                ev.global_index,
                size,
                &proof,
                &last.access_log_root.0,
            )
            .unwrap();
        }
        // Every earlier header's log is a prefix of the latest one's.
        for fb in chain.blocks() {
            let h = &fb.block.header;
            assert_eq!(
                root_at(&log, h.access_log_size).unwrap(),
                h.access_log_root.0
            );
            if h.access_log_size == 0 {
                continue;
            }
            let proof = consistency_proof(&log, h.access_log_size, size).unwrap();
            verify_consistency(
                h.access_log_size,
                size,
                &proof,
                &h.access_log_root.0,
                &last.access_log_root.0,
            )
            .unwrap();
        }
        // Each patient's history is complete and provable against the committed LogState.
        for p in chain.patients {
            let state = StateExt::patient_log(&store, &p).unwrap();
            let events = store.events_for_patient(&p, 0, 1000).unwrap();
            assert_eq!(events.len() as u64, state.size());
            let log = store.patient_log(&p);
            for ev in &events {
                let proof = inclusion_proof(&log, ev.patient_index, state.size()).unwrap();
                verify_inclusion(
                    &ev.event.leaf_hash(),
                    ev.patient_index,
                    state.size(),
                    &proof,
                    &state.root(),
                )
                .unwrap();
            }
            let half = state.size() / 2;
            let proof = consistency_proof(&log, half, state.size()).unwrap();
            let old_root = root_at(&log, half).unwrap();
            verify_consistency(half, state.size(), &proof, &old_root, &state.root()).unwrap();
        }
        // A tree larger than what is stored is refused, not invented.
        assert!(inclusion_proof(&log, 0, size + 1).is_err());
    }

    #[test]
    fn storage_snapshot_sees_one_block_while_commits_land() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        let chain = Chain::build(8);
        for (fb, ex) in chain.blocks()[..6].iter().zip(&chain.executed) {
            store.commit_block(fb, ex).unwrap();
        }
        let snap = store.snapshot();
        for (fb, ex) in chain.blocks()[6..].iter().zip(&chain.executed[6..]) {
            store.commit_block(fb, ex).unwrap();
        }
        let at5 = &chain.blocks()[5].block.header;
        assert_eq!(snap.tip().unwrap(), Some(ChainTip::of(at5)));
        assert_eq!(snap.state_root().unwrap(), at5.state_root.0);
        assert_eq!(snap.access_log().unwrap().size(), at5.access_log_size);
        assert!(snap.block(7).unwrap().is_none());
        assert!(snap.event(at5.access_log_size).unwrap().is_none());
        let p1 = chain.patients[0];
        let seen = snap.events_for_patient(&p1, 0, 1000).unwrap();
        assert!(seen.iter().all(|e| e.global_index < at5.access_log_size));
        let proof = inclusion_proof(&snap.global_log(), 0, at5.access_log_size).unwrap();
        let first = snap.event(0).unwrap().unwrap();
        verify_inclusion(
            &first.event.leaf_hash(),
            0,
            at5.access_log_size,
            &proof,
            &at5.access_log_root.0,
        )
        .unwrap();
        // The live store has moved on.
        assert_eq!(store.tip().unwrap(), Some(chain.world.tip));
        assert_eq!(store.state_root().unwrap(), chain.world.root());
    }

    #[test]
    fn storage_snapshots_stay_consistent_under_concurrent_commits() {
        let dir = TempDir::new().unwrap();
        let store = Arc::new(open(&dir));
        let chain = Chain::build(30);
        let writer = {
            let store = Arc::clone(&store);
            let blocks = chain.blocks().to_vec();
            let executed = chain.executed.clone();
            std::thread::spawn(move || {
                for (fb, ex) in blocks.iter().zip(&executed) {
                    store.commit_block(fb, ex).unwrap();
                }
            })
        };
        let mut checked = 0;
        let mut heights = std::collections::BTreeSet::new();
        loop {
            let done = writer.is_finished();
            let snap = store.snapshot();
            if let Some(tip) = snap.tip().unwrap() {
                let header = snap.block(tip.height).unwrap().unwrap().block.header;
                assert_eq!(
                    snap.state_root().unwrap(),
                    header.state_root.0,
                    "at {}",
                    tip.height
                );
                let log = snap.access_log().unwrap();
                assert_eq!(log.size(), header.access_log_size, "at {}", tip.height);
                assert!(snap.block(tip.height + 1).unwrap().is_none());
                heights.insert(tip.height);
                checked += 1;
            }
            if done {
                break;
            }
        }
        writer.join().unwrap();
        assert_eq!(store.tip().unwrap(), Some(chain.world.tip));
        eprintln!(
            "{checked} snapshots checked at {} distinct heights",
            heights.len()
        );
    }

    /// How many blocks the consensus record's column family holds in the closed store at `path`.
    fn wal_blocks(path: &Path) -> usize {
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), path, COLUMN_FAMILIES).unwrap();
        let cf = db.cf_handle(schema::CF_WAL_BLOCKS).unwrap();
        db.iterator_cf(cf, rocksdb::IteratorMode::Start).count()
    }

    /// Overwrites `key` in column family `cf` of the closed store at `path`.
    fn poke(path: &Path, cf: &str, key: &[u8], value: &[u8]) {
        let db = rocksdb::DB::open_cf(&rocksdb::Options::default(), path, COLUMN_FAMILIES).unwrap();
        db.put_cf(db.cf_handle(cf).unwrap(), key, value).unwrap();
    }

    #[test]
    fn storage_corrupt_bytes_are_errors_not_panics() {
        let dir = TempDir::new().unwrap();
        let chain = Chain::build(6);
        let tree_keys: Vec<Vec<u8>> = {
            let store = open(&dir);
            chain.commit_all(&store);
            chain.executed[5]
                .writes
                .keys()
                .filter(|k| k.first() == Some(&TREE_PREFIX))
                .cloned()
                .collect()
        };
        let p1 = chain.patients[0];
        let garbage = [0xde, 0xad, 0xbe];
        poke(dir.path(), schema::CF_BLOCKS, &1u64.to_be_bytes(), &garbage);
        poke(dir.path(), schema::CF_EVENTS, &0u64.to_be_bytes(), &garbage);
        poke(
            dir.path(),
            schema::CF_TXS,
            &chain.blocks()[0].block.txs.iter().next().unwrap().hash(),
            &garbage,
        );
        poke(
            dir.path(),
            schema::CF_BLOCK_HASHES,
            &chain.blocks()[1].block.hash(),
            &garbage,
        );
        poke(
            dir.path(),
            schema::CF_LOG_NODES,
            &schema::log_node_key(0, 1),
            &garbage,
        );
        poke(
            dir.path(),
            schema::CF_PATIENT_LOG_NODES,
            &schema::patient_log_node_key(&p1.0, 0, 1),
            &garbage,
        );
        for k in &tree_keys {
            poke(dir.path(), schema::CF_STATE, k, &garbage);
        }
        // An index entry naming an event that is not there.
        poke(
            dir.path(),
            schema::CF_IDX_ARCHIVE,
            &schema::index_key(&archive_id(9).0, 999),
            &[],
        );

        let store = open(&dir);
        let corrupt = |e: StorageError| assert!(matches!(e, StorageError::Corrupt { .. }), "{e}");
        corrupt(store.block(1).unwrap_err());
        assert!(store.block(2).unwrap().is_some());
        corrupt(store.event(0).unwrap_err());
        corrupt(store.events_for_patient(&p1, 0, 10).unwrap_err());
        corrupt(store.events_for_archive(&archive_id(9), 0, 10).unwrap_err());
        corrupt(
            store
                .tx_location(&chain.blocks()[0].block.txs.iter().next().unwrap().hash())
                .unwrap_err(),
        );
        corrupt(
            store
                .height_of(&chain.blocks()[1].block.hash())
                .unwrap_err(),
        );
        assert!(inclusion_proof(&store.global_log(), 0, 4).is_err());
        assert!(inclusion_proof(&store.patient_log(&p1), 0, 2).is_err());
        assert!(store.state_root().is_err());
        drop(store);

        // A corrupt tip stops the store from opening at all.
        poke(dir.path(), schema::CF_META, schema::META_TIP, &garbage);
        match Store::open(dir.path()) {
            Err(StorageError::Corrupt { .. }) => {}
            Err(e) => panic!("want a corrupt-tip error, got {e}"),
            Ok(_) => panic!("want a corrupt-tip error, the store opened"),
        }
    }

    const CRASH_DIR_ENV: &str = "CRADLE_STORAGE_CRASH_DIR";
    const CRASH_BLOCKS: usize = 120;

    /// The child side of the crash test: commits the deterministic chain from wherever the
    /// store's tip is, as fast as it can, until killed. Does nothing in a normal run.
    #[test]
    fn crash_child() {
        let Ok(dir) = std::env::var(CRASH_DIR_ENV) else {
            return;
        };
        let chain = Chain::build(CRASH_BLOCKS);
        let store = Store::open(Path::new(&dir)).unwrap();
        let from = store.tip().unwrap().map_or(0, |t| t.height) as usize;
        println!("crash-child: committing from {from}");
        for (fb, ex) in chain.blocks().iter().zip(&chain.executed).skip(from) {
            store.commit_block(fb, ex).unwrap();
            println!("crash-child: committed {}", fb.block.header.height);
        }
        println!("crash-child: done");
    }

    /// The number after `marker` in a line of the child's output (the test harness may have
    /// printed on the same line before it).
    fn after(line: &str, marker: &str) -> Option<u64> {
        let at = line.find(marker)? + marker.len();
        line[at..].split_whitespace().next()?.parse().ok()
    }

    /// Whatever moment a commit is killed at, the store reopens at a tip whose header matches
    /// the stored state root and access log, and never loses a block it had synced.
    #[test]
    fn storage_survives_sigkill_mid_commit() {
        let dir = TempDir::new().unwrap();
        let seed = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap()
            .as_nanos() as u64
            | 1;
        let mut rng = seed;
        let mut next = move || {
            rng ^= rng << 13;
            rng ^= rng >> 7;
            rng ^= rng << 17;
            rng
        };
        let mut last_height = 0;
        let mut kills = 0;
        let mut tips = Vec::new();
        for round in 0..12 {
            let mut child = Command::new(std::env::current_exe().unwrap())
                .args([
                    "storage::crash_child",
                    "--exact",
                    "--nocapture",
                    "--test-threads=1",
                ])
                .env(CRASH_DIR_ENV, dir.path())
                .stdout(Stdio::piped())
                .stderr(Stdio::null())
                .spawn()
                .unwrap();
            let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
            let from = lines
                .by_ref()
                .map_while(Result::ok)
                .find_map(|l| after(&l, "crash-child: committing from "))
                .unwrap_or_else(|| panic!("seed {seed}: the child never started committing"));
            // Let it commit a random number of blocks (up to half of what is left, so a kill
            // always lands while blocks remain, however fast this disk syncs), then kill it a
            // random moment later: within a commit or between two.
            let remaining = CRASH_BLOCKS as u64 - from;
            let target = from + 1 + next() % (remaining / 2).max(1);
            let _ = lines.by_ref().map_while(Result::ok).any(|l| {
                l.contains("crash-child: done")
                    || after(&l, "crash-child: committed ").is_some_and(|h| h >= target)
            });
            let delay_us = next() % 2_000;
            std::thread::sleep(Duration::from_micros(delay_us));
            let _ = child.kill();
            let status = child.wait().unwrap();
            let finished = lines
                .map_while(Result::ok)
                .any(|l| l.contains("crash-child: done"));
            if !status.success() {
                kills += 1;
            }

            let store = Store::open(dir.path()).unwrap();
            let tip = store.tip().unwrap().map_or(0, |t| t.height);
            assert!(
                tip >= last_height,
                "seed {seed} round {round}: tip went from {last_height} back to {tip}"
            );
            last_height = tip;
            tips.push(tip);
            if let Some(tip) = store.tip().unwrap() {
                let header = store.block(tip.height).unwrap().unwrap().block.header;
                assert_eq!(header.hash(), tip.hash, "seed {seed} round {round}");
                assert_eq!(
                    store.state_root().unwrap(),
                    header.state_root.0,
                    "seed {seed} round {round}: state root at {}",
                    tip.height
                );
                let log = store.access_log().unwrap();
                assert_eq!(
                    log.size(),
                    header.access_log_size,
                    "seed {seed} round {round}"
                );
                assert_eq!(
                    root_at(&store.global_log(), log.size()).unwrap(),
                    header.access_log_root.0,
                    "seed {seed} round {round}"
                );
                assert!(
                    store.block(tip.height + 1).unwrap().is_none(),
                    "seed {seed} round {round}"
                );
                assert!(
                    store.event(log.size()).unwrap().is_none(),
                    "seed {seed} round {round}"
                );
            }
            if finished {
                break;
            }
        }
        assert!(kills > 0, "seed {seed}: the child was never killed mid-run");

        // Left alone, the child finishes the chain from wherever the kills left it.
        let status = Command::new(std::env::current_exe().unwrap())
            .args(["storage::crash_child", "--exact", "--test-threads=1"])
            .env(CRASH_DIR_ENV, dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success(), "seed {seed}: the child could not resume");
        let chain = Chain::build(CRASH_BLOCKS);
        let store = Store::open(dir.path()).unwrap();
        assert_eq!(store.tip().unwrap(), Some(chain.world.tip), "seed {seed}");
        assert_eq!(
            store.state_root().unwrap(),
            chain.world.root(),
            "seed {seed}"
        );
        for fb in chain.blocks() {
            let h = fb.block.header.height;
            assert_eq!(
                store.block(h).unwrap().as_ref(),
                Some(fb),
                "seed {seed}: block {h}"
            );
        }
        eprintln!(
            "crash test: seed {seed}, {kills} kills, tips after each {tips:?} of {CRASH_BLOCKS}"
        );
    }
}
