/* Unit tests for the referral clocks: working-day deadlines over the 2026
 * National Day holiday and its make-up Saturday in deploy/registry/calendar.csv
 * and over replaced calendars (R-T1, R-T4, R-T5), the boundary second of each
 * clock, warnings at 80%, exactly-once overdue, returns stopping the clocks,
 * the next due instant (R-R4); callbacks closing and redoing a resolved
 * ticket and closing without a callback (R-R2, R-R6, R-I7). The other
 * referral rules are in test_referral_rules.c. */
#include <unistd.h>

#include "referral_fixture.h"

/* A dispatched ticket of category about C0001 (PROFESSIONAL, S0101). */
static struct referral_ticket *dispatched(const char *category, int64_t when) {
  struct referral_ticket *t = new_ticket("T1", category, "C0001");

  dispatch(t, when);
  ck_assert_int_eq(t->state, RT_OPEN);
  return t;
}

/* Runs referral_tick at now (all effects fit); returns the number of effects. */
static size_t tick(struct referral_ticket *t, int64_t now) {
  memset(&FX, 0, sizeof FX);
  ck_assert_int_eq(referral_tick(t, now, &FX), 0);
  return FX.n;
}

/* ---- a copy of the sample registry with calendar.csv replaced ---- */

static const char *const REG_FILES[] = {
  "districts.csv", "streets.csv", "companies.csv", "departments.csv", "categories.csv",
  "routing.csv", "compounds.csv", "hotline_categories.csv", "keywords.csv", "calendar.csv",
};
#define N_REG_FILES (sizeof REG_FILES / sizeof REG_FILES[0])

static void copy_registry(char *dir, size_t n, const char *calendar) {
  snprintf(dir, n, "/tmp/test_referral_clocks_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  for (size_t i = 0; i < N_REG_FILES; i++) {
    char src[256], dst[256], buf[8192];
    FILE *in, *out;
    size_t got;

    snprintf(src, sizeof src, "deploy/registry/%s", REG_FILES[i]);
    snprintf(dst, sizeof dst, "%s/%s", dir, REG_FILES[i]);
    out = fopen(dst, "wb");
    ck_assert_ptr_nonnull(out);
    if (strcmp(REG_FILES[i], "calendar.csv") == 0) {
      ck_assert_int_ge(fputs(calendar, out), 0);
    } else {
      in = fopen(src, "rb");
      ck_assert_msg(in != NULL, "cannot read %s", src);
      while ((got = fread(buf, 1, sizeof buf, in)) > 0)
        ck_assert_uint_eq(fwrite(buf, 1, got, out), got);
      fclose(in);
    }
    ck_assert_int_eq(fclose(out), 0);
  }
}

static void remove_registry(const char *dir) {
  for (size_t i = 0; i < N_REG_FILES; i++) {
    char path[256];

    snprintf(path, sizeof path, "%s/%s", dir, REG_FILES[i]);
    unlink(path);
  }
  rmdir(dir);
}

/* ---- working-day deadlines (R-T1, R-T4, R-T5) ---- */

/* A ticket of category dispatched at start: its first step is due to be
 * resolved by 23:59:59 local of due. */
static void check_resolve_by(const char *category, int64_t start, const char *due) {
  struct referral_ticket *t = dispatched(category, start);

  ck_assert_msg(step(t, 1)->resolve_by_us == end_of(due), "%s: resolve by %s", category, due);
  drop(t);
}

START_TEST(r_t4_sample_calendar_has_national_day_and_its_make_up_saturday) {
  static const char *const holiday[] = {"2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04",
                                         "2026-10-05", "2026-10-06", "2026-10-07"};
  int32_t d;

  for (size_t i = 0; i < 7; i++) {
    ck_assert_int_eq(svc_date_parse(holiday[i], (size_t)-1, &d), 0);
    ck_assert_msg(!svc_calendar_is_workday(&reg->calendar, d), "%s", holiday[i]);
  }
  ck_assert_int_eq(svc_date_parse("2026-10-10", (size_t)-1, &d), 0);
  ck_assert_int_eq(svc_weekday(d), 5); /* a Saturday */
  ck_assert_int_eq(svc_calendar_is_workday(&reg->calendar, d), 1);
  ck_assert_int_eq(svc_date_parse("2026-10-11", (size_t)-1, &d), 0);
  ck_assert_int_eq(svc_calendar_is_workday(&reg->calendar, d), 0);
}
END_TEST

START_TEST(r_t5_step_issued_before_national_day_is_due_after_it) {
  int64_t t0 = at("2026-09-30T17:00:00+08:00"); /* Wednesday before the holiday */
  struct referral_ticket *t = dispatched("V_ILLEGAL_BUILD", t0);
  struct referral_step *s = step(t, 1);

  /* hours are calendar hours, holiday or not */
  ck_assert(s->accept_by_us == at("2026-10-01T17:00:00+08:00"));
  /* 5 wd: Oct 8, 9, 10 (make-up Saturday), 12, 13 */
  ck_assert(s->resolve_by_us == end_of("2026-10-13"));
  drop(t);
}
END_TEST

START_TEST(r_t4_chain_step_issued_at_a_resolve_before_the_holiday) {
  int64_t t0 = at("2026-09-28T09:00:00+08:00"), r1 = at("2026-09-30T18:00:00+08:00");
  struct referral_ticket *t = dispatched("V_ILLEGAL_BUILD", t0);
  struct referral_step *s;

  ck_assert_int_eq(act(t, 1, RA_ACCEPT, t0 + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, r1, 1, "P1"), RV_APPLIED);
  ck_assert_uint_eq(R.next_step, 2);
  s = step(t, 2); /* SF 24 h / 3 wd: Oct 8, 9 and the make-up Saturday Oct 10 */
  ck_assert_str_eq(s->unit, "SF");
  ck_assert(s->issued_us == r1);
  ck_assert(s->accept_by_us == at("2026-10-01T18:00:00+08:00"));
  ck_assert(s->resolve_by_us == end_of("2026-10-10"));
  drop(t);
}
END_TEST

START_TEST(r_t4_make_up_sunday_counts_as_a_working_day) {
  /* Fri 2026-09-18; Sun 09-20 is a make-up day: 1 wd is that Sunday */
  struct referral_ticket *t = dispatched("V_HAZMAT", at("2026-09-18T10:00:00+08:00"));

  ck_assert_str_eq(step(t, 1)->unit, "XF");
  ck_assert(step(t, 1)->accept_by_us == at("2026-09-18T11:00:00+08:00"));
  ck_assert(step(t, 1)->resolve_by_us == end_of("2026-09-20"));
  drop(t);
  /* Thu 09-24: Fri 25 - Sun 27 are holidays, so Monday 28th */
  check_resolve_by("V_HAZMAT", at("2026-09-24T10:00:00+08:00"), "2026-09-28");
}
END_TEST

/* The calendar is data: the same step over other calendars. */
START_TEST(r_t4_deadlines_follow_the_registry_calendar) {
  static const struct { const char *calendar, *due; } cases[] = {
    /* the holiday without its make-up day: Oct 8, 9, 12 */
    {"date,kind\n2026-10-01,HOLIDAY\n2026-10-02,HOLIDAY\n2026-10-05,HOLIDAY\n"
     "2026-10-06,HOLIDAY\n2026-10-07,HOLIDAY\n", "2026-10-12"},
    /* no holidays at all: Oct 1, 2, 5 */
    {"date,kind\n", "2026-10-05"},
    /* a make-up Saturday and Sunday right after the holiday: Oct 3, 4, 8 */
    {"date,kind\n2026-10-01,HOLIDAY\n2026-10-02,HOLIDAY\n2026-10-03,WORKDAY\n"
     "2026-10-04,WORKDAY\n2026-10-05,HOLIDAY\n2026-10-06,HOLIDAY\n2026-10-07,HOLIDAY\n",
     "2026-10-08"},
  };
  int64_t t0 = at("2026-09-28T09:00:00+08:00"), r1 = at("2026-09-30T18:00:00+08:00");

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    char dir[64], err[512];
    struct svc_registry *sample = reg;
    struct referral_ticket *t;

    copy_registry(dir, sizeof dir, cases[i].calendar);
    reg = svc_registry_load(dir, err, sizeof err);
    remove_registry(dir);
    ck_assert_msg(reg != NULL, "calendar %zu refused: %s", i, err);
    t = dispatched("V_ILLEGAL_BUILD", t0);
    ck_assert_int_eq(act(t, 1, RA_ACCEPT, t0 + HOUR), RV_APPLIED);
    ck_assert_int_eq(resolve(t, 1, r1, 1, "P1"), RV_APPLIED);
    ck_assert_msg(step(t, 2)->resolve_by_us == end_of(cases[i].due), "calendar %zu", i);
    drop(t);
    svc_registry_destroy(&reg);
    reg = sample;
  }
}
END_TEST

START_TEST(r_t5_start_late_evening_counts_from_its_local_date) {
  /* 23:30 local Friday 9th (15:30Z): 1 wd strictly after Oct 9 is the make-up Saturday */
  struct referral_ticket *t = dispatched("V_HAZMAT", at("2026-10-09T23:30:00+08:00"));

  ck_assert(step(t, 1)->accept_by_us == at("2026-10-10T00:30:00+08:00"));
  ck_assert(step(t, 1)->resolve_by_us == end_of("2026-10-10"));
  ck_assert(step(t, 1)->resolve_by_us == at("2026-10-10T15:59:59Z"));
  drop(t);
  /* last microsecond of the local day: still Oct 9 */
  check_resolve_by("V_HAZMAT", at("2026-10-09T23:59:59.999999+08:00"), "2026-10-10");
  /* V_FIRE_LANE 2 wd from 23:30 Friday: Sat 10, Mon 12 */
  check_resolve_by("V_FIRE_LANE", at("2026-10-09T23:30:00+08:00"), "2026-10-12");
}
END_TEST

START_TEST(r_t1_r_t5_start_after_local_midnight_counts_from_the_local_date) {
  /* 00:10 local Saturday 10th is 16:10Z Friday 9th: the local date is the
   * 10th, so 1 wd strictly after it is Monday 12th (not the 10th itself) */
  int64_t start = at("2026-10-10T00:10:00+08:00");
  struct referral_ticket *t;

  ck_assert(start == at("2026-10-09T16:10:00Z"));
  t = dispatched("V_HAZMAT", start);
  ck_assert(step(t, 1)->accept_by_us == at("2026-10-10T01:10:00+08:00"));
  ck_assert(step(t, 1)->resolve_by_us == end_of("2026-10-12"));
  drop(t);
  /* 00:10 local Thursday Oct 8 (16:10Z on the holiday Oct 7): Fri 9th */
  check_resolve_by("V_HAZMAT", at("2026-10-08T00:10:00+08:00"), "2026-10-09");
  /* and the close clock: resolved at 00:10 local Saturday 10th → Mon 12, 13, 14 */
  t = dispatched("V_HAZMAT", at("2026-10-09T22:00:00+08:00"));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at("2026-10-09T22:30:00+08:00")), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, start, 1, "P1"), RV_APPLIED);
  ck_assert_int_eq(t->state, RT_RESOLVED);
  ck_assert(t->close_by_us == end_of("2026-10-14"));
  drop(t);
}
END_TEST

/* ---- the boundary second of each clock (R-R4) ---- */

/* PS_SERVICE_STOP (ZJ 2 h / 3 wd) from Friday 10:00: accept by 12:00, resolve
 * by Tuesday 13th 23:59:59 (Oct 10, 12, 13), closing 3 wd after. */
START_TEST(r_r4_accept_on_the_deadline_second_is_on_time) {
  const int64_t offs[] = {0, 999999};

  for (size_t i = 0; i < 2; i++) {
    struct referral_ticket *t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
    int64_t by = step(t, 1)->accept_by_us;

    ck_assert(by == at("2026-10-09T12:00:00+08:00"));
    ck_assert_int_eq(act(t, 1, RA_ACCEPT, by + offs[i]), RV_APPLIED);
    ck_assert_int_eq(R.late, 0);
    ck_assert_int_eq(fx_of(FX_STEP_ACCEPTED)->late, 0);
    tick(t, by + HOUR);
    ck_assert_uint_eq(n_fx(FX_ACCEPT_OVERDUE), 0);
    ck_assert_uint_eq(n_fx(FX_WARN_ACCEPT), 1); /* 80% passed before the accept */
    tick(t, at("2026-10-12T00:00:00+08:00"));
    ck_assert_uint_eq(n_fx(FX_ACCEPT_OVERDUE), 0);
    ck_assert_int_eq(step(t, 1)->overdue, 0);
    drop(t);
  }
}
END_TEST

START_TEST(r_r4_accept_one_second_after_the_deadline_is_late) {
  struct referral_ticket *t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
  int64_t by = step(t, 1)->accept_by_us;

  ck_assert_int_eq(act(t, 1, RA_ACCEPT, by + SEC), RV_APPLIED);
  ck_assert_int_eq(R.late, 1);
  ck_assert_int_eq(fx_of(FX_STEP_ACCEPTED)->late, 1);
  tick(t, by + SEC);
  ck_assert_uint_eq(n_fx(FX_ACCEPT_OVERDUE), 1);
  ck_assert_uint_eq(fx_of(FX_ACCEPT_OVERDUE)->step, 1);
  ck_assert(fx_of(FX_ACCEPT_OVERDUE)->at_us == by);
  ck_assert_uint_eq(step(t, 1)->overdue, RC_ACCEPT_DUE);
  ck_assert_uint_eq(tick(t, by + SEC), 0);
  ck_assert_uint_eq(tick(t, by + HOUR), 0);
  drop(t);
}
END_TEST

START_TEST(r_r4_resolve_on_the_deadline_second_is_on_time) {
  const int64_t offs[] = {0, 999999, SEC};

  for (size_t i = 0; i < 3; i++) {
    struct referral_ticket *t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
    int64_t by = step(t, 1)->resolve_by_us;
    int late = offs[i] == SEC;

    ck_assert(by == end_of("2026-10-13"));
    ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + MINUTE), RV_APPLIED);
    ck_assert_int_eq(resolve(t, 1, by + offs[i], 1, "P1"), RV_APPLIED);
    ck_assert_int_eq(R.late, late);
    ck_assert_int_eq(fx_of(FX_STEP_RESOLVED)->late, late);
    ck_assert_int_eq(t->state, RT_RESOLVED);
    tick(t, at("2026-10-15T00:00:00+08:00")); /* before closing (Oct 16) */
    ck_assert_uint_eq(n_fx(FX_RESOLVE_OVERDUE), (size_t)late);
    if (late) ck_assert(fx_of(FX_RESOLVE_OVERDUE)->at_us == by);
    ck_assert_uint_eq(n_fx(FX_WARN_RESOLVE), 1);
    ck_assert_uint_eq(n_fx(FX_ACCEPT_OVERDUE), 0);
    ck_assert_uint_eq(n_fx(FX_WARN_ACCEPT), 0);
    ck_assert_uint_eq(n_fx(FX_TICKET_CLOSED), 0);
    ck_assert_uint_eq(tick(t, at("2026-10-15T00:00:00+08:00")), 0);
    drop(t);
  }
}
END_TEST

START_TEST(r_r4_tick_emits_each_overdue_after_the_deadline_second_exactly_once) {
  struct referral_ticket *t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
  int64_t acc = step(t, 1)->accept_by_us, res = step(t, 1)->resolve_by_us;

  tick(t, acc - SEC); /* the accept warning only */
  ck_assert_uint_eq(FX.n, 1);
  ck_assert_int_eq(FX.v[0].kind, FX_WARN_ACCEPT);
  ck_assert_uint_eq(tick(t, acc), 0);
  ck_assert_uint_eq(tick(t, acc + 999999), 0);
  ck_assert_uint_eq(tick(t, acc + SEC), 1);
  ck_assert_int_eq(FX.v[0].kind, FX_ACCEPT_OVERDUE);
  ck_assert_uint_eq(FX.v[0].step, 1);
  ck_assert(FX.v[0].at_us == acc);
  ck_assert_uint_eq(tick(t, acc + SEC), 0);
  ck_assert_uint_eq(tick(t, acc + 2 * SEC), 0);
  /* a late accept afterwards brings no second overdue */
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, acc + HOUR), RV_APPLIED);
  ck_assert_int_eq(R.late, 1);
  ck_assert_uint_eq(tick(t, acc + 2 * HOUR), 0);
  tick(t, res - SEC); /* the resolve warning only */
  ck_assert_uint_eq(FX.n, 1);
  ck_assert_int_eq(FX.v[0].kind, FX_WARN_RESOLVE);
  ck_assert_uint_eq(tick(t, res + 999999), 0);
  ck_assert_uint_eq(tick(t, res + SEC), 1);
  ck_assert_int_eq(FX.v[0].kind, FX_RESOLVE_OVERDUE);
  ck_assert(FX.v[0].at_us == res);
  ck_assert_uint_eq(step(t, 1)->overdue, RC_ACCEPT_DUE | RC_RESOLVE_DUE);
  ck_assert_uint_eq(tick(t, res + SEC), 0);
  ck_assert_uint_eq(tick(t, res + 30 * DAY), 0);
  ck_assert_int_eq(resolve(t, 1, res + DAY, 1, "P1"), RV_APPLIED);
  ck_assert_int_eq(R.late, 1);
  ck_assert_uint_eq(n_fx(FX_RESOLVE_OVERDUE), 0);
  tick(t, res + 2 * DAY);
  ck_assert_uint_eq(n_fx(FX_RESOLVE_OVERDUE), 0);
  ck_assert_uint_eq(n_fx(FX_ACCEPT_OVERDUE), 0);
  drop(t);
}
END_TEST

START_TEST(r_r4_one_late_tick_emits_everything_once_at_its_own_instants) {
  struct referral_ticket *t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
  struct referral_step s = *step(t, 1);

  tick(t, s.resolve_by_us + 10 * DAY);
  ck_assert_uint_eq(FX.n, 4);
  ck_assert_uint_eq(n_fx(FX_WARN_ACCEPT), 1);
  ck_assert_uint_eq(n_fx(FX_ACCEPT_OVERDUE), 1);
  ck_assert_uint_eq(n_fx(FX_WARN_RESOLVE), 1);
  ck_assert_uint_eq(n_fx(FX_RESOLVE_OVERDUE), 1);
  ck_assert(fx_of(FX_ACCEPT_OVERDUE)->at_us == s.accept_by_us);
  ck_assert(fx_of(FX_RESOLVE_OVERDUE)->at_us == s.resolve_by_us);
  ck_assert_uint_eq(step(t, 1)->settled, RC_ALL);
  ck_assert_uint_eq(tick(t, s.resolve_by_us + 20 * DAY), 0);
  ck_assert(referral_next_due(t) == 0);
  drop(t);
}
END_TEST

START_TEST(r_r4_warnings_at_80_percent_exactly_once) {
  struct referral_ticket *t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
  struct referral_step *s = step(t, 1);
  /* 80% of 2 h is 96 min; 80% of Fri 10:00 .. Tue 23:59:59 (395,999 s) is
   * 316,799.2 s later */
  int64_t wa = at("2026-10-09T11:36:00+08:00");
  int64_t wr = at("2026-10-13T01:59:59.2+08:00");

  ck_assert(svc_deadline_fraction(s->issued_us, s->accept_by_us, REFERRAL_WARN_PCT) == wa);
  ck_assert(svc_deadline_fraction(s->issued_us, s->resolve_by_us, REFERRAL_WARN_PCT) == wr);
  ck_assert_uint_eq(tick(t, wa - SEC), 0);
  ck_assert_uint_eq(tick(t, wa + 999999), 0);
  ck_assert_uint_eq(tick(t, wa + SEC), 1);
  ck_assert_int_eq(FX.v[0].kind, FX_WARN_ACCEPT);
  ck_assert_uint_eq(FX.v[0].step, 1);
  ck_assert(FX.v[0].at_us == wa);
  ck_assert_uint_eq(tick(t, wa + 2 * SEC), 0);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, wa + MINUTE), RV_APPLIED); /* before 12:00 */
  ck_assert_int_eq(R.late, 0);
  ck_assert_uint_eq(tick(t, wr + 999999), 0);
  ck_assert_uint_eq(tick(t, wr + SEC), 1);
  ck_assert_int_eq(FX.v[0].kind, FX_WARN_RESOLVE);
  ck_assert(FX.v[0].at_us == wr);
  ck_assert_uint_eq(tick(t, wr + HOUR), 0);
  ck_assert_uint_eq(tick(t, s->resolve_by_us), 0);
  drop(t);

  /* actions before 80% bring no warning */
  t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, wa), RV_APPLIED); /* the warning second */
  ck_assert_int_eq(resolve(t, 1, wr - HOUR, 1, "P1"), RV_APPLIED);
  tick(t, at("2026-10-15T00:00:00+08:00"));
  ck_assert_uint_eq(FX.n, 0);
  drop(t);
}
END_TEST

START_TEST(r_r4_a_returned_step_stops_both_clocks) {
  struct referral_ticket *t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));

  ck_assert_int_eq(act(t, 1, RA_RETURN, at(T0_TEXT) + 30 * MINUTE), RV_APPLIED);
  ck_assert_int_eq(R.late, 0);
  ck_assert(referral_next_due(t) == 0);
  ck_assert_uint_eq(tick(t, at(T0_TEXT) + 60 * DAY), 0);
  drop(t);

  /* returned after the accept warning, before the deadline: only the warning */
  t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_RETURN, at("2026-10-09T12:00:00.5+08:00")), RV_APPLIED);
  ck_assert_int_eq(R.late, 0);
  tick(t, at(T0_TEXT) + 60 * DAY);
  ck_assert_uint_eq(FX.n, 1);
  ck_assert_int_eq(FX.v[0].kind, FX_WARN_ACCEPT);
  drop(t);

  /* accepted, then returned before the resolve deadline: nothing about resolving */
  t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + MINUTE), RV_APPLIED);
  ck_assert_int_eq(act(t, 1, RA_RETURN, at("2026-10-13T23:59:59+08:00")), RV_APPLIED);
  ck_assert_int_eq(R.late, 0);
  tick(t, at(T0_TEXT) + 60 * DAY);
  ck_assert_uint_eq(n_fx(FX_RESOLVE_OVERDUE), 0);
  ck_assert_uint_eq(n_fx(FX_ACCEPT_OVERDUE), 0);
  ck_assert_uint_eq(n_fx(FX_WARN_ACCEPT), 0);
  ck_assert_uint_eq(n_fx(FX_WARN_RESOLVE), 1);
  drop(t);

  /* returned one second after the accept deadline: that overdue stands */
  t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_RETURN, at("2026-10-09T12:00:01+08:00")), RV_APPLIED);
  ck_assert_int_eq(R.late, 1);
  tick(t, at(T0_TEXT) + 60 * DAY);
  ck_assert_uint_eq(n_fx(FX_ACCEPT_OVERDUE), 1);
  ck_assert_uint_eq(n_fx(FX_RESOLVE_OVERDUE), 0);
  drop(t);
}
END_TEST

START_TEST(r_r4_next_due_is_the_first_instant_tick_acts) {
  struct referral_ticket *t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
  struct referral_step s = *step(t, 1);
  const int64_t want[] = {
    at("2026-10-09T11:36:01+08:00"), s.accept_by_us + SEC,
    at("2026-10-13T02:00:00.2+08:00"), s.resolve_by_us + SEC,
  };
  const enum referral_fx_kind kinds[] = {FX_WARN_ACCEPT, FX_ACCEPT_OVERDUE, FX_WARN_RESOLVE,
                                         FX_RESOLVE_OVERDUE};

  for (size_t i = 0; i < 4; i++) {
    int64_t due = referral_next_due(t);

    ck_assert_msg(due == want[i], "due %zu", i);
    ck_assert_uint_eq(tick(t, due - 1), 0);
    ck_assert_uint_eq(tick(t, due), 1);
    ck_assert_int_eq(FX.v[0].kind, kinds[i]);
  }
  ck_assert(referral_next_due(t) == 0);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, s.resolve_by_us + HOUR), RV_APPLIED);
  ck_assert(referral_next_due(t) == 0);
  ck_assert_int_eq(resolve(t, 1, s.resolve_by_us + 2 * HOUR, 1, "P1"), RV_APPLIED);
  /* resolved Wed 14th: closing 3 wd later, Oct 15, 16, 19 */
  ck_assert(t->close_by_us == end_of("2026-10-19"));
  ck_assert(referral_next_due(t) == t->close_by_us + SEC);
  ck_assert_uint_eq(tick(t, t->close_by_us + SEC - 1), 0);
  ck_assert_uint_eq(tick(t, t->close_by_us + SEC), 1);
  ck_assert_int_eq(FX.v[0].kind, FX_TICKET_CLOSED);
  ck_assert(referral_next_due(t) == 0);
  drop(t);

  /* an on-time accept moves the next due to the resolve warning */
  t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + MINUTE), RV_APPLIED);
  ck_assert(referral_next_due(t) == want[2]);
  drop(t);
}
END_TEST

START_TEST(r_r2_no_callback_closes_three_working_days_after_resolving) {
  struct referral_ticket *t = dispatched("V_NOISE", at(T0_TEXT));
  int64_t r = at("2026-10-12T15:00:00+08:00"), close = end_of("2026-10-15");

  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, r, 1, "P1"), RV_APPLIED);
  ck_assert_int_eq(t->state, RT_RESOLVED);
  ck_assert(t->close_by_us == close); /* Oct 13, 14, 15 */
  tick(t, close + 999999);
  ck_assert_uint_eq(n_fx(FX_TICKET_CLOSED), 0);
  ck_assert_int_eq(t->state, RT_RESOLVED);
  tick(t, close + SEC);
  ck_assert_uint_eq(FX.n, 1);
  ck_assert_int_eq(FX.v[0].kind, FX_TICKET_CLOSED);
  ck_assert_str_eq(FX.v[0].text, "NO_CALLBACK");
  ck_assert(FX.v[0].at_us == close);
  ck_assert_uint_eq(FX.v[0].step, 1);
  ck_assert_int_eq(t->state, RT_CLOSED);
  ck_assert(t->closed_us == close);
  ck_assert_uint_eq(tick(t, close + SEC), 0);
  ck_assert_uint_eq(tick(t, close + 90 * DAY), 0);
  drop(t);

  /* resolved just before National Day: Oct 8, 9 and the make-up Saturday */
  t = dispatched("V_NOISE", at("2026-09-30T09:00:00+08:00"));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at("2026-09-30T10:00:00+08:00")), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, at("2026-09-30T16:00:00+08:00"), 1, "P1"), RV_APPLIED);
  ck_assert(t->close_by_us == end_of("2026-10-10"));
  tick(t, end_of("2026-10-10") + SEC);
  ck_assert_uint_eq(n_fx(FX_TICKET_CLOSED), 1);
  drop(t);
}
END_TEST

/* ---- callbacks (R-R2, R-R6, R-I7) ---- */

/* A one-step ticket of category cat accepted and resolved at `resolved`. */
static struct referral_ticket *resolved_ticket(const char *cat, int64_t resolved) {
  struct referral_ticket *t = dispatched(cat, at(T0_TEXT));

  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, resolved, 1, "P1"), RV_APPLIED);
  ck_assert_int_eq(t->state, RT_RESOLVED);
  return t;
}

START_TEST(r_r2_satisfied_callbacks_close_a_resolved_ticket) {
  const char *good[] = {"SATISFIED", "BASICALLY_SATISFIED"};

  for (size_t i = 0; i < 2; i++) {
    int64_t r = at("2026-10-12T15:00:00+08:00"), cb = at("2026-10-13T10:00:00+08:00");
    struct referral_ticket *t = resolved_ticket("V_NOISE", r);
    const struct referral_fx *f;

    ck_assert_int_eq(feedback(t, good[i], cb), 0);
    ck_assert_int_eq(t->state, RT_CLOSED);
    ck_assert(t->closed_us == cb);
    ck_assert_uint_eq(n_fx(FX_FEEDBACK), 1);
    f = fx_of(FX_FEEDBACK);
    ck_assert_str_eq(f->effect, "CLOSED");
    ck_assert_str_eq(f->text, good[i]);
    ck_assert_int_eq(f->before, RT_RESOLVED);
    ck_assert_uint_eq(n_fx(FX_TICKET_CLOSED), 1);
    ck_assert(fx_of(FX_TICKET_CLOSED)->at_us == cb);
    ck_assert_uint_eq(n_fx(FX_STEP_ISSUED), 0);
    ck_assert_int_eq(referral_next_due(t), 0);
    drop(t);
  }
}
END_TEST

/* R-R6: the redo step goes to the same unit with the category's accept
 * clock and a 3-working-day resolve clock. */
static void check_redo(const char *cat, const char *unit, int hours) {
  int64_t r = at("2026-10-12T15:00:00+08:00"), cb = at("2026-10-13T10:00:00+08:00");
  struct referral_ticket *t = resolved_ticket(cat, r);
  struct referral_step *s;

  ck_assert_int_eq(feedback(t, "UNSATISFIED", cb), 0);
  ck_assert_int_eq(t->state, RT_OPEN);
  ck_assert(t->close_by_us == 0);
  ck_assert(t->resolved_us == 0);
  ck_assert_int_eq(step(t, 1)->state, RS_REOPENED);
  ck_assert(step(t, 1)->reopened_us == cb);
  ck_assert_uint_eq(t->n_steps, 2);
  s = step(t, 2);
  ck_assert_str_eq(s->unit, unit);
  ck_assert_int_eq(s->reason, RI_REDO);
  ck_assert_uint_eq(s->replaces, 1);
  ck_assert_int_eq(s->state, RS_ISSUED);
  ck_assert_int_eq(s->accept_hours, hours);
  ck_assert_int_eq(s->resolve_workdays, 3);
  ck_assert(s->issued_us == cb);
  ck_assert(s->accept_by_us == cb + (int64_t)hours * HOUR);
  ck_assert(s->resolve_by_us == end_of("2026-10-16")); /* 3 wd after Tue 13th */
  ck_assert_str_eq(fx_of(FX_FEEDBACK)->effect, "REDO");
  ck_assert_int_eq(fx_of(FX_FEEDBACK)->before, RT_RESOLVED);
  ck_assert_uint_eq(n_fx(FX_STEP_REOPENED), 1);
  ck_assert_uint_eq(fx_of(FX_STEP_REOPENED)->step, 1);
  ck_assert_uint_eq(n_fx(FX_STEP_ISSUED), 1);
  ck_assert_uint_eq(fx_of(FX_STEP_ISSUED)->step, 2);
  ck_assert_uint_eq(n_fx(FX_TICKET_REOPENED), 1);
  ck_assert_uint_eq(n_fx(FX_TICKET_CLOSED), 0);
  /* the redo step resolves the ticket again */
  ck_assert_int_eq(act(t, 2, RA_ACCEPT, cb + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 2, cb + 2 * HOUR, 1, "P1"), RV_APPLIED);
  ck_assert_int_eq(t->state, RT_RESOLVED);
  ck_assert(t->close_by_us == end_of("2026-10-16"));
  drop(t);
}

START_TEST(r_r6_unsatisfied_reopens_the_last_step_and_redoes_it) {
  check_redo("V_NOISE", "GA", 12);
  check_redo("PS_FEES", "SCJG", 24); /* 10 wd category: the redo has 3 */
  check_redo("PS_SANITATION", "S0101", 24);
}
END_TEST

START_TEST(r_r2_callback_on_a_ticket_not_resolved_changes_no_state) {
  struct referral_ticket *t = dispatched("V_NOISE", at(T0_TEXT));
  const char *all[] = {"SATISFIED", "BASICALLY_SATISFIED", "UNSATISFIED"};
  struct snap sn;

  t->dirty = 0;
  snap_take(&sn, t);
  for (size_t i = 0; i < 3; i++) {
    ck_assert_int_eq(feedback(t, all[i], at(T0_TEXT) + HOUR), 0);
    ck_assert_uint_eq(FX.n, 1);
    ck_assert_int_eq(FX.v[0].kind, FX_FEEDBACK);
    ck_assert_str_eq(FX.v[0].effect, "NONE");
    ck_assert_str_eq(FX.v[0].text, all[i]);
    ck_assert_int_eq(FX.v[0].before, RT_OPEN);
    FX.n = 0;
    snap_same(&sn, t);
  }
  ck_assert_int_eq(feedback(t, "HAPPY", at(T0_TEXT) + HOUR), -1);
  FX.n = 0;
  snap_same(&sn, t);
  drop(t);

  /* a CLOSED ticket likewise */
  t = resolved_ticket("V_NOISE", at(T0_TEXT) + 2 * HOUR);
  ck_assert_int_eq(feedback(t, "SATISFIED", at(T0_TEXT) + 3 * HOUR), 0);
  t->dirty = 0;
  snap_take(&sn, t);
  ck_assert_int_eq(feedback(t, "UNSATISFIED", at(T0_TEXT) + 4 * HOUR), 0);
  ck_assert_str_eq(fx_of(FX_FEEDBACK)->effect, "NONE");
  ck_assert_int_eq(fx_of(FX_FEEDBACK)->before, RT_CLOSED);
  FX.n = 0;
  snap_same(&sn, t);
  drop(t);
}
END_TEST

/* R-R2 in event time (R-T2): 3 working days after resolving without a
 * callback the ticket is CLOSED at close_by; a callback stamped after that
 * finds it closed and changes no state, whether or not referral_tick ran
 * first. A callback within the deadline second still counts. */
START_TEST(r_r2_callback_stamped_after_close_by_finds_the_ticket_closed) {
  const char *all[] = {"UNSATISFIED", "SATISFIED"};
  int64_t r = at("2026-10-12T15:00:00+08:00"), close = end_of("2026-10-15");

  for (size_t i = 0; i < 2; i++) {
    struct referral_ticket *t = dispatched("V_NOISE", at(T0_TEXT));

    ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + HOUR), RV_APPLIED);
    ck_assert_int_eq(resolve(t, 1, r, 1, "P1"), RV_APPLIED);
    ck_assert(t->close_by_us == close);
    ck_assert_int_eq(feedback(t, all[i], close + DAY), 0);
    ck_assert_str_eq(fx_of(FX_FEEDBACK)->effect, "NONE");
    ck_assert_int_eq(t->state, RT_CLOSED);
    ck_assert(t->closed_us == close);
    ck_assert_uint_eq(t->n_steps, 1);
    ck_assert_int_eq(step(t, 1)->state, RS_RESOLVED);
    ck_assert_uint_eq(n_fx(FX_STEP_ISSUED), 0);
    drop(t);
  }
  /* the deadline second itself is still within the 3 working days */
  struct referral_ticket *t = dispatched("V_NOISE", at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, r, 1, "P1"), RV_APPLIED);
  ck_assert_int_eq(feedback(t, "UNSATISFIED", close + 999999), 0);
  ck_assert_str_eq(fx_of(FX_FEEDBACK)->effect, "REDO");
  ck_assert_int_eq(t->state, RT_OPEN);
  ck_assert_uint_eq(t->n_steps, 2);
  drop(t);
}
END_TEST

/* More effects than one referral_fxs holds: tick says so and the next call
 * goes on, still exactly once each. */
START_TEST(r_r4_tick_continues_when_the_effects_fill_up) {
  struct referral_ticket *t = dispatched("PS_SERVICE_STOP", at(T0_TEXT));
  const char *units[] = {"GA", "SCJG", "CGZF", "S0101"};
  size_t counts[FX_FEEDBACK + 1] = {0}, total = 0;
  int64_t when = at(T0_TEXT);
  int more, rounds = 0;

  /* Four effects a step: more steps than one referral_fxs holds. */
  const uint32_t n = REFERRAL_FX_MAX / 4 + 1;
  for (uint32_t no = 1; no < n; no++) { /* each step returned after both deadlines */
    when = step(t, no)->resolve_by_us + HOUR;
    ck_assert_int_eq(act(t, no, RA_RETURN, when), RV_APPLIED);
    redispatch(t, no, units[(no - 1) % 4], when);
    ck_assert_int_eq(R.verdict, RV_APPLIED);
  }
  when = step(t, n)->resolve_by_us + HOUR; /* the last step open and overdue */
  do {
    memset(&FX, 0, sizeof FX);
    more = referral_tick(t, when, &FX);
    for (size_t i = 0; i < FX.n; i++) counts[FX.v[i].kind]++;
    total += FX.n;
    ck_assert_int_le(++rounds, 5);
  } while (more);
  ck_assert_int_ge(rounds, 2);
  ck_assert_uint_eq(total, 4 * n);
  ck_assert_uint_eq(counts[FX_ACCEPT_OVERDUE], n);
  ck_assert_uint_eq(counts[FX_RESOLVE_OVERDUE], n);
  ck_assert_uint_eq(counts[FX_WARN_ACCEPT], n);
  ck_assert_uint_eq(counts[FX_WARN_RESOLVE], n);
  ck_assert_uint_eq(tick(t, when + DAY), 0);
  drop(t);
}
END_TEST

/* An accept stamped on time that arrives after the clock already published
 * its overdue: applied, reported late, and the overdue stays the only one. */
START_TEST(r_r4_an_on_time_stamp_arriving_after_the_overdue_is_late) {
  struct referral_ticket *t = dispatched("V_NOISE", at(T0_TEXT));
  int64_t by = step(t, 1)->accept_by_us;

  ck_assert_uint_ge(tick(t, by + SEC), 1);
  ck_assert_uint_eq(n_fx(FX_ACCEPT_OVERDUE), 1);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, by - HOUR), RV_APPLIED);
  ck_assert_int_eq(R.late, 1);
  ck_assert_int_eq(fx_of(FX_STEP_ACCEPTED)->late, 1);
  tick(t, by + DAY);
  ck_assert_uint_eq(n_fx(FX_ACCEPT_OVERDUE), 0);
  drop(t);
}
END_TEST

int main(void) {
  const TTest *tests[] = {
    r_t4_sample_calendar_has_national_day_and_its_make_up_saturday,
    r_t5_step_issued_before_national_day_is_due_after_it,
    r_t4_chain_step_issued_at_a_resolve_before_the_holiday,
    r_t4_make_up_sunday_counts_as_a_working_day,
    r_t4_deadlines_follow_the_registry_calendar,
    r_t5_start_late_evening_counts_from_its_local_date,
    r_t1_r_t5_start_after_local_midnight_counts_from_the_local_date,
    r_r4_accept_on_the_deadline_second_is_on_time,
    r_r4_accept_one_second_after_the_deadline_is_late,
    r_r4_resolve_on_the_deadline_second_is_on_time,
    r_r4_tick_emits_each_overdue_after_the_deadline_second_exactly_once,
    r_r4_one_late_tick_emits_everything_once_at_its_own_instants,
    r_r4_warnings_at_80_percent_exactly_once,
    r_r4_a_returned_step_stops_both_clocks,
    r_r4_next_due_is_the_first_instant_tick_acts,
    r_r2_satisfied_callbacks_close_a_resolved_ticket,
    r_r6_unsatisfied_reopens_the_last_step_and_redoes_it,
    r_r2_callback_on_a_ticket_not_resolved_changes_no_state,
    r_r2_no_callback_closes_three_working_days_after_resolving,
    r_r4_tick_continues_when_the_effects_fill_up,
    r_r4_an_on_time_stamp_arriving_after_the_overdue_is_late,
    r_r2_callback_stamped_after_close_by_finds_the_ticket_closed,
  };

  return run_tests("referral_clocks", "R-T4 R-T5 R-R4 R-R6", tests,
                   sizeof tests / sizeof tests[0]);
}
