"""Value checks for RBAC filters (envoy.filters.http.rbac and
envoy.filters.network.rbac): rules, policies, permissions, principals."""

import ipaddress


def check_rbac_filter(f):
    # Envoy enforces nothing when `rules` is absent; meshcore's core would read
    # an absent `rules` as an ALLOW with no policy (deny all), so it is required.
    if not f.HasField("rules"):
        yield "rules", "required (without rules Envoy enforces nothing: leave the filter out instead)"


def check_network_rbac(f):
    yield from check_rbac_filter(f)
    if not f.stat_prefix:
        yield "stat_prefix", "required"


def check_rbac_rules(r):
    for name in r.policies:
        if not name:
            yield "policies", "a policy name must not be empty"


def check_rbac_policy(p):
    if not p.permissions:
        yield "permissions", "required (at least one; {any: true} matches everything)"
    if not p.principals:
        yield "principals", "required (at least one; {any: true} matches everyone)"


def check_permission(p):
    which = p.WhichOneof("rule")
    if which is None:
        yield "", "one rule is required (and_rules, or_rules, not_rule, any, header, url_path, destination_ip, " \
                  "destination_port, destination_port_range, requested_server_name, metadata)"
    elif which == "destination_port" and p.destination_port > 65535:
        yield "destination_port", f"{p.destination_port} is out of range (0..65535)"
    elif which == "any" and not p.any:
        yield "any", "must be true (as in Envoy)"


def check_principal(p):
    which = p.WhichOneof("identifier")
    if which is None:
        yield "", "one identifier is required (and_ids, or_ids, not_id, any, authenticated, direct_remote_ip, " \
                  "remote_ip, source_ip, header, url_path, metadata)"
    elif which == "any" and not p.any:
        yield "any", "must be true (as in Envoy)"


def check_permission_set(s):
    if not s.rules:
        yield "rules", "at least one rule is required"


def check_principal_set(s):
    if not s.ids:
        yield "ids", "at least one identifier is required"


def check_cidr(c):
    try:
        ip = ipaddress.ip_address(c.address_prefix)
    except ValueError:
        yield "address_prefix", f'"{c.address_prefix}" is not an IP address'
        return
    if c.HasField("prefix_len") and c.prefix_len.value > ip.max_prefixlen:
        yield "prefix_len", f"{c.prefix_len.value} is out of range (0..{ip.max_prefixlen})"


def check_port_range(r):
    if not 0 <= r.start < r.end <= 65536:
        yield "", f"[{r.start}, {r.end}) is not a port range (start < end, within 0..65536)"


def check_path_matcher(p):
    if not p.HasField("path"):
        yield "path", "required"


def check_metadata_matcher(m):
    if m.invert:
        # meshcore has no dynamic metadata: its core never matches a metadata
        # matcher, so an inverted one would have to match always.
        yield "invert", "not supported (meshcore has no dynamic metadata; metadata matchers never match)"
