/* Issuing notices (R-E1..R-E6): once both inputs' watermarks have passed
 * their event time, the pending triggers get their R-E1 ladder step (overdue
 * events, per unit and quarter in (deadline, ticket, step, ACCEPT before
 * RESOLVE) order), their numbers per type and year in (event time, key)
 * order (R-E3), their letter, and go out on the stream to the recipient and
 * each copy; unsigned notices due go out again (R-E6); then escalation's
 * watermark. One transaction: read (stage 1), decide and write (stage 2). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "escalation.h"
#include "notice.pb-c.h"
#include "svc_log.h"
#include "svc_pg.h"
#include "svc_registry.h"
#include "svc_stream.h"

#define RESPOND_WORKDAYS 5   /* a notice's response is due within 5 working days */

struct trow {                 /* a pending trigger as loaded */
  char *v[18];
  int64_t event_us;
  struct esc_overdue o;       /* overdue: its ladder order */
  int k;
  enum esc_type type;
  int year;
  int stored;                 /* its notice is written: the trigger is issued */
};
struct lrow { char unit[ESC_CODE_MAX]; int32_t quarter; int k; };
struct crow { enum esc_type type; int year; int64_t n; };
struct rrow { char *number; uint8_t *payload; size_t len; };

struct esc_issuejob {
  struct esc_ctx *x;
  int64_t wm;
  struct trow *t; size_t n_t, cap_t;
  struct lrow *l; size_t n_l, cap_l;
  struct crow *c; size_t n_c, cap_c;
  struct rrow *r; size_t n_r, cap_r;
  int oom, stage;
  int64_t db_out;              /* escalation's watermark as committed (read under lock) */
  uint64_t issued, redelivered;
};

static void *grow(void *v, size_t *cap, size_t n, size_t size, int *oom)
{
  if (n < *cap) return v;
  size_t c = *cap ? *cap * 2 : 32;
  void *p = realloc(v, c * size);
  if (!p) {
    *oom = 1;
    return NULL;
  }
  *cap = c;
  return p;
}

static void job_free(struct esc_issuejob *j)
{
  if (!j) return;
  for (size_t i = 0; i < j->n_t; i++)
    for (int k = 0; k < 18; k++) free(j->t[i].v[k]);
  for (size_t i = 0; i < j->n_r; i++) {
    free(j->r[i].number);
    free(j->r[i].payload);
  }
  free(j->t);
  free(j->l);
  free(j->c);
  free(j->r);
  free(j);
}

void esc_issue_free(struct esc_ctx *x)
{
  job_free(x->job);
  x->job = NULL;
}

static int unhex(const char *s, uint8_t **out, size_t *len)
{
  size_t n = strlen(s) / 2;
  uint8_t *p = malloc(n ? n : 1);
  if (!p) return -1;
  for (size_t i = 0; i < n; i++) {
    unsigned v;
    if (sscanf(s + 2 * i, "%2x", &v) != 1) {
      free(p);
      return -1;
    }
    p[i] = (uint8_t)v;
  }
  *out = p;
  *len = n;
  return 0;
}

static void on_row(void *arg, int n, const char *const *v)
{
  struct esc_issuejob *j = arg;
  if (n < 1 || !v[0]) return;
  if (v[0][0] == 'k' && n >= 2) {
    j->db_out = strtoll(v[1] ? v[1] : "0", NULL, 10);
  } else if (v[0][0] == 't' && n >= 19) {
    struct trow *p = grow(j->t, &j->cap_t, j->n_t, sizeof *p, &j->oom);
    if (!p) return;
    j->t = p;
    struct trow *t = &j->t[j->n_t++];
    memset(t, 0, sizeof *t);
    for (int k = 0; k < 18; k++)
      if (!(t->v[k] = strdup(v[k + 1] ? v[k + 1] : ""))) j->oom = 1;
    t->event_us = strtoll(v[3], NULL, 10);
  } else if (v[0][0] == 'l' && n >= 4) {
    struct lrow *p = grow(j->l, &j->cap_l, j->n_l, sizeof *p, &j->oom);
    if (!p) return;
    j->l = p;
    struct lrow *l = &j->l[j->n_l++];
    snprintf(l->unit, sizeof l->unit, "%s", v[1]);
    l->quarter = (int32_t)strtol(v[2], NULL, 10);
    l->k = (int)strtol(v[3], NULL, 10);
  } else if (v[0][0] == 'c' && n >= 4) {
    enum esc_type t;
    if (esc_type_parse(v[1], &t)) return;
    struct crow *p = grow(j->c, &j->cap_c, j->n_c, sizeof *p, &j->oom);
    if (!p) return;
    j->c = p;
    j->c[j->n_c++] = (struct crow){ t, (int)strtol(v[2], NULL, 10), strtoll(v[3], NULL, 10) };
  } else if (v[0][0] == 'r' && n >= 3) {
    struct rrow *p = grow(j->r, &j->cap_r, j->n_r, sizeof *p, &j->oom);
    if (!p) return;
    j->r = p;
    struct rrow *r = &j->r[j->n_r];
    if (!(r->number = strdup(v[1])) || unhex(v[2], &r->payload, &r->len)) {
      free(r->number);
      j->oom = 1;
      return;
    }
    j->n_r++;
  }
}

/* Column positions of a trigger row (esc_store_issue_load, after the tag). */
enum { T_KEY, T_SOURCE, T_EVENT, T_RULE, T_RULE_ID, T_RULE_SET, T_PERIOD, T_TYPE, T_RECIPIENT,
       T_CC, T_MEASURES, T_EVIDENCE, T_FACTS, T_TICKET, T_STEP, T_RESOLVE, T_UNIT, T_QUARTER };

static int is_overdue(const struct trow *t)
{
  return strcmp(t->v[T_SOURCE], "overdue") == 0;
}

static int cmp_ladder(const void *a, const void *b)
{
  const struct trow *x = *(const struct trow *const *)a, *y = *(const struct trow *const *)b;
  int c = strcmp(x->o.unit, y->o.unit);
  if (c) return c;
  int32_t qx = (int32_t)strtol(x->v[T_QUARTER], NULL, 10), qy = (int32_t)strtol(y->v[T_QUARTER], NULL, 10);
  if (qx != qy) return qx < qy ? -1 : 1;
  return esc_overdue_cmp(&x->o, &y->o);
}

/* R-E1: each overdue event's k within its unit and quarter. */
static void ladder(struct esc_issuejob *j)
{
  struct trow **v = calloc(j->n_t + 1, sizeof *v);
  size_t n = 0;
  if (!v) {
    j->oom = 1;
    return;
  }
  for (size_t i = 0; i < j->n_t; i++) {
    struct trow *t = &j->t[i];
    if (!is_overdue(t)) continue;
    snprintf(t->o.key, sizeof t->o.key, "%s", t->v[T_KEY]);
    snprintf(t->o.ticket_no, sizeof t->o.ticket_no, "%s", t->v[T_TICKET]);
    snprintf(t->o.unit, sizeof t->o.unit, "%s", t->v[T_UNIT]);
    t->o.step = (uint32_t)strtoul(t->v[T_STEP], NULL, 10);
    t->o.resolve = t->v[T_RESOLVE][0] == 't';
    t->o.deadline_us = t->event_us;
    v[n++] = t;
  }
  qsort(v, n, sizeof *v, cmp_ladder);
  for (size_t i = 0; i < n; i++) {
    struct trow *t = v[i];
    int32_t q = (int32_t)strtol(t->v[T_QUARTER], NULL, 10);
    struct lrow *l = NULL;
    for (size_t k = 0; k < j->n_l && !l; k++)
      if (j->l[k].quarter == q && strcmp(j->l[k].unit, t->o.unit) == 0) l = &j->l[k];
    if (!l) {
      struct lrow *p = grow(j->l, &j->cap_l, j->n_l, sizeof *p, &j->oom);
      if (!p) break;
      j->l = p;
      l = &j->l[j->n_l++];
      snprintf(l->unit, sizeof l->unit, "%s", t->o.unit);
      l->quarter = q;
      l->k = 0;
    }
    t->k = ++l->k;
    t->type = esc_ladder_type(t->k);
  }
  free(v);
}

static int64_t next_number(struct esc_issuejob *j, enum esc_type type, int year)
{
  for (size_t i = 0; i < j->n_c; i++)
    if (j->c[i].type == type && j->c[i].year == year) return ++j->c[i].n;
  struct crow *p = grow(j->c, &j->cap_c, j->n_c, sizeof *p, &j->oom);
  if (!p) return 0;
  j->c = p;
  j->c[j->n_c++] = (struct crow){ type, year, 1 };
  return 1;
}

/* The strings of a JSON array as loaded: pointers into a (kept) json_t, in
 * an array the caller frees; NULL when out of memory. */
static const char **strs(json_t *a, size_t *n)
{
  const char **out = calloc(json_array_size(a) + 1, sizeof *out);
  *n = 0;
  for (size_t i = 0; out && i < json_array_size(a); i++) {
    const char *s = json_string_value(json_array_get(a, i));
    if (s) out[(*n)++] = s;
  }
  return out;
}

static int issue_one(struct esc_issuejob *j, struct svc_pg_batch *b, struct trow *t)
{
  struct esc_ctx *x = j->x;
  if (!is_overdue(t) && esc_type_parse(t->v[T_TYPE], &t->type)) return 0; /* cannot happen */
  t->year = esc_year(t->event_us, x->off_s);
  int64_t n = next_number(j, t->type, t->year);
  if (!n) return -1;
  char number[96];
  esc_number(t->type, t->year, n, number, sizeof number);
  json_t *jcc = json_loads(t->v[T_CC], 0, NULL), *jms = json_loads(t->v[T_MEASURES], 0, NULL);
  json_t *jev = json_loads(t->v[T_EVIDENCE], 0, NULL), *jfc = json_loads(t->v[T_FACTS], 0, NULL);
  size_t ncc, nms, nev, nfc;
  const char **cc = strs(jcc, &ncc), **ms = strs(jms, &nms), **ev = strs(jev, &nev), **fc = strs(jfc, &nfc);
  const struct svc_calendar *cal = &x->reg->calendar;
  int64_t respond_by = svc_deadline_workdays(cal, t->event_us, RESPOND_WORKDAYS, x->off_s);
  struct esc_letter l = {
    .number = number, .type_name = esc_type_name(t->type), .recipient = t->v[T_RECIPIENT],
    .rule = t->v[T_RULE], .rule_id = t->v[T_RULE_ID], .rule_set = t->v[T_RULE_SET],
    .period = t->v[T_PERIOD], .key = t->v[T_KEY], .source = t->v[T_SOURCE], .cc = cc, .n_cc = ncc,
    .measures = ms, .n_measures = nms, .evidence = ev, .n_evidence = nev, .facts = fc, .n_facts = nfc,
    .event_us = t->event_us, .respond_by_us = respond_by, .k = t->k,
  };
  char *text = cc && ms && ev && fc ? esc_letter_render(x, x->templates[t->type], &l) : NULL;
  int rc = text ? 0 : -1;
  Whistle__Notice__Notice m = WHISTLE__NOTICE__NOTICE__INIT;
  m.number = number;
  m.type = (char *)esc_type_code(t->type);
  m.type_name = (char *)esc_type_name(t->type);
  m.recipient = t->v[T_RECIPIENT];
  m.n_cc = ncc;
  m.cc = (char **)cc;
  m.rule = t->v[T_RULE];
  m.rule_id = t->v[T_RULE_ID];
  m.rule_set = t->v[T_RULE_SET];
  m.period = t->v[T_PERIOD];
  m.key = t->v[T_KEY];
  m.event_us = t->event_us;
  m.n_evidence = nev;
  m.evidence = (char **)ev;
  m.n_measures = nms;
  m.measures = (char **)ms;
  m.text = text;
  m.k = (uint32_t)t->k;
  m.respond_by_us = respond_by;
  size_t len = rc ? 0 : protobuf_c_message_get_packed_size(&m.base);
  uint8_t *payload = rc ? NULL : malloc(len ? len : 1);
  if (!rc && !payload) rc = -1;
  if (!rc) {
    protobuf_c_message_pack(&m.base, payload);
    struct esc_notice_row row = {
      .number = number, .type = esc_type_code(t->type), .key = t->v[T_KEY], .source = t->v[T_SOURCE],
      .recipient = t->v[T_RECIPIENT], .rule = t->v[T_RULE], .rule_id = t->v[T_RULE_ID],
      .rule_set = t->v[T_RULE_SET], .period = t->v[T_PERIOD], .year = t->year, .n = n,
      .event_us = t->event_us, .respond_by_us = respond_by,
      .redeliver_us = esc_redeliver_at(cal, t->event_us, x->off_s), .k = t->k, .cc = cc, .n_cc = ncc,
      .evidence = ev, .n_evidence = nev, .measures = ms, .n_measures = nms, .text = text,
      .payload = payload, .payload_len = len,
    };
    /* R-E6: already due again by this watermark (issued late in event time):
     * delivered again now, so the outcome does not depend on how the
     * watermarks came in; the row is written redelivered at once. */
    row.redelivered = row.redeliver_us < j->wm;
    rc = esc_store_notice(x->store, b, &row);
    t->stored = !rc;
    rc = rc ? rc : svc_stream_append(x->prod, b, t->event_us, "notice.issued", t->v[T_RECIPIENT], payload, len);
    for (size_t i = 0; !rc && i < ncc; i++) { /* each copy to its party (R-E2) */
      m.copy_to = (char *)cc[i];
      rc = svc_stream_append_msg(x->prod, b, t->event_us, "notice.copy", cc[i], &m.base);
    }
    if (!rc && row.redelivered) {
      rc = svc_stream_append(x->prod, b, row.redeliver_us, "notice.redelivered", t->v[T_RECIPIENT],
                             payload, len);
      j->redelivered++;
    }
  }
  free(payload);
  free(text);
  free(cc);
  free(ms);
  free(ev);
  free(fc);
  json_decref(jcc);
  json_decref(jms);
  json_decref(jev);
  json_decref(jfc);
  j->issued++;
  return rc;
}

static int write_all(struct esc_issuejob *j, struct svc_pg_batch *b)
{
  struct esc_ctx *x = j->x;
  ladder(j);
  int rc = j->oom ? -1 : 0;
  for (size_t i = 0; i < j->n_t && !rc; i++) rc = issue_one(j, b, &j->t[i]); /* (event time, key) */
  if (!rc && j->n_t) { /* the triggers of the notices written, issued: one statement */
    const char **keys = calloc(j->n_t, sizeof *keys);
    size_t n = 0;
    for (size_t i = 0; keys && i < j->n_t; i++)
      if (j->t[i].stored) keys[n++] = j->t[i].v[T_KEY];
    rc = keys ? (n ? esc_store_issued(x->store, b, keys, n) : 0) : -1;
    free(keys);
  }
  for (size_t i = 0; i < j->n_l && !rc; i++)
    rc = esc_store_ladder(x->store, b, j->l[i].unit, j->l[i].quarter, j->l[i].k);
  for (size_t i = 0; i < j->n_c && !rc; i++)
    rc = esc_store_counter(x->store, b, esc_type_code(j->c[i].type), j->c[i].year, j->c[i].n);
  for (size_t i = 0; i < j->n_r && !rc; i++) { /* R-E6: unsigned after 2 working days */
    Whistle__Notice__Notice *m = whistle__notice__notice__unpack(NULL, j->r[i].len, j->r[i].payload);
    if (!m) continue;
    int64_t at = esc_redeliver_at(&x->reg->calendar, m->event_us, x->off_s);
    rc = svc_stream_append(x->prod, b, at, "notice.redelivered", m->recipient, j->r[i].payload, j->r[i].len);
    rc = rc ? rc : esc_store_redelivered(x->store, b, j->r[i].number);
    whistle__notice__notice__free_unpacked(m, NULL);
    j->redelivered++;
  }
  rc = rc ? rc : svc_stream_watermark(x->prod, b, j->wm);
  return rc ? rc : esc_store_published(x->store, b, j->wm);
}

static void issue_stage(struct svc_pg_batch *b, void *arg)
{
  struct esc_issuejob *j = arg;
  if (j->stage++ > 0) return; /* the writes' results are in: commit */
  if (j->db_out >= j->wm) return; /* an earlier process issued up to here: nothing to do */
  if (write_all(j, b)) svc_pg_batch_fail(b, "out of memory while issuing notices");
}

static void issue_done(struct svc_pg_batch *b, enum svc_pg_outcome o, const char *err, void *arg)
{
  struct esc_issuejob *j = arg;
  struct esc_ctx *x = j->x;
  (void)b;
  x->job = NULL;
  x->issue_busy = 0;
  if (o == SVC_PG_COMMITTED) {
    if (j->wm > x->out_wm) x->out_wm = j->wm;
    if (j->db_out > x->out_wm) x->out_wm = j->db_out;
    x->n.notices += j->issued;
    x->n.redelivered += j->redelivered;
    if (j->issued || j->redelivered)
      svc_info("notices issued", " notices=%llu redelivered=%llu watermark_us=%lld",
               (unsigned long long)j->issued, (unsigned long long)j->redelivered, (long long)j->wm);
  } else if (o == SVC_PG_FAILED) {
    svc_error("issuance failed", " error=\"%s\"", err ? err : "");
  }
  job_free(j);
  if (o != SVC_PG_FAILED) esc_issue_run(x);
}

void esc_issue_run(struct esc_ctx *x)
{
  if (x->issue_busy || (x->stopping && *x->stopping) || !svc_pg_is_up(x->pg)) return;
  int64_t wm = x->referral_wm < x->rating_wm ? x->referral_wm : x->rating_wm;
  if (wm <= x->out_wm) return;
  struct esc_issuejob *j = calloc(1, sizeof *j);
  if (!j) return;
  j->x = x;
  j->wm = wm;
  struct svc_pg_batch *b = svc_pg_batch_new(x->pg, issue_stage, issue_done, j);
  if (!b || esc_store_issue_load(x->store, b, wm, on_row, j)) {
    svc_error("cannot start an issuance", " reason=\"out of memory\"");
    svc_pg_batch_discard(&b);
    job_free(j);
    return;
  }
  x->issue_busy = 1;
  x->job = j;
  svc_pg_submit(b);
}
