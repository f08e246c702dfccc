#!/usr/bin/env bash
# The cluster benchmark: a fresh 4-member localnet on this machine, a load of signed
# transactions at a set rate for a set time, then committed tx/s, commit latency p50/p99 and
# the largest node's RSS. The last line is JSON.
#
#   scripts/bench.sh [--rate TX_PER_S] [--duration S] [--patients N]
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/scripts/lib/env.sh"

rate=10000
duration=60
patients=4000
while [ $# -gt 0 ]; do
    case "$1" in
        --rate) rate="$2"; shift 2 ;;
        --duration) duration="$2"; shift 2 ;;
        --patients) patients="$2"; shift 2 ;;
        *) echo "usage: scripts/bench.sh [--rate N] [--duration S] [--patients N]" >&2; exit 2 ;;
    esac
done

cradle_install_build_deps
(cd "$repo" && cargo build --workspace --release --locked --all-targets)

net="$(mktemp -d)/localnet"
export LOCALNET_DIR="$net" LOCALNET_SKIP_BUILD=1 LOCALNET_BASE_PORT="${LOCALNET_BASE_PORT:-27600}"
cleanup() { "$repo/scripts/localnet.sh" down >/dev/null 2>&1 || true; rm -rf "$(dirname "$net")"; }
trap cleanup EXIT
"$repo/scripts/localnet.sh" up >&2
"$CARGO_TARGET_DIR/release/cradle-bench" --localnet "$net" --rate "$rate" --duration "$duration" --patients "$patients"
