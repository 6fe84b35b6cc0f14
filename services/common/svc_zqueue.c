/* Bounded per-peer send queues of a ZeroMQ socket (see svc_zqueue_int.h): a hash
 * of peers with queued messages keyed by routing id, a list of them in flush
 * order, caps per peer (messages, bytes) and on the number of peers. A peer's
 * queue exists only while it holds messages. */
#include "svc_zqueue_int.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#define PEER_BATCH 256  /* messages sent to one peer before the next gets a turn */
#define MAX_BUCKETS 65536

struct qmsg {
  struct qmsg *next;
  size_t n, bytes;
  zmq_msg_t parts[];
};

struct qpeer {
  struct qpeer *hnext;       /* hash chain */
  struct qpeer *prev, *next; /* every peer with a queue, in flush order */
  struct qmsg *head, *tail;
  size_t n, bytes;
  size_t id_len;
  uint8_t id[];
};

struct svc__zq {
  struct svc__zq_limits lim;
  int keyed;
  struct qpeer **buckets; /* keyed: allocated with the first peer */
  size_t n_buckets;
  struct qpeer *first, *last;
  size_t n_peers, msgs, bytes;
};

enum { SENT, BLOCKED, GONE };

struct svc__zq *svc__zq_new(const struct svc__zq_limits *lim, int keyed)
{
  struct svc__zq *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  q->lim = *lim;
  q->keyed = keyed;
  if (!keyed) q->lim.peers = 1;
  size_t nb = 16;
  while (nb < q->lim.peers && nb < MAX_BUCKETS) nb *= 2;
  q->n_buckets = nb;
  return q;
}

static uint64_t hash(const uint8_t *id, size_t len)
{
  uint64_t h = 1469598103934665603ULL; /* FNV-1a */
  for (size_t i = 0; i < len; i++) {
    h ^= id[i];
    h *= 1099511628211ULL;
  }
  return h;
}

static struct qpeer **bucket(struct svc__zq *q, const uint8_t *id, size_t len)
{
  return &q->buckets[hash(id, len) & (q->n_buckets - 1)];
}

static struct qpeer *find(struct svc__zq *q, const uint8_t *id, size_t len)
{
  if (q->n_peers == 0) return NULL;
  if (!q->keyed) return q->first;
  for (struct qpeer *p = *bucket(q, id, len); p; p = p->hnext)
    if (p->id_len == len && memcmp(p->id, id, len) == 0) return p;
  return NULL;
}

static struct qpeer *peer_new(struct svc__zq *q, const uint8_t *id, size_t len)
{
  if (q->keyed && !q->buckets && !(q->buckets = calloc(q->n_buckets, sizeof *q->buckets)))
    return NULL;
  struct qpeer *p = calloc(1, sizeof *p + len);
  if (!p) return NULL;
  p->id_len = len;
  if (len) memcpy(p->id, id, len);
  if (q->keyed) {
    struct qpeer **b = bucket(q, id, len);
    p->hnext = *b;
    *b = p;
  }
  p->prev = q->last;
  if (q->last) q->last->next = p; else q->first = p;
  q->last = p;
  q->n_peers++;
  return p;
}

static void list_unlink(struct svc__zq *q, struct qpeer *p)
{
  if (p->prev) p->prev->next = p->next; else q->first = p->next;
  if (p->next) p->next->prev = p->prev; else q->last = p->prev;
  p->prev = p->next = NULL;
}

/* Frees a peer whose queue is empty. */
static void peer_free(struct svc__zq *q, struct qpeer *p)
{
  if (q->keyed) {
    struct qpeer **b = bucket(q, p->id, p->id_len);
    while (*b != p) b = &(*b)->hnext;
    *b = p->hnext;
  }
  list_unlink(q, p);
  q->n_peers--;
  free(p);
}

static void msg_free(struct qmsg *m, size_t from)
{
  for (size_t i = from; i < m->n; i++) zmq_msg_close(&m->parts[i]);
  free(m);
}

/* Takes the head message off a peer's queue (the caller frees it). */
static struct qmsg *pop(struct svc__zq *q, struct qpeer *p)
{
  struct qmsg *m = p->head;
  p->head = m->next;
  if (!p->head) p->tail = NULL;
  p->n--;
  p->bytes -= m->bytes;
  q->msgs--;
  q->bytes -= m->bytes;
  return m;
}

/* Puts back a message that pop took and the socket did not. */
static void push_front(struct svc__zq *q, struct qpeer *p, struct qmsg *m)
{
  m->next = p->head;
  p->head = m;
  if (!p->tail) p->tail = m;
  p->n++;
  p->bytes += m->bytes;
  q->msgs++;
  q->bytes += m->bytes;
}

static struct qmsg *msg_copy(const struct svc_frame *frames, size_t n, size_t bytes)
{
  struct qmsg *m = malloc(sizeof *m + n * sizeof(zmq_msg_t));
  if (!m) return NULL;
  m->next = NULL;
  m->n = n;
  m->bytes = bytes;
  for (size_t i = 0; i < n; i++) {
    if (zmq_msg_init_size(&m->parts[i], frames[i].len) != 0) {
      m->n = i;
      msg_free(m, 0);
      return NULL;
    }
    if (frames[i].len) memcpy(zmq_msg_data(&m->parts[i]), frames[i].data, frames[i].len);
  }
  return m;
}

/* One non-blocking attempt. A ROUTER with ZMQ_ROUTER_MANDATORY refuses the
 * first frame with EAGAIN when that peer's pipe is full (nothing is sent) and
 * with EHOSTUNREACH when the peer is unknown; once the first frame is taken
 * the rest of the message is too. */
static int send_now(void *sock, const struct svc_frame *frames, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    int more = i + 1 < n ? ZMQ_SNDMORE : 0;
    if (zmq_send(sock, frames[i].data, frames[i].len, ZMQ_DONTWAIT | more) < 0)
      return i == 0 && zmq_errno() == EAGAIN ? BLOCKED : GONE;
  }
  return SENT;
}

/* As send_now for a queued message; unless BLOCKED, m is freed. */
static int send_queued(void *sock, struct qmsg *m)
{
  for (size_t i = 0; i < m->n; i++) {
    int more = i + 1 < m->n ? ZMQ_SNDMORE : 0;
    if (zmq_msg_send(&m->parts[i], sock, ZMQ_DONTWAIT | more) < 0) {
      if (i == 0 && zmq_errno() == EAGAIN) return BLOCKED;
      msg_free(m, i);
      return GONE;
    }
  }
  free(m);
  return SENT;
}

int svc__zq_send(struct svc__zq *q, void *sock, const struct svc_frame *frames, size_t n,
                struct svc_zsock_stats *st)
{
  const uint8_t *id = q->keyed ? frames[0].data : NULL;
  size_t id_len = q->keyed ? frames[0].len : 0;
  struct qpeer *p = find(q, id, id_len);
  if (!p) { /* nothing waits for this peer: try at once */
    int r = send_now(sock, frames, n);
    if (r == SENT) {
      st->sent++;
      return 0;
    }
    if (r == GONE) {
      st->dropped_unroutable++;
      return -1;
    }
  }
  size_t bytes = 0;
  for (size_t i = 0; i < n; i++) bytes += frames[i].len;
  size_t have_n = p ? p->n : 0, have_bytes = p ? p->bytes : 0;
  if (have_n >= q->lim.msgs || bytes > q->lim.bytes - have_bytes ||
      (!p && q->n_peers >= q->lim.peers)) {
    st->dropped_full++;
    return -1;
  }
  struct qmsg *m = msg_copy(frames, n, bytes);
  if (!m || (!p && !(p = peer_new(q, id, id_len)))) {
    if (m) msg_free(m, 0);
    st->dropped_full++;
    return -1;
  }
  if (p->tail) p->tail->next = m; else p->head = m;
  p->tail = m;
  p->n++;
  p->bytes += bytes;
  q->msgs++;
  q->bytes += bytes;
  st->queued++;
  return 0;
}

/* Sends a peer's queue while it takes messages, at most PEER_BATCH. Returns
 * the number moved; *more is set when the batch ran out first. */
static size_t flush_peer(struct svc__zq *q, void *sock, struct qpeer *p, struct svc_zsock_stats *st,
                         int *more)
{
  size_t moved = 0;
  *more = 0;
  while (p->head) {
    if (moved == PEER_BATCH) {
      *more = 1;
      break;
    }
    struct qmsg *m = pop(q, p);
    int r = send_queued(sock, m);
    if (r == BLOCKED) {
      push_front(q, p, m);
      break;
    }
    moved++;
    if (r == SENT) {
      st->sent++;
      continue;
    }
    st->dropped_unroutable++;
    while (q->keyed && p->head) { /* the peer is gone: so is its queue */
      msg_free(pop(q, p), 0);
      st->dropped_unroutable++;
      moved++;
    }
  }
  return moved;
}

size_t svc__zq_flush(struct svc__zq *q, void *sock, struct svc_zsock_stats *st)
{
  size_t moved = 0, visits = q->n_peers;
  struct qpeer *p = q->first;
  while (p && visits-- > 0) {
    struct qpeer *next = p->next;
    int more;
    moved += flush_peer(q, sock, p, st, &more);
    if (!p->head) {
      peer_free(q, p);
    } else if (more && p != q->last) { /* a turn for the others first */
      list_unlink(q, p);
      p->prev = q->last;
      q->last->next = p;
      q->last = p;
    }
    p = next;
  }
  return moved;
}

int svc__zq_empty(const struct svc__zq *q)
{
  return q->msgs == 0;
}

void svc__zq_gauges(const struct svc__zq *q, uint64_t *msgs, uint64_t *bytes, uint64_t *peers)
{
  *msgs = q->msgs;
  *bytes = q->bytes;
  *peers = q->n_peers;
}

void svc__zq_destroy(struct svc__zq **qp)
{
  struct svc__zq *q = *qp;
  if (!q) return;
  *qp = NULL;
  while (q->first) {
    struct qpeer *p = q->first;
    while (p->head) msg_free(pop(q, p), 0);
    peer_free(q, p);
  }
  free(q->buckets);
  free(q);
}
