/* whistlectl's requests: one DEALER per interface (tl_dealer_new, shared
 * with whistle-hotline), calls matched by request_id with resends and a
 * deadline, paged queries, status requests and the settled signal of
 * proto/control.proto. Envelopes are handled through their descriptors:
 * every request interface's envelope has `version`, `request_id` and a
 * `reply` with `request_id`, `status` (0 the answer, 3 UNAVAILABLE),
 * `reason`, `lines` and `total`. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <zmq.h>

#include "ctl.h"
#include "svc_time.h"
#include "tl_zmq.h"

const char *const ctl_daemon_names[D_N] = { "intake", "referral", "rating", "escalation" };
const char *const ctl_iface_names[D_N] = { "hotline", "units", "requests", "requests" };

static void *g_ctx;

static void *ctx(void)
{
  if (!g_ctx) g_ctx = zmq_ctx_new();
  return g_ctx;
}

const char *ctl_conn_name(const struct ctl_conn *c, char *buf, size_t n)
{
  snprintf(buf, n, "%s (%s %s)", ctl_daemon_names[c->d],
           c->control ? "control" : ctl_iface_names[c->d], c->endpoint);
  return buf;
}

int ctl_conn_open(struct ctl_conn *c, const struct ctl_env *e, enum ctl_daemon d, int control)
{
  memset(c, 0, sizeof *c);
  c->d = d;
  c->control = control;
  c->env = e;
  c->endpoint = control ? e->control[d] : e->request[d];
  if (!ctx()) {
    fprintf(stderr, CTL_PROG ": cannot create a ZeroMQ context\n");
    return -1;
  }
  const char *skey = e->server_key[d], *ckey = e->client_key;
  if (!skey) ckey = NULL; /* a daemon without a key given: plain */
  c->sock = tl_dealer_new(ctx(), CTL_PROG, c->endpoint, skey, ckey, 0);
  return c->sock ? 0 : -1;
}

void ctl_conn_close(struct ctl_conn *c)
{
  if (c->sock) zmq_close(c->sock);
  c->sock = NULL;
}

/* ---- envelopes through their descriptors ----------------------------------------- */

static const ProtobufCFieldDescriptor *field(const ProtobufCMessageDescriptor *d, const char *name)
{
  return protobuf_c_message_descriptor_get_field_by_name(d, name);
}

#define AT(m, f, T) ((T *)((char *)(m) + (f)->offset))

/* The envelope's reply, or NULL when its body is something else. */
static const ProtobufCMessage *reply_of(const ProtobufCMessage *m)
{
  const ProtobufCFieldDescriptor *f = field(m->descriptor, "reply");
  if (!f) f = field(m->descriptor, "status_reply");
  if (!f || f->type != PROTOBUF_C_TYPE_MESSAGE) return NULL;
  if ((f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF) &&
      *(uint32_t *)((char *)m + f->quantifier_offset) != f->id)
    return NULL;
  return *AT(m, f, ProtobufCMessage *);
}

static uint64_t u64_of(const ProtobufCMessage *m, const char *name)
{
  const ProtobufCFieldDescriptor *f = m ? field(m->descriptor, name) : NULL;
  if (!f) return 0;
  switch (f->type) {
  case PROTOBUF_C_TYPE_UINT64: return *AT(m, f, uint64_t);
  case PROTOBUF_C_TYPE_UINT32: case PROTOBUF_C_TYPE_ENUM: return *AT(m, f, uint32_t);
  case PROTOBUF_C_TYPE_BOOL: return (uint64_t)*AT(m, f, protobuf_c_boolean);
  default: return 0;
  }
}

static const char *str_of(const ProtobufCMessage *m, const char *name)
{
  const ProtobufCFieldDescriptor *f = m ? field(m->descriptor, name) : NULL;
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED) return "";
  const char *s = *AT(m, f, char *);
  return s ? s : "";
}

static void set_u64(ProtobufCMessage *m, const char *name, uint64_t v)
{
  const ProtobufCFieldDescriptor *f = field(m->descriptor, name);
  if (!f) return;
  if (f->type == PROTOBUF_C_TYPE_UINT64) *AT(m, f, uint64_t) = v;
  else if (f->type == PROTOBUF_C_TYPE_UINT32) *AT(m, f, uint32_t) = (uint32_t)v;
}

static int64_t remaining_ms(int64_t until, int64_t now)
{
  return until <= now ? 0 : (until - now + 999) / 1000;
}

ProtobufCMessage *ctl_call(struct ctl_conn *c, ProtobufCMessage *req, int64_t timeout_us, int quiet)
{
  uint64_t id = ++c->next_id;
  set_u64(req, "version", 1);
  set_u64(req, "request_id", id);
  size_t len = protobuf_c_message_get_packed_size(req);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return NULL;
  protobuf_c_message_pack(req, buf);
  int64_t now = svc_mono_us(), deadline = now + timeout_us, resend = now + SVC_US_PER_SEC;
  zmq_send(c->sock, buf, len, ZMQ_DONTWAIT);
  unsigned unavailable = 0;
  ProtobufCMessage *out = NULL;
  while (!out) {
    now = svc_mono_us();
    if (now >= deadline) break;
    if (now >= resend) {
      zmq_send(c->sock, buf, len, ZMQ_DONTWAIT);
      resend = now + SVC_US_PER_SEC;
    }
    zmq_pollitem_t it = { .socket = c->sock, .events = ZMQ_POLLIN };
    int64_t until = resend < deadline ? resend : deadline;
    int rc = zmq_poll(&it, 1, (long)remaining_ms(until, now));
    if (rc < 0 && zmq_errno() == EINTR) break;
    if (rc <= 0) continue;
    zmq_msg_t msg;
    zmq_msg_init(&msg);
    while (!out && zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) >= 0) {
      if (zmq_msg_more(&msg)) continue; /* replies are one frame */
      ProtobufCMessage *m = protobuf_c_message_unpack(req->descriptor, NULL, zmq_msg_size(&msg),
                                                      zmq_msg_data(&msg));
      if (!m) continue;
      const ProtobufCMessage *r = reply_of(m);
      if (r && (u64_of(m, "request_id") == id || u64_of(r, "request_id") == id)) {
        if (u64_of(r, "status") == 3) { /* UNAVAILABLE: send again shortly */
          unavailable++;
          resend = svc_mono_us() + 200000;
        } else {
          out = m;
          break;
        }
      }
      protobuf_c_message_free_unpacked(m, NULL);
    }
    zmq_msg_close(&msg);
  }
  free(buf);
  if (!out && !quiet) {
    char name[512];
    fprintf(stderr, CTL_PROG ": %s did not answer within %.1f s%s\n", ctl_conn_name(c, name, sizeof name),
            (double)timeout_us / 1e6,
            unavailable ? " (it answered UNAVAILABLE: cannot commit now)"
            : !c->env->server_key[c->d] ? " (not running, or with CURVE on: give its public key and a "
                                          "client key, --server-key/--client-key)" : "");
  }
  return out;
}

uint8_t *ctl_pack(struct ctl_conn *c, ProtobufCMessage *req, size_t *len, uint64_t *id)
{
  *id = ++c->next_id;
  set_u64(req, "version", 1);
  set_u64(req, "request_id", *id);
  *len = protobuf_c_message_get_packed_size(req);
  uint8_t *buf = malloc(*len ? *len : 1);
  if (buf) protobuf_c_message_pack(req, buf);
  return buf;
}

ProtobufCMessage *ctl_unpack_reply(const ProtobufCMessageDescriptor *d, const void *data, size_t len,
                                   uint64_t *id, int *unavailable)
{
  ProtobufCMessage *m = protobuf_c_message_unpack(d, NULL, len, data);
  if (!m) return NULL;
  const ProtobufCMessage *r = reply_of(m);
  if (!r) {
    protobuf_c_message_free_unpacked(m, NULL);
    return NULL;
  }
  *id = u64_of(r, "request_id") ? u64_of(r, "request_id") : u64_of(m, "request_id");
  *unavailable = u64_of(r, "status") == 3;
  return m;
}

int ctl_conn_reopen(struct ctl_conn *c)
{
  const struct ctl_env *e = c->env;
  enum ctl_daemon d = c->d;
  int control = c->control;
  ctl_conn_close(c);
  return ctl_conn_open(c, e, d, control);
}

static size_t status_request(uint8_t *buf)
{
  Whistle__Control__StatusRequest sr = WHISTLE__CONTROL__STATUS_REQUEST__INIT;
  Whistle__Control__ControlMessage m = WHISTLE__CONTROL__CONTROL_MESSAGE__INIT;
  m.version = 1;
  m.body_case = WHISTLE__CONTROL__CONTROL_MESSAGE__BODY_STATUS_REQUEST;
  m.status_request = &sr;
  return whistle__control__control_message__pack(&m, buf);
}

int ctl_status_send(struct ctl_conn *c)
{
  uint8_t buf[64];
  size_t len = status_request(buf);
  if (!c->sock && ctl_conn_reopen(c)) return -1;
  return zmq_send(c->sock, buf, len, ZMQ_DONTWAIT) < 0 ? -1 : 0;
}

Whistle__Control__ControlMessage *ctl_status_take(struct ctl_conn *c)
{
  Whistle__Control__ControlMessage *r = NULL;
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  while (!r && c->sock && zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) >= 0) {
    if (zmq_msg_more(&msg)) continue;
    r = whistle__control__control_message__unpack(NULL, zmq_msg_size(&msg), zmq_msg_data(&msg));
    if (r && r->body_case != WHISTLE__CONTROL__CONTROL_MESSAGE__BODY_STATUS_REPLY) {
      whistle__control__control_message__free_unpacked(r, NULL);
      r = NULL;
    }
  }
  zmq_msg_close(&msg);
  return r;
}

/* One status request on each of the n connections at once: the requests all
 * go out before any answer is read, so it costs the slowest answer rather
 * than the sum. Each is sent again every half second: a request made while
 * the daemon restarts (no connection to queue it on) is dropped by ZeroMQ.
 * Any answer describes the daemon after the call began; the answers to the
 * other sends must not be taken for a later call's (a stale status could say
 * "settled"), so a socket that sent more than once, or got no answer, is
 * replaced. out[i] for each; returns -1 when all answered, else the first i
 * that did not within timeout_us (the others' answers are still in out). */
static int status_all(struct ctl_conn *const *cs, size_t n, int64_t timeout_us,
                      Whistle__Control__ControlMessage **out)
{
  unsigned sends[D_N] = { 0 }, pending = 0;
  int64_t resend[D_N] = { 0 };
  int64_t deadline = svc_mono_us() + timeout_us;
  for (size_t i = 0; i < n && i < D_N; i++) {
    out[i] = NULL;
    if (!cs[i]->sock && ctl_conn_reopen(cs[i])) return (int)i;
    pending |= 1u << i;
  }
  while (pending) {
    int64_t now = svc_mono_us(), until = deadline;
    zmq_pollitem_t it[D_N];
    int who[D_N], ni = 0;
    for (size_t i = 0; i < n; i++) {
      if (!(pending & (1u << i))) continue;
      if (now >= resend[i]) {
        ctl_status_send(cs[i]);
        sends[i]++;
        resend[i] = now + 500000;
      }
      if (resend[i] < until) until = resend[i];
      it[ni] = (zmq_pollitem_t){ .socket = cs[i]->sock, .events = ZMQ_POLLIN };
      who[ni++] = (int)i;
    }
    int rc = now < deadline ? zmq_poll(it, ni, (long)remaining_ms(until, now)) : 0;
    if (rc < 0 && zmq_errno() == EINTR) rc = 0;
    if (rc <= 0 && svc_mono_us() >= deadline) break;
    for (int k = 0; k < ni && rc > 0; k++) {
      int i = who[k];
      if (!(it[k].revents & ZMQ_POLLIN) || !(out[i] = ctl_status_take(cs[i]))) continue;
      pending &= ~(1u << i);
      if (sends[i] > 1 && ctl_conn_reopen(cs[i])) return i;
    }
  }
  int first = -1;
  for (size_t i = 0; i < n; i++)
    if (pending & (1u << i)) {
      ctl_conn_reopen(cs[i]); /* a late answer must not be taken for the next request's */
      if (first < 0) first = (int)i;
    }
  return first;
}

Whistle__Control__ControlMessage *ctl_status(struct ctl_conn *c, int64_t timeout_us)
{
  Whistle__Control__ControlMessage *r = NULL;
  if (status_all(&c, 1, timeout_us, &r) < 0) return r;
  if (r) whistle__control__control_message__free_unpacked(r, NULL);
  return NULL;
}

/* ---- paged queries ------------------------------------------------------------- */

void ctl_lines_free(char **lines, size_t n)
{
  for (size_t i = 0; i < n; i++) free(lines[i]);
  free(lines);
}

int ctl_query_lines(struct ctl_conn *c, ctl_page_fn make, void *arg, char ***lines, size_t *n)
{
  char **v = NULL;
  size_t nv = 0, cap = 0;
  uint32_t offset = 0;
  char name[512];
  for (;;) {
    ProtobufCMessage *m = ctl_call(c, make(arg, offset), c->env->timeout_us, 0);
    if (!m) goto fail;
    const ProtobufCMessage *r = reply_of(m);
    if (u64_of(r, "status") != 0) {
      const char *code = "";
      const ProtobufCFieldDescriptor *fc = field(r->descriptor, "code");
      if (fc && fc->type == PROTOBUF_C_TYPE_ENUM) {
        const ProtobufCEnumValue *ev = protobuf_c_enum_descriptor_get_value(
          fc->descriptor, (int)*AT(r, fc, uint32_t));
        if (ev && ev->value) code = ev->name;
      }
      fprintf(stderr, CTL_PROG ": %s refused the query: %s%s%s\n", ctl_conn_name(c, name, sizeof name),
              code, code[0] ? ": " : "", str_of(r, "reason")[0] ? str_of(r, "reason") : "(no reason)");
      protobuf_c_message_free_unpacked(m, NULL);
      goto fail;
    }
    if (u64_of(r, "pending")) {
      protobuf_c_message_free_unpacked(m, NULL);
      ctl_lines_free(v, nv);
      return 1;
    }
    const ProtobufCFieldDescriptor *fl = field(r->descriptor, "lines");
    size_t got = *(size_t *)((char *)r + fl->quantifier_offset);
    char **src = *AT(r, fl, char **);
    uint64_t total = u64_of(r, "total");
    for (size_t i = 0; i < got; i++) {
      if (nv == cap) {
        size_t nc = cap ? cap * 2 : 256;
        char **nvv = realloc(v, nc * sizeof *v);
        if (!nvv) break;
        v = nvv;
        cap = nc;
      }
      if (!(v[nv] = strdup(src[i]))) break;
      nv++;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    if (nv < offset + got) {
      fprintf(stderr, CTL_PROG ": out of memory\n");
      goto fail;
    }
    offset += (uint32_t)got;
    if (!got || offset >= total) break;
  }
  *lines = v;
  *n = nv;
  return 0;
fail:
  ctl_lines_free(v, nv);
  return -1;
}

/* ---- the settled signal -------------------------------------------------------- */

int ctl_settle_open(struct ctl_settle *s, const struct ctl_env *e)
{
  memset(s, 0, sizeof *s);
  for (int d = 0; d < D_N; d++)
    if (ctl_conn_open(&s->ctl[d], e, (enum ctl_daemon)d, 1)) {
      ctl_settle_close(s);
      return -1;
    }
  return 0;
}

void ctl_settle_close(struct ctl_settle *s)
{
  for (int d = 0; d < D_N; d++) {
    ctl_conn_close(&s->ctl[d]);
    if (s->last[d]) whistle__control__control_message__free_unpacked(s->last[d], NULL);
    s->last[d] = NULL;
  }
}

const char *ctl_time(int64_t us, char *buf, size_t n)
{
  if (svc_time_format(us, SVC_DEFAULT_UTC_OFFSET, buf, n) < 0) snprintf(buf, n, "%lld", (long long)us);
  return buf;
}

int ctl_settle_pass(struct ctl_settle *s, int64_t timeout_us, char *why, size_t n)
{
  struct { const char *name; uint64_t head; } heads[D_N];
  size_t nh = 0;
  int settled = 1;
  s->passes++;
  why[0] = 0;
  for (int d = 0; d < D_N; d++) {
    if (s->last[d]) whistle__control__control_message__free_unpacked(s->last[d], NULL);
    s->last[d] = NULL;
  }
  /* All at once: a position read at any time after the pass began that
   * reaches a head read at any time after it began says the consumer has
   * applied everything the producer published before the pass. */
  struct ctl_conn *ask[D_N];
  Whistle__Control__ControlMessage *got[D_N];
  int who[D_N];
  size_t n_ask = 0;
  for (int d = 0; d < D_N; d++)
    if (!s->mask || (s->mask & (1u << d))) {
      ask[n_ask] = &s->ctl[d];
      who[n_ask++] = d;
    }
  int i_silent = status_all(ask, n_ask, timeout_us, got);
  for (size_t k = 0; k < n_ask; k++) s->last[who[k]] = got[k];
  int silent = i_silent < 0 ? -1 : who[i_silent];
  if (silent >= 0) {
    snprintf(why, n, "%s did not answer on its control endpoint %s within %.1f s",
             ctl_daemon_names[silent], s->ctl[silent].endpoint, (double)timeout_us / 1e6);
    return -1;
  }
  for (int d = 0; d < D_N; d++) {
    if (!s->last[d]) continue;
    const Whistle__Control__StatusReply *r = s->last[d]->status_reply;
    if (!r->output && !r->n_inputs) {
      snprintf(why, n, "%s (control %s) does not report the settled signal (StatusReply.output and "
                       "inputs, proto/control.proto): it is older than this whistlectl",
               ctl_daemon_names[d], s->ctl[d].endpoint);
      return -1;
    }
    int64_t clock_min = INT64_MAX;
    for (size_t i = 0; i < r->n_inputs; i++) {
      const Whistle__Control__InputPosition *in = r->inputs[i];
      if (in->clock && in->watermark_us < clock_min) clock_min = in->watermark_us;
      for (size_t k = 0; k < nh; k++)
        if (settled && strcmp(heads[k].name, in->input) == 0 && in->position < heads[k].head) {
          settled = 0;
          snprintf(why, n, "%s has applied %s's stream up to %llu of %llu", ctl_daemon_names[d],
                   in->input, (unsigned long long)in->position, (unsigned long long)heads[k].head);
        }
    }
    if (settled && clock_min != INT64_MAX && (!r->output || r->output->watermark_us < clock_min)) {
      char a[48], b[48];
      settled = 0;
      snprintf(why, n, "%s's watermark %s is behind its inputs' %s (time-driven work pending)",
               ctl_daemon_names[d], r->output ? ctl_time(r->output->watermark_us, a, sizeof a) : "none",
               ctl_time(clock_min, b, sizeof b));
    }
    if (r->output && nh < D_N) {
      heads[nh].name = r->output->stream;
      heads[nh++].head = r->output->head;
    }
  }
  /* The inputs whose producer comes later in the order (intake's reading of
   * referral's closures), when asked for. */
  for (int d = 0; d < D_N && settled && s->back; d++) {
    const Whistle__Control__StatusReply *r = s->last[d] ? s->last[d]->status_reply : NULL;
    for (size_t i = 0; r && i < r->n_inputs && settled; i++)
      for (size_t k = 0; k < nh; k++)
        if (strcmp(heads[k].name, r->inputs[i]->input) == 0 && r->inputs[i]->position < heads[k].head) {
          settled = 0;
          snprintf(why, n, "%s has applied %s's stream up to %llu of %llu", ctl_daemon_names[d],
                   r->inputs[i]->input, (unsigned long long)r->inputs[i]->position,
                   (unsigned long long)heads[k].head);
          break;
        }
  }
  return settled;
}

int ctl_settle_wait(struct ctl_settle *s, int64_t deadline_us)
{
  char why[512];
  int64_t t0 = svc_mono_us(), pause_us = 100;
  for (;;) {
    int64_t now = svc_mono_us();
    /* A pass gets the request timeout, at least a tenth of a second even
     * when the deadline is nearer (a silent daemon is told apart from a slow one). */
    int64_t left = deadline_us > now ? deadline_us - now : 0, floor_us = SVC_US_PER_SEC / 10;
    if (left < floor_us) left = floor_us;
    int rc = ctl_settle_pass(s, left < s->ctl[0].env->timeout_us ? left : s->ctl[0].env->timeout_us,
                             why, sizeof why);
    if (rc == 1) break;
    if (rc < 0) {
      fprintf(stderr, CTL_PROG ": %s\n", why);
      return -1;
    }
    now = svc_mono_us();
    if (now >= deadline_us) {
      fprintf(stderr, CTL_PROG ": the daemons did not settle within %.1f s: %s\n",
              (double)(now - t0) / 1e6, why);
      return -1;
    }
    /* Poll again soon: the condition is observed, never assumed after a pause.
     * (Polling without pauses slows the daemons down more than it gains.) */
    struct timespec ts = { 0, (long)pause_us * 1000 };
    nanosleep(&ts, NULL);
    if (pause_us < 1000) pause_us *= 2;
  }
  s->waits++;
  s->wait_us += svc_mono_us() - t0;
  return 0;
}
