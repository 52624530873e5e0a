"""VirtualService http[] (and tcp[]) -> Envoy routes, for one listener port of one proxy.

Follows Istio's route translation (pilot/pkg/networking/core/route):
http[] in order, one Route per match entry (or one matching "/" when there
is none), translation stops after a catch-all; matches that do not apply
to this proxy or port (port, sourceLabels, sourceNamespace, gateways) are
left out; Istio's default retry policy when `retries` is absent; no route
timeout unless `timeout` is set (Envoy's own default would be 15s).
"""
from __future__ import annotations

import itertools
import re

from meshcore.config.rules import RETRY_ON
from meshcore.xds_types import FAULT_FILTER_NAME, HTTP_FAULT, PREVIOUS_HOSTS, type_url

from . import clusters as cl
from . import findings as fnd
from . import hosts
from . import registry as reg
from .rules import HTTP_STATUS_CODES, MESH_GATEWAY

DEFAULT_RETRY_ON = "connect-failure,refused-stream,unavailable,cancelled,retriable-status-codes"
PREVIOUS_HOSTS_PREDICATE = {"name": "envoy.retry_host_predicates.previous_hosts",
                            "typed_config": {"@type": type_url(PREVIOUS_HOSTS)}}
REDIRECT_CODES = {301: "MOVED_PERMANENTLY", 302: "FOUND", 303: "SEE_OTHER", 307: "TEMPORARY_REDIRECT",
                  308: "PERMANENT_REDIRECT"}
MAX_WITHOUT_HEADERS = 4  # valued withoutHeaders entries per match (each doubles the routes)


def default_retry_policy(consistent_hash: bool = False) -> dict:
    """Istio's DefaultPolicy (and DefaultConsistentHashPolicy: no previous_hosts)."""
    policy = {"retry_on": DEFAULT_RETRY_ON, "num_retries": 2, "retriable_status_codes": [503],
              "host_selection_retry_max_attempts": 5}
    if not consistent_hash:
        policy["retry_host_predicate"] = [dict(PREVIOUS_HOSTS_PREDICATE)]
    return policy


def retry_policy(retries: dict | None, consistent_hash: bool, note=None) -> dict | None:
    """Istio's ConvertPolicy. note(path, text) receives warnings (paths relative to `retries`)."""
    out = default_retry_policy(consistent_hash)
    if retries is None:
        return out
    attempts = retries.get("attempts") or 0
    if attempts <= 0:
        return None  # explicitly disabled
    out["num_retries"] = attempts
    if retries.get("retryOn"):
        names, codes, dropped = [], [], []
        for token in retries["retryOn"].split(","):
            token = token.strip()
            if not token:
                continue
            if token.isdigit() and int(token) in HTTP_STATUS_CODES:
                codes.append(int(token))
            elif token in RETRY_ON:
                names.append(token)
            else:
                dropped.append(token)
        if dropped and note:
            note("retryOn", f'not supported by meshcore, ignored: retry condition(s) {", ".join(dropped)} '
                            "(never met on meshcore's HTTP/1.1 data plane)")
        if codes and "retriable-status-codes" not in names:
            names.append("retriable-status-codes")
        out["retry_on"] = ",".join(names)
        out["retriable_status_codes"] = codes
        if not out["retriable_status_codes"]:
            del out["retriable_status_codes"]
    if retries.get("perTryTimeout"):
        out["per_try_timeout"] = cl.duration(retries["perTryTimeout"])
    ignore = retries.get("retryIgnorePreviousHosts")
    if ignore is not None:
        if ignore:
            out["retry_host_predicate"] = [dict(PREVIOUS_HOSTS_PREDICATE)]
        else:
            out.pop("retry_host_predicate", None)
    if retries.get("backoff"):
        out["retry_back_off"] = {"base_interval": cl.duration(retries["backoff"])}
    return out


# istiod's BuildDefaultHTTPInboundRoute (and the outbound default route built from it):
# no stream limit, a gRPC call's grpc-timeout honoured uncapped
DEFAULT_STREAM_DURATION = {"max_stream_duration": "0s", "grpc_timeout_header_max": "0s"}


def grpc_timeout(timeout: str) -> dict:
    """istiod's setTimeout for sidecars: the route's timeout, and a gRPC call's
    grpc-timeout header honoured, capped by it ("0s": uncapped). istiod writes the
    deprecated RouteAction.max_grpc_timeout, not max_stream_duration: with the
    latter, Envoy's router ignores `timeout` (a VirtualService timeout would not
    hold for plain HTTP on an Envoy sidecar). Proxyless gRPC: controlplane/flavor_grpc.py."""
    return {"timeout": timeout, "max_grpc_timeout": timeout}


def fraction(value) -> dict:
    """Istio's translatePercentToFractionalPercent: percent (double) -> parts per million."""
    return {"numerator": int(value * 10000), "denominator": "MILLION"}


def hundred(percent: int) -> dict:
    return {"numerator": percent, "denominator": "HUNDRED"}


# ---- matches ----------------------------------------------------------------------------------------


def _is_present(sm) -> bool:
    return not sm or (sm.get("exact") is None and sm.get("prefix") is None and sm.get("regex") is None) \
        or sm.get("regex") == "*"


def _string_matcher(sm: dict) -> dict:
    if sm.get("exact") is not None:
        return {"exact": sm["exact"]}
    if sm.get("prefix") is not None:
        return {"prefix": sm["prefix"]}
    return {"safe_regex": {"regex": sm["regex"]}}


def header_matcher(name: str, sm) -> dict:
    if _is_present(sm):
        return {"name": name, "present_match": True}
    return {"name": name, "string_match": _string_matcher(sm)}


def _matches_empty(sm) -> bool:
    """Whether a header missing (read as "") would satisfy sm."""
    if sm.get("exact") is not None:
        return sm["exact"] == ""
    if sm.get("prefix") is not None:
        return sm["prefix"] == ""
    try:
        return re.fullmatch(sm["regex"], "") is not None
    except re.error:
        return False


def route_matches(m: dict | None) -> list[dict]:
    """Istio's TranslateRouteMatch; a list, because withoutHeaders with a value
    (Istio: invert_match + treat_missing_header_as_empty, which meshcore's
    subset lacks) becomes one route for "header absent" and one for "present
    and not matching" per entry."""
    out = {"prefix": "/"}
    if m is None:
        return [out]
    headers = [header_matcher(n, sm) for n, sm in sorted((m.get("headers") or {}).items())]
    branches = []
    for n, sm in sorted((m.get("withoutHeaders") or {}).items()):
        if _is_present(sm):
            headers.append({"name": n, "present_match": True, "invert_match": True})
            continue
        options = [{"name": n, "string_match": _string_matcher(sm), "invert_match": True}]
        if not _matches_empty(sm):
            options.insert(0, {"name": n, "present_match": True, "invert_match": True})
        branches.append(options)
    uri = m.get("uri")
    if uri:
        if uri.get("exact") is not None:
            out = {"path": uri["exact"]}
        elif uri.get("prefix") is not None:
            out = {"prefix": uri["prefix"]}
        elif uri.get("regex") is not None:
            out = {"safe_regex": {"regex": uri["regex"]}}
    out["case_sensitive"] = not m.get("ignoreUriCase", False)
    for field, pseudo in (("method", ":method"), ("authority", ":authority"), ("scheme", ":scheme")):
        if m.get(field) is not None:
            headers.append(header_matcher(pseudo, m[field]))
    params = []
    for n, sm in sorted((m.get("queryParams") or {}).items()):
        params.append({"name": n, "present_match": True} if _is_present(sm)
                      else {"name": n, "string_match": _string_matcher(sm)})
    if params:
        out["query_parameters"] = params
    results = []
    for combo in itertools.product(*branches) if branches else [()]:
        r = dict(out)
        hs = headers + list(combo)
        if hs:
            r["headers"] = sorted(hs, key=lambda h: h["name"])
        results.append(r)
    return results


def is_catch_all(route: dict) -> bool:
    """Istio's IsCatchAllRoute."""
    m = route["match"]
    path_all = m.get("prefix") == "/" or (m.get("safe_regex") or {}).get("regex") == ".*"
    return path_all and not m.get("headers") and not m.get("query_parameters")


def applies(m: dict | None, port: int, proxy: reg.Workload) -> bool:
    """Whether a match entry concerns this listener port and proxy (Istio's
    port check and sourceMatchHTTP)."""
    if m is None:
        return True
    if m.get("port") and m["port"] != port:
        return False
    if m.get("gateways"):
        return MESH_GATEWAY in m["gateways"]
    if not reg.label_match(m.get("sourceLabels") or {}, proxy.labels):
        return False
    return not m.get("sourceNamespace") or m["sourceNamespace"] == proxy.namespace


# ---- header operations ----------------------------------------------------------------------------------


def _internal(name: str) -> bool:
    return name.startswith(":") or name.lower() == "host"


def _authority(name: str) -> bool:
    return name.lower() in (":authority", "host")


def header_ops(headers: dict | None):
    """(route fields, authority) of Istio's TranslateHeadersOperations."""
    fields, authority = {}, ""
    if not headers:
        return fields, authority
    for side, prefix in (("request", "request"), ("response", "response")):
        ops = headers.get(side) or {}
        adds = []
        for op, action in (("set", "OVERWRITE_IF_EXISTS_OR_ADD"), ("add", "APPEND_IF_EXISTS_OR_ADD")):
            for key, value in sorted((ops.get(op) or {}).items()):
                if _authority(key) and side == "request":
                    if op == "set" or not authority:
                        authority = value
                if _internal(key):
                    continue
                adds.append({"header": {"key": key, "value": value}, "append_action": action})
        if adds:
            fields[f"{prefix}_headers_to_add"] = adds
        removes = [k for k in ops.get("remove") or [] if not _internal(k)]
        if removes:
            fields[f"{prefix}_headers_to_remove"] = removes
    return fields, authority


def _merge_ops(route: dict, fields: dict):
    for k, v in fields.items():
        route[k] = route.get(k, []) + v


# ---- the translation of one VirtualService ------------------------------------------------------------------


class VirtualServiceRoutes:
    """Routes of one VirtualService for one listener port of one proxy.

    ctx provides: registry, proxy, destination_rule(host), use_cluster(name, ...)
    and note(resource, severity, code, path, text)."""

    def __init__(self, vs, port: int, ctx):
        self.vs, self.port, self.ctx = vs, port, ctx

    def note(self, severity, code, path, text):
        self.ctx.note(self.vs, severity, code, path, text)

    def http_routes(self) -> list[dict]:
        out = []
        for i, http in enumerate(self.vs.spec.get("http") or []):
            matches = http.get("match") or []
            catch_all = not matches
            for j, m in enumerate(matches or [None]):
                if not applies(m, self.port, self.ctx.proxy):
                    continue
                routes = self.translate(http, m, f"spec.http[{i}]", j)
                out += routes
                if any(is_catch_all(r) for r in routes):
                    catch_all = True
                    break
            if catch_all:
                break  # what follows is unreachable (`meshcore check` says so)
        return out

    # -- one http[] entry and match

    def translate(self, http: dict, m: dict | None, path: str, j: int) -> list[dict]:
        if m is not None:
            for key in ("headers", "withoutHeaders"):
                if any(n.startswith("@request.auth.claims") for n in m.get(key) or {}):
                    return []  # reported by validation
            valued = [sm for sm in (m.get("withoutHeaders") or {}).values() if not _is_present(sm)]
            if len(valued) > MAX_WITHOUT_HEADERS:
                self.note(fnd.ERROR, fnd.UNSUPPORTED, f"{path}.match[{j}].withoutHeaders",
                          f"not supported by meshcore: more than {MAX_WITHOUT_HEADERS} withoutHeaders with a value "
                          "in one match")
                return []
        name = http.get("name") or ""
        if m is not None and m.get("name"):
            name = f"{name}.{m['name']}"
        template = {}
        ops, authority = header_ops(http.get("headers"))
        template.update(ops)
        if http.get("redirect") is not None:
            template["redirect"] = self.redirect(http["redirect"])
        elif http.get("directResponse") is not None:
            template["direct_response"] = self.direct_response(http["directResponse"])
        elif http.get("route"):
            action = self.route_action(http, path, authority, template)
            if action is None:
                return []
            template["route"] = action
        else:
            return []  # delegate (reported by validation)
        fault = self.fault(http.get("fault"), f"{path}.fault")
        if fault:
            template["typed_per_filter_config"] = {FAULT_FILTER_NAME: fault}
        routes = []
        for match in route_matches(m):
            route = {"name": name, "match": match} if name else {"match": match}
            route.update(template)
            action = route.get("route")
            if action and "safe_regex" in match and "prefix_rewrite" in action:
                # Envoy rewrites the whole path of a regex route with prefix_rewrite;
                # meshcore's core says so explicitly.
                action = dict(action)
                action["regex_rewrite"] = {"pattern": {"regex": "^.*$"},
                                           "substitution": action.pop("prefix_rewrite").replace("\\", "\\\\")}
                route["route"] = action
            routes.append(route)
        return routes

    def destination_cluster(self, dest: dict, path: str) -> tuple[str, str]:
        """(cluster name, host) of a Destination (Istio's GetDestinationCluster)."""
        host = hosts.fqdn(dest["host"], self.vs.namespace)
        svc = self.ctx.registry.service(host)
        if (dest.get("port") or {}).get("number"):
            port = dest["port"]["number"]
        elif svc is not None and len(svc.ports) == 1:
            port = svc.ports[0].number
        else:
            port = self.port
        name = cl.cluster_name(port, dest.get("subset") or "", host)
        self.ctx.use_cluster(name, self.vs, path)
        return name, host

    def consistent_hash(self, dest: dict, host: str):
        """Istio's hashForHTTPDestination: subset port-level, subset, port-level, top level."""
        dr = self.ctx.destination_rule(host)
        if dr is None:
            return None
        top = dr.spec.get("trafficPolicy") or {}
        ch = cl.consistent_hash(top)
        port = (dest.get("port") or {}).get("number")

        def port_hash(policy):
            if not port:
                return None
            for pls in policy.get("portLevelSettings") or []:
                if (pls.get("port") or {}).get("number") == port:
                    return cl.consistent_hash(pls)
            return None

        pls_hash = port_hash(top)
        subset_hash = subset_pls_hash = None
        subset = reg.subset_of(dr, dest.get("subset") or "") if dest.get("subset") else None
        if subset is not None:
            sp = subset.get("trafficPolicy") or {}
            subset_hash, subset_pls_hash = cl.consistent_hash(sp), port_hash(sp)
        return subset_pls_hash or subset_hash or pls_hash or ch

    def route_action(self, http: dict, path: str, authority: str, route: dict) -> dict | None:
        timeout = cl.duration(http["timeout"]) if http.get("timeout") else "0s"
        action = grpc_timeout(timeout)
        rewrite = http.get("rewrite")
        if rewrite:
            rr = rewrite.get("uriRegexRewrite")
            if rr:
                action["regex_rewrite"] = {"pattern": {"regex": rr["match"]}, "substitution": rr["rewrite"]}
            elif rewrite.get("uri"):
                action["prefix_rewrite"] = rewrite["uri"]
            if rewrite.get("authority"):
                authority = rewrite["authority"]
        mirrors = []
        if http.get("mirror") is not None:
            pct = self._mirror_percent(http)
            if pct is not None:
                mirrors.append((http["mirror"], pct, f"{path}.mirror"))
        for k, mp in enumerate(http.get("mirrors") or []):
            pct = {"default_value": fraction(mp["percentage"].get("value") or 0)} \
                if mp.get("percentage") is not None else {"default_value": hundred(100)}
            if mp.get("percentage") is not None and not (mp["percentage"].get("value") or 0) > 0:
                continue
            mirrors.append((mp["destination"], pct, f"{path}.mirrors[{k}].destination"))
        if mirrors:
            action["request_mirror_policies"] = [
                {"cluster": self.destination_cluster(d, p)[0], "runtime_fraction": pct} for d, pct, p in mirrors]
        dests = http["route"]
        hashes = []
        consistent = False
        if len(dests) == 1:
            d = dests[0]
            action["cluster"], host = self.destination_cluster(d["destination"], f"{path}.route[0].destination")
            ops, dest_authority = header_ops(d.get("headers"))
            _merge_ops(route, ops)
            if dest_authority and not authority:
                authority = dest_authority
            ch = self.consistent_hash(d["destination"], host)
            hashes += cl.hash_policy(ch)
            consistent = ch is not None
        else:
            weighted = []
            for k, d in enumerate(dests):
                if not d.get("weight"):
                    continue  # Istio leaves 0-weight destinations out of a split
                name, host = self.destination_cluster(d["destination"], f"{path}.route[{k}].destination")
                weighted.append({"name": name, "weight": d["weight"]})
                hashes += cl.hash_policy(self.consistent_hash(d["destination"], host))
            if not weighted:
                return None  # validation reports the weights
            action["weighted_clusters"] = {"clusters": weighted}
        if authority:
            action["host_rewrite_literal"] = authority
        policy = retry_policy(http.get("retries"), consistent,
                              lambda p, t: self.note(fnd.WARNING, fnd.IGNORED, f"{path}.retries.{p}", t))
        if policy is not None:
            action["retry_policy"] = policy
        if hashes:
            action["hash_policy"] = hashes
        return action

    @staticmethod
    def _mirror_percent(http):
        """Istio's MirrorPercent: mirrorPercentage, else mirrorPercent, else 100%; 0 = no mirror."""
        if http.get("mirrorPercentage") is not None:
            value = http["mirrorPercentage"].get("value") or 0
            return {"default_value": fraction(value)} if value > 0 else None
        for key in ("mirrorPercent", "mirror_percent"):
            if http.get(key) is not None:
                return {"default_value": hundred(http[key])} if http[key] > 0 else None
        return {"default_value": hundred(100)}

    def redirect(self, r: dict) -> dict:
        """Istio's ApplyRedirect."""
        out = {}
        if r.get("uri"):
            out["path_redirect"] = r["uri"]
        elif r.get("prefixRewrite"):
            out["prefix_rewrite"] = r["prefixRewrite"]
        if r.get("authority"):
            out["host_redirect"] = r["authority"]
        if r.get("scheme"):
            out["scheme_redirect"] = r["scheme"]
        port = None
        if r.get("port"):
            port = r["port"]
        elif r.get("derivePort") == "FROM_REQUEST_PORT":
            port = self.port
        if port is not None:
            scheme = r.get("scheme") or "http"
            if not ((port == 80 and scheme == "http") or (port == 443 and scheme == "https")):
                out["port_redirect"] = port
        code = r.get("redirectCode") or 301
        if code != 301 and code in REDIRECT_CODES:
            out["response_code"] = REDIRECT_CODES[code]
        return out

    @staticmethod
    def direct_response(d: dict) -> dict:
        out = {"status": d["status"]}
        body = d.get("body") or {}
        if body.get("string") is not None:
            out["body"] = {"inline_string": body["string"]}
        elif body.get("bytes") is not None:
            out["body"] = {"inline_bytes": body["bytes"]}  # proto JSON bytes are base64, as Istio's
        return out

    def fault(self, f: dict | None, path: str) -> dict | None:
        """Istio's TranslateFault."""
        if not f:
            return None
        out = {"@type": type_url(HTTP_FAULT)}
        delay = f.get("delay")
        if delay:
            if delay.get("fixedDelay"):
                d = {"fixed_delay": cl.duration(delay["fixedDelay"])}
                if delay.get("percentage") is not None:
                    d["percentage"] = fraction(delay["percentage"].get("value") or 0)
                else:
                    d["percentage"] = hundred(delay.get("percent") or 0)
                out["delay"] = d
        abort = f.get("abort")
        if abort and abort.get("httpStatus") is not None:
            a = {"http_status": abort["httpStatus"]}
            if abort.get("percentage") is not None:
                a["percentage"] = fraction(abort["percentage"].get("value") or 0)
            out["abort"] = a
        if "delay" not in out and "abort" not in out:
            return None
        return out


def default_route(cluster: str, hash_policy: list) -> dict:
    """Istio's BuildDefaultHTTPOutboundRoute: everything to the service, default retries, no timeout."""
    action = {"cluster": cluster, "timeout": "0s", "max_stream_duration": dict(DEFAULT_STREAM_DURATION),
              "retry_policy": default_retry_policy(False)}
    if hash_policy:
        action["hash_policy"] = hash_policy
    return {"name": "default", "match": {"prefix": "/"}, "route": action}


def tcp_destinations(vs, port: int, ctx) -> list | None:
    """[(cluster, weight)] of the first tcp[] entry of vs that applies to (proxy, port), or None."""
    for i, tcp in enumerate(vs.spec.get("tcp") or []):
        matches = tcp.get("match") or [None]
        usable = False
        for m in matches:
            if m is None:
                usable = True
                break
            if m.get("destinationSubnets") or m.get("sourceSubnet"):
                continue  # reported by validation
            if m.get("port") and m["port"] != port:
                continue
            if m.get("gateways"):
                if MESH_GATEWAY in m["gateways"]:
                    usable = True
                    break
                continue
            if reg.label_match(m.get("sourceLabels") or {}, ctx.proxy.labels) and (
                    not m.get("sourceNamespace") or m["sourceNamespace"] == ctx.proxy.namespace):
                usable = True
                break
        if not usable or not tcp.get("route"):
            continue
        builder = VirtualServiceRoutes(vs, port, ctx)
        out = []
        for k, d in enumerate(tcp["route"]):
            if len(tcp["route"]) > 1 and not d.get("weight"):
                continue
            name, _ = builder.destination_cluster(d["destination"], f"spec.tcp[{i}].route[{k}].destination")
            out.append((name, d.get("weight") or 1))
        return out or None
    return None
