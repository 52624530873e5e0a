"""A real Envoy as a mesh sidecar: `meshcore agent --envoy-bootstrap` (the
certificate by CSR, served over SDS on a Unix socket, and the bootstrap
istio-agent would write) and Envoy started from that bootstrap, its whole
config from the control plane over ADS (docs/envoy.md)."""
from __future__ import annotations

import os
import pathlib

from .ca_service import AgentProcess
from .envoy import EnvoyProcess


class EnvoySidecar:
    """Envoy + `meshcore agent` for one demo_mesh.Workload (namespace default)."""

    def __init__(self, workload, xds: str, token_file: str, workdir, mode: str = "delta", base_id: int = 0):
        self.workload = workload
        self.workdir = pathlib.Path(workdir)
        self.name = workload.name
        # a short path: a Unix socket's path is at most 107 bytes
        self.socket_dir = self.workdir / f"sds-{workload.name}"
        self.socket_dir.mkdir(mode=0o700)
        self.bootstrap_path = self.workdir / f"{workload.name}-bootstrap.yaml"
        labels = [a for k, v in workload.labels.items() for a in ("--label", f"{k}={v}")]
        self.agent = AgentProcess(xds, token_file, str(self.socket_dir / "sds.sock"),
                                  str(self.workdir / f"{workload.name}-agent.log"),
                                  workload=f"default/{workload.name}",
                                  extra_args=["--envoy-bootstrap", str(self.bootstrap_path),
                                              "--ip", workload.outbound_address, "--ads", mode, *labels])
        self.base_id = base_id
        self.envoy: EnvoyProcess | None = None

    def start(self) -> EnvoySidecar:
        self.agent.start()  # returns once the SDS socket is there (the bootstrap is written before it)
        assert os.path.exists(self.bootstrap_path), self.agent.log()
        self.envoy = EnvoyProcess(self.workdir, self.bootstrap_path.read_text(), name=f"envoy-{self.name}",
                                  base_id=self.base_id).start()
        return self

    def stat(self, name: str) -> int | None:
        return self.envoy.stat(name)

    def stats(self, prefix: str = "") -> dict[str, int]:
        """Counters and gauges whose names start with prefix."""
        status, text = self.envoy.admin_get("/stats")
        out = {}
        for line in text.splitlines():
            key, _, value = line.partition(": ")
            if key.startswith(prefix) and value.strip().lstrip("-").isdigit():
                out[key] = int(value)
        return out

    def config_dump(self, resource: str) -> dict:
        import json

        status, text = self.envoy.admin_get(f"/config_dump?resource={resource}")
        assert status == 200, text
        return json.loads(text)

    def stop(self) -> None:
        if self.envoy is not None:
            self.envoy.stop()
        self.agent.stop()
