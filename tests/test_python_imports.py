"""The Python package has no import cycles.

Builds the import graph of python/meshcore from the source (ast, nothing is
imported): every `import` and `from ... import`, at module level and inside
functions alike (a function-local import that closes a cycle is still a
cycle, only a hidden one). `from pkg import name` is an edge to the submodule
pkg.name when there is one (the extension module _core counts as one), else
to pkg itself: a package __init__ that re-exports is part of the graph like
any module, so its re-exports are allowed as long as they close no cycle.

The extension module meshcore._core (ext/_core.pyx and the .pxi files it
includes) is Cython, not Python: its imports of meshcore modules are read
with a regular expression, so that an import from C's side closes a cycle
too if it makes one.
"""
from __future__ import annotations

import ast
import pathlib
import re

ROOT = pathlib.Path(__file__).resolve().parent.parent
PACKAGE_ROOT = ROOT / "python"
PACKAGE = "meshcore"
EXTENSIONS = {"meshcore._core": ROOT / "ext"}  # built from ext/_core.pyx (+ *.pxi)
_CYTHON_IMPORT = re.compile(
    r"^\s*(?:from\s+(meshcore(?:\.\w+)*)\s+c?import\s+([\w, ]+)|import\s+(meshcore(?:\.\w+)*))", re.M)


def modules(root: pathlib.Path = PACKAGE_ROOT) -> dict[str, tuple[pathlib.Path | None, bool]]:
    """module name -> (source file, is a package)."""
    out: dict[str, tuple[pathlib.Path | None, bool]] = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        if is_package:
            parts = parts[:-1]
        out[".".join(parts)] = (path, is_package)
    for name in EXTENSIONS:
        out[name] = (None, False)
    return out


def _extension_imports(name: str, known) -> set[str]:
    """The meshcore modules an extension's Cython sources import."""
    out = set()
    for path in sorted(EXTENSIONS[name].glob("*.p*x*")):  # _core.pyx, compile*.pxi, alog.pxi
        for source, names, plain in _CYTHON_IMPORT.findall(path.read_text()):
            candidates = [plain] if plain else [f"{source}.{n.strip()}" for n in names.split(",") if n.strip()]
            for c in candidates:
                owner = _owner(c if c in known else (source or c), known)
                if owner is not None and owner != name:
                    out.add(owner)
    return out


def _owner(name: str, known) -> str | None:
    """The innermost module of ours that `name` is or lies in."""
    while name and name not in known:
        name = name.rpartition(".")[0]
    return name or None


def _targets(module: str, is_package: bool, node, known) -> list[str]:
    if isinstance(node, ast.Import):
        names = [alias.name for alias in node.names]
    else:
        if node.level:
            base = module.split(".") if is_package else module.split(".")[:-1]
            base = base[:len(base) - (node.level - 1)]
            source = ".".join(base + ([node.module] if node.module else []))
        else:
            source = node.module or ""
        names = [f"{source}.{alias.name}" if f"{source}.{alias.name}" in known else source for alias in node.names]
    out = []
    for name in names:
        owner = _owner(name, known)
        if owner is not None and owner != module:
            out.append(owner)
    return out


def import_graph(root: pathlib.Path = PACKAGE_ROOT) -> dict[str, set[str]]:
    known = modules(root)
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in known.items():
        graph[name] = set()
        if path is None:
            graph[name] = _extension_imports(name, known)
            continue
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):  # module level and function-local alike
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                graph[name].update(_targets(name, is_package, node, known))
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """One shortest cycle per strongly connected component of more than one
    module (the components come from scripts/check_layers.py's Tarjan)."""
    return [_cycle_in(graph, set(c)) for c in _check_layers().sccs(graph) if len(c) > 1]


def _check_layers():
    import importlib.util

    spec = importlib.util.spec_from_file_location("check_layers", ROOT / "scripts" / "check_layers.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _cycle_in(graph, component: set[str]) -> list[str]:
    """A shortest cycle through the component's first module (breadth-first)."""
    first = min(component)
    paths = {first: [first]}
    queue = [first]
    while queue:
        v = queue.pop(0)
        for w in sorted(graph[v] & component):
            if w == first:
                return paths[v] + [first]
            if w not in paths:
                paths[w] = paths[v] + [w]
                queue.append(w)
    return sorted(component)


def test_graph_sees_the_package():
    graph = import_graph()
    assert "meshcore.engine" in graph and "meshcore._core" in graph["meshcore.engine"]
    assert "meshcore.errors" in graph["meshcore"]
    assert "meshcore.xds_types" in graph["meshcore._core"]  # ext/_core.pyx: the compiler's type URLs


def test_cycle_finder_reports_a_cycle():
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert cycles(graph) == [["a", "b", "c", "a"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_no_import_cycles():
    found = cycles(import_graph())
    assert not found, "import cycles in python/meshcore:\n" + "\n".join("  " + " -> ".join(c) for c in found)
