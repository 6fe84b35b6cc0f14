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

/* The registry directory's check for --check-config and start-up: the
 * registry (svc_registry_check) and its optional rule table
 * rating_rules.csv. 0, or -1 with the reason in err. */
int rating_registry_check(const char *dir, char *err, size_t errlen);

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
/* ---- decisions (rating_apply.c and rating_close.c build them, rating_store.c saves them) ---- */

#define RATING_EVIDENCE_MAX 4096
struct rating_decision {
  char key[200];
  const char *rule;                 /* "R-C4", "R-P3", ... (static) */
  char rule_id[16];                 /* "R-P3.2" */
  const char *measures[RATING_MEASURES_MAX]; size_t n_measures; /* static strings */
  char subject[RATING_CODE_MAX];
  const char *subject_kind;         /* PROJECT COMPANY STREET DEPARTMENT DISTRICT */
  char period[8];
  int64_t event_us;
  char **evidence; size_t n_evidence, cap_evidence; /* owned */
  char figures[6][48]; size_t n_figures;
  char recipient[RATING_CODE_MAX];
  char cc[2][RATING_CODE_MAX]; size_t n_cc;
  char company[RATING_CODE_MAX], street[RATING_CODE_MAX], district[RATING_CODE_MAX];
  const char *rule_set;
  char ev_kind;                     /* rating_close.c: which evidence it needs ('h': held, saved) */
};

/* ---- rating_store.c: all SQL of the service ---- */

struct svc_pg;
struct svc_pg_batch;
struct rating_store;

/* A row of a load or query: n text values (NULL for SQL NULL), valid only
 * during the call; the columns are listed with each function. */
typedef void (*rating_row_cb)(void *arg, int n, const char *const *v); /* = svc_pg_row_cb */
typedef void (*rating_ticket_cb)(void *arg, const struct rating_ticket *t);
typedef void (*rating_step_cb)(void *arg, const struct rating_step *s);

struct rating_store *rating_store_new(struct svc_pg *pg);
void rating_store_destroy(struct rating_store **s);

/* Loads the tickets and their steps named (two statements). */
SVC_MUST_CHECK int rating_store_load(struct rating_store *s, struct svc_pg_batch *b,
                                     const char *const *ticket_nos, size_t n, rating_ticket_cb tcb,
                                     rating_step_cb scb, void *arg);
/* R-P3 state of the (compound, company, year) triples: rows ("p", compound,
 * year, mask), ("c", company, year, "t"/"f" D = 4 fired) and ("v", compound,
 * year, ticket_no) of the violations so far, in time order. */
SVC_MUST_CHECK int rating_store_load_p3(struct rating_store *s, struct svc_pg_batch *b,
                                        const char *const *compounds, const char *const *companies,
                                        const int32_t *years, size_t n, rating_row_cb cb, void *arg);
SVC_MUST_CHECK int rating_store_save_ticket(struct rating_store *s, struct svc_pg_batch *b,
                                            const struct rating_ticket *t, int32_t month);
SVC_MUST_CHECK int rating_store_save_step(struct rating_store *s, struct svc_pg_batch *b,
                                          const struct rating_step *st, int32_t month);
/* Adds delta to C(compound, month). */
SVC_MUST_CHECK int rating_store_project_delta(struct rating_store *s, struct svc_pg_batch *b,
                                              int32_t month, const char *compound,
                                              const char *company, int64_t delta);
/* Adds to P(u, m) and its parts: d[0] population, d[1] accepted on time,
 * d[2] resolved on time, d[3] callbacks, d[4] satisfied. */
SVC_MUST_CHECK int rating_store_unit_delta(struct rating_store *s, struct svc_pg_batch *b,
                                           int32_t month, const char *unit, int street_unit,
                                           const char *district, const int64_t d[5]);
SVC_MUST_CHECK int rating_store_violation(struct rating_store *s, struct svc_pg_batch *b,
                                          const char *ticket_no, uint32_t step,
                                          const char *compound, const char *company,
                                          int prohibition, int64_t at_us, int32_t year);
SVC_MUST_CHECK int rating_store_project_year(struct rating_store *s, struct svc_pg_batch *b,
                                             const char *compound, int32_t year, unsigned mask);
SVC_MUST_CHECK int rating_store_company_d4(struct rating_store *s, struct svc_pg_batch *b,
                                           const char *company, int32_t year);
/* half = year * 2 + (0 for H1, 1 for H2). */
SVC_MUST_CHECK int rating_store_deduction(struct rating_store *s, struct svc_pg_batch *b,
                                          const char *key, const char *company, int32_t half,
                                          int points, int64_t at_us);
/* Saves a decision, published (emitted 1) or held for later (0). */
SVC_MUST_CHECK int rating_store_decision(struct rating_store *s, struct svc_pg_batch *b,
                                         const struct rating_decision *d, int emitted);
/* The held decisions with event time at or before until_us, in (event time,
 * key) order: "hd", key, rule, rule_id, measures (JSON), subject, subject_kind,
 * period, event_us, evidence (JSON), figures (JSON), recipient, cc (JSON),
 * rule_set, company, street, district. */
SVC_MUST_CHECK int rating_store_held(struct rating_store *s, struct svc_pg_batch *b,
                                     int64_t until_us, rating_row_cb cb, void *arg);
/* Marks the held decisions up to until_us published. */
SVC_MUST_CHECK int rating_store_emitted(struct rating_store *s, struct svc_pg_batch *b,
                                        int64_t until_us);
/* Moves the input watermarks forward, the first month back, adds to late. */
SVC_MUST_CHECK int rating_store_clock(struct rating_store *s, struct svc_pg_batch *b,
                                      int64_t intake_wm, int64_t referral_wm, int32_t first_month,
                                      int64_t late);
/* Locks the clock row for the rest of the transaction (a close or a
 * watermark of an earlier process still committing is waited for) and
 * reads it: one row ("ck", closed_month, out_wm). The first statement of a
 * close, so that what follows sees what the earlier one committed. */
SVC_MUST_CHECK int rating_store_lock_clock(struct rating_store *s, struct svc_pg_batch *b,
                                           rating_row_cb cb, void *arg);
/* Records month closed (and rating's watermark published, if > 0). */
SVC_MUST_CHECK int rating_store_closed(struct rating_store *s, struct svc_pg_batch *b,
                                       int32_t month, int64_t out_wm);

/* What a month close reads (one statement each; rows tagged by their first
 * value): "pm" compound, company, count (C > 0); "rk" compound, streak (the
 * previous month's top list); "um" unit, street_unit (t/f), district,
 * population, accepted, resolved, callbacks, satisfied; "cr" company,
 * points (deductions of the month's half-year before its end). At a quarter
 * end (q >= 0, the quarter index; mq0 its first month) also: "us" unit,
 * street_unit, month, score_e2 (the quarter's earlier published scores);
 * "sr" street, run (the previous quarter's runs); "pq" compound, raw_sum, n;
 * "pd" compound, D at the quarter's end; "ps" compound, stars (the last rated
 * quarter before). At a half-year end (mh0 its first month, >= 0): "uh"
 * district, population, accepted, resolved, callbacks, satisfied, pooled over
 * the district's street units. */
SVC_MUST_CHECK int rating_store_close_load(struct rating_store *s, struct svc_pg_batch *b,
                                           int32_t month, int64_t end_us, int32_t quarter,
                                           int32_t mq0, int32_t year, int32_t half, int32_t mh0,
                                           rating_row_cb cb, void *arg);
/* Evidence rows (code, item) for the codes: tag "t" tickets counted in month
 * m0 (codes: compounds); "s" steps of units (codes) due in months m0..m1 that
 * missed a clock ("<ticket_no>#<step>"); "d" likewise for the street units of
 * districts (codes); "i" inspections of compounds in quarter m0. */
SVC_MUST_CHECK int rating_store_evidence(struct rating_store *s, struct svc_pg_batch *b, char tag,
                                         int32_t m0, int32_t m1, const char *const *codes,
                                         size_t n, rating_row_cb cb, void *arg);
struct rating_close_rows;
/* Published results of a close: a month's ranking lines, unit scores and a
 * quarter's stars, each table in one statement (rows in the order given;
 * nothing is staged for n = 0). */
struct rating_unit_score {
  const char *unit, *district;
  int street_unit;
  int64_t pop, resp_e4, resol_e4, sat_e4, score_e2; /* sat_e4 < 0: no callbacks (NULL) */
  int rank;
};
struct rating_star { const char *compound; int64_t score_e1; int stars; };
SVC_MUST_CHECK int rating_store_rankings(struct rating_store *s, struct svc_pg_batch *b,
                                         int32_t month, const struct rating_rank_row *r, size_t n);
SVC_MUST_CHECK int rating_store_unit_scores(struct rating_store *s, struct svc_pg_batch *b,
                                            int32_t month, const struct rating_unit_score *u,
                                            size_t n);
SVC_MUST_CHECK int rating_store_street_run(struct rating_store *s, struct svc_pg_batch *b,
                                           int32_t quarter, const char *street, int run);
SVC_MUST_CHECK int rating_store_stars(struct rating_store *s, struct svc_pg_batch *b,
                                      int32_t quarter, const struct rating_star *st, size_t n);
/* An inspection (R-S1), kept unless its id is known or its quarter closed:
 * cb gets one row: inserted (t/f), same (t/f/NULL: the known one has the
 * same fields), closed (t/f). */
SVC_MUST_CHECK int rating_store_inspection(struct rating_store *s, struct svc_pg_batch *b,
                                           const char *id, const char *compound, int64_t at_us,
                                           int32_t quarter, int32_t quarter_last_month,
                                           const int dims[RATING_DIMS], int64_t raw, int rated,
                                           rating_row_cb cb, void *arg);
/* Queries for the export shapes; rows in export order. RANKINGS (month):
 * compound, company, count, rank, in_top, streak. UNITS (month): unit,
 * population, response_e4, resolution_e4, satisfaction_e4, score_e2, rank.
 * CREDIT (half): company, points (deductions up to the inputs' watermark).
 * STARS (quarter): compound, score_e1, stars. DECISIONS: key, rule,
 * measures (JSON), subject, period, event_us, evidence (JSON). */
enum rating_query { RQ_RANKINGS = 1, RQ_UNITS, RQ_CREDIT, RQ_STARS, RQ_DECISIONS };
SVC_MUST_CHECK int rating_store_query(struct rating_store *s, struct svc_pg_batch *b,
                                      enum rating_query q, int32_t period, rating_row_cb cb,
                                      void *arg);
/* At start-up (blocking): the saved clock. */
struct rating_clock_row {
  int64_t intake_wm, referral_wm, out_wm, late;
  int32_t closed_month, first_month;
};
int rating_store_load_clock(const char *conninfo, struct rating_clock_row *out);

/* ---- rating_apply.c, rating_close.c, rating_requests.c: the handlers ---- */

struct svc_registry;
struct svc_stream_producer;
struct svc_stream_event;
struct svc_server_ops;

struct rating_counters {
  uint64_t tickets, steps, violations, decisions, closes, inspections, queries, late;
};

struct rating_ctx {
  struct svc_registry *reg;        /* swapped on SIGHUP */
  struct rating_table table;       /* the rule table (registry directory) */
  int off_s;                       /* the city's UTC offset (R-T1) */
  struct svc_clock clock;
  struct rating_store *store;
  struct svc_stream_producer *prod;
  struct svc_pg *pg;               /* the write connection every batch runs on */
  /* Committed state. */
  int64_t intake_wm, referral_wm, out_wm;
  int32_t closed_month, first_month;
  int close_busy;
  const int *stopping;             /* the daemon's: 1 once it drains */
  struct rating_closejob *close;   /* the close in flight */
  struct rating_counters n;        /* of what committed */
};

/* One input stream's consumer: which (0 intake, 1 referral) and its apply
 * in flight. */
struct rating_input {
  struct rating_ctx *x;
  int which;
  struct rating_apply *a;
};

/* Stream consumer callbacks (svc_stream_apply_cb / _next_cb) with a
 * struct rating_input as arg: stage 1 decodes the events and loads the
 * tickets, steps and nine-prohibitions state they touch; stage 2 applies
 * them (R-C1, R-U1/R-U2, R-P2/R-P3, R-K1) and stages every write. */
int rating_apply(void *arg, struct svc_pg_batch *b, const struct svc_stream_event *ev, size_t n);
int rating_apply_next(void *arg, struct svc_pg_batch *b, const struct svc_stream_event *ev,
                      size_t n, int stage);
void rating_input_free(struct rating_input *in);

/* Closes the next month whose end the inputs' watermarks have passed (with
 * its quarter and half-year), or publishes rating's watermark, in one
 * transaction; runs again after each commit until nothing is left. Safe to
 * call at any time (does nothing while a close runs or Postgres is down). */
void rating_close_run(struct rating_ctx *x);
void rating_close_free(struct rating_ctx *x);
/* Loads the rule table rating_rules.csv of the registry directory dir into
 * x (at start, reloading 0, or on SIGHUP: a refused file keeps the table in
 * force, logged and counted as a failed reload). 0 or -1. */
int rating_load_table(struct rating_ctx *x, const char *dir, int reloading);
/* At start: the committed state saved in the clock row. */
struct rating_clock_row;
void rating_restore(struct rating_ctx *x, const struct rating_clock_row *c);
/* The month after which nothing is closed: months <= it are final. */
int32_t rating_next_close(const struct rating_ctx *x);

/* rating_decisions.c: evidence strings are copied. */
int rating_decision_evidence(struct rating_decision *d, const char *item);
void rating_decision_clear(struct rating_decision *d);
/* Stages the decision's stream event only (a held one being published). */
int rating_decision_publish(struct rating_ctx *x, struct svc_pg_batch *b,
                            const struct rating_decision *d);
/* Stages the decision's row and its stream event. 0 or -1. */
int rating_decision_emit(struct rating_ctx *x, struct svc_pg_batch *b,
                         const struct rating_decision *d);
/* Stages the decision's row only: it is published by the next close or
 * watermark that passes its event time (in (event time, key) order). */
int rating_decision_hold(struct rating_ctx *x, struct svc_pg_batch *b,
                         const struct rating_decision *d);

/* The request interface (proto/rating.proto): inspections and queries. */
extern const struct svc_server_ops rating_request_ops;

#endif
