//! Who may read what: the one authorization policy of the API.
//!
//! Every `GET` passes through [`identify`], which checks a signed request (the `x-cradle-auth`
//! header, see [`super::auth`]) and leaves the [`Caller`] for the handler; every handler then
//! asks one function here before it reads anything. Writes are authorized elsewhere: a
//! transaction by its own signature and the ledger's rules, an upload and a fetch by their
//! signed requests in [`super::archives`].
//!
//! | caller | may read |
//! |---|---|
//! | anyone | `/healthz`, and `/v1/status` as height and block hash only |
//! | a patient | her own patient record, archives, grants, access history and the access records about her archives; the member list |
//! | a hospital or clinic | blocks and transactions (it validates them); patient keys, archive records and a patient's grants (to register archives for her, refer her and, in an emergency, reach an archive); her list of archives once she granted it something or it holds one of them; grants it got; its own accesses; the histories of archives it holds |
//! | a clinician (active) | what her institution may read of patients, archives and grants, to reach a record she is entitled to; her own accesses; an administrator, her institution's accesses and staff list |
//! | a clinician (suspended, retired or rotated out) | her own accesses |
//! | a regulator | everything, including every break-glass access and the equivocation evidence |
//!
//! A clinician's name and staff number are served only by her institution's node, to the
//! institution, its administrators, regulators, herself, and a patient whose records she read
//! ([`staff_directory`]).
//!
//! A request without a signature gets 401 `unauthorized`, a signed one from the wrong party
//! 403 `forbidden`; neither learns whether the thing asked for exists.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::Method;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use cradle_ledger::api_request::AUTH_HEADER;
use cradle_ledger::audit::AuditSubject;
use cradle_ledger::contract::ErrorCode;
use cradle_ledger::crypto::sha256;
use cradle_ledger::identity::Role;
use cradle_ledger::staff::{StaffRecord, StaffRole};
use cradle_ledger::state::{GrantRecord, StateExt, StateReader, keys};
use cradle_ledger::{ArchiveId, PublicKey, StaffId};

use super::auth::authenticate;
use super::{HttpError, HttpState};

/// Most of a patient's archives scanned to find whether a member holds one of them.
const CUSTODY_SCAN_MAX: usize = 4096;

/// Who signed the request, as the ledger knows them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    /// A hospital or clinic.
    Institution(PublicKey),
    Regulator(PublicKey),
    /// An enrolled patient.
    Patient(PublicKey),
    /// A clinician's key, current or past.
    Staff(StaffCaller),
}

/// A clinician as the ledger knows her key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StaffCaller {
    pub key: PublicKey,
    pub id: StaffId,
    pub institution: PublicKey,
    pub active: bool,
    pub administrator: bool,
}

impl StaffCaller {
    /// An active clinician reads on her institution's behalf.
    fn acting_for(&self) -> Option<PublicKey> {
        self.active.then_some(self.institution)
    }

    /// An active administrator manages her institution's staff.
    fn administers(&self, institution: &PublicKey) -> bool {
        self.active && self.administrator && self.institution == *institution
    }
}

impl Caller {
    pub(super) fn of(state: &HttpState, key: PublicKey) -> Result<Self, HttpError> {
        // A member signs with its current key and is known by its identity, which its
        // records name.
        let member = state
            .consortium()
            .signer(&key)
            .map(|m| (m.role, m.public_key));
        Ok(match member {
            Some((Role::Regulator, identity)) => Self::Regulator(identity),
            Some((_, identity)) => Self::Institution(identity),
            // `authenticate` admits only members, clinicians and enrolled patients.
            None => match state.store.staff(&key).map_err(HttpError::internal)? {
                Some(s) => Self::Staff(StaffCaller {
                    key,
                    id: s.id,
                    institution: s.institution,
                    active: s.is_active(),
                    administrator: s.role == StaffRole::Administrator,
                }),
                // Her records name the key she enrolled with, whichever key signs for her now.
                None => match state
                    .store
                    .patient_by_key(&key)
                    .map_err(HttpError::internal)?
                {
                    Some((identity, _, true)) => Self::Patient(identity),
                    _ => Self::Patient(key),
                },
            },
        })
    }

    fn key(&self) -> Option<&PublicKey> {
        match self {
            Self::Anonymous => None,
            Self::Institution(k) | Self::Regulator(k) | Self::Patient(k) => Some(k),
            Self::Staff(s) => Some(&s.key),
        }
    }
}

/// Checks the signature of a `GET` that carries one and records who made it; a `GET` without
/// one is [`Caller::Anonymous`]. Other methods authenticate with their body in their handlers.
pub async fn identify(
    State(state): State<Arc<HttpState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let caller = if request.method() == Method::GET && request.headers().contains_key(AUTH_HEADER) {
        match authenticate(
            &state,
            super::rate::peer_ip(&request),
            request.headers(),
            "GET",
            request.uri(),
            &sha256(b""),
            super::rate::Class::Ordinary,
        ) {
            Ok(key) => match Caller::of(&state, key) {
                Ok(caller) => caller,
                Err(e) => return e.into_response(),
            },
            Err(e) => return e.into_response(),
        }
    } else {
        Caller::Anonymous
    };
    request.extensions_mut().insert(caller);
    next.run(request).await
}

fn unsigned() -> HttpError {
    HttpError::new(
        axum::http::StatusCode::UNAUTHORIZED,
        ErrorCode::Unauthorized,
        format!("sign this request ({AUTH_HEADER}): it is answered only to whom it concerns"),
    )
}

fn refuse(who: &str) -> HttpError {
    HttpError::forbidden(format!("this is answered only to {who}"))
}

/// Anyone the ledger knows: the member list, the genesis, consistency proofs.
pub fn known(caller: &Caller) -> Result<(), HttpError> {
    caller.key().map(|_| ()).ok_or_else(unsigned)
}

/// The full status, blocks and transactions: members (they validate them) and regulators.
pub fn members(caller: &Caller) -> Result<(), HttpError> {
    match caller {
        Caller::Anonymous => Err(unsigned()),
        Caller::Institution(_) | Caller::Regulator(_) => Ok(()),
        Caller::Patient(_) | Caller::Staff(_) => Err(refuse("members and regulators")),
    }
}

/// A committed transaction: members and regulators; a patient, the record of an access to
/// one of her archives (`about` is that archive's patient).
pub fn transaction(caller: &Caller, about: Option<&PublicKey>) -> Result<(), HttpError> {
    match caller {
        Caller::Patient(k) if about == Some(k) => Ok(()),
        Caller::Patient(_) => Err(refuse(
            "members, regulators, and the patient an access record is about",
        )),
        _ => members(caller),
    }
}

/// A signer's last nonce: the signer itself, members and regulators.
pub fn nonce(caller: &Caller, of: &PublicKey) -> Result<(), HttpError> {
    match caller {
        Caller::Staff(s) if s.key == *of => Ok(()),
        Caller::Staff(_) => Err(refuse("the key itself, members and regulators")),
        _ => herself_or_members(caller, of, "the key itself, members and regulators"),
    }
}

/// What concerns `patient`: herself, members, their active clinicians and regulators (`who`
/// says so to a refused patient).
fn herself_or_members(caller: &Caller, patient: &PublicKey, who: &str) -> Result<(), HttpError> {
    match caller {
        Caller::Patient(k) if k == patient => Ok(()),
        Caller::Patient(_) => Err(refuse(who)),
        Caller::Staff(s) if s.active => Ok(()),
        Caller::Staff(_) => Err(refuse(who)),
        _ => members(caller),
    }
}

/// A patient's record (her public keys): herself, members and regulators.
pub fn patient_record(caller: &Caller, patient: &PublicKey) -> Result<(), HttpError> {
    herself_or_members(
        caller,
        patient,
        "the patient herself, members and regulators",
    )
}

/// An archive's record: its patient, members and regulators.
pub fn archive_record(caller: &Caller, patient: &PublicKey) -> Result<(), HttpError> {
    herself_or_members(
        caller,
        patient,
        "the archive's patient, members and regulators",
    )
}

/// A patient's grants: herself, members (a custodian registering her archive wraps its key
/// for each grant that covers it) and regulators.
pub fn patient_grants(caller: &Caller, patient: &PublicKey) -> Result<(), HttpError> {
    herself_or_members(
        caller,
        patient,
        "the patient herself, members and regulators",
    )
}

/// A patient's archives: herself, regulators, and an institution she granted something, that
/// enrolled her, or that holds one of her archives.
pub fn patient_listing(
    state: &HttpState,
    caller: &Caller,
    patient: &PublicKey,
) -> Result<(), HttpError> {
    let who = "the patient herself, an institution she granted, that enrolled her or whose care \
               she is in, and regulators";
    match caller {
        Caller::Anonymous => Err(unsigned()),
        Caller::Regulator(_) => Ok(()),
        Caller::Patient(k) if k == patient => Ok(()),
        Caller::Patient(_) => Err(refuse(who)),
        Caller::Staff(s) => match s.acting_for() {
            Some(institution) => patient_listing(state, &Caller::Institution(institution), patient),
            None => Err(refuse(who)),
        },
        Caller::Institution(member) => {
            let granted = !state
                .store
                .scan_prefix(&keys::grants_to(patient, member), 1)
                .map_err(HttpError::internal)?
                .is_empty();
            // The member that enrolled her is in her care too (it may recover her lost key).
            let enrolled = state
                .store
                .patient(patient)
                .map_err(HttpError::internal)?
                .is_some_and(|rec| rec.enrolled_by == *member);
            let holds = granted
                || enrolled
                || state
                    .store
                    .patient_archives(patient, CUSTODY_SCAN_MAX)
                    .map_err(HttpError::internal)?
                    .iter()
                    .any(|(_, rec)| rec.custodian == *member);
            if holds { Ok(()) } else { Err(refuse(who)) }
        }
    }
}

/// A grant and the keys it carries: the patient who gave it, the grantee, regulators.
pub fn grant(caller: &Caller, grant: &GrantRecord) -> Result<(), HttpError> {
    match caller {
        Caller::Anonymous => Err(unsigned()),
        Caller::Regulator(_) => Ok(()),
        Caller::Patient(k) | Caller::Institution(k)
            if *k == grant.patient || *k == grant.grantee =>
        {
            Ok(())
        }
        Caller::Staff(s) if s.acting_for() == Some(grant.grantee) => Ok(()),
        _ => Err(refuse(
            "the patient who gave the grant, its grantee and regulators",
        )),
    }
}

/// An access history: the patient's to her; an archive's to its patient and custodian; an
/// institution's to itself; any (break-glass included) to regulators.
pub fn audit(state: &HttpState, caller: &Caller, subject: &AuditSubject) -> Result<(), HttpError> {
    let signer = match caller {
        Caller::Anonymous => return Err(unsigned()),
        Caller::Regulator(_) => return Ok(()),
        Caller::Institution(k) | Caller::Patient(k) => k,
        Caller::Staff(s) => return staff_audit(state, s, subject),
    };
    let (allowed, who) = match subject {
        AuditSubject::Patient(p) => (p == signer, "the patient herself or a regulator"),
        AuditSubject::Accessor(a) => (a == signer, "the institution itself or a regulator"),
        AuditSubject::Archive(id) => (
            archive_parties(state, id)?.is_some_and(|(p, c)| p == *signer || c == *signer),
            "the archive's patient, its custodian or a regulator",
        ),
        AuditSubject::BreakGlass => (false, "regulators"),
    };
    if allowed { Ok(()) } else { Err(refuse(who)) }
}

/// A clinician's access histories: her own; an active administrator's, her institution's; an
/// active clinician's, those of the archives her institution holds.
fn staff_audit(
    state: &HttpState,
    s: &StaffCaller,
    subject: &AuditSubject,
) -> Result<(), HttpError> {
    let allowed = match subject {
        AuditSubject::Accessor(a) => *a == s.key || s.administers(a),
        AuditSubject::Archive(id) => s.acting_for().is_some_and(|i| {
            archive_parties(state, id)
                .ok()
                .flatten()
                .is_some_and(|(_, c)| c == i)
        }),
        AuditSubject::Patient(_) | AuditSubject::BreakGlass => false,
    };
    if allowed {
        Ok(())
    } else {
        Err(refuse(
            "the clinician herself, her institution's administrators, or a regulator",
        ))
    }
}

/// A clinician's ledger record (pseudonymous: id, institution, role, status): anyone the
/// ledger knows, so a patient can read who read her records.
pub fn staff_record(caller: &Caller) -> Result<(), HttpError> {
    known(caller)
}

/// An institution's staff list, and changes to its directory: the institution, its active
/// administrators and (to read) regulators.
pub fn staff_admin(caller: &Caller, institution: &PublicKey, write: bool) -> Result<(), HttpError> {
    match caller {
        Caller::Anonymous => Err(unsigned()),
        Caller::Regulator(_) if !write => Ok(()),
        Caller::Institution(k) if k == institution => Ok(()),
        Caller::Staff(s) if s.administers(institution) => Ok(()),
        _ => Err(refuse("the institution, its administrators and regulators")),
    }
}

/// A clinician's name and staff number: her institution, its administrators, regulators,
/// herself, and a patient whose records she read (with any of her keys).
pub fn staff_directory(
    state: &HttpState,
    caller: &Caller,
    staff: &StaffRecord,
) -> Result<(), HttpError> {
    let who = "her institution, regulators, herself, and a patient whose records she read";
    match caller {
        Caller::Anonymous => Err(unsigned()),
        Caller::Regulator(_) => Ok(()),
        Caller::Institution(k) if *k == staff.institution => Ok(()),
        Caller::Staff(s) if s.id == staff.id || s.administers(&staff.institution) => Ok(()),
        Caller::Patient(p) => {
            if read_by(state, p, &staff.id)? {
                Ok(())
            } else {
                Err(refuse(who))
            }
        }
        _ => Err(refuse(who)),
    }
}

/// Most of a patient's access events scanned for a clinician who read her records.
const READ_BY_SCAN_MAX: usize = 100_000;

/// Whether the clinician `id` asked for any of `patient`'s records (whatever the outcome).
fn read_by(state: &HttpState, patient: &PublicKey, id: &StaffId) -> Result<bool, HttpError> {
    let page_max = crate::storage::EVENTS_PAGE_MAX;
    let mut from = 0u64;
    let mut scanned = 0usize;
    while scanned < READ_BY_SCAN_MAX {
        let page = state
            .store
            .events_for_patient(patient, from, page_max)
            .map_err(HttpError::internal)?;
        if page
            .iter()
            .any(|e| e.event.staff.is_some_and(|r| r.id == *id))
        {
            return Ok(true);
        }
        match page.last() {
            Some(last) if page.len() == page_max => from = last.global_index.saturating_add(1),
            _ => return Ok(false),
        }
        scanned = scanned.saturating_add(page.len());
    }
    Ok(false)
}

/// The equivocation evidence: regulators.
pub fn regulators(caller: &Caller) -> Result<(), HttpError> {
    match caller {
        Caller::Anonymous => Err(unsigned()),
        Caller::Regulator(_) => Ok(()),
        _ => Err(refuse("regulators")),
    }
}

/// An archive's patient and custodian, if it is on the ledger.
fn archive_parties(
    state: &HttpState,
    id: &ArchiveId,
) -> Result<Option<(PublicKey, PublicKey)>, HttpError> {
    Ok(state
        .store
        .archive(id)
        .map_err(HttpError::internal)?
        .map(|r| (r.patient, r.custodian)))
}
