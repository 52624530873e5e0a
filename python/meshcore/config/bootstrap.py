"""Envoy v3 bootstrap YAML -> a validated envoy.config.bootstrap.v3.Bootstrap message.

The pipeline (STYLE.md, "Config"): YAML -> typed messages via json_format (so
field names, both snake_case and camelCase, and value types are Envoy's) ->
the supported-subset walk (walk.py, against schema.py's SCHEMA) -> cross-resource checks. Every
failure is a ConfigError reading "<file>: <resource>: <field path>: <what>".

Listeners and clusters are parsed one by one, so that an error can name the
resource it is in. json_format's own messages lose the path on scalar errors
and carry Python wording, so when it fails we walk the dict against the
descriptors ourselves (`_Locator`) to find the exact field and say what is
wrong in our words; its message is only the fallback.
"""

import difflib
import ipaddress
import os
import re

import yaml
from envoy.config.bootstrap.v3 import bootstrap_pb2
from envoy.config.cluster.v3 import cluster_pb2
from envoy.config.listener.v3 import listener_pb2
from google.protobuf import json_format, message_factory

from meshcore.xds_types import find_type, type_name

from ..errors import ConfigError
from .refs import CLUSTER_REFS
from .rules import Violation
from .schema import SCHEMA, allowed_keys, any_slot
from .walk import remembering, unpack, unsupported_extension, unsupported_key, walk

Bootstrap = bootstrap_pb2.Bootstrap


# ---- public API ----------------------------------------------------------------------


def load_bootstrap(path) -> Bootstrap:
    """Read and validate a bootstrap file; errors name the file by its basename."""
    filename = os.path.basename(os.fspath(path))
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"{path}: cannot read: {e.strerror or e}") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{filename}: not UTF-8 text: {e.reason} at byte {e.start}") from None
    return parse_bootstrap(text, filename)


def parse_bootstrap(text: str, filename: str = "<string>") -> Bootstrap:
    """Parse and validate bootstrap YAML text."""
    doc = _load_yaml(text, filename)
    bootstrap = _parse_document(doc, filename)
    _cross_check(bootstrap, filename)
    return bootstrap


def validate_bootstrap(bootstrap: Bootstrap, filename: str = "<config>", known: set | None = None) -> set:
    """Check an already-parsed Bootstrap against the supported subset and itself.

    Separate from parsing so a Bootstrap built another way (tests, translation)
    gets the same checks. known: serialized listeners and clusters that passed
    this walk before (what the previous call returned); they are not walked
    again, as the walk depends on nothing but the message. Returns the
    serialized listeners and clusters of this bootstrap, for the next call.
    The cross-resource checks always run.
    """
    rest = Bootstrap()  # everything but the listeners and clusters, without copying them first
    _copy_fields(bootstrap, rest, "static_resources")
    _copy_fields(bootstrap.static_resources, rest.static_resources, "listeners", "clusters")
    _walk(rest, filename, None)
    seen = set()
    with remembering(known if known is not None else set(), seen):  # Any payloads too (walk.remembering)
        for kind, items in (("listener", bootstrap.static_resources.listeners),
                            ("cluster", bootstrap.static_resources.clusters)):
            for i, msg in enumerate(items):
                key = msg.SerializeToString()
                if known is None or key not in known:
                    _walk(msg, filename, _label(kind, msg.name, i))
                seen.add(key)
    _cross_check(bootstrap, filename)
    return seen


def _copy_fields(src, dst, *skip) -> None:
    for fd, value in src.ListFields():
        if fd.name in skip:
            continue
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            out = getattr(dst, fd.name)
            for k in value:
                if fd.message_type.fields_by_name["value"].message_type is not None:
                    out[k].CopyFrom(value[k])
                else:
                    out[k] = value[k]
        elif fd.is_repeated:
            getattr(dst, fd.name).extend(value)
        elif fd.message_type is not None:
            getattr(dst, fd.name).CopyFrom(value)
        else:
            setattr(dst, fd.name, value)


def validate_resource(msg, filename: str, kind: str, index: int) -> None:
    """Walks one listener or cluster (kind) as validate_bootstrap does, with its
    errors; for incremental changes, whose cross-resource facts are unchanged."""
    _walk(msg, filename, _label(kind, msg.name, index))


def listener_address(listener) -> tuple:
    """(host, port) a Listener binds to; host is the IP literal as written."""
    sa = listener.address.socket_address
    return sa.address, sa.port_value


# ---- YAML -----------------------------------------------------------------------------


class _Loader(getattr(yaml, "CSafeLoader", yaml.SafeLoader)):  # libyaml: ~10x faster on big files
    """SafeLoader that rejects duplicate keys (PyYAML silently keeps the last one)."""

    def construct_mapping(self, node, deep=False):
        if isinstance(node, yaml.MappingNode):
            seen = set()
            for key_node, _ in node.value:
                if key_node.tag == "tag:yaml.org,2002:merge":
                    continue  # "<<: *anchor" keys are allowed to be overridden
                key = self.construct_object(key_node, deep=True)
                try:
                    if key in seen:
                        raise yaml.constructor.ConstructorError(
                            None, None, f'duplicate key "{key}"', key_node.start_mark
                        )
                    seen.add(key)
                except TypeError:  # unhashable key: let PyYAML report it
                    pass
        return super().construct_mapping(node, deep)


def _load_yaml(text, filename):
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.MarkedYAMLError as e:
        where = f"line {e.problem_mark.line + 1}: " if e.problem_mark else ""
        what = e.problem or e.context or "invalid YAML"
        if e.problem and e.context and e.context_mark:
            what += f" ({e.context} at line {e.context_mark.line + 1})"
        raise ConfigError(f"{filename}: {where}{what}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{filename}: {e}") from None


# ---- document -> messages --------------------------------------------------------------


def _error(filename, label, path, text):
    return ConfigError(": ".join(p for p in (filename, label, path, text) if p))


def _label(kind, name, index):
    return f'{kind} "{name}"' if isinstance(name, str) and name else f"static_resources.{kind}s[{index}]"


def _top_label(path):
    """Errors outside listeners/clusters: admin and node read as resources, the rest as top level."""
    head, _, rest = path.partition(".")
    if head in ("admin", "node"):
        return head, rest
    return "top level", path


def _pop(mapping, snake, filename, where):
    """Remove and return the value under snake_case or camelCase `snake` (None if absent)."""
    camel = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), snake)
    keys = [k for k in dict.fromkeys((snake, camel)) if k in mapping]
    if len(keys) == 2:
        raise _error(filename, "top level", where, f'"{snake}" is given twice (as "{snake}" and "{camel}")')
    return mapping.pop(keys[0]) if keys else None


def _parse_document(doc, filename):
    if doc is None:
        raise _error(filename, "top level", "", "the document is empty")
    if not isinstance(doc, dict):
        raise _error(filename, "top level", "", f"expected a mapping, got {show(doc)}")
    doc = dict(doc)
    static = _pop(doc, "static_resources", filename, "")
    resources = {"listeners": [], "clusters": []}
    if static is not None:
        if not isinstance(static, dict):
            got = f"expected a mapping, got {show(static)}"
            raise _error(filename, "top level", "static_resources", got)
        static = dict(static)
        for kind in resources:
            items = _pop(static, kind, filename, "static_resources")
            if items is None:
                continue
            if not isinstance(items, list):
                got = f"expected a list, got {show(items)}"
                raise _error(filename, "top level", f"static_resources.{kind}", got)
            resources[kind] = items
        doc["static_resources"] = static  # what is left (e.g. secrets) is judged as top level

    # Each part is parsed and then walked before the next, so that the error
    # reported is the first one in the file's usual order.
    bootstrap = _to_message(doc, Bootstrap, filename, _top_label)
    _walk(bootstrap, filename, None)
    for kind, cls, out in (
        ("listener", listener_pb2.Listener, bootstrap.static_resources.listeners),
        ("cluster", cluster_pb2.Cluster, bootstrap.static_resources.clusters),
    ):
        for i, item in enumerate(resources[kind + "s"]):
            label = _label(kind, item.get("name") if isinstance(item, dict) else None, i)
            msg = _to_message(item, cls, filename, lambda path, label=label: (label, path))
            _walk(msg, filename, label)
            out.append(msg)
    return bootstrap


def _to_message(value, cls, filename, where):
    """json_format.ParseDict with our error messages; where(path) -> (resource label, path)."""
    problem = _Locator(probe_values=False).message(value, cls.DESCRIPTOR, "")
    if problem is None:
        msg = cls()
        try:
            json_format.ParseDict(value, msg)
            return msg
        except _PARSE_ERRORS as e:
            problem = _Locator(probe_values=True).message(value, cls.DESCRIPTOR, "") or _from_parse_error(e)
    path, text = problem
    raise _error(filename, *where(path), text) from None


# ---- finding what does not fit ---------------------------------------------------------

_INT_RANGES = {
    "TYPE_INT32": (-(2**31), 2**31 - 1),
    "TYPE_SINT32": (-(2**31), 2**31 - 1),
    "TYPE_SFIXED32": (-(2**31), 2**31 - 1),
    "TYPE_UINT32": (0, 2**32 - 1),
    "TYPE_FIXED32": (0, 2**32 - 1),
    "TYPE_INT64": (-(2**63), 2**63 - 1),
    "TYPE_SINT64": (-(2**63), 2**63 - 1),
    "TYPE_SFIXED64": (-(2**63), 2**63 - 1),
    "TYPE_UINT64": (0, 2**64 - 1),
    "TYPE_FIXED64": (0, 2**64 - 1),
}
_KINDS = {
    "TYPE_STRING": "a string",
    "TYPE_BOOL": "true or false",
    "TYPE_BYTES": "base64 bytes",
    "TYPE_DOUBLE": "a number",
    "TYPE_FLOAT": "a number",
}
_PARSE_ERRORS = (json_format.ParseError, TypeError, ValueError)


class _Locator:
    """Walks a YAML value against a message descriptor; message() returns (path, text) for
    the first thing that does not fit, or None.

    The structural pass (probe_values=False) runs before every ParseDict: it
    catches what json_format lets through (it accepts "lbPolicy" and
    "lb_policy" together and keeps one) and names fields and filters the way
    our messages do. The value pass (probe_values=True) also parses each
    scalar and well-known value on its own; it only runs once json_format has
    failed, to find which value it choked on.
    """

    def __init__(self, probe_values):
        self.probe_values = probe_values

    def message(self, value, desc, path):
        full = desc.full_name
        if full.startswith("google.protobuf."):  # Duration, wrappers, Struct: JSON-special values
            return self._well_known(value, desc, path)
        if not isinstance(value, dict):
            return path, f"expected a mapping, got {show(value)}"
        seen, oneofs = {}, {}
        for key, item in value.items():
            fd = _field_by_key(desc, key)
            if fd is None:
                return path, _unknown_field(desc, key)
            if fd.name in seen:
                return path, f'"{fd.name}" is given twice (as "{seen[fd.name]}" and "{key}")'
            seen[fd.name] = key
            if item is None:  # null means unset to json_format
                continue
            oneof = fd.containing_oneof
            if oneof is not None:
                if oneof.name in oneofs:
                    choices = ", ".join(f.name for f in oneof.fields)
                    both = f'"{oneofs[oneof.name]}" and "{fd.name}"'
                    return path, f"{both} cannot both be set (only one of: {choices})"
                oneofs[oneof.name] = fd.name
            found = self._field(fd, item, _join(path, fd.name), value, path)
            if found:
                return found
        return None

    def _field(self, fd, item, path, parent, parent_path):
        # An Any is named, in errors, by its parent's name field (a filter) or,
        # in a map (typed_per_filter_config), by its key.
        slot = any_slot(fd.containing_type.full_name, fd.name)
        if fd.message_type is not None and fd.message_type.GetOptions().map_entry:
            if not isinstance(item, dict):
                return path, f"expected a mapping, got {show(item)}"
            allowed = allowed_keys(fd.containing_type.full_name, fd.name)
            for k in item:
                if allowed is not None and k not in allowed:
                    return path, unsupported_key(k, allowed)
            value_fd = fd.message_type.fields_by_name["value"]
            items = [(f'{path}["{k}"]', v, k, f'{path}["{k}"]', False) for k, v in item.items()]
        else:
            name = parent.get(slot.name_field) if slot else None
            if fd.is_repeated:
                if not isinstance(item, list):
                    return path, f"expected a list, got {show(item)}"
                value_fd = fd
                items = [(f"{path}[{i}]", v, name, parent_path, True) for i, v in enumerate(item)]
            else:
                value_fd = fd
                items = [(path, item, name, parent_path, True)]
        for ipath, v, name, where, by_name in items:
            if v is None and (fd.is_repeated or value_fd is not fd):
                return ipath, "null is not allowed here"
            found = self._value(value_fd, v, ipath, (slot, name, where, by_name))
            if found:
                return found
        return None

    def _value(self, fd, value, path, any_context):
        if fd.message_type is None:
            return self._scalar(fd, value, path) if self.probe_values else None
        if fd.message_type.full_name == "google.protobuf.Any":
            return self._any(value, path, *any_context)
        return self.message(value, fd.message_type, path)

    def _any(self, value, path, slot, name, where, by_name):
        """value: an Any; slot: what it may hold; name, where: what and where errors call it
        (by_name: name is the extension's own name, not a map key)."""
        if not isinstance(value, dict):
            return path, f"expected a mapping, got {show(value)}"
        url = value.get("@type")
        if not url:
            return path, '"@type" is required'
        if not isinstance(url, str):
            return path, f'"@type" must be a string, got {show(url)}'
        desc = find_type(url)
        if slot is not None and (desc is None or desc.full_name not in slot.types):
            name = name if isinstance(name, str) else ""
            return where, unsupported_extension(slot, name, url, by_name and desc is not None)
        if desc is None:
            return path, f"unknown type {url}"
        rest = {k: v for k, v in value.items() if k != "@type"}
        if desc.full_name.startswith("google.protobuf."):
            return self.message(rest.get("value"), desc, path)
        return self.message(rest, desc, path)

    def _well_known(self, value, desc, path):
        if not self.probe_values:
            return None
        try:
            json_format.ParseDict(value, _new(desc))
            return None
        except _PARSE_ERRORS as e:
            if desc.full_name == "google.protobuf.Duration":
                return path, f'expected a duration such as "1s" or "0.25s", got {show(value)}'
            if desc.full_name.endswith("Value") and "value" in desc.fields_by_name:  # wrappers
                return self._scalar_error(desc.fields_by_name["value"], value, path)
            return path, _from_parse_error(e)[1]

    def _scalar(self, fd, value, path):
        try:
            json_format.ParseDict({fd.name: [value] if fd.is_repeated else value}, _new(fd.containing_type))
            return None
        except _PARSE_ERRORS:
            return self._scalar_error(fd, value, path)

    @staticmethod
    def _scalar_error(fd, value, path):
        shown = value if isinstance(value, str) else show(value)
        if fd.enum_type is not None:
            rule = SCHEMA.get(fd.containing_type.full_name)
            allowed = rule.enums.get(fd.name) if rule else None
            if allowed:
                return path, f"unsupported value {shown} (supported: {', '.join(allowed)})"
            return path, f"unknown value {shown} (one of: {', '.join(v.name for v in fd.enum_type.values)})"
        for tname, (lo, hi) in _INT_RANGES.items():
            if fd.type == getattr(fd, tname):
                if isinstance(value, int) and not isinstance(value, bool):
                    return path, f"{value} is out of range ({lo}..{hi})"
                return path, f"expected an integer, got {show(value)}"
        kind = next((k for t, k in _KINDS.items() if fd.type == getattr(fd, t)), "a scalar")
        return path, f"expected {kind}, got {show(value)}"


def show(value) -> str:
    """A value as the user wrote it, roughly (YAML spelling, not Python's);
    the Istio schema's messages use it too (translate/schema.py)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def _field_by_key(desc, key):
    if not isinstance(key, str):
        return None
    return desc.fields_by_name.get(key) or next((f for f in desc.fields if f.json_name == key), None)


def _unknown_field(desc, key):
    names = [f.name for f in desc.fields] + [f.json_name for f in desc.fields]
    close = difflib.get_close_matches(str(key), names, n=1, cutoff=0.75)
    hint = f' (did you mean "{_field_by_key(desc, close[0]).name}"?)' if close else ""
    return f'unknown field "{key}"{hint}'


def _new(desc):
    return message_factory.GetMessageClass(desc)()


def _join(path, name):
    return f"{path}.{name}" if path else name


_AT = re.compile(r'\s+at\s+"?([A-Za-z0-9_]+)\.?([^"\n]*?)"?\.*$')


def _from_parse_error(e):
    """(path, text) from a json_format message, for anything _Locator did not pin down."""
    text = str(e).split("\n", 1)[0]
    text = re.sub(r"(Failed to parse \w+ field: )+", "", text)
    path = ""
    m = _AT.search(text)
    if m:
        path = m.group(2)
        text = text[: m.start()]
    return path, text.rstrip(".") or "invalid value"


# ---- walking and cross checks ------------------------------------------------------------


def _walk(msg, filename, label):
    try:
        walk(msg)
    except Violation as v:
        if label is None:
            raise _error(filename, *_top_label(v.path), v.text) from None
        raise _error(filename, label, v.path, v.text) from None


def _host_port(host, port):
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _cross_check(bootstrap, filename):
    static = bootstrap.static_resources

    clusters = {}
    for i, c in enumerate(static.clusters):
        if c.name in clusters:
            raise _error(
                filename,
                _label("cluster", c.name, i),
                "name",
                f"duplicate cluster name (static_resources.clusters[{clusters[c.name]}] has it too)",
            )
        clusters[c.name] = i

    names, addresses = {}, {}
    for i, ls in enumerate(static.listeners):
        label = _label("listener", ls.name, i)
        if ls.name in names:
            raise _error(
                filename,
                label,
                "name",
                f"duplicate listener name (static_resources.listeners[{names[ls.name]}] has it too)",
            )
        names[ls.name] = i

        host, port = listener_address(ls)
        if port != 0:  # port 0: the kernel picks a free port for each
            key = (ipaddress.ip_address(host), port)
            if key in addresses:
                raise _error(
                    filename,
                    label,
                    "address",
                    f"{_host_port(host, port)} is already used by {addresses[key]}",
                )
            addresses[key] = label

        for c, chain in enumerate(ls.filter_chains):
            for f, flt in enumerate(chain.filters):
                refs = CLUSTER_REFS.get(type_name(flt.typed_config.type_url))
                if refs is None:
                    continue
                for rel, name in refs(unpack(flt.typed_config)):
                    if name not in clusters:
                        close = difflib.get_close_matches(name, list(clusters), n=1)
                        hint = f' (did you mean "{close[0]}"?)' if close else ""
                        raise _error(
                            filename,
                            label,
                            f"filter_chains[{c}].filters[{f}].typed_config.{rel}",
                            f'unknown cluster "{name}"{hint}',
                        )
