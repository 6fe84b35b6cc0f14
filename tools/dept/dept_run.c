/* The long-running commands of whistle-dept: watch (the unit's stream as
 * JSON Lines) and run (a scripted department: every step.issued addressed to
 * the unit gets the updates its policy plans, ACCEPT then RESOLVE or RETURN,
 * stamped in event time; the step's line is written once they are answered,
 * so a restart from the position redoes only unfinished steps, which
 * referral answers DUPLICATE where they were applied before). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dept.h"
#include "referral_events.pb-c.h"
#include "svc_time.h"

struct counts { uint64_t seen, accepted, resolved, returned, late, planned_late, ignored,
                refused, unanswered; };

struct ctx {
  struct dept_args *a;
  struct dept_policy pol;
  struct svc_zctx *z;
  struct dept_watch *w;
  struct dept_units *u;
  uv_signal_t sigint, sigterm;
  int signals_open, stopping, rc;
  struct dept_watch_stats wst;
  struct counts n;
};

/* One step being handled: ACCEPT (stage 0), then RESOLVE or RETURN (stage 1). */
struct task {
  struct ctx *c;
  uint64_t seq;
  char *ticket_no, *prohibition;
  uint32_t step;
  struct dept_plan plan;
  int stage, late;
};

static void task_free(struct task *t)
{
  free(t->ticket_no);
  free(t->prohibition);
  free(t);
}

static int send_update(struct task *t)
{
  struct ctx *c = t->c;
  Whistle__Unit__StepUpdate up = WHISTLE__UNIT__STEP_UPDATE__INIT;
  up.ticket_no = t->ticket_no;
  up.step = t->step;
  up.unit = (char *)c->a->unit;
  if (t->stage == 0) {
    up.action = WHISTLE__UNIT__STEP_UPDATE__ACTION__ACCEPT;
    up.at_us = t->plan.accept_at_us;
  } else if (t->plan.kind == DEPT_PLAN_RETURN) {
    up.action = WHISTLE__UNIT__STEP_UPDATE__ACTION__RETURN;
    up.at_us = t->plan.second_at_us;
    up.reason = c->pol.return_reason;
  } else {
    up.action = WHISTLE__UNIT__STEP_UPDATE__ACTION__RESOLVE;
    up.at_us = t->plan.second_at_us;
    up.violation_confirmed = t->plan.violation_confirmed;
    up.prohibition = t->prohibition;
  }
  Whistle__Unit__UnitMessage m = WHISTLE__UNIT__UNIT_MESSAGE__INIT;
  m.body_case = WHISTLE__UNIT__UNIT_MESSAGE__BODY_UPDATE;
  m.update = &up;
  return dept_units_send(c->u, &m, t);
}

static const char *action_name(const struct task *t)
{
  return t->stage == 0 ? "ACCEPT" : t->plan.kind == DEPT_PLAN_RETURN ? "RETURN" : "RESOLVE";
}

/* The step is done (or given up): its stream line may be written. */
static void task_end(struct task *t)
{
  struct ctx *c = t->c;
  if (t->late) c->n.late++;
  dept_watch_release(c->w, t->seq);
  task_free(t);
}

static void on_reply(void *arg, void *req_arg, const Whistle__Unit__Reply *r)
{
  struct ctx *c = arg;
  struct task *t = req_arg;
  if (c->stopping) { /* shutting down: the step comes again after a restart */
    task_free(t);
    return;
  }
  if (!r || (r->status != WHISTLE__UNIT__REPLY__STATUS__APPLIED &&
             r->status != WHISTLE__UNIT__REPLY__STATUS__DUPLICATE)) {
    char *line = dept_reply_line(r);
    fprintf(stderr, "whistle-dept: %s %s step %u: %s", action_name(t), t->ticket_no,
            (unsigned)t->step, line ? line : "(no memory)\n");
    free(line);
    if (r) c->n.refused++;
    else c->n.unanswered++;
    task_end(t);
    return;
  }
  t->late |= r->late;
  if (t->stage == 0) {
    c->n.accepted++;
    t->stage = 1;
    if (send_update(t) == 0) return;
    fprintf(stderr, "whistle-dept: cannot send %s for %s step %u\n", action_name(t),
            t->ticket_no, (unsigned)t->step);
    c->n.unanswered++;
  } else if (t->plan.kind == DEPT_PLAN_RETURN) {
    c->n.returned++;
  } else {
    c->n.resolved++;
  }
  task_end(t);
}

static unsigned on_event(void *arg, uint64_t seq, const char *kind, const ProtobufCMessage *p)
{
  struct ctx *c = arg;
  if (!c->u || !p || strcmp(kind, "step.issued") != 0) return 0;
  const Whistle__Referral__StepIssued *s = (const Whistle__Referral__StepIssued *)p;
  if (strcmp(s->unit, c->a->unit) != 0) return 0;
  c->n.seen++;
  struct dept_step st = { s->ticket_no, s->step, s->chain_pos, s->chain_len, s->issued_us,
                          s->accept_by_us, s->resolve_by_us, s->default_prohibition };
  struct task *t = calloc(1, sizeof *t);
  if (!t) return 0;
  t->c = c;
  t->seq = seq;
  t->step = s->step;
  dept_plan_step(&c->pol, &st, &t->plan);
  if (t->plan.late) c->n.planned_late++;
  if (t->plan.kind == DEPT_PLAN_IGNORE) {
    c->n.ignored++;
    task_free(t);
    return 0;
  }
  t->ticket_no = strdup(s->ticket_no);
  t->prohibition = strdup(t->plan.prohibition);
  if (!t->ticket_no || !t->prohibition || send_update(t) != 0) {
    fprintf(stderr, "whistle-dept: cannot send ACCEPT for %s step %u\n", s->ticket_no,
            (unsigned)s->step);
    c->n.unanswered++;
    task_free(t);
    return 0;
  }
  return 1;
}

/* ---- life cycle ---------------------------------------------------------- */

static void on_done(void *arg, int rc)
{
  struct ctx *c = arg;
  c->rc = rc;
  c->stopping = 1;
  dept_watch_stats(c->w, &c->wst);
  if (c->signals_open) {
    uv_close((uv_handle_t *)&c->sigint, NULL);
    uv_close((uv_handle_t *)&c->sigterm, NULL);
    c->signals_open = 0;
  }
  dept_units_destroy(&c->u);
  dept_watch_destroy(&c->w);
}

static void on_signal(uv_signal_t *h, int sig)
{
  struct ctx *c = h->data;
  (void)sig;
  if (c->w) dept_watch_stop(c->w);
}

static void catch_signals(struct ctx *c, uv_loop_t *loop)
{
  uv_signal_init(loop, &c->sigint);
  uv_signal_init(loop, &c->sigterm);
  c->sigint.data = c->sigterm.data = c;
  uv_signal_start(&c->sigint, on_signal, SIGINT);
  uv_signal_start(&c->sigterm, on_signal, SIGTERM);
  c->signals_open = 1;
}

/* Sets up and runs watch (with_units 0) or run (1). */
static int run_loop(struct ctx *c, int with_units)
{
  struct dept_args *a = c->a;
  uv_loop_t loop;
  uv_loop_init(&loop);
  c->rc = 1;
  c->z = dept_zctx_new(&loop, a);
  const char *skey = a->server_key_file ? a->server_key : NULL;
  if (c->z && with_units) {
    struct dept_units_opts uo = { .endpoint = a->units, .server_key = skey,
                                  .timeout_us = a->timeout_ms * 1000,
                                  .resend_us = SVC_US_PER_SEC, .retry_unavailable = 1 };
    c->u = dept_units_new(&loop, c->z, &uo, on_reply, c);
  }
  if (c->z && (c->u || !with_units)) {
    struct dept_watch_opts wo = { .endpoint = a->stream, .unit = a->unit, .server_key = skey,
                                  .out_path = a->out, .position_path = a->position,
                                  .until_idle_ms = a->until_idle_ms, .max_events = a->max,
                                  .stamp = a->stamp };
    char err[512];
    c->w = dept_watch_new(&loop, c->z, &wo, with_units ? on_event : NULL, on_done, c, err,
                          sizeof err);
    if (!c->w) fprintf(stderr, "whistle-dept: %s\n", err);
  }
  if (c->w) {
    catch_signals(c, &loop);
    uv_run(&loop, UV_RUN_DEFAULT);
  } else {
    dept_units_destroy(&c->u);
  }
  dept_loop_close(&loop);
  svc_zctx_destroy(&c->z);
  return c->rc;
}

int dept_watch_main(struct dept_args *a)
{
  struct ctx c = { .a = a };
  int rc = run_loop(&c, 0);
  if (c.stopping)
    fprintf(stderr, "whistle-dept: watch %s: %llu events written, position %llu, %llu "
                    "re-subscribes\n", a->unit, (unsigned long long)c.wst.written,
            (unsigned long long)c.wst.position, (unsigned long long)c.wst.resubscribes);
  return rc;
}

int dept_run_main(struct dept_args *a)
{
  struct ctx c = { .a = a };
  char err[512];
  if (dept_policy_load(&c.pol, a->policy, err, sizeof err)) {
    fprintf(stderr, "whistle-dept: %s\n", err);
    return 2;
  }
  int rc = run_loop(&c, 1);
  if (c.stopping)
    fprintf(stderr, "whistle-dept: run %s: steps seen %llu, accepted %llu, resolved %llu, "
                    "returned %llu, late %llu (planned %llu), ignored %llu, refused replies "
                    "%llu, unanswered %llu; %llu events written, position %llu\n", a->unit,
            (unsigned long long)c.n.seen, (unsigned long long)c.n.accepted,
            (unsigned long long)c.n.resolved, (unsigned long long)c.n.returned,
            (unsigned long long)c.n.late, (unsigned long long)c.n.planned_late,
            (unsigned long long)c.n.ignored, (unsigned long long)c.n.refused,
            (unsigned long long)c.n.unanswered, (unsigned long long)c.wst.written,
            (unsigned long long)c.wst.position);
  return rc;
}
