/* Binary-format PostgreSQL arrays, built in memory and passed as one
 * parameter, so that a whole batch of rows goes in with one unnest() statement
 * instead of one statement per row. */
#include "svc_pg.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#define ARR_HDR 20 /* ndim, flags, elem oid, dim, lower bound */

static void put32(char *p, uint32_t v)
{
  v = htonl(v);
  memcpy(p, &v, 4);
}

static int reserve(struct svc_pgarr *a, size_t more)
{
  if (a->oom) return -1;
  if (a->len + more <= a->cap) return 0;
  size_t cap = a->cap ? a->cap : 256;
  while (cap < a->len + more) cap *= 2;
  char *b = realloc(a->buf, cap);
  if (!b) {
    a->oom = 1;
    return -1;
  }
  a->buf = b;
  a->cap = cap;
  return 0;
}

void svc_pgarr_init(struct svc_pgarr *a, Oid elem)
{
  memset(a, 0, sizeof *a);
  a->elem = elem;
  if (reserve(a, ARR_HDR) == 0) a->len = ARR_HDR;
}

void svc_pgarr_add(struct svc_pgarr *a, const void *data, size_t len)
{
  if (len > INT32_MAX || reserve(a, 4 + len)) {
    a->oom = 1;
    return;
  }
  put32(a->buf + a->len, (uint32_t)len);
  if (len) memcpy(a->buf + a->len + 4, data, len);
  a->len += 4 + len;
  a->n++;
}

void svc_pgarr_add_i64(struct svc_pgarr *a, int64_t v)
{
  char b[8];
  uint64_t u = (uint64_t)v;
  for (int i = 7; i >= 0; i--, u >>= 8) b[i] = (char)(u & 0xff);
  svc_pgarr_add(a, b, 8);
}

int svc_pgarr_finish(struct svc_pgarr *a)
{
  if (a->oom || !a->buf) return -1;
  if (a->n == 0) { /* PostgreSQL writes an empty array with no dimensions */
    put32(a->buf, 0);
    put32(a->buf + 4, 0);
    put32(a->buf + 8, (uint32_t)a->elem);
    a->len = 12;
    return 0;
  }
  put32(a->buf, 1);                  /* one dimension */
  put32(a->buf + 4, 0);              /* no NULLs */
  put32(a->buf + 8, (uint32_t)a->elem);
  put32(a->buf + 12, (uint32_t)a->n);
  put32(a->buf + 16, 1);             /* lower bound */
  return 0;
}

void svc_pgarr_free(struct svc_pgarr *a)
{
  free(a->buf);
  memset(a, 0, sizeof *a);
}
