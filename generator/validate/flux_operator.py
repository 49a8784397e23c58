"""Flux Operator kinds (fluxcd.controlplane.io): FluxInstance, ResourceSet, ResourceSetInputProvider.

Their CRDs are AGPL-3.0 and not converted into the bundle (scripts/crd_sources.yaml); FluxInstance has a strict
schema of our own there (generator/schemas/fluxcd.controlplane.io). When no schema location has a kind, it is
still recognised and checked against the outline written here, also our own: the fields each kind needs, with
everything else left open. ResourceSet `resources` are templates (`<< inputs.name >>`)
rendered by the operator per input, so they are checked as objects only, never against their kinds' schemas.
"""

from __future__ import annotations

import jsonschema

GROUP = "fluxcd.controlplane.io"
SOURCE = "gitops-forge's outline of the Flux Operator kinds (pass --schema-location with the CRD schemas for full checks)"

_OBJECT = {"type": "object"}
_META = {"type": "object", "required": ["name"], "properties": {"name": {"type": "string"}}}


def _kind(spec: dict) -> dict:
    return {
        "type": "object",
        "required": ["apiVersion", "kind", "metadata", "spec"],
        "properties": {"apiVersion": {"type": "string"}, "kind": {"type": "string"}, "metadata": _META, "spec": spec},
    }


OUTLINES = {
    "FluxInstance": _kind({
        "type": "object",
        "required": ["distribution"],
        "properties": {
            "distribution": {
                "type": "object",
                "required": ["version", "registry"],
                "properties": {"version": {"type": "string"}, "registry": {"type": "string"}, "artifact": {"type": "string"}},
            },
            "components": {"type": "array", "items": {"type": "string"}},
            "cluster": _OBJECT,
            "sync": {
                "type": "object",
                "required": ["kind", "url"],
                "properties": {
                    "kind": {"enum": ["GitRepository", "OCIRepository", "Bucket"]},
                    "url": {"type": "string"},
                    "ref": {"type": "string"},
                    "path": {"type": "string"},
                },
            },
            "kustomize": _OBJECT,
        },
    }),
    "ResourceSet": _kind({
        "type": "object",
        "properties": {
            "inputs": {"type": "array", "items": _OBJECT},
            "inputsFrom": {"type": "array", "items": {"type": "object", "required": ["kind"]}},
            "resources": {"type": "array", "items": {"type": "object", "required": ["apiVersion", "kind"]}},
            "resourcesTemplate": {"type": "string"},
            "dependsOn": {"type": "array", "items": _OBJECT},
            "serviceAccountName": {"type": "string"},
            "wait": {"type": "boolean"},
        },
    }),
    "ResourceSetInputProvider": _kind({
        "type": "object",
        "required": ["type"],
        "properties": {"type": {"type": "string"}, "url": {"type": "string"}, "defaultValues": _OBJECT},
    }),
}


def validator(group: str, kind: str):
    """(validator, source) for a Flux Operator kind, or None for any other kind."""
    if group != GROUP or kind not in OUTLINES:
        return None
    return jsonschema.Draft202012Validator(OUTLINES[kind]), SOURCE
