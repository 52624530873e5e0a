"""A small schema language for Istio and Kubernetes YAML, and its walker.

Each resource kind is described once (validate.py) as a tree of nodes that
say what a field may hold (the CRD schemas in Istio's
customresourcedefinitions.gen.yaml are the reference) and what meshcore does
with it: translated (the default), or one of

    Warned(...)       valid, not implemented, ignoring it does not change where
                      requests go (a warning names it)
    Unsupported(...)  valid, not implemented, and ignoring it would change
                      traffic: an error names it
    Pending(...)      security settings: loaded, "not yet enforced"

so that no field is ever silently ignored. `to` says which xDS field a
translated field becomes; describe() turns the tree into the per-field
table of docs/istio.md.
"""
from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass, field

from meshcore.config.bootstrap import show  # noqa: F401  (also for model.py, meshconfig.py)
from meshcore.durations import MS, go_duration_ns  # noqa: F401  (MS: for clusters.py)

from . import findings as fnd

# ---- support levels --------------------------------------------------------------------


@dataclass(frozen=True)
class Support:
    level: str  # "warn" | "error" | "pending"
    reason: str


def Warned(node, reason):  # noqa: N802 - reads as an annotation
    node.support = Support("warn", reason)
    return node


def Unsupported(node, reason):  # noqa: N802
    node.support = Support("error", reason)
    return node


def Pending(node, reason):  # noqa: N802
    node.support = Support("pending", reason)
    return node


def IstioRejects(node, reason):  # noqa: N802
    """A field Istio's own validation refuses (its check reports it; docs say so)."""
    node.support = Support("invalid", reason)
    return node


def support_finding(support: Support, path: str, out) -> None:
    if support.level == "invalid":
        return  # the field's own check reports it
    if support.level == "warn":
        out.warn(path, f"not supported by meshcore, ignored: {support.reason}")
    elif support.level == "error":
        out.unsupported(path, f"not supported by meshcore: {support.reason}")
    else:
        out.warn(path, f"not yet enforced: {support.reason}", fnd.NOT_ENFORCED)


# ---- where findings go -----------------------------------------------------------------------


class Out:
    """Collects (severity, code, path, message) for one resource."""

    def __init__(self):
        self.items: list[tuple[str, str, str, str]] = []

    def error(self, path, message, code=fnd.INVALID):
        self.items.append((fnd.ERROR, code, path, message))

    def unsupported(self, path, message):
        self.items.append((fnd.ERROR, fnd.UNSUPPORTED, path, message))

    def warn(self, path, message, code=fnd.IGNORED):
        self.items.append((fnd.WARNING, code, path, message))

    @property
    def invalid(self) -> bool:
        return any(code == fnd.INVALID for _, code, _, _ in self.items)


# ---- values ---------------------------------------------------------------------------------------

def join(path: str, name: str) -> str:
    return f"{path}.{name}" if path else name


def key_path(path: str, key) -> str:
    return f'{path}["{key}"]'


# ---- nodes -------------------------------------------------------------------------------------------

Check = Callable[[object, str, Out], None]


@dataclass(kw_only=True)
class Node:
    to: str = ""  # the xDS field it becomes (docs)
    check: Check | None = None
    quiet: Callable[[object], bool] | None = None  # a value for which the support finding is not needed
    support: Support | None = field(default=None, init=False)

    def kind_name(self) -> str:
        return type(self).__name__.lower()

    def walk(self, value, path: str, out: Out) -> None:
        if self.accepts(value, path, out) and self.check:
            self.check(value, path, out)

    def accepts(self, value, path, out) -> bool:
        return True


@dataclass
class Str(Node):
    max_len: int | None = None

    def accepts(self, value, path, out):
        if not isinstance(value, str):
            out.error(path, f"expected a string, got {show(value)}")
            return False
        if self.max_len is not None and len(value) > self.max_len:
            out.error(path, f"longer than {self.max_len} characters")
            return False
        return True


@dataclass
class Int(Node):
    lo: int | None = None
    hi: int | None = None
    what: str = ""  # range wording, e.g. "port must be between 1-65535"

    def accepts(self, value, path, out):
        if isinstance(value, bool) or not isinstance(value, int):
            out.error(path, f"expected an integer, got {show(value)}")
            return False
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            out.error(path, self.what or f"{value} is out of range ({_range(self.lo, self.hi)})")
            return False
        return True


@dataclass
class Num(Node):
    lo: float | None = None
    hi: float | None = None

    def accepts(self, value, path, out):
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            out.error(path, f"expected a number, got {show(value)}")
            return False
        if (self.lo is not None and value < self.lo) or (self.hi is not None and value > self.hi):
            out.error(path, f"Invalid value: {value} is out of range ({_range(self.lo, self.hi)})")
            return False
        return True


def _range(lo, hi):
    if lo is not None and hi is not None:
        return f"{lo:g}..{hi:g}"
    return f">= {lo:g}" if lo is not None else f"<= {hi:g}"


@dataclass
class Bool(Node):
    def accepts(self, value, path, out):
        if not isinstance(value, bool):
            out.error(path, f"expected true or false, got {show(value)}")
            return False
        return True


@dataclass
class Dur(Node):
    """A duration string; at least 1ms (Istio's CEL rule) unless zero_ok."""

    zero_ok: bool = False

    def accepts(self, value, path, out):
        ns = go_duration_ns(value)
        if ns is None:
            out.error(path, f'expected a duration such as "10s" or "250ms", got {show(value)}')
            return False
        if ns == 0 and self.zero_ok:
            return True
        if ns < MS:
            out.error(path, "must be a valid duration greater than 1ms")
            return False
        return True


@dataclass
class Enum(Node):
    values: tuple = ()

    def accepts(self, value, path, out):
        if value not in self.values:
            out.error(path, f'Unsupported value: {show(value)} (supported: {", ".join(self.values)})')
            return False
        return True


@dataclass
class IntOrStr(Node):
    def accepts(self, value, path, out):
        if isinstance(value, bool) or not isinstance(value, (int, str)):
            out.error(path, f"expected an integer or a string, got {show(value)}")
            return False
        return True


@dataclass
class Opaque(Node):
    """Anything (Kubernetes plumbing meshcore has no use for)."""


@dataclass
class Obj(Node):
    fields: dict = field(default_factory=dict)
    required: tuple = ()
    exclusive: tuple = ()  # groups of field names of which at most one may be set
    min_props: int | None = None
    # What a field not in `fields` is: "error" (not valid, as a CRD schema says), or
    # "warn" (a valid field meshcore does not read: MeshConfig, where meshcore
    # describes a subset of a large message)
    unknown: str = "error"

    def walk(self, value, path, out):
        if not isinstance(value, dict):
            out.error(path, f"expected a mapping, got {show(value)}")
            return
        for key, item in value.items():
            child = self.fields.get(key)
            if child is None:
                if self.unknown == "warn":
                    out.warn(join(path, str(key)), not_read(key, self.fields))
                else:
                    out.error(path, unknown_field(key, self.fields))
                continue
            if item is None:
                continue
            cpath = join(path, key)
            child.walk(item, cpath, out)
            if child.support and item not in (False, {}, [], "") and not (child.quiet and child.quiet(item)):
                support_finding(child.support, cpath, out)
        for name in self.required:
            if value.get(name) is None:
                out.error(join(path, name), "Required value")
        for group in self.exclusive:
            present = [n for n in group if value.get(n) is not None]
            if len(present) > 1:
                out.error(path, f'{" and ".join(present)} cannot both be set (only one of: {", ".join(group)})')
        if self.min_props is not None and len(value) < self.min_props:
            out.error(path, f"{path} in body should have at least {self.min_props} properties")
        if self.check:
            self.check(value, path, out)


@dataclass
class List(Node):
    item: Node = field(default_factory=Opaque)
    min_items: int = 0
    max_items: int | None = None

    def walk(self, value, path, out):
        if not isinstance(value, list):
            out.error(path, f"expected a list, got {show(value)}")
            return
        if len(value) < self.min_items:
            out.error(path, "Required value" if not value else f"at least {self.min_items} items are required")
        if self.max_items is not None and len(value) > self.max_items:
            out.error(path, f"at most {self.max_items} items are allowed")
        for i, item in enumerate(value):
            if item is None:
                out.error(f"{path}[{i}]", "null is not allowed here")
                continue
            self.item.walk(item, f"{path}[{i}]", out)
        if self.check:
            self.check(value, path, out)


@dataclass
class Map(Node):
    value: Node = field(default_factory=Opaque)
    key_check: Callable[[str], str | None] | None = None  # -> problem text or None
    min_props: int | None = None
    max_props: int | None = None
    int_keys: bool = False  # YAML's unquoted numbers as keys (portLevelMtls: {8080: ...}) read as their text

    def walk(self, value, path, out):
        if not isinstance(value, dict):
            out.error(path, f"expected a mapping, got {show(value)}")
            return
        if self.min_props is not None and len(value) < self.min_props:
            out.error(path, f"{path} in body should have at least {self.min_props} properties")
        if self.max_props is not None and len(value) > self.max_props:
            out.error(path, f"at most {self.max_props} entries are allowed")
        for key, item in value.items():
            if self.int_keys and isinstance(key, int) and not isinstance(key, bool):
                key = str(key)
            kpath = key_path(path, key)
            if not isinstance(key, str):
                out.error(kpath, f"keys must be strings, got {show(key)}")
                continue
            if self.key_check:
                problem = self.key_check(key)
                if problem:
                    out.error(kpath, problem)
                    continue
            if item is None:
                if not isinstance(self.value, Obj):
                    out.error(kpath, "null is not allowed here")
                continue
            self.value.walk(item, kpath, out)
        if self.check:
            self.check(value, path, out)


def _hint(key, fields) -> str:
    close = difflib.get_close_matches(str(key), list(fields), n=1, cutoff=0.75)
    return f' (did you mean "{close[0]}"?)' if close else ""


def unknown_field(key, fields) -> str:
    return f'unknown field "{key}"{_hint(key, fields)}'


def not_read(key, fields) -> str:
    """A field of a message meshcore reads in part (Obj(unknown="warn"))."""
    return f'field "{key}" is not read by meshcore, ignored{_hint(key, fields)}'


# ---- docs --------------------------------------------------------------------------------------------


def describe(node: Node, path: str = "spec") -> list[tuple[str, str, str]]:
    """(field path, status, detail) for every field under node, depth first.

    status: "translated", "warned", "rejected", "not yet enforced" or "" for
    a container whose fields are listed below it."""
    rows = []
    _describe(node, path, rows, inherited=None)
    return rows


_STATUS = {"warn": "warned", "error": "rejected", "pending": "not yet enforced", "invalid": "rejected (as Istio)"}


def _describe(node, path, rows, inherited):
    support = node.support or inherited
    children = _children(node)
    if support:
        rows.append((path, _STATUS[support.level], support.reason))
        return  # everything below shares the parent's status
    if children:
        if node.to:
            rows.append((path, "translated", node.to))
        for name, child in children:
            _describe(child, f"{path}{name}", rows, None)
    else:
        rows.append((path, "translated", node.to))


def _children(node):
    if isinstance(node, Obj):
        return [(f".{k}", v) for k, v in node.fields.items()]
    if isinstance(node, List) and isinstance(node.item, (Obj, List, Map)):
        return _children_as(node.item, "[]")
    if isinstance(node, Map) and isinstance(node.value, (Obj, List, Map)):
        return _children_as(node.value, "{}")
    return []


def _children_as(node, suffix):
    return [(suffix + name, child) for name, child in _children(node)]
