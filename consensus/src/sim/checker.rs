//! The properties every run must keep, checked as the run goes and at its end.
//!
//! - agreement: no two honest validators decide different values at one height;
//! - validity: every decided value was proposed and passes the ledger's rules;
//! - certificates: every decision's commit certificate verifies for its height and value under
//!   the set in force at that height: more than two thirds of that set's power, signed by that
//!   set's keys;
//! - set membership: no decision's certificate counts a precommit signed with a key that is not
//!   in its height's set, such as the old key of a validator removed or rotated out before it;
//! - accountability: equivocation evidence verifies and never accuses an honest validator;
//! - recovery: an honest node restarts from whatever it persisted (also with a rotated key);
//! - liveness: after GST every honest validator decides K more heights within the bound.
//!
//! Determinism (one seed, one trace hash) is checked by running a seed twice.

use std::collections::BTreeMap;

use crate::evidence::Equivocation;
use crate::proposal::Value;
use crate::types::{CommitCertificate, Error, Height, ValidatorIndex, ValueId};

use super::sets::Sets;
use super::value::{SimValue, validate};

/// One broken property, with what was seen and what was wanted.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Violation {
    pub property: &'static str,
    pub seen: String,
    pub wanted: String,
}

impl std::fmt::Display for Violation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} violated: saw {}; wanted {}",
            self.property, self.seen, self.wanted
        )
    }
}

/// Collects what honest validators decide and checks it.
pub struct Checker {
    chain_id: [u8; 32],
    sets: Sets,
    honest: Vec<bool>,
    /// First honest decision per height: (validator, value id).
    decided: BTreeMap<Height, (ValidatorIndex, ValueId)>,
    /// Every value any validator proposed, by id.
    proposed: BTreeMap<ValueId, SimValue>,
    pub violations: Vec<Violation>,
    pub evidence_seen: u64,
    /// Precommits, in the first certificate decided at each height, from keys that a set
    /// change brought in: added validators and rotated keys. They show that those vote.
    pub new_key_precommits: u64,
}

/// Most violations kept per run: the first few say enough.
const VIOLATIONS_MAX: usize = 16;

impl Checker {
    pub fn new(chain_id: [u8; 32], sets: Sets, honest: Vec<bool>) -> Self {
        Self {
            chain_id,
            sets,
            honest,
            decided: BTreeMap::new(),
            proposed: BTreeMap::new(),
            violations: Vec::new(),
            evidence_seen: 0,
            new_key_precommits: 0,
        }
    }

    pub fn is_honest(&self, v: ValidatorIndex) -> bool {
        self.honest.get(usize::from(v)).copied().unwrap_or(false)
    }

    fn fail(&mut self, property: &'static str, seen: String, wanted: String) {
        if self.violations.len() < VIOLATIONS_MAX {
            self.violations.push(Violation {
                property,
                seen,
                wanted,
            });
        }
    }

    pub fn proposed(&mut self, value: &SimValue) {
        self.proposed.insert(value.id(), value.clone());
    }

    /// An honest validator decided (or applied from sync) `value` at `height`.
    pub fn decision(
        &mut self,
        validator: ValidatorIndex,
        height: Height,
        value: &SimValue,
        certificate: &CommitCertificate,
    ) {
        if !self.is_honest(validator) {
            return;
        }
        let id = value.id();
        if let Err(e) = certificate.verify_for(&self.chain_id, self.sets.at(height), height, id) {
            // A signature that a key of the height's set did not make, but another node key
            // did, is a vote counted under a set that was not in force: say whose key it was.
            match self.sets.stale_signer(&self.chain_id, certificate) {
                Some(stale) => self.fail(
                    "set membership",
                    format!("validator {validator} decided {id:?} at height {height} with a certificate in which {stale}"),
                    format!("precommits signed only by keys of the set in force at height {height}"),
                ),
                None => self.fail(
                    "certificate",
                    format!("validator {validator} decided {id:?} at height {height} with a certificate that fails: {e}"),
                    "a certificate that verifies".into(),
                ),
            }
        }
        if !self.proposed.contains_key(&id) || !validate(value, height) {
            self.fail(
                "validity",
                format!(
                    "validator {validator} decided {value:?} at height {height} (proposed: {})",
                    self.proposed.contains_key(&id)
                ),
                "a proposed value that passes validation".into(),
            );
        }
        match self.decided.get(&height) {
            None => {
                self.decided.insert(height, (validator, id));
                self.new_key_precommits += certificate
                    .signatures
                    .iter()
                    .filter(|sig| self.sets.is_new_key(height, sig.validator))
                    .count() as u64;
            }
            Some(&(first, first_id)) if first_id != id => self.fail(
                "agreement",
                format!(
                    "height {height}: validator {first} decided {first_id:?}, validator {validator} decided {id:?}"
                ),
                "one value per height".into(),
            ),
            Some(_) => {}
        }
    }

    /// An honest validator reported evidence.
    pub fn evidence(&mut self, reporter: ValidatorIndex, evidence: &Equivocation) {
        self.evidence_seen += 1;
        let height = evidence.slot().height;
        // Evidence names a place in the height's set; the checker knows nodes.
        let offender = self.sets.seat(height, evidence.offender()).map(|s| s.node);
        if let Err(e) = evidence.verify(&self.chain_id, self.sets.at(height)) {
            self.fail(
                "accountability",
                format!("validator {reporter} reported evidence that does not verify: {e}"),
                "verifiable evidence".into(),
            );
        } else if let Some(offender) = offender.filter(|&node| self.is_honest(node)) {
            self.fail(
                "accountability",
                format!("validator {reporter} holds evidence against honest validator {offender}: {evidence:?}"),
                "honest validators never equivocate, even across restarts".into(),
            );
        }
    }

    /// An honest node could not start again from its own persisted state (with the key it
    /// signs with at `height`).
    pub fn recovery_failed(&mut self, node: ValidatorIndex, height: Height, error: &Error) {
        if self.is_honest(node) {
            self.fail(
                "recovery",
                format!("node {node} could not restart at height {height} from its persisted state: {error}"),
                "a node restarts from whatever it persisted".into(),
            );
        }
    }

    /// After the run: every honest validator reached `want[v]` from `at_gst[v]`.
    pub fn liveness(
        &mut self,
        reached: &[(ValidatorIndex, Height, Height, Height)],
        bound_ms: u64,
    ) {
        for &(v, at_gst, now, want) in reached {
            if now < want {
                self.fail(
                    "liveness",
                    format!(
                        "validator {v} was at height {at_gst} at GST and reached only {now} within {bound_ms} ms"
                    ),
                    format!("height {want}"),
                );
            }
        }
    }
}
