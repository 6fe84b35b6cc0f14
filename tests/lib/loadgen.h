/* Helpers the C load generators (tests/integration/progs/ledgerload and
 * hotlineload) share: option parsing, latency percentiles and the paced,
 * windowed send loop. Clocks come from svc_time.h (svc_wall_us,
 * svc_mono_us). Header-only, static. */
#ifndef LOADGEN_H
#define LOADGEN_H

#include <errno.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

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

/* One load run: count requests, at most inflight unanswered, paced at rate
 * per second (0: as fast as possible), given up after timeout_s without any
 * progress. The generator's counters are read and updated through the
 * pointers; send(arg, i) returns 0 (sent), 1 (socket full: wait) or -1. */
struct loadgen_run {
  const char *name;                  /* for messages */
  void *sock;
  long count, inflight;
  double rate, timeout_s;
  long *sent, *replied, *err;
  int (*send)(void *arg, long i);
  void (*drain)(void *arg);          /* takes every reply that has arrived */
  void *arg;
};

/* Sends every request and waits for every reply (or the progress timeout,
 * which counts the rest as errors). 0, or -1 on a socket error. */
static inline int loadgen_run(const struct loadgen_run *r, int64_t t0)
{
  long next = 0;
  int64_t last_progress = t0;
  while (*r->replied < *r->sent || next < r->count) {
    int64_t now = svc_mono_us();
    long wait_ms = 100, before = *r->replied + *r->sent;
    int blocked = 0;
    while (next < r->count && *r->sent - *r->replied < r->inflight) {
      if (r->rate > 0) {
        int64_t due = t0 + (int64_t)((double)next * 1e6 / r->rate);
        if (due > now) {
          wait_ms = (long)((due - now + 999) / 1000);
          break;
        }
      }
      int rc = r->send(r->arg, next);
      if (rc < 0) {
        fprintf(stderr, "%s: send failed: %s\n", r->name, zmq_strerror(errno));
        return -1;
      }
      if (rc > 0) {
        blocked = 1;
        break;
      }
      next++;
    }
    zmq_pollitem_t pi = { .socket = r->sock, .events = ZMQ_POLLIN | (blocked ? ZMQ_POLLOUT : 0) };
    if (zmq_poll(&pi, 1, wait_ms) < 0 && errno != EINTR) return -1;
    r->drain(r->arg);
    now = svc_mono_us();
    if (*r->replied + *r->sent != before) last_progress = now;
    if ((double)(now - last_progress) > r->timeout_s * 1e6) {
      fprintf(stderr, "%s: no progress for %.0f s; %ld unanswered, %ld unsent\n", r->name,
              r->timeout_s, *r->sent - *r->replied, r->count - next);
      *r->err += *r->sent - *r->replied + (r->count - next);
      break;
    }
  }
  return 0;
}

#endif
