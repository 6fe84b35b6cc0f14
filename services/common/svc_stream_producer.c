/* The stream producer: stages events into the service's write transactions,
 * keeps the committed live tail in a ring, knows the head, publishes
 * wall-mode watermarks, and owns the ROUTER whose subscribers
 * svc_stream_serve.c serves. See svc_stream.h. */
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "svc_alloc.h"
#include "svc_log.h"
#include "svc_stream_producer_int.h"
#include "svc_time.h"

/* The insert of some of a batch's events (one svc_stream_flush): they get
 * base+1..base+n when the batch commits. */
struct chunk {
  size_t from, n;
  int64_t base;
  int have_base;
  struct chunk *next;
};

/* Events appended to one batch: they belong to it, are inserted with it and
 * published when it commits, or dropped with it. */
struct staged {
  struct svc_stream_producer *p;
  struct svc_pg_batch *b;
  uint64_t batch_id;
  struct ev *evs;
  size_t n, cap, n_flushed;
  struct chunk *chunks, *chunks_tail;
  struct staged *next;
};

/* ---- events ------------------------------------------------------------- */

static void ev_free(struct ev *e)
{
  free(e->kind);
  free(e->addressee);
  free(e->payload);
  memset(e, 0, sizeof *e);
}

static void staged_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg);
static void staged_before_commit(struct svc_pg_batch *b, void *arg);

/* The events appended to b so far; with create, a new empty record hooked to
 * b's end. NULL when there is none (or out of memory). */
static struct staged *staged_for(struct svc_stream_producer *p, struct svc_pg_batch *b, int create)
{
  uint64_t id = svc_pg_batch_id(b);
  for (struct staged *s = p->open; s; s = s->next)
    if (s->b == b && s->batch_id == id) return s;
  if (!create) return NULL;
  struct staged *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->p = p;
  s->b = b;
  s->batch_id = id;
  if (svc_pg_batch_hook(b, staged_done, s)) {
    free(s);
    return NULL;
  }
  /* Whatever is appended and not flushed by then goes in just before COMMIT. */
  if (svc_pg_batch_before_commit(b, staged_before_commit, s)) {
    s->b = NULL; /* the end hook frees it */
    return NULL;
  }
  s->next = p->open;
  p->open = s;
  return s;
}

int svc_stream_append(struct svc_stream_producer *p, struct svc_pg_batch *b, int64_t event_us,
                      const char *kind, const char *addressee, const void *payload, size_t len)
{
  struct staged *s = staged_for(p, b, 1);
  if (!s) return -1;
  if (s->n == s->cap) {
    size_t cap = s->cap ? s->cap * 2 : 64;
    struct ev *n = realloc(s->evs, cap * sizeof *n);
    if (!n) return -1;
    s->evs = n;
    s->cap = cap;
  }
  struct ev *e = &s->evs[s->n];
  memset(e, 0, sizeof *e);
  e->event_us = event_us;
  e->kind = strdup(kind);
  e->addressee = strdup(addressee ? addressee : "");
  e->payload = malloc(len ? len : 1);
  e->len = len;
  if (!e->kind || !e->addressee || !e->payload) {
    ev_free(e);
    return -1;
  }
  if (len) memcpy(e->payload, payload, len);
  s->n++;
  return 0;
}

int svc_stream_append_msg(struct svc_stream_producer *p, struct svc_pg_batch *b, int64_t event_us,
                          const char *kind, const char *addressee, const struct ProtobufCMessage *m)
{
  size_t len = protobuf_c_message_get_packed_size(m);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return -1;
  protobuf_c_message_pack(m, buf);
  int rc = svc_stream_append(p, b, event_us, kind, addressee, buf, len);
  free(buf);
  return rc;
}

int svc_stream_watermark(struct svc_stream_producer *p, struct svc_pg_batch *b, int64_t us)
{
  return svc_stream_append(p, b, us, SVC_STREAM_WATERMARK, SVC_STREAM_BROADCAST, "", 0);
}

static void staged_free(struct staged *s)
{
  for (size_t i = 0; i < s->n; i++) ev_free(&s->evs[i]);
  free(s->evs);
  for (struct chunk *c = s->chunks; c;) {
    struct chunk *n = c->next;
    free(c);
    c = n;
  }
  free(s);
}

static void append_result(void *arg, const PGresult *r)
{
  struct chunk *c = arg;
  if (PQntuples(r) == 1) {
    c->base = svc_pg_get_i64(r, 0, 0);
    c->have_base = 1;
  }
}

/* Moves committed events into the ring, resetting it if they do not follow
 * the last one (another writer committed in between). */
static void ring_push(struct svc_stream_producer *p, struct ev *evs, size_t n, uint64_t base)
{
  if (p->ring_first == 0 || base != p->head) {
    for (uint64_t q = p->ring_first; q && q <= p->head; q++) ev_free(&p->ring[q % p->ring_cap]);
    p->ring_first = base + 1;
  }
  for (size_t i = 0; i < n; i++) {
    uint64_t seq = base + 1 + i;
    evs[i].seq = seq;
    struct ev *slot = &p->ring[seq % p->ring_cap];
    if (seq - p->ring_first >= p->ring_cap) { /* full: drop the oldest */
      ev_free(slot);
      p->ring_first = seq - p->ring_cap + 1;
    }
    *slot = evs[i];
    if (strcmp(evs[i].kind, SVC_STREAM_WATERMARK) == 0 && evs[i].event_us > p->watermark_us)
      p->watermark_us = evs[i].event_us;
    memset(&evs[i], 0, sizeof evs[i]);
  }
  p->head = base + n;
}

/* The batch ended: its events are published if it committed, else dropped
 * with it (they never were in the outbox). */
static void staged_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct staged *s = arg;
  struct svc_stream_producer *p = s->p;
  (void)b;
  (void)err;
  for (struct staged **pp = &p->open; *pp; pp = &(*pp)->next)
    if (*pp == s) {
      *pp = s->next;
      break;
    }
  if (oc == SVC_PG_COMMITTED) {
    if (s->n_flushed != s->n)
      svc_error("batch committed without some of its stream events", " stream=%s missing=%zu",
                p->name, s->n - s->n_flushed);
    for (struct chunk *c = s->chunks; c; c = c->next) {
      if (!c->have_base) {
        svc_error("committed stream events without their seq", " stream=%s events=%zu", p->name, c->n);
        continue;
      }
      ring_push(p, s->evs + c->from, c->n, (uint64_t)c->base);
      p->stats.appended += c->n;
    }
    p->stats.head = p->head;
    for (struct sub *x = p->subs; x; x = x->next) svc__stream_feed(p, x);
  } else {
    p->stats.dropped += s->n;
  }
  staged_free(s);
}

static void staged_before_commit(struct svc_pg_batch *b, void *arg)
{
  struct staged *s = arg;
  if (s->b && svc_stream_flush(s->p, b) < 0)
    svc_pg_batch_fail(b, "cannot stage the batch's stream events");
}

int svc_stream_flush(struct svc_stream_producer *p, struct svc_pg_batch *b)
{
  struct staged *s = staged_for(p, b, 0);
  if (!s || s->n_flushed == s->n) return 0;
  struct chunk *c = calloc(1, sizeof *c);
  struct svc_pgarr a[4];
  svc_pgarr_init(&a[0], SVC_OID_INT8);
  svc_pgarr_init(&a[1], SVC_OID_TEXT);
  svc_pgarr_init(&a[2], SVC_OID_TEXT);
  svc_pgarr_init(&a[3], SVC_OID_BYTEA);
  for (size_t i = s->n_flushed; i < s->n; i++) {
    struct ev *e = &s->evs[i];
    svc_pgarr_add_i64(&a[0], e->event_us);
    svc_pgarr_add(&a[1], e->kind, strlen(e->kind));
    svc_pgarr_add(&a[2], e->addressee, strlen(e->addressee));
    svc_pgarr_add(&a[3], e->payload, e->len);
  }
  int rc = -1;
  for (int i = 0; i < 4; i++) if (svc_pgarr_finish(&a[i])) goto out;
  if (!c) goto out;
  c->from = s->n_flushed;
  c->n = s->n - s->n_flushed;
  if (svc__stream_store_append(&p->st, b, a, (int64_t)c->n, append_result, c)) goto out;
  if (s->chunks_tail) s->chunks_tail->next = c; else s->chunks = c;
  s->chunks_tail = c;
  s->n_flushed = s->n;
  rc = (int)c->n;
  c = NULL;
out:
  for (int i = 0; i < 4; i++) svc_pgarr_free(&a[i]);
  free(c);
  if (rc < 0) svc_error("cannot stage stream events", " stream=%s", p->name);
  return rc;
}

uint64_t svc_stream_head(const struct svc_stream_producer *p)
{
  return p->head;
}

int64_t svc_stream_last_watermark(const struct svc_stream_producer *p)
{
  return p->watermark_us;
}

static void head_result(void *arg, const PGresult *r)
{
  struct svc_stream_producer *p = arg;
  if (PQntuples(r) != 1) return;
  uint64_t h = (uint64_t)svc_pg_get_i64(r, 0, 0);
  if (h > p->head) p->head = h; /* a commit may have moved it on meanwhile */
  p->head_known = 1;
  p->stats.head = p->head;
}

static void head_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct svc_stream_producer *p = arg;
  (void)b;
  if (oc != SVC_PG_COMMITTED || !p->head_known) {
    svc_warn("cannot read the stream head; retrying", " stream=%s error=\"%s\"", p->name,
             err ? err : "connection");
    struct svc_pg_batch *nb = svc_pg_batch_new(p->pgr, NULL, head_done, p);
    if (!nb) return;
    svc_pg_batch_readonly(nb);
    svc__stream_store_head(&p->st, nb, head_result, p);
    svc_pg_submit(nb);
    return;
  }
  svc_info("stream ready", " stream=%s head=%llu", p->name, (unsigned long long)p->head);
  for (struct sub *s = p->subs; s; s = s->next) svc__stream_feed(p, s);
}

/* ---- watermarks in wall mode ------------------------------------------------ */

static void wm_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct svc_stream_producer *p = arg;
  (void)b;
  (void)oc;
  (void)err;
  p->wm_busy = 0;
}

/* The watermark is decided once its transaction runs (its first stage is in):
 * every batch submitted before it has ended by then, and with it any
 * watermark the service appended, so it never goes back. */
static void wm_stage(struct svc_pg_batch *b, void *arg)
{
  struct svc_stream_producer *p = arg;
  if (p->wm_busy != 1) return; /* the insert's stage is in: nothing more */
  p->wm_busy = 2;
  int64_t us = p->wm_fn(p->wm_arg);
  if (us > p->watermark_us && svc_stream_watermark(p, b, us)) /* inserted before commit */
    svc_pg_batch_fail(b, "cannot append a watermark");
}

static void wm_timer_cb(uv_timer_t *t)
{
  struct svc_stream_producer *p = t->data;
  if (p->stopped || p->wm_busy || !p->head_known || !svc_pg_is_up(p->pgw)) return;
  if (p->wm_fn(p->wm_arg) <= p->watermark_us) return; /* nothing new to promise now */
  struct svc_pg_batch *b = svc_pg_batch_new(p->pgw, wm_stage, wm_done, p);
  if (!b) return;
  p->wm_busy = 1;
  svc_pg_submit(b);
}

/* ---- lifecycle --------------------------------------------------------------- */

struct svc_stream_producer *svc_stream_producer_new(uv_loop_t *loop, struct svc_zctx *z,
                                                    struct svc_pg *pg_write, struct svc_pg *pg_read,
                                                    const struct svc_stream_producer_opts *o)
{
  struct svc_stream_producer *p = calloc(1, sizeof *p);
  if (!p) return NULL;
  p->loop = loop;
  p->z = z;
  p->pgw = pg_write;
  p->pgr = pg_read;
  p->name = strdup(o->name ? o->name : "stream");
  p->full_access = strdup(o->full_access ? o->full_access : "");
  p->ring_cap = o->ring_events ? o->ring_events : 65536;
  p->max_window = o->max_window ? o->max_window : 10000;
  p->heartbeat_ms = o->heartbeat_ms ? o->heartbeat_ms : 1000;
  p->dead_ms = o->dead_ms ? o->dead_ms : 10000;
  p->ring = calloc(p->ring_cap, sizeof *p->ring);
  if (!p->name || !p->full_access || !p->ring ||
      svc__stream_store_prepare_producer(&p->st, pg_write, pg_read))
    goto fail;
  struct svc_zsock_opts zo = { .type = ZMQ_ROUTER, .bind = o->endpoint };
  p->sock = svc_zsock_new(z, loop, &zo, svc__stream_on_message, p);
  if (!p->sock) goto fail;
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
  uint64_t tick_ms = (uint64_t)p->heartbeat_ms / 4 + 1;
  uv_timer_start(&p->timer, svc__stream_timer_cb, tick_ms, tick_ms);
  uv_timer_init(loop, &p->wm_timer);
  p->wm_timer.data = p;
  p->wm_fn = o->watermark_fn;
  p->wm_arg = o->watermark_arg;
  if (o->watermark_ms > 0 && o->watermark_fn)
    uv_timer_start(&p->wm_timer, wm_timer_cb, (uint64_t)o->watermark_ms, (uint64_t)o->watermark_ms);
  struct svc_pg_batch *b = svc_pg_batch_new(pg_read, NULL, head_done, p);
  if (!b) goto fail;
  svc_pg_batch_readonly(b);
  svc__stream_store_head(&p->st, b, head_result, p);
  svc_pg_submit(b);
  return p;
fail:
  svc_error("cannot create stream producer", " endpoint=%s", o->endpoint);
  if (p->sock) svc_zsock_close(&p->sock);
  free(p->ring);
  free(p->name);
  free(p->full_access);
  free(p);
  return NULL;
}

void svc_stream_producer_stop(struct svc_stream_producer *p)
{
  p->stopped = 1;
}

static void producer_free_cb(uv_handle_t *h)
{
  struct svc_stream_producer *p = h->data;
  if (--p->open_handles > 0) return; /* both timers must be closed */
  for (uint64_t q = p->ring_first; q && q <= p->head; q++) ev_free(&p->ring[q % p->ring_cap]);
  free(p->ring);
  while (p->open) { /* batches never ended: their connection is gone */
    struct staged *s = p->open;
    p->open = s->next;
    staged_free(s);
  }
  while (p->subs) {
    struct sub *s = p->subs;
    p->subs = s->next;
    svc__stream_sub_free(s);
  }
  free(p->name);
  free(p->full_access);
  free(p);
}

void svc_stream_producer_destroy(struct svc_stream_producer **pp)
{
  struct svc_stream_producer *p = *pp;
  if (!p) return;
  *pp = NULL;
  svc_zsock_close(&p->sock);
  uv_timer_stop(&p->timer);
  uv_timer_stop(&p->wm_timer);
  p->open_handles = 2;
  uv_close((uv_handle_t *)&p->timer, producer_free_cb);
  uv_close((uv_handle_t *)&p->wm_timer, producer_free_cb);
}

void svc_stream_producer_stats(const struct svc_stream_producer *p,
                               struct svc_stream_producer_stats *st)
{
  *st = p->stats;
  st->head = p->head;
}
