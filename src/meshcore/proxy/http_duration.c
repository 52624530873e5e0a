/*
 * Envoy's stream duration limit (ConnectionManagerImpl::ActiveStream::
 * refreshDurationTimeout, onStreamMaxDurationReached): the route's
 * max_stream_duration.max_stream_duration, else the HCM's
 * common_http_protocol_options.max_stream_duration, bounds a stream's whole
 * life from its request head to the end of its response. The deadline is
 * one more kind on the stream's timer (proxy/http_stream.c next_deadline).
 */
#include "proxy/http_stream.h"

uint64_t mc_http_stream_duration_ns(const mc_http_stream_t *s)
{
    const mc_route_t *r = s->route;
    if (r->action != MC_ACTION_ROUTE)
        return 0;
    /* Envoy: a grpc-timeout under grpc_timeout_header_max replaces the
     * duration limit; meshcore holds the call to it as its route timeout
     * (mc_http_route_timeout_ns), so no second deadline here. */
    if (r->grpc_timeout_header && s->grpc_timeout_ns)
        return 0;
    if (r->stream_duration) /* an explicit 0 turns the HCM's limit off for the route */
        return r->stream_duration_ns;
    return s->hcm->max_stream_duration_ns;
}

void mc_http_stream_duration_reached(mc_http_stream_t *s)
{
    mc_stat_inc(s->w->stats, s->hcm->scope, MC_HTTP_DOWNSTREAM_RQ_MAX_DURATION_REACHED);
    s->details = "max_duration_timeout";
    if (s->try_state >= TRY_RESPONDING) { /* the response has started: reset the stream */
        s->flags |= MC_RF_DT;
        s->codec->reset(s);
        return;
    }
    /* Http::Utility::maybeRequestTimeoutCode: 504 once the request is
     * whole, else 408 (the HTTP/1.1 connection then closes); a gRPC call
     * gets DEADLINE_EXCEEDED from the HTTP/2 codec (MC_RF_DT). */
    mc_http_local_reply(s, s->req_done ? 504 : 408, "downstream duration timeout", MC_RF_DT);
}
