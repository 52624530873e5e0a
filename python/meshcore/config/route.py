"""Value checks for route configurations: virtual hosts, routes, matchers
(regexes as RE2 would take them), actions, retries, mirrors, hashing,
redirects, direct responses and header options."""

import re
import warnings

from .rules import (
    BAD_VALUE,
    MAX_DIRECT_RESPONSE_BODY,
    RETRY_ON,
    UNMODIFIABLE,
    duration_ms_float,
    duration_problems,
    header_name_problem,
    header_removals,
    modifiable,
    show_ms,
)


def _domain_problem(domain):
    if not domain:
        return "must not be empty"
    if re.search(r"[\x00-\x20\x7f]", domain):
        return f'"{domain}" contains whitespace or control characters'
    if "*" in domain and (domain.count("*") > 1 or not (domain[0] == "*" or domain[-1] == "*")):
        # Envoy's forms: "*", a suffix wildcard ("*.example.com", "*-bar.example.com")
        # and a prefix wildcard ("example.*", "example-*").
        return f'"{domain}": "*" may only be the whole domain, its first character or its last'
    return None


def check_route_config(rc):
    first = {}
    for v, vh in enumerate(rc.virtual_hosts):
        for d, domain in enumerate(vh.domains):
            here = f"virtual_hosts[{v}].domains[{d}]"
            where = first.setdefault(domain.lower(), here)  # host matching ignores case
            if where != here:
                text = f'duplicate domain "{domain}" ({where} has it too; domains must be unique across virtual hosts)'
                yield here, text
    yield from header_removals(rc)


def check_virtual_host(vh):
    if not vh.name:
        yield "name", "required"
    if not vh.domains:
        yield "domains", 'required (at least one domain; "*" matches any)'
    for i, domain in enumerate(vh.domains):
        problem = _domain_problem(domain)
        if problem:
            yield f"domains[{i}]", problem
    yield from header_removals(vh)


def check_route(r):
    if not r.HasField("match"):
        yield "match", "required"
    if r.WhichOneof("action") is None:
        yield "", "one of route, redirect or direct_response is required"
    yield from header_removals(r)


def check_route_match(m):
    which = m.WhichOneof("path_specifier")
    if which is None:
        yield "", "one of prefix, path, safe_regex or path_separated_prefix is required"
    elif which == "path_separated_prefix" and not re.fullmatch(r"[^?#]+[^?#/]", m.path_separated_prefix):
        text = 'is not a path prefix such as "/api" (no "?" or "#", no trailing "/")'
        yield "path_separated_prefix", f'"{m.path_separated_prefix}" {text}'


# Regexes. Envoy compiles them with RE2; meshcore's core compiles them with
# PCRE2, whose syntax is a superset of RE2's. Here Python's `re` (also close to
# a superset) is the first approximation of "RE2 accepts it": the constructs
# RE2 lacks are refused first (Envoy would reject them and PCRE2 would not), RE2
# spellings Python lacks (\z, \pL, \p{Greek}) are translated, then it must
# compile. Still refused although RE2 takes them: \Q...\E, \C and inline flags
# after the start, e.g. "a(?i)b".
_RE2_ESCAPE = re.compile(r"\\(?:[pP](?:\{[^}]*\}|[A-Za-z])|.)", re.S)


def _python_spelling(m):
    text = m.group(0)
    if text == "\\z":
        return "\\Z"
    if text[1] in "pP":
        return "."  # a one-character class; only compiling matters here
    return text


def _non_re2(regex):
    """The name of a construct RE2 does not have (lookaround, backreference, ...) used in regex, or None."""
    i, n, in_class = 0, len(regex), False
    while i < n:
        c = regex[i]
        if c == "\\":
            nxt = regex[i + 1 : i + 2]
            if not in_class and nxt.isdigit() and nxt != "0":
                return "backreferences"
            i += 2
            continue
        if in_class:
            in_class = c != "]"
        elif c == "[":
            in_class = True
            i += 1
            if regex[i : i + 1] == "^":
                i += 1
            if regex[i : i + 1] == "]":  # a "]" first in a class is literal
                i += 1
            continue
        elif regex.startswith(("(?=", "(?!", "(?<=", "(?<!"), i):
            return "lookaround assertions"
        elif regex.startswith("(?>", i):
            return "atomic groups"
        elif regex.startswith("(?P=", i):
            return "backreferences"
        elif c in "*+?}" and regex[i + 1 : i + 2] == "+":
            return "possessive quantifiers"
        i += 1
    return None


def regex_problem(regex):
    if not regex:
        return "required"
    construct = _non_re2(regex)
    if construct:
        return f'"{regex}": {construct} are not RE2 syntax (Envoy would reject the regex)'
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # FutureWarning for RE2's "[[:alpha:]]"
            re.compile(_RE2_ESCAPE.sub(_python_spelling, regex))
    except re.error as e:
        return f'"{regex}" is not a valid regex: {e}'
    return None


def check_regex_matcher(rm):
    problem = regex_problem(rm.regex)
    if problem:
        yield "regex", problem


def check_regex_substitution(rs):
    if not rs.HasField("pattern"):
        yield "pattern", "required"


def check_header_matcher(hm):
    problem = header_name_problem(hm.name, pseudo_ok=True)  # ":authority", ":method" are matchable
    if problem:
        yield "name", problem
    which = hm.WhichOneof("header_match_specifier")
    if which in ("prefix_match", "suffix_match", "contains_match") and not getattr(hm, which):
        yield which, "must not be empty"


def check_string_matcher(sm):
    which = sm.WhichOneof("match_pattern")
    if which is None:
        yield "", "one of exact, prefix, suffix, contains or safe_regex is required"
    elif which in ("prefix", "suffix", "contains") and not getattr(sm, which):
        yield which, "must not be empty"
    elif which == "safe_regex" and sm.ignore_case:
        yield "ignore_case", 'has no effect on safe_regex (Envoy rejects it; use "(?i)" in the regex)'


def check_query_parameter_matcher(qm):
    if not qm.name:
        yield "name", "required"


def check_route_action(ra):
    which = ra.WhichOneof("cluster_specifier")
    if which is None:
        yield "", "one of cluster or weighted_clusters is required"
    elif which == "cluster" and not ra.cluster:
        yield "cluster", "must not be empty"
    if ra.prefix_rewrite and ra.HasField("regex_rewrite"):
        yield "regex_rewrite", "cannot be used together with prefix_rewrite"
    if ra.WhichOneof("host_rewrite_specifier") == "host_rewrite_literal" and (
        not ra.host_rewrite_literal or BAD_VALUE.search(ra.host_rewrite_literal)
    ):
        yield "host_rewrite_literal", "must be a non-empty host without CR, LF or NUL"
    # max_grpc_timeout, grpc_timeout_offset: deprecated, and ignored by Envoy's router when
    # max_stream_duration is set (proxy/http_grpc.c); istiod still writes max_grpc_timeout
    yield from duration_problems(ra, "timeout", "max_grpc_timeout", "grpc_timeout_offset")


def check_max_stream_duration(msd):  # the stream's limit (proxy/http_duration.c), grpc-timeout (http_grpc.c)
    yield from duration_problems(msd, "max_stream_duration", "grpc_timeout_header_max", "grpc_timeout_header_offset")


def check_route_weighted_clusters(wc):
    if not wc.clusters:
        yield "clusters", "at least one cluster is required"
    first = {}
    for i, cw in enumerate(wc.clusters):
        where = first.setdefault(cw.name, i)
        if where != i:
            yield f"clusters[{i}].name", f'cluster "{cw.name}" is already at clusters[{where}]'
    total = sum(cw.weight.value for cw in wc.clusters)
    if total > 2**32 - 1:
        yield "clusters", f"the weights add up to {total}, more than 4294967295"


def check_route_cluster_weight(cw):
    if not cw.name:
        yield "name", "required"
    if not cw.HasField("weight"):
        yield "weight", "required (at least 1)"
    elif cw.weight.value < 1:
        yield "weight", "must be greater than 0"


def check_retry_policy(rp):
    conditions = [c.strip() for c in rp.retry_on.split(",") if c.strip()]
    for c in conditions:
        if c not in RETRY_ON:
            yield "retry_on", f'unsupported retry condition "{c}" (supported: {", ".join(RETRY_ON)})'
    yield from duration_problems(rp, "per_try_timeout")
    if rp.host_selection_retry_max_attempts < 0:
        yield "host_selection_retry_max_attempts", "must not be negative"
    for i, code in enumerate(rp.retriable_status_codes):
        if not 100 <= code <= 599:
            yield f"retriable_status_codes[{i}]", f"{code} is not an HTTP status (100..599)"
    if rp.retriable_status_codes and "retriable-status-codes" not in conditions:
        yield "retriable_status_codes", 'has no effect unless retry_on includes "retriable-status-codes"'


def check_retry_back_off(bo):
    if not bo.HasField("base_interval"):
        yield "base_interval", "required"
    yield from duration_problems(bo, "base_interval", "max_interval", positive=True)
    if bo.HasField("base_interval") and bo.HasField("max_interval"):
        base, most = duration_ms_float(bo.base_interval), duration_ms_float(bo.max_interval)
        if most < base:
            yield "max_interval", f"{show_ms(most)} is less than base_interval ({show_ms(base)})"


def check_mirror_policy(mp):
    if not mp.cluster:
        yield "cluster", "required"


def check_runtime_fraction(rf):
    if not rf.HasField("default_value"):
        yield "default_value", "required"


def check_hash_policy(hp):
    if hp.WhichOneof("policy_specifier") is None:
        yield "", "one of header, cookie or connection_properties is required"


def check_hash_header(h):
    problem = header_name_problem(h.header_name, pseudo_ok=True)
    if problem:
        yield "header_name", problem


def check_hash_cookie(c):
    if not c.name:
        yield "name", "required"
    yield from duration_problems(c, "ttl")


def check_redirect(r):
    if r.port_redirect > 65535:
        yield "port_redirect", f"{r.port_redirect} is out of range (0..65535)"
    for name in ("scheme_redirect", "host_redirect", "path_redirect", "prefix_rewrite"):
        if BAD_VALUE.search(getattr(r, name)):
            yield name, "must not contain CR, LF or NUL"


def check_direct_response(dr):
    if dr.status == 0:
        yield "status", "required (100..599)"
    elif not 100 <= dr.status <= 599:
        yield "status", f"{dr.status} is out of range (100..599)"
    which = dr.body.WhichOneof("specifier")
    size = len(dr.body.inline_string.encode()) if which == "inline_string" else len(dr.body.inline_bytes)
    if size > MAX_DIRECT_RESPONSE_BODY:
        yield "body", f"{size} bytes is more than {MAX_DIRECT_RESPONSE_BODY} (Envoy's default limit)"


def check_header_value_option(o):
    if not o.HasField("header"):
        yield "header", "required"
    if o.HasField("append") and o.append_action != 0:  # 0: APPEND_IF_EXISTS_OR_ADD, what append means
        yield "append_action", 'cannot be used together with the deprecated "append" (as in Envoy)'


def check_header_value(hv):
    problem = header_name_problem(hv.key, pseudo_ok=True)
    if problem is None and not modifiable(hv.key):
        problem = f'"{hv.key}" cannot be set ({UNMODIFIABLE})'
    if problem:
        yield "key", problem
    if BAD_VALUE.search(hv.value):
        yield "value", "must not contain CR, LF or NUL"
    elif "%" in hv.value:
        # Envoy reads %...% as a substitution command (%DOWNSTREAM_REMOTE_ADDRESS%);
        # meshcore has none, and would otherwise send the text literally.
        yield "value", 'substitution commands ("%...%") are not supported, so "%" may not appear in a value'
