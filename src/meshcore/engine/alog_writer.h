/* The engine's log writer; see worker/alog_writer.c and
 * include/meshcore/access_log.h. */
#ifndef MESHCORE_ALOG_WRITER_H
#define MESHCORE_ALOG_WRITER_H

#include <stddef.h>
#include <stdint.h>

#include "meshcore/access_log.h"

typedef struct mc_alog_writer mc_alog_writer_t;

mc_alog_writer_t *mc_alog_writer_new(mc_engine_t *e);
int mc_alog_writer_add_sink(mc_alog_writer_t *w, uint32_t log_id, const char *path, int fd,
                            const mc_alog_segment_t *http, uint32_t n_http, const mc_alog_segment_t *tcp,
                            uint32_t n_tcp, char *err, size_t errlen);
uint32_t mc_alog_writer_spans(mc_alog_writer_t *w, mc_alog_record_t *out, uint32_t max, uint64_t *dropped);
void mc_alog_writer_flush(mc_alog_writer_t *w);
/* Lines lost to write errors; *spans_dropped: spans the hand-over had no room for. */
uint64_t mc_alog_writer_errors(mc_alog_writer_t *w, uint64_t *spans_dropped);
/* Last pass (after the workers are joined), then the thread ends. */
void mc_alog_writer_stop(mc_alog_writer_t *w);
void mc_alog_writer_free(mc_alog_writer_t *w);

#endif
