/* The stream consumer: subscribes from the position recorded in its own
 * schema, applies each batch of received events together with the position
 * move (stream_advance) in one transaction, acknowledges after commit, and
 * re-subscribes when the producer falls silent, errs or restarts. */
#include <stdlib.h>
#include <string.h>

#include "svc_alloc.h"
#include "svc_log.h"
#include "svc_status.h"
#include "svc_stream_int.h"
#include "svc_time.h"

#define RESUB_MIN_US (200 * 1000)
#define UNPACK_BUDGET (16u << 20)
#define RETRY_MIN_MS 1000      /* a failing event is retried after 1 s, 2 s, 4 s ... */
#define RETRY_MAX_MS 60000     /* ... up to once a minute */

struct cev {
  uint64_t seq;
  int64_t event_us;
  int64_t arrived_us; /* monotonic, for the apply latency */
  char *kind, *addressee;
  uint8_t *payload;
  size_t len;
};

struct applying {
  struct svc_stream_consumer *c;
  struct cev *evs;
  struct svc_stream_event *v; /* views of evs handed to the callbacks */
  size_t n;
  uint64_t from, to;
  int stage, flushed;
};

struct svc_stream_consumer {
  uv_loop_t *loop;
  struct svc_zctx *z;
  struct svc_pg *pg;
  struct svc__stream_cstmts st;
  struct svc_zsock *sock;
  uv_timer_t timer, retry;  /* heartbeat/silence ticks; apply retry after an error */
  int open_handles;
  char *endpoint, *consumer, *producer, *server_key;
  uint32_t window;
  int heartbeat_ms, silence_ms;
  size_t max_batch;
  svc_stream_apply_cb apply;
  svc_stream_apply_next_cb apply_next; /* optional further stages */
  struct svc_stream_producer *flush_to; /* optional: flushed after the last stage */
  void *arg;
  int loaded;             /* position read from the database */
  uint64_t applied;       /* committed position */
  uint64_t received;      /* last seq received in this session */
  uint64_t head;          /* the producer's head as last heard (heartbeats, events) */
  int64_t seen_event_us;  /* the latest event time heard of (events, heartbeat watermarks) */
  int64_t applied_event_us; /* the latest event time applied */
  struct svc_hist apply_hist; /* arrival to commit, per event */
  uint64_t skip_to;       /* events up to here are being applied already: not queued */
  uint64_t poison_seq;    /* the event that fails to apply on its own, or 0 */
  uint64_t poison_tries;  /* its failed attempts so far */
  int64_t transient_ms;   /* back-off after transient errors; 0 after a commit */
  uint64_t session;
  struct cev *q;          /* received, not yet applying */
  size_t q_head, q_n, q_cap;
  struct applying *cur;   /* the apply transaction in flight */
  int64_t heard_us, acked_us, resub_us;
  int resub_due, draining;
  uint64_t subscribed;    /* Subscribe messages sent */
  void (*drained)(void *);
  void *drained_arg;
  struct svc_stream_consumer_stats stats;
};

static void maybe_apply(struct svc_stream_consumer *c);
static void load_position(struct svc_stream_consumer *c);

static void cev_free(struct cev *e)
{
  free(e->kind);
  free(e->addressee);
  free(e->payload);
}

static void queue_clear(struct svc_stream_consumer *c)
{
  for (size_t i = 0; i < c->q_n; i++) cev_free(&c->q[(c->q_head + i) % c->q_cap]);
  c->q_head = c->q_n = 0;
}

static void send_msg(struct svc_stream_consumer *c, Whistle__Stream__StreamMessage *m)
{
  m->version = SVC_STREAM_VERSION;
  svc__stream_send(c->sock, NULL, 0, m);
}

static void send_ack(struct svc_stream_consumer *c)
{
  Whistle__Stream__Ack a = WHISTLE__STREAM__ACK__INIT;
  a.seq = c->applied;
  Whistle__Stream__StreamMessage m = WHISTLE__STREAM__STREAM_MESSAGE__INIT;
  m.body_case = WHISTLE__STREAM__STREAM_MESSAGE__BODY_ACK;
  m.ack = &a;
  send_msg(c, &m);
  c->acked_us = svc_mono_us();
}

/* Starts a new session from what is applied (or being applied). */
static void subscribe(struct svc_stream_consumer *c)
{
  queue_clear(c);
  /* From the committed position, so that the producer's credit covers what is
   * being applied too (it is acknowledged once committed): the window holds
   * across re-subscribes. What the apply in flight holds is skipped. */
  c->received = c->applied;
  c->skip_to = c->cur ? c->cur->to : c->applied;
  c->session = (uint64_t)svc_wall_us() ^ (c->subscribed << 48);
  Whistle__Stream__Subscribe s = WHISTLE__STREAM__SUBSCRIBE__INIT;
  s.consumer = c->consumer;
  s.after_seq = c->received;
  s.window = c->window;
  s.session = c->session;
  Whistle__Stream__StreamMessage m = WHISTLE__STREAM__STREAM_MESSAGE__INIT;
  m.body_case = WHISTLE__STREAM__STREAM_MESSAGE__BODY_SUBSCRIBE;
  m.subscribe = &s;
  send_msg(c, &m);
  c->heard_us = c->resub_us = svc_mono_us();
  c->resub_due = 0;
  if (c->subscribed++) c->stats.resubscribes++; /* the first one is not a re-subscribe */
  svc_debug("subscribing", " consumer=%s producer=%s after_seq=%llu", c->consumer, c->producer,
            (unsigned long long)c->received);
}

static void request_resubscribe(struct svc_stream_consumer *c, const char *why)
{
  if (!c->loaded || c->draining) return;
  if (svc_mono_us() - c->resub_us < RESUB_MIN_US) {
    c->resub_due = 1; /* the timer does it shortly */
    return;
  }
  svc_info("re-subscribing", " consumer=%s producer=%s reason=\"%s\" position=%llu", c->consumer,
           c->producer, why, (unsigned long long)c->applied);
  subscribe(c);
}

static int queue_push(struct svc_stream_consumer *c, const Whistle__Stream__Event *e)
{
  if (c->q_n == c->q_cap) {
    size_t cap = c->q_cap ? c->q_cap * 2 : 1024;
    struct cev *n = malloc(cap * sizeof *n);
    if (!n) return -1;
    for (size_t i = 0; i < c->q_n; i++) n[i] = c->q[(c->q_head + i) % c->q_cap];
    free(c->q);
    c->q = n;
    c->q_cap = cap;
    c->q_head = 0;
  }
  struct cev *x = &c->q[(c->q_head + c->q_n) % c->q_cap];
  x->seq = e->seq;
  x->event_us = e->event_time_us;
  if (x->event_us > c->seen_event_us) c->seen_event_us = x->event_us;
  x->arrived_us = svc_mono_us();
  x->kind = strdup(e->kind ? e->kind : "");
  x->addressee = strdup(e->addressee ? e->addressee : "");
  x->len = e->payload.len;
  x->payload = malloc(x->len ? x->len : 1);
  if (!x->kind || !x->addressee || !x->payload) {
    cev_free(x);
    return -1;
  }
  if (x->len) memcpy(x->payload, e->payload.data, x->len);
  c->q_n++;
  return 0;
}

static void on_events(struct svc_stream_consumer *c, const Whistle__Stream__Events *ev)
{
  if (ev->session != c->session) return; /* an earlier session's leftovers */
  if (ev->from_seq != c->received) {
    request_resubscribe(c, "gap in the stream");
    return;
  }
  for (size_t i = 0; i < ev->n_events; i++) {
    const Whistle__Stream__Event *e = ev->events[i];
    if (e->seq > INT64_MAX) { /* beyond bigint: it could never be recorded */
      c->stats.errors++;
      request_resubscribe(c, "seq out of range");
      return;
    }
    if (e->seq <= c->received) {
      c->stats.duplicates++;
      continue;
    }
    if (e->seq <= c->skip_to) { /* in the apply in flight */
      c->received = e->seq;
      c->stats.duplicates++;
      continue;
    }
    if (queue_push(c, e)) {
      request_resubscribe(c, "out of memory");
      return;
    }
    c->received = e->seq;
    c->stats.received++;
  }
  size_t unacked = c->q_n + (c->cur ? c->cur->n : 0);
  if (unacked > c->stats.max_unacked) c->stats.max_unacked = unacked;
  maybe_apply(c);
}

static void on_message(struct svc_zsock *z, const struct svc_frame *f, size_t n,
                       const char *user_id, void *arg)
{
  struct svc_stream_consumer *c = arg;
  (void)z;
  (void)user_id;
  if (n != 1) {
    c->stats.errors++;
    return;
  }
  struct svc_pballoc al;
  Whistle__Stream__StreamMessage *m = (Whistle__Stream__StreamMessage *)svc_pb_unpack(
    &whistle__stream__stream_message__descriptor, &al, UNPACK_BUDGET, f[0].data, f[0].len, NULL);
  if (!m || m->version != SVC_STREAM_VERSION) {
    c->stats.errors++;
    if (m) whistle__stream__stream_message__free_unpacked(m, &al.a);
    return;
  }
  c->heard_us = svc_mono_us();
  switch (m->body_case) {
  case WHISTLE__STREAM__STREAM_MESSAGE__BODY_EVENTS:
    on_events(c, m->events);
    break;
  case WHISTLE__STREAM__STREAM_MESSAGE__BODY_ERROR: {
    char q[512];
    svc_info("producer answered an error", " consumer=%s code=%d message=%s", c->consumer,
             (int)m->error->code,
             svc_log_quote(q, sizeof q, m->error->message ? m->error->message : ""));
    request_resubscribe(c, "error from producer");
    break;
  }
  case WHISTLE__STREAM__STREAM_MESSAGE__BODY_HEARTBEAT: /* proves the producer is alive */
    if (m->heartbeat && m->heartbeat->head_seq > c->head) c->head = m->heartbeat->head_seq;
    if (m->heartbeat && m->heartbeat->watermark_us > c->seen_event_us)
      c->seen_event_us = m->heartbeat->watermark_us;
    break;
  default:
    break;
  }
  whistle__stream__stream_message__free_unpacked(m, &al.a);
}

/* ---- applying ----------------------------------------------------------- */

static void applying_free(struct applying *a)
{
  for (size_t i = 0; i < a->n; i++) cev_free(&a->evs[i]);
  free(a->evs);
  free(a->v);
  free(a);
}

static void apply_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg);
static void retry_cb(uv_timer_t *t);

/* SQL errors that say nothing about the events being applied: connection
 * (08), transaction rollback (40: serialization, deadlock), insufficient
 * resources (53), operator intervention (57), system errors (58), a read-only
 * transaction (25006: a standby after failover), a lock not available (55P03). */
static int transient(const char *sqlstate)
{
  static const char *const classes[] = { "08", "40", "53", "57", "58" };
  for (size_t i = 0; i < sizeof classes / sizeof classes[0]; i++)
    if (strncmp(sqlstate, classes[i], 2) == 0) return 1;
  return strcmp(sqlstate, "25006") == 0 || strcmp(sqlstate, "55P03") == 0;
}

/* Puts m events back at the head of the queue (they come next). 0 or -1. */
static int queue_unshift(struct svc_stream_consumer *c, const struct cev *evs, size_t m)
{
  size_t cap = c->q_cap ? c->q_cap : 1024;
  while (cap < c->q_n + m) cap *= 2;
  struct cev *n = malloc(cap * sizeof *n);
  if (!n) return -1;
  memcpy(n, evs, m * sizeof *n);
  for (size_t i = 0; i < c->q_n; i++) n[m + i] = c->q[(c->q_head + i) % c->q_cap];
  free(c->q);
  c->q = n;
  c->q_cap = cap;
  c->q_head = 0;
  c->q_n += m;
  return 0;
}

/* An apply transaction failed (an SQL error, or the service could not stage
 * it). With several events, the first half is tried alone, and so on until
 * the event that fails is alone: a poison event. That one is logged once
 * with its seq, kind and the error, counted, shown in status
 * (poison_seq) and retried with back-off (1 s doubling to 60 s) until it
 * applies: nothing after it is applied before it (the stream's order). */
static void apply_failed(struct svc_stream_consumer *c, const char *err)
{
  struct applying *a = c->cur;
  char q[512];
  c->stats.errors++;
  if (c->draining) { /* shutting down: the events come again after a restart */
    c->cur = NULL;
    applying_free(a);
    if (c->drained) c->drained(c->drained_arg);
    c->drained = NULL;
    return;
  }
  if (a->n > 1) {
    size_t keep = a->n / 2;
    if (queue_unshift(c, a->evs + keep, a->n - keep) == 0) {
      svc_warn("cannot apply events; retrying fewer to find the one that fails",
               " consumer=%s producer=%s from=%llu events=%zu error=%s", c->consumer, c->producer,
               (unsigned long long)a->from, a->n, svc_log_quote(q, sizeof q, err));
      a->n = keep;
      a->to = a->evs[keep - 1].seq;
      uv_timer_start(&c->retry, retry_cb, 0, 0);
      return;
    }
  }
  uint64_t seq = a->evs[0].seq;
  if (a->n == 1 && c->poison_seq != seq) {
    c->poison_seq = seq;
    c->poison_tries = 0;
    c->stats.poisoned++;
    svc_error("event cannot be applied; retrying it with back-off",
              " consumer=%s producer=%s seq=%llu kind=%s error=%s", c->consumer, c->producer,
              (unsigned long long)seq, a->evs[0].kind, svc_log_quote(q, sizeof q, err));
  }
  uint64_t tries = a->n == 1 ? ++c->poison_tries : 1;
  uint64_t ms = RETRY_MIN_MS;
  for (uint64_t i = 1; i < tries && ms < RETRY_MAX_MS; i++) ms *= 2;
  if (ms > RETRY_MAX_MS) ms = RETRY_MAX_MS;
  svc_debug("apply failed; retrying", " consumer=%s seq=%llu attempt=%llu retry_ms=%llu",
            c->consumer, (unsigned long long)seq, (unsigned long long)tries,
            (unsigned long long)ms);
  uv_timer_start(&c->retry, retry_cb, ms, 0);
}

/* After each stage's results: further stages from apply_next, then the
 * producer's flush as the last one (events appended while applying). */
static void on_stage(struct svc_pg_batch *b, void *arg)
{
  struct svc_stream_consumer *c = arg;
  struct applying *a = c->cur;
  if (!a || a->flushed) return;
  while (c->apply_next) {
    size_t before = svc_pg_batch_size(b);
    int rc = c->apply_next(c->arg, b, a->v, a->n, ++a->stage + 1);
    if (rc < 0) { /* nothing of it may commit; applied again after the retry delay */
      a->flushed = 1;
      svc_pg_batch_fail(b, "the consumer could not stage its effects"); /* its events go with it */
      return;
    }
    if (rc != 1) break;
    if (svc_pg_batch_size(b) != before) return; /* wait for these results */
  }
  a->flushed = 1;
  if (c->flush_to && svc_stream_flush(c->flush_to, b) < 0)
    svc_pg_batch_fail(b, "cannot stage the events appended while applying");
}

static void stage_apply(struct svc_stream_consumer *c)
{
  struct applying *a = c->cur;
  struct svc_pg_batch *b = svc_pg_batch_new(c->pg, on_stage, apply_done, c);
  if (!a->v) a->v = malloc(a->n * sizeof *a->v);
  if (!b || !a->v) goto fail;
  a->stage = 0;
  a->flushed = 0;
  for (size_t i = 0; i < a->n; i++)
    a->v[i] = (struct svc_stream_event){ a->evs[i].seq, a->evs[i].event_us, a->evs[i].kind,
                                         a->evs[i].addressee, a->evs[i].payload, a->evs[i].len };
  if (svc__stream_store_advance(&c->st, b, c->producer, a->from, a->to) ||
      c->apply(c->arg, b, a->v, a->n) != 0)
    goto fail;
  svc_pg_submit(b);
  return;
fail:
  svc_pg_batch_discard(&b);
  apply_failed(c, "the consumer could not stage the events");
}

static void apply_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct svc_stream_consumer *c = arg;
  struct applying *a = c->cur;
  if (oc == SVC_PG_COMMITTED) {
    c->transient_ms = 0;
    if (c->poison_seq && c->poison_seq <= a->to) {
      svc_info("event applied after failing", " consumer=%s producer=%s seq=%llu attempts=%llu",
               c->consumer, c->producer, (unsigned long long)c->poison_seq,
               (unsigned long long)c->poison_tries);
      c->poison_seq = c->poison_tries = 0;
    }
    c->applied = a->to;
    for (size_t i = 0; i < a->n; i++)
      if (a->evs[i].event_us > c->applied_event_us) c->applied_event_us = a->evs[i].event_us;
    int64_t now = svc_mono_us();
    for (size_t i = 0; i < a->n; i++) svc_hist_observe(&c->apply_hist, now - a->evs[i].arrived_us);
    c->stats.applied += a->n;
    c->stats.batches++;
    c->stats.position = c->applied;
    c->cur = NULL;
    applying_free(a);
    send_ack(c);
    if (c->draining && c->drained) {
      c->drained(c->drained_arg);
      c->drained = NULL;
      return;
    }
    maybe_apply(c);
    return;
  }
  if (oc == SVC_PG_RETRY && c->draining) { /* shutting down: the events come again */
    c->cur = NULL;
    applying_free(a);
    if (c->drained) c->drained(c->drained_arg);
    c->drained = NULL;
    return;
  }
  if (oc == SVC_PG_RETRY) { /* nothing committed: apply the same events again */
    stage_apply(c);
    return;
  }
  if (strcmp(svc_pg_batch_sqlstate(b), SVC_STREAM_SQLSTATE_MISMATCH) == 0) {
    svc_warn("position moved under us; reloading", " consumer=%s producer=%s", c->consumer,
             c->producer);
    c->cur = NULL;
    applying_free(a);
    c->loaded = 0;
    queue_clear(c);
    if (c->draining) { /* nothing more to finish */
      if (c->drained) c->drained(c->drained_arg);
      c->drained = NULL;
      return;
    }
    load_position(c);
    return;
  }
  if (transient(svc_pg_batch_sqlstate(b)) && !c->draining) {
    /* Not the events' fault (the server is failing over, full, shutting down,
     * or the transaction lost a race): the same apply again, no bisection. */
    char q[512];
    c->stats.errors++;
    int64_t ms = c->transient_ms ? c->transient_ms * 2 : RETRY_MIN_MS;
    c->transient_ms = ms > RETRY_MAX_MS / 2 ? RETRY_MAX_MS / 2 : ms;
    svc_warn("cannot apply events for now; retrying them", " consumer=%s producer=%s from=%llu"
             " sqlstate=%s retry_ms=%lld error=%s", c->consumer, c->producer,
             (unsigned long long)a->from, svc_pg_batch_sqlstate(b), (long long)c->transient_ms,
             svc_log_quote(q, sizeof q, err ? err : ""));
    uv_timer_start(&c->retry, retry_cb, (uint64_t)c->transient_ms, 0);
    return;
  }
  apply_failed(c, err ? err : "");
}

static void maybe_apply(struct svc_stream_consumer *c)
{
  if (c->cur || c->q_n == 0 || !c->loaded) return;
  size_t n = c->q_n < c->max_batch ? c->q_n : c->max_batch;
  struct applying *a = calloc(1, sizeof *a);
  struct cev *evs = malloc(n * sizeof *evs);
  if (!a || !evs) {
    free(a);
    free(evs);
    return;
  }
  for (size_t i = 0; i < n; i++) evs[i] = c->q[(c->q_head + i) % c->q_cap];
  c->q_head = (c->q_head + n) % c->q_cap;
  c->q_n -= n;
  a->c = c;
  a->evs = evs;
  a->n = n;
  a->from = c->applied;
  a->to = evs[n - 1].seq;
  c->cur = a;
  stage_apply(c);
}

/* ---- timer and start-up ---------------------------------------------------- */

static void on_message(struct svc_zsock *z, const struct svc_frame *f, size_t n,
                       const char *user_id, void *arg);

/* A fresh DEALER: libzmq never reconnects a connection it closed for a
 * protocol error (e.g. a frame over ZMQ_MAXMSGSIZE). */
static void reconnect(struct svc_stream_consumer *c)
{
  struct svc_zsock_opts zo = { .type = ZMQ_DEALER, .connect = c->endpoint,
                               .heartbeat_ms = c->heartbeat_ms, .server_key = c->server_key };
  struct svc_zsock *n = svc_zsock_new(c->z, c->loop, &zo, on_message, c);
  if (!n) return;
  svc_zsock_close(&c->sock);
  c->sock = n;
}

static void tick(struct svc_stream_consumer *c)
{
  if (!c->loaded || c->draining) return;
  int64_t now = svc_mono_us();
  if (!c->resub_due && now - c->heard_us > (int64_t)c->silence_ms * 1000) reconnect(c);
  if (c->resub_due || now - c->heard_us > (int64_t)c->silence_ms * 1000)
    request_resubscribe(c, c->resub_due ? "error from producer" : "producer silent");
  else if (now - c->acked_us >= (int64_t)c->heartbeat_ms * 1000)
    send_ack(c);
}

static void timer_cb(uv_timer_t *t)
{
  tick(t->data);
}

static void retry_cb(uv_timer_t *t)
{
  struct svc_stream_consumer *c = t->data;
  if (c->cur && !c->draining) stage_apply(c);
}

static void position_result(void *arg, const PGresult *r)
{
  struct svc_stream_consumer *c = arg;
  c->applied = PQntuples(r) == 1 ? (uint64_t)svc_pg_get_i64(r, 0, 0) : 0;
  c->loaded = 1;
}

static void position_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct svc_stream_consumer *c = arg;
  (void)b;
  if (oc != SVC_PG_COMMITTED || !c->loaded) {
    if (oc == SVC_PG_FAILED)
      svc_error("cannot read stream position", " consumer=%s error=\"%s\"", c->consumer, err ? err : "");
    load_position(c);
    return;
  }
  c->stats.position = c->applied;
  svc_info("stream position loaded", " consumer=%s producer=%s position=%llu", c->consumer,
           c->producer, (unsigned long long)c->applied);
  if (!c->draining) subscribe(c);
}

static void load_position(struct svc_stream_consumer *c)
{
  struct svc_pg_batch *b = svc_pg_batch_new(c->pg, NULL, position_done, c);
  if (!b) return;
  svc_pg_batch_readonly(b);
  svc__stream_store_position(&c->st, b, c->producer, position_result, c);
  svc_pg_submit(b);
}

struct svc_stream_consumer *svc_stream_consumer_new(uv_loop_t *loop, struct svc_zctx *z,
                                                    struct svc_pg *pg,
                                                    const struct svc_stream_consumer_opts *o,
                                                    svc_stream_apply_cb apply, void *arg)
{
  struct svc_stream_consumer *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->loop = loop;
  c->z = z;
  c->pg = pg;
  c->apply = apply;
  c->arg = arg;
  c->endpoint = strdup(o->endpoint);
  c->consumer = strdup(o->consumer);
  c->producer = strdup(o->producer);
  c->server_key = o->server_key ? strdup(o->server_key) : NULL;
  c->window = o->window ? o->window : 1000;
  c->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : 1000;
  c->silence_ms = o->silence_ms ? o->silence_ms : 5000;
  c->max_batch = o->max_batch ? o->max_batch : c->window;
  if (!c->endpoint || !c->consumer || !c->producer ||
      svc__stream_store_prepare_consumer(&c->st, pg))
    goto fail;
  struct svc_zsock_opts zo = { .type = ZMQ_DEALER, .connect = o->endpoint,
                               .heartbeat_ms = c->heartbeat_ms, .server_key = o->server_key };
  c->sock = svc_zsock_new(z, loop, &zo, on_message, c);
  if (!c->sock) goto fail;
  uv_timer_init(loop, &c->timer);
  uv_timer_init(loop, &c->retry);
  c->timer.data = c;
  c->retry.data = c;
  uv_timer_start(&c->timer, timer_cb, (uint64_t)c->heartbeat_ms / 2, (uint64_t)c->heartbeat_ms / 2);
  load_position(c);
  return c;
fail:
  svc_error("cannot create stream consumer", " endpoint=%s", o->endpoint);
  free(c->server_key);
  free(c->endpoint);
  free(c->consumer);
  free(c->producer);
  free(c);
  return NULL;
}

void svc_stream_consumer_drain(struct svc_stream_consumer *c, void (*done)(void *), void *arg)
{
  c->draining = 1;
  svc_zsock_pause(c->sock, 1);
  if (c->cur && uv_is_active((uv_handle_t *)&c->retry)) { /* not in flight: drop it */
    uv_timer_stop(&c->retry);
    applying_free(c->cur);
    c->cur = NULL;
  }
  if (!c->cur) {
    done(arg);
    return;
  }
  c->drained = done;
  c->drained_arg = arg;
}

static void consumer_free_cb(uv_handle_t *h)
{
  struct svc_stream_consumer *c = h->data;
  if (--c->open_handles > 0) return;
  queue_clear(c);
  free(c->q);
  free(c->endpoint);
  free(c->consumer);
  free(c->producer);
  free(c->server_key);
  free(c);
}

void svc_stream_consumer_destroy(struct svc_stream_consumer **cp)
{
  struct svc_stream_consumer *c = *cp;
  if (!c) return;
  *cp = NULL;
  if (c->cur) { /* its batch still refers to c: keep the record until the pg is gone */
    applying_free(c->cur);
    c->cur = NULL;
  }
  svc_zsock_close(&c->sock);
  uv_timer_stop(&c->timer);
  uv_timer_stop(&c->retry);
  c->open_handles = 2;
  uv_close((uv_handle_t *)&c->timer, consumer_free_cb);
  uv_close((uv_handle_t *)&c->retry, consumer_free_cb);
}

void svc_stream_consumer_stages(struct svc_stream_consumer *c, svc_stream_apply_next_cb next,
                                struct svc_stream_producer *flush_to)
{
  c->apply_next = next;
  c->flush_to = flush_to;
}

uint64_t svc_stream_consumer_position(const struct svc_stream_consumer *c)
{
  return c->applied;
}

void svc_stream_consumer_stats(const struct svc_stream_consumer *c,
                               struct svc_stream_consumer_stats *st)
{
  *st = c->stats;
  st->position = c->applied;
  st->poison_seq = c->poison_seq;
  st->poison_tries = c->poison_tries;
  uint64_t head = c->head > c->received ? c->head : c->received;
  st->lag = head > c->applied ? head - c->applied : 0;
  st->lag_us = st->lag && c->seen_event_us > c->applied_event_us
                 ? (uint64_t)(c->seen_event_us - c->applied_event_us) : 0;
}

const struct svc_hist *svc_stream_consumer_apply_hist(const struct svc_stream_consumer *c)
{
  return &c->apply_hist;
}
