# Shared by the scripts: where builds go and what a fresh Debian machine must install first.
# Sourced, not run.

# Builds are shared across clones and runs: the bundled C++ dependencies take minutes to compile.
# Every script builds the same set (`--workspace --release --all-targets`): cargo unifies the
# features of shared dependencies per invocation, and a different set gives RocksDB another build
# hash, which means compiling its C++ again.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cradle-target}"

cradle_install_build_deps() {
    local missing=()
    command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain" >&2; exit 1; }
    # bindgen (RocksDB's bindings) needs libclang; a C++ compiler builds the bundled RocksDB.
    ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9.]+)?\.so' || missing+=(libclang-dev)
    command -v c++ >/dev/null || missing+=(g++)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    if [ "${#missing[@]}" -gt 0 ]; then
        if [ "$(id -u)" -ne 0 ]; then
            echo "missing Debian packages: ${missing[*]} (run as root or install them)" >&2
            exit 1
        fi
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
    fi
}
