/*
 * HTTP/1.1 downstream connections: what the connection (proxy/h1_server.c)
 * and its codec (proxy/h1_codec.c) share. Not for use outside them.
 */
#ifndef MESHCORE_PROXY_H1_SERVER_H
#define MESHCORE_PROXY_H1_SERVER_H

#include "proxy/http_stream.h"

extern const mc_http_codec_t mc_h1_codec;

/* proxy/h1_server.c */
void mc_h1_conn_close(mc_http_conn_t *c);
/* Sends c->out; 1 when it is empty, 0 when the socket is full, -1 on error. */
int mc_h1_flush_out(mc_http_conn_t *c);
int mc_h1_queue_out(mc_http_conn_t *c, const char *data, size_t len);
/* The exchange is complete (codec `done`): the next request, or close. */
void mc_h1_conn_done(mc_http_stream_t *s);

/* proxy/http_upgrade.c: moves tunnel bytes both ways (after a 101). */
void mc_h1_tunnel_pump(mc_http_stream_t *s);

/* proxy/h1_codec.c: writes what it can of the response (codec `send_response`). */
void mc_h1_send_response(mc_http_stream_t *s);

#endif
