//! Consent: a patient grants a member institution's clinicians (all of them, or those of some
//! roles) access to some or all of their archives, for named purposes and a bounded time,
//! handing over the covered archives' keys; and revokes it.

use std::collections::BTreeSet;

use crate::crypto::{ArchiveId, PublicKey};
use crate::error::Error;
use crate::identity::Consortium;
use crate::state::{GrantRecord, Overlay, StateExt, StateReader, keys};
use crate::tx::{self, GrantConsent, RevokeConsent};

use super::{BlockContext, OPEN_GRANTS_MAX, exactly_once};

pub(super) fn grant_consent<S: StateReader + ?Sized>(
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
    let roles: BTreeSet<_> = b.roles.iter().collect();
    if roles.len() != b.roles.len() {
        return Err(Error::Duplicate("role".into()));
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
        // Expired grants no longer count: close them, so a mother whose past grants ran out can
        // grant again. Bounded by the cap; undone with everything else if the grant fails.
        for (id, g) in state.open_grants(signer, OPEN_GRANTS_MAX as usize)? {
            if g.expires_at_ms <= ctx.time_ms {
                state.delete(keys::patient_open_grant(signer, &id));
                patient.open_grants = patient.open_grants.saturating_sub(1);
            }
        }
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
        roles: b.roles.clone(),
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

pub(super) fn revoke_consent<S: StateReader + ?Sized>(
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
