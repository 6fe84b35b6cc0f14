/* The pure referral rules (docs/rules.md §3): routing with R-R1, issuing steps with
 * their two clocks (R-R4, R-T5), the step state machine for unit updates
 * (R-R2, R-R3), re-dispatch, callbacks with closing and redo (R-R2, R-R6),
 * repeat notes (R-I5) and the clock tick (warnings, exactly-once overdue,
 * closing without callback). No I/O: time and registry are arguments. */
#include "referral.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const STEP_STATES[] = { "ISSUED", "ACCEPTED", "RETURNED", "RESOLVED",
                                           "REOPENED" };
static const char *const TICKET_STATES[] = { "TRIAGE", "RECORDED", "REPEAT", "OPEN",
                                             "RETURNED", "RESOLVED", "CLOSED" };
static const char *const ISSUE_REASONS[] = { "ROUTE", "REDISPATCH", "REDO" };
#define N_OF(a) (sizeof a / sizeof a[0])

static int parse_name(const char *const *names, size_t n, const char *s)
{
  for (size_t i = 0; s && i < n; i++)
    if (strcmp(names[i], s) == 0) return (int)i;
  return -1;
}

const char *referral_step_state_name(enum referral_step_state s)
{
  return (size_t)s < N_OF(STEP_STATES) ? STEP_STATES[s] : "?";
}

const char *referral_ticket_state_name(enum referral_ticket_state s)
{
  return (size_t)s < N_OF(TICKET_STATES) ? TICKET_STATES[s] : "?";
}

const char *referral_issue_reason_name(enum referral_issue_reason r)
{
  return (size_t)r < N_OF(ISSUE_REASONS) ? ISSUE_REASONS[r] : "?";
}

int referral_step_state_parse(const char *s, enum referral_step_state *out)
{
  int i = parse_name(STEP_STATES, N_OF(STEP_STATES), s);
  if (i < 0) return -1;
  *out = (enum referral_step_state)i;
  return 0;
}

int referral_ticket_state_parse(const char *s, enum referral_ticket_state *out)
{
  int i = parse_name(TICKET_STATES, N_OF(TICKET_STATES), s);
  if (i < 0) return -1;
  *out = (enum referral_ticket_state)i;
  return 0;
}

int referral_issue_reason_parse(const char *s, enum referral_issue_reason *out)
{
  int i = parse_name(ISSUE_REASONS, N_OF(ISSUE_REASONS), s);
  if (i < 0) return -1;
  *out = (enum referral_issue_reason)i;
  return 0;
}

static void fx_add(struct referral_fxs *fx, enum referral_fx_kind k, uint32_t step, int64_t at,
                   int late, const char *text)
{
  if (!fx || fx->n >= REFERRAL_FX_MAX) return;
  fx->v[fx->n++] = (struct referral_fx){ .kind = k, .step = step, .at_us = at, .late = late,
                                         .text = text };
}

static void copy(char *dst, size_t n, const char *src)
{
  snprintf(dst, n, "%s", src ? src : "");
}

/* ---- routing ------------------------------------------------------------ */

int referral_route_unit(const struct svc_route_step *rs, const char *category,
                        const char *management, const char *street, char *out, size_t n)
{
  int to_street = strcmp(rs->unit, "STREET") == 0;
  /* R-R1: without a property company, property-service matters are the street's. */
  if (strncmp(category, "PS_", 3) == 0 && strcmp(management, "PROFESSIONAL") != 0) to_street = 1;
  if (!to_street) {
    copy(out, n, rs->unit);
    return 0;
  }
  if (!street || !*street) return -1;
  copy(out, n, street);
  return 0;
}

struct referral_step *referral_last_step(struct referral_ticket *t)
{
  return t->n_steps ? &t->steps[t->n_steps - 1] : NULL;
}

struct referral_step *referral_find_step(struct referral_ticket *t, uint32_t no)
{
  for (size_t i = 0; i < t->n_steps; i++)
    if (t->steps[i].no == no) return &t->steps[i];
  return NULL;
}

struct referral_step *referral_issue(struct referral_ticket *t, const struct svc_registry *reg,
                                     const char *unit, uint32_t chain_pos, uint32_t chain_len,
                                     int accept_hours, int resolve_workdays,
                                     enum referral_issue_reason why, uint32_t replaces,
                                     int64_t at_us, struct referral_fxs *fx)
{
  if (t->n_steps == t->cap_steps) {
    size_t cap = t->cap_steps ? t->cap_steps * 2 : 4;
    struct referral_step *v = realloc(t->steps, cap * sizeof *v);
    if (!v) return NULL;
    t->steps = v;
    t->cap_steps = cap;
  }
  struct referral_step *s = &t->steps[t->n_steps];
  memset(s, 0, sizeof *s);
  s->no = (uint32_t)t->n_steps + 1;
  s->chain_pos = chain_pos;
  s->chain_len = chain_len;
  copy(s->unit, sizeof s->unit, unit);
  const struct svc_street *st = svc_registry_street(reg, unit);
  s->street_unit = st != NULL;
  copy(s->unit_district, sizeof s->unit_district, st ? st->district : "");
  s->reason = why;
  s->replaces = replaces;
  s->state = RS_ISSUED;
  s->accept_hours = accept_hours;
  s->resolve_workdays = resolve_workdays;
  s->issued_us = at_us;
  s->accept_by_us = svc_deadline_hours(at_us, accept_hours);
  s->resolve_by_us = svc_deadline_workdays(reg ? &reg->calendar : NULL, at_us, resolve_workdays,
                                           SVC_DEFAULT_UTC_OFFSET);
  t->n_steps++;
  t->state = RT_OPEN;
  t->dirty = 1;
  fx_add(fx, FX_STEP_ISSUED, s->no, at_us, 0, NULL);
  /* Repeat calls kept while no step was open (the texts stay in t->pending
   * until the next repeat is kept, long enough to be published). */
  for (size_t i = 0; i < t->n_pending; i++) fx_add(fx, FX_STEP_NOTE, s->no, at_us, 0, t->pending[i]);
  t->n_pending = 0;
  return s;
}

/* Waits for an operator's re-dispatch (no routing, no unit). */
static void wait_redispatch(struct referral_ticket *t, int64_t at_us, const char *why,
                            struct referral_fxs *fx)
{
  t->state = RT_RETURNED;
  t->wait_us = at_us;
  copy(t->wait_reason, sizeof t->wait_reason, why);
  t->dirty = 1;
  fx_add(fx, FX_TICKET_RETURNED, 0, at_us, 0, why);
}

/* Issues routing step number pos (1-based) of the ticket's category. */
static int issue_route(struct referral_ticket *t, const struct svc_registry *reg, size_t pos,
                       int64_t at_us, struct referral_fxs *fx)
{
  size_t n;
  char unit[REFERRAL_CODE_MAX];
  const struct svc_route_step *r = svc_registry_route(reg, t->category, &n);
  if (!r || pos > n) {
    wait_redispatch(t, at_us, "no routing for the category", fx);
    return 0;
  }
  if (referral_route_unit(&r[pos - 1], t->category, t->management, t->street, unit,
                          sizeof unit) != 0) {
    wait_redispatch(t, at_us, "the compound has no street", fx);
    return 0;
  }
  return referral_issue(t, reg, unit, (uint32_t)pos, (uint32_t)n, r[pos - 1].accept_hours,
                        r[pos - 1].resolve_workdays, RI_ROUTE, 0, at_us, fx) ? 0 : -1;
}

int referral_dispatch(struct referral_ticket *t, const struct svc_registry *reg, int64_t at_us,
                      struct referral_fxs *fx)
{
  return issue_route(t, reg, 1, at_us, fx);
}

/* ---- unit updates ------------------------------------------------------- */

static void verdict(struct referral_result *res, enum referral_verdict v, const char *why)
{
  res->verdict = v;
  snprintf(res->reason, sizeof res->reason, "%s", why);
}

/* "<what> <name>" into the result. */
static void verdict2(struct referral_result *res, enum referral_verdict v, const char *what,
                     const char *name)
{
  res->verdict = v;
  snprintf(res->reason, sizeof res->reason, "%s %s", what, name);
}

/* R-R2: the chain goes on after a step resolved with a confirmed violation;
 * otherwise (or after the last step) the referral is RESOLVED. */
static int after_resolve(struct referral_ticket *t, const struct svc_registry *reg,
                         const struct referral_step *s, int64_t at_us, struct referral_result *res,
                         struct referral_fxs *fx)
{
  size_t n = 0;
  svc_registry_route(reg, t->category, &n);
  if (s->violation && s->chain_pos < n) {
    uint32_t before = (uint32_t)t->n_steps;
    if (issue_route(t, reg, s->chain_pos + 1, at_us, fx) != 0) return -1;
    if (t->n_steps > before) res->next_step = (uint32_t)t->n_steps;
    return 0;
  }
  t->state = RT_RESOLVED;
  t->resolved_us = at_us;
  t->close_by_us = svc_deadline_workdays(&reg->calendar, at_us, REFERRAL_CLOSE_WORKDAYS,
                                         SVC_DEFAULT_UTC_OFFSET);
  fx_add(fx, FX_TICKET_RESOLVED, s->no, at_us, 0, NULL);
  return 0;
}

static void do_accept(struct referral_ticket *t, struct referral_step *s,
                      const struct referral_update *u, struct referral_result *res,
                      struct referral_fxs *fx)
{
  if (s->state != RS_ISSUED) {
    if (s->accepted_us == u->at_us) verdict(res, RV_DUPLICATE, "already accepted");
    else verdict2(res, RV_WRONG_STATE, "accept needs an ISSUED step; the step is", referral_step_state_name(s->state));
    return;
  }
  s->state = RS_ACCEPTED;
  s->accepted_us = u->at_us;
  /* Late: stamped after the clock, or arriving after its overdue was published
   * (the overdue stands: R-R4 exactly once). */
  res->late = svc_deadline_passed(s->accept_by_us, u->at_us) || (s->overdue & RC_ACCEPT_DUE);
  t->dirty = 1;
  fx_add(fx, FX_STEP_ACCEPTED, s->no, u->at_us, res->late, u->note);
}

static void do_progress(struct referral_ticket *t, struct referral_step *s,
                        const struct referral_update *u, struct referral_result *res,
                        struct referral_fxs *fx)
{
  if (s->state != RS_ACCEPTED) {
    if (s->state == RS_ISSUED) verdict(res, RV_WRONG_STATE, "accept the step first");
    else verdict2(res, RV_WRONG_STATE, "progress needs an ACCEPTED step; the step is",
                  referral_step_state_name(s->state));
    return;
  }
  for (size_t i = 0; i < s->n_progress; i++) {
    if (s->progress_us[i] == u->at_us) {
      verdict(res, RV_DUPLICATE, "progress note already recorded");
      return;
    }
  }
  if (s->n_progress == REFERRAL_PROGRESS_MAX) { /* keep the latest times */
    memmove(s->progress_us, s->progress_us + 1, (REFERRAL_PROGRESS_MAX - 1) * sizeof s->progress_us[0]);
    s->n_progress--;
  }
  s->progress_us[s->n_progress++] = u->at_us;
  t->dirty = 1;
  fx_add(fx, FX_STEP_PROGRESS, s->no, u->at_us, 0, u->note);
}

static void do_return(struct referral_ticket *t, struct referral_step *s,
                      const struct referral_update *u, struct referral_result *res,
                      struct referral_fxs *fx)
{
  if (s->state != RS_ISSUED && s->state != RS_ACCEPTED) {
    if (s->state == RS_RETURNED && s->returned_us == u->at_us)
      verdict(res, RV_DUPLICATE, "already returned");
    else verdict2(res, RV_WRONG_STATE, "only an open step can be returned; the step is",
                  referral_step_state_name(s->state));
    return;
  }
  res->late = svc_deadline_passed(s->state == RS_ISSUED ? s->accept_by_us : s->resolve_by_us,
                                  u->at_us) ||
              (s->overdue & (s->state == RS_ISSUED ? RC_ACCEPT_DUE : RC_RESOLVE_DUE));
  s->state = RS_RETURNED;
  s->returned_us = u->at_us;
  t->returns++;
  t->state = RT_RETURNED;
  t->wait_us = u->at_us;
  copy(t->wait_reason, sizeof t->wait_reason, u->reason);
  t->dirty = 1;
  fx_add(fx, FX_STEP_RETURNED, s->no, u->at_us, res->late, u->reason);
  fx_add(fx, FX_TICKET_RETURNED, s->no, u->at_us, 0, u->reason);
  if (t->returns == 2 && !t->consult) { /* R-R3: 会商 */
    t->consult = 1;
    fx_add(fx, FX_TICKET_CONSULT, s->no, u->at_us, 0, "returned twice");
  }
}

static int do_resolve(struct referral_ticket *t, const struct svc_registry *reg,
                      struct referral_step *s, const struct referral_update *u,
                      struct referral_result *res, struct referral_fxs *fx)
{
  if (s->state == RS_ACCEPTED && u->at_us < s->accepted_us) {
    verdict(res, RV_BAD, "at_us is before the step was accepted");
    return 0;
  }
  if (s->state != RS_ACCEPTED) {
    if (s->state == RS_RESOLVED && s->resolved_us == u->at_us)
      verdict(res, RV_DUPLICATE, "already resolved");
    else if (s->state == RS_ISSUED) verdict(res, RV_WRONG_STATE, "resolve before accept: accept the step first");
    else verdict2(res, RV_WRONG_STATE, "resolve needs an ACCEPTED step; the step is", referral_step_state_name(s->state));
    return 0;
  }
  s->state = RS_RESOLVED;
  s->resolved_us = u->at_us;
  s->violation = u->violation;
  copy(s->prohibition, sizeof s->prohibition, u->violation ? u->prohibition : "");
  res->late = svc_deadline_passed(s->resolve_by_us, u->at_us) || (s->overdue & RC_RESOLVE_DUE);
  t->dirty = 1;
  fx_add(fx, FX_STEP_RESOLVED, s->no, u->at_us, res->late, u->note);
  /* R-P2: a confirmed prohibition against a PROFESSIONAL project, once per ticket. */
  if (s->violation && s->prohibition[0] && strcmp(t->management, "PROFESSIONAL") == 0 &&
      !t->violation_done) {
    t->violation_done = 1;
    fx_add(fx, FX_VIOLATION, s->no, u->at_us, 0, s->prohibition);
  }
  return after_resolve(t, reg, s, u->at_us, res, fx);
}

void referral_update_apply(struct referral_ticket *t, const struct svc_registry *reg,
                           const struct referral_update *u, int64_t now_us,
                           struct referral_result *res, struct referral_fxs *fx)
{
  memset(res, 0, sizeof *res);
  res->step = u->step;
  struct referral_step *s = referral_find_step(t, u->step);
  char buf[REFERRAL_CODE_MAX + 8];
  if (!s) {
    snprintf(buf, sizeof buf, "%u", u->step);
    verdict2(res, RV_UNKNOWN, "the ticket has no step", buf);
    return;
  }
  if (strcmp(s->unit, u->unit) != 0) {
    verdict(res, RV_WRONG_UNIT, "the step is not yours");
    return;
  }
  if (t->state == RT_CLOSED) { /* only a resent update is answered kindly */
    if ((u->action == RA_ACCEPT && s->accepted_us == u->at_us) ||
        (u->action == RA_RESOLVE && s->resolved_us == u->at_us))
      verdict(res, RV_DUPLICATE, "already applied; the ticket is CLOSED");
    else verdict(res, RV_WRONG_STATE, "the ticket is CLOSED");
    return;
  }
  if (u->at_us < s->issued_us) {
    verdict(res, RV_BAD, "at_us is before the step was issued");
    return;
  }
  if (now_us && u->at_us > now_us + 86400 * SVC_US_PER_SEC) {
    verdict(res, RV_BAD, "at_us is more than one day in the future");
    return;
  }
  res->verdict = RV_APPLIED;
  switch (u->action) {
  case RA_ACCEPT: do_accept(t, s, u, res, fx); break;
  case RA_PROGRESS: do_progress(t, s, u, res, fx); break;
  case RA_RETURN: do_return(t, s, u, res, fx); break;
  case RA_RESOLVE:
    if (do_resolve(t, reg, s, u, res, fx) != 0) verdict(res, RV_BAD, "out of memory");
    break;
  default: verdict(res, RV_BAD, "unknown action");
  }
}

/* R-R3 for a ticket that waits without an open step to re-dispatch: one that
 * could not be routed at all, or whose chain's next step could not be (its
 * last step RESOLVED with a confirmed violation). The operator names the
 * unit; the clocks are the routing step's, or 24 hours and 5 working days
 * without routing. Step 0 in the request. */
static void redispatch_unrouted(struct referral_ticket *t, const struct svc_registry *reg,
                                const char *unit, int64_t at_us, struct referral_result *res,
                                struct referral_fxs *fx)
{
  size_t n = 0;
  const struct svc_route_step *r = svc_registry_route(reg, t->category, &n);
  struct referral_step *last = referral_last_step(t);
  if (last && last->reason == RI_REDISPATCH && last->replaces == 0 && last->issued_us == at_us &&
      strcmp(last->unit, unit) == 0) {
    verdict(res, RV_DUPLICATE, "already dispatched");
    res->next_step = last->no;
    return;
  }
  if (t->state != RT_RETURNED || (last && last->state != RS_RESOLVED)) {
    verdict(res, RV_WRONG_STATE, "step 0: the ticket does not wait for a first or next step");
    return;
  }
  if (at_us < (last ? last->resolved_us : t->received_us)) {
    verdict(res, RV_BAD, "at_us is before the ticket was received or its last step resolved");
    return;
  }
  size_t pos = last ? last->chain_pos + 1 : 1; /* 1-based position in the routing */
  int known = r && pos <= n;
  if (!referral_issue(t, reg, unit, (uint32_t)pos, known ? (uint32_t)n : (uint32_t)pos,
                      known ? r[pos - 1].accept_hours : 24, known ? r[pos - 1].resolve_workdays : 5,
                      RI_REDISPATCH, 0, at_us, fx)) {
    verdict(res, RV_BAD, "out of memory");
    return;
  }
  res->verdict = RV_APPLIED;
  res->next_step = (uint32_t)t->n_steps;
}

void referral_redispatch(struct referral_ticket *t, const struct svc_registry *reg, uint32_t step,
                         const char *unit, int64_t at_us, struct referral_result *res,
                         struct referral_fxs *fx)
{
  memset(res, 0, sizeof *res);
  res->step = step;
  if (!svc_registry_department(reg, unit) && !svc_registry_street(reg, unit)) {
    verdict2(res, RV_BAD, "unknown unit", unit);
    return;
  }
  if (step == 0) { /* a ticket that could not be routed at all: its first step */
    redispatch_unrouted(t, reg, unit, at_us, res, fx);
    return;
  }
  struct referral_step *s = referral_find_step(t, step);
  if (!s) {
    verdict(res, RV_UNKNOWN, "ticket has no such step");
    return;
  }
  struct referral_step *last = referral_last_step(t);
  if (s != last && last->reason == RI_REDISPATCH && last->replaces == step &&
      strcmp(last->unit, unit) == 0 && last->issued_us == at_us) {
    verdict(res, RV_DUPLICATE, "already re-dispatched");
    res->next_step = last->no;
    return;
  }
  if (s->state != RS_RETURNED || s != last || t->state != RT_RETURNED) {
    verdict(res, RV_WRONG_STATE, "only the ticket's returned step can be re-dispatched");
    return;
  }
  if (at_us < s->returned_us) {
    verdict(res, RV_BAD, "at_us is before the step was returned");
    return;
  }
  /* R-R3: the new step takes the returned one's place in the chain, same clocks. */
  struct referral_step *n = referral_issue(t, reg, unit, s->chain_pos, s->chain_len,
                                           s->accept_hours, s->resolve_workdays, RI_REDISPATCH,
                                           step, at_us, fx);
  if (!n) {
    verdict(res, RV_BAD, "out of memory");
    return;
  }
  res->verdict = RV_APPLIED;
  res->next_step = n->no;
}

/* ---- callbacks and repeats ---------------------------------------------- */

/* R-R2 in event time (R-T2): a RESOLVED ticket whose 3 working days without
 * callback passed before now_us was closed at close_by, whether or not the
 * clock has run since (only the closing: step clocks stay with the tick). */
static void close_if_due(struct referral_ticket *t, int64_t now_us, struct referral_fxs *fx)
{
  if (t->state != RT_RESOLVED || !t->close_by_us || !svc_deadline_passed(t->close_by_us, now_us))
    return;
  struct referral_step *last = referral_last_step(t);
  t->state = RT_CLOSED;
  t->closed_us = t->close_by_us;
  t->dirty = 1;
  fx_add(fx, FX_TICKET_CLOSED, last ? last->no : 0, t->close_by_us, 0, "NO_CALLBACK");
}

int referral_feedback(struct referral_ticket *t, const struct svc_registry *reg,
                      const char *satisfaction, int64_t at_us, struct referral_fxs *fx)
{
  int good = strcmp(satisfaction, "SATISFIED") == 0 ||
             strcmp(satisfaction, "BASICALLY_SATISFIED") == 0;
  if (!good && strcmp(satisfaction, "UNSATISFIED") != 0) return -1;
  /* R-R2 in event time (R-T2): 3 working days without a callback closed the
   * ticket at close_by, whether or not the clock has run since. */
  close_if_due(t, at_us, fx);
  struct referral_step *last = referral_last_step(t);
  size_t at = fx ? fx->n : 0;
  fx_add(fx, FX_FEEDBACK, last ? last->no : 0, at_us, 0, satisfaction);
  if (fx && at < fx->n) {
    fx->v[at].before = t->state;
    fx->v[at].effect = "NONE";
  }
  /* R-R2: no state change unless RESOLVED when the callback was made. */
  if (t->state != RT_RESOLVED || !last || at_us < t->resolved_us) return 0;
  if (good) {
    t->state = RT_CLOSED;
    t->closed_us = at_us;
    t->dirty = 1;
    fx_add(fx, FX_TICKET_CLOSED, last->no, at_us, 0, satisfaction);
    if (fx && at < fx->n) fx->v[at].effect = "CLOSED";
    return 0;
  }
  /* R-R6 redo: the last step REOPENED, a new step to the same unit. */
  last->state = RS_REOPENED;
  last->reopened_us = at_us;
  t->resolved_us = t->close_by_us = 0;
  fx_add(fx, FX_STEP_REOPENED, last->no, at_us, 0, satisfaction);
  uint32_t no = last->no, pos = last->chain_pos, len = last->chain_len;
  int hours = last->accept_hours;
  char unit[REFERRAL_CODE_MAX];
  copy(unit, sizeof unit, last->unit);
  if (!referral_issue(t, reg, unit, pos, len, hours, REFERRAL_REDO_WORKDAYS, RI_REDO, no, at_us, fx))
    return -1;
  fx_add(fx, FX_TICKET_REOPENED, (uint32_t)t->n_steps, at_us, 0, satisfaction);
  if (fx && at < fx->n) fx->v[at].effect = "REDO";
  return 0;
}

void referral_repeat_note(struct referral_ticket *earlier, const char *repeat_ticket_no,
                          int64_t at_us, struct referral_fxs *fx)
{
  close_if_due(earlier, at_us, fx); /* in event time: closed by then? (R-T2) */
  struct referral_step *s = referral_last_step(earlier);
  if (earlier->state == RT_RETURNED) { /* no step open: noted on the next one */
    if (earlier->n_pending == REFERRAL_PENDING_MAX) { /* keep the latest */
      memmove(earlier->pending[0], earlier->pending[1],
              (REFERRAL_PENDING_MAX - 1) * sizeof earlier->pending[0]);
      earlier->n_pending--;
    }
    copy(earlier->pending[earlier->n_pending++], sizeof earlier->pending[0], repeat_ticket_no);
    earlier->dirty = 1;
    return;
  }
  if (!s || earlier->state == RT_CLOSED || s->state == RS_RETURNED) return;
  fx_add(fx, FX_STEP_NOTE, s->no, at_us, 0, repeat_ticket_no);
}

/* ---- clocks ------------------------------------------------------------- */

struct clock { unsigned bit; enum referral_fx_kind fx; int64_t at, action; };

/* The four clocks of a step: instant and the time of the action that stops it. */
static void step_clocks(const struct referral_step *s, struct clock c[4])
{
  int64_t acc = s->accepted_us, res = s->resolved_us, ret = s->returned_us;
  if (ret && (!acc || ret < acc)) acc = ret;
  if (ret && (!res || ret < res)) res = ret;
  c[0] = (struct clock){ RC_ACCEPT_WARN, FX_WARN_ACCEPT,
                         svc_deadline_fraction(s->issued_us, s->accept_by_us, REFERRAL_WARN_PCT), acc };
  c[1] = (struct clock){ RC_ACCEPT_DUE, FX_ACCEPT_OVERDUE, s->accept_by_us, acc };
  c[2] = (struct clock){ RC_RESOLVE_WARN, FX_WARN_RESOLVE,
                         svc_deadline_fraction(s->issued_us, s->resolve_by_us, REFERRAL_WARN_PCT), res };
  c[3] = (struct clock){ RC_RESOLVE_DUE, FX_RESOLVE_OVERDUE, s->resolve_by_us, res };
}

/* An action within the instant's second is on time (R-R4). */
static int on_time(const struct clock *c)
{
  return c->action && !svc_deadline_passed(c->at, c->action);
}

int referral_tick(struct referral_ticket *t, int64_t now_us, struct referral_fxs *fx)
{
  for (size_t i = 0; i < t->n_steps; i++) {
    struct referral_step *s = &t->steps[i];
    struct clock c[4];
    if (s->settled == RC_ALL) continue;
    step_clocks(s, c);
    for (int k = 0; k < 4; k++) {
      if (s->settled & c[k].bit) continue;
      if (on_time(&c[k])) {
        s->settled |= c[k].bit;
        t->dirty = 1;
      } else if (svc_deadline_passed(c[k].at, now_us)) {
        if (fx->n == REFERRAL_FX_MAX) return 1;
        s->settled |= c[k].bit;
        if (c[k].fx == FX_ACCEPT_OVERDUE || c[k].fx == FX_RESOLVE_OVERDUE) s->overdue |= c[k].bit;
        t->dirty = 1;
        fx_add(fx, c[k].fx, s->no, c[k].at, 0, NULL);
      }
    }
  }
  if (t->state == RT_RESOLVED && t->close_by_us && svc_deadline_passed(t->close_by_us, now_us)) {
    if (fx->n == REFERRAL_FX_MAX) return 1;
    close_if_due(t, now_us, fx);
  }
  return 0;
}

int referral_step_overdue(const struct referral_step *s, int resolve)
{
  struct clock c[4];
  const struct clock *k;
  step_clocks(s, c);
  k = &c[resolve ? 3 : 1];
  if (s->overdue & k->bit) return 1; /* published (R-R4: it stands) */
  return k->action && svc_deadline_passed(k->at, k->action);
}

int64_t referral_next_due(const struct referral_ticket *t)
{
  int64_t due = 0;
  for (size_t i = 0; i < t->n_steps; i++) {
    const struct referral_step *s = &t->steps[i];
    struct clock c[4];
    if (s->settled == RC_ALL) continue;
    step_clocks(s, c);
    for (int k = 0; k < 4; k++) {
      if ((s->settled & c[k].bit) || on_time(&c[k])) continue;
      int64_t at = c[k].at + SVC_US_PER_SEC;
      if (!due || at < due) due = at;
    }
  }
  if (t->state == RT_RESOLVED && t->close_by_us) {
    int64_t at = t->close_by_us + SVC_US_PER_SEC;
    if (!due || at < due) due = at;
  }
  return due;
}

void referral_ticket_clear(struct referral_ticket *t)
{
  free(t->address);
  free(t->content);
  free(t->steps);
  t->address = t->content = NULL;
  t->steps = NULL;
  t->n_steps = t->cap_steps = 0;
}
