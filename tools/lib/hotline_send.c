/* The hotline sender (whistle-hotline; whistlectl replay records its answers
 * with hotline_line_answer): one DEALER socket to intake's ROUTER, many
 * requests in flight, replies matched by request_id (the line number), resends
 * after the timeout with the same request_id, and the barriers that keep a
 * pipelined feed's meaning (a line waits for the earlier lines about its
 * ticket and for the previous watermark). Progress goes to stderr. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <zmq.h>

#include "hotline.pb-c.h"
#include "hotline_client.h"
#include "svc_alloc.h"
#include "svc_time.h"
#include "svc_zmq.h"
#include "tl_zmq.h"

const char *const hotline_status_names[HL_NSTATUS] = { "ACCEPTED", "DUPLICATE", "REJECTED",
                                                       "UNAVAILABLE", "NO_REPLY" };

/* A resend timer: due when the line's gen still equals gen. */
struct timer { size_t idx; uint64_t gen; int64_t due; };

/* A connection to intake, with its handshake monitor. */
struct hotline_conn {
  void *ctx, *sock, *mon; /* mon: handshake failures, reported once each */
  unsigned warned;
  const char *prog;
  int progress;
};

struct sender {
  struct hotline_feed *f;
  const struct hotline_opts *o;
  struct hotline_run *run;
  struct hotline_conn *c;
  void *sock;
  struct timer *q; size_t qhead, qlen, qcap; /* a ring: dues only grow */
  size_t next;     /* the next line never sent */
  size_t low;      /* every line before it is answered */
  size_t inflight; /* lines sent and not finally answered */
  int64_t t0, t_last, next_tick;
  unsigned tenth;  /* progress: the last tenth reported */
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
  stop_signal = sig;
}

static void catch_signals(void)
{
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal; /* no SA_RESTART: zmq_poll returns EINTR */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
}

static int push_timer(struct sender *s, size_t idx, uint64_t gen, int64_t due)
{
  if (s->qlen == s->qcap) {
    size_t nc = s->qcap ? s->qcap * 2 : 1024;
    struct timer *q = malloc(nc * sizeof *q);
    if (!q) return -1;
    for (size_t k = 0; k < s->qlen; k++) q[k] = s->q[(s->qhead + k) % s->qcap];
    free(s->q);
    s->q = q;
    s->qcap = nc;
    s->qhead = 0;
  }
  s->q[(s->qhead + s->qlen++) % s->qcap] = (struct timer){ idx, gen, due };
  return 0;
}

static void send_line(struct sender *s, size_t i, int64_t now)
{
  struct hotline_line *l = &s->f->v[i];
  if (zmq_send(s->sock, l->msg, l->len, ZMQ_DONTWAIT) < 0) s->run->send_errors++;
  if (l->state == HL_WAITING) {
    s->inflight++;
    s->run->sent++;
    if (!s->t0) s->t0 = now;
  }
  l->sends++;
  l->gen++;
  l->state = HL_INFLIGHT;
  if (push_timer(s, i, l->gen, now + s->o->timeout_us)) s->run->send_errors++;
}

/* Resends what timed out, and what was answered UNAVAILABLE once its pause
 * is over. Timers are queued in due order, so only the head is checked. */
static void resend_due(struct sender *s, int64_t now)
{
  while (s->qlen && s->q[s->qhead].due <= now) {
    struct timer t = s->q[s->qhead];
    s->qhead = (s->qhead + 1) % s->qcap;
    s->qlen--;
    struct hotline_line *l = &s->f->v[t.idx];
    if (l->state == HL_DONE || l->gen != t.gen) continue;
    if (l->state == HL_RETRY) s->run->resent_unavailable++;
    else s->run->resent_timeout++;
    send_line(s, t.idx, now);
  }
}

/* Whether line i may go now: in ordered mode, and for a watermark, only when
 * every earlier line is answered. Otherwise when the previous watermark is
 * answered (intake's event clock has moved to it before the lines after it
 * are checked) and so is the earlier line about the same ticket (feedback,
 * triage and exempt need their ticket committed). */
static int may_send(const struct sender *s, size_t i)
{
  const struct hotline_line *l = &s->f->v[i];
  if (s->o->ordered || l->type == HL_WATERMARK) return s->low == i;
  if (l->prev_watermark && s->f->v[l->prev_watermark - 1].state != HL_DONE) return 0;
  return !l->prev_same || s->f->v[l->prev_same - 1].state == HL_DONE;
}

static void send_ready(struct sender *s, int64_t now)
{
  size_t cap = s->o->ordered ? 1 : s->o->inflight;
  while (s->next < s->f->n && s->inflight < cap && may_send(s, s->next))
    send_line(s, s->next++, now);
}

static struct hotline_line *find_line(struct hotline_feed *f, uint64_t lineno)
{
  size_t lo = 0, hi = f->n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (f->v[mid].lineno < lineno) lo = mid + 1;
    else hi = mid;
  }
  return lo < f->n && f->v[lo].lineno == lineno ? &f->v[lo] : NULL;
}

static void keep(char **dst, const char *src)
{
  free(*dst);
  *dst = src && src[0] ? strdup(src) : NULL;
}

void hotline_line_answer(struct hotline_line *l, unsigned status, const char *reason, uint64_t ticket_id,
                         const char *category, const char *compound, const char *disposition)
{
  l->status = status < HL_NOREPLY ? (enum hotline_status)status : HL_NOREPLY;
  keep(&l->reason, reason);
  if (l->status == HL_UNAVAILABLE || l->status == HL_NOREPLY) return;
  l->state = HL_DONE;
  l->ticket_id = ticket_id;
  keep(&l->category, category);
  keep(&l->compound, compound);
  keep(&l->disposition, disposition);
}

static void on_reply(struct sender *s, const uint8_t *data, size_t len, int64_t now)
{
  struct svc_pballoc al;
  Whistle__Hotline__HotlineMessage *m = (Whistle__Hotline__HotlineMessage *)svc_pb_unpack(
    &whistle__hotline__hotline_message__descriptor, &al, 64 * 1024 + len, data, len, NULL);
  struct hotline_line *l = NULL;
  if (m && m->body_case == WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_REPLY &&
      m->reply->status <= WHISTLE__HOTLINE__REPLY__STATUS__UNAVAILABLE)
    l = find_line(s->f, m->request_id ? m->request_id : m->reply->request_id);
  if (!l) {
    s->run->bad_replies++;
  } else if (l->state == HL_DONE || l->state == HL_WAITING) {
    s->run->extra_replies++;
  } else {
    const Whistle__Hotline__Reply *r = m->reply;
    hotline_line_answer(l, r->status, r->reason, r->ticket_id, r->category, r->compound,
                        r->disposition);
    if (l->status == HL_UNAVAILABLE) {
      if (l->state == HL_INFLIGHT) { /* pause, then send it again */
        l->state = HL_RETRY;
        l->gen++;
        int64_t pause = s->o->timeout_us < SVC_US_PER_SEC ? s->o->timeout_us : SVC_US_PER_SEC;
        if (push_timer(s, (size_t)(l - s->f->v), l->gen, now + pause)) s->run->send_errors++;
      }
    } else {
      s->inflight--;
      s->run->answered++;
      s->t_last = now;
      while (s->low < s->f->n && s->f->v[s->low].state == HL_DONE) s->low++;
    }
  }
  if (m) protobuf_c_message_free_unpacked(&m->base, &al.a);
}

static void show_progress(struct sender *s, int64_t now, int last)
{
  const struct hotline_run *r = s->run;
  size_t n = s->f->n;
  double secs = (double)(now - (s->t0 ? s->t0 : now)) / 1e6;
  if (s->o->progress == 1) {
    if (!last && now < s->next_tick) return;
    s->next_tick = now + 200000;
    fprintf(stderr, "\r  sent %zu/%zu  answered %zu  in flight %zu  resent %llu  %.1f s ",
            r->sent, n, r->answered, s->inflight,
            (unsigned long long)(r->resent_timeout + r->resent_unavailable), secs);
    if (last) fputc('\n', stderr);
  } else if (s->o->progress == 2 && n) {
    unsigned tenth = (unsigned)(r->answered * 10 / n);
    if (tenth <= s->tenth && !(last && r->answered < n)) return;
    s->tenth = tenth;
    fprintf(stderr, "%s: answered %zu/%zu (%u%%), %zu in flight, %.1f s\n", s->c->prog,
            r->answered, n, (unsigned)(r->answered * 100 / n), s->inflight, secs);
  }
  fflush(stderr);
}

/* Watches the connection for failed handshakes, which otherwise look like an
 * intake that never answers. */
static int open_monitor(struct hotline_conn *s)
{
  char ep[64];
  snprintf(ep, sizeof ep, "inproc://hotline-monitor-%p", (void *)s);
  int events = ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL |
               ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL;
  if (zmq_socket_monitor(s->sock, ep, events) != 0) return -1;
  s->mon = zmq_socket(s->ctx, ZMQ_PAIR);
  int zero = 0;
  if (!s->mon || zmq_connect(s->mon, ep) != 0) return -1;
  return zmq_setsockopt(s->mon, ZMQ_LINGER, &zero, sizeof zero);
}

static void drain_monitor(struct hotline_conn *s)
{
  uint8_t ev[6];
  char ep[256];
  int n;
  while ((n = zmq_recv(s->mon, ev, sizeof ev, ZMQ_DONTWAIT)) >= 0) {
    int more = 0;
    size_t ml = sizeof more;
    zmq_getsockopt(s->mon, ZMQ_RCVMORE, &more, &ml);
    int el = more ? zmq_recv(s->mon, ep, sizeof ep - 1, ZMQ_DONTWAIT) : 0;
    ep[el > 0 ? (el < (int)sizeof ep ? el : (int)sizeof ep - 1) : 0] = 0;
    if (n < 2) continue;
    unsigned id = (unsigned)(ev[0] | ev[1] << 8);
    unsigned bit = id == ZMQ_EVENT_HANDSHAKE_FAILED_AUTH ? 1 : 2;
    if (s->warned & bit) continue;
    s->warned |= bit;
    const char *nl = s->progress == 1 ? "\n" : "";
    if (bit == 1)
      fprintf(stderr, "%s%s: %s refused this client's key (not among intake's "
                      "allowed keys?); still trying until the deadline\n", nl, s->prog, ep);
    else
      fprintf(stderr, "%s%s: the handshake with %s failed (wrong server key, or "
                      "CURVE on one side only?); still trying until the deadline\n", nl, s->prog, ep);
  }
}

static void hotline_conn_close(struct hotline_conn **cp);

static struct hotline_conn *hotline_conn_open(const struct hotline_opts *o)
{
  struct hotline_conn *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->prog = o->prog ? o->prog : "whistle-hotline";
  c->progress = o->progress;
  c->ctx = zmq_ctx_new();
  if (!c->ctx) {
    fprintf(stderr, "%s: cannot create a ZeroMQ context: %s\n", c->prog, zmq_strerror(zmq_errno()));
    hotline_conn_close(&c);
    return NULL;
  }
  c->sock = tl_dealer_new(c->ctx, c->prog, o->endpoint, o->server_key_file, o->client_key_file,
                          (int64_t)o->maxmsgsize);
  if (!c->sock) {
    hotline_conn_close(&c);
    return NULL;
  }
  if (open_monitor(c)) {
    fprintf(stderr, "%s: socket monitor: %s\n", c->prog, zmq_strerror(zmq_errno()));
    hotline_conn_close(&c);
    return NULL;
  }
  return c;
}

static void hotline_conn_close(struct hotline_conn **cp)
{
  struct hotline_conn *c = *cp;
  if (!c) return;
  if (c->mon) zmq_close(c->mon);
  if (c->sock) zmq_socket_monitor(c->sock, NULL, 0);
  if (c->sock) zmq_close(c->sock);
  if (c->ctx) zmq_ctx_term(c->ctx);
  free(c);
  *cp = NULL;
}

/* How long zmq_poll may wait: until the next timer, progress tick or deadline. */
static long wait_ms(const struct sender *s, int64_t now, int64_t deadline)
{
  int64_t until = now + SVC_US_PER_SEC;
  if (s->qlen && s->q[s->qhead].due < until) until = s->q[s->qhead].due;
  if (s->o->progress == 1 && s->next_tick < until) until = s->next_tick;
  if (deadline && deadline < until) until = deadline;
  return until <= now ? 0 : (long)((until - now + 999) / 1000);
}

static void drain_replies(struct sender *s)
{
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  while (zmq_msg_recv(&msg, s->sock, ZMQ_DONTWAIT) >= 0) {
    int more = zmq_msg_more(&msg);
    if (more) s->run->bad_replies++; /* intake's replies are one frame */
    else on_reply(s, zmq_msg_data(&msg), zmq_msg_size(&msg), svc_mono_us());
    while (more && zmq_msg_recv(&msg, s->sock, ZMQ_DONTWAIT) >= 0) more = zmq_msg_more(&msg);
  }
  zmq_msg_close(&msg);
}

static void hotline_push_on(struct hotline_conn *c, struct hotline_feed *f, const struct hotline_opts *o,
                            struct hotline_run *run);

int hotline_push(struct hotline_feed *f, const struct hotline_opts *o, struct hotline_run *run)
{
  memset(run, 0, sizeof *run);
  struct hotline_conn *c = hotline_conn_open(o);
  if (!c) return -1;
  hotline_push_on(c, f, o, run);
  hotline_conn_close(&c);
  return 0;
}

static void hotline_push_on(struct hotline_conn *c, struct hotline_feed *f, const struct hotline_opts *o,
                     struct hotline_run *run)
{
  struct sender s = { .f = f, .o = o, .run = run, .c = c, .sock = c->sock };
  memset(run, 0, sizeof *run);
  catch_signals();
  int64_t start = svc_mono_us();
  int64_t deadline = o->deadline_us ? start + o->deadline_us : 0;
  while (run->answered < f->n) {
    int64_t now = svc_mono_us();
    if (stop_signal) {
      run->interrupted = 1;
      break;
    }
    if (deadline && now >= deadline) {
      run->deadline_passed = 1;
      break;
    }
    resend_due(&s, now);
    send_ready(&s, now);
    show_progress(&s, now, 0);
    zmq_pollitem_t it[2] = { { .socket = c->sock, .events = ZMQ_POLLIN },
                             { .socket = c->mon, .events = ZMQ_POLLIN } };
    int rc = zmq_poll(it, 2, wait_ms(&s, now, deadline));
    if (rc < 0 && zmq_errno() != EINTR) {
      fprintf(stderr, "%s: poll: %s\n", c->prog, zmq_strerror(zmq_errno()));
      break;
    }
    if (rc > 0 && (it[0].revents & ZMQ_POLLIN)) drain_replies(&s);
    if (rc > 0 && (it[1].revents & ZMQ_POLLIN)) drain_monitor(c);
  }
  int64_t end = svc_mono_us();
  show_progress(&s, end, 1);
  run->elapsed_us = (run->answered == f->n && s.t_last ? s.t_last : end) - (s.t0 ? s.t0 : end);
  free(s.q);
}
