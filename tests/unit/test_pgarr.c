/* Unit tests of the binary array parameter builder: the exact wire layout
 * PostgreSQL's array_recv expects (header, per-element length and bytes). */
#include <arpa/inet.h>
#include <check.h>
#include <string.h>

#include "svc_pg.h"

static uint32_t get32(const char *p)
{
  uint32_t v;
  memcpy(&v, p, 4);
  return ntohl(v);
}

START_TEST(test_int8_array_layout)
{
  struct svc_pgarr a;
  svc_pgarr_init(&a, SVC_OID_INT8);
  svc_pgarr_add_i64(&a, 1);
  svc_pgarr_add_i64(&a, -2);
  ck_assert_int_eq(svc_pgarr_finish(&a), 0);
  ck_assert_uint_eq(a.len, 20 + 2 * 12);
  ck_assert_uint_eq(get32(a.buf), 1);        /* ndim */
  ck_assert_uint_eq(get32(a.buf + 4), 0);    /* no nulls */
  ck_assert_uint_eq(get32(a.buf + 8), 20);   /* int8 */
  ck_assert_uint_eq(get32(a.buf + 12), 2);   /* dimension */
  ck_assert_uint_eq(get32(a.buf + 16), 1);   /* lower bound */
  ck_assert_uint_eq(get32(a.buf + 20), 8);
  ck_assert_int_eq((unsigned char)a.buf[31], 1);
  ck_assert_int_eq((unsigned char)a.buf[36], 0xff); /* -2 big-endian */
  ck_assert_int_eq((unsigned char)a.buf[43], 0xfe);
  svc_pgarr_free(&a);
}
END_TEST

START_TEST(test_text_and_empty)
{
  struct svc_pgarr a;
  svc_pgarr_init(&a, SVC_OID_TEXT);
  svc_pgarr_add(&a, "幸福里", strlen("幸福里"));
  svc_pgarr_add(&a, "", 0);
  ck_assert_int_eq(svc_pgarr_finish(&a), 0);
  ck_assert_uint_eq(get32(a.buf + 20), 9);
  ck_assert_int_eq(memcmp(a.buf + 24, "幸福里", 9), 0);
  ck_assert_uint_eq(get32(a.buf + 33), 0);
  svc_pgarr_free(&a);
  svc_pgarr_init(&a, SVC_OID_BYTEA);
  ck_assert_int_eq(svc_pgarr_finish(&a), 0);
  ck_assert_uint_eq(a.len, 12);               /* empty: no dimensions */
  ck_assert_uint_eq(get32(a.buf), 0);
  svc_pgarr_free(&a);
}
END_TEST

int main(void)
{
  Suite *s = suite_create("pgarr");
  TCase *tc = tcase_create("layout");
  tcase_add_test(tc, test_int8_array_layout);
  tcase_add_test(tc, test_text_and_empty);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
