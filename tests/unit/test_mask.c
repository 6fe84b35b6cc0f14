/* Unit tests for svc_mask (R-I6a): each kind of number typed into
 * free text (mobile numbers alone, in Chinese text, spaced, hyphenated,
 * full-width; resident ID numbers; bank cards; landlines), what must stay as
 * typed (amounts, house numbers, years, 6-digit runs), how runs are
 * delimited, and hostile input: invalid UTF-8, NULs, very long runs, buffer
 * bounds, idempotence over random text; then the rewrite of a published
 * event (svc_mask_pb). */
#include <check.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake_events.pb-c.h"
#include "svc_csv.h"
#include "svc_mask.h"

/* Masks n bytes of s into a buffer of exactly SVC_MASK_CAP(n) bytes on the
 * heap (so the sanitizers catch a write past the stated bound); returns the
 * result, which the caller frees. */
static char *mask_n(const char *s, size_t n, int *changed) {
  char *out = malloc(SVC_MASK_CAP(n));
  size_t len;

  ck_assert_ptr_nonnull(out);
  len = svc_mask_text(s, n, out, SVC_MASK_CAP(n), changed);
  ck_assert_msg(len != SVC_MASK_ERROR, "masking failed");
  ck_assert_uint_le(len, n);
  ck_assert_uint_eq(strlen(out), len);
  ck_assert_msg(svc_utf8_valid(out, len), "output is not valid UTF-8");
  return out;
}

/* Checks that s masks to want, with the changed flag to match, and that
 * masking the result changes nothing (idempotence). */
static void ck_mask(const char *s, const char *want) {
  int changed = -1, again = -1;
  char *got = mask_n(s, strlen(s), &changed);
  char *twice;

  ck_assert_msg(strcmp(got, want) == 0, "R-I6a: \"%s\" masked to \"%s\", want \"%s\"", s, got, want);
  ck_assert_int_eq(changed, strcmp(s, want) != 0);
  twice = mask_n(got, strlen(got), &again);
  ck_assert_str_eq(twice, got);
  ck_assert_int_eq(again, 0);
  free(twice);
  free(got);
}

/* ---- what is masked ---- */

START_TEST(test_R_I6a_mobile_alone) {
  ck_mask("13912345678", "139****5678");
  ck_mask("18800001111", "188****1111");
}
END_TEST

START_TEST(test_R_I6a_mobile_in_chinese_text) {
  ck_mask("楼上噪音扰民，请回电13911112222", "楼上噪音扰民，请回电139****2222");
  ck_mask("联系人王先生13812345678，工作日可联系", "联系人王先生138****5678，工作日可联系");
  ck_mask("电话：13912345678。另一个电话15012345678",
          "电话：139****5678。另一个电话150****5678");
}
END_TEST

START_TEST(test_R_I6a_mobile_with_spaces) {
  ck_mask("139 1234 5678", "139****5678");
  ck_mask("请回电 139 1234 5678 谢谢", "请回电 139****5678 谢谢");
  ck_mask("139\xe3\x80\x80" "1234\xe3\x80\x80" "5678", "139****5678"); /* U+3000 */
}
END_TEST

START_TEST(test_R_I6a_mobile_with_hyphens) {
  ck_mask("139-1234-5678", "139****5678");
  ck_mask("回电139-1234-5678。", "回电139****5678。");
  ck_mask("139－1234－5678", "139****5678"); /* U+FF0D */
  ck_mask("139 - 1234 - 5678", "139****5678"); /* up to three separators join */
  ck_mask("139--1234--5678", "139****5678");
}
END_TEST

START_TEST(test_R_I6a_mobile_full_width) {
  ck_mask("１３９１２３４５６７８", "139****5678");
  ck_mask("请回电：１３９－１２３４－５６７８。", "请回电：139****5678。");
  ck_mask("１３９ 1234 ５６７８", "139****5678"); /* mixed widths */
}
END_TEST

START_TEST(test_R_I6a_resident_id) {
  ck_mask("11010519900101123X", "110105********123X");
  ck_mask("身份证号11010519900101123x，", "身份证号110105********123X，");
  ck_mask("身份证110105199001011234号", "身份证110105********1234号");
  ck_mask("１１０１０５１９９００１０１１２３Ｘ", "110105********123X");
  ck_mask("110105 19900101 123X", "110105********123X");
  /* The check character only after exactly 17 digits. */
  ck_mask("1101051990010112X", "************0112X");  /* 16 digits, then an X */
  ck_mask("11010519900101123", "*************1123");  /* 17 digits alone */
}
END_TEST

START_TEST(test_R_I6a_bank_cards) {
  ck_mask("6222021234567890", "************7890");                 /* 16 */
  ck_mask("卡号6222 0212 3456 7890 123已冻结", "卡号***************0123已冻结"); /* 19 */
  ck_mask("6222-0212-3456-7890", "************7890");
  ck_mask("62220212345678901", "*************8901");                /* 17 */
}
END_TEST

START_TEST(test_R_I6a_landlines_and_other_runs) {
  ck_mask("0539-8123456", "*******3456");
  ck_mask("座机0539-8123456转分机", "座机*******3456转分机");
  ck_mask("1234567", "***4567");                /* the shortest masked run */
  ck_mask("12345678901", "*******8901");        /* 11 digits, not 1[3-9] */
  ck_mask("10012345678", "*******5678");
  ck_mask("8613912345678", "*********5678");     /* 13 digits: not a mobile */
  ck_mask("+86 139 1234 5678", "+*********5678");
  ck_mask("QQ123456789abc", "QQ*****6789abc");   /* letters do not protect a run */
  ck_mask("2026-10-01", "****1001");             /* a hyphenated date is an 8-digit run */
}
END_TEST

/* ---- what stays as typed ---- */

START_TEST(test_R_I6a_short_runs_unchanged) {
  ck_mask("2000元", "2000元");
  ck_mask("3栋2单元501", "3栋2单元501");
  ck_mask("2026年10月", "2026年10月");
  ck_mask("123456", "123456");
  ck_mask("邮编276000", "邮编276000");
  ck_mask("１２３４５６", "１２３４５６");         /* full-width, kept as typed */
  ck_mask("12 34-56", "12 34-56");               /* separators kept in short runs */
  ck_mask("罚款2000元，2026年10月1日，3栋2单元501室", "罚款2000元，2026年10月1日，3栋2单元501室");
  ck_mask("2026/10/01 10:30", "2026/10/01 10:30");
  ck_mask("1,234,567元", "1,234,567元");
  ck_mask("", "");
  ck_mask("没有数字", "没有数字");
}
END_TEST

START_TEST(test_R_I6a_run_delimiting) {
  ck_mask("123    4567", "123    4567");          /* four separators end a run */
  ck_mask("123   4567", "***4567");                /* three still join */
  ck_mask(" 1391234567 8 ", " 139****5678 ");      /* separators outside digits stay */
  ck_mask("139 1234 5678 -", "139****5678 -");
  ck_mask("139\t12345678", "139\t****5678");        /* a tab is not a separator */
  ck_mask("139.1234.5678", "139.1234.5678");        /* nor a dot */
  ck_mask("139 1234 5678/139-1234-5678", "139****5678/139****5678");
}
END_TEST

/* ---- hostile input ---- */

START_TEST(test_R_I6a_invalid_utf8) {
  static const struct { const char *in; size_t n; const char *want; } cases[] = {
    {"a\xff" "1234567\xc3", 10, "a?***4567?"},
    {"\xc0\x80", 2, "??"},                      /* overlong NUL */
    {"\xed\xa0\x80", 3, "???"},                 /* a surrogate */
    {"\xf4\x90\x80\x80", 4, "????"},            /* above U+10FFFF */
    {"1391234\xff" "5678", 12, "***1234?5678"},  /* a stray byte ends a run */
    {"\xef\xbc\x91\xef\xbc", 5, "１??"},       /* a full-width digit cut short */
    {"13912345678\xe6\x97", 13, "139****5678??"},
    {"139\x00" "12345678", 12, "139?****5678"},  /* a NUL */
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    int changed = 0;
    char *got = mask_n(cases[i].in, cases[i].n, &changed);
    ck_assert_msg(strcmp(got, cases[i].want) == 0, "case %zu: got \"%s\"", i, got);
    ck_assert_int_eq(changed, 1);
    free(got);
  }
}
END_TEST

START_TEST(test_R_I6a_buffer_bounds) {
  char out[32];
  const char *s = "13912345678";
  size_t n = strlen(s);

  memset(out, 'Z', sizeof out);
  ck_assert_uint_eq(svc_mask_text(s, n, out, n, NULL), SVC_MASK_ERROR); /* no room for NUL */
  ck_assert_str_eq(out, "");
  ck_assert_int_eq(out[1], 'Z');                                       /* nothing else written */
  ck_assert_uint_eq(svc_mask_text(s, n, out, SVC_MASK_CAP(n), NULL), 11);
  ck_assert_str_eq(out, "139****5678");
  ck_assert_uint_eq(svc_mask_text(NULL, 3, out, sizeof out, NULL), SVC_MASK_ERROR);
  ck_assert_uint_eq(svc_mask_text(NULL, 0, out, sizeof out, NULL), 0);
  ck_assert_str_eq(out, "");
  ck_assert_uint_eq(svc_mask_text(s, n, NULL, 0, NULL), SVC_MASK_ERROR);
  ck_assert_uint_eq(svc_mask_text(s, SIZE_MAX, out, sizeof out, NULL), SVC_MASK_ERROR);
  ck_assert_uint_eq(svc_mask_text(s, 0, out, 1, NULL), 0);             /* len 0 needs 1 byte */
  /* svc_mask_dup reads NULL as "". */
  char *d = svc_mask_dup(NULL, NULL);
  ck_assert_ptr_nonnull(d);
  ck_assert_str_eq(d, "");
  free(d);
}
END_TEST

START_TEST(test_R_I6a_very_long_runs) {
  size_t n = (size_t)1 << 20, fw = 3 * n;
  char *s = malloc(fw + 1), *got;
  int changed = 0;

  /* A megabyte of ASCII digits: one run, all but the last 4 hidden. */
  for (size_t i = 0; i < n; i++) s[i] = (char)('0' + i % 10);
  got = mask_n(s, n, &changed);
  ck_assert_uint_eq(strlen(got), n);
  ck_assert_uint_eq(strspn(got, "*"), n - 4);
  ck_assert_str_eq(got + n - 4, "2345");
  free(got);
  /* A million full-width digits: 3 MB in, 1 MB of ASCII out. */
  for (size_t i = 0; i < n; i++) memcpy(s + 3 * i, "\xef\xbc\x99", 3);
  got = mask_n(s, fw, &changed);
  ck_assert_uint_eq(strlen(got), n);
  ck_assert_str_eq(got + n - 5, "*9999");
  free(got);
  /* Digits and single spaces ("1 1 1 ..."): one run, the spaces dropped. */
  for (size_t i = 0; i < n; i++) s[i] = i % 2 ? ' ' : '1';
  got = mask_n(s, n - 1, &changed);
  ck_assert_uint_eq(strlen(got), n / 2);
  free(got);
  /* Separators only, and six-digit groups four spaces apart: unchanged. */
  for (size_t i = 0; i < n; i++) s[i] = i % 10 < 6 ? '7' : ' ';
  got = mask_n(s, n, &changed);
  ck_assert_int_eq(changed, 0);
  ck_assert_int_eq(memcmp(got, s, n), 0);
  free(got);
  free(s);
}
END_TEST

/* Random text over the characters that matter (digits of both widths,
 * separators, check characters, Chinese, letters, invalid bytes): the
 * output is valid UTF-8, no longer than the input, masks to itself, and
 * never holds seven digits in a row. */
START_TEST(test_R_I6a_random_text) {
  static const char *const atoms[] = {
    "0", "1", "3", "9", "\xef\xbc\x90", "\xef\xbc\x99", " ", "-", "\xe3\x80\x80", "\xef\xbc\x8d",
    "X", "x", "\xef\xbc\xb8", "号", "a", ".", "\xff", "\xe6\x97", "\xc0",
  };
  uint32_t seed = 12345;
  char buf[512];

  for (int round = 0; round < 20000; round++) {
    size_t n = 0;
    int len = 1 + (int)((seed = seed * 1103515245u + 12345u) >> 16) % 120;
    for (int k = 0; k < len; k++) {
      seed = seed * 1103515245u + 12345u;
      const char *a = atoms[(seed >> 16) % (sizeof atoms / sizeof atoms[0])];
      size_t m = strlen(a);
      if (n + m >= sizeof buf) break;
      memcpy(buf + n, a, m);
      n += m;
    }
    char *got = mask_n(buf, n, NULL);
    char *twice = mask_n(got, strlen(got), NULL);
    ck_assert_str_eq(twice, got);
    size_t row = 0;
    for (const char *p = got; *p; p++) {
      row = (*p >= '0' && *p <= '9') ? row + 1 : 0;
      ck_assert_uint_lt(row, 7);
    }
    free(twice);
    free(got);
  }
}
END_TEST

/* ---- events already published ---- */

/* A packed TicketAccepted with the given content and address. */
static uint8_t *accepted(const char *content, const char *address, size_t *n) {
  Whistle__Intake__TicketAccepted m = WHISTLE__INTAKE__TICKET_ACCEPTED__INIT;
  uint8_t *buf;

  m.ticket_no = "12345-20261001-000001";
  m.ticket_id = 42;
  m.category = "V_NOISE";
  m.masked_phone = "137****1234";
  m.content = (char *)content;
  m.address = (char *)address;
  *n = whistle__intake__ticket_accepted__get_packed_size(&m);
  buf = malloc(*n + 16);
  ck_assert_ptr_nonnull(buf);
  whistle__intake__ticket_accepted__pack(&m, buf);
  return buf;
}

static const char *const TEXTS[] = {"content", "address"};

START_TEST(test_R_I6a_event_rewritten) {
  size_t n, out_len = 0;
  uint8_t *in = accepted("楼上噪音扰民，请回电13911112222", "幸福里3栋 0539-8123456", &n), *out = NULL;
  Whistle__Intake__TicketAccepted *m;

  ck_assert_int_eq(svc_mask_pb(&whistle__intake__ticket_accepted__descriptor, TEXTS, 2, in, n,
                               &out, &out_len), 1);
  m = whistle__intake__ticket_accepted__unpack(NULL, out_len, out);
  ck_assert_ptr_nonnull(m);
  ck_assert_str_eq(m->content, "楼上噪音扰民，请回电139****2222");
  ck_assert_str_eq(m->address, "幸福里3栋 *******3456");
  ck_assert_str_eq(m->ticket_no, "12345-20261001-000001");
  ck_assert_str_eq(m->masked_phone, "137****1234");
  ck_assert_uint_eq(m->ticket_id, 42);
  whistle__intake__ticket_accepted__free_unpacked(m, NULL);
  /* Masked already: nothing to rewrite (the clean-up runs twice safely). */
  uint8_t *again = NULL;
  size_t again_len = 0;
  ck_assert_int_eq(svc_mask_pb(&whistle__intake__ticket_accepted__descriptor, TEXTS, 2, out,
                               out_len, &again, &again_len), 0);
  ck_assert_ptr_null(again);
  free(out);
  free(in);
}
END_TEST

START_TEST(test_R_I6a_event_unknown_fields_kept) {
  size_t n, out_len = 0;
  uint8_t *in = accepted("电话13911112222", "", &n), *out = NULL;
  /* Field 99 (length-delimited "new"), as a newer producer might add. */
  static const uint8_t extra[] = {0x9a, 0x06, 0x03, 'n', 'e', 'w'};

  memcpy(in + n, extra, sizeof extra);
  ck_assert_int_eq(svc_mask_pb(&whistle__intake__ticket_accepted__descriptor, TEXTS, 2, in,
                               n + sizeof extra, &out, &out_len), 1);
  ck_assert_uint_ge(out_len, sizeof extra);
  ck_assert_int_eq(memcmp(out + out_len - sizeof extra, extra, sizeof extra), 0);
  free(out);
  free(in);
}
END_TEST

START_TEST(test_R_I6a_event_refused) {
  static const char *const not_string[] = {"ticket_id"}, *const unknown[] = {"nonesuch"};
  static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f};
  static const uint8_t bad_utf8[] = {0x7a, 0x02, 0xc3, 0x28}; /* content = C3 28 */
  size_t n, out_len = 7;
  uint8_t *in = accepted("13911112222", "", &n), *out = (uint8_t *)"x";
  const ProtobufCMessageDescriptor *d = &whistle__intake__ticket_accepted__descriptor;

  ck_assert_int_eq(svc_mask_pb(d, not_string, 1, in, n, &out, &out_len), -1);
  ck_assert_ptr_null(out);
  ck_assert_uint_eq(out_len, 0);
  ck_assert_int_eq(svc_mask_pb(d, unknown, 1, in, n, &out, &out_len), -1);
  ck_assert_int_eq(svc_mask_pb(d, TEXTS, 2, garbage, sizeof garbage, &out, &out_len), -1);
  ck_assert_int_eq(svc_mask_pb(d, TEXTS, 2, bad_utf8, sizeof bad_utf8, &out, &out_len), -1);
  ck_assert_int_eq(svc_mask_pb(d, TEXTS, 9, in, n, &out, &out_len), -1);
  ck_assert_int_eq(svc_mask_pb(NULL, TEXTS, 2, in, n, &out, &out_len), -1);
  ck_assert_int_eq(svc_mask_pb(d, TEXTS, 2, in, n - 1, &out, &out_len), -1); /* truncated */
  ck_assert_ptr_null(out);
  free(in);
}
END_TEST

static Suite *mask_suite(void) {
  Suite *s = suite_create("svc_mask");
  TCase *tc = tcase_create("core");

  tcase_set_timeout(tc, 60);
  tcase_add_test(tc, test_R_I6a_mobile_alone);
  tcase_add_test(tc, test_R_I6a_mobile_in_chinese_text);
  tcase_add_test(tc, test_R_I6a_mobile_with_spaces);
  tcase_add_test(tc, test_R_I6a_mobile_with_hyphens);
  tcase_add_test(tc, test_R_I6a_mobile_full_width);
  tcase_add_test(tc, test_R_I6a_resident_id);
  tcase_add_test(tc, test_R_I6a_bank_cards);
  tcase_add_test(tc, test_R_I6a_landlines_and_other_runs);
  tcase_add_test(tc, test_R_I6a_short_runs_unchanged);
  tcase_add_test(tc, test_R_I6a_run_delimiting);
  tcase_add_test(tc, test_R_I6a_invalid_utf8);
  tcase_add_test(tc, test_R_I6a_buffer_bounds);
  tcase_add_test(tc, test_R_I6a_very_long_runs);
  tcase_add_test(tc, test_R_I6a_random_text);
  tcase_add_test(tc, test_R_I6a_event_rewritten);
  tcase_add_test(tc, test_R_I6a_event_unknown_fields_kept);
  tcase_add_test(tc, test_R_I6a_event_refused);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(mask_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
