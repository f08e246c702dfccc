//! The node's metrics, rendered in the Prometheus text exposition format at `/metrics`.
//!
//! Plain atomics: the hot paths only add and store, and rendering reads a consistent enough
//! snapshot for monitoring.

use std::fmt::Write;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the commit latency histogram's buckets.
const LATENCY_BUCKETS_S: [f64; 12] = [
    0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 1.5, 2.0, 3.0, 5.0, 10.0, 30.0,
];

#[derive(Default)]
pub struct Histogram {
    buckets: [AtomicU64; LATENCY_BUCKETS_S.len()],
    count: AtomicU64,
    sum_us: AtomicU64,
}

impl Histogram {
    pub fn observe_s(&self, seconds: f64) {
        for (i, bound) in LATENCY_BUCKETS_S.iter().enumerate() {
            if seconds <= *bound {
                self.buckets[i].fetch_add(1, Ordering::Relaxed);
            }
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_us
            .fetch_add((seconds * 1e6) as u64, Ordering::Relaxed);
    }

    fn render(&self, out: &mut String, name: &str, help: &str) {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} histogram");
        for (i, bound) in LATENCY_BUCKETS_S.iter().enumerate() {
            let n = self.buckets[i].load(Ordering::Relaxed);
            let _ = writeln!(out, "{name}_bucket{{le=\"{bound}\"}} {n}");
        }
        let count = self.count.load(Ordering::Relaxed);
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {count}");
        let sum = self.sum_us.load(Ordering::Relaxed) as f64 / 1e6;
        let _ = writeln!(out, "{name}_sum {sum}");
        let _ = writeln!(out, "{name}_count {count}");
    }
}

/// Every metric the node exports.
#[derive(Default)]
pub struct Metrics {
    pub height: AtomicU64,
    pub round: AtomicU64,
    pub mempool_txs: AtomicU64,
    pub mempool_bytes: AtomicU64,
    pub peers: AtomicU64,
    pub txs_committed: AtomicU64,
    pub txs_rejected: AtomicU64,
    /// Pending transactions evicted to make room for another signer's.
    pub txs_evicted: AtomicU64,
    /// Pending access records (the lane reserved for them).
    pub mempool_access_txs: AtomicU64,
    /// Members' transactions refused because the pending ones already hold half a second of
    /// the cluster's commits.
    pub txs_backlogged: AtomicU64,
    /// 1 while that is so: batches are refused before their signatures are checked.
    pub backlogged: AtomicU64,
    pub access_events: AtomicU64,
    pub blocks_synced: AtomicU64,
    pub messages_invalid: AtomicU64,
    pub equivocations: AtomicU64,
    /// Copied from the network's counters (`NetworkStats`) whenever the driver publishes status.
    pub net_messages_dropped_in: AtomicU64,
    pub net_messages_over_budget: AtomicU64,
    pub net_bytes_dropped_in: AtomicU64,
    /// Fetches refused because the signer could not be entitled (no member, not the patient).
    pub fetches_refused_strangers: AtomicU64,
    /// Archive uploads and downloads being served now, and those refused at `api.transfers_max`.
    pub transfers_active: AtomicU64,
    pub transfers_refused: AtomicU64,
    /// Free bytes on the archive store's file system when last looked at, and uploads refused
    /// for `archives.disk_reserve_bytes`.
    pub archive_disk_free_bytes: AtomicU64,
    pub uploads_refused_disk: AtomicU64,
    /// Signed requests refused because the key is neither a member nor an enrolled patient.
    pub requests_refused_unknown: AtomicU64,
    /// API connections closed to make room for newcomers (idle ones, or ones that never sent a
    /// request).
    pub api_connections_evicted: Arc<AtomicU64>,
    /// Requests refused for their address's rate.
    pub requests_rate_limited_ip: AtomicU64,
    /// Signed requests refused for their key's rate.
    pub requests_rate_limited_key: AtomicU64,
    /// From a transaction's admission to this node's mempool to the commit of its block.
    pub commit_latency: Histogram,
    /// From entering a height to committing its block.
    pub block_time: Histogram,
    /// Synced writes of the consensus record, and records another write covered instead.
    pub consensus_saves: AtomicU64,
    pub consensus_saves_grouped: AtomicU64,
}

fn gauge(out: &mut String, name: &str, kind: &str, help: &str, v: &AtomicU64) {
    sample(out, name, kind, help, v.load(Ordering::Relaxed));
}

fn sample(out: &mut String, name: &str, kind: &str, help: &str, v: u64) {
    let _ = writeln!(out, "# HELP {name} {help}");
    let _ = writeln!(out, "# TYPE {name} {kind}");
    let _ = writeln!(out, "{name} {v}");
}

fn gauge_value(out: &mut String, name: &str, help: &str, v: u64) {
    sample(out, name, "gauge", help, v);
}

/// The store's memory, read from RocksDB when `/metrics` is scraped.
pub fn render_storage(out: &mut String, m: &crate::storage::MemoryUsage) {
    gauge_value(
        out,
        "cradle_store_block_cache_bytes",
        "Bytes in the store's shared block cache (data blocks, index and filter partitions).",
        m.block_cache_bytes,
    );
    gauge_value(
        out,
        "cradle_store_block_cache_pinned_bytes",
        "Of those, bytes pinned by open table files (top-level indexes, level-0 files).",
        m.block_cache_pinned_bytes,
    );
    gauge_value(
        out,
        "cradle_store_table_readers_bytes",
        "Bytes the store's open table files hold outside the block cache.",
        m.table_readers_bytes,
    );
    gauge_value(
        out,
        "cradle_store_memtables_bytes",
        "Bytes of the store's memtables, all column families.",
        m.memtables_bytes,
    );
    gauge_value(
        out,
        "cradle_store_tree_cache_nodes",
        "Positions of the sparse Merkle tree's upper levels held in memory.",
        m.tree_cache_nodes,
    );
    gauge_value(
        out,
        "cradle_store_table_files",
        "The store's table files, all column families.",
        m.sst_files,
    );
}

impl Metrics {
    /// Takes the network's inbound drop counters.
    pub fn record_network(&self, stats: &crate::network::NetworkStats) {
        let set = |m: &AtomicU64, v: u64| m.store(v, Ordering::Relaxed);
        set(&self.net_messages_dropped_in, stats.messages_dropped_in);
        set(&self.net_messages_over_budget, stats.messages_over_budget);
        set(&self.net_bytes_dropped_in, stats.bytes_dropped_in);
    }

    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        gauge(
            &mut out,
            "cradle_height",
            "gauge",
            "Height of the last committed block.",
            &self.height,
        );
        gauge(
            &mut out,
            "cradle_round",
            "gauge",
            "Consensus round at the current height.",
            &self.round,
        );
        gauge(
            &mut out,
            "cradle_mempool_txs",
            "gauge",
            "Transactions waiting in the mempool.",
            &self.mempool_txs,
        );
        gauge(
            &mut out,
            "cradle_mempool_bytes",
            "gauge",
            "Bytes waiting in the mempool.",
            &self.mempool_bytes,
        );
        gauge(
            &mut out,
            "cradle_peers_connected",
            "gauge",
            "Consortium members connected.",
            &self.peers,
        );
        gauge(
            &mut out,
            "cradle_txs_committed_total",
            "counter",
            "Transactions committed.",
            &self.txs_committed,
        );
        gauge(
            &mut out,
            "cradle_txs_rejected_total",
            "counter",
            "Transactions refused by the mempool or the rules.",
            &self.txs_rejected,
        );
        gauge(
            &mut out,
            "cradle_txs_evicted_total",
            "counter",
            "Pending transactions evicted from a full mempool to make room for another signer's.",
            &self.txs_evicted,
        );
        gauge(
            &mut out,
            "cradle_txs_refused_backlog_total",
            "counter",
            "Members' transactions refused with 503 because half a second of commits was already pending.",
            &self.txs_backlogged,
        );
        gauge(
            &mut out,
            "cradle_mempool_backlogged",
            "gauge",
            "1 while members' new transactions are refused for the backlog.",
            &self.backlogged,
        );
        gauge(
            &mut out,
            "cradle_mempool_access_txs",
            "gauge",
            "Pending access records, in the lane reserved for them.",
            &self.mempool_access_txs,
        );
        gauge(
            &mut out,
            "cradle_access_events_total",
            "counter",
            "Access records committed.",
            &self.access_events,
        );
        gauge(
            &mut out,
            "cradle_blocks_synced_total",
            "counter",
            "Blocks fetched from peers by catch-up sync.",
            &self.blocks_synced,
        );
        gauge(
            &mut out,
            "cradle_messages_invalid_total",
            "counter",
            "Peer messages refused as malformed or badly signed.",
            &self.messages_invalid,
        );
        gauge(
            &mut out,
            "cradle_equivocations_total",
            "counter",
            "Equivocation evidence collected.",
            &self.equivocations,
        );
        gauge(
            &mut out,
            "cradle_fetches_refused_strangers_total",
            "counter",
            "Archive fetches refused, off the ledger, to keys that are neither a member nor the patient.",
            &self.fetches_refused_strangers,
        );
        gauge(
            &mut out,
            "cradle_api_transfers_active",
            "gauge",
            "Archive uploads and downloads being served now.",
            &self.transfers_active,
        );
        gauge(
            &mut out,
            "cradle_api_transfers_refused_total",
            "counter",
            "Archive transfers refused with 503 because api.transfers_max were being served.",
            &self.transfers_refused,
        );
        gauge(
            &mut out,
            "cradle_archive_disk_free_bytes",
            "gauge",
            "Free bytes on the archive store's file system when an upload last looked.",
            &self.archive_disk_free_bytes,
        );
        gauge(
            &mut out,
            "cradle_uploads_refused_disk_total",
            "counter",
            "Archive uploads refused with 507 to keep archives.disk_reserve_bytes free.",
            &self.uploads_refused_disk,
        );
        gauge(
            &mut out,
            "cradle_requests_refused_unknown_total",
            "counter",
            "Signed API requests refused, before the replay cache, from keys neither a member nor an enrolled patient.",
            &self.requests_refused_unknown,
        );
        gauge(
            &mut out,
            "cradle_net_messages_dropped_in_total",
            "counter",
            "Peer messages dropped because the node fell behind reading them.",
            &self.net_messages_dropped_in,
        );
        gauge(
            &mut out,
            "cradle_net_messages_over_budget_total",
            "counter",
            "Peer messages dropped because their sender, or all peers, had their byte budget waiting.",
            &self.net_messages_over_budget,
        );
        gauge(
            &mut out,
            "cradle_net_bytes_dropped_in_total",
            "counter",
            "Bytes of the peer messages dropped, for either reason.",
            &self.net_bytes_dropped_in,
        );
        gauge(
            &mut out,
            "cradle_api_connections_evicted_total",
            "counter",
            "API connections closed when every slot was taken, to make room for a newcomer: ones that never sent a request, or idle ones.",
            &self.api_connections_evicted,
        );
        gauge(
            &mut out,
            "cradle_requests_rate_limited_ip_total",
            "counter",
            "API requests refused with 429 for their IP address's rate (api.rate.per_ip).",
            &self.requests_rate_limited_ip,
        );
        gauge(
            &mut out,
            "cradle_requests_rate_limited_key_total",
            "counter",
            "Signed API requests refused with 429 for their key's rate (api.rate.per_key).",
            &self.requests_rate_limited_key,
        );
        gauge(
            &mut out,
            "cradle_consensus_saves_total",
            "counter",
            "Synced writes of the consensus record (each before the votes and proposals it covers are sent).",
            &self.consensus_saves,
        );
        gauge(
            &mut out,
            "cradle_consensus_saves_grouped_total",
            "counter",
            "Consensus records not written on their own: a later record or a block's commit covered them.",
            &self.consensus_saves_grouped,
        );
        self.commit_latency.render(
            &mut out,
            "cradle_commit_latency_seconds",
            "Time from mempool admission to commit.",
        );
        self.block_time.render(
            &mut out,
            "cradle_block_time_seconds",
            "Time to decide and commit one height.",
        );
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_prometheus_text_with_histogram_buckets() {
        let m = Metrics::default();
        m.height.store(7, Ordering::Relaxed);
        m.commit_latency.observe_s(0.3);
        m.commit_latency.observe_s(2.5);
        let text = m.render();
        assert!(text.contains("cradle_height 7\n"));
        assert!(text.contains("cradle_commit_latency_seconds_bucket{le=\"0.5\"} 1\n"));
        assert!(text.contains("cradle_commit_latency_seconds_bucket{le=\"+Inf\"} 2\n"));
        assert!(text.contains("cradle_commit_latency_seconds_count 2\n"));
    }
}
