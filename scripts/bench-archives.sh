#!/usr/bin/env bash
# The archive benchmark, end to end: a fresh 4-member localnet on this machine, a patient enrolled
# by hospital A, a file of incompressible data (1 GiB by default), then, --runs times:
#   put  `cradle archive put` with A's key on A's node: encrypting twice (a hash pass, then the
#        upload pass), the upload with the node's own hashing and fsync, and the commit of the
#        registration transaction;
#   get  `cradle archive get` with hospital B's key from A's node, under a TREAT grant from the
#        patient: the access record committed before release, the streaming download, the hash
#        check, decryption and fsync; the output must be byte-identical to the input.
# Throughput is plaintext bytes / wall seconds of the whole command, MB = 10^6 bytes. Each run
# also records the client's peak RSS (the design requires streaming: < 64 MiB). The last line on
# stdout is JSON.
#
#   scripts/bench-archives.sh [--mib N] [--runs N] [--store local|s3] [--keep-logs DIR]
#
# --store s3 keeps A's archives in an S3-compatible bucket instead of its data directory: moto's
# S3 server (Python, objects in memory), started here on loopback, so the figure is a lower bound
# set as much by that server as by the node.
#
# Environment: BENCH_SKIP_BUILD=1 to use the binaries already in $CARGO_TARGET_DIR/release,
# LOCALNET_BASE_PORT (default 28600), TMPDIR for the localnet and the big files (needs about
# (runs + 2) x the file size free: the custodian keeps every archive it is given).
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/scripts/lib/env.sh"

usage() { echo "usage: scripts/bench-archives.sh [--mib N] [--runs N] [--store local|s3] [--keep-logs DIR]" >&2; exit 2; }
mib=1024
runs=3
store=local
keep_logs=""
while [ $# -gt 0 ]; do
    case "$1" in
        --mib) [ $# -ge 2 ] || usage; mib="$2"; shift 2 ;;
        --runs) [ $# -ge 2 ] || usage; runs="$2"; shift 2 ;;
        --keep-logs) [ $# -ge 2 ] || usage; keep_logs="$2"; shift 2 ;;
        --store) [ $# -ge 2 ] || usage; store="$2"; shift 2 ;;
        *) usage ;;
    esac
done
[[ "$mib" =~ ^[1-9][0-9]*$ ]] || usage
[[ "$runs" =~ ^[1-9][0-9]*$ ]] || usage
[[ "$store" =~ ^(local|s3)$ ]] || usage

if [ -z "${BENCH_SKIP_BUILD:-}" ]; then
    cradle_install_build_deps
    (cd "$repo" && cargo build --workspace --release --locked --all-targets)
fi
[ "$store" = s3 ] && cradle_install_s3_server
cradle="$CARGO_TARGET_DIR/release/cradle"
[ -x "$cradle" ] || { echo "bench-archives: missing $cradle" >&2; exit 1; }

work="$(mktemp -d)"
net="$work/localnet"
# Every cradle command trusts this genesis: member keys and each node's TLS identity.
export CRADLE_GENESIS="$net/genesis.json"
export LOCALNET_DIR="$net" LOCALNET_SKIP_BUILD=1 LOCALNET_BASE_PORT="${LOCALNET_BASE_PORT:-28600}"
ok=0
cleanup() {
    # A second Ctrl-C (or timeout's signal to the whole group) must not cut the cleanup short:
    # ignore them here, and so in localnet.sh and rm, which inherit that.
    trap '' INT TERM
    "$repo/scripts/localnet.sh" down >/dev/null 2>&1 || true
    [ -n "${s3_pid:-}" ] && kill "$s3_pid" 2>/dev/null || true
    # On failure keep the node logs and the commands' output somewhere they survive the cleanup.
    if [ "$ok" != 1 ] || [ -n "$keep_logs" ]; then
        local dest="${keep_logs:-$(mktemp -d /tmp/bench-archives-logs.XXXXXX)}" f
        mkdir -p "$dest"
        for f in "$net"/node*/node.log; do
            [ -f "$f" ] && cp "$f" "$dest/$(basename "$(dirname "$f")").log"
        done
        cp "$work"/*.log "$work"/*.err "$dest/" 2>/dev/null || true
        echo "bench-archives: logs kept in $dest" >&2
    fi
    rm -rf "$work"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

die() { echo "bench-archives: $*" >&2; exit 1; }
now() { echo "$EPOCHREALTIME"; }
# The string value of a top-level field in the CLI's pretty-printed JSON.
field() { sed -n "s/^  \"$2\": *\"\([^\"]*\)\".*/\1/p" "$1" | head -1; }

# Runs a command with stdout to $1 and stderr to $1.err, and writes its peak RSS in KiB to $1.rss:
# GNU time where it is installed, otherwise the last VmHWM read from /proc while it ran.
measured() {
    local out="$1"; shift
    if [ -x /usr/bin/time ]; then
        /usr/bin/time -o "$out.rss" -f '%M' "$@" >"$out" 2>"$out.err"
    else
        local pid hwm=0 h rc=0
        "$@" >"$out" 2>"$out.err" &
        pid=$!
        while kill -0 "$pid" 2>/dev/null; do
            h=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$pid/status" 2>/dev/null || true)
            [ -n "$h" ] && [ "$h" -gt "$hwm" ] && hwm=$h
            sleep 0.05
        done
        wait "$pid" || rc=$?
        echo "$hwm" >"$out.rss"
        return "$rc"
    fi
}

# The median of the arguments (the mean of the middle two for an even count).
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {m=int((NR+1)/2); if (NR%2) printf "%.1f", v[m]; else printf "%.1f", (v[m]+v[m+1])/2}'; }
join() { local IFS=,; echo "$*"; }

"$repo/scripts/localnet.sh" up >&2
if [ "$store" = s3 ]; then
    # An S3 server on a free loopback port, a bucket, and node 0 restarted to keep its archives
    # there.
    s3_port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    python3 -m moto.server -H 127.0.0.1 -p "$s3_port" >"$work/s3.log" 2>&1 &
    s3_pid=$!
    for _ in $(seq 1 100); do curl -s -o /dev/null "http://127.0.0.1:$s3_port/" && break; sleep 0.1; done
    curl -s -X PUT "http://127.0.0.1:$s3_port/bench" >/dev/null || die "no S3 server"
    kill "$(cat "$net/node0/node.pid")"
    for _ in $(seq 1 100); do kill -0 "$(cat "$net/node0/node.pid")" 2>/dev/null || break; sleep 0.1; done
    printf 'access_key_id = "bench"\nsecret_access_key = "bench"\n' >"$net/node0/s3-credentials"
    chmod 600 "$net/node0/s3-credentials"
    printf '\n[archives.s3]\nendpoint = "http://127.0.0.1:%s"\nbucket = "bench"\ncredentials_file = "s3-credentials"\n' \
        "$s3_port" >>"$net/node0/config.toml"
    "$repo/scripts/localnet.sh" up >&2
fi
url_of() { echo "https://$(sed -n '/^\[api\]/,/^\[/s/^listen *= *"\(.*\)"/\1/p' "$net/node$1/config.toml" | head -1)"; }
node_a="$(url_of 0)"
key_a="$net/node0/node.key"
key_b="$net/node1/node.key"
name_b="$(sed -n 's/^member *= *"\(.*\)"/\1/p' "$net/node1/config.toml" | head -1)"
[ -n "$name_b" ] || die "no member name in $net/node1/config.toml"
node_a_pid="$(cat "$net/node0/node.pid")"

"$cradle" keygen --out "$work/patient.key" >"$work/keygen.log" 2>&1 || die "keygen failed: $(cat "$work/keygen.log")"
"$cradle" --node "$node_a" --key "$key_a" patient enrol "$work/patient.key.pub" --format json \
    >"$work/enrol.log" 2>&1 || die "enrol failed: $(tail -3 "$work/enrol.log")"
# The grantee's obstetrician reads, with her own key (an institution's key reads nothing).
"$cradle" keygen --out "$work/clinician.key" >"$work/keygen.log" 2>&1 || die "keygen failed: $(cat "$work/keygen.log")"
"$cradle" --node "$(url_of 1)" --key "$key_b" staff add "$work/clinician.key.pub" --role obstetrician \
    --department obstetrics --name "Bench Obstetrician" --staff-number B-1 \
    >"$work/staff.log" 2>&1 || die "staff add failed: $(tail -3 "$work/staff.log")"
reader_b="$work/clinician.key"

bytes=$((mib * 1048576))
echo "bench-archives: writing $mib MiB of random data" >&2
head -c "$bytes" /dev/urandom >"$work/input.bin"
[ "$(stat -c %s "$work/input.bin")" = "$bytes" ] || die "short input file"

put_mb_s=() get_mb_s=() put_rss=() get_rss=()
granted=0
for run in $(seq 1 "$runs"); do
    t0=$(now)
    measured "$work/put.$run.log" "$cradle" --node "$node_a" --key "$key_a" archive put "$work/input.bin" \
        --patient "$work/patient.key.pub" --category ultrasound --format json \
        || die "run $run: archive put failed: $(tail -3 "$work/put.$run.log.err")"
    t1=$(now)
    id="$(field "$work/put.$run.log" archive)"
    [[ "$id" =~ ^[0-9a-f]{64}$ ]] || die "run $run: no archive id in the put output: $(cat "$work/put.$run.log")"

    if [ "$granted" = 0 ]; then
        # One grant, after the first archive exists: it covers the later ones too, which their
        # custodian wraps for it at registration.
        "$cradle" --node "$node_a" --key "$work/patient.key" consent grant --grantee "$name_b" \
            --purpose TREAT --expires 1d --format json >"$work/grant.log" 2>&1 \
            || die "consent grant failed: $(tail -3 "$work/grant.log")"
        granted=1
    fi

    rm -f "$work/output.bin"
    t2=$(now)
    measured "$work/get.$run.log" "$cradle" --node "$node_a" --key "$reader_b" archive get "$id" \
        --purpose TREAT --out "$work/output.bin" --format json \
        || die "run $run: archive get failed: $(tail -3 "$work/get.$run.log.err")"
    t3=$(now)
    cmp "$work/input.bin" "$work/output.bin" >&2 \
        || die "run $run: the archive read back differs from the file put (archive $id)"
    rm -f "$work/output.bin"

    p=$(awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN {printf "%.1f", b / (z - a) / 1e6}')
    g=$(awk -v b="$bytes" -v a="$t2" -v z="$t3" 'BEGIN {printf "%.1f", b / (z - a) / 1e6}')
    pr=$(cat "$work/put.$run.log.rss") gr=$(cat "$work/get.$run.log.rss")
    put_mb_s+=("$p") get_mb_s+=("$g") put_rss+=("$pr") get_rss+=("$gr")
    hwm=$(sed -n 's/^VmHWM:[[:space:]]*\([0-9]*\) kB/\1/p' "/proc/$node_a_pid/status" 2>/dev/null || echo 0)
    printf 'bench-archives: run %d: put %.2f s %s MB/s (client peak RSS %d KiB), get %.2f s %s MB/s (client peak RSS %d KiB); custodian node peak RSS so far %d KiB\n' \
        "$run" "$(awk -v a="$t0" -v z="$t1" 'BEGIN {print z - a}')" "$p" "$pr" \
        "$(awk -v a="$t2" -v z="$t3" 'BEGIN {print z - a}')" "$g" "$gr" "$hwm" >&2
done

kib_max() { printf '%s\n' "$@" | sort -n | tail -1; }
ok=1
printf '{"store":"%s","mib":%d,"runs":%d,"put_mb_s":[%s],"get_mb_s":[%s],"put_median_mb_s":%s,"get_median_mb_s":%s,"put_client_max_rss_kib":%s,"get_client_max_rss_kib":%s,"custodian_max_rss_kib":%s}\n' \
    "$store" "$mib" "$runs" "$(join "${put_mb_s[@]}")" "$(join "${get_mb_s[@]}")" \
    "$(median "${put_mb_s[@]}")" "$(median "${get_mb_s[@]}")" \
    "$(kib_max "${put_rss[@]}")" "$(kib_max "${get_rss[@]}")" "${hwm:-0}"
