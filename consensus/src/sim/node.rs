//! Simulated nodes: each drives one core the way `cradle-node` will (carry out effects in
//! order, persist before sending, gossip again what it signed, serve and apply certified blocks
//! for catch-up, hand over each validator set two heights ahead) and, as a node restarted with
//! its new key would, signs with a rotated key from the height the rotation takes effect.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::core::{Core, Defects, Effect, Input, PersistedState};
use crate::proposal::{Message, Value};
use crate::types::{CommitCertificate, Height, ValidatorIndex};

use super::byzantine::fan_out;
use super::checker::Checker;
use super::network::{EventKind, Network, Wire};
use super::rng::Rng;
use super::scenario::{Behaviour, Scenario};
use super::sets::Sets;
use super::value::{SimValue, validate};

/// Least time between two catch-up replies to one peer.
const SYNC_INTERVAL_MS: u64 = 100;

pub(super) struct Actor {
    /// The simulated node: the twin of a double voter shares its node's number and keys.
    pub validator: ValidatorIndex,
    /// The node's keys, by number: the first, then one more per rotation.
    keys: Vec<SigningKey>,
    /// The number of the key its core signs with.
    key: u8,
    pub behaviour: Option<Behaviour>,
    pub core: Option<Core<SimValue>>,
    /// The node's write-ahead state: survives crashes.
    persisted: Option<PersistedState<SimValue>>,
    /// The node's block store: survives crashes.
    blocks: BTreeMap<Height, (SimValue, CommitCertificate)>,
    epoch: u64,
    pub peers: Vec<usize>,
    pub last_sync_ms: Vec<u64>,
    /// When this node last decided a height or (re)started: its pacing counts from there.
    decided_at_ms: u64,
}

impl Actor {
    pub fn new(
        validator: ValidatorIndex,
        keys: Vec<SigningKey>,
        behaviour: Option<Behaviour>,
    ) -> Actor {
        Actor {
            validator,
            keys,
            key: 0,
            behaviour,
            core: None,
            persisted: None,
            blocks: BTreeMap::new(),
            epoch: 0,
            peers: Vec::new(),
            last_sync_ms: Vec::new(),
            decided_at_ms: 0,
        }
    }

    fn signing_key(&self) -> &SigningKey {
        &self.keys[usize::from(self.key)]
    }
}

pub(super) struct Sim<'a> {
    pub scenario: &'a Scenario,
    pub defects: Defects,
    pub chain_id: [u8; 32],
    /// The validator sets by first height: genesis at 1, then the scenario's changes.
    pub sets: Sets,
    pub actors: Vec<Actor>,
    pub net: Network,
    pub rng: Rng,
    pub checker: Checker,
    pub trace: Sha256,
    pub rejected: u64,
}

impl Sim<'_> {
    /// The height the node is working on (one above its last block).
    pub(super) fn height_of(&self, a: usize) -> Height {
        let actor = &self.actors[a];
        match &actor.core {
            Some(core) => core.height(),
            None => actor.blocks.keys().next_back().map_or(1, |h| h + 1),
        }
    }

    /// Starts (or restarts) a node from its block store and persisted state, with the key it
    /// signs with at its height.
    pub(super) fn boot(&mut self, a: usize) {
        let actor = &mut self.actors[a];
        if actor.behaviour == Some(Behaviour::Silent) {
            return;
        }
        let height = actor.blocks.keys().next_back().map_or(1, |h| h + 1);
        let mut defects = self.defects;
        if self.scenario.refuses_to_leave(actor.validator) {
            defects.ignore_set_changes = true;
        } else {
            actor.key = self.scenario.key_at(actor.validator, height);
        }
        let core = Core::new(
            self.scenario.config,
            self.sets.at(height).clone(),
            self.chain_id,
            Some(actor.signing_key().clone()),
            height,
            actor.persisted.clone(),
        );
        let mut core = match core {
            Ok(core) => core,
            Err(e) => {
                // The node stays down: it cannot vouch for what it signed before.
                self.checker.recovery_failed(actor.validator, height, &e);
                return;
            }
        };
        core.inject_defects(defects);
        // Its last block fixed the set of the next height.
        if let Some(set) = self.sets.starting(height + 1) {
            core.set_validators_from(height + 1, set.clone())
                .expect("a later height");
        }
        actor.core = Some(core);
        actor.decided_at_ms = self.net.now_ms;
        actor.epoch += 1;
        let epoch = actor.epoch;
        let first_gossip = self.scenario.gossip_interval_ms + self.rng.below(50);
        self.net
            .schedule(first_gossip, EventKind::Gossip { actor: a, epoch });
        self.input(a, Input::Start);
    }

    pub(super) fn handle(&mut self, kind: EventKind) {
        match kind {
            EventKind::Deliver { to, from, wire } => {
                self.trace.update([1, to as u8, from as u8]);
                self.deliver(to, from, wire);
            }
            EventKind::Timeout {
                actor,
                epoch,
                height,
                round,
                step,
            } if self.live(actor, epoch) => {
                self.trace.update([2, actor as u8, step as u8]);
                self.input(
                    actor,
                    Input::TimeoutElapsed {
                        height,
                        round,
                        step,
                    },
                );
            }
            EventKind::Validated {
                actor,
                epoch,
                height,
                id,
                valid,
            } if self.live(actor, epoch) => {
                self.input(actor, Input::ValueValidated { height, id, valid });
            }
            EventKind::ProposeReady {
                actor,
                epoch,
                height,
                round,
            } if self.live(actor, epoch) => {
                let value = SimValue {
                    height,
                    round,
                    proposer: self.actors[actor].validator,
                    nonce: self.rng.next_u64(),
                    acceptable: true,
                };
                self.input(
                    actor,
                    Input::ProposeValue {
                        height,
                        round,
                        value,
                    },
                );
            }
            EventKind::Gossip { actor, epoch } if self.live(actor, epoch) => {
                let messages = self.actors[actor]
                    .core
                    .as_ref()
                    .map(|c| c.own_messages())
                    .unwrap_or_default();
                for m in messages {
                    self.broadcast(actor, m);
                }
                self.ask_to_catch_up(actor);
                let interval = self.scenario.gossip_interval_ms;
                self.net
                    .schedule(interval, EventKind::Gossip { actor, epoch });
            }
            EventKind::Crash { actor } => {
                self.trace.update([3, actor as u8]);
                let a = &mut self.actors[actor];
                a.core = None;
                a.epoch += 1;
            }
            EventKind::Restart { actor } => {
                self.trace.update([4, actor as u8]);
                if self.actors[actor].core.is_none() {
                    self.boot(actor);
                }
            }
            _ => {}
        }
    }

    fn live(&self, a: usize, epoch: u64) -> bool {
        let actor = &self.actors[a];
        actor.core.is_some() && actor.epoch == epoch
    }

    fn deliver(&mut self, to: usize, from: usize, wire: Wire) {
        let Some(core) = &self.actors[to].core else {
            return;
        };
        let height = core.height();
        match wire {
            Wire::Consensus(message) => {
                let h = message.height();
                if h < height {
                    self.serve_block(to, from, h);
                }
                let input = match message {
                    Message::Proposal(p) => Input::Proposal(p),
                    Message::Vote(v) => Input::Vote(v),
                };
                self.input(to, input);
            }
            Wire::Status { height: h } => {
                if h < height {
                    self.serve_block(to, from, h);
                }
            }
            Wire::Block {
                height: h,
                value,
                certificate,
            } => {
                // The node's sync: check the block and its certificate, apply it, then tell the
                // core (which checks the certificate once more).
                let ok = h == height
                    && validate(&value, h)
                    && certificate
                        .verify_for(&self.chain_id, self.sets.at(h), h, value.id())
                        .is_ok();
                if ok {
                    self.committed(to, h, value, certificate.clone());
                    self.input(to, Input::Committed { certificate });
                }
            }
        }
    }

    /// An observer signs nothing, so no peer would see from its messages that it is behind:
    /// it tells its peers its height instead, as a real node's sync does.
    fn ask_to_catch_up(&mut self, a: usize) {
        let Some(core) = &self.actors[a].core else {
            return;
        };
        if core.validator_index().is_some() {
            return;
        }
        let height = core.height();
        for p in self.actors[a].peers.clone() {
            self.net.send(a, p, Wire::Status { height });
        }
    }

    /// Replies to a peer that is behind with the block it is missing, at most once per interval.
    fn serve_block(&mut self, me: usize, peer: usize, height: Height) {
        let now = self.net.now_ms;
        let actor = &mut self.actors[me];
        if now < actor.last_sync_ms[peer] + SYNC_INTERVAL_MS && actor.last_sync_ms[peer] != 0 {
            return;
        }
        if let Some((value, certificate)) = actor.blocks.get(&height) {
            actor.last_sync_ms[peer] = now;
            let wire = Wire::Block {
                height,
                value: value.clone(),
                certificate: certificate.clone(),
            };
            self.net.send(me, peer, wire);
        }
    }

    fn committed(&mut self, a: usize, height: Height, value: SimValue, cert: CommitCertificate) {
        self.trace.update(height.to_le_bytes());
        self.trace.update(value.id().0);
        let actor = &mut self.actors[a];
        // Only a node's first life counts for the checker; the twin of a double voter is
        // Byzantine anyway.
        self.checker
            .decision(actor.validator, height, &value, &cert);
        actor.blocks.insert(height, (value, cert));
        actor.decided_at_ms = self.net.now_ms;
        // The block fixes the set of the height after next, as a governance change does.
        if let (Some(core), Some(set)) = (actor.core.as_mut(), self.sets.starting(height + 2)) {
            core.set_validators_from(height + 2, set.clone())
                .expect("two heights on is ahead of the core");
        }
    }

    /// How long a proposer waits before it builds its block, under the scenario's pacing, with
    /// transactions that arrive at random: none before the heartbeat, some already pending, or
    /// a first one at a random moment of the heartbeat.
    fn pacing_delay(&mut self, a: usize) -> u64 {
        let pacing = self.scenario.pacing;
        let since = self.net.now_ms.saturating_sub(self.actors[a].decided_at_ms);
        let idle = pacing.wait_ms(since, None);
        match self.rng.below(3) {
            0 => idle,
            1 => {
                let waited = self.rng.below(2 * pacing.batch_window_ms + 1);
                pacing.wait_ms(since, Some(waited))
            }
            _ => {
                let arrival = self.rng.below(pacing.heartbeat_ms + 1);
                let then = pacing.wait_ms(since.saturating_add(arrival), Some(0));
                idle.min(arrival.saturating_add(then))
            }
        }
    }

    /// Feeds one input to a node's core and carries out the effects, in order.
    fn input(&mut self, a: usize, input: Input<SimValue>) {
        let Some(core) = self.actors[a].core.as_mut() else {
            return;
        };
        let effects = match core.handle(input) {
            Ok(effects) => effects,
            Err(_) => {
                self.rejected += 1;
                return;
            }
        };
        let epoch = self.actors[a].epoch;
        for effect in effects {
            match effect {
                Effect::PersistAndBroadcastVote { state, vote } => {
                    self.actors[a].persisted = Some(*state);
                    self.broadcast(a, Message::Vote(vote));
                }
                Effect::PersistAndBroadcastProposal { state, proposal } => {
                    self.actors[a].persisted = Some(*state);
                    self.checker.proposed(&proposal.value);
                    self.broadcast(a, Message::Proposal(proposal));
                }
                Effect::Broadcast(m) => self.broadcast(a, m),
                Effect::ScheduleTimeout {
                    height,
                    round,
                    step,
                    duration_ms,
                } => self.net.schedule(
                    duration_ms,
                    EventKind::Timeout {
                        actor: a,
                        epoch,
                        height,
                        round,
                        step,
                    },
                ),
                Effect::RequestValue { height, round } => {
                    let delay = self.pacing_delay(a) + self.net.local_delay();
                    self.net.schedule(
                        delay,
                        EventKind::ProposeReady {
                            actor: a,
                            epoch,
                            height,
                            round,
                        },
                    );
                }
                Effect::ValidateValue { height, value, .. } => {
                    let delay = self.net.local_delay();
                    let valid = validate(&value, height);
                    let id = value.id();
                    self.net.schedule(
                        delay,
                        EventKind::Validated {
                            actor: a,
                            epoch,
                            height,
                            id,
                            valid,
                        },
                    );
                }
                Effect::Decide {
                    height,
                    value,
                    certificate,
                    ..
                } => self.committed(a, height, value, certificate),
                Effect::Evidence(evidence) => {
                    let v = self.actors[a].validator;
                    if self.checker.is_honest(v) {
                        self.checker.evidence(v, &evidence);
                    }
                }
            }
        }
        if self.key_rotated(a) {
            // The node restarts with its new key at the height where the rotation takes
            // effect: it signed nothing there with the old one, which that height's set lacks.
            self.trace.update([5, a as u8]);
            self.actors[a].core = None;
            self.boot(a);
        }
    }

    /// Whether an honest node's core has reached a height at which it signs with another key.
    /// (A Byzantine node whose key is rotated refuses to change it.)
    fn key_rotated(&self, a: usize) -> bool {
        let actor = &self.actors[a];
        actor.behaviour.is_none()
            && actor
                .core
                .as_ref()
                .is_some_and(|c| self.scenario.key_at(actor.validator, c.height()) != actor.key)
    }

    fn broadcast(&mut self, a: usize, message: Message<SimValue>) {
        let actor = &self.actors[a];
        let behaviour = actor.behaviour;
        let out = fan_out(
            behaviour,
            &message,
            &actor.peers,
            actor.signing_key(),
            &self.chain_id,
            self.sets.at(1).len(),
            &mut self.rng,
        );
        for (peer, m) in out {
            if behaviour.is_some()
                && let Message::Proposal(p) = &m
            {
                self.checker.proposed(&p.value);
            }
            self.net.send(a, peer, Wire::Consensus(m));
        }
    }
}
