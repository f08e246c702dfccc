# Shared by the scripts: where builds go and what a fresh Debian machine must install first.
# Sourced, not run.

# Builds are shared across clones and runs: the bundled C++ dependencies take minutes to compile.
# Every script builds the same set (`--workspace --release --all-targets`): cargo unifies the
# features of shared dependencies per invocation, and a different set gives RocksDB another build
# hash, which means compiling its C++ again.
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/cradle-target}"

# Installs the Debian packages named (none: nothing to do); needs root.
cradle_apt_install() {
    [ "$#" -gt 0 ] || return 0
    if [ "$(id -u)" -ne 0 ]; then
        echo "missing Debian packages: $* (run as root or install them)" >&2
        exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

cradle_install_build_deps() {
    local missing=()
    command -v cargo >/dev/null || { echo "cargo not found: install the Rust toolchain" >&2; exit 1; }
    # bindgen (RocksDB's bindings) needs libclang; a C++ compiler builds the bundled RocksDB.
    ldconfig -p 2>/dev/null | grep -Eq 'libclang(-[0-9.]+)?\.so' || missing+=(libclang-dev)
    command -v c++ >/dev/null || missing+=(g++)
    command -v pkg-config >/dev/null || missing+=(pkg-config)
    cradle_apt_install "${missing[@]}"
}

# The fault tests make network namespaces (ip, from iproute2), and disks on a tmpfs and an ext4
# loop device (mkfs.ext4 and e2fsck, from e2fsprogs; mount and losetup, from util-linux and
# mount). They need root, as CI has it.
cradle_install_fault_test_deps() {
    local missing=()
    command -v ip >/dev/null || missing+=(iproute2)
    command -v mkfs.ext4 >/dev/null || missing+=(e2fsprogs)
    command -v losetup >/dev/null || missing+=(mount)
    cradle_apt_install "${missing[@]}"
}

# The portal's verification library is tested with Node.js's own test runner (WebCrypto with
# Ed25519 and X25519, Node.js 20 or later).
cradle_install_node() {
    command -v node >/dev/null || cradle_apt_install nodejs
}

# The portal's browser test (tests/tests/portal.rs) drives Debian's headless Chromium through
# chromedriver, shows the page's Simplified Chinese in its screenshots with a CJK font, and makes
# the operator certificate browsers are served with openssl.
cradle_install_chromium() {
    local missing=()
    command -v chromium >/dev/null || missing+=(chromium)
    command -v chromedriver >/dev/null || missing+=(chromium-driver)
    command -v openssl >/dev/null || missing+=(openssl)
    { command -v fc-list >/dev/null && fc-list :lang=zh | grep -q .; } || missing+=(fonts-wqy-microhei)
    cradle_apt_install "${missing[@]}"
}

# Every rebuild of a test or binary leaves its previous executable (hundreds of MB with debug
# info) in the shared target dir; a disk that fills makes every test fail. Keeps the two newest
# of each name (a crate's binary and its unit tests share a name).
cradle_prune_stale_builds() {
    local deps="$CARGO_TARGET_DIR/release/deps"
    [ -d "$deps" ] || return 0
    find "$deps" -maxdepth 1 -type f -perm -u+x -regextype posix-extended \
        -regex '.*/[A-Za-z0-9_]+-[0-9a-f]{16}' -printf '%T@ %p\n' 2>/dev/null |
        sort -rn |
        awk '{ path = $2; name = path; sub(/-[0-9a-f]{16}$/, "", name); if (seen[name]++ >= 2) print path }' |
        while read -r stale; do rm -f "$stale" "$stale.d"; done
}

# The FHIR export's tests check it with an independent validator (scripts/lib/fhir_validate.py),
# which needs fhir.resources 6.4.0: the last release with the FHIR R4 (4.0.1) models. The check
# asks for the installed version rather than importing the package: 6.4.0 is written for
# pydantic 1 and only imports through the validator's compatibility shim where pydantic 2 is
# installed.
CRADLE_FHIR_RESOURCES_VERSION=6.4.0
cradle_install_fhir_validator() {
    local spec="fhir.resources==$CRADLE_FHIR_RESOURCES_VERSION" missing=()
    command -v python3 >/dev/null || missing+=(python3)
    { command -v python3 >/dev/null && python3 -m pip --version >/dev/null 2>&1; } || missing+=(python3-pip)
    cradle_apt_install "${missing[@]}"
    python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('fhir.resources') != '$CRADLE_FHIR_RESOURCES_VERSION')" 2>/dev/null && return 0
    # Debian's own python3 refuses pip installs outside a virtualenv (PEP 668); the validator
    # runs under the machine's python3, so install there all the same.
    python3 -m pip install --quiet --disable-pip-version-check "$spec" 2>/dev/null ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$spec"
}

# The archive store's object-storage backend is tested against a real S3-compatible server on
# loopback: moto in server mode (flask), started by the test itself.
CRADLE_MOTO_VERSION=5.2.1
cradle_install_s3_server() {
    python3 -c "import importlib.metadata as m, sys, moto.server, flask; sys.exit(m.version('moto') != '$CRADLE_MOTO_VERSION')" 2>/dev/null && return 0
    local spec="moto[server]==$CRADLE_MOTO_VERSION"
    python3 -m pip install --quiet --disable-pip-version-check "$spec" 2>/dev/null ||
        python3 -m pip install --quiet --disable-pip-version-check --break-system-packages "$spec"
}
