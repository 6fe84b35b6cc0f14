/* The group-commit request/reply server: decodes requests as they arrive,
 * stages every waiting request into one pipelined transaction while the
 * previous one commits, replies only after commit, retries batches the
 * connection lost, and re-runs a failed batch one request at a time. */
#include "svc_server.h"

#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "svc_log.h"
#include "svc_status.h"
#include "svc_stream.h"
#include "svc_time.h"

struct sbatch {
  struct svc_server *srv;
  struct svc_req *reqs, *tail;
  size_t n;
  int stage;    /* the stage whose results just arrived */
  int flushed;  /* stream events added: the next stage is the last */
};

struct svc_server {
  uv_loop_t *loop;
  struct svc_pg *pg;
  struct svc_zsock *sock;
  const struct svc_server_ops *ops;
  void *arg;
  size_t max_batch, max_pending;
  struct svc_stream_producer *producer;
  struct svc_req *wait_head, *wait_tail;
  size_t n_wait;
  struct sbatch *cur;
  int paused, draining;
  void (*drained)(void *);
  void *drained_arg;
  struct svc_server_stats st;
  struct svc_hist ack; /* request arrival to reply */
};

static void maybe_batch(struct svc_server *s);

static size_t pending(const struct svc_server *s)
{
  return s->n_wait + (s->cur ? s->cur->n : 0);
}

static void release(struct svc_server *s, struct svc_req *r)
{
  if (s->ops->release) s->ops->release(s->arg, r);
  free(r);
}

static void check_drained(struct svc_server *s)
{
  if (s->draining && s->drained && pending(s) == 0) {
    void (*cb)(void *) = s->drained;
    s->drained = NULL;
    cb(s->drained_arg);
  }
}

/* Back-pressure: stop reading while too much waits, resume at half. */
static void flow(struct svc_server *s)
{
  size_t p = pending(s);
  if (!s->paused && (s->draining || p >= s->max_pending)) {
    s->paused = 1;
    svc_zsock_pause(s->sock, 1);
  } else if (s->paused && !s->draining && p <= s->max_pending / 2) {
    s->paused = 0;
    svc_zsock_pause(s->sock, 0);
  }
}

int svc_req_reply(struct svc_req *req, const uint8_t *data, size_t len)
{
  struct svc_frame f[2] = { { req->peer, req->peer_len }, { data, len } };
  req->srv->st.replied++;
  svc_hist_observe(&req->srv->ack, svc_mono_us() - req->received_us);
  return svc_zsock_send(req->srv->sock, f, 2);
}

static void on_message(struct svc_zsock *z, const struct svc_frame *f, size_t n,
                       const char *user_id, void *arg)
{
  struct svc_server *s = arg;
  (void)z;
  s->st.requests++;
  if (n != 2 || f[0].len == 0 || f[0].len > sizeof ((struct svc_req *)0)->peer) {
    s->st.dropped++; /* not a DEALER's one-frame request: nothing to answer */
    return;
  }
  struct svc_req *r = calloc(1, sizeof *r);
  if (!r) return;
  r->srv = s;
  memcpy(r->peer, f[0].data, f[0].len);
  r->peer_len = f[0].len;
  if (user_id) snprintf(r->user_id, sizeof r->user_id, "%s", user_id);
  r->received_us = svc_mono_us();
  int rc = s->draining ? 1 : s->ops->decode(s->arg, r, f[1].data, f[1].len);
  if (rc != 0) {
    if (rc < 0) s->st.dropped++;
    release(s, r);
    return;
  }
  if (s->wait_tail) s->wait_tail->next = r; else s->wait_head = r;
  s->wait_tail = r;
  s->n_wait++;
  flow(s);
  maybe_batch(s);
}

/* Returns a batch's requests to the head of the queue; cap > 0 limits the
 * size of the batches they go into next (bisecting a failed batch). */
static void put_back(struct svc_server *s, struct sbatch *b, size_t cap)
{
  for (struct svc_req *r = b->reqs; r; r = r->next) r->cap = cap;
  if (b->tail) {
    b->tail->next = s->wait_head;
    s->wait_head = b->reqs;
    if (!s->wait_tail) s->wait_tail = b->tail;
    s->n_wait += b->n;
  }
  b->reqs = b->tail = NULL;
  b->n = 0;
}

/* After each stage: let requests add a further stage, then flush the stream
 * events they appended as the final one. */
static void on_stage(struct svc_pg_batch *pb, void *arg)
{
  struct sbatch *b = arg;
  struct svc_server *s = b->srv;
  if (b->flushed) return;
  for (;;) {
    size_t before = svc_pg_batch_size(pb);
    int more = 0, n = ++b->stage + 1;
    int failed = 0;
    for (struct svc_req *r = b->reqs; r && s->ops->stage_next; r = r->next) {
      int rc = r->done_staging ? 0 : s->ops->stage_next(s->arg, r, pb, n);
      if (rc == 1) more = 1;
      else r->done_staging = 1;
      failed |= rc < 0;
    }
    if (failed) { /* nothing of the batch commits; the failing request is found by bisection */
      b->flushed = 1;
      svc_pg_batch_fail(pb, "a request could not be staged"); /* its events go with it */
      return;
    }
    if (s->ops->stage_end) s->ops->stage_end(s->arg, pb, n);
    if (!more) break;
    if (svc_pg_batch_size(pb) != before) return; /* wait for these results */
    /* nobody added a statement: the next stage needs no round trip */
  }
  b->flushed = 1;
  /* The events go in with this last stage (else just before COMMIT). */
  if (s->producer && svc_stream_flush(s->producer, pb) < 0)
    svc_pg_batch_fail(pb, "cannot stage the batch's stream events");
}

/* Answers the request whose statement failed the batch; 1 if found. */
static int isolate(struct svc_server *s, struct sbatch *b, long idx, const char *err)
{
  if (idx < 0) return 0;
  for (struct svc_req **pp = &b->reqs, *prev = NULL; *pp; prev = *pp, pp = &(*pp)->next) {
    struct svc_req *r = *pp;
    if ((size_t)idx < r->stmt_lo || (size_t)idx >= r->stmt_hi) continue;
    *pp = r->next;
    if (b->tail == r) b->tail = prev;
    b->n--;
    s->st.rejected++;
    s->ops->failed(s->arg, r, err ? err : "database error");
    release(s, r);
    return 1;
  }
  return 0;
}

static void on_done(struct svc_pg_batch *pb, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct sbatch *b = arg;
  struct svc_server *s = b->srv;
  s->cur = NULL;
  if (oc == SVC_PG_COMMITTED) {
    s->st.batches++;
    struct svc_req *done = b->reqs;
    b->reqs = b->tail = NULL;
    b->n = 0;
    /* The next batch goes to Postgres first, so that it runs while these
     * replies are built and sent. */
    if (s->ops->stage_batch) maybe_batch(s);
    for (struct svc_req *r = done, *n; r; r = n) {
      n = r->next;
      s->ops->committed(s->arg, r);
      release(s, r);
    }
  } else if (oc == SVC_PG_RETRY) {
    put_back(s, b, 0);
  } else if (b->n > 1 && isolate(s, b, svc_pg_batch_failed_index(pb), err)) {
    put_back(s, b, 0);
  } else if (b->n > 1) {
    svc_warn("batch failed; retrying it in halves", " requests=%zu error=\"%s\"", b->n,
             err ? err : "");
    put_back(s, b, (b->n + 1) / 2);
  } else {
    for (struct svc_req *r = b->reqs, *n; r; r = n) {
      n = r->next;
      s->st.rejected++;
      s->ops->failed(s->arg, r, err ? err : "database error");
      release(s, r);
    }
  }
  free(b);
  flow(s);
  maybe_batch(s);
  check_drained(s); /* last: the drained callback may destroy the server */
}

/* Stages the requests of b one by one; a request that cannot be staged is
 * answered with an error. Returns -1 if one left statements behind (the batch
 * must be abandoned). */
static int stage_each(struct svc_server *s, struct sbatch *b, struct svc_pg_batch *pb)
{
  for (struct svc_req **pp = &b->reqs, *prev = NULL; *pp;) {
    struct svc_req *r = *pp;
    r->stmt_lo = svc_pg_batch_size(pb);
    int rc = s->ops->stage(s->arg, r, pb);
    r->stmt_hi = svc_pg_batch_size(pb);
    if (rc == 0) {
      prev = r;
      pp = &r->next;
      continue;
    }
    int partial = r->stmt_hi != r->stmt_lo;
    *pp = r->next;
    if (b->tail == r) b->tail = prev;
    b->n--;
    s->st.rejected++;
    s->ops->failed(s->arg, r, "cannot stage the request");
    release(s, r);
    if (partial) return -1;
  }
  return 0;
}

/* Stages the whole batch at once (bulk statements): no statement belongs to
 * one request, so a failure is bisected rather than pinned. */
static int stage_all(struct svc_server *s, struct sbatch *b, struct svc_pg_batch *pb)
{
  struct svc_req **v = malloc(b->n * sizeof *v);
  if (!v) return -1;
  size_t i = 0;
  for (struct svc_req *r = b->reqs; r; r = r->next) {
    r->stmt_lo = r->stmt_hi = 0;
    v[i++] = r;
  }
  int rc = s->ops->stage_batch(s->arg, v, b->n, pb);
  free(v);
  return rc;
}

/* Fills a batch with waiting requests: up to max_batch, or up to the cap the
 * head request carries after a failed batch (and only requests with the same
 * cap), then stages it and submits it. */
static void maybe_batch(struct svc_server *s)
{
  if (s->cur || !s->wait_head) return;
  struct sbatch *b = calloc(1, sizeof *b);
  struct svc_pg_batch *pb = b ? svc_pg_batch_new(s->pg, on_stage, on_done, b) : NULL;
  if (!pb) {
    free(b);
    return;
  }
  b->srv = s;
  size_t cap = s->wait_head->cap, limit = cap ? cap : s->max_batch;
  while (s->wait_head && b->n < limit && s->wait_head->cap == cap) {
    struct svc_req *r = s->wait_head;
    s->wait_head = r->next;
    if (!s->wait_head) s->wait_tail = NULL;
    s->n_wait--;
    r->next = NULL;
    r->done_staging = 0;
    if (b->tail) b->tail->next = r; else b->reqs = r;
    b->tail = r;
    b->n++;
  }
  int rc = s->ops->stage_batch ? stage_all(s, b, pb) : stage_each(s, b, pb);
  if (rc != 0 || b->n == 0) {
    svc_pg_batch_discard(&pb);
    put_back(s, b, cap);
    free(b);
    check_drained(s);
    if (rc != 0) svc_error("cannot stage a batch; it waits for the next attempt", "%s", "");
    return;
  }
  s->cur = b;
  svc_pg_submit(pb);
}

struct svc_server *svc_server_new(uv_loop_t *loop, struct svc_zctx *z, struct svc_pg *pg,
                                  const struct svc_server_opts *o,
                                  const struct svc_server_ops *ops, void *arg)
{
  struct svc_server *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->loop = loop;
  s->pg = pg;
  s->ops = ops;
  s->arg = arg;
  s->max_batch = o->max_batch ? o->max_batch : 1000;
  s->max_pending = o->max_pending ? o->max_pending : 20000;
  s->producer = o->producer;
  struct svc_zsock_opts zo = { .type = ZMQ_ROUTER, .bind = o->endpoint };
  s->sock = svc_zsock_new(z, loop, &zo, on_message, s);
  if (!s->sock) {
    free(s);
    return NULL;
  }
  return s;
}

void svc_server_drain(struct svc_server *s, void (*done)(void *), void *arg)
{
  s->draining = 1;
  s->drained = done;
  s->drained_arg = arg;
  flow(s);
  check_drained(s);
}

void svc_server_destroy(struct svc_server **sp)
{
  struct svc_server *s = *sp;
  if (!s) return;
  *sp = NULL;
  svc_zsock_close(&s->sock);
  for (struct svc_req *r = s->wait_head, *n; r; r = n) {
    n = r->next;
    release(s, r);
  }
  if (s->cur) { /* its pg batch was discarded by the connection's destruction */
    for (struct svc_req *r = s->cur->reqs, *n; r; r = n) {
      n = r->next;
      release(s, r);
    }
    free(s->cur);
  }
  free(s);
}

void svc_server_stats(const struct svc_server *s, struct svc_server_stats *st)
{
  *st = s->st;
  st->pending = pending(s);
}

void svc_server_count_rejected(struct svc_server *s)
{
  s->st.rejected++;
}

int svc_req_reply_msg(struct svc_req *req, const struct ProtobufCMessage *m)
{
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return -1;
  protobuf_c_message_pack(m, buf);
  int rc = svc_req_reply(req, buf, len);
  free(buf);
  return rc;
}

void svc_server_status(const struct svc_server *s, const char *prefix, struct svc_status_out *o)
{
  struct svc_server_stats st;
  svc_server_stats(s, &st);
  const struct svc_status_kv kv[] = {
    { "requests", st.requests }, { "replied", st.replied }, { "batches", st.batches },
    { "rejected", st.rejected }, { "dropped", st.dropped }, { "pending", st.pending },
  };
  svc_status_add_all(o, prefix, kv, sizeof kv / sizeof kv[0]);
  char name[64];
  snprintf(name, sizeof name, "%s.ack", prefix);
  svc_status_add_hist(o, name, &s->ack); /* request received to reply sent */
}

const struct svc_hist *svc_server_ack_hist(const struct svc_server *s)
{
  return s ? &s->ack : NULL;
}
