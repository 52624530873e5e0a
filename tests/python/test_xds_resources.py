"""meshcore.xds.resources: a workload's translated config split into the
dynamic resources a control plane serves (LDS, RDS, CDS, EDS, SDS), and put
back together on the proxy's side into the static config the engine applies."""
from __future__ import annotations

import pathlib

import pytest
from envoy.config.cluster.v3 import cluster_pb2
from google.protobuf import json_format

from meshcore import xds_types
from meshcore.config import validate_bootstrap
from meshcore.translate import Registry, Security, load_dir, translate
from meshcore.xds import resources as xr

EXAMPLES = pathlib.Path(__file__).resolve().parents[2] / "examples"
SECRETS = [
    {"name": "default", "tls_certificate": {"certificate_chain": {"inline_string": "chain"},
                                            "private_key": {"inline_string": "key"}}},
    {"name": "ROOTCA", "validation_context": {"trusted_ca": {"inline_string": "local roots"}}},
]


def workloads(directory):
    mesh = load_dir(directory)
    registry = Registry(mesh)
    for w in registry.workloads:
        yield w.id, translate(mesh, w.id, registry=registry, security=Security()).bootstrap


def by_name(items):
    return sorted(items, key=lambda x: x["name"])


@pytest.mark.parametrize("directory", ["mesh", "mesh-mtls"])
def test_split_then_materialize_gives_back_the_translation(directory):
    seen = 0
    for ref, bootstrap in workloads(EXAMPLES / directory):
        res = xr.split(bootstrap, "served roots")
        back = xr.materialize(res, SECRETS)
        before = json_format.MessageToDict(bootstrap.static_resources)
        after = json_format.MessageToDict(back.static_resources)
        for kind in ("listeners", "clusters"):
            assert by_name(after.get(kind, [])) == by_name(before.get(kind, [])), (ref, kind)
        validate_bootstrap(back)
        seen += 1
    assert seen >= 2


def test_split_serves_routes_endpoints_and_roots_by_name():
    ref, bootstrap = next(iter(workloads(EXAMPLES / "mesh-mtls")))
    res = xr.split(bootstrap, "served roots")
    assert res.of(xr.LDS) and res.of(xr.RDS) and res.of(xr.CDS)
    for name, cluster in res.of(xr.CDS).items():
        if cluster.type == cluster_pb2.Cluster.EDS:
            assert cluster.eds_cluster_config.eds_config.HasField("ads")
            assert res.of(xr.EDS)[cluster.eds_cluster_config.service_name].cluster_name == name
            assert not cluster.HasField("load_assignment")
    for listener in res.of(xr.LDS).values():
        for chain in listener.filter_chains:
            hcm = xds_types.http_connection_manager(chain)
            if hcm is not None:
                assert not hcm.HasField("route_config")
                assert hcm.rds.route_config_name in res.of(xr.RDS)
                assert hcm.rds.config_source.HasField("ads")
    assert res.of(xr.SDS)["ROOTCA"].validation_context.trusted_ca.inline_string == "served roots"
    assert "default" not in res.of(xr.SDS)  # the workload's key never comes from the control plane
    text = str(res.of(xr.LDS)) + str(res.of(xr.CDS))
    assert xr.SDS_CLUSTER in text or "default" not in text  # TLS names point at the local agent (Istio's sds-grpc)


def test_materialize_waits_for_what_is_named_and_prefers_local_secrets():
    ref, bootstrap = next(iter(workloads(EXAMPLES / "mesh-mtls")))
    res = xr.split(bootstrap, "served roots")
    route = next(iter(res.of(xr.RDS)))
    del res.of(xr.RDS)[route]
    with pytest.raises(xr.Incomplete, match=route):
        xr.materialize(res, SECRETS)
    res = xr.split(bootstrap, "served roots")
    cla = next(iter(res.of(xr.EDS)))
    del res.of(xr.EDS)[cla]
    with pytest.raises(xr.Incomplete, match="endpoints"):
        xr.materialize(res, SECRETS)
    xr.materialize(res, SECRETS, allow_missing_endpoints=True)
    res = xr.split(bootstrap, "served roots")
    back = xr.materialize(res, SECRETS)
    secrets = {s.name: s for s in back.static_resources.secrets}
    assert secrets["ROOTCA"].validation_context.trusted_ca.inline_string == "local roots"
    assert set(secrets) == {"default", "ROOTCA"}
