#!/usr/bin/env bash
# A 4-member Cradle consortium on this machine, on loopback.
#
#   scripts/localnet.sh up                  build if needed, write ./localnet if absent, start every
#                                           member not running, return once blocks are committed
#   scripts/localnet.sh down                stop exactly the node processes this script started
#   scripts/localnet.sh status [--format json|table]
#
# Environment: LOCALNET_DIR (default ./localnet), LOCALNET_MEMBERS (default 4),
# LOCALNET_BASE_PORT (default 26600), LOCALNET_DETERMINISTIC=1 for reproducible keys.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/scripts/lib/env.sh"

dir="${LOCALNET_DIR:-$PWD/localnet}"
members="${LOCALNET_MEMBERS:-4}"
base_port="${LOCALNET_BASE_PORT:-26600}"
bin="$CARGO_TARGET_DIR/release"

die() { echo "localnet: $*" >&2; exit 1; }

build() {
    if [ -z "${LOCALNET_SKIP_BUILD:-}" ]; then
        cradle_install_build_deps
        (cd "$repo" && cargo build --workspace --release --locked --all-targets)
    fi
    for b in cradle-node cradle-genesis cradle; do
        [ -x "$bin/$b" ] || die "missing $bin/$b"
    done
}

homes() {
    local h
    for h in "$dir"/node*; do
        [ -f "$h/config.toml" ] && echo "$h"
    done
}

api_url() {
    local listen
    listen=$(sed -n '/^\[api\]/,/^\[/s/^listen *= *"\(.*\)"/\1/p' "$1/config.toml" | head -1)
    echo "https://$listen"
}

# The pid in HOME/node.pid, if that process is alive and is the cradle-node of HOME.
running_pid() {
    local home="$1" pid
    [ -f "$home/node.pid" ] || return 1
    pid=$(cat "$home/node.pid")
    [ -n "$pid" ] && [ -r "/proc/$pid/cmdline" ] || return 1
    tr '\0' ' ' < "/proc/$pid/cmdline" | grep -q -- "cradle-node run --home $home" || return 1
    echo "$pid"
}

# The member's height, or nothing while its API does not answer.
height_of() {
    { "$bin/cradle" --genesis "$dir/genesis.json" --node "$(api_url "$1")" status --format json 2>/dev/null || true; } \
        | sed -n 's/^ *"height": *\([0-9]*\).*/\1/p' | head -1
}

up() {
    build
    if [ ! -f "$dir/genesis.json" ]; then
        local flags=()
        [ -n "${LOCALNET_DETERMINISTIC:-}" ] && flags+=(--deterministic)
        "$bin/cradle-genesis" localnet --members "$members" --out "$dir" --base-port "$base_port" "${flags[@]}" >/dev/null
        echo "localnet: wrote a $members-member consortium under $dir"
    fi
    local home pid started=0
    for home in $(homes); do
        if pid=$(running_pid "$home"); then
            continue
        fi
        # The log is the operator's alone (mode 0600), created so and kept so: it names keys,
        # archives and accesses. The node inherits the umask for what it writes too.
        touch "$home/node.log" && chmod 600 "$home/node.log"
        (umask 077 && exec nohup "$bin/cradle-node" run --home "$home" >>"$home/node.log" 2>&1) &
        echo $! > "$home/node.pid"
        started=$((started + 1))
    done
    echo "localnet: started $started member(s)"
    # Wait (bounded) until every member has committed a block.
    local deadline=$((SECONDS + 90)) all h
    while [ $SECONDS -lt $deadline ]; do
        all=1
        for home in $(homes); do
            h=$(height_of "$home")
            [ -n "$h" ] && [ "$h" -ge 1 ] || all=0
        done
        if [ $all = 1 ]; then
            echo "localnet: blocks are being committed"
            return 0
        fi
        sleep 0.5
    done
    die "no blocks committed within 90 s; see $dir/node*/node.log"
}

down() {
    local home pid stopped=0
    for home in $(homes); do
        if pid=$(running_pid "$home"); then
            kill "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do
                kill -0 "$pid" 2>/dev/null || break
                sleep 0.1
            done
            kill -9 "$pid" 2>/dev/null || true
            stopped=$((stopped + 1))
        fi
        rm -f "$home/node.pid"
    done
    echo "localnet: stopped $stopped member(s)"
}

status() {
    local format=table
    while [ $# -gt 0 ]; do
        case "$1" in
            --format) format="${2:-}"; shift 2 ;;
            *) die "usage: localnet.sh status [--format json|table]" ;;
        esac
    done
    [ -d "$dir" ] || die "no localnet under $dir"
    local home name api pid h first=1
    [ "$format" = json ] && echo "["
    for home in $(homes); do
        name=$(sed -n 's/^member *= *"\(.*\)"/\1/p' "$home/config.toml" | head -1)
        api=$(api_url "$home")
        pid=$(running_pid "$home" || true)
        h=""
        [ -n "$pid" ] && h=$(height_of "$home")
        if [ "$format" = json ]; then
            [ $first = 1 ] || echo ","
            first=0
            printf '  {"member": "%s", "home": "%s", "api": "%s", "pid": %s, "height": %s}' \
                "$name" "$home" "$api" "${pid:-null}" "${h:-null}"
        else
            printf '%-22s %-28s pid %-8s height %s\n' "$name" "$api" "${pid:--}" "${h:--}"
        fi
    done
    [ "$format" = json ] && printf '\n]\n'
    return 0
}

case "${1:-}" in
    up) up ;;
    down) down ;;
    status) shift; status "$@" ;;
    *) echo "usage: scripts/localnet.sh up|down|status [--format json]" >&2; exit 2 ;;
esac
