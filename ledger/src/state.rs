//! The key-value state the rules read and write, its records, and its storage trait.
//!
//! The state is a flat map of byte keys to canonical encodings. Every key outside the
//! [`TREE_PREFIX`] namespace is committed to by a sparse Merkle tree whose nodes live under that
//! prefix in the same store, so one atomic write of a block's changes keeps data and commitment
//! together. The node stores it in RocksDB; [`MemoryStore`] serves tests and tools.

use std::collections::BTreeMap;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec::{self, BoundedVec};
use crate::crypto::{ArchiveId, GrantId, Hash, PublicKey, X25519Public};
use crate::error::Error;
use crate::merkle::log::Frontier;
use crate::merkle::smt::{self, Node, NodeKey, TreeReader};
use crate::staff::{StaffRecord, StaffRole};
use crate::tx::{Category, Purpose, Scope, WrappedKey};

/// Largest encoded state value the ledger ever writes; bounds every decode from the store.
pub const VALUE_BYTES_MAX: usize = 256 * 1024;
/// Keys under this prefix hold the sparse Merkle tree's nodes, not committed data.
pub const TREE_PREFIX: u8 = 0xff;

/// State keys, one prefix byte per kind of record.
pub mod keys {
    use super::*;

    pub const NONCE: u8 = b'N';
    pub const PATIENT: u8 = b'P';
    pub const ARCHIVE: u8 = b'A';
    pub const PATIENT_ARCHIVE: u8 = b'a';
    pub const GRANT: u8 = b'G';
    pub const GRANT_TO: u8 = b'g';
    pub const PATIENT_OPEN_GRANT: u8 = b'o';
    pub const GRANT_KEY: u8 = b'K';
    pub const REQUEST_SEEN: u8 = b'R';
    pub const PATIENT_LOG: u8 = b'H';
    pub const ACCESS_LOG: u8 = b'L';
    pub const ARCHIVE_LOG: u8 = b'X';
    pub const ACCESSOR_LOG: u8 = b'Y';
    pub const BREAK_GLASS_LOG: u8 = b'B';
    pub const STAFF: u8 = b'S';
    pub const INSTITUTION_STAFF: u8 = b's';
    pub const MEMBERSHIP: u8 = b'M';
    pub const PROPOSAL: u8 = b'Q';
    pub const OPEN_PROPOSAL: u8 = b'q';
    pub const FORMER_MEMBER: u8 = b'm';
    pub const MEMBER_SET: u8 = b'E';
    pub const PATIENT_ALIAS: u8 = b'p';
    pub const KEY_CHANGE: u8 = b'k';
    pub const RECOVERY: u8 = b'r';
    pub const BREAK_GLASS_ENTRY: u8 = b'b';

    fn key(prefix: u8, parts: &[&[u8]]) -> Vec<u8> {
        let mut k = Vec::with_capacity(1 + parts.iter().map(|p| p.len()).sum::<usize>());
        k.push(prefix);
        for p in parts {
            k.extend_from_slice(p);
        }
        k
    }

    pub fn nonce(signer: &PublicKey) -> Vec<u8> {
        key(NONCE, &[&signer.0])
    }
    pub fn patient(p: &PublicKey) -> Vec<u8> {
        key(PATIENT, &[&p.0])
    }
    pub fn archive(a: &ArchiveId) -> Vec<u8> {
        key(ARCHIVE, &[&a.0])
    }
    /// Index of a patient's archives.
    pub fn patient_archive(p: &PublicKey, a: &ArchiveId) -> Vec<u8> {
        key(PATIENT_ARCHIVE, &[&p.0, &a.0])
    }
    pub fn patient_archives(p: &PublicKey) -> Vec<u8> {
        key(PATIENT_ARCHIVE, &[&p.0])
    }
    pub fn grant(g: &GrantId) -> Vec<u8> {
        key(GRANT, &[&g.0])
    }
    /// Index of the grants from a patient to one grantee (all of them, revoked included).
    pub fn grant_to(p: &PublicKey, grantee: &PublicKey, g: &GrantId) -> Vec<u8> {
        key(GRANT_TO, &[&p.0, &grantee.0, &g.0])
    }
    pub fn grants_to(p: &PublicKey, grantee: &PublicKey) -> Vec<u8> {
        key(GRANT_TO, &[&p.0, &grantee.0])
    }
    /// Index of a patient's unrevoked grants (expired ones stay until revoked).
    pub fn patient_open_grant(p: &PublicKey, g: &GrantId) -> Vec<u8> {
        key(PATIENT_OPEN_GRANT, &[&p.0, &g.0])
    }
    pub fn patient_open_grants(p: &PublicKey) -> Vec<u8> {
        key(PATIENT_OPEN_GRANT, &[&p.0])
    }
    /// An archive key wrapped for a grant's grantee.
    pub fn grant_key(g: &GrantId, a: &ArchiveId) -> Vec<u8> {
        key(GRANT_KEY, &[&g.0, &a.0])
    }
    pub fn request_seen(accessor: &PublicKey, request_id: &[u8; 16]) -> Vec<u8> {
        key(REQUEST_SEEN, &[&accessor.0, request_id])
    }
    pub fn patient_log(p: &PublicKey) -> Vec<u8> {
        key(PATIENT_LOG, &[&p.0])
    }
    pub fn access_log() -> Vec<u8> {
        vec![ACCESS_LOG]
    }
    /// The access events on one archive, whoever asked.
    pub fn archive_log(a: &ArchiveId) -> Vec<u8> {
        key(ARCHIVE_LOG, &[&a.0])
    }
    /// The access events one accessor asked for, whatever the archive.
    pub fn accessor_log(accessor: &PublicKey) -> Vec<u8> {
        key(ACCESSOR_LOG, &[&accessor.0])
    }
    /// The commission's oversight log, consortium-wide: every break-glass access, every
    /// review of one and every recovery of a patient by a member.
    pub fn break_glass_log() -> Vec<u8> {
        vec![BREAK_GLASS_LOG]
    }
    /// A clinician's key, current or past.
    pub fn staff(k: &PublicKey) -> Vec<u8> {
        key(STAFF, &[&k.0])
    }
    /// Index of an institution's clinicians' keys (rotated-out keys included).
    pub fn institution_staff(institution: &PublicKey, k: &PublicKey) -> Vec<u8> {
        key(INSTITUTION_STAFF, &[&institution.0, &k.0])
    }
    pub fn institution_staff_all(institution: &PublicKey) -> Vec<u8> {
        key(INSTITUTION_STAFF, &[&institution.0])
    }
    /// The member set in force and an adopted one waiting for its height.
    pub fn membership() -> Vec<u8> {
        vec![MEMBERSHIP]
    }
    pub fn proposal(id: &crate::crypto::ProposalId) -> Vec<u8> {
        key(PROPOSAL, &[&id.0])
    }
    /// Index of the proposals not yet adopted, expired or superseded when last looked at.
    pub fn open_proposal(id: &crate::crypto::ProposalId) -> Vec<u8> {
        key(OPEN_PROPOSAL, &[&id.0])
    }
    pub fn open_proposals() -> Vec<u8> {
        vec![OPEN_PROPOSAL]
    }
    /// Every adopted set by epoch, with its activation height: the history a node or a light
    /// client rebuilds the sets of past heights from.
    pub fn member_set(epoch: u64) -> Vec<u8> {
        key(MEMBER_SET, &[&epoch.to_be_bytes()])
    }
    pub fn member_sets() -> Vec<u8> {
        vec![MEMBER_SET]
    }
    /// A key a patient got after her enrolment, to the key she enrolled with (her identity).
    pub fn patient_alias(k: &PublicKey) -> Vec<u8> {
        key(PATIENT_ALIAS, &[&k.0])
    }
    /// The `index`th change of a patient's keys.
    pub fn key_change(identity: &PublicKey, index: u32) -> Vec<u8> {
        key(KEY_CHANGE, &[&identity.0, &index.to_be_bytes()])
    }
    pub fn key_changes(identity: &PublicKey) -> Vec<u8> {
        key(KEY_CHANGE, &[&identity.0])
    }
    /// Every recovery of a patient by a member, consortium-wide, for the regulators.
    pub fn recovery(height: u64, identity: &PublicKey) -> Vec<u8> {
        key(RECOVERY, &[&height.to_be_bytes(), &identity.0])
    }
    pub fn recoveries() -> Vec<u8> {
        vec![RECOVERY]
    }
    /// A break-glass access, by the hash of the transaction that recorded it, and its review.
    pub fn break_glass_entry(tx_hash: &crate::crypto::Digest32) -> Vec<u8> {
        key(BREAK_GLASS_ENTRY, &[&tx_hash.0])
    }
    /// The key of a member that left: never anyone's again.
    pub fn former_member(k: &PublicKey) -> Vec<u8> {
        key(FORMER_MEMBER, &[&k.0])
    }
    pub fn tree_node(node: &NodeKey) -> Vec<u8> {
        let mut buf = [0u8; TREE_NODE_BYTES_MAX];
        tree_node_into(node, &mut buf).to_vec()
    }
    /// Longest key of a tree node.
    pub const TREE_NODE_BYTES_MAX: usize = 1 + smt::NODE_KEY_BYTES_MAX;
    /// [`tree_node`] written into `buf`, for reads that need the key only for a moment.
    pub fn tree_node_into<'b>(node: &NodeKey, buf: &'b mut [u8; TREE_NODE_BYTES_MAX]) -> &'b [u8] {
        let mut encoded = [0u8; smt::NODE_KEY_BYTES_MAX];
        let len = node.write_bytes(&mut encoded);
        buf[0] = TREE_PREFIX;
        buf[1..1 + len].copy_from_slice(&encoded[..len]);
        &buf[..1 + len]
    }
}

/// A patient as enrolled: keys only. She is known by the key she enrolled with for good (her
/// records name it); after she rotates her keys, or a member recovers her with new ones,
/// `current_key` signs for her and `x25519` is the new one.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct PatientRecord {
    pub x25519: X25519Public,
    pub enrolled_by: PublicKey,
    pub enrolled_at_ms: u64,
    pub archives: u32,
    pub open_grants: u32,
    /// The key that signs for her now, when it is no longer the one she enrolled with.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub current_key: Option<PublicKey>,
    /// How many times her keys changed; each change is a [`KeyChange`] under her.
    #[serde(default)]
    pub key_changes: u32,
}

impl PatientRecord {
    /// Whether `key` signs for the patient enrolled as `identity` now.
    pub fn is_current(&self, identity: &PublicKey, key: &PublicKey) -> bool {
        self.current_key.as_ref().unwrap_or(identity) == key
    }
}

/// A change of a patient's keys, kept in her history.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct KeyChange {
    pub height: u64,
    pub time_ms: u64,
    pub new_key: PublicKey,
    pub new_x25519: X25519Public,
    /// `None` when she rotated them herself; the member that recovered her otherwise.
    pub recovered_by: Option<PublicKey>,
}

/// A break-glass access as the regulators review it: what a review's event names, and the
/// review once there is one.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct BreakGlassEntry {
    pub patient: PublicKey,
    pub archive: ArchiveId,
    pub category: Category,
    pub custodian: PublicKey,
    pub height: u64,
    pub time_ms: u64,
    pub review: Option<ReviewRecord>,
}

/// A regulator's review of a break-glass access.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ReviewRecord {
    pub regulator: PublicKey,
    pub decision: crate::tx::ReviewDecision,
    pub height: u64,
    pub time_ms: u64,
}

/// An archive as registered by its custodian.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct ArchiveRecord {
    pub patient: PublicKey,
    pub custodian: PublicKey,
    pub ciphertext_sha256: Hash,
    pub size_bytes: u64,
    pub category: Category,
    pub registered_at_ms: u64,
    pub height: u64,
    pub key_for_patient: WrappedKey,
    pub key_for_custodian: WrappedKey,
}

/// A consent grant as the patient gave it, and whether she withdrew it.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct GrantRecord {
    pub patient: PublicKey,
    pub grantee: PublicKey,
    pub scope: Scope,
    pub purposes: BoundedVec<Purpose, { crate::tx::GRANT_CODES_MAX }>,
    /// The grantee's clinicians it covers, by role; empty covers every active clinician.
    pub roles: BoundedVec<StaffRole, { crate::tx::GRANT_CODES_MAX }>,
    pub valid_from_ms: u64,
    pub expires_at_ms: u64,
    pub granted_at_ms: u64,
    pub granted_height: u64,
    pub revoked_at_ms: Option<u64>,
    pub revoked_height: Option<u64>,
}

impl GrantRecord {
    /// Unrevoked and within its validity at `now_ms`.
    pub fn is_active(&self, now_ms: u64) -> bool {
        self.revoked_at_ms.is_none() && self.valid_from_ms <= now_ms && now_ms < self.expires_at_ms
    }
}

/// An append-only log's committed shape: its size and compact frontier (root derivable).
#[derive(
    Clone, Debug, PartialEq, Eq, Default, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct LogState {
    pub frontier: Frontier,
}

impl LogState {
    pub fn size(&self) -> u64 {
        self.frontier.size()
    }
    pub fn root(&self) -> Hash {
        self.frontier.root()
    }
}

/// A key and its value.
pub type Entry = (Vec<u8>, Vec<u8>);

/// Read access to committed state. A failed read is a storage fault, reported as such.
pub trait StateReader {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error>;

    /// Up to `limit` entries whose keys start with `prefix`, in key order.
    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, Error>;
}

/// Typed reads over any [`StateReader`].
pub trait StateExt: StateReader {
    fn record<T: BorshDeserialize>(&self, key: &[u8]) -> Result<Option<T>, Error> {
        match self.get(key)? {
            None => Ok(None),
            Some(bytes) => codec::decode(&bytes, VALUE_BYTES_MAX)
                .map(Some)
                .map_err(|e| Error::Corrupt(format!("state value: {e}"))),
        }
    }

    fn patient(&self, p: &PublicKey) -> Result<Option<PatientRecord>, Error> {
        self.record(&keys::patient(p))
    }

    fn archive(&self, a: &ArchiveId) -> Result<Option<ArchiveRecord>, Error> {
        self.record(&keys::archive(a))
    }

    fn staff(&self, k: &PublicKey) -> Result<Option<StaffRecord>, Error> {
        self.record(&keys::staff(k))
    }

    /// An institution's clinicians' keys (rotated-out ones included), in key order.
    fn institution_staff(
        &self,
        institution: &PublicKey,
        limit: usize,
    ) -> Result<Vec<(PublicKey, StaffRecord)>, Error> {
        let mut out = Vec::new();
        for (k, _) in self.scan_prefix(&keys::institution_staff_all(institution), limit)? {
            let key = PublicKey(id_suffix(&k)?);
            let rec = self
                .staff(&key)?
                .ok_or(Error::Corrupt("dangling staff index".into()))?;
            out.push((key, rec));
        }
        Ok(out)
    }

    /// The patient `key` signs for, as `(identity, record, current)`: her enrolment key or
    /// one she got since; `current` is false for a key she rotated away from.
    fn patient_by_key(
        &self,
        key: &PublicKey,
    ) -> Result<Option<(PublicKey, PatientRecord, bool)>, Error> {
        let identity = match self.record::<PublicKey>(&keys::patient_alias(key))? {
            Some(identity) => identity,
            None => *key,
        };
        Ok(self.patient(&identity)?.map(|rec| {
            let current = rec.is_current(&identity, key);
            (identity, rec, current)
        }))
    }

    /// Whether `key` is or was a patient's.
    fn patient_key_taken(&self, key: &PublicKey) -> Result<bool, Error> {
        Ok(self.patient(key)?.is_some() || self.get(&keys::patient_alias(key))?.is_some())
    }

    /// Whether `k` was the key of a member that left the consortium.
    fn former_member(&self, k: &PublicKey) -> Result<bool, Error> {
        Ok(self.get(&keys::former_member(k))?.is_some())
    }

    fn grant(&self, g: &GrantId) -> Result<Option<GrantRecord>, Error> {
        self.record(&keys::grant(g))
    }

    fn last_nonce(&self, signer: &PublicKey) -> Result<Option<u64>, Error> {
        self.record(&keys::nonce(signer))
    }

    fn access_log(&self) -> Result<LogState, Error> {
        Ok(self.record(&keys::access_log())?.unwrap_or_default())
    }

    fn patient_log(&self, p: &PublicKey) -> Result<LogState, Error> {
        self.log(&keys::patient_log(p))
    }

    /// The log under `key`; an absent key is the empty log.
    fn log(&self, key: &[u8]) -> Result<LogState, Error> {
        Ok(self.record(key)?.unwrap_or_default())
    }

    fn grant_key(&self, g: &GrantId, a: &ArchiveId) -> Result<Option<WrappedKey>, Error> {
        self.record(&keys::grant_key(g, a))
    }

    /// The patient's grants to one grantee, in grant-id order.
    fn grants_to(
        &self,
        patient: &PublicKey,
        grantee: &PublicKey,
        limit: usize,
    ) -> Result<Vec<(GrantId, GrantRecord)>, Error> {
        let prefix = keys::grants_to(patient, grantee);
        let mut out = Vec::new();
        for (k, _) in self.scan_prefix(&prefix, limit)? {
            let id = id_suffix(&k)?;
            let grant = self
                .grant(&GrantId(id))?
                .ok_or(Error::Corrupt("dangling grant".into()))?;
            out.push((GrantId(id), grant));
        }
        Ok(out)
    }

    /// The patient's unrevoked grants, in grant-id order.
    fn open_grants(
        &self,
        patient: &PublicKey,
        limit: usize,
    ) -> Result<Vec<(GrantId, GrantRecord)>, Error> {
        let mut out = Vec::new();
        for (k, _) in self.scan_prefix(&keys::patient_open_grants(patient), limit)? {
            let id = GrantId(id_suffix(&k)?);
            let grant = self
                .grant(&id)?
                .ok_or(Error::Corrupt("dangling grant".into()))?;
            out.push((id, grant));
        }
        Ok(out)
    }

    /// The patient's archives, in archive-id order.
    fn patient_archives(
        &self,
        patient: &PublicKey,
        limit: usize,
    ) -> Result<Vec<(ArchiveId, ArchiveRecord)>, Error> {
        let mut out = Vec::new();
        for (k, _) in self.scan_prefix(&keys::patient_archives(patient), limit)? {
            let id = ArchiveId(id_suffix(&k)?);
            let rec = self
                .archive(&id)?
                .ok_or(Error::Corrupt("dangling archive".into()))?;
            out.push((id, rec));
        }
        Ok(out)
    }

    /// The state root: the sparse Merkle tree's root over every committed key.
    fn state_root(&self) -> Result<Hash, Error>
    where
        Self: Sized,
    {
        smt::root(&TreeNodes(self)).map_err(Error::from)
    }
}

impl<S: StateReader + ?Sized> StateExt for S {}

fn id_suffix(key: &[u8]) -> Result<[u8; 32], Error> {
    key.len()
        .checked_sub(32)
        .and_then(|start| key[start..].try_into().ok())
        .ok_or(Error::Corrupt("short index key".into()))
}

/// Reads the sparse Merkle tree's nodes out of a state store.
pub struct TreeNodes<'a, S: ?Sized>(pub &'a S);

impl<S: StateReader + ?Sized> TreeReader for TreeNodes<'_, S> {
    fn node(&self, key: &NodeKey) -> Result<Option<Node>, smt::SmtError> {
        let bytes = self
            .0
            .get(keys::tree_node_into(
                key,
                &mut [0u8; keys::TREE_NODE_BYTES_MAX],
            ))
            .map_err(|e| smt::SmtError::Storage(e.to_string()))?;
        match bytes {
            None => Ok(None),
            Some(b) => borsh::from_slice(&b)
                .map(Some)
                .map_err(|e| smt::SmtError::Storage(format!("corrupt tree node: {e}"))),
        }
    }
}

/// An uncommitted write: the new value, or `None` for a delete.
pub type Pending = Option<Vec<u8>>;

/// A block's changes: what to put (`Some`) or delete (`None`), in key order.
pub type Writes = BTreeMap<Vec<u8>, Pending>;

/// Uncommitted writes layered over committed state. Reads see the writes first, so rules
/// applied one transaction after another see each other's effects; dropping the overlay
/// discards them, which is how a failed block leaves state unchanged. A journal of the current
/// transaction's overwritten entries lets a failed transaction be undone alone.
pub struct Overlay<'a, S: ?Sized> {
    base: &'a S,
    writes: Writes,
    /// Each key written since `begin`, with what the overlay held for it before.
    journal: Vec<(Vec<u8>, Option<Pending>)>,
}

impl<'a, S: StateReader + ?Sized> Overlay<'a, S> {
    pub fn new(base: &'a S) -> Self {
        Self {
            base,
            writes: Writes::new(),
            journal: Vec::new(),
        }
    }

    pub fn base(&self) -> &'a S {
        self.base
    }

    fn set(&mut self, key: Vec<u8>, value: Pending) {
        let previous = self.writes.insert(key.clone(), value);
        self.journal.push((key, previous));
    }

    pub fn put<T: BorshSerialize>(&mut self, key: Vec<u8>, value: &T) {
        self.set(key, Some(codec::encode(value)));
    }

    pub fn delete(&mut self, key: Vec<u8>) {
        self.set(key, None);
    }

    pub fn writes(&self) -> &Writes {
        &self.writes
    }

    /// Layers a block's writes over what the overlay holds, outside any transaction: how a node
    /// catching up executes the next block on the state the last one left before either is
    /// stored.
    pub fn apply(&mut self, writes: &Writes) {
        for (key, value) in writes {
            self.writes.insert(key.clone(), value.clone());
        }
        self.journal.clear();
    }

    pub fn into_writes(self) -> Writes {
        self.writes
    }

    /// Starts a transaction: what is written from here on can be undone by [`Self::rollback`].
    pub fn begin(&mut self) {
        self.journal.clear();
    }

    /// Undoes every write since [`Self::begin`].
    pub fn rollback(&mut self) {
        while let Some((key, previous)) = self.journal.pop() {
            match previous {
                Some(v) => self.writes.insert(key, v),
                None => self.writes.remove(&key),
            };
        }
    }
}

impl<S: StateReader + ?Sized> StateReader for Overlay<'_, S> {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        match self.writes.get(key) {
            Some(v) => Ok(v.clone()),
            None => self.base.get(key),
        }
    }

    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, Error> {
        // Merge the base's entries with the overlay's, the overlay winning. Deleted base
        // entries may hide up to `pending deletes` results, so ask the base for that many more.
        let pending: Vec<(&Vec<u8>, &Option<Vec<u8>>)> = self
            .writes
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .collect();
        let mut merged: BTreeMap<Vec<u8>, Vec<u8>> = self
            .base
            .scan_prefix(prefix, limit.saturating_add(pending.len()))?
            .into_iter()
            .collect();
        for (k, v) in pending {
            match v {
                Some(v) => merged.insert(k.clone(), v.clone()),
                None => merged.remove(k),
            };
        }
        Ok(merged.into_iter().take(limit).collect())
    }
}

/// State held in memory: for tests, benchmarks and tools.
#[derive(Clone, Debug, Default)]
pub struct MemoryStore {
    map: BTreeMap<Vec<u8>, Vec<u8>>,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    /// Applies a block's writes.
    pub fn commit(&mut self, writes: &Writes) {
        for (k, v) in writes {
            match v {
                Some(v) => self.map.insert(k.clone(), v.clone()),
                None => self.map.remove(k),
            };
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }
}

impl StateReader for MemoryStore {
    fn get(&self, key: &[u8]) -> Result<Option<Vec<u8>>, Error> {
        Ok(self.map.get(key).cloned())
    }

    fn scan_prefix(&self, prefix: &[u8], limit: usize) -> Result<Vec<Entry>, Error> {
        Ok(self
            .map
            .range(prefix.to_vec()..)
            .take_while(|(k, _)| k.starts_with(prefix))
            .take(limit)
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect())
    }
}
