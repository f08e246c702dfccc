#!/usr/bin/env bash
# What a clinician waits for: on a fresh 4-member localnet, hospital B fetches a patient's
# 100 KB archive from its custodian, hospital A, under her TREAT grant, FETCHES times at random
# moments (`cradle-fetch-bench`), first on an idle cluster, then under BACKGROUND signed tx/s
# of the realistic mix from `cradle-bench`. Each fetch's access record is committed before the
# first byte leaves A. Reports time to first byte and time to a verified decrypted file, p50
# and p99, for each phase; with --runs N each run has its own fresh localnet and the JSON
# (the last line) gives every run and the median of each figure.
#
#   scripts/bench-fetch.sh [--runs N] [--fetches N] [--background TX_PER_S] [--kb N]
#
# Environment: BENCH_SKIP_BUILD=1 to use the binaries already in $CARGO_TARGET_DIR/release,
# LOCALNET_BASE_PORT (default 28700).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/scripts/lib/env.sh"

usage() { echo "usage: scripts/bench-fetch.sh [--runs N] [--fetches N] [--background TX_PER_S] [--kb N]" >&2; exit 2; }
runs=1
fetches=200
background=1000
kb=100
while [ $# -gt 0 ]; do
    [ $# -ge 2 ] || usage
    case "$1" in
        --runs) runs="$2" ;;
        --fetches) fetches="$2" ;;
        --background) background="$2" ;;
        --kb) kb="$2" ;;
        *) usage ;;
    esac
    shift 2
done
for v in "$runs" "$fetches" "$background" "$kb"; do [[ "$v" =~ ^[1-9][0-9]*$ ]] || usage; done

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    cradle_install_build_deps
    (cd "$repo" && cargo build --workspace --release --locked --all-targets)
fi
bin="$CARGO_TARGET_DIR/release"
for b in cradle cradle-bench cradle-fetch-bench; do
    [ -x "$bin/$b" ] || { echo "bench-fetch: missing $bin/$b" >&2; exit 1; }
done

work="$(mktemp -d)"
net="$work/localnet"
export CRADLE_GENESIS="$net/genesis.json"
export LOCALNET_DIR="$net" LOCALNET_SKIP_BUILD=1 LOCALNET_BASE_PORT="${LOCALNET_BASE_PORT:-28700}"
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
    echo "bench-fetch: $*" >&2
    for f in "$net"/node*/node.log; do [ -f "$f" ] && { echo "--- $f" >&2; tail -5 "$f" >&2; }; done
    exit 1
}
field() { sed -n "s/^  \"$2\": *\"\([^\"]*\)\".*/\1/p" "$1" | head -1; }
url_of() { echo "https://$(sed -n '/^\[api\]/,/^\[/s/^listen *= *"\(.*\)"/\1/p' "$net/node$1/config.toml" | head -1)"; }

# Enough background load for the fetches of one phase (each waits 0.2 s on average before it
# asks, then takes tens of milliseconds), with a margin; checked below.
load_s=$((fetches * 2 / 5 + 30))
head -c $((kb * 1000)) /dev/urandom >"$work/record.bin"
results="$work/results.jsonl"
: >"$results"
for run in $(seq 1 "$runs"); do
    echo "bench-fetch: run $run of $runs" >&2
    "$repo/scripts/localnet.sh" down >/dev/null 2>&1 || true
    rm -rf "$net"
    "$repo/scripts/localnet.sh" up >&2
    node_a="$(url_of 0)"
    key_a="$net/node0/node.key"
    name_b="$(sed -n 's/^member *= *"\(.*\)"/\1/p' "$net/node1/config.toml" | head -1)"
    rm -f "$work/patient.key" "$work/patient.key.pub"
    "$bin/cradle" keygen --out "$work/patient.key" >"$work/keygen.log" 2>&1 \
        || die "keygen failed: $(cat "$work/keygen.log")"
    "$bin/cradle" --node "$node_a" --key "$key_a" patient enrol "$work/patient.key.pub" \
        --format json >"$work/enrol.log" 2>&1 || die "enrol failed: $(tail -3 "$work/enrol.log")"
    "$bin/cradle" --node "$node_a" --key "$key_a" archive put "$work/record.bin" \
        --patient "$work/patient.key.pub" --category prenatal-visit --format json \
        >"$work/put.log" 2>"$work/put.err" || die "archive put failed: $(tail -3 "$work/put.err")"
    id="$(field "$work/put.log" archive)"
    [[ "$id" =~ ^[0-9a-f]{64}$ ]] || die "no archive id in the put output: $(cat "$work/put.log")"
    "$bin/cradle" --node "$node_a" --key "$work/patient.key" consent grant --grantee "$name_b" \
        --purpose TREAT --expires 1d --format json >"$work/grant.log" 2>&1 \
        || die "consent grant failed: $(tail -3 "$work/grant.log")"
    # The grantee's obstetrician reads, with her own key (an institution's key reads nothing).
    rm -f "$work/clinician.key" "$work/clinician.key.pub"
    "$bin/cradle" keygen --out "$work/clinician.key" >"$work/keygen.log" 2>&1 \
        || die "keygen failed: $(cat "$work/keygen.log")"
    "$bin/cradle" --node "$(url_of 1)" --key "$net/node1/node.key" staff add "$work/clinician.key.pub" \
        --role obstetrician --department obstetrics --name "Bench Obstetrician" --staff-number B-1 \
        >"$work/staff.log" 2>&1 || die "staff add failed: $(tail -3 "$work/staff.log")"

    fetch() {
        "$bin/cradle-fetch-bench" --genesis "$CRADLE_GENESIS" --node "$node_a" \
            --key "$work/clinician.key" --archive "$id" --expect "$work/record.bin" \
            --fetches "$fetches" --label "$1" --work "$work" >>"$results" \
            || die "the $1 fetches failed"
    }
    fetch idle

    "$bin/cradle-bench" --localnet "$net" --rate "$background" --duration "$load_s" \
        --patients 400 >"$work/load.out" 2>"$work/load.err" &
    load_pid=$!
    # The load's own setup (enrolments and archives) is untimed; fetch once it submits.
    for _ in $(seq 1 1200); do
        grep -q '^load: submitting' "$work/load.err" && break
        kill -0 "$load_pid" 2>/dev/null || die "cradle-bench stopped: $(tail -3 "$work/load.err")"
        sleep 0.1
    done
    grep -q '^load: submitting' "$work/load.err" || die "cradle-bench never began its load"
    fetch "under_${background}_tx_s"
    kill -0 "$load_pid" 2>/dev/null || die "the background load ended before the fetches did"
    # The load's own report says whether the cluster really committed it meanwhile.
    wait "$load_pid" || die "cradle-bench failed: $(tail -3 "$work/load.err")"
    load_pid=""
    tail -1 "$work/load.out" | sed 's/^{/{"label":"load",/' >>"$results"
    echo "bench-fetch: background load: $(tail -2 "$work/load.out" | head -1)" >&2
done

python3 - "$results" "$runs" "$fetches" "$background" "$kb" <<'PY'
import json, statistics, sys
path, runs, fetches, background, kb = sys.argv[1], *map(int, sys.argv[2:])
phases = {}
loads = []
for line in open(path):
    r = json.loads(line)
    label = r.pop("label")
    if label == "load":
        loads.append(r)
    else:
        phases.setdefault(label, []).append(r)
out = {"runs": runs, "fetches_per_phase": fetches, "background_tx_per_s": background,
       "archive_kb": kb, "phases": {}}
for label, rs in phases.items():
    keys = [k for k in rs[0] if k.endswith("_ms")]
    out["phases"][label] = {k: {"median": statistics.median(r[k] for r in rs),
                                "runs": [r[k] for r in rs]} for k in keys}
    m = out["phases"][label]
    print(f"{label:>18}: first byte p50 {m['first_byte_p50_ms']['median']} ms, "
          f"p99 {m['first_byte_p99_ms']['median']} ms; verified file p50 "
          f"{m['file_p50_ms']['median']} ms, p99 {m['file_p99_ms']['median']} ms", file=sys.stderr)
out["background_committed_tx_per_s"] = [r["committed_tx_per_s"] for r in loads]
out["background_latency_p50_ms"] = [r["latency_p50_ms"] for r in loads]
print(json.dumps(out))
PY
