/* The recipient's side of whistle-escalation (proto/notice.proto): notices
 * (escalation's stream as the unit, each notice addressed or copied to it as
 * one JSON line, with the durable position of watch) and sign (签收: one Sign
 * request, resent every second until its answer or the timeout, the Reply
 * printed as one JSON line). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dept.h"
#include "notice.pb-c.h"
#include "svc_alloc.h"
#include "svc_time.h"

#define NOTICE_VERSION 1
#define TICK_MS 100
#define REPLY_BUDGET (256u << 10)

/* ---- notices ------------------------------------------------------------- */

/* Every event kind of escalation's stream carries a Notice (WATERMARK none). */
static const ProtobufCMessageDescriptor *notice_payload(const char *kind)
{
  return strncmp(kind, "notice.", 7) == 0 ? &whistle__notice__notice__descriptor : NULL;
}

struct watch_ctx {
  struct dept_watch *w;
  uv_signal_t sigint, sigterm;
  int signals_open, stopping, rc;
  struct dept_watch_stats st;
};

static void on_watch_done(void *arg, int rc)
{
  struct watch_ctx *c = arg;
  c->rc = rc;
  c->stopping = 1;
  dept_watch_stats(c->w, &c->st);
  if (c->signals_open) {
    uv_close((uv_handle_t *)&c->sigint, NULL);
    uv_close((uv_handle_t *)&c->sigterm, NULL);
    c->signals_open = 0;
  }
  dept_watch_destroy(&c->w);
}

static void on_signal(uv_signal_t *h, int sig)
{
  struct watch_ctx *c = h->data;
  (void)sig;
  if (c->w) dept_watch_stop(c->w);
}

int dept_notices_main(struct dept_args *a)
{
  struct watch_ctx c = { .rc = 1 };
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct svc_zctx *z = dept_zctx_new(&loop, a);
  if (z) {
    struct dept_watch_opts wo = { .endpoint = a->stream, .unit = a->unit,
                                  .server_key = a->server_key_file ? a->server_key : NULL,
                                  .out_path = a->out, .position_path = a->position,
                                  .until_idle_ms = a->until_idle_ms, .max_events = a->max,
                                  .stamp = a->stamp, .payload_of = notice_payload,
                                  .skip_watermarks = 1 };
    char err[512];
    c.w = dept_watch_new(&loop, z, &wo, NULL, on_watch_done, &c, err, sizeof err);
    if (!c.w) fprintf(stderr, "whistle-dept: %s\n", err);
  }
  if (c.w) {
    uv_signal_init(&loop, &c.sigint);
    uv_signal_init(&loop, &c.sigterm);
    c.sigint.data = c.sigterm.data = &c;
    uv_signal_start(&c.sigint, on_signal, SIGINT);
    uv_signal_start(&c.sigterm, on_signal, SIGTERM);
    c.signals_open = 1;
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  dept_loop_close(&loop);
  svc_zctx_destroy(&z);
  if (c.stopping)
    fprintf(stderr, "whistle-dept: notices %s: %llu notices written, position %llu, %llu "
                    "re-subscribes\n", a->unit, (unsigned long long)c.st.written,
            (unsigned long long)c.st.position, (unsigned long long)c.st.resubscribes);
  return c.rc;
}

/* ---- sign ---------------------------------------------------------------- */

struct sign_ctx {
  const struct dept_args *a;
  struct svc_zsock *sock;
  uv_timer_t tick;
  uint8_t *msg; size_t len;
  uint64_t request_id;
  int64_t first_us, next_us;
  int done, rc;
};

/* The JSON line (with '\n') of a sign's Reply, or of none (r NULL). */
static char *sign_line(const char *number, const Whistle__Notice__Reply *r)
{
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "number", json_string(number));
  if (!r) {
    json_object_set_new(o, "status", json_string("NO_REPLY"));
  } else {
    const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(&whistle__notice__reply__status__descriptor, r->status);
    char at[40];
    json_object_set_new(o, "status", v ? json_string(v->name) : json_integer(r->status));
    json_object_set_new(o, "reason", r->reason && r->reason[0] ? json_string(r->reason)
                                                               : json_null());
    json_object_set_new(o, "signed_at",
                        r->signed_us && svc_time_format(r->signed_us, SVC_DEFAULT_UTC_OFFSET, at,
                                                        sizeof at) >= 0
                          ? json_string(at) : json_null());
  }
  char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (!body) return NULL;
  size_t n = strlen(body);
  char *line = realloc(body, n + 2);
  if (!line) {
    free(body);
    return NULL;
  }
  memcpy(line + n, "\n", 2);
  return line;
}

/* The final answer (or none): prints it and lets the loop end. */
static void sign_finish(struct sign_ctx *s, const Whistle__Notice__Reply *r)
{
  if (s->done) return;
  s->done = 1;
  char *line = sign_line(s->a->number, r);
  if (line) fputs(line, stdout);
  fflush(stdout);
  free(line);
  s->rc = r && (r->status == WHISTLE__NOTICE__REPLY__STATUS__APPLIED ||
                r->status == WHISTLE__NOTICE__REPLY__STATUS__DUPLICATE) ? 0 : 1;
  if (!r) fprintf(stderr, "whistle-dept: no reply from %s in %lld ms (is whistle-escalation "
                          "listening there?)\n", s->a->requests, (long long)s->a->timeout_ms);
  else if (s->rc) fprintf(stderr, "whistle-dept: %s\n", r->reason && r->reason[0] ? r->reason
                                                                    : "refused");
  uv_timer_stop(&s->tick);
  uv_close((uv_handle_t *)&s->tick, NULL);
  int zero = 0; /* a resend still queued was answered already: do not linger on it */
  zmq_setsockopt(svc_zsock_raw(s->sock), ZMQ_LINGER, &zero, sizeof zero);
  svc_zsock_close(&s->sock);
}

static void on_sign_reply(struct svc_zsock *z, const struct svc_frame *f, size_t n,
                          const char *user_id, void *arg)
{
  struct sign_ctx *s = arg;
  (void)z;
  (void)user_id;
  if (n != 1 || s->done) return;
  struct svc_pballoc al;
  Whistle__Notice__NoticeMessage *m = (Whistle__Notice__NoticeMessage *)svc_pb_unpack(
    &whistle__notice__notice_message__descriptor, &al, REPLY_BUDGET, f[0].data, f[0].len, NULL);
  if (!m) return;
  if (m->body_case == WHISTLE__NOTICE__NOTICE_MESSAGE__BODY_REPLY &&
      (m->request_id ? m->request_id : m->reply->request_id) == s->request_id) {
    if (m->reply->status == WHISTLE__NOTICE__REPLY__STATUS__UNAVAILABLE)
      s->next_us = svc_mono_us() + SVC_US_PER_SEC; /* cannot commit now: again after a pause */
    else
      sign_finish(s, m->reply);
  }
  protobuf_c_message_free_unpacked(&m->base, &al.a);
}

static void sign_send(struct sign_ctx *s, int64_t now)
{
  struct svc_frame fr = { s->msg, s->len };
  svc_zsock_send(s->sock, &fr, 1);
  s->next_us = now + SVC_US_PER_SEC;
}

/* Resends an unanswered Sign every second (escalation answers DUPLICATE to
 * one it applied) and gives up after --timeout-ms. */
static void sign_tick(uv_timer_t *t)
{
  struct sign_ctx *s = t->data;
  int64_t now = svc_mono_us();
  if (s->a->timeout_ms && now - s->first_us >= s->a->timeout_ms * 1000) sign_finish(s, NULL);
  else if (now >= s->next_us) sign_send(s, now);
}

int dept_sign_main(struct dept_args *a)
{
  Whistle__Notice__Sign sg = WHISTLE__NOTICE__SIGN__INIT;
  sg.number = (char *)a->number;
  sg.recipient = (char *)a->unit;
  sg.at_us = a->have_at ? a->at_us : svc_wall_us() / SVC_US_PER_SEC * SVC_US_PER_SEC;
  Whistle__Notice__NoticeMessage m = WHISTLE__NOTICE__NOTICE_MESSAGE__INIT;
  m.version = NOTICE_VERSION;
  m.request_id = (uint64_t)svc_wall_us(); /* distinct across runs */
  m.body_case = WHISTLE__NOTICE__NOTICE_MESSAGE__BODY_SIGN;
  m.sign = &sg;
  struct sign_ctx s = { .a = a, .rc = 1, .request_id = m.request_id };
  s.len = whistle__notice__notice_message__get_packed_size(&m);
  s.msg = malloc(s.len ? s.len : 1);
  if (!s.msg) {
    fprintf(stderr, "whistle-dept: out of memory\n");
    return 1;
  }
  whistle__notice__notice_message__pack(&m, s.msg);
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct svc_zctx *z = dept_zctx_new(&loop, a);
  struct svc_zsock_opts zo = { .type = ZMQ_DEALER, .connect = a->requests,
                               .server_key = a->server_key_file ? a->server_key : NULL };
  if (z) s.sock = svc_zsock_new(z, &loop, &zo, on_sign_reply, &s);
  if (z && !s.sock) fprintf(stderr, "whistle-dept: cannot connect to %s\n", a->requests);
  if (s.sock) {
    uv_timer_init(&loop, &s.tick);
    s.tick.data = &s;
    uv_timer_start(&s.tick, sign_tick, TICK_MS, TICK_MS);
    s.first_us = svc_mono_us();
    sign_send(&s, s.first_us);
    uv_run(&loop, UV_RUN_DEFAULT);
  }
  dept_loop_close(&loop);
  svc_zctx_destroy(&z);
  free(s.msg);
  return s.rc;
}
