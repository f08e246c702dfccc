//! Governance transactions: proposing a change to the consortium and approving it, adopting it
//! when the approvals carry more than two thirds of the voting power, and switching to the
//! adopted set at its height (see [`crate::governance`]).

use crate::crypto::PublicKey;
use crate::error::Error;
use crate::governance::{
    ACTIVATION_OFFSET, Adoption, ApproveChange, Change, Membership, OPEN_PROPOSALS_MAX,
    OPEN_PROPOSALS_PER_MEMBER_MAX, ProposalRecord, ProposeChange, membership, proposal,
    proposal_id,
};
use crate::identity::{Consortium, Role};
use crate::state::{Overlay, StateExt, StateReader, keys};

use super::BlockContext;

/// At the start of block `height`: an adopted set whose height has come becomes the set in
/// force. Every node does it at the same height, before the block's transactions.
pub(crate) fn activate<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    height: u64,
) -> Result<(), Error> {
    if let Some(Membership {
        scheduled: Some((activation, set)),
        ..
    }) = membership(&*state)?
        && activation <= height
    {
        state.put(
            keys::membership(),
            &Membership {
                since: activation,
                current: set,
                scheduled: None,
            },
        );
    }
    Ok(())
}

/// Checks that `c` is the consortium the state says is in force at `height`: a block executed
/// under another height's set would judge its transactions by the wrong members.
pub(crate) fn check_in_force<S: StateReader + ?Sized>(
    state: &S,
    c: &Consortium,
    height: u64,
) -> Result<(), Error> {
    let want = match membership(state)? {
        None => 0,
        Some(m) => m.at(height).epoch,
    };
    if c.epoch != want {
        return Err(Error::WrongMemberSet { got: c.epoch, want });
    }
    Ok(())
}

fn member_signer(c: &Consortium, signer: &PublicKey, action: &'static str) -> Result<(), Error> {
    match c.member(signer) {
        Some(_) => Ok(()),
        None => Err(Error::NotAuthorized {
            action,
            signer: *signer,
        }),
    }
}

pub(super) fn propose_change<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    nonce: u64,
    b: &ProposeChange,
) -> Result<(), Error> {
    member_signer(c, signer, "propose governance changes")?;
    if let Some(Membership {
        scheduled: Some((activation, _)),
        ..
    }) = membership(&*state)?
    {
        return Err(Error::ChangePending { activation });
    }
    // The change must make a valid consortium now; it is checked again on adoption.
    c.with_set(b.change.apply(&c.member_set())?)?;
    fresh_keys(&*state, &b.change)?;
    let (open, own) = prune_open(state, ctx, c.epoch, signer)?;
    if open >= OPEN_PROPOSALS_MAX {
        return Err(Error::TooManyProposals {
            open,
            max: OPEN_PROPOSALS_MAX,
        });
    }
    if own >= OPEN_PROPOSALS_PER_MEMBER_MAX {
        return Err(Error::TooManyProposals {
            open: own,
            max: OPEN_PROPOSALS_PER_MEMBER_MAX,
        });
    }
    let id = proposal_id(signer, nonce);
    if state.get(&keys::proposal(&id))?.is_some() {
        return Err(Error::Duplicate(format!("proposal {id}")));
    }
    let record = ProposalRecord {
        proposer: *signer,
        change: b.change.clone(),
        epoch: c.epoch,
        proposed_height: ctx.height,
        expires_at_ms: ctx.time_ms.saturating_add(c.policy.proposal_ttl_ms),
        approvals: vec![*signer],
        adoption: Adoption::Open,
    };
    state.put(keys::open_proposal(&id), &ctx.height);
    tally(state, c, ctx, &id, record)
}

pub(super) fn approve_change<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    b: &ApproveChange,
) -> Result<(), Error> {
    member_signer(c, signer, "approve governance changes")?;
    let id = b.proposal;
    let mut record = proposal(&*state, &id)?.ok_or(Error::UnknownProposal(id))?;
    let newest = membership(&*state)?.map_or(0, |m| m.newest().epoch);
    match record.status(ctx.time_ms, newest) {
        "open" => {}
        why => return Err(Error::ProposalClosed { id, why }),
    }
    if record.approvals.contains(signer) {
        return Err(Error::AlreadyApproved(*signer));
    }
    record.approvals.push(*signer);
    tally(state, c, ctx, &id, record)
}

/// Stores the proposal, adopting it first if its approvals now carry the day.
fn tally<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    id: &crate::crypto::ProposalId,
    mut record: ProposalRecord,
) -> Result<(), Error> {
    let power = record
        .approvals
        .iter()
        .filter_map(|k| c.member(k))
        .try_fold(0u64, |sum, m| sum.checked_add(m.voting_power))
        .ok_or(Error::Corrupt("voting power overflow".into()))?;
    let regulator_ok = !(c.policy.membership_needs_regulator && record.change.is_membership())
        || c.regulators().next().is_none()
        || record
            .approvals
            .iter()
            .any(|k| c.member(k).is_some_and(|m| m.role == Role::Regulator));
    if c.validators().is_quorum(power) && regulator_ok {
        adopt(state, c, ctx, &record.change)?;
        let activation = ctx.height.saturating_add(ACTIVATION_OFFSET);
        record.adoption = Adoption::Adopted {
            height: ctx.height,
            activation,
        };
        // Every other open proposal was weighed against the set this one replaces.
        for (key, _) in
            state.scan_prefix(&keys::open_proposals(), OPEN_PROPOSALS_MAX as usize + 1)?
        {
            state.delete(key);
        }
    }
    state.put(keys::proposal(id), &record);
    Ok(())
}

/// Schedules the set after `change` for `ACTIVATION_OFFSET` heights on, and retires the key
/// of a member that leaves.
fn adopt<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    change: &Change,
) -> Result<(), Error> {
    let next = change.apply(&c.member_set())?;
    c.with_set(next.clone())?;
    fresh_keys(&*state, change)?;
    match change {
        Change::RemoveMember { member } => {
            state.put(keys::former_member(member), &ctx.height);
            if let Some(m) = c.member(member) {
                state.put(keys::former_member(&m.signing_key()), &ctx.height);
            }
        }
        // The key it signed with is retired for good; its identity stays in the set.
        Change::RotateMemberKey { member, .. } => {
            if let Some(m) = c.member(member) {
                state.put(keys::former_member(&m.signing_key()), &ctx.height);
            }
        }
        _ => {}
    }
    let activation = ctx.height.saturating_add(ACTIVATION_OFFSET);
    state.put(keys::member_set(next.epoch), &(activation, next.clone()));
    let since = membership(&*state)?.map_or(0, |m| m.since);
    state.put(
        keys::membership(),
        &Membership {
            since,
            current: c.member_set(),
            scheduled: Some((activation, next)),
        },
    );
    Ok(())
}

/// A new member's key, or a member's new signing key, must serve no one else, now or before:
/// not a patient, a clinician, a member that left or a key a member rotated away from.
fn fresh_keys<S: StateReader + ?Sized>(state: &S, change: &Change) -> Result<(), Error> {
    let key = match change {
        Change::AddMember { member, .. } => member.public_key,
        Change::RotateMemberKey { new_key, .. } => *new_key,
        _ => return Ok(()),
    };
    key.verifying_key()?;
    let by = if state.patient_key_taken(&key)? {
        Some("a patient")
    } else if state.staff(&key)?.is_some() {
        Some("a clinician")
    } else if state.former_member(&key)? {
        Some("a member that left")
    } else {
        None
    };
    match by {
        Some(by) => Err(Error::KeyInUse { key, by }),
        None => Ok(()),
    }
}

/// Drops expired and superseded proposals from the open index; returns how many stay open, in
/// all and by `proposer`.
fn prune_open<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    ctx: BlockContext,
    epoch: u64,
    proposer: &PublicKey,
) -> Result<(u32, u32), Error> {
    let mut open = 0u32;
    let mut own = 0u32;
    let limit = OPEN_PROPOSALS_MAX as usize + 1;
    for (key, _) in state.scan_prefix(&keys::open_proposals(), limit)? {
        let id = crate::crypto::ProposalId(
            key.get(1..)
                .and_then(|k| k.try_into().ok())
                .ok_or(Error::Corrupt("short proposal index key".into()))?,
        );
        let record =
            proposal(&*state, &id)?.ok_or(Error::Corrupt("dangling proposal index".into()))?;
        if record.status(ctx.time_ms, epoch) == "open" {
            open += 1;
            if &record.proposer == proposer {
                own += 1;
            }
        } else {
            state.delete(key);
        }
    }
    Ok((open, own))
}
