"""The RBAC rows of meshcore's xDS subset (config/schema.py): every field they
list is accepted in a bootstrap (and compiles), what the core cannot evaluate
is refused by name."""
from __future__ import annotations

import pytest

from meshcore import Engine, xds_types
from meshcore.config import parse_bootstrap
from meshcore.config import schema as config_schema
from meshcore.errors import ConfigError

ALL_PERMISSIONS = """
- and_rules: {rules: [{any: true}, {header: {name: ":method", string_match: {exact: GET}}}]}
- or_rules: {rules: [{url_path: {path: {prefix: /a}}}, {destination_ip: {address_prefix: 10.0.0.0, prefix_len: 8}}]}
- not_rule: {destination_port: 81}
- destination_port_range: {start: 8000, end: 9000}
- requested_server_name: {exact: a.example}
- metadata: {filter: envoy.filters.http.jwt_authn, path: [{key: payload}, {key: iss}],
             value: {or_match: {value_matchers: [{string_match: {exact: x}},
                                                 {list_match: {one_of: {string_match: {prefix: y}}}}]}}}
"""
ALL_PRINCIPALS = """
- and_ids: {ids: [{any: true}, {authenticated: {principal_name: {exact: "spiffe://td/ns/a/sa/b"}}}]}
- or_ids: {ids: [{direct_remote_ip: {address_prefix: 10.0.0.1}}, {remote_ip: {address_prefix: "::1", prefix_len: 128}}]}
- not_id: {source_ip: {address_prefix: 192.168.0.0, prefix_len: 16}}
- header: {name: x-user, present_match: true}
- url_path: {path: {suffix: .json}}
- metadata: {filter: f, path: [{key: k}], value: {string_match: {exact: v}}}
"""


def config(http_rbac: str = "", tcp_rbac: str = "", rules_override: str | None = None) -> str:
    def indent(text, n):
        return "\n".join(" " * n + line for line in text.strip().splitlines())

    rules = rules_override or f"""rules:
                    action: DENY
                    policies:
                      p1:
                        permissions:
{indent(ALL_PERMISSIONS, 24)}
                        principals:
{indent(ALL_PRINCIPALS, 24)}"""
    return f"""
static_resources:
  listeners:
  - name: http
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: h
          route_config: {{virtual_hosts: [{{name: a, domains: ["*"], routes: [{{match: {{prefix: /}},
                         route: {{cluster: c}}}}]}}]}}
          http_filters:
          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              shadow_rules_stat_prefix: istio_dry_run_allow_
              {rules}
              {http_rbac}
          - name: envoy.filters.http.rbac
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.rbac.v3.RBAC
              rules: {{policies: {{p: {{permissions: [{{any: true}}], principals: [{{any: true}}]}}}}}}
          - name: envoy.filters.http.router
            typed_config: {{"@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router}}
  - name: tcp
    address: {{socket_address: {{address: 127.0.0.1, port_value: 0}}}}
    filter_chains:
    - filters:
      - name: envoy.filters.network.rbac
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.rbac.v3.RBAC
          stat_prefix: tcp.
          rules: {{policies: {{p: {{permissions: [{{destination_port: 80}}], principals: [{{any: true}}]}}}}}}
          {tcp_rbac}
      - name: envoy.filters.network.tcp_proxy
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy
          stat_prefix: t
          cluster: c
  clusters:
  - name: c
    type: STATIC
    load_assignment: {{cluster_name: c, endpoints: [{{lb_endpoints: [{{endpoint: {{address: {{socket_address:
                      {{address: 127.0.0.1, port_value: 9}}}}}}}}]}}]}}
"""


def test_every_rbac_row_field_is_accepted_and_compiles():
    bs = parse_bootstrap(config())
    listed = set()

    def collect(msg):
        for fd, value in msg.ListFields():
            listed.add((msg.DESCRIPTOR.full_name, fd.name))
            items = list(value.values()) if fd.message_type and fd.message_type.GetOptions().map_entry else (
                list(value) if fd.is_repeated else [value])
            for item in items:
                if hasattr(item, "DESCRIPTOR"):
                    if item.DESCRIPTOR.full_name == "google.protobuf.Any":
                        collect(xds_types.unpack(item))
                    else:
                        collect(item)

    collect(bs)
    rbac_rows = {k: r for k, r in config_schema.SCHEMA.items() if ".rbac." in k or k.endswith(
        ("CidrRange", "Int32Range", "PathMatcher", "MetadataMatcher", "PathSegment", "ValueMatcher", "OrMatcher",
         "ListMatcher"))}
    missing = [f"{k}.{f}" for k, r in rbac_rows.items() for f in r.fields
               if (k, f) not in listed and (k, f) not in {
                   ("envoy.type.matcher.v3.MetadataMatcher", "invert"),  # refused when true (next test)
                   ("envoy.extensions.filters.network.rbac.v3.RBAC", "shadow_rules_stat_prefix"),
                   ("envoy.config.rbac.v3.RBAC", "action")}]  # ALLOW is the default; DENY is set above
    assert missing == []
    with Engine(concurrency=1) as engine:
        engine.apply(bs, "rbac.yaml")


@pytest.mark.parametrize("extra, where, text", [
    ("shadow_rules: {policies: {}}", "typed_config", 'unsupported field "shadow_rules"'),
    ("matcher: {}", "typed_config", 'unsupported field "matcher"'),
])
def test_what_the_core_cannot_evaluate_is_refused(extra, where, text):
    with pytest.raises(ConfigError, match=text):
        parse_bootstrap(config(http_rbac=extra))


@pytest.mark.parametrize("rules, text", [
    ("rules: {action: LOG}", "unsupported value LOG"),
    ("rules: {policies: {p: {permissions: [{any: true}], principals: [{any: true}], condition: {}}}}",
     'unsupported field "condition"'),
    ("rules: {policies: {p: {permissions: [{uri_template: {name: t}}], principals: [{any: true}]}}}",
     'unsupported field "uri_template"'),
    ("rules: {policies: {p: {permissions: [{metadata: {filter: f, invert: true}}], principals: [{any: true}]}}}",
     "invert: not supported"),
    ("rules: {policies: {p: {permissions: [], principals: [{any: true}]}}}", "permissions: required"),
    ("rules: {policies: {p: {permissions: [{destination_ip: {address_prefix: x}}], principals: [{any: true}]}}}",
     "is not an IP address"),
    ("# no rules", "rules: required"),
])
def test_rbac_rules_are_checked(rules, text):
    with pytest.raises(ConfigError, match=text):
        parse_bootstrap(config(rules_override=rules))
