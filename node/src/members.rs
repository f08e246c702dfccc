//! The consortium in force at each height, as governance changes it.
//!
//! Genesis gives the first set; every set adopted since is in the state, by epoch, with the
//! height it takes effect at ([`cradle_ledger::governance::history`]). [`Members`] holds them
//! all, so a vote, a certificate or an evidence record is judged by the set of its own height,
//! and the API, the custodian and the network read the set in force at the next block. The
//! driver tells it of each committed block; nothing else changes it.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use cradle_ledger::state::StateReader;
use cradle_ledger::{Consortium, Error, governance};

/// Most adopted sets a node loads at start: one change a day for 27 years.
const SETS_MAX: usize = 10_000;

pub struct Members {
    genesis: Arc<Consortium>,
    inner: RwLock<Inner>,
}

struct Inner {
    /// Each set by the first height it is in force at; genesis at height 1.
    sets: BTreeMap<u64, Arc<Consortium>>,
    /// The height of the next block: [`Members::current`] is the set in force there.
    next_height: u64,
}

impl Members {
    /// The sets of `genesis` and every change the state holds, the chain's tip at `tip`.
    pub fn load<S: StateReader + ?Sized>(
        genesis: Consortium,
        state: &S,
        tip: u64,
    ) -> Result<Self, Error> {
        let genesis = Arc::new(genesis);
        let mut sets = BTreeMap::from([(1, genesis.clone())]);
        for (activation, set) in governance::history(state, SETS_MAX)? {
            sets.insert(activation, Arc::new(genesis.with_set(set)?));
        }
        Ok(Self {
            genesis,
            inner: RwLock::new(Inner {
                sets,
                next_height: tip.saturating_add(1),
            }),
        })
    }

    /// Only the genesis set: for tools and tests that never change it.
    pub fn fixed(genesis: Consortium) -> Self {
        let genesis = Arc::new(genesis);
        Self {
            inner: RwLock::new(Inner {
                sets: BTreeMap::from([(1, genesis.clone())]),
                next_height: 1,
            }),
            genesis,
        }
    }

    pub fn genesis(&self) -> &Arc<Consortium> {
        &self.genesis
    }

    /// The set in force at the next block.
    pub fn current(&self) -> Arc<Consortium> {
        let inner = self.read();
        inner
            .at(inner.next_height)
            .unwrap_or_else(|| self.genesis.clone())
    }

    /// The set in force at `height`.
    pub fn at(&self, height: u64) -> Arc<Consortium> {
        self.read()
            .at(height)
            .unwrap_or_else(|| self.genesis.clone())
    }

    /// After block `height` committed, its state in `state`: takes up a set it adopted and
    /// moves on. Returns the adopted set and its first height, if the block adopted one.
    pub fn committed<S: StateReader + ?Sized>(
        &self,
        height: u64,
        state: &S,
    ) -> Result<Option<(u64, Arc<Consortium>)>, Error> {
        let adopted = match governance::membership(state)? {
            Some(governance::Membership {
                scheduled: Some((activation, set)),
                ..
            }) if !self.read().sets.contains_key(&activation) => {
                Some((activation, Arc::new(self.genesis.with_set(set)?)))
            }
            _ => None,
        };
        let mut inner = self.inner.write().unwrap_or_else(|e| e.into_inner());
        if let Some((activation, c)) = &adopted {
            inner.sets.insert(*activation, c.clone());
        }
        inner.next_height = height.saturating_add(1);
        Ok(adopted)
    }

    fn read(&self) -> std::sync::RwLockReadGuard<'_, Inner> {
        self.inner.read().unwrap_or_else(|e| e.into_inner())
    }
}

/// The network peers of `c` for the node of `me`: every other member, by the key that signs
/// for it now (its node's PeerId), at its p2p address if it has one that parses.
pub fn peers_of(c: &Consortium, me: &cradle_ledger::PublicKey) -> Vec<crate::network::Peer> {
    c.members
        .iter()
        .filter(|m| &m.signing_key() != me)
        .map(|m| crate::network::Peer {
            public_key: m.signing_key(),
            addr: m
                .p2p_addr
                .as_deref()
                .and_then(|a| crate::network::parse_addr(a).ok()),
        })
        .collect()
}

impl Inner {
    /// The set whose first height is the latest at or below `height` (height 0, before the
    /// first block, is genesis's too).
    fn at(&self, height: u64) -> Option<Arc<Consortium>> {
        self.sets
            .range(..=height.max(1))
            .next_back()
            .map(|(_, c)| c.clone())
    }
}
