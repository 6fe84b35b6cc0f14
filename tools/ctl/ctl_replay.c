/* whistlectl replay REGISTRY FEED: every scenario feed (docs/formats.md) line through the
 * interface it belongs to, by the replay rule: the feed and registry read and
 * checked first (ctl_replay_feed.c), the lines sent by the schedule
 * (ctl_replay_sched.c: pipelined by what each line depends on, or strictly
 * one at a time with --sequential); here the requests each line makes, the
 * outcomes, the summary and the command line. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <zmq.h>

#include "ctl_replay.h"
#include "hotline.pb-c.h"
#include "hotline_client.h"
#include "rating.pb-c.h"
#include "svc_time.h"
#include "unit.pb-c.h"

static void tally_add(struct tallies *t, enum rkind k, const char *what)
{
  for (size_t i = 0; i < t->n; i++)
    if (t->v[i].k == k && strcmp(t->v[i].what, what) == 0) {
      t->v[i].n++;
      return;
    }
  if (t->n == t->cap) {
    size_t nc = t->cap ? t->cap * 2 : 32;
    struct tally *nv = realloc(t->v, nc * sizeof *nv);
    if (!nv) return;
    t->v = nv;
    t->cap = nc;
  }
  t->v[t->n++] = (struct tally){ k, strdup(what), 1 };
}

static void tallies_free(struct tallies *t)
{
  for (size_t i = 0; i < t->n; i++) free(t->v[i].what);
  free(t->v);
}

static int cmp_tally(const void *a, const void *b)
{
  const struct tally *x = a, *y = b;
  if (x->k != y->k) return x->k < y->k ? -1 : 1;
  return strcmp(x->what, y->what);
}

const char *replay_ticket_of(const struct rline *l)
{
  if (l->hl.ticket_no && l->hl.ticket_no[0]) return l->hl.ticket_no;
  json_t *t = l->o ? json_object_get(l->o, "ticket_no") : NULL;
  return json_is_string(t) ? json_string_value(t) : "";
}

/* Records a line's final outcome; ok 0: refused (REJECTED/REFUSED), with reason. */
void replay_outcome(struct replay *x, const struct rline *l, const char *status, int ok,
                    const char *reason)
{
  x->done++;
  tally_add(&x->outcomes, l->kind, status);
  if (ok) return;
  x->refused++;
  char what[300];
  snprintf(what, sizeof what, "%s: %.200s", status, reason && reason[0] ? reason : "(no reason)");
  tally_add(&x->refusals, l->kind, what);
  if (x->n_first < MAX_FIRST)
    snprintf(x->first[x->n_first++], sizeof x->first[0], "line %zu %s %s: %s", l->lineno,
             replay_kind_names[l->kind], replay_ticket_of(l), what);
}

/* ---- sending -------------------------------------------------------------------- */

const char *replay_unit_status(const Whistle__Unit__Reply *r, char *buf, size_t n)
{
  static const char *const st[] = { "APPLIED", "DUPLICATE", "REFUSED", "UNAVAILABLE" };
  static const char *const code[] = { "", "BAD_REQUEST", "UNKNOWN_STEP", "WRONG_UNIT",
                                      "WRONG_STATE", "FORBIDDEN" };
  snprintf(buf, n, "%s%s%s", r->status < 4 ? st[r->status] : "?", r->code ? "/" : "",
           r->code < 6 ? code[r->code] : "?");
  return buf;
}

/* The StepUpdate of an update line, packed for referral's unit interface. */
uint8_t *replay_pack_update(struct replay *x, const struct rline *l, size_t *len, uint64_t *id)
{
  json_t *o = l->o;
  Whistle__Unit__StepUpdate u = WHISTLE__UNIT__STEP_UPDATE__INIT;
  u.ticket_no = (char *)replay_str(o, "ticket_no");
  u.step = (uint32_t)json_integer_value(json_object_get(o, "step"));
  u.unit = (char *)replay_str(o, "unit");
  u.at_us = l->at_us;
  for (size_t i = 1; i < 5; i++)
    if (!strcmp(replay_str(o, "action"), REPLAY_ACTIONS[i])) u.action = (Whistle__Unit__StepUpdate__Action)i;
  u.reason = (char *)replay_str(o, "reason");
  u.note = (char *)replay_str(o, "note");
  u.violation_confirmed = json_is_true(json_object_get(o, "violation_confirmed"));
  u.prohibition = (char *)replay_str(o, "prohibition");
  json_t *ev = json_object_get(o, "evidence");
  char *evv[64];
  size_t i;
  json_t *e;
  json_array_foreach(ev, i, e) if (u.n_evidence < 64) evv[u.n_evidence++] = (char *)json_string_value(e);
  u.evidence = evv;
  Whistle__Unit__UnitMessage m = WHISTLE__UNIT__UNIT_MESSAGE__INIT;
  m.body_case = WHISTLE__UNIT__UNIT_MESSAGE__BODY_UPDATE;
  m.update = &u;
  return ctl_pack(&x->units, &m.base, len, id);
}

/* A stable inspection_id from the line: its own, or "<compound>-<local time>". */
static void inspection_id(const struct rline *l, char *buf, size_t n)
{
  const char *own = replay_str(l->o, "inspection_id");
  if (own[0]) {
    snprintf(buf, n, "%s", own);
    return;
  }
  int32_t day = svc_local_day(l->at_us, SVC_DEFAULT_UTC_OFFSET);
  struct svc_date d = svc_civil_from_days(day);
  int64_t in_day = l->at_us - svc_local_midnight(day, SVC_DEFAULT_UTC_OFFSET);
  int64_t secs = in_day / SVC_US_PER_SEC, us = in_day % SVC_US_PER_SEC;
  int k = snprintf(buf, n, "%.40s-%04d%02d%02dT%02d%02d%02d", replay_str(l->o, "compound_code"), d.y, d.m,
                   d.d, (int)(secs / 3600), (int)(secs / 60 % 60), (int)(secs % 60));
  if (us && k > 0 && (size_t)k < n) snprintf(buf + k, n - (size_t)k, "-%06d", (int)us);
}

/* The Inspection of an inspection line, packed for rating's request interface. */
uint8_t *replay_pack_inspection(struct replay *x, const struct rline *l, size_t *len, uint64_t *id)
{
  char iid[128];
  inspection_id(l, iid, sizeof iid);
  Whistle__Rating__Inspection in = WHISTLE__RATING__INSPECTION__INIT;
  in.inspection_id = iid;
  in.compound = (char *)replay_str(l->o, "compound_code");
  in.at_us = l->at_us;
  uint32_t *dims[7] = { &in.sanitation, &in.garbage, &in.greening, &in.order, &in.facilities,
                        &in.disclosure, &in.governance };
  for (size_t i = 0; i < 7; i++) *dims[i] = (uint32_t)json_integer_value(json_object_get(l->o, REPLAY_DIMS[i]));
  Whistle__Rating__RatingMessage m = WHISTLE__RATING__RATING_MESSAGE__INIT;
  m.body_case = WHISTLE__RATING__RATING_MESSAGE__BODY_INSPECTION;
  m.inspection = &in;
  return ctl_pack(&x->rating, &m.base, len, id);
}

/* What referral knows of a ticket: 1 with *state (malloc'd) and the step to
 * re-dispatch (the last RETURNED one; 0 without steps), 0 unknown to it,
 * -1 no answer or a refusal other than UNKNOWN_STEP. */
static int referral_ticket(struct replay *x, struct ctl_conn *c, const char *ticket_no, char **state,
                           uint32_t *step)
{
  Whistle__Unit__Query q = WHISTLE__UNIT__QUERY__INIT;
  q.what = WHISTLE__UNIT__QUERY__WHAT__TICKET;
  q.ticket_no = (char *)ticket_no;
  Whistle__Unit__UnitMessage m = WHISTLE__UNIT__UNIT_MESSAGE__INIT;
  m.body_case = WHISTLE__UNIT__UNIT_MESSAGE__BODY_QUERY;
  m.query = &q;
  Whistle__Unit__UnitMessage *r =
    (Whistle__Unit__UnitMessage *)ctl_call(c, &m.base, x->env.timeout_us, 0);
  if (!r) return -1;
  int rc = -1;
  *state = NULL;
  *step = 0;
  if (r->reply->status == WHISTLE__UNIT__REPLY__STATUS__REFUSED &&
      r->reply->code == WHISTLE__UNIT__REPLY__CODE__UNKNOWN_STEP) {
    rc = 0;
  } else if (r->reply->status == WHISTLE__UNIT__REPLY__STATUS__APPLIED && r->reply->n_lines) {
    json_t *o = json_loads(r->reply->lines[0], 0, NULL);
    json_t *steps = json_object_get(o, "steps"), *s;
    size_t i;
    *state = strdup(replay_str(o, "state"));
    uint32_t last = 0;
    json_array_foreach(steps, i, s) {
      uint32_t k = (uint32_t)json_integer_value(json_object_get(s, "step"));
      if (!strcmp(replay_str(s, "state"), "RETURNED")) *step = k;
      if (k > last) last = k;
    }
    if (!*step) *step = last; /* nothing returned: referral will say so */
    json_decref(o);
    rc = 1;
  } else {
    fprintf(stderr, CTL_PROG ": referral (units %s) refused Query TICKET %s: %s\n", c->endpoint,
            ticket_no, r->reply->reason);
  }
  whistle__unit__unit_message__free_unpacked(r, NULL);
  return rc;
}

/* triage: intake's TriageComplete for a ticket waiting in triage (or a line
 * without a unit); else referral's Redispatch of the ticket's returned step. */
int replay_triage_route(struct replay *x, size_t i, struct ctl_conn *c, uint32_t *step)
{
  struct rline *l = &x->v[i];
  *step = 0;
  if (!replay_str(l->o, "unit")[0]) return 0;
  char *state = NULL;
  int known = referral_ticket(x, c, l->hl.ticket_no, &state, step);
  if (known < 0) {
    fprintf(stderr, CTL_PROG ": the replay stops at line %zu\n", l->lineno);
    return -1;
  }
  int to_intake = !known || (state && !strcmp(state, "TRIAGE"));
  free(state);
  return to_intake ? 0 : 1;
}

/* The Redispatch of a triage line's ticket's step, in m (rd its body). */
static void redispatch_msg(const struct rline *l, uint32_t step, Whistle__Unit__Redispatch *rd,
                           Whistle__Unit__UnitMessage *m)
{
  whistle__unit__redispatch__init(rd);
  rd->ticket_no = l->hl.ticket_no;
  rd->step = step;
  rd->unit = (char *)replay_str(l->o, "unit");
  rd->at_us = l->at_us;
  rd->note = (char *)replay_str(l->o, "note");
  whistle__unit__unit_message__init(m);
  m->body_case = WHISTLE__UNIT__UNIT_MESSAGE__BODY_REDISPATCH;
  m->redispatch = rd;
}

uint8_t *replay_pack_redispatch(struct replay *x, const struct rline *l, uint32_t step, size_t *len,
                                uint64_t *id)
{
  Whistle__Unit__Redispatch rd;
  Whistle__Unit__UnitMessage m;
  redispatch_msg(l, step, &rd, &m);
  return ctl_pack(&x->units, &m.base, len, id);
}

void replay_progress(struct replay *x, size_t pos, int last)
{
  if (!x->progress) return;
  int64_t now = svc_mono_us();
  if (!last && now < x->next_tick) return;
  x->next_tick = now + 200000;
  double secs = (double)(now - x->t0) / 1e6;
  fprintf(stderr, "\r  line %zu (%zu/%zu, %zu%%)  %.0f lines/s  %zu refused  %.1f s ",
          pos < x->n ? x->v[pos].lineno : x->lines_read, x->done, x->n, x->n ? x->done * 100 / x->n : 100,
          secs > 0 ? (double)x->done / secs : 0.0, x->refused, secs);
  if (last) fputc('\n', stderr);
  fflush(stderr);
}

static void print_summary(struct replay *x, int64_t elapsed_us, int ok)
{
  size_t per[K_N] = { 0 };
  for (size_t i = 0; i < x->n; i++) per[x->v[i].kind]++;
  printf("whistlectl replay: %s, %zu lines (%zu blank), %s\n", x->feed, x->n, x->lines_read - x->n,
         x->sequential ? "sequential (settled before each line)" : "pipelined by what each line depends on");
  if (x->ncodes)
    printf("  registry %s: %zu compounds, %zu units, %zu categories; %zu codes in the feed not in it\n",
           x->registry, x->n_compounds, x->n_units, x->n_categories, x->unknown_codes);
  for (size_t i = 0; i < x->n_first_unknown; i++) printf("    %s\n", x->first_unknown[i]);
  if (x->outcomes.n) qsort(x->outcomes.v, x->outcomes.n, sizeof *x->outcomes.v, cmp_tally);
  printf("  %-11s %7s  outcomes\n", "type", "lines");
  for (int k = 0; k < K_N; k++) {
    if (!per[k]) continue;
    printf("  %-11s %7zu ", replay_kind_names[k], per[k]);
    size_t sent = 0;
    for (size_t t = 0; t < x->outcomes.n; t++)
      if (x->outcomes.v[t].k == (enum rkind)k) {
        printf(" %s %zu", x->outcomes.v[t].what, x->outcomes.v[t].n);
        sent += x->outcomes.v[t].n;
      }
    if (sent < per[k]) printf(" not sent %zu", per[k] - sent);
    printf("\n");
  }
  if (x->refused) {
    if (x->refusals.n) qsort(x->refusals.v, x->refusals.n, sizeof *x->refusals.v, cmp_tally);
    printf("  refused or rejected: %zu (by type and reason)\n", x->refused);
    for (size_t t = 0; t < x->refusals.n && t < 30; t++)
      printf("    %-10s %5zu  %s\n", replay_kind_names[x->refusals.v[t].k], x->refusals.v[t].n,
             x->refusals.v[t].what);
    if (x->refusals.n > 30) printf("    ... %zu more reasons\n", x->refusals.n - 30);
    printf("  the first:\n");
    for (size_t i = 0; i < x->n_first; i++) printf("    %s\n", x->first[i]);
  }
  double secs = (double)elapsed_us / 1e6;
  if (x->barriers)
    printf("  schedule: %llu watermarks as barriers, %.3f s there; %llu status probes between them\n",
           (unsigned long long)x->barriers, (double)x->barrier_us / 1e6, (unsigned long long)x->probes);
  printf("  settled %llu times (%llu status passes), %.3f s waiting in all\n",
         (unsigned long long)x->settle.waits, (unsigned long long)x->settle.passes,
         (double)x->settle.wait_us / 1e6);
  printf("  %s: %zu of %zu lines in %.3f s (%.0f lines/s)\n", ok ? "done" : "STOPPED", x->done, x->n,
         secs, secs > 0 ? (double)x->done / secs : 0.0);
}

static void usage(FILE *out)
{
  fprintf(out,
    "usage: whistlectl replay [options] REGISTRY FEED\n"
    "\n"
    "Replays a scenario feed (docs/formats.md: JSON Lines sorted by `at`; \"-\" reads stdin)\n"
    "through the daemons' own interfaces: ticket, feedback, watermark and exempt lines to\n"
    "intake's hotline interface; triage to intake (TriageComplete) when the ticket waits\n"
    "in triage or the line names no unit, else to referral (Redispatch of the ticket's\n"
    "returned step, step 0 for a ticket never routed, found with referral's Query TICKET);\n"
    "update to referral's unit interface as the unit the line names; inspection to rating\n"
    "(inspection_id: the line's own, else \"<compound>-<YYYYMMDDTHHMMSS>\" of `at`).\n"
    "\n"
    "The replay rule: a line is sent only once every earlier line is answered and what it\n"
    "caused is visible (every step, overdue, close and notice), which the daemons' settled\n"
    "signal (proto/control.proto, on the four control endpoints) tells. --sequential does\n"
    "exactly that: one line at a time, all four daemons settled before the next. By\n"
    "default lines overlap where their outcomes cannot depend on each other, with the same\n"
    "exports: between two watermarks (the daemons' clocks move only with them) a line\n"
    "waits only for the earlier lines about its own ticket, its caller's tickets (R-I5)\n"
    "or its compound, and for the earlier updates confirming a violation (R-P3), each far\n"
    "enough along: answered, and where it goes from intake to referral also applied by\n"
    "referral (and after a callback, referral's closures read back by intake). Lines\n"
    "that wait are passed by later ones; each daemon gets many requests in flight. A\n"
    "watermark waits for every line before it, and all four daemons settle after it.\n"
    "The replay ends once the daemons have settled after the last line.\n"
    "\n"
    "The whole feed is read first: a line that does not parse, has an unknown type or a\n"
    "field of the wrong type stops the replay with its line number before anything is\n"
    "sent. REGISTRY (the registry directory, or - to skip) is used to report codes the\n"
    "registry does not know. REJECTED and REFUSED answers do not stop the replay: they\n"
    "are counted by type and reason, and the first few are listed in the summary.\n"
    "\n"
    "Updates are sent as the unit the line names (StepUpdate.unit): referral must run\n"
    "without CURVE (development mode), or the client key given must be an identity\n"
    "listed in referral's WHISTLE_REFERRAL_ACT_AS (and WHISTLE_REFERRAL_OPERATORS for\n"
    "re-dispatches, WHISTLE_REFERRAL_OPS for its queries).\n"
    "\n"
    "options:\n"
    "  --sequential     one line at a time, settled before each (the baseline)\n"
    "  --strict         a REJECTED or REFUSED answer, or a code not in the registry, stops\n"
    "                   the replay (exit 1)\n"
    "  --progress       show progress on stderr even when it is not a terminal\n"
    "  --quiet          no progress\n"
    "  --help           this text\n");
  ctl_env_help(out);
  fprintf(out,
    "\nexit status: 0 replayed and settled; 1 a bad feed line, a daemon that did not answer\n"
    "or did not settle in time, or a refusal with --strict; 2 bad usage.\n");
}

int ctl_replay_main(int argc, char **argv)
{
  struct replay x;
  memset(&x, 0, sizeof x);
  ctl_env_init(&x.env);
  x.progress = isatty(2);
  static const struct option opts[] = {
    { "sequential", no_argument, NULL, 's' }, { "strict", no_argument, NULL, 'S' },
    { "progress", no_argument, NULL, 'p' },   { "quiet", no_argument, NULL, 'q' },
    { "help", no_argument, NULL, 'h' },       CTL_COMMON_OPTS, { NULL, 0, NULL, 0 }
  };
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 's': x.sequential = 1; break;
    case 'S': x.strict = 1; break;
    case 'p': x.progress = 1; break;
    case 'q': x.progress = 0; break;
    case 'h': usage(stdout); return CTL_OK;
    default: {
      int r = c == '?' ? -1 : ctl_env_option(&x.env, c, optarg);
      if (r) {
        if (r > 0 || c == '?') fprintf(stderr, CTL_PROG ": replay --help for the options\n");
        return CTL_USAGE;
      }
    }
    }
  }
  if (argc - optind != 2) {
    fprintf(stderr, CTL_PROG ": replay takes REGISTRY and FEED (replay --help)\n");
    return CTL_USAGE;
  }
  x.registry = argv[optind];
  x.feed = argv[optind + 1];
  int rc = CTL_FAIL;
  if (strcmp(x.registry, "-") && replay_load_registry(&x)) {
    fprintf(stderr, CTL_PROG ": the registry %s was refused; nothing was sent\n", x.registry);
    goto out;
  }
  if (replay_load_feed(&x)) goto out;
  if (x.strict && x.unknown_codes) {
    fprintf(stderr, CTL_PROG ": %s (--strict: nothing was sent)\n", x.first_unknown[0]);
    goto out;
  }
  if (ctl_conn_open(&x.units, &x.env, D_REFERRAL, 0) || ctl_conn_open(&x.rating, &x.env, D_RATING, 0) ||
      ctl_settle_open(&x.settle, &x.env))
    goto out;
  int64_t t0 = svc_mono_us();
  int ok = replay_schedule(&x) == 0;
  print_summary(&x, svc_mono_us() - (x.t0 ? x.t0 : t0), ok);
  rc = ok && !(x.strict && x.refused) ? CTL_OK : CTL_FAIL;
out:
  ctl_conn_close(&x.units);
  ctl_conn_close(&x.rating);
  ctl_settle_close(&x.settle);
  for (size_t i = 0; i < x.n; i++) {
    hotline_line_free(&x.v[i].hl);
    if (x.v[i].o) json_decref(x.v[i].o);
    free(x.v[i].caller);
  }
  free(x.v);
  for (size_t i = 0; i < x.ncodes; i++) free(x.codes[i]);
  free(x.codes);
  tallies_free(&x.outcomes);
  tallies_free(&x.refusals);
  return rc;
}
