/* A strict RFC 4180 CSV reader for registry files (UTF-8, header row, comma,
 * double-quote quoting with "" escapes, CRLF or LF line ends). Fields are
 * NUL-terminated copies valid until the next svc_csv_next() call. */
#ifndef SVC_CSV_H
#define SVC_CSV_H

#include <stddef.h>
#include <stdio.h>

struct svc_csv {
  FILE *f;
  const char *path;
  size_t line;        /* physical line where the current record started */
  char **fields; size_t n_fields, cap_fields;
  char *buf; size_t len, cap;
  char err[256];
  /* Reader state: */
  size_t n_columns;   /* fields in the header, required of every record */
  size_t next_line;   /* physical line the next record starts on */
  int done;           /* 0 reading, 1 at end of file, -1 after an error */
};

/* Opens path and reads the header; checks it equals `header` (comma-separated
 * column names). Returns 0, or -1 with "path:line: reason" in c->err. */
int svc_csv_open(struct svc_csv *c, const char *path, const char *header);
/* Reads the next record. Returns 1 with c->fields/c->n_fields set, 0 at end of
 * file, -1 on error (c->err: unterminated quote, wrong field count, invalid
 * UTF-8). Every record must have as many fields as the header. */
int svc_csv_next(struct svc_csv *c);
/* Closes the file and frees the fields; safe after a failed open and twice. */
void svc_csv_close(struct svc_csv *c);

/* Returns 1 if the n bytes at s are valid UTF-8 (no overlongs, no surrogates,
 * at most U+10FFFF, no NUL bytes since fields are C strings), else 0. */
int svc_utf8_valid(const char *s, size_t n);
/* Number of code points in valid UTF-8. */
size_t svc_utf8_len(const char *s, size_t n);
/* Returns 1 if the n bytes at s hold nothing but white space (Unicode
 * White_Space: U+3000 and the other spaces too) and invisible characters
 * (Unicode Default_Ignorable_Code_Point: U+00AD, U+200B..U+200F, U+2060..,
 * U+FEFF, variation selectors ...), or nothing at all: a required text field
 * like that is missing (R-I8). 0 otherwise. */
int svc_utf8_blank(const char *s, size_t n);

#endif
