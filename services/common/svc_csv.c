/* A strict RFC 4180 reader for registry CSV files: checks the header, splits
 * records (quoted fields may hold commas, line breaks and "" escapes), requires
 * the header's field count and valid UTF-8 in every field, and reports errors
 * as "path:line: reason" with the line where the record starts. */
#include "svc_csv.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_RECORD_BYTES ((size_t)4 << 20)
#define BARE_CR (-2) /* next_ch(): a carriage return not followed by a line feed */

/* Records an error for line and stops the reader; returns -1. */
__attribute__((format(printf, 3, 4)))
static int fail(struct svc_csv *c, size_t line, const char *fmt, ...) {
  char reason[200];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  snprintf(c->err, sizeof c->err, "%s:%zu: %s", c->path ? c->path : "?", line, reason);
  c->done = -1;
  return -1;
}

/* Appends one byte to the record buffer; -1 when out of memory or too long. */
static int push(struct svc_csv *c, int ch) {
  if (c->len == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 256;
    char *nb;
    if (nc > MAX_RECORD_BYTES) return fail(c, c->line, "record too long");
    nb = realloc(c->buf, nc);
    if (!nb) return fail(c, c->line, "out of memory");
    c->buf = nb;
    c->cap = nc;
  }
  c->buf[c->len++] = (char)ch;
  return 0;
}

/* Reads a byte outside quotes, folding CRLF into '\n'; BARE_CR for a lone CR. */
static int next_ch(struct svc_csv *c) {
  int ch = getc_unlocked(c->f);

  if (ch != '\r') return ch;
  ch = getc_unlocked(c->f);
  return ch == '\n' ? '\n' : BARE_CR;
}

void svc_csv_close(struct svc_csv *c) {
  if (!c) return;
  if (c->f) fclose(c->f);
  c->f = NULL;
  free(c->fields);
  c->fields = NULL;
  c->n_fields = c->cap_fields = 0;
  free(c->buf);
  c->buf = NULL;
  c->len = c->cap = 0;
}

/* Reads the first physical line into buf without its line end and BOM. */
static int read_header_line(struct svc_csv *c) {
  int ch;

  c->len = 0;
  while ((ch = getc_unlocked(c->f)) != EOF && ch != '\n') {
    if (push(c, ch) != 0) return -1;
  }
  if (c->len > 0 && c->buf[c->len - 1] == '\r') c->len--;
  if (c->len >= 3 && memcmp(c->buf, "\xEF\xBB\xBF", 3) == 0) {
    memmove(c->buf, c->buf + 3, c->len - 3);
    c->len -= 3;
  }
  return push(c, '\0');
}

int svc_csv_open(struct svc_csv *c, const char *path, const char *header) {
  if (!c) return -1;
  memset(c, 0, sizeof *c);
  c->path = path;
  c->line = 1;
  if (!path || !header) return fail(c, 0, "no path or header given");
  c->f = fopen(path, "rb");
  if (!c->f) {
    snprintf(c->err, sizeof c->err, "%s: %s", path, strerror(errno));
    c->done = -1;
    return -1;
  }
  if (read_header_line(c) != 0) goto fail;
  if (strcmp(c->buf, header) != 0) {
    fail(c, 1, "expected header '%s' got '%.80s'", header, c->buf);
    goto fail;
  }
  c->n_columns = 1;
  for (const char *p = header; *p; p++) c->n_columns += (*p == ',');
  c->next_line = 2;
  return 0;
fail:
  svc_csv_close(c);
  return -1;
}

/* Reads a quoted field after its opening quote, up to the closing quote. */
static int read_quoted(struct svc_csv *c) {
  for (;;) {
    int ch = getc_unlocked(c->f);
    if (ch == EOF) return fail(c, c->line, "unterminated quote");
    if (ch == '"') {
      ch = getc_unlocked(c->f);
      if (ch != '"') {
        if (ch != EOF) ungetc(ch, c->f);
        return 0;
      }
    } else if (ch == '\n') {
      c->next_line++;
    }
    if (push(c, ch) != 0) return -1;
  }
}

/* Reads an unquoted field starting with ch; *term receives ',', '\n' or EOF. */
static int read_bare(struct svc_csv *c, int ch, int *term) {
  for (;; ch = next_ch(c)) {
    if (ch == ',' || ch == '\n' || ch == EOF) {
      *term = ch;
      return 0;
    }
    if (ch == BARE_CR) return fail(c, c->line, "carriage return without line feed");
    if (ch == '"') return fail(c, c->line, "quote inside an unquoted field");
    if (push(c, ch) != 0) return -1;
  }
}

/* Reads one field starting with ch; *term receives the byte that ended it. */
static int read_field(struct svc_csv *c, int ch, int *term) {
  if (ch != '"') return read_bare(c, ch, term);
  if (read_quoted(c) != 0) return -1;
  *term = next_ch(c);
  if (*term == ',' || *term == '\n' || *term == EOF) return 0;
  return fail(c, c->line, "text after a closing quote");
}

/* Points c->fields at the nf NUL-terminated fields in buf. */
static int set_fields(struct svc_csv *c, size_t nf) {
  const char *p = c->buf;

  if (nf != c->n_columns)
    return fail(c, c->line, "expected %zu fields, got %zu", c->n_columns, nf);
  if (nf > c->cap_fields) {
    char **nfp = realloc(c->fields, nf * sizeof *nfp);
    if (!nfp) return fail(c, c->line, "out of memory");
    c->fields = nfp;
    c->cap_fields = nf;
  }
  for (size_t i = 0; i < nf; i++) {
    c->fields[i] = (char *)p;
    p += strlen(p) + 1;
  }
  c->n_fields = nf;
  return 1;
}

/* Reads the fields of a record whose first byte is ch. */
static int read_record(struct svc_csv *c, int ch) {
  size_t nf = 0;
  int term;

  for (;;) {
    size_t start = c->len;
    if (read_field(c, ch, &term) != 0) return -1;
    nf++;
    if (!svc_utf8_valid(c->buf + start, c->len - start))
      return fail(c, c->line, "invalid UTF-8 in field %zu", nf);
    if (push(c, '\0') != 0) return -1;
    if (term != ',') break;
    ch = next_ch(c);
  }
  if (term == '\n') c->next_line++;
  return set_fields(c, nf);
}

/* Skips blank lines: fine at the end of the file, an error before a record. */
static int skip_blank(struct svc_csv *c) {
  size_t first = c->next_line;
  int ch;

  do {
    c->next_line++;
    ch = next_ch(c);
  } while (ch == '\n');
  if (ch == EOF) {
    c->done = 1;
    return 0;
  }
  return fail(c, first, "blank line");
}

int svc_csv_next(struct svc_csv *c) {
  int ch;

  if (!c || !c->f || c->done != 0) return (c && c->done == 1) ? 0 : -1;
  c->len = 0;
  c->n_fields = 0;
  c->line = c->next_line;
  ch = next_ch(c);
  if (ch == EOF) {
    c->done = 1;
    return 0;
  }
  if (ch == '\n') return skip_blank(c);
  return read_record(c, ch);
}

/* Number of continuation bytes after lead byte b, with the allowed range of the
 * first one (which excludes overlongs, surrogates and values above U+10FFFF). */
static int utf8_lead(unsigned char b, unsigned char *lo, unsigned char *hi) {
  *lo = 0x80;
  *hi = 0xbf;
  if (b >= 0xc2 && b <= 0xdf) return 1;
  if (b == 0xe0) *lo = 0xa0;
  else if (b == 0xed) *hi = 0x9f;
  if (b >= 0xe0 && b <= 0xef) return 2;
  if (b == 0xf0) *lo = 0x90;
  else if (b == 0xf4) *hi = 0x8f;
  if (b >= 0xf0 && b <= 0xf4) return 3;
  return -1;
}

int svc_utf8_valid(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;

  if (!s) return n == 0;
  while (i < n) {
    unsigned char lo, hi;
    int k;
    if (p[i] == 0) return 0;
    if (p[i] < 0x80) {
      i++;
      continue;
    }
    k = utf8_lead(p[i], &lo, &hi);
    if (k < 0 || n - i <= (size_t)k) return 0;
    if (p[i + 1] < lo || p[i + 1] > hi) return 0;
    for (int j = 2; j <= k; j++) {
      if ((p[i + j] & 0xc0) != 0x80) return 0;
    }
    i += (size_t)k + 1;
  }
  return 1;
}

size_t svc_utf8_len(const char *s, size_t n) {
  size_t count = 0;

  if (!s) return 0;
  for (size_t i = 0; i < n; i++) count += (((unsigned char)s[i] & 0xc0) != 0x80);
  return count;
}

/* White space (Unicode White_Space) and the invisible characters (Unicode
 * Default_Ignorable_Code_Point: soft hyphen, zero-width and bidi marks, word
 * joiner, invisible operators, fillers, variation selectors, BOM, tags) that
 * people paste as "nothing". */
static int blank_cp(uint32_t c) {
  static const uint32_t ranges[][2] = {
    { 0x09, 0x0d },     { 0x20, 0x20 },       { 0x85, 0x85 },       { 0xa0, 0xa0 },
    { 0xad, 0xad },     { 0x34f, 0x34f },     { 0x61c, 0x61c },     { 0x115f, 0x1160 },
    { 0x1680, 0x1680 }, { 0x17b4, 0x17b5 },   { 0x180b, 0x180f },   { 0x2000, 0x200f },
    { 0x2028, 0x202f }, { 0x205f, 0x206f },   { 0x3000, 0x3000 },   { 0x3164, 0x3164 },
    { 0xfe00, 0xfe0f }, { 0xfeff, 0xfeff },   { 0xffa0, 0xffa0 },   { 0xfff0, 0xfff8 },
    { 0x1bca0, 0x1bca3 }, { 0x1d173, 0x1d17a }, { 0xe0000, 0xe0fff },
  };
  for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++)
    if (c >= ranges[i][0] && c <= ranges[i][1]) return 1;
  return 0;
}

int svc_utf8_blank(const char *s, size_t n) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0;

  if (!s) return 1;
  while (i < n) {
    uint32_t c = p[i];
    int len = c < 0x80 ? 1 : c < 0xe0 ? 2 : c < 0xf0 ? 3 : 4;
    if (i + (size_t)len > n) return 0; /* truncated: not blank (and not valid) */
    if (len == 2) c = ((c & 0x1f) << 6) | (p[i + 1] & 0x3f);
    else if (len == 3) c = ((c & 0x0f) << 12) | ((p[i + 1] & 0x3fu) << 6) | (p[i + 2] & 0x3f);
    else if (len == 4)
      c = ((c & 0x07) << 18) | ((p[i + 1] & 0x3fu) << 12) | ((p[i + 2] & 0x3fu) << 6) | (p[i + 3] & 0x3f);
    if (!blank_cp(c)) return 0;
    i += (size_t)len;
  }
  return 1;
}
