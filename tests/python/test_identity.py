"""Workload identity (meshcore.identity: SPIFFE IDs, trust domains) and
certificate lifetimes (meshcore.durations): the parsing rules the CA, the
translation and the CLI share."""
import datetime as dt

import pytest

from meshcore import identity
from meshcore.durations import format_lifetime, parse_lifetime
from meshcore.errors import ConfigError

TD = "cluster.local"


def test_spiffe_id_formats_the_translation_s_ids():
    assert identity.spiffe_id(TD, "default", "web") == "spiffe://cluster.local/ns/default/sa/web"
    assert identity.spiffe_id(TD, "prod", "") == "spiffe://cluster.local/ns/prod/sa/default"
    assert identity.principal_namespace("spiffe://cluster.local/ns/prod/sa/web") == "prod"
    assert identity.principal_namespace("not-a-spiffe-id") == identity.UNKNOWN


@pytest.mark.parametrize("text, seconds", [
    ("5s", 5), ("90m", 5400), ("24h", 86400), ("7d", 604800), ("2w", 1209600), ("10y", 3650 * 86400),
    ("1h30m", 5400), (" 24h ", 86400), (dt.timedelta(minutes=2), 120), (30, 30),
])
def test_parse_lifetime(text, seconds):
    assert parse_lifetime(text) == dt.timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "24", "5x", "h", "-5s", "1.5h", "0s", "5 s", "101y", None, True, 0.5])
def test_parse_lifetime_rejects(text):
    with pytest.raises(ConfigError):
        parse_lifetime(text)


def test_format_lifetime_round_trips():
    for text in ("5s", "1h30m", "24h", "36h", "2d", "3650d", "2d1s"):
        assert format_lifetime(parse_lifetime(text)) == text


@pytest.mark.parametrize("spiffe_id, expected", [
    ("spiffe://cluster.local/ns/default/sa/web", ("cluster.local", ("ns", "default", "sa", "web"))),
    ("spiffe://td", ("td", ())),
    ("spiffe://a_b-c.1/x/Y.z-_", ("a_b-c.1", ("x", "Y.z-_"))),
])
def test_spiffe_id_parsing(spiffe_id, expected):
    assert identity.parse_spiffe_id(spiffe_id) == expected


@pytest.mark.parametrize("spiffe_id, message", [
    ("https://cluster.local/ns/a/sa/b", "must start with spiffe://"),
    ("SPIFFE://cluster.local/ns/a/sa/b", "must start with spiffe://"),
    ("spiffe:///ns/a/sa/b", "no trust domain"),
    ("spiffe://Cluster.Local/ns/a/sa/b", "trust domain"),
    ("spiffe://cluster.local:8080/ns/a", "no port"),
    ("spiffe://user@cluster.local/ns/a", "trust domain"),
    ("spiffe://cluster.local/ns/a/sa/b/", "must not end with '/'"),
    ("spiffe://cluster.local/ns//sa/b", "empty path segment"),
    ("spiffe://cluster.local/ns/../sa/b", "'..' is not allowed"),
    ("spiffe://cluster.local/ns/a b/sa/b", "only letters"),
    ("spiffe://cluster.local/ns/a%20/sa/b", "percent-encoding"),
    ("spiffe://cluster.local/ns/a/sa/b?x=1", "query"),
    ("spiffe://cluster.local/ns/a/sa/b#f", "fragment"),
    ("spiffe://cluster.local/" + "a" * 2100, "longer than 2048"),
])
def test_spiffe_id_rules(spiffe_id, message):
    with pytest.raises(ConfigError, match=message):
        identity.parse_spiffe_id(spiffe_id)


def test_workload_id():
    assert identity.workload_id(TD, "default", "web") == "spiffe://cluster.local/ns/default/sa/web"
    assert identity.parse_workload_id("spiffe://cluster.local/ns/default/sa/web") == (TD, "default", "web")
    for bad in ("spiffe://cluster.local/web", "spiffe://cluster.local/ns/a/sa/b/c", "spiffe://cluster.local/sa/a/ns/b"):
        with pytest.raises(ConfigError, match="workload ID has the form"):
            identity.parse_workload_id(bad)
    with pytest.raises(ConfigError, match="namespace"):
        identity.workload_id(TD, "", "web")
    with pytest.raises(ConfigError, match="service account"):
        identity.workload_id(TD, "default", "a/b")
