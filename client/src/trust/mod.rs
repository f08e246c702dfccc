//! Which member keys the client believes now: the member sets from genesis on, each change
//! proven by a certified header, and never a node's word about them.
//!
//! Genesis pins each member by the key it had then. A vote can rotate or remove that key, and
//! whoever still holds the old one (a thief of the old server's key, answering at the member's
//! address) must be refused. The node being checked cannot be the one to say so: it can refuse
//! to show the sets, or replay a genuinely certified answer from before the rotation. So:
//!
//! - the newest sets the client verified are kept per chain ([`store`]), a cache of proofs that
//!   is verified from genesis again whenever it is read: what the client believes never goes
//!   backwards, and the next connection is pinned by the newest keys it knows;
//! - another member's node, pinned by those keys, is asked when the node refuses the sets,
//!   serves fewer than the client already verified, presents a key the newest sets do not pin,
//!   or when no other member's node confirmed the sets within [`TrustConfig::max_age_ms`]:
//!   a rotation is learnt within that window, and no request is added otherwise;
//! - the node's TLS key must sign for a member in the newest sets before anything else is sent.
//!
//! Without a key the client cannot ask for the sets at all (nodes show them to keys they
//! know): an anonymous call is checked against the sets this machine verified before.

mod connect;
pub mod store;

use std::path::PathBuf;

use cradle_ledger::governance::{SetChange, Sets};
use cradle_ledger::{Consortium, PublicKey};

use crate::api::ApiError;

pub use connect::{Checked, check, connect, pins_for};
pub use store::Store;

/// Why the client does not believe a node, or cannot tell.
#[derive(Debug, thiserror::Error)]
pub enum TrustError {
    #[error(transparent)]
    Api(#[from] ApiError),
    #[error("genesis: {0}")]
    Genesis(String),
    #[error("{0}")]
    Config(String),
    /// Member set changes that do not verify from genesis.
    #[error("the member set changes {from} served do not verify from genesis: {reason}")]
    Unproven { from: String, reason: String },
    /// Two different certified sets for one epoch: more than a third of the voting power
    /// signed both, which the chain's safety rules out.
    #[error(
        "two different certified member sets for epoch {epoch}: the consortium's history \
         forked, or a proof is forged; stop and ask the consortium"
    )]
    Conflict { epoch: u64 },
    /// The node's key signs for no member in the newest sets the client verified.
    #[error(
        "the node proves key {key} ({what}), which signs for no member now (member set of \
         epoch {epoch}): it was rotated out or removed, so whoever answers is not the member"
    )]
    NotAMember {
        key: PublicKey,
        what: String,
        epoch: u64,
    },
    /// The client could not learn whether its sets are the newest.
    #[error("{0}")]
    Unconfirmed(String),
    /// The trusted-state file could not be read or does not verify.
    #[error(
        "the trusted-state file {}: {reason}; it is only a cache of proofs: remove it and \
         the client learns the member sets again from genesis and the members' nodes",
        path.display()
    )]
    StateFile { path: PathBuf, reason: String },
}

/// How much the client trusts what it verified before.
#[derive(Clone, Debug)]
pub struct TrustConfig {
    /// Where the verified sets are kept between runs; `None` keeps them nowhere, so each run
    /// starts from genesis and asks another member's node.
    pub state_dir: Option<PathBuf>,
    /// How long sets another member's node confirmed are taken as the newest: a key rotated
    /// by a vote is refused at most this long after the vote at the latest.
    pub max_age_ms: u64,
}

/// The environment variable that sets [`TrustConfig::max_age_ms`], in seconds.
pub const MAX_AGE_ENV: &str = "CRADLE_SETS_MAX_AGE";
/// [`TrustConfig::max_age_ms`] unless set: one hour.
pub const MAX_AGE_MS_DEFAULT: u64 = 3_600_000;
/// How far in the future a stored confirmation may lie (clocks differ) and still count.
const CLOCK_SKEW_MS: u64 = 300_000;

impl TrustConfig {
    /// `$XDG_STATE_HOME/cradle` (or `~/.local/state/cradle`), and [`MAX_AGE_ENV`] seconds or
    /// one hour.
    pub fn from_env() -> Result<Self, TrustError> {
        let max_age_ms = match std::env::var(MAX_AGE_ENV) {
            Ok(v) => v
                .trim()
                .parse::<u64>()
                .map_err(|_| {
                    TrustError::Config(format!(
                        "{MAX_AGE_ENV}={v:?}: expected a whole number of seconds"
                    ))
                })?
                .saturating_mul(1000),
            Err(_) => MAX_AGE_MS_DEFAULT,
        };
        Ok(Self {
            state_dir: default_state_dir(),
            max_age_ms,
        })
    }
}

/// `$XDG_STATE_HOME/cradle`, or `$HOME/.local/state/cradle`.
pub fn default_state_dir() -> Option<PathBuf> {
    let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
    std::env::var_os("XDG_STATE_HOME")
        .and_then(absolute)
        .or_else(|| {
            std::env::var_os("HOME")
                .and_then(absolute)
                .map(|h| h.join(".local").join("state"))
        })
        .map(|d| d.join("cradle"))
}

/// Member sets verified from genesis, with the proofs they were verified from.
#[derive(Clone, Debug)]
pub struct Verified {
    changes: Vec<SetChange>,
    sets: Sets,
}

impl Verified {
    /// Genesis alone.
    pub fn genesis(genesis: Consortium) -> Self {
        Self {
            changes: Vec::new(),
            sets: Sets::new(genesis),
        }
    }

    /// `changes` followed from `genesis`, each checked against its certified header.
    pub fn verify(
        genesis: Consortium,
        changes: Vec<SetChange>,
    ) -> Result<Self, cradle_ledger::Error> {
        let sets = Sets::following(genesis, &changes)?;
        // Each change is the next epoch (Sets::follow checks it): the epoch counts them.
        assert_eq!(sets.latest().epoch, changes.len() as u64);
        Ok(Self { changes, sets })
    }

    /// How many changes since genesis: the newest set's epoch.
    pub fn epoch(&self) -> u64 {
        self.sets.latest().epoch
    }

    pub fn sets(&self) -> &Sets {
        &self.sets
    }

    pub fn latest(&self) -> &Consortium {
        self.sets.latest()
    }

    pub fn changes(&self) -> &[SetChange] {
        &self.changes
    }

    pub fn into_sets(self) -> Sets {
        self.sets
    }

    /// The newer of the two, once the older is found to be how the newer starts.
    pub fn newest(self, other: Self) -> Result<Self, TrustError> {
        let (old, new) = if other.epoch() > self.epoch() {
            (self, other)
        } else {
            (other, self)
        };
        for (a, b) in old.changes.iter().zip(&new.changes) {
            if a.set.hash() != b.set.hash() {
                return Err(TrustError::Conflict { epoch: a.set.epoch });
            }
        }
        Ok(new)
    }

    /// Every key that signed for a member in some set and does not now, with whose it was
    /// and up to which epoch.
    pub fn former_keys(&self) -> Vec<(PublicKey, String)> {
        let genesis = self.sets.at(1);
        let mut last: Vec<(PublicKey, String, u64)> = Vec::new();
        let sets = std::iter::once((0, &genesis.members))
            .chain(self.changes.iter().map(|c| (c.set.epoch, &c.set.members)));
        for (epoch, members) in sets {
            for m in members {
                let key = m.signing_key();
                match last.iter_mut().find(|(k, _, _)| *k == key) {
                    Some(entry) => *entry = (key, m.name.clone(), epoch),
                    None => last.push((key, m.name.clone(), epoch)),
                }
            }
        }
        let latest = self.latest();
        last.into_iter()
            .filter(|(k, _, _)| latest.signer(k).is_none())
            .map(|(k, name, epoch)| {
                (
                    k,
                    format!("{name}'s key in the member sets up to epoch {epoch}"),
                )
            })
            .collect()
    }

    /// Whether `key` signed for a member in some set, the newest or an earlier one.
    pub fn ever_signed(&self, key: &PublicKey) -> bool {
        self.latest().signer(key).is_some() || self.former_keys().iter().any(|(k, _)| k == key)
    }

    /// Refuses `key` unless it signs for a member in the newest set.
    pub fn check_key(&self, key: &PublicKey) -> Result<(), TrustError> {
        if self.latest().signer(key).is_some() {
            return Ok(());
        }
        let what = self
            .former_keys()
            .into_iter()
            .find(|(k, _)| k == key)
            .map_or_else(|| "no member's key".to_string(), |(_, what)| what);
        Err(TrustError::NotAMember {
            key: *key,
            what,
            epoch: self.epoch(),
        })
    }
}

/// When another member's node last said the client's sets were the newest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Confirmation {
    pub at_ms: u64,
    /// The member whose node said so.
    pub by: String,
}

/// What the client verified, and when it was last confirmed by a node it was not checking.
#[derive(Clone, Debug)]
pub struct Known {
    pub verified: Verified,
    pub confirmed: Option<Confirmation>,
}

impl Known {
    pub fn genesis(genesis: Consortium) -> Self {
        Self {
            verified: Verified::genesis(genesis),
            confirmed: None,
        }
    }

    /// Whether another member's node confirmed these sets within `max_age_ms` of `now_ms`.
    pub fn fresh(&self, now_ms: u64, max_age_ms: u64) -> bool {
        self.age_ms(now_ms).is_some_and(|age| age <= max_age_ms)
    }

    /// How long ago the sets were confirmed; `None` if never, or at a time too far ahead.
    fn age_ms(&self, now_ms: u64) -> Option<u64> {
        let at = self.confirmed.as_ref()?.at_ms;
        if at > now_ms.saturating_add(CLOCK_SKEW_MS) {
            return None;
        }
        Some(now_ms.saturating_sub(at))
    }
}

/// What the node being checked said about the sets.
#[derive(Debug)]
pub enum NodeAnswer {
    /// Its sets, verified from genesis.
    Served(Verified),
    /// It refused to show them (401 or 403): to a key it does not know, an honest node does.
    Refused,
    /// Its TLS key is none the newest known sets give it.
    NotPinned,
    /// Not asked: without a key to sign with, no node shows the sets.
    NotAsked,
}

/// What the other members' nodes said.
#[derive(Debug)]
pub enum Others {
    /// One of them served these sets (verified), and its own key signs for a member in them.
    Served { verified: Verified, by: String },
    /// Those that answered refused the client's key: the chain does not know it.
    Refused,
    /// None answered; the last error.
    Unreachable(String),
    /// There is no other member's node to ask (a one-node consortium).
    NoneToAsk,
}

/// Why the client asks another member's node.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Ask {
    Refused,
    NotPinned,
    Behind { node: u64, known: u64 },
    Unconfirmed,
    Stale { age_ms: u64 },
}

/// Whether to ask another member's node, and why: never on the common path (the node served
/// sets at least as new as the client's, confirmed by another member within `max_age_ms`).
pub fn reason_to_ask(
    known: &Known,
    node: &NodeAnswer,
    now_ms: u64,
    max_age_ms: u64,
) -> Option<Ask> {
    match node {
        NodeAnswer::NotAsked => return None,
        NodeAnswer::Refused => return Some(Ask::Refused),
        NodeAnswer::NotPinned => return Some(Ask::NotPinned),
        NodeAnswer::Served(v) if v.epoch() < known.verified.epoch() => {
            return Some(Ask::Behind {
                node: v.epoch(),
                known: known.verified.epoch(),
            });
        }
        NodeAnswer::Served(_) => {}
    }
    match known.age_ms(now_ms) {
        None => Some(Ask::Unconfirmed),
        Some(age_ms) if age_ms > max_age_ms => Some(Ask::Stale { age_ms }),
        Some(_) => None,
    }
}

/// What the client believes after hearing the node and, when there is reason to, the other
/// members' nodes (`others` is called at most once, with the newest sets known then).
pub fn settle(
    known: Known,
    node: NodeAnswer,
    others: impl FnOnce(&Verified) -> Others,
    now_ms: u64,
    max_age_ms: u64,
) -> Result<Known, TrustError> {
    let ask = reason_to_ask(&known, &node, now_ms, max_age_ms);
    let mut known = known;
    if let NodeAnswer::Served(v) = node {
        known.verified = known.verified.newest(v)?;
    }
    let Some(ask) = ask else {
        return Ok(known);
    };
    match others(&known.verified) {
        Others::Served { verified, by } => {
            known.verified = known.verified.newest(verified)?;
            known.confirmed = Some(Confirmation { at_ms: now_ms, by });
        }
        // Nobody else to ask: what this machine verified and the node's proofs are all there is.
        Others::NoneToAsk => {}
        Others::Refused if ask == Ask::NotPinned => {
            return Err(TrustError::Unconfirmed(
                "the node proves a key the member sets this client verified do not give it, \
                 and no other member's node shows newer sets to this key"
                    .into(),
            ));
        }
        // The chain does not know this key: no member shows it the sets, and the node's
        // refusal is what an honest node does. It is checked against what this machine knows.
        Others::Refused => {}
        Others::Unreachable(_)
            if matches!(ask, Ask::Behind { .. }) && known.fresh(now_ms, max_age_ms) => {}
        Others::Unreachable(last) => {
            return Err(TrustError::Unconfirmed(unconfirmed(
                ask, &known, &last, now_ms, max_age_ms,
            )));
        }
    }
    Ok(known)
}

fn unconfirmed(ask: Ask, known: &Known, last: &str, now_ms: u64, max_age_ms: u64) -> String {
    let why = match ask {
        Ask::Refused => "the node refused to show the member sets".to_string(),
        Ask::NotPinned => {
            "the node proves a key the member sets this client verified do not give it".to_string()
        }
        Ask::Behind { node, known } => format!(
            "the node shows member sets up to epoch {node}, older than the epoch {known} this \
             client verified"
        ),
        Ask::Unconfirmed | Ask::Stale { .. } => match (&known.confirmed, known.age_ms(now_ms)) {
            (Some(c), Some(age)) => format!(
                "the member sets this client verified were last confirmed by {}'s node {} s ago \
                 (more than the {} s allowed: --sets-max-age)",
                c.by,
                age / 1000,
                max_age_ms / 1000
            ),
            _ => "no other member's node has confirmed the member sets this client verified"
                .to_string(),
        },
    };
    format!(
        "{why}, and no other member's node answers ({last}): cannot tell whether a vote \
         rotated the node's key out"
    )
}

#[cfg(test)]
mod tests;
