"""AuthorizationPolicy -> Envoy RBAC filters, as Istio's pilot generates them
(pilot/pkg/security/authz: model.New, Model.Generate, builder.build).

One rule of a policy becomes one RBAC policy named
`ns[<namespace>]-policy[<name>]-rule[<i>]`; its `from` entries become the
principals (ORed), its `to` entries the permissions (ORed), and each
condition inside them (principals, namespaces, ipBlocks..., when keys) an
AND of an OR of the values, followed by a NOT of the OR of the notValues.
DENY policies go into one RBAC filter, ALLOW policies into a second one
after it; a policy without rules is a policy that never matches.

On a TCP filter chain the HTTP-only attributes (methods, paths, hosts,
headers, request principals) cannot be evaluated: as Istio does, an ALLOW
rule using one is left out whole (it allows less), a DENY rule is kept
without that value (it denies more).

Differences from Istio, each for a reason meshcore can state:
- path templates (`{*}`, `{**}`) become a `safe_regex` url_path matcher, the
  regular expression Envoy's uri_template extension compiles them to
  (meshcore's core has no uri_template matcher);
- AUDIT, CUSTOM and dry-run policies are not built (see `applicable`).
"""
from __future__ import annotations

import ipaddress
from dataclasses import dataclass, field

from meshcore.xds_types import HTTP_RBAC, NETWORK_RBAC, type_url

from . import registry as reg

ATTR_REQUEST_HEADER = "request.headers"
ATTR_INLINE_HEADER = "request.experimental.inline.headers"
ATTR_SRC_IP = "source.ip"
ATTR_REMOTE_IP = "remote.ip"
ATTR_SRC_NAMESPACE = "source.namespace"
ATTR_SRC_SERVICE_ACCOUNT = "source.serviceAccount"
ATTR_SRC_PRINCIPAL = "source.principal"
ATTR_SRC_TRUST_DOMAIN = "source.trustDomain"
ATTR_REQUEST_PRINCIPAL = "request.auth.principal"
ATTR_REQUEST_AUDIENCES = "request.auth.audiences"
ATTR_REQUEST_PRESENTER = "request.auth.presenter"
ATTR_REQUEST_CLAIMS = "request.auth.claims"
ATTR_DEST_IP = "destination.ip"
ATTR_DEST_PORT = "destination.port"
ATTR_CONN_SNI = "connection.sni"
ATTR_ENVOY_FILTER = "experimental.envoy.filters."

SPIFFE_PREFIX = "spiffe://"
CLUSTER_LOCAL = "cluster.local"
JWT_FILTER = "envoy.filters.http.jwt_authn"
HTTP_FILTER_NAME = "envoy.filters.http.rbac"
NETWORK_FILTER_NAME = "envoy.filters.network.rbac"
TCP_STAT_PREFIX = "tcp."  # Istio's RBACTCPFilterStatPrefix
SHADOW_ALLOW_PREFIX = "istio_dry_run_allow_"  # what Istio writes when there are no shadow rules
DRY_RUN_ANNOTATION = "istio.io/dry-run"
MATCH_ONE_TEMPLATE = "{*}"
MATCH_ANY_TEMPLATE = "{**}"
# Envoy's uri_template literal characters (RFC 3986 pchar without "*"), as its regex compiler uses them.
_PCHAR = "-a-zA-Z0-9._~%!$&'()+,;:@="

NEVER = {"permissions": [{"not_rule": {"any": True}}], "principals": [{"not_id": {"any": True}}]}


class HttpOnly(Exception):
    """An attribute that only HTTP requests have, asked for on a TCP filter chain."""


class Unimplemented(Exception):
    """A generator asked for the other half (a principal attribute as a permission)."""


# ---- trust domains ------------------------------------------------------------------------------


@dataclass(frozen=True)
class TrustDomainBundle:
    """The local trust domain and its aliases (Istio's trustdomain.Bundle)."""

    trust_domains: tuple = (CLUSTER_LOCAL,)

    @classmethod
    def of(cls, trust_domain: str, aliases=()) -> TrustDomainBundle:
        return cls((trust_domain, *aliases))

    def replace_aliases(self, principals: list[str]) -> list[str]:
        out = []
        for principal in principals:
            parts = principal.split("/")
            if len(parts) != 5 or parts[0] == "*":  # the trust domain is not enforced
                out.append(principal)
                continue
            td = parts[0]
            if _string_match(td, self.trust_domains) or td == CLUSTER_LOCAL:
                out += self._replace(principal, td)
            else:
                out.append(principal)  # another trust domain: kept as written (meshcore check reports it)
        return out

    def _replace(self, principal, td_from_principal):
        out = []
        for td in self.trust_domains:
            new = principal if _suffix_match(td, td_from_principal) else f"{td}/{principal.split('/', 1)[1]}"
            if new not in out:
                out.append(new)
        return out

    def matches(self, td: str) -> bool:
        """Whether a principal's trust domain part names one of ours ("cluster.local" always does)."""
        return td == "*" or td == CLUSTER_LOCAL or _string_match(td, self.trust_domains)


def _prefix_match(a, pattern):
    return pattern.endswith("*") and a.startswith(pattern[:-1])


def _suffix_match(a, pattern):
    return pattern.startswith("*") and a.endswith(pattern[1:])


def _string_match(a, items):
    return any(a == s or s == "*" or _prefix_match(a, s) or _prefix_match(s, a) or _suffix_match(a, s)
               or _suffix_match(s, a) for s in items)


# ---- matchers (Istio's authz/matcher package) ---------------------------------------------------

_GO_META = set("\\.+*?()|[]{}^$")


def quote_meta(text: str) -> str:
    """Go's regexp.QuoteMeta: what Istio escapes (Python's re.escape escapes more)."""
    return "".join("\\" + c if c in _GO_META else c for c in text)


def regex(pattern: str) -> dict:
    return {"safe_regex": {"regex": pattern}}


def string_matcher(value: str, prefix: str = "") -> dict:
    """StringMatcherWithPrefix: "*" any (".+"), "*x" suffix, "x*" prefix, else exact."""
    if value == "*":
        return regex(".+")
    if value.startswith("*"):
        if not prefix:
            return {"suffix": value[1:]}
        return regex(prefix + ".*" + quote_meta(value[1:]))
    if value.endswith("*"):
        return {"prefix": prefix + value[:-1]}
    return {"exact": prefix + value}


def header_matcher(name: str, value: str) -> dict:
    if value == "*":
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": string_matcher(value)}


def host_matcher(value: str) -> dict:
    if value == "*":
        return {"name": ":authority", "present_match": True}
    return {"name": ":authority", "string_match": {**string_matcher(value), "ignore_case": True}}


def cidr(value: str) -> dict:
    net = ipaddress.ip_network(value, strict=False) if "/" in value else None
    if net is None:
        ip = ipaddress.ip_address(value)
        return {"address_prefix": str(ip), "prefix_len": ip.max_prefixlen}
    return {"address_prefix": value.split("/", 1)[0], "prefix_len": net.prefixlen}


def contains_path_template(path: str) -> bool:
    return MATCH_ONE_TEMPLATE in path or MATCH_ANY_TEMPLATE in path


def path_template_regex(path: str) -> str:
    """The regex Envoy's uri_template matcher compiles a path template to:
    `{*}` (Envoy `*`) is one path segment, `{**}` (`**`) any rest of the path."""
    out = []
    for segment in path.split("/"):
        if segment == MATCH_ONE_TEMPLATE or segment == "*":
            out.append(f"[{_PCHAR}]+")
        elif segment == MATCH_ANY_TEMPLATE or segment == "**":
            out.append(f"[{_PCHAR}/]*")
        else:
            out.append(quote_meta(segment))
    return "/".join(out)


def _authenticated(m: dict) -> dict:
    return {"authenticated": {"principal_name": m}}


def _jwt_claim(claims: list[str], value: dict) -> dict:
    return {"metadata": {"filter": JWT_FILTER, "path": [{"key": "payload"}] + [{"key": c} for c in claims],
                         "value": value}}


def _or_values(matchers: list[dict]) -> dict:
    return matchers[0] if len(matchers) == 1 else {"or_match": {"value_matchers": matchers}}


def _string_or(values: list[str]) -> dict:
    return _or_values([{"string_match": string_matcher(v)} for v in values])


def _jwt_list(claims: list[str], values: list[str]) -> dict:
    m = _string_or(values)
    return _jwt_claim(claims, {"or_match": {"value_matchers": [{"list_match": {"one_of": m}}, m]}})


def _bracket_name(rest: str) -> str:
    if not (rest.startswith("[") and rest.endswith("]")) or len(rest) < 3:
        raise ValueError(f"bad key: {rest!r} should have format a[b]")
    return rest[1:-1]


def _nested_names(rest: str) -> list[str]:
    if not (rest.startswith("[") and rest.endswith("]")):
        raise ValueError(f"bad key: {rest!r}")
    return rest[1:-1].split("][")


# ---- generators: one value -> a Permission or a Principal (dicts) --------------------------------


class _Gen:
    extended = False  # takes all values at once

    def permission(self, key, value, for_tcp):
        raise Unimplemented(key)

    def principal(self, key, value, for_tcp):
        raise Unimplemented(key)


class _DestIP(_Gen):
    def permission(self, key, value, for_tcp):
        return {"destination_ip": cidr(value)}


class _DestPort(_Gen):
    def permission(self, key, value, for_tcp):
        port = int(value)
        if not 0 <= port <= 65535:
            raise ValueError(f"port {value} out of range")
        return {"destination_port": port}


class _ConnSNI(_Gen):
    def permission(self, key, value, for_tcp):
        return {"requested_server_name": string_matcher(value)}


class _EnvoyFilter(_Gen):
    extended = True

    def permission(self, key, values, for_tcp):
        parts = key[len("experimental."):].rstrip("]").split("[", 1)
        if len(parts) != 2:
            raise ValueError(f"invalid key: {key}")
        matchers = []
        for v in values:
            if v.startswith("[") and v.endswith("]"):
                matchers.append({"list_match": {"one_of": {"string_match": string_matcher(v.strip("[]"))}}})
            else:
                matchers.append({"string_match": string_matcher(v)})
        return {"metadata": {"filter": parts[0], "path": [{"key": parts[1]}], "value": _or_values(matchers)}}


class _SrcIP(_Gen):
    def principal(self, key, value, for_tcp):
        return {"direct_remote_ip": cidr(value)}


class _RemoteIP(_Gen):
    def principal(self, key, value, for_tcp):
        return {"remote_ip": cidr(value)}


class _SrcNamespace(_Gen):
    def principal(self, key, value, for_tcp):
        v = ".*".join(quote_meta(p) for p in value.split("*"))
        return _authenticated(regex(f".*/ns/{v}/.*"))


@dataclass
class _SrcServiceAccount(_Gen):
    policy_namespace: str = ""

    def principal(self, key, value, for_tcp):
        ns, sep, sa = value.partition("/")
        if not sep:
            ns, sa = self.policy_namespace, value
        return _authenticated(regex(f"spiffe://.+/ns/{quote_meta(ns)}/(.+/|)sa/{quote_meta(sa)}(/.+)?"))


class _SrcPrincipal(_Gen):
    def principal(self, key, value, for_tcp):
        return _authenticated(string_matcher(value, SPIFFE_PREFIX))


class _SrcTrustDomain(_Gen):
    """source.trustDomain / trustDomains: spiffe://<td>/ (newer Istio; wildcards within the name)."""

    def principal(self, key, value, for_tcp):
        if "*" not in value:
            return _authenticated({"prefix": f"{SPIFFE_PREFIX}{value}/"})
        td = "[^/]*".join(quote_meta(p) for p in value.split("*"))
        return _authenticated(regex(f"{SPIFFE_PREFIX}{td}/.*"))


class _RequestPrincipal(_Gen):
    extended = True

    def principal(self, key, values, for_tcp):
        if for_tcp:
            raise HttpOnly(key)
        any_ = regex(".+")
        out = []
        for value in values:
            idx = value.rfind("/")
            found = idx >= 0
            iss, sub = (value[:idx], value[idx + 1:]) if found else (value, "")
            if value == "*":
                m_iss, m_sub = any_, any_
            elif value.startswith("*"):
                if found:
                    m_iss = any_ if iss == "*" else {"suffix": iss[1:]}
                    m_sub = {"exact": sub}
                else:
                    m_iss, m_sub = any_, {"suffix": value[1:]}
            elif value.endswith("*"):
                if found:
                    m_iss = {"exact": iss}
                    m_sub = any_ if sub == "*" else {"prefix": sub[:-1]}
                else:
                    m_iss, m_sub = {"prefix": value[:-1]}, any_
            else:
                m_iss, m_sub = {"exact": iss}, {"exact": sub}
            out.append({"and_ids": {"ids": [_jwt_claim(["iss"], {"string_match": m_iss}),
                                             _jwt_claim(["sub"], {"string_match": m_sub})]}})
        if not out:
            return None
        return out[0] if len(out) == 1 else {"or_ids": {"ids": out}}


@dataclass
class _JwtList(_Gen):
    claim: str = ""
    extended = True

    def principal(self, key, values, for_tcp):
        if for_tcp:
            raise HttpOnly(key)
        claims = [self.claim] if self.claim else _nested_names(key[len(ATTR_REQUEST_CLAIMS):])
        return _jwt_list(claims, values)


class _RequestHeader(_Gen):
    def __init__(self, prefix=ATTR_REQUEST_HEADER):
        self.prefix = prefix

    def principal(self, key, value, for_tcp):
        if for_tcp:
            raise HttpOnly(key)
        return {"header": header_matcher(_bracket_name(key[len(self.prefix):]), value)}


class _Host(_Gen):
    def permission(self, key, value, for_tcp):
        if for_tcp:
            raise HttpOnly(key)
        return {"header": host_matcher(value)}


class _Path(_Gen):
    def permission(self, key, value, for_tcp):
        if for_tcp:
            raise HttpOnly(key)
        if contains_path_template(value):
            return {"url_path": {"path": regex(path_template_regex(value))}}
        return {"url_path": {"path": string_matcher(value)}}


class _Method(_Gen):
    def permission(self, key, value, for_tcp):
        if for_tcp:
            raise HttpOnly(key)
        return {"header": header_matcher(":method", value)}


# ---- the model (Istio's model.Model) -----------------------------------------------------------


@dataclass
class _Rule:
    key: str
    values: list
    not_values: list
    gen: _Gen

    def _one(self, kind, values, for_tcp, allow):
        """The matchers for values, or None. Errors (HTTP-only on TCP, bad values)
        drop the whole rule for ALLOW (raised) and just the value otherwise."""
        fn = getattr(self.gen, kind)
        if self.gen.extended:
            try:
                return fn(self.key, values, for_tcp)
            except (HttpOnly, Unimplemented, ValueError):
                if allow:
                    raise
                return None
        out = []
        for v in values:
            try:
                m = fn(self.key, v, for_tcp)
            except (HttpOnly, Unimplemented, ValueError):
                if allow:
                    raise
                continue
            if m is not None:
                out.append(m)
        if not out:
            return None
        return {"or_rules" if kind == "permission" else "or_ids":
                {"rules" if kind == "permission" else "ids": out}}

    def generate(self, kind, for_tcp, allow) -> list[dict]:
        out = []
        if self.values:
            m = self._one(kind, self.values, for_tcp, allow)
            if m is not None:
                out.append(m)
        if self.not_values:
            m = self._one(kind, self.not_values, for_tcp, allow)
            if m is not None:
                out.append({"not_rule": m} if kind == "permission" else {"not_id": m})
        return out


def _rule_list(items):
    return [_Rule(k, list(v or []), list(nv or []), g) for k, v, nv, g in items if v or nv]


def _when_generator(key: str, policy_namespace: str):
    """(permission side?, generator) for a `when` key; KeyError for an unknown one."""
    if key == ATTR_DEST_IP:
        return True, _DestIP()
    if key == ATTR_DEST_PORT:
        return True, _DestPort()
    if key == ATTR_CONN_SNI:
        return True, _ConnSNI()
    if key.startswith(ATTR_ENVOY_FILTER):
        return True, _EnvoyFilter()
    if key == ATTR_SRC_IP:
        return False, _SrcIP()
    if key == ATTR_REMOTE_IP:
        return False, _RemoteIP()
    if key == ATTR_SRC_NAMESPACE:
        return False, _SrcNamespace()
    if key == ATTR_SRC_SERVICE_ACCOUNT:
        return False, _SrcServiceAccount(policy_namespace)
    if key == ATTR_SRC_PRINCIPAL:
        return False, _SrcPrincipal()
    if key == ATTR_SRC_TRUST_DOMAIN:
        return False, _SrcTrustDomain()
    if key == ATTR_REQUEST_PRINCIPAL:
        return False, _RequestPrincipal()
    if key == ATTR_REQUEST_AUDIENCES:
        return False, _JwtList("aud")
    if key == ATTR_REQUEST_PRESENTER:
        return False, _JwtList("azp")
    if key.startswith(ATTR_INLINE_HEADER):
        return False, _RequestHeader(ATTR_INLINE_HEADER)
    if key.startswith(ATTR_REQUEST_HEADER):
        return False, _RequestHeader()
    if key.startswith(ATTR_REQUEST_CLAIMS):
        return False, _JwtList()
    raise KeyError(key)


@dataclass
class Model:
    """One rule: permissions and principals, each a list of AND-ed condition lists."""

    permissions: list = field(default_factory=list)
    principals: list = field(default_factory=list)

    @classmethod
    def of(cls, rule: dict, policy_namespace: str) -> Model:
        base_perm, base_princ = [], []
        for cond in rule.get("when") or []:
            permission_side, gen = _when_generator(cond.get("key", ""), policy_namespace)
            (base_perm if permission_side else base_princ).append(
                (cond["key"], cond.get("values"), cond.get("notValues"), gen))
        m = cls()
        for src in rule.get("from") or []:
            s = src.get("source") or {}
            front = [
                (ATTR_SRC_PRINCIPAL, s.get("principals"), s.get("notPrincipals"), _SrcPrincipal()),
                (ATTR_REQUEST_PRINCIPAL, s.get("requestPrincipals"), s.get("notRequestPrincipals"),
                 _RequestPrincipal()),
                (ATTR_SRC_SERVICE_ACCOUNT, s.get("serviceAccounts"), s.get("notServiceAccounts"),
                 _SrcServiceAccount(policy_namespace)),
                (ATTR_SRC_TRUST_DOMAIN, s.get("trustDomains"), s.get("notTrustDomains"), _SrcTrustDomain()),
                (ATTR_SRC_NAMESPACE, s.get("namespaces"), s.get("notNamespaces"), _SrcNamespace()),
                (ATTR_REMOTE_IP, s.get("remoteIpBlocks"), s.get("notRemoteIpBlocks"), _RemoteIP()),
                (ATTR_SRC_IP, s.get("ipBlocks"), s.get("notIpBlocks"), _SrcIP()),
            ]
            m.principals.append(_rule_list(front + base_princ))
        if not rule.get("from"):
            m.principals.append(_rule_list(base_princ))
        for dst in rule.get("to") or []:
            o = dst.get("operation") or {}
            front = [
                (":authority", o.get("hosts"), o.get("notHosts"), _Host()),
                (":method", o.get("methods"), o.get("notMethods"), _Method()),
                ("path-matcher", o.get("paths"), o.get("notPaths"), _Path()),
                (ATTR_DEST_PORT, o.get("ports"), o.get("notPorts"), _DestPort()),
            ]
            m.permissions.append(_rule_list(front + base_perm))
        if not rule.get("to"):
            m.permissions.append(_rule_list(base_perm))
        return m

    def migrate_trust_domain(self, bundle: TrustDomainBundle) -> None:
        for rules in self.principals:
            for r in rules:
                if r.key == ATTR_SRC_PRINCIPAL:
                    if r.values:
                        r.values = bundle.replace_aliases(r.values)
                    if r.not_values:
                        r.not_values = bundle.replace_aliases(r.not_values)

    def generate(self, for_tcp: bool, action: str) -> dict:
        """The RBAC Policy; HttpOnly/ValueError when an ALLOW rule cannot be built on TCP."""
        allow = action == "ALLOW"
        permissions = []
        for rules in self.permissions:
            ands = [m for r in rules for m in r.generate("permission", for_tcp, allow)]
            permissions.append({"and_rules": {"rules": ands or [{"any": True}]}})
        principals = []
        for rules in self.principals:
            ands = [m for r in rules for m in r.generate("principal", for_tcp, allow)]
            principals.append({"and_ids": {"ids": ands or [{"any": True}]}})
        return {"permissions": permissions, "principals": principals}


# ---- which policies, and the filters ------------------------------------------------------------


def policy_name(namespace: str, name: str, i: int) -> str:
    return f"ns[{namespace}]-policy[{name}]-rule[{i}]"


def is_dry_run(policy) -> bool:
    return str(policy.annotations.get(DRY_RUN_ANNOTATION, "")).lower() in ("true", "1", "t")


def selects(policy, workload: reg.Workload) -> bool:
    selector = (policy.spec.get("selector") or {}).get("matchLabels") or {}
    return reg.label_match(selector, workload.labels)


def applicable(policies, workload: reg.Workload, root_namespace: str) -> list:
    """The AuthorizationPolicies that apply to a workload's sidecar, root namespace first
    (Istio's ListAuthorizationPolicies): in the root namespace or the workload's, with no
    selector or one matching its labels. targetRef(s) policies apply to gateways and
    waypoints, not to sidecars (as in Istio)."""
    out = []
    for ns in dict.fromkeys((root_namespace, workload.namespace)):
        for p in policies:
            if p.namespace != ns:
                continue
            if p.spec.get("targetRef") is not None or p.spec.get("targetRefs"):
                continue
            if selects(p, workload):
                out.append(p)
    return out


@dataclass
class Built:
    """The RBAC rules of one action, in Envoy's JSON shape, and the rules left out."""

    action: str
    rules: dict
    skipped: list = field(default_factory=list)  # (policy, rule index, reason)


def build_rules(policies, action: str, for_tcp: bool, bundle: TrustDomainBundle) -> Built | None:
    """envoy.config.rbac.v3.RBAC for the policies of one action (Istio's builder.build)."""
    if not policies:
        return None
    built = Built(action, {"action": action, "policies": {}} if action != "ALLOW" else {"policies": {}})
    for policy in policies:
        rules = policy.spec.get("rules")
        for i, rule in enumerate(rules or []):
            name = policy_name(policy.namespace, policy.name, i)
            if rule is None:
                built.skipped.append((policy, i, "nil rule"))
                continue
            try:
                m = Model.of(rule, policy.namespace)
            except KeyError as e:
                built.skipped.append((policy, i, f"unknown attribute {e.args[0]}"))
                continue
            m.migrate_trust_domain(bundle)
            try:
                built.rules["policies"][name] = m.generate(for_tcp, action)
            except (HttpOnly, Unimplemented, ValueError) as e:
                built.skipped.append((policy, i, str(e)))
        if not rules:
            built.rules["policies"][policy_name(policy.namespace, policy.name, 0)] = NEVER
    if not built.rules["policies"]:
        del built.rules["policies"]
    return built


def http_filter(rules: dict) -> dict:
    return {"name": HTTP_FILTER_NAME,
            "typed_config": {"@type": type_url(HTTP_RBAC), "rules": rules,
                             "shadow_rules_stat_prefix": SHADOW_ALLOW_PREFIX}}


def network_filter(rules: dict) -> dict:
    return {"name": NETWORK_FILTER_NAME,
            "typed_config": {"@type": type_url(NETWORK_RBAC), "rules": rules,
                             "stat_prefix": TCP_STAT_PREFIX, "shadow_rules_stat_prefix": SHADOW_ALLOW_PREFIX}}


def split_by_action(policies, root_namespace: str):
    """{"root-deny": [...], "DENY": [...], "ALLOW": [...]} of enforced policies (Istio's
    order: root namespace DENY, DENY, ALLOW), and the rest: AUDIT, CUSTOM, dry-run."""
    out = {"root-deny": [], "DENY": [], "ALLOW": []}
    rest = []
    for p in policies:
        action = p.spec.get("action") or "ALLOW"
        if action in ("AUDIT", "CUSTOM") or is_dry_run(p):
            rest.append(p)
        elif action == "DENY":
            out["root-deny" if p.namespace == root_namespace else "DENY"].append(p)
        else:
            out["ALLOW"].append(p)
    return out, rest


def build_filters(policies, *, for_tcp: bool, bundle: TrustDomainBundle, root_namespace: str = "istio-system"):
    """(RBAC filters in evaluation order, Built list) for the enforced policies."""
    groups, _ = split_by_action(policies, root_namespace)
    filters, builts = [], []
    for key, action in (("root-deny", "DENY"), ("DENY", "DENY"), ("ALLOW", "ALLOW")):
        built = build_rules(groups[key], action, for_tcp, bundle)
        if built is None:
            continue
        builts.append(built)
        filters.append(network_filter(built.rules) if for_tcp else http_filter(built.rules))
    return filters, builts


def map_destination_ports(node, app_port: int, listener_port: int):
    """A copy of an RBAC tree in which `destination_port: <app port>` tests the
    inbound listener's port instead: with explicit ports (no iptables) the
    connection arrives on the sidecar's inbound port, while Istio's `ports`
    and `destination.port` name the application's port. Any other port can
    never be the application's port on this listener, so it never matches
    (even if it happens to equal the listener's port)."""
    if isinstance(node, list):
        return [map_destination_ports(x, app_port, listener_port) for x in node]
    if not isinstance(node, dict):
        return node
    if "destination_port" in node and len(node) == 1:
        port = node["destination_port"]
        if port == app_port:
            return {"destination_port": listener_port}
        if port == listener_port:
            return {"not_rule": {"any": True}}
        return dict(node)
    return {k: map_destination_ports(v, app_port, listener_port) for k, v in node.items()}
