#!/usr/bin/env python3
"""Regenerates api/schema/*.json from the agent-sandbox CRD manifests.

Usage: scripts/gen-api-schema.py CRD_DIR [OUT_DIR]

CRD_DIR holds the upstream CRD YAMLs (k8s/crds/ of kubernetes-sigs/agent-sandbox).
For every served version of every CRD it writes OUT_DIR/<plural>.<version>.json:
the openAPIV3Schema reduced to the keywords the sbx schema walker understands
(descriptions, CEL rules and printer hints dropped), as compact JSON with sorted
keys so regeneration gives byte-identical files.

sbx extensions are merged in here, so they survive regeneration:
  Sandbox status.containerStatuses and status.initContainerStatuses:
  Kubernetes ContainerStatus objects, as a Pod's status holds them.
  SandboxWarmPool status.conditions: metav1.Condition, the same schema as
  SandboxClaim's status.conditions of the same version (copied from that CRD,
  so the two never drift), where the pool says why it is not Ready.
"""
import copy
import glob
import json
import os
import sys

import yaml

KEEP = {
    "type", "properties", "items", "required", "enum", "default", "minimum",
    "maximum", "exclusiveMinimum", "exclusiveMaximum", "format", "pattern",
    "maxLength", "minLength", "maxItems", "minItems", "maxProperties",
    "minProperties", "x-kubernetes-preserve-unknown-fields",
    "x-kubernetes-int-or-string", "additionalProperties", "nullable",
    "x-kubernetes-list-type", "x-kubernetes-list-map-keys",
}

class SameAs:
    """An extension field whose schema is a field of another kind's schema
    (same version), by a path of property names."""

    def __init__(self, kind, *path):
        self.kind = kind
        self.path = path

    def resolve(self, schemas, version):
        schema = schemas[(self.kind, version)]
        for name in self.path:
            schema = schema["properties"][name]
        return schema


EXTENSIONS = {
    ("Sandbox", "status"): {
        "containerStatuses": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
        "initContainerStatuses": {
            "type": "array",
            "items": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
        },
    },
    ("SandboxWarmPool", "status"): {
        "conditions": SameAs("SandboxClaim", "status", "conditions"),
    },
}


def reduce(schema):
    if not isinstance(schema, dict):
        return schema
    out = {}
    for key, value in schema.items():
        if key not in KEEP:
            continue
        if key == "properties":
            out[key] = {name: reduce(sub) for name, sub in value.items()}
        elif key in ("items", "additionalProperties") and isinstance(value, dict):
            out[key] = reduce(value)
        elif key == "x-kubernetes-list-type" and value == "atomic":
            continue  # the default; says nothing to a validator
        else:
            out[key] = value
    return out


def main():
    if len(sys.argv) not in (2, 3):
        sys.exit(__doc__)
    crd_dir = sys.argv[1]
    out_dir = sys.argv[2] if len(sys.argv) == 3 else os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "api", "schema")
    paths = sorted(glob.glob(os.path.join(crd_dir, "*.yaml")))
    if not paths:
        sys.exit("no CRD YAMLs in " + crd_dir)
    schemas = {}  # (kind, version) -> reduced schema
    plurals = {}
    for path in paths:
        with open(path) as f:
            crd = yaml.safe_load(f)
        if crd.get("kind") != "CustomResourceDefinition":
            continue
        kind = crd["spec"]["names"]["kind"]
        plurals[kind] = crd["spec"]["names"]["plural"]
        for version in crd["spec"]["versions"]:
            if version.get("served", True):
                schemas[(kind, version["name"])] = reduce(version["schema"]["openAPIV3Schema"])
    # Resolved against the upstream schemas before any extension is merged.
    merged = {}
    for kind, version in schemas:
        for (ext_kind, field), props in EXTENSIONS.items():
            if ext_kind != kind:
                continue
            for name, sub in props.items():
                if isinstance(sub, SameAs):
                    sub = sub.resolve(schemas, version)
                merged.setdefault((kind, version, field), {})[name] = copy.deepcopy(sub)
    for (kind, version, field), props in merged.items():
        schemas[(kind, version)]["properties"][field].setdefault("properties", {}).update(props)
    for (kind, version), schema in schemas.items():
        out = os.path.join(out_dir, "%s.%s.json" % (plurals[kind], version))
        with open(out, "w") as f:
            json.dump(schema, f, sort_keys=True, separators=(",", ":"))
            f.write("\n")
        print("wrote", os.path.normpath(out))

if __name__ == "__main__":
    main()
