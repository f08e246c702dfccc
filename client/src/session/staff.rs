//! Clinicians: an institution (its own key, or one of its administrators) registers, suspends,
//! reinstates, retires and re-keys its clinicians and keeps their names in its node's directory;
//! anyone entitled looks a clinician up.
//!
//! Names never go on the ledger: `register_staff` commits the clinician's keys, role and
//! department, then hands her name and staff number to the institution's own node, which keeps
//! them off the ledger and serves them only to whom they concern.

use cradle_ledger::staff::{
    Department, RegisterStaff, RotateStaffKey, SetStaffStatus, StaffKeys, StaffRecord, StaffRole,
    StaffStatus,
};
use serde::Serialize;

use super::*;

/// A clinician's name and staff number, as her institution's directory keeps them.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct DirectoryEntry {
    pub name: String,
    pub staff_number: String,
}

/// One clinician of an institution's list.
#[derive(Clone, Debug)]
pub struct ListedStaff {
    pub key: PublicKey,
    pub record: StaffRecord,
    pub directory: Option<DirectoryEntry>,
}

impl Session {
    /// The institution this session's key manages staff for: itself, if it is a member; the
    /// institution of the administrator it is, otherwise.
    pub fn own_institution(&self) -> Result<PublicKey, ClientError> {
        let me = self.key.public_key();
        if let Some(m) = self.consortium().signer(&me) {
            return Ok(m.public_key);
        }
        Ok(self.staff_record(&me)?.institution)
    }

    /// A clinician's ledger record.
    pub fn staff_record(&self, key: &PublicKey) -> Result<StaffRecord, ClientError> {
        let v = self.api.get_json(&format!("/v1/staff/{}", key.to_hex()))?;
        record(&v, "clinician record")
    }

    /// Registers the clinician whose proven public keys are `keys` at this session's
    /// institution, then records her name and staff number in its node's directory.
    pub fn register_staff(
        &self,
        keys: StaffKeys,
        role: StaffRole,
        department: Department,
        directory: &DirectoryEntry,
    ) -> Result<Receipt, ClientError> {
        keys.verify_proof(&self.chain_id)?;
        let institution = self.own_institution()?;
        let key = keys.key;
        let receipt = self.submit(TxBody::RegisterStaff(RegisterStaff {
            institution,
            keys,
            role,
            department,
        }))?;
        self.set_directory(&key, directory)?;
        Ok(receipt)
    }

    /// Sets a clinician's name and staff number in this node's directory (it must be her
    /// institution's node).
    pub fn set_directory(
        &self,
        key: &PublicKey,
        entry: &DirectoryEntry,
    ) -> Result<(), ClientError> {
        let body = serde_json::to_vec(entry)
            .map_err(|e| ClientError::Invalid(format!("directory entry: {e}")))?;
        let path = format!("/v1/staff/{}/directory", key.to_hex());
        let auth = self.auth("PUT", &path, sha256(&body))?;
        self.api.put_json(&path, &auth, AUTH_HEADER, &body)?;
        Ok(())
    }

    /// Suspends, reinstates (`active`) or retires a clinician, from the next block on.
    pub fn set_staff_status(
        &self,
        staff: PublicKey,
        status: StaffStatus,
    ) -> Result<Receipt, ClientError> {
        self.submit(TxBody::SetStaffStatus(SetStaffStatus { staff, status }))
    }

    /// Replaces a clinician's keys with the proven `new_keys`; her old key is refused from the
    /// next block, and her directory entry follows her (it is kept by her pseudonymous id).
    pub fn rotate_staff_key(
        &self,
        staff: PublicKey,
        new_keys: StaffKeys,
    ) -> Result<Receipt, ClientError> {
        new_keys.verify_proof(&self.chain_id)?;
        self.submit(TxBody::RotateStaffKey(RotateStaffKey { staff, new_keys }))
    }

    /// An institution's clinicians (every key, rotated-out ones included), with their names
    /// when this session's node is the institution's.
    pub fn list_staff(&self, institution: &PublicKey) -> Result<Vec<ListedStaff>, ClientError> {
        let v = self
            .api
            .get_json(&format!("/v1/members/{}/staff", institution.to_hex()))?;
        let list = v
            .get("staff")
            .and_then(Value::as_array)
            .ok_or_else(|| bad_answer("staff list"))?;
        list.iter()
            .map(|item| {
                let key: PublicKey =
                    serde_json::from_value(item.get("key").cloned().unwrap_or(Value::Null))
                        .map_err(|_| bad_answer("clinician key"))?;
                let directory = match item.get("directory") {
                    None | Some(Value::Null) => None,
                    Some(d) => Some(
                        serde_json::from_value(d.clone())
                            .map_err(|_| bad_answer("directory entry"))?,
                    ),
                };
                Ok(ListedStaff {
                    key,
                    record: record(item, "clinician record")?,
                    directory,
                })
            })
            .collect()
    }

    /// The name and staff number of the clinician with `key`, asked of her institution's own
    /// node (the only one that keeps them), if this session's key is entitled to them.
    pub fn staff_name(
        &self,
        institution: &PublicKey,
        key: &PublicKey,
    ) -> Result<DirectoryEntry, ClientError> {
        let path = format!("/v1/staff/{}/directory", key.to_hex());
        let member = self.consortium().member(institution).ok_or_else(|| {
            ClientError::Invalid("the clinician's institution is no member".into())
        })?;
        let bytes = if self.api.node_key()? == member.signing_key() {
            self.api.get_signed_as(&self.key, &self.chain_id, &path)?
        } else {
            let addr = member.api_addr.as_deref().ok_or_else(|| {
                ClientError::Invalid(format!("{} runs no API to ask for names", member.name))
            })?;
            let url = format!("https://{addr}");
            let api = ApiClient::with_pins(&url, Pins::for_url_in(self.consortium(), &url))?;
            api.get_signed_as(&self.key, &self.chain_id, &path)?
        };
        serde_json::from_slice(&bytes).map_err(|_| bad_answer("directory entry"))
    }
}

impl Session {
    /// The names of the clinicians who asked in `events` that this key may know, each asked
    /// of her institution's own node. A name that cannot be had (not entitled, no entry, the
    /// node unreachable) is left out: the audit still shows her role and pseudonymous id.
    pub fn staff_names(
        &self,
        events: &[cradle_ledger::audit::IndexedEvent],
    ) -> crate::audit::Names {
        let mut names = crate::audit::Names::new();
        let mut asked = std::collections::BTreeSet::new();
        for e in events {
            let Some(s) = &e.event.staff else { continue };
            if !asked.insert(s.id) {
                continue;
            }
            if let Ok(entry) = self.staff_name(&s.institution, &e.event.accessor) {
                names.insert(s.id, entry.name);
            }
        }
        names
    }
}
