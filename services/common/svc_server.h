/* Request/reply server with group commit (docs/architecture.md). Clients (DEALER) send
 * one-frame requests to a ROUTER; many may be in flight. Requests that need
 * the database are staged into one pipelined transaction per batch; each reply
 * is sent only after its batch committed. Bad input is answered at once.
 * While Postgres is down the server stops reading (back-pressure) once
 * max_pending requests wait, and it never acknowledges what is not committed.
 * A batch that fails on an SQL error in one request's statements answers that
 * request with an error and retries the others; when the culprit is unknown
 * (bulk statements), the batch is retried in halves until the request is
 * alone. One poisoned request cannot sink the others. */
#ifndef SVC_SERVER_H
#define SVC_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include "svc_pg.h"
#include "svc_zmq.h"

struct svc_server;
struct svc_stream_producer;

struct svc_req {
  struct svc_server *srv;
  uint8_t peer[256]; size_t peer_len; /* ROUTER routing id */
  char user_id[128];                  /* authenticated identity or "" */
  void *data;                         /* the service's decoded request */
  size_t cap;                         /* after a failed batch: most requests per batch */
  size_t stmt_lo, stmt_hi;            /* its first-stage statements in the batch */
  int done_staging;                   /* stage_next returned 0 */
  int64_t received_us;                /* monotonic, for latency */
  struct svc_req *next;
};

struct svc_server_ops {
  /* Decodes one request frame into req->data. Returns 0 to stage it in the next
   * batch, 1 when it was answered already (svc_req_reply: bad input or a pure
   * query), -1 to drop it (unreplyable garbage; counted). */
  int (*decode)(void *arg, struct svc_req *req, const uint8_t *frame, size_t len);
  /* Adds the request's first-stage statements to b. Called again for the same
   * request if the batch must be retried, so it must reset what results set.
   * It appends no stream events (a request it fails to stage is answered and
   * taken out, but b would keep its events): events go in stage_next. */
  int (*stage)(void *arg, struct svc_req *req, struct svc_pg_batch *b);
  /* Optional, instead of stage: adds the first-stage statements of a whole
   * batch at once (bulk statements, e.g. unnest of arrays). Called again with
   * the same or fewer requests on retry. 0 or -1 (the batch waits). */
  int (*stage_batch)(void *arg, struct svc_req *const *reqs, size_t n, struct svc_pg_batch *b);
  /* (With stage_batch, the next batch is staged and sent as soon as one
   * commits, before that one's committed callbacks run, so that Postgres works
   * while the replies go out: stage_batch must not read what committed sets;
   * a batch hook sees the outcome before either.) */
  /* Optional: after stage n-1's results (n = 2, 3, ...), adds statements for
   * stage n and returns 1 to be called again after them, or returns 0 when
   * the request needs no further stage. Stream events appended here
   * (svc_stream_append) are flushed in one last stage once every request of
   * the batch has returned 0. -1 (cannot stage, e.g. out of memory) fails
   * the whole batch (ROLLBACK, its events dropped); it is retried in halves
   * until the request is alone, which then gets failed(). */
  int (*stage_next)(void *arg, struct svc_req *req, struct svc_pg_batch *b, int n);
  /* Optional: called once stage_next has run for every request of stage n;
   * adds the stage's bulk statements (e.g. one INSERT of the rows the
   * requests queued in stage_next). Their results arrive before stage n + 1.
   * Failing to add one is the service's to answer (no statement added). */
  void (*stage_end)(void *arg, struct svc_pg_batch *b, int n);
  /* The batch committed: send the reply (svc_req_reply). */
  void (*committed)(void *arg, struct svc_req *req);
  /* The request cannot be committed (SQL error when alone): reply an error. */
  void (*failed)(void *arg, struct svc_req *req, const char *why);
  /* Frees req->data. */
  void (*release)(void *arg, struct svc_req *req);
};

struct svc_server_opts {
  const char *endpoint;   /* ROUTER bind */
  size_t max_batch;       /* requests per transaction; 0 = 1000 */
  size_t max_pending;     /* stop reading beyond this; 0 = 20000 */
  /* Optional: the producer whose events the requests append (svc_stream_append
   * with the batch); they are inserted with the batch's last stage. */
  struct svc_stream_producer *producer;
};

/* Creates the server on loop, using pg for batches. NULL after logging. */
struct svc_server *svc_server_new(uv_loop_t *loop, struct svc_zctx *z, struct svc_pg *pg,
                                  const struct svc_server_opts *o,
                                  const struct svc_server_ops *ops, void *arg);
/* Sends a reply frame to the request's peer. */
int svc_req_reply(struct svc_req *req, const uint8_t *data, size_t len);
/* Packs a protobuf message (the interface's envelope) and sends it as the
 * reply frame. 0, or -1 (out of memory, unroutable peer). */
struct ProtobufCMessage;
int svc_req_reply_msg(struct svc_req *req, const struct ProtobufCMessage *m);
/* Stops reading; calls done(arg) once every staged request is answered. */
void svc_server_drain(struct svc_server *s, void (*done)(void *), void *arg);
void svc_server_destroy(struct svc_server **s);
struct svc_server_stats { uint64_t requests, replied, batches, rejected, dropped, pending; };
void svc_server_stats(const struct svc_server *s, struct svc_server_stats *st);
/* Adds the server's counters to a status reply as "<prefix>.<name>". */
struct svc_status_out;
void svc_server_status(const struct svc_server *s, const char *prefix, struct svc_status_out *o);
void svc_server_count_rejected(struct svc_server *s);
struct svc_hist;
/* The time from each request's arrival to its reply (svc_status_add_hist). */
const struct svc_hist *svc_server_ack_hist(const struct svc_server *s);

#endif
