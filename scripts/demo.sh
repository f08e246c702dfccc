#!/usr/bin/env bash
# What the consortium is for, on a running localnet (scripts/localnet.sh up): County Hospital 1
# registers a mother's prenatal record; County Hospital 2 is refused, then reads it once she
# consents, is refused again after she revokes, and breaks the glass in an emergency; she and
# the regional health commission then audit every access, verified from genesis.
#
#   scripts/demo.sh [RECORD]     RECORD defaults to a synthetic prenatal FHIR bundle from
#                                ../shared/testdata/fhir-prenatal
#
# Environment: LOCALNET_DIR (default ./localnet). Writes its keys and files to a temporary
# directory it removes at the end; every access it makes stays on the ledger, as it should.
set -euo pipefail
repo="$(cd "$(dirname "$0")/.." && pwd)"
. "$repo/scripts/lib/env.sh"

dir="${LOCALNET_DIR:-$PWD/localnet}"
cradle="$CARGO_TARGET_DIR/release/cradle"
record="${1:-$repo/../shared/testdata/fhir-prenatal/Nona_Kris_5f72d2e8-c56b-4288-a829-c1c1ebfad423.json}"

die() { echo "demo: $*" >&2; exit 1; }
[ -x "$cradle" ] || die "missing $cradle: run scripts/localnet.sh up first"
[ -f "$dir/genesis.json" ] || die "no localnet in $dir: run scripts/localnet.sh up first"
[ -f "$record" ] || die "no record at $record"

api() { sed -n '/^\[api\]/,/^\[/s/^listen *= *"\(.*\)"/https:\/\/\1/p' "$dir/$1/config.toml" | head -1; }
A=$(api node0)     # County Hospital 1, the custodian
B_NODE=$(api node1)
HA="$dir/node0/node.key"
HB="$dir/node1/node.key"
REG="$dir/regulator/regulator.key"
GEN="$dir/genesis.json"
# The genesis every command trusts: member keys and each node's TLS identity come from it.
export CRADLE_GENESIS="$GEN"

work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
step() { printf '\n== %s\n' "$*"; }
# A refusal is part of the story: show it, and go on.
refused() { if "$@"; then die "expected a refusal: $*"; fi; }

step "the mother makes her key and proves she holds it; County Hospital 1 enrols her (keys only, no name)"
"$cradle" keygen --out "$work/patient.key"
P="$work/patient.key"
"$cradle" --node "$A" --key "$HA" patient enrol "$P.pub"

step "County Hospital 1 encrypts her prenatal record on its own machine and registers it"
ID=$("$cradle" --node "$A" --key "$HA" archive put "$record" --patient "$P.pub" --category prenatal-visit)
echo "archive $ID"

step "County Hospital 2 asks for it: no consent yet, refused and logged"
refused "$cradle" --node "$B_NODE" --key "$HB" archive get "$ID" --purpose TREAT --out "$work/b.json" --custodian "$A"

step "she allows County Hospital 2 to read her records for treatment, for 30 days"
G=$("$cradle" --node "$A" --key "$P" consent grant --grantee "County Hospital 2" --purpose TREAT --expires 30d)
"$cradle" --node "$A" --key "$P" consent list

step "County Hospital 2 reads it: the access is committed to the ledger before any byte is sent"
"$cradle" --node "$B_NODE" --key "$HB" archive get "$ID" --purpose TREAT --out "$work/b.json" --custodian "$A"
cmp "$record" "$work/b.json" && echo "identical to the original"

step "research is not treatment: refused and logged"
refused "$cradle" --node "$B_NODE" --key "$HB" archive get "$ID" --purpose HRESCH --out "$work/r.json" --custodian "$A"

step "she revokes; County Hospital 2 is refused from the next block on"
"$cradle" --node "$A" --key "$P" consent revoke "$G"
refused "$cradle" --node "$B_NODE" --key "$HB" archive get "$ID" --purpose TREAT --out "$work/b2.json" --custodian "$A"

step "an emergency: County Hospital 2 breaks the glass, with a justification; flagged for audit"
"$cradle" --node "$B_NODE" --key "$HB" archive get "$ID" --purpose ETREAT \
    --justification "postpartum haemorrhage on arrival, patient unconscious" --out "$work/e.json" --custodian "$A"

step "she asks who read her records, verified from genesis without trusting the node"
"$cradle" --node "$(api node3)" --key "$P" audit --patient "$P.pub" --verify --genesis "$GEN" \
    --checkpoint "$work/patient-checkpoint.json"

step "the regional health commission reviews every break-glass access"
"$cradle" --node "$(api node2)" --key "$REG" audit --break-glass --verify --genesis "$GEN" \
    --checkpoint "$work/regulator-checkpoint.json"
