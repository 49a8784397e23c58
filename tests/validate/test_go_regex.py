"""CRD schemas carry Go (RE2) patterns; `(?i)` mid-pattern is refused by jsonschema-rs and by Python's re.
go_regex.portable spells it out with RE2's scoping (the flag holds to the end of its group), so both
validators take every bundled schema and check such fields as the API server does."""

from __future__ import annotations

import json
import re

import jsonschema
import pytest

from generator.validate import schemas
from generator.validate.go_regex import portable
from generator.validate.schemas import BUNDLED_SCHEMAS, SchemaStore, bundled_schemas

# Patterns as prometheus-operator's CRDs write them, and what RE2 matches (fullmatch via their anchors).
PARTIAL_RESPONSE = "^(?i)(abort|warn)?$"
WEEKDAY = "^((?i)sun|mon|tues|wednes|thurs|fri|satur)day(?:((:(sun|mon|tues|wednes|thurs|fri|satur)day)$)|$)"
MONTH = ("^((?i)january|february|march|april|may|june|july|august|september|october|november|december|1[0-2]|[1-9])"
         "(?:((:((?i)january|february|march|april|may|june|july|august|september|october|november|december|1[0-2]|[1-9]))$)|$)")
CASES = {
    PARTIAL_RESPONSE: ({"", "abort", "WARN", "Abort"}, {"maybe", "abortwarn", " warn"}),
    # "day" is outside the flag's group: case-sensitive, in RE2 as here.
    WEEKDAY: ({"sunday", "SUNday", "Friday:saturday"}, {"sunDAY", "Friday:Saturday", "funday"}),
    MONTH: ({"January", "JUNE", "12", "march:APRIL", "1:9"}, {"Jan", "13", "june:", "0"}),
}


@pytest.mark.parametrize("pattern", sorted(CASES))
def test_inline_case_flag_is_spelled_out_with_go_scoping(pattern):
    with pytest.raises(re.error):
        re.compile(pattern)  # why this exists
    translated = portable(pattern)
    assert "(?i)" not in translated
    matching, other = CASES[pattern]
    for text in matching:
        assert re.search(translated, text), text
    for text in other:
        assert not re.search(translated, text), text


@pytest.mark.parametrize("pattern", [
    "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",  # no flag: unchanged
    "(?i:abc)",  # a flag group: not known here, unchanged
    "(?s)(?i)a.b",  # another flag: unchanged
    r"(?i)\p{L}+",  # Unicode classes: unchanged
])
def test_patterns_without_a_plain_inline_case_flag_are_unchanged(pattern):
    assert portable(pattern) == pattern


def test_case_flag_covers_classes_ranges_and_leaves_escapes():
    translated = portable(r"^(?i)[a-c_]x\d\.[^0-9Q]$")
    assert translated == r"^[a-c_A-C][xX]\d\.[^0-9Qq]$"
    assert re.search(translated, "Bx1.q") is None and re.search(translated, "Bx1.z")


def test_every_bundled_schema_has_a_compiled_validator_and_valid_python_patterns():
    for name in bundled_schemas():
        schema = schemas._portable(json.loads((BUNDLED_SCHEMAS / name).read_text(encoding="utf-8")))
        validator = jsonschema.Draft202012Validator(schema)
        assert schemas._compile(validator, "1.33") is not None, name
        for pattern in re.findall(r'"pattern": "((?:[^"\\]|\\.)*)"', json.dumps(schema)):
            re.compile(json.loads(f'"{pattern}"'))


def test_a_field_with_a_go_pattern_is_checked_not_crashed_on():
    store = SchemaStore([])
    rule = {"apiVersion": "monitoring.coreos.com/v1", "kind": "PrometheusRule", "metadata": {"name": "r"},
            "spec": {"groups": [{"name": "g", "partial_response_strategy": "WARN", "rules": [{"alert": "A", "expr": "up == 0"}]}]}}
    assert store.validate(rule).status == "valid"
    rule["spec"]["groups"][0]["partial_response_strategy"] = "sometimes"
    result = store.validate(rule)
    assert result.status == "invalid"
    assert [e.path for e in result.errors] == ["spec.groups[0].partial_response_strategy"]


def test_data_named_pattern_is_not_rewritten():
    schema = {"type": "object", "properties": {"pattern": {"type": "string", "default": "(?i)x", "pattern": "(?i)x"}},
              "enum": [{"pattern": "(?i)y"}]}
    ported = schemas._portable(schema)
    assert ported["properties"]["pattern"]["pattern"] == "[xX]"
    assert ported["properties"]["pattern"]["default"] == "(?i)x"
    assert ported["enum"] == [{"pattern": "(?i)y"}]
