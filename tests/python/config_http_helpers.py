"""Shared by the test_config_http*.py files: examples/http.yaml as a dict,
accessors into it, and the checks that a change loads or fails naming
file, resource and field path."""
import copy
import pathlib

import pytest
import yaml

from meshcore.config import parse_bootstrap
from meshcore.errors import ConfigError

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "http.yaml"

URL = "type.googleapis.com/"
HCM_TYPE = URL + "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager"
FAULT_TYPE = URL + "envoy.extensions.filters.http.fault.v3.HTTPFault"
ROUTER_TYPE = URL + "envoy.extensions.filters.http.router.v3.Router"
CORS_TYPE = URL + "envoy.extensions.filters.http.cors.v3.Cors"
PREVIOUS_HOSTS_TYPE = URL + "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate"
UPSTREAM_HTTP = "envoy.extensions.upstreams.http.v3.HttpProtocolOptions"
FAULT_KEY = "envoy.filters.http.fault"

# Where errors point, as the message spells it.
LISTENER = 'http.yaml: listener "outbound_http"'
HCM_AT = LISTENER + ": filter_chains[0].filters[0].typed_config"
RC_AT = HCM_AT + ".route_config"
VH_AT = RC_AT + ".virtual_hosts[0]"
CLUSTER_AT = 'http.yaml: cluster "checkout_v1"'
OPTIONS_AT = f'{CLUSTER_AT}: typed_extension_protocol_options["{UPSTREAM_HTTP}"]'

HEALTHZ, CANARY, SPLIT = 0, 1, 2  # the example's routes


_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml: these tests dump YAML ~600 times
_EXAMPLE_DOC = yaml.safe_load(EXAMPLE.read_text())


def example_doc():
    return copy.deepcopy(_EXAMPLE_DOC)


def hcm(doc):
    return doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]


def http_filters(doc):
    return hcm(doc)["http_filters"]


def route_config(doc):
    return hcm(doc)["route_config"]


def vhost(doc, i=0):
    return route_config(doc)["virtual_hosts"][i]


def route(doc, i):
    return vhost(doc)["routes"][i]


def action(doc, i=SPLIT):
    return route(doc, i)["route"]


def retry(doc):
    return action(doc)["retry_policy"]


def match(doc, i=CANARY):
    return route(doc, i)["match"]


def route_fault(doc):
    return route(doc, CANARY)["typed_per_filter_config"][FAULT_KEY]


def cluster(doc, i=0):
    return doc["static_resources"]["clusters"][i]


def upstream_options(doc):
    return cluster(doc)["typed_extension_protocol_options"][UPSTREAM_HTTP]


def at(base, path):
    return f"{base}.{path}" if path else base


def parse_changed(change):
    doc = example_doc()
    change(doc)
    return parse_bootstrap(yaml.dump(doc, Dumper=_DUMPER, sort_keys=False), "http.yaml")


def error_of(change):
    with pytest.raises(ConfigError) as info:
        parse_changed(change)
    return str(info.value)


def check_error(change, where, text):
    """The error names exactly `where` (file, resource, field path) and says `text` (in part)."""
    msg = error_of(change)
    assert msg.startswith(f"{where}: "), msg
    assert text in msg[len(where) + 2 :], msg


def header(key, value="v", **more):
    return {"header": {"key": key, "value": value}, **more}


def second_vhost(*domains):
    def change(doc):
        routes = [{"match": {"prefix": "/"}, "direct_response": {"status": 404}}]
        route_config(doc)["virtual_hosts"].append({"name": "other", "domains": list(domains), "routes": routes})

    return change
