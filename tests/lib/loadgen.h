/* Helpers the C load generators (tests/integration/progs/ledgerload and
 * hotlineload) share: option parsing and latency percentiles. Clocks come
 * from svc_time.h (svc_wall_us, svc_mono_us). Header-only, static. */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "svc_time.h"

/* A decimal in [min, max] with nothing after it; 0 or -1. */
static inline int parse_long(const char *s, long min, long max, long *out)
{
  char *end;
  errno = 0;
  long v = strtol(s, &end, 10);
  if (errno || end == s || *end || v < min || v > max) return -1;
  *out = v;
  return 0;
}

static inline int cmp_i64(const void *a, const void *b)
{
  int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
  return x < y ? -1 : x > y;
}

/* The p-th percentile (nearest rank) of v[0..n-1], sorted ascending. */
static inline int64_t pct(const int64_t *v, size_t n, double p)
{
  if (!n) return 0;
  size_t k = (size_t)(p / 100.0 * (double)n + 0.999999);
  if (k < 1) k = 1;
  if (k > n) k = n;
  return v[k - 1];
}

#endif
