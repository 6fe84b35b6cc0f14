/* The update interface of referral (proto/unit.proto) from the unit's side:
 * one DEALER, many requests in flight, each resent with the same request_id
 * until its final answer (referral answers DUPLICATE to a repeat), UNAVAILABLE
 * answered by a resend after a pause when asked for, and requests given up
 * after the timeout. Replies are matched by request_id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dept.h"
#include "svc_alloc.h"
#include "svc_time.h"

#define UNIT_VERSION 1
#define TICK_MS 100
#define REPLY_BUDGET (256u << 10)

struct req {
  uint64_t id;
  uint8_t *msg; size_t len;
  void *arg;
  int64_t first_us, next_us;   /* sent first; (re)send due */
};

struct dept_units {
  uv_loop_t *loop;
  struct svc_zsock *sock;
  uv_timer_t tick;
  struct dept_units_opts o;
  dept_reply_cb cb;
  void *arg;
  struct req *v; size_t n, cap;  /* pending, in request_id order */
  uint64_t next_id;
  struct dept_units_stats st;
};

static void send_req(struct dept_units *u, struct req *r, int64_t now)
{
  struct svc_frame f = { r->msg, r->len };
  svc_zsock_send(u->sock, &f, 1);
  r->next_us = now + u->o.resend_us;
}

static struct req *find(struct dept_units *u, uint64_t id, size_t *idx)
{
  size_t lo = 0, hi = u->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (u->v[mid].id < id) lo = mid + 1;
    else hi = mid;
  }
  *idx = lo;
  return lo < u->n && u->v[lo].id == id ? &u->v[lo] : NULL;
}

/* Removes request i and hands its final answer (or NULL) to the callback. */
static void complete(struct dept_units *u, size_t i, const Whistle__Unit__Reply *r)
{
  struct req done = u->v[i];
  memmove(&u->v[i], &u->v[i + 1], (u->n - i - 1) * sizeof *u->v);
  u->n--;
  free(done.msg);
  if (!r) u->st.gave_up++;
  u->cb(u->arg, done.arg, r);
}

static void on_reply(struct dept_units *u, const uint8_t *data, size_t len)
{
  struct svc_pballoc al;
  Whistle__Unit__UnitMessage *m = (Whistle__Unit__UnitMessage *)svc_pb_unpack(
    &whistle__unit__unit_message__descriptor, &al, REPLY_BUDGET, data, len, NULL);
  if (!m || m->body_case != WHISTLE__UNIT__UNIT_MESSAGE__BODY_REPLY) {
    u->st.bad++;
    if (m) protobuf_c_message_free_unpacked(&m->base, &al.a);
    return;
  }
  size_t i;
  uint64_t id = m->request_id ? m->request_id : m->reply->request_id;
  struct req *r = find(u, id, &i);
  if (!r) {
    u->st.extra++; /* the answer to a resend already answered */
  } else if (m->reply->status == WHISTLE__UNIT__REPLY__STATUS__UNAVAILABLE &&
             u->o.retry_unavailable) {
    int64_t now = svc_mono_us(), pause = u->o.resend_us;
    u->st.replies++;
    r->next_us = now + pause; /* referral cannot commit now: again after a pause */
  } else {
    u->st.replies++;
    complete(u, i, m->reply);
  }
  protobuf_c_message_free_unpacked(&m->base, &al.a);
}

static void on_message(struct svc_zsock *z, const struct svc_frame *f, size_t n,
                       const char *user_id, void *arg)
{
  (void)z;
  (void)user_id;
  if (n != 1) {
    ((struct dept_units *)arg)->st.bad++;
    return;
  }
  on_reply(arg, f[0].data, f[0].len);
}

static void tick_cb(uv_timer_t *t)
{
  struct dept_units *u = t->data;
  int64_t now = svc_mono_us();
  for (size_t i = 0; i < u->n;) {
    struct req *r = &u->v[i];
    if (u->o.timeout_us && now - r->first_us >= u->o.timeout_us) {
      complete(u, i, NULL);
      continue;
    }
    if (now >= r->next_us) {
      u->st.resent++;
      send_req(u, r, now);
    }
    i++;
  }
}

struct dept_units *dept_units_new(uv_loop_t *loop, struct svc_zctx *z,
                                  const struct dept_units_opts *o, dept_reply_cb cb, void *arg)
{
  struct dept_units *u = calloc(1, sizeof *u);
  if (!u) return NULL;
  u->loop = loop;
  u->o = *o;
  if (u->o.resend_us <= 0) u->o.resend_us = SVC_US_PER_SEC;
  u->cb = cb;
  u->arg = arg;
  u->next_id = 1;
  struct svc_zsock_opts zo = { .type = ZMQ_DEALER, .connect = o->endpoint,
                               .server_key = o->server_key };
  u->sock = svc_zsock_new(z, loop, &zo, on_message, u);
  if (!u->sock) {
    fprintf(stderr, "whistle-dept: cannot connect to the unit interface at %s\n", o->endpoint);
    free(u);
    return NULL;
  }
  uv_timer_init(loop, &u->tick);
  u->tick.data = u;
  uv_timer_start(&u->tick, tick_cb, TICK_MS, TICK_MS);
  return u;
}

int dept_units_send(struct dept_units *u, Whistle__Unit__UnitMessage *m, void *req_arg)
{
  if (u->n == u->cap) {
    size_t cap = u->cap ? u->cap * 2 : 64;
    struct req *v = realloc(u->v, cap * sizeof *v);
    if (!v) return -1;
    u->v = v;
    u->cap = cap;
  }
  m->version = UNIT_VERSION;
  m->request_id = u->next_id++;
  size_t len = whistle__unit__unit_message__get_packed_size(m);
  struct req *r = &u->v[u->n];
  *r = (struct req){ .id = m->request_id, .len = len, .arg = req_arg };
  r->msg = malloc(len ? len : 1);
  if (!r->msg) return -1;
  whistle__unit__unit_message__pack(m, r->msg);
  u->n++;
  u->st.sent++;
  r->first_us = svc_mono_us();
  send_req(u, r, r->first_us);
  return 0;
}

size_t dept_units_pending(const struct dept_units *u)
{
  return u->n;
}

void dept_units_stats(const struct dept_units *u, struct dept_units_stats *st)
{
  *st = u->st;
}

static void close_cb(uv_handle_t *h)
{
  free(h->data);
}

void dept_units_destroy(struct dept_units **up)
{
  struct dept_units *u = *up;
  if (!u) return;
  *up = NULL;
  while (u->n) complete(u, u->n - 1, NULL);
  free(u->v);
  u->v = NULL;
  int zero = 0; /* what is still queued was given up: do not linger on it */
  zmq_setsockopt(svc_zsock_raw(u->sock), ZMQ_LINGER, &zero, sizeof zero);
  svc_zsock_close(&u->sock);
  uv_timer_stop(&u->tick);
  uv_close((uv_handle_t *)&u->tick, close_cb);
}
