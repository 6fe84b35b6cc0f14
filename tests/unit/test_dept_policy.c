/* Unit tests for the scripted department's policy (tools/dept/dept_policy.c):
 * parsing (defaults, comments, unknown keys, bad values), the stable every-n
 * selection by FNV-1a of "ticket_no|step", and the update times computed
 * from a step's issue time and deadlines (never from the wall clock). */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dept.h"
#include "svc_time.h"

#define MIN_US INT64_C(60000000)
#define HOUR_US (60 * MIN_US)

static int parse(struct dept_policy *p, const char *text, char *err, size_t n)
{
  return dept_policy_parse(p, text, strlen(text), err, n);
}

/* A step issued at 2026-10-01T08:00:00+08:00 with a 2 h accept clock and a
 * resolve clock ending 2026-10-09T23:59:59+08:00. */
static struct dept_step sample_step(const char *ticket_no, uint32_t step)
{
  struct dept_step s = { ticket_no, step, 1, 1, 0, 0, 0, "P7" };
  ck_assert_int_eq(svc_time_parse("2026-10-01T08:00:00+08:00", (size_t)-1, &s.issued_us), 0);
  s.accept_by_us = s.issued_us + 2 * HOUR_US;
  ck_assert_int_eq(svc_time_parse("2026-10-09T23:59:59+08:00", (size_t)-1, &s.resolve_by_us), 0);
  return s;
}

START_TEST(test_defaults)
{
  struct dept_policy p;
  char err[256];
  ck_assert_int_eq(parse(&p, "{}", err, sizeof err), 0);
  ck_assert_int_eq(p.accept_after_min, 60);
  ck_assert_int_eq(p.resolve_after_min, 1440);
  ck_assert_int_eq(p.return_after_min, 120);
  ck_assert_int_eq(p.late_accept_min, 60);
  ck_assert_int_eq(p.late_resolve_min, 1440);
  ck_assert_uint_eq(p.late_every, 7);
  ck_assert_uint_eq(p.return_every, 10);
  ck_assert_uint_eq(p.violation_every, 3);
  ck_assert_uint_eq(p.ignore_every, 0);
  ck_assert_str_eq(p.return_reason, "非本单位职责");
}
END_TEST

START_TEST(test_parse_with_comments)
{
  struct dept_policy p;
  char err[256];
  const char *text =
    "{\"accept_after_min\": 30, \"resolve_after_min\": 600,   // ten hours\n"
    " \"late_every\": 0,      // never late\n"
    " \"return_reason\": \"not ours // really\",\n"
    " \"ignore_every\": 4}\n";
  ck_assert_msg(parse(&p, text, err, sizeof err) == 0, "%s", err);
  ck_assert_int_eq(p.accept_after_min, 30);
  ck_assert_int_eq(p.resolve_after_min, 600);
  ck_assert_uint_eq(p.late_every, 0);
  ck_assert_uint_eq(p.ignore_every, 4);
  ck_assert_str_eq(p.return_reason, "not ours // really"); /* not a comment inside a string */
  ck_assert_uint_eq(p.return_every, 10);                   /* absent: the default */
}
END_TEST

START_TEST(test_parse_errors)
{
  struct dept_policy p;
  char err[256];
  dept_policy_defaults(&p);
  p.accept_after_min = 5; /* a failed parse leaves p alone */
  ck_assert_int_eq(parse(&p, "{\"late_evry\": 3}", err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "late_evry"));
  ck_assert_int_eq(parse(&p, "{\"late_every\": -1}", err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "late_every"));
  ck_assert_int_eq(parse(&p, "{\"late_every\": \"7\"}", err, sizeof err), -1);
  ck_assert_int_eq(parse(&p, "{\"accept_after_min\": 1.5}", err, sizeof err), -1);
  ck_assert_int_eq(parse(&p, "{\"accept_after_min\": 100, \"resolve_after_min\": 90}", err,
                         sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "resolve_after_min"));
  ck_assert_int_eq(parse(&p, "{\"return_reason\": \"\"}", err, sizeof err), -1);
  ck_assert_int_eq(parse(&p, "[1, 2]", err, sizeof err), -1);
  ck_assert_int_eq(parse(&p, "{\"late_every\": 3,}", err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, "line 1"));
  ck_assert_int_eq(parse(&p, "{\"late_every\": 3, \"late_every\": 4}", err, sizeof err), -1);
  ck_assert_int_eq(p.accept_after_min, 5);
}
END_TEST

START_TEST(test_load_file)
{
  char path[] = "/tmp/test_dept_policy_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  const char *text = "{\"violation_every\": 2}\n";
  ck_assert_int_eq(write(fd, text, strlen(text)), (ssize_t)strlen(text));
  close(fd);
  struct dept_policy p;
  char err[512];
  ck_assert_msg(dept_policy_load(&p, path, err, sizeof err) == 0, "%s", err);
  ck_assert_uint_eq(p.violation_every, 2);
  unlink(path);
  ck_assert_int_eq(dept_policy_load(&p, path, err, sizeof err), -1);
  ck_assert_ptr_nonnull(strstr(err, path));
}
END_TEST

START_TEST(test_fnv1a)
{
  /* The published FNV-1a 32-bit test vectors. */
  ck_assert_uint_eq(dept_fnv1a(DEPT_FNV_BASIS, "", 0), UINT32_C(0x811c9dc5));
  ck_assert_uint_eq(dept_fnv1a(DEPT_FNV_BASIS, "a", 1), UINT32_C(0xe40c292c));
  ck_assert_uint_eq(dept_fnv1a(DEPT_FNV_BASIS, "foobar", 6), UINT32_C(0xbf9cf968));
  const char *s = "12345-20261001-000001|2";
  ck_assert_uint_eq(dept_step_hash("12345-20261001-000001", 2), dept_fnv1a(DEPT_FNV_BASIS, s, strlen(s)));
  ck_assert_uint_ne(dept_step_hash("12345-20261001-000001", 2),
                    dept_step_hash("12345-20261001-000001", 3));
}
END_TEST

START_TEST(test_pick_rates)
{
  /* Stable, never for 0, always for 1, and near 1/n over many steps. */
  unsigned n7 = 0, n10 = 0, both = 0;
  const unsigned total = 7000;
  for (unsigned i = 0; i < total; i++) {
    char t[32];
    snprintf(t, sizeof t, "12345-20261001-%06u", i);
    uint32_t h = dept_step_hash(t, 1);
    ck_assert_int_eq(dept_pick(h, 0, DEPT_PICK_LATE), 0);
    ck_assert_int_eq(dept_pick(h, 1, DEPT_PICK_LATE), 1);
    ck_assert_int_eq(dept_pick(h, 7, DEPT_PICK_LATE), dept_pick(dept_step_hash(t, 1), 7, DEPT_PICK_LATE));
    int a = dept_pick(h, 7, DEPT_PICK_LATE), b = dept_pick(h, 10, DEPT_PICK_RETURN);
    n7 += a;
    n10 += b;
    both += a && b;
  }
  ck_assert_uint_gt(n7, total / 7 * 8 / 10);
  ck_assert_uint_lt(n7, total / 7 * 12 / 10);
  ck_assert_uint_gt(n10, total / 10 * 8 / 10);
  ck_assert_uint_lt(n10, total / 10 * 12 / 10);
  ck_assert_uint_lt(both, total / 70 * 2); /* the selections are not the same steps */
}
END_TEST

/* Finds a step number of ticket t picked (want 1) or not (0) by each named
 * selection under policy p. */
static uint32_t find_step(const struct dept_policy *p, const char *t, int ignore, int ret, int late,
                          int viol)
{
  for (uint32_t s = 1; s < 100000; s++) {
    uint32_t h = dept_step_hash(t, s);
    if (dept_pick(h, p->ignore_every, DEPT_PICK_IGNORE) == ignore &&
        dept_pick(h, p->return_every, DEPT_PICK_RETURN) == ret &&
        dept_pick(h, p->late_every, DEPT_PICK_LATE) == late &&
        dept_pick(h, p->violation_every, DEPT_PICK_VIOLATION) == viol)
      return s;
  }
  ck_abort_msg("no such step");
  return 0;
}

START_TEST(test_plan_on_time)
{
  struct dept_policy p;
  dept_policy_defaults(&p);
  const char *t = "12345-20261001-000001";
  struct dept_step s = sample_step(t, find_step(&p, t, 0, 0, 0, 0));
  struct dept_plan a;
  dept_plan_step(&p, &s, &a);
  ck_assert_int_eq(a.kind, DEPT_PLAN_RESOLVE);
  ck_assert_int_eq(a.late, 0);
  ck_assert_int_eq(a.accept_at_us, s.issued_us + 60 * MIN_US);
  ck_assert_int_eq(a.second_at_us, s.issued_us + 1440 * MIN_US);
  ck_assert_int_eq(a.violation_confirmed, 0);
  ck_assert_str_eq(a.prohibition, "");
  char buf[40];
  svc_time_format(a.accept_at_us, SVC_DEFAULT_UTC_OFFSET, buf, sizeof buf);
  ck_assert_str_eq(buf, "2026-10-01T09:00:00+08:00");
  /* Deterministic: the same plan again. */
  struct dept_plan b;
  dept_plan_step(&p, &s, &b);
  ck_assert_mem_eq(&a, &b, sizeof a);
}
END_TEST

START_TEST(test_plan_late)
{
  struct dept_policy p;
  dept_policy_defaults(&p);
  const char *t = "12345-20261001-000002";
  struct dept_step s = sample_step(t, find_step(&p, t, 0, 0, 1, 0));
  struct dept_plan a;
  dept_plan_step(&p, &s, &a);
  ck_assert_int_eq(a.kind, DEPT_PLAN_RESOLVE);
  ck_assert_int_eq(a.late, 1);
  ck_assert_int_eq(a.accept_at_us, s.accept_by_us + HOUR_US);
  ck_assert_int_eq(a.second_at_us, s.resolve_by_us + 24 * HOUR_US);
  char buf[40];
  svc_time_format(a.second_at_us, SVC_DEFAULT_UTC_OFFSET, buf, sizeof buf);
  ck_assert_str_eq(buf, "2026-10-10T23:59:59+08:00");
  ck_assert(svc_deadline_passed(s.accept_by_us, a.accept_at_us));
  ck_assert(svc_deadline_passed(s.resolve_by_us, a.second_at_us));
  /* Without deadlines on the step, late counts from the on-time instants. */
  s.accept_by_us = s.resolve_by_us = 0;
  dept_plan_step(&p, &s, &a);
  ck_assert_int_eq(a.accept_at_us, s.issued_us + 120 * MIN_US);
  ck_assert_int_eq(a.second_at_us, s.issued_us + (1440 + 1440) * MIN_US);
}
END_TEST

START_TEST(test_plan_return_and_ignore)
{
  struct dept_policy p;
  char err[256];
  ck_assert_int_eq(parse(&p, "{\"ignore_every\": 5}", err, sizeof err), 0);
  const char *t = "12345-20261001-000003";
  struct dept_step s = sample_step(t, find_step(&p, t, 0, 1, 0, 1));
  struct dept_plan a;
  dept_plan_step(&p, &s, &a);
  ck_assert_int_eq(a.kind, DEPT_PLAN_RETURN);
  ck_assert_int_eq(a.accept_at_us, s.issued_us + 60 * MIN_US);
  ck_assert_int_eq(a.second_at_us, s.issued_us + 120 * MIN_US);
  ck_assert_int_eq(a.violation_confirmed, 0); /* a return resolves nothing */
  s = sample_step(t, find_step(&p, t, 1, 1, 1, 1));
  dept_plan_step(&p, &s, &a);
  ck_assert_int_eq(a.kind, DEPT_PLAN_IGNORE); /* ignoring comes first */
  /* A late return: after the resolve deadline. */
  s = sample_step(t, find_step(&p, t, 0, 1, 1, 0));
  dept_plan_step(&p, &s, &a);
  ck_assert_int_eq(a.kind, DEPT_PLAN_RETURN);
  ck_assert_int_eq(a.second_at_us, s.resolve_by_us + 24 * HOUR_US);
}
END_TEST

START_TEST(test_plan_violation)
{
  struct dept_policy p;
  dept_policy_defaults(&p);
  const char *t = "12345-20261001-000004";
  struct dept_step s = sample_step(t, find_step(&p, t, 0, 0, 0, 1));
  struct dept_plan a;
  dept_plan_step(&p, &s, &a);
  ck_assert_int_eq(a.violation_confirmed, 1);
  ck_assert_str_eq(a.prohibition, "P7");
  s.default_prohibition = ""; /* the category has no prohibition */
  dept_plan_step(&p, &s, &a);
  ck_assert_int_eq(a.violation_confirmed, 1);
  ck_assert_str_eq(a.prohibition, "");
  /* Not picked, but before the end of its chain: confirmed, no prohibition. */
  s = sample_step(t, find_step(&p, t, 0, 0, 0, 0));
  s.chain_pos = 1;
  s.chain_len = 2;
  dept_plan_step(&p, &s, &a);
  ck_assert_int_eq(a.violation_confirmed, 1);
  ck_assert_str_eq(a.prohibition, "");
  s.chain_pos = 2;
  dept_plan_step(&p, &s, &a);
  ck_assert_int_eq(a.violation_confirmed, 0);
}
END_TEST

START_TEST(test_plan_order)
{
  /* The second update never precedes the ACCEPT, whatever the deadlines. */
  struct dept_policy p;
  dept_policy_defaults(&p);
  p.late_every = 1;
  struct dept_step s = sample_step("12345-20261001-000005", 1);
  s.resolve_by_us = s.accept_by_us - HOUR_US * 30;
  struct dept_plan a;
  dept_plan_step(&p, &s, &a);
  ck_assert_int_gt(a.second_at_us, a.accept_at_us);
}
END_TEST

static Suite *policy_suite(void)
{
  Suite *s = suite_create("dept_policy");
  TCase *tc = tcase_create("policy");
  tcase_add_test(tc, test_defaults);
  tcase_add_test(tc, test_parse_with_comments);
  tcase_add_test(tc, test_parse_errors);
  tcase_add_test(tc, test_load_file);
  tcase_add_test(tc, test_fnv1a);
  tcase_add_test(tc, test_pick_rates);
  tcase_add_test(tc, test_plan_on_time);
  tcase_add_test(tc, test_plan_late);
  tcase_add_test(tc, test_plan_return_and_ignore);
  tcase_add_test(tc, test_plan_violation);
  tcase_add_test(tc, test_plan_order);
  suite_add_tcase(s, tc);
  return s;
}

int main(void)
{
  SRunner *sr = srunner_create(policy_suite());
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
