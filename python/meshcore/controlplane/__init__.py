"""The control plane: `meshcore control-plane` (docs/control-plane.md).

    store.py          where the config comes from (a directory now), behind load()/watch()
    views.py          per workload, the xDS resources of a config version (translate + split)
    nodes.py          who a proxy is: its Node matched to a WorkloadEntry
    subscriptions.py  one proxy's xDS state per type: subscriptions, what was sent, ACK/NACK
    ads.py            the Aggregated Discovery Service (state of the world and delta) over grpc.aio
    pusher.py         config changes -> new views -> pushes, coalesced; the push counters
    status.py         the HTTP status page (/debug/syncz, /ready, /metrics)
    server.py         ControlPlane: the gRPC server, the status page and the pusher together
"""
