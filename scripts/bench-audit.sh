#!/usr/bin/env bash
# The audit benchmark: a patient's access history with its completeness proof, from a node whose
# ledger holds a million access records. Per run, cradle-audit-bench writes a one-validator
# localnet, fills its store with finalised blocks (20,000 patients, 1,000,000 access records:
# a few minutes), starts cradle-node on it, and times sequential GET /v1/audit/patient/{key}
# over loopback (mostly a patient with 200 events) and the client's verify_answer of each
# answer. The last line on stdout is JSON: per-run figures and their medians.
#
#   scripts/bench-audit.sh [--patients N] [--records N] [--queries N] [--runs N]
#
# Environment: BENCH_SKIP_BUILD=1 to use the binaries already in $CARGO_TARGET_DIR/release,
# BENCH_BASE_PORT (default 28800: p2p on it, the API on it + 1), TMPDIR for the node's store
# (about 2.5 GB free per million records; one run's store is deleted before the next).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/scripts/lib/env.sh"

usage() { echo "usage: scripts/bench-audit.sh [--patients N] [--records N] [--queries N] [--runs N]" >&2; exit 2; }
patients=20000
records=1000000
queries=2000
runs=1
while [ $# -gt 0 ]; do
    case "$1" in
        --patients) [ $# -ge 2 ] || usage; patients="$2"; shift 2 ;;
        --records) [ $# -ge 2 ] || usage; records="$2"; shift 2 ;;
        --queries) [ $# -ge 2 ] || usage; queries="$2"; shift 2 ;;
        --runs) [ $# -ge 2 ] || usage; runs="$2"; shift 2 ;;
        *) usage ;;
    esac
done
for v in "$patients" "$records" "$queries" "$runs"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage
done

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    cradle_install_build_deps
    (cd "$repo" && cargo build --workspace --release --locked --all-targets)
fi
bench="$CARGO_TARGET_DIR/release/cradle-audit-bench"
[ -x "$bench" ] || { echo "bench-audit: missing $bench" >&2; exit 1; }

work="$(mktemp -d)"
cleanup() {
    trap '' INT TERM
    # The bench kills its node; if the bench itself was killed, its node is still running.
    local f pid
    for f in "$work"/run*/net/node0/node.pid; do
        [ -f "$f" ] || continue
        pid="$(cat "$f")"
        kill "$pid" 2>/dev/null || true
    done
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A numeric field of the bench's JSON line.
field() { sed -n "s/.*\"$2\":\([0-9.]*\).*/\1/p" "$1" | tail -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {m=int((NR+1)/2); if (NR%2) printf "%s", v[m]; else printf "%.10g", (v[m]+v[m+1])/2}'; }
join() { local IFS=,; echo "$*"; }

keys=(latency_p50_ms latency_p99_ms latency_max_ms probe_latency_p99_ms verify_p50_ms verify_p99_ms
    generation_s store_mb probe_answer_bytes probe_events events_per_answer_mean node_rss_mb)
declare -A seen
for run in $(seq 1 "$runs"); do
    echo "bench-audit: run $run of $runs (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "$bench" --dir "$work/run$run" --patients "$patients" --records "$records" \
        --queries "$queries" --base-port "${BENCH_BASE_PORT:-28800}" >"$work/run$run.out"
    head -n -1 "$work/run$run.out"
    for k in "${keys[@]}"; do
        seen[$k]="${seen[$k]:-} $(field "$work/run$run.out" "$k")"
    done
    rm -rf "$work/run$run/net/node0/data"
done

out="{\"patients\":$patients,\"records\":$records,\"queries\":$queries,\"runs\":$runs"
for k in "${keys[@]}"; do
    # shellcheck disable=SC2086 # one value per run, split on purpose
    out+=",\"$k\":[$(join ${seen[$k]})],\"${k}_median\":$(median ${seen[$k]})"
done
echo "$out}"
