/* All SQL of whistle-rating: the facts about tickets and steps (loaded and
 * saved by the stream handlers), the per-period sums kept with them, the
 * nine-prohibitions state, deductions, inspections, what a period close reads
 * and publishes, decisions, the clock and the queries of published results.
 * Rows are handed out as structs or text values; no PGresult leaves here. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "rating.h"
#include "svc_log.h"
#include "svc_pg.h"

enum {
  S_LOAD_T, S_LOAD_S, S_LOAD_P3, S_SAVE_T, S_SAVE_S, S_PDELTA, S_UDELTA, S_VIOL, S_PYEAR, S_CD4,
  S_DEDUCT, S_DECISION, S_HELD, S_EMITTED, S_CLOCK, S_CLOSED, S_LOCK,
  S_C_PM, S_C_RK, S_C_UM, S_C_CR, S_C_US, S_C_SR, S_C_PQ, S_C_PD, S_C_PS, S_C_UH,
  S_E_T, S_E_S, S_E_D, S_E_I,
  S_RANKING, S_USCORE, S_SRUN, S_STARS, S_INSPECT,
  S_Q_RANKINGS, S_Q_UNITS, S_Q_CREDIT, S_Q_STARS, S_Q_DECISIONS,
  S_N
};

struct rating_store { struct svc_pg_stmt *st[S_N]; };

#define TCOLS "ticket_no, known, request_type, category, compound, company, street, district," \
              " management, received_us, counting_category, triage, repeat, referred, exempt, counted"
#define SCOLS "ticket_no, step, unit, street_unit, district, issued_us, accept_by_us, resolve_by_us," \
              " accepted_us, resolved_us, returned_us, reopened_us, in_pop, acc_ok, res_ok"
#define PAIRS(a, b) "(SELECT * FROM unnest(" a "::text[], " b "::int[]))"

static const struct { int nparams; const char *sql; } SQL[S_N] = {
  [S_LOAD_T] = { 1, "SELECT " TCOLS " FROM tickets WHERE ticket_no = ANY($1::text[])" },
  [S_LOAD_S] = { 1, "SELECT " SCOLS " FROM steps WHERE ticket_no = ANY($1::text[])" },
  [S_LOAD_P3] = { 3,
    "SELECT 'p', compound, year::text, mask::text FROM project_year"
    " WHERE (compound, year) IN " PAIRS("$1", "$3")
    " UNION ALL SELECT 'c', company, year::text, d4_fired::text FROM company_year"
    " WHERE (company, year) IN " PAIRS("$2", "$3")
    " UNION ALL (SELECT 'v', compound, year::text, ticket_no FROM violations"
    " WHERE (compound, year) IN " PAIRS("$1", "$3") " ORDER BY at_us, ticket_no)" },
  [S_SAVE_T] = { 17,
    "INSERT INTO tickets (" TCOLS ", month) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10,"
    " $11, $12, $13, $14, $15, $16, $17) ON CONFLICT (ticket_no) DO UPDATE SET known = $2,"
    " request_type = $3, category = $4, compound = $5, company = $6, street = $7, district = $8,"
    " management = $9, received_us = $10, counting_category = $11, triage = $12, repeat = $13,"
    " referred = $14, exempt = $15, counted = $16, month = $17" },
  [S_SAVE_S] = { 16,
    "INSERT INTO steps (" SCOLS ", month) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11,"
    " $12, $13, $14, $15, $16) ON CONFLICT (ticket_no, step) DO UPDATE SET unit = $3,"
    " street_unit = $4, district = $5, issued_us = $6, accept_by_us = $7, resolve_by_us = $8,"
    " accepted_us = $9, resolved_us = $10, returned_us = $11, reopened_us = $12, in_pop = $13,"
    " acc_ok = $14, res_ok = $15, month = $16" },
  [S_PDELTA] = { 4,
    "INSERT INTO project_month VALUES ($1, $2, $3, $4) ON CONFLICT (month, compound)"
    " DO UPDATE SET count = project_month.count + $4, company = $3" },
  [S_UDELTA] = { 9,
    "INSERT INTO unit_month VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)"
    " ON CONFLICT (month, unit) DO UPDATE SET population = unit_month.population + $5,"
    " accepted = unit_month.accepted + $6, resolved = unit_month.resolved + $7,"
    " callbacks = unit_month.callbacks + $8, satisfied = unit_month.satisfied + $9" },
  [S_VIOL] = { 7, "INSERT INTO violations VALUES ($1, $2, $3, $4, $5, $6, $7)"
                  " ON CONFLICT (ticket_no) DO NOTHING" },
  [S_PYEAR] = { 3, "INSERT INTO project_year VALUES ($1, $2, $3) ON CONFLICT (compound, year)"
                   " DO UPDATE SET mask = $3" },
  [S_CD4] = { 2, "INSERT INTO company_year VALUES ($1, $2, true) ON CONFLICT (company, year)"
                 " DO UPDATE SET d4_fired = true" },
  [S_DEDUCT] = { 5, "INSERT INTO deductions VALUES ($1, $2, $3, $4, $5) ON CONFLICT (key) DO NOTHING" },
  [S_DECISION] = { 17,
    "INSERT INTO decisions VALUES ($1, $2, $3, $4::text[], $5, $6, $7, $8, $9::text[],"
    " $10::text[], $11, $12::text[], $13, $14, $15, $16, $17) ON CONFLICT (key) DO NOTHING" },
  [S_HELD] = { 1,
    "SELECT 'hd', key, rule, rule_id, array_to_json(measures)::text, subject, subject_kind, period,"
    " event_us, array_to_json(evidence)::text, array_to_json(figures)::text, recipient,"
    " array_to_json(cc)::text, rule_set, company, street, district FROM decisions"
    " WHERE NOT emitted AND event_us <= $1 ORDER BY event_us, key COLLATE \"C\"" },
  [S_EMITTED] = { 1, "UPDATE decisions SET emitted = true WHERE NOT emitted AND event_us <= $1" },
  [S_CLOCK] = { 4,
    "UPDATE clock SET intake_wm = greatest(intake_wm, $1), referral_wm = greatest(referral_wm, $2),"
    " first_month = CASE WHEN $3 = 0 THEN first_month WHEN first_month = 0 THEN $3"
    " ELSE least(first_month, $3) END, late = late + $4" },
  [S_LOCK] = { 0, "SELECT 'ck', closed_month::text, out_wm::text FROM clock FOR UPDATE" },
  [S_CLOSED] = { 2, "UPDATE clock SET closed_month = $1, out_wm = greatest(out_wm, $2)" },
  [S_C_PM] = { 1, "SELECT 'pm', compound, company, count::text FROM project_month"
                  " WHERE month = $1 AND count > 0 ORDER BY compound" },
  [S_C_RK] = { 1, "SELECT 'rk', compound, streak::text FROM rankings WHERE month = $1 - 1 AND in_top"
                  " ORDER BY compound" },
  [S_C_UM] = { 1, "SELECT 'um', unit, street_unit::text, district, population::text, accepted::text,"
                  " resolved::text, callbacks::text, satisfied::text FROM unit_month"
                  " WHERE month = $1 AND (population > 0 OR callbacks > 0) ORDER BY unit" },
  [S_C_CR] = { 2, "SELECT 'cr', company, sum(points)::text FROM deductions"
                  " WHERE half = $1 AND at_us < $2 GROUP BY company ORDER BY company" },
  [S_C_US] = { 2, "SELECT 'us', unit, street_unit::text, month::text, score_e2::text FROM unit_scores"
                  " WHERE month >= $1 AND month < $2 ORDER BY unit, month" },
  [S_C_SR] = { 1, "SELECT 'sr', street, run::text FROM street_runs WHERE quarter = $1 - 1 ORDER BY street" },
  [S_C_PQ] = { 1, "SELECT 'pq', compound, raw_sum::text, n::text FROM project_quarter"
                  " WHERE quarter = $1 AND n > 0 ORDER BY compound" },
  [S_C_PD] = { 2, "SELECT 'pd', compound, count(DISTINCT prohibition)::text FROM violations"
                  " WHERE year = $1 AND at_us < $2 GROUP BY compound ORDER BY compound" },
  [S_C_PS] = { 1, "SELECT DISTINCT ON (s.compound) 'ps', s.compound, s.stars::text FROM stars s"
                  " JOIN project_quarter q ON q.compound = s.compound AND q.quarter = $1"
                  " WHERE s.quarter < $1 ORDER BY s.compound, s.quarter DESC" },
  [S_C_UH] = { 2, "SELECT 'uh', district, sum(population)::text, sum(accepted)::text,"
                  " sum(resolved)::text, sum(callbacks)::text, sum(satisfied)::text FROM unit_month"
                  " WHERE street_unit AND month >= $1 AND month < $2 GROUP BY district"
                  " ORDER BY district" },
  [S_E_T] = { 2, "SELECT compound, ticket_no FROM tickets WHERE month = $1 AND counted"
                 " AND compound = ANY($2::text[]) ORDER BY compound, ticket_no" },
  [S_E_S] = { 3, "SELECT unit, ticket_no || '#' || step FROM steps WHERE month >= $1 AND month <= $2"
                 " AND in_pop AND NOT (acc_ok AND res_ok) AND unit = ANY($3::text[])"
                 " ORDER BY unit, ticket_no, step" },
  [S_E_D] = { 3, "SELECT district, ticket_no || '#' || step FROM steps WHERE month >= $1"
                 " AND month <= $2 AND street_unit AND in_pop AND NOT (acc_ok AND res_ok)"
                 " AND district = ANY($3::text[]) ORDER BY district, ticket_no, step" },
  [S_E_I] = { 2, "SELECT compound, 'inspection:' || inspection_id FROM inspections"
                 " WHERE quarter = $1 AND compound = ANY($2::text[])"
                 " ORDER BY compound, inspection_id" },
  /* A close's results, one statement per table (arrays in binary, in the
   * order given; booleans as 0/1, a NULL satisfaction as -1). */
  [S_RANKING] = { 7,
    "INSERT INTO rankings SELECT $1::int, c, co, n, r, t <> 0, k FROM unnest($2::text[],"
    " $3::text[], $4::int8[], $5::int8[], $6::int8[], $7::int8[]) AS x (c, co, n, r, t, k)"
    " ON CONFLICT (month, compound) DO NOTHING" },
  [S_USCORE] = { 10,
    "INSERT INTO unit_scores SELECT $1::int, u, st <> 0, d, p, a, r,"
    " CASE WHEN sa < 0 THEN NULL ELSE sa END, sc, k FROM unnest($2::text[], $3::int8[],"
    " $4::text[], $5::int8[], $6::int8[], $7::int8[], $8::int8[], $9::int8[], $10::int8[])"
    " AS x (u, st, d, p, a, r, sa, sc, k) ON CONFLICT (month, unit) DO NOTHING" },
  [S_SRUN] = { 3, "INSERT INTO street_runs VALUES ($1, $2, $3) ON CONFLICT DO NOTHING" },
  [S_STARS] = { 4,
    "INSERT INTO stars SELECT $1::int, c, sc, st FROM unnest($2::text[], $3::int8[], $4::int8[])"
    " AS x (c, sc, st) ON CONFLICT DO NOTHING" },
  [S_INSPECT] = { 8,
    "WITH ins AS (INSERT INTO inspections SELECT $1, $2, $3, $4, $6::int[], $7, $8"
    "  WHERE (SELECT closed_month FROM clock) < $5"
    "  ON CONFLICT (inspection_id) DO NOTHING RETURNING quarter, compound, raw, rated),"
    " agg AS (INSERT INTO project_quarter SELECT quarter, compound, raw, 1 FROM ins WHERE rated"
    "  ON CONFLICT (quarter, compound) DO UPDATE SET raw_sum = project_quarter.raw_sum"
    "  + EXCLUDED.raw_sum, n = project_quarter.n + 1 RETURNING 1)"
    " SELECT (SELECT count(*) FROM ins) > 0, (SELECT compound = $2 AND at_us = $3 AND"
    "  dims = $6::int[] FROM inspections WHERE inspection_id = $1),"
    "  (SELECT closed_month FROM clock) >= $5" },
  [S_Q_RANKINGS] = { 1, "SELECT compound, company, count, rank, in_top, streak FROM rankings"
                        " WHERE month = $1 ORDER BY rank, compound" },
  [S_Q_UNITS] = { 1, "SELECT unit, population, response_e4, resolution_e4, satisfaction_e4,"
                     " score_e2, rank FROM unit_scores WHERE month = $1 ORDER BY unit" },
  [S_Q_CREDIT] = { 1, "SELECT company, sum(points) FROM deductions WHERE half = $1 AND at_us <"
                      " (SELECT least(intake_wm, referral_wm) FROM clock) GROUP BY company"
                      " ORDER BY company" },
  [S_Q_STARS] = { 1, "SELECT compound, score_e1, stars FROM stars WHERE quarter = $1"
                     " ORDER BY compound" },
  [S_Q_DECISIONS] = { 0, "SELECT key, rule, array_to_json(measures)::text, subject, period,"
                         " event_us, array_to_json(evidence)::text FROM decisions"
                         " ORDER BY key COLLATE \"C\"" },
};

struct rating_store *rating_store_new(struct svc_pg *pg)
{
  struct rating_store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  for (int i = 0; i < S_N; i++)
    if (!(s->st[i] = svc_pg_prepare(pg, SQL[i].sql, SQL[i].nparams, NULL))) {
      free(s);
      return NULL;
    }
  return s;
}

void rating_store_destroy(struct rating_store **s)
{
  free(*s);
  *s = NULL;
}

/* ---- helpers --------------------------------------------------------------- */

struct loads { rating_ticket_cb tcb; rating_step_cb scb; void *arg; };

static void free_hook(struct svc_pg_batch *b, enum svc_pg_outcome o, const char *e, void *arg)
{
  (void)b; (void)o; (void)e;
  free(arg);
}

/* Adds st with text values; rows (if cb) go to cb(arg). */
static int add(struct svc_pg_batch *b, struct svc_pg_stmt *st, int n, const char *const *v,
               const int *len, const int *fmt, rating_row_cb cb, void *arg)
{
  return svc_pg_batch_add_rows(b, st, n, v, len, fmt, cb, arg);
}

#define I64(buf, x) (snprintf(buf, sizeof buf, "%lld", (long long)(x)), buf)
#define BOOL(x) ((x) ? "t" : "f")

static int text_array(struct svc_pgarr *a, const char *const *v, size_t n)
{
  svc_pgarr_init(a, SVC_OID_TEXT);
  for (size_t i = 0; i < n; i++) svc_pgarr_add(a, v[i], strlen(v[i]));
  return svc_pgarr_finish(a);
}

/* "{1,2,3}" of n int32 (malloc'd). */
static char *int_array(const int32_t *v, size_t n)
{
  char *s = malloc(n * 12 + 3), *p = s;
  if (!s) return NULL;
  *p++ = '{';
  for (size_t i = 0; i < n; i++) p += sprintf(p, "%s%d", i ? "," : "", (int)v[i]);
  *p++ = '}';
  *p = 0;
  return s;
}

/* ---- loads ----------------------------------------------------------------- */

static void copy(char *dst, size_t n, const char *s)
{
  snprintf(dst, n, "%s", s ? s : "");
}

static void tickets_cb(void *arg, const PGresult *r)
{
  const struct loads *l = arg;
  for (int i = 0; i < PQntuples(r); i++) {
    struct rating_ticket t;
    memset(&t, 0, sizeof t);
    copy(t.ticket_no, sizeof t.ticket_no, PQgetvalue(r, i, 0));
    t.known = PQgetvalue(r, i, 1)[0] == 't';
    copy(t.request_type, sizeof t.request_type, PQgetvalue(r, i, 2));
    copy(t.category, sizeof t.category, PQgetvalue(r, i, 3));
    copy(t.compound, sizeof t.compound, PQgetvalue(r, i, 4));
    copy(t.company, sizeof t.company, PQgetvalue(r, i, 5));
    copy(t.street, sizeof t.street, PQgetvalue(r, i, 6));
    copy(t.district, sizeof t.district, PQgetvalue(r, i, 7));
    copy(t.management, sizeof t.management, PQgetvalue(r, i, 8));
    t.received_us = strtoll(PQgetvalue(r, i, 9), NULL, 10);
    t.counting_category = PQgetvalue(r, i, 10)[0] == 't';
    t.triage = PQgetvalue(r, i, 11)[0] == 't';
    t.repeat = PQgetvalue(r, i, 12)[0] == 't';
    t.referred = PQgetvalue(r, i, 13)[0] == 't';
    t.exempt = PQgetvalue(r, i, 14)[0] == 't';
    t.counted = PQgetvalue(r, i, 15)[0] == 't';
    l->tcb(l->arg, &t);
  }
}

static void steps_cb(void *arg, const PGresult *r)
{
  const struct loads *l = arg;
  for (int i = 0; i < PQntuples(r); i++) {
    struct rating_step s;
    memset(&s, 0, sizeof s);
    copy(s.ticket_no, sizeof s.ticket_no, PQgetvalue(r, i, 0));
    s.step = (uint32_t)strtoul(PQgetvalue(r, i, 1), NULL, 10);
    copy(s.unit, sizeof s.unit, PQgetvalue(r, i, 2));
    s.street_unit = PQgetvalue(r, i, 3)[0] == 't';
    copy(s.district, sizeof s.district, PQgetvalue(r, i, 4));
    int64_t *t[] = { &s.issued_us, &s.accept_by_us, &s.resolve_by_us, &s.accepted_us,
                     &s.resolved_us, &s.returned_us, &s.reopened_us };
    for (int j = 0; j < 7; j++) *t[j] = strtoll(PQgetvalue(r, i, 5 + j), NULL, 10);
    s.in_pop = PQgetvalue(r, i, 12)[0] == 't';
    s.acc_ok = PQgetvalue(r, i, 13)[0] == 't';
    s.res_ok = PQgetvalue(r, i, 14)[0] == 't';
    l->scb(l->arg, &s);
  }
}

int rating_store_load(struct rating_store *s, struct svc_pg_batch *b, const char *const *nos,
                      size_t n, rating_ticket_cb tcb, rating_step_cb scb, void *arg)
{
  struct svc_pgarr a;
  struct loads *l = malloc(sizeof *l);
  int rc = -1;
  if (!l) return -1;
  *l = (struct loads){ tcb, scb, arg };
  if (svc_pg_batch_hook(b, free_hook, l)) {
    free(l);
    return -1;
  }
  if (text_array(&a, nos, n) == 0) {
    const char *v[1] = { a.buf };
    int len[1] = { (int)a.len }, fmt[1] = { 1 };
    rc = svc_pg_batch_add(b, s->st[S_LOAD_T], 1, v, len, fmt, 0, tickets_cb, l);
    rc = rc ? rc : svc_pg_batch_add(b, s->st[S_LOAD_S], 1, v, len, fmt, 0, steps_cb, l);
  }
  svc_pgarr_free(&a);
  return rc;
}

int rating_store_load_p3(struct rating_store *s, struct svc_pg_batch *b,
                         const char *const *compounds, const char *const *companies,
                         const int32_t *years, size_t n, rating_row_cb cb, void *arg)
{
  char *c1 = svc_pg_text_array(compounds, n), *c2 = svc_pg_text_array(companies, n), *y = int_array(years, n);
  int rc = -1;
  if (c1 && c2 && y) {
    const char *v[3] = { c1, c2, y };
    rc = add(b, s->st[S_LOAD_P3], 3, v, NULL, NULL, cb, arg);
  }
  free(c1);
  free(c2);
  free(y);
  return rc;
}

/* ---- writes from the streams --------------------------------------------------- */

int rating_store_save_ticket(struct rating_store *s, struct svc_pg_batch *b,
                             const struct rating_ticket *t, int32_t month)
{
  char recv[24], mon[24];
  const char *v[17] = { t->ticket_no, BOOL(t->known), t->request_type, t->category, t->compound,
                        t->company, t->street, t->district, t->management,
                        I64(recv, t->received_us), BOOL(t->counting_category), BOOL(t->triage),
                        BOOL(t->repeat), BOOL(t->referred), BOOL(t->exempt), BOOL(t->counted),
                        I64(mon, month) };
  return add(b, s->st[S_SAVE_T], 17, v, NULL, NULL, NULL, NULL);
}

int rating_store_save_step(struct rating_store *s, struct svc_pg_batch *b,
                           const struct rating_step *st, int32_t month)
{
  char no[24], t[7][24], mon[24];
  const int64_t tv[7] = { st->issued_us, st->accept_by_us, st->resolve_by_us, st->accepted_us,
                          st->resolved_us, st->returned_us, st->reopened_us };
  for (int i = 0; i < 7; i++) snprintf(t[i], sizeof t[i], "%lld", (long long)tv[i]);
  const char *v[16] = { st->ticket_no, I64(no, st->step), st->unit, BOOL(st->street_unit),
                        st->district, t[0], t[1], t[2], t[3], t[4], t[5], t[6],
                        BOOL(st->in_pop), BOOL(st->acc_ok), BOOL(st->res_ok), I64(mon, month) };
  return add(b, s->st[S_SAVE_S], 16, v, NULL, NULL, NULL, NULL);
}

int rating_store_project_delta(struct rating_store *s, struct svc_pg_batch *b, int32_t month,
                               const char *compound, const char *company, int64_t delta)
{
  char mon[24], d[24];
  const char *v[4] = { I64(mon, month), compound, company, I64(d, delta) };
  return add(b, s->st[S_PDELTA], 4, v, NULL, NULL, NULL, NULL);
}

int rating_store_unit_delta(struct rating_store *s, struct svc_pg_batch *b, int32_t month,
                            const char *unit, int street_unit, const char *district,
                            const int64_t d[5])
{
  char mon[24], t[5][24];
  for (int i = 0; i < 5; i++) snprintf(t[i], sizeof t[i], "%lld", (long long)d[i]);
  const char *v[9] = { I64(mon, month), unit, BOOL(street_unit), district, t[0], t[1], t[2], t[3], t[4] };
  return add(b, s->st[S_UDELTA], 9, v, NULL, NULL, NULL, NULL);
}

int rating_store_violation(struct rating_store *s, struct svc_pg_batch *b, const char *ticket_no,
                           uint32_t step, const char *compound, const char *company,
                           int prohibition, int64_t at_us, int32_t year)
{
  char st[24], p[24], at[24], y[24];
  const char *v[7] = { ticket_no, I64(st, step), compound, company, I64(p, prohibition),
                       I64(at, at_us), I64(y, year) };
  return add(b, s->st[S_VIOL], 7, v, NULL, NULL, NULL, NULL);
}

int rating_store_project_year(struct rating_store *s, struct svc_pg_batch *b, const char *compound,
                              int32_t year, unsigned mask)
{
  char y[24], m[24];
  const char *v[3] = { compound, I64(y, year), I64(m, mask) };
  return add(b, s->st[S_PYEAR], 3, v, NULL, NULL, NULL, NULL);
}

int rating_store_company_d4(struct rating_store *s, struct svc_pg_batch *b, const char *company,
                            int32_t year)
{
  char y[24];
  const char *v[2] = { company, I64(y, year) };
  return add(b, s->st[S_CD4], 2, v, NULL, NULL, NULL, NULL);
}

int rating_store_deduction(struct rating_store *s, struct svc_pg_batch *b, const char *key,
                           const char *company, int32_t half, int points, int64_t at_us)
{
  char h[24], p[24], at[24];
  const char *v[5] = { key, company, I64(h, half), I64(p, points), I64(at, at_us) };
  return add(b, s->st[S_DEDUCT], 5, v, NULL, NULL, NULL, NULL);
}

int rating_store_decision(struct rating_store *s, struct svc_pg_batch *b,
                          const struct rating_decision *d, int emitted)
{
  const char *figs[6], *cc[2];
  for (size_t i = 0; i < d->n_figures; i++) figs[i] = d->figures[i];
  for (size_t i = 0; i < d->n_cc; i++) cc[i] = d->cc[i];
  char *measures = svc_pg_text_array(d->measures, d->n_measures);
  char *evidence = svc_pg_text_array((const char *const *)d->evidence, d->n_evidence);
  char *figures = svc_pg_text_array(figs, d->n_figures), *ccs = svc_pg_text_array(cc, d->n_cc);
  char at[24];
  int rc = -1;
  if (measures && evidence && figures && ccs) {
    const char *v[17] = { d->key, d->rule, d->rule_id, measures, d->subject, d->subject_kind,
                          d->period, I64(at, d->event_us), evidence, figures, d->recipient, ccs,
                          d->rule_set, d->company, d->street, d->district, BOOL(emitted) };
    rc = add(b, s->st[S_DECISION], 17, v, NULL, NULL, NULL, NULL);
  }
  free(measures);
  free(evidence);
  free(figures);
  free(ccs);
  return rc;
}

int rating_store_held(struct rating_store *s, struct svc_pg_batch *b, int64_t until_us,
                      rating_row_cb cb, void *arg)
{
  char u[24];
  const char *v[1] = { I64(u, until_us) };
  return add(b, s->st[S_HELD], 1, v, NULL, NULL, cb, arg);
}

int rating_store_emitted(struct rating_store *s, struct svc_pg_batch *b, int64_t until_us)
{
  char u[24];
  const char *v[1] = { I64(u, until_us) };
  return add(b, s->st[S_EMITTED], 1, v, NULL, NULL, NULL, NULL);
}

int rating_store_clock(struct rating_store *s, struct svc_pg_batch *b, int64_t intake_wm,
                       int64_t referral_wm, int32_t first_month, int64_t late)
{
  char a[24], c[24], f[24], l[24];
  const char *v[4] = { I64(a, intake_wm), I64(c, referral_wm), I64(f, first_month), I64(l, late) };
  return add(b, s->st[S_CLOCK], 4, v, NULL, NULL, NULL, NULL);
}

int rating_store_closed(struct rating_store *s, struct svc_pg_batch *b, int32_t month,
                        int64_t out_wm)
{
  char m[24], w[24];
  const char *v[2] = { I64(m, month), I64(w, out_wm) };
  return add(b, s->st[S_CLOSED], 2, v, NULL, NULL, NULL, NULL);
}

/* ---- a period close ------------------------------------------------------------ */

int rating_store_lock_clock(struct rating_store *s, struct svc_pg_batch *b, rating_row_cb cb,
                            void *arg)
{
  return add(b, s->st[S_LOCK], 0, NULL, NULL, NULL, cb, arg);
}

int rating_store_close_load(struct rating_store *s, struct svc_pg_batch *b, int32_t month,
                            int64_t end_us, int32_t quarter, int32_t mq0, int32_t year,
                            int32_t half, int32_t mh0, rating_row_cb cb, void *arg)
{
  char m[24], e[24], q[24], q0[24], y[24], h[24], h0[24];
  I64(m, month);
  I64(e, end_us);
  I64(h, half);
  int rc = 0;
  const char *v1[1] = { m };
  rc |= add(b, s->st[S_C_PM], 1, v1, NULL, NULL, cb, arg);
  rc |= add(b, s->st[S_C_RK], 1, v1, NULL, NULL, cb, arg);
  rc |= add(b, s->st[S_C_UM], 1, v1, NULL, NULL, cb, arg);
  const char *vcr[2] = { h, e };
  rc |= add(b, s->st[S_C_CR], 2, vcr, NULL, NULL, cb, arg);
  if (quarter >= 0) {
    I64(q, quarter);
    I64(q0, mq0);
    I64(y, year);
    const char *vus[2] = { q0, m };
    rc |= add(b, s->st[S_C_US], 2, vus, NULL, NULL, cb, arg);
    const char *vq[1] = { q };
    rc |= add(b, s->st[S_C_SR], 1, vq, NULL, NULL, cb, arg);
    rc |= add(b, s->st[S_C_PQ], 1, vq, NULL, NULL, cb, arg);
    const char *vpd[2] = { y, e };
    rc |= add(b, s->st[S_C_PD], 2, vpd, NULL, NULL, cb, arg);
    rc |= add(b, s->st[S_C_PS], 1, vq, NULL, NULL, cb, arg);
  }
  if (mh0 >= 0) {
    char m1[24];
    I64(h0, mh0);
    I64(m1, month + 1);
    const char *vuh[2] = { h0, m1 };
    rc |= add(b, s->st[S_C_UH], 2, vuh, NULL, NULL, cb, arg);
  }
  return rc ? -1 : 0;
}

int rating_store_evidence(struct rating_store *s, struct svc_pg_batch *b, char tag, int32_t m0,
                          int32_t m1, const char *const *codes, size_t n, rating_row_cb cb,
                          void *arg)
{
  char a[24], z[24];
  char *lit = svc_pg_text_array(codes, n);
  if (!lit) return -1;
  int rc;
  if (tag == 't' || tag == 'i') {
    const char *v[2] = { I64(a, m0), lit };
    rc = add(b, s->st[tag == 't' ? S_E_T : S_E_I], 2, v, NULL, NULL, cb, arg);
  } else {
    const char *v[3] = { I64(a, m0), I64(z, m1), lit };
    rc = add(b, s->st[tag == 's' ? S_E_S : S_E_D], 3, v, NULL, NULL, cb, arg);
  }
  free(lit);
  return rc;
}

/* Stages st with $1 = a as text and $2.. = the n arrays in binary (each
 * finished by the caller, or failed: -1). */
static int add_arrays(struct svc_pg_batch *b, struct svc_pg_stmt *st, const char *a,
                      struct svc_pgarr *arr, int n)
{
  const char *v[16];
  int len[16], fmt[16];
  v[0] = a;
  len[0] = (int)strlen(a); /* lengths are read for text values too */
  fmt[0] = 0;
  for (int i = 0; i < n; i++) {
    if (svc_pgarr_finish(&arr[i])) return -1;
    v[i + 1] = arr[i].buf;
    len[i + 1] = (int)arr[i].len;
    fmt[i + 1] = 1;
  }
  return add(b, st, n + 1, v, len, fmt, NULL, NULL);
}

static void arrays_free(struct svc_pgarr *arr, int n)
{
  for (int i = 0; i < n; i++) svc_pgarr_free(&arr[i]);
}

int rating_store_rankings(struct rating_store *s, struct svc_pg_batch *b, int32_t month,
                          const struct rating_rank_row *r, size_t n)
{
  struct svc_pgarr a[6];
  char m[24];
  if (!n) return 0;
  for (int i = 0; i < 6; i++) svc_pgarr_init(&a[i], i < 2 ? SVC_OID_TEXT : SVC_OID_INT8);
  for (size_t i = 0; i < n; i++) {
    svc_pgarr_add(&a[0], r[i].compound, strlen(r[i].compound));
    svc_pgarr_add(&a[1], r[i].company, strlen(r[i].company));
    svc_pgarr_add_i64(&a[2], r[i].count);
    svc_pgarr_add_i64(&a[3], r[i].rank);
    svc_pgarr_add_i64(&a[4], r[i].in_top ? 1 : 0);
    svc_pgarr_add_i64(&a[5], r[i].streak);
  }
  int rc = add_arrays(b, s->st[S_RANKING], I64(m, month), a, 6);
  arrays_free(a, 6);
  return rc;
}

int rating_store_unit_scores(struct rating_store *s, struct svc_pg_batch *b, int32_t month,
                             const struct rating_unit_score *u, size_t n)
{
  struct svc_pgarr a[9];
  char m[24];
  if (!n) return 0;
  for (int i = 0; i < 9; i++) svc_pgarr_init(&a[i], i == 0 || i == 2 ? SVC_OID_TEXT : SVC_OID_INT8);
  for (size_t i = 0; i < n; i++) {
    svc_pgarr_add(&a[0], u[i].unit, strlen(u[i].unit));
    svc_pgarr_add_i64(&a[1], u[i].street_unit ? 1 : 0);
    svc_pgarr_add(&a[2], u[i].district, strlen(u[i].district));
    svc_pgarr_add_i64(&a[3], u[i].pop);
    svc_pgarr_add_i64(&a[4], u[i].resp_e4);
    svc_pgarr_add_i64(&a[5], u[i].resol_e4);
    svc_pgarr_add_i64(&a[6], u[i].sat_e4 < 0 ? -1 : u[i].sat_e4);
    svc_pgarr_add_i64(&a[7], u[i].score_e2);
    svc_pgarr_add_i64(&a[8], u[i].rank);
  }
  int rc = add_arrays(b, s->st[S_USCORE], I64(m, month), a, 9);
  arrays_free(a, 9);
  return rc;
}

int rating_store_street_run(struct rating_store *s, struct svc_pg_batch *b, int32_t quarter,
                            const char *street, int run)
{
  char q[24], r[24];
  const char *v[3] = { I64(q, quarter), street, I64(r, run) };
  return add(b, s->st[S_SRUN], 3, v, NULL, NULL, NULL, NULL);
}

int rating_store_stars(struct rating_store *s, struct svc_pg_batch *b, int32_t quarter,
                       const struct rating_star *st, size_t n)
{
  struct svc_pgarr a[3];
  char q[24];
  if (!n) return 0;
  svc_pgarr_init(&a[0], SVC_OID_TEXT);
  svc_pgarr_init(&a[1], SVC_OID_INT8);
  svc_pgarr_init(&a[2], SVC_OID_INT8);
  for (size_t i = 0; i < n; i++) {
    svc_pgarr_add(&a[0], st[i].compound, strlen(st[i].compound));
    svc_pgarr_add_i64(&a[1], st[i].score_e1);
    svc_pgarr_add_i64(&a[2], st[i].stars);
  }
  int rc = add_arrays(b, s->st[S_STARS], I64(q, quarter), a, 3);
  arrays_free(a, 3);
  return rc;
}

int rating_store_inspection(struct rating_store *s, struct svc_pg_batch *b, const char *id,
                            const char *compound, int64_t at_us, int32_t quarter,
                            int32_t quarter_last_month, const int dims[RATING_DIMS], int64_t raw,
                            int rated, rating_row_cb cb, void *arg)
{
  char at[24], q[24], last[24], d[RATING_DIMS * 12 + 4], r[24], *p = d;
  *p++ = '{';
  for (int i = 0; i < RATING_DIMS; i++) p += sprintf(p, "%s%d", i ? "," : "", dims[i]);
  *p++ = '}';
  *p = 0;
  const char *v[9] = { id, compound, I64(at, at_us), I64(q, quarter), I64(last, quarter_last_month),
                       d, I64(r, raw), BOOL(rated) };
  return add(b, s->st[S_INSPECT], 8, v, NULL, NULL, cb, arg);
}

int rating_store_query(struct rating_store *s, struct svc_pg_batch *b, enum rating_query q,
                       int32_t period, rating_row_cb cb, void *arg)
{
  static const int st[] = { [RQ_RANKINGS] = S_Q_RANKINGS, [RQ_UNITS] = S_Q_UNITS,
                            [RQ_CREDIT] = S_Q_CREDIT, [RQ_STARS] = S_Q_STARS,
                            [RQ_DECISIONS] = S_Q_DECISIONS };
  if (q < RQ_RANKINGS || q > RQ_DECISIONS) return -1;
  char p[24];
  const char *v[1] = { I64(p, period) };
  return add(b, s->st[st[q]], q == RQ_DECISIONS ? 0 : 1, v, NULL, NULL, cb, arg);
}

int rating_store_load_clock(const char *conninfo, struct rating_clock_row *out)
{
  int64_t v[6] = { 0 };
  int rc = svc_pg_fetch_row(conninfo, "SELECT intake_wm, referral_wm, out_wm, late, closed_month,"
                            " first_month FROM clock", v, 6, "rating's clock");
  out->intake_wm = v[0];
  out->referral_wm = v[1];
  out->out_wm = v[2];
  out->late = v[3];
  out->closed_month = (int32_t)v[4];
  out->first_month = (int32_t)v[5];
  return rc;
}
