/* Logging: one logfmt line per event on stderr:
 *   ts=2026-11-22T03:16:08.123Z level=info svc=intake msg="..." key=value ...
 * Warnings and errors also carry func=<__func__>. The level comes from
 * WHISTLE_LOG_LEVEL (debug, info, warn, error). */
#ifndef SVC_LOG_H
#define SVC_LOG_H

#include <stdarg.h>
#include <stddef.h>

enum svc_log_level { SVC_LOG_DEBUG = 0, SVC_LOG_INFO, SVC_LOG_WARN, SVC_LOG_ERROR };

/* Sets the service name printed as svc= (NULL: "whistle"). The string must
 * outlive logging. Also applies WHISTLE_LOG_LEVEL if it is set and valid. */
void svc_log_init(const char *svc);
/* Sets the threshold; returns -1 for an unknown name (level unchanged). */
int svc_log_set_level_name(const char *name);
void svc_log_set_level(enum svc_log_level lvl);
int svc_log_enabled(enum svc_log_level lvl);

/* Writes one line. msg is quoted as needed; kvfmt is a printf format producing
 * further ` key=value` pairs (may be NULL or ""; write NULL for no pairs, since
 * a literal "" trips -Wformat-zero-length). Values that may hold spaces or
 * quotes should be passed through svc_log_quote(). Control bytes in the pairs
 * become spaces so the line stays one line; long lines are cut at 8 KiB. */
void svc_log(enum svc_log_level lvl, const char *func, const char *msg,
             const char *kvfmt, ...) __attribute__((format(printf, 4, 5)));
void svc_vlog(enum svc_log_level lvl, const char *func, const char *msg,
              const char *kvfmt, va_list ap) __attribute__((format(printf, 4, 0)));

/* Quotes s for logfmt into buf (always NUL-terminated, truncated with "..."
 * when too long); returns buf. Like msg, s is quoted only when it is empty or
 * holds a space, '=', '"' or a control byte; inside quotes '"' and '\\' are
 * backslash-escaped and control bytes written as \xNN (UTF-8 kept as is). */
const char *svc_log_quote(char *buf, size_t n, const char *s);

#define svc_debug(msg, ...) svc_log(SVC_LOG_DEBUG, NULL, msg, __VA_ARGS__)
#define svc_info(msg, ...) svc_log(SVC_LOG_INFO, NULL, msg, __VA_ARGS__)
#define svc_warn(msg, ...) svc_log(SVC_LOG_WARN, __func__, msg, __VA_ARGS__)
#define svc_error(msg, ...) svc_log(SVC_LOG_ERROR, __func__, msg, __VA_ARGS__)

#endif
