/* A query's answer as JSON lines (the export shapes): objects written with
 * their keys sorted, UTF-8 as is, ", " and ": " separators, numbers as
 * Python writes them, collected, then handed out a page at a time. */
#ifndef SVC_LINES_H
#define SVC_LINES_H

#include <stddef.h>
#include <stdint.h>

struct json_t;
struct svc_lines {
  char **v; size_t n, cap;
  int oom;               /* a line could not be added: the answer is incomplete */
};

/* Adds the object o as one line, taking o's reference (NULL marks oom). */
void svc_lines_add(struct svc_lines *l, struct json_t *o);
/* Frees every line; the set can be used again. */
void svc_lines_clear(struct svc_lines *l);
/* Lines [offset, offset + limit) into *first and *n (limit 0 or over max:
 * max). */
void svc_lines_page(const struct svc_lines *l, uint32_t offset, uint32_t limit, size_t max,
                    char ***first, size_t *n);

#endif
