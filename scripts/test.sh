#!/usr/bin/env bash
# The whole test suite, as CI runs it: installs what the build needs, then runs every test of the
# workspace in the release profile (the one the benchmarks and the localnet binaries use, so the
# dependencies, RocksDB's C++ among them, are built once).
set -euo pipefail
cd "$(dirname "$0")/.."
. scripts/lib/env.sh
cradle_install_build_deps
cradle_install_fhir_validator
cradle_install_s3_server
cradle_install_fault_test_deps
cradle_install_node
cradle_install_chromium
cradle_prune_stale_builds

cargo fmt --all -- --check
# The black-box tests start the real binaries: build them first.
cargo build --workspace --release --locked --all-targets
# A few seconds of fuzzing per decoder (fuzz/, nightly): before the tests, so that cargo test's
# summary stays the last thing printed.
scripts/fuzz.sh --seconds 5
# The portal's in-page verification, on vectors the Rust tests below check byte for byte.
node --test node/portal/test/
cargo test --workspace --release --locked
