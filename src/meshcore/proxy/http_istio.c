/*
 * Istio standard metrics for HTTP requests (istio.stats) and the peer
 * metadata exchange that labels them (istio.metadata_exchange).
 *
 * The exchange is Istio's: the client's sidecar sends its node metadata in
 * x-envoy-peer-metadata (base64 of a protobuf Struct) and
 * x-envoy-peer-metadata-id; the server's sidecar reads them and answers with
 * its own in the response; each strips the other's before the application
 * sees them. The C side never decodes the value: it interns the bytes (once
 * per distinct peer) and the exporter decodes them in Python. So a request
 * costs a header lookup and, at its end, a hash and a handful of adds.
 */
#include <string.h>

#include "core/clock.h"
#include "proxy/http_stream.h"

int mc_http_im_header(const char *name, size_t len)
{
    /* x-envoy-peer-metadata and x-envoy-peer-metadata-id */
    static const char prefix[] = "x-envoy-peer-metadata";
    const size_t n = sizeof(prefix) - 1;
    return (len == n || (len == n + 3 && mc_h1_token_eq(name + n, 3, "-id", 3))) &&
           mc_h1_token_eq(name, n, prefix, n);
}

static uint16_t peer_of(mc_worker_t *w, const mc_h1_header_t *headers, size_t n)
{
    const mc_h1_header_t *h = mc_h1_find_header(headers, n, "x-envoy-peer-metadata", 21);
    return h ? mc_im_peer(&w->im, h->value, h->value_len) : 0;
}

void mc_http_im_request_head(mc_http_stream_t *s)
{
    const mc_im_cfg_t *im = &s->ch->im;
    s->im_peer = 0;
    s->im_peer_present = 0;
    if (im->reporter != MC_IM_DESTINATION || !im->exchange)
        return;
    const mc_h1_request_t *q = &s->req;
    if (!mc_h1_find_header(q->headers, q->n_headers, "x-envoy-peer-metadata-id", 24) &&
        !mc_h1_find_header(q->headers, q->n_headers, "x-envoy-peer-metadata", 21))
        return;
    s->im_peer_present = 1;
    s->im_peer = peer_of(s->w, q->headers, q->n_headers);
}

void mc_http_im_response_head(mc_http_stream_t *s)
{
    const mc_im_cfg_t *im = &s->ch->im;
    if (im->reporter == MC_IM_SOURCE && im->exchange && s->conn)
        s->im_peer = peer_of(s->w, s->resp.headers, s->resp.n_headers);
}

void mc_http_im_end(mc_http_stream_t *s)
{
    const mc_im_cfg_t *im = &s->ch->im;
    if (im->reporter == MC_IM_REPORTER_NONE || !s->conn)
        return;
    mc_worker_t *w = s->w;
    mc_im_key_t k;
    memset(&k, 0, sizeof(k));
    k.reporter = im->reporter;
    k.protocol = s->grpc_request ? MC_IM_PROTO_GRPC : MC_IM_PROTO_HTTP;
    k.grpc = s->has_grpc_status ? (uint8_t)(s->grpc_status + 1) : 0;
    k.code = s->status;
    k.flags = s->flags;
    k.peer = s->im_peer;
    k.service = s->c ? s->c->im_service : 0;
    if (im->reporter == MC_IM_DESTINATION) {
        mc_http_peer_t *p = s->peer;
        if (!p->im_principal_set) { /* once per connection */
            p->im_principal = mc_im_principal(&w->im, p->principal, strlen(p->principal));
            p->im_principal_set = 1;
        }
        k.principal = p->im_principal;
        k.security = p->principal[0] ? MC_IM_SEC_MUTUAL_TLS : MC_IM_SEC_NONE;
    } else {
        mc_upconn_t *u = s->up;
        if (u && !u->im_principal_set) {
            u->im_principal = mc_im_principal(&w->im, u->principal, strlen(u->principal));
            u->im_principal_set = 1;
        }
        k.principal = u ? u->im_principal : 0;
        k.security = MC_IM_SEC_UNKNOWN;
    }
    mc_im_set_t *set = mc_im_find(&w->im, &k);
    if (set)
        mc_im_record_http(set, (mc_now_ns() - s->rq_start_ns) / 1000, s->bytes_rx, s->bytes_tx);
}
