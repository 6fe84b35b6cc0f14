/* The stream (docs/architecture.md): a durable, ordered log per producer.
 *
 * Producer: events are appended inside the producer's own write transactions
 * (outbox pattern) and get gapless sequence numbers in commit order from the
 * outbox head row, which serialises writers. Subscribers (DEALER) connect to
 * the producer's ROUTER, send Subscribe{consumer, after_seq, window} and get
 * events in order, never more than `window` unacknowledged. Catch-up pages
 * come from Postgres, the live tail from an in-memory ring. A subscriber sees
 * the events addressed to its authenticated identity and broadcast events
 * ("*"); identities listed as full-access see every event.
 *
 * Consumer: applies each batch of received events and records its position in
 * the same transaction (stream_advance), so a redelivered event is a no-op;
 * acknowledges after commit; re-subscribes from its last applied position when
 * the producer falls silent or answers with an error. */
#ifndef SVC_STREAM_H
#define SVC_STREAM_H

#include <stddef.h>
#include <stdint.h>
#include "svc_pg.h"
#include "svc_zmq.h"

#define SVC_STREAM_BROADCAST "*"   /* addressee: every subscriber */
#define SVC_STREAM_INTERNAL ""     /* addressee: full-access subscribers only */
#define SVC_STREAM_WATERMARK "WATERMARK" /* kind of watermark events */

struct svc_stream_event {
  uint64_t seq;
  int64_t event_us;       /* event time */
  const char *kind;       /* e.g. "ticket.accepted" */
  const char *addressee;  /* identity, "*" or "" */
  const uint8_t *payload; size_t payload_len;
};

/* ---- producer ---- */
struct svc_stream_producer;
struct svc_stream_producer_opts {
  const char *endpoint;        /* ROUTER bind */
  const char *name;            /* producer name, e.g. "intake" (logs, status) */
  size_t ring_events;          /* live tail kept in memory; 0 = 65536 */
  uint32_t max_window;         /* cap on a subscriber's window; 0 = 10000 */
  int heartbeat_ms;            /* idle heartbeat to subscribers; 0 = 1000 */
  int dead_ms;                 /* drop a silent subscriber's session; 0 = 10000 */
  const char *full_access;     /* comma-separated identities that see everything */
  /* Periodic watermarks (wall clock mode): every watermark_ms the producer
   * commits a WATERMARK event at watermark_fn(watermark_arg), if that is later
   * than the last one. The value is asked for when its transaction runs on
   * pg_write, after every batch submitted before it has ended, so a watermark
   * the service appended meanwhile is known (and the stream's watermarks never
   * go back). 0 / NULL: the service emits its own. */
  int watermark_ms;
  int64_t (*watermark_fn)(void *arg);
  void *watermark_arg;
};
/* pg_write is the connection whose batches append events; pg_read serves
 * catch-up pages (its own connection, so catch-up never delays writes). */
struct svc_stream_producer *svc_stream_producer_new(uv_loop_t *loop, struct svc_zctx *z,
                                                    struct svc_pg *pg_write, struct svc_pg *pg_read,
                                                    const struct svc_stream_producer_opts *o);
void svc_stream_producer_destroy(struct svc_stream_producer **p);
/* Appends one event to batch b: it is in the outbox if and only if b
 * commits, and is published to subscribers once it has. Events of a batch
 * that ends RETRY or FAILED (or is discarded) are dropped with it; a retried
 * piece of work appends them again to its new batch. Call from b's staging
 * (before submit or from a stage callback). Returns 0, or -1 (out of memory:
 * the caller must fail b, or its state would commit without the event). */
SVC_MUST_CHECK int svc_stream_append(struct svc_stream_producer *p, struct svc_pg_batch *b,
                                     int64_t event_us, const char *kind, const char *addressee,
                                     const void *payload, size_t len);
/* The same with a protobuf payload, packed here. */
struct ProtobufCMessage;
SVC_MUST_CHECK int svc_stream_append_msg(struct svc_stream_producer *p, struct svc_pg_batch *b,
                                         int64_t event_us, const char *kind,
                                         const char *addressee, const struct ProtobufCMessage *m);
/* Appends a watermark event ("nothing more with event time before us"),
 * broadcast to every subscriber. Same rules as svc_stream_append. */
SVC_MUST_CHECK int svc_stream_watermark(struct svc_stream_producer *p, struct svc_pg_batch *b,
                                        int64_t us);
/* Adds the outbox insert of the events appended to b since its last flush to
 * b's current stage (so they go with the stage's other statements). Optional:
 * whatever is not flushed when b is about to commit is inserted then, in one
 * more stage. Returns the number of events flushed (0: none), or -1. */
SVC_MUST_CHECK int svc_stream_flush(struct svc_stream_producer *p, struct svc_pg_batch *b);
/* A start-up clean-up of the producer's own outbox (blocking, on c, inside
 * an svc_pg_one_off, before the producer serves): for every event of `kind`,
 * in seq order, fn(arg, payload, len, &out, &out_len) returns 1 with a
 * replacement payload (malloc'd; freed here), 0 to keep the payload, or -1
 * to stop. Replacements are written in place, a page at a time, each page
 * committed on its own: seq, kind, event time, addressee and order stay.
 * fn must be idempotent (a failed run is run again from the start). Adds
 * the events rewritten to *changed and logs progress. 0, or -1 (logged). */
typedef int (*svc_stream_rewrite_fn)(void *arg, const uint8_t *payload, size_t len,
                                     uint8_t **out, size_t *out_len);
int svc_stream_rewrite(PGconn *c, const char *kind, svc_stream_rewrite_fn fn, void *arg,
                       int64_t *changed);

/* The last committed sequence number known to this process. */
uint64_t svc_stream_head(const struct svc_stream_producer *p);
/* The latest watermark committed by this process (periodic or appended by
 * the service), 0 before the first. A service that stamps its events with
 * business times keeps them at or after it (the watermark's promise). */
int64_t svc_stream_last_watermark(const struct svc_stream_producer *p);
/* Refuses new subscriptions and stops sending (drain). */
void svc_stream_producer_stop(struct svc_stream_producer *p);
struct svc_stream_producer_stats {
  uint64_t head, sent, acks, subscribes, subscribers, catchup_pages, bad_frames, refused;
  uint64_t appended;     /* events committed by this process */
  uint64_t dropped;      /* events appended to batches that did not commit */
  uint64_t max_inflight; /* the most unacknowledged events seen for any subscriber */
};
void svc_stream_producer_stats(const struct svc_stream_producer *p, struct svc_stream_producer_stats *st);
/* Adds the producer's counters to a status reply as "<prefix>.<name>"
 * (head, appended, dropped, sent, acks, subscribers, ...). */
struct svc_status_out;
void svc_stream_producer_status(const struct svc_stream_producer *p, const char *prefix,
                                struct svc_status_out *o);

/* ---- consumer ---- */
struct svc_stream_consumer;
/* Adds the statements that apply events[0..n-1] to b (the position update is
 * already in b). Returns 0, or -1 to fail the batch (it is retried later). */
typedef int (*svc_stream_apply_cb)(void *arg, struct svc_pg_batch *b,
                                   const struct svc_stream_event *events, size_t n);
/* Optional further stages of an apply transaction: called after stage n-1's
 * results (n = 2, 3, ...); returns 1 to be called again after the statements
 * it added, 0 when done, -1 to fail the batch (retried later). Results of
 * earlier stages arrive through the statements' own callbacks. */
typedef int (*svc_stream_apply_next_cb)(void *arg, struct svc_pg_batch *b,
                                        const struct svc_stream_event *events, size_t n, int stage);
struct svc_stream_consumer_opts {
  const char *endpoint;   /* producer's stream endpoint */
  const char *consumer;   /* our identity as claimed in Subscribe */
  const char *producer;   /* position key in stream_positions, e.g. "intake" */
  const char *server_key; /* with CURVE: the producer's Z85 public key */
  uint32_t window;        /* 0 = 1000 */
  int heartbeat_ms;       /* 0 = 1000 */
  int silence_ms;         /* re-subscribe after this much silence; 0 = 5000 */
  size_t max_batch;       /* events per apply transaction; 0 = window */
};
struct svc_stream_consumer *svc_stream_consumer_new(uv_loop_t *loop, struct svc_zctx *z,
                                                    struct svc_pg *pg,
                                                    const struct svc_stream_consumer_opts *o,
                                                    svc_stream_apply_cb apply, void *arg);
/* Makes applies multi-stage (next) and, when flush_to is set, flushes the
 * events appended to that producer while applying as the last stage, so a
 * consumer can publish in the same transaction (a service that reads one
 * stream and writes its own). Call right after svc_stream_consumer_new. */
void svc_stream_consumer_stages(struct svc_stream_consumer *c, svc_stream_apply_next_cb next,
                                struct svc_stream_producer *flush_to);
/* Stops taking events; done(arg) runs when the apply in progress has ended. */
void svc_stream_consumer_drain(struct svc_stream_consumer *c, void (*done)(void *), void *arg);
void svc_stream_consumer_destroy(struct svc_stream_consumer **c);
uint64_t svc_stream_consumer_position(const struct svc_stream_consumer *c);
struct svc_stream_consumer_stats {
  uint64_t position, received, applied, batches, resubscribes, duplicates, errors;
  uint64_t max_unacked;  /* the most events received but not yet acknowledged */
  uint64_t poisoned;     /* events that failed to apply on their own (each counted once) */
  uint64_t poison_seq;   /* the event failing now (retried with back-off), or 0 */
  uint64_t poison_tries; /* its failed attempts so far */
  uint64_t lag;          /* events of the producer's log not yet applied (its head,
                          * as last heard, minus position) */
  uint64_t lag_us;       /* how far behind in event time: the latest event time heard of
                          * minus the latest applied (0 when nothing is behind) */
};
void svc_stream_consumer_stats(const struct svc_stream_consumer *c, struct svc_stream_consumer_stats *st);
/* Adds the consumer's counters to a status reply as "<prefix>.<name>"
 * (position, lag, applied, resubscribes, max_unacked, poisoned, poison_seq, ...). */
/* The consumer's apply-latency histogram (event received to applied). */
struct svc_hist;
const struct svc_hist *svc_stream_consumer_apply_hist(const struct svc_stream_consumer *c);
void svc_stream_consumer_status(const struct svc_stream_consumer *c, const char *prefix,
                                struct svc_status_out *o);

/* The settled signal (svc_status_output / svc_status_input) of a daemon's
 * stream and of a stream it reads: head or position from the stream, the
 * watermark from the daemon, which knows what it published or applied. */
void svc_stream_producer_output(const struct svc_stream_producer *p, const char *stream,
                                int64_t watermark_us, struct svc_status_out *o);
void svc_stream_consumer_input(const struct svc_stream_consumer *c, const char *input,
                               int64_t watermark_us, int clock, struct svc_status_out *o);

#endif
