/* Unit tests for the pure rules of unit assessment (三率, R-U1..R-U5) with
 * hand-computed expectations: rates and scores with their rounding, which
 * steps count and how, the bottom lists and the street ladder. Each test names
 * the rule it checks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rating_fixture.h"


/* ---- R-U1..R-U5: unit assessment ---- */

START_TEST(r_u2_rates_rounded_to_four_decimals) {
  ck_assert_int_eq(rating_rate_e4(1, 3), 3333);
  ck_assert_int_eq(rating_rate_e4(2, 3), 6667);
  ck_assert_int_eq(rating_rate_e4(1, 8), 1250);
  ck_assert_int_eq(rating_rate_e4(1, 32), 313); /* 0.03125 -> 0.0313 */
  ck_assert_int_eq(rating_rate_e4(0, 5), 0);
  ck_assert_int_eq(rating_rate_e4(5, 5), 10000);
}
END_TEST

/* R-U2 without callbacks: P = 3, 2 accepted, 1 resolved:
 * 100 x (30 x 2/3 + 35 x 1/3) / 65 = 9500 / 195 = 48.717... -> 48.72. */
START_TEST(r_u2_no_callbacks_weighs_30_65_and_35_65) {
  ck_assert_int_eq(rating_unit_score(&T, 3, 2, 1, 0, 0), 4872);
  ck_assert_int_eq(rating_unit_score(&T, 4, 4, 4, 0, 0), 10000);
  ck_assert_int_eq(rating_unit_score(&T, 4, 0, 0, 0, 0), 0);
  /* An empty population is unranked. */
  ck_assert_int_eq(rating_unit_score(&T, 0, 0, 0, 0, 0), -1);
}
END_TEST

/* R-U2: P = 16, 16 accepted, 14 resolved, 3 satisfied of 4 callbacks:
 * 30 x 1 + 35 x 0.875 + 35 x 0.75 = 86.875 exactly -> 86.88. */
START_TEST(r_u2_score_rounds_half_away_at_xx5) {
  ck_assert_int_eq(rating_unit_score(&T, 16, 16, 14, 4, 3), 8688);
  /* P = 16, 1 accepted, nothing else: 30 / 16 = 1.875 -> 1.88. */
  ck_assert_int_eq(rating_unit_score(&T, 16, 1, 0, 1, 0), 188);
}
END_TEST

/* R-U2: the score comes from the exact rates. P = 3, 1 accepted, 1
 * resolved, 0 satisfied of 1 callback: (30 + 35) / 3 = 21.666... -> 21.67,
 * where the rounded rates (0.3333) would give 21.6645 -> 21.66. */
START_TEST(r_u2_score_from_exact_rates) {
  ck_assert_int_eq(rating_unit_score(&T, 3, 1, 1, 1, 0), 2167);
  ck_assert_int_eq(rating_rate_e4(1, 3), 3333);
  /* 100 x (30 x 2/3 + 35 x 2/3 + 35 x 1/2) = 6083.33 -> 60.83. */
  ck_assert_int_eq(rating_unit_score(&T, 3, 2, 2, 2, 1), 6083);
}
END_TEST

/* A step due (resolve-by) on 2026-10-20 23:59:59 local, issued 2026-10-13. */
static struct rating_step october_step(void) {
  struct rating_step s;

  memset(&s, 0, sizeof s);
  snprintf(s.ticket_no, sizeof s.ticket_no, "12345-20261013-000001");
  s.step = 1;
  snprintf(s.unit, sizeof s.unit, "GA");
  s.issued_us = at("2026-10-13T10:00:00+08:00");
  s.accept_by_us = at("2026-10-14T10:00:00+08:00");
  s.resolve_by_us = at("2026-10-20T23:59:59+08:00");
  s.accepted_us = s.accept_by_us;   /* at the deadline second: on time */
  s.resolved_us = s.resolve_by_us;
  return s;
}

static void ck_flags(const struct rating_step *s, int pop, int acc, int res) {
  int p = -1, a = -1, r = -1;

  rating_step_flags(s, OFF, &p, &a, &r);
  ck_assert_int_eq(p, pop);
  ck_assert_int_eq(a, acc);
  ck_assert_int_eq(r, res);
}

START_TEST(r_u2_step_on_time_late_and_missing) {
  struct rating_step s = october_step();

  ck_flags(&s, 1, 1, 1);
  s.accepted_us += SEC - 1; /* within the deadline's second: on time, as referral's clocks (R-R4) */
  s.resolved_us += SEC - 1;
  ck_flags(&s, 1, 1, 1);
  s = october_step();
  s.accepted_us += SEC;
  s.resolved_us += SEC;
  ck_flags(&s, 1, 0, 0);
  s = october_step();
  s.accepted_us = 0;
  s.resolved_us = 0;
  ck_flags(&s, 1, 0, 0);
}
END_TEST

/* R-U2: a step reopened before its month's close counts as not resolved; a
 * reopening at or after the close does not change October. */
START_TEST(r_u2_reopened_before_month_end_is_not_resolved) {
  struct rating_step s = october_step();

  s.reopened_us = at("2026-10-31T23:59:59+08:00");
  ck_flags(&s, 1, 1, 0);
  s.reopened_us = at("2026-10-31T15:59:59Z");
  ck_flags(&s, 1, 1, 0);
  s.reopened_us = at("2026-11-01T00:00:00+08:00");
  ck_flags(&s, 1, 1, 1);
  s.reopened_us = at("2026-11-05T09:00:00+08:00");
  ck_flags(&s, 1, 1, 1);
}
END_TEST

/* R-U1: a returned step is not in the population (as of month close). */
START_TEST(r_u1_returned_step_not_in_population) {
  struct rating_step s = october_step();

  s.returned_us = at("2026-10-15T09:00:00+08:00");
  ck_flags(&s, 0, 0, 0);
  /* Returned after October closed: October's population keeps it. */
  s.returned_us = at("2026-11-02T09:00:00+08:00");
  ck_flags(&s, 1, 1, 1);
  /* Due 2026-11-01 00:30 local (2026-10-31T16:30Z): a November step, so a
   * return on 15 November takes it out of November's population. */
  s = october_step();
  s.resolve_by_us = at("2026-10-31T16:30:00Z");
  s.resolved_us = s.resolve_by_us;
  ck_assert_int_eq(rating_month_index(s.resolve_by_us, OFF), month(2026, 11));
  s.returned_us = at("2026-11-15T09:00:00+08:00");
  ck_flags(&s, 0, 0, 0);
}
END_TEST

/* R-U3: bottom 3 with ties at the boundary, all in. */
START_TEST(r_u3_bottom_three_with_ties) {
  const int64_t s[6] = {9000, 8500, 7000, 7000, 6500, 6000};
  const int64_t t[5] = {9000, 6500, 6000, 6000, 6000};
  int n_in = 0;

  ck_assert_int_eq(T.dept_month_bottom, 3);
  ck_assert_int_eq(T.dept_quarter_bottom, 3);
  for (size_t i = 0; i < 6; i++) n_in += rating_in_bottom(s, 6, i, T.dept_month_bottom);
  ck_assert_int_eq(n_in, 4);
  ck_assert_int_eq(rating_in_bottom(s, 6, 2, 3), 1);
  ck_assert_int_eq(rating_in_bottom(s, 6, 3, 3), 1);
  ck_assert_int_eq(rating_in_bottom(s, 6, 1, 3), 0);
  /* Three tied last: the fourth lowest (3 strictly lower) is out. */
  ck_assert_int_eq(rating_in_bottom(t, 5, 1, 3), 0);
  ck_assert_int_eq(rating_in_bottom(t, 5, 4, 3), 1);
  /* Exported rank: 1 + the number strictly higher. */
  ck_assert_int_eq(rating_rank_of(s, 6, 0), 1);
  ck_assert_int_eq(rating_rank_of(s, 6, 2), 3);
  ck_assert_int_eq(rating_rank_of(s, 6, 3), 3);
  ck_assert_int_eq(rating_rank_of(s, 6, 4), 5);
}
END_TEST

/* R-U3: a quarter mean of published monthly hundredths, rounded to 2
 * decimals (half away from zero). */
START_TEST(r_u3_quarter_mean_of_hundredths) {
  const int64_t three[3] = {8123, 7456, 9001}; /* 24580 / 3 = 8193.33 */
  const int64_t two[2] = {7001, 7002};         /* an unranked month skipped: 7001.5 */
  const int64_t one[1] = {6543};

  ck_assert_int_eq(rating_mean_hundredths(three, 3), 8193);
  ck_assert_int_eq(rating_mean_hundredths(two, 2), 7002);
  ck_assert_int_eq(rating_mean_hundredths(one, 1), 6543);
}
END_TEST

/* R-U4: a street's run of consecutive bottom-3 checkpoints (Mar, Jun in,
 * Sep out, Dec in, then three more) gives the ladder, and the run restarts
 * after a break. */
START_TEST(r_u4_street_ladder) {
  /* The street's quarter mean and three other streets' at each checkpoint. */
  static const int64_t mine[6] = {5000, 5100, 8000, 5200, 5300, 5400};
  static const char *const want[6] = {"STREET_SUPERVISE",      "STREET_INTERVIEW",
                                      NULL,                    "STREET_SUPERVISE",
                                      "STREET_INTERVIEW",      "STREET_ACCOUNTABILITY"};
  int c = 0;

  for (int q = 0; q < 6; q++) {
    int64_t s[4] = {mine[q], 7000, 7500, 6000};
    const char *m;
    c = rating_in_bottom(s, 4, 0, T.street_bottom) ? c + 1 : 0;
    m = rating_street_measure(c);
    if (want[q])
      ck_assert_str_eq(m, want[q]);
    else
      ck_assert_ptr_null(m);
  }
  ck_assert_str_eq(rating_street_measure(4), "STREET_ACCOUNTABILITY");
  ck_assert_ptr_null(rating_street_measure(0));
}
END_TEST

/* R-U5: four districts' pooled rates, bottom 2. */
START_TEST(r_u5_district_bottom_two) {
  int64_t s[4];

  /* D01: 100 x (30 x 9/10 + 35 x 8/10 + 35 x 4/5) = 83.00. */
  s[0] = rating_unit_score(&T, 10, 9, 8, 5, 4);
  /* D02: no callbacks, all on time: 100.00. */
  s[1] = rating_unit_score(&T, 4, 4, 4, 0, 0);
  /* D03: 100 x (30 x 3/5 + 35 x 2/5 + 35 x 1/2) = 49.50. */
  s[2] = rating_unit_score(&T, 5, 3, 2, 2, 1);
  /* D04: 100 x (30 x 1/2 + 35 x 1/2 + 35 x 1/1) = 67.50. */
  s[3] = rating_unit_score(&T, 2, 1, 1, 1, 1);
  ck_assert_int_eq(s[0], 8300);
  ck_assert_int_eq(s[1], 10000);
  ck_assert_int_eq(s[2], 4950);
  ck_assert_int_eq(s[3], 6750);
  ck_assert_int_eq(T.district_bottom, 2);
  ck_assert_int_eq(rating_in_bottom(s, 4, 0, T.district_bottom), 0);
  ck_assert_int_eq(rating_in_bottom(s, 4, 1, T.district_bottom), 0);
  ck_assert_int_eq(rating_in_bottom(s, 4, 2, T.district_bottom), 1);
  ck_assert_int_eq(rating_in_bottom(s, 4, 3, T.district_bottom), 1);
}
END_TEST

int main(void) {
  const TTest *tests[] = {
    r_u2_rates_rounded_to_four_decimals,
    r_u2_no_callbacks_weighs_30_65_and_35_65,
    r_u2_score_rounds_half_away_at_xx5,
    r_u2_score_from_exact_rates,
    r_u2_step_on_time_late_and_missing,
    r_u2_reopened_before_month_end_is_not_resolved,
    r_u1_returned_step_not_in_population,
    r_u3_bottom_three_with_ties,
    r_u3_quarter_mean_of_hundredths,
    r_u4_street_ladder,
    r_u5_district_bottom_two,
  };
  return unit_run("rating_units", "R-U1..R-U5", setup, NULL, 0, tests, sizeof tests / sizeof tests[0]);
}
