/* All SQL of the stream: appending to the outbox under the head-row lock,
 * reading catch-up pages, moving a consumer's position, and rewriting
 * payloads in place in a start-up clean-up. */
#include "svc_stream_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_log.h"

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

/* ---- start-up clean-up: payloads rewritten in place ---------------------- */

#define REWRITE_PAGE 500
#define REWRITE_LOG_EVERY 50000 /* events read between progress lines */

static const char REWRITE_PAGE_SQL[] =
  "SELECT seq, payload FROM stream_outbox WHERE kind = $1 AND seq > $2 ORDER BY seq LIMIT $3";
static const char REWRITE_UPDATE_SQL[] =
  "UPDATE stream_outbox o SET payload = u.payload"
  " FROM unnest($1::int8[], $2::bytea[]) AS u (seq, payload) WHERE o.seq = u.seq";

/* Writes the page's replacements (one statement, committed on its own). */
static int rewrite_update(PGconn *c, struct svc_pgarr a[2])
{
  int rc = svc_pgarr_finish(&a[0]) | svc_pgarr_finish(&a[1]);
  if (rc == 0) {
    const char *v[2] = { a[0].buf, a[1].buf };
    int len[2] = { (int)a[0].len, (int)a[1].len }, fmt[2] = { 1, 1 };
    PGresult *r = svc_pg_exec(c, REWRITE_UPDATE_SQL, 2, v, len, fmt, 0, "outbox rewrite");
    rc = r ? 0 : -1;
    PQclear(r);
  }
  return rc;
}

/* Reads the page after *after and rewrites it; *rows: events read (0 at the
 * end). 0 or -1. */
static int rewrite_page(PGconn *c, const char *kind, svc_stream_rewrite_fn fn, void *arg,
                        int64_t *after, int *rows, int64_t *changed)
{
  char a[24], l[16];
  snprintf(a, sizeof a, "%lld", (long long)*after);
  snprintf(l, sizeof l, "%d", REWRITE_PAGE);
  const char *v[3] = { kind, a, l };
  PGresult *r = svc_pg_exec(c, REWRITE_PAGE_SQL, 3, v, NULL, NULL, 1, "outbox page");
  if (!r) return -1;
  struct svc_pgarr arr[2];
  svc_pgarr_init(&arr[0], SVC_OID_INT8);
  svc_pgarr_init(&arr[1], SVC_OID_BYTEA);
  int n = PQntuples(r), k = 0, rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    int64_t seq = svc_pg_get_i64(r, i, 0);
    uint8_t *out = NULL;
    size_t out_len = 0;
    int x = fn(arg, (const uint8_t *)PQgetvalue(r, i, 1), (size_t)PQgetlength(r, i, 1), &out,
               &out_len);
    if (x < 0) {
      svc_error("outbox event cannot be rewritten", " seq=%lld kind=%s", (long long)seq, kind);
      rc = -1;
    } else if (x > 0) {
      svc_pgarr_add_i64(&arr[0], seq);
      svc_pgarr_add(&arr[1], out, out_len);
      k++;
    }
    free(out);
    *after = seq;
  }
  PQclear(r);
  if (rc == 0 && k > 0) rc = rewrite_update(c, arr);
  if (rc == 0) *changed += k;
  svc_pgarr_free(&arr[0]);
  svc_pgarr_free(&arr[1]);
  *rows = n;
  return rc;
}

int svc_stream_rewrite(PGconn *c, const char *kind, svc_stream_rewrite_fn fn, void *arg,
                       int64_t *changed)
{
  int64_t after = 0, seen = 0, logged = 0, mine = 0;
  int rows = 0;
  do {
    if (rewrite_page(c, kind, fn, arg, &after, &rows, &mine)) return -1;
    seen += rows;
    if (seen - logged >= REWRITE_LOG_EVERY) {
      svc_info("rewriting the outbox", " kind=%s read=%lld rewritten=%lld seq=%lld", kind,
               (long long)seen, (long long)mine, (long long)after);
      logged = seen;
    }
  } while (rows == REWRITE_PAGE);
  svc_info("outbox rewritten", " kind=%s read=%lld rewritten=%lld", kind, (long long)seen,
           (long long)mine);
  *changed += mine;
  return 0;
}
