//! The chain the catch-up benchmark generates: its consortium, its keys and its plan of blocks
//! (what each transaction is, who signs it), all derived from fixed seeds.

use anyhow::Context;
use cradle_ledger::crypto;
use cradle_ledger::governance::{self, proposal_id};
use cradle_ledger::tx::*;
use cradle_ledger::{
    ArchiveId, Consortium, Keypair, Limits, Member, Policy, ProposalId, PublicKey, Role,
    X25519Public,
};

/// Genesis of the generated chain: 2026-05-28T20:26:40Z.
pub const GENESIS_MS: u64 = 1_780_000_000_000;
/// Five minutes between blocks: 100,000 blocks of 10 transactions are about a year of a
/// regional consortium (a million records: enrolments, archives, grants and reads).
pub const BLOCK_INTERVAL_MS: u64 = 5 * 60 * 1000;
pub const DAY_MS: u64 = 24 * 3600 * 1000;
/// A grant lasts a pregnancy.
pub const GRANT_DAYS: u64 = 280;
/// Blocks signed per hand-over from the signing threads to the block builder.
pub const SIGN_CHUNK_BLOCKS: usize = 64;
/// Index of the regulator and of the clinic voted in, in [`Keys::members`].
pub const REGULATOR: usize = 4;
pub const JOINER: usize = 5;

/// A fixed pseudo-random stream (SplitMix64), so every run builds the same history.
pub fn mix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

pub fn seeded(tag: u8, i: u64) -> Keypair {
    let mut seed = [tag; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    Keypair::from_seed(&seed)
}

pub fn archive_of(a: u32) -> ArchiveId {
    ArchiveId(crypto::sha256_parts(&[
        b"catchup-bench archive".as_slice(),
        &a.to_le_bytes(),
    ]))
}

/// A wrapped key of the right shape; no one unwraps the generated archives' keys.
pub fn wrapped(tag: u8) -> WrappedKey {
    WrappedKey {
        ephemeral: X25519Public([tag; 32]),
        sealed: [tag; 48],
    }
}

pub fn member(name: &str, role: Role, key: &Keypair, power: u64, port: u16) -> Member {
    Member {
        name: name.into(),
        role,
        public_key: key.public_key(),
        x25519: key.x25519_public(),
        voting_power: power,
        p2p_addr: Some(format!("/ip4/10.0.0.{}/tcp/{port}", port % 100)),
        api_addr: Some(format!("10.0.0.{}:8600", port % 100)),
        signing_key: None,
    }
}

/// The consortium's keys: four validators, the regulator, the clinic voted in later; and the
/// patients, one per enrolment the plan makes.
pub struct Keys {
    pub members: Vec<Keypair>,
    pub patients: Vec<Keypair>,
}

pub fn genesis(keys: &Keys) -> anyhow::Result<Consortium> {
    let m = &keys.members;
    let members = vec![
        member("County Hospital", Role::Hospital, &m[0], 1, 26601),
        member("City Hospital", Role::Hospital, &m[1], 1, 26602),
        member(
            "Maternal and Child Health Centre",
            Role::Clinic,
            &m[2],
            1,
            26603,
        ),
        member("Township Clinic", Role::Clinic, &m[3], 1, 26604),
        member(
            "Health Commission",
            Role::Regulator,
            &m[REGULATOR],
            0,
            26605,
        ),
    ];
    Ok(Consortium::new(
        crypto::sha256(b"cradle catch-up bench"),
        GENESIS_MS,
        members,
        Policy::default(),
        Limits::default(),
    )?)
}

/// What one transaction of the history is, decided in order before anything is signed.
#[derive(Clone, Copy)]
pub enum Step {
    /// The archive's custodian records its patient's read; `k` makes the request id unique.
    Access {
        archive: u32,
        k: u64,
    },
    Enrol {
        patient: u32,
    },
    Register {
        archive: u32,
        category: Category,
    },
    /// The archive's patient grants TREAT on it to another member.
    Grant {
        archive: u32,
        grantee: u8,
    },
    Propose,
    Approve {
        proposal: ProposalId,
    },
}

#[derive(Clone, Copy)]
pub enum Signer {
    Member(u8),
    Patient(u32),
}

#[derive(Clone, Copy)]
pub struct Planned {
    pub signer: Signer,
    pub nonce: u64,
    pub step: Step,
}

impl Planned {
    /// Signatures a verifier checks for it: the transaction's, and the access request's or the
    /// new key's proof it carries.
    pub fn signatures(&self) -> u64 {
        match self.step {
            Step::Access { .. } | Step::Enrol { .. } | Step::Propose => 2,
            _ => 1,
        }
    }
}

/// The whole history, block by block: who signs what, with which nonce.
pub struct Plan {
    pub blocks: Vec<Vec<Planned>>,
    /// Each archive's patient and custodian (a member index).
    pub archives: Vec<(u32, u8)>,
    pub patients: u32,
    /// First height at which the clinic voted in is a member.
    pub activation: u64,
}

pub fn height_time_ms(height: u64) -> u64 {
    GENESIS_MS + height * BLOCK_INTERVAL_MS
}

pub fn plan(blocks: u64, block_txs: u64, proposer: &PublicKey) -> anyhow::Result<Plan> {
    let mut member_nonce = [0u64; 6];
    let mut patient_nonce: Vec<u64> = Vec::new();
    let mut home: Vec<u8> = Vec::new();
    let mut archives: Vec<(u32, u8)> = Vec::new();
    let mut out = Vec::with_capacity(blocks as usize);
    // Blocks are numbered from 0 here; block `b` is at height `b + 1`. Three blocks from the
    // middle on carry the vote; the change takes effect two heights after the last approval.
    let vote_at = blocks / 2;
    let activation = vote_at + 3 + governance::ACTIVATION_OFFSET;
    let mut proposal = None;
    let mut k = 0u64;
    for b in 0..blocks {
        let height = b + 1;
        let custodians: u8 = if height >= activation { 5 } else { 4 };
        let custodian_at = |i: u64| -> u8 {
            let c = (i % u64::from(custodians)) as u8;
            if c == 4 { JOINER as u8 } else { c }
        };
        // Only what earlier blocks created is referred to.
        let (enrolled, registered) = (home.len() as u64, archives.len() as u64);
        let mut txs = Vec::with_capacity(block_txs as usize + 1);
        for _ in 0..block_txs {
            let r = mix(k);
            let mut kind = k % 10;
            let needs_archive = kind <= 3 || kind == 9;
            if (needs_archive && registered == 0) || ((7..=8).contains(&kind) && enrolled == 0) {
                kind = 4;
            }
            let (signer, step) = match kind {
                0..=3 => {
                    let archive = (r % registered) as u32;
                    let custodian = archives[archive as usize].1;
                    (Signer::Member(custodian), Step::Access { archive, k })
                }
                4..=6 => {
                    let patient = u32::try_from(home.len()).context("too many patients")?;
                    let custodian = custodian_at(r);
                    home.push(custodian);
                    patient_nonce.push(0);
                    (Signer::Member(custodian), Step::Enrol { patient })
                }
                7 | 8 => {
                    let patient = (r % enrolled) as u32;
                    let custodian = home[patient as usize];
                    let archive = u32::try_from(archives.len()).context("too many archives")?;
                    archives.push((patient, custodian));
                    let category = if kind == 7 {
                        Category::PrenatalVisit
                    } else {
                        Category::Ultrasound
                    };
                    (
                        Signer::Member(custodian),
                        Step::Register { archive, category },
                    )
                }
                _ => {
                    let archive = (r % registered) as u32;
                    let (patient, custodian) = archives[archive as usize];
                    let mut grantee = custodian_at(r >> 32);
                    if grantee == custodian {
                        grantee = custodian_at((r >> 32) + 1);
                    }
                    (Signer::Patient(patient), Step::Grant { archive, grantee })
                }
            };
            let nonce = match signer {
                Signer::Member(m) => &mut member_nonce[m as usize],
                Signer::Patient(p) => &mut patient_nonce[p as usize],
            };
            *nonce += 1;
            txs.push(Planned {
                signer,
                nonce: *nonce,
                step,
            });
            k += 1;
        }
        // The vote: member 0 proposes, members 1 and 2 approve in the next two blocks.
        if let Some(by) = b.checked_sub(vote_at).filter(|d| *d <= 2) {
            let nonce = &mut member_nonce[by as usize];
            *nonce += 1;
            let step = match proposal {
                None => {
                    proposal = Some(proposal_id(proposer, *nonce));
                    Step::Propose
                }
                Some(proposal) => Step::Approve { proposal },
            };
            txs.push(Planned {
                signer: Signer::Member(by as u8),
                nonce: *nonce,
                step,
            });
        }
        out.push(txs);
    }
    Ok(Plan {
        blocks: out,
        archives,
        patients: u32::try_from(home.len()).context("too many patients")?,
        activation,
    })
}
