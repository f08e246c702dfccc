#!/usr/bin/env bash
# Fuzzes every decoder that takes bytes from outside a process (fuzz/fuzz_targets), one target
# at a time, with libFuzzer through cargo-fuzz on the nightly toolchain.
#
#   scripts/fuzz.sh [--seconds N] [--rss-limit-mb M] [--timeout S] [--seeds] [--build-only] [TARGET...]
#
# --seconds N     run each target for N seconds (default 5)
# --rss-limit-mb  libFuzzer's memory cap per process (default 2048)
# --timeout S     libFuzzer's limit for one input, in seconds (default 10)
# --seeds         rewrite the seed corpora (fuzz/corpus) from the project's fixtures first
# --build-only    build the targets and stop
#
# Builds go to $CARGO_TARGET_DIR/fuzz (by default ~/.cache/cradle-target/fuzz), so reruns on one
# machine reuse them; the first build compiles RocksDB's C++ once more, for this target dir. The
# seeds in fuzz/corpus/TARGET are read only; what the fuzzer finds goes to
# $CARGO_TARGET_DIR/fuzz/corpus/TARGET and grows from run to run, and a crashing input to
# $CARGO_TARGET_DIR/fuzz/artifacts/TARGET. Prints per target its seconds, executions and
# crashes, then one line of JSON; exits 1 if any target crashed.
#
# No sanitizer: the workspace forbids unsafe code, and what the fuzzer looks for is panics,
# arithmetic overflow, debug assertions, runaway memory and slow inputs, which all stop a node;
# without AddressSanitizer every target runs about twice as many inputs.
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/env.sh

seconds=5 rss_limit_mb=2048 timeout_s=10 seeds=0 build_only=0 targets=()
while [ $# -gt 0 ]; do
    case "$1" in
        --seconds) seconds="$2"; shift 2 ;;
        --rss-limit-mb) rss_limit_mb="$2"; shift 2 ;;
        --timeout) timeout_s="$2"; shift 2 ;;
        --seeds) seeds=1; shift ;;
        --build-only) build_only=1; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        -*) echo "unknown option $1" >&2; exit 2 ;;
        *) targets+=("$1"); shift ;;
    esac
done

fuzz_dir="$CARGO_TARGET_DIR/fuzz"
triple=x86_64-unknown-linux-gnu

cradle_install_build_deps
if ! cargo +nightly --version >/dev/null 2>&1; then
    command -v rustup >/dev/null || { echo "no nightly toolchain and no rustup to install one" >&2; exit 1; }
    rustup toolchain install nightly --profile minimal
fi
if ! cargo +nightly fuzz --version >/dev/null 2>&1; then
    cargo install cargo-fuzz --locked
fi

if [ "${#targets[@]}" -eq 0 ]; then
    for f in fuzz/fuzz_targets/*.rs; do
        targets+=("$(basename "$f" .rs)")
    done
fi

echo "fuzz: building ${#targets[@]} targets into $fuzz_dir" >&2
# Sixteen codegen units: the dependency graph (libp2p, axum, RocksDB's bindings) builds several
# times faster than with one, for a few per cent fewer executions.
nice -n 10 cargo +nightly fuzz build -O -s none --codegen-units 16 --target-dir "$fuzz_dir" >&2
bin_dir="$fuzz_dir/$triple/release"

if [ "$seeds" -eq 1 ]; then
    "$bin_dir/seeds" fuzz/corpus >&2
fi
[ "$build_only" -eq 1 ] && exit 0

# Milliseconds as seconds with one decimal.
seconds_of() { printf '%d.%d' $(($1 / 1000)) $(($1 % 1000 / 100)); }

total_execs=0 total_crashes=0 total_ms=0 json_targets=""
printf '%-24s %8s %12s %8s\n' target seconds executions crashes
for t in "${targets[@]}"; do
    bin="$bin_dir/$t"
    [ -x "$bin" ] || { echo "no fuzz target $t" >&2; exit 2; }
    work="$fuzz_dir/corpus/$t" artifacts="$fuzz_dir/artifacts/$t" log="$fuzz_dir/logs/$t.log"
    mkdir -p "$work" "$artifacts" "$(dirname "$log")" "fuzz/corpus/$t"
    before=$(find "$artifacts" -type f | wc -l)
    start_ns=$(date +%s%N)
    # The first corpus directory receives what the run finds; the committed seeds only seed it.
    status=0
    nice -n 10 "$bin" -max_total_time="$seconds" -rss_limit_mb="$rss_limit_mb" \
        -timeout="$timeout_s" -print_final_stats=1 -artifact_prefix="$artifacts/" \
        "$work" "fuzz/corpus/$t" >"$log" 2>&1 || status=$?
    elapsed_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
    elapsed=$(seconds_of "$elapsed_ms")
    execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
    execs=${execs:-0}
    crashes=$(( $(find "$artifacts" -type f | wc -l) - before ))
    if [ "$status" -ne 0 ] && [ "$crashes" -eq 0 ]; then
        crashes=1 # libFuzzer failed without an artifact: count it, the log says why.
    fi
    if [ "$crashes" -gt 0 ]; then
        echo "fuzz: $t crashed; see $log and $artifacts" >&2
        grep -m5 -E 'panicked|ERROR|SUMMARY' "$log" >&2 || true
    fi
    printf '%-24s %8s %12d %8d\n' "$t" "$elapsed" "$execs" "$crashes"
    total_execs=$((total_execs + execs))
    total_crashes=$((total_crashes + crashes))
    total_ms=$((total_ms + elapsed_ms))
    json_targets+="${json_targets:+,}\"$t\":{\"seconds\":$elapsed,\"executions\":$execs,\"crashes\":$crashes}"
done
printf '{"fuzz_targets":%d,"seconds":%s,"executions":%d,"crashes":%d,"per_target":{%s}}\n' \
    "${#targets[@]}" "$(seconds_of "$total_ms")" "$total_execs" "$total_crashes" "$json_targets"
[ "$total_crashes" -eq 0 ]
