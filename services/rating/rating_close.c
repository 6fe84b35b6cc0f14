/* Period closes (docs/architecture.md: only when the minimum of the inputs' watermarks
 * has passed the period's end): a month's ranking and streaks (R-C2..R-C4),
 * top-list deductions and credit grades (R-K1, R-K2), unit scores and the
 * monthly department bottom (R-U2, R-U3); at a quarter's end the quarterly
 * department bottom, the street checkpoint ladder (R-U4) and stars (R-S1..
 * R-S3); at a half-year's end the districts (R-U5). One transaction per
 * month: read the sums (stage 1), decide and read the evidence (stage 2),
 * write results, decisions and events (stage 3). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "rating.h"
#include "rating_events.pb-c.h"
#include "svc_log.h"
#include "svc_pg.h"
#include "svc_registry.h"
#include "svc_stream.h"
#include "svc_time.h"

/* A loaded row: tag and up to 16 values (copied). */
struct row { char tag[3]; int n; char *v[16]; };
struct rows { struct row *v; size_t n, cap; };

struct urow {
  const char *unit, *district;
  int street;
  int64_t pop, acc, res, cb, sat;
  int64_t resp, resol, satr, score; /* e4, e4, e4 or -1, e2 */
  int rank;
};

/* A loaded row's place in the lookup index: sorted by tag, first value, load order. */
struct rowkey { const char *tag, *code; size_t i; };

struct evload;
struct rating_closejob {
  struct rating_ctx *x;
  int wm_only;
  int64_t t0_us;               /* monotonic: when the close was submitted */
  int32_t m, quarter, mq0, year, half, mh0;
  int64_t end_us, wm;
  int stage;
  struct rows r;
  struct rowkey *ix;           /* the rows of r, sorted for find() */
  struct rating_rank_row *rank; size_t n_rank;
  struct urow *u; size_t n_u;
  struct rating_decision *dec; size_t n_dec, cap_dec;
  struct evload *evloads;      /* the evidence loads' callback records */
  int oom;
  /* Results for the event. */
  Whistle__Rating__Stars **stars; size_t n_stars;
  Whistle__Rating__Credit **credit; size_t n_credit;
  /* Held decisions (R-P3) the close or watermark publishes first. */
  struct rating_decision *early; size_t n_early, cap_early;
  int64_t until_us;            /* held decisions up to this event time go out */
  int32_t db_closed;           /* the clock as committed, read under its lock */
  int64_t db_out;
  int stale;                   /* an earlier process did this close already */
  char **strs; size_t n_strs, cap_strs; /* strings the held decisions point to */
};

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

/* The rows with tag, and the one with tag whose first value is code. */
static int is(const struct row *r, const char *tag)
{
  return strcmp(r->tag, tag) == 0;
}

static int cmp_rowkey(const void *pa, const void *pb)
{
  const struct rowkey *a = pa, *b = pb;
  int c = strcmp(a->tag, b->tag);
  if (!c) c = strcmp(a->code, b->code);
  return c ? c : (a->i > b->i) - (a->i < b->i);
}

/* Sorts the loaded rows for find() (once they are all in). */
static void index_rows(struct rating_closejob *j)
{
  j->ix = calloc(j->r.n ? j->r.n : 1, sizeof *j->ix);
  if (!j->ix) {
    j->oom = 1;
    return;
  }
  for (size_t i = 0; i < j->r.n; i++)
    j->ix[i] = (struct rowkey){ j->r.v[i].tag, j->r.v[i].n > 0 ? j->r.v[i].v[0] : "", i };
  qsort(j->ix, j->r.n, sizeof *j->ix, cmp_rowkey);
}

/* The first loaded row (in load order) with tag whose first value is code. */
static const struct row *find(const struct rating_closejob *j, const char *tag, const char *code)
{
  size_t lo = 0, hi = j->r.n;
  const struct rowkey want = { tag, code, 0 };
  while (lo < hi) { /* the first key >= want */
    size_t mid = lo + (hi - lo) / 2;
    if (cmp_rowkey(&j->ix[mid], &want) < 0) lo = mid + 1;
    else hi = mid;
  }
  if (lo < j->r.n && strcmp(j->ix[lo].tag, tag) == 0 && strcmp(j->ix[lo].code, code) == 0)
    return &j->r.v[j->ix[lo].i];
  return NULL;
}

static int64_t num(const char *s)
{
  return s ? strtoll(s, NULL, 10) : 0;
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

static struct rating_decision *slot(struct rating_closejob *j, struct rating_decision **v, size_t *n,
                                    size_t *cap)
{
  if (*n == *cap) {
    size_t c = *cap ? *cap * 2 : 16;
    struct rating_decision *p = realloc(*v, c * sizeof *p);
    if (!p) {
      j->oom = 1;
      return NULL;
    }
    *v = p;
    *cap = c;
  }
  struct rating_decision *d = &(*v)[*n];
  memset(d, 0, sizeof *d);
  (*n)++;
  return d;
}

/* A held decision loaded back: published before the close's own ones, or
 * among them when it has the close's event time (sorted by key). */
static void on_held(struct rating_closejob *j, const struct row *r)
{
  int64_t at = r->n > 7 ? strtoll(r->v[7], NULL, 10) : 0;
  struct rating_decision *d = !j->wm_only && at == j->end_us
                                ? slot(j, &j->dec, &j->n_dec, &j->cap_dec)
                                : slot(j, &j->early, &j->n_early, &j->cap_early);
  if (d && from_row(j, r, d)) j->oom = 1;
}

static struct rating_decision *decide(struct rating_closejob *j, const char *rule, const char *subject,
                                      const char *kind, const char *period, const char *measure,
                                      char evidence_kind)
{
  struct rating_decision *d = slot(j, &j->dec, &j->n_dec, &j->cap_dec);
  if (!d) return NULL;
  d->ev_kind = evidence_kind;
  snprintf(d->key, sizeof d->key, "%s|%s|%s", rule, subject, period);
  d->rule = rule;
  snprintf(d->rule_id, sizeof d->rule_id, "%s", rule);
  d->measures[0] = measure;
  d->n_measures = 1;
  snprintf(d->subject, sizeof d->subject, "%s", subject);
  d->subject_kind = kind;
  snprintf(d->period, sizeof d->period, "%s", period);
  d->event_us = j->end_us;
  snprintf(d->recipient, sizeof d->recipient, "%s", subject);
  return d;
}

static void figure(struct rating_decision *d, const char *name, int64_t v)
{
  if (d && d->n_figures < 6)
    snprintf(d->figures[d->n_figures++], sizeof d->figures[0], "%s=%lld", name, (long long)v);
}

/* A project's decision goes to its company, cc its street and district (R-E2). */
static void project_parties(const struct rating_ctx *x, struct rating_decision *d, const char *company)
{
  const struct svc_compound *c = svc_registry_compound(x->reg, d->subject);
  snprintf(d->recipient, sizeof d->recipient, "%s", company && company[0] ? company : d->subject);
  snprintf(d->company, sizeof d->company, "%s", company ? company : "");
  if (!c) return;
  snprintf(d->street, sizeof d->street, "%s", c->street);
  snprintf(d->district, sizeof d->district, "%s", c->district);
  snprintf(d->cc[d->n_cc++], sizeof d->cc[0], "%s", c->street);
  snprintf(d->cc[d->n_cc++], sizeof d->cc[0], "%s", c->district);
}

/* ---- stage 2: decide ------------------------------------------------------------------ */

static void month_ranking(struct rating_closejob *j)
{
  struct rating_ctx *x = j->x;
  size_t n = 0;
  for (size_t i = 0; i < j->r.n; i++) n += is(&j->r.v[i], "pm");
  j->rank = calloc(n ? n : 1, sizeof *j->rank);
  if (!j->rank) {
    j->oom = 1;
    return;
  }
  for (size_t i = 0; i < j->r.n; i++) {
    const struct row *r = &j->r.v[i];
    if (!is(r, "pm")) continue;
    struct rating_rank_row *k = &j->rank[j->n_rank++];
    k->compound = r->v[0];
    k->company = r->v[1];
    k->count = num(r->v[2]);
    const struct row *prev = find(j, "rk", r->v[0]);
    k->prev_streak = prev ? (int)num(prev->v[1]) : 0;
  }
  rating_rank(j->rank, j->n_rank, x->table.top_k);
  char month[8];
  rating_month_name(j->m, month);
  for (size_t i = 0; i < j->n_rank; i++) {
    const struct rating_rank_row *k = &j->rank[i];
    if (!k->decision) continue;
    struct rating_decision *d = decide(j, "R-C4", k->compound, "PROJECT", month, k->decision, 't');
    if (!d) return;
    project_parties(x, d, k->company);
    figure(d, "count", k->count);
    figure(d, "rank", k->rank);
    figure(d, "streak", k->streak);
  }
}

static void unit_scores(struct rating_closejob *j)
{
  const struct rating_table *t = &j->x->table;
  size_t n = 0;
  for (size_t i = 0; i < j->r.n; i++) n += is(&j->r.v[i], "um");
  j->u = calloc(n ? n : 1, sizeof *j->u);
  if (!j->u) {
    j->oom = 1;
    return;
  }
  for (size_t i = 0; i < j->r.n; i++) {
    const struct row *r = &j->r.v[i];
    if (!is(r, "um") || num(r->v[3]) <= 0) continue; /* R-U2: an empty P is unranked */
    struct urow *u = &j->u[j->n_u++];
    u->unit = r->v[0];
    u->street = r->v[1][0] == 't';
    u->district = r->v[2];
    u->pop = num(r->v[3]);
    u->acc = num(r->v[4]);
    u->res = num(r->v[5]);
    u->cb = num(r->v[6]);
    u->sat = num(r->v[7]);
    u->resp = rating_rate_e4(u->acc, u->pop);
    u->resol = rating_rate_e4(u->res, u->pop);
    u->satr = u->cb ? rating_rate_e4(u->sat, u->cb) : -1;
    u->score = rating_unit_score(t, u->pop, u->acc, u->res, u->cb, u->sat);
  }
  /* The exported ranks: within departments, and within streets. */
  int64_t *sc = calloc(j->n_u ? j->n_u : 1, sizeof *sc);
  size_t *ix = calloc(j->n_u ? j->n_u : 1, sizeof *ix);
  if (!sc || !ix) {
    j->oom = 1;
    free(sc);
    free(ix);
    return;
  }
  char month[8];
  rating_month_name(j->m, month);
  for (int street = 0; street < 2; street++) {
    size_t k = 0;
    for (size_t i = 0; i < j->n_u; i++)
      if (j->u[i].street == street) {
        ix[k] = i;
        sc[k++] = j->u[i].score;
      }
    for (size_t i = 0; i < k; i++) {
      j->u[ix[i]].rank = rating_rank_of(sc, k, i);
      /* R-U3: the monthly department bottom. */
      if (!street && rating_in_bottom(sc, k, i, t->dept_month_bottom)) {
        struct rating_decision *d = decide(j, "R-U3", j->u[ix[i]].unit, "DEPARTMENT", month,
                                           "DEPT_REMINDER", 's');
        figure(d, "score_e2", sc[i]);
      }
    }
  }
  free(sc);
  free(ix);
}

/* R-U3 quarterly, R-U4: the means of the quarter's published monthly scores. */
static void quarter_units(struct rating_closejob *j)
{
  const struct rating_table *t = &j->x->table;
  char q[8];
  rating_quarter_name(j->m, q);
  for (int street = 0; street < 2; street++) {
    /* Every unit with a score in the quarter: this month's, then earlier ones. */
    const char **codes = NULL, **dists = NULL;
    int64_t *mean = NULL, *sum = NULL, *cnt = NULL;
    size_t n = 0, cap = j->n_u + j->r.n + 1;
    codes = calloc(cap, sizeof *codes);
    dists = calloc(cap, sizeof *dists);
    sum = calloc(cap, sizeof *sum);
    cnt = calloc(cap, sizeof *cnt);
    mean = calloc(cap, sizeof *mean);
    if (!codes || !dists || !sum || !cnt || !mean) {
      j->oom = 1;
      goto next;
    }
    for (size_t i = 0; i < j->n_u; i++)
      if (j->u[i].street == street) {
        codes[n] = j->u[i].unit;
        dists[n] = j->u[i].district;
        sum[n] = j->u[i].score;
        cnt[n++] = 1;
      }
    for (size_t i = 0; i < j->r.n; i++) {
      const struct row *r = &j->r.v[i];
      if (!is(r, "us") || (r->v[1][0] == 't') != street) continue;
      size_t k = 0;
      while (k < n && strcmp(codes[k], r->v[0]) != 0) k++;
      if (k == n) {
        codes[n] = r->v[0];
        const struct svc_street *st = svc_registry_street(j->x->reg, r->v[0]);
        dists[n] = st ? st->district : "";
        n++;
      }
      sum[k] += num(r->v[3]);
      cnt[k]++;
    }
    for (size_t i = 0; i < n; i++) mean[i] = rating_div_round(sum[i], cnt[i]); /* to hundredths */
    for (size_t i = 0; i < n; i++) {
      int bottom = rating_in_bottom(mean, n, i, street ? t->street_bottom : t->dept_quarter_bottom);
      if (!street) {
        if (bottom) {
          struct rating_decision *d = decide(j, "R-U3", codes[i], "DEPARTMENT", q, "DEPT_SUPERVISE", 'q');
          figure(d, "mean_e2", mean[i]);
        }
        continue;
      }
      const struct row *prev = find(j, "sr", codes[i]);
      int run = bottom ? (prev ? (int)num(prev->v[1]) : 0) + 1 : 0;
      if (!run) continue;
      struct rating_decision *d = decide(j, "R-U4", codes[i], "STREET", q, rating_street_measure(run), 'q');
      if (!d) break;
      figure(d, "mean_e2", mean[i]);
      figure(d, "checkpoints", run);
      snprintf(d->street, sizeof d->street, "%s", codes[i]);
      snprintf(d->district, sizeof d->district, "%s", dists[i]);
      if (dists[i][0]) snprintf(d->cc[d->n_cc++], sizeof d->cc[0], "%s", dists[i]);
    }
  next:
    free(codes);
    free(dists);
    free(sum);
    free(cnt);
    free(mean);
  }
}

/* R-S1..R-S3: the quarter's stars. */
static void quarter_stars(struct rating_closejob *j)
{
  const struct rating_ctx *x = j->x;
  char q[8];
  rating_quarter_name(j->m, q);
  size_t n = 0;
  for (size_t i = 0; i < j->r.n; i++) n += is(&j->r.v[i], "pq");
  j->stars = calloc(n ? n : 1, sizeof *j->stars);
  if (!j->stars) {
    j->oom = 1;
    return;
  }
  for (size_t i = 0; i < j->r.n; i++) {
    const struct row *r = &j->r.v[i];
    if (!is(r, "pq")) continue;
    const struct row *pd = find(j, "pd", r->v[0]), *ps = find(j, "ps", r->v[0]);
    int64_t tenths = rating_quarter_tenths(num(r->v[1]), num(r->v[2]));
    int d = pd ? (int)num(pd->v[1]) : 0;
    int stars = rating_stars(&x->table, tenths, d);
    Whistle__Rating__Stars *s = malloc(sizeof *s);
    if (!s) {
      j->oom = 1;
      return;
    }
    whistle__rating__stars__init(s);
    s->compound = r->v[0];
    s->score_e1 = (uint32_t)tenths;
    s->stars = (uint32_t)stars;
    j->stars[j->n_stars++] = s;
    const char *m = rating_s3(stars, ps ? (int)num(ps->v[1]) : -1);
    if (!m) continue;
    struct rating_decision *dc = decide(j, "R-S3", r->v[0], "PROJECT", q, m, 'i');
    if (!dc) return;
    const struct svc_compound *c = svc_registry_compound(x->reg, r->v[0]);
    project_parties(x, dc, c ? c->company : "");
    figure(dc, "score_e1", tenths);
    figure(dc, "stars", stars);
    figure(dc, "D", d);
    figure(dc, "previous_stars", ps ? num(ps->v[1]) : -1);
  }
}

/* R-U5: districts pooled over their streets' steps and callbacks. */
static void half_districts(struct rating_closejob *j)
{
  const struct rating_table *t = &j->x->table;
  char h[8];
  rating_half_name(j->m, h);
  size_t n = 0;
  for (size_t i = 0; i < j->r.n; i++) n += is(&j->r.v[i], "uh") && num(j->r.v[i].v[1]) > 0;
  int64_t *sc = calloc(n ? n : 1, sizeof *sc);
  const char **codes = calloc(n ? n : 1, sizeof *codes);
  if (!sc || !codes) {
    j->oom = 1;
    free(sc);
    free(codes);
    return;
  }
  size_t k = 0;
  for (size_t i = 0; i < j->r.n; i++) {
    const struct row *r = &j->r.v[i];
    if (!is(r, "uh") || num(r->v[1]) <= 0) continue;
    codes[k] = r->v[0];
    sc[k++] = rating_unit_score(t, num(r->v[1]), num(r->v[2]), num(r->v[3]), num(r->v[4]), num(r->v[5]));
  }
  const char *measure = j->m % 12 == 5 ? "DISTRICT_INTERVIEW" : "DISTRICT_YELLOW_CARD";
  for (size_t i = 0; i < k; i++)
    if (rating_in_bottom(sc, k, i, t->district_bottom)) {
      struct rating_decision *d = decide(j, "R-U5", codes[i], "DISTRICT", h, measure, 'd');
      if (d) snprintf(d->district, sizeof d->district, "%s", codes[i]);
      figure(d, "score_e2", sc[i]);
    }
  free(sc);
  free(codes);
}

/* R-K1/R-K2: every company's running score at the month's end. */
static void credit(struct rating_closejob *j)
{
  const struct rating_ctx *x = j->x;
  j->credit = calloc(x->reg->n_companies + 1, sizeof *j->credit);
  size_t *top = calloc(j->n_rank + 1, sizeof *top), n_top = 0; /* the ranks in a top list */
  if (!j->credit || !top) {
    j->oom = 1;
    free(top);
    return;
  }
  for (size_t k = 0; k < j->n_rank; k++)
    if (j->rank[k].in_top) top[n_top++] = k;
  for (size_t i = 0; i < x->reg->n_companies; i++) {
    const char *code = x->reg->companies[i].code;
    const struct row *r = find(j, "cr", code);
    int64_t points = r ? num(r->v[1]) : 0;
    for (size_t k = 0; k < n_top; k++)
      if (strcmp(j->rank[top[k]].company, code) == 0) points += x->table.deduct_top;
    int64_t score = rating_credit_score(&x->table, points);
    Whistle__Rating__Credit *c = malloc(sizeof *c);
    if (!c) {
      j->oom = 1;
      break;
    }
    whistle__rating__credit__init(c);
    c->company = (char *)code;
    c->score = (uint32_t)score;
    c->grade = (char *)rating_credit_grade(&x->table, score);
    j->credit[j->n_credit++] = c;
  }
  free(top);
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
    if (!j->oom) index_rows(j);
    if (!j->oom) month_ranking(j);
    if (!j->oom) unit_scores(j);
    if (!j->oom && j->quarter >= 0) quarter_units(j);
    if (!j->oom && j->quarter >= 0) quarter_stars(j);
    if (!j->oom && j->mh0 >= 0) half_districts(j);
    if (!j->oom) credit(j);
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
