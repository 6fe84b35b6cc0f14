/* The one-shot commands of whistle-dept: accept, progress, return, resolve
 * (a StepUpdate) and redispatch (an operator's Redispatch), each sent once
 * (resent every second until its answer or --timeout-ms) and its Reply
 * printed as one JSON line; plus the ZeroMQ context and loop helpers the
 * network commands share. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dept.h"
#include "svc_time.h"

struct svc_zctx *dept_zctx_new(uv_loop_t *loop, const struct dept_args *a)
{
  struct svc_zctx_opts zo = { .curve = a->server_key_file != NULL,
                              .client_secret_file = a->client_key_file };
  struct svc_zctx *z = svc_zctx_new(loop, &zo);
  if (!z) fprintf(stderr, "whistle-dept: cannot set up ZeroMQ%s\n",
                  zo.curve ? " with CURVE (see the log line above for the key file)" : "");
  return z;
}

static void close_walk(uv_handle_t *h, void *arg)
{
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

void dept_loop_close(uv_loop_t *loop)
{
  uv_run(loop, UV_RUN_DEFAULT);
  uv_walk(loop, close_walk, NULL);
  uv_run(loop, UV_RUN_DEFAULT);
  uv_loop_close(loop);
}

struct oneshot {
  const struct dept_args *a;
  struct dept_units *u;
  int rc;
};

static void on_reply(void *arg, void *req_arg, const Whistle__Unit__Reply *r)
{
  struct oneshot *s = arg;
  (void)req_arg;
  char *line = dept_reply_line(r);
  if (line) fputs(line, stdout);
  fflush(stdout);
  free(line);
  s->rc = r && (r->status == WHISTLE__UNIT__REPLY__STATUS__APPLIED ||
                r->status == WHISTLE__UNIT__REPLY__STATUS__DUPLICATE) ? 0 : 1;
  if (!r) fprintf(stderr, "whistle-dept: no reply from %s in %lld ms (is whistle-referral "
                          "listening there?)\n", s->a->units, (long long)s->a->timeout_ms);
  else if (s->rc) fprintf(stderr, "whistle-dept: %s\n", r->reason && r->reason[0] ? r->reason
                                                                    : "refused");
  if (s->u) dept_units_destroy(&s->u); /* nothing else keeps the loop running */
}

static const Whistle__Unit__StepUpdate__Action ACTIONS[DEPT_NCMDS] = {
  [DEPT_ACCEPT] = WHISTLE__UNIT__STEP_UPDATE__ACTION__ACCEPT,
  [DEPT_PROGRESS] = WHISTLE__UNIT__STEP_UPDATE__ACTION__PROGRESS,
  [DEPT_RETURN] = WHISTLE__UNIT__STEP_UPDATE__ACTION__RETURN,
  [DEPT_RESOLVE] = WHISTLE__UNIT__STEP_UPDATE__ACTION__RESOLVE,
};

int dept_update_main(struct dept_args *a)
{
  Whistle__Unit__UnitMessage m = WHISTLE__UNIT__UNIT_MESSAGE__INIT;
  Whistle__Unit__StepUpdate up = WHISTLE__UNIT__STEP_UPDATE__INIT;
  Whistle__Unit__Redispatch rd = WHISTLE__UNIT__REDISPATCH__INIT;
  int64_t at = a->have_at ? a->at_us : svc_wall_us() / SVC_US_PER_SEC * SVC_US_PER_SEC;
  if (a->cmd == DEPT_REDISPATCH) {
    rd.ticket_no = (char *)a->ticket_no;
    rd.step = a->step;
    rd.unit = (char *)a->new_unit;
    rd.at_us = at;
    rd.note = (char *)(a->note ? a->note : "");
    m.body_case = WHISTLE__UNIT__UNIT_MESSAGE__BODY_REDISPATCH;
    m.redispatch = &rd;
  } else {
    up.ticket_no = (char *)a->ticket_no;
    up.step = a->step;
    up.unit = (char *)a->unit;
    up.at_us = at;
    up.action = ACTIONS[a->cmd];
    up.reason = (char *)(a->reason ? a->reason : "");
    up.evidence = (char **)a->evidence;
    up.n_evidence = a->n_evidence;
    up.note = (char *)(a->note ? a->note : "");
    up.violation_confirmed = a->violation;
    up.prohibition = (char *)(a->prohibition ? a->prohibition : "");
    m.body_case = WHISTLE__UNIT__UNIT_MESSAGE__BODY_UPDATE;
    m.update = &up;
  }
  uv_loop_t loop;
  uv_loop_init(&loop);
  struct oneshot s = { .a = a, .rc = 1 };
  struct svc_zctx *z = dept_zctx_new(&loop, a);
  struct dept_units_opts uo = { .endpoint = a->units, .server_key = z && a->server_key_file
                                                                      ? a->server_key : NULL,
                                .timeout_us = a->timeout_ms * 1000, .resend_us = SVC_US_PER_SEC };
  if (z) s.u = dept_units_new(&loop, z, &uo, on_reply, &s);
  if (s.u && dept_units_send(s.u, &m, NULL) != 0) {
    fprintf(stderr, "whistle-dept: cannot send the request\n");
    dept_units_destroy(&s.u);
  }
  uv_run(&loop, UV_RUN_DEFAULT);
  dept_loop_close(&loop);
  svc_zctx_destroy(&z);
  return s.rc;
}
