//! The state transition: applying transactions and blocks to state.
//!
//! Pure and deterministic: the outcome depends only on the committed state, the consortium and
//! the block (its time included). Changes accumulate in an [`Overlay`]; a failed block returns
//! an error and its overlay is dropped, so committed state never sees a partial block. The
//! caller (the node) writes [`Executed::writes`] in one atomic batch.

use std::collections::{BTreeMap, BTreeSet};

use borsh::BorshSerialize;

use crate::access::{self, AccessEvent, AccessRequest, Decision, EventOutcome, LoggedEvent};
use crate::block::{self, Block, BlockHeader, ChainTip};
use crate::crypto::{self, ArchiveId, Digest32, GrantId, Hash, PublicKey};
use crate::error::Error;
use crate::identity::{Consortium, Role};
use crate::merkle::smt;
use crate::state::{
    ArchiveRecord, GrantRecord, LogState, Overlay, PatientRecord, StateExt, StateReader,
    TREE_PREFIX, TreeNodes, Writes, keys,
};
use crate::tx::{
    self, EnrolPatient, GrantConsent, RecordAccess, RegisterArchive, RevokeConsent,
    SignedTransaction, TxBody,
};

/// Most unrevoked grants one patient may hold open at once.
pub const OPEN_GRANTS_MAX: u32 = tx::GRANT_KEYS_MAX as u32;

/// The block a transaction is applied in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct BlockContext {
    pub height: u64,
    pub time_ms: u64,
}

/// What applying a block produced: the writes to commit and the new commitments.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Executed {
    /// Every key the block sets (`Some`) or deletes (`None`), tree nodes included.
    pub writes: Writes,
    pub state_root: Hash,
    pub access_log: LogState,
    /// The access events the block appended, in log order.
    pub events: Vec<LoggedEvent>,
}

/// Applies one transaction's rules on top of `state`. Its signature must already have been
/// checked (see [`verify_signatures`]). On error the overlay is as it was before.
pub fn apply_tx<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    consortium: &Consortium,
    ctx: BlockContext,
    stx: &SignedTransaction,
    tx_hash: &Hash,
    events: &mut Vec<LoggedEvent>,
) -> Result<(), Error> {
    let len = stx.encode().len();
    apply_tx_sized(state, consortium, ctx, stx, len, tx_hash, events)
}

/// [`apply_tx`] for a caller that already knows the transaction's encoded length.
fn apply_tx_sized<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    consortium: &Consortium,
    ctx: BlockContext,
    stx: &SignedTransaction,
    len: usize,
    tx_hash: &Hash,
    events: &mut Vec<LoggedEvent>,
) -> Result<(), Error> {
    state.begin();
    let mark = events.len();
    let result = apply_tx_inner(state, consortium, ctx, stx, len, tx_hash, events);
    if result.is_err() {
        state.rollback();
        events.truncate(mark);
    }
    result
}

fn apply_tx_inner<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    stx: &SignedTransaction,
    len: usize,
    tx_hash: &Hash,
    events: &mut Vec<LoggedEvent>,
) -> Result<(), Error> {
    let tx = &stx.tx;
    if tx.chain_id != c.chain_id {
        return Err(Error::WrongChain);
    }
    let max = c.limits.tx_bytes_max as usize;
    if len > max {
        return Err(Error::TooLarge { len, max });
    }
    if let Some(last) = state.last_nonce(&tx.signer)?
        && tx.nonce <= last
    {
        return Err(Error::StaleNonce {
            got: tx.nonce,
            last,
        });
    }
    match &tx.body {
        TxBody::EnrolPatient(b) => enrol_patient(state, c, ctx, &tx.signer, b)?,
        TxBody::RegisterArchive(b) => register_archive(state, c, ctx, &tx.signer, b)?,
        TxBody::GrantConsent(b) => grant_consent(state, c, ctx, &tx.signer, tx.nonce, b)?,
        TxBody::RevokeConsent(b) => revoke_consent(state, ctx, &tx.signer, b)?,
        TxBody::RecordAccess(b) => record_access(state, c, ctx, &tx.signer, tx_hash, b, events)?,
    }
    state.put(keys::nonce(&tx.signer), &tx.nonce);
    Ok(())
}

/// The signer must be a member whose role provides care.
fn care_provider(c: &Consortium, signer: &PublicKey, action: &'static str) -> Result<(), Error> {
    match c.member(signer) {
        Some(m) if m.role.provides_care() => Ok(()),
        _ => Err(Error::NotAuthorized {
            action,
            signer: *signer,
        }),
    }
}

fn enrol_patient<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    b: &EnrolPatient,
) -> Result<(), Error> {
    care_provider(c, signer, "enrol patients")?;
    if c.member(&b.patient).is_some() {
        return Err(Error::PatientIsMember);
    }
    b.patient.verifying_key()?;
    if state.patient(&b.patient)?.is_some() {
        return Err(Error::AlreadyEnrolled(b.patient));
    }
    let record = PatientRecord {
        x25519: b.x25519,
        enrolled_by: *signer,
        enrolled_at_ms: ctx.time_ms,
        archives: 0,
        open_grants: 0,
    };
    state.put(keys::patient(&b.patient), &record);
    Ok(())
}

fn register_archive<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    b: &RegisterArchive,
) -> Result<(), Error> {
    care_provider(c, signer, "register archives")?;
    let mut patient = state
        .patient(&b.patient)?
        .ok_or(Error::UnknownPatient(b.patient))?;
    if state.archive(&b.archive)?.is_some() {
        return Err(Error::ArchiveExists(b.archive));
    }
    if b.size_bytes == 0 {
        return Err(Error::EmptyArchive);
    }
    // Every open, unexpired grant covering the new archive must get its key, and no other.
    let open = state.open_grants(&b.patient, OPEN_GRANTS_MAX as usize)?;
    let required: BTreeSet<GrantId> = open
        .iter()
        .filter(|(_, g)| ctx.time_ms < g.expires_at_ms && g.scope.covers(&b.archive, b.category))
        .map(|(id, _)| *id)
        .collect();
    exactly_once(
        b.grant_keys.iter().map(|gk| gk.grant),
        &required,
        "grant",
        Error::UnexpectedGrantKey,
        Error::MissingGrantKey,
    )?;
    let record = ArchiveRecord {
        patient: b.patient,
        custodian: *signer,
        ciphertext_sha256: b.ciphertext_sha256,
        size_bytes: b.size_bytes,
        category: b.category,
        registered_at_ms: ctx.time_ms,
        height: ctx.height,
        key_for_patient: b.key_for_patient,
        key_for_custodian: b.key_for_custodian,
    };
    state.put(keys::archive(&b.archive), &record);
    state.put(keys::patient_archive(&b.patient, &b.archive), &());
    for gk in &b.grant_keys {
        state.put(keys::grant_key(&gk.grant, &b.archive), &gk.key);
    }
    patient.archives = patient.archives.saturating_add(1);
    state.put(keys::patient(&b.patient), &patient);
    Ok(())
}

/// Wrapped keys must go to each of `required` exactly once and to nothing else: a grantee
/// without its key could not read, and a key for anyone else would leak the archive.
fn exactly_once<T: Ord + Copy + std::fmt::Display>(
    given: impl Iterator<Item = T>,
    required: &BTreeSet<T>,
    what: &str,
    unexpected: fn(T) -> Error,
    missing: fn(T) -> Error,
) -> Result<(), Error> {
    let mut seen = BTreeSet::new();
    for item in given {
        if !seen.insert(item) {
            return Err(Error::Duplicate(format!("{what} {item}")));
        }
        if !required.contains(&item) {
            return Err(unexpected(item));
        }
    }
    match required.difference(&seen).next() {
        Some(m) => Err(missing(*m)),
        None => Ok(()),
    }
}

fn grant_consent<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    nonce: u64,
    b: &GrantConsent,
) -> Result<(), Error> {
    let mut patient = state.patient(signer)?.ok_or(Error::NotAuthorized {
        action: "grant consent (not an enrolled patient)",
        signer: *signer,
    })?;
    if c.member(&b.grantee).is_none() {
        return Err(Error::InvalidGrant(
            "the grantee is not a member institution",
        ));
    }
    if b.purposes.is_empty() {
        return Err(Error::InvalidGrant("no purpose"));
    }
    let purposes: BTreeSet<_> = b.purposes.iter().collect();
    if purposes.len() != b.purposes.len() {
        return Err(Error::Duplicate("purpose".into()));
    }
    if b.valid_from_ms >= b.expires_at_ms {
        return Err(Error::InvalidGrant("expires before it starts"));
    }
    if b.expires_at_ms <= ctx.time_ms {
        return Err(Error::InvalidGrant("already expired"));
    }
    if b.expires_at_ms - b.valid_from_ms.max(ctx.time_ms) > c.policy.grant_duration_max_ms {
        return Err(Error::InvalidGrant("longer than policy allows"));
    }
    match &b.scope {
        tx::Scope::All => {}
        tx::Scope::Categories(cs) if cs.is_empty() => {
            return Err(Error::InvalidGrant("empty category scope"));
        }
        tx::Scope::Archives(ids) if ids.is_empty() => {
            return Err(Error::InvalidGrant("empty archive scope"));
        }
        tx::Scope::Categories(_) | tx::Scope::Archives(_) => {}
    }
    if patient.open_grants >= OPEN_GRANTS_MAX {
        return Err(Error::TooManyGrants {
            open: patient.open_grants,
            max: OPEN_GRANTS_MAX,
        });
    }
    let id = tx::grant_id(signer, nonce);
    if state.grant(&id)?.is_some() {
        return Err(Error::Duplicate(format!("grant {id}")));
    }
    // The grant must hand over the key of every covered archive the patient has, and only those.
    let covered: BTreeSet<ArchiveId> = match &b.scope {
        tx::Scope::Archives(ids) => {
            let mut covered = BTreeSet::new();
            for id in ids {
                match state.archive(id)? {
                    Some(a) if &a.patient == signer => covered.insert(*id),
                    _ => return Err(Error::UnexpectedArchiveKey(*id)),
                };
            }
            covered
        }
        scope => state
            .patient_archives(signer, patient.archives as usize + 1)?
            .into_iter()
            .filter(|(id, a)| scope.covers(id, a.category))
            .map(|(id, _)| id)
            .collect(),
    };
    exactly_once(
        b.archive_keys.iter().map(|ak| ak.archive),
        &covered,
        "archive",
        Error::UnexpectedArchiveKey,
        Error::MissingArchiveKey,
    )?;
    let record = GrantRecord {
        patient: *signer,
        grantee: b.grantee,
        scope: b.scope.clone(),
        purposes: b.purposes.clone(),
        valid_from_ms: b.valid_from_ms,
        expires_at_ms: b.expires_at_ms,
        granted_at_ms: ctx.time_ms,
        granted_height: ctx.height,
        revoked_at_ms: None,
        revoked_height: None,
    };
    state.put(keys::grant(&id), &record);
    state.put(keys::grant_to(signer, &b.grantee, &id), &());
    state.put(keys::patient_open_grant(signer, &id), &());
    for ak in &b.archive_keys {
        state.put(keys::grant_key(&id, &ak.archive), &ak.key);
    }
    patient.open_grants += 1;
    state.put(keys::patient(signer), &patient);
    Ok(())
}

fn revoke_consent<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    ctx: BlockContext,
    signer: &PublicKey,
    b: &RevokeConsent,
) -> Result<(), Error> {
    let mut grant = state.grant(&b.grant)?.ok_or(Error::UnknownGrant(b.grant))?;
    if &grant.patient != signer {
        return Err(Error::NotAuthorized {
            action: "revoke another patient's grant",
            signer: *signer,
        });
    }
    if grant.revoked_at_ms.is_some() {
        return Err(Error::AlreadyRevoked(b.grant));
    }
    let mut patient = state
        .patient(signer)?
        .ok_or(Error::UnknownPatient(*signer))?;
    grant.revoked_at_ms = Some(ctx.time_ms);
    grant.revoked_height = Some(ctx.height);
    state.put(keys::grant(&b.grant), &grant);
    state.delete(keys::patient_open_grant(signer, &b.grant));
    patient.open_grants = patient.open_grants.saturating_sub(1);
    state.put(keys::patient(signer), &patient);
    Ok(())
}

/// What the access rule decides for `req` on an archive in `state` at `now_ms`, once the
/// request passed the checks every access record must: made within the policy's request TTL,
/// and not recorded before. Applying an access record asks this at block time; a custodian asks
/// it on committed state before it records an access, so both decide alike.
pub fn decide_access<S: StateReader + ?Sized>(
    state: &S,
    c: &Consortium,
    archive: &ArchiveRecord,
    req: &AccessRequest,
    now_ms: u64,
) -> Result<Decision, Error> {
    if req.requested_at_ms.abs_diff(now_ms) > c.policy.access_request_ttl_ms {
        return Err(Error::StaleRequest {
            requested_at_ms: req.requested_at_ms,
            now_ms,
        });
    }
    if state
        .get(&keys::request_seen(&req.accessor, &req.request_id))?
        .is_some()
    {
        return Err(Error::RequestReplayed);
    }
    let grants = state.grants_to(
        &archive.patient,
        &req.accessor,
        OPEN_GRANTS_MAX as usize * 4,
    )?;
    let role: Option<Role> = c.member(&req.accessor).map(|m| m.role);
    Ok(access::decide(
        &c.policy, archive, req, role, &grants, now_ms,
    ))
}

fn record_access<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    tx_hash: &Hash,
    b: &RecordAccess,
    events: &mut Vec<LoggedEvent>,
) -> Result<(), Error> {
    let req = &b.request.request;
    let archive = state
        .archive(&req.archive)?
        .ok_or(Error::UnknownArchive(req.archive))?;
    if &archive.custodian != signer {
        return Err(Error::NotAuthorized {
            action: "record access to another custodian's archive",
            signer: *signer,
        });
    }
    let decision = decide_access(&*state, c, &archive, req, ctx.time_ms)?;
    let seen = keys::request_seen(&req.accessor, &req.request_id);
    let recorded = EventOutcome::from(&b.outcome);
    let rule = match decision {
        Decision::Permitted(_) => EventOutcome::Permitted,
        Decision::BreakGlass => EventOutcome::BreakGlass,
        Decision::Denied(reason) => EventOutcome::Denied { reason },
    };
    if recorded != rule || b.grant != decision.grant() {
        return Err(Error::OutcomeMismatch {
            recorded: format!("{recorded:?} via {:?}", b.grant),
            rule: format!("{rule:?} via {:?}", decision.grant()),
        });
    }
    state.put(seen, &());

    let mut global = state.access_log()?;
    let mut own = state.patient_log(&archive.patient)?;
    let event = AccessEvent {
        height: ctx.height,
        time_ms: ctx.time_ms,
        tx_hash: Digest32(*tx_hash),
        request_hash: Digest32(crypto::sha256(&crate::codec::encode(&b.request))),
        patient: archive.patient,
        archive: req.archive,
        category: archive.category,
        custodian: archive.custodian,
        accessor: req.accessor,
        purpose: req.purpose,
        grant: b.grant,
        outcome: rule,
    };
    let leaf = event.leaf_hash();
    let logged = LoggedEvent {
        global_index: global.size(),
        patient_index: own.size(),
        event,
    };
    global.frontier.append(leaf);
    own.frontier.append(leaf);
    state.put(keys::access_log(), &global);
    state.put(keys::patient_log(&archive.patient), &own);
    // Every audit subject has its own committed log, so an answer about it proves completeness.
    let mut subject_logs = vec![
        keys::archive_log(&req.archive),
        keys::accessor_log(&req.accessor),
    ];
    if rule.is_break_glass() {
        subject_logs.push(keys::break_glass_log());
    }
    for key in subject_logs {
        let mut log = state.log(&key)?;
        log.frontier.append(leaf);
        state.put(key, &log);
    }
    events.push(logged);
    Ok(())
}

/// Checks every transaction's signatures in one batch (and, for access records, the accessor's
/// signature on the request), plus each chain id. Names the first bad transaction on failure.
pub fn verify_signatures(txs: &[SignedTransaction], chain_id: &Hash) -> Result<(), Error> {
    let mut messages = Vec::with_capacity(txs.len());
    let mut signatures = Vec::with_capacity(txs.len());
    let mut keys_ = Vec::with_capacity(txs.len());
    let mut owner = Vec::with_capacity(txs.len());
    // A block's signatures come from far fewer keys than it has signatures (institutions sign
    // most transactions), and parsing a key is a point decompression, a field exponentiation:
    // parse each distinct key once. A key that fails to parse fails at its first use, as before.
    let mut parsed: BTreeMap<PublicKey, ed25519_dalek::VerifyingKey> = BTreeMap::new();
    let mut parse = |key: &PublicKey| -> Result<ed25519_dalek::VerifyingKey, Error> {
        if let Some(k) = parsed.get(key) {
            return Ok(*k);
        }
        let k = key.verifying_key()?;
        parsed.insert(*key, k);
        Ok(k)
    };
    for (index, stx) in txs.iter().enumerate() {
        let invalid = |e: Error| Error::InvalidTx {
            index,
            source: Box::new(e),
        };
        if &stx.tx.chain_id != chain_id {
            return Err(invalid(Error::WrongChain));
        }
        messages.push(stx.signing_bytes());
        signatures.push(ed25519_dalek::Signature::from_bytes(&stx.signature.0));
        keys_.push(parse(&stx.tx.signer).map_err(invalid)?);
        owner.push(index);
        if let TxBody::RecordAccess(r) = &stx.tx.body {
            let req = &r.request;
            messages.push(crypto::signing_bytes(
                crypto::TAG_ACCESS_REQUEST,
                chain_id,
                &req.request,
            ));
            signatures.push(ed25519_dalek::Signature::from_bytes(&req.signature.0));
            keys_.push(parse(&req.request.accessor).map_err(invalid)?);
            owner.push(index);
        }
    }
    if messages.is_empty() {
        return Ok(());
    }
    let refs: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    if ed25519_dalek::verify_batch(&refs, &signatures, &keys_).is_ok() {
        return Ok(());
    }
    // Batch verification says only that something is wrong; find what, strictly.
    for (i, msg) in refs.iter().enumerate() {
        if keys_[i].verify_strict(msg, &signatures[i]).is_err() {
            return Err(Error::InvalidTx {
                index: owner[i],
                source: Box::new(Error::BadSignature),
            });
        }
    }
    // Strict single checks passed where the batch failed: treat the block as bad all the same.
    Err(Error::InvalidTx {
        index: 0,
        source: Box::new(Error::BadSignature),
    })
}

/// Commits the block's data writes to the sparse Merkle tree and returns the result.
fn finish<S: StateReader + ?Sized>(
    state: Overlay<'_, S>,
    events: Vec<LoggedEvent>,
) -> Result<Executed, Error> {
    let base = state.base();
    let access_log = state.access_log()?;
    let writes = state.into_writes();
    let updates: Vec<(Hash, Option<Hash>)> = writes
        .iter()
        .filter(|(k, _)| k.first() != Some(&TREE_PREFIX))
        .map(|(k, v)| (crypto::sha256(k), v.as_deref().map(crypto::sha256)))
        .collect();
    let update = smt::update(&TreeNodes(base), &updates)?;
    // The data writes, then the deletes, then the puts, each run in key order: one stable sort
    // merges the runs in linear time and the map is built in one pass. Of equal keys the last
    // wins, as inserting them in that order would: a tree write over a data write, a put over
    // a delete (the tree's two lists are disjoint anyway).
    let mut all = Vec::with_capacity(writes.len() + update.delete.len() + update.put.len());
    all.extend(writes);
    let tree = &mut all;
    for key in &update.delete {
        tree.push((keys::tree_node(key), None));
    }
    for (key, node) in &update.put {
        // A node's encoding is small and fixed; borsh::to_vec would reserve a kilobyte for it.
        let mut bytes = Vec::with_capacity(smt::NODE_BYTES);
        BorshSerialize::serialize(node, &mut bytes).map_err(|e| Error::Storage(e.to_string()))?;
        tree.push((keys::tree_node(key), Some(bytes)));
    }
    let writes: Writes = all.into_iter().collect();
    Ok(Executed {
        writes,
        state_root: update.root,
        access_log,
        events,
    })
}

/// Applies the transactions of a block in order, all or nothing. Signatures must already have
/// been checked.
pub fn execute<S: StateReader + ?Sized>(
    store: &S,
    consortium: &Consortium,
    ctx: BlockContext,
    txs: &[SignedTransaction],
) -> Result<Executed, Error> {
    execute_encoded(store, consortium, ctx, txs, &Encoded::all(txs))
}

/// [`execute`] with each transaction's encoding already measured and hashed.
fn execute_encoded<S: StateReader + ?Sized>(
    store: &S,
    consortium: &Consortium,
    ctx: BlockContext,
    txs: &[SignedTransaction],
    encoded: &[Encoded],
) -> Result<Executed, Error> {
    debug_assert_eq!(txs.len(), encoded.len());
    let mut state = Overlay::new(store);
    let mut events = Vec::new();
    for (index, (stx, enc)) in txs.iter().zip(encoded).enumerate() {
        apply_tx_sized(
            &mut state,
            consortium,
            ctx,
            stx,
            enc.len,
            &enc.hash,
            &mut events,
        )
        .map_err(|e| Error::InvalidTx {
            index,
            source: Box::new(e),
        })?;
    }
    finish(state, events)
}

/// What a block's checks need of each transaction's canonical encoding, computed once: its
/// length (the size limits), its hash (its name) and its leaf hash (the tx root).
struct Encoded {
    len: usize,
    hash: Hash,
    leaf: Hash,
}

impl Encoded {
    fn new(stx: &SignedTransaction) -> Self {
        let bytes = stx.encode();
        Self {
            len: bytes.len(),
            hash: crypto::sha256(&bytes),
            leaf: block::tx_leaf(&bytes),
        }
    }

    fn all(txs: &[SignedTransaction]) -> Vec<Self> {
        txs.iter().map(Self::new).collect()
    }
}

/// Checks a block against the chain tip and the consortium, verifies every signature, applies
/// it and checks the header's commitments. The block's certificate is the caller's concern.
pub fn apply_block<S: StateReader + ?Sized>(
    store: &S,
    consortium: &Consortium,
    tip: &ChainTip,
    block: &Block,
) -> Result<Executed, Error> {
    let encoded = Encoded::all(&block.txs);
    check_envelope_encoded(consortium, tip, block, &encoded)?;
    verify_signatures(&block.txs, &consortium.chain_id)?;
    apply_encoded_block(store, consortium, block, &encoded)
}

/// Like [`apply_block`], for a node that has already checked each transaction's signatures
/// (when it admitted them to its mempool) and the envelope.
pub fn apply_checked_block<S: StateReader + ?Sized>(
    store: &S,
    consortium: &Consortium,
    block: &Block,
) -> Result<Executed, Error> {
    apply_encoded_block(store, consortium, block, &Encoded::all(&block.txs))
}

fn apply_encoded_block<S: StateReader + ?Sized>(
    store: &S,
    consortium: &Consortium,
    block: &Block,
    encoded: &[Encoded],
) -> Result<Executed, Error> {
    let h = &block.header;
    let ctx = BlockContext {
        height: h.height,
        time_ms: h.time_ms,
    };
    let executed = execute_encoded(store, consortium, ctx, &block.txs, encoded)?;
    if executed.state_root != h.state_root.0 {
        return Err(Error::HeaderMismatch("state_root"));
    }
    if executed.access_log.size() != h.access_log_size {
        return Err(Error::HeaderMismatch("access_log_size"));
    }
    if executed.access_log.root() != h.access_log_root.0 {
        return Err(Error::HeaderMismatch("access_log_root"));
    }
    Ok(executed)
}

/// The checks that need no state: chain, height, parent, time, proposer, sizes, tx root.
pub fn check_envelope(consortium: &Consortium, tip: &ChainTip, block: &Block) -> Result<(), Error> {
    check_envelope_encoded(consortium, tip, block, &Encoded::all(&block.txs))
}

fn check_envelope_encoded(
    consortium: &Consortium,
    tip: &ChainTip,
    block: &Block,
    encoded: &[Encoded],
) -> Result<(), Error> {
    let h = &block.header;
    if h.chain_id.0 != consortium.chain_id {
        return Err(Error::WrongChain);
    }
    if h.height != tip.height + 1 {
        return Err(Error::WrongHeight {
            got: h.height,
            want: tip.height + 1,
        });
    }
    if h.prev_hash.0 != tip.hash {
        return Err(Error::WrongParent);
    }
    if h.time_ms <= tip.time_ms {
        return Err(Error::TimeNotIncreasing {
            got: h.time_ms,
            prev: tip.time_ms,
        });
    }
    if consortium.validators().index_of(&h.proposer.0).is_none() {
        return Err(Error::NotAValidator(h.proposer));
    }
    let limits = &consortium.limits;
    if block.txs.len() > limits.block_txs_max as usize {
        return Err(Error::TooMany {
            len: block.txs.len(),
            max: limits.block_txs_max as usize,
        });
    }
    if h.tx_count as usize != block.txs.len() {
        return Err(Error::HeaderMismatch("tx_count"));
    }
    let bytes: usize = encoded.iter().map(|e| e.len).sum();
    if bytes > limits.block_bytes_max as usize {
        return Err(Error::TooLarge {
            len: bytes,
            max: limits.block_bytes_max as usize,
        });
    }
    let leaves: Vec<Hash> = encoded.iter().map(|e| e.leaf).collect();
    if block::tx_root_of_leaves(&leaves) != h.tx_root.0 {
        return Err(Error::HeaderMismatch("tx_root"));
    }
    Ok(())
}

/// A proposer's block: applies candidates in order, drops the ones the rules refuse (returned
/// with their error), stops at the block's limits, and fills in the header's commitments.
/// Candidates' signatures must already have been checked.
pub struct BuiltBlock {
    pub block: Block,
    pub executed: Executed,
    pub rejected: Vec<(Hash, Error)>,
}

pub fn build_block<S: StateReader + ?Sized>(
    store: &S,
    consortium: &Consortium,
    tip: &ChainTip,
    time_ms: u64,
    proposer: PublicKey,
    candidates: impl IntoIterator<Item = SignedTransaction>,
) -> Result<BuiltBlock, Error> {
    let ctx = BlockContext {
        height: tip.height + 1,
        time_ms,
    };
    let limits = &consortium.limits;
    let mut state = Overlay::new(store);
    let mut events = Vec::new();
    let mut txs = Vec::new();
    let mut rejected = Vec::new();
    let mut leaves = Vec::new();
    let mut bytes = 0usize;
    for stx in candidates {
        if txs.len() >= limits.block_txs_max as usize {
            break;
        }
        let encoded = stx.encode();
        let len = encoded.len();
        if bytes + len > limits.block_bytes_max as usize {
            break;
        }
        let hash = crypto::sha256(&encoded);
        let leaf = block::tx_leaf(&encoded);
        drop(encoded);
        match apply_tx_sized(&mut state, consortium, ctx, &stx, len, &hash, &mut events) {
            Ok(()) => {
                bytes += len;
                txs.push(stx);
                leaves.push(leaf);
            }
            Err(e) => rejected.push((hash, e)),
        }
    }
    let executed = finish(state, events)?;
    let header = BlockHeader {
        chain_id: Digest32(consortium.chain_id),
        height: ctx.height,
        time_ms,
        prev_hash: Digest32(tip.hash),
        proposer,
        tx_count: txs.len() as u32,
        tx_root: Digest32(block::tx_root_of_leaves(&leaves)),
        state_root: Digest32(executed.state_root),
        access_log_size: executed.access_log.size(),
        access_log_root: Digest32(executed.access_log.root()),
    };
    let txs = crate::codec::BoundedVec::new(txs)?;
    Ok(BuiltBlock {
        block: Block { header, txs },
        executed,
        rejected,
    })
}
