/* whistlectl replay REGISTRY FEED: every scenario feed (docs/formats.md) line through the
 * interface it belongs to, following the replay rule: a line goes only after
 * every earlier line is acknowledged and the daemons have settled (the
 * settled signal of proto/control.proto), except that runs of lines that
 * cannot depend on each other overlap: consecutive ticket lines (and the
 * callbacks right after them) pipelined over one connection to intake, which
 * applies one connection's requests in order (a ticket's outcome depends on
 * no other daemon while no feedback, triage, update or watermark comes
 * between); consecutive update and inspection lines pipelined to referral
 * and rating, one line per ticket or compound in flight (each is applied to
 * its own ticket or compound alone). See replay_run for the settles. */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
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

static const char *ticket_of(const struct rline *l)
{
  if (l->hl.ticket_no && l->hl.ticket_no[0]) return l->hl.ticket_no;
  json_t *t = l->o ? json_object_get(l->o, "ticket_no") : NULL;
  return json_is_string(t) ? json_string_value(t) : "";
}

/* Records a line's final outcome; ok 0: refused (REJECTED/REFUSED), with reason. */
static void outcome(struct replay *x, const struct rline *l, const char *status, int ok,
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
             replay_kind_names[l->kind], ticket_of(l), what);
}

/* ---- sending -------------------------------------------------------------------- */

/* A run of intake lines [i, j): pipelined (or one at a time when ordered)
 * over the connection kept for the replay. 0, or -1 when some got no answer. */
static int send_intake(struct replay *x, size_t i, size_t j)
{
  struct hotline_feed f;
  memset(&f, 0, sizeof f);
  f.n = j - i;
  f.v = calloc(f.n, sizeof *f.v);
  if (!f.v) return -1;
  for (size_t k = 0; k < f.n; k++) f.v[k] = x->v[i + k].hl;
  /* The barriers within the run: the same ticket again (a resend) waits for the first. */
  for (size_t a = 0; a < f.n; a++)
    for (size_t b = a + 1; b < f.n && b < a + 64; b++)
      if (f.v[b].ticket_no[0] && !f.v[b].prev_same && !strcmp(f.v[a].ticket_no, f.v[b].ticket_no))
        f.v[b].prev_same = a + 1;
  struct hotline_run run;
  x->ho.deadline_us = x->env.timeout_us + (int64_t)f.n * 2000;
  hotline_push_on(x->hc, &f, &x->ho, &run);
  /* The sender catches SIGINT and SIGTERM while it runs; elsewhere they end
   * whistlectl at once (a settle wait polls and has nothing to save). */
  signal(SIGINT, SIG_DFL);
  signal(SIGTERM, SIG_DFL);
  for (size_t k = 0; k < f.n; k++) {
    struct rline *l = &x->v[i + k];
    f.v[k].prev_same = 0;
    l->hl = f.v[k];
    if (l->hl.state == HL_DONE)
      outcome(x, l, hotline_status_names[l->hl.status], l->hl.status != HL_REJECTED, l->hl.reason);
  }
  free(f.v);
  if (run.answered < j - i) {
    size_t first = i;
    while (first < j && x->v[first].hl.state == HL_DONE) first++;
    fprintf(stderr, CTL_PROG ": intake (hotline %s) did not answer %zu of %zu lines within %.1f s "
                    "(first unanswered: line %zu)%s\n", x->ho.endpoint, (j - i) - run.answered, j - i,
            (double)x->ho.deadline_us / 1e6, x->v[first < j ? first : j - 1].lineno,
            run.interrupted ? "; interrupted" : "");
    return -1;
  }
  return 0;
}

static const char *unit_status(const Whistle__Unit__Reply *r, char *buf, size_t n)
{
  static const char *const st[] = { "APPLIED", "DUPLICATE", "REFUSED", "UNAVAILABLE" };
  static const char *const code[] = { "", "BAD_REQUEST", "UNKNOWN_STEP", "WRONG_UNIT",
                                      "WRONG_STATE", "FORBIDDEN" };
  snprintf(buf, n, "%s%s%s", r->status < 4 ? st[r->status] : "?", r->code ? "/" : "",
           r->code < 6 ? code[r->code] : "?");
  return buf;
}

static int unit_request(struct replay *x, const struct rline *l, Whistle__Unit__UnitMessage *m)
{
  Whistle__Unit__UnitMessage *r =
    (Whistle__Unit__UnitMessage *)ctl_call(&x->units, &m->base, x->env.timeout_us, 0);
  if (!r) {
    fprintf(stderr, CTL_PROG ": the replay stops at line %zu\n", l->lineno);
    return -1;
  }
  char st[64];
  outcome(x, l, unit_status(r->reply, st, sizeof st), r->reply->status != 2, r->reply->reason);
  whistle__unit__unit_message__free_unpacked(r, NULL);
  return 0;
}

/* The StepUpdate of an update line, packed for referral's unit interface. */
static uint8_t *pack_update(struct replay *x, const struct rline *l, size_t *len, uint64_t *id)
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
static uint8_t *pack_inspection(struct replay *x, const struct rline *l, size_t *len, uint64_t *id)
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

/* What an update or inspection line is about: lines with the same key stay
 * in feed order, each sent after the answer to the one before. An update is
 * about its ticket (referral applies it to that ticket alone); an inspection
 * about its compound. */
static void line_key(const struct rline *l, char *buf, size_t n)
{
  if (l->kind == K_INSPECTION) snprintf(buf, n, "c:%s", replay_str(l->o, "compound_code"));
  else snprintf(buf, n, "t:%s", replay_str(l->o, "ticket_no"));
}

/* A line of a run to referral and rating, in flight or answered. */
struct pline {
  struct ctl_conn *c;
  uint8_t *buf;
  size_t len;
  uint64_t id;
  int64_t resend;
  int state;                 /* 0 not sent, 1 in flight, 2 answered */
  char key[160];
  ProtobufCMessage *reply;
};

#define PIPE_WINDOW 256

/* A run [i, j) of update and inspection lines, pipelined over the two
 * connections (referral's unit interface, rating's): sent in feed order,
 * many in flight, matched by request_id, sent again when unanswered for a
 * second (and shortly after UNAVAILABLE) as ctl_call does; a line waits for
 * the answer to an earlier line with the same key (line_key). Each daemon
 * applies one connection's requests in the order they come, and an update
 * or inspection depends on nothing but its own ticket or compound and the
 * daemon's clock (no watermark within the run), so the outcomes are those
 * of the sequential replay. Outcomes are recorded in feed order. 0, or -1
 * when some line got no answer within the timeout. */
static int send_pipelined(struct replay *x, size_t i, size_t j)
{
  size_t n = j - i, next = 0, lowest = 0, inflight = 0, answered = 0;
  struct pline *p = calloc(n, sizeof *p);
  if (!p) return -1;
  for (size_t k = 0; k < n; k++) {
    const struct rline *l = &x->v[i + k];
    p[k].c = l->kind == K_INSPECTION ? &x->rating : &x->units;
    line_key(l, p[k].key, sizeof p[k].key);
  }
  int rc = 0;
  int64_t deadline = svc_mono_us() + x->env.timeout_us;
  unsigned unavailable = 0;
  while (answered < n) {
    /* Send what may go, in feed order. */
    while (next < n && inflight < PIPE_WINDOW) {
      int wait = 0;
      for (size_t k = lowest; k < next && !wait; k++)
        wait = p[k].state == 1 && !strcmp(p[k].key, p[next].key);
      if (wait) break;
      const struct rline *l = &x->v[i + next];
      p[next].buf = l->kind == K_INSPECTION ? pack_inspection(x, l, &p[next].len, &p[next].id)
                                            : pack_update(x, l, &p[next].len, &p[next].id);
      if (!p[next].buf) {
        fprintf(stderr, CTL_PROG ": out of memory\n");
        rc = -1;
        goto out;
      }
      zmq_send(p[next].c->sock, p[next].buf, p[next].len, ZMQ_DONTWAIT);
      p[next].resend = svc_mono_us() + SVC_US_PER_SEC;
      p[next].state = 1;
      inflight++;
      next++;
    }
    int64_t now = svc_mono_us(), until = deadline;
    for (size_t k = lowest; k < next; k++)
      if (p[k].state == 1 && p[k].resend < until) until = p[k].resend;
    zmq_pollitem_t it[2] = { { .socket = x->units.sock, .events = ZMQ_POLLIN },
                             { .socket = x->rating.sock, .events = ZMQ_POLLIN } };
    int prc = zmq_poll(it, 2, until > now ? (long)((until - now + 999) / 1000) : 0);
    if (prc < 0 && zmq_errno() == EINTR) {
      rc = -1;
      break;
    }
    for (int s = 0; s < 2 && prc > 0; s++) {
      if (!(it[s].revents & ZMQ_POLLIN)) continue;
      struct ctl_conn *c = s ? &x->rating : &x->units;
      const ProtobufCMessageDescriptor *d = s ? &whistle__rating__rating_message__descriptor
                                              : &whistle__unit__unit_message__descriptor;
      zmq_msg_t msg;
      zmq_msg_init(&msg);
      while (zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) >= 0) {
        if (zmq_msg_more(&msg)) continue; /* replies are one frame */
        uint64_t id;
        int unav;
        ProtobufCMessage *m = ctl_unpack_reply(d, zmq_msg_data(&msg), zmq_msg_size(&msg), &id, &unav);
        if (!m) continue;
        size_t k = lowest;
        while (k < next && !(p[k].c == c && p[k].id == id && p[k].state == 1)) k++;
        if (k == next) { /* late, or an answer to a resend already answered */
          protobuf_c_message_free_unpacked(m, NULL);
          continue;
        }
        if (unav) { /* UNAVAILABLE: send again shortly */
          unavailable++;
          p[k].resend = svc_mono_us() + 200000;
          protobuf_c_message_free_unpacked(m, NULL);
          continue;
        }
        p[k].reply = m;
        p[k].state = 2;
        free(p[k].buf);
        p[k].buf = NULL;
        inflight--;
        answered++;
        deadline = svc_mono_us() + x->env.timeout_us;
      }
      zmq_msg_close(&msg);
    }
    while (lowest < next && p[lowest].state == 2) lowest++;
    now = svc_mono_us();
    if (now >= deadline) {
      char name[512];
      size_t k = lowest;
      fprintf(stderr, CTL_PROG ": %s did not answer within %.1f s%s\n",
              ctl_conn_name(p[k].c, name, sizeof name), (double)x->env.timeout_us / 1e6,
              unavailable ? " (it answered UNAVAILABLE: cannot commit now)"
              : !x->env.server_key[p[k].c->d] ? " (not running, or with CURVE on: give its public key "
                                                 "and a client key, --server-key/--client-key)" : "");
      rc = -1;
      break;
    }
    for (size_t k = lowest; k < next; k++)
      if (p[k].state == 1 && p[k].resend <= now) {
        zmq_send(p[k].c->sock, p[k].buf, p[k].len, ZMQ_DONTWAIT);
        p[k].resend = now + SVC_US_PER_SEC;
      }
  }
out:
  /* The outcomes, in feed order, up to the first line without an answer. */
  for (size_t k = 0; k < n; k++) {
    const struct rline *l = &x->v[i + k];
    if (rc == 0 || p[k].state == 2) {
      if (l->kind == K_INSPECTION) {
        static const char *const st[] = { "APPLIED", "DUPLICATE", "REFUSED", "UNAVAILABLE" };
        const Whistle__Rating__RatingMessage *r = (const Whistle__Rating__RatingMessage *)p[k].reply;
        outcome(x, l, r->reply->status < 4 ? st[r->reply->status] : "?", r->reply->status != 2,
                r->reply->reason);
      } else {
        char st[64];
        const Whistle__Unit__UnitMessage *r = (const Whistle__Unit__UnitMessage *)p[k].reply;
        outcome(x, l, unit_status(r->reply, st, sizeof st), r->reply->status != 2, r->reply->reason);
      }
    } else if (p[k].state != 2 && rc) {
      fprintf(stderr, CTL_PROG ": the replay stops at line %zu\n", l->lineno);
      rc = -1;
      for (size_t q = k; q < n; q++) {
        if (p[q].reply) protobuf_c_message_free_unpacked(p[q].reply, NULL);
        free(p[q].buf);
      }
      break;
    }
    if (p[k].reply) protobuf_c_message_free_unpacked(p[k].reply, NULL);
    free(p[k].buf);
  }
  free(p);
  return rc;
}

/* What referral knows of a ticket: 1 with *state (malloc'd) and the step to
 * re-dispatch (the last RETURNED one; 0 without steps), 0 unknown to it,
 * -1 no answer or a refusal other than UNKNOWN_STEP. */
static int referral_ticket(struct replay *x, const char *ticket_no, char **state, uint32_t *step)
{
  Whistle__Unit__Query q = WHISTLE__UNIT__QUERY__INIT;
  q.what = WHISTLE__UNIT__QUERY__WHAT__TICKET;
  q.ticket_no = (char *)ticket_no;
  Whistle__Unit__UnitMessage m = WHISTLE__UNIT__UNIT_MESSAGE__INIT;
  m.body_case = WHISTLE__UNIT__UNIT_MESSAGE__BODY_QUERY;
  m.query = &q;
  Whistle__Unit__UnitMessage *r =
    (Whistle__Unit__UnitMessage *)ctl_call(&x->units, &m.base, x->env.timeout_us, 0);
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
    fprintf(stderr, CTL_PROG ": referral (units %s) refused Query TICKET %s: %s\n", x->units.endpoint,
            ticket_no, r->reply->reason);
  }
  whistle__unit__unit_message__free_unpacked(r, NULL);
  return rc;
}

/* triage: intake's TriageComplete for a ticket waiting in triage (or a line
 * without a unit); else referral's Redispatch of the ticket's returned step. */
static int send_triage(struct replay *x, size_t i)
{
  struct rline *l = &x->v[i];
  const char *unit = replay_str(l->o, "unit");
  if (!unit[0]) return send_intake(x, i, i + 1);
  char *state = NULL;
  uint32_t step = 0;
  int known = referral_ticket(x, l->hl.ticket_no, &state, &step);
  if (known < 0) {
    fprintf(stderr, CTL_PROG ": the replay stops at line %zu\n", l->lineno);
    return -1;
  }
  int to_intake = !known || (state && !strcmp(state, "TRIAGE"));
  free(state);
  if (to_intake) return send_intake(x, i, i + 1);
  Whistle__Unit__Redispatch rd = WHISTLE__UNIT__REDISPATCH__INIT;
  rd.ticket_no = l->hl.ticket_no;
  rd.step = step;
  rd.unit = (char *)unit;
  rd.at_us = l->at_us;
  rd.note = (char *)replay_str(l->o, "note");
  Whistle__Unit__UnitMessage m = WHISTLE__UNIT__UNIT_MESSAGE__INIT;
  m.body_case = WHISTLE__UNIT__UNIT_MESSAGE__BODY_REDISPATCH;
  m.redispatch = &rd;
  return unit_request(x, l, &m);
}

/* Whether a line in [i, j) is about line k's ticket. */
static int ticket_in(const struct replay *x, size_t i, size_t j, size_t k)
{
  const char *t = ticket_of(&x->v[k]);
  for (size_t q = i; q < j; q++)
    if (!strcmp(ticket_of(&x->v[q]), t)) return 1;
  return 0;
}

static void show_progress(struct replay *x, size_t pos, int last)
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

static int replay_run(struct replay *x)
{
  int64_t settle = x->env.settle_us;
  if (ctl_settle_wait(&x->settle, svc_mono_us() + settle)) return -1;
  x->t0 = svc_mono_us();
  int intake_sent = 0, closure_pending = 0;
  for (size_t i = 0; i < x->n;) {
    struct rline *l = &x->v[i];
    size_t j = i + 1;
    int rc;
    size_t refused_before = x->refused;
    /* Callbacks since the last settle that read intake back: before a line
     * to intake other than a callback, intake knows every closure. */
    if (closure_pending && l->kind != K_FEEDBACK && l->kind != K_UPDATE && l->kind != K_INSPECTION) {
      x->settle.mask = (1u << D_INTAKE) | (1u << D_REFERRAL);
      x->settle.back = 1;
      if (ctl_settle_wait(&x->settle, svc_mono_us() + settle)) {
        fprintf(stderr, CTL_PROG ": the replay stops before line %zu\n", l->lineno);
        return -1;
      }
      closure_pending = 0;
    }
    switch (l->kind) {
    case K_TICKET: case K_WATERMARK:
      while (!x->sequential && j < x->n && (x->v[j].kind == K_TICKET || x->v[j].kind == K_WATERMARK)) j++;
      /* Callbacks right after them go in the same run, in order: intake
       * records a callback on its own ticket whatever came before, and the
       * ticket lines before a callback do not depend on it. */
      while (!x->sequential && j < x->n && x->v[j].kind == K_FEEDBACK && !ticket_in(x, i, j, j)) j++;
      rc = send_intake(x, i, j);
      break;
    case K_FEEDBACK:
      /* A run of callbacks about distinct tickets: intake records each on its
       * own ticket, and referral acts on each ticket alone (a callback about
       * a ticket an earlier one closed waits for the settle after the run). */
      while (!x->sequential && j < x->n && x->v[j].kind == K_FEEDBACK && !ticket_in(x, i, j, j)) j++;
      rc = send_intake(x, i, j);
      break;
    case K_EXEMPT: rc = send_intake(x, i, j); break;
    case K_TRIAGE: rc = send_triage(x, i); break;
    default: /* update, inspection */
      while (!x->sequential && j < x->n && (x->v[j].kind == K_UPDATE || x->v[j].kind == K_INSPECTION)) j++;
      rc = send_pipelined(x, i, j);
      break;
    }
    if (rc) return -1;
    if (x->strict && x->refused > refused_before) {
      show_progress(x, j, 1);
      fprintf(stderr, CTL_PROG ": %s (--strict: the replay stops)\n", x->first[refused_before < MAX_FIRST ? refused_before : MAX_FIRST - 1]);
      return -1;
    }
    /* Before the next line: everything these lines caused is visible. After
     * a watermark (time-driven work everywhere) and in --sequential or
     * --settle-all mode, all four daemons settle; after other lines the
     * steps they caused must be visible: intake and referral settle (rating
     * and escalation only consume, and catch up before the next watermark
     * and at the end). After a feedback (a callback can close the ticket
     * through referral and back to intake, which decides whether a later
     * ticket is a repeat) intake must also have read referral's stream up
     * to its head (settle.back), as after a watermark. */
    int full = x->sequential || x->settle_all || j == x->n, closing = 0;
    for (size_t k = i; k < j; k++) {
      full |= x->v[k].kind == K_WATERMARK;
      closing |= x->v[k].kind == K_FEEDBACK;
    }
    /* Lines to referral (update, re-dispatch) and rating (inspection) cause
     * their steps in the same commit as their answer: nothing to wait for
     * unless intake lines were sent since the last wait. */
    for (size_t k = i; k < j; k++)
      if (x->v[k].kind != K_UPDATE && x->v[k].kind != K_INSPECTION &&
          !(x->v[k].kind == K_TRIAGE && x->v[k].hl.state == HL_WAITING))
        intake_sent = 1;
    x->settle.mask = full ? 0 : (1u << D_INTAKE) | (1u << D_REFERRAL);
    /* After callbacks, intake reading referral's closures back matters only
     * to the next line to intake other than a callback: waited for now when
     * that line comes next, else before it (closure_pending). */
    int next_reads = j < x->n && x->v[j].kind != K_FEEDBACK && x->v[j].kind != K_UPDATE &&
                     x->v[j].kind != K_INSPECTION;
    x->settle.back = full || (closing && next_reads) || (closure_pending && next_reads);
    if (closing && !x->settle.back) closure_pending = 1;
    if (!full && !intake_sent) {
      show_progress(x, j, 0);
      i = j;
      continue;
    }
    intake_sent = 0;
    if (ctl_settle_wait(&x->settle, svc_mono_us() + settle)) {
      show_progress(x, j, 1);
      fprintf(stderr, CTL_PROG ": the replay stops after line %zu\n", x->v[j - 1].lineno);
      return -1;
    }
    if (x->settle.back) closure_pending = 0;
    show_progress(x, j, 0);
    i = j;
  }
  show_progress(x, x->n, 1);
  return 0;
}

static void print_summary(struct replay *x, int64_t elapsed_us, int ok)
{
  size_t per[K_N] = { 0 };
  for (size_t i = 0; i < x->n; i++) per[x->v[i].kind]++;
  printf("whistlectl replay: %s, %zu lines (%zu blank), %s\n", x->feed, x->n, x->lines_read - x->n,
         x->sequential ? "sequential (settled before each line)"
         : x->settle_all ? "pipelined runs, all settled after each" : "pipelined runs");
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
    "The replay rule: a line is sent only after every earlier line is acknowledged and the\n"
    "daemons have settled (proto/control.proto's settled signal, polled on the four control\n"
    "endpoints), so every step, overdue, close and notice the earlier lines caused is\n"
    "visible. What cannot depend on each other overlaps: consecutive ticket and watermark\n"
    "lines, and callbacks right after them, go pipelined over one connection to intake,\n"
    "which applies them in order (callbacks about distinct tickets; a ticket after a\n"
    "callback waits, as it may be a repeat of a ticket the callback closed); consecutive\n"
    "update and inspection lines go pipelined to referral and rating, one line per ticket\n"
    "(inspection: per compound) in flight, a later line about it waiting for the earlier\n"
    "one's answer. After a watermark (and at the end) all four daemons settle; after other\n"
    "intake lines intake and referral settle (every step and clock tick the lines caused\n"
    "is in referral before an update comes; after a callback, intake also reads referral's\n"
    "closures back before its next line that is not a callback); rating and escalation\n"
    "only consume, so they catch up by the next watermark. Lines to referral and rating\n"
    "cause their steps in the commit their answer acknowledges. --sequential is the strict\n"
    "baseline; both give the same exports.\n"
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
    "  --settle-all     pipelined runs, but all four daemons settle after every run or line\n"
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
    { "settle-all", no_argument, NULL, 'A' },
    { "progress", no_argument, NULL, 'p' },   { "quiet", no_argument, NULL, 'q' },
    { "help", no_argument, NULL, 'h' },       CTL_COMMON_OPTS, { NULL, 0, NULL, 0 }
  };
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 's': x.sequential = 1; break;
    case 'A': x.settle_all = 1; break;
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
  x.ho.endpoint = x.env.request[D_INTAKE];
  x.ho.server_key_file = x.env.server_key[D_INTAKE];
  x.ho.client_key_file = x.ho.server_key_file ? x.env.client_key : NULL;
  x.ho.inflight = x.sequential ? 1 : 1000;
  x.ho.ordered = x.sequential;
  x.ho.timeout_us = x.env.timeout_us < 3 * SVC_US_PER_SEC ? x.env.timeout_us : 3 * SVC_US_PER_SEC;
  x.ho.prog = CTL_PROG;
  if (!(x.hc = hotline_conn_open(&x.ho)) || ctl_conn_open(&x.units, &x.env, D_REFERRAL, 0) ||
      ctl_conn_open(&x.rating, &x.env, D_RATING, 0) || ctl_settle_open(&x.settle, &x.env))
    goto out;
  int64_t t0 = svc_mono_us();
  int ok = replay_run(&x) == 0;
  print_summary(&x, svc_mono_us() - (x.t0 ? x.t0 : t0), ok);
  rc = ok && !(x.strict && x.refused) ? CTL_OK : CTL_FAIL;
out:
  hotline_conn_close(&x.hc);
  ctl_conn_close(&x.units);
  ctl_conn_close(&x.rating);
  ctl_settle_close(&x.settle);
  for (size_t i = 0; i < x.n; i++) {
    hotline_line_free(&x.v[i].hl);
    if (x.v[i].o) json_decref(x.v[i].o);
  }
  free(x.v);
  for (size_t i = 0; i < x.ncodes; i++) free(x.codes[i]);
  free(x.codes);
  tallies_free(&x.outcomes);
  tallies_free(&x.refusals);
  return rc;
}
