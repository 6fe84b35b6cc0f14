/* The request interface of whistle-escalation (proto/notice.proto):
 * signatures (签收: only the recipient, once; R-E6) and the ops queries,
 * answered as JSON lines in the export shape (docs/exports.md) or, for a
 * trace, one object from the notice to its trigger, steps and tickets. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "escalation.h"
#include "notice.pb-c.h"
#include "svc_alloc.h"
#include "svc_lines.h"
#include "svc_log.h"
#include "svc_pg.h"
#include "svc_server.h"
#include "svc_stream.h"
#include "svc_zmq.h"

typedef Whistle__Notice__Reply__Status status_t;
#define ST_APPLIED WHISTLE__NOTICE__REPLY__STATUS__APPLIED
#define ST_DUPLICATE WHISTLE__NOTICE__REPLY__STATUS__DUPLICATE
#define ST_REFUSED WHISTLE__NOTICE__REPLY__STATUS__REFUSED
#define ST_UNAVAILABLE WHISTLE__NOTICE__REPLY__STATUS__UNAVAILABLE
#define PAGE_MAX 5000
#define AT_MIN_US INT64_C(946656000000000)   /* 2000-01-01 */
#define AT_MAX_US INT64_C(4102416000000000)  /* 2100-01-01 */

struct nreq {
  struct esc_ctx *x;
  uint64_t request_id;
  int query;
  enum esc_query what;
  char number[96], recipient[ESC_CODE_MAX];
  int64_t at_us;
  uint32_t offset, limit;
  status_t status;
  char why[200];
  int64_t signed_us;
  struct svc_lines lines;
};

static void send_reply(struct svc_req *req, const struct nreq *r)
{
  Whistle__Notice__Reply rep = WHISTLE__NOTICE__REPLY__INIT;
  rep.request_id = r->request_id;
  rep.status = r->status;
  rep.reason = (char *)r->why;
  rep.total = (uint32_t)r->lines.n;
  rep.signed_us = r->signed_us;
  svc_lines_page(&r->lines, r->offset, r->limit, PAGE_MAX, &rep.lines, &rep.n_lines);
  Whistle__Notice__NoticeMessage m = WHISTLE__NOTICE__NOTICE_MESSAGE__INIT;
  m.version = 1;
  m.request_id = r->request_id;
  m.body_case = WHISTLE__NOTICE__NOTICE_MESSAGE__BODY_REPLY;
  m.reply = &rep;
  svc_req_reply_msg(req, &m.base);
}

static int refuse(struct nreq *r, const char *why)
{
  r->status = ST_REFUSED;
  snprintf(r->why, sizeof r->why, "%s", why);
  return 1;
}

static int decode_sign(struct nreq *r, const struct svc_req *req, const Whistle__Notice__Sign *m)
{
  size_t n = strlen(m->number);
  if (n == 0 || n >= sizeof r->number) return refuse(r, "number: required, e.g. 督办〔2026〕7号");
  if (m->at_us < AT_MIN_US || m->at_us >= AT_MAX_US) return refuse(r, "at_us: required, between 2000 and 2100");
  if (r->x->curve) {
    if (m->recipient[0] && strcmp(m->recipient, req->user_id) != 0)
      return refuse(r, "recipient does not match your authenticated identity");
    snprintf(r->recipient, sizeof r->recipient, "%.*s", (int)sizeof r->recipient - 1, req->user_id);
  } else {
    if (!svc_identity_valid(m->recipient, strlen(m->recipient)))
      return refuse(r, "recipient: required (your code)");
    snprintf(r->recipient, sizeof r->recipient, "%s", m->recipient);
  }
  snprintf(r->number, sizeof r->number, "%s", m->number);
  r->at_us = m->at_us;
  return 0;
}

/* Queries read every recipient's notices: with CURVE on, only the ops
 * identities (WHISTLE_ESCALATION_OPS) may ask. */
static int decode_query(struct nreq *r, const struct svc_req *req, const Whistle__Notice__Query *m)
{
  if (r->x->curve && !svc_identity_listed(r->x->ops, req->user_id))
    return refuse(r, "queries are for ops tools; recipients read their own notices on the stream");
  r->query = 1;
  r->offset = m->offset;
  r->limit = m->limit;
  switch (m->what) {
  case WHISTLE__NOTICE__QUERY__WHAT__NOTICES: r->what = EQ_NOTICES; return 0;
  case WHISTLE__NOTICE__QUERY__WHAT__UNSIGNED: r->what = EQ_UNSIGNED; return 0;
  case WHISTLE__NOTICE__QUERY__WHAT__TRACE:
    r->what = EQ_TRACE;
    if (!m->number[0] || strlen(m->number) >= sizeof r->number) return refuse(r, "number: required for a trace");
    snprintf(r->number, sizeof r->number, "%s", m->number);
    return 0;
  default: return refuse(r, "what: NOTICES, TRACE or UNSIGNED");
  }
}

static int on_decode(void *arg, struct svc_req *req, const uint8_t *frame, size_t len)
{
  struct nreq *r = calloc(1, sizeof *r);
  if (!r) return -1;
  req->data = r;
  r->x = arg;
  struct svc_pballoc al;
  int bad_strings, rc;
  Whistle__Notice__NoticeMessage *m = (Whistle__Notice__NoticeMessage *)svc_pb_unpack(
    &whistle__notice__notice_message__descriptor, &al, 64 * 1024 + len, frame, len, &bad_strings);
  if (!m) {
    uint64_t id = 0;
    if (svc_pb_peek_varint(frame, len, 2, &id) == 0) r->request_id = id;
    rc = refuse(r, "not a NoticeMessage");
  } else if ((r->request_id = m->request_id), bad_strings)
    rc = refuse(r, "text fields must be valid UTF-8 without NUL characters");
  else if (m->version != 1) rc = refuse(r, "unsupported version (expected 1)");
  else if (m->body_case == WHISTLE__NOTICE__NOTICE_MESSAGE__BODY_SIGN) rc = decode_sign(r, req, m->sign);
  else if (m->body_case == WHISTLE__NOTICE__NOTICE_MESSAGE__BODY_QUERY) rc = decode_query(r, req, m->query);
  else rc = refuse(r, "expected a sign or a query");
  if (m) protobuf_c_message_free_unpacked(&m->base, &al.a);
  if (rc == 1) {
    svc_server_count_rejected(req->srv);
    send_reply(req, r);
  }
  return rc;
}

/* ---- results -------------------------------------------------------------------- */

static json_t *arr(const char *json_text)
{
  json_t *a = json_text ? json_loads(json_text, 0, NULL) : NULL;
  return a ? a : json_array();
}

static json_t *when(const struct nreq *r, const char *us)
{
  char at[40];
  if (!us) return json_null();
  svc_time_format(strtoll(us, NULL, 10), r->x->off_s, at, sizeof at);
  return json_string(at);
}

static void on_row(void *arg, int n, const char *const *v)
{
  struct nreq *r = arg;
  if (r->what != EQ_TRACE) {
    if (n < 12) return;
    svc_lines_add(&r->lines, json_pack("{s:s,s:s,s:s,s:o,s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o}", "number", v[0],
                          "type", v[1], "recipient", v[2], "cc", arr(v[3]), "rule", v[4],
                          "rule_set", v[5], "period", v[6], "key", v[7], "event_at", when(r, v[8]),
                          "evidence", arr(v[9]), "measures", arr(v[10]), "signed_at", when(r, v[11])));
    return;
  }
  if (n < 13) return;
  /* notice -> trigger -> steps -> tickets (R-E5) */
  json_t *ev = arr(v[8]), *steps = json_array(), *tickets = json_array(), *other = json_array();
  for (size_t i = 0; i < json_array_size(ev); i++) {
    const char *e = json_string_value(json_array_get(ev, i));
    const char *hash = e ? strchr(e, '#') : NULL;
    if (!e) continue;
    if (hash) {
      json_array_append_new(steps, json_string(e));
      char t[ESC_CODE_MAX];
      snprintf(t, sizeof t, "%.*s", (int)(hash - e), e);
      int seen = 0;
      for (size_t k = 0; k < json_array_size(tickets); k++)
        seen |= !strcmp(json_string_value(json_array_get(tickets, k)), t);
      if (!seen) json_array_append_new(tickets, json_string(t));
    } else if (strncmp(e, "inspection:", 11) == 0 || strncmp(e, "R-", 2) == 0) {
      json_array_append_new(other, json_string(e));
    } else {
      int seen = 0;
      for (size_t k = 0; k < json_array_size(tickets); k++)
        seen |= !strcmp(json_string_value(json_array_get(tickets, k)), e);
      if (!seen) json_array_append_new(tickets, json_string(e));
    }
  }
  json_decref(ev);
  svc_lines_add(&r->lines, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o,s:o,s:o,s:o,s:s,s:o,s:I}", "number", v[0],
                        "type", v[1], "key", v[2], "source", v[3], "recipient", v[4], "rule", v[5],
                        "period", v[6], "event_at", when(r, v[7]), "steps", steps, "tickets", tickets,
                        "other", other, "measures", arr(v[9]), "text", v[10],
                        "signed_at", when(r, v[11]), "k", (json_int_t)strtoll(v[12], NULL, 10)));
}

static void on_signed(void *arg, int n, const char *const *v)
{
  struct nreq *r = arg;
  if (n < 3 || !v[0]) return;
  r->signed_us = v[1] ? strtoll(v[1], NULL, 10) : 0;
  if (!strcmp(v[0], "signed")) r->status = ST_APPLIED;
  else if (!strcmp(v[0], "already")) r->status = ST_DUPLICATE;
  else if (!strcmp(v[0], "wrong_recipient")) refuse(r, "number: not addressed to you");
  else refuse(r, "number: no such notice");
}

static void clear(struct nreq *r)
{
  svc_lines_clear(&r->lines);
}

static int on_stage(void *arg, struct svc_req *req, struct svc_pg_batch *b)
{
  struct esc_ctx *x = arg;
  struct nreq *r = req->data;
  clear(r);
  r->status = ST_APPLIED;
  r->why[0] = 0;
  if (r->query) return esc_store_query(x->store, b, r->what, r->number, on_row, r);
  return esc_store_sign(x->store, b, r->number, r->recipient, r->at_us, on_signed, r);
}

/* A signature is confirmed on the stream to the recipient (notice.signed). */
static int on_stage_next(void *arg, struct svc_req *req, struct svc_pg_batch *b, int n)
{
  struct esc_ctx *x = arg;
  struct nreq *r = req->data;
  if (n != 2 || r->query || r->status != ST_APPLIED) return 0;
  Whistle__Notice__Notice m = WHISTLE__NOTICE__NOTICE__INIT;
  m.number = r->number;
  m.recipient = r->recipient;
  m.signed_us = r->signed_us;
  return svc_stream_append_msg(x->prod, b, r->at_us, "notice.signed", r->recipient, &m.base) ? -1 : 0;
}

static void on_committed(void *arg, struct svc_req *req)
{
  struct esc_ctx *x = arg;
  struct nreq *r = req->data;
  if (r->lines.oom) {
    clear(r);
    r->status = ST_UNAVAILABLE;
    snprintf(r->why, sizeof r->why, "out of memory: ask again");
  }
  if (r->query && r->what == EQ_TRACE && !r->lines.n && r->status == ST_APPLIED)
    refuse(r, "number: no such notice");
  if (r->query) x->n.queries++;
  else if (r->status == ST_APPLIED) x->n.signed_++;
  send_reply(req, r);
}

static void on_failed(void *arg, struct svc_req *req, const char *why)
{
  struct nreq *r = req->data;
  (void)arg;
  clear(r);
  r->status = ST_UNAVAILABLE;
  snprintf(r->why, sizeof r->why, "cannot commit: %s", why);
  send_reply(req, r);
}

static void on_release(void *arg, struct svc_req *req)
{
  struct nreq *r = req->data;
  (void)arg;
  if (!r) return;
  clear(r);
  free(r);
  req->data = NULL;
}

const struct svc_server_ops esc_request_ops = {
  .decode = on_decode, .stage = on_stage, .stage_next = on_stage_next, .committed = on_committed,
  .failed = on_failed, .release = on_release,
};
