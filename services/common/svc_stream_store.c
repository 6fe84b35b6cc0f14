/* All SQL of the stream: appending to the outbox under the head-row lock,
 * reading catch-up pages, and moving a consumer's position. */
#include "svc_stream_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static const char APPEND_SQL[] =
  "WITH h AS (UPDATE stream_head SET last_seq = last_seq + $1 WHERE id = 1"
  "           RETURNING last_seq - $1 AS base),"
  " ins AS (INSERT INTO stream_outbox (seq, event_us, kind, addressee, payload)"
  "         SELECT h.base + u.ord, u.t, u.k, u.a, u.p FROM h,"
  "         unnest($2::int8[], $3::text[], $4::text[], $5::bytea[])"
  "           WITH ORDINALITY AS u(t, k, a, p, ord))"
  " SELECT base FROM h";
static const char HEAD_SQL[] = "SELECT last_seq FROM stream_head WHERE id = 1";
static const char PAGE_ALL_SQL[] =
  "SELECT seq, event_us, kind, addressee, payload FROM stream_outbox"
  " WHERE seq > $1 AND seq <= $2 ORDER BY seq LIMIT $3";
static const char PAGE_FOR_SQL[] =
  "SELECT seq, event_us, kind, addressee, payload FROM stream_outbox"
  " WHERE seq > $1 AND seq <= $2 AND addressee IN ($4, '*') AND addressee <> ''"
  " ORDER BY seq LIMIT $3";
static const char ADVANCE_SQL[] = "SELECT stream_advance($1, $2, $3)";
static const char POSITION_SQL[] = "SELECT last_seq FROM stream_positions WHERE producer = $1";

int svc__stream_store_prepare_producer(struct svc__stream_stmts *s, struct svc_pg *w, struct svc_pg *r)
{
  s->append = svc_pg_prepare(w, APPEND_SQL, 5, NULL);
  s->head = svc_pg_prepare(r, HEAD_SQL, 0, NULL);
  s->page_all = svc_pg_prepare(r, PAGE_ALL_SQL, 3, NULL);
  s->page_for = svc_pg_prepare(r, PAGE_FOR_SQL, 4, NULL);
  return s->append && s->head && s->page_all && s->page_for ? 0 : -1;
}

int svc__stream_store_append(const struct svc__stream_stmts *s, struct svc_pg_batch *b,
                            struct svc_pgarr arr[4], int64_t n, svc_pg_result_cb cb, void *arg)
{
  char nbuf[24];
  snprintf(nbuf, sizeof nbuf, "%lld", (long long)n);
  const char *v[5] = { nbuf, arr[0].buf, arr[1].buf, arr[2].buf, arr[3].buf };
  int len[5] = { 0, (int)arr[0].len, (int)arr[1].len, (int)arr[2].len, (int)arr[3].len };
  int fmt[5] = { 0, 1, 1, 1, 1 };
  len[0] = (int)strlen(nbuf);
  return svc_pg_batch_add(b, s->append, 5, v, len, fmt, 1, cb, arg);
}

int svc__stream_store_head(const struct svc__stream_stmts *s, struct svc_pg_batch *b,
                          svc_pg_result_cb cb, void *arg)
{
  return svc_pg_batch_add(b, s->head, 0, NULL, NULL, NULL, 1, cb, arg);
}

int svc__stream_store_page(const struct svc__stream_stmts *s, struct svc_pg_batch *b, uint64_t after,
                          uint64_t upto, int limit, const char *who, svc_pg_result_cb cb, void *arg)
{
  char a[24], u[24], l[16];
  snprintf(a, sizeof a, "%llu", (unsigned long long)after);
  snprintf(u, sizeof u, "%llu", (unsigned long long)upto);
  snprintf(l, sizeof l, "%d", limit);
  const char *v[4] = { a, u, l, who };
  return svc_pg_batch_add(b, who ? s->page_for : s->page_all, who ? 4 : 3, v, NULL, NULL, 1, cb,
                          arg);
}

int svc__stream_store_prepare_consumer(struct svc__stream_cstmts *s, struct svc_pg *pg)
{
  s->advance = svc_pg_prepare(pg, ADVANCE_SQL, 3, NULL);
  s->position = svc_pg_prepare(pg, POSITION_SQL, 1, NULL);
  return s->advance && s->position ? 0 : -1;
}

int svc__stream_store_advance(const struct svc__stream_cstmts *s, struct svc_pg_batch *b,
                             const char *producer, uint64_t from, uint64_t to)
{
  char f[24], t[24];
  snprintf(f, sizeof f, "%llu", (unsigned long long)from);
  snprintf(t, sizeof t, "%llu", (unsigned long long)to);
  const char *v[3] = { producer, f, t };
  return svc_pg_batch_add(b, s->advance, 3, v, NULL, NULL, 0, NULL, NULL);
}

int svc__stream_store_position(const struct svc__stream_cstmts *s, struct svc_pg_batch *b,
                              const char *producer, svc_pg_result_cb cb, void *arg)
{
  const char *v[1] = { producer };
  return svc_pg_batch_add(b, s->position, 1, v, NULL, NULL, 1, cb, arg);
}
