/* Unit tests for the pure escalation rules with hand-computed expectations:
 * the notice types and decision mapping (R-E2), the overdue ladder and its
 * quarters (R-E1, R-T1), document numbers and their years (R-E3), the orders
 * of counting and numbering (R-E3, R-E3a), redelivery (R-E6, R-T4, R-T5) and
 * the rendering of letters (R-E5). Each test names the rule it checks. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escalation.h"
#include "svc_time.h"
#include "unit_run.h"

#define OFF SVC_DEFAULT_UTC_OFFSET

/* Parses an RFC 3339 literal, failing the test if it does not parse. */
static int64_t at(const char *s) {
  int64_t us = 0;

  ck_assert_msg(svc_time_parse(s, (size_t)-1, &us) == 0, "bad time %s", s);
  return us;
}

static int32_t day(const char *s) {
  int32_t d = 0;

  ck_assert_msg(svc_date_parse(s, (size_t)-1, &d) == 0, "bad date %s", s);
  return d;
}

/* An overdue event of one unit with the fields the R-E3a order reads. */
static struct esc_overdue overdue(const char *deadline, const char *ticket, uint32_t step,
                                  int resolve) {
  struct esc_overdue o;

  memset(&o, 0, sizeof o);
  snprintf(o.ticket_no, sizeof o.ticket_no, "%s", ticket);
  o.step = step;
  o.resolve = resolve;
  o.deadline_us = at(deadline);
  snprintf(o.key, sizeof o.key, "R-E1|%s|%u|%s", ticket, (unsigned)step,
           resolve ? "RESOLVE" : "ACCEPT");
  snprintf(o.unit, sizeof o.unit, "DEPT-HOUSING");
  return o;
}

static int overdue_qsort_cmp(const void *a, const void *b) {
  return esc_overdue_cmp(a, b);
}

/* Renders with vars and checks the result. */
#define ck_render(tmpl, vars, n, want)            \
  do {                                            \
    char *got_ = esc_render((tmpl), (vars), (n)); \
    ck_assert_ptr_nonnull(got_);                  \
    ck_assert_str_eq(got_, (want));               \
    free(got_);                                   \
  } while (0)

/* ---- notice types (R-E2's table) ---- */

START_TEST(r_e2_notice_type_table) {
  static const char *const codes[ESC_TYPES] = {
    "TISHI", "DUBAN", "WENZE", "YUETAN", "ZHENGGAI", "HEIBANG",
    "JIANGXING", "QINGTUI", "HEIMINGDAN", "ZHONGDIAN", "HUANGPAI",
  };
  static const char *const names[ESC_TYPES] = {
    "提示函", "督办函", "问责建议函", "约谈通知书", "整改通知书", "黑榜公告",
    "降星通知", "清退通知", "黑名单公告", "重点监管通知", "黄牌警告",
  };
  static const char *const prefixes[ESC_TYPES] = {
    "提示", "督办", "问责", "约谈", "整改", "黑榜", "降星", "清退", "黑名单", "重点", "黄牌",
  };
  enum esc_type t;

  for (int i = 0; i < ESC_TYPES; i++) {
    ck_assert_str_eq(esc_type_code((enum esc_type)i), codes[i]);
    ck_assert_str_eq(esc_type_name((enum esc_type)i), names[i]);
    ck_assert_str_eq(esc_type_prefix((enum esc_type)i), prefixes[i]);
    t = ESC_TYPES;
    ck_assert_int_eq(esc_type_parse(codes[i], &t), 0);
    ck_assert_int_eq(t, i);
  }
  ck_assert_ptr_null(esc_type_code(ESC_TYPES));
  ck_assert_ptr_null(esc_type_name(ESC_TYPES));
  ck_assert_ptr_null(esc_type_prefix(ESC_TYPES));
  t = ESC_DUBAN;
  ck_assert_int_eq(esc_type_parse("tishi", &t), -1);
  ck_assert_int_eq(esc_type_parse("", &t), -1);
  ck_assert_int_eq(esc_type_parse("TISHI ", &t), -1);
  ck_assert_int_eq(esc_type_parse(NULL, &t), -1);
  ck_assert_int_eq(t, ESC_DUBAN);
}
END_TEST

/* ---- R-E1: the ladder and its quarter ---- */

START_TEST(r_e1_ladder_k1_to_k4) {
  ck_assert_int_eq(esc_ladder_type(1), ESC_TISHI);
  ck_assert_int_eq(esc_ladder_type(2), ESC_DUBAN);
  ck_assert_int_eq(esc_ladder_type(3), ESC_WENZE);
  ck_assert_int_eq(esc_ladder_type(4), ESC_WENZE);
  ck_assert_int_eq(esc_ladder_type(17), ESC_WENZE);
}
END_TEST

START_TEST(r_e1_quarter_boundary_resets_the_ladder) {
  char name[8];
  int32_t q4 = esc_quarter(at("2026-12-31T23:59:59+08:00"), OFF);
  int32_t q1 = esc_quarter(at("2027-01-01T00:00:00+08:00"), OFF);
  int32_t q3 = esc_quarter(at("2026-09-30T23:59:59+08:00"), OFF);
  int32_t q4b = esc_quarter(at("2026-10-01T00:00:00+08:00"), OFF);

  ck_assert_int_eq(q4, 2026 * 4 + 3);
  ck_assert_int_eq(q1, 2027 * 4 + 0);
  ck_assert_int_ne(q4, q1);
  ck_assert_int_eq(q3, 2026 * 4 + 2);
  ck_assert_int_eq(q4b, 2026 * 4 + 3);
  ck_assert_int_ne(q3, q4b);
  ck_assert_int_eq(q4b, q4);
  esc_quarter_name(q4, name);
  ck_assert_str_eq(name, "2026Q4");
  esc_quarter_name(q1, name);
  ck_assert_str_eq(name, "2027Q1");
  esc_quarter_name(q3, name);
  ck_assert_str_eq(name, "2026Q3");

  /* Three overdue events of one unit: the third falls in a new quarter, so
   * it is that quarter's first and issues a 提示函 again. */
  int32_t qs[3] = {
    esc_quarter(at("2026-12-30T23:59:59+08:00"), OFF),
    esc_quarter(at("2026-12-31T23:59:59+08:00"), OFF),
    esc_quarter(at("2027-01-01T00:00:00+08:00"), OFF),
  };
  enum esc_type want[3] = {ESC_TISHI, ESC_DUBAN, ESC_TISHI};
  int k = 0;

  for (int i = 0; i < 3; i++) {
    k = (i > 0 && qs[i] == qs[i - 1]) ? k + 1 : 1;
    ck_assert_int_eq(esc_ladder_type(k), want[i]);
  }
}
END_TEST

START_TEST(r_t1_quarter_and_year_in_local_time) {
  /* 2026-12-31T16:00Z is 2027-01-01 00:00 local: 2027Q1 and 2027. */
  int64_t t = at("2026-12-31T16:00:00Z");
  char name[8];

  ck_assert_int_eq(esc_quarter(t, OFF), 2027 * 4);
  ck_assert_int_eq(esc_year(t, OFF), 2027);
  ck_assert_int_eq(esc_quarter(t, 0), 2026 * 4 + 3);
  ck_assert_int_eq(esc_year(t, 0), 2026);
  ck_assert_int_eq(esc_quarter(at("2026-06-30T15:59:59Z"), OFF), 2026 * 4 + 1);
  ck_assert_int_eq(esc_quarter(at("2026-06-30T16:00:00Z"), OFF), 2026 * 4 + 2);
  esc_quarter_name(2026 * 4 + 1, name);
  ck_assert_str_eq(name, "2026Q2");
}
END_TEST

/* ---- R-E3a: the order of overdue events ---- */

START_TEST(r_e3a_overdue_order) {
  struct esc_overdue a, b;

  /* Deadline first, whatever the ticket. */
  a = overdue("2026-10-09T23:59:59+08:00", "T9", 1, 1);
  b = overdue("2026-10-10T23:59:59+08:00", "T1", 1, 0);
  ck_assert_int_lt(esc_overdue_cmp(&a, &b), 0);
  ck_assert_int_gt(esc_overdue_cmp(&b, &a), 0);
  /* Then ticket_no, bytewise. */
  a = overdue("2026-10-09T23:59:59+08:00", "T20261001-0002", 5, 1);
  b = overdue("2026-10-09T23:59:59+08:00", "T20261001-0010", 1, 0);
  ck_assert_int_lt(esc_overdue_cmp(&a, &b), 0);
  ck_assert_int_gt(esc_overdue_cmp(&b, &a), 0);
  /* Then step as a number: 2 before 10. */
  a = overdue("2026-10-09T23:59:59+08:00", "T1", 2, 1);
  b = overdue("2026-10-09T23:59:59+08:00", "T1", 10, 0);
  ck_assert_int_lt(esc_overdue_cmp(&a, &b), 0);
  ck_assert_int_gt(esc_overdue_cmp(&b, &a), 0);
  ck_assert_int_gt(strcmp(a.key, b.key), 0);  /* the keys alone would sort 10 first */
  /* Then ACCEPT before RESOLVE. */
  a = overdue("2026-10-09T23:59:59+08:00", "T1", 2, 0);
  b = overdue("2026-10-09T23:59:59+08:00", "T1", 2, 1);
  ck_assert_int_lt(esc_overdue_cmp(&a, &b), 0);
  ck_assert_int_gt(esc_overdue_cmp(&b, &a), 0);
  ck_assert_int_eq(esc_overdue_cmp(&a, &a), 0);
}
END_TEST

START_TEST(r_e1_r_e3a_ladder_over_sorted_events) {
  /* One unit's overdue events in a quarter, given in a scrambled order. */
  struct esc_overdue ev[5];
  static const char *const want_keys[5] = {
    "R-E1|T2|1|ACCEPT", "R-E1|T1|2|RESOLVE", "R-E1|T1|10|ACCEPT",
    "R-E1|T1|10|RESOLVE", "R-E1|T0|1|RESOLVE",
  };
  static const enum esc_type want_types[5] = {
    ESC_TISHI, ESC_DUBAN, ESC_WENZE, ESC_WENZE, ESC_WENZE,
  };

  ev[0] = overdue("2026-11-03T12:00:00+08:00", "T1", 10, 1);
  ev[1] = overdue("2026-11-20T23:59:59+08:00", "T0", 1, 1);
  ev[2] = overdue("2026-11-03T12:00:00+08:00", "T1", 2, 1);
  ev[3] = overdue("2026-11-02T09:00:00+08:00", "T2", 1, 0);
  ev[4] = overdue("2026-11-03T12:00:00+08:00", "T1", 10, 0);
  qsort(ev, 5, sizeof ev[0], overdue_qsort_cmp);
  for (int i = 0; i < 5; i++) {
    ck_assert_str_eq(ev[i].key, want_keys[i]);
    ck_assert_int_eq(esc_ladder_type(i + 1), want_types[i]);
  }
}
END_TEST

/* ---- R-E2: decisions to notice types ---- */

START_TEST(r_e2_every_decision_type_mapped) {
  static const struct {
    const char *rule, *measure;
    enum esc_type want;
  } rows[] = {
    {"R-C4", "INTERVIEW_COMPANY", ESC_YUETAN},
    {"R-C4", "REPLACE_MANAGER", ESC_ZHENGGAI},
    {"R-C4", "BLACKLIST", ESC_HEIBANG},
    {"R-P3.1", "CREDIT_DEDUCT", ESC_ZHENGGAI},
    {"R-P3.1", "INTERVIEW_COMPANY", ESC_ZHENGGAI},
    {"R-P3.1", "RECTIFY", ESC_ZHENGGAI},
    {"R-P3.1", "SUGGEST_REPLACE_MANAGER", ESC_ZHENGGAI},
    {"R-P3.2", "STAR_DOWNGRADE", ESC_JIANGXING},
    {"R-P3.3", "NONCOMPLIANT", ESC_QINGTUI},
    {"R-P3.3", "EVICT", ESC_QINGTUI},
    {"R-P3.4", "BLACKLIST_COMPANY", ESC_HEIMINGDAN},
    {"R-P3.4", "JOINT_PUNISHMENT", ESC_HEIMINGDAN},
    {"R-S3", "EVICT", ESC_QINGTUI},
    {"R-S3", "KEY_TARGET", ESC_ZHONGDIAN},
    {"R-U3", "DEPT_REMINDER", ESC_TISHI},
    {"R-U3", "DEPT_SUPERVISE", ESC_DUBAN},
    {"R-U4", "STREET_SUPERVISE", ESC_DUBAN},
    {"R-U4", "STREET_INTERVIEW", ESC_YUETAN},
    {"R-U4", "STREET_ACCOUNTABILITY", ESC_WENZE},
    {"R-U5", "DISTRICT_INTERVIEW", ESC_YUETAN},
    {"R-U5", "DISTRICT_YELLOW_CARD", ESC_HUANGPAI},
  };
  int seen[ESC_TYPES] = {0};

  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    enum esc_type t = ESC_TYPES;

    ck_assert_msg(esc_decision_type(rows[i].rule, rows[i].measure, &t) == 0, "%s %s refused",
                  rows[i].rule, rows[i].measure);
    ck_assert_msg(t == rows[i].want, "%s %s -> %d, want %d", rows[i].rule, rows[i].measure,
                  (int)t, (int)rows[i].want);
    seen[t] = 1;
  }
  /* Every one of the eleven types is issued for some decision. */
  for (int i = 0; i < ESC_TYPES; i++) ck_assert_msg(seen[i], "type %d never issued", i);
}
END_TEST

START_TEST(r_e2_unknown_decision_refused) {
  static const struct { const char *rule, *measure; } rows[] = {
    {"R-C4", "EVICT"},               /* a measure of another rule */
    {"R-C4", "interview_company"},   /* codes are exact */
    {"R-C4", NULL},
    {"R-S3", "STAR_DOWNGRADE"},
    {"R-U3", "STREET_SUPERVISE"},
    {"R-U4", "DEPT_REMINDER"},
    {"R-U5", "DISTRICT_SUPERVISE"},
    {"R-P3", "STAR_DOWNGRADE"},      /* the threshold's ID is required */
    {"R-P3.5", "BLACKLIST_COMPANY"},
    {"R-P3.", "CREDIT_DEDUCT"},
    {"R-K1", "CREDIT_DEDUCT"},       /* credit deductions issue no notice */
    {"R-E1", "INTERVIEW_COMPANY"},
    {"", "BLACKLIST"},
    {NULL, "BLACKLIST"},
  };

  for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
    enum esc_type t = ESC_HUANGPAI;

    ck_assert_msg(esc_decision_type(rows[i].rule, rows[i].measure, &t) == -1,
                  "%s %s accepted", rows[i].rule ? rows[i].rule : "(null)",
                  rows[i].measure ? rows[i].measure : "(null)");
    ck_assert_int_eq(t, ESC_HUANGPAI);
  }
}
END_TEST

/* ---- R-E3: numbers and their year ---- */

START_TEST(r_e3_number_strings) {
  char buf[64];

  ck_assert_int_eq(esc_number(ESC_DUBAN, 2026, 7, buf, sizeof buf), (int)strlen("督办〔2026〕7号"));
  ck_assert_str_eq(buf, "督办〔2026〕7号");
  /* The brackets are U+3014 and U+3015 in UTF-8, 号 is U+53F7. */
  ck_assert_str_eq(buf, "\xe7\x9d\xa3\xe5\x8a\x9e\xe3\x80\x94" "2026\xe3\x80\x95" "7\xe5\x8f\xb7");
  ck_assert_int_ge(esc_number(ESC_TISHI, 2027, 1, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "提示〔2027〕1号");
  ck_assert_int_ge(esc_number(ESC_WENZE, 2026, 12, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "问责〔2026〕12号");
  ck_assert_int_ge(esc_number(ESC_HEIMINGDAN, 2026, 3, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "黑名单〔2026〕3号");
  ck_assert_int_ge(esc_number(ESC_ZHONGDIAN, 2026, 1234567, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "重点〔2026〕1234567号");
  ck_assert_int_ge(esc_number(ESC_HUANGPAI, 2026, 2, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "黄牌〔2026〕2号");
}
END_TEST

START_TEST(r_e3_number_buffer_too_small) {
  const char *want = "约谈〔2026〕10号";
  size_t len = strlen(want);
  char buf[64];

  ck_assert_int_eq(esc_number(ESC_YUETAN, 2026, 10, buf, len + 1), (int)len);
  ck_assert_str_eq(buf, want);
  memset(buf, 'x', sizeof buf);
  ck_assert_int_eq(esc_number(ESC_YUETAN, 2026, 10, buf, len), -1);
  ck_assert_str_eq(buf, "");
  ck_assert_int_eq(esc_number(ESC_YUETAN, 2026, 10, buf, 4), -1);
  ck_assert_str_eq(buf, "");
  ck_assert_int_eq(esc_number(ESC_TYPES, 2026, 10, buf, sizeof buf), -1);
  ck_assert_str_eq(buf, "");
}
END_TEST

START_TEST(r_e3_year_across_the_year_boundary) {
  char buf[64];
  /* R-E2a: December's close has the event time 2027-01-01T00:00+08:00. */
  int64_t december_close = at("2027-01-01T00:00:00+08:00");

  ck_assert_int_eq(esc_year(at("2026-12-31T23:59:59+08:00"), OFF), 2026);
  ck_assert_int_eq(esc_year(at("2027-01-01T00:00:00+08:00"), OFF), 2027);
  ck_assert_int_eq(esc_year(december_close, OFF), 2027);
  ck_assert_int_ge(esc_number(ESC_DUBAN, esc_year(december_close, OFF), 1, buf, sizeof buf), 0);
  ck_assert_str_eq(buf, "督办〔2027〕1号");
  /* An overdue event due on New Year's Eve's last second stays in 2026. */
  ck_assert_int_ge(
      esc_number(ESC_TISHI, esc_year(at("2026-12-31T23:59:59+08:00"), OFF), 40, buf, sizeof buf),
      0);
  ck_assert_str_eq(buf, "提示〔2026〕40号");
}
END_TEST

START_TEST(r_e3_same_event_time_ordered_by_key) {
  int64_t t = at("2026-11-01T00:00:00+08:00");

  ck_assert_int_lt(esc_order_cmp(t, "R-U3|DEPT-A|2026-10", t, "R-U3|DEPT-B|2026-10"), 0);
  ck_assert_int_gt(esc_order_cmp(t, "R-U3|DEPT-B|2026-10", t, "R-U3|DEPT-A|2026-10"), 0);
  ck_assert_int_lt(esc_order_cmp(t, "R-C4|P1|2026-10", t, "R-U3|DEPT-A|2026-10"), 0);
  ck_assert_int_eq(esc_order_cmp(t, "R-C4|P1|2026-10", t, "R-C4|P1|2026-10"), 0);
  /* Event time first: an earlier notice is numbered first whatever its key. */
  ck_assert_int_lt(esc_order_cmp(t - 1, "R-U3|Z", t, "R-C4|A"), 0);
  ck_assert_int_gt(esc_order_cmp(t, "R-C4|A", t - 1, "R-U3|Z"), 0);
}
END_TEST

/* ---- R-E6: redelivery after 2 working days ---- */

START_TEST(r_e6_redeliver_over_a_weekend) {
  /* Friday 2026-11-06: the 2nd working day after it is Tuesday 11-10. */
  ck_assert_int_eq(esc_redeliver_at(NULL, at("2026-11-06T10:00:00+08:00"), OFF),
                   at("2026-11-10T23:59:59+08:00"));
  /* Delivered at 01:00 Friday local (Thursday in UTC): the local date counts. */
  ck_assert_int_eq(esc_redeliver_at(NULL, at("2026-11-05T17:00:00Z"), OFF),
                   at("2026-11-10T23:59:59+08:00"));
  /* Delivered on Saturday: Monday and Tuesday. */
  ck_assert_int_eq(esc_redeliver_at(NULL, at("2026-11-07T09:00:00+08:00"), OFF),
                   at("2026-11-10T23:59:59+08:00"));
  /* Delivered on Wednesday: Friday of the same week. */
  ck_assert_int_eq(esc_redeliver_at(NULL, at("2026-11-04T23:59:59+08:00"), OFF),
                   at("2026-11-06T23:59:59+08:00"));
}
END_TEST

START_TEST(r_e6_redeliver_over_holidays) {
  struct svc_calendar cal;
  static const char *const golden_week[] = {
    "2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04",
    "2026-10-05", "2026-10-06", "2026-10-07",
  };

  svc_calendar_init(&cal);
  for (size_t i = 0; i < 7; i++)
    ck_assert_int_eq(svc_calendar_add(&cal, day(golden_week[i]), "HOLIDAY"), 0);
  ck_assert_int_eq(svc_calendar_add(&cal, day("2026-10-10"), "WORKDAY"), 0); /* a Saturday */
  ck_assert_int_eq(svc_calendar_add(&cal, day("2027-01-01"), "HOLIDAY"), 0);

  /* Wednesday 09-30: the holidays skip to Thursday 10-08 and Friday 10-09. */
  ck_assert_int_eq(esc_redeliver_at(&cal, at("2026-09-30T15:00:00+08:00"), OFF),
                   at("2026-10-09T23:59:59+08:00"));
  /* Without the calendar it would be Friday 10-02. */
  ck_assert_int_eq(esc_redeliver_at(NULL, at("2026-09-30T15:00:00+08:00"), OFF),
                   at("2026-10-02T23:59:59+08:00"));
  /* Thursday 10-08: Friday 10-09, then the make-up Saturday 10-10. */
  ck_assert_int_eq(esc_redeliver_at(&cal, at("2026-10-08T09:00:00+08:00"), OFF),
                   at("2026-10-10T23:59:59+08:00"));
  /* Delivered on a holiday: its own date does not count. */
  ck_assert_int_eq(esc_redeliver_at(&cal, at("2026-10-03T11:00:00+08:00"), OFF),
                   at("2026-10-09T23:59:59+08:00"));
  /* New Year's Eve, with New Year's Day off: Monday 01-04 and Tuesday 01-05. */
  ck_assert_int_eq(esc_redeliver_at(&cal, at("2026-12-31T18:00:00+08:00"), OFF),
                   at("2027-01-05T23:59:59+08:00"));
  svc_calendar_free(&cal);
}
END_TEST

/* ---- letter rendering: the text that carries a notice's evidence (R-E5) ---- */

START_TEST(r_e5_render_placeholders_and_chinese_text) {
  const struct esc_var vars[] = {
    {"number", "督办〔2026〕7号"},
    {"recipient", "幸福里街道办事处"},
    {"period", "2026Q4"},
    {"rule", "R-E1"},
  };

  ck_render("{number}\n{recipient}：\n贵单位{period}季度第2次超期（{rule}），特此督办。",
            vars, 4,
            "督办〔2026〕7号\n幸福里街道办事处：\n贵单位2026Q4季度第2次超期（R-E1），特此督办。");
  /* The same placeholder twice, adjacent placeholders, and text around. */
  ck_render("{rule}{rule}-{period}{number}", vars, 4, "R-E1R-E1-2026Q4督办〔2026〕7号");
  ck_render("no placeholders 无占位符", vars, 4, "no placeholders 无占位符");
  ck_render("", vars, 4, "");
}
END_TEST

START_TEST(r_e5_render_unknown_placeholder_and_escapes) {
  const struct esc_var vars[] = {
    {"unit", "住建局"},
    {"tricky", "{unit}"},
    {"empty", ""},
    {"nothing", NULL},
  };

  /* An unknown placeholder stays as written. */
  ck_render("致{unit}，{签收人}于{date}", vars, 4, "致住建局，{签收人}于{date}");
  /* "{{" writes "{" and opens no placeholder. */
  ck_render("{{unit}", vars, 4, "{unit}");
  ck_render("a {{ b {{{unit}", vars, 4, "a { b {住建局");
  ck_render("{{{{", vars, 4, "{{");
  /* A '{' that closes nothing, and stray '}', are plain text. */
  ck_render("{unit", vars, 4, "{unit");
  ck_render("{ {unit}", vars, 4, "{ 住建局");
  ck_render("}{unit}}", vars, 4, "}住建局}");
  ck_render("{}", vars, 4, "{}");
  /* Values are not scanned again; empty and NULL values write nothing. */
  ck_render("[{tricky}]", vars, 4, "[{unit}]");
  ck_render("[{empty}][{nothing}]", vars, 4, "[][]");
  /* No variables: everything stays. */
  ck_render("{unit}{{", NULL, 0, "{unit}{");
}
END_TEST

int main(void) {
  const TTest *tests[] = {
    r_e2_notice_type_table,
    r_e1_ladder_k1_to_k4,
    r_e1_quarter_boundary_resets_the_ladder,
    r_t1_quarter_and_year_in_local_time,
    r_e3a_overdue_order,
    r_e1_r_e3a_ladder_over_sorted_events,
    r_e2_every_decision_type_mapped,
    r_e2_unknown_decision_refused,
    r_e3_number_strings,
    r_e3_number_buffer_too_small,
    r_e3_year_across_the_year_boundary,
    r_e3_same_event_time_ordered_by_key,
    r_e6_redeliver_over_a_weekend,
    r_e6_redeliver_over_holidays,
    r_e5_render_placeholders_and_chinese_text,
    r_e5_render_unknown_placeholder_and_escapes,
  };
  return unit_run("escalation_rules", "R-E1..R-E6", NULL, NULL, 0, tests,
                  sizeof tests / sizeof tests[0]);
}
