//! The loop that runs a whole simulated cluster: it builds a scenario's nodes (the genesis
//! validators, the second instance of each double voter, and the joiners that follow as
//! observers until they are added), runs events until every honest node has decided its K
//! heights after GST or the deadline passes, and reports what the checker found.

use sha2::{Digest, Sha256};

use crate::core::Defects;
use crate::types::{Height, ValidatorIndex};

use super::Report;
use super::checker::Checker;
use super::network::{EVENTS_MAX, EventKind, Network};
use super::node::{Actor, Sim};
use super::rng::Rng;
use super::scenario::{Behaviour, Scenario};
use super::sets::{Sets, node_keys};

/// Runs a scenario, with deliberate core defects for checker tests (none for real runs).
pub fn run_with(scenario: &Scenario, defects: Defects) -> Report {
    let mut rng = Rng::new(scenario.seed.wrapping_mul(0x2545_F491_4F6C_DD1D) ^ 0xC0DE);
    let n = scenario.powers.len();
    let keys = node_keys(scenario);
    let sets = Sets::new(scenario, &keys);
    let chain_id: [u8; 32] = Sha256::digest(scenario.seed.to_le_bytes()).into();
    let honest = (0..scenario.nodes())
        .map(|v| scenario.behaviour(v as ValidatorIndex).is_none())
        .collect();

    let mut actors: Vec<Actor> = Vec::new();
    for (v, node_keys) in keys.iter().enumerate().take(n) {
        let v = v as ValidatorIndex;
        actors.push(Actor::new(v, node_keys.clone(), scenario.behaviour(v)));
    }
    // The second instance of each double voter.
    for (v, b) in &scenario.byzantine {
        if *b == Behaviour::DoubleVoter {
            actors.push(Actor::new(*v, keys[usize::from(*v)].clone(), Some(*b)));
        }
    }
    let twins = n..actors.len();
    // The joiners last, so that every other actor's place (and the partition it is in) is the
    // same whether or not a run adds validators.
    for (v, node_keys) in keys.iter().enumerate().skip(n) {
        actors.push(Actor::new(v as ValidatorIndex, node_keys.clone(), None));
    }
    let count = actors.len();
    for (a, actor) in actors.iter_mut().enumerate() {
        let twin = twins.contains(&a);
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
        // Every honest node, also one outside the set, must keep up with the chain.
        let honest: Vec<usize> = (0..self.actors.len())
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
            new_key_precommits: self.checker.new_key_precommits,
            liveness_ms,
            states,
        }
    }
}
