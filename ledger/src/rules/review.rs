//! Reviews of break-glass accesses: a regulator of the member set in force records its finding
//! (justified or not) on one emergency access, once. The review is logged like an access, in
//! the global log, the patient's, the archive's, the regulator's and the break-glass log, so the
//! patient's verified history shows the commission's finding next to the access, and the
//! break-glass log alone tells which accesses still await review.

use crate::access::{AccessEvent, EventOutcome, LoggedEvent};
use crate::crypto::{Digest32, Hash, PublicKey};
use crate::error::Error;
use crate::identity::{Consortium, Role};
use crate::state::{BreakGlassEntry, Overlay, ReviewRecord, StateExt, StateReader, keys};
use crate::tx::{Purpose, ReviewAccess};

use super::BlockContext;

pub(super) fn review_access<S: StateReader + ?Sized>(
    state: &mut Overlay<'_, S>,
    c: &Consortium,
    ctx: BlockContext,
    signer: &PublicKey,
    tx_hash: &Hash,
    b: &ReviewAccess,
    events: &mut Vec<LoggedEvent>,
) -> Result<(), Error> {
    if !c.member(signer).is_some_and(|m| m.role == Role::Regulator) {
        return Err(Error::NotAuthorized {
            action: "review a break-glass access: only a regulator may",
            signer: *signer,
        });
    }
    let key = keys::break_glass_entry(&b.entry);
    let mut entry: BreakGlassEntry = state
        .record(&key)?
        .ok_or(Error::UnknownBreakGlass(b.entry))?;
    if entry.review.is_some() {
        return Err(Error::AlreadyReviewed(b.entry));
    }
    entry.review = Some(ReviewRecord {
        regulator: *signer,
        decision: b.decision,
        height: ctx.height,
        time_ms: ctx.time_ms,
    });
    state.put(key, &entry);

    let event = AccessEvent {
        height: ctx.height,
        time_ms: ctx.time_ms,
        tx_hash: Digest32(*tx_hash),
        // A review carries no access request.
        request_hash: Digest32([0; 32]),
        patient: entry.patient,
        archive: entry.archive,
        category: entry.category,
        custodian: entry.custodian,
        accessor: *signer,
        staff: None,
        purpose: Purpose::Oversight,
        grant: None,
        outcome: EventOutcome::Reviewed {
            entry: b.entry,
            decision: b.decision,
        },
    };
    events.push(super::access::log_event(
        state,
        event,
        [
            keys::archive_log(&entry.archive),
            keys::accessor_log(signer),
            keys::break_glass_log(),
        ],
    )?);
    Ok(())
}
