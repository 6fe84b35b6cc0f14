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

/* A latency histogram: observations by fixed buckets (upper bounds in
 * svc_hist_bounds_us, the last bucket open), their count and sum. */
#define SVC_HIST_BUCKETS 14
struct svc_hist {
  uint64_t count, sum_us;
  uint64_t in[SVC_HIST_BUCKETS + 1]; /* in[i]: observations in bucket i (not cumulative) */
};
extern const int64_t svc_hist_bounds_us[SVC_HIST_BUCKETS];
/* Records one duration in microseconds (negative counts as 0). */
void svc_hist_observe(struct svc_hist *h, int64_t us);
/* Adds a histogram to a status reply: /metrics shows it as a Prometheus
 * histogram <name>_seconds; the control reply as <name>_count and
 * <name>_sum_us. At most 8 per reply; name up to 47 bytes. */
void svc_status_add_hist(struct svc_status_out *o, const char *name, const struct svc_hist *h);

/* Adds one counter to a status reply being built (name is copied, up to 63 bytes). */
void svc_status_add(struct svc_status_out *o, const char *name, int64_t value);
/* Adds n counters named "<prefix>.<name>" (a component's counters under the
 * name of its role in the daemon, e.g. "stream" or "intake"). */
struct svc_status_kv { const char *name; uint64_t value; };
void svc_status_add_all(struct svc_status_out *o, const char *prefix,
                        const struct svc_status_kv *kv, size_t n);
typedef void (*svc_status_fill_cb)(void *arg, struct svc_status_out *o);

/* The settled signal of the status reply (proto/control.proto StatusReply
 * output and inputs): the stream this daemon publishes (its name, the seq of
 * the last event committed, the last watermark published), and each stream
 * it reads (the producer's name, the seq of the last event applied, the
 * latest watermark applied, whether that watermark drives the daemon's
 * clock). stream is kept, not copied (the daemon's name); input is copied (up to
 * 31 bytes); at most 4 inputs. */
void svc_status_output(struct svc_status_out *o, const char *stream, uint64_t head,
                       int64_t watermark_us);
void svc_status_input(struct svc_status_out *o, const char *input, uint64_t position,
                      int64_t watermark_us, int clock);

/* Binds the control endpoint and/or the HTTP address (either may be NULL or
 * ""). NULL after logging. */
struct svc_status *svc_status_new(uv_loop_t *loop, struct svc_zctx *z, const char *endpoint,
                                  const char *http, const char *service,
                                  svc_status_fill_cb fill, void *arg);
void svc_status_destroy(struct svc_status **s);

#endif
