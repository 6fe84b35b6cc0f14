/* The status every daemon answers: on its control endpoint (proto/control.proto:
 * a ROUTER taking StatusRequest and replying with the daemon's counters) and,
 * when configured, over HTTP (/healthz, /metrics). The daemon supplies the
 * counters through a fill callback; "pg.up" decides /healthz. */
#ifndef SVC_STATUS_H
#define SVC_STATUS_H

#include <stddef.h>
#include <stdint.h>
#include "svc_zmq.h"

struct svc_status;
struct svc_status_out;

/* Adds one counter to a status reply being built (name is copied, up to 63 bytes). */
void svc_status_add(struct svc_status_out *o, const char *name, int64_t value);
/* Adds n counters named "<prefix>.<name>" (a component's counters under the
 * name of its role in the daemon, e.g. "stream" or "intake"). */
struct svc_status_kv { const char *name; uint64_t value; };
void svc_status_add_all(struct svc_status_out *o, const char *prefix,
                        const struct svc_status_kv *kv, size_t n);
typedef void (*svc_status_fill_cb)(void *arg, struct svc_status_out *o);

/* Binds the control endpoint and/or the HTTP address (either may be NULL or
 * ""). NULL after logging. */
struct svc_status *svc_status_new(uv_loop_t *loop, struct svc_zctx *z, const char *endpoint,
                                  const char *http, const char *service,
                                  svc_status_fill_cb fill, void *arg);
void svc_status_destroy(struct svc_status **s);

#endif
