"""The HTTP xDS subset: route configurations, virtual hosts (domains) and
header manipulation lists. Helpers and the example: config_http_helpers.py."""
import copy

import pytest
from config_http_helpers import (
    FAULT_KEY,
    FAULT_TYPE,
    RC_AT,
    SPLIT,
    VH_AT,
    at,
    check_error,
    header,
    parse_changed,
    route,
    route_config,
    second_vhost,
    vhost,
)

# ---- route configuration and virtual hosts ------------------------------------------


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda rc: rc.update(vhds={}), "", 'unsupported field "vhds" (supported: name, virtual_hosts, '),
        (lambda rc: rc.update(internal_only_headers=["x-a"]), "", 'unsupported field "internal_only_headers"'),
        (
            lambda rc: rc.update(max_direct_response_body_size_bytes=1),
            "",
            'unsupported field "max_direct_response_body_size_bytes"',
        ),
        (
            lambda rc: rc.update(ignore_port_in_host_matching=True),
            "",
            'unsupported field "ignore_port_in_host_matching"',
        ),
        (
            lambda rc: rc.update(typed_per_filter_config={FAULT_KEY: {"@type": FAULT_TYPE}}),
            "",
            'unsupported field "typed_per_filter_config"',
        ),
        (
            lambda rc: rc.update(request_mirror_policies=[{"cluster": "checkout_v1"}]),
            "",
            'unsupported field "request_mirror_policies"',
        ),
    ],
)
def test_route_config_rules(change, path, text):
    check_error(lambda d: change(route_config(d)), at(RC_AT, path), text)


@pytest.mark.parametrize(
    "change, path, text",
    [
        (
            second_vhost("checkout"),
            "virtual_hosts[1].domains[0]",
            'duplicate domain "checkout" (virtual_hosts[0].domains[0] has it too; '
            "domains must be unique across virtual hosts)",
        ),
        (
            second_vhost("a", "Checkout.Default.svc.cluster.local"),
            "virtual_hosts[1].domains[1]",
            'duplicate domain "Checkout.Default.svc.cluster.local" (virtual_hosts[0].domains[1] has it too',
        ),
        (
            lambda d: (second_vhost("*")(d), vhost(d)["domains"].append("*")),
            "virtual_hosts[1].domains[0]",
            'duplicate domain "*" (virtual_hosts[0].domains[2] has it too',
        ),
        (
            lambda d: vhost(d)["domains"].append("checkout"),
            "virtual_hosts[0].domains[2]",
            'duplicate domain "checkout" (virtual_hosts[0].domains[0] has it too',
        ),
    ],
)
def test_duplicate_domains(change, path, text):
    check_error(change, at(RC_AT, path), text)


def test_distinct_domains_across_vhosts_are_fine():
    bs = parse_changed(second_vhost("*", "*.checkout", "checkout-*", "checkout:8080"))
    assert len(bs.static_resources.listeners) == 1


@pytest.mark.parametrize(
    "domain",
    ["*", "*.example.com", "*-bar.example.com", "example.*", "example-*", "checkout:*", "checkout:8080", "[::1]:80"],
)
def test_domain_forms_accepted(domain):
    parse_changed(lambda d: vhost(d).update(domains=[domain]))


@pytest.mark.parametrize(
    "domain, text",
    [
        ("", "must not be empty"),
        ("a.*.com", '"a.*.com": "*" may only be the whole domain, its first character or its last'),
        ("**", '"**": "*" may only be'),
        ("*.example.*", '"*.example.*": "*" may only be'),
        ("*foo*", '"*foo*": "*" may only be'),
        ("foo*bar", '"foo*bar": "*" may only be'),
        ("check out", '"check out" contains whitespace or control characters'),
        ("a\tb", "contains whitespace or control characters"),
    ],
)
def test_domain_forms_rejected(domain, text):
    check_error(lambda d: vhost(d)["domains"].append(domain), f"{VH_AT}.domains[2]", text)


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda vh: vh.pop("name"), "name", "required"),
        (lambda vh: vh.pop("domains"), "domains", 'required (at least one domain; "*" matches any)'),
        (lambda vh: vh.update(domains=[]), "domains", "required"),
        (lambda vh: vh.update(require_tls="ALL"), "", 'unsupported field "require_tls" (supported: name, domains, '),
        (lambda vh: vh.update(cors={}), "", 'unsupported field "cors"'),
        (lambda vh: vh.update(rate_limits=[{"actions": []}]), "", 'unsupported field "rate_limits"'),
        (lambda vh: vh.update(virtual_clusters=[{"name": "v"}]), "", 'unsupported field "virtual_clusters"'),
        (
            lambda vh: vh.update(typed_per_filter_config={FAULT_KEY: {"@type": FAULT_TYPE}}),
            "",
            'unsupported field "typed_per_filter_config"',
        ),
        (lambda vh: vh.update(hedge_policy={}), "", 'unsupported field "hedge_policy"'),
        (
            lambda vh: vh.update(include_request_attempt_count=True),
            "",
            'unsupported field "include_request_attempt_count"',
        ),
        (
            lambda vh: vh.update(retry_policy={"retry_on": "5xx,nope"}),
            "retry_policy.retry_on",
            'unsupported retry condition "nope"',
        ),
    ],
)
def test_virtual_host_rules(change, path, text):
    check_error(lambda d: change(vhost(d)), at(VH_AT, path), text)


def test_virtual_host_without_routes_is_fine():
    parse_changed(second_vhost("nothing-here"))


# ---- header manipulation ---------------------------------------------------------------

# Header lists exist on the route configuration, each virtual host and each route.
HEADER_LIST_OWNERS = [
    (route_config, RC_AT),
    (vhost, VH_AT),
    (lambda d: route(d, SPLIT), f"{VH_AT}.routes[{SPLIT}]"),
]


@pytest.mark.parametrize("owner, where", HEADER_LIST_OWNERS, ids=["route_config", "virtual_host", "route"])
@pytest.mark.parametrize(
    "list_name, entry, path, text",
    [
        ("request_headers_to_add", header(":path", "/x"), "header.key", '":path" cannot be set (Envoy does not let'),
        ("request_headers_to_add", header(":authority"), "header.key", '":authority" cannot be set'),
        ("request_headers_to_add", header("host"), "header.key", '"host" cannot be set'),
        ("request_headers_to_add", header("Host"), "header.key", '"Host" cannot be set'),
        ("response_headers_to_add", header(":status", "500"), "header.key", '":status" cannot be set'),
        ("request_headers_to_add", header("bad header"), "header.key", '"bad header" is not a valid header name'),
        ("request_headers_to_add", header("x:y"), "header.key", '"x:y" is not a valid header name'),
        ("request_headers_to_add", header(""), "header.key", "required"),
        ("request_headers_to_add", {"append_action": "ADD_IF_ABSENT"}, "header", "required"),
        ("request_headers_to_add", header("x-a", "a\r\nx-evil: 1"), "header.value", "must not contain CR, LF or NUL"),
        (
            "request_headers_to_add",
            header("x-a", "%DOWNSTREAM_REMOTE_ADDRESS%"),
            "header.value",
            'substitution commands ("%...%") are not supported',
        ),
        ("response_headers_to_add", header("x-a", "100%"), "header.value", "substitution commands"),
        (
            "request_headers_to_add",
            header("x-a", append=True, append_action="OVERWRITE_IF_EXISTS"),
            "append_action",
            'cannot be used together with the deprecated "append"',
        ),
        (
            "request_headers_to_add",
            header("x-a", keep_empty_value=True),
            "",
            'unsupported field "keep_empty_value" (supported: header, append, append_action)',
        ),
        (
            "request_headers_to_add",
            {"header": {"key": "x-a", "raw_value": "YQ=="}},
            "header",
            'unsupported field "raw_value" (supported: key, value)',
        ),
        ("request_headers_to_remove", ":path", "", '":path" cannot be removed (Envoy does not let'),
        ("request_headers_to_remove", "host", "", '"host" cannot be removed'),
        ("response_headers_to_remove", ":status", "", '":status" cannot be removed'),
        ("response_headers_to_remove", "x y", "", '"x y" is not a valid header name'),
        ("request_headers_to_remove", "", "", "required"),
    ],
)
def test_header_list_rules(owner, where, list_name, entry, path, text):
    def change(doc):
        owner(doc)[list_name] = [copy.deepcopy(entry)]

    check_error(change, at(f"{where}.{list_name}[0]", path), text)


@pytest.mark.parametrize(
    "entry",
    [
        header("x-a"),
        header("x-a", ""),
        header("x-a", append=True),
        header("x-a", append=False, append_action="APPEND_IF_EXISTS_OR_ADD"),
        header("x-a", append_action="APPEND_IF_EXISTS_OR_ADD"),
        header("x-a", append_action="ADD_IF_ABSENT"),
        header("x-a", append_action="OVERWRITE_IF_EXISTS_OR_ADD"),
        header("x-a", append_action="OVERWRITE_IF_EXISTS"),
        header("X-Upper_and.dots~!#$&'*+^`|", 'any text, even "quotes"'),
    ],
)
def test_header_list_entries_accepted(entry):
    parse_changed(lambda d: route_config(d).update(request_headers_to_add=[entry], response_headers_to_add=[entry]))
