/* Unit tests for the intake rules that look at one submission alone, each
 * named by its rule: R-I1 fingerprints, R-I2 request types, R-I6 masked phones
 * and pseudonyms, R-I8 validation (including invalid UTF-8 and 4,000 vs 4,001
 * Chinese characters). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "svc_mask.h"
#include "svc_time.h"

#define HOUR_US (INT64_C(3600) * 1000000)

/* ---- R-I6 ---- */

static void ck_mask(const char *phone, const char *want) {
  char out[INTAKE_MASKED_MAX];

  ck_assert_int_eq(intake_phone_mask(phone, out, sizeof out), 0);
  ck_assert_str_eq(out, want);
}

START_TEST(test_R_I6_masked_phone_shapes) {
  char out[4], digits[32];

  ck_mask("13812345678", "138****5678");
  ck_mask("+86 138-1234-5678", "138****5678");
  ck_mask("008613812345678", "138****5678");
  ck_mask("010-12345678", "010****5678");
  ck_mask("1234567890", "********90");
  ck_mask("12345", "***45");
  ck_mask("", "");
  ck_mask(NULL, "");
  ck_assert_int_eq(intake_phone_mask("13812345678", out, sizeof out), -1);
  /* Never the full number, whatever its length. */
  for (size_t len = 1; len <= INTAKE_PHONE_MAX; len++) {
    char phone[32], m[INTAKE_MASKED_MAX];
    for (size_t i = 0; i < len; i++) phone[i] = (char)('1' + i % 9);
    phone[len] = '\0';
    ck_assert_int_eq(intake_phone_mask(phone, m, sizeof m), 0);
    ck_assert_ptr_nonnull(strchr(m, '*'));
    ck_assert_uint_eq(strlen(m), svc_phone_digits(phone, digits, sizeof digits));
  }
}
END_TEST

START_TEST(test_R_I6_pseudonym_stable_and_keyed) {
  static const char key[] = "whistle-test-key";
  char a[INTAKE_HEX_SHA256], b[INTAKE_HEX_SHA256];

  ck_assert_int_eq(intake_phone_pseudonym(key, strlen(key), "13812345678", a), 0);
  ck_assert_str_eq(a, "23dff3afa7e7ee71bb052fbeb6349ce3674776c2068b0a12cae9b6ff9a2bbf31");
  ck_assert_ptr_null(strstr(a, "13812345678"));
  ck_assert_ptr_null(strstr(a, "5678"));
  /* Stable across the ways a caller's number is written. */
  ck_assert_int_eq(intake_phone_pseudonym(key, strlen(key), "+86 138-1234-5678", b), 0);
  ck_assert_str_eq(a, b);
  /* Depends on the key and on the number. */
  ck_assert_int_eq(intake_phone_pseudonym("other-key", 9, "13812345678", b), 0);
  ck_assert_str_ne(a, b);
  ck_assert_int_eq(intake_phone_pseudonym(key, strlen(key), "13812345679", b), 0);
  ck_assert_str_ne(a, b);
  ck_assert_int_eq(intake_phone_pseudonym(key, strlen(key), "", b), -1);
  ck_assert_str_eq(b, "");
  ck_assert_int_eq(intake_phone_pseudonym(key, 0, "13812345678", b), -1);
}
END_TEST

/* ---- R-I1 ---- */

static struct intake_submission sample(void) {
  return (struct intake_submission){"12345-20261001-000001", INT64_C(1790813700000000), "COMPLAINT",
                                    "", "13800001234", "张三", "", "D01", "幸福里小区3栋",
                                    "楼道堆满杂物无人清理", 0};
}

START_TEST(test_R_I1_fingerprint_equal_for_identical_content) {
  char a[INTAKE_HEX_SHA256], b[INTAKE_HEX_SHA256];
  struct intake_submission s1 = sample(), s2 = sample();
  char content[64];

  snprintf(content, sizeof content, "%s", s1.content); /* same bytes, other memory */
  s2.content = content;
  ck_assert_int_eq(intake_fingerprint(&s1, a), 0);
  ck_assert_int_eq(intake_fingerprint(&s2, b), 0);
  ck_assert_str_eq(a, b);
  ck_assert_uint_eq(strlen(a), 64);
  ck_assert_uint_eq(strspn(a, "0123456789abcdef"), 64);
  s2.hotline_category = NULL; /* NULL reads as "" */
  ck_assert_int_eq(intake_fingerprint(&s2, b), 0);
  ck_assert_str_eq(a, b);
}
END_TEST

START_TEST(test_R_I1_fingerprint_differs_for_any_field) {
  char base[INTAKE_HEX_SHA256], other[INTAKE_HEX_SHA256];
  struct intake_submission s = sample();

  ck_assert_int_eq(intake_fingerprint(&s, base), 0);
  for (int field = 0; field < 11; field++) {
    struct intake_submission t = sample();
    switch (field) {
    case 0: t.ticket_no = "12345-20261001-000002"; break;
    case 1: t.received_us += 1; break;
    case 2: t.request_type = "REPORT"; break;
    case 3: t.hotline_category = "WY01"; break;
    case 4: t.caller_phone = "13800001235"; break;
    case 5: t.caller_name = "李四"; break;
    case 6: t.compound_code = "C0001"; break;
    case 7: t.district = "D02"; break;
    case 8: t.address = "幸福里小区4栋"; break;
    case 9: t.content = "楼道堆满杂物无人清理。"; break;
    default: t.urgency = 1; break;
    }
    ck_assert_int_eq(intake_fingerprint(&t, other), 0);
    ck_assert_msg(strcmp(base, other) != 0, "field %d does not change the fingerprint", field);
  }
}
END_TEST

START_TEST(test_R_I1_fingerprint_is_length_prefixed) {
  char a[INTAKE_HEX_SHA256], b[INTAKE_HEX_SHA256];
  struct intake_submission s = sample(), t = sample();

  s.address = "幸福里";
  s.content = "小区垃圾";
  t.address = "幸福里小区";
  t.content = "垃圾";
  ck_assert_int_eq(intake_fingerprint(&s, a), 0);
  ck_assert_int_eq(intake_fingerprint(&t, b), 0);
  ck_assert_str_ne(a, b);
}
END_TEST

/* ---- R-I2 ---- */

START_TEST(test_R_I2_parse_request_types) {
  static const char *const names[] = {"CONSULT", "HELP", "COMPLAINT", "REPORT", "SUGGEST"};
  enum intake_request_type t = INTAKE_REQ_CONSULT;

  for (int i = 0; i < 5; i++) {
    ck_assert_int_eq(intake_request_type_parse(names[i], &t), 0);
    ck_assert_int_eq(t, INTAKE_REQ_CONSULT + i);
    ck_assert_str_eq(intake_request_type_name(t), names[i]);
  }
  ck_assert_int_eq(intake_request_type_parse("complaint", &t), -1);
  ck_assert_int_eq(intake_request_type_parse("COMPLAINTS", &t), -1);
  ck_assert_int_eq(intake_request_type_parse("", &t), -1);
  ck_assert_int_eq(intake_request_type_parse(NULL, &t), -1);
  ck_assert_int_eq(intake_request_type_parse("投诉", &t), -1);
  ck_assert_ptr_null(intake_request_type_name((enum intake_request_type)0));
  ck_assert_ptr_null(intake_request_type_name((enum intake_request_type)6));
}
END_TEST

START_TEST(test_R_I2_dispatched_and_counted) {
  /* CONSULT, HELP, COMPLAINT, REPORT, SUGGEST */
  static const int dispatched[] = {0, 1, 1, 1, 0}, counted[] = {0, 0, 1, 1, 0};

  for (int i = 0; i < 5; i++) {
    enum intake_request_type t = (enum intake_request_type)(INTAKE_REQ_CONSULT + i);
    ck_assert_int_eq(intake_request_dispatched(t), dispatched[i]);
    ck_assert_int_eq(intake_request_counted(t), counted[i]);
  }
}
END_TEST

/* ---- R-I8 ---- */

static int64_t at(const char *rfc3339) {
  int64_t us = 0;

  ck_assert_int_eq(svc_time_parse(rfc3339, (size_t)-1, &us), 0);
  return us;
}

/* Validates s at now; checks the reason (NULL: valid) or its prefix. */
static void ck_valid(const struct intake_submission *s, int64_t now, const char *want) {
  char buf[160];
  const char *why = intake_validate(s, now, buf, sizeof buf);

  if (!want) {
    ck_assert_msg(why == NULL, "unexpectedly invalid: %s", why);
    return;
  }
  ck_assert_msg(why != NULL, "unexpectedly valid, want '%s'", want);
  ck_assert_msg(strncmp(why, want, strlen(want)) == 0, "reason '%s', want '%s'", why, want);
}

#define NOW (INT64_C(1790813700000000) + HOUR_US) /* an hour after sample() */

/* Checks the reason for sample() with one field set to value. */
#define CK_FIELD(field, value, want)        \
  do {                                      \
    struct intake_submission s_ = sample(); \
    s_.field = (value);                     \
    ck_valid(&s_, NOW, (want));             \
  } while (0)

/* A text of n copies of the 3-byte character 楼 (freed by the caller). */
static char *han_text(size_t n) {
  char *p = malloc(n * 3 + 1);

  for (size_t i = 0; i < n; i++) memcpy(p + 3 * i, "楼", 3);
  p[n * 3] = '\0';
  return p;
}

START_TEST(test_R_I8_valid_ticket_passes) {
  struct intake_submission s = sample();

  ck_assert_int_eq(s.received_us, at("2026-10-01T08:15:00+08:00"));
  ck_valid(&s, NOW, NULL);
  s.address = "";
  s.compound_code = "C0001"; /* a compound code instead of an address */
  s.caller_phone = "";
  s.caller_name = NULL;
  ck_valid(&s, NOW, NULL);
}
END_TEST

START_TEST(test_R_I8_ticket_no) {
  char long_no[80];

  CK_FIELD(ticket_no, "", "ticket_no: missing");
  CK_FIELD(ticket_no, NULL, "ticket_no: missing");
  CK_FIELD(ticket_no, "12345 001", "ticket_no: must be 1-64 characters");
  CK_FIELD(ticket_no, "工单001", "ticket_no: must be 1-64 characters");
  memset(long_no, 'A', 64);
  long_no[64] = '\0';
  CK_FIELD(ticket_no, long_no, NULL);
  long_no[64] = 'A';
  long_no[65] = '\0';
  CK_FIELD(ticket_no, long_no, "ticket_no: must be 1-64 characters");
}
END_TEST

START_TEST(test_R_I8_required_fields) {
  struct intake_submission s = sample(), empty = {0};

  CK_FIELD(received_us, 0, "received_us: missing");
  CK_FIELD(request_type, "", "request_type: missing");
  CK_FIELD(request_type, "QUERY", "request_type: unknown");
  CK_FIELD(content, "", "content: missing");
  CK_FIELD(content, NULL, "content: missing");
  s.address = "";
  s.compound_code = NULL;
  ck_valid(&s, NOW, "address: missing");
  s.compound_code = " \xe2\x80\x8b"; /* R-I8: a compound code of white space and U+200B is none */
  ck_valid(&s, NOW, "address: missing");
  ck_valid(&empty, NOW, "ticket_no: missing");
}
END_TEST

START_TEST(test_R_I8_content_4000_vs_4001_chinese_characters) {
  char *ok = han_text(4000), *over = han_text(4001);

  CK_FIELD(content, ok, NULL); /* 12,000 bytes, 4,000 characters */
  CK_FIELD(content, over, "content: over 4000 characters (4001)");
  free(ok);
  free(over);
}
END_TEST

START_TEST(test_R_I8_invalid_utf8) {
  CK_FIELD(content, "楼道堆物\xe6\xa5", "content: not valid UTF-8"); /* truncated */
  CK_FIELD(content, "\xc0\xaf", "content: not valid UTF-8");          /* overlong '/' */
  CK_FIELD(content, "\xe0\x80\xaf", "content: not valid UTF-8");      /* overlong, 3 bytes */
  CK_FIELD(content, "\xed\xa0\x80", "content: not valid UTF-8");      /* a surrogate */
  CK_FIELD(content, "\xf4\x90\x80\x80", "content: not valid UTF-8");  /* above U+10FFFF */
  CK_FIELD(caller_name, "张\xff", "caller_name: not valid UTF-8");
  CK_FIELD(address, "幸福里\x80", "address: not valid UTF-8");
  CK_FIELD(district, "\xe5\x92", "district: not valid UTF-8");
  CK_FIELD(hotline_category, "\x80", "hotline_category: not valid UTF-8");
}
END_TEST

START_TEST(test_R_I8_received_time_bounds) {
  struct intake_submission s = sample();

  CK_FIELD(received_us, at("1970-01-02T00:00:00Z"), "received_us: before 2000-01-01T00:00:00+08:00");
  CK_FIELD(received_us, -1, "received_us: before 2000");
  ck_assert_int_eq(at("2000-01-01T00:00:00+08:00"), INTAKE_RECEIVED_MIN_US);
  CK_FIELD(received_us, INTAKE_RECEIVED_MIN_US, NULL);
  CK_FIELD(received_us, INTAKE_RECEIVED_MIN_US - 1, "received_us: before 2000");
  CK_FIELD(received_us, at("2100-01-01T00:00:00+08:00"), "received_us: more than 1 day in the future");
  CK_FIELD(received_us, NOW + INTAKE_DAY_US, NULL); /* the boundary itself is accepted */
  CK_FIELD(received_us, NOW + INTAKE_DAY_US + 1, "received_us: more than 1 day in the future");
  s.received_us = INT64_MAX; /* no overflow at the end of time */
  ck_valid(&s, INT64_MAX, NULL);
}
END_TEST

START_TEST(test_R_I8_caller_phone) {
  static const char *const good[] = {"13812345678", "+86-138-1234-5678", "12345",
                                     "01012345678901234567"};
  static const char *const bad[] = {"1234", "138 1234 5678", "012345678901234567890", "+-+-+-",
                                    "１３８１２３４５６７８", "138abc45678"};

  for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) CK_FIELD(caller_phone, good[i], NULL);
  for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
    CK_FIELD(caller_phone, bad[i], "caller_phone: must be 5-20 characters");
}
END_TEST

START_TEST(test_R_I8_field_lengths_and_urgency) {
  char *t1000 = han_text(1000), *t1001 = han_text(1001), *t101 = han_text(101);

  CK_FIELD(address, t1000, NULL);
  CK_FIELD(address, t1001, "address: over 1000 characters");
  CK_FIELD(caller_name, t101, "caller_name: over 100 characters");
  CK_FIELD(district, t101, "district: over 100 characters");
  CK_FIELD(urgency, 1, NULL);
  CK_FIELD(urgency, 2, "urgency: must be 0 or 1");
  free(t1000);
  free(t1001);
  free(t101);
}
END_TEST

/* A test case of the NULL-terminated tests, with the fixture if asked. */

static void add_case(Suite *s, const char *name, const TTest *const *tests) {
  TCase *tc = tcase_create(name);
  for (; *tests; tests++) tcase_add_test(tc, *tests);
  suite_add_tcase(s, tc);
}

int main(void) {
  Suite *s = suite_create("intake_checks");
  const TTest *r1[] = {test_R_I1_fingerprint_equal_for_identical_content,
                       test_R_I1_fingerprint_differs_for_any_field,
                       test_R_I1_fingerprint_is_length_prefixed, NULL};
  const TTest *r2[] = {test_R_I2_parse_request_types, test_R_I2_dispatched_and_counted, NULL};
  const TTest *r6[] = {test_R_I6_masked_phone_shapes, test_R_I6_pseudonym_stable_and_keyed, NULL};
  const TTest *r8[] = {test_R_I8_valid_ticket_passes,
                       test_R_I8_ticket_no,
                       test_R_I8_required_fields,
                       test_R_I8_content_4000_vs_4001_chinese_characters,
                       test_R_I8_invalid_utf8,
                       test_R_I8_received_time_bounds,
                       test_R_I8_caller_phone,
                       test_R_I8_field_lengths_and_urgency, NULL};
  add_case(s, "R-I1", r1);
  add_case(s, "R-I2", r2);
  add_case(s, "R-I6", r6);
  add_case(s, "R-I8", r8);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
