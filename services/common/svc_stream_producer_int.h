/* Internal to the stream producer: what its two halves share, the events
 * it stages and publishes (svc_stream_producer.c: staging, the live ring,
 * the head, wall-mode watermarks, the lifecycle) and the subscribers it
 * serves (svc_stream_serve.c: windows, catch-up pages, subscribe and ack,
 * heartbeats). Not for services. */
#ifndef SVC_STREAM_PRODUCER_INT_H
#define SVC_STREAM_PRODUCER_INT_H

#include <stdint.h>

#include <uv.h>

#include "svc_stream_int.h"
#include "svc_zmq.h"

#define ID_MAX 127

struct ev {
  uint64_t seq;
  int64_t event_us;
  char *kind, *addressee;
  uint8_t *payload;
  size_t len;
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

/* Sends subscriber s what it may have now: from the ring, or a catch-up page. */
void svc__stream_feed(struct svc_stream_producer *p, struct sub *s);
/* The ROUTER's messages: Subscribe, Ack. */
void svc__stream_on_message(struct svc_zsock *z, const struct svc_frame *f, size_t n,
                            const char *user_id, void *arg);
/* Every quarter heartbeat: heartbeats, silent sessions dropped, feeds. */
void svc__stream_timer_cb(uv_timer_t *t);
void svc__stream_sub_free(struct sub *s);

#endif
