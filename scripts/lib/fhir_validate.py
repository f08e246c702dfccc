#!/usr/bin/env python3
"""Checks that a JSON file is a valid FHIR R4 (4.0.1) resource, independently of Cradle's code.

    python3 scripts/lib/fhir_validate.py FILE     (or - / no argument for standard input)

Prints one line: "ok: N resources" (a Bundle counts itself and each entry's resource), or
"error: ..." with every problem found. Exit codes: 0 valid, 1 invalid, 2 bad usage or unreadable
file, 3 fhir.resources missing or not the pinned version.

The models come from fhir.resources 6.4.0, the last release generated from FHIR 4.0.1 (6.5.0
moved to 4.3.0, R4B; 7 and 8 are R5 with R4B beside it). They check element names, types,
cardinality, required elements and primitive formats. They do not check required value-set
bindings or FHIRPath invariants, so the few that Cradle's resources depend on are checked here
by hand (see R4_CHECKS).

fhir.resources 6.4.0 is written for pydantic 1. Where the machine has pydantic 2 (other tools
need it), the pydantic 1 API that pydantic 2 ships as `pydantic.v1` is put under the name
`pydantic` for this process only, so nothing installed has to change.
"""

import importlib
import importlib.abc
import importlib.metadata
import importlib.util
import json
import sys

FHIR_RESOURCES_VERSION = "6.4.0"
INSTALL = f"python3 -m pip install 'fhir.resources=={FHIR_RESOURCES_VERSION}'"


class _PydanticV1Alias(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    """Resolves `pydantic` and `pydantic.X` to `pydantic.v1` and `pydantic.v1.X`."""

    def find_spec(self, name, path, target=None):
        if (name == "pydantic" or name.startswith("pydantic.")) and not name.startswith(
            "pydantic.v1"
        ):
            return importlib.util.spec_from_loader(name, self)
        return None

    def create_module(self, spec):
        return importlib.import_module("pydantic.v1" + spec.name[len("pydantic") :])

    def exec_module(self, module):
        pass


def _load_models():
    """Returns fhir.resources' model lookup, or exits 3 naming the install command."""
    try:
        found = importlib.metadata.version("fhir.resources")
    except importlib.metadata.PackageNotFoundError:
        print(f"error: fhir.resources is not installed: {INSTALL}", file=sys.stderr)
        sys.exit(3)
    if found != FHIR_RESOURCES_VERSION:
        print(
            f"error: fhir.resources {found} is installed, FHIR R4 needs "
            f"{FHIR_RESOURCES_VERSION}: {INSTALL}",
            file=sys.stderr,
        )
        sys.exit(3)
    try:
        pydantic_major = importlib.metadata.version("pydantic").split(".")[0]
    except importlib.metadata.PackageNotFoundError:
        pydantic_major = None
    if pydantic_major == "2":
        # Load the real pydantic.v1 first, then hide pydantic 2's own modules behind the alias.
        importlib.import_module("pydantic.v1")
        for name in list(sys.modules):
            if (name == "pydantic" or name.startswith("pydantic.")) and not name.startswith(
                "pydantic.v1"
            ):
                del sys.modules[name]
        sys.meta_path.insert(0, _PydanticV1Alias())
    try:
        fhir = importlib.import_module("fhir.resources")
    except ImportError as e:
        print(f"error: fhir.resources does not load ({e}): {INSTALL}", file=sys.stderr)
        sys.exit(3)
    if fhir.__fhir_version__ != "4.0.1":
        print(f"error: fhir.resources models FHIR {fhir.__fhir_version__}, not 4.0.1", file=sys.stderr)
        sys.exit(3)
    return fhir.get_fhir_model_class


def _codes(*codes):
    return frozenset(codes)


# Required bindings and invariants of FHIR R4 that the models leave unchecked, for the resources
# Cradle exports. Each returns a list of problems.
def _check_bundle(r):
    out = []
    kinds = _codes(
        "document", "message", "transaction", "transaction-response", "batch",
        "batch-response", "history", "searchset", "collection",
    )
    if r.get("type") not in kinds:
        out.append(f"type: {r.get('type')!r} is not a Bundle type")
    if "total" in r and r.get("type") not in ("searchset", "history"):
        out.append("bdl-1: total only when a search or history")
    for i, e in enumerate(r.get("entry", [])):
        if "search" in e and r.get("type") != "searchset":
            out.append(f"entry[{i}]: bdl-2: entry.search only when a search")
    return out


def _check_audit_event(r):
    out = []
    if "action" in r and r["action"] not in _codes("C", "R", "U", "D", "E"):
        out.append(f"action: {r['action']!r} is not an audit-event-action")
    if "outcome" in r and r["outcome"] not in _codes("0", "4", "8", "12"):
        out.append(f"outcome: {r['outcome']!r} is not an audit-event-outcome")
    for i, e in enumerate(r.get("entity", [])):
        if "name" in e and "query" in e:
            out.append(f"entity[{i}]: sev-1: either a name or a query, not both")
    return out


def _check_consent(r):
    out = []
    statuses = _codes("draft", "proposed", "active", "rejected", "inactive", "entered-in-error")
    if r.get("status") not in statuses:
        out.append(f"status: {r.get('status')!r} is not a consent-state-code")
    if "policy" not in r and "policyRule" not in r:
        out.append("ppc-1: either a policy or a policyRule")
    privacy = any(
        c.get("code") == "patient-privacy" for c in r.get("scope", {}).get("coding", [])
    )
    if privacy and "patient" not in r:
        out.append("ppc-2: a privacy consent needs a patient")

    def provision(p, where):
        if "type" in p and p["type"] not in _codes("deny", "permit"):
            out.append(f"{where}.type: {p['type']!r} is not a consent-provision-type")
        for i, d in enumerate(p.get("data", [])):
            if d.get("meaning") not in _codes("instance", "related", "dependents", "authoredby"):
                out.append(f"{where}.data[{i}].meaning: {d.get('meaning')!r} is not a consent-data-meaning")
        for i, sub in enumerate(p.get("provision", [])):
            provision(sub, f"{where}.provision[{i}]")

    if "provision" in r:
        provision(r["provision"], "provision")
    return out


R4_CHECKS = {"Bundle": _check_bundle, "AuditEvent": _check_audit_event, "Consent": _check_consent}


def _one_line(err):
    """A pydantic ValidationError as "where: what" items."""
    try:
        items = err.errors()
    except AttributeError:
        return [str(err).replace("\n", " ")]
    out = []
    for item in items:
        loc = ".".join(str(x) for x in item.get("loc", ()) if x != "__root__")
        out.append(f"{loc or '(resource)'}: {item.get('msg')}")
    return out


def _validate(model_class, resource, where):
    """Problems with one resource, each prefixed by `where`."""
    if not isinstance(resource, dict):
        return [f"{where}: not a JSON object"]
    kind = resource.get("resourceType")
    if not isinstance(kind, str):
        return [f"{where}: no resourceType"]
    label = f"{where} {kind}" + (f"/{resource['id']}" if "id" in resource else "")
    try:
        cls = model_class(kind)
    except Exception:
        return [f"{label}: unknown resourceType"]
    problems = []
    try:
        cls.parse_obj(resource)
    except Exception as e:  # pydantic's ValidationError, or a model's own ValueError
        problems.extend(_one_line(e))
    check = R4_CHECKS.get(kind)
    if check:
        problems.extend(check(resource))
    return [f"{label}: {p}" for p in problems]


def main(argv):
    if len(argv) > 2 or (len(argv) == 2 and argv[1] in ("-h", "--help")):
        print("usage: fhir_validate.py [FILE|-]", file=sys.stderr)
        return 2
    path = argv[1] if len(argv) == 2 else "-"
    try:
        text = sys.stdin.read() if path == "-" else open(path, encoding="utf-8").read()
    except OSError as e:
        print(f"error: cannot read {path}: {e.strerror}", file=sys.stderr)
        return 2
    model_class = _load_models()
    try:
        doc = json.loads(text)
    except ValueError as e:
        print(f"error: not JSON: {e}")
        return 1
    count = 1
    resources = []
    if isinstance(doc, dict) and doc.get("resourceType") == "Bundle" and isinstance(
        doc.get("entry"), list
    ):
        # The Bundle is checked without its entries' resources, which are then checked one by
        # one, so each problem is reported once and names the entry it is in.
        doc = dict(doc)
        doc["entry"] = [dict(e) if isinstance(e, dict) else e for e in doc["entry"]]
        for i, entry in enumerate(doc["entry"]):
            if isinstance(entry, dict) and "resource" in entry:
                resources.append((i, entry.pop("resource")))
    problems = _validate(model_class, doc, "resource")
    for i, resource in resources:
        count += 1
        problems.extend(_validate(model_class, resource, f"entry[{i}]"))
    if problems:
        print("error: " + "; ".join(problems))
        return 1
    print(f"ok: {count} resources")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
