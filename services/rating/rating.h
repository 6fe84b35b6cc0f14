/* The private header of whistle-rating (rule set v1), with prototypes grouped
 * by file: the pure rating rules over plain structs (R-C1..R-C4 rankings and
 * streaks, R-P1..R-P3 nine prohibitions, R-K1..R-K2 credit, R-S1..R-S3 stars,
 * R-U1..R-U5 unit assessment), the store (all SQL) and the handlers. */
#ifndef RATING_H
#define RATING_H

#include <stddef.h>
#include <stdint.h>
#include "svc_attr.h"
#include "svc_time.h"

#define RATING_CODE_MAX 72
#define RATING_DIMS 7            /* R-S1: the inspection dimensions */
#define RATING_MEASURES_MAX 4

/* ---- rating_rules.c: the pure rules (R-C1..R-U5) ---- */

/* The rule table: versioned data (rating_rules.csv in the registry directory,
 * optional), defaults of rule set v1. A decision records `version`. */
struct rating_table {
  char version[32];               /* "v1" */
  int top_k;                      /* R-C2: 30 */
  int deduct[10];                 /* R-K1: points per prohibition, index 1..9 */
  int deduct_top;                 /* R-K1: per (project, month) in a top list: 2 */
  int credit_start;               /* R-K1: 100 */
  int grade_a, grade_b, grade_c;  /* R-K2: 90, 75, 60 */
  int dim_weight[RATING_DIMS];    /* R-S1 (percent): 20 15 10 15 20 10 10 */
  int star_min[5];                /* R-S2 (tenths) for 5..1 stars: 900 800 700 600 500 */
  int w_response, w_resolution, w_satisfaction; /* R-U2: 30 35 35 */
  int dept_month_bottom;          /* R-U3: 3 */
  int dept_quarter_bottom;        /* R-U3: 3 */
  int street_bottom;              /* R-U4: 3 */
  int district_bottom;            /* R-U5: 2 */
};
/* Fills t with the defaults of rule set v1 (version "v1"). */
void rating_table_defaults(struct rating_table *t);
/* Reads `key,value` rows (header `key,value`) over the defaults: keys
 * version, top_k, deduct.P1..deduct.P9, deduct_top, credit_start, grade.A,
 * grade.B, grade.C, weight.sanitation, weight.garbage, weight.greening,
 * weight.order, weight.facilities, weight.disclosure, weight.governance
 * (sum 100), stars.5..stars.1 (tenths, decreasing), weight.response,
 * weight.resolution, weight.satisfaction (sum 100), bottom.dept_month,
 * bottom.dept_quarter, bottom.street, bottom.district. A missing file keeps
 * the defaults (returns 0). Returns 0, or -1 with "path:line: reason" in
 * err (unknown or repeated key, bad number, weights not summing to 100,
 * stars or grades not decreasing, no version), t then being unchanged. */
int rating_table_load(struct rating_table *t, const char *path, char *err, size_t errlen);

/* Half away from zero: num / den rounded to an integer (den > 0). */
int64_t rating_div_round(int64_t num, int64_t den);

/* Local-time period helpers (R-T1), off_s the city's UTC offset. The period
 * index of an instant: months since year 0 (y * 12 + m - 1), and the end
 * (exclusive) instant of month index mi. */
int32_t rating_month_index(int64_t us, int off_s);
int64_t rating_month_end(int32_t mi, int off_s);
int64_t rating_month_start(int32_t mi, int off_s);
/* "2026-10", "2026Q4", "2026H2", "2026" of month index mi. */
void rating_month_name(int32_t mi, char out[8]);
void rating_quarter_name(int32_t mi, char out[8]);
void rating_half_name(int32_t mi, char out[8]);
void rating_year_name(int32_t mi, char out[8]);
/* Parses "2026-10" into a month index; -1 if malformed. */
int32_t rating_month_parse(const char *s);

/* R-C1: a ticket as rating knows it. Its counting state is decided "as of
 * month close": a change stamped at or after the end of the ticket's month
 * (its received month) does not change whether it counts there. */
struct rating_ticket {
  char ticket_no[RATING_CODE_MAX];
  int known;                      /* intake's ticket.accepted was applied */
  char request_type[16];
  char category[RATING_CODE_MAX], compound[RATING_CODE_MAX], company[RATING_CODE_MAX];
  char street[RATING_CODE_MAX], district[RATING_CODE_MAX];
  char management[16];
  int64_t received_us;
  int counting_category;          /* the category counts (categories.csv) */
  int triage;                     /* compound or category unknown (waits for an operator) */
  int repeat;                     /* intake linked it as a repeat (R-I5) */
  int referred;                   /* referral issued it a step: not a repeat (R-I5) */
  int exempt;                     /* exempted (核减) before its month closed */
  int counted;                    /* as stored: counted in C(compound, month) */
  int is_new, dirty;
};
/* R-C1: whether the ticket counts now (from its fields, not `counted`). */
int rating_ticket_counts(const struct rating_ticket *t);
/* Whether a change stamped at_us still bears on the ticket's month (at_us
 * before the month's end). */
int rating_ticket_in_month(const struct rating_ticket *t, int64_t at_us, int off_s);

/* R-U1/R-U2: a referral step as rating knows it. */
struct rating_step {
  char ticket_no[RATING_CODE_MAX];
  uint32_t step;
  char unit[RATING_CODE_MAX];
  int street_unit;                /* 1 street office, 0 department */
  char district[RATING_CODE_MAX]; /* a street's district */
  int64_t issued_us, accept_by_us, resolve_by_us;
  int64_t accepted_us, resolved_us, returned_us, reopened_us; /* 0: not (yet) */
  int is_new, dirty;
  /* as stored: its contribution to its unit's month (resolve_by's month) */
  int in_pop, acc_ok, res_ok;
};
/* R-U1/R-U2: the step's contribution to P(u, m), m = resolve_by's month:
 * in_pop unless returned before the month's end; acc_ok if accepted at or
 * before accept_by; res_ok if resolved at or before resolve_by and not
 * reopened before the month's end. acc_ok/res_ok are 0 when not in_pop. */
void rating_step_flags(const struct rating_step *s, int off_s, int *in_pop, int *acc_ok,
                       int *res_ok);

/* R-C2..R-C4: one project's line in a month's ranking. */
struct rating_rank_row {
  const char *compound, *company;
  int64_t count;                  /* C(p, m) > 0 */
  int prev_streak;                /* s(p, m-1) */
  /* set by rating_rank: */
  int rank, in_top, streak;
  const char *decision;           /* R-C4 measure or NULL */
};
/* Ranks rows (competition rank by count), marks the top list (rank <= k,
 * ties at the boundary all in), streaks and R-C4 decisions; sorts rows by
 * rank, then compound code. */
void rating_rank(struct rating_rank_row *rows, size_t n, int k);

/* R-P3: applies a confirmed prohibition (1..9) to a project's distinct set
 * for the year (bit p). Returns the threshold D that fires (1, 2, 3 or 4), or
 * 0 (not new, or D > 4, or D = 4 when company_d4_fired). */
int rating_p3_apply(unsigned *mask, int prohibition, int company_d4_fired);
/* The number of distinct prohibitions in a mask. */
int rating_p3_count(unsigned mask);
/* The measures of threshold d (1..4): fills out, returns how many. */
size_t rating_p3_measures(int d, const char *out[RATING_MEASURES_MAX]);
/* Parses "P1".."P9": 1..9, or 0. */
int rating_prohibition_parse(const char *s);

/* R-K1/R-K2: a company's score from its deductions (floor 0), and grade. */
int64_t rating_credit_score(const struct rating_table *t, int64_t deducted);
const char *rating_credit_grade(const struct rating_table *t, int64_t score);

/* R-S1: an inspection's weighted score times 100 (sum of weight% x score). */
int64_t rating_inspection_raw(const struct rating_table *t, const int dims[RATING_DIMS]);
/* R-S1: a quarter's score in tenths from the sum of raw scores of n > 0
 * inspections (mean, rounded to 0.1 half away from zero). */
int64_t rating_quarter_tenths(int64_t raw_sum, int64_t n);
/* R-S2: stars 1..5, or 0 for NONCOMPLIANT, from the score (tenths) and
 * D(p, y) at quarter end. */
int rating_stars(const struct rating_table *t, int64_t tenths, int d);
/* R-S3: the decision for a rated project: "EVICT", "KEY_TARGET" or NULL;
 * prev_stars is the previous rated quarter's stars, or -1 if none. */
const char *rating_s3(int stars, int prev_stars);

/* R-U2: rates in ten-thousandths (4 decimals, half away from zero) and the
 * score in hundredths from the exact rates (no callbacks: 30/65 and 35/65);
 * the score is -1 for an empty population (pop <= 0: the unit is unranked). */
int64_t rating_rate_e4(int64_t num, int64_t den);
int64_t rating_unit_score(const struct rating_table *t, int64_t pop, int64_t accepted,
                          int64_t resolved, int64_t callbacks, int64_t satisfied);
/* R-U3/R-U4: a mean of published (hundredths) scores, in hundredths. */
int64_t rating_mean_hundredths(const int64_t *scores, size_t n);
/* "Bottom N" (and R-C2 style ties): 1 + the number of scores strictly lower
 * than scores[i] is <= n_bottom. */
int rating_in_bottom(const int64_t *scores, size_t n, size_t i, int n_bottom);
/* The exported unit rank: 1 + the number of scores strictly higher. */
int rating_rank_of(const int64_t *scores, size_t n, size_t i);
/* R-U4: the street ladder measure for a run of c >= 1 consecutive bottom
 * checkpoints. */
const char *rating_street_measure(int c);

#endif
