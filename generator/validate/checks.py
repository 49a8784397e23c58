"""What a check is, and the checks that are not about one object's content: schema, render, missing schema.

Every finding names a check by id. The policy (``policy.py``), cross-reference (``references.py``) and
kustomization-file (``kustomizations.py``) modules each keep a table of their own; ``catalog()`` in the package
joins them for the report, the ``--skip`` option and the docs.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Check:
    id: str
    severity: str  # "error" | "warning"
    message: str  # what is wrong, as a short sentence without a full stop
    fix: str  # how to fix it, one or two sentences


@dataclass(frozen=True)
class Violation:
    check: Check
    detail: str

    @property
    def message(self) -> str:
        return f"{self.check.message}: {self.detail}" if self.detail else self.check.message


SCHEMA = Check(
    "GF100", "error", "Object does not match its schema",
    "Fix the field named in the message: a typo, a wrong type or a field the API does not have.",
)
RENDER = Check(
    "GF101", "error", "Entrypoint does not build",
    "Run `kubectl kustomize <dir>` (Flux entrypoints: add --load-restrictor=LoadRestrictionsNone) and fix the "
    "file it names.",
)
MISSING_SCHEMA = Check(
    "GF102", "error", "No schema to validate the object against",
    "Add a --schema-location that has the kind (a CRDs-catalog checkout or URL template), commit the CRD to the "
    "repo, or accept it with --ignore-missing-schemas.",
)

CORE_CHECKS = [SCHEMA, RENDER, MISSING_SCHEMA]
