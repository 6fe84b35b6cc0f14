/* Unit tests of the budgeted protobuf-c allocator and of hostile-frame
 * unpacking through it: a frame that would allocate past the budget fails to
 * unpack (NULL) instead of exhausting memory, and memory is given back. */
#include <check.h>
#include <stdlib.h>
#include <string.h>

#include "stream.pb-c.h"
#include "svc_alloc.h"

START_TEST(test_budget_refuses_and_recovers)
{
  struct svc_pballoc b;
  svc_pballoc_init(&b, 1000);
  void *p = b.a.alloc(b.a.allocator_data, 400);
  ck_assert_ptr_nonnull(p);
  ck_assert_ptr_null(b.a.alloc(b.a.allocator_data, 700));
  ck_assert_int_eq(b.exhausted, 1);
  b.a.free(b.a.allocator_data, p);
  ck_assert_uint_eq(b.used, 0);
  p = b.a.alloc(b.a.allocator_data, 700);
  ck_assert_ptr_nonnull(p);
  b.a.free(b.a.allocator_data, p);
}
END_TEST

/* Many empty sub-messages: each costs an allocation far larger than its two
 * bytes on the wire. */
START_TEST(test_repeated_empty_submessages_hit_the_budget)
{
  size_t n = 50000;
  uint8_t *buf = malloc(n * 2 + 16);
  size_t len = 0;
  /* Events { repeated Event events = 2; } as StreamMessage field 3. */
  size_t inner = n * 2;
  buf[len++] = 0x08; buf[len++] = 0x01;              /* version = 1 */
  buf[len++] = 0x1a;                                 /* field 3, length-delimited */
  for (size_t v = inner; ; v >>= 7) {                /* varint length */
    buf[len++] = (uint8_t)((v & 0x7f) | (v >= 0x80 ? 0x80 : 0));
    if (v < 0x80) break;
  }
  for (size_t i = 0; i < n; i++) { buf[len++] = 0x12; buf[len++] = 0x00; }
  struct svc_pballoc b;
  svc_pballoc_init(&b, 64 * 1024);
  Whistle__Stream__StreamMessage *m = whistle__stream__stream_message__unpack(&b.a, len, buf);
  ck_assert_ptr_null(m);
  ck_assert_int_eq(b.exhausted, 1);
  ck_assert_uint_eq(b.used, 0); /* everything allocated was given back */
  svc_pballoc_init(&b, 64u << 20);
  m = whistle__stream__stream_message__unpack(&b.a, len, buf);
  ck_assert_ptr_nonnull(m); /* the same frame fits a large budget */
  ck_assert_uint_eq(m->events->n_events, n);
  whistle__stream__stream_message__free_unpacked(m, &b.a);
  ck_assert_uint_eq(b.used, 0);
  free(buf);
}
END_TEST

START_TEST(test_truncated_frames_fail_cleanly)
{
  Whistle__Stream__Subscribe s = WHISTLE__STREAM__SUBSCRIBE__INIT;
  s.consumer = "GA";
  s.after_seq = 123456789;
  s.window = 100;
  Whistle__Stream__StreamMessage m = WHISTLE__STREAM__STREAM_MESSAGE__INIT;
  m.version = 1;
  m.body_case = WHISTLE__STREAM__STREAM_MESSAGE__BODY_SUBSCRIBE;
  m.subscribe = &s;
  uint8_t buf[128];
  size_t len = whistle__stream__stream_message__pack(&m, buf);
  for (size_t cut = 1; cut < len; cut++) {
    struct svc_pballoc b;
    svc_pballoc_init(&b, 4096);
    Whistle__Stream__StreamMessage *u = whistle__stream__stream_message__unpack(&b.a, cut, buf);
    if (u) whistle__stream__stream_message__free_unpacked(u, &b.a);
    ck_assert_uint_eq(b.used, 0);
  }
}
END_TEST

/* R-I8: a frame that does not decode is answered with the request id its
 * envelope shows, as far as the wire data can be read. */
START_TEST(test_peek_request_id)
{
  uint64_t v = 0;
  /* version 1, request_id 300, then a length-delimited field cut short */
  const uint8_t cut[] = { 0x08, 0x01, 0x10, 0xac, 0x02, 0x1a, 0x40, 0x0a };
  ck_assert_int_eq(svc_pb_peek_varint(cut, sizeof cut, 2, &v), 0);
  ck_assert_uint_eq(v, 300);
  /* an id after the damage cannot be read */
  const uint8_t late[] = { 0x08, 0x01, 0x1a, 0x40, 0x0a, 0x10, 0x05 };
  ck_assert_int_eq(svc_pb_peek_varint(late, sizeof late, 2, &v), -1);
  /* a truncated varint, nothing, garbage */
  const uint8_t trunc[] = { 0x10, 0xff };
  ck_assert_int_eq(svc_pb_peek_varint(trunc, sizeof trunc, 2, &v), -1);
  ck_assert_int_eq(svc_pb_peek_varint(NULL, 0, 2, &v), -1);
  const uint8_t junk[] = { 0xff, 0xff, 0xff };
  ck_assert_int_eq(svc_pb_peek_varint(junk, sizeof junk, 2, &v), -1);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("alloc");
  TCase *tc = tcase_create("budget");
  tcase_add_test(tc, test_budget_refuses_and_recovers);
  tcase_add_test(tc, test_repeated_empty_submessages_hit_the_budget);
  tcase_add_test(tc, test_truncated_frames_fail_cleanly);
  tcase_add_test(tc, test_peek_request_id);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
