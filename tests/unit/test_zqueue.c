/* Unit tests of the bounded per-peer send queues (svc_zqueue.c) on in-process
 * sockets: a peer whose pipe is full gets a queue and delays nobody else; the
 * caps (messages, bytes, peers) drop and count; a queue drains in order once
 * its peer reads, and is dropped and freed once its peer is gone. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "svc_zqueue_int.h"

#define EP "inproc://zq"

static void *ctx, *router;

static void set_int(void *s, int opt, int v)
{
  ck_assert_int_eq(zmq_setsockopt(s, opt, &v, sizeof v), 0);
}

/* A DEALER with a routing id and a small pipe, known to the router. */
static void *dealer(const char *id)
{
  void *d = zmq_socket(ctx, ZMQ_DEALER);
  set_int(d, ZMQ_RCVHWM, 2);
  set_int(d, ZMQ_SNDHWM, 2);
  set_int(d, ZMQ_LINGER, 0);
  ck_assert_int_eq(zmq_setsockopt(d, ZMQ_ROUTING_ID, id, strlen(id)), 0);
  ck_assert_int_eq(zmq_connect(d, EP), 0);
  ck_assert_int_eq(zmq_send(d, "hello", 5, 0), 5);
  char buf[64];
  ck_assert_int_eq(zmq_recv(router, buf, sizeof buf, 0), (int)strlen(id));
  ck_assert_int_eq(memcmp(buf, id, strlen(id)), 0);
  ck_assert_int_eq(zmq_recv(router, buf, sizeof buf, 0), 5);
  return d;
}

static void setup(void)
{
  ctx = zmq_ctx_new();
  router = zmq_socket(ctx, ZMQ_ROUTER);
  set_int(router, ZMQ_ROUTER_MANDATORY, 1);
  set_int(router, ZMQ_SNDHWM, 2);
  set_int(router, ZMQ_RCVHWM, 2);
  set_int(router, ZMQ_LINGER, 0);
  ck_assert_int_eq(zmq_bind(router, EP), 0);
}

static void teardown(void)
{
  zmq_close(router);
  zmq_ctx_term(ctx);
}

/* Sends message number i to peer id through the queue set. */
static int send_to(struct svc__zq *q, void *sock, const char *id, int i, struct svc_zsock_stats *st)
{
  char body[16];
  int len = snprintf(body, sizeof body, "%d", i);
  struct svc_frame f[2] = { { (const uint8_t *)id, id ? strlen(id) : 0 },
                            { (const uint8_t *)body, (size_t)len } };
  return svc__zq_send(q, sock, id ? f : f + 1, id ? 2 : 1, st);
}

/* Reads every message waiting on a DEALER; their numbers go to out. */
static int drain(void *d, int *out, int cap)
{
  int n = 0;
  char buf[16];
  int len;
  while ((len = zmq_recv(d, buf, sizeof buf - 1, ZMQ_DONTWAIT)) >= 0) {
    buf[len] = 0;
    if (n < cap) out[n] = atoi(buf);
    n++;
  }
  return n;
}

/* Lets a socket apply the commands its peers sent (a pipe reopened, a peer
 * gone), as the pump's ZMQ_EVENTS read does. */
static void process(void *s)
{
  uint32_t ev;
  size_t sz = sizeof ev;
  ck_assert_int_eq(zmq_getsockopt(s, ZMQ_EVENTS, &ev, &sz), 0);
}

/* Sends to peer id until a message has to wait; returns how many went out. */
static int fill_pipe(struct svc__zq *q, const char *id, struct svc_zsock_stats *st)
{
  uint64_t queued = st->queued;
  int i = 0;
  while (st->queued == queued) {
    ck_assert_int_eq(send_to(q, router, id, i, st), 0);
    ck_assert_int_lt(++i, 1000);
  }
  return i - 1;
}

START_TEST(test_full_peer_delays_nobody)
{
  void *a = dealer("A"), *b = dealer("B");
  struct svc__zq_limits lim = { .msgs = 3, .bytes = 1 << 20, .peers = 8 };
  struct svc__zq *q = svc__zq_new(&lim, 1);
  struct svc_zsock_stats st = { 0 };
  int direct = fill_pipe(q, "A", &st);
  ck_assert_int_gt(direct, 0);
  ck_assert_int_eq(send_to(q, router, "A", direct + 1, &st), 0);
  ck_assert_int_eq(send_to(q, router, "A", direct + 2, &st), 0);
  ck_assert_int_eq(send_to(q, router, "A", direct + 3, &st), -1); /* over the cap */
  ck_assert_uint_eq(st.dropped_full, 1);
  uint64_t msgs, bytes, peers;
  svc__zq_gauges(q, &msgs, &bytes, &peers);
  ck_assert_uint_eq(msgs, 3);
  ck_assert_uint_eq(peers, 1);
  uint64_t sent = st.sent;
  ck_assert_int_eq(send_to(q, router, "B", 7, &st), 0); /* B is not held up */
  ck_assert_uint_eq(st.sent, sent + 1);
  int got[1024];
  ck_assert_int_eq(drain(b, got, 1024), 1);
  ck_assert_int_eq(got[0], 7);

  /* A reads: its queue follows, in order, and is freed. */
  int n = drain(a, got, 1024);
  ck_assert_int_eq(n, direct);
  process(router);
  ck_assert_uint_eq(svc__zq_flush(q, router, &st), 3);
  ck_assert(svc__zq_empty(q));
  svc__zq_gauges(q, &msgs, &bytes, &peers);
  ck_assert_uint_eq(peers, 0);
  n += drain(a, got + n, 1024 - n);
  ck_assert_int_eq(n, direct + 3);
  for (int i = 0; i < n; i++) ck_assert_int_eq(got[i], i);
  svc__zq_destroy(&q);
  ck_assert_ptr_null(q);
  zmq_close(a);
  zmq_close(b);
}
END_TEST

START_TEST(test_caps_on_bytes_and_peers)
{
  void *a = dealer("A"), *b = dealer("B");
  struct svc__zq_limits lim = { .msgs = 100, .bytes = 4, .peers = 1 };
  struct svc__zq *q = svc__zq_new(&lim, 1);
  struct svc_zsock_stats st = { 0 };
  fill_pipe(q, "A", &st);                                    /* 1 waits: 1 byte */
  ck_assert_int_eq(send_to(q, router, "A", 12345, &st), -1); /* 5 more bytes */
  ck_assert_uint_eq(st.dropped_full, 1);
  int i = 0; /* B: its first message that must wait finds no room for a second peer */
  while (send_to(q, router, "B", i, &st) == 0) ck_assert_int_lt(++i, 1000);
  ck_assert_int_gt(i, 0);
  ck_assert_uint_eq(st.queued, 1);
  ck_assert_uint_eq(st.dropped_full, 2);
  ck_assert_int_eq(send_to(q, router, "A", 1, &st), 0); /* A's queue still has room */
  svc__zq_destroy(&q);
  zmq_close(a);
  zmq_close(b);
}
END_TEST

START_TEST(test_gone_peer_is_dropped_and_freed)
{
  void *a = dealer("A");
  struct svc__zq_limits lim = { .msgs = 10, .bytes = 1 << 20, .peers = 8 };
  struct svc__zq *q = svc__zq_new(&lim, 1);
  struct svc_zsock_stats st = { 0 };
  fill_pipe(q, "A", &st);
  ck_assert_int_eq(send_to(q, router, "A", 1000, &st), 0);
  zmq_close(a);
  struct timespec pause = { 0, 1000000 };
  for (int i = 0; i < 5000 && !svc__zq_empty(q); i++) {
    process(router);
    svc__zq_flush(q, router, &st);
    nanosleep(&pause, NULL);
  }
  ck_assert(svc__zq_empty(q));
  ck_assert_uint_eq(st.dropped_unroutable, 2);
  uint64_t msgs, bytes, peers;
  svc__zq_gauges(q, &msgs, &bytes, &peers);
  ck_assert_uint_eq(peers, 0);
  ck_assert_int_eq(send_to(q, router, "nobody", 1, &st), -1); /* unknown: not queued */
  ck_assert_uint_eq(st.dropped_unroutable, 3);
  ck_assert(svc__zq_empty(q));
  svc__zq_destroy(&q);
}
END_TEST

START_TEST(test_dealer_has_one_bounded_queue)
{
  void *d = dealer("D");
  struct svc__zq_limits lim = { .msgs = 2, .bytes = 1 << 20, .peers = 8 };
  struct svc__zq *q = svc__zq_new(&lim, 0);
  struct svc_zsock_stats st = { 0 };
  int i = 0;
  while (st.queued == 0) {
    ck_assert_int_eq(send_to(q, d, NULL, i++, &st), 0);
    ck_assert_int_lt(i, 1000);
  }
  ck_assert_int_eq(send_to(q, d, NULL, i++, &st), 0);
  ck_assert_int_eq(send_to(q, d, NULL, i++, &st), -1); /* the queue is full */
  ck_assert_uint_eq(st.dropped_full, 1);
  /* The router reads everything; the queue follows. */
  char buf[16];
  int n = 0;
  while (zmq_recv(router, buf, sizeof buf, ZMQ_DONTWAIT) >= 0) n++; /* id and body */
  process(d);
  ck_assert_uint_eq(svc__zq_flush(q, d, &st), 2);
  ck_assert(svc__zq_empty(q));
  while (zmq_recv(router, buf, sizeof buf, ZMQ_DONTWAIT) >= 0) n++;
  ck_assert_int_eq(n, 2 * (i - 1));
  svc__zq_destroy(&q);
  zmq_close(d);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("zqueue");
  TCase *tc = tcase_create("queues");
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_full_peer_delays_nobody);
  tcase_add_test(tc, test_caps_on_bytes_and_peers);
  tcase_add_test(tc, test_gone_peer_is_dropped_and_freed);
  tcase_add_test(tc, test_dealer_has_one_bounded_queue);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
