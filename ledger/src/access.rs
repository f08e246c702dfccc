//! The access rule: who may read an archive, decided from committed state and block time alone.
//!
//! Records are read by people: the patient herself, or a clinician with her own key
//! ([`crate::staff`]); an institution's own key is refused, so every access names a person.
//! The patient may always read, and so may the active clinicians of the archive's custodian.
//! Another institution's active clinician needs an active, unexpired, unrevoked grant from the
//! patient to her institution that covers the archive, the purpose and (if the grant names roles)
//! her role. Failing that, an active clinician of a care-providing member whose role the policy
//! lets break the glass may do so, if genesis allows it, with purpose ETREAT and a justification
//! sealed for the patient and every regulator ([`crate::justification`]); such reads are always
//! flagged. Everything else is denied, and denials are recorded too.

use std::collections::BTreeSet;

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

use crate::codec;
use crate::crypto::{
    ArchiveId, GrantId, Hash, PublicKey, Signature, TAG_ACCESS_REQUEST, X25519Public,
};
use crate::error::Error;
use crate::identity::{Policy, Role};
use crate::justification::{self, SealedJustification};
use crate::staff::{StaffRecord, StaffRef};
use crate::state::{ArchiveRecord, GrantRecord};
use crate::tx::{Purpose, ReviewDecision, WrappedKey};

pub use crate::justification::JUSTIFICATION_BYTES_MAX;

/// Largest encoded [`SignedAccessRequest`] (the body of a fetch) a custodian reads. The
/// largest request the types allow (a justification sealed for sixteen readers) is under 2,600
/// bytes; the bound leaves room to grow and still refuses a large body before it is buffered.
pub const ACCESS_REQUEST_BYTES_MAX: usize = 4096;

/// What an accessor asks for, signed by the accessor and embedded in the access record, so the
/// ledger proves who asked, not only what the custodian says.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AccessRequest {
    pub accessor: PublicKey,
    pub archive: ArchiveId,
    pub purpose: Purpose,
    /// Why emergency access is needed: free text, sealed for the patient and the regulators,
    /// never in clear.
    pub justification: Option<SealedJustification>,
    pub requested_at_ms: u64,
    /// Random, so one signed request is recorded at most once.
    pub request_id: [u8; 16],
}

impl AccessRequest {
    /// The context this request's justification is sealed in ([`justification::context`]).
    pub fn justification_context(&self, chain_id: &Hash) -> Hash {
        justification::context(
            chain_id,
            &self.accessor,
            &self.archive,
            self.purpose,
            self.requested_at_ms,
            &self.request_id,
        )
    }
}

#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SignedAccessRequest {
    pub request: AccessRequest,
    pub signature: Signature,
}

impl SignedAccessRequest {
    pub fn verify(&self, chain_id: &Hash) -> Result<(), Error> {
        self.request
            .accessor
            .verify(TAG_ACCESS_REQUEST, chain_id, &self.request, &self.signature)
    }

    /// `VERSION || borsh(self)`: the body of a fetch.
    pub fn encode(&self) -> Vec<u8> {
        codec::encode(self)
    }

    /// Decodes a fetch body of at most [`ACCESS_REQUEST_BYTES_MAX`] bytes.
    pub fn decode(bytes: &[u8]) -> Result<Self, Error> {
        codec::decode(bytes, ACCESS_REQUEST_BYTES_MAX)
    }
}

/// Why a read was refused.
#[derive(
    Clone,
    Copy,
    Debug,
    PartialEq,
    Eq,
    Hash,
    BorshSerialize,
    BorshDeserialize,
    Serialize,
    Deserialize,
)]
#[serde(rename_all = "snake_case")]
#[borsh(use_discriminant = true)]
#[repr(u8)]
pub enum DenialReason {
    /// The patient never granted this accessor anything covering the archive.
    NoGrant = 1,
    /// A covering grant exists but its validity has not started.
    GrantNotYetValid = 2,
    /// A covering grant exists but has expired.
    GrantExpired = 3,
    /// A covering grant exists but the patient revoked it.
    GrantRevoked = 4,
    /// A grant covers the archive but not this purpose.
    PurposeNotCovered = 5,
    /// Emergency access was asked for, but the consortium's policy forbids break-glass.
    BreakGlassNotAllowed = 6,
    /// Emergency access needs a justification.
    JustificationRequired = 7,
    /// Only care-providing member institutions may break the glass.
    BreakGlassNotMember = 8,
    /// The justification is not sealed for exactly the patient and every regulator.
    JustificationNotSealed = 9,
    /// An institution's own key asked: records are read by a person, with her own key.
    InstitutionKey = 10,
    /// The clinician is suspended or retired, or her key was replaced. Such a request is
    /// refused off the ledger and never recorded; the rule names it all the same.
    StaffNotActive = 11,
    /// A grant covers the archive and purpose, but only for other roles.
    RoleNotCovered = 12,
    /// The policy does not let the clinician's role break the glass.
    BreakGlassRoleNotAllowed = 13,
}

impl DenialReason {
    pub fn as_str(self) -> &'static str {
        match self {
            DenialReason::NoGrant => "no grant covers this archive",
            DenialReason::GrantNotYetValid => "the grant is not yet valid",
            DenialReason::GrantExpired => "the grant has expired",
            DenialReason::GrantRevoked => "the patient revoked the grant",
            DenialReason::PurposeNotCovered => "the grant does not cover this purpose",
            DenialReason::BreakGlassNotAllowed => "break-glass access is not allowed by policy",
            DenialReason::JustificationRequired => "emergency access needs a justification",
            DenialReason::BreakGlassNotMember => "only member institutions may break the glass",
            DenialReason::JustificationNotSealed => {
                "the justification must be sealed for the patient and every regulator"
            }
            DenialReason::InstitutionKey => {
                "an institution's key cannot read records: a clinician reads with her own key"
            }
            DenialReason::StaffNotActive => "the clinician is suspended, retired or rotated out",
            DenialReason::RoleNotCovered => "the grant does not cover the clinician's role",
            DenialReason::BreakGlassRoleNotAllowed => {
                "the clinician's role may not break the glass"
            }
        }
    }
}

/// The outcome the custodian records.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum AccessOutcome {
    /// A clinician's read carries the archive key, which the custodian re-wrapped for her own
    /// X25519 key; the patient's read carries none (the archive record holds hers).
    Permitted {
        key_for_accessor: Option<WrappedKey>,
    },
    Denied {
        reason: DenialReason,
    },
    /// Emergency access without a grant: the custodian wraps the archive key for the accessor
    /// here, since no grant carries it.
    BreakGlass {
        key_for_accessor: WrappedKey,
    },
}

/// Why a read is permitted.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Basis {
    Patient,
    /// A clinician of the archive's custodian.
    Custodian,
    Grant(GrantId),
}

/// Who asked, as the ledger knows the key.
#[derive(Clone, Copy, Debug)]
pub enum Accessor<'a> {
    /// A clinician's key, current or past, and the role of her institution.
    Staff {
        record: &'a StaffRecord,
        institution_role: Option<Role>,
    },
    /// A member institution's own key.
    Institution(Role),
    /// The archive's patient, by the key that signs for her now.
    Patient,
    /// None of these (a key the patient rotated away from included).
    Other,
}

impl Accessor<'_> {
    /// The institution whose grants cover this accessor.
    pub fn grantee(&self) -> Option<PublicKey> {
        match self {
            Accessor::Staff { record, .. } => Some(record.institution),
            _ => None,
        }
    }

    /// The clinician as an access event names her.
    pub fn staff_ref(&self) -> Option<StaffRef> {
        match self {
            Accessor::Staff { record, .. } => Some(StaffRef {
                id: record.id,
                institution: record.institution,
                role: record.role,
            }),
            _ => None,
        }
    }
}

/// What the rule decides.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Decision {
    Permitted(Basis),
    BreakGlass,
    Denied(DenialReason),
}

impl Decision {
    /// The grant an access record must name for this decision.
    pub fn grant(&self) -> Option<GrantId> {
        match self {
            Decision::Permitted(Basis::Grant(g)) => Some(*g),
            _ => None,
        }
    }
}

/// How a grant stands at a moment, for one archive, purpose and clinician's role.
fn grant_standing(
    grant: &GrantRecord,
    archive: &ArchiveId,
    archive_rec: &ArchiveRecord,
    purpose: Purpose,
    role: crate::staff::StaffRole,
    now_ms: u64,
) -> Result<(), DenialReason> {
    if !grant.scope.covers(archive, archive_rec.category) {
        return Err(DenialReason::NoGrant);
    }
    if !grant.purposes.contains(&purpose) {
        return Err(DenialReason::PurposeNotCovered);
    }
    if !grant.roles.is_empty() && !grant.roles.contains(&role) {
        return Err(DenialReason::RoleNotCovered);
    }
    if grant.revoked_at_ms.is_some() {
        return Err(DenialReason::GrantRevoked);
    }
    if now_ms < grant.valid_from_ms {
        return Err(DenialReason::GrantNotYetValid);
    }
    if now_ms >= grant.expires_at_ms {
        return Err(DenialReason::GrantExpired);
    }
    Ok(())
}

/// The access rule. `accessor` is who the ledger knows the requester to be; `grants` are the
/// patient's grants to the clinician's institution, in grant-id order; `readers` are the X25519
/// keys a break-glass justification must be sealed for (the patient's and every regulator's).
/// Pure: same inputs, same decision.
pub fn decide(
    policy: &Policy,
    archive_rec: &ArchiveRecord,
    request: &AccessRequest,
    accessor: Accessor<'_>,
    grants: &[(GrantId, GrantRecord)],
    readers: &BTreeSet<X25519Public>,
    now_ms: u64,
) -> Decision {
    let (staff, institution_role) = match accessor {
        Accessor::Patient => return Decision::Permitted(Basis::Patient),
        Accessor::Institution(_) => return Decision::Denied(DenialReason::InstitutionKey),
        Accessor::Other => return Decision::Denied(DenialReason::NoGrant),
        Accessor::Staff {
            record,
            institution_role,
        } => (record, institution_role),
    };
    if !staff.is_active() {
        return Decision::Denied(DenialReason::StaffNotActive);
    }
    if staff.institution == archive_rec.custodian {
        return Decision::Permitted(Basis::Custodian);
    }
    // The most telling refusal among the institution's grants, if none permits.
    let mut refusal = DenialReason::NoGrant;
    for (id, grant) in grants {
        if grant.patient != archive_rec.patient || grant.grantee != staff.institution {
            continue;
        }
        match grant_standing(
            grant,
            &request.archive,
            archive_rec,
            request.purpose,
            staff.role,
            now_ms,
        ) {
            Ok(()) => return Decision::Permitted(Basis::Grant(*id)),
            Err(reason) => refusal = more_telling(refusal, reason),
        }
    }
    if request.purpose == Purpose::EmergencyTreat {
        if !institution_role.is_some_and(Role::provides_care) {
            return Decision::Denied(DenialReason::BreakGlassNotMember);
        }
        if !policy.break_glass_allowed {
            return Decision::Denied(DenialReason::BreakGlassNotAllowed);
        }
        if !policy.break_glass_roles.contains(&staff.role) {
            return Decision::Denied(DenialReason::BreakGlassRoleNotAllowed);
        }
        return match &request.justification {
            None => Decision::Denied(DenialReason::JustificationRequired),
            Some(j) if !j.is_sealed_for(readers) => {
                Decision::Denied(DenialReason::JustificationNotSealed)
            }
            Some(_) => Decision::BreakGlass,
        };
    }
    Decision::Denied(refusal)
}

/// Orders refusals by how much they tell the requester: a grant that would cover the read but
/// was revoked says more than "no grant".
fn more_telling(a: DenialReason, b: DenialReason) -> DenialReason {
    fn rank(r: DenialReason) -> u8 {
        match r {
            // A grant that will start says more than one that lapsed.
            DenialReason::GrantRevoked => 5,
            DenialReason::GrantNotYetValid => 4,
            DenialReason::GrantExpired => 3,
            DenialReason::PurposeNotCovered | DenialReason::RoleNotCovered => 2,
            _ => 1,
        }
    }
    if rank(b) > rank(a) { b } else { a }
}

/// How an access ended, as the log records it.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum EventOutcome {
    Permitted,
    Denied {
        reason: DenialReason,
    },
    BreakGlass,
    /// Not an access: a regulator's review of the break-glass access recorded by transaction
    /// `entry`. The event names the reviewed access's patient, archive and custodian, the
    /// regulator as its accessor and purpose HSYSADMIN; it reads nothing.
    Reviewed {
        entry: crate::crypto::Digest32,
        decision: ReviewDecision,
    },
    /// Not an access: the patient replaced her keys herself; `new_key` signs for her from the
    /// next block. The event's accessor is the key that signed the rotation; it names no
    /// archive ([`AccessEvent::about_archive`]).
    Rotated {
        new_key: PublicKey,
    },
    /// Not an access: the member named as accessor recovered the patient, binding her identity
    /// to `new_key` (she lost her device). Kept in the break-glass log too, so the
    /// commission's verified log shows every recovery; it names no archive.
    Recovered {
        new_key: PublicKey,
    },
}

impl EventOutcome {
    pub fn is_break_glass(&self) -> bool {
        matches!(self, EventOutcome::BreakGlass)
    }

    pub fn is_review(&self) -> bool {
        matches!(self, EventOutcome::Reviewed { .. })
    }

    /// Whether the event records a change of the patient's keys rather than an access.
    pub fn is_key_change(&self) -> bool {
        matches!(
            self,
            EventOutcome::Rotated { .. } | EventOutcome::Recovered { .. }
        )
    }

    /// Whether the event belongs in the break-glass log, the commission's oversight log: every
    /// break-glass access and every review of one, so the log alone shows which accesses await
    /// review, and every recovery of a patient by a member.
    pub fn in_break_glass_log(&self) -> bool {
        self.is_break_glass() || self.is_review() || matches!(self, EventOutcome::Recovered { .. })
    }
}

impl From<&AccessOutcome> for EventOutcome {
    fn from(o: &AccessOutcome) -> Self {
        match o {
            AccessOutcome::Permitted { .. } => EventOutcome::Permitted,
            AccessOutcome::Denied { reason } => EventOutcome::Denied { reason: *reason },
            AccessOutcome::BreakGlass { .. } => EventOutcome::BreakGlass,
        }
    }
}

/// One entry of the access log: the same leaf in the global log and in each audit subject's log
/// (the patient's, the archive's, the accessor's and, for break-glass, the break-glass log).
/// It names keys and identifiers only, never a person's name or health data.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct AccessEvent {
    pub height: u64,
    pub time_ms: u64,
    pub tx_hash: crate::crypto::Digest32,
    /// SHA-256 of the accessor's signed request, which the transaction carries whole.
    pub request_hash: crate::crypto::Digest32,
    pub patient: PublicKey,
    pub archive: ArchiveId,
    pub category: crate::tx::Category,
    pub custodian: PublicKey,
    pub accessor: PublicKey,
    /// The clinician who asked, when a clinician did (her institution is the grantee).
    pub staff: Option<StaffRef>,
    pub purpose: Purpose,
    pub grant: Option<GrantId>,
    pub outcome: EventOutcome,
}

impl AccessEvent {
    /// The canonical bytes the logs' leaves hash.
    pub fn leaf_bytes(&self) -> Vec<u8> {
        crate::codec::encode(self)
    }

    pub fn leaf_hash(&self) -> Hash {
        crate::merkle::log::leaf_hash(&self.leaf_bytes())
    }

    /// Whether the event is about an archive, and so in the archive's log. A key change is not:
    /// its `archive` and `custodian` are all zeros and its `category` is `Other`.
    pub fn about_archive(&self) -> bool {
        !self.outcome.is_key_change()
    }
}

/// The archive a key-change event names: none, all zeros, an id no archive may be registered
/// under. A key change is told by its outcome, never by this id.
pub const NO_ARCHIVE: ArchiveId = ArchiveId([0; 32]);

/// An access event with its positions in the global log and in the patient's log.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct LoggedEvent {
    pub global_index: u64,
    pub patient_index: u64,
    pub event: AccessEvent,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::crypto::Keypair;

    #[test]
    fn the_largest_access_request_fits_its_bound() {
        let key = Keypair::from_seed(&[7; 32]);
        let readers: Vec<_> = (0..crate::justification::JUSTIFICATION_READERS_MAX)
            .map(|i| Keypair::from_seed(&[i as u8 + 10; 32]).x25519_public())
            .collect();
        let sealed =
            crate::justification::seal(&"x".repeat(JUSTIFICATION_BYTES_MAX), &[4; 32], &readers)
                .unwrap();
        let request = AccessRequest {
            accessor: key.public_key(),
            archive: ArchiveId([1; 32]),
            purpose: Purpose::EmergencyTreat,
            justification: Some(sealed),
            requested_at_ms: u64::MAX,
            request_id: [2; 16],
        };
        let signature = key.sign(TAG_ACCESS_REQUEST, &[3; 32], &request);
        let signed = SignedAccessRequest { request, signature };
        let bytes = signed.encode();
        assert!(bytes.len() < 2600, "{} bytes", bytes.len());
        assert!(bytes.len() <= ACCESS_REQUEST_BYTES_MAX);
        assert_eq!(SignedAccessRequest::decode(&bytes).unwrap(), signed);
        assert!(SignedAccessRequest::decode(&vec![0; ACCESS_REQUEST_BYTES_MAX + 1]).is_err());
    }
}
