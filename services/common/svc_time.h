/* Time, periods, the working-day calendar and the service clock (docs/rules.md §0).
 * Instants are int64 microseconds since the Unix epoch (UTC); local time is the
 * city's fixed offset (default +08:00, no DST, R-T1). Everything here is pure
 * except svc_clock_now() in wall mode, which reads the system clock. */
#ifndef SVC_TIME_H
#define SVC_TIME_H

#include <stddef.h>
#include <stdint.h>

#define SVC_US_PER_SEC INT64_C(1000000)
#define SVC_DEFAULT_UTC_OFFSET (8 * 3600)

struct svc_date { int y, m, d; };

/* Days since 1970-01-01 of a proleptic Gregorian date, and back. */
int32_t svc_days_from_civil(int y, int m, int d);
struct svc_date svc_civil_from_days(int32_t days);
/* 0 = Monday ... 6 = Sunday. */
int svc_weekday(int32_t days);
/* The local date (as days since epoch) of an instant at utc offset off_s (R-T1). */
int32_t svc_local_day(int64_t us, int off_s);
/* The instant of local midnight starting `days` at offset off_s. */
int64_t svc_local_midnight(int32_t days, int off_s);

/* Parses RFC 3339 ("2026-10-01T08:15:00+08:00", "...Z", optional fraction up to
 * microseconds). len may be (size_t)-1 for a NUL-terminated string. Returns 0,
 * or -1 for anything else (no offset, bad field, out of range). */
int svc_time_parse(const char *s, size_t len, int64_t *us);
/* Formats at offset off_s as "2026-10-09T00:00:00+08:00" (a fraction only when
 * non-zero). Returns the length written (buf always NUL-terminated), or -1 if n
 * is too small (needs at most 33 bytes). */
int svc_time_format(int64_t us, int off_s, char *buf, size_t n);
/* Parses "YYYY-MM-DD" into days since epoch; 0 or -1. */
int svc_date_parse(const char *s, size_t len, int32_t *days);

/* Periods of an instant in local time (R-T1), written into buf (>= 8 bytes):
 * month "2026-10", quarter "2026Q4", half "2026H2", year "2026". Returns 0, or
 * -1 if n is too small (buf is then ""). */
enum svc_period_kind { SVC_PERIOD_MONTH, SVC_PERIOD_QUARTER, SVC_PERIOD_HALF, SVC_PERIOD_YEAR };
int svc_period_name(enum svc_period_kind k, int64_t us, int off_s, char *buf, size_t n);
/* Start and end (exclusive: the next period's start) instants of the period
 * containing us, in local time. */
void svc_period_bounds(enum svc_period_kind k, int64_t us, int off_s, int64_t *start, int64_t *end);

/* The working-day calendar (R-T4): Monday-Friday work, except HOLIDAY dates;
 * WORKDAY dates (make-up days) work even at weekends. Data, not code. */
struct svc_calendar {
  int32_t *holidays; size_t n_holidays, cap_holidays; /* sorted days */
  int32_t *workdays; size_t n_workdays, cap_workdays; /* sorted days */
};
void svc_calendar_init(struct svc_calendar *c);
void svc_calendar_free(struct svc_calendar *c);
/* Adds a date; kind is "HOLIDAY" or "WORKDAY". Returns 0 or -1 (bad kind, OOM). */
int svc_calendar_add(struct svc_calendar *c, int32_t day, const char *kind);
int svc_calendar_is_workday(const struct svc_calendar *c, int32_t day);
/* Loads calendar.csv (header "date,kind"). On success the file's dates replace
 * c's; on error c is unchanged and -1 is returned with "file:line: reason" in
 * err. */
int svc_calendar_load_csv(struct svc_calendar *c, const char *path, char *err, size_t errlen);

/* Deadlines (R-T5). "Within N hours": calendar hours from start. "Within N
 * working days": 23:59:59 local on the N-th working day strictly after the
 * local date of start (N >= 1; N < 1 gives 23:59:59 of the start's own local
 * date). c may be NULL for plain Monday-Friday. */
int64_t svc_deadline_hours(int64_t start_us, int hours);
int64_t svc_deadline_workdays(const struct svc_calendar *c, int64_t start_us, int n, int off_s);
/* A deadline has passed when event time has moved beyond its second: an action
 * stamped within the deadline second is on time (R-R4). */
int svc_deadline_passed(int64_t deadline_us, int64_t now_us);
/* The instant at which `pct` percent of the span start..deadline has elapsed. */
int64_t svc_deadline_fraction(int64_t start_us, int64_t deadline_us, int pct);

#define SVC_DAY_US (INT64_C(86400) * 1000000)

/* The service clock (R-T3). wall: now = max(system clock, latest event time).
 * event: now advances only with observed event times and watermarks. */
enum svc_clock_mode { SVC_CLOCK_WALL, SVC_CLOCK_EVENT };
struct svc_clock {
  enum svc_clock_mode mode;
  int64_t latest_us; /* max observed event time / watermark; 0 = none */
  int64_t (*wall_fn)(void); /* system clock in us; replaceable in tests; NULL = real */
};
void svc_clock_init(struct svc_clock *c, enum svc_clock_mode mode);
/* Parses "wall" or "event"; 0 or -1. */
int svc_clock_mode_parse(const char *s, enum svc_clock_mode *mode);
void svc_clock_observe(struct svc_clock *c, int64_t event_us);
int64_t svc_clock_now(const struct svc_clock *c);
/* The latest event time an input may carry (R-T3, R-I8); later is REJECTED.
 * wall: the system clock plus one day, whatever the clock has observed, so
 * that no input drags "now" further (inputs one day ahead cannot ratchet it).
 * event: SVC_EVENT_INPUT_MAX_US: the feed is the clock (R-T3 bounds wall mode
 * only), so neither the system clock nor a gap between a feed's lines makes
 * an input "the future"; a replay gives the same results on any date. */
#define SVC_EVENT_INPUT_MAX_US INT64_C(4102444800000000) /* 2100-01-01T00:00:00Z */
int64_t svc_clock_input_bound(const struct svc_clock *c);
/* wall: how far the observed time is ahead of the system clock (0 if not);
 * event: 0. A clock restored from the database ahead of the system clock
 * (dragged before inputs were bounded) is reported with it. */
int64_t svc_clock_ahead_us(const struct svc_clock *c);
/* The real system clock in us (CLOCK_REALTIME). */
int64_t svc_wall_us(void);
/* A monotonic clock in us (CLOCK_MONOTONIC), for timeouts and latency. */
int64_t svc_mono_us(void);

#endif
