/* Unit tests for the pure rating rules with hand-computed expectations:
 * complaint counting and rankings (R-C1..R-C4), the nine prohibitions (R-P3),
 * credit (R-K1, R-K2), stars (R-S1..R-S3), the local periods they use (R-T1)
 * and the rule table file; unit assessment (R-U1..R-U5) is test_rating_units.c.
 * Each test names the rule it checks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "rating_fixture.h"


/* Writes text to a fresh temporary file; the path goes into path[64]. */
static void temp_file(const char *text, char path[64]) {
  FILE *f;
  int fd;

  snprintf(path, 64, "/tmp/test_rating_XXXXXX");
  fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  f = fdopen(fd, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
}

/* ---- arithmetic and periods (R-T1) ---- */

START_TEST(rounding_half_away_from_zero) {
  ck_assert_int_eq(rating_div_round(5, 2), 3);
  ck_assert_int_eq(rating_div_round(-5, 2), -3);
  ck_assert_int_eq(rating_div_round(7, 2), 4);
  ck_assert_int_eq(rating_div_round(-7, 2), -4);
  ck_assert_int_eq(rating_div_round(4, 3), 1);
  ck_assert_int_eq(rating_div_round(-4, 3), -1);
  ck_assert_int_eq(rating_div_round(5, 3), 2);
  ck_assert_int_eq(rating_div_round(-5, 3), -2);
  ck_assert_int_eq(rating_div_round(6, 3), 2);
  ck_assert_int_eq(rating_div_round(0, 7), 0);
  ck_assert_int_eq(rating_div_round(INT64_MAX, INT64_MAX), 1);
}
END_TEST

START_TEST(r_t1_month_index_in_local_time) {
  char name[8];
  /* 2026-10-31T16:30Z is 2026-11-01 00:30 local: November. */
  int32_t mi = rating_month_index(at("2026-10-31T16:30:00Z"), OFF);

  ck_assert_int_eq(mi, month(2026, 11));
  ck_assert_int_eq(rating_month_index(at("2026-10-31T16:30:00Z"), 0), month(2026, 10));
  ck_assert_int_eq(rating_month_start(mi, OFF), at("2026-11-01T00:00:00+08:00"));
  ck_assert_int_eq(rating_month_end(mi, OFF), at("2026-12-01T00:00:00+08:00"));
  ck_assert_int_eq(rating_month_end(month(2026, 12), OFF), at("2027-01-01T00:00:00+08:00"));
  rating_month_name(mi, name);
  ck_assert_str_eq(name, "2026-11");
  rating_quarter_name(mi, name);
  ck_assert_str_eq(name, "2026Q4");
  rating_half_name(mi, name);
  ck_assert_str_eq(name, "2026H2");
  rating_year_name(mi, name);
  ck_assert_str_eq(name, "2026");
  rating_month_name(month(2027, 1), name);
  ck_assert_str_eq(name, "2027-01");
  rating_quarter_name(month(2027, 3), name);
  ck_assert_str_eq(name, "2027Q1");
  rating_quarter_name(month(2027, 4), name);
  ck_assert_str_eq(name, "2027Q2");
  rating_half_name(month(2027, 6), name);
  ck_assert_str_eq(name, "2027H1");
  rating_half_name(month(2027, 7), name);
  ck_assert_str_eq(name, "2027H2");
}
END_TEST

START_TEST(r_t1_month_parse) {
  ck_assert_int_eq(rating_month_parse("2026-10"), month(2026, 10));
  ck_assert_int_eq(rating_month_parse("2027-01"), month(2027, 1));
  ck_assert_int_eq(rating_month_parse("2026-12"), month(2026, 12));
  ck_assert_int_eq(rating_month_parse("2026-13"), -1);
  ck_assert_int_eq(rating_month_parse("2026-00"), -1);
  ck_assert_int_eq(rating_month_parse("2026-1"), -1);
  ck_assert_int_eq(rating_month_parse("2026-100"), -1);
  ck_assert_int_eq(rating_month_parse("202a-10"), -1);
  ck_assert_int_eq(rating_month_parse("2026/10"), -1);
  ck_assert_int_eq(rating_month_parse(""), -1);
  ck_assert_int_eq(rating_month_parse(NULL), -1);
}
END_TEST

/* ---- R-C1: what counts ---- */

/* A ticket that counts: a known COMPLAINT in a counting category, matched
 * to a PROFESSIONAL project, not a repeat, not exempted. */
static struct rating_ticket counting_ticket(void) {
  struct rating_ticket t;

  memset(&t, 0, sizeof t);
  snprintf(t.ticket_no, sizeof t.ticket_no, "12345-20261031-000001");
  t.known = 1;
  snprintf(t.request_type, sizeof t.request_type, "COMPLAINT");
  snprintf(t.category, sizeof t.category, "PS_SANITATION");
  snprintf(t.compound, sizeof t.compound, "C0001");
  snprintf(t.company, sizeof t.company, "CO01");
  snprintf(t.management, sizeof t.management, "PROFESSIONAL");
  t.received_us = at("2026-10-31T23:59:59+08:00");
  t.counting_category = 1;
  return t;
}

START_TEST(r_c1_counting_conditions) {
  struct rating_ticket t = counting_ticket();

  ck_assert_int_eq(rating_ticket_counts(&t), 1);
  t = counting_ticket();
  snprintf(t.request_type, sizeof t.request_type, "REPORT");
  ck_assert_int_eq(rating_ticket_counts(&t), 1);
  /* R-I2: only COMPLAINT and REPORT count. */
  snprintf(t.request_type, sizeof t.request_type, "CONSULT");
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
  snprintf(t.request_type, sizeof t.request_type, "HELP");
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
  snprintf(t.request_type, sizeof t.request_type, "SUGGEST");
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
  /* A repeat does not count, unless referral referred it (R-I5). */
  t = counting_ticket();
  t.repeat = 1;
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
  t.referred = 1;
  ck_assert_int_eq(rating_ticket_counts(&t), 1);
  /* Exempted (核减). */
  t = counting_ticket();
  t.exempt = 1;
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
  /* Still in triage (compound or category unknown). */
  t = counting_ticket();
  t.triage = 1;
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
  t = counting_ticket();
  t.compound[0] = '\0';
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
  /* Only PROFESSIONAL projects are ranked. */
  t = counting_ticket();
  snprintf(t.management, sizeof t.management, "SELF");
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
  snprintf(t.management, sizeof t.management, "NONE");
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
  /* A category that does not count toward the project. */
  t = counting_ticket();
  t.counting_category = 0;
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
  /* Not (yet) accepted by intake. */
  t = counting_ticket();
  t.known = 0;
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
}
END_TEST

/* R-C1 "as of month close": a triaged ticket received on 31 October and
 * completed at or after 1 November 00:00 local stays uncounted in October. */
START_TEST(r_c1_change_at_or_after_month_end_does_not_bear) {
  struct rating_ticket t = counting_ticket();

  t.triage = 1;
  ck_assert_int_eq(rating_ticket_counts(&t), 0);
  ck_assert_int_eq(rating_ticket_in_month(&t, at("2026-10-31T23:59:59.999999+08:00"), OFF), 1);
  ck_assert_int_eq(rating_ticket_in_month(&t, at("2026-11-01T00:00:00+08:00"), OFF), 0);
  ck_assert_int_eq(rating_ticket_in_month(&t, at("2026-11-03T09:00:00+08:00"), OFF), 0);
  /* R-T1: received 2026-10-31T16:30Z is a November ticket; its month ends
   * 2026-12-01 local. */
  t.received_us = at("2026-10-31T16:30:00Z");
  ck_assert_int_eq(rating_ticket_in_month(&t, at("2026-11-30T23:59:59+08:00"), OFF), 1);
  ck_assert_int_eq(rating_ticket_in_month(&t, at("2026-11-30T16:00:00Z"), OFF), 0);
}
END_TEST

/* ---- R-C2..R-C4: rankings ---- */

static char CODES[64][16];

static const char *code(int i) {
  snprintf(CODES[i], sizeof CODES[i], "C%03d", i);
  return CODES[i];
}

static const struct rating_rank_row *find_row(const struct rating_rank_row *rows, size_t n,
                                              const char *compound) {
  for (size_t i = 0; i < n; i++)
    if (strcmp(rows[i].compound, compound) == 0) return &rows[i];
  ck_abort_msg("no row %s", compound);
  return NULL;
}

static size_t n_in_top(const struct rating_rank_row *rows, size_t n) {
  size_t k = 0;

  for (size_t i = 0; i < n; i++) k += rows[i].in_top != 0;
  return k;
}

/* R-C2: 29 projects above, three tied at rank 30: all three are in (32 in
 * the list); the next ones (rank 33) are out. Rows arrive unsorted. */
START_TEST(r_c2_three_tied_at_rank_30_are_all_in_the_top_list) {
  struct rating_rank_row rows[34];
  size_t n = 0;

  memset(rows, 0, sizeof rows);
  /* C034, C033: count 10; C032..C030: count 50; C029..C001: 72..100. */
  for (int i = 34; i >= 1; i--) {
    rows[n].compound = code(i);
    rows[n].company = "CO01";
    rows[n].count = i >= 33 ? 10 : i >= 30 ? 50 : 101 - i;
    n++;
  }
  rating_rank(rows, n, 30);
  for (int i = 1; i <= 34; i++) {
    const struct rating_rank_row *r = &rows[i - 1];
    ck_assert_str_eq(r->compound, code(i)); /* sorted by rank, then code */
    ck_assert_int_eq(r->rank, i <= 29 ? i : i <= 32 ? 30 : 33);
    ck_assert_int_eq(r->in_top, i <= 32);
    ck_assert_int_eq(r->streak, i <= 32 ? 1 : 0);
  }
  ck_assert_uint_eq(n_in_top(rows, n), 32);
  ck_assert_str_eq(find_row(rows, n, "C032")->decision, "INTERVIEW_COMPANY");
  ck_assert_ptr_null(find_row(rows, n, "C033")->decision);
}
END_TEST

/* R-C2: three tied at rank 29 are all in; the next project is ranked 32,
 * beyond K = 30, and falls out although only 31 projects are in. */
START_TEST(r_c2_tie_above_the_boundary_pushes_the_next_out) {
  struct rating_rank_row rows[33];
  size_t n = 0;

  memset(rows, 0, sizeof rows);
  for (int i = 1; i <= 33; i++) {
    rows[n].compound = code(i);
    rows[n].company = "CO01";
    /* C001..C028: 100..73; C029..C031: 50; C032: 40; C033: 39. */
    rows[n].count = i <= 28 ? 101 - i : i <= 31 ? 50 : i == 32 ? 40 : 39;
    n++;
  }
  rating_rank(rows, n, 30);
  ck_assert_int_eq(find_row(rows, n, "C029")->rank, 29);
  ck_assert_int_eq(find_row(rows, n, "C031")->rank, 29);
  ck_assert_int_eq(find_row(rows, n, "C031")->in_top, 1);
  ck_assert_int_eq(find_row(rows, n, "C032")->rank, 32);
  ck_assert_int_eq(find_row(rows, n, "C032")->in_top, 0);
  ck_assert_int_eq(find_row(rows, n, "C033")->rank, 33);
  ck_assert_uint_eq(n_in_top(rows, n), 31);
}
END_TEST

/* R-C2: a project with C = 0 is never in the top list, whatever its rank. */
START_TEST(r_c2_zero_count_is_not_in_the_top_list) {
  struct rating_rank_row rows[3] = {
    {.compound = "C003", .count = 0}, {.compound = "C001", .count = 4},
    {.compound = "C002", .count = 4},
  };

  rating_rank(rows, 3, 30);
  ck_assert_str_eq(rows[0].compound, "C001");
  ck_assert_str_eq(rows[1].compound, "C002");
  ck_assert_str_eq(rows[2].compound, "C003");
  ck_assert_int_eq(rows[1].rank, 1);
  ck_assert_int_eq(rows[2].rank, 3);
  ck_assert_int_eq(rows[2].in_top, 0);
  ck_assert_int_eq(rows[2].streak, 0);
  ck_assert_ptr_null(rows[2].decision);
  rating_rank(rows, 0, 30); /* nothing to rank */
}
END_TEST

/* One month of a two-project ranking with K = 1: returns C001's row. */
static struct rating_rank_row month_of(int64_t c001, int64_t c002, int prev_streak) {
  struct rating_rank_row rows[2] = {
    {.compound = "C002", .company = "CO02", .count = c002},
    {.compound = "C001", .company = "CO01", .count = c001, .prev_streak = prev_streak},
  };

  rating_rank(rows, 2, 1);
  return *find_row(rows, 2, "C001");
}

/* R-C3: in, in, out, in: the streak runs 1, 2, breaks to 0 and restarts at
 * 1; R-C4 issues the ladder from its first rung again. */
START_TEST(r_c3_streak_broken_and_restarted) {
  struct rating_rank_row r = month_of(9, 3, 0);

  ck_assert_int_eq(r.streak, 1);
  ck_assert_str_eq(r.decision, "INTERVIEW_COMPANY");
  r = month_of(9, 3, r.streak);
  ck_assert_int_eq(r.streak, 2);
  ck_assert_str_eq(r.decision, "REPLACE_MANAGER");
  r = month_of(2, 3, r.streak);
  ck_assert_int_eq(r.rank, 2);
  ck_assert_int_eq(r.in_top, 0);
  ck_assert_int_eq(r.streak, 0);
  ck_assert_ptr_null(r.decision);
  r = month_of(5, 3, r.streak);
  ck_assert_int_eq(r.streak, 1);
  ck_assert_str_eq(r.decision, "INTERVIEW_COMPANY");
}
END_TEST

/* R-C4: s = 1, 2, 3 issue INTERVIEW_COMPANY, REPLACE_MANAGER, BLACKLIST;
 * s > 3 issues nothing new (a tie for first keeps both in). */
START_TEST(r_c4_ladder_and_nothing_after_three) {
  static const char *const want[] = {"INTERVIEW_COMPANY", "REPLACE_MANAGER", "BLACKLIST", NULL,
                                     NULL};
  int s = 0;

  for (int m = 0; m < 5; m++) {
    struct rating_rank_row r = month_of(7, 7, s);
    ck_assert_int_eq(r.rank, 1);
    ck_assert_int_eq(r.streak, m + 1);
    if (want[m])
      ck_assert_str_eq(r.decision, want[m]);
    else
      ck_assert_ptr_null(r.decision);
    s = r.streak;
  }
}
END_TEST

/* ---- R-P3: the nine prohibitions ---- */

START_TEST(r_p3_thresholds_once_and_d4_once_per_company) {
  unsigned a = 0, b = 0;
  int company_d4 = 0, d;

  /* Project A: P2, P2 again (not distinct), P7, P1, P9 (D = 4), P5 (D = 5). */
  ck_assert_int_eq(rating_p3_apply(&a, 2, company_d4), 1);
  ck_assert_int_eq(rating_p3_apply(&a, 2, company_d4), 0);
  ck_assert_int_eq(rating_p3_count(a), 1);
  ck_assert_int_eq(rating_p3_apply(&a, 7, company_d4), 2);
  ck_assert_int_eq(rating_p3_apply(&a, 1, company_d4), 3);
  ck_assert_int_eq(rating_p3_apply(&a, 7, company_d4), 0);
  d = rating_p3_apply(&a, 9, company_d4);
  ck_assert_int_eq(d, 4);
  company_d4 = d == 4;
  ck_assert_int_eq(rating_p3_apply(&a, 5, company_d4), 0);
  ck_assert_int_eq(rating_p3_count(a), 5);
  /* Project B of the same company, same year: D = 1..3 fire for B itself,
   * D = 4 issues nothing (the company's D = 4 has fired). */
  ck_assert_int_eq(rating_p3_apply(&b, 3, company_d4), 1);
  ck_assert_int_eq(rating_p3_apply(&b, 4, company_d4), 2);
  ck_assert_int_eq(rating_p3_apply(&b, 6, company_d4), 3);
  ck_assert_int_eq(rating_p3_apply(&b, 8, company_d4), 0);
  ck_assert_int_eq(rating_p3_count(b), 4);
  /* Not a prohibition: nothing changes. */
  ck_assert_int_eq(rating_p3_apply(&b, 0, 0), 0);
  ck_assert_int_eq(rating_p3_apply(&b, 10, 0), 0);
  ck_assert_int_eq(rating_p3_count(b), 4);
}
END_TEST

/* R-P3 with R-T1: a violation at 2026-12-31 23:59:59 local is in 2026, one a
 * second later is in 2027 (both on 31 December in UTC), so the same
 * prohibition fires D = 1 in each year. */
START_TEST(r_p3_year_by_local_time) {
  unsigned y2026 = 0, y2027 = 0;
  int64_t last = at("2026-12-31T23:59:59+08:00"), first = at("2027-01-01T00:00:00+08:00");
  int32_t m1 = rating_month_index(last, OFF), m2 = rating_month_index(first, OFF);
  char y1[8], y2[8];

  ck_assert_int_eq(first - last, SEC);
  ck_assert_int_eq(m1, month(2026, 12));
  ck_assert_int_eq(m2, month(2027, 1));
  rating_year_name(m1, y1);
  rating_year_name(m2, y2);
  ck_assert_str_eq(y1, "2026");
  ck_assert_str_eq(y2, "2027");
  /* In UTC both instants are 2026-12-31. */
  ck_assert_int_eq(rating_month_index(first, 0), month(2026, 12));
  ck_assert_int_eq(rating_p3_apply(&y2026, 2, 0), 1);
  ck_assert_int_eq(rating_p3_apply(&y2027, 2, 0), 1);
}
END_TEST

START_TEST(r_p3_measures_and_codes) {
  const char *m[RATING_MEASURES_MAX];

  ck_assert_uint_eq(rating_p3_measures(1, m), 4);
  ck_assert_str_eq(m[0], "CREDIT_DEDUCT");
  ck_assert_str_eq(m[1], "INTERVIEW_COMPANY");
  ck_assert_str_eq(m[2], "RECTIFY");
  ck_assert_str_eq(m[3], "SUGGEST_REPLACE_MANAGER");
  ck_assert_uint_eq(rating_p3_measures(2, m), 1);
  ck_assert_str_eq(m[0], "STAR_DOWNGRADE");
  ck_assert_uint_eq(rating_p3_measures(3, m), 2);
  ck_assert_str_eq(m[0], "NONCOMPLIANT");
  ck_assert_str_eq(m[1], "EVICT");
  ck_assert_uint_eq(rating_p3_measures(4, m), 2);
  ck_assert_str_eq(m[0], "BLACKLIST_COMPANY");
  ck_assert_str_eq(m[1], "JOINT_PUNISHMENT");
  ck_assert_uint_eq(rating_p3_measures(0, m), 0);
  ck_assert_uint_eq(rating_p3_measures(5, m), 0);
  /* R-P1: P1..P9. */
  ck_assert_int_eq(rating_prohibition_parse("P1"), 1);
  ck_assert_int_eq(rating_prohibition_parse("P9"), 9);
  ck_assert_int_eq(rating_prohibition_parse("P0"), 0);
  ck_assert_int_eq(rating_prohibition_parse("P10"), 0);
  ck_assert_int_eq(rating_prohibition_parse("p1"), 0);
  ck_assert_int_eq(rating_prohibition_parse("P"), 0);
  ck_assert_int_eq(rating_prohibition_parse(""), 0);
  ck_assert_int_eq(rating_prohibition_parse(NULL), 0);
}
END_TEST

/* ---- R-K1, R-K2: credit ---- */

START_TEST(r_k1_deductions_per_prohibition_and_top_list) {
  static const int want[10] = {0, 10, 3, 1, 5, 10, 10, 5, 5, 10};
  int64_t deducted;

  for (int p = 1; p <= 9; p++) ck_assert_int_eq(T.deduct[p], want[p]);
  ck_assert_int_eq(T.deduct_top, 2);
  ck_assert_int_eq(T.credit_start, 100);
  /* Every incident: P1, P2 twice, and two (project, month) top-list lines. */
  deducted = T.deduct[1] + 2 * T.deduct[2] + 2 * T.deduct_top;
  ck_assert_int_eq(deducted, 20);
  ck_assert_int_eq(rating_credit_score(&T, deducted), 80);
  ck_assert_str_eq(rating_credit_grade(&T, 80), "B");
  /* One of each of the nine: 59. */
  deducted = 0;
  for (int p = 1; p <= 9; p++) deducted += T.deduct[p];
  ck_assert_int_eq(rating_credit_score(&T, deducted), 41);
  /* Floor 0. */
  ck_assert_int_eq(rating_credit_score(&T, 100), 0);
  ck_assert_int_eq(rating_credit_score(&T, 130), 0);
  ck_assert_int_eq(rating_credit_score(&T, 0), 100);
}
END_TEST

START_TEST(r_k2_grade_bounds) {
  ck_assert_str_eq(rating_credit_grade(&T, 100), "A");
  ck_assert_str_eq(rating_credit_grade(&T, 90), "A");
  ck_assert_str_eq(rating_credit_grade(&T, 89), "B");
  ck_assert_str_eq(rating_credit_grade(&T, 75), "B");
  ck_assert_str_eq(rating_credit_grade(&T, 74), "C");
  ck_assert_str_eq(rating_credit_grade(&T, 60), "C");
  ck_assert_str_eq(rating_credit_grade(&T, 59), "D");
  ck_assert_str_eq(rating_credit_grade(&T, 0), "D");
}
END_TEST

/* ---- R-S1..R-S3: stars ---- */

/* sanitation, garbage, greening, order, facilities, disclosure, governance */
START_TEST(r_s1_inspection_weighted_score) {
  const int dims[RATING_DIMS] = {92, 88, 75, 90, 81, 100, 70};
  const int all80[RATING_DIMS] = {80, 80, 80, 80, 80, 80, 80};

  /* 20x92 + 15x88 + 10x75 + 15x90 + 20x81 + 10x100 + 10x70 = 8580: 85.80. */
  ck_assert_int_eq(rating_inspection_raw(&T, dims), 8580);
  ck_assert_int_eq(rating_inspection_raw(&T, all80), 8000);
  ck_assert_int_eq(rating_quarter_tenths(8580, 1), 858);
}
END_TEST

/* R-S1: quarter means that are exactly x.x5 round up (half away from zero). */
START_TEST(r_s1_quarter_mean_rounds_half_away_at_x5) {
  const int a[RATING_DIMS] = {80, 80, 80, 80, 80, 80, 80}; /* 80.00 */
  const int b[RATING_DIMS] = {80, 80, 85, 80, 80, 80, 80}; /* 80.50 */
  const int c[RATING_DIMS] = {75, 75, 75, 75, 75, 75, 75}; /* 75.00 */
  const int d[RATING_DIMS] = {75, 84, 75, 75, 75, 75, 75}; /* 76.35 */
  const int e[RATING_DIMS] = {75, 75, 75, 75, 75, 84, 75}; /* 75.90 */
  int64_t sum;

  ck_assert_int_eq(rating_inspection_raw(&T, b), 8050);
  /* (80.00 + 80.50) / 2 = 80.25 -> 80.3. */
  sum = rating_inspection_raw(&T, a) + rating_inspection_raw(&T, b);
  ck_assert_int_eq(rating_quarter_tenths(sum, 2), 803);
  /* (75.00 + 75.00 + 76.35) / 3 = 75.45 -> 75.5. */
  ck_assert_int_eq(rating_inspection_raw(&T, d), 7635);
  sum = 2 * rating_inspection_raw(&T, c) + rating_inspection_raw(&T, d);
  ck_assert_int_eq(sum, 22635);
  ck_assert_int_eq(rating_quarter_tenths(sum, 3), 755);
  /* (75.00 + 75.90) / 2 = 75.45 -> 75.5; (75.00 + 75.00 + 75.90) / 3 = 75.30. */
  ck_assert_int_eq(rating_inspection_raw(&T, e), 7590);
  ck_assert_int_eq(rating_quarter_tenths(7500 + 7590, 2), 755);
  ck_assert_int_eq(rating_quarter_tenths(2 * 7500 + 7590, 3), 753);
  /* Just below the half: 22634 / 30 = 754.47 -> 75.4. */
  ck_assert_int_eq(rating_quarter_tenths(22634, 3), 754);
}
END_TEST

START_TEST(r_s2_stars_thresholds_and_downgrades) {
  ck_assert_int_eq(rating_stars(&T, 1000, 0), 5);
  ck_assert_int_eq(rating_stars(&T, 900, 0), 5);
  ck_assert_int_eq(rating_stars(&T, 899, 0), 4);
  ck_assert_int_eq(rating_stars(&T, 800, 0), 4);
  ck_assert_int_eq(rating_stars(&T, 799, 1), 3);
  ck_assert_int_eq(rating_stars(&T, 700, 1), 3);
  ck_assert_int_eq(rating_stars(&T, 600, 0), 2);
  ck_assert_int_eq(rating_stars(&T, 500, 0), 1);
  ck_assert_int_eq(rating_stars(&T, 499, 0), 0); /* NONCOMPLIANT */
  /* 80.25 -> 80.3 (803 tenths): four stars, three with D = 2. */
  ck_assert_int_eq(rating_stars(&T, 803, 0), 4);
  ck_assert_int_eq(rating_stars(&T, 803, 2), 3);
  ck_assert_int_eq(rating_stars(&T, 900, 2), 4);
  /* One star downgraded to 0: NONCOMPLIANT. */
  ck_assert_int_eq(rating_stars(&T, 500, 2), 0);
  ck_assert_int_eq(rating_stars(&T, 650, 2), 1);
  /* D >= 3: NONCOMPLIANT whatever the score. */
  ck_assert_int_eq(rating_stars(&T, 1000, 3), 0);
  ck_assert_int_eq(rating_stars(&T, 950, 5), 0);
}
END_TEST

START_TEST(r_s3_decisions) {
  ck_assert_str_eq(rating_s3(0, -1), "EVICT");
  ck_assert_str_eq(rating_s3(0, 5), "EVICT");
  ck_assert_str_eq(rating_s3(2, -1), "KEY_TARGET");
  ck_assert_str_eq(rating_s3(1, 3), "KEY_TARGET");
  ck_assert_str_eq(rating_s3(2, 2), "EVICT");
  ck_assert_str_eq(rating_s3(1, 0), "EVICT");
  ck_assert_ptr_null(rating_s3(3, 0));
  ck_assert_ptr_null(rating_s3(5, -1));
}
END_TEST

/* R-S3: Q1 rated 2 stars (KEY_TARGET), Q2 without inspections (unrated,
 * skipped), Q3 2 stars again: its previous rated quarter is Q1, so EVICT. */
START_TEST(r_s3_unrated_quarter_between_two_poor_ones) {
  int prev = -1, stars;

  stars = rating_stars(&T, 650, 0);
  ck_assert_int_eq(stars, 2);
  ck_assert_str_eq(rating_s3(stars, prev), "KEY_TARGET");
  prev = stars;
  /* Q2: no inspection, no stars row, prev stays Q1's. */
  stars = rating_stars(&T, 610, 0);
  ck_assert_int_eq(stars, 2);
  ck_assert_str_eq(rating_s3(stars, prev), "EVICT");
}
END_TEST

/* ---- the rule table ---- */

START_TEST(table_defaults_are_rule_set_v1) {
  static const int dims[RATING_DIMS] = {20, 15, 10, 15, 20, 10, 10};
  static const int stars[5] = {900, 800, 700, 600, 500};

  ck_assert_str_eq(T.version, "v1");
  ck_assert_int_eq(T.top_k, 30);
  ck_assert_int_eq(T.grade_a, 90);
  ck_assert_int_eq(T.grade_b, 75);
  ck_assert_int_eq(T.grade_c, 60);
  for (int i = 0; i < RATING_DIMS; i++) ck_assert_int_eq(T.dim_weight[i], dims[i]);
  for (int i = 0; i < 5; i++) ck_assert_int_eq(T.star_min[i], stars[i]);
  ck_assert_int_eq(T.w_response, 30);
  ck_assert_int_eq(T.w_resolution, 35);
  ck_assert_int_eq(T.w_satisfaction, 35);
  ck_assert_int_eq(T.street_bottom, 3);
}
END_TEST

START_TEST(table_load_custom_file) {
  struct rating_table t;
  char path[64], err[256];

  temp_file("key,value\nversion,v2-test\ntop_k,20\ndeduct.P3,2\nweight.response,40\n"
            "weight.satisfaction,25\nstars.1,450\n",
            path);
  memset(&t, 0x5a, sizeof t);
  ck_assert_int_eq(rating_table_load(&t, path, err, sizeof err), 0);
  unlink(path);
  ck_assert_str_eq(t.version, "v2-test");
  ck_assert_int_eq(t.top_k, 20);
  ck_assert_int_eq(t.deduct[3], 2);
  ck_assert_int_eq(t.deduct[1], 10);
  ck_assert_int_eq(t.w_response, 40);
  ck_assert_int_eq(t.w_resolution, 35);
  ck_assert_int_eq(t.w_satisfaction, 25);
  ck_assert_int_eq(t.star_min[4], 450);
  ck_assert_int_eq(t.grade_a, 90);
  /* The loaded weights drive the score: without callbacks, 100 x (40 x 2/3
   * + 35 x 1/3) / 75 = 51.11; with them, 100 x (40 x 2/3 + 35 x 1/3 + 25 x 1/2)
   * = 50.83. */
  ck_assert_int_eq(rating_unit_score(&t, 3, 2, 1, 0, 0), 5111);
  ck_assert_int_eq(rating_unit_score(&t, 3, 2, 1, 2, 1), 5083);
  ck_assert_int_eq(rating_stars(&t, 450, 0), 1);
}
END_TEST

START_TEST(table_load_missing_file_keeps_defaults) {
  struct rating_table t;
  char err[256];

  memset(&t, 0x5a, sizeof t);
  ck_assert_int_eq(rating_table_load(&t, "/nonexistent/rating_rules.csv", err, sizeof err), 0);
  ck_assert_str_eq(t.version, "v1");
  ck_assert_int_eq(t.top_k, 30);
  ck_assert_int_eq(t.district_bottom, 2);
}
END_TEST

/* Loads text as a table file, expecting a refusal whose message holds want;
 * the table is left as it was. */
static void ck_refused(const char *text, const char *want) {
  struct rating_table t = T;
  char path[64], err[256];

  temp_file(text, path);
  ck_assert_int_eq(rating_table_load(&t, path, err, sizeof err), -1);
  unlink(path);
  ck_assert_msg(strstr(err, want) != NULL, "error '%s' lacks '%s'", err, want);
  ck_assert_msg(strncmp(err, path, strlen(path)) == 0, "error '%s' does not name the file", err);
  ck_assert_str_eq(t.version, "v1");
  ck_assert_int_eq(t.top_k, 30);
  ck_assert_int_eq(t.dim_weight[0], 20);
}

START_TEST(table_load_refusals) {
  ck_refused("key,value\nversion,v2\ntop_n,20\n", ":3: unknown key 'top_n'");
  ck_refused("key,value\nversion,v2\nweight.sanitation,25\n",
             ":3: the inspection weights sum to 105, not 100");
  ck_refused("key,value\nversion,v2\nweight.response,40\n", ":3: the unit weights sum to 110");
  ck_refused("key,value\nversion,v2\nweight.response,0\nweight.resolution,0\n"
             "weight.satisfaction,100\n",
             ":5: weight.response and weight.resolution are both 0");
  ck_refused("key,value\ntop_k,20\n", ":1: no version");
  ck_refused("key,value\nversion,v2\nversion,v3\n", ":3: version given twice");
  ck_refused("key,value\nversion,v2\ntop_k,twenty\n", ":3: top_k must be an integer");
  ck_refused("key,value\nversion,v2\ntop_k,20x\n", ":3: top_k must be an integer");
  ck_refused("key,value\nversion,v2\ntop_k,0\n", ":3: top_k must be an integer");
  ck_refused("key,value\nversion,v2\ntop_k,20\ntop_k,25\n", ":4: top_k given twice");
  ck_refused("key,value\nversion,\n", ":2: empty version");
  ck_refused("key,value\nversion,v2\nstars.4,950\n", ":3: stars.5 to stars.1 must decrease");
  ck_refused("key,value\nversion,v2\ngrade.C,80\n",
             ":3: grade.A, grade.B and grade.C must decrease");
  ck_refused("name,value\nversion,v2\n", "expected header");
  ck_refused("key,value\nversion,v2,extra\n", ":2:");
}
END_TEST

int main(void) {
  const TTest *tests[] = {
    rounding_half_away_from_zero,
    r_t1_month_index_in_local_time,
    r_t1_month_parse,
    r_c1_counting_conditions,
    r_c1_change_at_or_after_month_end_does_not_bear,
    r_c2_three_tied_at_rank_30_are_all_in_the_top_list,
    r_c2_tie_above_the_boundary_pushes_the_next_out,
    r_c2_zero_count_is_not_in_the_top_list,
    r_c3_streak_broken_and_restarted,
    r_c4_ladder_and_nothing_after_three,
    r_p3_thresholds_once_and_d4_once_per_company,
    r_p3_year_by_local_time,
    r_p3_measures_and_codes,
    r_k1_deductions_per_prohibition_and_top_list,
    r_k2_grade_bounds,
    r_s1_inspection_weighted_score,
    r_s1_quarter_mean_rounds_half_away_at_x5,
    r_s2_stars_thresholds_and_downgrades,
    r_s3_decisions,
    r_s3_unrated_quarter_between_two_poor_ones,
    table_defaults_are_rule_set_v1,
    table_load_custom_file,
    table_load_missing_file_keeps_defaults,
    table_load_refusals,
  };
  return unit_run("rating_rules", "R-C1..R-S3", setup, NULL, 0, tests, sizeof tests / sizeof tests[0]);
}
