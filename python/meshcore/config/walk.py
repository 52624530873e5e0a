"""The walker: a parsed message against SCHEMA (config/schema.py).

meshcore reads Envoy's own message types but implements only part of them.
A field we do not implement must never be accepted and silently ignored: the
user would believe, say, a filter_chain_match is in force when it is not. So
every field that is SET in a parsed message is checked against SCHEMA; the
first one outside it raises a Violation naming its path.
"""
import contextlib
import threading

from meshcore import xds_types
from meshcore.xds_types import (
    UnknownType,
    find_type,
)

from .rules import (
    LEAVES,
    AnyOf,
    Rule,
    Violation,
)
from .schema import (
    SCHEMA,
)


def unpack(any_msg):
    """The message inside an Any, as an instance of its generated class
    (xds_types.unpack; a Violation for an unknown type)."""
    try:
        return xds_types.unpack(any_msg)
    except UnknownType as e:
        raise Violation("", str(e)) from None


def unsupported_key(key, allowed) -> str:
    return f'unsupported key "{key}" (supported: {", ".join(allowed)})'


def unsupported_extension(slot: AnyOf, name: str, type_url: str, known: bool) -> str:
    """The message for a typed_config we do not accept.

    A real Envoy type is named by its extension name alone (the user knows
    what it is); an unresolvable @type also shows the URL, which is likely
    the mistake. So does a map entry (known=False), whose key names the
    filter the config is for rather than its type.
    """
    if known and name:
        return f"unsupported {slot.noun} {name}"
    return f"unsupported {slot.noun} {name} ({type_url})" if name else f"unsupported {slot.noun} {type_url}"


def _join(path: str, name: str) -> str:
    if not name:
        return path
    if not path or name.startswith("["):
        return path + name
    return f"{path}.{name}"


_NOTHING = Rule(())  # the row of a message type SCHEMA does not list
_SCALAR, _ENUM, _ANY, _MESSAGE = range(4)
_FIELDS: dict = {}  # field descriptor -> (is a map, is repeated, kind of its values, the value's descriptor)


def _is_map(fd) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


def _field(fd) -> tuple:
    info = _FIELDS.get(fd)
    if info is None:
        is_map = _is_map(fd)
        value_fd = fd.message_type.fields_by_name["value"] if is_map else fd
        if value_fd.enum_type is not None:
            kind = _ENUM
        elif value_fd.message_type is None:
            kind = _SCALAR
        elif value_fd.message_type.full_name in LEAVES:
            kind = _SCALAR  # nothing in it is walked (a wrapper, a Duration, a Struct)
        elif value_fd.message_type.full_name == "google.protobuf.Any":
            kind = _ANY
        else:
            kind = _MESSAGE
        info = _FIELDS[fd] = (is_map, fd.is_repeated and not is_map, kind, value_fd)
    return info


_ALLOWED: dict = {}  # id(rule) -> frozenset(rule.fields); the rule is kept alive by _KEEP
_KEEP: list = []


def _allowed(rule) -> frozenset:
    _KEEP.append(rule)
    out = _ALLOWED[id(rule)] = frozenset(rule.fields)
    return out


def _resolve(path) -> str:
    """A lazy path (below) as text: paths are only spelled out for an error,
    so validating a large config builds no strings for what is fine."""
    parts = []
    while isinstance(path, tuple):
        path, name = path
        parts.append(f"[{name}]" if isinstance(name, int) else name)
    text = path
    for name in reversed(parts):
        text = _join(text, name)
    return text


def walk(msg, path: str = "", rule: Rule | None = None) -> None:
    """Raise Violation for the first field of `msg` (recursively) outside the supported subset.

    `rule` overrides SCHEMA's row for msg's type (a parent's Rule.nested).
    """
    _walk(msg, path, rule)


def _walk(msg, path, rule) -> None:
    # path: a str, or (parent path, field name / "[i]" / '["key"]'), resolved on error
    full = msg.DESCRIPTOR.full_name
    if full in LEAVES:
        return
    if rule is None:
        rule = SCHEMA.get(full, _NOTHING)  # unknown message type: nothing in it is supported
    listed = msg.ListFields()
    allowed_fields = _ALLOWED.get(id(rule))
    if allowed_fields is None:
        allowed_fields = _allowed(rule)
    for fd, _ in listed:
        if fd.name not in allowed_fields:
            supported = ", ".join(rule.fields) or "none"
            raise Violation(_resolve(path), f'unsupported field "{fd.name}" (supported: {supported})')
    for fd, value in listed:
        is_map, repeated, kind, value_fd = _FIELDS.get(fd) or _field(fd)
        if kind == _SCALAR or (kind == _ENUM and fd.name not in rule.enums):
            continue  # nothing below it; its value is the rule checks' business
        fpath = (path, fd.name)
        if kind == _MESSAGE and not is_map:  # the common case, without the general one's lists
            nested = rule.nested.get(fd.name)
            if repeated:
                for i, item in enumerate(value):
                    _walk(item, (fpath, i), nested)
            else:
                _walk(value, fpath, nested)
            continue
        if is_map:
            allowed = rule.keys.get(fd.name)
            for key in sorted(value):
                if allowed is not None and key not in allowed:
                    raise Violation(_resolve(fpath), unsupported_key(key, allowed))
            items = [((fpath, f'["{key}"]'), value[key], key) for key in sorted(value)]
        elif repeated:
            items = [((fpath, i), v, None) for i, v in enumerate(value)]
        else:
            items = ((fpath, value, None),)
        if kind == _ENUM:
            allowed = rule.enums[fd.name]
            for ipath, item, _ in items:
                known = value_fd.enum_type.values_by_number.get(item)
                vname = known.name if known else str(item)
                if vname not in allowed:
                    raise Violation(_resolve(ipath), f"unsupported value {vname} (supported: {', '.join(allowed)})")
        elif kind == _ANY:
            slot = rule.anys.get(fd.name)
            if slot is None:  # an Any field the table lets through must say what it may hold
                raise Violation(_resolve(path), f'unsupported field "{fd.name}"')
            for ipath, item, key in items:
                if key is None:  # a filter: named by a sibling field; errors name the filter
                    _walk_any(slot, getattr(msg, slot.name_field, ""), item, path, ipath, True)
                else:  # a map entry: named by its key; errors name the entry
                    _walk_any(slot, key, item, ipath, ipath, False)
        else:
            nested = rule.nested.get(fd.name)
            for ipath, item, _ in items:
                _walk(item, ipath, nested)
    if rule.check:
        for rel, text in rule.check(msg):
            raise Violation(_join(_resolve(path), rel), text)


class _Remembered(threading.local):
    """Any payloads (slot, type URL, bytes) an earlier walk found fine, and those
    this one finds fine: the payload's walk depends on nothing else. Only while
    remembering() is in force (config.validate_bootstrap with `known`)."""

    known: set | None = None
    seen: set | None = None


_REMEMBERED = _Remembered()


@contextlib.contextmanager
def remembering(known: set, seen: set):
    """Walks inside skip the Any payloads in `known` and add those they pass to `seen`."""
    _REMEMBERED.known, _REMEMBERED.seen = known, seen
    try:
        yield
    finally:
        _REMEMBERED.known = _REMEMBERED.seen = None


def _walk_any(slot, name, any_msg, where, path, by_name):
    desc = find_type(any_msg.type_url)
    if desc is None or desc.full_name not in slot.types:
        known = by_name and desc is not None
        raise Violation(_resolve(where), unsupported_extension(slot, name, any_msg.type_url, known))
    seen = _REMEMBERED.seen
    if seen is None:
        _walk(unpack(any_msg), path, None)
        return
    key = (desc.full_name, any_msg.value)
    if key not in _REMEMBERED.known:
        _walk(unpack(any_msg), path, None)
    seen.add(key)
