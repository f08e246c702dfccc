#!/usr/bin/env bash
# Latency under attack: the attack tests (tests/tests/adversary.rs and floods.rs) each run a
# flood against member 0 of a fresh 4-member localnet from another loopback address, and while
# it lasts time a mother's fetch of her record, another hospital's break-glass fetch and the
# regulator's break-glass review (each a `cradle` process: connect, sign, proofs, decrypt). The
# tests hold each under 2 s; this script runs them RUNS times and reports the median of each
# figure per attack. The last line on stdout is JSON.
#
#   scripts/bench-floods.sh [--runs N]
#
# Environment: BENCH_SKIP_BUILD=1 to use what is already built in $CARGO_TARGET_DIR.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/scripts/lib/env.sh"

usage() { echo "usage: scripts/bench-floods.sh [--runs N]" >&2; exit 2; }
runs=3
while [ $# -gt 0 ]; do
    case "$1" in
        --runs) [ $# -ge 2 ] || usage; runs="$2"; shift 2 ;;
        *) usage ;;
    esac
done
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || usage

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    cradle_install_build_deps
    (cd "$repo" && cargo build --workspace --release --locked --all-targets)
fi

lines="$(mktemp)"
trap 'rm -f "$lines"' EXIT
for run in $(seq 1 "$runs"); do
    echo "run $run of $runs" >&2
    (cd "$repo" && cargo test --workspace --release --locked --test adversary --test floods \
        -- --nocapture --test-threads 1 2>&1) | grep -E '^promise during=' >> "$lines" || {
        echo "the attack tests failed" >&2
        exit 1
    }
done

python3 - "$lines" "$runs" <<'PY'
import json, statistics, sys
path, runs = sys.argv[1], int(sys.argv[2])
by = {}
for line in open(path):
    head, figures = line.strip().split(" ", 2)[1:]
    attack = head.split("=", 1)[1]
    for k, v in json.loads(figures).items():
        by.setdefault(attack, {}).setdefault(k, []).append(v)
out = {}
for attack, figures in sorted(by.items()):
    out[attack] = {k: {"median": statistics.median(v), "max": max(v), "samples": len(v)}
                   for k, v in figures.items()}
    f = out[attack]
    print(f"{attack:28} fetch {f['fetch_ms']['median']:>6} ms  break-glass "
          f"{f['break_glass_ms']['median']:>6} ms  regulator review {f['audit_ms']['median']:>4} ms"
          f"  (max {f['fetch_ms']['max']} / {f['break_glass_ms']['max']} / {f['audit_ms']['max']} ms)")
print(json.dumps({"runs": runs, "attacks": out}))
PY
