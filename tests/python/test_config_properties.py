"""Property-based tests (Hypothesis) of the Python config path: any YAML
either loads or is refused with a ConfigError carrying a message, never a
traceback. For meshcore.config.parse_bootstrap (random YAML-ish text, and
random mutations of examples/*.yaml, textual and structural), and for the
Istio translation (meshcore.translate: load, analyze, translate every
workload) on random mutations of the mesh directory examples/mesh. The C
parsers have their own fuzzers (tests/test_fuzz.py, docs/fuzzing.md)."""
import copy
import pathlib

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from meshcore.config import parse_bootstrap, validate_bootstrap
from meshcore.errors import ConfigError
from meshcore.translate import analyze, load_texts, translate
from meshcore.translate.registry import Registry

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
BOOTSTRAPS = {p.name: p.read_text() for p in sorted(EXAMPLES.glob("*.yaml"))}
MESH = {p.name: p.read_text() for p in sorted((EXAMPLES / "mesh").glob("*.yaml"))}

PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow],
                 database=None)

# ---- strategies ----------------------------------------------------------------------------------------

TOKENS = ["static_resources:", "listeners:", "clusters:", "- name: x", "name:", "address:", "socket_address:",
          "port_value: 8080", "port_value: -1", "port_value: 99999", "address: 0.0.0.0", "filter_chains:",
          "filters:", "typed_config:", "\"@type\": type.googleapis.com/envoy.extensions.filters.network"
          ".http_connection_manager.v3.HttpConnectionManager", "route_config:", "virtual_hosts:", "domains: ['*']",
          "routes:", "match: {prefix: /}", "route: {cluster: c}", "timeout: 1s", "timeout: -5s", "load_assignment:",
          "endpoints:", "lb_endpoints:", "admin:", "connect_timeout: 0.25s", "&a", "*a", "<<: *a", "!!binary aGk=",
          "!!python/object:os.system", "? complex", "- - -", "{", "}", "[", "]", "'", "\"", ":", "|", ">", "~",
          "null", "true", "1e999", "0x1F", ".nan", "%TAG ! x", "---", "...", "\t", "\x00", "\ufeff", "é"]

yamlish = st.lists(
    st.tuples(st.integers(0, 8), st.lists(st.sampled_from(TOKENS) | st.text(max_size=8), max_size=4)),
    max_size=25,
).map(lambda lines: "\n".join(" " * ind + " ".join(toks) for ind, toks in lines))

SCALARS = st.none() | st.booleans() | st.integers(-2**64, 2**64) | st.floats() | st.text(max_size=12) | \
    st.sampled_from(["", "0", "1s", "-1s", "10.0.0.1", "*", "/", "c", "http", "ROUND_ROBIN", "STRICT",
                     "type.googleapis.com/google.protobuf.Empty", "default", "default/frontend", "x" * 300])
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=3) |
                      st.dictionaries(st.text(max_size=8), inner, max_size=3), max_leaves=6)


def _paths(node, prefix=()):
    yield prefix
    if isinstance(node, dict):
        for k, v in node.items():
            yield from _paths(v, prefix + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _paths(v, prefix + (i,))


def _mutate_tree(data, docs):
    """One structural change to one node of parsed YAML: replaced, deleted, or a key renamed / added."""
    docs = copy.deepcopy(docs)
    i = data.draw(st.integers(0, max(len(docs) - 1, 0)))
    if not docs:
        return docs
    paths = list(_paths(docs[i]))
    path = data.draw(st.sampled_from(paths))
    op = data.draw(st.sampled_from(["replace", "delete", "rename", "add"]))
    if not path:
        docs[i] = data.draw(VALUES) if op == "replace" else docs[i]
        return docs
    parent = docs[i]
    for k in path[:-1]:
        parent = parent[k]
    last = path[-1]
    if op == "replace":
        parent[last] = data.draw(VALUES)
    elif op == "delete":
        del parent[last]
    elif op == "rename" and isinstance(parent, dict):
        parent[data.draw(st.text(max_size=10))] = parent.pop(last)
    elif op == "add" and isinstance(parent[last], dict):
        parent[last][data.draw(st.text(max_size=10) | st.sampled_from(list(parent[last]) or ["x"]))] = \
            data.draw(VALUES)
    elif op == "add" and isinstance(parent[last], list):
        parent[last].append(data.draw(VALUES))
    return docs


def _mutate_text(data, text):
    """A few textual edits: a line deleted, duplicated, re-indented or cut; bytes inserted; a truncation."""
    lines = text.split("\n")
    for _ in range(data.draw(st.integers(1, 3))):
        if not lines:
            break
        j = data.draw(st.integers(0, len(lines) - 1))
        op = data.draw(st.sampled_from(["delete", "dup", "indent", "cut", "insert", "truncate"]))
        if op == "delete":
            del lines[j]
        elif op == "dup":
            lines.insert(j, lines[j])
        elif op == "indent":
            lines[j] = " " * data.draw(st.integers(0, 12)) + lines[j].lstrip()
        elif op == "cut":
            lines[j] = lines[j][:data.draw(st.integers(0, len(lines[j])))]
        elif op == "insert":
            k = data.draw(st.integers(0, len(lines[j])))
            lines[j] = lines[j][:k] + data.draw(st.sampled_from(TOKENS) | st.text(max_size=6)) + lines[j][k:]
        else:
            lines = lines[:j]
    return "\n".join(lines)


def _mutated(data, text):
    if data.draw(st.booleans()):
        return _mutate_text(data, text)
    docs = [d for d in yaml.safe_load_all(text)]
    return yaml.safe_dump_all(_mutate_tree(data, docs), sort_keys=False)


# ---- the properties -----------------------------------------------------------------------------------


def _loads_or_refuses(text, name="fuzz.yaml"):
    try:
        parse_bootstrap(text, name)
    except ConfigError as e:
        assert str(e).strip(), "ConfigError without a message"


@PROPS
@given(yamlish)
def test_bootstrap_yamlish_text_loads_or_is_refused(text):
    _loads_or_refuses(text)


@PROPS
@given(st.text(max_size=200))
def test_bootstrap_any_text_loads_or_is_refused(text):
    _loads_or_refuses(text)


@pytest.mark.parametrize("example", sorted(BOOTSTRAPS))
@PROPS
@given(data=st.data())
def test_bootstrap_mutated_example_loads_or_is_refused(example, data):
    _loads_or_refuses(_mutated(data, BOOTSTRAPS[example]), example)


def _translate_all(files):
    """What `meshcore check` and sidecar_config do: load, analyze, translate every workload; a translation
    without errors must also pass the bootstrap validation the proxy applies."""
    mesh = load_texts(files)
    registry = Registry(mesh)
    found = list(mesh.findings) + analyze(mesh, registry)
    for w in registry.workloads:
        result = translate(mesh, w.id, registry=registry)
        found += result.findings
        if not any(f.is_error for f in found):
            validate_bootstrap(result.bootstrap, f"<{w.id}>")
    for f in found:  # a refusal is an error finding: it says what is wrong
        assert str(f).strip() and f.message.strip(), f"finding without a message: {f!r}"
    return [f for f in found if f.is_error]


@PROPS
@given(data=st.data())
def test_translate_mutated_mesh_loads_or_is_refused(data):
    files = dict(MESH)
    name = data.draw(st.sampled_from(sorted(files)))
    files[name] = _mutated(data, files[name])
    try:
        _translate_all(files)
    except ConfigError as e:
        assert str(e).strip(), "ConfigError without a message"


def test_examples_load_unchanged():
    for name, text in BOOTSTRAPS.items():
        parse_bootstrap(text, name)
    _translate_all(MESH)
