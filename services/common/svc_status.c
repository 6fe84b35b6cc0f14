/* The control endpoint: answers StatusRequest with the counters the daemon
 * fills in, after those every daemon has (its ZeroMQ sockets' traffic, queues
 * and drops, ZAP, reload failures) and the version; anything else gets no
 * answer and is counted. Also latency histograms, and the same counters as
 * Prometheus text for svc_http.c (kinds and help from svc_metrics.c). */
#include "svc_status_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "svc_alloc.h"
#include "svc_config.h"
#include "svc_log.h"
#include "svc_signal.h"

#define MAX_COUNTERS 144
#define MAX_HISTS 8
#define MAX_INPUTS 4

struct svc_status_out {
  Whistle__Control__Counter items[MAX_COUNTERS];
  Whistle__Control__Counter *ptrs[MAX_COUNTERS];
  char names[MAX_COUNTERS][64]; /* copies: callers may build names on the stack */
  size_t n;
  struct svc_hist hists[MAX_HISTS];
  char hist_names[MAX_HISTS][48];
  size_t n_hists;
  /* The settled signal (proto/control.proto): the stream published, the streams read. */
  Whistle__Control__StreamHead output;
  int has_output;
  Whistle__Control__InputPosition inputs[MAX_INPUTS];
  Whistle__Control__InputPosition *input_ptrs[MAX_INPUTS];
  char input_names[MAX_INPUTS][32];
  size_t n_inputs;
};

void svc_status_output(struct svc_status_out *o, const char *stream, uint64_t head,
                       int64_t watermark_us)
{
  Whistle__Control__StreamHead h = WHISTLE__CONTROL__STREAM_HEAD__INIT;
  h.stream = (char *)stream;
  h.head = head;
  h.watermark_us = watermark_us;
  o->output = h;
  o->has_output = 1;
}

void svc_status_input(struct svc_status_out *o, const char *input, uint64_t position,
                      int64_t watermark_us, int clock)
{
  if (o->n_inputs == MAX_INPUTS) return;
  size_t i = o->n_inputs++;
  Whistle__Control__InputPosition in = WHISTLE__CONTROL__INPUT_POSITION__INIT;
  snprintf(o->input_names[i], sizeof o->input_names[i], "%s", input);
  in.input = o->input_names[i];
  in.position = position;
  in.watermark_us = watermark_us;
  in.clock = clock != 0;
  o->inputs[i] = in;
  o->input_ptrs[i] = &o->inputs[i];
}

const int64_t svc_hist_bounds_us[SVC_HIST_BUCKETS] = {
  500, 1000, 2500, 5000, 10000, 25000, 50000, 100000, 250000, 500000, 1000000, 2500000,
  5000000, 10000000,
};

void svc_hist_observe(struct svc_hist *h, int64_t us)
{
  size_t i = 0;
  if (us < 0) us = 0;
  while (i < SVC_HIST_BUCKETS && us > svc_hist_bounds_us[i]) i++;
  h->in[i]++;
  h->count++;
  h->sum_us += (uint64_t)us;
}

void svc_status_add_hist(struct svc_status_out *o, const char *name, const struct svc_hist *h)
{
  char n[64];
  if (o->n_hists == MAX_HISTS || !h) return;
  o->hists[o->n_hists] = *h;
  snprintf(o->hist_names[o->n_hists], sizeof o->hist_names[0], "%s", name);
  o->n_hists++;
  snprintf(n, sizeof n, "%.47s_count", name);
  svc_status_add(o, n, (int64_t)h->count);
  snprintf(n, sizeof n, "%.47s_sum_us", name);
  svc_status_add(o, n, (int64_t)h->sum_us);
}

/* 1 if the item is a histogram's count or sum (shown with the histogram). */
static int hist_part(const struct svc_status_out *o, const char *item)
{
  for (size_t i = 0; i < o->n_hists; i++) {
    size_t l = strlen(o->hist_names[i]);
    if (strncmp(item, o->hist_names[i], l) == 0 &&
        (strcmp(item + l, "_count") == 0 || strcmp(item + l, "_sum_us") == 0))
      return 1;
  }
  return 0;
}

/* Appends one histogram in the text format; the new length. */
static size_t put_hist(char *text, size_t len, size_t cap, const char *service, const char *name,
                       const struct svc_hist *h)
{
  char pname[128], help[256];
  int us;
  svc__metric_describe(name, pname, sizeof pname, help, sizeof help, &us);
  snprintf(pname, sizeof pname, "whistle_%s_seconds", name);
  for (char *p = pname; *p; p++)
    if (*p == '.') *p = '_';
  len += (size_t)snprintf(text + len, cap - len, "# HELP %s %s\n# TYPE %s histogram\n", pname,
                          help, pname);
  uint64_t cum = 0;
  for (size_t i = 0; i <= SVC_HIST_BUCKETS && len < cap; i++) {
    char le[32];
    cum += h->in[i];
    if (i < SVC_HIST_BUCKETS) snprintf(le, sizeof le, "%g", (double)svc_hist_bounds_us[i] / 1e6);
    else snprintf(le, sizeof le, "+Inf");
    len += (size_t)snprintf(text + len, cap - len, "%s_bucket{service=\"%s\",le=\"%s\"} %llu\n",
                            pname, service, le, (unsigned long long)cum);
  }
  if (len < cap)
    len += (size_t)snprintf(text + len, cap - len,
                            "%s_sum{service=\"%s\"} %.6f\n%s_count{service=\"%s\"} %llu\n", pname,
                            service, (double)h->sum_us / 1e6, pname, service,
                            (unsigned long long)h->count);
  return len;
}

struct svc_status {
  struct svc_zctx *z;
  struct svc_zsock *sock;
  struct svc__http *http;
  char *service;
  svc_status_fill_cb fill;
  void *arg;
  int64_t bad;
};

void svc_status_add(struct svc_status_out *o, const char *name, int64_t value)
{
  if (o->n == MAX_COUNTERS) return;
  Whistle__Control__Counter *c = &o->items[o->n];
  whistle__control__counter__init(c);
  snprintf(o->names[o->n], sizeof o->names[o->n], "%s", name);
  c->name = o->names[o->n];
  c->value = value;
  o->ptrs[o->n++] = c;
}

void svc_status_add_all(struct svc_status_out *o, const char *prefix,
                        const struct svc_status_kv *kv, size_t n)
{
  char name[64];
  for (size_t i = 0; i < n; i++) {
    if (snprintf(name, sizeof name, "%s.%s", prefix, kv[i].name) >= (int)sizeof name) continue;
    svc_status_add(o, name, (int64_t)kv[i].value);
  }
}

static struct svc_status_out *collect(struct svc_status *s);

static void on_message(struct svc_zsock *z, const struct svc_frame *f, size_t n,
                       const char *user_id, void *arg)
{
  struct svc_status *s = arg;
  (void)user_id;
  if (n != 2) {
    s->bad++;
    return;
  }
  struct svc_pballoc al;
  Whistle__Control__ControlMessage *m = (Whistle__Control__ControlMessage *)svc_pb_unpack(
    &whistle__control__control_message__descriptor, &al, 16 * 1024, f[1].data, f[1].len, NULL);
  int ok = m && m->version == 1 &&
           m->body_case == WHISTLE__CONTROL__CONTROL_MESSAGE__BODY_STATUS_REQUEST;
  if (m) whistle__control__control_message__free_unpacked(m, &al.a);
  if (!ok) {
    s->bad++;
    return;
  }
  struct svc_status_out *o = collect(s);
  if (!o) return;
  Whistle__Control__StatusReply rep = WHISTLE__CONTROL__STATUS_REPLY__INIT;
  rep.service = s->service;
  rep.build_version = (char *)svc_version();
  rep.n_counters = o->n;
  rep.counters = o->ptrs;
  if (o->has_output) rep.output = &o->output;
  rep.n_inputs = o->n_inputs;
  rep.inputs = o->input_ptrs;
  Whistle__Control__ControlMessage out = WHISTLE__CONTROL__CONTROL_MESSAGE__INIT;
  out.version = 1;
  out.body_case = WHISTLE__CONTROL__CONTROL_MESSAGE__BODY_STATUS_REPLY;
  out.status_reply = &rep;
  size_t len = whistle__control__control_message__get_packed_size(&out);
  uint8_t *buf = malloc(len);
  if (buf) {
    whistle__control__control_message__pack(&out, buf);
    struct svc_frame r[2] = { f[0], { buf, len } };
    svc_zsock_send(z, r, 2);
  }
  free(buf);
  free(o);
}

static struct svc_status_out *collect(struct svc_status *s)
{
  struct svc_status_out *o = calloc(1, sizeof *o);
  if (!o) return NULL;
  svc_status_add(o, "control.bad_frames", s->bad);
  if (s->z) {
    struct svc_zsock_stats zs;
    svc_zctx_sock_stats(s->z, &zs);
    svc_status_add(o, "zmq.received", (int64_t)zs.received);
    svc_status_add(o, "zmq.sent", (int64_t)zs.sent);
    svc_status_add(o, "zmq.queued", (int64_t)zs.queued);
    svc_status_add(o, "zmq.dropped_full", (int64_t)zs.dropped_full);
    svc_status_add(o, "zmq.dropped_unroutable", (int64_t)zs.dropped_unroutable);
    svc_status_add(o, "zmq.dropped_bad", (int64_t)zs.dropped_bad);
    svc_status_add(o, "zmq.queue_msgs", (int64_t)zs.queue_msgs);
    svc_status_add(o, "zmq.queue_bytes", (int64_t)zs.queue_bytes);
    svc_status_add(o, "zmq.queue_peers", (int64_t)zs.queue_peers);
    uint64_t allowed, denied;
    svc_zctx_stats(s->z, &allowed, &denied);
    svc_status_add(o, "zap.allowed", (int64_t)allowed);
    svc_status_add(o, "zap.denied", (int64_t)denied);
  }
  svc_status_add(o, "reload.failures", (int64_t)svc_reload_failures());
  s->fill(s->arg, o);
  return o;
}

int64_t svc__status_value(struct svc_status *s, const char *name, int64_t def)
{
  struct svc_status_out *o = collect(s);
  int64_t v = def;
  for (size_t i = 0; o && i < o->n; i++)
    if (strcmp(o->items[i].name, name) == 0) v = o->items[i].value;
  free(o);
  return v;
}

char *svc__status_prometheus(struct svc_status *s)
{
  struct svc_status_out *o = collect(s);
  size_t cap = 1024 + (o ? o->n : 0) * 400 + (o ? o->n_hists : 0) * 2048;
  char *text = o ? malloc(cap) : NULL;
  size_t len = 0;
  if (text)
    len = (size_t)snprintf(text, cap,
                           "# HELP whistle_build_info The daemon's version, as a label.\n"
                           "# TYPE whistle_build_info gauge\n"
                           "whistle_build_info{service=\"%s\",version=\"%s\"} 1\n",
                           s->service, svc_version());
  for (size_t i = 0; text && i < o->n_hists && len < cap; i++)
    len = put_hist(text, len, cap, s->service, o->hist_names[i], &o->hists[i]);
  for (size_t i = 0; text && i < o->n && len < cap; i++) {
    char name[128], help[256];
    if (hist_part(o, o->items[i].name)) continue;
    int us;
    enum svc__metric_kind k = svc__metric_describe(o->items[i].name, name, sizeof name, help,
                                                   sizeof help, &us);
    int64_t v = o->items[i].value;
    len += (size_t)snprintf(text + len, cap - len, "# HELP %s %s\n# TYPE %s %s\n", name, help,
                            name, k == SVC__METRIC_COUNTER ? "counter" : "gauge");
    if (len >= cap) break;
    if (us)
      len += (size_t)snprintf(text + len, cap - len, "%s{service=\"%s\"} %.6f\n", name,
                              s->service, (double)v / 1e6);
    else
      len += (size_t)snprintf(text + len, cap - len, "%s{service=\"%s\"} %lld\n", name,
                              s->service, (long long)v);
  }
  if (len >= cap) len = cap - 1;
  free(o);
  return text;
}

struct svc_status *svc_status_new(uv_loop_t *loop, struct svc_zctx *z, const char *endpoint,
                                  const char *http, const char *service,
                                  svc_status_fill_cb fill, void *arg)
{
  struct svc_status *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->service = strdup(service);
  s->z = z;
  s->fill = fill;
  s->arg = arg;
  int ok = s->service != NULL;
  if (ok && endpoint && *endpoint) {
    struct svc_zsock_opts o = { .type = ZMQ_ROUTER, .bind = endpoint };
    ok = (s->sock = svc_zsock_new(z, loop, &o, on_message, s)) != NULL;
  }
  if (ok && http && *http) ok = (s->http = svc__http_new(loop, http, s)) != NULL;
  if (!ok) {
    svc_status_destroy(&s);
    return NULL;
  }
  return s;
}

void svc_status_destroy(struct svc_status **sp)
{
  struct svc_status *s = *sp;
  if (!s) return;
  *sp = NULL;
  if (s->sock) svc_zsock_close(&s->sock);
  svc__http_destroy(&s->http);
  free(s->service);
  free(s);
}
