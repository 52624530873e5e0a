"""xDS as a transport: the same resources file mode applies, served and
received over the Aggregated Discovery Service.

    resources.py   a workload's config <-> the dynamic resources of LDS, RDS,
                   CDS, EDS and SDS (split on the control plane's side,
                   materialized on the proxy's)
    client.py      the proxy's ADS client: subscriptions, ACK/NACK, warming,
                   reconnection (docs/xds-client.md)
"""
