/* The runner the Check unit tests share: the given tests in one case, with an
 * optional fixture run around each, and the exit status make test reads. */
#ifndef UNIT_RUN_H
#define UNIT_RUN_H

#include <check.h>
#include <stdlib.h>

/* Runs the n tests in one case (setup and teardown around each, when given;
 * timeout_s 0: Check's default); EXIT_SUCCESS when none failed. */
static inline int unit_run(const char *suite, const char *tcase, void (*setup)(void),
                           void (*teardown)(void), double timeout_s, const TTest *const *tests,
                           size_t n) {
  Suite *s = suite_create(suite);
  TCase *tc = tcase_create(tcase);
  SRunner *sr;
  int failed;

  if (setup || teardown) tcase_add_checked_fixture(tc, setup, teardown);
  if (timeout_s > 0) tcase_set_timeout(tc, timeout_s);
  for (size_t i = 0; i < n; i++) tcase_add_test(tc, tests[i]);
  suite_add_tcase(s, tc);
  sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#endif
