"""Strict JSON-schema validation of rendered objects.

Built-in kinds use the strict schemas bundled with kubernetes-validate, loaded once per Kubernetes version
(its own API re-reads a 1.8 MB file per call and stops at the first error). Custom resources are looked up,
in order, in the schema locations the user gives (kubeconform's layout), the schemas bundled with gitops-forge
(generator/schemas/, built by scripts/build_crd_schemas.py for the CRD versions the template pins), the
CustomResourceDefinitions the repo itself renders, and last the online CRDs-catalog (cached). An object with no
schema anywhere is reported as such, never silently passed.
"""

from __future__ import annotations

import functools
import importlib.resources
import json
import re
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import jsonschema
from jsonschema.protocols import Validator
from packaging.version import InvalidVersion, Version
from referencing import Registry, Resource

from ..template_source import cache_dir
from . import go_regex

DEFINITIONS_ID = "https://kubernetes.io/api/_definitions.json"
_PLACEHOLDER = re.compile(r"\{\{\s*\.(\w+)\s*\}\}")
# kubeconform's template variables.
_PLACEHOLDERS = {
    "Group", "ResourceKind", "ResourceAPIVersion", "KindSuffix", "NormalizedKubernetesVersion", "StrictSuffix"
}
_FETCH_TIMEOUT = 10
# kubeconform's convention; the public catalog of CRD schemas (fetched once, then cached).
CRDS_CATALOG = (
    "https://raw.githubusercontent.com/datreeio/CRDs-catalog/main/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
)
BUNDLED_SCHEMAS = Path(__file__).resolve().parents[1] / "schemas"


@dataclass(frozen=True)
class SchemaError:
    path: str  # e.g. spec.template.spec.containers[0].imagePullPolicy
    message: str


@dataclass
class SchemaResult:
    status: str  # "valid" | "invalid" | "missing"
    source: str  # where the schema came from, or why none was found
    errors: list[SchemaError] = field(default_factory=list)


# --- built-in kinds ----------------------------------------------------------------------------------


def _bundle():
    return importlib.resources.files("kubernetes_validate") / "kubernetes-json-schema"


@functools.cache
def bundled_versions() -> tuple[str, ...]:
    names = (p.name for p in _bundle().iterdir() if p.name.endswith("-local-strict"))
    return tuple(sorted((n[1:].removesuffix("-local-strict") for n in names), key=Version))


def resolve_version(requested: str | None) -> str:
    """The newest bundled schema set not newer than ``requested`` (major.minor), like kubernetes-validate."""
    versions = bundled_versions()
    if not requested:
        return versions[-1]
    try:
        want = Version(requested.removeprefix("v")).release[:2]
    except InvalidVersion:
        raise ValueError(f"Kubernetes version {requested!r} is not a version; give major.minor, e.g. 1.33") from None
    fits = [v for v in versions if Version(v).release[:2] <= want]
    if not fits or want > Version(versions[-1]).release[:2]:
        raise ValueError(
            f"Kubernetes {requested} is not covered by the installed kubernetes-validate schemas "
            f"({versions[0]}–{versions[-1]}); pick a version in that range or upgrade kubernetes-validate."
        )
    return fits[-1]


@functools.cache
def _builtin(version: str) -> tuple[Registry, dict[tuple[str, str, str], str]]:
    """The definitions registry and its index (group, version, kind) -> definition name."""
    text = (_bundle() / f"v{version}-local-strict" / "_definitions.json").read_text(encoding="utf-8")
    definitions = json.loads(text)
    index = {}
    for name, schema in definitions["$defs"].items():
        gvks = schema.get("x-kubernetes-group-version-kind") or []
        if len(gvks) == 1:  # shared types (DeleteOptions, WatchEvent) list every group; they are not objects
            gvk = gvks[0]
            index[(gvk["group"], gvk["version"], gvk["kind"])] = name
    return Resource.from_contents(definitions) @ Registry(), index


@functools.cache
def _builtin_validator(version: str, definition: str) -> Validator:
    registry, _ = _builtin(version)
    return jsonschema.Draft202012Validator({"$ref": f"{DEFINITIONS_ID}#/$defs/{definition}"}, registry=registry)


# --- compiled fast path ------------------------------------------------------------------------------
# Most objects are valid. jsonschema-rs (compiled) answers "valid?" ~30x faster than python-jsonschema; only
# objects it finds invalid (or cannot take) go through python-jsonschema, which words every finding, so the
# findings are python-jsonschema's exactly. Formats are not checked by either (python-jsonschema's default).

_compiled: dict[int, tuple[Validator, object | None]] = {}


@functools.cache
def _rs_registry(version: str):
    import jsonschema_rs

    registry, _ = _builtin(version)
    return jsonschema_rs.Registry([(DEFINITIONS_ID, registry.contents(DEFINITIONS_ID))])


def _compiled_valid(validator: Validator, obj: dict, version: str) -> bool:
    """True when the compiled validator of ``validator``'s schema accepts ``obj``; False when it does not, or
    when jsonschema-rs is not installed or cannot take the schema or the object."""
    entry = _compiled.get(id(validator))
    if entry is None or entry[0] is not validator:
        entry = _compiled[id(validator)] = (validator, _compile(validator, version))
    fast = entry[1]
    if fast is None:
        return False
    try:
        return bool(fast.is_valid(obj))  # type: ignore[attr-defined]
    except (TypeError, ValueError, OverflowError):  # e.g. a YAML timestamp, which JSON has no type for
        return False


def _compile(validator: Validator, version: str) -> object | None:
    try:
        import jsonschema_rs
    except ImportError:
        return None
    same_draft = {
        jsonschema.Draft202012Validator: jsonschema_rs.Draft202012Validator,
        jsonschema.Draft201909Validator: jsonschema_rs.Draft201909Validator,
        jsonschema.Draft7Validator: jsonschema_rs.Draft7Validator,
        jsonschema.Draft6Validator: jsonschema_rs.Draft6Validator,
        jsonschema.Draft4Validator: jsonschema_rs.Draft4Validator,
    }.get(type(validator))
    schema = validator.schema
    if same_draft is None or not isinstance(schema, dict):
        return None
    options: dict = {"validate_formats": False}
    if str(schema.get("$ref", "")).startswith(DEFINITIONS_ID):  # a built-in kind: its definition in the bundle
        options["registry"] = _rs_registry(version)
    try:
        return same_draft(schema, **options)
    except Exception:  # noqa: BLE001 - a schema the compiled validator cannot take: python-jsonschema only
        return None


# --- CRDs rendered by the repo -----------------------------------------------------------------------


def crd_schemas(crd: dict, *, drop_descriptions: bool = False) -> dict[tuple[str, str, str], dict]:
    """(group, version, kind) -> strict JSON schema for each version of a CustomResourceDefinition."""
    spec = crd.get("spec") or {}
    group, kind = spec.get("group", ""), (spec.get("names") or {}).get("kind", "")
    out = {}
    for v in spec.get("versions") or []:
        schema = (v.get("schema") or spec.get("validation") or {}).get("openAPIV3Schema")
        if schema:
            # A converted copy; the CRD object stays as rendered.
            strict = _strict(schema, drop_descriptions=drop_descriptions)
            props = strict.setdefault("properties", {})
            for key in ("apiVersion", "kind"):
                props.setdefault(key, {"type": "string"})
            props.setdefault("metadata", {"type": "object"})  # the API server validates metadata itself
            out[(group, v.get("name", ""), kind)] = strict
    return out


# Keywords whose value is one subschema, a list of subschemas, or a map of name -> subschema. Everything else
# (enum, default, example, x-kubernetes-validations, ...) is data and is never rewritten, so a field that happens
# to be called "nullable" or "properties" stays a field.
_ONE_SCHEMA = ("items", "additionalProperties", "not", "additionalItems")
_SCHEMA_LISTS = ("allOf", "anyOf", "oneOf")
_SCHEMA_MAPS = ("properties", "patternProperties", "definitions", "$defs")


def _portable(node):
    """A copy of a JSON schema whose `pattern`s (and `patternProperties` names) are Go regular expressions
    that ECMA-262 and Python read alike (go_regex.py). Only schema keywords are walked, never data."""
    if isinstance(node, list):
        return [_portable(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = dict(node)
    if isinstance(node.get("pattern"), str):
        out["pattern"] = go_regex.portable(node["pattern"])
    for key in _ONE_SCHEMA:
        if isinstance(node.get(key), (dict, list)):
            out[key] = _portable(node[key])
    for key in _SCHEMA_LISTS:
        if isinstance(node.get(key), list):
            out[key] = [_portable(item) for item in node[key]]
    for key in _SCHEMA_MAPS:
        if isinstance(node.get(key), dict):
            rename = go_regex.portable if key == "patternProperties" else (lambda name: name)
            out[key] = {rename(name): _portable(sub) for name, sub in node[key].items()}
    return out


def _strict(node, *, drop_descriptions: bool = False):
    """OpenAPI v3 structural schema -> JSON schema that rejects unknown fields, as the API server prunes them.

    Honours ``x-kubernetes-preserve-unknown-fields`` (left open), ``x-kubernetes-int-or-string`` (integer or
    string), ``nullable`` and ``x-kubernetes-embedded-resource``.
    """
    if isinstance(node, list):  # OpenAPI v2 style tuple items
        return [_strict(n, drop_descriptions=drop_descriptions) for n in node]
    if not isinstance(node, dict):
        return node
    out = {}
    for key, value in node.items():
        if drop_descriptions and key == "description":
            continue
        if key in _ONE_SCHEMA and isinstance(value, (dict, list)):
            value = _strict(value, drop_descriptions=drop_descriptions)
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            value = [_strict(v, drop_descriptions=drop_descriptions) for v in value]
        elif key in _SCHEMA_MAPS and isinstance(value, dict):
            value = {k: _strict(v, drop_descriptions=drop_descriptions) for k, v in value.items()}
        out[key] = value
    node = out
    if node.pop("nullable", False) is True and isinstance(node.get("type"), str):
        node["type"] = [node["type"], "null"]
        if isinstance(node.get("enum"), list) and None not in node["enum"]:
            node["enum"] = [*node["enum"], None]
    if node.get("x-kubernetes-int-or-string") and "anyOf" not in node:
        node["anyOf"] = [{"type": "integer"}, {"type": "string"}]
    if node.get("x-kubernetes-embedded-resource") and "properties" in node:
        for key in ("apiVersion", "kind"):
            node["properties"].setdefault(key, {"type": "string"})
        node["properties"].setdefault("metadata", {"type": "object"})
    open_ended = "additionalProperties" in node or node.get("x-kubernetes-preserve-unknown-fields")
    if "properties" in node and not open_ended:
        node["additionalProperties"] = False
    return node


# --- schemas bundled with gitops-forge ------------------------------------------------------------


@functools.cache
def bundled_schemas() -> dict[str, dict]:
    """``{group}/{kind}_{version}.json`` -> provenance (repo, tag, commit, path, licence, group, kind, version)."""
    provenance = BUNDLED_SCHEMAS / "_provenance.json"
    return json.loads(provenance.read_text(encoding="utf-8")) if provenance.is_file() else {}


def bundled_file(group: str, version: str, kind: str) -> str:
    return f"{group}/{kind.lower()}_{version}.json"


# --- schema locations --------------------------------------------------------------------------------


def _split_api_version(api_version: str) -> tuple[str, str]:
    group, _, version = api_version.rpartition("/")
    return group, version


class SchemaStore:
    """Finds and caches a compiled schema per (group, version, kind) and validates objects against it."""

    def __init__(self, locations: list[str], kubernetes_version: str | None = None, cache: Path | None = None, *,
                 bundled: bool = True, catalog: str | None = None):
        """``locations`` come first, then the bundled schemas (unless ``bundled=False``), then the repo's CRDs
        (add_crds), then ``catalog`` (a URL template, e.g. CRDS_CATALOG; None: no online lookup)."""
        self.kubernetes_version = resolve_version(kubernetes_version)
        self.locations = list(locations)
        self.bundled = bundled
        self.catalog = catalog or None
        for loc in [*self.locations, *([self.catalog] if self.catalog else [])]:
            unknown = set(_PLACEHOLDER.findall(loc)) - _PLACEHOLDERS
            if unknown:
                raise ValueError(f"Schema location {loc!r} uses unknown placeholder(s): {', '.join(sorted(unknown))}.")
        self.cache = cache or cache_dir() / "schemas"
        self.unreachable: set[str] = set()  # locations that failed at network level this run
        self._builtin_index = _builtin(self.kubernetes_version)[1]
        self._builtin_groups = {g for g, _, _ in self._builtin_index}
        self._repo_crds: dict[tuple[str, str, str], dict] = {}
        self._validators: dict[tuple[str, str, str], tuple[Validator, str] | None] = {}
        self._given_validators: dict[tuple[str, str, str], tuple[Validator, str] | None] = {}

    def add_crds(self, objects: Iterable[dict]) -> None:
        for obj in objects:
            if obj.get("kind") == "CustomResourceDefinition" and str(obj.get("apiVersion")).startswith("apiextensions"):
                self._repo_crds.update(crd_schemas(obj))

    def validate(self, obj: dict, *, early: bool = False) -> SchemaResult | None:
        """The object's schema result. ``early`` (while entrypoints still render, so the repo's CRDs are not all
        added yet): None where the answer would depend on them, i.e. a custom kind that neither the schema
        locations nor the bundled schemas have."""
        api_version, kind = str(obj.get("apiVersion", "")), str(obj.get("kind", ""))
        group, version = _split_api_version(api_version)
        if early and group not in self._builtin_groups and self._given((group, version, kind)) is None:
            return None
        if group in self._builtin_groups:
            builtin = f"Kubernetes {self.kubernetes_version}"
            definition = self._builtin_index.get((group, version, kind))
            if definition is None:
                unserved = SchemaError("apiVersion", f"{api_version} {kind} is not served by {builtin}")
                return SchemaResult("invalid", builtin, [unserved])
            found = (_builtin_validator(self.kubernetes_version, definition), builtin)
        else:
            found = self._custom(group, version, kind)
        if found is None:
            from .flux_operator import validator

            found = validator(group, kind)
        if found is None:
            where = [*self.locations, *(["the bundled schemas"] if self.bundled else []), "the repo's CRDs"]
            if self.catalog:
                where.append(self.catalog)
            offline = f" (unreachable: {', '.join(sorted(self.unreachable))})" if self.unreachable else ""
            reason = (f"no schema for {api_version} {kind} in {', '.join(where)}{offline}; "
                      "pass --schema-location with a directory or URL template that has it")
            return SchemaResult("missing", reason)
        validator, source = found
        if _compiled_valid(validator, obj, self.kubernetes_version):
            return SchemaResult("valid", source, [])
        errors = {e for err in validator.iter_errors(obj) for e in _explain(err)}
        errors = sorted(errors, key=lambda e: (e.path, e.message))
        return SchemaResult("invalid" if errors else "valid", source, errors)

    def _custom(self, group: str, version: str, kind: str) -> tuple[Validator, str] | None:
        key = (group, version, kind)
        if key not in self._validators:
            self._validators[key] = self._load(key)
        return self._validators[key]

    def _load(self, key: tuple[str, str, str]) -> tuple[Validator, str] | None:
        if (given := self._given(key)) is not None:
            return given
        if key in self._repo_crds:
            return jsonschema.Draft202012Validator(_portable(self._repo_crds[key])), "CustomResourceDefinition in the repo"
        if self.catalog:
            where = self._fill(self.catalog, *key)
            schema = self._read(where, self.catalog)
            if schema is not None:
                cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
                return cls(_portable(schema)), where
        return None

    def _given(self, key: tuple[str, str, str]) -> tuple[Validator, str] | None:
        """The schema from the locations or the bundled schemas, which come before the repo's CRDs."""
        if key not in self._given_validators:
            self._given_validators[key] = self._load_given(key)
        return self._given_validators[key]

    def _load_given(self, key: tuple[str, str, str]) -> tuple[Validator, str] | None:
        for loc in self.locations:
            where = self._fill(loc, *key)
            schema = self._read(where, loc)
            if schema is not None:
                cls = jsonschema.validators.validator_for(schema, default=jsonschema.Draft202012Validator)
                return cls(_portable(schema)), where
        if self.bundled and (prov := bundled_schemas().get(bundled_file(*key))):
            schema = json.loads((BUNDLED_SCHEMAS / bundled_file(*key)).read_text(encoding="utf-8"))
            origin = f"{prov['repo']} {prov['tag']}" if "repo" in prov else prov["source"]
            return jsonschema.Draft202012Validator(_portable(schema)), f"bundled schema ({origin})"
        return None

    def _fill(self, loc: str, group: str, version: str, kind: str) -> str:
        """A location's file or URL for one kind. Plain directories and URLs use ``{group}/{kind}_{version}.json``."""
        if not _PLACEHOLDER.search(loc):
            return f"{loc.rstrip('/')}/{group}/{kind.lower()}_{version}.json"
        values = {
            "Group": group,
            "ResourceKind": kind.lower(),
            "ResourceAPIVersion": version,
            "KindSuffix": f"-{group.split('.')[0]}-{version}" if group else f"-{version}",
            "NormalizedKubernetesVersion": f"v{self.kubernetes_version}",
            "StrictSuffix": "-strict",
        }
        return _PLACEHOLDER.sub(lambda m: values[m.group(1)], loc)

    def _read(self, where: str, loc: str) -> dict | None:
        if loc in self.unreachable:
            return None
        scheme = urllib.parse.urlsplit(where).scheme
        if scheme in ("http", "https"):
            return self._fetch(where, loc)
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(where).path) if scheme == "file" else where)
        if not path.is_file():
            return None
        try:
            return json.loads(path.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ValueError(f"Schema file {path} is not valid JSON ({exc}); fix or remove it.") from None

    def _fetch(self, url: str, loc: str) -> dict | None:
        parts = urllib.parse.urlsplit(url)
        cached = self.cache / parts.netloc / parts.path.lstrip("/")
        if cached.is_file():
            return json.loads(cached.read_text(encoding="utf-8"))
        try:
            with urllib.request.urlopen(url, timeout=_FETCH_TIMEOUT) as resp:  # noqa: S310 - user-given schema URL
                text = resp.read().decode("utf-8")
            schema = json.loads(text)
        except urllib.error.HTTPError as exc:
            if exc.code != 404:
                self.unreachable.add(loc)
            return None
        except (OSError, ValueError):
            # Offline, or a proxy answered with something that is not a schema: stop asking this location,
            # and say so in every missing-schema result.
            self.unreachable.add(loc)
            return None
        cached.parent.mkdir(parents=True, exist_ok=True)
        partial = cached.with_suffix(".part")
        partial.write_text(text, encoding="utf-8")
        partial.replace(cached)  # never leave a half-written schema in the cache
        return schema


# --- error reporting ---------------------------------------------------------------------------------


def _json_path(parts: Iterable) -> str:
    out = ""
    for p in parts:
        if isinstance(p, int):
            out += f"[{p}]"
        elif re.fullmatch(r"[A-Za-z_$][\w$-]*", str(p)):
            out += f".{p}" if out else str(p)
        else:
            out += f"[{json.dumps(p)}]"
    return out or "(root)"


def _explain(err: jsonschema.ValidationError) -> list[SchemaError]:
    """One error per unknown field (with its own path), otherwise the validator's message, kept short."""
    path = list(err.absolute_path)
    if err.validator == "additionalProperties" and isinstance(err.instance, dict) and err.validator_value is False:
        known = err.schema.get("properties") or {}
        return [SchemaError(_json_path([*path, k]), f"unknown field {k!r}") for k in err.instance if k not in known]
    if err.context and err.validator in ("oneOf", "anyOf"):
        err = jsonschema.exceptions.best_match(err.context)
    message = err.message if len(err.message) <= 200 else err.message[:197] + "..."
    return [SchemaError(_json_path(err.absolute_path), message)]
