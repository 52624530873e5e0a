"""`meshcore check DIR`: findings with file and field, exit 0 (no errors,
warnings allowed), 1 (errors) or 2 (usage). Each finding fires on a minimal
bad directory (the seed example with one thing broken) and not on the
seed example itself."""
import json
import pathlib
import shutil
import subprocess
import sys

import pytest
import yaml

from meshcore.cli import main

EXAMPLE = pathlib.Path(__file__).resolve().parents[2] / "examples" / "mesh"


def run(capsys, *args):
    code = main(["check", *map(str, args)])
    out = capsys.readouterr()
    return code, out.out, out.err


def mesh_dir(tmp_path, change=None, extra=None):
    """The seed example in tmp_path; change(docs by "Kind/name") edits it; extra: more YAML documents."""
    d = tmp_path / "mesh"
    shutil.copytree(EXAMPLE, d)
    if change:
        path = d / "checkout.yaml"
        docs = list(yaml.safe_load_all(path.read_text()))
        change({f"{x['kind']}/{x['metadata']['name']}": x for x in docs})
        path.write_text(yaml.safe_dump_all(docs, sort_keys=False))
    if extra:
        (d / "extra.yaml").write_text(extra)
    return d


def vs(docs):
    return docs["VirtualService/checkout"]["spec"]


def test_the_seed_example_is_clean(capsys):
    code, out, _ = run(capsys, EXAMPLE)
    assert code == 0
    assert out == f"no issues found in {EXAMPLE}\n"


def set_subset(docs):
    vs(docs)["http"][0]["route"][1]["destination"]["subset"] = "v3"


def set_weights(docs):
    vs(docs)["http"][0]["route"][1]["weight"] = 20


def set_host(docs):
    vs(docs)["http"][0]["route"][1]["destination"]["host"] = "checkuot"


def shadow(docs):
    vs(docs)["http"].append({"match": [{"uri": {"prefix": "/admin"}}],
                             "route": [{"destination": {"host": "checkout", "subset": "v1"}}]})


def slow_retries(docs):
    vs(docs)["http"][0]["retries"]["perTryTimeout"] = "5s"  # 5s x 3 attempts > 10s


def empty_subset(docs):
    docs["DestinationRule/checkout"]["spec"]["subsets"][1]["labels"] = {"version": "v9"}


def bad_field(docs):
    vs(docs)["http"][0]["timeout"] = "soon"


SECOND_VS = """
apiVersion: networking.istio.io/v1
kind: VirtualService
metadata: {name: checkout-canary, namespace: default}
spec:
  hosts: [checkout.default.svc.cluster.local]
  http: [{route: [{destination: {host: checkout, subset: v2}}]}]
"""

CASES = [
    # (change, extra YAML, exit code, severity, code, "file: resource: path", message fragment)
    (set_subset, None, 1, "error", "undefined-subset",
     "checkout.yaml: VirtualService default/checkout: spec.http[0].route[1].destination.subset",
     'subset "v3" of checkout.default.svc.cluster.local is not defined: DestinationRule default/checkout'),
    (set_weights, None, 1, "error", "invalid", "checkout.yaml: VirtualService default/checkout: spec.http[0].route",
     "the destination weights add up to 110, must be 100"),
    (set_host, None, 1, "error", "unknown-host",
     "checkout.yaml: VirtualService default/checkout: spec.http[0].route[1].destination.host",
     "unknown destination host checkuot.default.svc.cluster.local"),
    (None, SECOND_VS, 1, "error", "duplicate-host", "extra.yaml: VirtualService default/checkout-canary: spec.hosts[0]",
     "checkout.default.svc.cluster.local is also routed by VirtualService default/checkout (checkout.yaml)"),
    (shadow, None, 0, "warning", "shadowed-route", "checkout.yaml: VirtualService default/checkout: spec.http[1]",
     "unreachable: spec.http[0] before it matches every request"),
    (slow_retries, None, 0, "warning", "retry-timeout", "checkout.yaml: VirtualService default/checkout: "
     "spec.http[0].retries", "perTryTimeout 5s x attempts 3 is longer than the route timeout 10s"),
    (empty_subset, None, 0, "warning", "no-endpoints",
     "checkout.yaml: DestinationRule default/checkout: spec.subsets[1].labels",
     'subset "v2" selects no endpoint of checkout.default.svc.cluster.local'),
    (bad_field, None, 1, "error", "invalid", "checkout.yaml: VirtualService default/checkout: spec.http[0].timeout",
     'expected a duration such as "10s" or "250ms", got "soon"'),
]


@pytest.mark.parametrize("change, extra, exit_code, severity, code, where, message", CASES,
                         ids=[c[4] + "-" + (c[0].__name__ if c[0] else "extra") for c in CASES])
def test_each_finding_fires(capsys, tmp_path, change, extra, exit_code, severity, code, where, message):
    d = mesh_dir(tmp_path, change, extra)
    got, out, _ = run(capsys, d)
    assert got == exit_code, out
    lines = out.splitlines()
    assert any(line.startswith(f"{severity}[{code}] {where}: ") and message in line for line in lines), out
    assert lines[-1].endswith(f"in {d}")


def test_json_output(capsys, tmp_path):
    d = mesh_dir(tmp_path, set_subset)
    code, out, _ = run(capsys, d, "-o", "json")
    assert code == 1
    report = json.loads(out)
    assert (report["directory"], report["errors"], report["warnings"]) == (str(d), 1, 0)
    [f] = report["findings"]
    assert f == {"severity": "error", "code": "undefined-subset", "file": "checkout.yaml",
                 "resource": "VirtualService default/checkout", "path": "spec.http[0].route[1].destination.subset",
                 "message": f["message"]}
    assert json.loads(run(capsys, EXAMPLE, "-o", "json")[1])["findings"] == []


def test_workload_specific_findings_and_the_workload_option(capsys, tmp_path):
    extra = """
apiVersion: v1
kind: Service
metadata: {name: mysql, namespace: default}
spec: {selector: {app: mysql}, ports: [{name: tcp, port: 3306}]}
---
apiVersion: v1
kind: Service
metadata: {name: mariadb, namespace: default}
spec: {selector: {app: mariadb}, ports: [{name: tcp, port: 3306}]}
"""
    d = mesh_dir(tmp_path, extra=extra)
    code, out, _ = run(capsys, d)
    assert code == 1
    assert "error[port-conflict] extra.yaml: Service default/mariadb: spec.ports: TCP port 3306 is used by" in out
    assert run(capsys, d, "--workload", "default/frontend")[0] == 1
    code, out, _ = run(capsys, d, "--workload", "nobody")
    assert code == 1 and "no WorkloadEntry default/nobody" in out


def test_usage_errors_exit_2(capsys, tmp_path):
    code, _, err = run(capsys, tmp_path / "missing")
    assert code == 2 and "not a directory" in err
    with pytest.raises(SystemExit) as e:
        main(["check"])
    assert e.value.code == 2
    with pytest.raises(SystemExit) as e:
        main(["check", str(EXAMPLE), "-o", "xml"])
    assert e.value.code == 2


def test_the_installed_command(tmp_path):
    exe = pathlib.Path(sys.executable).parent / "meshcore"
    cmd = [str(exe)] if exe.exists() else [sys.executable, "-m", "meshcore"]
    out = subprocess.run(cmd + ["check", str(mesh_dir(tmp_path, set_weights))], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 1
    assert "error[invalid] checkout.yaml: VirtualService default/checkout: spec.http[0].route: the destination " \
           "weights add up to 110, must be 100" in out.stdout
