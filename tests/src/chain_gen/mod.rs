//! A long certified chain for `cradle-catchup-bench`, generated in memory with the ledger's own
//! rules: [`plan`] says what every block holds, [`generate`] signs (on both cores), builds,
//! certifies and encodes it as a peer would serve it.

pub mod plan;

pub use plan::*;

use std::sync::mpsc;
use std::time::Instant;

use anyhow::{Context, bail};
use cradle_consensus::{CommitCertificate, SignedVote, Vote, VoteKind};
use cradle_ledger::access::{AccessOutcome, AccessRequest, SignedAccessRequest};
use cradle_ledger::block::{self, ChainTip, FinalizedBlock};
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::crypto::{self, TAG_ACCESS_REQUEST};
use cradle_ledger::governance::{self, ApproveChange, Change, ProposeChange};
use cradle_ledger::state::MemoryStore;
use cradle_ledger::tx::*;
use cradle_ledger::{Consortium, Hash, PublicKey, Role};

/// Signs one planned transaction for the block at `height`.
pub fn sign(
    keys: &Keys,
    plan: &Plan,
    chain: Hash,
    height: u64,
    p: &Planned,
) -> anyhow::Result<SignedTransaction> {
    let time_ms = height_time_ms(height);
    let archive_patient = |a: u32| &keys.patients[plan.archives[a as usize].0 as usize];
    let archive_custodian = |a: u32| &keys.members[plan.archives[a as usize].1 as usize];
    let body = match p.step {
        Step::Access { archive, k } => {
            let patient = archive_patient(archive);
            let mut request_id = [0u8; 16];
            request_id[..8].copy_from_slice(&k.to_le_bytes());
            let request = AccessRequest {
                accessor: patient.public_key(),
                archive: archive_of(archive),
                purpose: Purpose::PatientRequest,
                justification: None,
                requested_at_ms: time_ms - 30_000,
                request_id,
            };
            let signature = patient.sign(TAG_ACCESS_REQUEST, &chain, &request);
            TxBody::RecordAccess(RecordAccess {
                request: SignedAccessRequest { request, signature },
                grant: None,
                outcome: AccessOutcome::Permitted {
                    key_for_accessor: None,
                },
            })
        }
        Step::Enrol { patient } => TxBody::EnrolPatient(EnrolPatient::prove(
            &keys.patients[patient as usize],
            &chain,
        )),
        Step::Register { archive, category } => {
            let id = archive_of(archive);
            TxBody::RegisterArchive(RegisterArchive {
                archive: id,
                custodian: archive_custodian(archive).public_key(),
                patient: archive_patient(archive).public_key(),
                ciphertext_sha256: crypto::sha256(&id.0),
                size_bytes: 600_000,
                category,
                key_for_patient: wrapped(1),
                key_for_custodian: wrapped(2),
                grant_keys: BoundedVec::empty(),
            })
        }
        Step::Grant { archive, grantee } => {
            let id = archive_of(archive);
            TxBody::GrantConsent(GrantConsent {
                grantee: keys.members[grantee as usize].public_key(),
                scope: Scope::Archives(BoundedVec::new(vec![id])?),
                purposes: BoundedVec::new(vec![Purpose::Treat])?,
                roles: BoundedVec::empty(),
                valid_from_ms: time_ms,
                expires_at_ms: time_ms + GRANT_DAYS * DAY_MS,
                archive_keys: BoundedVec::new(vec![ArchiveKey {
                    archive: id,
                    key: wrapped(3),
                }])?,
            })
        }
        Step::Propose => {
            let joiner = &keys.members[JOINER];
            let (_, _, proof) = prove_keys(joiner, &chain);
            TxBody::ProposeChange(ProposeChange {
                change: Change::AddMember {
                    member: member("Hillside Community Clinic", Role::Clinic, joiner, 1, 26606),
                    proof,
                },
            })
        }
        Step::Approve { proposal } => TxBody::ApproveChange(ApproveChange { proposal }),
    };
    let key = match p.signer {
        Signer::Member(m) => &keys.members[m as usize],
        Signer::Patient(i) => &keys.patients[i as usize],
    };
    Ok(Transaction {
        chain_id: chain,
        signer: key.public_key(),
        nonce: p.nonce,
        body,
    }
    .sign(key))
}

/// `f` over `items` on both cores, results in order.
pub fn on_two_cores<T: Sync, R: Send>(
    items: &[T],
    f: &(impl Fn(&T) -> anyhow::Result<R> + Sync),
) -> anyhow::Result<Vec<R>> {
    let (low, high) = items.split_at(items.len() / 2);
    std::thread::scope(|s| {
        let upper = s.spawn(|| high.iter().map(f).collect::<anyhow::Result<Vec<R>>>());
        let mut out = low.iter().map(f).collect::<anyhow::Result<Vec<R>>>()?;
        let upper = upper
            .join()
            .unwrap_or_else(|e| std::panic::resume_unwind(e))?;
        out.extend(upper);
        Ok(out)
    })
}

/// Precommits for `header` from the validators in force, starting at a validator that turns
/// with the height, until they hold more than two thirds of the power: the smallest
/// certificate a node can commit on.
pub fn certify(
    consortium: &Consortium,
    keys: &Keys,
    header: &block::BlockHeader,
) -> anyhow::Result<CommitCertificate> {
    let set = consortium.validators();
    let n = set.len();
    let value = header.value_id();
    let mut votes: Vec<SignedVote> = Vec::new();
    let mut power = 0u64;
    for i in 0..n {
        let index = (header.height as usize + i) % n;
        let v = &set.validators()[index];
        let key = keys
            .members
            .iter()
            .find(|k| k.public_key().0 == v.public_key)
            .context("a validator without a key")?;
        votes.push(
            Vote {
                kind: VoteKind::Precommit,
                height: header.height,
                round: 0,
                value: Some(value),
                validator: u16::try_from(index)?,
            }
            .sign(&consortium.chain_id, key.signing_key()),
        );
        power += v.voting_power;
        if set.is_quorum(power) {
            break;
        }
    }
    Ok(CommitCertificate::from_precommits(
        header.height,
        0,
        value,
        &votes,
    ))
}

/// The generated chain as a peer would serve it.
pub struct Chain {
    pub blocks: Vec<Vec<u8>>,
    pub tip: ChainTip,
    pub txs: u64,
    pub tx_signatures: u64,
    pub certificate_signatures: u64,
    pub bytes: u64,
}

/// Builds, certifies and encodes every block of `plan`; signing (both cores) runs ahead of
/// building on the ledger's rules (this thread).
pub fn generate(genesis: &Consortium, keys: &Keys, plan: &Plan) -> anyhow::Result<Chain> {
    let chain_id = genesis.chain_id;
    let mut store = MemoryStore::new();
    let mut tip = ChainTip::genesis(genesis);
    let mut out = Chain {
        blocks: Vec::with_capacity(plan.blocks.len()),
        tip,
        txs: 0,
        tx_signatures: 0,
        certificate_signatures: 0,
        bytes: 0,
    };
    let started = Instant::now();
    std::thread::scope(|scope| -> anyhow::Result<()> {
        let (tx, rx) = mpsc::sync_channel::<anyhow::Result<Vec<SignedTransaction>>>(256);
        scope.spawn(move || {
            for (c, chunk) in plan.blocks.chunks(SIGN_CHUNK_BLOCKS).enumerate() {
                let first = (c * SIGN_CHUNK_BLOCKS) as u64 + 1;
                let flat: Vec<(u64, &Planned)> = chunk
                    .iter()
                    .enumerate()
                    .flat_map(|(i, txs)| txs.iter().map(move |p| (first + i as u64, p)))
                    .collect();
                let signed = on_two_cores(&flat, &|(h, p)| sign(keys, plan, chain_id, *h, p));
                let mut signed = match signed {
                    Ok(s) => s.into_iter(),
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        return;
                    }
                };
                for txs in chunk {
                    let block: Vec<_> = signed.by_ref().take(txs.len()).collect();
                    if tx.send(Ok(block)).is_err() {
                        return;
                    }
                }
            }
        });
        for (b, txs) in rx.into_iter().enumerate() {
            let txs = txs?;
            let height = b as u64 + 1;
            let consortium = governance::in_force(genesis, &store, height)?;
            let set = consortium.validators();
            let proposer = set.validators()[(height as usize) % set.len()].public_key;
            let n = txs.len();
            let built = block::build_block(
                &store,
                &consortium,
                &tip,
                height_time_ms(height),
                PublicKey(proposer),
                txs,
            )?;
            if let Some((hash, e)) = built.rejected.first() {
                bail!(
                    "block {height}: {} of {n} transactions refused, first {}: {e}",
                    built.rejected.len(),
                    hex::encode(hash)
                );
            }
            if height == plan.activation && consortium.validators().len() != 5 {
                bail!(
                    "the clinic voted in is not a validator at height {height}: {} validators",
                    consortium.validators().len()
                );
            }
            store.commit(&built.executed.writes);
            let certificate = certify(&consortium, keys, &built.block.header)?;
            out.txs += n as u64;
            out.tx_signatures += plan.blocks[b].iter().map(Planned::signatures).sum::<u64>();
            out.certificate_signatures += certificate.signatures.len() as u64;
            tip = ChainTip::of(&built.block.header);
            let bytes = FinalizedBlock {
                block: built.block,
                certificate,
            }
            .encode();
            out.bytes += bytes.len() as u64;
            out.blocks.push(bytes);
            if height.is_multiple_of(10_000) {
                let s = started.elapsed().as_secs_f64();
                eprintln!(
                    "  generated {height} blocks in {s:.0} s ({:.0} blocks/s)",
                    height as f64 / s
                );
            }
        }
        Ok(())
    })?;
    if out.blocks.len() != plan.blocks.len() {
        bail!(
            "the signers stopped after {} of {} blocks",
            out.blocks.len(),
            plan.blocks.len()
        );
    }
    out.tip = tip;
    Ok(out)
}
