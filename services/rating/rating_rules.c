/* The pure rating rules over plain structs: the versioned rule table, local
 * month periods (R-T1), what counts in a month (R-C1, R-U1, R-U2), rankings
 * and streaks (R-C2..R-C4), the nine prohibitions (R-P3), credit (R-K1, R-K2),
 * stars (R-S1..R-S3) and unit assessment (R-U2..R-U5). No I/O except reading
 * the rule table file; all arithmetic is exact integer arithmetic. */
#include "rating.h"
#include "svc_registry.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc_csv.h"

/* ---- the rule table ---- */

void rating_table_defaults(struct rating_table *t) {
  static const int deduct[10] = {0, 10, 3, 1, 5, 10, 10, 5, 5, 10};
  static const int dims[RATING_DIMS] = {20, 15, 10, 15, 20, 10, 10};
  static const int stars[5] = {900, 800, 700, 600, 500};

  memset(t, 0, sizeof *t);
  snprintf(t->version, sizeof t->version, "v1");
  t->top_k = 30;
  memcpy(t->deduct, deduct, sizeof t->deduct);
  t->deduct_top = 2;
  t->credit_start = 100;
  t->grade_a = 90;
  t->grade_b = 75;
  t->grade_c = 60;
  memcpy(t->dim_weight, dims, sizeof t->dim_weight);
  memcpy(t->star_min, stars, sizeof t->star_min);
  t->w_response = 30;
  t->w_resolution = 35;
  t->w_satisfaction = 35;
  t->dept_month_bottom = 3;
  t->dept_quarter_bottom = 3;
  t->street_bottom = 3;
  t->district_bottom = 2;
}

/* The integer keys of the table file, with their bounds. */
struct table_key {
  const char *name;
  size_t off;
  int lo, hi;
};

#define KEY(name, field, lo, hi) {name, offsetof(struct rating_table, field), lo, hi}
static const struct table_key KEYS[] = {
  KEY("top_k", top_k, 1, 1000000),
  KEY("deduct.P1", deduct[1], 0, 1000000),
  KEY("deduct.P2", deduct[2], 0, 1000000),
  KEY("deduct.P3", deduct[3], 0, 1000000),
  KEY("deduct.P4", deduct[4], 0, 1000000),
  KEY("deduct.P5", deduct[5], 0, 1000000),
  KEY("deduct.P6", deduct[6], 0, 1000000),
  KEY("deduct.P7", deduct[7], 0, 1000000),
  KEY("deduct.P8", deduct[8], 0, 1000000),
  KEY("deduct.P9", deduct[9], 0, 1000000),
  KEY("deduct_top", deduct_top, 0, 1000000),
  KEY("credit_start", credit_start, 1, 1000000),
  KEY("grade.A", grade_a, 0, 1000000),
  KEY("grade.B", grade_b, 0, 1000000),
  KEY("grade.C", grade_c, 0, 1000000),
  KEY("weight.sanitation", dim_weight[0], 0, 100),
  KEY("weight.garbage", dim_weight[1], 0, 100),
  KEY("weight.greening", dim_weight[2], 0, 100),
  KEY("weight.order", dim_weight[3], 0, 100),
  KEY("weight.facilities", dim_weight[4], 0, 100),
  KEY("weight.disclosure", dim_weight[5], 0, 100),
  KEY("weight.governance", dim_weight[6], 0, 100),
  KEY("stars.5", star_min[0], 0, 1000),
  KEY("stars.4", star_min[1], 0, 1000),
  KEY("stars.3", star_min[2], 0, 1000),
  KEY("stars.2", star_min[3], 0, 1000),
  KEY("stars.1", star_min[4], 0, 1000),
  KEY("weight.response", w_response, 0, 100),
  KEY("weight.resolution", w_resolution, 0, 100),
  KEY("weight.satisfaction", w_satisfaction, 0, 100),
  KEY("bottom.dept_month", dept_month_bottom, 1, 1000000),
  KEY("bottom.dept_quarter", dept_quarter_bottom, 1, 1000000),
  KEY("bottom.street", street_bottom, 1, 1000000),
  KEY("bottom.district", district_bottom, 1, 1000000),
};
#undef KEY
#define N_KEYS (sizeof KEYS / sizeof KEYS[0])
/* Index of the version key in the per-key line numbers, after the integer keys. */
#define VERSION_KEY N_KEYS

/* The state of one table file being read. */
struct table_reader {
  const char *path;
  char *err;
  size_t errlen;
  size_t line[N_KEYS + 1]; /* where each key was set; 0 = not in the file */
};

__attribute__((format(printf, 3, 4)))
static int refuse(struct table_reader *R, size_t line, const char *fmt, ...) {
  char reason[200];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  snprintf(R->err, R->errlen, "%s:%zu: %s", R->path, line, reason);
  return -1;
}

/* Parses a decimal integer in [lo, hi] with nothing around it; 0 or -1. */
static int parse_int(const char *s, int lo, int hi, int *v) {
  char *end;
  long long x;

  if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9'))) return -1;
  errno = 0;
  x = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || x < lo || x > hi) return -1;
  *v = (int)x;
  return 0;
}

static int read_row(struct table_reader *R, struct rating_table *t, const char *key,
                    const char *value, size_t line) {
  if (strcmp(key, "version") == 0) {
    size_t n = strlen(value);
    if (R->line[VERSION_KEY]) return refuse(R, line, "version given twice");
    if (svc_utf8_blank(value, n)) return refuse(R, line, "empty version");
    if (n >= sizeof t->version)
      return refuse(R, line, "version longer than %zu bytes", sizeof t->version - 1);
    memcpy(t->version, value, n + 1);
    R->line[VERSION_KEY] = line;
    return 0;
  }
  for (size_t i = 0; i < N_KEYS; i++) {
    const struct table_key *k = &KEYS[i];
    if (strcmp(key, k->name) != 0) continue;
    if (R->line[i]) return refuse(R, line, "%s given twice", k->name);
    if (parse_int(value, k->lo, k->hi, (int *)((char *)t + k->off)) != 0)
      return refuse(R, line, "%s must be an integer from %d to %d, not '%.32s'", k->name, k->lo,
                    k->hi, value);
    R->line[i] = line;
    return 0;
  }
  return refuse(R, line, "unknown key '%.64s'", key);
}

/* The last line that set one of the named keys (1, the header, if none). */
static size_t last_line(const struct table_reader *R, const char *const *names, size_t n) {
  size_t line = 1;

  for (size_t i = 0; i < N_KEYS; i++) {
    for (size_t j = 0; j < n; j++) {
      if (strcmp(KEYS[i].name, names[j]) == 0 && R->line[i] > line) line = R->line[i];
    }
  }
  return line;
}

/* Checks the table as a whole once every row is read. */
static int check_table(struct table_reader *R, const struct rating_table *t) {
  static const char *const dims[] = {"weight.sanitation", "weight.garbage",    "weight.greening",
                                     "weight.order",      "weight.facilities", "weight.disclosure",
                                     "weight.governance"};
  static const char *const units[] = {"weight.response", "weight.resolution",
                                      "weight.satisfaction"};
  static const char *const stars[] = {"stars.5", "stars.4", "stars.3", "stars.2", "stars.1"};
  static const char *const grades[] = {"grade.A", "grade.B", "grade.C"};
  int sum = 0;

  if (!R->line[VERSION_KEY])
    return refuse(R, 1, "no version (a changed rule table names its version)");
  for (int i = 0; i < RATING_DIMS; i++) sum += t->dim_weight[i];
  if (sum != 100)
    return refuse(R, last_line(R, dims, RATING_DIMS),
                  "the inspection weights sum to %d, not 100", sum);
  sum = t->w_response + t->w_resolution + t->w_satisfaction;
  if (sum != 100)
    return refuse(R, last_line(R, units, 3), "the unit weights sum to %d, not 100", sum);
  if (t->w_response + t->w_resolution == 0)
    return refuse(R, last_line(R, units, 3),
                  "weight.response and weight.resolution are both 0 (no score without callbacks)");
  for (int i = 1; i < 5; i++) {
    if (t->star_min[i] >= t->star_min[i - 1])
      return refuse(R, last_line(R, stars, 5), "stars.5 to stars.1 must decrease");
  }
  if (t->grade_b >= t->grade_a || t->grade_c >= t->grade_b)
    return refuse(R, last_line(R, grades, 3), "grade.A, grade.B and grade.C must decrease");
  return 0;
}

int rating_table_load(struct rating_table *t, const char *path, char *err, size_t errlen) {
  struct table_reader R;
  struct rating_table tmp;
  struct svc_csv c;
  char dummy[8];
  int rc;

  if (!err || errlen == 0) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  if (!t || !path) return -1;
  rating_table_defaults(&tmp);
  if (access(path, F_OK) != 0 && errno == ENOENT) {
    *t = tmp;
    return 0;
  }
  memset(&R, 0, sizeof R);
  R.path = path;
  R.err = err;
  R.errlen = errlen;
  if (svc_csv_open(&c, path, "key,value") != 0) {
    snprintf(err, errlen, "%s", c.err);
    svc_csv_close(&c);
    return -1;
  }
  while ((rc = svc_csv_next(&c)) == 1) {
    if (read_row(&R, &tmp, c.fields[0], c.fields[1], c.line) != 0) break;
  }
  if (rc < 0) snprintf(err, errlen, "%s", c.err);
  svc_csv_close(&c);
  if (rc != 0 || check_table(&R, &tmp) != 0) return -1;
  *t = tmp;
  return 0;
}

/* ---- arithmetic ---- */

/* num / den rounded half away from zero (den > 0), in 128 bits. */
static __int128 div_round128(__int128 num, __int128 den) {
  __int128 q = num / den, r = num % den;

  if (r < 0) r = -r;
  if (r >= den - r) q += num < 0 ? -1 : 1;
  return q;
}

int64_t rating_div_round(int64_t num, int64_t den) {
  if (den <= 0) return 0;
  return (int64_t)div_round128(num, den);
}

/* ---- periods (R-T1) ---- */

static int32_t floor_div32(int32_t a, int32_t b) {
  int32_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

/* The year and the month (1..12) of month index mi. */
static void year_month(int32_t mi, int *y, int *m) {
  int32_t yy = floor_div32(mi, 12);

  *y = (int)yy;
  *m = (int)(mi - yy * 12) + 1;
}

int32_t rating_month_index(int64_t us, int off_s) {
  struct svc_date d = svc_civil_from_days(svc_local_day(us, off_s));
  return d.y * 12 + d.m - 1;
}

int64_t rating_month_start(int32_t mi, int off_s) {
  int y, m;

  year_month(mi, &y, &m);
  return svc_local_midnight(svc_days_from_civil(y, m, 1), off_s);
}

int64_t rating_month_end(int32_t mi, int off_s) {
  return rating_month_start(mi + 1, off_s);
}

/* Copies a formatted name into out[8] (a year of more than four digits is cut). */
static void put_name(const char *buf, char out[8]) {
  snprintf(out, 8, "%.7s", buf);
}

void rating_month_name(int32_t mi, char out[8]) {
  char buf[32];
  int y, m;

  year_month(mi, &y, &m);
  snprintf(buf, sizeof buf, "%04d-%02d", y, m);
  put_name(buf, out);
}

void rating_quarter_name(int32_t mi, char out[8]) {
  char buf[32];
  int y, m;

  year_month(mi, &y, &m);
  snprintf(buf, sizeof buf, "%04dQ%d", y, (m - 1) / 3 + 1);
  put_name(buf, out);
}

void rating_half_name(int32_t mi, char out[8]) {
  char buf[32];
  int y, m;

  year_month(mi, &y, &m);
  snprintf(buf, sizeof buf, "%04dH%d", y, (m - 1) / 6 + 1);
  put_name(buf, out);
}

void rating_year_name(int32_t mi, char out[8]) {
  char buf[32];
  int y, m;

  year_month(mi, &y, &m);
  snprintf(buf, sizeof buf, "%04d", y);
  put_name(buf, out);
}

int32_t rating_month_parse(const char *s) {
  int y = 0, m = 0;

  if (!s || strlen(s) != 7 || s[4] != '-') return -1;
  for (int i = 0; i < 7; i++) {
    if (i == 4) continue;
    if (s[i] < '0' || s[i] > '9') return -1;
    if (i < 4)
      y = y * 10 + (s[i] - '0');
    else
      m = m * 10 + (s[i] - '0');
  }
  if (m < 1 || m > 12) return -1;
  return y * 12 + m - 1;
}

/* ---- R-C1, R-U1, R-U2: what counts in a month ---- */

int rating_ticket_counts(const struct rating_ticket *t) {
  return t->known &&
         (strcmp(t->request_type, "COMPLAINT") == 0 || strcmp(t->request_type, "REPORT") == 0) &&
         t->counting_category && strcmp(t->management, "PROFESSIONAL") == 0 &&
         t->compound[0] != '\0' && !t->triage && (!t->repeat || t->referred) && !t->exempt;
}

int rating_ticket_in_month(const struct rating_ticket *t, int64_t at_us, int off_s) {
  return at_us < rating_month_end(rating_month_index(t->received_us, off_s), off_s);
}

void rating_step_flags(const struct rating_step *s, int off_s, int *in_pop, int *acc_ok,
                       int *res_ok) {
  int64_t end = rating_month_end(rating_month_index(s->resolve_by_us, off_s), off_s);
  int pop = !(s->returned_us && s->returned_us < end);

  *in_pop = pop;
  /* On time within the deadline's second, as referral's clocks (R-R4). */
  *acc_ok = pop && s->accepted_us && !svc_deadline_passed(s->accept_by_us, s->accepted_us);
  *res_ok = pop && s->resolved_us && !svc_deadline_passed(s->resolve_by_us, s->resolved_us) &&
            !(s->reopened_us && s->reopened_us < end);
}

/* ---- R-C2..R-C4: the monthly ranking ---- */

static int cmp_rank_rows(const void *pa, const void *pb) {
  const struct rating_rank_row *a = pa, *b = pb;

  if (a->count != b->count) return a->count > b->count ? -1 : 1;
  return strcmp(a->compound ? a->compound : "", b->compound ? b->compound : "");
}

void rating_rank(struct rating_rank_row *rows, size_t n, int k) {
  if (n == 0) return;
  /* Sorting by count (descending) then code is sorting by rank then code. */
  qsort(rows, n, sizeof rows[0], cmp_rank_rows);
  for (size_t i = 0; i < n; i++) {
    struct rating_rank_row *r = &rows[i];
    r->rank = (i > 0 && rows[i - 1].count == r->count) ? rows[i - 1].rank : (int)i + 1;
    r->in_top = r->count > 0 && r->rank <= k;
    r->streak = r->in_top ? r->prev_streak + 1 : 0;
    switch (r->streak) {
    case 1: r->decision = "INTERVIEW_COMPANY"; break;
    case 2: r->decision = "REPLACE_MANAGER"; break;
    case 3: r->decision = "BLACKLIST"; break;
    default: r->decision = NULL; break; /* out of the list, or s > 3: nothing new */
    }
  }
}

/* ---- R-P3: the nine prohibitions ---- */

int rating_p3_count(unsigned mask) {
  return __builtin_popcount(mask);
}

int rating_p3_apply(unsigned *mask, int prohibition, int company_d4_fired) {
  unsigned bit;
  int d;

  if (prohibition < 1 || prohibition > 9) return 0;
  bit = 1u << prohibition;
  if (*mask & bit) return 0;
  *mask |= bit;
  d = rating_p3_count(*mask);
  if (d <= 3) return d;
  if (d == 4) return company_d4_fired ? 0 : 4;
  return 0;
}

size_t rating_p3_measures(int d, const char *out[RATING_MEASURES_MAX]) {
  static const char *const D1[] = {"CREDIT_DEDUCT", "INTERVIEW_COMPANY", "RECTIFY",
                                   "SUGGEST_REPLACE_MANAGER"};
  static const char *const D2[] = {"STAR_DOWNGRADE"};
  static const char *const D3[] = {"NONCOMPLIANT", "EVICT"};
  static const char *const D4[] = {"BLACKLIST_COMPANY", "JOINT_PUNISHMENT"};
  static const struct { const char *const *m; size_t n; } BY_D[] = {
    {D1, 4}, {D2, 1}, {D3, 2}, {D4, 2},
  };

  if (d < 1 || d > 4) return 0;
  for (size_t i = 0; i < BY_D[d - 1].n; i++) out[i] = BY_D[d - 1].m[i];
  return BY_D[d - 1].n;
}

int rating_prohibition_parse(const char *s) {
  if (!s || s[0] != 'P' || s[1] < '1' || s[1] > '9' || s[2] != '\0') return 0;
  return s[1] - '0';
}

/* ---- R-K1, R-K2: credit ---- */

int64_t rating_credit_score(const struct rating_table *t, int64_t deducted) {
  int64_t score = t->credit_start - deducted;
  return score > 0 ? score : 0;
}

const char *rating_credit_grade(const struct rating_table *t, int64_t score) {
  if (score >= t->grade_a) return "A";
  if (score >= t->grade_b) return "B";
  if (score >= t->grade_c) return "C";
  return "D";
}

/* ---- R-S1..R-S3: stars ---- */

int64_t rating_inspection_raw(const struct rating_table *t, const int dims[RATING_DIMS]) {
  int64_t raw = 0;

  for (int i = 0; i < RATING_DIMS; i++) raw += (int64_t)t->dim_weight[i] * dims[i];
  return raw;
}

int64_t rating_quarter_tenths(int64_t raw_sum, int64_t n) {
  /* The mean weighted score is raw_sum / (100 n); in tenths, raw_sum / (10 n). */
  if (n <= 0) return 0;
  return (int64_t)div_round128(raw_sum, (__int128)10 * n);
}

int rating_stars(const struct rating_table *t, int64_t tenths, int d) {
  int stars = 0;

  for (int i = 0; i < 5; i++) {
    if (tenths >= t->star_min[i]) {
      stars = 5 - i;
      break;
    }
  }
  if (d >= 3 || stars == 0) return 0;
  if (d >= 2) stars--;
  return stars;
}

const char *rating_s3(int stars, int prev_stars) {
  if (stars <= 0) return "EVICT";
  if (stars <= 2 && prev_stars >= 0 && prev_stars <= 2) return "EVICT";
  if (stars <= 2) return "KEY_TARGET";
  return NULL;
}

/* ---- R-U2..R-U5: unit assessment ---- */

int64_t rating_rate_e4(int64_t num, int64_t den) {
  if (den <= 0) return 0;
  return (int64_t)div_round128((__int128)10000 * num, den);
}

int64_t rating_unit_score(const struct rating_table *t, int64_t pop, int64_t accepted,
                          int64_t resolved, int64_t callbacks, int64_t satisfied) {
  __int128 ab = (__int128)t->w_response * accepted + (__int128)t->w_resolution * resolved;

  if (pop <= 0) return -1;
  if (callbacks > 0) {
    /* 100 x (wr a / P + wres b / P + ws s / c), over the common denominator P c. */
    __int128 num = 100 * (ab * callbacks + (__int128)t->w_satisfaction * satisfied * pop);
    return (int64_t)div_round128(num, (__int128)pop * callbacks);
  }
  /* No callbacks: 100 x 100 x (wr a + wres b) / ((wr + wres) P). */
  if (t->w_response + t->w_resolution <= 0) return 0;
  return (int64_t)div_round128(10000 * ab, (__int128)(t->w_response + t->w_resolution) * pop);
}

int64_t rating_mean_hundredths(const int64_t *scores, size_t n) {
  __int128 sum = 0;

  if (n == 0) return 0;
  for (size_t i = 0; i < n; i++) sum += scores[i];
  return (int64_t)div_round128(sum, (__int128)n);
}

int rating_in_bottom(const int64_t *scores, size_t n, size_t i, int n_bottom) {
  size_t lower = 0;

  for (size_t j = 0; j < n; j++) lower += scores[j] < scores[i];
  return n_bottom > 0 && lower + 1 <= (size_t)n_bottom;
}

int rating_rank_of(const int64_t *scores, size_t n, size_t i) {
  size_t higher = 0;

  for (size_t j = 0; j < n; j++) higher += scores[j] > scores[i];
  return (int)higher + 1;
}

const char *rating_street_measure(int c) {
  if (c <= 0) return NULL;
  if (c == 1) return "STREET_SUPERVISE";
  if (c == 2) return "STREET_INTERVIEW";
  return "STREET_ACCOUNTABILITY";
}

int rating_registry_check(const char *dir, char *err, size_t errlen)
{
  if (svc_registry_check(dir, err, errlen)) return -1;
  char path[4096];
  struct rating_table t;
  rating_table_defaults(&t);
  snprintf(path, sizeof path, "%s/rating_rules.csv", dir);
  return rating_table_load(&t, path, err, errlen);
}
