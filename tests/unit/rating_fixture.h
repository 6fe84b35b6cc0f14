/* What the rating rules' unit tests share: the default rule table (rule set
 * v1) set up before each test, RFC 3339 literals and month indexes. */
#ifndef RATING_FIXTURE_H
#define RATING_FIXTURE_H

#include <check.h>

#include "rating.h"
#include "svc_time.h"
#include "unit_run.h"

#define OFF SVC_DEFAULT_UTC_OFFSET
#define SEC SVC_US_PER_SEC

static struct rating_table T;

static inline void setup(void) { rating_table_defaults(&T); }

/* Parses an RFC 3339 literal, failing the test if it does not parse. */
static inline int64_t at(const char *s) {
  int64_t us = 0;

  ck_assert_msg(svc_time_parse(s, (size_t)-1, &us) == 0, "bad time %s", s);
  return us;
}

static inline int32_t month(int y, int m) { return y * 12 + m - 1; }

#endif
