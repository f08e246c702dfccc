//! The simulated network and clock: a priority queue of timed events, and links with
//! per-link latency, jitter (hence reordering), loss, duplication, and partitions that heal at
//! global stabilisation time.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

use crate::config::Step;
use crate::proposal::Message;
use crate::types::{CommitCertificate, Height, Round, ValueId};

use super::rng::Rng;
use super::scenario::NetConfig;
use super::value::SimValue;

/// Most events one run may process: a run that needs more is reported, not left spinning.
pub const EVENTS_MAX: u64 = 3_000_000;

/// What travels between simulated nodes.
#[derive(Clone, Debug)]
pub enum Wire {
    Consensus(Message<SimValue>),
    /// Catch-up sync: an observer's height, so that a peer ahead of it sends it the next block.
    Status {
        height: Height,
    },
    /// Catch-up sync: a decided block with its certificate.
    Block {
        height: Height,
        value: SimValue,
        certificate: CommitCertificate,
    },
}

/// Something that happens at a simulated instant. `epoch` ties node-local events to one life
/// of the node, so that a crash cancels them.
#[derive(Clone, Debug)]
pub enum EventKind {
    Deliver {
        to: usize,
        from: usize,
        wire: Wire,
    },
    Timeout {
        actor: usize,
        epoch: u64,
        height: Height,
        round: Round,
        step: Step,
    },
    Validated {
        actor: usize,
        epoch: u64,
        height: Height,
        id: ValueId,
        valid: bool,
    },
    ProposeReady {
        actor: usize,
        epoch: u64,
        height: Height,
        round: Round,
    },
    Gossip {
        actor: usize,
        epoch: u64,
    },
    Crash {
        actor: usize,
    },
    Restart {
        actor: usize,
    },
    Stabilised,
}

#[derive(Debug)]
pub struct Event {
    pub time_ms: u64,
    pub seq: u64,
    pub kind: EventKind,
}

impl PartialEq for Event {
    fn eq(&self, other: &Self) -> bool {
        (self.time_ms, self.seq) == (other.time_ms, other.seq)
    }
}
impl Eq for Event {}
impl PartialOrd for Event {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Event {
    /// Earliest first; ties broken by scheduling order, so runs are deterministic.
    fn cmp(&self, other: &Self) -> Ordering {
        (other.time_ms, other.seq).cmp(&(self.time_ms, self.seq))
    }
}

pub struct Network {
    queue: BinaryHeap<Event>,
    seq: u64,
    pub now_ms: u64,
    latency_ms: Vec<Vec<u64>>,
    cfg: NetConfig,
    gst_ms: u64,
    rng: Rng,
    pub sent: u64,
    pub dropped: u64,
}

impl Network {
    pub fn new(cfg: NetConfig, actors: usize, gst_ms: u64, mut rng: Rng) -> Self {
        let latency_ms = (0..actors)
            .map(|_| {
                (0..actors)
                    .map(|_| rng.range(cfg.latency_ms.0, cfg.latency_ms.1))
                    .collect()
            })
            .collect();
        Self {
            queue: BinaryHeap::new(),
            seq: 0,
            now_ms: 0,
            latency_ms,
            cfg,
            gst_ms,
            rng,
            sent: 0,
            dropped: 0,
        }
    }

    pub fn schedule(&mut self, delay_ms: u64, kind: EventKind) {
        self.schedule_at(self.now_ms.saturating_add(delay_ms), kind);
    }

    pub fn schedule_at(&mut self, time_ms: u64, kind: EventKind) {
        self.seq += 1;
        self.queue.push(Event {
            time_ms,
            seq: self.seq,
            kind,
        });
    }

    pub fn pop(&mut self) -> Option<Event> {
        let event = self.queue.pop()?;
        self.now_ms = self.now_ms.max(event.time_ms);
        Some(event)
    }

    /// A small random delay for node-local work (validation, building a value).
    pub fn local_delay(&mut self) -> u64 {
        self.rng.range(0, 5)
    }

    fn partitioned(&self, from: usize, to: usize) -> bool {
        let now = self.now_ms;
        now < self.gst_ms
            && self.cfg.partitions.iter().any(|(start, end, groups)| {
                *start <= now
                    && now < *end
                    && groups.get(from).copied().unwrap_or(0)
                        != groups.get(to).copied().unwrap_or(0)
            })
    }

    /// Sends `wire` over the link: maybe dropped, maybe duplicated, delayed by the link's
    /// latency plus jitter.
    pub fn send(&mut self, from: usize, to: usize, wire: Wire) {
        self.sent += 1;
        let loss = if self.now_ms < self.gst_ms {
            self.cfg.loss_permille
        } else {
            self.cfg.loss_after_gst_permille
        };
        if self.partitioned(from, to) || self.rng.chance(loss) {
            self.dropped += 1;
            return;
        }
        let jitter = if self.now_ms < self.gst_ms {
            self.cfg.jitter_ms + self.cfg.jitter_before_gst_ms
        } else {
            self.cfg.jitter_ms
        };
        let base = self.latency_ms[from][to];
        if self.rng.chance(self.cfg.duplicate_permille) {
            let delay = base + self.rng.range(0, jitter);
            self.schedule(
                delay,
                EventKind::Deliver {
                    to,
                    from,
                    wire: wire.clone(),
                },
            );
        }
        let delay = base + self.rng.range(0, jitter);
        self.schedule(delay, EventKind::Deliver { to, from, wire });
    }
}
