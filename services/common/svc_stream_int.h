/* Internal to the stream: the SQL of the outbox and positions tables
 * (svc_stream_store.c) shared by the producer and the consumer, and the
 * stream's frame helpers. Not for services: internal symbols carry the
 * svc__ prefix; the svc_ ones are the public *.h. */
#ifndef SVC_STREAM_INT_H
#define SVC_STREAM_INT_H

#include <stdint.h>
#include "stream.pb-c.h"
#include "svc_pg.h"
#include "svc_stream.h"

#define SVC_STREAM_VERSION 1

struct svc__stream_stmts {
  struct svc_pg_stmt *append;    /* on the write connection */
  struct svc_pg_stmt *head;      /* on the read connection */
  struct svc_pg_stmt *page_all;  /* on the read connection */
  struct svc_pg_stmt *page_for;  /* on the read connection */
};
/* Registers the producer's statements; 0 or -1. */
int svc__stream_store_prepare_producer(struct svc__stream_stmts *s, struct svc_pg *w, struct svc_pg *r);

/* Adds the outbox insert of n events (parallel arrays) to b; cb receives a
 * one-row result whose first column is the base: the events get base+1..base+n. */
int svc__stream_store_append(const struct svc__stream_stmts *s, struct svc_pg_batch *b,
                            struct svc_pgarr arr[4], int64_t n, svc_pg_result_cb cb, void *arg);
/* Adds the head query (one row: last_seq). */
int svc__stream_store_head(const struct svc__stream_stmts *s, struct svc_pg_batch *b,
                          svc_pg_result_cb cb, void *arg);
/* Adds a catch-up page: events with after < seq <= upto visible to `who`
 * (NULL: every event), at most limit rows of (seq, event_us, kind,
 * addressee, payload) in binary format. */
int svc__stream_store_page(const struct svc__stream_stmts *s, struct svc_pg_batch *b, uint64_t after,
                          uint64_t upto, int limit, const char *who, svc_pg_result_cb cb, void *arg);

/* Consumer side. */
struct svc__stream_cstmts {
  struct svc_pg_stmt *advance;
  struct svc_pg_stmt *position;
};
int svc__stream_store_prepare_consumer(struct svc__stream_cstmts *s, struct svc_pg *pg);
int svc__stream_store_advance(const struct svc__stream_cstmts *s, struct svc_pg_batch *b,
                             const char *producer, uint64_t from, uint64_t to);
int svc__stream_store_position(const struct svc__stream_cstmts *s, struct svc_pg_batch *b,
                              const char *producer, svc_pg_result_cb cb, void *arg);
#define SVC_STREAM_SQLSTATE_MISMATCH "WH001"

/* Packs msg into a frame and sends it on s to the peer (ROUTER) or not (DEALER,
 * peer NULL). 0 or -1. */
int svc__stream_send(struct svc_zsock *s, const uint8_t *peer, size_t peer_len,
                    const Whistle__Stream__StreamMessage *msg);

#endif
