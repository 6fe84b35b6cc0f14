/* JSON lines answers (svc_lines.h): collected with jansson in the export
 * writing (sorted keys, reals to 15 significant digits, which prints the
 * rounded rates and scores of the exports as Python does), then paged. */
#include <stdlib.h>

#include <jansson.h>

#include "svc_lines.h"

void svc_lines_add(struct svc_lines *l, struct json_t *o)
{
  char *s = o ? json_dumps(o, JSON_SORT_KEYS | JSON_REAL_PRECISION(15)) : NULL;
  json_decref(o);
  if (!s) {
    l->oom = 1;
    return;
  }
  if (l->n == l->cap) {
    size_t c = l->cap ? l->cap * 2 : 64;
    char **p = realloc(l->v, c * sizeof *p);
    if (!p) {
      free(s);
      l->oom = 1;
      return;
    }
    l->v = p;
    l->cap = c;
  }
  l->v[l->n++] = s;
}

void svc_lines_clear(struct svc_lines *l)
{
  for (size_t i = 0; i < l->n; i++) free(l->v[i]);
  free(l->v);
  l->v = NULL;
  l->n = l->cap = 0;
  l->oom = 0;
}

void svc_lines_page(const struct svc_lines *l, uint32_t offset, uint32_t limit, size_t max,
                    char ***first, size_t *n)
{
  size_t lo = offset < l->n ? offset : l->n, left = l->n - lo;
  size_t lim = limit && limit < max ? limit : max;
  *first = l->v ? l->v + lo : NULL;
  *n = left < lim ? left : lim;
}
