/* Unit tests for svc_log (docs/architecture.md "Logs"): the logfmt line shape on stderr,
 * the UTC millisecond timestamp, quoting and escaping, level filtering, func=
 * on warnings and errors, and that every call yields exactly one line. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc_log.h"
#include "svc_time.h"

static char out[65536];
static int saved_fd = -1;
static FILE *cap;

/* Redirects stderr (fd 2) into a temporary file. */
static void capture_begin(void) {
  fflush(stderr);
  cap = tmpfile();
  ck_assert_ptr_nonnull(cap);
  saved_fd = dup(2);
  ck_assert_int_ge(saved_fd, 0);
  ck_assert_int_ge(dup2(fileno(cap), 2), 0);
}

/* Restores stderr and returns what was written meanwhile. */
static const char *capture_end(void) {
  size_t n;

  fflush(stderr);
  dup2(saved_fd, 2);
  close(saved_fd);
  rewind(cap);
  n = fread(out, 1, sizeof out - 1, cap);
  out[n] = '\0';
  fclose(cap);
  return out;
}

static size_t count_lines(const char *s) {
  size_t n = 0;
  for (; *s; s++) n += (*s == '\n');
  return n;
}

/* Checks "ts=YYYY-MM-DDTHH:MM:SS.mmmZ " and that it is close to now. */
static void ck_ts(const char *line) {
  int64_t us, now = svc_wall_us();

  ck_assert_msg(strncmp(line, "ts=", 3) == 0, "line: %s", line);
  ck_assert_int_eq(line[3 + 10], 'T');
  ck_assert_int_eq(line[3 + 19], '.');
  ck_assert_int_eq(line[3 + 23], 'Z');
  ck_assert_int_eq(line[3 + 24], ' ');
  ck_assert_int_eq(svc_time_parse(line + 3, 24, &us), 0);
  ck_assert_int_eq(us % 1000, 0); /* milliseconds */
  ck_assert_int_le(us, now);
  ck_assert_int_gt(us, now - 10 * SVC_US_PER_SEC);
}

START_TEST(test_log_shape) {
  const char *s;

  svc_log_init("intake");
  svc_log_set_level(SVC_LOG_INFO);
  capture_begin();
  svc_info("ticket accepted", " ticket=%s n=%d", "T-1", 3);
  s = capture_end();
  ck_ts(s);
  ck_assert_str_eq(s + 27, " level=info svc=intake msg=\"ticket accepted\" ticket=T-1 n=3\n");
  ck_assert_uint_eq(count_lines(s), 1);
}
END_TEST

START_TEST(test_log_msg_quoting) {
  const char *s;

  svc_log_init(NULL);
  svc_log_set_level(SVC_LOG_DEBUG);
  capture_begin();
  svc_info("started", NULL);
  svc_debug("a=b", NULL);
  svc_info("", NULL);
  svc_info("say \"hi\"\n", NULL);
  svc_info("路径 C:\\tmp", NULL);
  svc_info("C:\\tmp", NULL);
  s = capture_end();
  ck_assert_uint_eq(count_lines(s), 6);
  ck_assert_ptr_nonnull(strstr(s, " level=info svc=whistle msg=started\n"));
  ck_assert_ptr_nonnull(strstr(s, " level=debug svc=whistle msg=\"a=b\"\n"));
  ck_assert_ptr_nonnull(strstr(s, " msg=\"\"\n"));
  ck_assert_ptr_nonnull(strstr(s, " msg=\"say \\\"hi\\\"\\x0a\"\n"));
  ck_assert_ptr_nonnull(strstr(s, " msg=\"路径 C:\\\\tmp\"\n"));
  ck_assert_ptr_nonnull(strstr(s, " msg=C:\\tmp\n"));
}
END_TEST

START_TEST(test_log_quote) {
  char b[64], tiny[12];

  ck_assert_str_eq(svc_log_quote(b, sizeof b, "plain"), "plain");
  ck_assert_str_eq(svc_log_quote(b, sizeof b, ""), "\"\"");
  ck_assert_str_eq(svc_log_quote(b, sizeof b, NULL), "\"\"");
  ck_assert_str_eq(svc_log_quote(b, sizeof b, "two words"), "\"two words\"");
  ck_assert_str_eq(svc_log_quote(b, sizeof b, "k=v"), "\"k=v\"");
  ck_assert_str_eq(svc_log_quote(b, sizeof b, "a\"b\\c d"), "\"a\\\"b\\\\c d\"");
  ck_assert_str_eq(svc_log_quote(b, sizeof b, "tab\there\x7f"), "\"tab\\x09here\\x7f\"");
  ck_assert_str_eq(svc_log_quote(b, sizeof b, "幸福里小区"), "幸福里小区");
  ck_assert_str_eq(svc_log_quote(b, sizeof b, "幸福里 小区"), "\"幸福里 小区\"");
  /* Truncation keeps the quotes balanced, marks the cut and never splits a character. */
  ck_assert_str_eq(svc_log_quote(tiny, sizeof tiny, "a long value here"), "\"a long...\"");
  ck_assert_str_eq(svc_log_quote(tiny, sizeof tiny, "abcdefghijklmnop"), "abcdefgh...");
  ck_assert_str_eq(svc_log_quote(tiny, sizeof tiny, "幸福里小区"), "幸福...");
  ck_assert_str_eq(svc_log_quote(tiny, sizeof tiny, "\n\n\n"), "\"\\x0a...\"");
  ck_assert_str_eq(svc_log_quote(tiny, 3, "abc"), "");
  ck_assert_str_eq(svc_log_quote(tiny, 4, "abc"), "abc");
  ck_assert_ptr_eq(svc_log_quote(tiny, 0, "abc"), tiny);
}
END_TEST

START_TEST(test_log_level_filtering) {
  const char *s;

  svc_log_init("rating");
  ck_assert_int_eq(svc_log_set_level_name("warn"), 0);
  ck_assert_int_eq(svc_log_enabled(SVC_LOG_INFO), 0);
  ck_assert_int_eq(svc_log_enabled(SVC_LOG_ERROR), 1);
  ck_assert_int_eq(svc_log_set_level_name("verbose"), -1);
  ck_assert_int_eq(svc_log_set_level_name(NULL), -1);
  ck_assert_int_eq(svc_log_enabled(SVC_LOG_INFO), 0); /* unchanged */
  capture_begin();
  svc_debug("d", NULL);
  svc_info("i", NULL);
  svc_warn("w", NULL);
  svc_error("e", NULL);
  s = capture_end();
  /* Check's START_TEST names the function NAME_fn, which is what __func__ gives. */
  ck_assert_uint_eq(count_lines(s), 2);
  ck_assert_ptr_null(strstr(s, "level=info"));
  ck_assert_ptr_null(strstr(s, "level=debug"));
  ck_assert_ptr_nonnull(strstr(s, "level=warn svc=rating msg=w func=test_log_level_filtering_fn\n"));
  ck_assert_ptr_nonnull(strstr(s, "level=error svc=rating msg=e func=test_log_level_filtering_fn\n"));
  ck_assert_int_eq(svc_log_set_level_name("debug"), 0);
  ck_assert_int_eq(svc_log_enabled(SVC_LOG_DEBUG), 1);
}
END_TEST

START_TEST(test_log_level_from_env) {
  setenv("WHISTLE_LOG_LEVEL", "error", 1);
  svc_log_init("x");
  ck_assert_int_eq(svc_log_enabled(SVC_LOG_WARN), 0);
  setenv("WHISTLE_LOG_LEVEL", "nonsense", 1);
  svc_log_init("x");
  ck_assert_int_eq(svc_log_enabled(SVC_LOG_WARN), 0);
  unsetenv("WHISTLE_LOG_LEVEL");
}
END_TEST

START_TEST(test_log_func_on_warn) {
  const char *s;

  svc_log_init("notice");
  svc_log_set_level(SVC_LOG_DEBUG);
  capture_begin();
  svc_warn("deadline passed", " ticket=%s step=%d", "T-9", 2);
  svc_log(SVC_LOG_INFO, "ignored_for_info", "x", NULL);
  svc_log(SVC_LOG_WARN, NULL, "no func", NULL);
  s = capture_end();
  ck_assert_uint_eq(count_lines(s), 3);
  ck_assert_ptr_nonnull(
      strstr(s, "level=warn svc=notice msg=\"deadline passed\" ticket=T-9 step=2 func=test_log_func_on_warn_fn\n"));
  ck_assert_ptr_null(strstr(s, "ignored_for_info"));
  ck_assert_ptr_nonnull(strstr(s, "msg=\"no func\"\n"));
}
END_TEST

START_TEST(test_log_one_line_always) {
  static char big[20000];
  const char *s;
  size_t len;

  memset(big, 'x', sizeof big - 1);
  svc_log_init("intake");
  svc_log_set_level(SVC_LOG_INFO);
  capture_begin();
  svc_info("with newline", " v=%s", "a\nb\rc");
  svc_warn(big, " big=%s", big);
  svc_warn("m", " big=%s", big);
  s = capture_end();
  ck_assert_uint_eq(count_lines(s), 3);
  ck_assert_ptr_nonnull(strstr(s, " v=a b c\n"));
  len = strlen(s);
  ck_assert_int_eq(s[len - 1], '\n');
  ck_assert_ptr_nonnull(strstr(s, "... func=test_log_one_line_always_fn\n"));
  for (const char *p = s, *nl; (nl = strchr(p, '\n')) != NULL; p = nl + 1)
    ck_assert_uint_le((size_t)(nl - p + 1), 8192);
}
END_TEST

static Suite *log_suite(void) {
  Suite *s = suite_create("svc_log");
  TCase *tc = tcase_create("core");

  tcase_add_test(tc, test_log_shape);
  tcase_add_test(tc, test_log_msg_quoting);
  tcase_add_test(tc, test_log_quote);
  tcase_add_test(tc, test_log_level_filtering);
  tcase_add_test(tc, test_log_level_from_env);
  tcase_add_test(tc, test_log_func_on_warn);
  tcase_add_test(tc, test_log_one_line_always);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(log_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
