//! Clinicians: an institution registers, suspends, reinstates, retires and re-keys its own
//! clinicians, by its own key or by one of its active administrators. A key serves one party
//! for good: never a member's, a patient's or another clinician's, past or present.

use crate::crypto::PublicKey;
use crate::error::Error;
use crate::identity::Consortium;
use crate::staff::{
    RegisterStaff, RotateStaffKey, SetStaffStatus, StaffId, StaffKeys, StaffRecord, StaffRole,
    StaffStatus,
};
use crate::state::{Overlay, StateExt, StateReader, keys};

use super::{BlockContext, care_provider};

/// The signer may manage `institution`'s staff: it is the institution's own key, or the key of
/// one of its active administrators.
pub(super) fn staff_authority<S: StateReader + ?Sized>(
    state: &S,
    signer: &PublicKey,
    institution: &PublicKey,
    action: &'static str,
) -> Result<(), Error> {
    if signer == institution {
        return Ok(());
    }
    match state.staff(signer)? {
        Some(s)
            if s.institution == *institution
                && s.is_active()
                && s.role == StaffRole::Administrator =>
        {
            Ok(())
        }
        _ => Err(Error::NotAuthorized {
            action,
            signer: *signer,
        }),
    }
}

/// A new key must be a valid point that no one uses yet: not a member's, a patient's or any
/// clinician's (a rotated-out key stays taken, so an old signature never reads as the new one).
fn fresh_key<S: StateReader + ?Sized>(
    state: &S,
    c: &Consortium,
    keys_: &StaffKeys,
) -> Result<(), Error> {
    keys_.key.verifying_key()?;
    let taken_by = if c.holds_key(&keys_.key) {
        Some("a member institution")
    } else if state.patient_key_taken(&keys_.key)? {
        Some("a patient")
    } else if state.staff(&keys_.key)?.is_some() {
        Some("a clinician")
    } else if state.former_member(&keys_.key)? {
        Some("a member that left")
    } else {
        None
    };
    match taken_by {
        Some(by) => Err(Error::KeyInUse { key: keys_.key, by }),
        None => Ok(()),
    }
}

pub(super) fn register_staff<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    b: &RegisterStaff,
) -> Result<(), Error> {
    care_provider(c, &b.institution, "employ clinicians")?;
    staff_authority(
        &*state,
        signer,
        &b.institution,
        "register clinicians of this institution",
    )?;
    fresh_key(&*state, c, &b.keys)?;
    let record = StaffRecord {
        id: StaffId::derive(&b.institution, &b.keys.key),
        institution: b.institution,
        role: b.role,
        department: b.department,
        x25519: b.keys.x25519,
        status: StaffStatus::Active,
        registered_at_ms: ctx.time_ms,
        registered_height: ctx.height,
        changed_at_ms: ctx.time_ms,
        successor: None,
    };
    state.put(keys::staff(&b.keys.key), &record);
    state.put(keys::institution_staff(&b.institution, &b.keys.key), &());
    Ok(())
}

/// The clinician's record, if her key is current: a retired or rotated-out key changes no more.
fn current<S: StateReader + ?Sized>(state: &S, key: &PublicKey) -> Result<StaffRecord, Error> {
    let record = state.staff(key)?.ok_or(Error::UnknownStaff(*key))?;
    match record.status {
        StaffStatus::Retired => Err(Error::InvalidStaffChange("the clinician is retired")),
        StaffStatus::Rotated => Err(Error::InvalidStaffChange(
            "this key was replaced: name the clinician's current key",
        )),
        StaffStatus::Active | StaffStatus::Suspended => Ok(record),
    }
}

pub(super) fn set_staff_status<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    ctx: BlockContext,
    signer: &PublicKey,
    b: &SetStaffStatus,
) -> Result<(), Error> {
    let mut record = current(&*state, &b.staff)?;
    staff_authority(
        &*state,
        signer,
        &record.institution,
        "change the status of this clinician",
    )?;
    if b.status == StaffStatus::Rotated {
        return Err(Error::InvalidStaffChange(
            "a key is replaced by a key rotation, which names the new key",
        ));
    }
    if b.status == record.status {
        return Err(Error::InvalidStaffChange(
            "the clinician already has this status",
        ));
    }
    record.status = b.status;
    record.changed_at_ms = ctx.time_ms;
    state.put(keys::staff(&b.staff), &record);
    Ok(())
}

pub(super) fn rotate_staff_key<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    b: &RotateStaffKey,
) -> Result<(), Error> {
    let mut old = current(&*state, &b.staff)?;
    staff_authority(
        &*state,
        signer,
        &old.institution,
        "rotate the keys of this clinician",
    )?;
    fresh_key(&*state, c, &b.new_keys)?;
    let new = StaffRecord {
        x25519: b.new_keys.x25519,
        registered_at_ms: ctx.time_ms,
        registered_height: ctx.height,
        changed_at_ms: ctx.time_ms,
        successor: None,
        ..old.clone()
    };
    old.status = StaffStatus::Rotated;
    old.changed_at_ms = ctx.time_ms;
    old.successor = Some(b.new_keys.key);
    state.put(keys::staff(&b.staff), &old);
    state.put(keys::staff(&b.new_keys.key), &new);
    state.put(
        keys::institution_staff(&new.institution, &b.new_keys.key),
        &(),
    );
    Ok(())
}
