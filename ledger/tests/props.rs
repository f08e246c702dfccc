//! Properties: encodings round-trip, decoders never panic on hostile bytes, and the state
//! transition is deterministic.

#![allow(clippy::unwrap_used)] // Test code: a panic is the failure report.

mod common;

use common::*;
use cradle_ledger::access::{AccessEvent, AccessOutcome, DenialReason};
use cradle_ledger::block::{Block, ChainTip, FinalizedBlock};
use cradle_ledger::codec::{self, BoundedVec};
use cradle_ledger::staff::StaffRole;
use cradle_ledger::state::{MemoryStore, StateExt};
use cradle_ledger::tx::*;
use cradle_ledger::*;
use proptest::prelude::*;

fn key32() -> impl Strategy<Value = [u8; 32]> {
    any::<[u8; 32]>()
}

fn body(chain: Hash) -> impl Strategy<Value = TxBody> {
    let wk = (key32(), any::<u8>()).prop_map(|(e, s)| WrappedKey {
        ephemeral: X25519Public(e),
        sealed: [s; 48],
    });
    prop_oneof![
        // The patient's own proof for the chain the transaction is signed for.
        key32().prop_map(move |seed| TxBody::EnrolPatient(EnrolPatient::prove(
            &Keypair::from_seed(&seed),
            &chain
        ))),
        (
            key32(),
            key32(),
            any::<u64>(),
            0usize..9,
            wk,
            prop::collection::vec(key32(), 0..4)
        )
            .prop_map(|(a, p, size, cat, k, grants)| TxBody::RegisterArchive(
                RegisterArchive {
                    archive: ArchiveId(a),
                    custodian: PublicKey(a),
                    patient: PublicKey(p),
                    ciphertext_sha256: a,
                    size_bytes: size,
                    category: Category::ALL[cat],
                    key_for_patient: k,
                    key_for_custodian: k,
                    grant_keys: BoundedVec::new(
                        grants
                            .into_iter()
                            .map(|g| GrantKey {
                                grant: GrantId(g),
                                key: k
                            })
                            .collect()
                    )
                    .unwrap(),
                }
            )),
        (
            key32(),
            prop::collection::vec(0usize..9, 1..4),
            any::<u64>(),
            any::<u64>(),
            any::<bool>()
        )
            .prop_map(|(g, ps, from, to, all)| TxBody::GrantConsent(GrantConsent {
                grantee: PublicKey(g),
                scope: if all {
                    Scope::All
                } else {
                    Scope::Categories(
                        BoundedVec::new(ps.iter().map(|i| Category::ALL[*i]).collect()).unwrap(),
                    )
                },
                purposes: BoundedVec::new(ps.iter().map(|i| Purpose::ALL[*i]).collect()).unwrap(),
                roles: BoundedVec::new(ps.iter().map(|i| StaffRole::ALL[*i % 7]).collect())
                    .unwrap(),
                valid_from_ms: from,
                expires_at_ms: to,
                archive_keys: BoundedVec::empty(),
            })),
        key32().prop_map(|g| TxBody::RevokeConsent(RevokeConsent { grant: GrantId(g) })),
    ]
}

fn signed_tx() -> impl Strategy<Value = SignedTransaction> {
    key32()
        .prop_flat_map(|chain| (Just(chain), any::<u64>(), body(chain), any::<[u8; 32]>()))
        .prop_map(|(chain, nonce, body, seed)| {
            let key = Keypair::from_seed(&seed);
            Transaction {
                chain_id: chain,
                signer: key.public_key(),
                nonce,
                body,
            }
            .sign(&key)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn transactions_round_trip_and_keep_their_signature(stx in signed_tx()) {
        let bytes = stx.encode();
        let back = SignedTransaction::decode(&bytes, 1 << 20).unwrap();
        prop_assert_eq!(&back, &stx);
        prop_assert_eq!(back.hash(), stx.hash());
        back.verify(&stx.tx.chain_id).unwrap();
        let json = serde_json::to_string(&stx).unwrap();
        prop_assert_eq!(serde_json::from_str::<SignedTransaction>(&json).unwrap(), stx);
    }

    #[test]
    fn random_bytes_never_panic_a_decoder(bytes in prop::collection::vec(any::<u8>(), 0..2048)) {
        let _ = SignedTransaction::decode(&bytes, 1 << 20);
        let _ = Block::decode(&bytes, 1 << 20);
        let _ = FinalizedBlock::decode(&bytes, 1 << 20);
        let _ = codec::decode::<AccessEvent>(&bytes, 1 << 20);
        let mut versioned = vec![codec::VERSION];
        versioned.extend_from_slice(&bytes);
        let _ = SignedTransaction::decode(&versioned, 1 << 20);
        let _ = Block::decode(&versioned, 1 << 20);
        let _ = FinalizedBlock::decode(&versioned, 1 << 20);
    }

    #[test]
    fn corrupted_transactions_fail_to_decode_or_to_verify(
        stx in signed_tx(), pos in any::<prop::sample::Index>(), bit in 0u8..8
    ) {
        let mut bytes = stx.encode();
        let i = pos.index(bytes.len());
        bytes[i] ^= 1 << bit;
        if let Ok(tx) = SignedTransaction::decode(&bytes, 1 << 20) {
            prop_assert!(tx.verify(&stx.tx.chain_id).is_err(), "flipped byte {} still verifies", i);
        }
    }

    #[test]
    fn same_blocks_give_the_same_state_root_twice(ops in prop::collection::vec((0u8..6, 0u64..6, 0u64..6), 1..40)) {
        let first = run_script(&ops);
        let second = run_script(&ops);
        prop_assert_eq!(&first.1, &second.1);
        // Replaying the finalized blocks from genesis on a fresh store reaches the same roots.
        let mut store = MemoryStore::new();
        let mut tip = ChainTip::genesis(&first.0.consortium);
        for (fb, root) in first.0.blocks.iter().zip(&first.1) {
            fb.verify_certificate(&first.0.consortium).unwrap();
            let checked = block::check_block(&first.0.consortium, &tip, &fb.block).unwrap();
            let ex = block::execute(&store, &first.0.consortium, checked).unwrap();
            store.commit(&ex.writes);
            tip = ChainTip::of(&fb.block.header);
            prop_assert_eq!(&store.state_root().unwrap(), root);
        }
    }
}

/// Plays a script of operations; refused operations are skipped. Returns the world and the
/// state root after each committed block.
fn run_script(ops: &[(u8, u64, u64)]) -> (World, Vec<Hash>) {
    let mut w = World::new(Policy::default());
    let a = Keypair::from_secret_parts(&w.hospital_a.ed25519_seed(), &w.hospital_a.x25519_secret());
    let b = Keypair::from_secret_parts(&w.hospital_b.ed25519_seed(), &w.hospital_b.x25519_secret());
    // The world starts with one block (its clinicians' registrations).
    let mut roots = vec![w.root()];
    let mut grants: Vec<GrantId> = Vec::new();
    for (i, &(op, x, y)) in ops.iter().enumerate() {
        let p = patient_key(x);
        let tx = match op {
            0 => w.enrol(&a, &p),
            1 => w.register(&a, &p, archive_id(y), Category::ALL[y as usize % 9], vec![]),
            2 => {
                let archives: Vec<ArchiveId> = w
                    .store
                    .patient_archives(&p.public_key(), 100)
                    .unwrap()
                    .into_iter()
                    .map(|(id, _)| id)
                    .collect();
                let (tx, id) = w.grant(&p, &b, Scope::All, &[Purpose::Treat], 1 + y, &archives);
                grants.push(id);
                tx
            }
            3 if !grants.is_empty() => {
                let g = grants[y as usize % grants.len()];
                w.revoke(&p, g)
            }
            4 => {
                let req = w.request(w.staff(&b), archive_id(y), Purpose::Treat, None, i as u8);
                w.record(
                    &a,
                    req,
                    None,
                    AccessOutcome::Denied {
                        reason: DenialReason::NoGrant,
                    },
                )
            }
            _ => {
                w.advance(y * DAY_MS);
                roots.push(w.root());
                continue;
            }
        };
        if w.commit_one(tx).is_ok() {
            roots.push(w.root());
        }
    }
    (w, roots)
}
