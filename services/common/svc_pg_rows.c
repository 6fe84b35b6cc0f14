/* Statements whose rows a service takes as text values: the adapter from a
 * PGresult to a row callback, so that no PGresult leaves the store files and
 * each store needs no result plumbing of its own. */
#include <stdlib.h>
#include <string.h>

#include "svc_pg.h"

#define ROW_MAX_COLS 32

struct rows { svc_pg_row_cb cb; void *arg; };

static void rows_cb(void *arg, const PGresult *r)
{
  const struct rows *w = arg;
  int nf = PQnfields(r);
  const char *v[ROW_MAX_COLS];
  if (nf > ROW_MAX_COLS) nf = ROW_MAX_COLS;
  for (int i = 0; i < PQntuples(r); i++) {
    for (int j = 0; j < nf; j++) v[j] = PQgetisnull(r, i, j) ? NULL : PQgetvalue(r, i, j);
    w->cb(w->arg, nf, v);
  }
}

static void free_hook(struct svc_pg_batch *b, enum svc_pg_outcome o, const char *e, void *arg)
{
  (void)b;
  (void)o;
  (void)e;
  free(arg);
}

int svc_pg_batch_add_rows(struct svc_pg_batch *b, struct svc_pg_stmt *st, int nparams,
                          const char *const *values, const int *lengths, const int *formats,
                          svc_pg_row_cb cb, void *arg)
{
  if (!cb) return svc_pg_batch_add(b, st, nparams, values, lengths, formats, 0, NULL, NULL);
  struct rows *w = malloc(sizeof *w);
  if (!w) return -1;
  *w = (struct rows){ cb, arg };
  if (svc_pg_batch_hook(b, free_hook, w)) {
    free(w);
    return -1;
  }
  return svc_pg_batch_add(b, st, nparams, values, lengths, formats, 0, rows_cb, w);
}

char *svc_pg_text_array(const char *const *v, size_t n)
{
  size_t cap = 3;
  for (size_t i = 0; i < n; i++) cap += 2 * strlen(v[i]) + 3;
  char *s = malloc(cap), *p = s;
  if (!s) return NULL;
  *p++ = '{';
  for (size_t i = 0; i < n; i++) {
    if (i) *p++ = ',';
    *p++ = '"';
    for (const char *c = v[i]; *c; c++) {
      if (*c == '"' || *c == '\\') *p++ = '\\';
      *p++ = *c;
    }
    *p++ = '"';
  }
  *p++ = '}';
  *p = 0;
  return s;
}
