/* Masking numbers typed into free text (R-I6a): a strict UTF-8
 * reader that classifies characters (digit, separator, check character,
 * other, invalid), the run scanner that delimits digit runs, and the writer
 * of masked runs. Pure; the rules are in svc_mask.h. */
#include "svc_mask.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MIN_MASKED 7     /* runs shorter than this are left alone */
#define MAX_GAP 3        /* separators in a row that still join two digits */
#define ID_LEN 18        /* resident ID number: 17 digits and a check character */
#define MOBILE_LEN 11

enum cls { C_OTHER, C_DIGIT, C_SEP, C_CHECK, C_BAD };

/* One character of the input: its class, its length in bytes and, for digits,
 * the ASCII digit. */
struct ch {
  enum cls cls;
  size_t len;
  char digit;
};

static int cont(unsigned char b) { return (b & 0xC0) == 0x80; }

/* The length of the valid UTF-8 sequence at s[0..n) (n >= 1) and its code
 * point, or 0 when it is not valid (overlong, surrogate, above U+10FFFF,
 * truncated, a stray continuation byte). */
static size_t utf8_decode(const unsigned char *s, size_t n, uint32_t *cp) {
  unsigned char b = s[0];

  if (b < 0x80) {
    *cp = b;
    return 1;
  }
  if (b >= 0xC2 && b <= 0xDF) {
    if (n < 2 || !cont(s[1])) return 0;
    *cp = ((uint32_t)(b & 0x1F) << 6) | (s[1] & 0x3F);
    return 2;
  }
  if (b >= 0xE0 && b <= 0xEF) {
    if (n < 3 || !cont(s[1]) || !cont(s[2])) return 0;
    if ((b == 0xE0 && s[1] < 0xA0) || (b == 0xED && s[1] > 0x9F)) return 0;
    *cp = ((uint32_t)(b & 0x0F) << 12) | ((uint32_t)(s[1] & 0x3F) << 6) | (s[2] & 0x3F);
    return 3;
  }
  if (b >= 0xF0 && b <= 0xF4) {
    if (n < 4 || !cont(s[1]) || !cont(s[2]) || !cont(s[3])) return 0;
    if ((b == 0xF0 && s[1] < 0x90) || (b == 0xF4 && s[1] > 0x8F)) return 0;
    *cp = ((uint32_t)(b & 0x07) << 18) | ((uint32_t)(s[1] & 0x3F) << 12) |
          ((uint32_t)(s[2] & 0x3F) << 6) | (s[3] & 0x3F);
    return 4;
  }
  return 0;
}

/* The character at s[i] (i < n). Invalid bytes and NUL are C_BAD, one byte. */
static struct ch char_at(const unsigned char *s, size_t n, size_t i) {
  uint32_t cp = 0;
  size_t len = utf8_decode(s + i, n - i, &cp);

  if (len == 0 || cp == 0) return (struct ch){C_BAD, 1, 0};
  if (cp >= '0' && cp <= '9') return (struct ch){C_DIGIT, len, (char)cp};
  if (cp >= 0xFF10 && cp <= 0xFF19) return (struct ch){C_DIGIT, len, (char)('0' + (cp - 0xFF10))};
  if (cp == ' ' || cp == '-' || cp == 0x3000 || cp == 0xFF0D) return (struct ch){C_SEP, len, 0};
  if (cp == 'X' || cp == 'x' || cp == 0xFF38 || cp == 0xFF58) return (struct ch){C_CHECK, len, 0};
  return (struct ch){C_OTHER, len, 0};
}

/* A digit run as the scanner found it. */
struct run {
  size_t end;       /* offset just past its last character */
  size_t digits;    /* digits in it */
  int check;        /* 1: ends with an ID check character */
  char first[2];    /* its first two digits (mobile numbers) */
};

/* Where the separators after a digit that ends at j lead: the offset of the
 * digit they join to, or 0 when none does (j > 0, so 0 is never an answer). */
static size_t joined_digit(const unsigned char *s, size_t n, size_t j) {
  size_t k = j;

  for (int gap = 0; gap < MAX_GAP && k < n; gap++) {
    struct ch c = char_at(s, n, k);
    if (c.cls != C_SEP) break;
    k += c.len;
  }
  if (k == j || k >= n) return 0;
  return char_at(s, n, k).cls == C_DIGIT ? k : 0;
}

/* Scans the run that starts with the digit at s[i]. */
static struct run scan_run(const unsigned char *s, size_t n, size_t i) {
  struct run r = {i, 0, 0, {0, 0}};
  size_t j = i;

  for (;;) {
    struct ch c = char_at(s, n, j); /* a digit */
    if (r.digits < 2) r.first[r.digits] = c.digit;
    r.digits++;
    j += c.len;
    if (j < n && char_at(s, n, j).cls == C_DIGIT) continue;
    size_t k = j < n ? joined_digit(s, n, j) : 0;
    if (k) {
      j = k;
      continue;
    }
    if (r.digits == ID_LEN - 1 && j < n) {
      struct ch x = char_at(s, n, j);
      if (x.cls == C_CHECK) {
        r.check = 1;
        j += x.len;
      }
    }
    break;
  }
  r.end = j;
  return r;
}

/* Whether the character at position p (0-based) of a masked run of len
 * characters is shown. */
static int shown(const struct run *r, size_t len, size_t p) {
  if (len == ID_LEN) return p < 6 || p >= ID_LEN - 4;
  if (len == MOBILE_LEN && r->first[0] == '1' && r->first[1] >= '3' && r->first[1] <= '9')
    return p < 3 || p >= MOBILE_LEN - 4;
  return p >= len - 4;
}

/* Writes the masked form of run r (starting at s[i]) at out; returns the
 * bytes written, at most r->end - i. */
static size_t write_masked(const unsigned char *s, size_t n, size_t i, const struct run *r,
                           char *out) {
  size_t len = r->digits + (size_t)r->check, p = 0;

  while (i < r->end) {
    struct ch c = char_at(s, n, i);
    i += c.len;
    if (c.cls == C_DIGIT) {
      out[p] = shown(r, len, p) ? c.digit : '*';
      p++;
    } else if (c.cls == C_CHECK) {
      out[p++] = 'X'; /* the 18th character: always shown */
    }
  }
  return p;
}

size_t svc_mask_text(const char *in, size_t len, char *out, size_t cap, int *changed) {
  const unsigned char *s = (const unsigned char *)in;
  size_t i = 0, o = 0;

  if (changed) *changed = 0;
  if (!out || cap < SVC_MASK_CAP(len) || len == SVC_MASK_ERROR || (!in && len > 0)) {
    if (out && cap > 0) out[0] = '\0';
    return SVC_MASK_ERROR;
  }
  while (i < len) {
    struct ch c = char_at(s, len, i);
    if (c.cls == C_BAD) {
      out[o++] = '?';
      i++;
    } else if (c.cls != C_DIGIT) {
      memcpy(out + o, s + i, c.len);
      o += c.len;
      i += c.len;
    } else {
      struct run r = scan_run(s, len, i);
      if (r.digits + (size_t)r.check < MIN_MASKED) {
        memcpy(out + o, s + i, r.end - i); /* valid UTF-8: every character was read */
        o += r.end - i;
      } else {
        o += write_masked(s, len, i, &r, out + o);
      }
      i = r.end;
    }
  }
  out[o] = '\0';
  if (changed) *changed = o != len || (len > 0 && memcmp(in, out, len) != 0);
  return o;
}

char *svc_mask_dup(const char *s, int *changed) {
  size_t n = s ? strlen(s) : 0;
  char *out = malloc(SVC_MASK_CAP(n));

  if (changed) *changed = 0;
  if (out && svc_mask_text(s ? s : "", n, out, SVC_MASK_CAP(n), changed) == SVC_MASK_ERROR) {
    free(out);
    return NULL;
  }
  return out;
}

/* ---- R-I6: the caller's number ----------------------------------------------- */

size_t svc_phone_digits(const char *phone, char *out, size_t n)
{
  size_t d = 0, skip = 0;

  if (!out || n == 0) return 0;
  out[0] = '\0';
  for (const char *p = (phone ? phone : ""); *p; p++) {
    if (*p < '0' || *p > '9') continue;
    if (d + 1 >= n) {
      out[0] = '\0';
      return 0;
    }
    out[d++] = *p;
  }
  out[d] = '\0';
  /* +86 138..., 0086 138..., 86 138...: the national mobile number. */
  if (d == 15 && memcmp(out, "0086", 4) == 0 && out[4] == '1') skip = 4;
  else if (d == 13 && memcmp(out, "86", 2) == 0 && out[2] == '1') skip = 2;
  memmove(out, out + skip, d - skip + 1);
  return d - skip;
}
