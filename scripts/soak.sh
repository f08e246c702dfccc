#!/usr/bin/env bash
# Long-run health: a fresh 4-member localnet on this machine under a moderate load of the
# realistic mix (`cradle-bench`, each member's signed transactions to its own node) for
# --seconds of load, in consecutive loads of --interval seconds each (each with a few seconds of
# untimed setup, so the wall time is a few percent longer). After every load it samples each
# member: resident memory (VmRSS), open file descriptors (and how many are the store's), the
# RocksDB directory's size and table files, its committed transactions, the machine's load
# average, and that load's commit latency p50/p99 and committed tx/s: OUT/samples.csv.
#
# At the end it compares the early window with the late one (the first and last 10 minutes, or
# the first and last sixth of a shorter run): RSS growth after the warm-up (the last sample of
# the early window against the largest of the late one), fd growth (the largest count of the
# late window against the early one's: compactions make the store's count a sawtooth), RocksDB
# bytes per committed transaction (a store growing beyond the data written shows as bytes/tx
# rising), latency p50 (the median of the loads' figures), throughput. It prints a table and, as
# its last line, one JSON object with the figures, the thresholds and "steady"; it exits 1 when
# not steady. --report DIR reads DIR/samples.csv of an earlier run instead of running one
# (give the same --seconds, --rate and --interval).
#
#   scripts/soak.sh [--seconds S] [--rate TX_PER_S] [--interval S] [--patients N] [--out DIR]
#   scripts/soak.sh --report DIR [--seconds S] [--rate TX_PER_S] [--interval S]
#
# Defaults: one hour at 200 tx/s, a sample a minute, OUT a new temporary directory (printed,
# kept). Environment: BENCH_SKIP_BUILD=1 to use the binaries already in
# $CARGO_TARGET_DIR/release, LOCALNET_BASE_PORT (default 28600).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/scripts/lib/env.sh"

usage() { echo "usage: scripts/soak.sh [--seconds S] [--rate TX_PER_S] [--interval S] [--patients N] [--out DIR | --report DIR]" >&2; exit 2; }
seconds=3600
rate=200
interval=60
patients=64
out=""
report_only=""
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case "$1" in
        --seconds) seconds="$2" ;;
        --rate) rate="$2" ;;
        --interval) interval="$2" ;;
        --patients) patients="$2" ;;
        --out) out="$2" ;;
        --report) out="$2"; report_only=1 ;;
        *) usage ;;
    esac
    shift 2
done
for v in "$seconds" "$rate" "$interval" "$patients"; do [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage; done
[ "$interval" -ge 10 ] || { echo "soak: --interval must be at least 10 s" >&2; exit 2; }
[ "$seconds" -ge $((interval * 2)) ] || { echo "soak: --seconds must be at least two intervals" >&2; exit 2; }
[ "$patients" -ge 16 ] || { echo "soak: --patients must be at least 16" >&2; exit 2; }

# The comparison of the early and late windows, from OUT/samples.csv; exits 1 when not steady.
report() {
    python3 - "$out/samples.csv" "$seconds" "$rate" "$interval" <<'PY' | tee "$out/summary.txt"
import csv, json, statistics, sys
path, seconds, rate, interval = sys.argv[1], *map(int, sys.argv[2:])
rows = list(csv.DictReader(open(path)))
for r in rows:
    for k, v in list(r.items()):
        r[k] = float(v) if v not in ("", None) else None
members = sorted({int(r["member"]) for r in rows})
loads = sorted({int(r["load"]) for r in rows})
if len(loads) < 3:
    sys.exit("soak: fewer than two loads sampled")
end = max(r["t_s"] for r in rows)
med = statistics.median
# The store keeps at most this many table files open (node/src/storage/schema.rs,
# OPEN_FILES_MAX), and a few more: its lock, log, manifest, write-ahead log and directories.
OPEN_FILES_MAX = 256
STORE_FIXED_FDS = 16


def at(n, m, k):
    return next(r.get(k) for r in rows if r["load"] == n and r["member"] == m)


# The windows: the first and last 10 minutes of an hour or more, else the first and last sixth;
# at least one load each.
window = 600 if seconds >= 3600 else seconds / 6
early = [n for n in loads[1:] if at(n, members[0], "t_s") <= window] or [1]
late = [n for n in loads[1:] if at(n, members[0], "t_s") > end - window] or [loads[-1]]
warm = max(early)  # the sample at the end of the warm-up
last = loads[-1]

per_member = []
for m in members:
    rss_warm = at(warm, m, "rss_kb")
    rss_late = max(at(n, m, "rss_kb") for n in late)
    fds = lambda ns, k="fds": max(at(n, m, k) for n in ns)
    other = lambda ns: max(at(n, m, "fds") - at(n, m, "ledger_fds") for n in ns)
    # Bytes of the store per committed transaction, all of it up to the end of each window:
    # robust to compactions, and rising when the store grows faster than what is written.
    bpt_early = at(warm, m, "ledger_bytes") / max(at(warm, m, "txs_committed_total"), 1)
    bpt_late = at(last, m, "ledger_bytes") / max(at(last, m, "txs_committed_total"), 1)
    # The same over the late window alone (noisier: compactions fall inside it or not).
    before = min(late) - 1
    dtx = at(last, m, "txs_committed_total") - at(before, m, "txs_committed_total")
    db = at(last, m, "ledger_bytes") - at(before, m, "ledger_bytes")
    def per_tx_ms(a, b):
        # CPU milliseconds per committed transaction between two samples.
        if at(a, m, "cpu_s") is None:
            return None
        dtx = at(b, m, "txs_committed_total") - at(a, m, "txs_committed_total")
        return round(1000 * (at(b, m, "cpu_s") - at(a, m, "cpu_s")) / dtx, 3) if dtx > 0 else None

    def mb(n, k):
        v = at(n, m, k)
        return None if v is None else round(v / 2**20, 1)

    store_mem = {k: [mb(warm, k + "_bytes"), max((mb(n, k + "_bytes") or 0) for n in late)]
                 for k in ("block_cache", "block_cache_pinned", "table_readers", "memtables")}
    store_mem["tree_cache_nodes"] = [at(warm, m, "tree_cache_nodes"),
                                     max((at(n, m, "tree_cache_nodes") or 0) for n in late)]
    per_member.append({
        "member": m,
        "cpu_ms_per_tx_early": per_tx_ms(0, warm),
        "cpu_ms_per_tx_late": per_tx_ms(before, last),
        "store_memory_mb_warm_late": store_mem,
        "rss_mb_start": round(at(0, m, "rss_kb") / 1024, 1),
        "rss_mb_after_warmup": round(rss_warm / 1024, 1),
        "rss_mb_late_max": round(rss_late / 1024, 1),
        "rss_growth_pct": round(100 * (rss_late - rss_warm) / rss_warm, 1),
        "fds_start": int(at(0, m, "fds")),
        "fds_early_max": int(fds(early)),
        "fds_late_max": int(fds(late)),
        "fd_growth": int(fds(late) - fds(early)),
        "store_fds_early_max": int(fds(early, "ledger_fds")),
        "store_fds_late_max": int(fds(late, "ledger_fds")),
        "other_fds_early_max": int(other(early)),
        "other_fds_late_max": int(other(late)),
        "sst_files_early_max": int(fds(early, "sst_files")),
        "sst_files_late_max": int(fds(late, "sst_files")),
        "ledger_mb_end": round(at(last, m, "ledger_bytes") / 1e6, 1),
        "txs_committed": int(at(last, m, "txs_committed_total")),
        "height": int(at(last, m, "height")),
        "ledger_bytes_per_tx_early": round(bpt_early),
        "ledger_bytes_per_tx_late": round(bpt_late),
        "ledger_bytes_per_tx_late_window": round(db / dtx) if dtx > 0 else None,
    })


def load_fig(ns, k):
    return med(at(n, members[0], k) for n in ns)


lat = {w: {"p50": load_fig(ns, "load_latency_p50_ms"), "p99": load_fig(ns, "load_latency_p99_ms")}
       for w, ns in (("early", early), ("late", late))}
tps = {w: load_fig(ns, "load_committed_tx_per_s") for w, ns in (("early", early), ("late", late))}
has_load = "loadavg_1m" in rows[0] and rows[0]["loadavg_1m"] is not None
machine = {w: load_fig(ns, "loadavg_1m") if has_load else None for w, ns in (("early", early), ("late", late))}
refused = int(sum(at(n, members[0], "load_refused") for n in loads[1:]))
rss_growth = max(p["rss_growth_pct"] for p in per_member)
fd_growth = max((p["fd_growth"] for p in per_member), key=abs)
other_fd_growth = max((p["other_fds_late_max"] - p["other_fds_early_max"] for p in per_member), key=abs)
bpt_ratio = max(p["ledger_bytes_per_tx_late"] / max(p["ledger_bytes_per_tx_early"], 1) for p in per_member)

store_fds_late = max(p["store_fds_late_max"] for p in per_member)
thresholds = {"rss_growth_pct_max": 20, "other_fd_growth_abs_max": 16,
              "store_fds_max": f"{OPEN_FILES_MAX} + {STORE_FIXED_FDS}",
              "latency_p50_late_max": "1.5 x early + 20 ms",
              "ledger_bytes_per_tx_late_max": "1.5 x early",
              "committed_tx_per_s_late_min": "0.9 x offered"}
checks = {
    "rss": rss_growth < 20,
    "fds": abs(other_fd_growth) <= 16 and store_fds_late <= OPEN_FILES_MAX + STORE_FIXED_FDS,
    "latency_p50": lat["late"]["p50"] <= 1.5 * lat["early"]["p50"] + 20,
    "ledger_bytes_per_tx": bpt_ratio <= 1.5,
    "throughput": tps["late"] >= 0.9 * rate,
}
steady = all(checks.values())

print(f"soak: {len(loads) - 1} loads of {interval} s at {rate} tx/s offered, {int(end)} s in all; "
      f"early window loads {min(early)}-{max(early)}, late window loads {min(late)}-{max(late)}")
print(f"{'member':>6} {'RSS MB: start':>13} {'warm':>6} {'late max':>8} {'growth':>7} {'fds max: early':>14} "
      f"{'late':>5} {'(store':>6} {'other)':>6} {'SSTs':>9} {'ledger MB':>9} {'txs':>8} {'B/tx: early':>11} "
      f"{'late':>5} {'late window':>11}")
for p in per_member:
    print(f"{p['member']:>6} {p['rss_mb_start']:>13} {p['rss_mb_after_warmup']:>6} {p['rss_mb_late_max']:>8} "
          f"{p['rss_growth_pct']:>6}% {p['fds_early_max']:>14} {p['fds_late_max']:>5} "
          f"{str(p['store_fds_early_max']) + '->' + str(p['store_fds_late_max']):>6} "
          f"{str(p['other_fds_early_max']) + '->' + str(p['other_fds_late_max']):>6} "
          f"{str(p['sst_files_early_max']) + '->' + str(p['sst_files_late_max']):>9} {p['ledger_mb_end']:>9} "
          f"{p['txs_committed']:>8} {p['ledger_bytes_per_tx_early']:>11} {p['ledger_bytes_per_tx_late']:>5} "
          f"{str(p['ledger_bytes_per_tx_late_window']):>11}")
for p in per_member:
    sm = p["store_memory_mb_warm_late"]
    print(f"member {p['member']}: CPU {p['cpu_ms_per_tx_early']} ms/tx early, {p['cpu_ms_per_tx_late']} late; "
          "store memory MB after warm-up -> late max: "
          + ", ".join(f"{k.replace('_', ' ')} {v[0]} -> {v[1]}" for k, v in sm.items()))
print(f"latency p50 {lat['early']['p50']} ms early, {lat['late']['p50']} ms late; p99 {lat['early']['p99']} ms "
      f"early, {lat['late']['p99']} ms late (medians of the loads' figures); committed {tps['early']} tx/s "
      f"early, {tps['late']} tx/s late; refused {refused}"
      + (f"; machine load average {machine['early']} early, {machine['late']} late" if has_load else ""))
# The trajectory, one point per window's length: does what grows level off?
points = []
for k in range(1, int(end // window) + 2):
    ns = [n for n in loads[1:] if at(n, members[0], "t_s") <= k * window]
    if ns and (not points or points[-1]["load"] != ns[-1]):
        n = ns[-1]
        points.append({"load": n, "t_s": int(at(n, members[0], "t_s")),
                       "rss_mb_max": round(max(at(n, m, "rss_kb") for m in members) / 1024, 1),
                       "fds_max": int(max(at(n, m, "fds") for m in members)),
                       "sst_files_max": int(max(at(n, m, "sst_files") for m in members)),
                       "table_readers_mb_max": round(max(at(n, m, "table_readers_bytes") or 0 for m in members) / 2**20, 1),
                       "tree_cache_nodes_max": int(max(at(n, m, "tree_cache_nodes") or 0 for m in members)),
                       "ledger_mb_max": round(max(at(n, m, "ledger_bytes") for m in members) / 1e6, 1),
                       "latency_p50_ms": at(n, members[0], "load_latency_p50_ms")})
print("trajectory (largest member): " + "; ".join(
    f"{p['t_s']} s: RSS {p['rss_mb_max']} MB, {p['fds_max']} fds, {p['sst_files_max']} SSTs, "
    f"table readers {p['table_readers_mb_max']} MB, tree cache {p['tree_cache_nodes_max']} nodes, "
    f"{p['ledger_mb_max']} MB stored, p50 {p['latency_p50_ms']} ms" for p in points))
print("checks: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in checks.items())
      + f" -> {'steady' if steady else 'NOT steady'}")
print(json.dumps({
    "seconds": int(end), "offered_tx_per_s": rate, "interval_s": interval, "members": len(members),
    "window_s": window, "early_loads": [min(early), max(early)], "late_loads": [min(late), max(late)],
    "rss_growth_pct_max": rss_growth, "fd_growth": fd_growth, "other_fd_growth": other_fd_growth,
    "ledger_bytes_per_tx_ratio_max": round(bpt_ratio, 3),
    "latency_p50_ms_early": lat["early"]["p50"], "latency_p50_ms_late": lat["late"]["p50"],
    "latency_p99_ms_early": lat["early"]["p99"], "latency_p99_ms_late": lat["late"]["p99"],
    "committed_tx_per_s_early": tps["early"], "committed_tx_per_s_late": tps["late"], "refused": refused,
    "loadavg_1m_early": machine["early"], "loadavg_1m_late": machine["late"],
    "trajectory": points, "members_detail": per_member, "thresholds": thresholds, "checks": checks, "steady": steady}))
sys.exit(0 if steady else 1)
PY
}
if [ -n "$report_only" ]; then
    [ -f "$out/samples.csv" ] || { echo "soak: no $out/samples.csv" >&2; exit 1; }
    report
    exit
fi

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    cradle_install_build_deps
    (cd "$repo" && cargo build --workspace --release --locked --all-targets)
fi
bin="$CARGO_TARGET_DIR/release"
for b in cradle-node cradle-genesis cradle cradle-bench; do
    [ -x "$bin/$b" ] || { echo "soak: missing $bin/$b" >&2; exit 1; }
done

if [ -z "$out" ]; then
    out="$(mktemp -d "${TMPDIR:-/tmp}/cradle-soak.XXXXXX")"
else
    mkdir -p "$out"
fi
echo "soak: samples go to $out" >&2

work="$(mktemp -d)"
net="$work/localnet"
export LOCALNET_DIR="$net" LOCALNET_SKIP_BUILD=1 LOCALNET_BASE_PORT="${LOCALNET_BASE_PORT:-28600}"
load_pid=""
cleanup() {
    trap '' INT TERM
    if [ -n "$load_pid" ]; then kill "$load_pid" 2>/dev/null || true; fi
    "$repo/scripts/localnet.sh" down >/dev/null 2>&1 || true
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
die() {
    echo "soak: $*" >&2
    for f in "$net"/node*/node.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -5 "$f" >&2; }; done
    exit 1
}

"$repo/scripts/localnet.sh" up >&2
homes=()
for h in "$net"/node*; do [ -f "$h/config.toml" ] && homes+=("$h"); done
[ "${#homes[@]}" -ge 1 ] || die "no members under $net"

metrics_url() { echo "http://$(sed -n '/^\[api\]/,/^\[/s/^metrics_listen *= *"\(.*\)"/\1/p' "$1/config.toml" | head -1)/metrics"; }
# Prometheus figures of a member's operator endpoint (loopback), comma-separated, in the order
# asked (empty where the node does not export one).
metrics() {
    local home="$1"; shift
    python3 - "$(metrics_url "$home")" "$@" <<'PY'
import sys, urllib.request
text = urllib.request.urlopen(sys.argv[1], timeout=10).read().decode()
values = dict(l.split()[:2] for l in text.splitlines() if l and not l.startswith("#"))
print(",".join(values.get(name, "") for name in sys.argv[2:]))
PY
}
# The store's memory as the node reports it (RocksDB's own accounting and the tree cache).
store_metrics=(cradle_store_block_cache_bytes cradle_store_block_cache_pinned_bytes
    cradle_store_table_readers_bytes cradle_store_memtables_bytes cradle_store_tree_cache_nodes)

csv="$out/samples.csv"
chunks="$out/chunks.jsonl"
echo "t_s,load,member,pid,loadavg_1m,rss_kb,fds,ledger_fds,sst_files,ledger_bytes,height,txs_committed_total,cpu_s,block_cache_bytes,block_cache_pinned_bytes,table_readers_bytes,memtables_bytes,tree_cache_nodes,load_committed_tx_per_s,load_latency_p50_ms,load_latency_p99_ms,load_refused" >"$csv"
: >"$chunks"

# One row per member: its process, memory, open files (and how many of them are the store's),
# the store's table files and size, its committed transactions, the CPU it has used, the
# store's memory by part, with the figures of the load that just ended (empty for the baseline
# before the first load).
tick="$(getconf CLK_TCK)"
sample() {
    local t="$1" n="$2" tps="$3" p50="$4" p99="$5" refused="$6" i=0 home pid load rss fds lfds ssts bytes figures cpu
    for home in "${homes[@]}"; do
        pid="$(cat "$home/node.pid" 2>/dev/null || true)"
        { [ -n "$pid" ] && [ -r "/proc/$pid/status" ]; } || die "member $i (pid ${pid:-?}) is no longer running"
        load="$(cut -d' ' -f1 /proc/loadavg)"
        rss="$(awk '/^VmRSS:/ {print $2}' "/proc/$pid/status")"
        fds="$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l)"
        lfds="$(find "/proc/$pid/fd" -mindepth 1 -maxdepth 1 -lname "$home/data/ledger/*" 2>/dev/null | wc -l)"
        ssts="$(find "$home/data/ledger" -maxdepth 1 -name '*.sst' | wc -l)"
        bytes="$(du -sb "$home/data/ledger" | cut -f1)"
        figures="$(metrics "$home" cradle_height cradle_txs_committed_total)" \
            || die "member $i's metrics do not answer"
        # utime + stime, fields 14 and 15 of /proc/PID/stat (after the parenthesised name).
        cpu="$(sed 's/.*) //' "/proc/$pid/stat" | awk -v t="$tick" '{printf "%.2f", ($12 + $13) / t}')"
        store="$(metrics "$home" "${store_metrics[@]}")" || die "member $i's metrics do not answer"
        echo "$t,$n,$i,$pid,$load,$rss,$fds,$lfds,$ssts,$bytes,$figures,$cpu,$store,$tps,$p50,$p99,$refused" >>"$csv"
        i=$((i + 1))
    done
}

json_field() { sed -n "s/.*\"$2\": *\([0-9.]*\).*/\1/p" <<<"$1" | head -1; }

loads=$(( (seconds + interval - 1) / interval ))
start=$SECONDS
sample 0 0 "" "" "" ""
for n in $(seq 1 "$loads"); do
    "$bin/cradle-bench" --localnet "$net" --rate "$rate" --duration "$interval" --patients "$patients" \
        >"$work/load.out" 2>"$work/load.err" &
    load_pid=$!
    wait "$load_pid" || die "cradle-bench failed in load $n: $(tail -3 "$work/load.err")"
    load_pid=""
    result="$(tail -1 "$work/load.out")"
    [[ "$result" == "{"* ]] || die "no JSON from cradle-bench in load $n: $(tail -3 "$work/load.out")"
    echo "$result" >>"$chunks"
    t=$((SECONDS - start))
    tps="$(json_field "$result" committed_tx_per_s)"
    p50="$(json_field "$result" latency_p50_ms)"
    p99="$(json_field "$result" latency_p99_ms)"
    refused="$(json_field "$result" refused)"
    sample "$t" "$n" "$tps" "$p50" "$p99" "$refused"
    echo "soak: load $n of $loads at ${t} s: $tps tx/s committed, p50 $p50 ms, p99 $p99 ms, refused $refused; largest RSS $(tail -"${#homes[@]}" "$csv" | cut -d, -f6 | sort -n | tail -1) kB, most fds $(tail -"${#homes[@]}" "$csv" | cut -d, -f7 | sort -n | tail -1)" >&2
done

report
