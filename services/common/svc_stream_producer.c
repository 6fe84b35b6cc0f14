/* The stream producer: stages events into the service's write transactions,
 * keeps the committed live tail in a ring, and serves subscribers over a
 * ROUTER with per-subscriber windows, filtering by authenticated identity,
 * catch-up pages from Postgres and idle heartbeats. See svc_stream.h. */
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "svc_alloc.h"
#include "svc_log.h"
#include "svc_stream_int.h"
#include "svc_time.h"

#define MAX_EVENTS_PER_MSG 256
#define MAX_BYTES_PER_MSG (512 * 1024)
#define PAGE_ROWS 1000
#define ID_MAX 127

struct ev {
  uint64_t seq;
  int64_t event_us;
  char *kind, *addressee;
  uint8_t *payload;
  size_t len;
};

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

struct sub {
  char id[ID_MAX + 1];
  uint8_t peer[256];
  size_t peer_len;
  int full;            /* sees every event */
  uint64_t session;    /* echoed in Events */
  uint64_t gen;        /* changes with each Subscribe, for catch-up staleness */
  uint64_t pos;        /* every event <= pos has been considered */
  uint64_t last_sent;  /* seq of the last event sent (from_seq of the next) */
  uint64_t *inflight;  /* seqs sent, not acknowledged (FIFO of capacity window) */
  size_t if_head, if_n;
  uint32_t window;
  int64_t heard_us, sent_us;
  int catchup_busy;
  struct sub *next;
};

struct svc_stream_producer {
  uv_loop_t *loop;
  struct svc_zctx *z;
  struct svc_pg *pgw, *pgr;
  struct svc__stream_stmts st;
  struct svc_zsock *sock;
  uv_timer_t timer, wm_timer;
  int64_t (*wm_fn)(void *);
  void *wm_arg;
  int wm_busy; /* a periodic watermark batch: 1 submitted, 2 its value decided */
  int open_handles;
  char *name, *full_access;
  size_t ring_cap;
  struct ev *ring;     /* ring[seq % ring_cap] for ring_first <= seq <= head */
  uint64_t ring_first; /* 0: empty */
  uint64_t head;
  int head_known;
  int64_t watermark_us;
  struct staged *open; /* batches with appended events, not yet ended */
  uint32_t max_window;
  int heartbeat_ms, dead_ms;
  int stopped;
  uint64_t gen_counter;
  struct sub *subs;
  struct svc_stream_producer_stats stats;
};

static void feed(struct svc_stream_producer *p, struct sub *s);

/* ---- events ------------------------------------------------------------- */

static void ev_free(struct ev *e)
{
  free(e->kind);
  free(e->addressee);
  free(e->payload);
  memset(e, 0, sizeof *e);
}

static int visible(const struct sub *s, const struct ev *e)
{
  return s->full || strcmp(e->addressee, SVC_STREAM_BROADCAST) == 0 ||
         strcmp(e->addressee, s->id) == 0;
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
    for (struct sub *x = p->subs; x; x = x->next) feed(p, x);
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

/* ---- sending -------------------------------------------------------------- */

static uint32_t credit(const struct sub *s)
{
  return s->if_n >= s->window ? 0 : s->window - (uint32_t)s->if_n;
}

/* Sends evs to the subscriber and counts them in flight. 0, or -1 when the
 * socket did not take the message (the peer's queue is full): nothing of it
 * counts as sent, and the caller tries again from s->last_sent later. */
static int send_events(struct svc_stream_producer *p, struct sub *s, const struct ev *const *evs,
                        size_t n)
{
  Whistle__Stream__Event items[MAX_EVENTS_PER_MSG];
  Whistle__Stream__Event *ptrs[MAX_EVENTS_PER_MSG];
  for (size_t i = 0; i < n; i++) {
    whistle__stream__event__init(&items[i]);
    items[i].seq = evs[i]->seq;
    items[i].event_time_us = evs[i]->event_us;
    items[i].kind = evs[i]->kind;
    items[i].addressee = evs[i]->addressee;
    items[i].payload.data = evs[i]->payload;
    items[i].payload.len = evs[i]->len;
    ptrs[i] = &items[i];
  }
  Whistle__Stream__Events body = WHISTLE__STREAM__EVENTS__INIT;
  body.from_seq = s->last_sent;
  body.session = s->session;
  body.n_events = n;
  body.events = ptrs;
  Whistle__Stream__StreamMessage m = WHISTLE__STREAM__STREAM_MESSAGE__INIT;
  m.version = SVC_STREAM_VERSION;
  m.body_case = WHISTLE__STREAM__STREAM_MESSAGE__BODY_EVENTS;
  m.events = &body;
  if (svc__stream_send(p->sock, s->peer, s->peer_len, &m)) return -1;
  for (size_t i = 0; i < n; i++) {
    s->inflight[(s->if_head + s->if_n) % s->window] = evs[i]->seq;
    s->if_n++;
  }
  s->last_sent = evs[n - 1]->seq;
  s->sent_us = svc_mono_us();
  p->stats.sent += n;
  if (s->if_n > p->stats.max_inflight) p->stats.max_inflight = s->if_n;
  return 0;
}

struct page_req {
  struct svc_stream_producer *p;
  char id[ID_MAX + 1];
  uint64_t gen, upto;
  int limit;
};

static struct sub *find_sub(struct svc_stream_producer *p, const char *id)
{
  for (struct sub *s = p->subs; s; s = s->next)
    if (strcmp(s->id, id) == 0) return s;
  return NULL;
}

static void page_result(void *arg, const PGresult *r)
{
  struct page_req *q = arg;
  struct svc_stream_producer *p = q->p;
  struct sub *s = find_sub(p, q->id);
  if (!s || s->gen != q->gen) return;
  int rows = PQntuples(r);
  struct ev evs[MAX_EVENTS_PER_MSG];
  const struct ev *ptrs[MAX_EVENTS_PER_MSG];
  size_t n = 0, bytes = 0;
  for (int i = 0; i < rows; i++) {
    struct ev *e = &evs[n];
    e->seq = (uint64_t)svc_pg_get_i64(r, i, 0);
    e->event_us = svc_pg_get_i64(r, i, 1);
    e->kind = PQgetvalue(r, i, 2);
    e->addressee = PQgetvalue(r, i, 3);
    e->payload = (uint8_t *)PQgetvalue(r, i, 4);
    e->len = (size_t)PQgetlength(r, i, 4);
    ptrs[n++] = e;
    bytes += e->len;
    if (n == MAX_EVENTS_PER_MSG || bytes >= MAX_BYTES_PER_MSG || i + 1 == rows) {
      if (send_events(p, s, ptrs, n)) { /* the peer's queue is full: from here later */
        s->pos = s->last_sent;
        p->stats.catchup_pages++;
        return;
      }
      n = bytes = 0;
    }
  }
  s->pos = rows < q->limit ? q->upto : (uint64_t)svc_pg_get_i64(r, rows - 1, 0);
  p->stats.catchup_pages++;
}

static void page_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct page_req *q = arg;
  struct svc_stream_producer *p = q->p;
  (void)b;
  struct sub *s = find_sub(p, q->id);
  if (s && s->gen == q->gen) {
    s->catchup_busy = 0;
    if (oc != SVC_PG_COMMITTED)
      svc_warn("catch-up page failed", " stream=%s subscriber=%s error=\"%s\"", p->name, s->id,
               err ? err : "connection");
    else feed(p, s);
  }
  free(q);
}

static void start_page(struct svc_stream_producer *p, struct sub *s, uint64_t upto)
{
  struct page_req *q = calloc(1, sizeof *q);
  if (!q) return;
  q->p = p;
  snprintf(q->id, sizeof q->id, "%s", s->id);
  q->gen = s->gen;
  q->upto = upto;
  q->limit = (int)(credit(s) < PAGE_ROWS ? credit(s) : PAGE_ROWS);
  struct svc_pg_batch *b = svc_pg_batch_new(p->pgr, NULL, page_done, q);
  if (!b) {
    free(q);
    return;
  }
  svc_pg_batch_readonly(b);
  if (svc__stream_store_page(&p->st, b, s->pos, upto, q->limit, s->full ? NULL : s->id, page_result, q)) {
    free(q);
    svc_pg_batch_discard(&b);
    return;
  }
  s->catchup_busy = 1;
  svc_pg_submit(b);
}

/* Sends what the subscriber may have next: from the ring when its position is
 * inside it, else a catch-up page from Postgres. */
static void feed(struct svc_stream_producer *p, struct sub *s)
{
  if (p->stopped || !p->head_known) return;
  while (!s->catchup_busy && credit(s) > 0 && s->pos < p->head) {
    if (p->ring_first == 0 || s->pos + 1 < p->ring_first) {
      start_page(p, s, p->ring_first ? p->ring_first - 1 : p->head);
      return;
    }
    const struct ev *out[MAX_EVENTS_PER_MSG];
    size_t n = 0, bytes = 0;
    uint32_t c = credit(s);
    uint64_t q = s->pos + 1;
    for (; q <= p->head && n < c && n < MAX_EVENTS_PER_MSG && bytes < MAX_BYTES_PER_MSG; q++) {
      const struct ev *e = &p->ring[q % p->ring_cap];
      if (!visible(s, e)) continue;
      out[n++] = e;
      bytes += e->len;
    }
    s->pos = q - 1;
    if (n && send_events(p, s, out, n)) { /* the peer's queue is full: the timer tries again */
      s->pos = s->last_sent;
      return;
    }
  }
}

/* ---- control messages ------------------------------------------------------ */

static void send_error(struct svc_stream_producer *p, const uint8_t *peer, size_t peer_len,
                       Whistle__Stream__StreamError__Code code, const char *text)
{
  Whistle__Stream__StreamError e = WHISTLE__STREAM__STREAM_ERROR__INIT;
  e.code = code;
  e.message = (char *)text;
  Whistle__Stream__StreamMessage m = WHISTLE__STREAM__STREAM_MESSAGE__INIT;
  m.version = SVC_STREAM_VERSION;
  m.body_case = WHISTLE__STREAM__STREAM_MESSAGE__BODY_ERROR;
  m.error = &e;
  svc__stream_send(p->sock, peer, peer_len, &m);
}

static int is_full_access(const struct svc_stream_producer *p, const char *id)
{
  size_t n = strlen(id);
  for (const char *c = p->full_access; c && *c;) {
    const char *end = strchr(c, ',');
    size_t len = end ? (size_t)(end - c) : strlen(c);
    if (len == n && memcmp(c, id, n) == 0) return 1;
    c = end ? end + 1 : c + len;
  }
  return 0;
}

static void sub_free(struct sub *s)
{
  free(s->inflight);
  free(s);
}

static void on_subscribe(struct svc_stream_producer *p, const struct svc_frame *peer,
                         const Whistle__Stream__Subscribe *m, const char *user_id)
{
  const char *claim = m->consumer ? m->consumer : "";
  if (p->stopped) {
    send_error(p, peer->data, peer->len, WHISTLE__STREAM__STREAM_ERROR__CODE__UNAVAILABLE, "shutting down");
    return;
  }
  if (!svc_identity_valid(claim, strlen(claim))) {
    p->stats.bad_frames++;
    send_error(p, peer->data, peer->len, WHISTLE__STREAM__STREAM_ERROR__CODE__BAD_REQUEST,
               "consumer must be 1-127 characters of A-Z a-z 0-9 _ - .");
    return;
  }
  if (svc_zctx_curve(p->z) && (!user_id || strcmp(user_id, claim) != 0)) {
    p->stats.refused++;
    svc_warn("subscriber claims another identity", " stream=%s claimed=%s authenticated=%s",
             p->name, claim, user_id ? user_id : "-");
    send_error(p, peer->data, peer->len, WHISTLE__STREAM__STREAM_ERROR__CODE__FORBIDDEN,
               "consumer is not the authenticated identity");
    return;
  }
  struct sub *s = find_sub(p, claim);
  if (!s) {
    s = calloc(1, sizeof *s);
    if (!s) return;
    snprintf(s->id, sizeof s->id, "%s", claim);
    s->next = p->subs;
    p->subs = s;
    p->stats.subscribers++;
  }
  uint32_t w = m->window ? m->window : 1000;
  if (w > p->max_window) w = p->max_window;
  uint64_t *inflight = realloc(s->inflight, w * sizeof *inflight);
  if (!inflight) return;
  s->inflight = inflight;
  s->window = w;
  s->if_head = s->if_n = 0;
  memcpy(s->peer, peer->data, peer->len);
  s->peer_len = peer->len;
  s->full = is_full_access(p, claim);
  s->session = m->session;
  s->gen = ++p->gen_counter;
  s->pos = s->last_sent = m->after_seq;
  s->catchup_busy = 0;
  s->heard_us = s->sent_us = svc_mono_us();
  p->stats.subscribes++;
  svc_info("subscribed", " stream=%s subscriber=%s after_seq=%llu window=%u full=%d head=%llu",
           p->name, s->id, (unsigned long long)m->after_seq, w, s->full,
           (unsigned long long)p->head);
  feed(p, s);
}

static struct sub *find_peer(struct svc_stream_producer *p, const struct svc_frame *peer)
{
  for (struct sub *s = p->subs; s; s = s->next)
    if (s->peer_len == peer->len && memcmp(s->peer, peer->data, peer->len) == 0) return s;
  return NULL;
}

static void on_ack(struct svc_stream_producer *p, const struct svc_frame *peer, uint64_t seq)
{
  struct sub *s = find_peer(p, peer);
  if (!s) {
    send_error(p, peer->data, peer->len, WHISTLE__STREAM__STREAM_ERROR__CODE__NO_SESSION,
               "no session: subscribe again");
    return;
  }
  s->heard_us = svc_mono_us();
  p->stats.acks++;
  while (s->if_n && s->inflight[s->if_head] <= seq) {
    s->if_head = (s->if_head + 1) % s->window;
    s->if_n--;
  }
  feed(p, s);
}

static void on_message(struct svc_zsock *z, const struct svc_frame *f, size_t n,
                       const char *user_id, void *arg)
{
  struct svc_stream_producer *p = arg;
  (void)z;
  if (n != 2 || f[0].len == 0 || f[0].len > 255) {
    p->stats.bad_frames++;
    return;
  }
  struct svc_pballoc al;
  Whistle__Stream__StreamMessage *m = (Whistle__Stream__StreamMessage *)svc_pb_unpack(
    &whistle__stream__stream_message__descriptor, &al, 64 * 1024, f[1].data, f[1].len, NULL);
  if (!m || m->version != SVC_STREAM_VERSION) {
    p->stats.bad_frames++;
    send_error(p, f[0].data, f[0].len, WHISTLE__STREAM__STREAM_ERROR__CODE__BAD_REQUEST,
               m ? "unsupported version" : "not a StreamMessage");
    if (m) whistle__stream__stream_message__free_unpacked(m, &al.a);
    return;
  }
  switch (m->body_case) {
  case WHISTLE__STREAM__STREAM_MESSAGE__BODY_SUBSCRIBE:
    on_subscribe(p, &f[0], m->subscribe, user_id);
    break;
  case WHISTLE__STREAM__STREAM_MESSAGE__BODY_ACK:
    on_ack(p, &f[0], m->ack->seq);
    break;
  default:
    p->stats.bad_frames++;
    send_error(p, f[0].data, f[0].len, WHISTLE__STREAM__STREAM_ERROR__CODE__BAD_REQUEST,
               "expected Subscribe or Ack");
    break;
  }
  whistle__stream__stream_message__free_unpacked(m, &al.a);
}

/* ---- timer: heartbeats, dead sessions ------------------------------------- */

static void send_heartbeat(struct svc_stream_producer *p, struct sub *s)
{
  Whistle__Stream__Heartbeat h = WHISTLE__STREAM__HEARTBEAT__INIT;
  h.head_seq = p->head;
  h.watermark_us = p->watermark_us;
  Whistle__Stream__StreamMessage m = WHISTLE__STREAM__STREAM_MESSAGE__INIT;
  m.version = SVC_STREAM_VERSION;
  m.body_case = WHISTLE__STREAM__STREAM_MESSAGE__BODY_HEARTBEAT;
  m.heartbeat = &h;
  svc__stream_send(p->sock, s->peer, s->peer_len, &m);
  s->sent_us = svc_mono_us();
}

static void timer_cb(uv_timer_t *t)
{
  struct svc_stream_producer *p = t->data;
  int64_t now = svc_mono_us();
  for (struct sub **pp = &p->subs; *pp;) {
    struct sub *s = *pp;
    if (now - s->heard_us > (int64_t)p->dead_ms * 1000) {
      svc_info("subscriber silent: session dropped", " stream=%s subscriber=%s", p->name, s->id);
      *pp = s->next;
      p->stats.subscribers--;
      sub_free(s);
      continue;
    }
    if (now - s->sent_us >= (int64_t)p->heartbeat_ms * 1000) send_heartbeat(p, s);
    feed(p, s);
    pp = &s->next;
  }
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
  for (struct sub *s = p->subs; s; s = s->next) feed(p, s);
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
  p->sock = svc_zsock_new(z, loop, &zo, on_message, p);
  if (!p->sock) goto fail;
  uv_timer_init(loop, &p->timer);
  p->timer.data = p;
  uv_timer_start(&p->timer, timer_cb, (uint64_t)p->heartbeat_ms / 4 + 1, (uint64_t)p->heartbeat_ms / 4 + 1);
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
    sub_free(s);
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
