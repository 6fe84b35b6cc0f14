/* Internal to svc_zmq.c: the bounded send queues of one socket. A message the
 * socket does not take at once waits in its peer's queue (a ROUTER keeps one
 * queue per routing id, other sockets one queue), so a peer that stops
 * reading delays only its own messages. Not for services (svc__ prefix). */
#ifndef SVC_ZQUEUE_INT_H
#define SVC_ZQUEUE_INT_H

#include <stddef.h>
#include <stdint.h>
#include "svc_zmq.h"

struct svc__zq_limits {
  size_t msgs;  /* messages queued per peer */
  size_t bytes; /* payload bytes queued per peer */
  size_t peers; /* peers with a queue (ROUTER) */
};

struct svc__zq;

/* A queue set for a socket; keyed: one queue per routing id (frames[0]),
 * else one queue. NULL when out of memory. */
struct svc__zq *svc__zq_new(const struct svc__zq_limits *lim, int keyed);
/* Frees every queued message and the set; *q is set to NULL. */
void svc__zq_destroy(struct svc__zq **q);
/* Sends the message on sock at once when nothing waits for its peer and the
 * socket takes it, else copies it to the end of the peer's queue. Returns 0
 * when sent or queued, -1 when dropped: the peer is unknown (ROUTER), its
 * queue or the peer table is full, or memory ran out. Counts in st. */
int svc__zq_send(struct svc__zq *q, void *sock, const struct svc_frame *frames, size_t n,
                struct svc_zsock_stats *st);
/* Sends queued messages while their peers take them, a bounded batch per
 * peer; drops the queue of a peer that is gone. Frees emptied queues.
 * Returns the number of messages moved (sent or dropped). */
size_t svc__zq_flush(struct svc__zq *q, void *sock, struct svc_zsock_stats *st);
/* 1 when no message is queued. */
int svc__zq_empty(const struct svc__zq *q);
/* Current totals: queued messages, their payload bytes, peers with a queue. */
void svc__zq_gauges(const struct svc__zq *q, uint64_t *msgs, uint64_t *bytes, uint64_t *peers);

#endif
