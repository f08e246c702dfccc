//! What one simulated run looks like: the cluster, the network, the faults. Everything is
//! derived from the seed, so a seed alone replays a run.

use crate::config::Config;
use crate::pacing::Pacing;
use crate::types::{Height, ValidatorIndex};

use super::membership::{self, Change, SetChange};
use super::rng::Rng;

/// The families of faults the campaign cycles through (`seed % 4`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mix {
    /// Honest validators; latency, jitter, loss, duplication and reordering.
    Network,
    /// Honest validators that crash and restart from persisted state, and partitions.
    CrashesAndPartitions,
    /// Up to f Byzantine validators over a faulty network.
    Byzantine,
    /// All of the above at once.
    Everything,
}

impl Mix {
    pub const ALL: [Mix; 4] = [
        Mix::Network,
        Mix::CrashesAndPartitions,
        Mix::Byzantine,
        Mix::Everything,
    ];

    pub fn of_seed(seed: u64) -> Mix {
        Mix::ALL[(seed % 4) as usize]
    }
}

/// How a Byzantine validator misbehaves.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Behaviour {
    /// Never sends anything.
    Silent,
    /// Sends one proposal to half its peers and a different one (sometimes invalid) to the rest.
    EquivocatingProposer,
    /// Two honest instances run with one key, each reaching a different part of the network
    /// (the Twins construction): they sign conflicting votes whenever their views differ.
    DoubleVoter,
    /// Sends votes and proposals with broken signatures, or under another validator's index.
    BadSignatures,
    /// Votes for blocks nobody proposed, a different one for each peer.
    UnknownBlockVoter,
}

const BEHAVIOURS: [Behaviour; 5] = [
    Behaviour::Silent,
    Behaviour::EquivocatingProposer,
    Behaviour::DoubleVoter,
    Behaviour::BadSignatures,
    Behaviour::UnknownBlockVoter,
];

/// The simulated network before and after global stabilisation time (GST).
#[derive(Clone, Debug)]
pub struct NetConfig {
    /// Per-link one-way base latency, drawn once per link from this range.
    pub latency_ms: (u64, u64),
    /// Extra uniform delay per message, which also reorders messages.
    pub jitter_ms: u64,
    /// Extra uniform delay per message before GST: the asynchronous period.
    pub jitter_before_gst_ms: u64,
    pub loss_permille: u64,
    pub duplicate_permille: u64,
    /// Loss after GST: small, as gossip re-sends what is lost.
    pub loss_after_gst_permille: u64,
    /// Partitions before GST: `(from_ms, until_ms, group of each actor)`.
    pub partitions: Vec<(u64, u64, Vec<u8>)>,
}

/// One run's parameters.
#[derive(Clone, Debug)]
pub struct Scenario {
    pub seed: u64,
    pub mix: Mix,
    pub powers: Vec<u64>,
    pub byzantine: Vec<(ValidatorIndex, Behaviour)>,
    pub net: NetConfig,
    pub gst_ms: u64,
    /// `(validator, crash_at_ms, restart_at_ms)`, all restarts at or before GST.
    pub crashes: Vec<(ValidatorIndex, u64, u64)>,
    /// Heights every honest validator must decide after GST (K).
    pub heights_after_gst: u64,
    /// Simulated time after GST within which those K heights must be decided.
    pub liveness_bound_ms: u64,
    pub config: Config,
    /// The proposers' pacing; the heartbeat is always shorter than the propose timeout, as
    /// genesis requires, but network delay can still make an idle proposer's block late.
    pub pacing: Pacing,
    pub gossip_interval_ms: u64,
    /// Nodes beyond the genesis validators (numbered after them) that run from the start as
    /// observers and join the set by a [`Change::Add`].
    pub joiners: usize,
    /// Validator set changes, as governance makes them, in height order. Every node learns a
    /// change when it commits the height two before it, as a committed governance transaction
    /// tells it.
    pub set_changes: Vec<SetChange>,
}

impl Scenario {
    /// The run of `seed`: its mix is `seed % 4`, everything else drawn from the seed.
    pub fn from_seed(seed: u64) -> Scenario {
        let mix = Mix::of_seed(seed);
        let mut rng = Rng::new(seed);
        let n = match rng.below(10) {
            0..=4 => 4,
            5..=7 => 7,
            _ => 10,
        };
        let powers: Vec<u64> = if rng.chance(500) {
            vec![1; n]
        } else {
            (0..n).map(|_| rng.range(1, 5)).collect()
        };
        let total: u64 = powers.iter().sum();
        let mut byzantine = Vec::new();
        if matches!(mix, Mix::Byzantine | Mix::Everything) {
            // Up to f: add random validators while their power stays under a third.
            let mut order: Vec<usize> = (0..n).collect();
            for i in (1..n).rev() {
                order.swap(i, rng.below(i as u64 + 1) as usize);
            }
            let mut power = 0;
            for i in order {
                if 3 * (power + powers[i]) < total {
                    power += powers[i];
                    let b = BEHAVIOURS[rng.below(BEHAVIOURS.len() as u64) as usize];
                    byzantine.push((i as ValidatorIndex, b));
                }
            }
        }
        let faulty_net = mix != Mix::CrashesAndPartitions || rng.chance(500);
        let lo = rng.range(0, 20);
        let net_actors = n + byzantine.len();
        let gst_ms = rng.range(300, 1_200);
        let mut partitions = Vec::new();
        if matches!(mix, Mix::CrashesAndPartitions | Mix::Everything) {
            let mut t = rng.range(0, 300);
            while t < gst_ms {
                let until = (t + rng.range(100, 800)).min(gst_ms);
                let groups = (0..net_actors).map(|_| rng.below(2) as u8).collect();
                partitions.push((t, until, groups));
                t = until + rng.range(0, 400);
            }
        }
        let net = NetConfig {
            latency_ms: (lo, lo + rng.range(0, 40)),
            jitter_ms: if faulty_net { rng.range(0, 30) } else { 0 },
            jitter_before_gst_ms: if faulty_net { rng.range(0, 200) } else { 0 },
            loss_permille: if faulty_net { rng.range(0, 200) } else { 0 },
            duplicate_permille: if faulty_net { rng.range(0, 50) } else { 0 },
            loss_after_gst_permille: if faulty_net { rng.range(0, 20) } else { 0 },
            partitions,
        };
        let mut crashes = Vec::new();
        if matches!(mix, Mix::CrashesAndPartitions | Mix::Everything) {
            for _ in 0..rng.range(1, 3) {
                let v = rng.below(n as u64) as ValidatorIndex;
                if byzantine.iter().any(|(b, _)| *b == v) {
                    continue;
                }
                let at = rng.range(0, gst_ms);
                crashes.push((v, at, rng.range(at, gst_ms)));
            }
        }
        // Drawn last, so that every other part of a seed's scenario is what it always was.
        let pacing = Pacing {
            batch_window_ms: rng.range(0, 20),
            heartbeat_ms: rng.range(50, 199),
        };
        // Half the runs change the set once to three times: add, remove, rotate or reweigh.
        let (set_changes, joiners) = if rng.chance(500) {
            membership::draw(&mut rng, &powers, &byzantine)
        } else {
            (Vec::new(), 0)
        };
        Scenario {
            seed,
            mix,
            powers,
            byzantine,
            net,
            gst_ms,
            crashes,
            heights_after_gst: 3,
            liveness_bound_ms: 60_000,
            config: Config {
                timeout_propose_ms: 200,
                timeout_prevote_ms: 100,
                timeout_precommit_ms: 100,
                timeout_delta_ms: 50,
            },
            pacing,
            gossip_interval_ms: 300,
            joiners,
            set_changes,
        }
    }

    /// A fault-free cluster on a zero-latency network that runs until every validator has
    /// decided `heights` heights: the benchmark's workload.
    pub fn ideal(validators: usize, heights: u64) -> Scenario {
        Scenario {
            seed: 0,
            mix: Mix::Network,
            powers: vec![1; validators],
            byzantine: Vec::new(),
            net: NetConfig {
                latency_ms: (0, 0),
                jitter_ms: 0,
                jitter_before_gst_ms: 0,
                loss_permille: 0,
                duplicate_permille: 0,
                loss_after_gst_permille: 0,
                partitions: Vec::new(),
            },
            gst_ms: 0,
            crashes: Vec::new(),
            heights_after_gst: heights,
            liveness_bound_ms: 600_000,
            config: Config {
                timeout_propose_ms: 200,
                timeout_prevote_ms: 100,
                timeout_precommit_ms: 100,
                timeout_delta_ms: 50,
            },
            // The benchmark's proposers never wait (a heartbeat genesis would refuse).
            pacing: Pacing {
                batch_window_ms: 0,
                heartbeat_ms: 0,
            },
            gossip_interval_ms: 1_000,
            joiners: 0,
            set_changes: Vec::new(),
        }
    }

    /// How many simulated nodes hold keys: the genesis validators, then the joiners (the twin
    /// of a double voter shares its node's keys).
    pub fn nodes(&self) -> usize {
        self.powers.len() + self.joiners
    }

    /// Which of `node`'s keys it signs with at `height`: one more after each of its rotations.
    pub fn key_at(&self, node: ValidatorIndex, height: Height) -> u8 {
        self.set_changes
            .iter()
            .filter(|c| c.at <= height && c.change == Change::Rotate(node))
            .count() as u8
    }

    /// A Byzantine validator that is removed or rotated out refuses to go: it keeps its first
    /// key and judges every height by the genesis set, so it goes on signing votes under its
    /// old place that no correct node may count.
    pub fn refuses_to_leave(&self, node: ValidatorIndex) -> bool {
        self.behaviour(node).is_some()
            && self
                .set_changes
                .iter()
                .any(|c| matches!(c.change, Change::Remove(v) | Change::Rotate(v) if v == node))
    }

    pub fn behaviour(&self, validator: ValidatorIndex) -> Option<Behaviour> {
        self.byzantine
            .iter()
            .find(|(v, _)| *v == validator)
            .map(|(_, b)| *b)
    }

    /// One line that says what the run was.
    pub fn describe(&self) -> String {
        format!(
            "mix {:?}, {} validators with powers {:?}, byzantine {:?}, gst {} ms, crashes {:?}, \
             loss {}‰, dup {}‰, latency {:?}+{} ms (+{} ms before gst), {} partitions, \
             {} joiners, set changes {}",
            self.mix,
            self.powers.len(),
            self.powers,
            self.byzantine,
            self.gst_ms,
            self.crashes,
            self.net.loss_permille,
            self.net.duplicate_permille,
            self.net.latency_ms,
            self.net.jitter_ms,
            self.net.jitter_before_gst_ms,
            self.net.partitions.len(),
            self.joiners,
            self.describe_changes(),
        )
    }

    /// The set changes, one `at height: change -> seats` each.
    fn describe_changes(&self) -> String {
        let changes: Vec<String> = self
            .set_changes
            .iter()
            .map(|c| {
                let seats: Vec<String> = c
                    .seats
                    .iter()
                    .map(|s| format!("n{}k{}:{}", s.node, s.key, s.power))
                    .collect();
                format!("at {}: {:?} -> [{}]", c.at, c.change, seats.join(" "))
            })
            .collect();
        format!("[{}]", changes.join(", "))
    }
}
