/* All SQL of whistle-escalation: triggers recorded once by key, what an
 * issuance reads (pending triggers, the ladder, the counters, the notices
 * due again) and writes (notices with their payload, ladder, counters,
 * redeliveries, the clock), signatures and the ops queries. No PGresult
 * leaves this file: rows go out as text values. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escalation.h"
#include "svc_pg.h"

enum {
  S_TRIGGER, S_CLOCK, S_LOCK, S_L_PENDING, S_L_LADDER, S_L_COUNTERS, S_L_REDELIVER, S_NOTICE, S_ISSUED,
  S_LADDER, S_COUNTER, S_REDELIVERED, S_PUBLISHED, S_SIGN, S_Q_NOTICES, S_Q_TRACE, S_Q_UNSIGNED,
  S_N
};

#define NOTICE_COLS "number, type, recipient, array_to_json(cc)::text, rule, rule_set, period," \
                    " key, event_us, array_to_json(evidence)::text, array_to_json(measures)::text," \
                    " signed_us"

static const struct { int nparams; const char *sql; } SQL[S_N] = {
  [S_TRIGGER] = { 19,
    "INSERT INTO triggers VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10::text[], $11::text[],"
    " $12::text[], $13::text[], $14, $15, $16, $17, $18, $19) ON CONFLICT (key) DO NOTHING" },
  [S_CLOCK] = { 2, "UPDATE clock SET referral_wm = greatest(referral_wm, $1),"
                   " rating_wm = greatest(rating_wm, $2)" },
  [S_LOCK] = { 0, "SELECT 'k', out_wm::text FROM clock FOR UPDATE" },
  [S_L_PENDING] = { 1,
    "SELECT 't', key, source, event_us::text, rule, rule_id, rule_set, period, type, recipient,"
    " array_to_json(cc)::text, array_to_json(measures)::text, array_to_json(evidence)::text,"
    " array_to_json(facts)::text, ticket_no, step::text, resolve::text, unit, quarter::text"
    " FROM triggers WHERE NOT issued AND event_us < $1 ORDER BY event_us, key" },
  [S_L_LADDER] = { 1,
    "SELECT 'l', l.unit, l.quarter::text, l.k::text FROM ladder l WHERE (l.unit, l.quarter) IN"
    " (SELECT unit, quarter FROM triggers WHERE NOT issued AND source = 'overdue'"
    "  AND event_us < $1)" },
  [S_L_COUNTERS] = { 0, "SELECT 'c', type, year::text, n::text FROM counters" },
  [S_L_REDELIVER] = { 1,
    "SELECT 'r', number, encode(payload, 'hex') FROM notices WHERE signed_us IS NULL"
    " AND NOT redelivered AND redeliver_us < $1 ORDER BY redeliver_us, number" },
  [S_NOTICE] = { 21,
    "INSERT INTO notices VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text[], $9, $10, $11, $12, $13,"
    " $14::text[], $15::text[], $16, $17, $18, $19, $20, NULL, decode($21, 'hex'))"
    " ON CONFLICT DO NOTHING" },
  [S_ISSUED] = { 1, "UPDATE triggers SET issued = true WHERE key = ANY ($1::text[])" },
  [S_LADDER] = { 3, "INSERT INTO ladder VALUES ($1, $2, $3) ON CONFLICT (unit, quarter)"
                    " DO UPDATE SET k = $3" },
  [S_COUNTER] = { 3, "INSERT INTO counters VALUES ($1, $2, $3) ON CONFLICT (type, year)"
                     " DO UPDATE SET n = $3" },
  [S_REDELIVERED] = { 1, "UPDATE notices SET redelivered = true WHERE number = $1" },
  [S_PUBLISHED] = { 1, "UPDATE clock SET out_wm = greatest(out_wm, $1)" },
  [S_SIGN] = { 3,
    "WITH n AS (SELECT number, recipient, signed_us FROM notices WHERE number = $1),"
    " s AS (UPDATE notices SET signed_us = $3 WHERE number = $1 AND recipient = $2"
    "  AND signed_us IS NULL RETURNING signed_us, payload)"
    " SELECT CASE WHEN EXISTS (SELECT 1 FROM s) THEN 'signed'"
    "  WHEN NOT EXISTS (SELECT 1 FROM n) THEN 'unknown'"
    "  WHEN (SELECT recipient FROM n) <> $2 THEN 'wrong_recipient' ELSE 'already' END,"
    " coalesce((SELECT signed_us FROM s), (SELECT signed_us FROM n))::text,"
    " (SELECT encode(payload, 'hex') FROM s)" },
  [S_Q_NOTICES] = { 0, "SELECT " NOTICE_COLS " FROM notices ORDER BY type, year, n" },
  [S_Q_TRACE] = { 1,
    "SELECT number, type, key, source, recipient, rule_id, period, event_us::text,"
    " array_to_json(evidence)::text, array_to_json(measures)::text, text, signed_us::text, k::text"
    " FROM notices WHERE number = $1" },
  [S_Q_UNSIGNED] = { 0, "SELECT " NOTICE_COLS " FROM notices WHERE redelivered AND signed_us IS NULL"
                        " ORDER BY type, year, n" },
};

struct esc_store { struct svc_pg_stmt *st[S_N]; };

struct esc_store *esc_store_new(struct svc_pg *pg)
{
  struct esc_store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  for (int i = 0; i < S_N; i++)
    if (!(s->st[i] = svc_pg_prepare(pg, SQL[i].sql, SQL[i].nparams, NULL))) {
      free(s);
      return NULL;
    }
  return s;
}

void esc_store_destroy(struct esc_store **s)
{
  free(*s);
  *s = NULL;
}

#define I64(buf, x) (snprintf(buf, sizeof buf, "%lld", (long long)(x)), buf)
#define BOOL(x) ((x) ? "t" : "f")

static int add(struct svc_pg_batch *b, struct esc_store *s, int which, const char *const *v,
               esc_row_cb cb, void *arg)
{
  return svc_pg_batch_add_rows(b, s->st[which], SQL[which].nparams, v, NULL, NULL, cb, arg);
}

int esc_store_trigger(struct esc_store *s, struct svc_pg_batch *b, const struct esc_trigger *t)
{
  char at[24], step[24], q[24];
  char *cc = svc_pg_text_array(t->cc, t->n_cc), *ms = svc_pg_text_array(t->measures, t->n_measures);
  char *ev = svc_pg_text_array(t->evidence, t->n_evidence), *fc = svc_pg_text_array(t->facts, t->n_facts);
  int rc = -1;
  if (cc && ms && ev && fc) {
    const char *v[19] = { t->key, t->source, I64(at, t->event_us), t->rule, t->rule_id, t->rule_set,
                          t->period, t->type, t->recipient, cc, ms, ev, fc, t->ticket_no,
                          I64(step, t->step), BOOL(t->resolve), t->unit, I64(q, t->quarter), "f" };
    rc = add(b, s, S_TRIGGER, v, NULL, NULL);
  }
  free(cc);
  free(ms);
  free(ev);
  free(fc);
  return rc;
}

int esc_store_clock(struct esc_store *s, struct svc_pg_batch *b, int64_t referral_wm, int64_t rating_wm)
{
  char a[24], c[24];
  const char *v[2] = { I64(a, referral_wm), I64(c, rating_wm) };
  return add(b, s, S_CLOCK, v, NULL, NULL);
}

int esc_store_issue_load(struct esc_store *s, struct svc_pg_batch *b, int64_t until_us,
                         esc_row_cb cb, void *arg)
{
  char u[24];
  const char *v[1] = { I64(u, until_us) };
  int rc = add(b, s, S_LOCK, NULL, cb, arg); /* first: an earlier issuance still committing is waited for */
  rc = rc ? rc : add(b, s, S_L_PENDING, v, cb, arg);
  rc = rc ? rc : add(b, s, S_L_LADDER, v, cb, arg);
  rc = rc ? rc : add(b, s, S_L_COUNTERS, NULL, cb, arg);
  return rc ? rc : add(b, s, S_L_REDELIVER, v, cb, arg);
}

static char *hex(const uint8_t *p, size_t n)
{
  static const char d[] = "0123456789abcdef";
  char *s = malloc(2 * n + 1);
  if (!s) return NULL;
  for (size_t i = 0; i < n; i++) {
    s[2 * i] = d[p[i] >> 4];
    s[2 * i + 1] = d[p[i] & 15];
  }
  s[2 * n] = 0;
  return s;
}

int esc_store_notice(struct esc_store *s, struct svc_pg_batch *b, const struct esc_notice_row *n)
{
  char y[16], nn[24], at[24], k[16], rb[24], rd[24];
  char *cc = svc_pg_text_array(n->cc, n->n_cc), *ev = svc_pg_text_array(n->evidence, n->n_evidence);
  char *ms = svc_pg_text_array(n->measures, n->n_measures), *pl = hex(n->payload, n->payload_len);
  int rc = -1;
  if (cc && ev && ms && pl) {
    const char *v[21] = { n->number, n->type, I64(y, n->year), I64(nn, n->n), n->key, n->source,
                          n->recipient, cc, n->rule, n->rule_id, n->rule_set, n->period,
                          I64(at, n->event_us), ev, ms, I64(k, n->k), n->text,
                          I64(rb, n->respond_by_us), I64(rd, n->redeliver_us), BOOL(n->redelivered), pl };
    rc = add(b, s, S_NOTICE, v, NULL, NULL);
  }
  free(cc);
  free(ev);
  free(ms);
  free(pl);
  return rc;
}

int esc_store_issued(struct esc_store *s, struct svc_pg_batch *b, const char *const *keys, size_t n)
{
  char *a = svc_pg_text_array(keys, n);
  if (!a) return -1;
  const char *v[1] = { a };
  int rc = add(b, s, S_ISSUED, v, NULL, NULL);
  free(a);
  return rc;
}

int esc_store_ladder(struct esc_store *s, struct svc_pg_batch *b, const char *unit, int32_t quarter,
                     int k)
{
  char q[16], kk[16];
  const char *v[3] = { unit, I64(q, quarter), I64(kk, k) };
  return add(b, s, S_LADDER, v, NULL, NULL);
}

int esc_store_counter(struct esc_store *s, struct svc_pg_batch *b, const char *type, int year,
                      int64_t n)
{
  char y[16], nn[24];
  const char *v[3] = { type, I64(y, year), I64(nn, n) };
  return add(b, s, S_COUNTER, v, NULL, NULL);
}

int esc_store_redelivered(struct esc_store *s, struct svc_pg_batch *b, const char *number)
{
  const char *v[1] = { number };
  return add(b, s, S_REDELIVERED, v, NULL, NULL);
}

int esc_store_published(struct esc_store *s, struct svc_pg_batch *b, int64_t out_wm)
{
  char w[24];
  const char *v[1] = { I64(w, out_wm) };
  return add(b, s, S_PUBLISHED, v, NULL, NULL);
}

int esc_store_sign(struct esc_store *s, struct svc_pg_batch *b, const char *number,
                   const char *recipient, int64_t at_us, esc_row_cb cb, void *arg)
{
  char at[24];
  const char *v[3] = { number, recipient, I64(at, at_us) };
  return add(b, s, S_SIGN, v, cb, arg);
}

int esc_store_query(struct esc_store *s, struct svc_pg_batch *b, enum esc_query q, const char *number,
                    esc_row_cb cb, void *arg)
{
  const char *v[1] = { number ? number : "" };
  int which = q == EQ_NOTICES ? S_Q_NOTICES : q == EQ_TRACE ? S_Q_TRACE : S_Q_UNSIGNED;
  return add(b, s, which, v, cb, arg);
}

int esc_store_load_clock(const char *conninfo, struct esc_clock_row *out)
{
  int64_t v[3] = { 0 };
  int rc = svc_pg_fetch_row(conninfo, "SELECT referral_wm, rating_wm, out_wm FROM clock", v, 3,
                            "escalation's clock");
  out->referral_wm = v[0];
  out->rating_wm = v[1];
  out->out_wm = v[2];
  return rc;
}
