/* The unit interface of whistle-referral (proto/unit.proto): decodes and
 * checks each UnitMessage, loads the ticket in the batch's first stage,
 * applies the update or re-dispatch in the second (R-R2..R-R4), stages the
 * ticket's save and its stream events, and replies once committed. The
 * acting unit is the authenticated identity when CURVE is on (R-R5). The
 * ops queries read in the second stage, after the saves of the requests
 * before them in the batch, and are answered as JSON lines
 * (referral_queries.c): only by the ops identities when CURVE is on. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "referral.h"
#include "svc_alloc.h"
#include "svc_csv.h"
#include "svc_lines.h"
#include "svc_log.h"
#include "svc_pg.h"
#include "svc_server.h"
#include "svc_zmq.h"
#include "unit.pb-c.h"

typedef Whistle__Unit__Reply__Status status_t;
typedef Whistle__Unit__Reply__Code code_t;
#define ST_APPLIED WHISTLE__UNIT__REPLY__STATUS__APPLIED
#define ST_DUPLICATE WHISTLE__UNIT__REPLY__STATUS__DUPLICATE
#define ST_REFUSED WHISTLE__UNIT__REPLY__STATUS__REFUSED
#define ST_UNAVAILABLE WHISTLE__UNIT__REPLY__STATUS__UNAVAILABLE
#define TICKET_NO_MAX 64
#define PAGE_MAX 5000 /* lines per reply (limit 0: up to this) */

struct ureq {
  int redispatch;
  /* Query. */
  int query;
  Whistle__Unit__Query__What what;
  uint32_t offset, limit, total;
  struct svc_lines lines;
  uint64_t request_id;
  char ticket_no[REFERRAL_CODE_MAX], unit[REFERRAL_CODE_MAX], prohibition[4];
  uint32_t step;
  int64_t at_us;
  enum referral_action action;
  int violation;
  char *note, *reason;
  char **evidence; size_t n_evidence;
  /* Results. */
  struct referral_loader loader;
  struct referral_loaded loaded;
  status_t status;
  code_t code;
  char why[200];
  char step_state[16], ticket_state[16];
  int late;
  uint32_t next_step;
};

static void send_reply(struct svc_req *req, const struct ureq *r)
{
  Whistle__Unit__Reply rep = WHISTLE__UNIT__REPLY__INIT;
  rep.request_id = r->request_id;
  rep.status = r->status;
  rep.code = r->code;
  rep.reason = (char *)r->why;
  rep.step_state = (char *)r->step_state;
  rep.ticket_state = (char *)r->ticket_state;
  rep.late = r->late;
  rep.next_step = r->next_step;
  if (r->query && r->status == ST_APPLIED) {
    /* TICKETS reads its page only (offset and limit in SQL); the others read all. */
    int paged = r->what == WHISTLE__UNIT__QUERY__WHAT__TICKETS;
    rep.total = paged ? r->total : (uint32_t)r->lines.n;
    svc_lines_page(&r->lines, paged ? 0 : r->offset, paged ? 0 : r->limit, PAGE_MAX, &rep.lines,
                   &rep.n_lines);
  }
  Whistle__Unit__UnitMessage m = WHISTLE__UNIT__UNIT_MESSAGE__INIT;
  m.version = 1;
  m.request_id = r->request_id;
  m.body_case = WHISTLE__UNIT__UNIT_MESSAGE__BODY_REPLY;
  m.reply = &rep;
  svc_req_reply_msg(req, &m.base);
}

static int refuse(struct ureq *r, code_t code, const char *why)
{
  r->status = ST_REFUSED;
  r->code = code;
  snprintf(r->why, sizeof r->why, "%s", why);
  return 1;
}
#define BAD(r, why) refuse(r, WHISTLE__UNIT__REPLY__CODE__BAD_REQUEST, why)

/* ---- decoding ---------------------------------------------------------------- */

static int ticket_no_ok(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > TICKET_NO_MAX) return 0;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
          *s == '-' || *s == '_'))
      return 0;
  return 1;
}

/* lo..hi characters; a required one (lo > 0) not only white space (R-I8). */
static int chars_ok(const char *s, size_t lo, size_t hi)
{
  size_t n = svc_utf8_len(s, strlen(s));
  return n >= lo && n <= hi && (lo == 0 || !svc_utf8_blank(s, strlen(s)));
}

/* R-T3: in wall mode nothing is stamped more than a day past the system clock. */
static int time_ok(const struct referral_ctx *x, int64_t at_us)
{
  return x->clock.mode != SVC_CLOCK_WALL || at_us <= svc_clock_input_bound(&x->clock);
}

static int prohibition_ok(const char *p)
{
  return p[0] == 'P' && p[1] >= '1' && p[1] <= '9' && p[2] == 0;
}

/* The acting unit: the authenticated identity, or (development mode) the
 * unit the message names. 0, or 1 after refusing. */
static int acting_unit(const struct referral_ctx *x, struct ureq *r, const struct svc_req *req,
                       const char *claimed)
{
  if (x->curve) {
    if (claimed[0] && strcmp(claimed, req->user_id) != 0) {
      if (!svc_identity_listed(x->act_as, req->user_id))
        return refuse(r, WHISTLE__UNIT__REPLY__CODE__FORBIDDEN,
                      "unit does not match your authenticated identity");
      if (!svc_identity_valid(claimed, strlen(claimed))) return BAD(r, "unit: not a unit code");
      snprintf(r->unit, sizeof r->unit, "%s", claimed); /* a scenario replay acting for the unit */
      return 0;
    }
    snprintf(r->unit, sizeof r->unit, "%.*s", (int)sizeof r->unit - 1, req->user_id);
    return 0;
  }
  if (!svc_identity_valid(claimed, strlen(claimed))) return BAD(r, "unit: required (a unit code)");
  snprintf(r->unit, sizeof r->unit, "%s", claimed);
  return 0;
}

static int decode_update(const struct referral_ctx *x, struct ureq *r, const struct svc_req *req,
                         const Whistle__Unit__StepUpdate *m)
{
  if (!ticket_no_ok(m->ticket_no)) return BAD(r, "ticket_no: 1-64 of A-Z a-z 0-9 - _");
  if (m->step < 1) return BAD(r, "step: required (1, 2, ...)");
  if (m->at_us < REFERRAL_AT_MIN_US || m->at_us >= REFERRAL_AT_MAX_US)
    return BAD(r, "at_us: required, between 2000 and 2100");
  if (!time_ok(x, m->at_us)) return BAD(r, "at_us: more than 1 day past the system clock");
  if (m->action < 1 || m->action > 4) return BAD(r, "action: ACCEPT, RETURN, PROGRESS or RESOLVE");
  if (m->action == WHISTLE__UNIT__STEP_UPDATE__ACTION__RETURN && !chars_ok(m->reason, 1, REFERRAL_REASON_MAX))
    return BAD(r, "reason: 1-500 characters required to return a step");
  if (m->action == WHISTLE__UNIT__STEP_UPDATE__ACTION__PROGRESS && !chars_ok(m->note, 1, REFERRAL_TEXT_MAX))
    return BAD(r, "note: 1-2000 characters required for progress");
  if (!chars_ok(m->note, 0, REFERRAL_TEXT_MAX)) return BAD(r, "note: at most 2000 characters");
  if (!chars_ok(m->reason, 0, REFERRAL_REASON_MAX)) return BAD(r, "reason: at most 500 characters");
  if (m->n_evidence > REFERRAL_EVIDENCE_MAX) return BAD(r, "evidence: at most 20 references");
  for (size_t i = 0; i < m->n_evidence; i++)
    if (!chars_ok(m->evidence[i], 1, REFERRAL_REASON_MAX)) return BAD(r, "evidence: 1-500 characters each");
  if (m->prohibition[0] && !prohibition_ok(m->prohibition)) return BAD(r, "prohibition: P1..P9 or empty");
  if (m->prohibition[0] && !m->violation_confirmed)
    return BAD(r, "prohibition given without violation_confirmed");
  if (acting_unit(x, r, req, m->unit)) return 1;
  snprintf(r->ticket_no, sizeof r->ticket_no, "%s", m->ticket_no);
  snprintf(r->prohibition, sizeof r->prohibition, "%s", m->prohibition);
  r->step = m->step;
  r->at_us = m->at_us;
  r->action = (enum referral_action)m->action;
  r->violation = m->violation_confirmed;
  r->note = strdup(m->note);
  r->reason = strdup(m->reason);
  r->evidence = calloc(m->n_evidence + 1, sizeof *r->evidence);
  if (!r->note || !r->reason || !r->evidence) return -1;
  for (size_t i = 0; i < m->n_evidence; i++) {
    if (!(r->evidence[i] = strdup(m->evidence[i]))) return -1;
    r->n_evidence++;
  }
  return 0;
}

static int decode_redispatch(const struct referral_ctx *x, struct ureq *r,
                             const struct svc_req *req, const Whistle__Unit__Redispatch *m)
{
  if (x->curve && !svc_identity_listed(x->operators, req->user_id))
    return refuse(r, WHISTLE__UNIT__REPLY__CODE__FORBIDDEN, "only operators may re-dispatch");
  if (!ticket_no_ok(m->ticket_no)) return BAD(r, "ticket_no: 1-64 of A-Z a-z 0-9 - _");
  if (m->at_us < REFERRAL_AT_MIN_US || m->at_us >= REFERRAL_AT_MAX_US)
    return BAD(r, "at_us: required, between 2000 and 2100");
  if (!time_ok(x, m->at_us)) return BAD(r, "at_us: more than 1 day past the system clock");
  if (!svc_identity_valid(m->unit, strlen(m->unit))) return BAD(r, "unit: required (a unit code)");
  if (!chars_ok(m->note, 0, REFERRAL_TEXT_MAX)) return BAD(r, "note: at most 2000 characters");
  r->redispatch = 1;
  snprintf(r->ticket_no, sizeof r->ticket_no, "%s", m->ticket_no);
  snprintf(r->unit, sizeof r->unit, "%s", m->unit);
  r->step = m->step;
  r->at_us = m->at_us;
  return (r->note = strdup(m->note)) ? 0 : -1;
}

/* Queries read every unit's steps: with CURVE on, only the ops identities
 * (WHISTLE_REFERRAL_OPS) may ask (R-R5). */
static int decode_query(const struct referral_ctx *x, struct ureq *r, const struct svc_req *req,
                        const Whistle__Unit__Query *m)
{
  if (x->curve && !svc_identity_listed(x->ops, req->user_id))
    return refuse(r, WHISTLE__UNIT__REPLY__CODE__FORBIDDEN,
                  "queries are for ops tools; units read their own steps on the stream");
  switch (m->what) {
  case WHISTLE__UNIT__QUERY__WHAT__TICKETS:
  case WHISTLE__UNIT__QUERY__WHAT__RETURNED:
    break;
  case WHISTLE__UNIT__QUERY__WHAT__TICKET:
    if (!ticket_no_ok(m->ticket_no)) return BAD(r, "ticket_no: 1-64 of A-Z a-z 0-9 - _");
    snprintf(r->ticket_no, sizeof r->ticket_no, "%s", m->ticket_no);
    break;
  default:
    return BAD(r, "what: TICKETS, RETURNED or TICKET");
  }
  r->query = 1;
  r->what = m->what;
  r->offset = m->offset;
  r->limit = m->limit;
  return 0;
}

static int on_decode(void *arg, struct svc_req *req, const uint8_t *frame, size_t len)
{
  struct referral_ctx *x = arg;
  struct ureq *r = calloc(1, sizeof *r);
  if (!r) return -1;
  req->data = r;
  struct svc_pballoc al;
  int bad_strings, rc;
  Whistle__Unit__UnitMessage *m = (Whistle__Unit__UnitMessage *)svc_pb_unpack(
    &whistle__unit__unit_message__descriptor, &al, 64 * 1024 + len, frame, len, &bad_strings);
  if (!m) { /* answered with the request id, if the envelope shows one (field 2) */
    uint64_t id = 0;
    if (svc_pb_peek_varint(frame, len, 2, &id) == 0) r->request_id = id;
    rc = BAD(r, "not a UnitMessage");
  }
  else if ((r->request_id = m->request_id), bad_strings)
    rc = BAD(r, "text fields must be valid UTF-8 without NUL characters");
  else if (m->version != 1) rc = BAD(r, "unsupported version (expected 1)");
  else if (m->body_case == WHISTLE__UNIT__UNIT_MESSAGE__BODY_UPDATE)
    rc = decode_update(x, r, req, m->update);
  else if (m->body_case == WHISTLE__UNIT__UNIT_MESSAGE__BODY_REDISPATCH)
    rc = decode_redispatch(x, r, req, m->redispatch);
  else if (m->body_case == WHISTLE__UNIT__UNIT_MESSAGE__BODY_QUERY)
    rc = decode_query(x, r, req, m->query);
  else rc = BAD(r, "expected an update, a redispatch or a query");
  if (m) protobuf_c_message_free_unpacked(&m->base, &al.a);
  if (rc == 1) {
    x->n.refused++;
    svc_server_count_rejected(req->srv);
    send_reply(req, r);
  }
  return rc;
}

/* ---- staging -------------------------------------------------------------------- */

static void req_loaded(void *arg, struct referral_ticket *t)
{
  referral_loaded_add(&((struct ureq *)arg)->loaded, t);
}

static int on_stage(void *arg, struct svc_req *req, struct svc_pg_batch *b)
{
  struct referral_ctx *x = arg;
  struct ureq *r = req->data;
  const char *no = r->ticket_no;
  referral_loaded_clear(&r->loaded);
  r->status = ST_APPLIED;
  r->code = WHISTLE__UNIT__REPLY__CODE__NONE;
  r->why[0] = r->step_state[0] = r->ticket_state[0] = 0;
  r->late = 0;
  r->next_step = 0;
  if (r->query) { /* read in the second stage */
    svc_lines_clear(&r->lines);
    r->total = 0;
    return 0;
  }
  r->loader = (struct referral_loader){ req_loaded, r };
  return referral_store_load(x->store, b, &no, 1, &r->loader);
}

/* A ticket a query read: its line, then it goes. */
static void query_loaded(void *arg, struct referral_ticket *t)
{
  struct ureq *r = arg;
  if (r->what == WHISTLE__UNIT__QUERY__WHAT__RETURNED) {
    json_t *o = referral_returned_json(t);
    if (o || t->state != RT_RETURNED) svc_lines_add(&r->lines, o);
    else r->lines.oom = 1;
  } else {
    svc_lines_add(&r->lines, referral_ticket_json(t, r->what == WHISTLE__UNIT__QUERY__WHAT__TICKET));
  }
  referral_ticket_clear(t);
  free(t);
}

static int stage_query(struct referral_ctx *x, struct ureq *r, struct svc_pg_batch *b)
{
  const char *no = r->ticket_no;
  r->loader = (struct referral_loader){ query_loaded, r };
  switch (r->what) {
  case WHISTLE__UNIT__QUERY__WHAT__TICKETS:
    return referral_store_count(x->store, b, &r->total) ||
           referral_store_page(x->store, b, r->offset,
                               r->limit && r->limit < PAGE_MAX ? r->limit : PAGE_MAX, &r->loader);
  case WHISTLE__UNIT__QUERY__WHAT__RETURNED:
    return referral_store_returned(x->store, b, &r->loader);
  default:
    return referral_store_load(x->store, b, &no, 1, &r->loader);
  }
}

static void set_verdict(struct ureq *r, const struct referral_result *res)
{
  static const code_t codes[] = {
    [RV_APPLIED] = WHISTLE__UNIT__REPLY__CODE__NONE,
    [RV_DUPLICATE] = WHISTLE__UNIT__REPLY__CODE__NONE,
    [RV_BAD] = WHISTLE__UNIT__REPLY__CODE__BAD_REQUEST,
    [RV_UNKNOWN] = WHISTLE__UNIT__REPLY__CODE__UNKNOWN_STEP,
    [RV_WRONG_UNIT] = WHISTLE__UNIT__REPLY__CODE__WRONG_UNIT,
    [RV_WRONG_STATE] = WHISTLE__UNIT__REPLY__CODE__WRONG_STATE,
  };
  r->status = res->verdict == RV_APPLIED ? ST_APPLIED
            : res->verdict == RV_DUPLICATE ? ST_DUPLICATE : ST_REFUSED;
  r->code = codes[res->verdict];
  snprintf(r->why, sizeof r->why, "%s", res->verdict == RV_APPLIED ? "" : res->reason);
  r->late = res->late;
  r->next_step = res->next_step;
}

static int on_stage_next(void *arg, struct svc_req *req, struct svc_pg_batch *b, int n)
{
  struct referral_ctx *x = arg;
  struct ureq *r = req->data;
  struct referral_result res;
  struct referral_fxs fx = { .n = 0 };
  if (n != 2) return 0;
  if (r->query) return stage_query(x, r, b) ? -1 : 0;
  referral_cache_begin(x, b);
  referral_loaded_absorb(x, &r->loaded);
  struct referral_ticket *t = referral_cache_get(x, r->ticket_no);
  if (!t) {
    refuse(r, WHISTLE__UNIT__REPLY__CODE__UNKNOWN_STEP, "unknown ticket");
    return 0;
  }
  if (r->redispatch) {
    referral_redispatch(t, x->reg, r->step, r->unit, r->at_us, &res, &fx);
    for (size_t i = 0; i < fx.n; i++) /* the operator's note goes with the new step */
      if (fx.v[i].kind == FX_STEP_ISSUED) fx.v[i].text = r->note;
  } else {
    struct referral_update u = { .ticket_no = r->ticket_no, .step = r->step, .unit = r->unit,
                                 .at_us = r->at_us, .action = r->action, .note = r->note,
                                 .reason = r->reason, .violation = r->violation,
                                 .prohibition = r->prohibition };
    int64_t bound = x->clock.mode == SVC_CLOCK_WALL ? referral_clock_now(x) : 0;
    referral_update_apply(t, x->reg, &u, bound, &res, &fx);
  }
  set_verdict(r, &res);
  /* States only for the step's own unit (or the operator): R-R5. */
  struct referral_step *s = referral_find_step(t, r->step);
  if (res.verdict != RV_WRONG_UNIT && res.verdict != RV_UNKNOWN && s) {
    snprintf(r->step_state, sizeof r->step_state, "%s", referral_step_state_name(s->state));
    snprintf(r->ticket_state, sizeof r->ticket_state, "%s", referral_ticket_state_name(t->state));
  }
  if (res.verdict != RV_APPLIED) return 0;
  struct referral_change ch = { (const char *const *)r->evidence, r->n_evidence };
  referral_publish(x, b, t, &fx, &ch);
  if (referral_store_save(x->store, b, t) != 0) return -1;
  t->dirty = 0;
  return 0;
}

static void on_committed(void *arg, struct svc_req *req)
{
  struct referral_ctx *x = arg;
  struct ureq *r = req->data;
  if (r->query && r->lines.oom) {
    svc_lines_clear(&r->lines);
    r->status = ST_UNAVAILABLE;
    snprintf(r->why, sizeof r->why, "out of memory: ask again");
  } else if (r->query && r->what == WHISTLE__UNIT__QUERY__WHAT__TICKET && r->lines.n == 0) {
    refuse(r, WHISTLE__UNIT__REPLY__CODE__UNKNOWN_STEP, "unknown ticket");
  }
  if (r->query) {
    if (r->status == ST_REFUSED) x->n.refused++;
    send_reply(req, r);
    return;
  }
  if (r->status == ST_APPLIED) x->n.updates += !r->redispatch, x->n.redispatches += r->redispatch;
  else if (r->status == ST_DUPLICATE) x->n.duplicates++;
  else x->n.refused++;
  send_reply(req, r);
}

static void on_failed(void *arg, struct svc_req *req, const char *why)
{
  struct ureq *r = req->data;
  (void)arg;
  r->status = ST_UNAVAILABLE;
  r->code = WHISTLE__UNIT__REPLY__CODE__NONE;
  svc_lines_clear(&r->lines);
  snprintf(r->why, sizeof r->why, "cannot commit: %s", why);
  send_reply(req, r);
}

static void on_release(void *arg, struct svc_req *req)
{
  struct ureq *r = req->data;
  (void)arg;
  if (!r) return;
  referral_loaded_clear(&r->loaded);
  svc_lines_clear(&r->lines);
  for (size_t i = 0; i < r->n_evidence; i++) free(r->evidence[i]);
  free(r->evidence);
  free(r->note);
  free(r->reason);
  free(r);
  req->data = NULL;
}

const struct svc_server_ops referral_unit_ops = {
  .decode = on_decode, .stage = on_stage, .stage_next = on_stage_next,
  .committed = on_committed, .failed = on_failed, .release = on_release,
};
