"""The tool's YAML reader gives what PyYAML's safe loader gives, type for type, error for error."""

from __future__ import annotations

import datetime
from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from generator import yaml_loader

PYYAML = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
TESTS = Path(__file__).parent

# Plain scalars YAML 1.1 reads as something other than a string, and their look-alikes.
WORDS = ["on", "off", "yes", "no", "y", "n", "true", "False", "null", "Null", "~", "", "0755", "0o17", "0x1F",
         "1e3", "1.5e-3", ".inf", "-.Inf", ".nan", "1_000", "190:20:30", "2001-12-14", "2001-12-14t21:59:43.10-05:00",
         "=", "<<", "-", "app-1", "1.21.0", "v1", "8080", "+12", "0b101", "3.", "abc: d", "#x", "'q'", "a b"]


def both(text: str, *, many: bool = False):
    """(result or (error type, message)) of PyYAML's safe loader and of the tool's, for ``text``."""
    out = []
    for loader in (PYYAML, yaml_loader.SafeLoader):
        try:
            out.append(list(yaml.load_all(text, Loader=loader)) if many else yaml.load(text, Loader=loader))
        except yaml.YAMLError as error:
            out.append((type(error), str(error)))
    return out


def assert_same(text: str, *, many: bool = False):
    theirs, ours = both(text, many=many)
    assert repr(ours) == repr(theirs)  # repr tells True from 1, 1.0 from 1 and "1" from 1
    return ours


scalars = st.one_of(st.sampled_from(WORDS), st.text(max_size=12), st.integers(), st.floats(allow_nan=False),
                    st.booleans(), st.none(), st.binary(max_size=8),
                    st.dates(min_value=datetime.date(1900, 1, 1), max_value=datetime.date(2200, 1, 1)))
keys = st.one_of(st.sampled_from(WORDS), st.text(max_size=8), st.integers(), st.booleans(), st.none())
documents = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=4),
                         max_leaves=20)


@settings(max_examples=300, deadline=None)
@given(documents, st.sampled_from([None, False, True]))
def test_any_dumped_document_reads_the_same(data, flow):
    assert_same(yaml.dump(data, default_flow_style=flow, allow_unicode=True))


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(WORDS), st.sampled_from(WORDS)), max_size=6))
def test_plain_scalars_as_keys_and_values_read_the_same(pairs):
    # Written by hand, unquoted: the loader resolves each scalar's type itself (or refuses the text as PyYAML does).
    text = "".join(f"{k}: {v}\n" for k, v in pairs) + "list:\n" + "".join(f"  - {v}\n" for _, v in pairs)
    assert_same(text)


@pytest.mark.parametrize("text", [
    "a: &x [1, 2]\nb: *x\n",  # an alias
    "&a [*a]\n",  # a recursive list
    "&m {x: *m}\n",  # a recursive map
    "base: &b {x: 1, y: 2}\nmerged:\n  <<: *b\n  y: 3\n",  # a merge key
    "merged:\n  <<: [{a: 1}, {b: 2}]\n  c: 3\n",
    "=: value of the = key\n",
    "key: =\n",  # the value tag has no constructor: an error, as in PyYAML
    "? [a, b]\n: unhashable key\n",
    "? {a: 1}\n: unhashable key\n",
    "!!set {a, b}\n",
    "!!omap [a: 1, b: 2]\n",
    "!!pairs [a: 1, a: 2]\n",
    "!!binary aGVsbG8=\n",
    "!custom thing\n",
    "a: !custom thing\n",
    "!!str 123\n",
    "!!int '7'\n",
    "!!map {a: 1}\n",
    "2001-12-14 21:59:43.10 -5: timestamp key\n",
    "1.5: float key\n~: null key\nyes: bool key\n0x1F: int key\n",
    "a: 1\na: 2\n",  # a repeated key: the last one wins
    "",
    "# only a comment\n",
    "a: [\n",  # not YAML
    "long: " + "x" * 500 + "\n",
])
def test_edge_cases_read_the_same(text):
    assert_same(text)


def test_an_alias_stays_one_object():
    loaded = assert_same("a: &x [1, 2]\nb: *x\n")
    assert loaded["a"] is loaded["b"]


def test_several_documents_read_the_same():
    assert_same("a: 1\n---\n- on\n- &x {k: v}\n- *x\n---\n---\nlast: ~\n", many=True)


def test_every_yaml_file_of_the_test_fixtures_reads_the_same():
    files = [p for p in TESTS.rglob("*.y*ml") if p.is_file()]
    assert len(files) > 100
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        assert_same(text, many=True)
