//! Simulated nodes: each drives one core the way `cradle-node` will (carry out effects in
//! order, persist before sending, gossip again what it signed, serve and apply certified blocks
//! for catch-up), and the loop that runs the whole cluster.

use std::collections::BTreeMap;

use ed25519_dalek::SigningKey;
use sha2::{Digest, Sha256};

use crate::core::{Core, Defects, Effect, Input, PersistedState};
use crate::proposal::{Message, Value};
use crate::types::{CommitCertificate, Height, Validator, ValidatorIndex, ValidatorSet};

use super::Report;
use super::byzantine::fan_out;
use super::checker::Checker;
use super::network::{EVENTS_MAX, EventKind, Network, Wire};
use super::rng::Rng;
use super::scenario::{Behaviour, Scenario};
use super::value::{SimValue, validate};

/// Least time between two catch-up replies to one peer.
const SYNC_INTERVAL_MS: u64 = 100;

struct Actor {
    validator: ValidatorIndex,
    key: SigningKey,
    behaviour: Option<Behaviour>,
    core: Option<Core<SimValue>>,
    /// The node's write-ahead state: survives crashes.
    persisted: Option<PersistedState<SimValue>>,
    /// The node's block store: survives crashes.
    blocks: BTreeMap<Height, (SimValue, CommitCertificate)>,
    epoch: u64,
    peers: Vec<usize>,
    last_sync_ms: Vec<u64>,
    /// When this node last decided a height or (re)started: its pacing counts from there.
    decided_at_ms: u64,
}

struct Sim<'a> {
    scenario: &'a Scenario,
    defects: Defects,
    chain_id: [u8; 32],
    /// The validator sets by first height: genesis at 1, then the scenario's changes.
    sets: Sets,
    actors: Vec<Actor>,
    net: Network,
    rng: Rng,
    checker: Checker,
    trace: Sha256,
    rejected: u64,
}

/// Runs a scenario, with deliberate core defects for checker tests (none for real runs).
pub fn run_with(scenario: &Scenario, defects: Defects) -> Report {
    let mut rng = Rng::new(scenario.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xC0DE);
    let n = scenario.powers.len();
    let keys: Vec<SigningKey> = (0..n)
        .map(|i| {
            let mut seed = [0u8; 32];
            seed[..8].copy_from_slice(&scenario.seed.to_le_bytes());
            seed[8..10].copy_from_slice(&(i as u16).to_le_bytes());
            SigningKey::from_bytes(&Sha256::digest(seed).into())
        })
        .collect();
    let set_of = |powers: &[u64]| {
        ValidatorSet::new(
            keys.iter()
                .zip(powers)
                .map(|(k, p)| Validator {
                    public_key: k.verifying_key().to_bytes(),
                    voting_power: *p,
                })
                .collect(),
        )
        .expect("the simulator builds a valid validator set")
    };
    let mut sets = vec![(1, set_of(&scenario.powers))];
    for (first, powers) in &scenario.set_changes {
        sets.push((*first, set_of(powers)));
    }
    let sets = Sets(sets);
    let chain_id: [u8; 32] = Sha256::digest(scenario.seed.to_le_bytes()).into();
    let honest = (0..n)
        .map(|i| scenario.behaviour(i as ValidatorIndex).is_none())
        .collect();

    let mut actors: Vec<Actor> = Vec::new();
    for (i, key) in keys.iter().enumerate() {
        let v = i as ValidatorIndex;
        actors.push(new_actor(v, key.clone(), scenario.behaviour(v)));
    }
    // The second instance of each double voter.
    for (v, b) in &scenario.byzantine {
        if *b == Behaviour::DoubleVoter {
            actors.push(new_actor(*v, keys[usize::from(*v)].clone(), Some(*b)));
        }
    }
    let count = actors.len();
    for (a, actor) in actors.iter_mut().enumerate() {
        let twin = a >= n;
        actor.peers = (0..count)
            .filter(|&p| p != a && (!twin || rng.chance(500)))
            .collect();
        actor.last_sync_ms = vec![0; count];
    }
    let net_rng = rng.fork();
    let sim = Sim {
        scenario,
        defects,
        chain_id,
        checker: Checker::new(chain_id, sets.clone(), honest),
        sets,
        actors,
        net: Network::new(scenario.net.clone(), count, scenario.gst_ms, net_rng),
        rng,
        trace: Sha256::new(),
        rejected: 0,
    };
    sim.run()
}

/// Validator sets by the first height each is in force at, in height order; genesis first.
#[derive(Clone)]
pub struct Sets(Vec<(Height, ValidatorSet)>);

impl Sets {
    /// The set in force at `height`.
    pub fn at(&self, height: Height) -> &ValidatorSet {
        let i = self.0.partition_point(|(first, _)| *first <= height.max(1));
        &self.0[i.saturating_sub(1)].1
    }

    /// The set that takes over at `height`, if one does.
    fn starting(&self, height: Height) -> Option<&ValidatorSet> {
        self.0
            .iter()
            .skip(1)
            .find(|(first, _)| *first == height)
            .map(|(_, s)| s)
    }
}

fn new_actor(validator: ValidatorIndex, key: SigningKey, behaviour: Option<Behaviour>) -> Actor {
    Actor {
        validator,
        key,
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

impl Sim<'_> {
    fn run(mut self) -> Report {
        for a in 0..self.actors.len() {
            self.boot(a);
        }
        for &(v, crash, restart) in &self.scenario.crashes {
            let actor = usize::from(v);
            self.net.schedule_at(crash, EventKind::Crash { actor });
            self.net.schedule_at(restart, EventKind::Restart { actor });
        }
        self.net
            .schedule_at(self.scenario.gst_ms, EventKind::Stabilised);
        let deadline = self.scenario.gst_ms + self.scenario.liveness_bound_ms;
        let honest: Vec<usize> = (0..self.scenario.powers.len())
            .filter(|&a| self.actors[a].behaviour.is_none())
            .collect();
        let mut targets: Option<Vec<(usize, Height, Height)>> = None;
        let mut events = 0u64;
        let mut liveness_ms = None;
        while let Some(event) = self.net.pop() {
            if event.time_ms > deadline || events >= EVENTS_MAX {
                break;
            }
            events += 1;
            self.trace.update(event.time_ms.to_le_bytes());
            self.trace.update(event.seq.to_le_bytes());
            if let EventKind::Stabilised = event.kind {
                targets = Some(
                    honest
                        .iter()
                        .map(|&a| {
                            let h = self.height_of(a);
                            (a, h, h + self.scenario.heights_after_gst)
                        })
                        .collect(),
                );
            } else {
                self.handle(event.kind);
            }
            if let Some(t) = &targets
                && t.iter().all(|&(a, _, want)| self.height_of(a) >= want)
            {
                liveness_ms = Some(self.net.now_ms.saturating_sub(self.scenario.gst_ms));
                break;
            }
        }
        let reached: Vec<_> = targets
            .unwrap_or_default()
            .iter()
            .map(|&(a, at_gst, want)| (self.actors[a].validator, at_gst, self.height_of(a), want))
            .collect();
        self.checker
            .liveness(&reached, self.scenario.liveness_bound_ms);
        let heights: Vec<Height> = honest.iter().map(|&a| self.height_of(a)).collect();
        let states = self
            .actors
            .iter()
            .map(|a| match &a.core {
                Some(c) => format!(
                    "v{} h{} r{} {:?} locked {:?} valid {:?}",
                    a.validator,
                    c.height(),
                    c.round(),
                    c.step(),
                    c.locked_round(),
                    c.valid_round()
                ),
                None => format!("v{} down", a.validator),
            })
            .collect();
        for h in &heights {
            self.trace.update(u64::to_le_bytes(*h));
        }
        Report {
            seed: self.scenario.seed,
            trace_hash: self.trace.finalize().into(),
            violations: self.checker.violations,
            heights,
            events,
            sim_time_ms: self.net.now_ms,
            evidence: self.checker.evidence_seen,
            rejected: self.rejected,
            liveness_ms,
            states,
        }
    }

    /// The height the node is working on (one above its last block).
    fn height_of(&self, a: usize) -> Height {
        let actor = &self.actors[a];
        match &actor.core {
            Some(core) => core.height(),
            None => actor.blocks.keys().next_back().map_or(1, |h| h + 1),
        }
    }

    /// Starts (or restarts) a node from its block store and persisted state.
    fn boot(&mut self, a: usize) {
        let actor = &mut self.actors[a];
        if actor.behaviour == Some(Behaviour::Silent) {
            return;
        }
        let height = actor.blocks.keys().next_back().map_or(1, |h| h + 1);
        let mut core = Core::new(
            self.scenario.config,
            self.sets.at(height).clone(),
            self.chain_id,
            Some(actor.key.clone()),
            height,
            actor.persisted.clone(),
        )
        .expect("a node restarts from its own persisted state");
        core.inject_defects(self.defects);
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

    fn handle(&mut self, kind: EventKind) {
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
    }

    fn broadcast(&mut self, a: usize, message: Message<SimValue>) {
        let actor = &self.actors[a];
        let behaviour = actor.behaviour;
        let out = fan_out(
            behaviour,
            &message,
            &actor.peers,
            &actor.key,
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
