//! A run's keys and validator sets: every node's keys (derived from the seed, one more per
//! rotation), the [`ValidatorSet`] in force at each height, and which node held each place.
//! The simulated nodes and the checker share one [`Sets`], so both judge a height by the same
//! set.

use ed25519_dalek::{Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};

use crate::types::{
    CommitCertificate, Height, Validator, ValidatorIndex, ValidatorSet, Vote, VoteKind,
};

use super::membership::{Change, Seat, genesis_seats};
use super::scenario::Scenario;

/// Key number `key` of `node` in the run of `seed`. Key 0 of a genesis node is the key that
/// node has always had in this seed's runs.
pub fn signing_key(seed: u64, node: ValidatorIndex, key: u8) -> SigningKey {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..10].copy_from_slice(&node.to_le_bytes());
    bytes[10] = key;
    SigningKey::from_bytes(&Sha256::digest(bytes).into())
}

/// Every node's signing keys, by node and then key number.
pub fn node_keys(scenario: &Scenario) -> Vec<Vec<SigningKey>> {
    (0..scenario.nodes())
        .map(|node| {
            let node = node as ValidatorIndex;
            let keys = scenario.key_at(node, Height::MAX);
            (0..=keys)
                .map(|key| signing_key(scenario.seed, node, key))
                .collect()
        })
        .collect()
}

/// One set and the heights it is in force from.
#[derive(Clone)]
struct Epoch {
    first: Height,
    set: ValidatorSet,
    seats: Vec<Seat>,
    /// The change that made it (none for genesis).
    change: Option<Change>,
}

/// Validator sets by the first height each is in force at, in height order; genesis first.
#[derive(Clone)]
pub struct Sets {
    epochs: Vec<Epoch>,
    /// Every key a node holds: `(node, key number, key)`.
    keys: Vec<(ValidatorIndex, u8, VerifyingKey)>,
}

impl Sets {
    /// The sets of `scenario`, with the nodes' `keys` (from [`node_keys`]).
    pub fn new(scenario: &Scenario, keys: &[Vec<SigningKey>]) -> Sets {
        let set_of = |seats: &[Seat]| {
            let validators = seats
                .iter()
                .map(|s| Validator {
                    public_key: keys
                        .get(usize::from(s.node))
                        .and_then(|k| k.get(usize::from(s.key)))
                        .expect("set changes name only the scenario's nodes and their keys")
                        .verifying_key()
                        .to_bytes(),
                    voting_power: s.power,
                })
                .collect();
            ValidatorSet::new(validators).expect("the simulator builds valid validator sets")
        };
        let genesis = genesis_seats(&scenario.powers);
        let mut epochs = vec![Epoch {
            first: 1,
            set: set_of(&genesis),
            seats: genesis,
            change: None,
        }];
        for c in &scenario.set_changes {
            epochs.push(Epoch {
                first: c.at,
                set: set_of(&c.seats),
                seats: c.seats.clone(),
                change: Some(c.change),
            });
        }
        let keys = keys
            .iter()
            .enumerate()
            .flat_map(|(node, ks)| {
                ks.iter()
                    .enumerate()
                    .map(move |(k, key)| (node as ValidatorIndex, k as u8, key.verifying_key()))
            })
            .collect();
        Sets { epochs, keys }
    }

    fn epoch(&self, height: Height) -> &Epoch {
        let i = self.epochs.partition_point(|e| e.first <= height.max(1));
        &self.epochs[i.saturating_sub(1)]
    }

    /// The set in force at `height`.
    pub fn at(&self, height: Height) -> &ValidatorSet {
        &self.epoch(height).set
    }

    /// The set that takes over at `height`, if one does.
    pub fn starting(&self, height: Height) -> Option<&ValidatorSet> {
        self.epochs
            .iter()
            .skip(1)
            .find(|e| e.first == height)
            .map(|e| &e.set)
    }

    /// Who holds place `index` at `height`.
    pub fn seat(&self, height: Height, index: ValidatorIndex) -> Option<Seat> {
        self.epoch(height).seats.get(usize::from(index)).copied()
    }

    /// Whether place `index` at `height` is held by a key that was not in the genesis set: an
    /// added validator's, or a rotated one.
    pub fn is_new_key(&self, height: Height, index: ValidatorIndex) -> bool {
        let genesis = &self.epochs[0].seats;
        self.seat(height, index)
            .is_some_and(|s| !genesis.iter().any(|g| (g.node, g.key) == (s.node, s.key)))
    }

    /// For a certificate that does not verify: the first precommit in it that is not signed
    /// by the key its place has at the certificate's height but by another key a node holds,
    /// said as which key and when it left (or joins) the set.
    pub fn stale_signer(
        &self,
        chain_id: &[u8; 32],
        certificate: &CommitCertificate,
    ) -> Option<String> {
        let height = certificate.height;
        let set = self.at(height);
        for sig in &certificate.signatures {
            let vote = Vote {
                kind: VoteKind::Precommit,
                height,
                round: certificate.round,
                value: Some(certificate.value),
                validator: sig.validator,
            };
            let bytes = vote.sign_bytes(chain_id);
            let signature = Signature::from_bytes(&sig.signature);
            let verifies = |key: &VerifyingKey| key.verify_strict(&bytes, &signature).is_ok();
            if set.verifying_key(sig.validator).is_some_and(verifies) {
                continue;
            }
            if let Some(&(node, key, _)) = self.keys.iter().find(|(_, _, k)| verifies(k)) {
                return Some(format!(
                    "the precommit at place {} is signed with node {node}'s key #{key}, {}",
                    sig.validator,
                    self.tenure(node, key, height)
                ));
            }
        }
        None
    }

    /// Why key `key` of `node` is not in the set at `height`.
    fn tenure(&self, node: ValidatorIndex, key: u8, height: Height) -> String {
        let holds = |e: &Epoch| e.seats.iter().any(|s| s.node == node && s.key == key);
        if let Some(first) = self.epochs.iter().find(|e| holds(e)).map(|e| e.first)
            && first > height
        {
            return format!("which joins the set only at height {first}");
        }
        let left = self
            .epochs
            .iter()
            .skip_while(|e| !holds(e))
            .find(|e| !holds(e) && e.first <= height);
        match left {
            Some(Epoch {
                first,
                change: Some(Change::Remove(_)),
                ..
            }) => format!("removed from the set at height {first}"),
            Some(Epoch {
                first,
                change: Some(Change::Rotate(_)),
                ..
            }) => format!("rotated out of the set at height {first}"),
            Some(e) => format!("out of the set from height {}", e.first),
            None => "a key of no set".into(),
        }
    }
}
