/* Unit tests for svc_csv, the strict RFC 4180 reader behind the registry files
 * (docs/rules.md §1) and calendar.csv (R-T4): quoting, line ends, BOM, the header,
 * field counts, line numbers in errors, and UTF-8 validation of Chinese text. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc_csv.h"

static char tmp_path[64];

/* Writes n bytes to a fresh temporary file; returns its path. */
static const char *temp_bytes(const char *data, size_t n) {
  FILE *f;
  int fd;

  snprintf(tmp_path, sizeof tmp_path, "/tmp/test_csv_XXXXXX");
  fd = mkstemp(tmp_path);
  ck_assert_int_ge(fd, 0);
  f = fdopen(fd, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_uint_eq(fwrite(data, 1, n, f), n);
  fclose(f);
  return tmp_path;
}

static const char *temp_text(const char *text) {
  return temp_bytes(text, strlen(text));
}

/* Opens text with header, expecting success; the open file is unlinked at once. */
static void open_ok(struct svc_csv *c, const char *text, const char *header) {
  const char *p = temp_text(text);
  ck_assert_msg(svc_csv_open(c, p, header) == 0, "open failed: %s", c->err);
  unlink(p);
}

/* Checks the next record's line and fields (a NULL-terminated list). */
static void ck_record(struct svc_csv *c, size_t line, const char *const *want) {
  size_t n = 0;

  ck_assert_msg(svc_csv_next(c) == 1, "no record: %s", c->err);
  ck_assert_uint_eq(c->line, line);
  while (want[n]) n++;
  ck_assert_uint_eq(c->n_fields, n);
  for (size_t i = 0; i < n; i++) ck_assert_str_eq(c->fields[i], want[i]);
}

/* Checks that reading text fails with exactly "path:line: reason". */
static void ck_error(const char *data, size_t n, const char *header, const char *want) {
  struct svc_csv c;
  char full[300];
  const char *p = temp_bytes(data, n);
  int r = svc_csv_open(&c, p, header);

  if (r == 0) {
    while ((r = svc_csv_next(&c)) == 1) {
    }
  }
  ck_assert_int_eq(r, -1);
  snprintf(full, sizeof full, "%s:%s", p, want);
  ck_assert_str_eq(c.err, full);
  svc_csv_close(&c);
  unlink(p);
}

#define CK_ERROR(text, header, want) ck_error(text, sizeof(text) - 1, header, want)

START_TEST(test_csv_quoted_commas_newlines_escapes) {
  struct svc_csv c;
  static const char *const r1[] = {"1", "x, y", "line1\nline2", NULL};
  static const char *const r2[] = {"2", "say \"hi\"", "", NULL};
  static const char *const r3[] = {"", "", "\"", NULL};

  open_ok(&c, "a,b,c\n1,\"x, y\",\"line1\nline2\"\n2,\"say \"\"hi\"\"\",\"\"\n,,\"\"\"\"\n", "a,b,c");
  ck_record(&c, 2, r1);
  ck_record(&c, 4, r2); /* the record starts after the two physical lines of r1 */
  ck_record(&c, 5, r3);
  ck_assert_int_eq(svc_csv_next(&c), 0);
  ck_assert_int_eq(svc_csv_next(&c), 0);
  svc_csv_close(&c);
  svc_csv_close(&c);
}
END_TEST

START_TEST(test_csv_crlf_and_bom) {
  struct svc_csv c;
  static const char *const r1[] = {"1", "2", NULL};
  static const char *const r2[] = {"3", "x\r\ny", NULL};
  static const char *const r3[] = {"4", "", NULL};

  open_ok(&c, "\xEF\xBB\xBF" "a,b\r\n1,2\r\n3,\"x\r\ny\"\r\n4,", "a,b");
  ck_record(&c, 2, r1);
  ck_record(&c, 3, r2);
  ck_record(&c, 5, r3); /* the last record has no line end */
  ck_assert_int_eq(svc_csv_next(&c), 0);
  svc_csv_close(&c);
}
END_TEST

START_TEST(test_csv_blank_trailing_lines) {
  struct svc_csv c;
  static const char *const r1[] = {"1", "2", NULL};

  open_ok(&c, "a,b\n1,2\n\n", "a,b");
  ck_record(&c, 2, r1);
  ck_assert_int_eq(svc_csv_next(&c), 0);
  svc_csv_close(&c);
  open_ok(&c, "a,b\r\n1,2\r\n\r\n\r\n", "a,b");
  ck_record(&c, 2, r1);
  ck_assert_int_eq(svc_csv_next(&c), 0);
  svc_csv_close(&c);
  open_ok(&c, "a,b\n", "a,b");
  ck_assert_int_eq(svc_csv_next(&c), 0);
  svc_csv_close(&c);
  CK_ERROR("a,b\n1,2\n\n3,4\n", "a,b", "3: blank line");
}
END_TEST

START_TEST(test_csv_header_mismatch) {
  CK_ERROR("a,c\n1,2\n", "a,b", "1: expected header 'a,b' got 'a,c'");
  CK_ERROR("\xEF\xBB\xBF" "a,b,c\n", "a,b", "1: expected header 'a,b' got 'a,b,c'");
  CK_ERROR("", "a,b", "1: expected header 'a,b' got ''");
  CK_ERROR("\"a\",b\n", "a,b", "1: expected header 'a,b' got '\"a\",b'");
}
END_TEST

START_TEST(test_csv_wrong_field_count) {
  CK_ERROR("a,b,c,d,e,f,g,h\n1,2,3,4,5,6,7,8\n1,2,3,4,5,6,7\n", "a,b,c,d,e,f,g,h",
           "3: expected 8 fields, got 7");
  CK_ERROR("a,b\n1,2,3\n", "a,b", "2: expected 2 fields, got 3");
  CK_ERROR("a,b\n\"x\ny\",1\n\"p\nq\"\n", "a,b", "4: expected 2 fields, got 1");
}
END_TEST

START_TEST(test_csv_quote_errors) {
  CK_ERROR("a,b\n1,2\n3,\"open\nnever closed\n", "a,b", "3: unterminated quote");
  CK_ERROR("a,b\n\"ab\"c,d\n", "a,b", "2: text after a closing quote");
  CK_ERROR("a,b\nab\"c\",d\n", "a,b", "2: quote inside an unquoted field");
  CK_ERROR("a,b\n1,2\r3,4\n", "a,b", "2: carriage return without line feed");
}
END_TEST

START_TEST(test_csv_invalid_utf8) {
  CK_ERROR("a,b\n1,\xe5\xb9\n", "a,b", "2: invalid UTF-8 in field 2");      /* truncated */
  CK_ERROR("a,b\n\xc0\xaf,1\n", "a,b", "2: invalid UTF-8 in field 1");      /* overlong '/' */
  CK_ERROR("a,b,c\n1,2,\xed\xa0\x80\n", "a,b,c", "2: invalid UTF-8 in field 3"); /* surrogate */
  CK_ERROR("a,b\n1,\"\xf4\x90\x80\x80\"\n", "a,b", "2: invalid UTF-8 in field 2"); /* > U+10FFFF */
  CK_ERROR("a,b\n1,x\0y\n", "a,b", "2: invalid UTF-8 in field 2");            /* NUL byte */
}
END_TEST

/* Registry text: compound names and '|'-separated aliases in Chinese. */
START_TEST(test_csv_chinese_round_trip) {
  struct svc_csv c;
  static const char *const r1[] = {"幸福里小区", "幸福里小区|幸福里", NULL};
  static const char *const r2[] = {"阳光花园", "阳光花园，南区|“阳光”", NULL};

  open_ok(&c, "name,aliases\n幸福里小区,幸福里小区|幸福里\n\"阳光花园\",\"阳光花园，南区|“阳光”\"\n",
          "name,aliases");
  ck_record(&c, 2, r1);
  ck_record(&c, 3, r2);
  ck_assert_uint_eq(svc_utf8_len(c.fields[0], strlen(c.fields[0])), 4);
  ck_assert_int_eq(svc_csv_next(&c), 0);
  svc_csv_close(&c);
}
END_TEST

START_TEST(test_csv_open_errors) {
  struct svc_csv c;

  ck_assert_int_eq(svc_csv_open(&c, "/nonexistent/x.csv", "a,b"), -1);
  ck_assert_ptr_nonnull(strstr(c.err, "/nonexistent/x.csv"));
  ck_assert_int_eq(svc_csv_next(&c), -1);
  svc_csv_close(&c);
  svc_csv_close(&c);
}
END_TEST

START_TEST(test_utf8_valid) {
  static const char *const good[] = {
      "", "plain ascii", "幸福里", "ＡＢＣ", "\xf0\x9f\x98\x80", "\xf4\x8f\xbf\xbf",
      "\xef\xbf\xbf", "\xed\x9f\xbf", "\xee\x80\x80", "\xc2\x80", "\xe0\xa0\x80", "\xf0\x90\x80\x80",
  };
  static const char *const bad[] = {
      "\xe5\xb9", "\xc0\xaf", "\xc1\xbf", "\xe0\x80\xaf", "\xf0\x80\x80\xaf", "\xed\xa0\x80",
      "\xed\xbf\xbf", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\x80", "a\xbf",
      "\xe5\xb9\x41", "\xf0\x9f\x98", "\xc3",
  };

  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    ck_assert_msg(svc_utf8_valid(good[i], strlen(good[i])) == 1, "rejected good %zu", i);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    ck_assert_msg(svc_utf8_valid(bad[i], strlen(bad[i])) == 0, "accepted bad %zu", i);
  ck_assert_int_eq(svc_utf8_valid("a\0b", 3), 0);
  ck_assert_int_eq(svc_utf8_valid("幸福", 4), 0); /* cut inside the second character */
}
END_TEST

START_TEST(test_utf8_len) {
  ck_assert_uint_eq(svc_utf8_len("", 0), 0);
  ck_assert_uint_eq(svc_utf8_len("abc", 3), 3);
  ck_assert_uint_eq(svc_utf8_len("幸福里小区", strlen("幸福里小区")), 5);
  ck_assert_uint_eq(svc_utf8_len("ＡＢＣ１２３", strlen("ＡＢＣ１２３")), 6);
  ck_assert_uint_eq(svc_utf8_len("abc幸福\xf0\x9f\x98\x80", strlen("abc幸福\xf0\x9f\x98\x80")), 6);
}
END_TEST

/* R-I8: a required text of only white space or invisible characters is
 * missing: spaces, tabs, U+3000, U+00A0, U+200B..U+200F, U+2060, U+FEFF, the
 * soft hyphen, bidi marks and isolates, a variation selector, Hangul fillers,
 * tag characters. Visible neighbours of those ranges are text. */
START_TEST(test_R_I8_utf8_blank) {
  const char *blank[] = { "", " ", "\t\r\n ", "\u3000\u3000", "\u200b", "\u200c\u200d",
                          "\ufeff", "\u2060 \u00a0", "\u2003\u202f", "\u00ad", "\u200e\u200f",
                          "\u202a\u202c\u2066\u2069", "\ufe0f", "\u3164\uffa0", "\U000e0020" };
  const char *text[] = { "a", " x ", "\u3000楼道堆满杂物", "\u200b1", "\u00b7", "。", "\u00ae",
                         "\u2010", "\u2070", "\ufe10", "\u00ad-" };
  for (size_t i = 0; i < sizeof blank / sizeof blank[0]; i++)
    ck_assert_msg(svc_utf8_blank(blank[i], strlen(blank[i])), "blank #%zu", i);
  for (size_t i = 0; i < sizeof text / sizeof text[0]; i++)
    ck_assert_msg(!svc_utf8_blank(text[i], strlen(text[i])), "text #%zu", i);
  ck_assert(!svc_utf8_blank("\xe3\x80", 2)); /* truncated: not blank */
  ck_assert(svc_utf8_blank(NULL, 0));
}
END_TEST

static Suite *csv_suite(void) {
  Suite *s = suite_create("svc_csv");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_csv_quoted_commas_newlines_escapes);
  tcase_add_test(tc, test_csv_crlf_and_bom);
  tcase_add_test(tc, test_csv_blank_trailing_lines);
  tcase_add_test(tc, test_csv_header_mismatch);
  tcase_add_test(tc, test_csv_wrong_field_count);
  tcase_add_test(tc, test_csv_quote_errors);
  tcase_add_test(tc, test_csv_invalid_utf8);
  tcase_add_test(tc, test_csv_chinese_round_trip);
  tcase_add_test(tc, test_csv_open_errors);
  tcase_add_test(tc, test_utf8_valid);
  tcase_add_test(tc, test_utf8_len);
  tcase_add_test(tc, test_R_I8_utf8_blank);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(csv_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
