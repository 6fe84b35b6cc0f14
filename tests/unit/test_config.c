/* Unit tests for svc_config (docs/architecture.md "Config"): every kind's valid and invalid
 * values, INT ranges, required variables, --help listing every variable,
 * --check-config's result, unknown arguments, the "PROG: VAR: reason (got 'x')"
 * error form, and that secret values never reach stdout or stderr. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc_config.h"

#define SECRET_PW "pw-Very-Secret-1"
#define SECRET_KEY "hmac-Default-Secret-2"
#define SECRET_PIN "pin-Bad-Secret-3"

static const struct svc_config_var template_table[] = {
    {"WHISTLE_T_NAME", "intake", SVC_CFG_STRING, 0, 0, NULL, 0, "The service name.", NULL, 0, {NULL, NULL}, NULL},
    {"WHISTLE_T_PORT", "5555", SVC_CFG_INT, 1, 65535, NULL, 0, "The listening port.", NULL, 0, {NULL, NULL}, NULL},
    {"WHISTLE_T_DEBUG", "off", SVC_CFG_BOOL, 0, 0, NULL, 0, "Extra checks.", NULL, 0, {NULL, NULL}, NULL},
    {"WHISTLE_T_LOG_LEVEL", "info", SVC_CFG_ENUM, 0, 0, "debug|info|warn|error", 0, "Log threshold.", NULL, 0, {NULL, NULL}, NULL},
    {"WHISTLE_T_BUS", "tcp://127.0.0.1:5555", SVC_CFG_ENDPOINT, 0, 0, NULL, 0, "The event bus.", NULL, 0, {NULL, NULL}, NULL},
    {"WHISTLE_T_DATA", "/var/lib/whistle", SVC_CFG_PATH, 0, 0, NULL, 0, "The data directory.", NULL, 0, {NULL, NULL}, NULL},
    {"WHISTLE_T_PREFIX", "", SVC_CFG_STRING, 0, 0, NULL, 0, "A notice number prefix.", NULL, 0, {NULL, NULL}, NULL},
    {"WHISTLE_T_PG_PASSWORD", NULL, SVC_CFG_STRING, 0, 0, NULL, 1, "The database password.", NULL, 0, {NULL, NULL}, NULL},
    {"WHISTLE_T_HMAC_KEY", SECRET_KEY, SVC_CFG_STRING, 0, 0, NULL, 1, "The signing key.", NULL, 0, {NULL, NULL}, NULL},
    {"WHISTLE_T_PIN", "1234", SVC_CFG_INT, 0, 9999, NULL, 1, "An operator PIN.", NULL, 0, {NULL, NULL}, NULL},
    {NULL, NULL, SVC_CFG_STRING, 0, 0, NULL, 0, NULL, NULL, 0, {NULL, NULL}, NULL},
};

#define N_VARS (sizeof template_table / sizeof *template_table)

static struct svc_config_var table[N_VARS];
static char out_text[32768], err_text[32768];
static FILE *cap_out, *cap_err;
static int saved_out = -1, saved_err = -1;

/* Resets the table and the environment: only the required password is set. */
static void setup(void) {
  extern char **environ;
  char name[128];

  for (size_t i = 0; environ[i];) { /* no stray WHISTLE_* of the caller's environment */
    const char *eq = strchr(environ[i], '=');
    if (strncmp(environ[i], "WHISTLE_", 8) == 0 && eq && (size_t)(eq - environ[i]) < sizeof name) {
      snprintf(name, sizeof name, "%.*s", (int)(eq - environ[i]), environ[i]);
      unsetenv(name);
      continue;
    }
    i++;
  }
  memcpy(table, template_table, sizeof table);
  for (size_t i = 0; template_table[i].name; i++) unsetenv(template_table[i].name);
  setenv("WHISTLE_T_PG_PASSWORD", SECRET_PW, 1);
}

/* Redirects stdout and stderr into temporary files. */
static void capture_begin(void) {
  fflush(stdout);
  fflush(stderr);
  cap_out = tmpfile();
  cap_err = tmpfile();
  ck_assert_ptr_nonnull(cap_out);
  ck_assert_ptr_nonnull(cap_err);
  saved_out = dup(1);
  saved_err = dup(2);
  dup2(fileno(cap_out), 1);
  dup2(fileno(cap_err), 2);
}

static void slurp(FILE *f, char *buf, size_t n) {
  size_t k;
  rewind(f);
  k = fread(buf, 1, n - 1, f);
  buf[k] = '\0';
  fclose(f);
}

/* Restores stdout and stderr; the captured text is in out_text and err_text. */
static void capture_end(void) {
  fflush(stdout);
  fflush(stderr);
  dup2(saved_out, 1);
  dup2(saved_err, 2);
  close(saved_out);
  close(saved_err);
  slurp(cap_out, out_text, sizeof out_text);
  slurp(cap_err, err_text, sizeof err_text);
}

/* Runs svc_config_load with the given arguments, capturing the output. */
static int load(int argc, char **argv) {
  int r;

  capture_begin();
  r = svc_config_load(table, argc, argv, "whistle-test", "Tests the configuration table.");
  capture_end();
  return r;
}

static int load0(void) {
  char *argv[] = {"whistle-test", NULL};
  return load(1, argv);
}

/* Checks that neither captured stream holds any secret value. */
static void ck_no_secrets(void) {
  static const char *const secrets[] = {SECRET_PW, SECRET_KEY, SECRET_PIN};
  for (size_t i = 0; i < 3; i++) {
    ck_assert_msg(strstr(out_text, secrets[i]) == NULL, "stdout leaks %s", secrets[i]);
    ck_assert_msg(strstr(err_text, secrets[i]) == NULL, "stderr leaks %s", secrets[i]);
  }
}

/* Validates value against the named variable of the template. */
static int check_value(const char *name, const char *value, int64_t *ival) {
  char err[200];
  const struct svc_config_var *v = svc_config_get(template_table, name);
  int r;

  ck_assert_ptr_nonnull(v);
  r = svc_config_validate(v, value, ival, err, sizeof err);
  if (r != 0) ck_assert_msg(err[0] != '\0', "no reason for %s='%s'", name, value);
  return r;
}

/* File, directory and host:port kinds; a variable required by another; an
 * unknown WHISTLE_* variable warned about with the closest name. */
START_TEST(test_config_files_needs_unknown) {
  struct svc_config_var f = {"WHISTLE_T_F", "", SVC_CFG_FILE, 0, 0, NULL, 0, "", NULL, 0, {NULL, NULL}, NULL};
  struct svc_config_var d = {"WHISTLE_T_D", "", SVC_CFG_DIR, 0, 0, NULL, 0, "", NULL, 0, {NULL, NULL}, NULL};
  struct svc_config_var h = {"WHISTLE_T_H", "", SVC_CFG_HOSTPORT, 0, 0, NULL, 0, "", NULL, 0, {NULL, NULL}, NULL};
  struct svc_config_var two[] = {
      {"WHISTLE_T_ON", "1", SVC_CFG_BOOL, 0, 0, NULL, 0, "", NULL, 0, {NULL, NULL}, NULL},
      {"WHISTLE_T_KEY", "", SVC_CFG_STRING, 0, 0, NULL, 0, "", NULL, 0, {"WHISTLE_T_ON", NULL}, NULL},
      {NULL, NULL, SVC_CFG_STRING, 0, 0, NULL, 0, NULL, NULL, 0, {NULL, NULL}, NULL},
  };
  char err[200];
  char *argv[] = {"whistle-test", NULL};

  ck_assert_int_eq(svc_config_validate(&f, "", NULL, err, sizeof err), 0);
  ck_assert_int_eq(svc_config_validate(&f, "/etc/passwd", NULL, err, sizeof err), 0);
  ck_assert_int_eq(svc_config_validate(&f, "/nonexistent/x", NULL, err, sizeof err), -1);
  ck_assert_int_eq(svc_config_validate(&f, "/etc", NULL, err, sizeof err), -1);
  ck_assert_int_eq(svc_config_validate(&d, "/etc", NULL, err, sizeof err), 0);
  ck_assert_int_eq(svc_config_validate(&d, "/etc/passwd", NULL, err, sizeof err), -1);
  ck_assert_int_eq(svc_config_validate(&h, "127.0.0.1:9101", NULL, err, sizeof err), 0);
  ck_assert_int_eq(svc_config_validate(&h, "*:9101", NULL, err, sizeof err), 0);
  ck_assert_int_eq(svc_config_validate(&h, ":9101", NULL, err, sizeof err), 0);
  ck_assert_int_eq(svc_config_validate(&h, "localhost:9101", NULL, err, sizeof err), -1);
  ck_assert_int_eq(svc_config_validate(&h, "127.0.0.1:0", NULL, err, sizeof err), -1);
  ck_assert_int_eq(svc_config_validate(&h, "127.0.0.1", NULL, err, sizeof err), -1);

  unsetenv("WHISTLE_T_ON");
  unsetenv("WHISTLE_T_KEY");
  capture_begin();
  ck_assert_int_eq(svc_config_load(two, 1, argv, "whistle-test", ""), -1);
  capture_end();
  ck_assert_msg(strstr(err_text, "WHISTLE_T_KEY: required when WHISTLE_T_ON is on"), "%s", err_text);
  setenv("WHISTLE_T_ON", "off", 1);
  setenv("WHISTLE_T_KYE", "x", 1);
  capture_begin();
  ck_assert_int_eq(svc_config_load(two, 1, argv, "whistle-test", ""), 0);
  capture_end();
  ck_assert_msg(strstr(err_text, "WHISTLE_T_KYE is not a setting of whistle-test (did you mean "
                                 "WHISTLE_T_KEY?)"), "%s", err_text);
  unsetenv("WHISTLE_T_ON");
  unsetenv("WHISTLE_T_KYE");
}
END_TEST

START_TEST(test_config_defaults_and_lookup) {
  ck_assert_int_eq(load0(), 0);
  ck_assert_str_eq(out_text, "");
  ck_assert_str_eq(err_text, "");
  ck_assert_str_eq(svc_config_str(table, "WHISTLE_T_NAME"), "intake");
  ck_assert_int_eq(svc_config_int(table, "WHISTLE_T_PORT"), 5555);
  ck_assert_int_eq(svc_config_int(table, "WHISTLE_T_DEBUG"), 0);
  ck_assert_str_eq(svc_config_str(table, "WHISTLE_T_PREFIX"), "");
  ck_assert_str_eq(svc_config_str(table, "WHISTLE_T_PG_PASSWORD"), SECRET_PW);
  ck_assert_ptr_null(svc_config_get(table, "WHISTLE_T_NOPE"));
  ck_assert_ptr_null(svc_config_str(table, "WHISTLE_T_NOPE"));
  ck_assert_int_eq(svc_config_int(table, "WHISTLE_T_NOPE"), 0);
  setenv("WHISTLE_T_PORT", "7000", 1);
  setenv("WHISTLE_T_DEBUG", "yes", 1);
  ck_assert_int_eq(load0(), 0);
  ck_assert_int_eq(svc_config_int(table, "WHISTLE_T_PORT"), 7000);
  ck_assert_int_eq(svc_config_int(table, "WHISTLE_T_DEBUG"), 1);
}
END_TEST

START_TEST(test_config_int_kind) {
  static const char *const bad[] = {"0", "65536", "-1", "12a", "", "+", "-", " 5", "5 ", "0x10",
                                    "99999999999999999999", "1.5"};
  struct svc_config_var wide = {"WHISTLE_T_WIDE", "0", SVC_CFG_INT, INT64_MIN, INT64_MAX, NULL, 0, "", NULL, 0, {NULL, NULL}, NULL};
  int64_t v = 0;
  char err[100];

  ck_assert_int_eq(check_value("WHISTLE_T_PORT", "1", &v), 0);
  ck_assert_int_eq(v, 1);
  ck_assert_int_eq(check_value("WHISTLE_T_PORT", "65535", &v), 0);
  ck_assert_int_eq(check_value("WHISTLE_T_PORT", "+80", &v), 0);
  ck_assert_int_eq(v, 80);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    ck_assert_msg(check_value("WHISTLE_T_PORT", bad[i], &v) == -1, "accepted '%s'", bad[i]);
  ck_assert_int_eq(svc_config_validate(&wide, "9223372036854775807", &v, err, sizeof err), 0);
  ck_assert_int_eq(v, INT64_MAX);
  ck_assert_int_eq(svc_config_validate(&wide, "-9223372036854775808", &v, err, sizeof err), 0);
  ck_assert_int_eq(v, INT64_MIN);
  ck_assert_int_eq(svc_config_validate(&wide, "9223372036854775808", &v, err, sizeof err), -1);
  ck_assert_int_eq(svc_config_validate(&wide, "-9223372036854775809", &v, err, sizeof err), -1);
  ck_assert_int_eq(svc_config_validate(&wide, "-0", &v, err, sizeof err), 0);
}
END_TEST

START_TEST(test_config_bool_kind) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};
  static const char *const bad[] = {"2", "y", "", "enable", "on "};
  int64_t v;

  for (size_t i = 0; i < 4; i++) {
    ck_assert_int_eq(check_value("WHISTLE_T_DEBUG", yes[i], &v), 0);
    ck_assert_int_eq(v, 1);
    ck_assert_int_eq(check_value("WHISTLE_T_DEBUG", no[i], &v), 0);
    ck_assert_int_eq(v, 0);
  }
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    ck_assert_msg(check_value("WHISTLE_T_DEBUG", bad[i], &v) == -1, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_config_enum_kind) {
  static const char *const bad[] = {"war", "warning", "", "info|warn", "|", "INFO", "debug "};
  int64_t v;

  ck_assert_int_eq(check_value("WHISTLE_T_LOG_LEVEL", "debug", &v), 0);
  ck_assert_int_eq(check_value("WHISTLE_T_LOG_LEVEL", "error", &v), 0);
  ck_assert_int_eq(check_value("WHISTLE_T_LOG_LEVEL", "warn", &v), 0);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    ck_assert_msg(check_value("WHISTLE_T_LOG_LEVEL", bad[i], &v) == -1, "accepted '%s'", bad[i]);
  setenv("WHISTLE_T_LOG_LEVEL", "loud", 1);
  ck_assert_int_eq(load0(), -1);
  ck_assert_ptr_nonnull(strstr(err_text, "debug|info|warn|error"));
}
END_TEST

START_TEST(test_config_endpoint_kind) {
  static const char *const good[] = {"tcp://127.0.0.1:5555", "tcp://*:7001", "ipc:///tmp/whistle.sock",
                                     "inproc://bus", "tcp://[::1]:5555"};
  static const char *const bad[] = {"tcp://", "ipc://", "inproc://", "127.0.0.1:5555", "tcp://host",
                                    "tcp://host:", "udp://h:1", "tcp://a b:1", "", "TCP://h:1"};
  int64_t v;

  for (size_t i = 0; i < sizeof good / sizeof *good; i++)
    ck_assert_msg(check_value("WHISTLE_T_BUS", good[i], &v) == 0, "rejected '%s'", good[i]);
  for (size_t i = 0; i < sizeof bad / sizeof *bad; i++)
    ck_assert_msg(check_value("WHISTLE_T_BUS", bad[i], &v) == -1, "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(test_config_path_and_string_kinds) {
  int64_t v;

  ck_assert_int_eq(check_value("WHISTLE_T_DATA", "/srv/whistle", &v), 0);
  ck_assert_int_eq(check_value("WHISTLE_T_DATA", "relative/dir", &v), 0);
  ck_assert_int_eq(check_value("WHISTLE_T_DATA", "", &v), -1);
  ck_assert_int_eq(check_value("WHISTLE_T_NAME", "幸福里", &v), 0);
  ck_assert_int_eq(check_value("WHISTLE_T_NAME", "", &v), -1); /* non-empty default */
  ck_assert_int_eq(check_value("WHISTLE_T_PREFIX", "", &v), 0); /* empty default */
  ck_assert_int_eq(check_value("WHISTLE_T_PREFIX", "SY", &v), 0);
  /* Set to empty counts as set: it does not fall back to the default. */
  setenv("WHISTLE_T_NAME", "", 1);
  ck_assert_int_eq(load0(), -1);
  ck_assert_ptr_nonnull(strstr(err_text, "whistle-test: WHISTLE_T_NAME: "));
  unsetenv("WHISTLE_T_NAME");
  setenv("WHISTLE_T_PREFIX", "", 1);
  ck_assert_int_eq(load0(), 0);
  ck_assert_str_eq(svc_config_str(table, "WHISTLE_T_PREFIX"), "");
}
END_TEST

START_TEST(test_config_error_form) {
  setenv("WHISTLE_T_PORT", "70000", 1);
  setenv("WHISTLE_T_BUS", "udp://x:1", 1);
  ck_assert_int_eq(load0(), -1);
  ck_assert_ptr_nonnull(strstr(err_text, "whistle-test: WHISTLE_T_PORT: out of range [1, 65535] (got '70000')\n"));
  ck_assert_ptr_nonnull(strstr(err_text, "whistle-test: WHISTLE_T_BUS: "));
  ck_assert_ptr_nonnull(strstr(err_text, "(got 'udp://x:1')"));
  ck_assert_str_eq(out_text, "");
}
END_TEST

START_TEST(test_config_required_missing) {
  unsetenv("WHISTLE_T_PG_PASSWORD");
  ck_assert_int_eq(load0(), -1);
  ck_assert_ptr_nonnull(strstr(err_text, "whistle-test: WHISTLE_T_PG_PASSWORD: required"));
  ck_assert_ptr_null(strstr(err_text, "(got"));
  ck_assert_ptr_null(svc_config_str(table, "WHISTLE_T_PG_PASSWORD"));
}
END_TEST

START_TEST(test_config_check_config) {
  char *argv[] = {"whistle-test", "--check-config", NULL};

  ck_assert_int_eq(load(2, argv), 1);
  for (size_t i = 0; template_table[i].name; i++)
    ck_assert_msg(strstr(out_text, template_table[i].name) != NULL, "missing %s", template_table[i].name);
  ck_assert_ptr_nonnull(strstr(out_text, "WHISTLE_T_PORT=5555"));
  ck_assert_ptr_nonnull(strstr(out_text, "WHISTLE_T_PG_PASSWORD=****"));
  ck_assert_ptr_nonnull(strstr(out_text, "WHISTLE_T_HMAC_KEY=****"));
  ck_no_secrets();
  setenv("WHISTLE_T_PORT", "0", 1);
  ck_assert_int_eq(load(2, argv), -1);
  ck_assert_ptr_nonnull(strstr(err_text, "WHISTLE_T_PORT"));
  ck_no_secrets();
}
END_TEST

START_TEST(test_config_unknown_argument) {
  char *argv[] = {"whistle-test", "--check-config", "--verbose", NULL};

  ck_assert_int_eq(load(3, argv), -1);
  ck_assert_ptr_nonnull(strstr(err_text, "--verbose"));
  ck_assert_ptr_nonnull(strstr(err_text, "--help"));
  ck_assert_str_eq(out_text, "");
}
END_TEST

START_TEST(test_config_help_lists_every_variable) {
  char *argv[] = {"whistle-test", "--help", NULL};

  unsetenv("WHISTLE_T_PG_PASSWORD"); /* --help works without a valid configuration */
  ck_assert_int_eq(load(2, argv), 1);
  ck_assert_ptr_nonnull(strstr(out_text, "usage: whistle-test [--help] [--version] [--check-config]"));
  ck_assert_ptr_nonnull(strstr(out_text, "Tests the configuration table."));
  for (size_t i = 0; template_table[i].name; i++) {
    ck_assert_msg(strstr(out_text, template_table[i].name) != NULL, "missing %s", template_table[i].name);
    ck_assert_msg(strstr(out_text, template_table[i].help) != NULL, "missing %s", template_table[i].help);
  }
  ck_assert_ptr_nonnull(strstr(out_text, "(required)"));
  ck_assert_ptr_nonnull(strstr(out_text, "(secret)"));
  ck_assert_ptr_nonnull(strstr(out_text, "[1, 65535]"));
  ck_assert_ptr_nonnull(strstr(out_text, "debug|info|warn|error"));
  ck_assert_ptr_nonnull(strstr(out_text, "tcp://127.0.0.1:5555"));
  ck_assert_str_eq(err_text, "");
  ck_no_secrets();
}
END_TEST

START_TEST(test_config_secret_never_printed) {
  char *argv[] = {"whistle-test", "--check-config", NULL};

  setenv("WHISTLE_T_PIN", SECRET_PIN, 1); /* an invalid secret INT */
  ck_assert_int_eq(load(2, argv), -1);
  ck_assert_ptr_nonnull(strstr(err_text, "whistle-test: WHISTLE_T_PIN: "));
  ck_no_secrets();
  ck_assert_int_eq(load0(), -1);
  ck_no_secrets();
}
END_TEST

static Suite *config_suite(void) {
  Suite *s = suite_create("svc_config");
  TCase *tc = tcase_create("core");

  tcase_add_checked_fixture(tc, setup, NULL);
  tcase_add_test(tc, test_config_defaults_and_lookup);
  tcase_add_test(tc, test_config_int_kind);
  tcase_add_test(tc, test_config_bool_kind);
  tcase_add_test(tc, test_config_enum_kind);
  tcase_add_test(tc, test_config_endpoint_kind);
  tcase_add_test(tc, test_config_path_and_string_kinds);
  tcase_add_test(tc, test_config_error_form);
  tcase_add_test(tc, test_config_required_missing);
  tcase_add_test(tc, test_config_check_config);
  tcase_add_test(tc, test_config_unknown_argument);
  tcase_add_test(tc, test_config_help_lists_every_variable);
  tcase_add_test(tc, test_config_secret_never_printed);
  tcase_add_test(tc, test_config_files_needs_unknown);
  suite_add_tcase(s, tc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(config_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
