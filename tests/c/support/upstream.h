/* A fake TCP upstream for the C tests that proxy real connections: a
 * listening socket on 127.0.0.1, an accept-loop thread, and one detached
 * thread per connection that runs the test's handler. It lives until the
 * process exits. */
#ifndef MESHCORE_TEST_UPSTREAM_H
#define MESHCORE_TEST_UPSTREAM_H

#include <stdint.h>

/* Serves one accepted connection: read from and answer on fd. The helper
 * closes fd when it returns (shut down the write side first for a FIN the
 * peer may wait for). Connections are served concurrently, so the handler's
 * buffers must be its own (stack or malloc), never static: two connections
 * once raced on a shared one. */
typedef void (*upstream_handler_fn)(int fd, void *arg);

/* Starts the upstream; returns its port, 0 on failure. */
uint16_t upstream_start(upstream_handler_fn handler, void *arg);

#endif
