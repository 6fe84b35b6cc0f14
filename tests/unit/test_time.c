/* Unit tests for svc_time (docs/rules.md §0, rules R-T1..R-T5 and the R-R4 deadline
 * second): civil dates, RFC 3339, local periods, the working-day calendar,
 * deadlines and the service clock. Each test names the rule it checks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc_time.h"

#define OFF SVC_DEFAULT_UTC_OFFSET
#define HOUR_US (INT64_C(3600) * SVC_US_PER_SEC)

/* Parses an RFC 3339 literal, failing the test if it does not parse. */
static int64_t T(const char *s) {
  int64_t us = 0;
  ck_assert_msg(svc_time_parse(s, (size_t)-1, &us) == 0, "cannot parse %s", s);
  return us;
}

/* Days since epoch of a literal date. */
static int32_t D(int y, int m, int d) {
  return svc_days_from_civil(y, m, d);
}

/* Checks that us formats as want at +08:00. */
static void ck_fmt(int64_t us, const char *want) {
  char buf[40];
  ck_assert_int_gt(svc_time_format(us, OFF, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, want);
}

static void ck_period(enum svc_period_kind k, const char *when, const char *want) {
  char buf[16];
  ck_assert_int_eq(svc_period_name(k, T(when), OFF, buf, sizeof buf), 0);
  ck_assert_msg(strcmp(buf, want) == 0, "%s: got %s want %s", when, buf, want);
}

/* Writes text to a fresh temporary file and returns its path (static buffer). */
static const char *temp_file(const char *text) {
  static char path[64];
  FILE *f;
  int fd;

  snprintf(path, sizeof path, "/tmp/test_time_XXXXXX");
  fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  f = fdopen(fd, "w");
  ck_assert_ptr_nonnull(f);
  fputs(text, f);
  fclose(f);
  return path;
}

/* The 2026 National Day calendar used as test data (not real registry data). */
static void national_day(struct svc_calendar *c) {
  svc_calendar_init(c);
  for (int d = 1; d <= 7; d++) ck_assert_int_eq(svc_calendar_add(c, D(2026, 10, d), "HOLIDAY"), 0);
  ck_assert_int_eq(svc_calendar_add(c, D(2026, 9, 27), "WORKDAY"), 0);
  ck_assert_int_eq(svc_calendar_add(c, D(2026, 10, 10), "WORKDAY"), 0);
}

START_TEST(test_civil_days_round_trip) {
  ck_assert_int_eq(D(1970, 1, 1), 0);
  ck_assert_int_eq(D(2000, 3, 1), 11017);
  ck_assert_int_eq(D(1969, 12, 31), -1);
  for (int32_t z = -800000; z <= 800000; z += 7) {
    struct svc_date d = svc_civil_from_days(z);
    ck_assert_int_eq(D(d.y, d.m, d.d), z);
  }
  ck_assert_int_eq(svc_weekday(D(1970, 1, 1)), 3);  /* Thursday */
  ck_assert_int_eq(svc_weekday(D(2026, 10, 9)), 4); /* Friday */
  ck_assert_int_eq(svc_weekday(D(2026, 10, 11)), 6); /* Sunday */
  ck_assert_int_eq(svc_weekday(D(1969, 12, 29)), 0); /* Monday */
}
END_TEST

/* R-T1: 2026-10-31T16:30Z is 2026-11-01 00:30 local and belongs to November. */
START_TEST(test_R_T1_local_month_boundary) {
  ck_assert_int_eq(svc_local_day(T("2026-10-31T16:30:00Z"), OFF), D(2026, 11, 1));
  ck_assert_int_eq(svc_local_day(T("2026-10-31T15:59:59Z"), OFF), D(2026, 10, 31));
  ck_period(SVC_PERIOD_MONTH, "2026-10-31T16:30:00Z", "2026-11");
  ck_period(SVC_PERIOD_MONTH, "2026-10-31T15:59:59.999999Z", "2026-10");
  ck_assert_int_eq(svc_local_midnight(D(2026, 11, 1), OFF), T("2026-10-31T16:00:00Z"));
}
END_TEST

/* R-T1: quarters, halves and years also turn over at local midnight. */
START_TEST(test_R_T1_quarter_half_year_boundaries) {
  ck_period(SVC_PERIOD_YEAR, "2026-12-31T16:00:00Z", "2027");
  ck_period(SVC_PERIOD_QUARTER, "2026-12-31T16:00:00Z", "2027Q1");
  ck_period(SVC_PERIOD_HALF, "2026-12-31T16:00:00Z", "2027H1");
  ck_period(SVC_PERIOD_YEAR, "2026-12-31T15:59:59Z", "2026");
  ck_period(SVC_PERIOD_QUARTER, "2026-12-31T15:59:59Z", "2026Q4");
  ck_period(SVC_PERIOD_HALF, "2026-12-31T15:59:59Z", "2026H2");
  ck_period(SVC_PERIOD_HALF, "2026-06-30T16:00:00Z", "2026H2");
  ck_period(SVC_PERIOD_QUARTER, "2026-06-30T16:00:00Z", "2026Q3");
  ck_period(SVC_PERIOD_QUARTER, "2026-03-31T15:59:59Z", "2026Q1");
  ck_period(SVC_PERIOD_MONTH, "2026-01-01T00:00:00+08:00", "2026-01");
}
END_TEST

/* R-T1: period bounds are local midnights, the end being the next start. */
START_TEST(test_R_T1_period_bounds) {
  int64_t s, e;

  svc_period_bounds(SVC_PERIOD_QUARTER, T("2026-11-15T12:00:00+08:00"), OFF, &s, &e);
  ck_assert_int_eq(s, T("2026-10-01T00:00:00+08:00"));
  ck_assert_int_eq(e, T("2027-01-01T00:00:00+08:00"));
  svc_period_bounds(SVC_PERIOD_MONTH, T("2026-10-31T16:30:00Z"), OFF, &s, &e);
  ck_assert_int_eq(s, T("2026-11-01T00:00:00+08:00"));
  ck_assert_int_eq(e, T("2026-12-01T00:00:00+08:00"));
  svc_period_bounds(SVC_PERIOD_MONTH, T("2028-02-10T00:00:00+08:00"), OFF, &s, &e);
  ck_assert_int_eq(e - s, INT64_C(29) * 24 * HOUR_US);
  svc_period_bounds(SVC_PERIOD_HALF, T("2026-07-01T00:00:00+08:00"), OFF, &s, &e);
  ck_assert_int_eq(s, T("2026-07-01T00:00:00+08:00"));
  ck_assert_int_eq(e, T("2027-01-01T00:00:00+08:00"));
  svc_period_bounds(SVC_PERIOD_YEAR, T("2026-12-31T16:00:00Z"), OFF, &s, &e);
  ck_assert_int_eq(s, T("2027-01-01T00:00:00+08:00"));
  ck_assert_int_eq(e, T("2028-01-01T00:00:00+08:00"));
}
END_TEST

/* R-T2: rules are pure functions of their inputs; replaying gives the same results. */
START_TEST(test_R_T2_pure_functions_replay) {
  struct svc_calendar c;
  int64_t start = T("2026-09-30T10:00:00+08:00");
  char a[16], b[16];

  national_day(&c);
  ck_assert_int_eq(svc_deadline_workdays(&c, start, 3, OFF), svc_deadline_workdays(&c, start, 3, OFF));
  ck_assert_int_eq(svc_deadline_fraction(start, start + 7 * HOUR_US, 80),
                   svc_deadline_fraction(start, start + 7 * HOUR_US, 80));
  ck_assert_int_eq(svc_period_name(SVC_PERIOD_MONTH, start, OFF, a, sizeof a), 0);
  ck_assert_int_eq(svc_period_name(SVC_PERIOD_MONTH, start, OFF, b, sizeof b), 0);
  ck_assert_str_eq(a, b);
  svc_calendar_free(&c);
}
END_TEST

static int64_t fake_wall;
static int64_t fake_wall_fn(void) {
  fake_wall += 1000 * SVC_US_PER_SEC; /* the wall clock races ahead on every read */
  return fake_wall;
}

/* R-T2: in event mode "now" is event time, whatever the wall clock does. */
START_TEST(test_R_T2_event_clock_ignores_wall) {
  struct svc_clock k;
  int64_t t0 = T("2026-10-09T10:00:00+08:00");

  svc_clock_init(&k, SVC_CLOCK_EVENT);
  fake_wall = t0 + 365 * 24 * HOUR_US;
  k.wall_fn = fake_wall_fn;
  ck_assert_int_eq(svc_clock_now(&k), 0);
  svc_clock_observe(&k, t0);
  ck_assert_int_eq(svc_clock_now(&k), t0);
  ck_assert_int_eq(svc_clock_now(&k), t0);
}
END_TEST

/* R-T3: wall mode is max(wall clock, latest event); observe never goes back. */
START_TEST(test_R_T3_clock_modes) {
  struct svc_clock k;
  enum svc_clock_mode m;
  int64_t t0 = T("2026-10-09T10:00:00+08:00");

  ck_assert_int_eq(svc_clock_mode_parse("wall", &m), 0);
  ck_assert_int_eq(m, SVC_CLOCK_WALL);
  ck_assert_int_eq(svc_clock_mode_parse("event", &m), 0);
  ck_assert_int_eq(m, SVC_CLOCK_EVENT);
  ck_assert_int_eq(svc_clock_mode_parse("Wall", &m), -1);
  ck_assert_int_eq(svc_clock_mode_parse("", &m), -1);

  svc_clock_init(&k, SVC_CLOCK_WALL);
  k.wall_fn = fake_wall_fn;
  fake_wall = t0 - 1000 * SVC_US_PER_SEC;
  ck_assert_int_eq(svc_clock_now(&k), t0); /* wall read = t0 */
  svc_clock_observe(&k, t0 + 5000 * SVC_US_PER_SEC);
  ck_assert_int_eq(svc_clock_now(&k), t0 + 5000 * SVC_US_PER_SEC); /* event is later */
  fake_wall = t0 + 5000 * SVC_US_PER_SEC; /* the next read is 1000 s past the event */
  ck_assert_int_eq(svc_clock_now(&k), t0 + 6000 * SVC_US_PER_SEC); /* wall passed it */

  svc_clock_init(&k, SVC_CLOCK_EVENT);
  svc_clock_observe(&k, t0);
  svc_clock_observe(&k, t0 - HOUR_US); /* a late event does not move the clock back */
  ck_assert_int_eq(svc_clock_now(&k), t0);
  svc_clock_observe(&k, t0 + 1);
  ck_assert_int_eq(svc_clock_now(&k), t0 + 1);
}
END_TEST

/* R-T3: the real clocks read sensible values. */
START_TEST(test_R_T3_real_clocks) {
  struct svc_clock k;
  int64_t m1 = svc_mono_us(), m2;

  ck_assert_int_gt(svc_wall_us(), T("2020-01-01T00:00:00Z"));
  svc_clock_init(&k, SVC_CLOCK_WALL);
  ck_assert_int_gt(svc_clock_now(&k), T("2020-01-01T00:00:00Z"));
  m2 = svc_mono_us();
  ck_assert_int_ge(m2, m1);
}
END_TEST

/* R-T4: Monday-Friday work, listed holidays do not, listed make-up days do. */
START_TEST(test_R_T4_calendar) {
  struct svc_calendar c;

  national_day(&c);
  ck_assert_int_eq(svc_calendar_is_workday(&c, D(2026, 10, 1)), 0);  /* holiday, Thursday */
  ck_assert_int_eq(svc_calendar_is_workday(&c, D(2026, 10, 5)), 0);  /* holiday, Monday */
  ck_assert_int_eq(svc_calendar_is_workday(&c, D(2026, 10, 10)), 1); /* make-up Saturday */
  ck_assert_int_eq(svc_calendar_is_workday(&c, D(2026, 9, 27)), 1);  /* make-up Sunday */
  ck_assert_int_eq(svc_calendar_is_workday(&c, D(2026, 10, 17)), 0); /* plain Saturday */
  ck_assert_int_eq(svc_calendar_is_workday(&c, D(2026, 10, 18)), 0); /* plain Sunday */
  ck_assert_int_eq(svc_calendar_is_workday(&c, D(2026, 10, 8)), 1);  /* plain Thursday */
  ck_assert_int_eq(svc_calendar_is_workday(NULL, D(2026, 10, 1)), 1);
  /* Dedupe, sorted insert, conflicts and bad kinds. */
  ck_assert_int_eq(svc_calendar_add(&c, D(2026, 10, 3), "HOLIDAY"), 0);
  ck_assert_int_eq(c.n_holidays, 7);
  ck_assert_int_eq(svc_calendar_add(&c, D(2026, 1, 1), "HOLIDAY"), 0);
  for (size_t i = 1; i < c.n_holidays; i++) ck_assert_int_lt(c.holidays[i - 1], c.holidays[i]);
  ck_assert_int_eq(svc_calendar_add(&c, D(2026, 10, 3), "WORKDAY"), -1);
  ck_assert_int_eq(svc_calendar_add(&c, D(2026, 10, 10), "HOLIDAY"), -1);
  ck_assert_int_eq(svc_calendar_add(&c, D(2026, 10, 20), "holiday"), -1);
  ck_assert_int_eq(svc_calendar_is_workday(&c, D(2026, 10, 3)), 0);
  svc_calendar_free(&c);
  ck_assert_int_eq(c.n_holidays, 0);
}
END_TEST

/* R-T4: the calendar is data, loaded from calendar.csv. */
START_TEST(test_R_T4_calendar_csv) {
  struct svc_calendar c;
  char err[300];
  const char *p = temp_file("\xEF\xBB\xBF" "date,kind\r\n2026-10-01,HOLIDAY\r\n2026-10-10,WORKDAY\r\n");

  svc_calendar_init(&c);
  ck_assert_int_eq(svc_calendar_load_csv(&c, p, err, sizeof err), 0);
  ck_assert_int_eq(svc_calendar_is_workday(&c, D(2026, 10, 1)), 0);
  ck_assert_int_eq(svc_calendar_is_workday(&c, D(2026, 10, 10)), 1);
  unlink(p);
  svc_calendar_free(&c);
}
END_TEST

/* Loads text as a calendar and checks that it fails with "path:line: ...". */
static void ck_bad_calendar(const char *text, int line, const char *reason) {
  struct svc_calendar c;
  char err[300], prefix[96];
  const char *p = temp_file(text);

  svc_calendar_init(&c);
  ck_assert_int_eq(svc_calendar_add(&c, D(2026, 5, 1), "HOLIDAY"), 0);
  ck_assert_int_eq(svc_calendar_load_csv(&c, p, err, sizeof err), -1);
  snprintf(prefix, sizeof prefix, "%s:%d: ", p, line);
  ck_assert_msg(strncmp(err, prefix, strlen(prefix)) == 0, "err '%s' lacks '%s'", err, prefix);
  ck_assert_msg(strstr(err, reason) != NULL, "err '%s' lacks '%s'", err, reason);
  ck_assert_int_eq(svc_calendar_is_workday(&c, D(2026, 5, 1)), 0); /* unchanged on error */
  unlink(p);
  svc_calendar_free(&c);
}

/* R-T4: a broken calendar file is reported as file:line: reason. */
START_TEST(test_R_T4_calendar_csv_errors) {
  ck_bad_calendar("date,kind\n2026-10-01,HOLIDAY\n2026-02-30,HOLIDAY\n", 3, "invalid date");
  ck_bad_calendar("date,kind\n2026-10-01,HOLIDAY\n2026-10-02,VACATION\n", 3, "invalid kind");
  ck_bad_calendar("date,kind\n2026-10-01,HOLIDAY\n2026-10-01,WORKDAY\n", 3, "both");
  ck_bad_calendar("day,kind\n2026-10-01,HOLIDAY\n", 1, "expected header");
  ck_bad_calendar("date,kind\n2026-10-01\n", 2, "expected 2 fields, got 1");
  {
    struct svc_calendar c;
    char err[300];
    svc_calendar_init(&c);
    ck_assert_int_eq(svc_calendar_load_csv(&c, "/nonexistent/calendar.csv", err, sizeof err), -1);
    ck_assert_ptr_nonnull(strstr(err, "/nonexistent/calendar.csv"));
  }
}
END_TEST

/* R-T5: "within N hours" is calendar hours from the start. */
START_TEST(test_R_T5_deadline_hours) {
  int64_t s = T("2026-10-09T22:30:00+08:00");
  ck_assert_int_eq(svc_deadline_hours(s, 24), T("2026-10-10T22:30:00+08:00"));
  ck_assert_int_eq(svc_deadline_hours(s, 2), T("2026-10-10T00:30:00+08:00"));
  ck_assert_int_eq(svc_deadline_hours(s, 0), s);
}
END_TEST

/* R-T5: one working day from a Friday ends on Monday at 23:59:59 local. */
START_TEST(test_R_T5_workdays_over_weekend) {
  struct svc_calendar c;
  int64_t d;

  svc_calendar_init(&c);
  d = svc_deadline_workdays(&c, T("2026-10-09T10:00:00+08:00"), 1, OFF);
  ck_assert_int_eq(d, T("2026-10-12T23:59:59+08:00"));
  ck_fmt(d, "2026-10-12T23:59:59+08:00");
  ck_assert_int_eq(d % SVC_US_PER_SEC, 0);
  d = svc_deadline_workdays(&c, T("2026-10-09T10:00:00+08:00"), 3, OFF);
  ck_assert_int_eq(d, T("2026-10-14T23:59:59+08:00"));
  d = svc_deadline_workdays(&c, T("2026-10-10T10:00:00+08:00"), 1, OFF); /* from a Saturday */
  ck_assert_int_eq(d, T("2026-10-12T23:59:59+08:00"));
  svc_calendar_free(&c);
}
END_TEST

/* R-T5: the start's local date counts, not its UTC date. */
START_TEST(test_R_T5_workdays_local_date) {
  struct svc_calendar c;
  /* 2026-10-08T17:00Z is Thursday in UTC but Friday 01:00 in local time. */
  int64_t s = T("2026-10-08T17:00:00Z");

  svc_calendar_init(&c);
  ck_assert_int_eq(svc_deadline_workdays(&c, s, 1, OFF), T("2026-10-12T23:59:59+08:00"));
  ck_assert_int_eq(svc_deadline_workdays(&c, s, 1, 0), T("2026-10-09T23:59:59Z"));
  /* One second before local midnight, the local date is still Thursday. */
  ck_assert_int_eq(svc_deadline_workdays(&c, T("2026-10-08T15:59:59Z"), 1, OFF),
                   T("2026-10-09T23:59:59+08:00"));
  svc_calendar_free(&c);
}
END_TEST

/* R-T5 with R-T4: the 2026 National Day holiday and its make-up days. */
START_TEST(test_R_T5_workdays_national_day) {
  struct svc_calendar c;

  national_day(&c);
  ck_assert_int_eq(svc_deadline_workdays(&c, T("2026-09-30T10:00:00+08:00"), 1, OFF),
                   T("2026-10-08T23:59:59+08:00"));
  ck_assert_int_eq(svc_deadline_workdays(&c, T("2026-09-30T10:00:00+08:00"), 2, OFF),
                   T("2026-10-09T23:59:59+08:00"));
  ck_assert_int_eq(svc_deadline_workdays(&c, T("2026-10-09T10:00:00+08:00"), 1, OFF),
                   T("2026-10-10T23:59:59+08:00"));
  ck_assert_int_eq(svc_deadline_workdays(&c, T("2026-10-03T10:00:00+08:00"), 1, OFF),
                   T("2026-10-08T23:59:59+08:00"));
  ck_assert_int_eq(svc_deadline_workdays(&c, T("2026-09-26T10:00:00+08:00"), 1, OFF),
                   T("2026-09-27T23:59:59+08:00")); /* make-up Sunday */
  svc_calendar_free(&c);
}
END_TEST

/* R-T5/R-R4: an action stamped within the deadline second is on time. */
START_TEST(test_R_T5_deadline_boundary_second) {
  int64_t d = T("2026-10-12T23:59:59+08:00");

  ck_assert_int_eq(svc_deadline_passed(d, d - 1), 0);
  ck_assert_int_eq(svc_deadline_passed(d, d), 0);
  ck_assert_int_eq(svc_deadline_passed(d, d + 999999), 0);
  ck_assert_int_eq(svc_deadline_passed(d, d + SVC_US_PER_SEC), 1);
  ck_assert_int_eq(svc_deadline_passed(d, T("2026-10-13T00:00:00+08:00")), 1);
  ck_assert_int_eq(svc_deadline_passed(INT64_MAX, INT64_MAX), 0);
}
END_TEST

/* R-T5: the 80% warning point of a deadline span, exact for spans of years. */
START_TEST(test_R_T5_deadline_fraction) {
  int64_t s = T("2026-10-09T10:00:00+08:00");
  int64_t d = svc_deadline_hours(s, 10), far = T("2046-10-09T10:00:00.123457+08:00");

  ck_assert_int_eq(svc_deadline_fraction(s, d, 80), T("2026-10-09T18:00:00+08:00"));
  ck_assert_int_eq(svc_deadline_fraction(s, d, 0), s);
  ck_assert_int_eq(svc_deadline_fraction(s, d, 100), d);
  ck_assert_int_eq(svc_deadline_fraction(s, far, 80),
                   s + (int64_t)((__int128)(far - s) * 80 / 100));
  ck_assert_int_eq(svc_deadline_fraction(0, INT64_C(4000000000000000000), 100),
                   INT64_C(4000000000000000000));
}
END_TEST

/* RFC 3339 parsing and formatting round trips. */
START_TEST(test_rfc3339_round_trip) {
  static const char *const same[] = {
      "2026-10-01T08:15:00+08:00", "2026-10-09T00:00:00+08:00", "2026-10-09T00:00:00.123456+08:00",
      "2028-02-29T23:59:59+08:00", "1969-12-31T23:59:59.000001+08:00", "0001-01-01T08:00:00+08:00",
  };
  char buf[40];

  for (size_t i = 0; i < sizeof same / sizeof *same; i++) ck_fmt(T(same[i]), same[i]);
  ck_assert_int_eq(T("1970-01-01T00:00:00Z"), 0);
  ck_assert_int_eq(T("1970-01-01T08:00:00+08:00"), 0);
  ck_assert_int_eq(T("1969-12-31T19:00:00-05:00"), 0);
  ck_assert_int_eq(T("1970-01-01t00:00:01z"), SVC_US_PER_SEC);
  ck_assert_int_eq(T("1970-01-01 00:00:00.5Z"), 500000);
  ck_assert_int_eq(T("2026-10-01T00:00:00+18:00"), T("2026-09-30T06:00:00Z"));
  ck_fmt(T("2026-10-01T00:15:00Z"), "2026-10-01T08:15:00+08:00");
  ck_fmt(T("2026-10-01T00:15:00.1Z"), "2026-10-01T08:15:00.100000+08:00");
  ck_assert_int_eq(svc_time_format(T("2026-10-01T00:15:00Z"), -(5 * 3600 + 1800), buf, sizeof buf), 25);
  ck_assert_str_eq(buf, "2026-09-30T18:45:00-05:30");
  ck_assert_int_eq(svc_time_format(0, 0, buf, sizeof buf), 25);
  ck_assert_str_eq(buf, "1970-01-01T00:00:00+00:00"); /* never "Z" */
  ck_assert_int_eq(svc_time_format(1, OFF, buf, 32), -1);  /* needs 33 bytes */
  ck_assert_int_eq(svc_time_format(1, OFF, buf, 33), 32);
  ck_assert_int_eq(svc_time_format(0, OFF, buf, 25), -1);
  ck_assert_str_eq(buf, "");
  {
    int64_t us;
    const char *s = "2026-10-01T08:15:00+08:00 trailing";
    ck_assert_int_eq(svc_time_parse(s, 25, &us), 0);
    ck_assert_int_eq(us, T("2026-10-01T00:15:00Z"));
  }
}
END_TEST

/* RFC 3339 strings that must be rejected. */
START_TEST(test_rfc3339_rejects) {
  static const char *const bad[] = {
      "",  "garbage", "2026-10-01T08:15:00", "2026-10-01", "2026-02-29T00:00:00Z",
      "2026-10-01T24:00:00Z", "2026-10-01T08:60:00Z", "2026-12-31T23:59:60Z",
      "2026-13-01T00:00:00Z", "2026-00-10T00:00:00Z", "2026-04-31T00:00:00Z",
      "2026-10-00T00:00:00Z", "2026-10-01T08:15:00.1234567Z", "2026-10-01T08:15:00.Z",
      "2026-10-01T08:15:00+18:01", "2026-10-01T08:15:00-19:00", "2026-10-01T08:15:00+0800",
      "2026-10-01T08:15:00+08", "2026-10-01T08:15:00+08:60", "2026-10-01T08:15:00Zjunk",
      "2026-10-01X08:15:00Z", " 2026-10-01T08:15:00Z", "2026-1-01T08:15:00Z",
      "2026-10-01T8:15:00Z", "2026/10/01T08:15:00Z", "+2026-10-01T08:15:00Z",
      "2026-10-01T08:15:00 +08:00", "2026-10-01T08:15:00.-1Z",
  };
  int64_t us = 42;

  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    ck_assert_msg(svc_time_parse(bad[i], (size_t)-1, &us) == -1, "accepted '%s'", bad[i]);
  ck_assert_int_eq(us, 42);
  ck_assert_int_eq(svc_time_parse("2026-10-01T08:15:00Z", 19, &us), -1);
  ck_assert_int_eq(svc_time_parse(NULL, 0, &us), -1);
}
END_TEST

START_TEST(test_date_parse) {
  int32_t d;

  ck_assert_int_eq(svc_date_parse("2026-10-01", (size_t)-1, &d), 0);
  ck_assert_int_eq(d, D(2026, 10, 1));
  ck_assert_int_eq(svc_date_parse("2000-02-29", (size_t)-1, &d), 0);
  ck_assert_int_eq(svc_date_parse("1900-02-29", (size_t)-1, &d), -1);
  ck_assert_int_eq(svc_date_parse("2026-10-01x", (size_t)-1, &d), -1);
  ck_assert_int_eq(svc_date_parse("2026-10-01x", 10, &d), 0);
  ck_assert_int_eq(svc_date_parse("2026-9-01", (size_t)-1, &d), -1);
  ck_assert_int_eq(svc_date_parse("", (size_t)-1, &d), -1);
}
END_TEST

static int64_t fixed_wall;
static int64_t fixed_wall_fn(void) { return fixed_wall; }

/* R-T3: in wall mode no input may be stamped more than a day past the system
 * clock, however far inputs already moved the clock: stepping "now + 1 day"
 * repeatedly cannot ratchet it. Event mode has no bound but the year 2100. */
START_TEST(test_R_T3_input_bound_does_not_ratchet) {
  struct svc_clock k;
  int64_t w = T("2026-12-02T12:00:00+08:00");

  svc_clock_init(&k, SVC_CLOCK_WALL);
  fixed_wall = w;
  k.wall_fn = fixed_wall_fn;
  ck_assert_int_eq(svc_clock_input_bound(&k), w + SVC_DAY_US);
  ck_assert_int_eq(svc_clock_ahead_us(&k), 0);
  for (int i = 0; i < 5; i++) { /* accepted inputs at the bound */
    svc_clock_observe(&k, svc_clock_input_bound(&k) - 600 * SVC_US_PER_SEC);
    ck_assert_int_eq(svc_clock_input_bound(&k), w + SVC_DAY_US);
  }
  ck_assert_int_eq(svc_clock_ahead_us(&k), SVC_DAY_US - 600 * SVC_US_PER_SEC);
  svc_clock_observe(&k, w + 184 * SVC_DAY_US); /* restored, dragged by an older version */
  ck_assert_int_eq(svc_clock_input_bound(&k), w + SVC_DAY_US);
  ck_assert_int_eq(svc_clock_ahead_us(&k), 184 * SVC_DAY_US);

  /* Event mode: the feed is the clock; a replay of a quarter dated ahead of
   * today, or with a gap of days between its lines, is not "the future". */
  svc_clock_init(&k, SVC_CLOCK_EVENT);
  k.wall_fn = fixed_wall_fn;
  ck_assert_int_eq(svc_clock_input_bound(&k), SVC_EVENT_INPUT_MAX_US);
  svc_clock_observe(&k, w + 10 * SVC_DAY_US); /* a replay's feed ahead of today */
  ck_assert_int_eq(svc_clock_input_bound(&k), SVC_EVENT_INPUT_MAX_US);
  ck_assert_int_eq(svc_clock_ahead_us(&k), 0);
}
END_TEST

static Suite *time_suite(void) {
  Suite *s = suite_create("svc_time");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_civil_days_round_trip);
  tcase_add_test(tc, test_R_T1_local_month_boundary);
  tcase_add_test(tc, test_R_T1_quarter_half_year_boundaries);
  tcase_add_test(tc, test_R_T1_period_bounds);
  tcase_add_test(tc, test_R_T2_pure_functions_replay);
  tcase_add_test(tc, test_R_T2_event_clock_ignores_wall);
  tcase_add_test(tc, test_R_T3_clock_modes);
  tcase_add_test(tc, test_R_T3_real_clocks);
  tcase_add_test(tc, test_R_T4_calendar);
  tcase_add_test(tc, test_R_T4_calendar_csv);
  tcase_add_test(tc, test_R_T4_calendar_csv_errors);
  tcase_add_test(tc, test_R_T5_deadline_hours);
  tcase_add_test(tc, test_R_T5_workdays_over_weekend);
  tcase_add_test(tc, test_R_T5_workdays_local_date);
  tcase_add_test(tc, test_R_T5_workdays_national_day);
  tcase_add_test(tc, test_R_T5_deadline_boundary_second);
  tcase_add_test(tc, test_R_T5_deadline_fraction);
  tcase_add_test(tc, test_rfc3339_round_trip);
  tcase_add_test(tc, test_rfc3339_rejects);
  tcase_add_test(tc, test_date_parse);
  tcase_add_test(tc, test_R_T3_input_bound_does_not_ratchet);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(time_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
