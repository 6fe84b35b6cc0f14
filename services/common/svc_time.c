/* Time (docs/rules.md §0): civil-date arithmetic, RFC 3339 parsing and formatting,
 * local-time periods (R-T1), the working-day calendar (R-T4), deadlines (R-T5)
 * and the service clock (R-T3). Everything is pure except the clock reads. */
#include "svc_time.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "svc_csv.h"

#define SECS_PER_DAY INT64_C(86400)
#define MAX_OFFSET_S (18 * 3600)

/* Floor division for a positive divisor. */
static int64_t floor_div(int64_t a, int64_t b) {
  int64_t q = a / b;
  return (a % b != 0 && a < 0) ? q - 1 : q;
}

int32_t svc_days_from_civil(int y, int m, int d) {
  int64_t yy = (int64_t)y - (m <= 2);
  int64_t era = (yy >= 0 ? yy : yy - 399) / 400;
  int64_t yoe = yy - era * 400;                                 /* [0, 399] */
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1; /* [0, 365] */
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;          /* [0, 146096] */
  return (int32_t)(era * 146097 + doe - 719468);
}

struct svc_date svc_civil_from_days(int32_t days) {
  int64_t z = (int64_t)days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  struct svc_date r;

  r.d = (int)(doy - (153 * mp + 2) / 5 + 1);
  r.m = (int)(mp < 10 ? mp + 3 : mp - 9);
  r.y = (int)(yoe + era * 400 + (r.m <= 2));
  return r;
}

int svc_weekday(int32_t days) {
  /* 1970-01-01 was a Thursday (3 when Monday is 0). */
  return (int)((((int64_t)days % 7) + 7 + 3) % 7);
}

int32_t svc_local_day(int64_t us, int off_s) {
  int64_t secs = floor_div(us, SVC_US_PER_SEC) + off_s;
  return (int32_t)floor_div(secs, SECS_PER_DAY);
}

int64_t svc_local_midnight(int32_t days, int off_s) {
  return ((int64_t)days * SECS_PER_DAY - off_s) * SVC_US_PER_SEC;
}

static int is_leap(int y) {
  return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static int days_in_month(int y, int m) {
  static const int dim[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return (m == 2 && is_leap(y)) ? 29 : dim[m - 1];
}

/* Reads exactly k decimal digits at s into *v; 0 or -1. */
static int digits(const char *s, int k, int *v) {
  int r = 0;
  for (int i = 0; i < k; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    r = r * 10 + (s[i] - '0');
  }
  *v = r;
  return 0;
}

/* Parses "YYYY-MM-DD" at s (at least 10 bytes available) and validates it. */
static int parse_date10(const char *s, int32_t *days) {
  int y, m, d;

  if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &m) || s[7] != '-' ||
      digits(s + 8, 2, &d))
    return -1;
  if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m)) return -1;
  *days = svc_days_from_civil(y, m, d);
  return 0;
}

int svc_date_parse(const char *s, size_t len, int32_t *days) {
  if (!s || !days) return -1;
  if (len == (size_t)-1) len = strlen(s);
  if (len != 10) return -1;
  return parse_date10(s, days);
}

/* Parses "HH:MM:SS" at s (8 bytes) into seconds of the day; rejects leap seconds. */
static int parse_hms(const char *s, int64_t *sod) {
  int h, mi, se;

  if (digits(s, 2, &h) || s[2] != ':' || digits(s + 3, 2, &mi) || s[5] != ':' ||
      digits(s + 6, 2, &se))
    return -1;
  if (h > 23 || mi > 59 || se > 59) return -1;
  *sod = h * 3600 + mi * 60 + se;
  return 0;
}

/* Parses an optional ".f{1,6}" at s[*i..len) into microseconds. */
static int parse_frac(const char *s, size_t len, size_t *i, int64_t *frac) {
  int64_t f = 0;
  int k = 0;

  *frac = 0;
  if (*i >= len || s[*i] != '.') return 0;
  for ((*i)++; *i < len && s[*i] >= '0' && s[*i] <= '9'; (*i)++, k++) {
    if (k == 6) return -1;
    f = f * 10 + (s[*i] - '0');
  }
  if (k == 0) return -1;
  for (; k < 6; k++) f *= 10;
  *frac = f;
  return 0;
}

/* Parses the offset "Z", "z", "+HH:MM" or "-HH:MM" which must end the string. */
static int parse_offset(const char *s, size_t len, int *off_s) {
  int h, m;

  if (len == 1 && (s[0] == 'Z' || s[0] == 'z')) {
    *off_s = 0;
    return 0;
  }
  if (len != 6 || (s[0] != '+' && s[0] != '-') || digits(s + 1, 2, &h) || s[3] != ':' ||
      digits(s + 4, 2, &m))
    return -1;
  if (m > 59 || h * 3600 + m * 60 > MAX_OFFSET_S) return -1;
  *off_s = (s[0] == '-' ? -1 : 1) * (h * 3600 + m * 60);
  return 0;
}

int svc_time_parse(const char *s, size_t len, int64_t *us) {
  int32_t days;
  int64_t sod, frac;
  size_t i = 19;
  int off;

  if (!s || !us) return -1;
  if (len == (size_t)-1) len = strlen(s);
  if (len < 20 || parse_date10(s, &days) != 0) return -1;
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return -1;
  if (parse_hms(s + 11, &sod) != 0 || parse_frac(s, len, &i, &frac) != 0) return -1;
  if (parse_offset(s + i, len - i, &off) != 0) return -1;
  *us = ((int64_t)days * SECS_PER_DAY + sod - off) * SVC_US_PER_SEC + frac;
  return 0;
}

int svc_time_format(int64_t us, int off_s, char *buf, size_t n) {
  int64_t secs = floor_div(us, SVC_US_PER_SEC), frac = us - secs * SVC_US_PER_SEC;
  int64_t lsecs = secs + off_s, day = floor_div(lsecs, SECS_PER_DAY);
  int64_t sod = lsecs - day * SECS_PER_DAY;
  int aoff = off_s < 0 ? -off_s : off_s, k;
  char tmp[64], fr[8] = "";
  struct svc_date d;

  if (!buf || n == 0) return -1;
  buf[0] = '\0';
  if (aoff > MAX_OFFSET_S || day < INT32_MIN || day > INT32_MAX) return -1;
  d = svc_civil_from_days((int32_t)day);
  if (d.y < 0 || d.y > 9999) return -1;
  if (frac != 0) snprintf(fr, sizeof fr, ".%06d", (int)frac);
  k = snprintf(tmp, sizeof tmp, "%04d-%02d-%02dT%02d:%02d:%02d%s%c%02d:%02d", d.y, d.m, d.d,
               (int)(sod / 3600), (int)(sod / 60 % 60), (int)(sod % 60), fr,
               off_s < 0 ? '-' : '+', aoff / 3600, aoff / 60 % 60);
  if (k < 0 || (size_t)k >= n) return -1;
  memcpy(buf, tmp, (size_t)k + 1);
  return k;
}

/* The number of months in a period and the first month of the period of m. */
static int period_months(enum svc_period_kind k) {
  switch (k) {
  case SVC_PERIOD_MONTH: return 1;
  case SVC_PERIOD_QUARTER: return 3;
  case SVC_PERIOD_HALF: return 6;
  default: return 12;
  }
}

int svc_period_name(enum svc_period_kind k, int64_t us, int off_s, char *buf, size_t n) {
  struct svc_date d = svc_civil_from_days(svc_local_day(us, off_s));
  char tmp[32];
  int len;

  if (!buf || n == 0) return -1;
  buf[0] = '\0';
  switch (k) {
  case SVC_PERIOD_MONTH: len = snprintf(tmp, sizeof tmp, "%04d-%02d", d.y, d.m); break;
  case SVC_PERIOD_QUARTER: len = snprintf(tmp, sizeof tmp, "%04dQ%d", d.y, (d.m - 1) / 3 + 1); break;
  case SVC_PERIOD_HALF: len = snprintf(tmp, sizeof tmp, "%04dH%d", d.y, d.m <= 6 ? 1 : 2); break;
  case SVC_PERIOD_YEAR: len = snprintf(tmp, sizeof tmp, "%04d", d.y); break;
  default: return -1;
  }
  if (len < 0 || (size_t)len >= n) return -1;
  memcpy(buf, tmp, (size_t)len + 1);
  return 0;
}

void svc_period_bounds(enum svc_period_kind k, int64_t us, int off_s, int64_t *start, int64_t *end) {
  struct svc_date d = svc_civil_from_days(svc_local_day(us, off_s));
  int pm = period_months(k);
  int m0 = (d.m - 1) / pm * pm; /* zero-based first month of the period */
  int y1 = d.y + (m0 + pm) / 12, m1 = (m0 + pm) % 12;

  if (start) *start = svc_local_midnight(svc_days_from_civil(d.y, m0 + 1, 1), off_s);
  if (end) *end = svc_local_midnight(svc_days_from_civil(y1, m1 + 1, 1), off_s);
}

void svc_calendar_init(struct svc_calendar *c) {
  if (c) memset(c, 0, sizeof *c);
}

void svc_calendar_free(struct svc_calendar *c) {
  if (!c) return;
  free(c->holidays);
  free(c->workdays);
  memset(c, 0, sizeof *c);
}

/* Binary search in a sorted array: returns 1 if found; *pos is the insert point. */
static int find_day(const int32_t *a, size_t n, int32_t day, size_t *pos) {
  size_t lo = 0, hi = n;

  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (a[mid] < day) lo = mid + 1;
    else hi = mid;
  }
  if (pos) *pos = lo;
  return lo < n && a[lo] == day;
}

/* Inserts day into a sorted array, keeping it sorted and without duplicates. */
static int insert_day(int32_t **a, size_t *n, size_t *cap, int32_t day) {
  size_t pos;

  if (find_day(*a, *n, day, &pos)) return 0;
  if (*n == *cap) {
    size_t nc = *cap ? *cap * 2 : 32;
    int32_t *na = realloc(*a, nc * sizeof *na);
    if (!na) return -1;
    *a = na;
    *cap = nc;
  }
  memmove(*a + pos + 1, *a + pos, (*n - pos) * sizeof **a);
  (*a)[pos] = day;
  (*n)++;
  return 0;
}

int svc_calendar_add(struct svc_calendar *c, int32_t day, const char *kind) {
  if (!c || !kind) return -1;
  if (strcmp(kind, "HOLIDAY") == 0) {
    if (find_day(c->workdays, c->n_workdays, day, NULL)) return -1;
    return insert_day(&c->holidays, &c->n_holidays, &c->cap_holidays, day);
  }
  if (strcmp(kind, "WORKDAY") == 0) {
    if (find_day(c->holidays, c->n_holidays, day, NULL)) return -1;
    return insert_day(&c->workdays, &c->n_workdays, &c->cap_workdays, day);
  }
  return -1;
}

int svc_calendar_is_workday(const struct svc_calendar *c, int32_t day) {
  if (c && find_day(c->workdays, c->n_workdays, day, NULL)) return 1;
  if (c && find_day(c->holidays, c->n_holidays, day, NULL)) return 0;
  return svc_weekday(day) < 5;
}

/* Adds one "date,kind" record to c; on error writes "path:line: reason". */
static int load_record(struct svc_calendar *c, const struct svc_csv *csv, char *err, size_t errlen) {
  const char *date = csv->fields[0], *kind = csv->fields[1];
  int32_t day;

  if (svc_date_parse(date, (size_t)-1, &day) != 0) {
    snprintf(err, errlen, "%s:%zu: invalid date '%s' (want YYYY-MM-DD)", csv->path, csv->line, date);
    return -1;
  }
  if (strcmp(kind, "HOLIDAY") != 0 && strcmp(kind, "WORKDAY") != 0) {
    snprintf(err, errlen, "%s:%zu: invalid kind '%s' (want HOLIDAY or WORKDAY)", csv->path,
             csv->line, kind);
    return -1;
  }
  if (svc_calendar_add(c, day, kind) != 0) {
    int both = find_day(c->holidays, c->n_holidays, day, NULL) ||
               find_day(c->workdays, c->n_workdays, day, NULL);
    snprintf(err, errlen, "%s:%zu: %s", csv->path, csv->line,
             both ? "date is listed as both HOLIDAY and WORKDAY" : "out of memory");
    return -1;
  }
  return 0;
}

int svc_calendar_load_csv(struct svc_calendar *c, const char *path, char *err, size_t errlen) {
  struct svc_calendar tmp;
  struct svc_csv csv;
  char dummy[8];
  int r;

  if (!err || errlen == 0) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  if (!c || !path) return -1;
  if (svc_csv_open(&csv, path, "date,kind") != 0) {
    snprintf(err, errlen, "%s", csv.err);
    svc_csv_close(&csv);
    return -1;
  }
  svc_calendar_init(&tmp);
  while ((r = svc_csv_next(&csv)) == 1) {
    if (load_record(&tmp, &csv, err, errlen) != 0) break;
  }
  if (r < 0) snprintf(err, errlen, "%s", csv.err);
  svc_csv_close(&csv);
  if (r != 0) {
    svc_calendar_free(&tmp);
    return -1;
  }
  svc_calendar_free(c);
  *c = tmp;
  return 0;
}

int64_t svc_deadline_hours(int64_t start_us, int hours) {
  return start_us + (int64_t)hours * 3600 * SVC_US_PER_SEC;
}

int64_t svc_deadline_workdays(const struct svc_calendar *c, int64_t start_us, int n, int off_s) {
  int32_t day = svc_local_day(start_us, off_s);

  /* R-T5: count working days strictly after the local date of start. */
  for (int found = 0; found < n;) {
    day++;
    if (svc_calendar_is_workday(c, day)) found++;
  }
  return svc_local_midnight(day + 1, off_s) - SVC_US_PER_SEC;
}

int svc_deadline_passed(int64_t deadline_us, int64_t now_us) {
  if (deadline_us > INT64_MAX - SVC_US_PER_SEC) return 0;
  return now_us >= deadline_us + SVC_US_PER_SEC;
}

int64_t svc_deadline_fraction(int64_t start_us, int64_t deadline_us, int pct) {
  int64_t span = deadline_us - start_us;

  /* Split the span so span * pct cannot overflow; the result is exact. */
  return start_us + (span / 100) * pct + (span % 100) * pct / 100;
}

void svc_clock_init(struct svc_clock *c, enum svc_clock_mode mode) {
  if (!c) return;
  c->mode = mode;
  c->latest_us = 0;
  c->wall_fn = NULL;
}

int svc_clock_mode_parse(const char *s, enum svc_clock_mode *mode) {
  if (!s || !mode) return -1;
  if (strcmp(s, "wall") == 0) *mode = SVC_CLOCK_WALL;
  else if (strcmp(s, "event") == 0) *mode = SVC_CLOCK_EVENT;
  else return -1;
  return 0;
}

void svc_clock_observe(struct svc_clock *c, int64_t event_us) {
  if (c && event_us > c->latest_us) c->latest_us = event_us;
}

int64_t svc_clock_now(const struct svc_clock *c) {
  int64_t w;

  if (!c) return svc_wall_us();
  if (c->mode == SVC_CLOCK_EVENT) return c->latest_us;
  w = c->wall_fn ? c->wall_fn() : svc_wall_us();
  return w > c->latest_us ? w : c->latest_us;
}

int64_t svc_clock_input_bound(const struct svc_clock *c) {
  if (c && c->mode == SVC_CLOCK_EVENT) return SVC_EVENT_INPUT_MAX_US;
  int64_t w = c && c->wall_fn ? c->wall_fn() : svc_wall_us();
  return w > INT64_MAX - SVC_DAY_US ? INT64_MAX : w + SVC_DAY_US;
}

int64_t svc_clock_ahead_us(const struct svc_clock *c) {
  if (!c || c->mode != SVC_CLOCK_WALL) return 0;
  int64_t w = c->wall_fn ? c->wall_fn() : svc_wall_us();
  return c->latest_us > w ? c->latest_us - w : 0;
}

static int64_t read_clock(clockid_t id) {
  struct timespec ts;

  if (clock_gettime(id, &ts) != 0) return 0;
  return (int64_t)ts.tv_sec * SVC_US_PER_SEC + ts.tv_nsec / 1000;
}

int64_t svc_wall_us(void) {
  return read_clock(CLOCK_REALTIME);
}

int64_t svc_mono_us(void) {
  return read_clock(CLOCK_MONOTONIC);
}
