"""The admin HTTP API, both ends.

    server.py   the API a proxy serves (Envoy's paths: /config_dump, /stats,
                /stats/prometheus, /clusters, /certs, ...): AdminServer, AdminContext
    client.py   Admin: GETs JSON from one admin API (meshcore proxy-config, meshcore stat)

`from meshcore.admin import AdminContext, AdminServer` (docs/embedding.md).
"""
from meshcore.admin.server import AdminContext, AdminServer

__all__ = ["AdminContext", "AdminServer"]
