"""Strict schema validation: built-in kinds, schema locations, CRDs from the repo."""

from __future__ import annotations

import json

import jsonschema
import pytest

from generator.validate.schemas import SchemaStore, bundled_versions, crd_schemas, resolve_version

FLUX_KS = {
    "apiVersion": "kustomize.toolkit.fluxcd.io/v1",
    "kind": "Kustomization",
    "metadata": {"name": "apps", "namespace": "flux-system"},
    "spec": {"interval": "10m", "path": "./apps", "prune": True, "sourceRef": {"kind": "GitRepository", "name": "flux-system"}},
}

WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1",
    "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.example.com"},
    "spec": {
        "group": "example.com",
        "names": {"kind": "Widget", "plural": "widgets"},
        "scope": "Namespaced",
        "versions": [
            {
                "name": "v1",
                "served": True,
                "storage": True,
                "schema": {
                    "openAPIV3Schema": {
                        "type": "object",
                        "properties": {
                            "spec": {
                                "type": "object",
                                "properties": {
                                    "size": {"type": "integer"},
                                    "port": {"x-kubernetes-int-or-string": True},
                                    "extra": {"type": "object", "x-kubernetes-preserve-unknown-fields": True},
                                },
                            }
                        },
                    }
                },
            }
        ],
    },
}


@pytest.fixture
def store(schema_locations, tmp_path):
    return SchemaStore(schema_locations, cache=tmp_path / "cache")


def test_typo_in_deployment_is_caught_with_its_path(store, good_deployment):
    d = good_deployment()
    d["spec"]["template"]["spec"]["containers"][0]["imagePullPolcy"] = "Always"
    d["spec"]["replicas"] = "3"
    result = store.validate(d)
    assert result.status == "invalid"
    # Every error, not just the first.
    assert [(e.path, e.message) for e in result.errors] == [
        ("spec.replicas", "'3' is not of type 'integer', 'null'"),
        ("spec.template.spec.containers[0].imagePullPolcy", "unknown field 'imagePullPolcy'"),
    ]
    assert store.validate(good_deployment()).status == "valid"


def test_removed_builtin_api_is_an_error(store):
    result = store.validate({"apiVersion": "policy/v1beta1", "kind": "PodSecurityPolicy", "metadata": {"name": "p"}})
    assert result.status == "invalid"
    assert "not served by Kubernetes" in result.errors[0].message


def test_unknown_field_in_flux_kustomization(store):
    assert store.validate(FLUX_KS).status == "valid"
    bad = json.loads(json.dumps(FLUX_KS))
    bad["spec"]["postbuild"] = {"substitute": {"a": "b"}}
    result = store.validate(bad)
    assert result.status == "invalid"
    assert [e.path for e in result.errors] == ["spec.postbuild"]


def test_missing_schema_is_reported(store):
    result = store.validate({"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}})
    assert result.status == "missing"
    assert "example.com/v1 Widget" in result.source


def test_repo_crds_are_strict(store):
    store.add_crds([WIDGET_CRD])
    widget = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3, "port": "http", "extra": {"anything": [1]}}}
    assert store.validate(widget).status == "valid"
    widget["spec"]["colour"] = "red"
    widget["spec"]["size"] = "big"
    result = store.validate(widget)
    assert [e.path for e in result.errors] == ["spec.colour", "spec.size"]
    assert result.source == "CustomResourceDefinition in the repo"


def test_url_template_location(tmp_path):
    (tmp_path / "s" / "example.com").mkdir(parents=True)
    schema = {"type": "object", "properties": {"spec": {"type": "object", "additionalProperties": False, "properties": {"size": {"type": "integer"}}}}}
    (tmp_path / "s" / "example.com" / "widget-example-v1.json").write_text(json.dumps(schema))
    location = (tmp_path / "s").as_uri() + "/{{ .Group }}/{{.ResourceKind}}{{.KindSuffix}}.json"
    store = SchemaStore([location], cache=tmp_path / "cache")
    result = store.validate({"apiVersion": "example.com/v1", "kind": "Widget", "spec": {"size": 1, "typo": 2}})
    assert [e.path for e in result.errors] == ["spec.typo"]


def test_offline_location_reports_missing_instead_of_failing(tmp_path):
    # Port 9 (discard) refuses connections: the same code path as being offline.
    store = SchemaStore(["http://127.0.0.1:9/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"], cache=tmp_path / "cache")
    result = store.validate({"apiVersion": "example.com/v1", "kind": "Widget"})
    assert result.status == "missing"
    assert "unreachable" in result.source
    assert store.validate({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "c"}}).status == "valid"


def test_bad_options_are_rejected():
    with pytest.raises(ValueError, match="unknown placeholder"):
        SchemaStore(["https://x/{{.Nope}}.json"])
    with pytest.raises(ValueError, match="not covered"):
        resolve_version("9.99")
    assert resolve_version(None) == bundled_versions()[-1]
    assert resolve_version("v1.30.4") == "1.30.0"


def test_http_location_is_cached(tmp_path):
    import functools
    import http.server
    import threading

    root = tmp_path / "served" / "example.com"
    root.mkdir(parents=True)
    (root / "widget_v1.json").write_text(json.dumps({"type": "object", "required": ["spec"]}))
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(tmp_path / "served"))
    handler.log_message = lambda *a: None
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    location = f"http://127.0.0.1:{server.server_port}/{{{{.Group}}}}/{{{{.ResourceKind}}}}_{{{{.ResourceAPIVersion}}}}.json"
    widget = {"apiVersion": "example.com/v1", "kind": "Widget"}
    try:
        assert SchemaStore([location], cache=tmp_path / "cache").validate(widget).status == "invalid"
    finally:
        server.shutdown()
        server.server_close()
    # The server is gone; the cached copy answers.
    assert SchemaStore([location], cache=tmp_path / "cache").validate(widget).status == "invalid"


# --- where CRD schemas come from -------------------------------------------------------------------------

SEALED = {"apiVersion": "bitnami.com/v1alpha1", "kind": "SealedSecret", "metadata": {"name": "s", "namespace": "a"},
          "spec": {"encryptedData": {"k": "AgB"}, "template": {"metadata": {"name": "s"}}}}
WIDGET = {"apiVersion": "example.com/v1", "kind": "Widget", "metadata": {"name": "w"}, "spec": {"size": 3}}


def _location(tmp_path, name: str, schema: dict, file: str = "bitnami.com/sealedsecret_v1alpha1.json") -> str:
    (tmp_path / name / file).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / name / file).write_text(json.dumps(schema))
    return str(tmp_path / name)


def test_bundled_schemas_need_no_location_and_are_strict(tmp_path):
    store = SchemaStore([], cache=tmp_path / "cache")
    result = store.validate(FLUX_KS)
    assert result.status == "valid" and result.source.startswith("bundled schema (github.com/fluxcd/kustomize-controller ")
    assert store.validate(SEALED).status == "valid"
    bad = json.loads(json.dumps(SEALED))
    bad["spec"]["encryptedDta"] = {}
    assert [e.path for e in store.validate(bad).errors] == ["spec.encryptedDta"]
    assert SchemaStore([], bundled=False, cache=tmp_path / "cache").validate(FLUX_KS).status == "missing"


def test_lookup_order_locations_then_bundle_then_repo_crds_then_catalog(tmp_path):
    rejects_all = {"not": {}}
    widget_crd = json.loads(json.dumps(WIDGET_CRD))
    catalog = (tmp_path / "catalog").as_uri() + "/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json"
    _location(tmp_path, "catalog", {"type": "object"}, "example.com/gadget_v1.json")
    _location(tmp_path, "catalog", rejects_all, "example.com/widget_v1.json")
    # A given location wins over the bundle.
    given = _location(tmp_path, "given", rejects_all)
    store = SchemaStore([given], cache=tmp_path / "cache", catalog=catalog)
    assert store.validate(SEALED).source.endswith("sealedsecret_v1alpha1.json")
    # The bundle wins over a CRD in the repo of the same kind.
    store = SchemaStore([], cache=tmp_path / "cache", catalog=catalog)
    sealed_crd = {**widget_crd, "spec": {**widget_crd["spec"], "group": "bitnami.com", "names": {"kind": "SealedSecret"},
                                          "versions": [{**widget_crd["spec"]["versions"][0], "name": "v1alpha1"}]}}
    store.add_crds([widget_crd, sealed_crd])
    assert store.validate(SEALED).source.startswith("bundled schema")
    # A kind the bundle lacks: the repo's CRD before the catalog.
    assert store.validate(WIDGET).source == "CustomResourceDefinition in the repo"
    # Nowhere else: the catalog.
    gadget = {"apiVersion": "example.com/v1", "kind": "Gadget", "metadata": {"name": "g"}}
    assert store.validate(gadget).source.endswith("example.com/gadget_v1.json")


def test_offline_missing_kind_names_the_unreachable_catalog_and_asks_for_a_location(tmp_path):
    store = SchemaStore([], cache=tmp_path / "cache", catalog="http://127.0.0.1:9/{{.Group}}/{{.ResourceKind}}_{{.ResourceAPIVersion}}.json")
    assert store.validate(SEALED).status == "valid"  # bundled kinds never need the network
    result = store.validate(WIDGET)
    assert result.status == "missing"
    assert "the bundled schemas, the repo's CRDs, http://127.0.0.1:9/" in result.source
    assert "(unreachable: http://127.0.0.1:9/" in result.source and "pass --schema-location" in result.source
    assert store.validate(FLUX_KS).status == "valid"  # still fine after the catalog went unreachable


def test_crd_conversion_reads_keywords_not_field_names():
    """Fields that happen to be called like schema keywords stay fields; nullable, int-or-string,
    preserve-unknown-fields and embedded resources are honoured where they are keywords."""
    crd = json.loads(json.dumps(WIDGET_CRD))
    spec = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    spec["properties"].update({
        "nullable": {"type": "string"},
        "properties": {"type": "object", "properties": {"a": {"type": "string"}}},
        "description": {"type": "string", "description": "a field called description"},
        "mode": {"type": "string", "enum": ["a", "b"], "nullable": True},
        "template": {"type": "object", "x-kubernetes-embedded-resource": True, "x-kubernetes-preserve-unknown-fields": True,
                     "properties": {"spec": {"type": "object"}}},
    })
    schema = crd_schemas(crd, drop_descriptions=True)[("example.com", "v1", "Widget")]
    props = schema["properties"]["spec"]["properties"]
    assert props["nullable"] == {"type": "string"}
    assert props["properties"]["additionalProperties"] is False and "additionalProperties" not in props
    assert props["description"] == {"type": "string"}  # the field stays, its description goes
    assert props["mode"]["type"] == ["string", "null"] and props["mode"]["enum"] == ["a", "b", None]
    assert props["port"]["anyOf"] == [{"type": "integer"}, {"type": "string"}]
    assert "additionalProperties" not in props["extra"] and "additionalProperties" not in props["template"]
    assert set(props["template"]["properties"]) == {"spec", "apiVersion", "kind", "metadata"}
    validator = jsonschema.Draft202012Validator(schema)
    widget = {**WIDGET, "spec": {"nullable": "x", "properties": {"a": "b"}, "mode": None, "port": 80, "extra": {"z": 1}}}
    assert list(validator.iter_errors(widget)) == []
    widget["spec"]["properties"]["typo"] = 1
    assert [list(e.absolute_path) for e in validator.iter_errors(widget)] == [["spec", "properties"]]


def test_early_answers_wait_only_where_a_later_crd_could_decide(tmp_path, good_deployment):
    """validate checks each build while later ones still render: an early answer is the final one, and is None
    exactly where the repo's CRDs (not all rendered yet) come into the lookup."""
    store = SchemaStore([], cache=tmp_path / "cache")
    assert store.validate(good_deployment(), early=True).status == "valid"  # built-in
    assert store.validate(SEALED, early=True).source.startswith("bundled schema")  # bundled
    assert store.validate(WIDGET, early=True) is None  # only a repo CRD or the catalog can tell
    store.add_crds([WIDGET_CRD])
    assert store.validate(WIDGET).source == "CustomResourceDefinition in the repo"
    # Asking early did not leave a "missing" answer behind for the final lookup.
    late = SchemaStore([], cache=tmp_path / "cache")
    assert late.validate(WIDGET, early=True) is None
    late.add_crds([WIDGET_CRD])
    assert late.validate({**WIDGET, "spec": {"size": "big"}}).status == "invalid"
