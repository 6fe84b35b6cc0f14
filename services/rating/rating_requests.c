/* The request interface of whistle-rating (proto/rating.proto): inspections
 * (R-S1), idempotent by id and refused for a closed quarter, and queries of
 * the published results answered as JSON lines in the export shapes
 * (docs/exports.md): keys sorted, UTF-8, ", " and ": " separators. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rating.h"
#include "rating.pb-c.h"
#include "svc_alloc.h"
#include "svc_lines.h"
#include "svc_log.h"
#include "svc_pg.h"
#include "svc_registry.h"
#include "svc_server.h"
#include "svc_zmq.h"

typedef Whistle__Rating__Reply__Status status_t;
#define ST_APPLIED WHISTLE__RATING__REPLY__STATUS__APPLIED
#define ST_DUPLICATE WHISTLE__RATING__REPLY__STATUS__DUPLICATE
#define ST_REFUSED WHISTLE__RATING__REPLY__STATUS__REFUSED
#define ST_UNAVAILABLE WHISTLE__RATING__REPLY__STATUS__UNAVAILABLE
#define ID_MAX 64
#define PAGE_MAX 5000
/* Inspections may be dated 2000-01-01 to 2100-01-01 (+08:00). */
#define AT_MIN_US INT64_C(946656000000000)
#define AT_MAX_US INT64_C(4102416000000000)

struct rreq {
  const struct rating_ctx *x;
  uint64_t request_id;
  int query;
  /* Inspection. */
  char id[ID_MAX + 1], compound[RATING_CODE_MAX];
  int64_t at_us, raw;
  int dims[RATING_DIMS], rated;
  int32_t quarter, quarter_last;
  /* Query. */
  enum rating_query what;
  int32_t period;
  char period_name[8];
  uint32_t offset, limit;
  /* Results. */
  status_t status;
  char why[200];
  int pending;
  struct svc_lines lines;
  int64_t *points; /* CREDIT: per registry company */
};

static void send_reply(struct svc_req *req, const struct rreq *r)
{
  Whistle__Rating__Reply rep = WHISTLE__RATING__REPLY__INIT;
  rep.request_id = r->request_id;
  rep.status = r->status;
  rep.reason = (char *)r->why;
  rep.pending = r->pending;
  rep.total = (uint32_t)r->lines.n;
  svc_lines_page(&r->lines, r->offset, r->limit, PAGE_MAX, &rep.lines, &rep.n_lines);
  Whistle__Rating__RatingMessage m = WHISTLE__RATING__RATING_MESSAGE__INIT;
  m.version = 1;
  m.request_id = r->request_id;
  m.body_case = WHISTLE__RATING__RATING_MESSAGE__BODY_REPLY;
  m.reply = &rep;
  svc_req_reply_msg(req, &m.base);
}

static int refuse(struct rreq *r, const char *why)
{
  r->status = ST_REFUSED;
  snprintf(r->why, sizeof r->why, "%s", why);
  return 1;
}

/* ---- decoding ------------------------------------------------------------------ */

static int id_ok(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > ID_MAX) return 0;
  for (; *s; s++)
    if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') ||
          *s == '-' || *s == '_'))
      return 0;
  return 1;
}

static int decode_inspection(const struct rating_ctx *x, struct rreq *r,
                             const Whistle__Rating__Inspection *m)
{
  if (!id_ok(m->inspection_id)) return refuse(r, "inspection_id: 1-64 of A-Z a-z 0-9 - _");
  const struct svc_compound *c = svc_registry_compound(x->reg, m->compound);
  if (!c) return refuse(r, "compound: not a compound of the registry");
  if (m->at_us < AT_MIN_US || m->at_us >= AT_MAX_US) return refuse(r, "at_us: required, between 2000 and 2100");
  if (m->at_us > svc_clock_input_bound(&x->clock)) /* wall mode only (R-T3) */
    return refuse(r, "at_us: more than 1 day past the system clock (R-T3)");
  const uint32_t d[RATING_DIMS] = { m->sanitation, m->garbage, m->greening, m->order,
                                    m->facilities, m->disclosure, m->governance };
  for (int i = 0; i < RATING_DIMS; i++) {
    if (d[i] > 100) return refuse(r, "scores: each 0-100");
    r->dims[i] = (int)d[i];
  }
  int32_t mi = rating_month_index(m->at_us, x->off_s);
  r->quarter_last = mi - mi % 3 + 2;
  if (x->closed_month && r->quarter_last <= x->closed_month)
    return refuse(r, "at_us: its quarter is closed (its stars are published and final)");
  snprintf(r->id, sizeof r->id, "%s", m->inspection_id);
  snprintf(r->compound, sizeof r->compound, "%s", m->compound);
  r->at_us = m->at_us;
  r->quarter = (mi / 12) * 4 + (mi % 12) / 3;
  r->raw = rating_inspection_raw(&x->table, r->dims);
  r->rated = c->management == SVC_MGMT_PROFESSIONAL; /* R-S1: only these are rated */
  return 0;
}

/* "2026H2" -> year * 2 + h - 1; "2026Q4" -> year * 4 + q - 1; -1 if malformed. */
static int32_t period_parse(const char *s, char kind)
{
  if (strlen(s) != 6 || s[4] != kind) return -1;
  for (int i = 0; i < 4; i++)
    if (s[i] < '0' || s[i] > '9') return -1;
  int y = atoi(s), k = s[5] - '0', n = kind == 'H' ? 2 : 4;
  if (k < 1 || k > n || y < 2000) return -1;
  return y * n + k - 1;
}

static int decode_query(const struct rating_ctx *x, struct rreq *r, const Whistle__Rating__Query *m)
{
  r->query = 1;
  r->offset = m->offset;
  r->limit = m->limit;
  snprintf(r->period_name, sizeof r->period_name, "%.7s", m->period);
  int32_t last_month = 0;
  switch (m->what) {
  case WHISTLE__RATING__QUERY__WHAT__RANKINGS:
  case WHISTLE__RATING__QUERY__WHAT__UNITS:
    r->what = m->what == WHISTLE__RATING__QUERY__WHAT__RANKINGS ? RQ_RANKINGS : RQ_UNITS;
    if (strlen(m->period) != 7 || (r->period = rating_month_parse(m->period)) < 0)
      return refuse(r, "period: a month, e.g. 2026-10");
    last_month = r->period;
    break;
  case WHISTLE__RATING__QUERY__WHAT__CREDIT:
    r->what = RQ_CREDIT;
    if ((r->period = period_parse(m->period, 'H')) < 0) return refuse(r, "period: a half-year, e.g. 2026H2");
    break;
  case WHISTLE__RATING__QUERY__WHAT__STARS:
    r->what = RQ_STARS;
    if ((r->period = period_parse(m->period, 'Q')) < 0) return refuse(r, "period: a quarter, e.g. 2026Q4");
    last_month = (r->period / 4) * 12 + (r->period % 4) * 3 + 2;
    break;
  case WHISTLE__RATING__QUERY__WHAT__DECISIONS:
    r->what = RQ_DECISIONS;
    break;
  default:
    return refuse(r, "what: RANKINGS, UNITS, CREDIT, STARS or DECISIONS");
  }
  if (last_month && (!x->closed_month || last_month > x->closed_month)) {
    r->status = ST_APPLIED;
    r->pending = 1; /* not closed yet: nothing published */
    return 1;
  }
  return 0;
}

static int on_decode(void *arg, struct svc_req *req, const uint8_t *frame, size_t len)
{
  struct rating_ctx *x = arg;
  struct rreq *r = calloc(1, sizeof *r);
  if (!r) return -1;
  req->data = r;
  r->x = x;
  struct svc_pballoc al;
  int bad_strings, rc;
  Whistle__Rating__RatingMessage *m = (Whistle__Rating__RatingMessage *)svc_pb_unpack(
    &whistle__rating__rating_message__descriptor, &al, 64 * 1024 + len, frame, len, &bad_strings);
  if (!m) {
    uint64_t id = 0;
    if (svc_pb_peek_varint(frame, len, 2, &id) == 0) r->request_id = id;
    rc = refuse(r, "not a RatingMessage");
  } else if ((r->request_id = m->request_id), bad_strings)
    rc = refuse(r, "text fields must be valid UTF-8 without NUL characters");
  else if (m->version != 1) rc = refuse(r, "unsupported version (expected 1)");
  else if (m->body_case == WHISTLE__RATING__RATING_MESSAGE__BODY_INSPECTION)
    rc = decode_inspection(x, r, m->inspection);
  else if (m->body_case == WHISTLE__RATING__RATING_MESSAGE__BODY_QUERY)
    rc = decode_query(x, r, m->query);
  else rc = refuse(r, "expected an inspection or a query");
  if (m) protobuf_c_message_free_unpacked(&m->base, &al.a);
  if (rc == 1) {
    if (r->status == ST_REFUSED) svc_server_count_rejected(req->srv);
    send_reply(req, r);
  }
  return rc;
}

/* ---- results as JSON lines --------------------------------------------------------- */

static json_int_t ji(const char *s)
{
  return s ? (json_int_t)strtoll(s, NULL, 10) : 0;
}

static json_t *jstr_array(const char *json_text)
{
  json_t *a = json_text ? json_loads(json_text, 0, NULL) : NULL;
  return a ? a : json_array();
}

static void on_row(void *arg, int n, const char *const *v)
{
  struct rreq *r = arg;
  switch (r->what) {
  case RQ_RANKINGS:
    if (n < 6) return;
    svc_lines_add(&r->lines, json_pack("{s:s,s:s,s:s,s:I,s:I,s:b,s:I}", "month", r->period_name, "compound", v[0],
                          "company", v[1], "count", ji(v[2]), "rank", ji(v[3]), "in_top", v[4][0] == 't',
                          "streak", ji(v[5])));
    break;
  case RQ_UNITS:
    if (n < 7) return;
    svc_lines_add(&r->lines, json_pack("{s:s,s:s,s:I,s:f,s:f,s:o,s:f,s:I}", "month", r->period_name, "unit", v[0],
                          "population", ji(v[1]), "response", (double)ji(v[2]) / 10000.0,
                          "resolution", (double)ji(v[3]) / 10000.0, "satisfaction",
                          v[4] ? json_real((double)ji(v[4]) / 10000.0) : json_null(),
                          "score", (double)ji(v[5]) / 100.0, "rank", ji(v[6])));
    break;
  case RQ_STARS:
    if (n < 3) return;
    svc_lines_add(&r->lines, json_pack("{s:s,s:f,s:I}", "compound", v[0], "score", (double)ji(v[1]) / 10.0,
                          "stars", ji(v[2])));
    break;
  case RQ_DECISIONS: {
    if (n < 7) return;
    char at[40];
    svc_time_format((int64_t)ji(v[5]), SVC_DEFAULT_UTC_OFFSET, at, sizeof at);
    json_t *measures = jstr_array(v[2]);
    const char *first = json_string_value(json_array_get(measures, 0));
    svc_lines_add(&r->lines, json_pack("{s:s,s:s,s:s,s:s,s:s,s:s,s:o,s:o}", "key", v[0], "rule", v[1],
                          "decision", first ? first : "", "subject", v[3], "period", v[4],
                          "event_at", at, "measures", measures, "evidence", jstr_array(v[6])));
    break;
  }
  case RQ_CREDIT:
    break; /* collected in on_credit_row */
  }
}

static void on_credit_row(void *arg, int n, const char *const *v)
{
  struct rreq *r = arg;
  const struct rating_ctx *x = r->x;
  if (n < 2 || !v[0] || !r->points) return;
  for (size_t i = 0; i < x->reg->n_companies; i++)
    if (strcmp(x->reg->companies[i].code, v[0]) == 0) r->points[i] = (int64_t)ji(v[1]);
}

/* ---- staging ------------------------------------------------------------------------- */

static void on_inspected(void *arg, int n, const char *const *v)
{
  struct rreq *r = arg;
  if (n < 3) return;
  if (v[0] && v[0][0] == 't') r->status = ST_APPLIED;
  else if (v[1] && v[1][0] == 't') r->status = ST_DUPLICATE;
  else if (v[1]) refuse(r, "inspection_id: already recorded with different fields");
  else refuse(r, "at_us: its quarter is closed (its stars are published and final)");
}

static void clear_results(struct rreq *r)
{
  svc_lines_clear(&r->lines);
  free(r->points);
  r->points = NULL;
}

static int on_stage(void *arg, struct svc_req *req, struct svc_pg_batch *b)
{
  struct rating_ctx *x = arg;
  struct rreq *r = req->data;
  clear_results(r);
  r->status = ST_APPLIED;
  if (!r->query)
    return rating_store_inspection(x->store, b, r->id, r->compound, r->at_us, r->quarter,
                                   r->quarter_last, r->dims, r->raw, r->rated, on_inspected, r);
  if (r->what == RQ_CREDIT) {
    if (!(r->points = calloc(x->reg->n_companies + 1, sizeof *r->points))) return -1;
    return rating_store_query(x->store, b, r->what, r->period, on_credit_row, r);
  }
  return rating_store_query(x->store, b, r->what, r->period, on_row, r);
}

static void on_committed(void *arg, struct svc_req *req)
{
  struct rating_ctx *x = arg;
  struct rreq *r = req->data;
  if (r->query && r->what == RQ_CREDIT && r->points) { /* R-K1/R-K2: every company */
    for (size_t i = 0; i < x->reg->n_companies; i++) {
      int64_t score = rating_credit_score(&x->table, r->points[i]);
      svc_lines_add(&r->lines, json_pack("{s:s,s:I,s:s}", "company", x->reg->companies[i].code, "score",
                            (json_int_t)score, "grade", rating_credit_grade(&x->table, score)));
    }
  }
  if (r->lines.oom) {
    clear_results(r);
    r->status = ST_UNAVAILABLE;
    snprintf(r->why, sizeof r->why, "out of memory: ask again");
  }
  if (r->query) x->n.queries++;
  else if (r->status == ST_APPLIED) x->n.inspections++;
  send_reply(req, r);
}

static void on_failed(void *arg, struct svc_req *req, const char *why)
{
  struct rreq *r = req->data;
  (void)arg;
  clear_results(r);
  r->status = ST_UNAVAILABLE;
  snprintf(r->why, sizeof r->why, "cannot commit: %s", why);
  send_reply(req, r);
}

static void on_release(void *arg, struct svc_req *req)
{
  struct rreq *r = req->data;
  (void)arg;
  if (!r) return;
  clear_results(r);
  free(r);
  req->data = NULL;
}

const struct svc_server_ops rating_request_ops = {
  .decode = on_decode, .stage = on_stage, .committed = on_committed, .failed = on_failed,
  .release = on_release,
};
