//! An audit source over a [`World`], as a node would serve it from a storage snapshot, and a
//! small history with something to audit for every kind of subject.

use cradle_consensus::CommitCertificate;
use cradle_ledger::access::{AccessEvent, AccessOutcome, DenialReason};
use cradle_ledger::audit::{AuditSource, AuditSubject};
use cradle_ledger::block::BlockHeader;
use cradle_ledger::merkle::log::MemoryLog;
use cradle_ledger::state::MemoryStore;
use cradle_ledger::tx::{Category, Purpose, Scope};
use cradle_ledger::{ArchiveId, Error, Keypair};

use super::permitted;
use super::{World, archive_id, patient_key, wrapped};

/// The state, tip and event index as they stood after one block.
#[derive(Clone)]
pub struct Snapshot {
    pub store: MemoryStore,
    pub tip: Option<(BlockHeader, CommitCertificate)>,
    pub events: Vec<AccessEvent>,
}

impl Snapshot {
    pub fn of(w: &World) -> Self {
        Self {
            store: w.store.clone(),
            tip: w
                .blocks
                .last()
                .map(|b| (b.block.header.clone(), b.certificate.clone())),
            events: w.events.clone(),
        }
    }

    /// The global access log's subtrees, as the node stores them.
    pub fn global_log(&self) -> MemoryLog {
        let mut log = MemoryLog::new();
        for e in &self.events {
            log.append(e.leaf_hash());
        }
        log
    }
}

impl AuditSource for Snapshot {
    type State = MemoryStore;

    fn tip(&self) -> Result<Option<(BlockHeader, CommitCertificate)>, Error> {
        Ok(self.tip.clone())
    }

    fn state(&self) -> &MemoryStore {
        &self.store
    }

    fn events(&self, subject: &AuditSubject) -> Result<Vec<AccessEvent>, Error> {
        Ok(self
            .events
            .iter()
            .filter(|e| subject.matches(e))
            .cloned()
            .collect())
    }
}

/// A history to audit: patients P and Q, P's archives 1 (prenatal, at hospital A) and 2
/// (ultrasound, at A), Q's archive 3 (at the clinic); one access per block.
pub struct Scenario {
    pub world: World,
    pub p: Keypair,
    pub q: Keypair,
    pub a1: ArchiveId,
    pub a2: ArchiveId,
    pub a3: ArchiveId,
}

impl Scenario {
    pub fn subjects(&self) -> Vec<AuditSubject> {
        vec![
            AuditSubject::Patient(self.p.public_key()),
            AuditSubject::Patient(self.q.public_key()),
            AuditSubject::Archive(self.a1),
            AuditSubject::Archive(self.a2),
            AuditSubject::Archive(self.a3),
            AuditSubject::Accessor(self.world.hospital_b.public_key()),
            AuditSubject::Accessor(self.world.staff(&self.world.hospital_b).public_key()),
            AuditSubject::Accessor(self.world.clinic.public_key()),
            AuditSubject::Accessor(self.world.regulator.public_key()),
            AuditSubject::BreakGlass,
        ]
    }

    /// Hospital B reads `archive` (held by A) for treatment under `grant`, or is denied.
    pub fn b_reads(&mut self, archive: ArchiveId, grant: Option<cradle_ledger::GrantId>, id: u8) {
        let w = &mut self.world;
        let (a, b) = (key(&w.hospital_a), key(&w.hospital_b));
        let req = w.request(w.staff(&b), archive, Purpose::Treat, None, id);
        let outcome = match grant {
            Some(_) => permitted(),
            None => AccessOutcome::Denied {
                reason: DenialReason::NoGrant,
            },
        };
        let tx = w.record(&a, req, grant, outcome);
        w.commit_one(tx).unwrap();
    }
}

fn key(k: &Keypair) -> Keypair {
    Keypair::from_secret_parts(&k.ed25519_seed(), &k.x25519_secret())
}

/// Builds the history: seven access events over seven blocks, one break-glass among them.
pub fn scenario() -> Scenario {
    let mut w = World::new(cradle_ledger::Policy::default());
    let (a, b, c) = (key(&w.hospital_a), key(&w.hospital_b), key(&w.clinic));
    let (p, q) = (patient_key(1), patient_key(2));
    let (a1, a2, a3) = (archive_id(1), archive_id(2), archive_id(3));
    let tx = w.enrol(&a, &p);
    w.commit_one(tx).unwrap();
    let tx = w.enrol(&c, &q);
    w.commit_one(tx).unwrap();
    let txs = vec![
        w.register(&a, &p, a1, Category::PrenatalVisit, vec![]),
        w.register(&a, &p, a2, Category::Ultrasound, vec![]),
        w.register(&c, &q, a3, Category::LabResults, vec![]),
    ];
    w.commit(txs).unwrap();
    let (tx, grant) = w.grant(
        &p,
        &b,
        Scope::Archives(cradle_ledger::codec::BoundedVec::new(vec![a1]).unwrap()),
        &[Purpose::Treat],
        30,
        &[a1],
    );
    w.commit_one(tx).unwrap();

    // 1. P reads her prenatal notes.
    let req = w.request(&p, a1, Purpose::PatientRequest, None, 1);
    let tx = w.record(&a, req, None, permitted());
    w.commit_one(tx).unwrap();
    let mut s = Scenario {
        world: w,
        p,
        q,
        a1,
        a2,
        a3,
    };
    // 2. B reads them under the grant; 3. B is denied the ultrasound.
    s.b_reads(a1, Some(grant), 2);
    s.b_reads(a2, None, 3);
    let w = &mut s.world;
    // 4. The clinic is denied A's archive; 5. B breaks the glass on the ultrasound.
    let req = w.request(w.staff(&c), a2, Purpose::Treat, None, 4);
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::Denied {
            reason: DenialReason::NoGrant,
        },
    );
    w.commit_one(tx).unwrap();
    let req = w.request(
        w.staff(&b),
        a2,
        Purpose::EmergencyTreat,
        Some("placental abruption"),
        5,
    );
    let tx = w.record(
        &a,
        req,
        None,
        AccessOutcome::BreakGlass {
            key_for_accessor: wrapped(5),
        },
    );
    w.commit_one(tx).unwrap();
    // 6. Q reads her lab results at the clinic; 7. B reads P's notes again.
    let req = w.request(&s.q, s.a3, Purpose::PatientRequest, None, 6);
    let tx = w.record(&c, req, None, permitted());
    w.commit_one(tx).unwrap();
    s.b_reads(a1, Some(grant), 7);
    s
}
