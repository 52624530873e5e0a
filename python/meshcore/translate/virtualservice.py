"""The VirtualService schema: Istio's field rules (CRD schema, CEL, webhook)
and what meshcore does with each field (routes.py translates it)."""
from __future__ import annotations

import base64
import binascii

from . import findings as fnd
from . import hosts
from .rules import (
    GRPC_STATUS,
    HTTP_STATUS_CODES,
    ISTIO_MAX_DIRECT_RESPONSE_BODY,
    ISTIO_RETRY_ON,
    MAX_DIRECT_RESPONSE_BODY,
    MESH_GATEWAY,
    REDIRECT_CODES,
    check_dest_host,
    check_dns_label,
    check_gateway_names,
    check_header_value,
    check_http_status,
    check_subset_name,
    export_to,
    header_name_problem,
    percent_node,
    port_number,
    regex_problem,
)
from .schema import (
    Bool,
    Dur,
    Enum,
    Int,
    IstioRejects,
    List,
    Map,
    Obj,
    Str,
    Unsupported,
    Warned,
    join,
    key_path,
)

# ---- VirtualService ---------------------------------------------------------------------------------


def _string_match(where, to="", present_ok=False):
    def check(v, path, out):
        if "regex" in v and v["regex"] is not None and not (present_ok and v["regex"] == "*"):
            problem = regex_problem(v["regex"])
            if problem:
                out.error(join(path, "regex"), f"{where}: {problem}")
        if where != "uri" and v.get("prefix") == "":
            out.error(join(path, "prefix"), f"{where}: an empty prefix is not a valid match (Envoy rejects it)")

    return Obj(
        fields={"exact": Str(), "prefix": Str(), "regex": Str()},
        exclusive=(("exact", "prefix", "regex"),),
        check=check,
        to=to,
    )


def _header_map(where, to):
    def key_problem(name):
        if name.startswith("@request.auth.claims"):
            return None  # reported as unsupported by the route check
        return header_name_problem(name)

    return Map(_string_match(where, present_ok=True), key_check=key_problem, to=to)


def _http_match():
    return Obj(
        fields={
            "name": Str(to="Route.name suffix"),
            "uri": _string_match("uri", "RouteMatch path / prefix / safe_regex"),
            "scheme": _string_match("scheme", 'RouteMatch.headers ":scheme"'),
            "method": _string_match("method", 'RouteMatch.headers ":method"'),
            "authority": _string_match("authority", 'RouteMatch.headers ":authority"'),
            "headers": _header_map("headers", "RouteMatch.headers ({} = present_match)"),
            "port": port_number("port", to="the listener (route config) the match applies to"),
            "sourceLabels": Map(Str(), key_check=hosts.label_key_problem,
                                to="evaluated against the proxy's WorkloadEntry labels"),
            "gateways": List(Str(), check=check_gateway_names, to='evaluated: applies when it lists "mesh"'),
            "queryParams": _header_map("queryParams", "RouteMatch.query_parameters"),
            "ignoreUriCase": Bool(to="RouteMatch.case_sensitive"),
            "withoutHeaders": _header_map("withoutHeaders", "RouteMatch.headers with invert_match"),
            "sourceNamespace": Str(check=check_dns_label("sourceNamespace match"),
                                   to="evaluated against the proxy's namespace"),
            "statPrefix": Warned(Str(), "per-route stats are not implemented"),
        }
    )


def _destination(to="cluster outbound|port|subset|host"):
    return Obj(
        fields={
            "host": Str(check=check_dest_host, to="the FQDN in the cluster name"),
            "subset": Str(check=check_subset_name, to="the subset in the cluster name"),
            "port": Obj(fields={"number": port_number(to="the port in the cluster name")}),
        },
        required=("host",),
        to=to,
    )


def _header_ops(to):
    def op_map(action):
        def key_problem(name):
            return header_name_problem(name) if not name.startswith(":") else None

        return Map(Str(check=check_header_value), key_check=key_problem,
                   to=f"*_headers_to_add, append_action {action}")

    def one_side():
        return Obj(fields={
            "set": op_map("OVERWRITE_IF_EXISTS_OR_ADD"),
            "add": op_map("APPEND_IF_EXISTS_OR_ADD"),
            "remove": List(Str(check=_check_remove), to="*_headers_to_remove"),
        })

    return Obj(fields={"request": one_side(), "response": one_side()}, to=to)


def _check_remove(v, path, out):
    problem = header_name_problem(v)
    if problem:
        out.error(path, problem)


def _http_route_destination():
    return Obj(
        fields={
            "destination": _destination(),
            "weight": Int(lo=0, hi=100, what="must be 0..100", to="WeightedCluster.ClusterWeight.weight"),
            "headers": _header_ops("Route header operations (one destination only)"),
        },
        required=("destination",),
    )


def _check_retries(v, path, out):
    attempts = v.get("attempts")
    if isinstance(attempts, int) and attempts < 0:
        out.error(join(path, "attempts"), "attempts cannot be negative")
    if not attempts and any(v.get(k) is not None for k in ("perTryTimeout", "retryOn", "retryRemoteLocalities")):
        out.error(path, "http retry policy configured when attempts are set to 0 (disabled)")
    retry_on = v.get("retryOn")
    if isinstance(retry_on, str):
        for token in retry_on.split(","):
            token = token.strip()
            if token.isdigit() and int(token) in HTTP_STATUS_CODES:
                continue
            if token not in ISTIO_RETRY_ON:
                out.error(join(path, "retryOn"), f'"{token}" is not a valid retryOn policy')


def _retries():
    return Obj(
        fields={
            "attempts": Int(to="RetryPolicy.num_retries (0 disables retries)"),
            "perTryTimeout": Dur(to="RetryPolicy.per_try_timeout"),
            "retryOn": Str(to="RetryPolicy.retry_on + retriable_status_codes"),
            "retryRemoteLocalities": Warned(Bool(), "meshcore has no localities"),
            "retryIgnorePreviousHosts": Bool(to="RetryPolicy.retry_host_predicate previous_hosts"),
            "backoff": Dur(to="RetryPolicy.retry_back_off.base_interval"),
        },
        check=_check_retries,
    )


def _check_fault(v, path, out):
    if v.get("abort") is None and v.get("delay") is None:
        out.error(path, "HTTP fault injection must have an abort and/or a delay")


def _check_abort(v, path, out):
    if v.get("http2Error") is not None:
        out.error(join(path, "http2Error"), "HTTP/2 abort fault injection not supported yet")
    status = v.get("grpcStatus")
    if isinstance(status, str) and status not in GRPC_STATUS:
        out.error(join(path, "grpcStatus"), f'gRPC status "{status}" is not supported')
    if all(v.get(k) is None for k in ("httpStatus", "grpcStatus", "http2Error")):
        out.warn(path, "abort configured, but error type not set: nothing is aborted")



def _exponential_delay(v, path, out):
    out.error(path, "exponentialDelay not supported yet")


def _fault():
    delay = Obj(
        fields={
            "fixedDelay": Dur(to="HTTPFault.delay.fixed_delay"),
            "exponentialDelay": IstioRejects(Dur(check=_exponential_delay), "exponentialDelay not supported yet"),
            "percentage": percent_node("HTTPFault.delay.percentage (per million)"),
            "percent": Int(lo=0, hi=100, to="HTTPFault.delay.percentage (deprecated integer percent)"),
        },
        exclusive=(("fixedDelay", "exponentialDelay"),),
    )
    abort = Obj(
        fields={
            "httpStatus": Int(check=check_http_status, to="HTTPFault.abort.http_status"),
            "grpcStatus": Unsupported(Str(), "meshcore's fault filter aborts with an HTTP status only"),
            "http2Error": IstioRejects(Str(), "HTTP/2 abort fault injection not supported yet"),
            "percentage": percent_node("HTTPFault.abort.percentage (per million)"),
        },
        exclusive=(("httpStatus", "grpcStatus", "http2Error"),),
        check=_check_abort,
    )
    return Obj(fields={"delay": delay, "abort": abort}, check=_check_fault,
               to='Route.typed_per_filter_config["envoy.filters.http.fault"]')


def _check_redirect(v, path, out):
    if all(v.get(k) in (None, "") for k in ("uri", "authority", "port", "derivePort", "scheme")):
        out.error(path, "redirect must specify URI, authority, scheme, or port")
    code = v.get("redirectCode")
    if isinstance(code, int) and code:
        if not 300 <= code <= 399:
            out.error(join(path, "redirectCode"), f"{code} is not a valid redirect code, must be 3xx")
        elif code not in REDIRECT_CODES:
            out.unsupported(join(path, "redirectCode"),
                            f"{code}: Envoy (and so meshcore) can only send {', '.join(map(str, REDIRECT_CODES))}")
    if v.get("uri") and v.get("prefixRewrite"):
        out.error(path, "uri and prefixRewrite cannot both be set")
    scheme = v.get("scheme")
    if scheme not in (None, "", "http", "https"):
        out.error(join(path, "scheme"), 'invalid redirect scheme, must be "http" or "https"')


def _redirect():
    return Obj(
        fields={
            "uri": Str(to="RedirectAction.path_redirect"),
            "authority": Str(to="RedirectAction.host_redirect"),
            "port": port_number("redirect port", to="RedirectAction.port_redirect"),
            "derivePort": Enum(values=("FROM_PROTOCOL_DEFAULT", "FROM_REQUEST_PORT"),
                               to="RedirectAction.port_redirect (the listener port)"),
            "scheme": Str(to="RedirectAction.scheme_redirect"),
            "redirectCode": Int(lo=0, to="RedirectAction.response_code"),
            "prefixRewrite": Str(to="RedirectAction.prefix_rewrite"),
        },
        exclusive=(("port", "derivePort"),),
        check=_check_redirect,
    )


def _check_direct_response(v, path, out):
    status = v.get("status")
    if isinstance(status, int):
        check_http_status(status, join(path, "status"), out)
    body = v.get("body") or {}
    size = None
    if isinstance(body.get("string"), str):
        size = len(body["string"].encode())
    elif isinstance(body.get("bytes"), str):
        try:
            size = len(base64.b64decode(body["bytes"], validate=True))
        except (binascii.Error, ValueError):
            out.error(join(path, "body.bytes"), "not valid base64")
    if size is not None:
        if size > ISTIO_MAX_DIRECT_RESPONSE_BODY:
            out.error(join(path, "body"), "large direct_responses may impact control plane performance, "
                                          "must be less than 1MB")
        elif size > MAX_DIRECT_RESPONSE_BODY:
            out.unsupported(join(path, "body"),
                            f"{size} bytes: meshcore's direct responses are limited to "
                            f"{MAX_DIRECT_RESPONSE_BODY} bytes (Envoy's default)")


def _direct_response():
    return Obj(
        fields={
            "status": Int(lo=0, to="DirectResponseAction.status"),
            "body": Obj(fields={"string": Str(to="DataSource.inline_string"),
                                "bytes": Str(to="DataSource.inline_bytes (base64)")},
                        exclusive=(("string", "bytes"),)),
        },
        required=("status",),
        check=_check_direct_response,
    )


def _check_rewrite(v, path, out):
    if v.get("uri") and v.get("uriRegexRewrite") is not None:
        out.error(path, "rewrite may only contain one of URI or UriRegexRewrite")
    if not v.get("uri") and v.get("uriRegexRewrite") is None and not v.get("authority"):
        out.error(path, "rewrite must specify at least one of URI, UriRegexRewrite, or authority")
    rr = v.get("uriRegexRewrite")
    if isinstance(rr, dict):
        if not rr.get("match") or not rr.get("rewrite"):
            out.error(join(path, "uriRegexRewrite"), "UriRegexRewrite requires both Rewrite and Match fields")
        elif isinstance(rr["match"], str):
            problem = regex_problem(rr["match"])
            if problem:
                out.error(join(path, "uriRegexRewrite.match"), problem)


def _rewrite():
    return Obj(
        fields={
            "uri": Str(to="RouteAction.prefix_rewrite (regex_rewrite for a regex match)"),
            "authority": Str(to="RouteAction.host_rewrite_literal"),
            "uriRegexRewrite": Obj(fields={"match": Str(), "rewrite": Str()},
                                   to="RouteAction.regex_rewrite"),
        },
        check=_check_rewrite,
    )


def _mirror_policy():
    return Obj(fields={"destination": _destination("RequestMirrorPolicy.cluster"),
                       "percentage": percent_node("RequestMirrorPolicy.runtime_fraction")},
               required=("destination",))


def _cors():
    sm = Obj(fields={"exact": Str(), "prefix": Str(), "regex": Str()})
    return Unsupported(
        Obj(fields={
            "allowOrigins": List(sm), "allowOrigin": List(Str()), "allowMethods": List(Str()),
            "allowHeaders": List(Str()), "exposeHeaders": List(Str()), "maxAge": Dur(),
            "allowCredentials": Bool(), "unmatchedPreflights": Enum(values=("UNSPECIFIED", "FORWARD", "IGNORE")),
        }),
        "meshcore has no CORS filter; ignoring the policy would change responses",
    )


def _authority_headers(headers):
    out = []
    for op in ("set", "add"):
        for k in ((headers or {}).get("request") or {}).get(op) or {}:
            if k.lower() in (":authority", "host"):
                out.append((op, k))
    return out


def _check_http_route(v, path, out):
    actions = [k for k in ("route", "redirect", "directResponse", "delegate") if v.get(k)]
    if v.get("redirect") is not None:
        if v.get("route"):
            out.error(path, "HTTP route cannot contain both route and redirect")
        if v.get("fault") is not None:
            out.error(path, "HTTP route cannot contain both fault and redirect")
        if v.get("rewrite") is not None:
            out.error(path, "HTTP route rule cannot contain both rewrite and redirect")
    if v.get("directResponse") is not None and (v.get("route") or v.get("redirect") is not None):
        out.error(path, "directResponse cannot be set together with route or redirect")
    if not actions:
        out.error(path, "HTTP route or redirect is required (one of route, redirect, directResponse)")
    route = v.get("route")
    if isinstance(route, list) and len(route) > 1:
        weights = [d.get("weight") or 0 for d in route if isinstance(d, dict)]
        if all(isinstance(w, int) for w in weights):
            total = sum(weights)
            if total == 0:
                out.error(join(path, "route"), "total destination weight = 0")
            elif total != 100:
                out.error(join(path, "route"), f"the destination weights add up to {total}, must be 100")
    if isinstance(route, list) and len(route) > 1:
        for k, d in enumerate(route):
            if isinstance(d, dict) and d.get("headers"):
                out.unsupported(join(path, f"route[{k}].headers"),
                                "not supported by meshcore: header operations per destination of a weighted split "
                                "(the xDS subset has no per-cluster header operations); put them on the route")
    if v.get("mirror") is not None and v.get("mirrors"):
        out.error(path, "mirror and mirrors cannot both be set")
    for name in ("mirrorPercent", "mirror_percent"):
        if v.get(name) is not None:
            out.warn(join(path, name), 'using deprecated setting "mirrorPercent", use "mirrorPercentage" instead',
                     fnd.DEPRECATED)
    authorities = _authority_headers(v.get("headers"))
    if len(authorities) + bool((v.get("rewrite") or {}).get("authority")) > 1:
        out.error(join(path, "headers.request"), "authority header cannot be set multiple times")
    for i, m in enumerate(v.get("match") or []):
        if not isinstance(m, dict):
            continue
        for key in ("headers", "withoutHeaders"):
            for name in m.get(key) or {}:
                if isinstance(name, str) and name.startswith("@request.auth.claims"):
                    out.unsupported(key_path(join(path, f"match[{i}].{key}"), name),
                                    "routing on JWT claims needs request authentication, which meshcore lacks")


def _http_route():
    return Obj(
        fields={
            "name": Str(to="Route.name"),
            "match": List(_http_match(), to="one Route per match entry, in order"),
            "route": List(_http_route_destination(), to="RouteAction.cluster or weighted_clusters"),
            "redirect": _redirect(),
            "directResponse": _direct_response(),
            "delegate": Unsupported(Obj(fields={"name": Str(), "namespace": Str()}),
                                    "VirtualService delegation is not implemented"),
            "rewrite": _rewrite(),
            "timeout": Dur(to="RouteAction.timeout (default 0s: none, as Istio)"),
            "retries": _retries(),
            "fault": _fault(),
            "mirror": _destination("RequestMirrorPolicy.cluster"),
            "mirrorPercent": Int(lo=0, hi=100, what="mirror_percent must have a max value of 100",
                                 to="RequestMirrorPolicy.runtime_fraction (deprecated)"),
            "mirror_percent": Int(lo=0, hi=100, what="mirror_percent must have a max value of 100",
                                  to="RequestMirrorPolicy.runtime_fraction (deprecated)"),
            "mirrorPercentage": percent_node("RequestMirrorPolicy.runtime_fraction"),
            "mirrors": List(_mirror_policy(), to="RouteAction.request_mirror_policies"),
            "corsPolicy": _cors(),
            "headers": _header_ops("Route request/response header operations"),
        },
        check=_check_http_route,
    )


def _check_weights(route, path, out):
    if len(route) > 1:
        weights = [d.get("weight") or 0 for d in route if isinstance(d, dict)]
        if all(isinstance(w, int) for w in weights) and sum(weights) != 100:
            out.error(path, f"the destination weights add up to {sum(weights)}, must be 100")


def _route_destination():
    return Obj(
        fields={"destination": _destination(),
                "weight": Int(lo=0, hi=100, what="must be 0..100", to="TcpProxy weighted_clusters weight")},
        required=("destination",),
    )


def _tcp_route():
    match = Obj(fields={
        "destinationSubnets": Unsupported(List(Str()), "outbound listeners are per port, not per address"),
        "gateways": List(Str(), check=check_gateway_names, to='evaluated: applies when it lists "mesh"'),
        "port": port_number("port", to="the listener the match applies to"),
        "sourceLabels": Map(Str(), key_check=hosts.label_key_problem, to="evaluated against the proxy's labels"),
        "sourceNamespace": Str(to="evaluated against the proxy's namespace"),
        "sourceSubnet": Unsupported(Str(), "source addresses are not matched"),
    })
    return Obj(fields={
        "match": List(match, to="the first tcp route whose match applies to the proxy is used"),
        "route": List(_route_destination(), check=_check_weights, to="TcpProxy cluster or weighted_clusters"),
    })


def _tls_route():
    match = Obj(fields={
        "destinationSubnets": List(Str()), "gateways": List(Str()), "port": port_number("port"),
        "sniHosts": List(Str(), min_items=1), "sourceLabels": Map(Str()), "sourceNamespace": Str(),
    }, required=("sniHosts",))
    return Obj(fields={"match": List(match, min_items=1), "route": List(_route_destination())},
               required=("match",))


def _check_virtual_service(v, path, out):
    vhosts = v.get("hosts")
    gateways = v.get("gateways") or []
    applies_to_mesh = not gateways or MESH_GATEWAY in gateways
    if not vhosts:
        if v.get("hosts") is None:
            out.error(join(path, "hosts"), "Required value (virtual service must have at least one host)")
        else:
            out.error(join(path, "hosts"), "virtual service must have at least one host")
    valid = []
    for i, h in enumerate(vhosts or []):
        if not isinstance(h, str):
            continue
        problem = hosts.host_problem(h)
        if problem and not hosts.is_ip(h):
            out.error(f"{path}.hosts[{i}]", problem)
        elif applies_to_mesh and h == "*":
            out.error(f"{path}.hosts[{i}]",
                      "wildcard host * is not allowed for virtual services bound to the mesh gateway")
        else:
            valid.append((i, h))
    for a in range(len(valid)):
        for b in range(a + 1, len(valid)):
            (i, x), (j, y) = valid[a], valid[b]
            if hosts.matches(x, y) or hosts.matches(y, x):
                out.error(f"{path}.hosts[{j}]", f"duplicate hosts in virtual service: {x} & {y}")
    if not (v.get("http") or v.get("tcp") or v.get("tls")):
        out.error(path, "http, tcp or tls must be provided in virtual service")


VIRTUAL_SERVICE = Obj(
    fields={
        "hosts": List(Str(), to="virtual host domains, matched to services"),
        "gateways": List(Str(), check=check_gateway_names, to='applies to sidecars when empty or listing "mesh"'),
        "http": List(_http_route(), to="Routes of each matching service's virtual host"),
        "tcp": List(_tcp_route(), to="TcpProxy of the service's TCP listener"),
        "tls": Warned(List(_tls_route()), "TLS (SNI) routes are not implemented; TLS ports get plain TCP proxying"),
        "exportTo": export_to(),
    },
    check=_check_virtual_service,
)
