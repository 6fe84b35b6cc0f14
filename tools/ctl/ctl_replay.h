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
};

/* Outcomes counted by type and outcome, and refusals by type and reason. */
struct tally { enum rkind k; char *what; size_t n; };
struct tallies { struct tally *v; size_t n, cap; };

#define MAX_FIRST 10
struct replay {
  struct ctl_env env;
  const char *registry, *feed;
  int sequential, settle_all, strict, progress;
  struct rline *v; size_t n, lines_read;
  /* the registry's codes */
  char **codes; size_t ncodes, n_compounds, n_units, n_categories;
  size_t unknown_codes; char first_unknown[MAX_FIRST][200]; size_t n_first_unknown;
  /* connections */
  struct hotline_conn *hc;
  struct hotline_opts ho;
  struct ctl_conn units, rating;
  struct ctl_settle settle;
  /* results */
  struct tallies outcomes, refusals;
  size_t refused, done;
  char first[MAX_FIRST][400]; size_t n_first;
  int64_t t0, next_tick;
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

#endif
