/* Period closes (docs/architecture.md: only when the minimum of the inputs' watermarks
 * has passed the period's end): one transaction per month: read the sums
 * (stage 1), decide (rating_close_decide.c: rankings and streaks, credit,
 * unit scores and bottoms, at a quarter's end the street ladder and stars, at
 * a half-year's end the districts) and read the evidence (stage 2), write
 * results, decisions and events (stage 3). Here: the job, loading, evidence,
 * writing, and rating's watermark when no period closes. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rating.h"
#include "rating_close_int.h"
#include "rating_events.pb-c.h"
#include "svc_log.h"
#include "svc_pg.h"
#include "svc_registry.h"
#include "svc_stream.h"
#include "svc_time.h"

static void rows_free(struct rows *r)
{
  for (size_t i = 0; i < r->n; i++)
    for (int j = 0; j < r->v[i].n; j++) free(r->v[i].v[j]);
  free(r->v);
  memset(r, 0, sizeof *r);
}

static void job_free(struct rating_closejob *j)
{
  if (!j) return;
  rows_free(&j->r);
  free(j->ix);
  free(j->rank);
  free(j->u);
  for (size_t i = 0; i < j->n_dec; i++) rating_decision_clear(&j->dec[i]);
  free(j->dec);
  for (size_t i = 0; i < j->n_stars; i++) free(j->stars[i]);
  free(j->stars);
  for (size_t i = 0; i < j->n_credit; i++) free(j->credit[i]);
  free(j->credit);
  free(j->evloads);
  for (size_t i = 0; i < j->n_early; i++) rating_decision_clear(&j->early[i]);
  free(j->early);
  for (size_t i = 0; i < j->n_strs; i++) free(j->strs[i]);
  free(j->strs);
  free(j);
}

void rating_close_free(struct rating_ctx *x)
{
  job_free(x->close);
  x->close = NULL;
}

static void on_held(struct rating_closejob *j, const struct row *r);

static void on_row(void *arg, int n, const char *const *v)
{
  struct rating_closejob *j = arg;
  if (n < 1 || !v[0]) return;
  if (j->r.n == j->r.cap) {
    size_t c = j->r.cap ? j->r.cap * 2 : 256;
    struct row *p = realloc(j->r.v, c * sizeof *p);
    if (!p) {
      j->oom = 1;
      return;
    }
    j->r.v = p;
    j->r.cap = c;
  }
  struct row *r = &j->r.v[j->r.n++];
  memset(r, 0, sizeof *r);
  snprintf(r->tag, sizeof r->tag, "%s", v[0]);
  for (int i = 1; i < n && i <= 16; i++) {
    r->v[r->n] = strdup(v[i] ? v[i] : "");
    if (!r->v[r->n]) j->oom = 1;
    r->n++;
  }
  if (strcmp(r->tag, "hd") == 0) on_held(j, r);
  if (strcmp(r->tag, "ck") == 0 && r->n >= 2) {
    j->db_closed = (int32_t)strtol(r->v[0], NULL, 10);
    j->db_out = strtoll(r->v[1], NULL, 10);
  }
}

static const char *keep(struct rating_closejob *j, const char *s)
{
  if (j->n_strs == j->cap_strs) {
    size_t c = j->cap_strs ? j->cap_strs * 2 : 16;
    char **p = realloc(j->strs, c * sizeof *p);
    if (!p) return NULL;
    j->strs = p;
    j->cap_strs = c;
  }
  char *d = strdup(s ? s : "");
  if (d) j->strs[j->n_strs++] = d;
  return d;
}

static int from_row(struct rating_closejob *j, const struct row *r, struct rating_decision *d)
{
  if (r->n < 16) return -1;
  memset(d, 0, sizeof *d);
  snprintf(d->key, sizeof d->key, "%s", r->v[0]);
  d->rule = r->v[1];
  snprintf(d->rule_id, sizeof d->rule_id, "%s", r->v[2]);
  snprintf(d->subject, sizeof d->subject, "%s", r->v[4]);
  d->subject_kind = r->v[5];
  snprintf(d->period, sizeof d->period, "%s", r->v[6]);
  d->event_us = strtoll(r->v[7], NULL, 10);
  snprintf(d->recipient, sizeof d->recipient, "%s", r->v[10]);
  d->rule_set = r->v[12];
  snprintf(d->company, sizeof d->company, "%s", r->v[13]);
  snprintf(d->street, sizeof d->street, "%s", r->v[14]);
  snprintf(d->district, sizeof d->district, "%s", r->v[15]);
  d->ev_kind = 'h';
  json_t *ms = json_loads(r->v[3], 0, NULL), *ev = json_loads(r->v[8], 0, NULL);
  json_t *fg = json_loads(r->v[9], 0, NULL), *cc = json_loads(r->v[11], 0, NULL);
  int rc = ms && ev && fg && cc ? 0 : -1;
  for (size_t i = 0; !rc && i < json_array_size(ms) && i < RATING_MEASURES_MAX; i++) {
    const char *m = keep(j, json_string_value(json_array_get(ms, i)));
    if (!m) rc = -1;
    else d->measures[d->n_measures++] = m;
  }
  for (size_t i = 0; !rc && i < json_array_size(ev); i++)
    rc = rating_decision_evidence(d, json_string_value(json_array_get(ev, i)) ?: "");
  for (size_t i = 0; !rc && i < json_array_size(fg) && i < 6; i++)
    snprintf(d->figures[d->n_figures++], sizeof d->figures[0], "%s", json_string_value(json_array_get(fg, i)) ?: "");
  for (size_t i = 0; !rc && i < json_array_size(cc) && i < 2; i++)
    snprintf(d->cc[d->n_cc++], sizeof d->cc[0], "%s", json_string_value(json_array_get(cc, i)) ?: "");
  json_decref(ms);
  json_decref(ev);
  json_decref(fg);
  json_decref(cc);
  return rc;
}

/* A held decision loaded back: published before the close's own ones, or
 * among them when it has the close's event time (sorted by key). */
static void on_held(struct rating_closejob *j, const struct row *r)
{
  int64_t at = r->n > 7 ? strtoll(r->v[7], NULL, 10) : 0;
  struct rating_decision *d = !j->wm_only && at == j->end_us
                                ? rating_close_slot(j, &j->dec, &j->n_dec, &j->cap_dec)
                                : rating_close_slot(j, &j->early, &j->n_early, &j->cap_early);
  if (d && from_row(j, r, d)) j->oom = 1;
}

struct evload { struct rating_closejob *j; char kind; };

static void on_evidence(void *arg, int n, const char *const *v)
{
  const struct evload *e = arg;
  struct rating_closejob *j = e->j;
  if (n < 2 || !v[0] || !v[1]) return;
  for (size_t i = 0; i < j->n_dec; i++)
    if (j->dec[i].ev_kind == e->kind && strcmp(j->dec[i].subject, v[0]) == 0 &&
        rating_decision_evidence(&j->dec[i], v[1]))
      j->oom = 1;
}

static int load_evidence(struct rating_closejob *j, struct svc_pg_batch *b)
{
  static const char kinds[] = "tsqdi";
  struct evload *ev = calloc(5, sizeof *ev);
  if (!ev) return -1;
  j->evloads = ev; /* freed with the job */
  int rc = 0;
  for (int k = 0; k < 5 && !rc; k++) {
    const char **codes = calloc(j->n_dec + 1, sizeof *codes);
    size_t n = 0;
    if (!codes) {
      rc = -1;
      break;
    }
    for (size_t i = 0; i < j->n_dec; i++)
      if (j->dec[i].ev_kind == kinds[k]) codes[n++] = j->dec[i].subject;
    ev[k] = (struct evload){ j, kinds[k] };
    if (n) {
      char tag = kinds[k] == 'q' ? 's' : kinds[k];
      int32_t m0 = kinds[k] == 'q' ? j->mq0 : kinds[k] == 'd' ? j->mh0 : kinds[k] == 'i' ? j->quarter : j->m;
      rc = rating_store_evidence(j->x->store, b, tag, m0, j->m, codes, n, on_evidence, &ev[k]);
    }
    free(codes);
  }
  return rc;
}

/* ---- stage 3: write -------------------------------------------------------------------- */

static int cmp_dec(const void *a, const void *b)
{
  return strcmp(((const struct rating_decision *)a)->key, ((const struct rating_decision *)b)->key);
}

static int write_results(struct rating_closejob *j, struct svc_pg_batch *b)
{
  struct rating_ctx *x = j->x;
  int rc = 0;
  char month[8];
  rating_month_name(j->m, month);
  Whistle__Rating__Ranking *rk = calloc(j->n_rank + 1, sizeof *rk), **rkp = calloc(j->n_rank + 1, sizeof *rkp);
  Whistle__Rating__UnitScore *us = calloc(j->n_u + 1, sizeof *us), **usp = calloc(j->n_u + 1, sizeof *usp);
  struct rating_unit_score *ur = calloc(j->n_u + 1, sizeof *ur);
  struct rating_star *sr = calloc(j->n_stars + 1, sizeof *sr);
  if (!rk || !rkp || !us || !usp || !ur || !sr) rc = -1;
  if (!rc) rc = rating_store_rankings(x->store, b, j->m, j->rank, j->n_rank);
  for (size_t i = 0; i < j->n_rank && !rc; i++) {
    const struct rating_rank_row *k = &j->rank[i];
    if (k->in_top) { /* R-K1: 2 points per (project, month) in a top list */
      char key[200];
      snprintf(key, sizeof key, "R-K1|top|%s|%s", k->compound, month);
      rc |= rating_store_deduction(x->store, b, key, k->company, j->half, x->table.deduct_top,
                                   j->end_us - 1);
    }
    whistle__rating__ranking__init(&rk[i]);
    rk[i].compound = (char *)k->compound;
    rk[i].company = (char *)k->company;
    rk[i].count = (uint32_t)k->count;
    rk[i].rank = (uint32_t)k->rank;
    rk[i].in_top = k->in_top;
    rk[i].streak = (uint32_t)k->streak;
    rkp[i] = &rk[i];
  }
  for (size_t i = 0; i < j->n_u && !rc; i++) {
    const struct urow *u = &j->u[i];
    ur[i] = (struct rating_unit_score){ u->unit, u->district, u->street, u->pop, u->resp,
                                        u->resol, u->satr, u->score, u->rank };
    whistle__rating__unit_score__init(&us[i]);
    us[i].unit = (char *)u->unit;
    us[i].unit_kind = u->street ? "STREET" : "DEPARTMENT";
    us[i].population = (uint32_t)u->pop;
    us[i].response_e4 = (uint32_t)u->resp;
    us[i].resolution_e4 = (uint32_t)u->resol;
    us[i].satisfaction_e4 = (int32_t)u->satr;
    us[i].score_e2 = (uint32_t)u->score;
    us[i].rank = (uint32_t)u->rank;
    usp[i] = &us[i];
  }
  if (!rc) rc = rating_store_unit_scores(x->store, b, j->m, ur, j->n_u);
  for (size_t i = 0; i < j->n_stars && !rc; i++)
    sr[i] = (struct rating_star){ j->stars[i]->compound, j->stars[i]->score_e1, (int)j->stars[i]->stars };
  if (!rc) rc = rating_store_stars(x->store, b, j->quarter, sr, j->n_stars);
  for (size_t i = 0; i < j->n_early && !rc; i++) rc |= rating_decision_publish(x, b, &j->early[i]);
  if (j->n_dec) qsort(j->dec, j->n_dec, sizeof *j->dec, cmp_dec);
  for (size_t i = 0; i < j->n_dec && !rc; i++) {
    if (j->dec[i].ev_kind == 'h') {
      rc |= rating_decision_publish(x, b, &j->dec[i]);
      continue;
    }
    if (strcmp(j->dec[i].rule, "R-U4") == 0) {
      int run = 0;
      for (size_t f = 0; f < j->dec[i].n_figures; f++)
        if (strncmp(j->dec[i].figures[f], "checkpoints=", 12) == 0) run = atoi(j->dec[i].figures[f] + 12);
      rc |= rating_store_street_run(x->store, b, j->quarter, j->dec[i].subject, run);
    }
    rc |= rating_decision_emit(x, b, &j->dec[i]);
  }
  Whistle__Rating__PeriodClosed pc = WHISTLE__RATING__PERIOD_CLOSED__INIT;
  char q[8], h[8], y[8];
  char *periods[3];
  rating_quarter_name(j->m, q);
  rating_half_name(j->m, h);
  rating_year_name(j->m, y);
  if (j->quarter >= 0) periods[pc.n_periods++] = q;
  if (j->mh0 >= 0) periods[pc.n_periods++] = h;
  if (j->m % 12 == 11) periods[pc.n_periods++] = y;
  pc.month = month;
  pc.end_us = j->end_us;
  pc.periods = periods;
  pc.ranked_projects = (uint32_t)j->n_rank;
  for (size_t i = 0; i < j->n_rank; i++) pc.top_projects += j->rank[i].in_top;
  pc.ranked_units = (uint32_t)j->n_u;
  pc.rated_projects = (uint32_t)j->n_stars;
  pc.decisions = (uint32_t)j->n_dec;
  pc.rule_set = x->table.version;
  pc.n_rankings = j->n_rank;
  pc.rankings = rkp;
  pc.n_units = j->n_u;
  pc.units = usp;
  pc.n_credit = j->n_credit;
  pc.credit = j->credit;
  pc.n_stars = j->n_stars;
  pc.stars = j->stars;
  if (!rc) rc = svc_stream_append_msg(x->prod, b, j->end_us, "period.closed", SVC_STREAM_BROADCAST, &pc.base);
  if (!rc) rc = rating_store_emitted(x->store, b, j->until_us);
  if (!rc) rc = svc_stream_watermark(x->prod, b, j->end_us);
  if (!rc) rc = rating_store_closed(x->store, b, j->m, j->end_us);
  free(rk);
  free(rkp);
  free(us);
  free(usp);
  free(ur);
  free(sr);
  return rc ? -1 : 0;
}

/* ---- the job ------------------------------------------------------------------------------ */

/* Rating's watermark alone: the held decisions before it, then it. */
static int write_watermark(struct rating_closejob *j, struct svc_pg_batch *b)
{
  struct rating_ctx *x = j->x;
  int rc = j->oom ? -1 : 0;
  for (size_t i = 0; i < j->n_early && !rc; i++) rc |= rating_decision_publish(x, b, &j->early[i]);
  if (!rc) rc = rating_store_emitted(x->store, b, j->until_us);
  if (!rc) rc = svc_stream_watermark(x->prod, b, j->wm);
  if (!rc) rc = rating_store_closed(x->store, b, x->closed_month, j->wm);
  return rc;
}

static void close_stage(struct svc_pg_batch *b, void *arg)
{
  struct rating_closejob *j = arg;
  int rc = 0;
  j->stage++;
  if (j->stage == 1 && (j->wm_only ? j->db_out >= j->wm : j->db_closed >= j->m)) {
    j->stale = 1; /* done by a process before this one, committed after it started: nothing to do */
    return;
  }
  if (j->wm_only) {
    if (j->stage == 1 && write_watermark(j, b)) svc_pg_batch_fail(b, "out of memory publishing a watermark");
    return;
  }
  if (j->stage == 1) {
    rating_close_decide(j);
    size_t before = svc_pg_batch_size(b);
    rc = j->oom ? -1 : load_evidence(j, b);
    if (!rc && svc_pg_batch_size(b) == before) { /* no evidence to read: write now */
      j->stage++;
      rc = j->oom ? -1 : write_results(j, b);
    }
  } else if (j->stage == 2) {
    rc = j->oom ? -1 : write_results(j, b);
  }
  if (rc) svc_pg_batch_fail(b, "out of memory while closing a period");
}

static void close_done(struct svc_pg_batch *b, enum svc_pg_outcome o, const char *err, void *arg)
{
  struct rating_closejob *j = arg;
  struct rating_ctx *x = j->x;
  (void)b;
  x->close = NULL;
  x->close_busy = 0;
  if (o == SVC_PG_COMMITTED && j->stale) {
    if (j->db_closed > x->closed_month) x->closed_month = j->db_closed;
    if (j->db_out > x->out_wm) x->out_wm = j->db_out;
    svc_info("close found done", " closed_month=%d watermark_us=%lld", (int)x->closed_month,
             (long long)x->out_wm);
    job_free(j);
    rating_close_run(x);
    return;
  }
  if (o == SVC_PG_COMMITTED) {
    if (j->wm_only) {
      if (j->wm > x->out_wm) x->out_wm = j->wm;
    } else {
      char month[8];
      rating_month_name(j->m, month);
      x->closed_month = j->m;
      if (j->end_us > x->out_wm) x->out_wm = j->end_us;
      x->n.closes++;
      x->n.decisions += j->n_dec;
      svc_info("month closed", " month=%s projects=%zu units=%zu rated=%zu decisions=%zu close_ms=%.1f",
               month, j->n_rank, j->n_u, j->n_stars, j->n_dec, (double)(svc_mono_us() - j->t0_us) / 1000.0);
    }
    job_free(j);
    rating_close_run(x);
    return;
  }
  if (o == SVC_PG_FAILED) svc_error("period close failed", " month=%d error=\"%s\"", (int)j->m, err ? err : "");
  job_free(j);
  if (o == SVC_PG_RETRY) rating_close_run(x);
}

int32_t rating_next_close(const struct rating_ctx *x)
{
  return x->closed_month ? x->closed_month + 1 : x->first_month;
}

void rating_close_run(struct rating_ctx *x)
{
  if (x->close_busy || (x->stopping && *x->stopping) || !svc_pg_is_up(x->pg)) return;
  int64_t wm = x->intake_wm < x->referral_wm ? x->intake_wm : x->referral_wm;
  int32_t m = rating_next_close(x);
  int close = m > 0 && rating_month_end(m, x->off_s) <= wm;
  if (!close && wm <= x->out_wm) return;
  struct rating_closejob *j = calloc(1, sizeof *j);
  if (!j) return;
  j->x = x;
  j->wm = wm;
  struct svc_pg_batch *b = svc_pg_batch_new(x->pg, close_stage, close_done, j);
  int rc = b ? rating_store_lock_clock(x->store, b, on_row, j) : -1;
  if (!close) {
    j->wm_only = 1;
    j->until_us = wm - 1; /* the watermark promises nothing before wm follows */
    if (!rc) rc = rating_store_held(x->store, b, j->until_us, on_row, j);
  } else {
    j->m = m;
    j->end_us = rating_month_end(m, x->off_s);
    j->year = m / 12;
    j->half = j->year * 2 + (m % 12 >= 6);
    j->quarter = m % 3 == 2 ? j->year * 4 + (m % 12) / 3 : -1;
    j->mq0 = m - m % 3;
    j->mh0 = m % 6 == 5 ? m - 5 : -1;
    j->until_us = j->end_us;
    if (!rc) rc = rating_store_held(x->store, b, j->until_us, on_row, j);
    if (!rc) rc = rating_store_close_load(x->store, b, m, j->end_us, j->quarter, j->mq0, j->year,
                                          j->half, j->mh0, on_row, j);
  }
  if (rc) {
    svc_pg_batch_discard(&b);
    job_free(j);
    return;
  }
  x->close_busy = 1;
  x->close = j;
  j->t0_us = svc_mono_us();
  svc_pg_submit(b);
}
