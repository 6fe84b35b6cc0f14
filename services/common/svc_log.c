/* Logging: builds one logfmt line per event (ts, level, svc, msg, caller's
 * key=value pairs, func for warnings and errors) in a bounded buffer and writes
 * it to stderr with a single write(2), so lines from concurrent writers do not
 * interleave. Also quotes values for logfmt. */
#include "svc_log.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LINE_MAX_BYTES 8192
#define TAIL_MAX_BYTES 160

static const char *g_svc = "whistle";
static enum svc_log_level g_level = SVC_LOG_INFO;

static const char *const level_names[] = {"debug", "info", "warn", "error"};

void svc_log_init(const char *svc) {
  const char *env = getenv("WHISTLE_LOG_LEVEL");

  g_svc = (svc && *svc) ? svc : "whistle";
  /* A convenience: honour the level variable even before the config table is read. */
  if (env && *env) (void)svc_log_set_level_name(env);
}

int svc_log_set_level_name(const char *name) {
  if (!name) return -1;
  for (int i = 0; i < 4; i++) {
    if (strcmp(name, level_names[i]) == 0) {
      g_level = (enum svc_log_level)i;
      return 0;
    }
  }
  return -1;
}

void svc_log_set_level(enum svc_log_level lvl) {
  if (lvl >= SVC_LOG_DEBUG && lvl <= SVC_LOG_ERROR) g_level = lvl;
}

int svc_log_enabled(enum svc_log_level lvl) {
  return lvl >= g_level;
}

/* Returns 1 if a byte must be escaped inside a quoted value. */
static int is_unprintable(unsigned char b) {
  return b < 0x20 || b == 0x7f;
}

/* Returns 1 if s cannot be written bare as a logfmt value. */
static int needs_quote(const char *s) {
  if (*s == '\0') return 1;
  for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
    if (*p == ' ' || *p == '=' || *p == '"' || is_unprintable(*p)) return 1;
  }
  return 0;
}

/* Writes the escaped form of byte b into out; returns its length (1-4). */
static size_t escape_byte(unsigned char b, char *out) {
  static const char hex[] = "0123456789abcdef";

  if (b == '"' || b == '\\') {
    out[0] = '\\';
    out[1] = (char)b;
    return 2;
  }
  if (is_unprintable(b)) {
    out[0] = '\\';
    out[1] = 'x';
    out[2] = hex[b >> 4];
    out[3] = hex[b & 15];
    return 4;
  }
  out[0] = (char)b;
  return 1;
}

/* Length of the unit starting at p that must not be split: a whole UTF-8
 * sequence (lead byte plus continuation bytes) or one byte. */
static size_t unit_bytes(const unsigned char *p) {
  size_t k = 1;
  if (*p < 0xc0) return 1;
  while (k < 4 && (p[k] & 0xc0) == 0x80) k++;
  return k;
}

/* Appends s (escaped when esc) to buf[o..lim) unit by unit, stopping before a
 * unit that does not fit. Returns the new offset; *done tells if all of s fit. */
static size_t put_value(char *buf, size_t o, size_t lim, const char *s, int esc, int *done) {
  const unsigned char *p = (const unsigned char *)s;
  char tmp[16];

  while (*p) {
    size_t ub = unit_bytes(p), tl = 0;
    for (size_t i = 0; i < ub; i++) {
      if (esc) tl += escape_byte(p[i], tmp + tl);
      else tmp[tl++] = (char)p[i];
    }
    if (o + tl > lim) {
      *done = 0;
      return o;
    }
    memcpy(buf + o, tmp, tl);
    o += tl;
    p += ub;
  }
  *done = 1;
  return o;
}

const char *svc_log_quote(char *buf, size_t n, const char *s) {
  size_t q, o, lim;
  int done;

  if (!buf || n == 0) return buf;
  buf[0] = '\0';
  if (!s) s = "";
  q = (size_t)needs_quote(s);
  if (n < 1 + 2 * q) return buf;
  lim = n - 1 - q; /* room for the NUL and the closing quote */
  buf[0] = '"';
  o = put_value(buf, q, lim, s, (int)q, &done);
  if (!done) {
    if (lim < q + 3) {
      buf[0] = '\0';
      return buf;
    }
    o = put_value(buf, q, lim - 3, s, (int)q, &done);
    memcpy(buf + o, "...", 3);
    o += 3;
  }
  if (q) buf[o++] = '"';
  buf[o] = '\0';
  return buf;
}

/* Writes the timestamp field "ts=YYYY-MM-DDTHH:MM:SS.mmmZ" into buf. */
static size_t put_ts(char *buf, size_t n) {
  struct timespec ts;
  struct tm tm;
  int k;

  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  k = snprintf(buf, n, "ts=%04d-%02d-%02dT%02d:%02d:%02d.%03ldZ", tm.tm_year + 1900,
               tm.tm_mon + 1, tm.tm_mday, tm.tm_hour, tm.tm_min, tm.tm_sec,
               (long)(ts.tv_nsec / 1000000));
  if (k < 0) return 0;
  return (size_t)k < n ? (size_t)k : n - 1;
}

/* Replaces line breaks and other control bytes so the line stays one line. */
static void flatten(char *s, size_t len) {
  for (size_t i = 0; i < len; i++) {
    if (is_unprintable((unsigned char)s[i])) s[i] = ' ';
  }
}

/* Formats the caller's pairs at buf[o..lim); marks truncation with "...". */
__attribute__((format(printf, 4, 0)))
static size_t put_kv(char *buf, size_t o, size_t lim, const char *kvfmt, va_list ap) {
  int k;

  if (!kvfmt || !*kvfmt || o >= lim) return o;
  k = vsnprintf(buf + o, lim - o + 1, kvfmt, ap);
  if (k < 0) return o;
  if ((size_t)k > lim - o) {
    size_t end = lim;
    /* Back off to a UTF-8 boundary before adding the marker. */
    while (end > o + 3 && ((unsigned char)buf[end - 3] & 0xc0) == 0x80) end--;
    memcpy(buf + end - 3, "...", 3);
    k = (int)(end - o);
  }
  flatten(buf + o, (size_t)k);
  return o + (size_t)k;
}

void svc_vlog(enum svc_log_level lvl, const char *func, const char *msg,
              const char *kvfmt, va_list ap) {
  char line[LINE_MAX_BYTES], tail[TAIL_MAX_BYTES];
  size_t o, lim, tl = 0;
  int k, saved = errno;

  if (lvl < SVC_LOG_DEBUG || lvl > SVC_LOG_ERROR) lvl = SVC_LOG_ERROR;
  if (!svc_log_enabled(lvl)) return;
  if (func && lvl >= SVC_LOG_WARN) {
    k = snprintf(tail, sizeof tail - 1, " func=%s", func);
    tl = k < 0 ? 0 : ((size_t)k < sizeof tail - 1 ? (size_t)k : sizeof tail - 2);
  }
  tail[tl++] = '\n';
  lim = sizeof line - tl - 1; /* the body ends before the tail and the NUL */
  o = put_ts(line, lim);
  k = snprintf(line + o, lim - o, " level=%s svc=%s msg=", level_names[lvl], g_svc);
  o += (k < 0) ? 0 : ((size_t)k < lim - o ? (size_t)k : lim - o - 1);
  svc_log_quote(line + o, lim - o < 2048 ? lim - o : 2048, msg ? msg : "");
  o += strlen(line + o);
  o = put_kv(line, o, lim - 1, kvfmt, ap);
  memcpy(line + o, tail, tl);
  o += tl;
  while (write(STDERR_FILENO, line, o) < 0 && errno == EINTR) {
  }
  errno = saved;
}

void svc_log(enum svc_log_level lvl, const char *func, const char *msg,
             const char *kvfmt, ...) {
  va_list ap;

  va_start(ap, kvfmt);
  svc_vlog(lvl, func, msg, kvfmt, ap);
  va_end(ap);
}
