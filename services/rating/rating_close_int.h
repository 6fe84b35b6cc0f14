/* What the period close (rating_close.c: loading, evidence, writing, the
 * job) and its decisions (rating_close_decide.c: rankings, unit scores,
 * stars, districts, credit from the loaded sums) share: the loaded rows and
 * the close job. Private to whistle-rating. */
#ifndef RATING_CLOSE_INT_H
#define RATING_CLOSE_INT_H

#include "rating.h"
#include "rating_events.pb-c.h"

/* A loaded row: tag and up to 16 values (copied). */
struct row { char tag[3]; int n; char *v[16]; };
struct rows { struct row *v; size_t n, cap; };

struct urow {
  const char *unit, *district;
  int street;
  int64_t pop, acc, res, cb, sat;
  int64_t resp, resol, satr, score; /* e4, e4, e4 or -1, e2 */
  int rank;
};

/* A loaded row's place in the lookup index: sorted by tag, first value, load order. */
struct rowkey { const char *tag, *code; size_t i; };

struct evload;
struct rating_closejob {
  struct rating_ctx *x;
  int wm_only;
  int64_t t0_us;               /* monotonic: when the close was submitted */
  int32_t m, quarter, mq0, year, half, mh0;
  int64_t end_us, wm;
  int stage;
  struct rows r;
  struct rowkey *ix;           /* the rows of r, sorted for find() */
  struct rating_rank_row *rank; size_t n_rank;
  struct urow *u; size_t n_u;
  struct rating_decision *dec; size_t n_dec, cap_dec;
  struct evload *evloads;      /* the evidence loads' callback records */
  int oom;
  /* Results for the event. */
  Whistle__Rating__Stars **stars; size_t n_stars;
  Whistle__Rating__Credit **credit; size_t n_credit;
  /* Held decisions (R-P3) the close or watermark publishes first. */
  struct rating_decision *early; size_t n_early, cap_early;
  int64_t until_us;            /* held decisions up to this event time go out */
  int32_t db_closed;           /* the clock as committed, read under its lock */
  int64_t db_out;
  int stale;                   /* an earlier process did this close already */
  char **strs; size_t n_strs, cap_strs; /* strings the held decisions point to */
};

/* A fresh zeroed decision at the end of *v (n, cap grow); NULL out of memory (j->oom set). */
struct rating_decision *rating_close_slot(struct rating_closejob *j, struct rating_decision **v,
                                          size_t *n, size_t *cap);
/* Stage 1's decisions from the loaded sums, into j->dec (the loaded rows
 * indexed first): the month's ranking (R-C2..R-C4), unit scores (R-U2,
 * R-U3), at a quarter's end the units and stars (R-U3, R-U4, R-S1..R-S3), at
 * a half-year's end the districts (R-U5), and credit (R-K1, R-K2). */
void rating_close_decide(struct rating_closejob *j);

#endif
