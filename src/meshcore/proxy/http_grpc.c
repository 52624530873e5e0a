/*
 * gRPC over a stream: the grpc-status of a response (a trailers-only
 * response carries it in its head; otherwise proxy/h2_adapt.c takes it from
 * the trailers), read for retries (retry_on cancelled, unavailable, ...),
 * access logs (%GRPC_STATUS%) and Istio's grpc_response_status label.
 */
#include "proxy/http_stream.h"

int mc_http_grpc_status_of(const mc_h1_response_t *r)
{
    const mc_h1_header_t *h = mc_h1_find_header(r->headers, r->n_headers, "grpc-status", 11);
    if (!h || h->value_len == 0 || h->value_len > 2)
        return -1;
    int st = 0;
    for (size_t i = 0; i < h->value_len; i++) {
        if (h->value[i] < '0' || h->value[i] > '9')
            return -1;
        st = st * 10 + (h->value[i] - '0');
    }
    return st;
}
