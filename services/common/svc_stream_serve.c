/* The stream producer's subscribers (svc_stream_producer.c publishes): each
 * one's window of unacknowledged events, filtering by authenticated identity,
 * live events from the ring or catch-up pages from Postgres, Subscribe and
 * Ack on the ROUTER, idle heartbeats and dropping silent sessions. */
#include <stdlib.h>
#include <string.h>

#include <protobuf-c/protobuf-c.h>

#include "svc_alloc.h"
#include "svc_log.h"
#include "svc_stream_producer_int.h"
#include "svc_time.h"

#define MAX_EVENTS_PER_MSG 256
#define MAX_BYTES_PER_MSG (512 * 1024)
#define PAGE_ROWS 1000

static int visible(const struct sub *s, const struct ev *e)
{
  return s->full || strcmp(e->addressee, SVC_STREAM_BROADCAST) == 0 ||
         strcmp(e->addressee, s->id) == 0;
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
    else svc__stream_feed(p, s);
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
void svc__stream_feed(struct svc_stream_producer *p, struct sub *s)
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

void svc__stream_sub_free(struct sub *s)
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
  svc__stream_feed(p, s);
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
  svc__stream_feed(p, s);
}

void svc__stream_on_message(struct svc_zsock *z, const struct svc_frame *f, size_t n,
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

void svc__stream_timer_cb(uv_timer_t *t)
{
  struct svc_stream_producer *p = t->data;
  int64_t now = svc_mono_us();
  for (struct sub **pp = &p->subs; *pp;) {
    struct sub *s = *pp;
    if (now - s->heard_us > (int64_t)p->dead_ms * 1000) {
      svc_info("subscriber silent: session dropped", " stream=%s subscriber=%s", p->name, s->id);
      *pp = s->next;
      p->stats.subscribers--;
      svc__stream_sub_free(s);
      continue;
    }
    if (now - s->sent_us >= (int64_t)p->heartbeat_ms * 1000) send_heartbeat(p, s);
    svc__stream_feed(p, s);
    pp = &s->next;
  }
}
