/* The decisions of a period close (rating_close.c loads the sums): the
 * month's ranking and streaks (R-C2..R-C4), unit scores and the monthly
 * department bottom (R-U2, R-U3), at a quarter's end the quarterly bottom,
 * the street ladder (R-U4) and stars (R-S1..R-S3), at a half-year's end the
 * districts (R-U5), and credit (R-K1, R-K2). Pure: no I/O. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rating.h"
#include "rating_close_int.h"
#include "svc_registry.h"

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

struct rating_decision *rating_close_slot(struct rating_closejob *j, struct rating_decision **v,
                                          size_t *n, size_t *cap)
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

static struct rating_decision *decide(struct rating_closejob *j, const char *rule, const char *subject,
                                      const char *kind, const char *period, const char *measure,
                                      char evidence_kind)
{
  struct rating_decision *d = rating_close_slot(j, &j->dec, &j->n_dec, &j->cap_dec);
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

void rating_close_decide(struct rating_closejob *j)
{
  if (!j->oom) index_rows(j);
  if (!j->oom) month_ranking(j);
  if (!j->oom) unit_scores(j);
  if (!j->oom && j->quarter >= 0) quarter_units(j);
  if (!j->oom && j->quarter >= 0) quarter_stars(j);
  if (!j->oom && j->mh0 >= 0) half_districts(j);
  if (!j->oom) credit(j);
}
