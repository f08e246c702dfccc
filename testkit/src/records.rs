//! Synthetic access events and grant records, as the ledger would have logged and stored them,
//! for tests of code that renders or exports them (the FHIR export) without running the rules.

use cradle_ledger::access::{AccessEvent, EventOutcome};
use cradle_ledger::audit::IndexedEvent;
use cradle_ledger::codec::BoundedVec;
use cradle_ledger::state::GrantRecord;
use cradle_ledger::tx::{Category, Purpose, Scope};
use cradle_ledger::{ArchiveId, Digest32, PublicKey};

use crate::consortium::{DAY_MS, GENESIS_MS};

/// The ultrasound archive every synthetic event reads.
pub const EVENT_ARCHIVE: ArchiveId = ArchiveId([0x33; 32]);

/// Access event number `index` of the global log: `accessor` read `patient`'s
/// [`EVENT_ARCHIVE`] held by `custodian`, with no grant named. It was committed at height
/// `20 + index`, `index × 61.001` s after genesis, by transaction `[index; 32]` for request
/// `[0x80 | index; 32]`.
pub fn access_event(
    index: u8,
    patient: &PublicKey,
    custodian: &PublicKey,
    accessor: &PublicKey,
    purpose: Purpose,
    outcome: EventOutcome,
) -> IndexedEvent {
    let i = u64::from(index);
    IndexedEvent {
        index: i,
        event: AccessEvent {
            height: 20 + i,
            time_ms: GENESIS_MS + i * 61_001,
            tx_hash: Digest32([index; 32]),
            request_hash: Digest32([0x80 | index; 32]),
            patient: *patient,
            archive: EVENT_ARCHIVE,
            category: Category::Ultrasound,
            custodian: *custodian,
            accessor: *accessor,
            staff: None,
            purpose,
            grant: None,
            outcome,
        },
    }
}

/// A grant from `patient` to `grantee` over `scope` for `purposes`, valid for 30 days from
/// genesis, granted at height 5; revoked at height 9 and `revoked_at_ms` if that is given.
///
/// # Panics
/// If `purposes` exceeds the ledger's bound on a grant's codes.
pub fn grant_record(
    patient: &PublicKey,
    grantee: &PublicKey,
    scope: Scope,
    purposes: &[Purpose],
    revoked_at_ms: Option<u64>,
) -> GrantRecord {
    let Ok(purposes) = BoundedVec::new(purposes.to_vec()) else {
        panic!("{} purposes exceed a grant's bound", purposes.len());
    };
    GrantRecord {
        patient: *patient,
        grantee: *grantee,
        scope,
        purposes,
        roles: BoundedVec::default(),
        valid_from_ms: GENESIS_MS,
        expires_at_ms: GENESIS_MS + 30 * DAY_MS,
        granted_at_ms: GENESIS_MS,
        granted_height: 5,
        revoked_at_ms,
        revoked_height: revoked_at_ms.map(|_| 9),
    }
}
