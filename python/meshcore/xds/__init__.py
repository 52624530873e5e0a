"""xDS as a transport: the same resources file mode applies, served and
received over the Aggregated Discovery Service.

    resources.py   a workload's config <-> the dynamic resources of LDS, RDS,
                   CDS, EDS and SDS (split on the control plane's side,
                   materialized on the proxy's)
    client.py      the proxy's ADS client: subscriptions, ACK/NACK, warming,
                   reconnection (docs/xds-client.md)
    ca_proto.py    Istio's IstioCertificateService/CreateCertificate messages,
                   built at import; the renewal proof and chain check
    ca_client.py   a workload's certificate by CSR from the control plane
                   (CertificateClient), renewed in the background (CertificateKeeper)
    sds.py         a local SDS server on a Unix socket (`meshcore agent`)
"""
