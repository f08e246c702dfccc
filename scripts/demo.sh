#!/usr/bin/env bash
# What the consortium is for, on a running localnet (scripts/localnet.sh up). Records are read by
# people, each with her own key: the institutions register their clinicians (names stay in each
# hospital's own directory, never on the ledger). An obstetrician at County Hospital 1 registers a
# mother's prenatal record; a midwife at Township Clinic 1 is refused, then reads it once the
# mother consents, and is refused again after she revokes; an obstetrician at County Hospital 2
# reads under a grant for obstetricians only; the hospital's own key is refused (a person reads);
# an emergency physician breaks the glass. The mother and the regional health commission then
# audit every access, by person, verified from genesis.
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
A=$(api node0)      # County Hospital 1, the custodian
B_NODE=$(api node1) # County Hospital 2
C_NODE=$(api node2) # Township Clinic 1
HA="$dir/node0/node.key"
HB="$dir/node1/node.key"
HC="$dir/node2/node.key"
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

step "each clinician makes her own key on her own machine; her institution registers her role and department"
for who in li-na wang-fang zhang-wei chen-jing; do "$cradle" keygen --out "$work/$who.key" >/dev/null; done
"$cradle" --node "$A" --key "$HA" staff add "$work/li-na.key.pub" --role obstetrician \
    --department obstetrics --name "Li Na" --staff-number CH1-0042
"$cradle" --node "$C_NODE" --key "$HC" staff add "$work/wang-fang.key.pub" --role midwife \
    --department maternal-child-health --name "Wang Fang" --staff-number TC1-007
"$cradle" --node "$B_NODE" --key "$HB" staff add "$work/zhang-wei.key.pub" --role obstetrician \
    --department obstetrics --name "Zhang Wei" --staff-number CH2-0311
"$cradle" --node "$B_NODE" --key "$HB" staff add "$work/chen-jing.key.pub" --role emergency-physician \
    --department emergency --name "Chen Jing" --staff-number CH2-0520
"$cradle" --node "$B_NODE" --key "$HB" staff list

step "obstetrician Li Na encrypts the mother's prenatal record on her machine and registers it for County Hospital 1"
ID=$("$cradle" --node "$A" --key "$work/li-na.key" archive put "$record" --patient "$P.pub" --category prenatal-visit)
echo "archive $ID"

step "midwife Wang Fang at Township Clinic 1 asks for it: no consent yet, refused and logged"
refused "$cradle" --node "$C_NODE" --key "$work/wang-fang.key" archive get "$ID" --purpose TREAT \
    --out "$work/c.json" --custodian "$A"

step "the mother allows Township Clinic 1 to read her records for treatment, for 30 days"
G=$("$cradle" --node "$A" --key "$P" consent grant --grantee "Township Clinic 1" --purpose TREAT --expires 30d)
"$cradle" --node "$A" --key "$P" consent list

step "Wang Fang reads it: the access is committed before any byte is sent, the key re-wrapped for her alone"
"$cradle" --node "$C_NODE" --key "$work/wang-fang.key" archive get "$ID" --purpose TREAT \
    --out "$work/c.json" --custodian "$A"
cmp "$record" "$work/c.json" && echo "identical to the original"

step "she is referred to County Hospital 2: the mother allows its obstetricians (only) to read"
"$cradle" --node "$A" --key "$P" consent grant --grantee "County Hospital 2" --purpose TREAT \
    --roles obstetrician --expires 30d
"$cradle" --node "$B_NODE" --key "$work/zhang-wei.key" archive get "$ID" --purpose TREAT \
    --out "$work/b.json" --custodian "$A"

step "County Hospital 2's own key is not a person: refused and logged"
refused "$cradle" --node "$B_NODE" --key "$HB" archive get "$ID" --purpose TREAT --out "$work/hb.json" --custodian "$A"

step "research is not treatment: refused and logged"
refused "$cradle" --node "$B_NODE" --key "$work/zhang-wei.key" archive get "$ID" --purpose HRESCH \
    --out "$work/r.json" --custodian "$A"

step "the mother revokes the clinic's grant; Wang Fang is refused from the next block on"
"$cradle" --node "$A" --key "$P" consent revoke "$G"
refused "$cradle" --node "$C_NODE" --key "$work/wang-fang.key" archive get "$ID" --purpose TREAT \
    --out "$work/c2.json" --custodian "$A"

step "an emergency: Chen Jing, emergency physician at County Hospital 2, breaks the glass with a justification"
"$cradle" --node "$B_NODE" --key "$work/chen-jing.key" archive get "$ID" --purpose ETREAT \
    --justification "postpartum haemorrhage on arrival, patient unconscious" --out "$work/e.json" --custodian "$A"

step "the mother asks who read her records: each person by role and name, verified from genesis"
"$cradle" --node "$(api node3)" --key "$P" audit --patient "$P.pub" --verify --genesis "$GEN" \
    --checkpoint "$work/patient-checkpoint.json"

step "the regional health commission reviews every break-glass access, and who broke the glass"
"$cradle" --node "$C_NODE" --key "$REG" audit --break-glass --verify --genesis "$GEN" \
    --checkpoint "$work/regulator-checkpoint.json"
