/* The control endpoint every daemon answers (proto/control.proto): a ROUTER
 * taking StatusRequest and replying with the daemon's counters, which the
 * daemon supplies through a fill callback. */
#ifndef SVC_STATUS_H
#define SVC_STATUS_H

#include <stdint.h>
#include "svc_zmq.h"

struct svc_status;
struct svc_status_out;

/* Adds one counter to a status reply being built. */
void svc_status_add(struct svc_status_out *o, const char *name, int64_t value);
typedef void (*svc_status_fill_cb)(void *arg, struct svc_status_out *o);

/* Binds the control endpoint. NULL after logging. */
struct svc_status *svc_status_new(uv_loop_t *loop, struct svc_zctx *z, const char *endpoint,
                                  const char *service, svc_status_fill_cb fill, void *arg);
void svc_status_destroy(struct svc_status **s);

#endif
