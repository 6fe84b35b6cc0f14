/* whistlectl replay's schedule: the whole feed sent by the replay rule
 * (docs/formats.md), either strictly one line at a time (--sequential: each
 * line answered and all four daemons settled before the next), or, by
 * default, pipelined by what each line depends on, with the same exports.
 *
 * In event clock mode the daemons' clocks move only with watermark lines
 * (intake's stream carries no other watermark; referral, rating and
 * escalation follow their inputs' watermarks). Between two watermarks a
 * line's outcome therefore depends only on what a daemon holds about its own
 * ticket, about its caller's other tickets (R-I5 repeats), about its compound
 * (inspections), and on the order of the violations referral confirms (R-P3
 * counts them in the order rating gets them).
 *
 * So the lines between two watermarks go over three connections (intake's
 * hotline interface: ticket, feedback, exempt; referral's unit interface:
 * update; rating's requests: inspection), many in flight, and a line goes
 * once each earlier line it depends on, the previous line with the same key
 * (its ticket, its ticket's caller, its compound; an update confirming a
 * violation also the previous such update), is far enough along:
 *   - answered, in general (a daemon's batch reads a ticket once, before
 *     applying its requests; intake's batch publishes tickets before
 *     callbacks, so two lines to intake in one batch may reach referral in
 *     the other order);
 *   - only sent before it, for lines of the same caller to the same daemon
 *     (a daemon applies one connection's requests in order, and only
 *     callbacks, below, tell intake anything about another ticket);
 *   - answered and applied by referral, for a line to intake before a line
 *     to referral (intake's stream head, read in a status probe after the
 *     answer, is within referral's position on that stream: the settled
 *     signal's fields, proto/control.proto);
 *   - answered, applied by referral, and referral's stream up to its head
 *     then applied by intake, for a callback or exemption before a ticket of
 *     the same caller (a closure decides whether the ticket is a repeat).
 * Lines that wait are passed by later ones. Status probes of intake and
 * referral (one at a time, only while a line waits for one) record when each
 * of these became true. A triage line waits like a line to referral, asks
 * referral where it goes (ctl_replay.c) and then goes there.
 *
 * A watermark is a barrier: sent once every earlier line is answered; all
 * four daemons settle after it (its time-driven work done everywhere), as at
 * the end. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>
#include <zmq.h>

#include "ctl_replay.h"
#include "hotline.pb-c.h"
#include "rating.pb-c.h"
#include "svc_time.h"
#include "unit.pb-c.h"

#define WINDOW 512                 /* lines in flight per connection */
#define RESEND_US SVC_US_PER_SEC   /* unanswered: sent again after */
#define RETRY_US 200000            /* answered UNAVAILABLE: sent again after */
#define PROBE_PAUSE_US 200         /* between two status probes */
#define PROBE_TIMEOUT_US 500000    /* a probe unanswered this long is dropped */
#define PROBES_KEPT 64
#define LOOKAHEAD 2048             /* lines looked at past the first unsent one */

enum { Q_INTAKE, Q_UNITS, Q_RATING, Q_N, Q_BARRIER = Q_N };
enum { KEY_TICKET, KEY_CALLER, KEY_COMPOUND, KEY_VIOLATION, KEY_N };
enum { S_WAITING, S_INFLIGHT, S_DONE };

/* A line's part in the schedule. */
struct sl {
  size_t pred[KEY_N];   /* 1 + the previous line with the same ticket, caller, compound,
                           and of the updates confirming a violation; 0 none */
  unsigned char q, state;
  int64_t ack_us, resend_us;
  uint64_t id;          /* the request_id on its connection */
  uint8_t *buf; size_t len; /* units, rating: the packed request */
  char status[48]; int ok; char *reason;
};

/* A status probe's reading of intake's stream head, and when referral was
 * seen to have applied it (with referral's own head at that moment). */
struct probe { int64_t t; uint64_t head; int covered; uint64_t back_head; };

struct sched {
  struct replay *x;
  struct sl *s;
  struct ctl_conn hot;          /* intake's hotline interface */
  struct ctl_conn query;        /* referral's unit interface for triage lines' Query TICKET */
  struct ctl_conn *conn[Q_N];
  size_t *ids[Q_N]; size_t idcap[Q_N]; /* units, rating: request_id -> line */
  /* Every line to intake answered before vis_ref is applied by referral;
   * before vis_back, referral's resulting closures are applied by intake. */
  int64_t vis_ref, vis_back;
  struct probe probes[PROBES_KEPT]; size_t nprobes;
  int probe_inflight; int64_t probe_t, probe_next;
  Whistle__Control__ControlMessage *got[2]; /* intake's, referral's reply */
  int64_t progress_us;          /* the last line sent or answered */
  int waits_vis;                /* a queue's first line waits on visibility */
};


/* The keys of line l: its ticket, its ticket's caller, its compound. */
static void line_keys(const struct rline *l, json_t *callers,
                      char keys[KEY_N][200])
{
  for (int k = 0; k < KEY_N; k++) keys[k][0] = 0;
  if (l->kind == K_INSPECTION) {
    snprintf(keys[KEY_COMPOUND], 200, "c:%.190s", replay_str(l->o, "compound_code"));
    return;
  }
  if (l->kind == K_WATERMARK) return;
  const char *t = replay_ticket_of(l);
  snprintf(keys[KEY_TICKET], 200, "t:%.190s", t);
  const char *caller = l->kind == K_TICKET ? l->caller : json_string_value(json_object_get(callers, t));
  if (caller && caller[0]) snprintf(keys[KEY_CALLER], 200, "p:%.190s", caller);
  if (l->kind == K_UPDATE && json_is_true(json_object_get(l->o, "violation_confirmed")))
    snprintf(keys[KEY_VIOLATION], 200, "v");
}

static int sched_build(struct sched *S)
{
  struct replay *x = S->x;
  json_t *last = json_object(), *callers = json_object();
  int rc = -1;
  if (!(S->s = calloc(x->n ? x->n : 1, sizeof *S->s)) || !last || !callers) goto out;
  for (size_t i = 0; i < x->n; i++) {
    const struct rline *l = &x->v[i];
    struct sl *L = &S->s[i];
    /* A triage line waits in referral's queue: where it goes is asked of
     * referral when it may go (then its queue is the one it went to). */
    L->q = l->kind == K_UPDATE || l->kind == K_TRIAGE ? Q_UNITS : l->kind == K_INSPECTION ? Q_RATING
         : l->kind == K_WATERMARK ? Q_BARRIER : Q_INTAKE;
    if (l->kind == K_TICKET && !json_object_get(callers, replay_ticket_of(l)))
      json_object_set_new_nocheck(callers, replay_ticket_of(l), json_string(l->caller));
    char keys[KEY_N][200];
    line_keys(l, callers, keys);
    for (int k = 0; k < KEY_N; k++) {
      if (!keys[k][0]) continue;
      json_t *p = json_object_get(last, keys[k]);
      if (p) L->pred[k] = (size_t)json_integer_value(p) + 1;
      json_object_set_new_nocheck(last, keys[k], json_integer((json_int_t)i)); /* cut UTF-8 is fine */
    }
  }
  rc = 0;
out:
  json_decref(last);
  json_decref(callers);
  return rc;
}

/* 1 line k may go now; 0 it waits for an answer or a send; 2 it waits for
 * a probe. Lines of one queue may pass each other when they share no key. */
static int ready(const struct sched *S, size_t k)
{
  const struct sl *L = &S->s[k];
  const struct rline *l = &S->x->v[k];
  for (int key = 0; key < KEY_N; key++) {
    if (!L->pred[key]) continue;
    const struct sl *P = &S->s[L->pred[key] - 1];
    const struct rline *pl = &S->x->v[L->pred[key] - 1];
    if (P->q == L->q && key == KEY_CALLER) {
      if (P->state == S_WAITING) return 0; /* the connection keeps the order */
      if (l->kind == K_TICKET && (pl->kind == K_FEEDBACK || pl->kind == K_EXEMPT || pl->kind == K_TRIAGE)) {
        if (P->state != S_DONE) return 0;
        if (P->ack_us >= S->vis_back) return 2;
      }
      continue;
    }
    if (P->state != S_DONE) return 0;
    if (P->q == Q_INTAKE && L->q != Q_INTAKE && P->ack_us >= S->vis_ref) return 2;
  }
  return 1;
}

static int id_map(struct sched *S, int q, uint64_t id, size_t k)
{
  if (id >= S->idcap[q]) {
    size_t nc = S->idcap[q] ? S->idcap[q] : 1024;
    while (nc <= id) nc *= 2;
    size_t *nv = realloc(S->ids[q], nc * sizeof *nv);
    if (!nv) return -1;
    for (size_t i = S->idcap[q]; i < nc; i++) nv[i] = SIZE_MAX;
    S->ids[q] = nv;
    S->idcap[q] = nc;
  }
  S->ids[q][id] = k;
  return 0;
}

static int send_line(struct sched *S, size_t k, int64_t now)
{
  struct sl *L = &S->s[k];
  struct rline *l = &S->x->v[k];
  uint32_t step = 0;
  int route = l->kind == K_TRIAGE ? replay_triage_route(S->x, k, &S->query, &step) : -2;
  if (route == -1) return -1;
  if (route == 0) L->q = Q_INTAKE;
  if (route == 1) {
    L->buf = replay_pack_redispatch(S->x, l, step, &L->len, &L->id);
  } else if (L->q == Q_INTAKE) {
    L->buf = l->hl.msg;
    L->len = l->hl.len;
    L->id = l->lineno;
  } else {
    L->buf = L->q == Q_UNITS ? replay_pack_update(S->x, l, &L->len, &L->id)
                             : replay_pack_inspection(S->x, l, &L->len, &L->id);
  }
  if (L->q != Q_INTAKE) {
    if (!L->buf || id_map(S, L->q, L->id, k)) {
      fprintf(stderr, CTL_PROG ": out of memory\n");
      return -1;
    }
  }
  zmq_send(S->conn[L->q]->sock, L->buf, L->len, ZMQ_DONTWAIT);
  L->state = S_INFLIGHT;
  L->resend_us = now + RESEND_US;
  S->progress_us = now;
  return 0;
}

static size_t line_of_lineno(const struct replay *x, uint64_t lineno)
{
  size_t lo = 0, hi = x->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (x->v[mid].lineno < lineno) lo = mid + 1;
    else hi = mid;
  }
  return lo < x->n && x->v[lo].lineno == lineno ? lo : SIZE_MAX;
}

static void done(struct sched *S, size_t k, int64_t now)
{
  struct sl *L = &S->s[k];
  L->state = S_DONE;
  L->ack_us = now;
  if (L->q != Q_INTAKE) free(L->buf);
  L->buf = NULL;
  S->progress_us = now;
}

/* The answers that have come on queue q's connection; inflight[q] counts down. */
static void take_answers(struct sched *S, int q, size_t a, size_t b, size_t *inflight, int64_t now)
{
  static const ProtobufCMessageDescriptor *const desc[Q_N] = {
    &whistle__hotline__hotline_message__descriptor, &whistle__unit__unit_message__descriptor,
    &whistle__rating__rating_message__descriptor };
  struct ctl_conn *c = S->conn[q];
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  while (zmq_msg_recv(&msg, c->sock, ZMQ_DONTWAIT) >= 0) {
    if (zmq_msg_more(&msg)) continue; /* replies are one frame */
    uint64_t id;
    int unav;
    ProtobufCMessage *m = ctl_unpack_reply(desc[q], zmq_msg_data(&msg), zmq_msg_size(&msg), &id, &unav);
    if (!m) continue;
    size_t k = q == Q_INTAKE ? line_of_lineno(S->x, id) : id < S->idcap[q] ? S->ids[q][id] : SIZE_MAX;
    struct sl *L = k < b && k >= a ? &S->s[k] : NULL;
    if (!L || L->q != q || L->state != S_INFLIGHT) { /* late, or a resend's second answer */
      protobuf_c_message_free_unpacked(m, NULL);
      continue;
    }
    if (unav) { /* UNAVAILABLE: send again shortly */
      L->resend_us = now + RETRY_US;
      protobuf_c_message_free_unpacked(m, NULL);
      continue;
    }
    if (q == Q_INTAKE) {
      const Whistle__Hotline__Reply *r = ((Whistle__Hotline__HotlineMessage *)m)->reply;
      hotline_line_answer(&S->x->v[k].hl, r->status, r->reason, r->ticket_id, r->category,
                          r->compound, r->disposition);
    } else if (q == Q_UNITS) {
      const Whistle__Unit__Reply *r = ((Whistle__Unit__UnitMessage *)m)->reply;
      replay_unit_status(r, L->status, sizeof L->status);
      L->ok = r->status != WHISTLE__UNIT__REPLY__STATUS__REFUSED;
      L->reason = r->reason && r->reason[0] ? strdup(r->reason) : NULL;
    } else {
      static const char *const st[] = { "APPLIED", "DUPLICATE", "REFUSED", "UNAVAILABLE" };
      const Whistle__Rating__Reply *r = ((Whistle__Rating__RatingMessage *)m)->reply;
      snprintf(L->status, sizeof L->status, "%s", r->status < 4 ? st[r->status] : "?");
      L->ok = r->status != WHISTLE__RATING__REPLY__STATUS__REFUSED;
      L->reason = r->reason && r->reason[0] ? strdup(r->reason) : NULL;
    }
    protobuf_c_message_free_unpacked(m, NULL);
    done(S, k, now);
    inflight[q]--;
  }
  zmq_msg_close(&msg);
}

/* ---- status probes -------------------------------------------------------------- */

static const Whistle__Control__InputPosition *input_named(const Whistle__Control__StatusReply *r,
                                                         const char *name)
{
  for (size_t i = 0; r && name && i < r->n_inputs; i++)
    if (strcmp(r->inputs[i]->input, name) == 0) return r->inputs[i];
  return NULL;
}

static void probe_drop(struct sched *S)
{
  for (int i = 0; i < 2; i++) {
    if (S->got[i]) whistle__control__control_message__free_unpacked(S->got[i], NULL);
    S->got[i] = NULL;
  }
  S->probe_inflight = 0;
}

static void probe_send(struct sched *S, int64_t now)
{
  struct ctl_settle *st = &S->x->settle;
  if (ctl_status_send(&st->ctl[D_INTAKE]) || ctl_status_send(&st->ctl[D_REFERRAL])) {
    S->probe_next = now + RETRY_US;
    return;
  }
  S->probe_inflight = 1;
  S->probe_t = now;
  S->x->probes++;
}

/* Both answers of a probe are in: what they prove. */
static void probe_read(struct sched *S, int64_t now)
{
  const Whistle__Control__StatusReply *ri = S->got[0]->status_reply, *rr = S->got[1]->status_reply;
  if (ri->output && rr->output) {
    const Whistle__Control__InputPosition *ref_in = input_named(rr, ri->output->stream);
    const Whistle__Control__InputPosition *back_in = input_named(ri, rr->output->stream);
    if (S->nprobes == PROBES_KEPT) { /* the oldest: a later one proves as much, once covered */
      memmove(S->probes, S->probes + 1, (PROBES_KEPT - 1) * sizeof *S->probes);
      S->nprobes--;
    }
    S->probes[S->nprobes++] = (struct probe){ S->probe_t, ri->output->head, 0, 0 };
    size_t drop = 0;
    for (size_t j = 0; j < S->nprobes; j++) {
      struct probe *p = &S->probes[j];
      if (!p->covered && ref_in && ref_in->position >= p->head) {
        p->covered = 1;
        p->back_head = rr->output->head;
        if (p->t > S->vis_ref) S->vis_ref = p->t;
      }
      /* An intake that does not read referral's stream has no closures to wait for. */
      if (p->covered && (!back_in || back_in->position >= p->back_head)) {
        if (p->t > S->vis_back) S->vis_back = p->t;
        drop = j + 1;
      }
    }
    memmove(S->probes, S->probes + drop, (S->nprobes - drop) * sizeof *S->probes);
    S->nprobes -= drop;
  }
  probe_drop(S);
  S->probe_next = now + PROBE_PAUSE_US;
}

static void probe_take(struct sched *S, int64_t now)
{
  struct ctl_settle *st = &S->x->settle;
  for (int i = 0; i < 2; i++)
    if (!S->got[i]) S->got[i] = ctl_status_take(&st->ctl[i ? D_REFERRAL : D_INTAKE]);
  if (S->got[0] && S->got[1]) probe_read(S, now);
}

/* Before the control connections serve a settle again: the probe in flight
 * answered, or its sockets replaced (a late answer to it must not be read
 * as the settle's: an older head can look settled). */
static void probe_finish(struct sched *S)
{
  struct ctl_settle *st = &S->x->settle;
  while (S->probe_inflight && svc_mono_us() - S->probe_t < PROBE_TIMEOUT_US) {
    zmq_pollitem_t it[2] = { { .socket = st->ctl[D_INTAKE].sock, .events = ZMQ_POLLIN },
                             { .socket = st->ctl[D_REFERRAL].sock, .events = ZMQ_POLLIN } };
    if (zmq_poll(it, 2, 10) < 0) break;
    probe_take(S, svc_mono_us());
  }
  if (S->probe_inflight) {
    ctl_conn_reopen(&st->ctl[D_INTAKE]);
    ctl_conn_reopen(&st->ctl[D_REFERRAL]);
    probe_drop(S);
  }
}

/* ---- one segment: the lines between two barriers ---------------------------------- */

static void report(struct sched *S, size_t k)
{
  struct replay *x = S->x;
  const struct rline *l = &x->v[k];
  const struct sl *L = &S->s[k];
  if (L->q == Q_INTAKE)
    replay_outcome(x, l, hotline_status_names[l->hl.status], l->hl.status != HL_REJECTED, l->hl.reason);
  else
    replay_outcome(x, l, L->status, L->ok, L->reason);
}

static int stalled(struct sched *S, size_t lo, size_t b, const size_t *inflight)
{
  struct replay *x = S->x;
  char name[512];
  for (int q = 0; q < Q_N; q++) {
    if (!inflight[q]) continue;
    fprintf(stderr, CTL_PROG ": %s did not answer within %.1f s%s\n",
            ctl_conn_name(S->conn[q], name, sizeof name), (double)x->env.timeout_us / 1e6,
            !x->env.server_key[S->conn[q]->d] ? " (not running, or with CURVE on: give its public key "
                                                 "and a client key, --server-key/--client-key)" : "");
    return -1;
  }
  if (lo < b)
    fprintf(stderr, CTL_PROG ": line %zu waited %.1f s for referral to apply intake's stream (or intake "
                    "referral's) up to the lines before it: the daemons are not settling\n",
            x->v[lo].lineno, (double)x->env.settle_us / 1e6);
  return -1;
}

static int run_segment_probing(struct sched *S, size_t a, size_t b);

static int run_segment(struct sched *S, size_t a, size_t b)
{
  int rc = run_segment_probing(S, a, b);
  probe_finish(S);
  return rc;
}

/* One segment's progress: lines [a, b); every line before rep answered and
 * reported; before lo, none waiting; lines looked at up to hi. */
struct seg { size_t a, b, rep, lo, hi, inflight[Q_N]; int stop; };

/* Sends what may go, in feed order, passing lines that wait (S->waits_vis
 * says whether one waits for a probe). 0, or -1 (out of memory). */
static int send_ready(struct sched *S, struct seg *g, int64_t now)
{
  S->waits_vis = 0;
  while (g->lo < g->b && S->s[g->lo].state != S_WAITING) g->lo++;
  g->hi = g->b - g->lo > LOOKAHEAD ? g->lo + LOOKAHEAD : g->b;
  for (size_t k = g->lo; k < g->hi && !g->stop; k++) {
    struct sl *L = &S->s[k];
    if (L->state != S_WAITING || g->inflight[L->q] >= WINDOW) continue;
    int r = ready(S, k);
    S->waits_vis |= r == 2;
    if (r != 1) continue;
    if (send_line(S, k, now)) return -1;
    g->inflight[L->q]++;
  }
  return 0;
}

/* A probe when a line waits for one (and a lost probe dropped). */
static void probe_when_needed(struct sched *S, int64_t now)
{
  struct ctl_settle *st = &S->x->settle;
  if (S->probe_inflight && now - S->probe_t > PROBE_TIMEOUT_US) {
    /* Lost (a daemon restarting): new sockets, so a late answer is never read. */
    ctl_conn_reopen(&st->ctl[D_INTAKE]);
    ctl_conn_reopen(&st->ctl[D_REFERRAL]);
    probe_drop(S);
  }
  if (S->waits_vis && !S->probe_inflight && now >= S->probe_next) probe_send(S, now);
}

/* Waits for an answer, a probe's reply, a resend or the next probe, and
 * takes what came. 0, or -1 interrupted. */
static int wait_and_take(struct sched *S, struct seg *g, int64_t now)
{
  struct ctl_settle *st = &S->x->settle;
  int64_t until = now + 100000;
  for (size_t k = g->rep; k < g->hi; k++)
    if (S->s[k].state == S_INFLIGHT && S->s[k].resend_us < until) until = S->s[k].resend_us;
  if (S->waits_vis && !S->probe_inflight && S->probe_next < until) until = S->probe_next;
  zmq_pollitem_t it[Q_N + 2];
  int ni = 0;
  for (int q = 0; q < Q_N; q++) it[ni++] = (zmq_pollitem_t){ .socket = S->conn[q]->sock, .events = ZMQ_POLLIN };
  if (S->probe_inflight) {
    it[ni++] = (zmq_pollitem_t){ .socket = st->ctl[D_INTAKE].sock, .events = ZMQ_POLLIN };
    it[ni++] = (zmq_pollitem_t){ .socket = st->ctl[D_REFERRAL].sock, .events = ZMQ_POLLIN };
  }
  int sub_ms = until > now && until - now < 1000; /* poll once, then sleep the rest */
  int prc = zmq_poll(it, ni, sub_ms || until <= now ? 0 : (long)((until - now + 999) / 1000));
  if (prc < 0) return -1;
  if (prc == 0 && sub_ms) {
    struct timespec ts = { 0, (long)(until - now) * 1000 };
    nanosleep(&ts, NULL);
  }
  now = svc_mono_us();
  for (int q = 0; q < Q_N; q++)
    if (it[q].revents & ZMQ_POLLIN) take_answers(S, q, g->a, g->b, g->inflight, now);
  if (ni > Q_N && ((it[Q_N].revents | it[Q_N + 1].revents) & ZMQ_POLLIN)) probe_take(S, now);
  return 0;
}

static void resend_due(struct sched *S, const struct seg *g, int64_t now)
{
  for (size_t k = g->rep; k < g->hi; k++) {
    struct sl *L = &S->s[k];
    if (L->state == S_INFLIGHT && L->resend_us <= now) {
      zmq_send(S->conn[L->q]->sock, L->buf, L->len, ZMQ_DONTWAIT);
      L->resend_us = now + RESEND_US;
    }
  }
}

/* Reports the answered lines in feed order; with --strict a refusal stops
 * the sending, and once the sent are answered all of them are reported
 * (what was sent before the stop is applied: counted too). 1 when stopped. */
static int report_done(struct sched *S, struct seg *g)
{
  struct replay *x = S->x;
  while (g->rep < g->b && S->s[g->rep].state == S_DONE) {
    size_t refused = x->refused;
    report(S, g->rep++);
    if (x->strict && x->refused > refused) g->stop = 1;
  }
  if (!g->stop || g->inflight[Q_INTAKE] || g->inflight[Q_UNITS] || g->inflight[Q_RATING]) return 0;
  for (size_t k = g->rep; k < g->b; k++)
    if (S->s[k].state == S_DONE) report(S, k);
  return 1;
}

static int run_segment_probing(struct sched *S, size_t a, size_t b)
{
  struct replay *x = S->x;
  struct seg g = { .a = a, .b = b, .rep = a, .lo = a, .hi = a };
  S->progress_us = svc_mono_us();
  while (g.rep < b) {
    int64_t now = svc_mono_us();
    if (send_ready(S, &g, now)) return -1;
    probe_when_needed(S, now);
    if (wait_and_take(S, &g, now)) return -1; /* interrupted */
    now = svc_mono_us();
    resend_due(S, &g, now);
    if (report_done(S, &g)) break;
    replay_progress(x, g.rep, 0);
    int idle = !g.inflight[Q_INTAKE] && !g.inflight[Q_UNITS] && !g.inflight[Q_RATING];
    if (now - S->progress_us > (idle ? x->env.settle_us : x->env.timeout_us))
      return stalled(S, g.lo, b, g.inflight);
  }
  return 0;
}

/* ---- the whole feed ----------------------------------------------------------------- */

/* Waits until the daemons in mask (0: all) have settled (back: intake has
 * also read referral's stream to its head); everything answered before is
 * then visible everywhere the schedule looks. */
static int settle(struct sched *S, unsigned mask, int back)
{
  struct replay *x = S->x;
  int64_t t = svc_mono_us();
  x->settle.mask = mask;
  x->settle.back = back;
  if (ctl_settle_wait(&x->settle, t + x->env.settle_us)) return -1;
  if (t > S->vis_ref) S->vis_ref = t;
  if (back && t > S->vis_back) S->vis_back = t;
  return 0;
}

/* A watermark line: sent once everything before it is answered; then all
 * four daemons settle (its time-driven work done everywhere). */
static int barrier_line(struct sched *S, size_t i)
{
  S->s[i].q = Q_INTAKE;
  return run_segment(S, i, i + 1) || settle(S, 0, 1) ? -1 : 0;
}

static int barrier(struct sched *S, size_t i)
{
  int64_t t = svc_mono_us();
  int rc = barrier_line(S, i);
  S->x->barriers++;
  S->x->barrier_us += svc_mono_us() - t;
  return rc;
}

int replay_schedule(struct replay *x)
{
  struct sched S;
  memset(&S, 0, sizeof S);
  S.x = x;
  int rc = -1;
  if (sched_build(&S)) {
    fprintf(stderr, CTL_PROG ": out of memory\n");
    goto out;
  }
  if (ctl_conn_open(&S.hot, &x->env, D_INTAKE, 0) || ctl_conn_open(&S.query, &x->env, D_REFERRAL, 0))
    goto out;
  S.conn[Q_INTAKE] = &S.hot;
  S.conn[Q_UNITS] = &x->units;
  S.conn[Q_RATING] = &x->rating;
  if (settle(&S, 0, 1)) goto out;
  x->t0 = svc_mono_us();
  for (size_t a = 0; a < x->n;) {
    /* A watermark alone, else [a, b): the lines up to the next one (--sequential: one line). */
    size_t b = a + 1, refused = x->refused;
    int failed;
    if (S.s[a].q == Q_BARRIER) {
      failed = barrier(&S, a);
    } else {
      while (!x->sequential && b < x->n && S.s[b].q != Q_BARRIER) b++;
      failed = run_segment(&S, a, b) || (x->sequential && settle(&S, 0, 1));
    }
    if (failed) {
      size_t k = a;
      while (k + 1 < b && S.s[k].state == S_DONE) k++;
      replay_progress(x, k, 1);
      fprintf(stderr, CTL_PROG ": the replay stops at line %zu\n", x->v[k].lineno);
      goto out;
    }
    if (x->strict && x->refused > refused) {
      replay_progress(x, b, 1);
      fprintf(stderr, CTL_PROG ": %s (--strict: the replay stops)\n",
              x->first[refused < MAX_FIRST ? refused : MAX_FIRST - 1]);
      goto out;
    }
    replay_progress(x, b, 0);
    a = b;
  }
  if (settle(&S, 0, 1)) {
    replay_progress(x, x->n, 1);
    fprintf(stderr, CTL_PROG ": the replay stops after line %zu\n", x->n ? x->v[x->n - 1].lineno : 0);
    goto out;
  }
  replay_progress(x, x->n, 1);
  rc = 0;
out:
  probe_drop(&S);
  ctl_conn_close(&S.hot);
  ctl_conn_close(&S.query);
  for (size_t i = 0; S.s && i < x->n; i++) {
    if (S.s[i].q != Q_INTAKE) free(S.s[i].buf);
    free(S.s[i].reason);
  }
  free(S.s);
  for (int q = 0; q < Q_N; q++) free(S.ids[q]);
  return rc;
}
