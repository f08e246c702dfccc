//! The test consortium and its keys.
//!
//! Member keys are `Keypair::from_seed(&[seed; 32])` with seeds 1 to 4, in genesis order, so a
//! test that only needs "member `i`" (the network tests, say) and one that needs the whole
//! consortium name the same identities.

use cradle_ledger::crypto::sha256;
use cradle_ledger::tx::WrappedKey;
use cradle_ledger::{Consortium, Hash, Keypair, Limits, Member, Policy, Role, X25519Public};

/// Genesis time of the test consortium: 2026-05-28T20:26:40Z.
pub const GENESIS_MS: u64 = 1_780_000_000_000;
/// One day, in milliseconds.
pub const DAY_MS: u64 = 24 * 3600 * 1000;
/// Seed of a key that no test consortium lists: an outsider, a clinician, an auditor.
pub const OUTSIDER_SEED: u8 = 9;

/// The key of seed `seed`: `Keypair::from_seed(&[seed; 32])`.
pub fn seeded_key(seed: u8) -> Keypair {
    Keypair::from_seed(&[seed; 32])
}

/// A key that belongs to no member of the test consortium.
pub fn outsider_key() -> Keypair {
    seeded_key(OUTSIDER_SEED)
}

/// Patient number `i`: distinct for every `i`, and distinct from every member key.
pub fn patient_key(i: u64) -> Keypair {
    let mut seed = [0u8; 32];
    seed[..8].copy_from_slice(&i.to_le_bytes());
    seed[31] = 0xaa;
    Keypair::from_seed(&seed)
}

/// A consortium member holding `key`.
pub fn member(name: &str, role: Role, key: &Keypair, power: u64) -> Member {
    Member {
        name: name.into(),
        role,
        public_key: key.public_key(),
        x25519: key.x25519_public(),
        voting_power: power,
        p2p_addr: None,
        api_addr: None,
        signing_key: None,
    }
}

/// A wrapped key of the right shape that unwraps for no one: for records whose keys a test
/// never opens.
pub fn wrapped(tag: u8) -> WrappedKey {
    WrappedKey {
        ephemeral: X25519Public([tag; 32]),
        sealed: [tag; 48],
    }
}

/// Two hospitals and a clinic that validate with power 1 each, and a regulator without power.
pub struct TestConsortium {
    pub consortium: Consortium,
    /// "County Hospital", seed 1.
    pub hospital_a: Keypair,
    /// "City Hospital", seed 2.
    pub hospital_b: Keypair,
    /// "Township Clinic", seed 3.
    pub clinic: Keypair,
    /// "Health Commission", seed 4.
    pub regulator: Keypair,
}

impl TestConsortium {
    /// The consortium under `policy`, with chain id `sha256("test chain")`, genesis at
    /// [`GENESIS_MS`] and the default limits.
    pub fn new(policy: Policy) -> Self {
        let (hospital_a, hospital_b) = (seeded_key(1), seeded_key(2));
        let (clinic, regulator) = (seeded_key(3), seeded_key(4));
        let members = vec![
            member("County Hospital", Role::Hospital, &hospital_a, 1),
            member("City Hospital", Role::Hospital, &hospital_b, 1),
            member("Township Clinic", Role::Clinic, &clinic, 1),
            member("Health Commission", Role::Regulator, &regulator, 0),
        ];
        let consortium = match Consortium::new(
            sha256(b"test chain"),
            GENESIS_MS,
            members,
            policy,
            Limits::default(),
        ) {
            Ok(consortium) => consortium,
            Err(e) => panic!("the test consortium is invalid: {e}"),
        };
        Self {
            consortium,
            hospital_a,
            hospital_b,
            clinic,
            regulator,
        }
    }

    pub fn chain_id(&self) -> Hash {
        self.consortium.chain_id
    }

    /// The validators' keys, in genesis order (their validator indices).
    pub fn validators(&self) -> [&Keypair; 3] {
        [&self.hospital_a, &self.hospital_b, &self.clinic]
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn members_are_the_seeded_keys_in_genesis_order() {
        let t = TestConsortium::new(Policy::default());
        let keys: Vec<_> = t.consortium.members.iter().map(|m| m.public_key).collect();
        let seeded: Vec<_> = (1..=4).map(|i| seeded_key(i).public_key()).collect();
        assert_eq!(keys, seeded);
        assert_eq!(t.consortium.validators().len(), 3);
        let outsider = outsider_key().public_key();
        assert!(t.consortium.member(&outsider).is_none());
        assert!(t.consortium.member(&patient_key(0).public_key()).is_none());
    }
}
