#!/usr/bin/env bash
# The cluster benchmark: for each offered rate of --rates, a fresh 4-member localnet on this
# machine and `cradle-bench` (the realistic mix of signed transactions, each member's to its own
# node) at that rate for --duration seconds: committed tx/s, commit latency p50/p99, the largest node's RSS
# and the longest gap between commits. The rate with the most commits is the saturating rate;
# then one more run offers twice it (the overload), to see the cluster keep committing and
# refuse the excess (503 with Retry-After). With --runs N the whole sweep is repeated and the
# JSON (the last line) gives every run and the median of each figure.
#
#   scripts/bench.sh [--rates "1000 2000 ..."] [--duration S] [--runs N] [--patients N]
#
# Environment: BENCH_SKIP_BUILD=1 to use the binaries already in $CARGO_TARGET_DIR/release,
# LOCALNET_BASE_PORT (default 27600).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/scripts/lib/env.sh"

usage() { echo "usage: scripts/bench.sh [--rates \"R1 R2 ...\"] [--duration S] [--runs N] [--patients N]" >&2; exit 2; }
rates="1000 2000 3000 4000 5000"
duration=30
runs=1
patients=2000
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case "$1" in
        --rates) rates="$2" ;;
        --duration) duration="$2" ;;
        --runs) runs="$2" ;;
        --patients) patients="$2" ;;
        *) usage ;;
    esac
    shift 2
done
for v in $rates "$duration" "$runs" "$patients"; do [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage; done

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    cradle_install_build_deps
    (cd "$repo" && cargo build --workspace --release --locked --all-targets)
fi
bench="$CARGO_TARGET_DIR/release/cradle-bench"
[ -x "$bench" ] || { echo "bench: missing $bench" >&2; exit 1; }

work="$(mktemp -d)"
net="$work/localnet"
export LOCALNET_DIR="$net" LOCALNET_SKIP_BUILD=1 LOCALNET_BASE_PORT="${LOCALNET_BASE_PORT:-27600}"
cleanup() { trap '' INT TERM; "$repo/scripts/localnet.sh" down >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
results="$work/results.jsonl"
: >"$results"

# One load at `rate` on a fresh localnet (state left by a previous load would slow the next),
# its JSON appended with the run and a label.
load() {
    local run="$1" label="$2" rate="$3" out
    "$repo/scripts/localnet.sh" down >/dev/null 2>&1 || true
    rm -rf "$net"
    "$repo/scripts/localnet.sh" up >/dev/null
    out="$("$bench" --localnet "$net" --rate "$rate" --duration "$duration" --patients "$patients" 2>"$work/bench.err" | tail -1)" \
        || { echo "bench: cradle-bench failed at $rate tx/s: $(tail -3 "$work/bench.err")" >&2; exit 1; }
    echo "bench: run $run, $label, offered $rate tx/s: $out" >&2
    echo "$out" | sed "s/^{/{\"run\":$run,\"label\":\"$label\",/" >>"$results"
}

for run in $(seq 1 "$runs"); do
    for rate in $rates; do load "$run" sweep "$rate"; done
    peak=$(python3 -c '
import json, sys
rs = [json.loads(l) for l in open(sys.argv[1]) if json.loads(l)["run"] == int(sys.argv[2])]
print(int(max(r["committed_tx_per_s"] for r in rs)))' "$results" "$run")
    load "$run" overload $(( (peak * 2 + 99) / 100 * 100 ))
done

python3 - "$results" "$runs" "$duration" <<'PY'
import json, statistics, sys
path, runs, duration = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rows = [json.loads(l) for l in open(path)]
med = statistics.median
sweep = {}
for r in rows:
    if r["label"] == "sweep":
        sweep.setdefault(r["offered_tx_per_s"], []).append(r)
table = []
for rate in sorted(sweep):
    rs = sweep[rate]
    table.append({"offered_tx_per_s": rate,
                  "committed_tx_per_s": med(r["committed_tx_per_s"] for r in rs),
                  "latency_p50_ms": med(r["latency_p50_ms"] for r in rs),
                  "latency_p99_ms": med(r["latency_p99_ms"] for r in rs),
                  "rss_mb_max": max(r["rss_mb_max"] for r in rs),
                  "commit_gap_max_ms": max(r["commit_gap_max_ms"] for r in rs)})
peaks = []
overload = []
for run in range(1, runs + 1):
    mine = [r for r in rows if r["run"] == run]
    best = max((r for r in mine if r["label"] == "sweep"), key=lambda r: r["committed_tx_per_s"])
    over = [r for r in mine if r["label"] == "overload"][0]
    peaks.append(best["committed_tx_per_s"])
    overload.append({"saturating_rate": best["offered_tx_per_s"], "peak_tx_per_s": best["committed_tx_per_s"],
                     "offered_tx_per_s": over["offered_tx_per_s"],
                     "committed_tx_per_s": over["committed_tx_per_s"],
                     "of_peak": round(over["committed_tx_per_s"] / best["committed_tx_per_s"], 3),
                     "refused": over["refused"], "submitted": over["submitted"],
                     "latency_p50_ms": over["latency_p50_ms"],
                     "commit_gap_max_ms": over["commit_gap_max_ms"]})
for t in table:
    print(f"offered {t['offered_tx_per_s']:>6} tx/s: committed {t['committed_tx_per_s']:>7} tx/s, "
          f"p50 {t['latency_p50_ms']} ms, p99 {t['latency_p99_ms']} ms, largest RSS {t['rss_mb_max']} MB, "
          f"longest gap {t['commit_gap_max_ms']} ms", file=sys.stderr)
for o in overload:
    print(f"overload: offered {o['offered_tx_per_s']} tx/s (twice the peak {o['peak_tx_per_s']}): committed "
          f"{o['committed_tx_per_s']} tx/s ({o['of_peak']:.0%} of peak), refused {o['refused']} of "
          f"{o['submitted']}, p50 {o['latency_p50_ms']} ms, longest gap {o['commit_gap_max_ms']} ms",
          file=sys.stderr)
print(json.dumps({"runs": runs, "duration_s": duration, "sweep": table,
                  "peak_tx_per_s": med(peaks),
                  "overload_of_peak": med(o["of_peak"] for o in overload),
                  "overload_commit_gap_max_ms": max(o["commit_gap_max_ms"] for o in overload),
                  "overload": overload}))
PY
