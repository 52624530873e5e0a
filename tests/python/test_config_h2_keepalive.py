"""Http2ProtocolOptions.connection_keepalive on the http_connection_manager
(the cluster's cases are in test_config_http_clusters.py): Envoy's validate
rules, errors naming file, resource and field."""
import pytest
from config_http_helpers import HCM_AT, at, check_error, hcm, parse_changed


def keepalive(**settings):
    return lambda h: h.update(http2_protocol_options={"connection_keepalive": settings})


KA_AT = "http2_protocol_options.connection_keepalive"


@pytest.mark.parametrize(
    "change, path, text",
    [
        (keepalive(interval="10s"), KA_AT + ".timeout", "required (at least 1ms)"),
        (keepalive(interval="0s", timeout="1s"), KA_AT + ".interval", "must be at least 1ms"),
        (keepalive(timeout="-1s"), KA_AT + ".timeout", "must be at least 1ms"),
        (keepalive(timeout="1"), KA_AT + ".timeout", 'expected a duration such as "1s"'),
        (keepalive(timeout="1s", interval_jitter={"value": -1}), KA_AT + ".interval_jitter.value",
         "-1 is out of range (0..100)"),
        # PINGs ahead of a new stream are a client's: Envoy's server side ignores it, here it is refused
        (keepalive(timeout="1s", connection_idle_interval="60s"), KA_AT,
         'unsupported field "connection_idle_interval" (supported: interval, timeout, interval_jitter)'),
        (keepalive(timeout="1s", probes=3), KA_AT, 'unknown field "probes"'),
    ],
)
def test_hcm_keepalive_rules(change, path, text):
    check_error(lambda d: change(hcm(d)), at(HCM_AT, path), text)


@pytest.mark.parametrize(
    "settings",
    [
        {"interval": "30s", "timeout": "5s", "interval_jitter": {"value": 50}},
        {"interval": "0.001s", "timeout": "0.001s", "interval_jitter": {"value": 0}},
        {"timeout": "1s"},  # no interval: no PING is sent, as Envoy
    ],
)
def test_hcm_keepalive_accepted(settings):
    bs = parse_changed(lambda d: keepalive(**settings)(hcm(d)))
    assert bs.static_resources.listeners[0].filter_chains[0].filters[0].typed_config.type_url.endswith(
        "HttpConnectionManager")
