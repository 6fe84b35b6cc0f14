/* The control endpoint: answers StatusRequest with the counters the daemon
 * fills in; anything else gets no answer and is counted. */
#include "svc_status.h"

#include <stdlib.h>
#include <string.h>

#include "control.pb-c.h"
#include "svc_alloc.h"
#include "svc_log.h"

#define MAX_COUNTERS 128

struct svc_status_out {
  Whistle__Control__Counter items[MAX_COUNTERS];
  Whistle__Control__Counter *ptrs[MAX_COUNTERS];
  size_t n;
};

struct svc_status {
  struct svc_zsock *sock;
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
  c->name = (char *)name;
  c->value = value;
  o->ptrs[o->n++] = c;
}

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
  struct svc_status_out *o = calloc(1, sizeof *o);
  if (!o) return;
  svc_status_add(o, "control.bad_frames", s->bad);
  s->fill(s->arg, o);
  Whistle__Control__StatusReply rep = WHISTLE__CONTROL__STATUS_REPLY__INIT;
  rep.service = s->service;
  rep.n_counters = o->n;
  rep.counters = o->ptrs;
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

struct svc_status *svc_status_new(uv_loop_t *loop, struct svc_zctx *z, const char *endpoint,
                                  const char *service, svc_status_fill_cb fill, void *arg)
{
  struct svc_status *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->service = strdup(service);
  s->fill = fill;
  s->arg = arg;
  struct svc_zsock_opts o = { .type = ZMQ_ROUTER, .bind = endpoint };
  s->sock = s->service ? svc_zsock_new(z, loop, &o, on_message, s) : NULL;
  if (!s->sock) {
    free(s->service);
    free(s);
    return NULL;
  }
  return s;
}

void svc_status_destroy(struct svc_status **sp)
{
  struct svc_status *s = *sp;
  if (!s) return;
  *sp = NULL;
  svc_zsock_close(&s->sock);
  free(s->service);
  free(s);
}
