"""Telemetry: what the engine observes, read off the core and exposed.

    stats.py          the core's counters, gauges and histograms, named as Envoy names them
    prometheus.py     Prometheus text exposition of stats (and of other collectors)
    istio_metrics.py  Istio's standard metrics (istio_requests_total, ...): planning and collection
    access_log.py     access-log formats and the writer draining the core's record rings
    tracing.py        spans (OpenTelemetry / Zipkin) from the same records, and their exporters

The core counts and records on its worker threads; everything here runs off
the hot path, pulling (C -> Python is pull only). Nothing is imported here, so
that `import meshcore` does not load prometheus_client or the exporters.
"""
