/* The private header of whistlectl replay: the feed's lines as read and
 * checked (ctl_replay_feed.c: the registry's codes, parsing and checking every
 * line before anything is sent) and the replay's state (ctl_replay.c: sending
 * by the replay rule, outcomes, the summary). */
#ifndef CTL_REPLAY_H
#define CTL_REPLAY_H

#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "ctl.h"
#include "hotline_client.h"

enum rkind { K_TICKET, K_FEEDBACK, K_WATERMARK, K_TRIAGE, K_EXEMPT, K_UPDATE, K_INSPECTION, K_N };
extern const char *const replay_kind_names[K_N];

struct rline {
  size_t lineno;
  enum rkind kind;
  int64_t at_us;
  struct hotline_line hl; /* ticket, feedback, watermark, exempt, triage (as TriageComplete) */
  json_t *o;              /* triage, update, inspection: the line as read */
  char *caller;           /* ticket: its caller's number, digits only (svc_phone_digits;
                             "" none): the schedule's key for repeats (R-I5) */
};

/* Outcomes counted by type and outcome, and refusals by type and reason. */
struct tally { enum rkind k; char *what; size_t n; };
struct tallies { struct tally *v; size_t n, cap; };

#define MAX_FIRST 10
struct replay {
  struct ctl_env env;
  const char *registry, *feed;
  int sequential, strict, progress;
  struct rline *v; size_t n, lines_read;
  /* the registry's codes */
  char **codes; size_t ncodes, n_compounds, n_units, n_categories;
  size_t unknown_codes; char first_unknown[MAX_FIRST][200]; size_t n_first_unknown;
  /* connections (intake's and the triage queries' are the schedule's) */
  struct ctl_conn units, rating;
  struct ctl_settle settle;
  /* results */
  struct tallies outcomes, refusals;
  size_t refused, done;
  char first[MAX_FIRST][400]; size_t n_first;
  int64_t t0, next_tick;
  /* the pipelined schedule (ctl_replay_sched.c) */
  uint64_t probes, barriers;
  int64_t barrier_us;            /* time spent at barriers (their settles included) */
};

/* The string field key of a line ("" when absent). */
const char *replay_str(json_t *o, const char *key);
/* StepUpdate actions by number (1..4), and the inspection dimensions in proto order. */
extern const char *const REPLAY_ACTIONS[5];
extern const char *const REPLAY_DIMS[7];
/* Reads the registry's codes (to report codes of the feed not in it). 0 or -1 (printed). */
int replay_load_registry(struct replay *x);
/* Reads and checks the whole feed into x->v; 0, or -1 naming the line (printed). */
int replay_load_feed(struct replay *x);

/* ctl_replay.c, for the schedule: */
/* Records line l's final outcome; ok 0: refused (REJECTED/REFUSED), with reason. */
void replay_outcome(struct replay *x, const struct rline *l, const char *status, int ok, const char *reason);
/* "APPLIED", "REFUSED/WRONG_STATE", ... of a unit interface reply. */
struct Whistle__Unit__Reply;
const char *replay_unit_status(const struct Whistle__Unit__Reply *r, char *buf, size_t n);
/* The request of an update (referral's units) or inspection (rating) line,
 * packed on its connection: a malloc'd buffer, or NULL (out of memory). */
uint8_t *replay_pack_update(struct replay *x, const struct rline *l, size_t *len, uint64_t *id);
uint8_t *replay_pack_inspection(struct replay *x, const struct rline *l, size_t *len, uint64_t *id);
/* Where triage line i goes: 0 intake (TriageComplete: the ticket waits in
 * triage, is unknown to referral, or the line names no unit), 1 referral
 * (Redispatch of *step, the ticket's returned step), asking referral's Query
 * TICKET on c; -1 no answer (printed). */
int replay_triage_route(struct replay *x, size_t i, struct ctl_conn *c, uint32_t *step);
uint8_t *replay_pack_redispatch(struct replay *x, const struct rline *l, uint32_t step, size_t *len,
                                uint64_t *id);
/* Progress on stderr (when x->progress) at line pos; last: the final one. */
void replay_progress(struct replay *x, size_t pos, int last);
/* The ticket_no a line is about ("" none). */
const char *replay_ticket_of(const struct rline *l);

/* ctl_replay_sched.c: the whole feed sent by the replay rule, pipelined (or
 * one line at a time with x->sequential), settled at the end. 0, or -1 after
 * printing why it stopped. */
int replay_schedule(struct replay *x);

#endif
