/*
 * What one try's result tells its cluster (the router filter's upstream
 * accounting, for proxy/http_forward.c): Envoy's per-class and
 * per-code counters (cluster.<name>.upstream_rq_<class>xx, _<code>) and the
 * outlier detector's view of the host that answered.
 */
#include "proxy/http_stream.h"

#define STATS(s) ((s)->w->stats)

void mc_http_count_upstream_status(mc_http_stream_t *s, int status)
{
    static const int slots[6] = {0, MC_CLUSTER_UPSTREAM_RQ_1XX, MC_CLUSTER_UPSTREAM_RQ_2XX,
                                 MC_CLUSTER_UPSTREAM_RQ_3XX, MC_CLUSTER_UPSTREAM_RQ_4XX, MC_CLUSTER_UPSTREAM_RQ_5XX};
    int cls = status / 100;
    if (cls >= 1 && cls <= 5)
        mc_stat_inc(STATS(s), s->c->scope, (uint32_t)slots[cls]);
    int code = mc_stats_code_index(status); /* upstream_rq_<code>, for the codes the table has */
    if (code >= 0)
        mc_stat_inc(STATS(s), s->c->scope, (uint32_t)(MC_CLUSTER_CODE_FIRST + code));
}

int mc_http_outcome_of(int status)
{
    if (status == 502 || status == 503 || status == 504)
        return MC_OUTCOME_GATEWAY;
    return status >= 500 ? MC_OUTCOME_5XX : MC_OUTCOME_SUCCESS;
}

void mc_http_report_outlier(mc_http_stream_t *s, int outcome)
{
    const mc_cluster_t *c = s->c;
    if (!c->outlier.enabled || s->ep == UINT32_MAX)
        return;
    mc_host_state_t *h = c->endpoints[s->ep].host;
    mc_stat_inc(STATS(s), c->endpoints[s->ep].host_scope,
                outcome == MC_OUTCOME_SUCCESS ? MC_HOST_RQ_SUCCESS : MC_HOST_RQ_ERROR);
    if (mc_outlier_report(c->state, h, &c->outlier, outcome, c->n_endpoints, s->w->loop.now))
        mc_stat_inc(STATS(s), c->scope, MC_CLUSTER_OUTLIER_EJECTIONS_ENFORCED_TOTAL);
}
