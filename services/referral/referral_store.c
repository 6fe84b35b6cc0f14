/* All SQL of whistle-referral: loading tickets whole (by number, or those
 * with a clock due), saving them with their steps (a jsonb array) and next
 * due instant, the two watermarks, and the start-up clean-up of typed
 * numbers (R-I6a). Rows are turned into struct referral_ticket here; no
 * PGresult leaves this file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "referral.h"
#include "svc_log.h"
#include "svc_mask.h"
#include "svc_pg.h"
#include "svc_stream.h"

struct referral_store {
  struct svc_pg_stmt *load, *due, *save, *clock, *count, *page, *returned;
};

#define COLUMNS                                                                         \
  "ticket_no, ticket_id, state, request_type, category, compound, street, district,"   \
  " management, company, repeat_of, pseudonym, masked_phone, address, content,"        \
  " received_us, urgent, returns, consult, violation_done, resolved_us, close_by_us,"  \
  " closed_us, steps::text, pending::text, exempt, wait_reason, wait_us"
static const char LOAD_SQL[] = "SELECT " COLUMNS " FROM tickets WHERE ticket_no = ANY($1::text[])";
static const char DUE_SQL[] = "SELECT " COLUMNS " FROM tickets WHERE next_due_us <= $1"
                              " ORDER BY next_due_us, ticket_no LIMIT $2";
static const char SAVE_SQL[] =
  "INSERT INTO tickets (ticket_no, ticket_id, state, request_type, category, compound, street,"
  " district, management, company, repeat_of, pseudonym, masked_phone, address, content,"
  " received_us, urgent, returns, consult, violation_done, resolved_us, close_by_us,"
  " closed_us, steps, next_due_us, pending, exempt, wait_reason, wait_us)"
  " VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18,"
  "  $19, $20, $21, $22, $23, $24::jsonb, nullif($25, '0')::bigint, $26::jsonb, $27, $28, $29)"
  " ON CONFLICT (ticket_no) DO UPDATE SET state = $3, category = $5, compound = $6,"
  "  street = $7, district = $8, management = $9, company = $10, returns = $18,"
  "  consult = $19, violation_done = $20, resolved_us = $21, close_by_us = $22,"
  "  closed_us = $23, steps = $24::jsonb, next_due_us = nullif($25, '0')::bigint,"
  "  pending = $26::jsonb, exempt = $27, wait_reason = $28, wait_us = $29";
/* The ops queries (read-only). */
static const char COUNT_SQL[] = "SELECT count(*) FROM tickets";
static const char PAGE_SQL[] = "SELECT " COLUMNS " FROM tickets ORDER BY ticket_no COLLATE \"C\""
                               " OFFSET $1 LIMIT $2";
static const char RETURNED_SQL[] = "SELECT " COLUMNS " FROM tickets WHERE state = 'RETURNED'"
                                   " ORDER BY ticket_no COLLATE \"C\"";
static const char CLOCK_SQL[] = "UPDATE clock SET in_watermark = greatest(in_watermark, $1),"
                                " out_watermark = greatest(out_watermark, $2)";

struct referral_store *referral_store_new(struct svc_pg *pg)
{
  struct referral_store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->load = svc_pg_prepare(pg, LOAD_SQL, 1, NULL);
  s->due = svc_pg_prepare(pg, DUE_SQL, 2, NULL);
  s->save = svc_pg_prepare(pg, SAVE_SQL, 29, NULL);
  s->clock = svc_pg_prepare(pg, CLOCK_SQL, 2, NULL);
  s->count = svc_pg_prepare(pg, COUNT_SQL, 0, NULL);
  s->page = svc_pg_prepare(pg, PAGE_SQL, 2, NULL);
  s->returned = svc_pg_prepare(pg, RETURNED_SQL, 0, NULL);
  if (!s->load || !s->due || !s->save || !s->clock || !s->count || !s->page || !s->returned) {
    free(s);
    return NULL;
  }
  return s;
}

void referral_store_destroy(struct referral_store **s)
{
  free(*s);
  *s = NULL;
}

/* ---- steps as JSON -------------------------------------------------------- */

static json_t *step_json(const struct referral_step *s)
{
  json_t *p = json_array();
  for (size_t i = 0; p && i < s->n_progress; i++) json_array_append_new(p, json_integer(s->progress_us[i]));
  return json_pack("{s:I,s:I,s:I,s:s,s:b,s:s,s:s,s:I,s:s,s:i,s:i,s:I,s:I,s:I,s:I,s:I,s:I,s:I,"
                   "s:b,s:s,s:I,s:I,s:o*}",
                   "no", (json_int_t)s->no, "pos", (json_int_t)s->chain_pos, "len",
                   (json_int_t)s->chain_len, "unit", s->unit, "street", s->street_unit,
                   "udist", s->unit_district, "why", referral_issue_reason_name(s->reason),
                   "repl", (json_int_t)s->replaces, "state", referral_step_state_name(s->state),
                   "ah", s->accept_hours, "rw", s->resolve_workdays,
                   "issued", (json_int_t)s->issued_us, "accept_by", (json_int_t)s->accept_by_us,
                   "resolve_by", (json_int_t)s->resolve_by_us, "accepted", (json_int_t)s->accepted_us,
                   "resolved", (json_int_t)s->resolved_us, "returned", (json_int_t)s->returned_us,
                   "reopened", (json_int_t)s->reopened_us, "viol", s->violation,
                   "proh", s->prohibition, "settled", (json_int_t)s->settled,
                   "overdue", (json_int_t)s->overdue, "progress", p);
}

static char *steps_text(const struct referral_ticket *t)
{
  json_t *a = json_array();
  for (size_t i = 0; a && i < t->n_steps; i++) {
    json_t *o = step_json(&t->steps[i]);
    if (!o || json_array_append_new(a, o)) {
      json_decref(a);
      return NULL;
    }
  }
  char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  return s;
}

static int64_t jint(json_t *o, const char *k)
{
  return json_integer_value(json_object_get(o, k));
}

static void jstr(json_t *o, const char *k, char *out, size_t n)
{
  snprintf(out, n, "%s", json_string_value(json_object_get(o, k)) ? json_string_value(json_object_get(o, k)) : "");
}

static int step_parse(json_t *o, struct referral_step *s)
{
  char state[16], why[16];
  memset(s, 0, sizeof *s);
  s->no = (uint32_t)jint(o, "no");
  s->chain_pos = (uint32_t)jint(o, "pos");
  s->chain_len = (uint32_t)jint(o, "len");
  jstr(o, "unit", s->unit, sizeof s->unit);
  s->street_unit = json_is_true(json_object_get(o, "street"));
  jstr(o, "udist", s->unit_district, sizeof s->unit_district);
  jstr(o, "why", why, sizeof why);
  s->replaces = (uint32_t)jint(o, "repl");
  jstr(o, "state", state, sizeof state);
  s->accept_hours = (int)jint(o, "ah");
  s->resolve_workdays = (int)jint(o, "rw");
  s->issued_us = jint(o, "issued");
  s->accept_by_us = jint(o, "accept_by");
  s->resolve_by_us = jint(o, "resolve_by");
  s->accepted_us = jint(o, "accepted");
  s->resolved_us = jint(o, "resolved");
  s->returned_us = jint(o, "returned");
  s->reopened_us = jint(o, "reopened");
  s->violation = json_is_true(json_object_get(o, "viol"));
  jstr(o, "proh", s->prohibition, sizeof s->prohibition);
  s->settled = (unsigned)jint(o, "settled");
  s->overdue = (unsigned)jint(o, "overdue");
  json_t *p = json_object_get(o, "progress");
  for (size_t i = 0; i < json_array_size(p) && i < REFERRAL_PROGRESS_MAX; i++)
    s->progress_us[s->n_progress++] = json_integer_value(json_array_get(p, i));
  if (referral_step_state_parse(state, &s->state) || referral_issue_reason_parse(why, &s->reason))
    return -1;
  return 0;
}

static int steps_parse(const char *text, struct referral_ticket *t)
{
  json_error_t e;
  json_t *a = json_loads(text, 0, &e);
  size_t n = json_array_size(a);
  int rc = a && json_is_array(a) ? 0 : -1;
  if (!rc && n) {
    t->steps = calloc(n, sizeof *t->steps);
    rc = t->steps ? 0 : -1;
    t->cap_steps = t->steps ? n : 0;
  }
  for (size_t i = 0; !rc && i < n; i++) {
    rc = step_parse(json_array_get(a, i), &t->steps[i]);
    if (!rc) t->n_steps++;
  }
  json_decref(a);
  return rc;
}

static char *pending_text(const struct referral_ticket *t)
{
  json_t *a = json_array();
  for (size_t i = 0; a && i < t->n_pending; i++) json_array_append_new(a, json_string(t->pending[i]));
  char *s = a ? json_dumps(a, JSON_COMPACT) : NULL;
  json_decref(a);
  return s;
}

static int pending_parse(const char *text, struct referral_ticket *t)
{
  json_error_t e;
  json_t *a = json_loads(text, 0, &e);
  int rc = a && json_is_array(a) ? 0 : -1;
  for (size_t i = 0; !rc && i < json_array_size(a) && t->n_pending < REFERRAL_PENDING_MAX; i++)
    snprintf(t->pending[t->n_pending++], sizeof t->pending[0], "%s",
             json_string_value(json_array_get(a, i)) ? json_string_value(json_array_get(a, i)) : "");
  json_decref(a);
  return rc;
}

/* ---- loading ---------------------------------------------------------------- */

static void col(char *dst, size_t n, const PGresult *r, int row, int c)
{
  snprintf(dst, n, "%s", PQgetvalue(r, row, c));
}

static int64_t col_i64(const PGresult *r, int row, int c)
{
  return strtoll(PQgetvalue(r, row, c), NULL, 10);
}

static struct referral_ticket *row_ticket(const PGresult *r, int i)
{
  struct referral_ticket *t = calloc(1, sizeof *t);
  if (!t) return NULL;
  col(t->ticket_no, sizeof t->ticket_no, r, i, 0);
  t->ticket_id = (uint64_t)col_i64(r, i, 1);
  col(t->request_type, sizeof t->request_type, r, i, 3);
  col(t->category, sizeof t->category, r, i, 4);
  col(t->compound, sizeof t->compound, r, i, 5);
  col(t->street, sizeof t->street, r, i, 6);
  col(t->district, sizeof t->district, r, i, 7);
  col(t->management, sizeof t->management, r, i, 8);
  col(t->company, sizeof t->company, r, i, 9);
  col(t->repeat_of, sizeof t->repeat_of, r, i, 10);
  col(t->pseudonym, sizeof t->pseudonym, r, i, 11);
  col(t->masked_phone, sizeof t->masked_phone, r, i, 12);
  t->address = strdup(PQgetvalue(r, i, 13));
  t->content = strdup(PQgetvalue(r, i, 14));
  t->received_us = col_i64(r, i, 15);
  t->urgent = PQgetvalue(r, i, 16)[0] == 't';
  t->returns = (int)col_i64(r, i, 17);
  t->consult = PQgetvalue(r, i, 18)[0] == 't';
  t->violation_done = PQgetvalue(r, i, 19)[0] == 't';
  t->resolved_us = col_i64(r, i, 20);
  t->close_by_us = col_i64(r, i, 21);
  t->closed_us = col_i64(r, i, 22);
  t->exempt = PQgetvalue(r, i, 25)[0] == 't';
  col(t->wait_reason, sizeof t->wait_reason, r, i, 26);
  t->wait_us = col_i64(r, i, 27);
  if (!t->address || !t->content || referral_ticket_state_parse(PQgetvalue(r, i, 2), &t->state) ||
      steps_parse(PQgetvalue(r, i, 23), t) || pending_parse(PQgetvalue(r, i, 24), t)) {
    svc_error("unreadable ticket row", " ticket_no=%s", t->ticket_no);
    referral_ticket_clear(t);
    free(t);
    return NULL;
  }
  return t;
}

static void load_result(void *arg, const PGresult *r)
{
  const struct referral_loader *l = arg;
  int rows = PQntuples(r);
  for (int i = 0; i < rows; i++) {
    struct referral_ticket *t = row_ticket(r, i);
    if (t) l->cb(l->arg, t);
  }
}

static int add_load(struct svc_pg_batch *b, struct svc_pg_stmt *st, int n, const char *const *v,
                    const int *len, const int *fmt, const struct referral_loader *l)
{
  return svc_pg_batch_add(b, st, n, v, len, fmt, 0, load_result, (void *)l);
}

int referral_store_load(struct referral_store *s, struct svc_pg_batch *b,
                        const char *const *ticket_nos, size_t n, const struct referral_loader *l)
{
  struct svc_pgarr a;
  svc_pgarr_init(&a, SVC_OID_TEXT);
  for (size_t i = 0; i < n; i++) svc_pgarr_add(&a, ticket_nos[i], strlen(ticket_nos[i]));
  int rc = svc_pgarr_finish(&a);
  if (!rc) {
    const char *v[1] = { a.buf };
    int len[1] = { (int)a.len }, fmt[1] = { 1 };
    rc = add_load(b, s->load, 1, v, len, fmt, l);
  }
  svc_pgarr_free(&a);
  return rc;
}

int referral_store_due(struct referral_store *s, struct svc_pg_batch *b, int64_t now_us,
                       size_t limit, const struct referral_loader *l)
{
  char now[24], lim[24];
  snprintf(now, sizeof now, "%lld", (long long)now_us);
  snprintf(lim, sizeof lim, "%zu", limit);
  const char *v[2] = { now, lim };
  return add_load(b, s->due, 2, v, NULL, NULL, l);
}

/* ---- saving ----------------------------------------------------------------- */

int referral_store_save(struct referral_store *s, struct svc_pg_batch *b,
                        const struct referral_ticket *t)
{
  char id[24], recv[24], ret[16], res[24], cby[24], clo[24], due[24], wait[24];
  char *steps = steps_text(t), *pending = pending_text(t);
  if (!steps || !pending) {
    free(steps);
    free(pending);
    return -1;
  }
  snprintf(id, sizeof id, "%llu", (unsigned long long)t->ticket_id);
  snprintf(recv, sizeof recv, "%lld", (long long)t->received_us);
  snprintf(ret, sizeof ret, "%d", t->returns);
  snprintf(res, sizeof res, "%lld", (long long)t->resolved_us);
  snprintf(cby, sizeof cby, "%lld", (long long)t->close_by_us);
  snprintf(clo, sizeof clo, "%lld", (long long)t->closed_us);
  snprintf(due, sizeof due, "%lld", (long long)referral_next_due(t));
  snprintf(wait, sizeof wait, "%lld", (long long)t->wait_us);
  const char *v[29] = {
    t->ticket_no, id, referral_ticket_state_name(t->state), t->request_type, t->category,
    t->compound, t->street, t->district, t->management, t->company, t->repeat_of,
    t->pseudonym, t->masked_phone, t->address ? t->address : "", t->content ? t->content : "",
    recv, t->urgent ? "t" : "f", ret, t->consult ? "t" : "f", t->violation_done ? "t" : "f",
    res, cby, clo, steps, due, pending, t->exempt ? "t" : "f", t->wait_reason, wait,
  };
  int rc = svc_pg_batch_add(b, s->save, 29, v, NULL, NULL, 0, NULL, NULL);
  free(steps);
  free(pending);
  return rc;
}

/* ---- ops queries --------------------------------------------------------------- */

static void count_result(void *arg, const PGresult *r)
{
  if (PQntuples(r) == 1) *(uint32_t *)arg = (uint32_t)col_i64(r, 0, 0);
}

int referral_store_count(struct referral_store *s, struct svc_pg_batch *b, uint32_t *total)
{
  return svc_pg_batch_add(b, s->count, 0, NULL, NULL, NULL, 0, count_result, total);
}

int referral_store_page(struct referral_store *s, struct svc_pg_batch *b, uint32_t offset,
                        uint32_t limit, const struct referral_loader *l)
{
  char off[16], lim[16];
  snprintf(off, sizeof off, "%u", offset);
  snprintf(lim, sizeof lim, "%u", limit);
  const char *v[2] = { off, lim };
  return add_load(b, s->page, 2, v, NULL, NULL, l);
}

int referral_store_returned(struct referral_store *s, struct svc_pg_batch *b,
                            const struct referral_loader *l)
{
  return add_load(b, s->returned, 0, NULL, NULL, NULL, l);
}

int referral_store_clock(struct referral_store *s, struct svc_pg_batch *b, int64_t in_us,
                         int64_t out_us)
{
  char in[24], out[24];
  snprintf(in, sizeof in, "%lld", (long long)in_us);
  snprintf(out, sizeof out, "%lld", (long long)out_us);
  const char *v[2] = { in, out };
  return svc_pg_batch_add(b, s->clock, 2, v, NULL, NULL, 0, NULL, NULL);
}

int referral_store_load_clock(const char *conninfo, int64_t *in_us, int64_t *out_us)
{
  int64_t v[2];
  int rc = svc_pg_fetch_row(conninfo, "SELECT in_watermark, out_watermark FROM clock", v, 2,
                            "the watermarks");
  *in_us = v[0];
  *out_us = v[1];
  return rc;
}

/* ---- R-I6a one-off: typed numbers taken from intake before it masked them -- */

#define SCRUB_PAGE 500
#define SCRUB_LOG_EVERY 20 /* pages between progress lines */

/* The tickets whose content or address may hold an unmasked number. */
static const char SCRUB_TICKETS_SQL[] =
  "SELECT ticket_no, content, address FROM tickets WHERE ticket_no > $1"
  " AND (content ~ $2 OR address ~ $2) ORDER BY ticket_no LIMIT $3";
static const char SCRUB_UPDATE_SQL[] =
  "UPDATE tickets t SET content = u.content, address = u.address"
  " FROM unnest($1::text[], $2::text[], $3::text[]) AS u (ticket_no, content, address)"
  " WHERE t.ticket_no = u.ticket_no";

/* Adds row i of r to the update arrays if masking changes it: 1 added, 0
 * not, -1 out of memory. */
static int scrub_row(struct svc_pgarr a[3], const PGresult *r, int i)
{
  int cc = 0, ac = 0, rc = -1;
  char *content = svc_mask_dup(PQgetvalue(r, i, 1), &cc);
  char *address = svc_mask_dup(PQgetvalue(r, i, 2), &ac);
  if (content && address) {
    rc = cc || ac;
    if (rc) {
      svc_pgarr_add(&a[0], PQgetvalue(r, i, 0), (size_t)PQgetlength(r, i, 0));
      svc_pgarr_add(&a[1], content, strlen(content));
      svc_pgarr_add(&a[2], address, strlen(address));
    }
  }
  free(content);
  free(address);
  return rc;
}

/* Writes the page's masked rows (one statement, committed on its own). */
static int scrub_update(PGconn *c, struct svc_pgarr a[3])
{
  int fail = 0;
  for (int j = 0; j < 3; j++) fail |= svc_pgarr_finish(&a[j]);
  if (fail) return -1;
  const char *v[3] = { a[0].buf, a[1].buf, a[2].buf };
  int len[3] = { (int)a[0].len, (int)a[1].len, (int)a[2].len }, fmt[3] = { 1, 1, 1 };
  PGresult *u = svc_pg_exec(c, SCRUB_UPDATE_SQL, 3, v, len, fmt, 0, "tickets");
  int rc = u ? 0 : -1;
  PQclear(u);
  return rc;
}

/* Masks the page of tickets after `after` (a ticket_no, updated); *rows:
 * rows read. 0 or -1. */
static int scrub_page(PGconn *c, char *after, size_t n_after, int *rows, int64_t *changed)
{
  char l[16];
  snprintf(l, sizeof l, "%d", SCRUB_PAGE);
  const char *v[3] = { after, SVC_MASK_CANDIDATE_RE, l };
  PGresult *r = svc_pg_exec(c, SCRUB_TICKETS_SQL, 3, v, NULL, NULL, 0, "tickets page");
  if (!r) return -1;
  struct svc_pgarr arr[3];
  for (int j = 0; j < 3; j++) svc_pgarr_init(&arr[j], SVC_OID_TEXT);
  int n = PQntuples(r), k = 0, rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    int x = scrub_row(arr, r, i);
    if (x < 0) rc = -1;
    k += x > 0;
    snprintf(after, n_after, "%s", PQgetvalue(r, i, 0));
  }
  PQclear(r);
  if (rc == 0 && k > 0) rc = scrub_update(c, arr);
  if (rc == 0) *changed += k;
  for (int j = 0; j < 3; j++) svc_pgarr_free(&arr[j]);
  *rows = n;
  return rc;
}

static int scrub_tickets(PGconn *c, int64_t *changed)
{
  char after[REFERRAL_CODE_MAX + 1] = "";
  int64_t mine = 0;
  int rows = 0, pages = 0;
  do {
    if (scrub_page(c, after, sizeof after, &rows, &mine)) return -1;
    if (++pages % SCRUB_LOG_EVERY == 0)
      svc_info("masking stored tickets", " masked=%lld", (long long)mine);
  } while (rows == SCRUB_PAGE);
  svc_info("stored tickets masked", " masked=%lld", (long long)mine);
  *changed += mine;
  return 0;
}

struct scrub { referral_payload_fn issued; };

/* The one-off: the outbox's step.issued payloads, then the tickets. */
static int scrub_run(PGconn *c, void *arg, int64_t *changed)
{
  const struct scrub *sc = arg;
  if (svc_stream_rewrite(c, "step.issued", sc->issued, NULL, changed)) return -1;
  return scrub_tickets(c, changed);
}

int referral_store_scrub(const char *conninfo, referral_payload_fn issued)
{
  struct scrub sc = { issued };
  return svc_pg_one_off(conninfo, REFERRAL_SCRUB_NAME, scrub_run, &sc);
}
