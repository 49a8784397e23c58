"""compiled_templates: Jinja's compiled code kept between runs, keyed by source and environment configuration,
never served for another source or configuration, and indistinguishable from a fresh compile to the
environment (its extensions' preprocess hooks still run)."""

from __future__ import annotations

import jinja2
from jinja2.ext import Extension

from generator.compiled_templates import CompiledTemplates


class CountingPreprocess(Extension):
    """Stands for Copier's YieldExtension, which resets its state in preprocess."""

    calls = 0

    def preprocess(self, source, name, filename=None):
        CountingPreprocess.calls += 1
        return source


def environment(**options) -> jinja2.Environment:
    return jinja2.Environment(loader=jinja2.DictLoader({"page.txt": "{{ greeting }}, {{ name }}!"}),
                              extensions=[CountingPreprocess], **options)


def installed(env: jinja2.Environment, directory) -> CompiledTemplates:
    cache = CompiledTemplates.for_environment(env, directory)
    cache.install(env)
    return cache


def count_compilations(monkeypatch) -> list[str]:
    compiled: list[str] = []
    compile_ = jinja2.Environment.compile

    def counting(self, source, *args, **kwargs):
        compiled.append(source)
        return compile_(self, source, *args, **kwargs)

    monkeypatch.setattr(jinja2.Environment, "compile", counting)
    return compiled


def test_a_second_run_compiles_nothing_and_renders_the_same(tmp_path, monkeypatch):
    first = environment()
    installed(first, tmp_path).save()  # nothing compiled yet: nothing written
    assert not list(tmp_path.iterdir())
    cache = installed(first, tmp_path)
    expected = (first.get_template("page.txt").render(greeting="Hello", name="a"),
                first.from_string("{{ name|upper }}").render(name="b"))
    cache.save()

    compiled = count_compilations(monkeypatch)
    second = environment()
    installed(second, tmp_path)
    CountingPreprocess.calls = 0
    got = (second.get_template("page.txt").render(greeting="Hello", name="a"),
           second.from_string("{{ name|upper }}").render(name="b"))
    assert got == expected == ("Hello, a!", "B")
    assert compiled == []
    assert CountingPreprocess.calls == 2  # once per template, as a compile would


def test_another_source_or_name_is_compiled_not_served_from_the_cache(tmp_path, monkeypatch):
    env = environment()
    cache = installed(env, tmp_path)
    assert env.from_string("{{ 1 + 1 }}").render() == "2"
    cache.save()

    compiled = count_compilations(monkeypatch)
    env = environment()
    installed(env, tmp_path)
    assert env.from_string("{{ 1 + 2 }}").render() == "3"
    assert env.get_template("page.txt").render(greeting="Hi", name="x") == "Hi, x!"
    # Compiled code carries its template's name (error messages name it): same source, other name, own entry.
    assert env.from_string("{{ greeting }}, {{ name }}!").name is None
    assert compiled == ["{{ 1 + 2 }}", "{{ greeting }}, {{ name }}!", "{{ greeting }}, {{ name }}!"]


def test_each_environment_configuration_has_its_own_cache(tmp_path):
    plain, other_syntax, trimming = environment(), environment(variable_start_string="[[", variable_end_string="]]"), environment(trim_blocks=True)
    paths = {CompiledTemplates.for_environment(env, tmp_path).path for env in (plain, other_syntax, trimming)}
    assert len(paths) == 3
    assert CompiledTemplates.for_environment(environment(), tmp_path).path == CompiledTemplates.for_environment(plain, tmp_path).path

    cache = installed(plain, tmp_path)
    plain.from_string("{{ x }} [[ x ]]").render(x=1)
    cache.save()
    installed(other_syntax, tmp_path)
    assert other_syntax.from_string("{{ x }} [[ x ]]").render(x=1) == "{{ x }} 1"


def test_a_damaged_cache_file_is_ignored_and_replaced(tmp_path):
    env = environment()
    path = CompiledTemplates.for_environment(env, tmp_path).path
    path.write_bytes(b"\x00not marshal data")
    cache = installed(env, tmp_path)
    assert env.from_string("{{ 6 * 7 }}").render() == "42"
    cache.save()
    env = environment()
    installed(env, tmp_path)
    assert env.from_string("{{ 6 * 7 }}").render() == "42"
    assert len(CompiledTemplates(path)._codes) == 1


def test_a_full_cache_keeps_only_what_the_last_run_used(tmp_path, monkeypatch):
    monkeypatch.setattr("generator.compiled_templates.MAX_ENTRIES", 3)
    env = environment()
    cache = installed(env, tmp_path)
    for n in range(5):
        env.from_string(f"{{{{ {n} }}}}").render()
    cache.save()
    assert len(CompiledTemplates(cache.path)._codes) == 5  # nothing read was unused yet

    env = environment()
    cache = installed(env, tmp_path)
    env.from_string("{{ 0 }}").render()
    env.from_string("{{ 9 }}").render()
    cache.save()
    assert len(CompiledTemplates(cache.path)._codes) == 2
