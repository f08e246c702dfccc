//! A small consortium in memory for rule tests and benchmarks: two hospitals, a clinic and a
//! regulator with seeded keys, and helpers to sign transactions and commit blocks.
#![allow(dead_code, clippy::unwrap_used)]

pub mod audit_world;

use std::collections::HashMap;

use cradle_consensus::{CommitCertificate, Vote, VoteKind};
use cradle_ledger::access::{AccessOutcome, AccessRequest, SignedAccessRequest};
use cradle_ledger::block::{self, ChainTip, Executed, FinalizedBlock};
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::crypto::{self, TAG_ACCESS_REQUEST};
use cradle_ledger::justification;
use cradle_ledger::staff::*;
use cradle_ledger::state::{MemoryStore, StateExt};
use cradle_ledger::tx::*;
use cradle_ledger::*;

pub const DAY_MS: u64 = 24 * 3600 * 1000;
pub const GENESIS_MS: u64 = 1_780_000_000_000;

pub struct World {
    /// The consortium in force at the next block (genesis until a governance change).
    pub consortium: Consortium,
    pub genesis: Consortium,
    pub hospital_a: Keypair,
    pub hospital_b: Keypair,
    pub clinic: Keypair,
    pub regulator: Keypair,
    /// One active clinician per care-providing member, registered in block 1: an obstetrician
    /// at each hospital and a midwife at the clinic.
    staff: HashMap<PublicKey, Keypair>,
    pub store: MemoryStore,
    pub tip: ChainTip,
    pub now_ms: u64,
    nonces: HashMap<PublicKey, u64>,
    pub blocks: Vec<FinalizedBlock>,
    /// What each block of `blocks` did.
    pub executed: Vec<Executed>,
    /// Every access event committed, in global-log order.
    pub events: Vec<cradle_ledger::access::AccessEvent>,
    /// Validators voted in after genesis, who certify blocks with the others.
    pub joined: Vec<Keypair>,
}

pub use cradle_testkit::{member, patient_key, wrapped};

impl World {
    pub fn new(policy: Policy) -> Self {
        let hospital_a = Keypair::from_seed(&[1; 32]);
        let hospital_b = Keypair::from_seed(&[2; 32]);
        let clinic = Keypair::from_seed(&[3; 32]);
        let regulator = Keypair::from_seed(&[4; 32]);
        let members = vec![
            member("County Hospital", Role::Hospital, &hospital_a, 1),
            member("City Hospital", Role::Hospital, &hospital_b, 1),
            member("Township Clinic", Role::Clinic, &clinic, 1),
            member("Health Commission", Role::Regulator, &regulator, 0),
        ];
        let consortium = Consortium::new(
            crypto::sha256(b"test chain"),
            GENESIS_MS,
            members,
            policy,
            Limits::default(),
        )
        .unwrap();
        let tip = ChainTip::genesis(&consortium);
        let mut w = Self {
            genesis: consortium.clone(),
            consortium,
            hospital_a,
            hospital_b,
            clinic,
            regulator,
            staff: HashMap::new(),
            store: MemoryStore::new(),
            tip,
            now_ms: GENESIS_MS,
            nonces: HashMap::new(),
            blocks: Vec::new(),
            executed: Vec::new(),
            events: Vec::new(),
            joined: Vec::new(),
        };
        let roster = [
            (Keypair::from_seed(&[1; 32]), 11u8, StaffRole::Obstetrician),
            (Keypair::from_seed(&[2; 32]), 12, StaffRole::Obstetrician),
            (Keypair::from_seed(&[3; 32]), 13, StaffRole::Midwife),
        ];
        let mut txs = Vec::new();
        for (institution, seed, role) in roster {
            let clinician = Keypair::from_seed(&[seed; 32]);
            txs.push(w.register_staff(&institution, &institution, &clinician, role));
            w.staff.insert(institution.public_key(), clinician);
        }
        w.commit(txs).unwrap();
        w
    }

    /// The clinician registered for `institution` in block 1.
    pub fn staff(&self, institution: &Keypair) -> &Keypair {
        &self.staff[&institution.public_key()]
    }

    /// `by` registers `clinician` at `institution` with `role`.
    pub fn register_staff(
        &mut self,
        by: &Keypair,
        institution: &Keypair,
        clinician: &Keypair,
        role: StaffRole,
    ) -> SignedTransaction {
        let keys = StaffKeys::prove(clinician, &self.chain_id());
        self.sign(
            by,
            TxBody::RegisterStaff(RegisterStaff {
                institution: institution.public_key(),
                keys,
                role,
                department: Department::Obstetrics,
            }),
        )
    }

    pub fn chain_id(&self) -> Hash {
        self.consortium.chain_id
    }

    pub fn sign(&mut self, key: &Keypair, body: TxBody) -> SignedTransaction {
        let chain_id = self.chain_id();
        let n = self.nonces.entry(key.public_key()).or_insert(0);
        *n += 1;
        Transaction {
            chain_id,
            signer: key.public_key(),
            nonce: *n,
            body,
        }
        .sign(key)
    }

    /// Applies `txs` as one block at the next time step; on error nothing changes.
    pub fn commit(&mut self, txs: Vec<SignedTransaction>) -> Result<Executed, Error> {
        let time = self.now_ms + 1000;
        self.consortium = governance::in_force(&self.genesis, &self.store, self.tip.height + 1)?;
        let built = block::build_block(
            &self.store,
            &self.consortium,
            &self.tip,
            time,
            self.hospital_a.public_key(),
            txs.clone(),
        )?;
        if let Some((_, e)) = built.rejected.into_iter().next() {
            return Err(e);
        }
        // Every block is re-checked the way a validator would check a proposal.
        let checked = block::check_block(&self.consortium, &self.tip, &built.block)?;
        let executed = block::execute(&self.store, &self.consortium, checked)?;
        assert_eq!(executed, built.executed, "proposer and validator disagree");
        self.store.commit(&executed.writes);
        self.executed.push(executed.clone());
        self.events
            .extend(executed.events.iter().map(|e| e.event.clone()));
        self.tip = ChainTip::of(&built.block.header);
        self.now_ms = time;
        let certificate = self.certify(&built.block.header);
        self.blocks.push(FinalizedBlock {
            block: built.block,
            certificate,
        });
        Ok(executed)
    }

    /// Precommits from every validator for `header`.
    pub fn certify(&self, header: &block::BlockHeader) -> CommitCertificate {
        let keys = [&self.hospital_a, &self.hospital_b, &self.clinic];
        let votes: Vec<_> = keys
            .into_iter()
            .chain(&self.joined)
            .filter_map(|k| {
                let i = self.consortium.validators().index_of(&k.public_key().0)?;
                Some((i, k))
            })
            .map(|(i, k)| {
                Vote {
                    kind: VoteKind::Precommit,
                    height: header.height,
                    round: 0,
                    value: Some(header.value_id()),
                    validator: i,
                }
                .sign(&self.consortium.chain_id, k.signing_key())
            })
            .collect();
        CommitCertificate::from_precommits(header.height, 0, header.value_id(), &votes)
    }

    pub fn commit_one(&mut self, tx: SignedTransaction) -> Result<Executed, Error> {
        self.commit(vec![tx])
    }

    /// Passes time without transactions (an empty block).
    pub fn advance(&mut self, ms: u64) {
        self.now_ms += ms;
        self.commit(vec![]).unwrap();
    }

    pub fn root(&self) -> Hash {
        self.store.state_root().unwrap()
    }

    /// `by` enrols `patient` with her own proof for this chain.
    pub fn enrol(&mut self, by: &Keypair, patient: &Keypair) -> SignedTransaction {
        let body = EnrolPatient::prove(patient, &self.chain_id());
        self.sign(by, TxBody::EnrolPatient(body))
    }

    pub fn register(
        &mut self,
        custodian: &Keypair,
        patient: &Keypair,
        archive: ArchiveId,
        category: Category,
        grant_keys: Vec<GrantId>,
    ) -> SignedTransaction {
        let grant_keys = grant_keys.into_iter().map(|grant| GrantKey {
            grant,
            key: wrapped(7),
        });
        self.sign(
            custodian,
            TxBody::RegisterArchive(RegisterArchive {
                archive,
                custodian: custodian.public_key(),
                patient: patient.public_key(),
                ciphertext_sha256: crypto::sha256(&archive.0),
                size_bytes: 4096,
                category,
                key_for_patient: wrapped(1),
                key_for_custodian: wrapped(2),
                grant_keys: BoundedVec::new(grant_keys.collect()).unwrap(),
            }),
        )
    }

    /// A grant over `scope` for `purposes` lasting `days`, wrapping keys for `archives`.
    /// Returns the transaction and the id the grant will have.
    pub fn grant(
        &mut self,
        patient: &Keypair,
        grantee: &Keypair,
        scope: Scope,
        purposes: &[Purpose],
        days: u64,
        archives: &[ArchiveId],
    ) -> (SignedTransaction, GrantId) {
        let body = GrantConsent {
            grantee: grantee.public_key(),
            scope,
            purposes: BoundedVec::new(purposes.to_vec()).unwrap(),
            roles: BoundedVec::default(),
            valid_from_ms: self.now_ms,
            expires_at_ms: self.now_ms + days * DAY_MS,
            archive_keys: BoundedVec::new(
                archives
                    .iter()
                    .map(|a| ArchiveKey {
                        archive: *a,
                        key: wrapped(9),
                    })
                    .collect(),
            )
            .unwrap(),
        };
        let stx = self.sign(patient, TxBody::GrantConsent(body));
        let id = grant_id(&patient.public_key(), stx.tx.nonce);
        (stx, id)
    }

    pub fn revoke(&mut self, patient: &Keypair, grant: GrantId) -> SignedTransaction {
        self.sign(patient, TxBody::RevokeConsent(RevokeConsent { grant }))
    }

    /// `accessor`'s signed request; a justification is sealed for whom the ledger wants it
    /// sealed: the archive's patient and every regulator.
    pub fn request(
        &self,
        accessor: &Keypair,
        archive: ArchiveId,
        purpose: Purpose,
        justification: Option<&str>,
        id: u8,
    ) -> SignedAccessRequest {
        let readers = self.justification_readers(&archive);
        let justification = justification.map(|text| (text, readers.as_slice()));
        self.request_sealed(accessor, archive, purpose, justification, id)
    }

    /// The readers of a justification about `archive`: its patient and every regulator.
    pub fn justification_readers(&self, archive: &ArchiveId) -> Vec<X25519Public> {
        match self.store.archive(archive).unwrap() {
            Some(rec) => cradle_ledger::rules::justification_readers(
                &self.store,
                &self.consortium,
                &rec.patient,
            )
            .unwrap()
            .into_iter()
            .collect(),
            None => self.consortium.regulators().map(|m| m.x25519).collect(),
        }
    }

    /// `accessor`'s signed request, its justification (if any) sealed for `readers`.
    pub fn request_sealed(
        &self,
        accessor: &Keypair,
        archive: ArchiveId,
        purpose: Purpose,
        justification: Option<(&str, &[X25519Public])>,
        id: u8,
    ) -> SignedAccessRequest {
        let mut request = AccessRequest {
            accessor: accessor.public_key(),
            archive,
            purpose,
            justification: None,
            requested_at_ms: self.now_ms,
            request_id: [id; 16],
        };
        if let Some((text, readers)) = justification {
            let context = request.justification_context(&self.chain_id());
            request.justification = Some(justification::seal(text, &context, readers).unwrap());
        }
        let signature = accessor.sign(TAG_ACCESS_REQUEST, &self.chain_id(), &request);
        SignedAccessRequest { request, signature }
    }

    pub fn record(
        &mut self,
        custodian: &Keypair,
        request: SignedAccessRequest,
        grant: Option<GrantId>,
        mut outcome: AccessOutcome,
    ) -> SignedTransaction {
        // A clinician's permitted read carries the key the custodian re-wrapped for her.
        if let AccessOutcome::Permitted { key_for_accessor } = &mut outcome
            && key_for_accessor.is_none()
            && self
                .store
                .staff(&request.request.accessor)
                .unwrap()
                .is_some()
        {
            *key_for_accessor = Some(wrapped(5));
        }
        self.sign(
            custodian,
            TxBody::RecordAccess(RecordAccess {
                request,
                grant,
                outcome,
            }),
        )
    }

    pub fn patient_log_size(&self, patient: &Keypair) -> u64 {
        self.store
            .patient_log(&patient.public_key())
            .unwrap()
            .size()
    }
}

pub fn archive_id(i: u64) -> ArchiveId {
    ArchiveId(crypto::sha256(&i.to_le_bytes()))
}

/// A permitted outcome; [`World::record`] adds the key re-wrapped for a clinician.
pub fn permitted() -> AccessOutcome {
    AccessOutcome::Permitted {
        key_for_accessor: None,
    }
}

/// `by` proposes `change`; returns the proposal's id, which names the proposer by its identity
/// (its own key, or the one its records name after a rotation).
pub fn propose(
    w: &mut World,
    by: &Keypair,
    change: governance::Change,
) -> Result<ProposalId, Error> {
    let tx = w.sign(
        by,
        TxBody::ProposeChange(governance::ProposeChange { change }),
    );
    let identity = w
        .consortium
        .signer(&by.public_key())
        .map_or(by.public_key(), |m| m.public_key);
    let id = governance::proposal_id(&identity, tx.tx.nonce);
    w.commit_one(tx)?;
    Ok(id)
}

/// `by` approves `proposal`.
pub fn approve(w: &mut World, by: &Keypair, proposal: ProposalId) -> Result<(), Error> {
    let tx = w.sign(
        by,
        TxBody::ApproveChange(governance::ApproveChange { proposal }),
    );
    w.commit_one(tx).map(drop)
}

/// A copy of a key, for a test that hands the world's keys to the world's own methods.
pub fn copy(k: &Keypair) -> Keypair {
    Keypair::from_secret_parts(&k.ed25519_seed(), &k.x25519_secret())
}
