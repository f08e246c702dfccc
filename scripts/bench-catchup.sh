#!/usr/bin/env bash
# The catch-up benchmark: how fast a member joining a long-running chain verifies and applies
# the whole certified history. Per run, cradle-catchup-bench generates a chain in memory
# (untimed: 40,000 blocks of 10 transactions of cradle-bench's mix by default, certified by the
# validators in force, a fifth validator voted in halfway), then times a fresh node store taking
# every block as the driver's catch-up does, in runs of 32 blocks (a sync response), through the
# driver's own `catchup::apply_certified`: decode, the run's signatures in two batches on two
# threads, each certificate against the set of its height, envelope, execution on the state the
# run left, following the sets, one synced RocksDB write per run.
# Prints each run's summary, then one JSON line: per-run figures and their medians.
#
#   scripts/bench-catchup.sh [--blocks N] [--block-txs N] [--runs N]
#
# Environment: BENCH_SKIP_BUILD=1 to use the binary already in $CARGO_TARGET_DIR/release,
# TMPDIR for the node's store (about 0.6 GB per 40,000 blocks of 10; deleted after each run).
# The issue names 100,000 blocks: --blocks 100000 takes about ten minutes per run here.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/scripts/lib/env.sh"

usage() { echo "usage: scripts/bench-catchup.sh [--blocks N] [--block-txs N] [--runs N]" >&2; exit 2; }
blocks=40000
block_txs=10
runs=1
while [ $# -gt 0 ]; do
    case "$1" in
        --blocks) [ $# -ge 2 ] || usage; blocks="$2"; shift 2 ;;
        --block-txs) [ $# -ge 2 ] || usage; block_txs="$2"; shift 2 ;;
        --runs) [ $# -ge 2 ] || usage; runs="$2"; shift 2 ;;
        *) usage ;;
    esac
done
for v in "$blocks" "$block_txs" "$runs"; do
    [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage
done

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    cradle_install_build_deps
    (cd "$repo" && cargo build --workspace --release --locked --all-targets)
fi
bench="$CARGO_TARGET_DIR/release/cradle-catchup-bench"
[ -x "$bench" ] || { echo "bench-catchup: missing $bench" >&2; exit 1; }

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
trap 'exit 130' INT TERM

# A numeric field of the bench's JSON line.
field() { sed -n "s/.*\"$2\":\([0-9.e+-]*\).*/\1/p" "$1" | tail -1; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {m=int((NR+1)/2); if (NR%2) printf "%s", v[m]; else printf "%.10g", (v[m]+v[m+1])/2}'; }
join() { local IFS=,; echo "$*"; }

keys=(blocks_per_s txs_per_s signatures_per_s catchup_s decode_s certificates_s signatures_s
    execution_s storage_s storage_ms_per_block generation_s store_mb)
declare -A seen
for run in $(seq 1 "$runs"); do
    echo "bench-catchup: run $run of $runs (load average $(cut -d' ' -f1-3 /proc/loadavg))" >&2
    "$bench" --blocks "$blocks" --block-txs "$block_txs" --dir "$work" >"$work/run$run.out"
    head -n -1 "$work/run$run.out"
    for k in "${keys[@]}"; do
        seen[$k]="${seen[$k]:-} $(field "$work/run$run.out" "$k")"
    done
done

out="{\"blocks\":$blocks,\"block_txs\":$block_txs,\"runs\":$runs"
for k in "${keys[@]}"; do
    # shellcheck disable=SC2086 # one value per run, split on purpose
    out+=",\"$k\":[$(join ${seen[$k]})],\"${k}_median\":$(median ${seen[$k]})"
done
echo "$out}"
