"""The HTTP xDS subset: routes -- matches (regexes as RE2 takes them),
actions, retry policies, redirects, direct responses. Helpers and the
example: config_http_helpers.py."""

import pytest
from config_http_helpers import (
    CANARY,
    FAULT_KEY,
    FAULT_TYPE,
    HEALTHZ,
    PREVIOUS_HOSTS_TYPE,
    SPLIT,
    URL,
    VH_AT,
    action,
    at,
    check_error,
    header,
    match,
    parse_changed,
    retry,
    route,
    vhost,
)

from meshcore.config import rules as config_rules

# ---- routes -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda r: r.pop("match"), "match", "required"),
        (lambda r: r.pop("route"), "", "one of route, redirect or direct_response is required"),
        (
            lambda r: r.update(redirect={"https_redirect": True}),
            "",
            '"route" and "redirect" cannot both be set (only one of: route, redirect, direct_response, ',
        ),
        (
            lambda r: r.update(direct_response={"status": 200}),
            "",
            '"route" and "direct_response" cannot both be set',
        ),
        (
            lambda r: r.update(stat_prefix="op"),
            "",
            'unsupported field "stat_prefix" (supported: name, match, ',
        ),
        (lambda r: r.update(metadata={}), "", 'unsupported field "metadata"'),
        (lambda r: r.update(tracing={}), "", 'unsupported field "tracing"'),
        (
            lambda r: r.update(per_request_buffer_limit_bytes=1),
            "",
            'unsupported field "per_request_buffer_limit_bytes"',
        ),
        (lambda r: r.update(route=None, non_forwarding_action={}), "", 'unsupported field "non_forwarding_action"'),
    ],
)
def test_route_rules(change, path, text):
    check_error(lambda d: change(route(d, SPLIT)), at(f"{VH_AT}.routes[{SPLIT}]", path), text)


@pytest.mark.parametrize(
    "change, path, text",
    [
        (
            lambda m: m.pop("prefix"),
            "",
            "one of prefix, path, safe_regex or path_separated_prefix is required",
        ),
        (lambda m: m.update(path="/a"), "", '"prefix" and "path" cannot both be set'),
        (lambda m: m.update(grpc={}), "", 'unsupported field "grpc" (supported: prefix, path, safe_regex, '),
        (lambda m: m.update(tls_context={"presented": True}), "", 'unsupported field "tls_context"'),
        (
            lambda m: m.update(
                dynamic_metadata=[{"filter": "f", "path": [{"key": "k"}], "value": {"present_match": True}}]
            ),
            "",
            'unsupported field "dynamic_metadata"',
        ),
        (
            lambda m: m.update(runtime_fraction={"default_value": {"numerator": 50}}),
            "",
            'unsupported field "runtime_fraction"',
        ),
        (lambda m: m.update(prefix=None, connect_matcher={}), "", 'unsupported field "connect_matcher"'),
        (
            lambda m: m.update(prefix=None, path_separated_prefix="/api/"),
            "path_separated_prefix",
            '"/api/" is not a path prefix such as "/api" (no "?" or "#", no trailing "/")',
        ),
        (
            lambda m: m.update(prefix=None, path_separated_prefix="/a?b"),
            "path_separated_prefix",
            "is not a path prefix",
        ),
        (lambda m: m.update(prefix=None, path_separated_prefix="/"), "path_separated_prefix", "is not a path prefix"),
        (lambda m: m.update(prefix=None, path_separated_prefix=""), "path_separated_prefix", "is not a path prefix"),
        (lambda m: m.update(case_sensitive="no"), "case_sensitive", 'expected true or false, got "no"'),
        (lambda m: m["headers"][0].pop("name"), "headers[0].name", "required"),
        (lambda m: m["headers"][0].update(name="x canary"), "headers[0].name", '"x canary" is not a valid header name'),
        (
            lambda m: m["headers"][0].update(string_match=None, range_match={"start": 1, "end": 5}),
            "headers[0]",
            'unsupported field "range_match" (supported: name, string_match, ',
        ),
        (
            lambda m: m["headers"][0].update(treat_missing_header_as_empty=True),
            "headers[0]",
            'unsupported field "treat_missing_header_as_empty"',
        ),
        (
            lambda m: m["headers"][0].update(present_match=True),
            "headers[0]",
            '"string_match" and "present_match" cannot both be set',
        ),
        (
            lambda m: m["headers"][0].update(exact_match="true"),
            "headers[0]",
            '"string_match" and "exact_match" cannot both be set',
        ),
        (
            lambda m: m["headers"][0].update(string_match=None, prefix_match=""),
            "headers[0].prefix_match",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match=None, suffix_match=""),
            "headers[0].suffix_match",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match=None, contains_match=""),
            "headers[0].contains_match",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match=None, safe_regex_match={"regex": "a(?!b)"}),
            "headers[0].safe_regex_match.regex",
            '"a(?!b)": lookaround assertions are not RE2 syntax',
        ),
        (
            lambda m: m["headers"][0].update(string_match={"custom": {"name": "x"}}),
            "headers[0].string_match",
            'unsupported field "custom" (supported: exact, prefix, suffix, contains, safe_regex, ignore_case)',
        ),
        (
            lambda m: m["headers"][0].update(string_match={"ignore_case": True}),
            "headers[0].string_match",
            "one of exact, prefix, suffix, contains or safe_regex is required",
        ),
        (
            lambda m: m["headers"][0].update(string_match={"prefix": ""}),
            "headers[0].string_match.prefix",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match={"suffix": ""}),
            "headers[0].string_match.suffix",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match={"contains": ""}),
            "headers[0].string_match.contains",
            "must not be empty",
        ),
        (
            lambda m: m["headers"][0].update(string_match={"safe_regex": {"regex": "a"}, "ignore_case": True}),
            "headers[0].string_match.ignore_case",
            "has no effect on safe_regex",
        ),
        (
            lambda m: m["headers"][0].update(string_match={"safe_regex": {"regex": "("}}),
            "headers[0].string_match.safe_regex.regex",
            '"(" is not a valid regex',
        ),
        (lambda m: m.update(query_parameters=[{"present_match": True}]), "query_parameters[0].name", "required"),
        (
            lambda m: m.update(query_parameters=[{"name": "q", "string_match": {}}]),
            "query_parameters[0].string_match",
            "one of exact, prefix, suffix, contains or safe_regex is required",
        ),
        (
            lambda m: m.update(query_parameters=[{"name": "q", "string_match": {"exact": "1"}, "present_match": True}]),
            "query_parameters[0]",
            '"string_match" and "present_match" cannot both be set',
        ),
    ],
)
def test_route_match_rules(change, path, text):
    check_error(lambda d: change(match(d)), at(f"{VH_AT}.routes[{CANARY}].match", path), text)


@pytest.mark.parametrize(
    "change",
    [
        lambda m: m.update(prefix=""),  # matches everything, as in Envoy
        lambda m: m.update(prefix=None, path="/exact"),
        lambda m: m.update(prefix=None, path_separated_prefix="/api"),
        lambda m: m.update(prefix=None, safe_regex={"regex": "/v[0-9]+/.*"}),
        lambda m: m.update(case_sensitive=False),
        lambda m: m["headers"][0].update(string_match=None),  # no rule: the header must be present
        lambda m: m["headers"][0].update(string_match=None, present_match=False),
        lambda m: m["headers"][0].update(string_match=None, exact_match=""),
        lambda m: m["headers"][0].update(string_match={"exact": ""}),
        lambda m: m["headers"][0].update(invert_match=True),
        lambda m: m["headers"][0].update(name=":authority", string_match={"suffix": ".local", "ignore_case": True}),
        lambda m: m.update(query_parameters=[{"name": "q"}]),
    ],
)
def test_route_match_accepts(change):
    parse_changed(lambda d: change(match(d)))


# -- regexes: compiled here with Python's re as a stand-in for RE2


@pytest.mark.parametrize(
    "regex",
    [
        r"^/api/v[0-9]+/.*$",
        r"(?i)/Checkout",
        r"/(?P<id>[a-z]+)/\d{2,4}",
        r"/\pL+/\p{Greek}/\PN",
        r"/a\z",
        r"[[:alpha:]]+",
        r"[\]\[]+",
        r"a\\1",  # an escaped backslash, then "1": not a backreference
        r"[(?=]x",  # "(?=" inside a class is literal
    ],
)
def test_re2_regexes_accepted(regex):
    parse_changed(lambda d: match(d).update(prefix=None, safe_regex={"google_re2": {}, "regex": regex}))


@pytest.mark.parametrize(
    "regex, text",
    [
        ("", "required"),
        ("(", '"(" is not a valid regex: missing ), unterminated subpattern at position 0'),
        ("[a-", '"[a-" is not a valid regex'),
        ("a{2,1}", "is not a valid regex"),
        ("/a(?=b)", '"/a(?=b)": lookaround assertions are not RE2 syntax (Envoy would reject the regex)'),
        ("/a(?<!b)", "lookaround assertions are not RE2 syntax"),
        (r"(a)\1", "backreferences are not RE2 syntax"),
        ("(?P<x>a)(?P=x)", "backreferences are not RE2 syntax"),
        ("(?>a+)b", "atomic groups are not RE2 syntax"),
        ("a++", "possessive quantifiers are not RE2 syntax"),
    ],
)
def test_regexes_rejected(regex, text):
    check_error(
        lambda d: match(d).update(prefix=None, safe_regex={"regex": regex}),
        f"{VH_AT}.routes[{CANARY}].match.safe_regex.regex",
        text,
    )


def test_google_re2_options_unsupported():
    check_error(
        lambda d: match(d).update(prefix=None, safe_regex={"google_re2": {"max_program_size": 100}, "regex": "a"}),
        f"{VH_AT}.routes[{CANARY}].match.safe_regex.google_re2",
        'unsupported field "max_program_size" (supported: none)',
    )


# -- route actions


@pytest.mark.parametrize(
    "change, path, text",
    [
        (lambda ra: ra.pop("weighted_clusters"), "", "one of cluster or weighted_clusters is required"),
        (lambda ra: ra.update(cluster="checkout_v1"), "", '"weighted_clusters" and "cluster" cannot both be set'),
        (
            lambda ra: ra.update(weighted_clusters=None, cluster_header="x-cluster"),
            "",
            'unsupported field "cluster_header" (supported: cluster, weighted_clusters, ',
        ),
        (lambda ra: ra.update(weighted_clusters=None, cluster=""), "cluster", "must not be empty"),
        (lambda ra: ra.update(idle_timeout="10s"), "", 'unsupported field "idle_timeout"'),
        (lambda ra: ra.update(auto_host_rewrite=True), "", 'unsupported field "auto_host_rewrite"'),
        (lambda ra: ra.update(host_rewrite_header="x-host"), "", 'unsupported field "host_rewrite_header"'),
        (lambda ra: ra.update(cors={}), "", 'unsupported field "cors"'),
        (
            lambda ra: ra.update(upgrade_configs=[{"upgrade_type": "websocket"}]),
            "",
            'unsupported field "upgrade_configs"',
        ),
        (lambda ra: ra.update(priority="HIGH"), "", 'unsupported field "priority"'),
        (lambda ra: ra.update(max_stream_duration={"grpc_timeout_header_max": "-1s"}),
         "max_stream_duration.grpc_timeout_header_max", "must not be negative"),
        (lambda ra: ra.update(max_stream_duration={"grpc_timeout_header_offset": "-1s"}),
         "max_stream_duration.grpc_timeout_header_offset", "must not be negative"),
        (lambda ra: ra.update(max_stream_duration={"max_stream_duration": "-1s"}),
         "max_stream_duration.max_stream_duration", "must not be negative"),
        (lambda ra: ra.update(max_grpc_timeout="-1s"), "max_grpc_timeout", "must not be negative"),
        (lambda ra: ra.update(grpc_timeout_offset="-0.5s"), "grpc_timeout_offset", "must not be negative"),
        (lambda ra: ra.update(path_rewrite="/x"), "", 'unsupported field "path_rewrite"'),
        (lambda ra: ra.update(timeout="-1s"), "timeout", "must not be negative"),
        (lambda ra: ra.update(host_rewrite_literal=""), "host_rewrite_literal", "must be a non-empty host"),
        (
            lambda ra: ra.update(prefix_rewrite="/", regex_rewrite={"pattern": {"regex": "^/"}, "substitution": "/"}),
            "regex_rewrite",
            "cannot be used together with prefix_rewrite",
        ),
        (lambda ra: ra.update(regex_rewrite={"substitution": "/"}), "regex_rewrite.pattern", "required"),
        (
            lambda ra: ra.update(regex_rewrite={"pattern": {"regex": "(?=x)"}, "substitution": "/"}),
            "regex_rewrite.pattern.regex",
            '"(?=x)": lookaround assertions are not RE2 syntax',
        ),
        # weighted clusters
        (
            lambda ra: ra["weighted_clusters"].update(clusters=[]),
            "weighted_clusters.clusters",
            "at least one cluster is required",
        ),
        (
            lambda ra: ra["weighted_clusters"].update(total_weight=100),
            "weighted_clusters",
            'unsupported field "total_weight" (supported: clusters)',
        ),
        (
            lambda ra: ra["weighted_clusters"].update(runtime_key_prefix="k"),
            "weighted_clusters",
            'unsupported field "runtime_key_prefix"',
        ),
        (
            lambda ra: ra["weighted_clusters"].update(header_name="x-w"),
            "weighted_clusters",
            'unsupported field "header_name"',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(weight=0),
            "weighted_clusters.clusters[0].weight",
            "must be greater than 0",
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].pop("weight"),
            "weighted_clusters.clusters[0].weight",
            "required (at least 1)",
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].pop("name"),
            "weighted_clusters.clusters[0].name",
            "required",
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][1].update(name="checkout_v1"),
            "weighted_clusters.clusters[1].name",
            'cluster "checkout_v1" is already at clusters[0]',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(request_headers_to_add=[header("x-a")]),
            "weighted_clusters.clusters[0]",
            'unsupported field "request_headers_to_add" (supported: name, weight)',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(response_headers_to_remove=["x-a"]),
            "weighted_clusters.clusters[0]",
            'unsupported field "response_headers_to_remove"',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(
                typed_per_filter_config={FAULT_KEY: {"@type": FAULT_TYPE}}
            ),
            "weighted_clusters.clusters[0]",
            'unsupported field "typed_per_filter_config"',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(cluster_header="x-c"),
            "weighted_clusters.clusters[0]",
            'unsupported field "cluster_header"',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(host_rewrite_literal="h"),
            "weighted_clusters.clusters[0]",
            'unsupported field "host_rewrite_literal"',
        ),
        (
            lambda ra: ra["weighted_clusters"]["clusters"][0].update(weight=2**32 - 1),
            "weighted_clusters.clusters",
            "the weights add up to 4294967305, more than 4294967295",
        ),
        # mirrors
        (
            lambda ra: ra.update(request_mirror_policies=[{"runtime_fraction": {"default_value": {"numerator": 1}}}]),
            "request_mirror_policies[0].cluster",
            "required",
        ),
        (
            lambda ra: ra.update(request_mirror_policies=[{"cluster": "checkout_v2", "cluster_header": "x"}]),
            "request_mirror_policies[0]",
            'unsupported field "cluster_header" (supported: cluster, runtime_fraction)',
        ),
        (
            lambda ra: ra.update(request_mirror_policies=[{"cluster": "checkout_v2", "trace_sampled": True}]),
            "request_mirror_policies[0]",
            'unsupported field "trace_sampled"',
        ),
        (
            lambda ra: ra.update(
                request_mirror_policies=[
                    {
                        "cluster": "checkout_v2",
                        "runtime_fraction": {"runtime_key": "k", "default_value": {"numerator": 1}},
                    }
                ]
            ),
            "request_mirror_policies[0].runtime_fraction",
            'unsupported field "runtime_key" (supported: default_value)',
        ),
        (
            lambda ra: ra.update(request_mirror_policies=[{"cluster": "checkout_v2", "runtime_fraction": {}}]),
            "request_mirror_policies[0].runtime_fraction.default_value",
            "required",
        ),
        (
            lambda ra: ra.update(
                request_mirror_policies=[
                    {"cluster": "checkout_v2", "runtime_fraction": {"default_value": {"numerator": 200}}}
                ]
            ),
            "request_mirror_policies[0].runtime_fraction.default_value.numerator",
            "200 is more than the whole (HUNDRED = 100)",
        ),
        # hash policies
        (
            lambda ra: ra.update(hash_policy=[{}]),
            "hash_policy[0]",
            "one of header, cookie or connection_properties is required",
        ),
        (lambda ra: ra.update(hash_policy=[{"terminal": True}]), "hash_policy[0]", "one of header, cookie or"),
        (
            lambda ra: ra.update(hash_policy=[{"query_parameter": {"name": "u"}}]),
            "hash_policy[0]",
            'unsupported field "query_parameter" (supported: header, cookie, connection_properties, terminal)',
        ),
        (
            lambda ra: ra.update(hash_policy=[{"filter_state": {"key": "k"}}]),
            "hash_policy[0]",
            'unsupported field "filter_state"',
        ),
        (lambda ra: ra.update(hash_policy=[{"header": {}}]), "hash_policy[0].header.header_name", "required"),
        (
            lambda ra: ra.update(hash_policy=[{"header": {"header_name": "x-u", "regex_rewrite": {}}}]),
            "hash_policy[0].header",
            'unsupported field "regex_rewrite" (supported: header_name)',
        ),
        (lambda ra: ra.update(hash_policy=[{"cookie": {"ttl": "1s"}}]), "hash_policy[0].cookie.name", "required"),
        (
            lambda ra: ra.update(hash_policy=[{"cookie": {"name": "s", "ttl": "-1s"}}]),
            "hash_policy[0].cookie.ttl",
            "must not be negative",
        ),
        (
            lambda ra: ra.update(hash_policy=[{"cookie": {"name": "s", "attributes": [{"name": "a"}]}}]),
            "hash_policy[0].cookie",
            'unsupported field "attributes" (supported: name, ttl, path)',
        ),
        (
            lambda ra: ra.update(hash_policy=[{"header": {"header_name": "x-u"}, "cookie": {"name": "s"}}]),
            "hash_policy[0]",
            '"header" and "cookie" cannot both be set',
        ),
    ],
)
def test_route_action_rules(change, path, text):
    check_error(lambda d: change(action(d)), at(f"{VH_AT}.routes[{SPLIT}].route", path), text)


# -- retry policies (on a route, and the same on a virtual host)

RETRY_PLACES = [
    (retry, f"{VH_AT}.routes[{SPLIT}].route.retry_policy"),
    (lambda d: vhost(d).setdefault("retry_policy", {"retry_on": "5xx"}), f"{VH_AT}.retry_policy"),
]


@pytest.mark.parametrize("place, where", RETRY_PLACES, ids=["route", "virtual_host"])
@pytest.mark.parametrize(
    "change, path, text",
    [
        (
            lambda rp: rp.update(retry_on="5xx,bogus"),
            "retry_on",
            'unsupported retry condition "bogus" (supported: 5xx, gateway-error, reset, connect-failure, '
            "retriable-4xx, retriable-status-codes, refused-stream, unavailable, cancelled, deadline-exceeded, "
            "resource-exhausted, internal)",
        ),
        (
            lambda rp: rp.update(retry_on="retriable-headers"),
            "retry_on",
            'unsupported retry condition "retriable-headers"',
        ),
        (
            lambda rp: rp.update(retry_on="envoy-ratelimited"),
            "retry_on",
            'unsupported retry condition "envoy-ratelimited"',
        ),
        (lambda rp: rp.update(retry_on="5XX"), "retry_on", 'unsupported retry condition "5XX"'),
        (lambda rp: rp.update(num_retries=-1), "num_retries", "-1 is out of range"),
        (lambda rp: rp.update(per_try_timeout="-1s"), "per_try_timeout", "must not be negative"),
        (
            lambda rp: rp.update(per_try_idle_timeout="1s"),
            "",
            'unsupported field "per_try_idle_timeout" (supported: retry_on, ',
        ),
        (lambda rp: rp.update(retry_priority={"name": "p"}), "", 'unsupported field "retry_priority"'),
        (lambda rp: rp.update(rate_limited_retry_back_off={}), "", 'unsupported field "rate_limited_retry_back_off"'),
        (lambda rp: rp.update(retriable_headers=[{"name": "x-retry"}]), "", 'unsupported field "retriable_headers"'),
        (
            lambda rp: rp.update(retriable_request_headers=[{"name": "x-retry"}]),
            "",
            'unsupported field "retriable_request_headers"',
        ),
        (
            lambda rp: rp.update(retry_options_predicates=[{"name": "p"}]),
            "",
            'unsupported field "retry_options_predicates"',
        ),
        (
            lambda rp: rp.update(host_selection_retry_max_attempts=-1),
            "host_selection_retry_max_attempts",
            "must not be negative",
        ),
        (
            lambda rp: rp.update(retry_on="5xx", retriable_status_codes=[503]),
            "retriable_status_codes",
            'has no effect unless retry_on includes "retriable-status-codes"',
        ),
        (
            lambda rp: rp.update(retry_on="retriable-status-codes", retriable_status_codes=[503, 600]),
            "retriable_status_codes[1]",
            "600 is not an HTTP status (100..599)",
        ),
        (
            lambda rp: rp.update(retry_on="retriable-status-codes", retriable_status_codes=[99]),
            "retriable_status_codes[0]",
            "99 is not an HTTP status (100..599)",
        ),
        (lambda rp: rp.update(retry_back_off={}), "retry_back_off.base_interval", "required"),
        (lambda rp: rp.update(retry_back_off={"max_interval": "1s"}), "retry_back_off.base_interval", "required"),
        (
            lambda rp: rp.update(retry_back_off={"base_interval": "0s"}),
            "retry_back_off.base_interval",
            "must be greater than 0",
        ),
        (
            lambda rp: rp.update(retry_back_off={"base_interval": "0.1s", "max_interval": "0s"}),
            "retry_back_off.max_interval",
            "must be greater than 0",
        ),
        (
            lambda rp: rp.update(retry_back_off={"base_interval": "1s", "max_interval": "0.5s"}),
            "retry_back_off.max_interval",
            "0.5s is less than base_interval (1s)",
        ),
        (
            lambda rp: rp.update(
                retry_host_predicate=[
                    {
                        "name": "envoy.retry_host_predicates.omit_canary_hosts",
                        "typed_config": {
                            "@type": URL + "envoy.extensions.retry.host.omit_canary_hosts.v3.OmitCanaryHostsPredicate"
                        },
                    }
                ]
            ),
            "retry_host_predicate[0]",
            "unsupported retry host predicate envoy.retry_host_predicates.omit_canary_hosts",
        ),
        (
            lambda rp: rp.update(retry_host_predicate=[{"name": "envoy.retry_host_predicates.previous_hosts"}]),
            "retry_host_predicate[0]",
            "retry host predicate envoy.retry_host_predicates.previous_hosts has no typed_config",
        ),
        (
            lambda rp: rp.update(retry_host_predicate=[{"typed_config": {"@type": PREVIOUS_HOSTS_TYPE}}]),
            "retry_host_predicate[0].name",
            "required",
        ),
    ],
)
def test_retry_policy_rules(place, where, change, path, text):
    check_error(lambda d: change(place(d)), at(where, path), text)


@pytest.mark.parametrize("condition", config_rules.RETRY_ON)
def test_every_retry_condition_accepted(condition):
    parse_changed(lambda d: retry(d).update(retry_on=condition))


@pytest.mark.parametrize(
    "policy",
    [
        {"retry_on": " 5xx , reset,,connect-failure "},  # spaces and empty items, as Envoy tolerates
        {"retry_on": "retriable-status-codes", "retriable_status_codes": [503, 100, 599]},
        {"retry_on": "retriable-status-codes"},
        {"retry_back_off": {"base_interval": "0.025s"}},
        {"retry_back_off": {"base_interval": "0.1s", "max_interval": "0.1s"}},
        {"num_retries": 0},
        {},
    ],
)
def test_retry_policies_accepted(policy):
    parse_changed(lambda d: action(d).update(retry_policy=policy))


# -- redirects and direct responses


@pytest.mark.parametrize(
    "code", ["MOVED_PERMANENTLY", "FOUND", "SEE_OTHER", "TEMPORARY_REDIRECT", "PERMANENT_REDIRECT"]
)
def test_redirect_response_codes_accepted(code):
    def change(doc):
        route(doc, SPLIT).pop("route")
        route(doc, SPLIT)["redirect"] = {"https_redirect": True, "response_code": code}

    parse_changed(change)


@pytest.mark.parametrize(
    "redirect, path, text",
    [
        (
            {"https_redirect": True, "scheme_redirect": "https"},
            "",
            '"https_redirect" and "scheme_redirect" cannot both be set',
        ),
        (
            {"path_redirect": "/a", "prefix_rewrite": "/b"},
            "",
            '"path_redirect" and "prefix_rewrite" cannot both be set',
        ),
        (
            {"regex_rewrite": {"pattern": {"regex": "a"}, "substitution": "b"}},
            "",
            'unsupported field "regex_rewrite" (supported: scheme_redirect, https_redirect, host_redirect, ',
        ),
        ({"port_redirect": 70000}, "port_redirect", "70000 is out of range (0..65535)"),
        ({"host_redirect": "a\r\nb"}, "host_redirect", "must not contain CR, LF or NUL"),
        ({"response_code": "MULTIPLE_CHOICES"}, "response_code", "unknown value MULTIPLE_CHOICES"),
    ],
)
def test_redirect_rules(redirect, path, text):
    def change(doc):
        route(doc, SPLIT).pop("route")
        route(doc, SPLIT)["redirect"] = redirect

    check_error(change, at(f"{VH_AT}.routes[{SPLIT}].redirect", path), text)


@pytest.mark.parametrize(
    "direct, path, text",
    [
        ({"body": {"inline_string": "x"}}, "status", "required (100..599)"),
        ({"status": 99}, "status", "99 is out of range (100..599)"),
        ({"status": 600}, "status", "600 is out of range (100..599)"),
        (
            {"status": 200, "body": {"filename": "/etc/motd"}},
            "body",
            'unsupported field "filename" (supported: inline_string, inline_bytes)',
        ),
        ({"status": 200, "body": {"environment_variable": "BODY"}}, "body", 'unsupported field "environment_variable"'),
        (
            {"status": 200, "body_format": {"text_format": "x"}},
            "",
            'unsupported field "body_format" (supported: status, body)',
        ),
        ({"status": 200, "body": {"inline_string": "x" * 4097}}, "body", "4097 bytes is more than 4096"),
        ({"status": 200, "body": {"inline_string": "é" * 2049}}, "body", "4098 bytes is more than 4096"),
        ({"status": 200, "body": {"inline_bytes": "A" * 5464}}, "body", "4098 bytes is more than 4096"),
    ],
)
def test_direct_response_rules(direct, path, text):
    check_error(
        lambda d: route(d, HEALTHZ).update(direct_response=direct),
        at(f"{VH_AT}.routes[{HEALTHZ}].direct_response", path),
        text,
    )


@pytest.mark.parametrize(
    "direct",
    [
        {"status": 100},
        {"status": 599},
        {"status": 204},
        {"status": 200, "body": {"inline_string": "x" * 4096}},
        {"status": 200, "body": {"inline_bytes": "aGVsbG8="}},
        {"status": 503, "body": {}},
    ],
)
def test_direct_responses_accepted(direct):
    parse_changed(lambda d: route(d, HEALTHZ).update(direct_response=direct))
