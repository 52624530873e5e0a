"""The walker: a parsed message against SCHEMA (config/schema.py).

meshcore reads Envoy's own message types but implements only part of them.
A field we do not implement must never be accepted and silently ignored: the
user would believe, say, a filter_chain_match is in force when it is not. So
every field that is SET in a parsed message is checked against SCHEMA; the
first one outside it raises a Violation naming its path.
"""
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


def _is_map(fd) -> bool:
    return fd.message_type is not None and fd.message_type.GetOptions().map_entry


def walk(msg, path: str = "", rule: Rule | None = None) -> None:
    """Raise Violation for the first field of `msg` (recursively) outside the supported subset.

    `rule` overrides SCHEMA's row for msg's type (a parent's Rule.nested).
    """
    full = msg.DESCRIPTOR.full_name
    if full in LEAVES:
        return
    if rule is None:
        rule = SCHEMA.get(full, Rule(()))  # unknown message type: nothing in it is supported
    listed = msg.ListFields()
    for fd, _ in listed:
        if fd.name not in rule.fields:
            supported = ", ".join(rule.fields) or "none"
            raise Violation(path, f'unsupported field "{fd.name}" (supported: {supported})')
    for fd, value in listed:
        fpath = _join(path, fd.name)
        if _is_map(fd):
            allowed = rule.keys.get(fd.name)
            for key in sorted(value):
                if allowed is not None and key not in allowed:
                    raise Violation(fpath, unsupported_key(key, allowed))
            value_fd = fd.message_type.fields_by_name["value"]
            items = [(f'{fpath}["{key}"]', value[key], key) for key in sorted(value)]
        else:
            value_fd = fd
            if fd.is_repeated:
                items = [(_join(fpath, f"[{i}]"), v, None) for i, v in enumerate(value)]
            else:
                items = [(fpath, value, None)]
        for ipath, item, key in items:
            if value_fd.enum_type is not None and fd.name in rule.enums:
                allowed = rule.enums[fd.name]
                known = value_fd.enum_type.values_by_number.get(item)
                vname = known.name if known else str(item)
                if vname not in allowed:
                    raise Violation(ipath, f"unsupported value {vname} (supported: {', '.join(allowed)})")
            elif value_fd.message_type is not None and value_fd.message_type.full_name == "google.protobuf.Any":
                slot = rule.anys.get(fd.name)
                if slot is None:  # an Any field the table lets through must say what it may hold
                    raise Violation(path, f'unsupported field "{fd.name}"')
                if key is None:  # a filter: named by a sibling field; errors name the filter
                    _walk_any(slot, getattr(msg, slot.name_field, ""), item, path, ipath, True)
                else:  # a map entry: named by its key; errors name the entry
                    _walk_any(slot, key, item, ipath, ipath, False)
            elif value_fd.message_type is not None:
                walk(item, ipath, rule.nested.get(fd.name))
    if rule.check:
        for rel, text in rule.check(msg):
            raise Violation(_join(path, rel), text)


def _walk_any(slot, name, any_msg, where, path, by_name):
    desc = find_type(any_msg.type_url)
    if desc is None or desc.full_name not in slot.types:
        known = by_name and desc is not None
        raise Violation(where, unsupported_extension(slot, name, any_msg.type_url, known))
    walk(unpack(any_msg), path)
