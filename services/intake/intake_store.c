/* All SQL of whistle-intake: looking tickets up, finding repeat candidates,
 * inserting tickets with their caller apart, triage, exemption, callbacks and
 * the retention purge. Results are copied into the caller's plain structs;
 * no PGresult leaves this file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "svc_log.h"
#include "svc_pg.h"

struct intake_store {
  struct svc_pg_stmt *lookup, *candidates, *insert, *feedback, *triage, *exempt, *purge;
};

static const char LOOKUP_SQL[] =
  "SELECT id, fingerprint, category, compound, disposition, request_type,"
  " coalesce(exempt_reason, ''), street, district FROM tickets WHERE ticket_no = $1";
static const char CANDIDATES_SQL[] =
  "SELECT ticket_no, received_us, request_type, disposition, repeat_of IS NOT NULL,"
  " closed_us IS NOT NULL FROM tickets"
  /* pseudonym <> '' restates the predicate of the partial index tickets_repeats:
   * without it the generic plan of this prepared statement (used after five
   * executions) cannot use that index and scans the whole table per ticket. */
  " WHERE pseudonym = $1 AND pseudonym <> '' AND compound = $2 AND category = $3"
  "   AND received_us >= $4 AND received_us <= $5"
  " ORDER BY received_us DESC LIMIT 50";
static const char INSERT_SQL[] =
  "WITH t AS (INSERT INTO tickets (ticket_no, fingerprint, received_us, request_type,"
  "   hotline_category, category, category_source, compound, street, district, address,"
  "   content, urgency, pseudonym, masked_phone, disposition, repeat_of, triage_reason)"
  "  VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16,"
  "   nullif($17, ''), nullif($18, ''))"
  "  ON CONFLICT (ticket_no) DO NOTHING RETURNING id),"
  " c AS (INSERT INTO callers (ticket_id, phone, name)"
  "  SELECT id, nullif($19, ''), nullif($20, '') FROM t)"
  " SELECT id FROM t";
static const char FEEDBACK_SQL[] =
  "WITH t AS (SELECT 1 FROM tickets WHERE ticket_no = $1),"
  " ins AS (INSERT INTO feedback (ticket_no, at_us, satisfaction)"
  "  SELECT $1, $2, $3 FROM t ON CONFLICT DO NOTHING RETURNING 1)"
  " SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM ins)";
static const char TRIAGE_SQL[] =
  "UPDATE tickets SET compound = $2, street = $3, district = $4, category = $5,"
  " category_source = 'operator', disposition = $6, triaged_us = $7, triaged_by = $8"
  " WHERE ticket_no = $1 AND disposition = 'TRIAGE' RETURNING id";
static const char EXEMPT_SQL[] =
  "UPDATE tickets SET exempt_reason = $2, exempt_us = $3, exempt_by = $4"
  " WHERE ticket_no = $1 AND exempt_reason IS NULL RETURNING id";
static const char PURGE_SQL[] =
  "UPDATE callers c SET phone = NULL, name = NULL, erased_us = $1 FROM tickets t"
  " WHERE c.ticket_id = t.id AND c.erased_us IS NULL"
  "   AND ((t.closed_us IS NOT NULL AND t.closed_us < $2)"
  "     OR (t.disposition = 'RECORDED' AND t.received_us < $2))";

struct intake_store *intake_store_new(struct svc_pg *pg)
{
  struct intake_store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->lookup = svc_pg_prepare(pg, LOOKUP_SQL, 1, NULL);
  s->candidates = svc_pg_prepare(pg, CANDIDATES_SQL, 5, NULL);
  s->insert = svc_pg_prepare(pg, INSERT_SQL, 20, NULL);
  s->feedback = svc_pg_prepare(pg, FEEDBACK_SQL, 3, NULL);
  s->triage = svc_pg_prepare(pg, TRIAGE_SQL, 8, NULL);
  s->exempt = svc_pg_prepare(pg, EXEMPT_SQL, 4, NULL);
  s->purge = svc_pg_prepare(pg, PURGE_SQL, 2, NULL);
  if (!s->lookup || !s->candidates || !s->insert || !s->feedback || !s->triage || !s->exempt ||
      !s->purge) {
    free(s);
    return NULL;
  }
  return s;
}

void intake_store_destroy(struct intake_store **s)
{
  free(*s);
  *s = NULL;
}

static void copy(char *dst, size_t n, const PGresult *r, int row, int col)
{
  snprintf(dst, n, "%s", PQgetvalue(r, row, col));
}

static void lookup_result(void *arg, const PGresult *r)
{
  struct intake_existing *e = arg;
  e->found = PQntuples(r) == 1;
  if (!e->found) return;
  e->id = (uint64_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10);
  copy(e->fingerprint, sizeof e->fingerprint, r, 0, 1);
  copy(e->category, sizeof e->category, r, 0, 2);
  copy(e->compound, sizeof e->compound, r, 0, 3);
  copy(e->disposition, sizeof e->disposition, r, 0, 4);
  copy(e->request_type, sizeof e->request_type, r, 0, 5);
  e->exempt = PQgetvalue(r, 0, 6)[0] != 0;
  copy(e->street, sizeof e->street, r, 0, 7);
  copy(e->district, sizeof e->district, r, 0, 8);
}

int intake_store_lookup(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                        struct intake_existing *out)
{
  memset(out, 0, sizeof *out);
  const char *v[1] = { ticket_no };
  return svc_pg_batch_add(b, s->lookup, 1, v, NULL, NULL, 0, lookup_result, out);
}

static void candidates_result(void *arg, const PGresult *r)
{
  struct intake_candidates *c = arg;
  int rows = PQntuples(r);
  c->n = 0;
  for (int i = 0; i < rows && c->n < INTAKE_MAX_CANDIDATES; i++) {
    struct intake_candidate *x = &c->v[c->n++];
    copy(x->ticket_no, sizeof x->ticket_no, r, i, 0);
    x->received_us = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    copy(x->request_type, sizeof x->request_type, r, i, 2);
    copy(x->disposition, sizeof x->disposition, r, i, 3);
    x->is_repeat = PQgetvalue(r, i, 4)[0] == 't';
    x->closed = PQgetvalue(r, i, 5)[0] == 't';
  }
}

int intake_store_candidates(struct intake_store *s, struct svc_pg_batch *b, const char *pseudonym,
                            const char *compound, const char *category, int64_t from_us,
                            int64_t to_us, struct intake_candidates *out)
{
  char f[24], t[24];
  snprintf(f, sizeof f, "%lld", (long long)from_us);
  snprintf(t, sizeof t, "%lld", (long long)to_us);
  out->n = 0;
  const char *v[5] = { pseudonym, compound, category, f, t };
  return svc_pg_batch_add(b, s->candidates, 5, v, NULL, NULL, 0, candidates_result, out);
}

static void id_result(void *arg, const PGresult *r)
{
  uint64_t *id = arg;
  *id = PQntuples(r) == 1 ? (uint64_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
}

int intake_store_insert(struct intake_store *s, struct svc_pg_batch *b,
                        const struct intake_ticket_row *t, uint64_t *id_out)
{
  char recv[24], urg[8];
  snprintf(recv, sizeof recv, "%lld", (long long)t->received_us);
  snprintf(urg, sizeof urg, "%u", t->urgency);
  const char *v[20] = {
    t->ticket_no, t->fingerprint, recv, t->request_type, t->hotline_category, t->category,
    t->category_source, t->compound, t->street, t->district, t->address, t->content, urg,
    t->pseudonym, t->masked_phone, t->disposition, t->repeat_of, t->triage_reason,
    t->caller_phone, t->caller_name,
  };
  *id_out = 0;
  return svc_pg_batch_add(b, s->insert, 20, v, NULL, NULL, 0, id_result, id_out);
}

static void feedback_result(void *arg, const PGresult *r)
{
  int *state = arg; /* 0 unknown ticket, 1 already recorded, 2 recorded now */
  if (PQntuples(r) != 1) return;
  int known = atoi(PQgetvalue(r, 0, 0)) > 0, fresh = atoi(PQgetvalue(r, 0, 1)) > 0;
  *state = !known ? 0 : (fresh ? 2 : 1);
}

int intake_store_feedback(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                          int64_t at_us, const char *satisfaction, int *state_out)
{
  char at[24];
  snprintf(at, sizeof at, "%lld", (long long)at_us);
  const char *v[3] = { ticket_no, at, satisfaction };
  *state_out = 0;
  return svc_pg_batch_add(b, s->feedback, 3, v, NULL, NULL, 0, feedback_result, state_out);
}

int intake_store_triage(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                        const char *compound, const char *street, const char *district,
                        const char *category, const char *disposition, int64_t at_us,
                        const char *operator_id, uint64_t *id_out)
{
  char at[24];
  snprintf(at, sizeof at, "%lld", (long long)at_us);
  const char *v[8] = { ticket_no, compound, street, district, category, disposition, at,
                       operator_id };
  *id_out = 0;
  return svc_pg_batch_add(b, s->triage, 8, v, NULL, NULL, 0, id_result, id_out);
}

int intake_store_exempt(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                        const char *reason, int64_t at_us, const char *operator_id,
                        uint64_t *id_out)
{
  char at[24];
  snprintf(at, sizeof at, "%lld", (long long)at_us);
  const char *v[4] = { ticket_no, reason, at, operator_id };
  *id_out = 0;
  return svc_pg_batch_add(b, s->exempt, 4, v, NULL, NULL, 0, id_result, id_out);
}

static void count_result(void *arg, const PGresult *r)
{
  uint64_t *n = arg;
  *n = (uint64_t)strtoull(PQcmdTuples((PGresult *)r), NULL, 10);
}

int intake_store_purge(struct intake_store *s, struct svc_pg_batch *b, int64_t now_us,
                       int64_t cutoff_us, uint64_t *erased_out)
{
  char now[24], cut[24];
  snprintf(now, sizeof now, "%lld", (long long)now_us);
  snprintf(cut, sizeof cut, "%lld", (long long)cutoff_us);
  const char *v[2] = { now, cut };
  *erased_out = 0;
  return svc_pg_batch_add(b, s->purge, 2, v, NULL, NULL, 0, count_result, erased_out);
}

int intake_store_load_clock(const char *conninfo, int64_t *watermark_us, int64_t *latest_us)
{
  PGconn *c = PQconnectdb(conninfo);
  int rc = -1;
  *watermark_us = *latest_us = 0;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult *r = PQexec(c, "SELECT coalesce(max(event_us) FILTER (WHERE kind = 'WATERMARK'), 0),"
                            " coalesce(max(event_us), 0) FROM stream_outbox");
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1) {
      *watermark_us = strtoll(PQgetvalue(r, 0, 0), NULL, 10);
      *latest_us = strtoll(PQgetvalue(r, 0, 1), NULL, 10);
      rc = 0;
    }
    PQclear(r);
  }
  if (rc) svc_error("cannot read the last event times", " error=\"%s\"", PQerrorMessage(c));
  PQfinish(c);
  return rc;
}

/* ---- closure (R-I5, R-I6): referral's ticket.closed events ---------------- */

static const char CLOSED_SQL[] =
  "UPDATE tickets t SET closed_us = u.at FROM unnest($1::text[], $2::int8[]) AS u(no, at)"
  " WHERE t.ticket_no = u.no AND t.closed_us IS NULL";

struct svc_pg_stmt *intake_store_prepare_closed(struct svc_pg *pg)
{
  return svc_pg_prepare(pg, CLOSED_SQL, 2, NULL);
}

int intake_store_closed(struct svc_pg_stmt *st, struct svc_pg_batch *b,
                        const char *const *ticket_nos, const int64_t *at_us, size_t n)
{
  struct svc_pgarr a[2];
  svc_pgarr_init(&a[0], SVC_OID_TEXT);
  svc_pgarr_init(&a[1], SVC_OID_INT8);
  for (size_t i = 0; i < n; i++) {
    svc_pgarr_add(&a[0], ticket_nos[i], strlen(ticket_nos[i]));
    svc_pgarr_add_i64(&a[1], at_us[i]);
  }
  int rc = svc_pgarr_finish(&a[0]) | svc_pgarr_finish(&a[1]);
  if (!rc) {
    const char *v[2] = { a[0].buf, a[1].buf };
    int len[2] = { (int)a[0].len, (int)a[1].len }, fmt[2] = { 1, 1 };
    rc = svc_pg_batch_add(b, st, 2, v, len, fmt, 0, NULL, NULL);
  }
  svc_pgarr_free(&a[0]);
  svc_pgarr_free(&a[1]);
  return rc;
}
