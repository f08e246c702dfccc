//! Clinicians: the people of a member institution who read records, each with her own keys.
//!
//! An institution registers a clinician with her ed25519 and X25519 public keys, a role from a
//! fixed list and a department, and may suspend, reinstate or retire her and rotate her keys.
//! The ledger holds no names: each institution keeps a directory of its staff (name and staff
//! number) off the ledger, and serves it only to those entitled to it. What the ledger holds is a
//! pseudonymous [`StaffId`], stable across key rotations, so an audit names the same person
//! before and after a new laptop.
//!
//! A registration or rotation carries the clinician's proof over her keys for this chain, the
//! same proof a patient's enrolment carries ([`crate::tx::EnrolPatient`]): no institution can
//! pair her signing key with an X25519 key of its own and open the archive keys wrapped for her.

use borsh::{BorshDeserialize, BorshSerialize};
use serde::{Deserialize, Serialize};

pub use crate::crypto::StaffId;
use crate::crypto::{self, Hash, Keypair, PublicKey, Signature, X25519Public};
use crate::error::Error;
use crate::tx::{self, code_enum};

code_enum!(
    /// What a clinician does, which decides what she may do (break-glass is a policy of roles).
    StaffRole {
        Obstetrician = 1, "obstetrician", "A doctor of obstetrics.";
        Midwife = 2, "midwife", "A midwife.";
        Nurse = 3, "nurse", "A nurse.";
        GeneralPractitioner = 4, "general-practitioner", "A general practitioner or village doctor.";
        EmergencyPhysician = 5, "emergency-physician", "A doctor of the emergency department.";
        Paediatrician = 6, "paediatrician", "A doctor of newborns and children.";
        Administrator = 7, "administrator", "Manages the institution's staff; reads no records by role.";
    }
);

code_enum!(
    /// Where in the institution a clinician works.
    Department {
        Obstetrics = 1, "obstetrics", "Obstetrics and gynaecology.";
        Midwifery = 2, "midwifery", "Midwifery and the delivery suite.";
        Neonatology = 3, "neonatology", "Newborn care.";
        Emergency = 4, "emergency", "The emergency department.";
        MaternalChildHealth = 5, "maternal-child-health", "Maternal and child health services.";
        GeneralPractice = 6, "general-practice", "General practice and community care.";
        Laboratory = 7, "laboratory", "The laboratory.";
        Imaging = 8, "imaging", "Ultrasound and imaging.";
        Administration = 9, "administration", "Administration.";
    }
);

code_enum!(
    /// Where a clinician's key stands.
    StaffStatus {
        Active = 1, "active", "May read what her institution may read.";
        Suspended = 2, "suspended", "Refused until reinstated.";
        Retired = 3, "retired", "Left the institution: refused for good.";
        Rotated = 4, "rotated", "This key was replaced by a new one: refused for good.";
    }
);

impl StaffId {
    /// Derived from the institution and the clinician's first key, so it is known before the
    /// registration commits and no one can choose another's.
    pub fn derive(institution: &PublicKey, first_key: &PublicKey) -> Self {
        let h = crypto::sha256_parts(&[b"cradle.staff-id.v1\0", &institution.0, &first_key.0]);
        let mut id = [0u8; 16];
        id.copy_from_slice(&h[..16]);
        Self(id)
    }
}

/// A clinician's public keys and her proof over them for one chain.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct StaffKeys {
    pub key: PublicKey,
    pub x25519: X25519Public,
    /// Her proof over both ([`tx::prove_keys`]).
    pub proof: Signature,
}

impl StaffKeys {
    /// The clinician's own keys, proven for `chain_id`.
    pub fn prove(staff: &Keypair, chain_id: &Hash) -> Self {
        let (key, x25519, proof) = tx::prove_keys(staff, chain_id);
        Self { key, x25519, proof }
    }

    /// The bytes the clinician signed for `chain_id`.
    pub fn proof_signing_bytes(&self, chain_id: &Hash) -> Vec<u8> {
        tx::key_proof_signing_bytes(&self.key, &self.x25519, chain_id)
    }

    pub fn verify_proof(&self, chain_id: &Hash) -> Result<(), Error> {
        tx::verify_key_proof(&self.key, &self.x25519, &self.proof, chain_id)
    }
}

/// An institution registers a clinician (signed by the institution, or by one of its active
/// administrators).
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RegisterStaff {
    pub institution: PublicKey,
    pub keys: StaffKeys,
    pub role: StaffRole,
    pub department: Department,
}

/// An institution suspends, reinstates or retires one of its clinicians.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct SetStaffStatus {
    /// The clinician's current key.
    pub staff: PublicKey,
    /// `active`, `suspended` or `retired`; a retired clinician stays retired.
    pub status: StaffStatus,
}

/// An institution replaces a clinician's keys (a lost or stolen laptop): the old key is refused
/// from the next block, the new one reads as the same person.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct RotateStaffKey {
    /// The clinician's current key.
    pub staff: PublicKey,
    pub new_keys: StaffKeys,
}

/// A clinician's key as the ledger holds it; one record per key she ever had.
#[derive(Clone, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize)]
pub struct StaffRecord {
    pub id: StaffId,
    pub institution: PublicKey,
    pub role: StaffRole,
    pub department: Department,
    pub x25519: X25519Public,
    pub status: StaffStatus,
    pub registered_at_ms: u64,
    pub registered_height: u64,
    /// When the status last changed.
    pub changed_at_ms: u64,
    /// The key that replaced this one, once rotated.
    pub successor: Option<PublicKey>,
}

impl StaffRecord {
    pub fn is_active(&self) -> bool {
        self.status == StaffStatus::Active
    }
}

/// Who a clinician is in an access event: her pseudonymous id, institution and role, as they
/// stood when the access was recorded.
#[derive(
    Clone, Copy, Debug, PartialEq, Eq, BorshSerialize, BorshDeserialize, Serialize, Deserialize,
)]
pub struct StaffRef {
    pub id: StaffId,
    pub institution: PublicKey,
    pub role: StaffRole,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_unknown_codes_are_refused() {
        for r in StaffRole::ALL {
            assert_eq!(r.code().parse::<StaffRole>().unwrap(), *r);
        }
        for d in Department::ALL {
            assert_eq!(d.code().parse::<Department>().unwrap(), *d);
        }
        assert!("surgeon".parse::<StaffRole>().is_err());
        assert!("".parse::<Department>().is_err());
    }

    #[test]
    fn a_proof_holds_only_for_its_keys_and_chain() {
        let k = Keypair::from_seed(&[9; 32]);
        let keys = StaffKeys::prove(&k, &[1; 32]);
        keys.verify_proof(&[1; 32]).unwrap();
        assert!(keys.verify_proof(&[2; 32]).is_err());
        let mut other = keys.clone();
        other.x25519 = Keypair::from_seed(&[8; 32]).x25519_public();
        assert!(other.verify_proof(&[1; 32]).is_err());
    }

    #[test]
    fn staff_ids_differ_by_institution_and_key() {
        let a = PublicKey([1; 32]);
        let b = PublicKey([2; 32]);
        assert_eq!(StaffId::derive(&a, &b), StaffId::derive(&a, &b));
        assert_ne!(StaffId::derive(&a, &b), StaffId::derive(&b, &a));
    }
}
