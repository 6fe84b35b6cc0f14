/* whistlectl export: the docs/formats.md export files, as the daemons answer
 * them on their query interfaces (JSON lines already in the export shape and
 * order: keys sorted, UTF-8 unescaped, ", " and ": "): notices (escalation
 * Query NOTICES), decisions, rankings, units, credit, stars (rating Query),
 * tickets (referral Query TICKETS). `--all DIR` writes every file. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jansson.h>

#include "ctl.h"
#include "notice.pb-c.h"
#include "rating.pb-c.h"
#include "svc_time.h"
#include "unit.pb-c.h"

/* The request of one page, kept in one place for the callbacks. */
struct page {
  int what;
  const char *period, *ticket_no;
  union {
    struct { Whistle__Rating__Query q; Whistle__Rating__RatingMessage m; } rating;
    struct { Whistle__Notice__Query q; Whistle__Notice__NoticeMessage m; } notice;
    struct { Whistle__Unit__Query q; Whistle__Unit__UnitMessage m; } unit;
  } u;
};

static ProtobufCMessage *rating_page(void *arg, uint32_t offset)
{
  struct page *p = arg;
  Whistle__Rating__Query q = WHISTLE__RATING__QUERY__INIT;
  Whistle__Rating__RatingMessage m = WHISTLE__RATING__RATING_MESSAGE__INIT;
  p->u.rating.q = q;
  p->u.rating.m = m;
  p->u.rating.q.what = (Whistle__Rating__Query__What)p->what;
  p->u.rating.q.period = (char *)(p->period ? p->period : "");
  p->u.rating.q.offset = offset;
  p->u.rating.m.body_case = WHISTLE__RATING__RATING_MESSAGE__BODY_QUERY;
  p->u.rating.m.query = &p->u.rating.q;
  return &p->u.rating.m.base;
}

static ProtobufCMessage *notice_page(void *arg, uint32_t offset)
{
  struct page *p = arg;
  Whistle__Notice__Query q = WHISTLE__NOTICE__QUERY__INIT;
  Whistle__Notice__NoticeMessage m = WHISTLE__NOTICE__NOTICE_MESSAGE__INIT;
  p->u.notice.q = q;
  p->u.notice.m = m;
  p->u.notice.q.what = (Whistle__Notice__Query__What)p->what;
  p->u.notice.q.number = (char *)(p->period ? p->period : "");
  p->u.notice.q.offset = offset;
  p->u.notice.m.body_case = WHISTLE__NOTICE__NOTICE_MESSAGE__BODY_QUERY;
  p->u.notice.m.query = &p->u.notice.q;
  return &p->u.notice.m.base;
}

static ProtobufCMessage *unit_page(void *arg, uint32_t offset)
{
  struct page *p = arg;
  Whistle__Unit__Query q = WHISTLE__UNIT__QUERY__INIT;
  Whistle__Unit__UnitMessage m = WHISTLE__UNIT__UNIT_MESSAGE__INIT;
  p->u.unit.q = q;
  p->u.unit.m = m;
  p->u.unit.q.what = (Whistle__Unit__Query__What)p->what;
  p->u.unit.q.ticket_no = (char *)(p->ticket_no ? p->ticket_no : "");
  p->u.unit.q.offset = offset;
  p->u.unit.m.body_case = WHISTLE__UNIT__UNIT_MESSAGE__BODY_QUERY;
  p->u.unit.m.query = &p->u.unit.q;
  return &p->u.unit.m.base;
}

/* The export kinds: which daemon answers, with which query. */
static const struct kind {
  const char *name;
  enum ctl_daemon d;
  int what;
  char period;   /* 'M' month, 'Q' quarter, 'H' half-year, 0 none */
} KINDS[] = {
  { "notices", D_ESCALATION, WHISTLE__NOTICE__QUERY__WHAT__NOTICES, 0 },
  { "decisions", D_RATING, WHISTLE__RATING__QUERY__WHAT__DECISIONS, 0 },
  { "tickets", D_REFERRAL, WHISTLE__UNIT__QUERY__WHAT__TICKETS, 0 },
  { "rankings", D_RATING, WHISTLE__RATING__QUERY__WHAT__RANKINGS, 'M' },
  { "units", D_RATING, WHISTLE__RATING__QUERY__WHAT__UNITS, 'M' },
  { "credit", D_RATING, WHISTLE__RATING__QUERY__WHAT__CREDIT, 'H' },
  { "stars", D_RATING, WHISTLE__RATING__QUERY__WHAT__STARS, 'Q' },
};
#define NKINDS (sizeof KINDS / sizeof KINDS[0])

static const struct kind *kind_of(const char *name)
{
  for (size_t i = 0; i < NKINDS; i++)
    if (!strcmp(KINDS[i].name, name)) return &KINDS[i];
  return NULL;
}

/* Fetches the lines of one export: 0, 1 pending, -1 failure (printed). */
static int fetch(const struct ctl_env *e, const struct kind *k, const char *period, char ***lines,
                 size_t *n)
{
  struct ctl_conn c;
  if (ctl_conn_open(&c, e, k->d, 0)) return -1;
  struct page p = { .what = k->what, .period = period };
  ctl_page_fn fn = k->d == D_RATING ? rating_page : k->d == D_ESCALATION ? notice_page : unit_page;
  if (k->d == D_ESCALATION) p.period = NULL; /* NOTICES takes no number */
  int rc = ctl_query_lines(&c, fn, &p, lines, n);
  ctl_conn_close(&c);
  return rc;
}

static int write_lines(FILE *out, char **lines, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (fputs(lines[i], out) == EOF || fputc('\n', out) == EOF) return -1;
  return 0;
}

int ctl_export_one(const struct ctl_env *e, const char *what, const char *period, FILE *out)
{
  const struct kind *k = kind_of(what);
  char **lines = NULL;
  size_t n = 0;
  int rc = fetch(e, k, period, &lines, &n);
  if (rc == 1) {
    fprintf(stderr, CTL_PROG ": %s %s: period not closed yet\n", what, period);
    return 1;
  }
  if (rc < 0) return -1;
  rc = write_lines(out, lines, n);
  ctl_lines_free(lines, n);
  if (rc) fprintf(stderr, CTL_PROG ": cannot write the export: %s\n", strerror(errno));
  return rc;
}

/* ---- periods -------------------------------------------------------------------- */

/* Month index y*12 + (m-1) and its name. */
static void month_name(int32_t mi, char *buf, size_t n)
{
  snprintf(buf, n, "%04d-%02d", mi / 12, mi % 12 + 1);
}

static int valid_period(char kind, const char *s)
{
  size_t len = strlen(s);
  for (int i = 0; i < 4; i++)
    if (len < 4 || s[i] < '0' || s[i] > '9') return 0;
  if (kind == 'M')
    return len == 7 && s[4] == '-' && s[5] >= '0' && s[5] <= '1' && s[6] >= '0' && s[6] <= '9' &&
           atoi(s + 5) >= 1 && atoi(s + 5) <= 12;
  if (kind == 'Q') return len == 6 && s[4] == 'Q' && s[5] >= '1' && s[5] <= '4';
  if (kind == 'H') return len == 6 && s[4] == 'H' && s[5] >= '1' && s[5] <= '2';
  return 0;
}

/* The output watermark of rating (StatusReply.output): the months after it
 * cannot be closed. 0 when unknown. */
static int64_t rating_watermark(const struct ctl_env *e)
{
  struct ctl_conn c;
  if (ctl_conn_open(&c, e, D_RATING, 1)) return -1;
  Whistle__Control__ControlMessage *m = ctl_status(&c, e->timeout_us);
  ctl_conn_close(&c);
  if (!m) {
    fprintf(stderr, CTL_PROG ": rating did not answer on its control endpoint %s within %.1f s\n",
            e->control[D_RATING], (double)e->timeout_us / 1e6);
    return -1;
  }
  int64_t wm = m->status_reply->output ? m->status_reply->output->watermark_us : 0;
  whistle__control__control_message__free_unpacked(m, NULL);
  return wm;
}

static int write_file(const char *dir, const char *name, char **lines, size_t n, int verbose)
{
  char path[4096], tmp[4200];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  snprintf(tmp, sizeof tmp, "%s.tmp", path);
  FILE *f = fopen(tmp, "w");
  if (!f) {
    fprintf(stderr, CTL_PROG ": %s: %s\n", tmp, strerror(errno));
    return -1;
  }
  int rc = write_lines(f, lines, n);
  if (fclose(f) || rc || rename(tmp, path)) {
    fprintf(stderr, CTL_PROG ": cannot write %s: %s\n", path, strerror(errno));
    return -1;
  }
  if (verbose) fprintf(stderr, "  %-28s %zu lines\n", name, n);
  return 0;
}

/* Fetches and writes one file; 0, 1 pending (nothing written), -1. */
static int export_file(const struct ctl_env *e, const char *dir, const char *what, const char *period,
                       int verbose)
{
  char **lines = NULL, name[64];
  size_t n = 0;
  int rc = fetch(e, kind_of(what), period, &lines, &n);
  if (rc) return rc;
  if (period) snprintf(name, sizeof name, "%s-%s.jsonl", what, period);
  else snprintf(name, sizeof name, "%s.jsonl", what);
  rc = write_file(dir, name, lines, n, verbose);
  ctl_lines_free(lines, n);
  return rc;
}

/* Which periods --all writes: the closed months are found by asking rating
 * for rankings month by month, back from the month of rating's output
 * watermark (StatusReply.output: no later month can be closed) to the first
 * month that is closed, then back while months hold rankings or unit scores
 * (up to 36 months before the last closed one); every month from the
 * earliest one with results to the last closed one is written (empty files
 * for closed months without results). Quarters: every quarter whose stars
 * are published, of the years of those months. Half-years: credit is the
 * running score, written for every half-year touched by those months and by
 * the watermark's month. */
int ctl_export_all(const struct ctl_env *e, const char *dir, int verbose)
{
  if (mkdir(dir, 0777) && errno != EEXIST) {
    fprintf(stderr, CTL_PROG ": %s: %s\n", dir, strerror(errno));
    return -1;
  }
  static const char *const plain[] = { "notices", "decisions", "tickets" };
  for (size_t i = 0; i < 3; i++)
    if (export_file(e, dir, plain[i], NULL, verbose)) return -1;
  int64_t wm = rating_watermark(e);
  if (wm < 0) return -1;
  if (wm == 0) {
    if (verbose) fprintf(stderr, "  rating has no watermark yet: no period is closed\n");
    return 0;
  }
  int32_t day = svc_local_day(wm, SVC_DEFAULT_UTC_OFFSET);
  struct svc_date d = svc_civil_from_days(day);
  int32_t wm_month = d.y * 12 + d.m - 1, last = -1, first = -1;
  char name[16];
  for (int32_t mi = wm_month; mi >= wm_month - 2 && last < 0; mi--) {
    char **l = NULL;
    size_t n = 0;
    month_name(mi, name, sizeof name);
    int rc = fetch(e, kind_of("rankings"), name, &l, &n);
    if (rc < 0) return -1;
    ctl_lines_free(l, n);
    if (rc == 0) last = mi;
  }
  if (last >= 0) {
    first = last;
    for (int32_t mi = last; mi > last - 36; mi--) {
      char **l = NULL, **u = NULL;
      size_t n = 0, nu = 0;
      month_name(mi, name, sizeof name);
      if (fetch(e, kind_of("rankings"), name, &l, &n) < 0 || fetch(e, kind_of("units"), name, &u, &nu) < 0) {
        ctl_lines_free(l, n);
        return -1;
      }
      if (n || nu) first = mi;
      ctl_lines_free(l, n);
      ctl_lines_free(u, nu);
    }
    for (int32_t mi = first; mi <= last; mi++) {
      month_name(mi, name, sizeof name);
      if (export_file(e, dir, "rankings", name, verbose) < 0 || export_file(e, dir, "units", name, verbose) < 0)
        return -1;
    }
    for (int32_t q = first / 3; q <= last / 3; q++) {
      snprintf(name, sizeof name, "%04dQ%d", q / 4, q % 4 + 1);
      if (export_file(e, dir, "stars", name, verbose) < 0) return -1; /* pending: not written */
    }
  }
  int32_t from = first >= 0 ? first : wm_month, to = last >= 0 ? last : wm_month;
  for (int32_t h = from / 6; h <= to / 6; h++) {
    snprintf(name, sizeof name, "%04dH%d", h / 2, h % 2 + 1);
    if (export_file(e, dir, "credit", name, verbose) < 0) return -1;
  }
  return 0;
}

static void usage(FILE *out)
{
  fprintf(out,
    "usage: whistlectl export notices|decisions|tickets [-o FILE]\n"
    "       whistlectl export rankings|units --month YYYY-MM [-o FILE]\n"
    "       whistlectl export credit --half YYYYHn [-o FILE]\n"
    "       whistlectl export stars --quarter YYYYQn [-o FILE]\n"
    "       whistlectl export --all DIR\n"
    "\n"
    "Writes an export of docs/formats.md (JSON Lines: one object per line, keys sorted, UTF-8,\n"
    "\", \" and \": \", sorted as the format states) to stdout or FILE, as the daemons answer\n"
    "it: notices from escalation (Query NOTICES), tickets from referral (Query TICKETS),\n"
    "the others from rating (Query). Rankings, units and stars of a period rating has not\n"
    "closed yet: \"period not closed yet\", exit 1. Credit is the running score.\n"
    "\n"
    "--all DIR writes every file into DIR (created if missing): notices.jsonl,\n"
    "decisions.jsonl, tickets.jsonl, rankings-YYYY-MM.jsonl and units-YYYY-MM.jsonl for\n"
    "every closed month (from the first month with results to the last closed one),\n"
    "stars-YYYYQn.jsonl for every closed quarter of those months and credit-YYYYHn.jsonl\n"
    "for every half-year of those months (the running score; without a closed month, the\n"
    "half-year of rating's watermark). Closed months are found by\n"
    "asking rating month by month back from the month of its output watermark.\n"
    "Replay into fresh schemas twice and the two directories are byte-identical.\n"
    "\n"
    "options:\n"
    "  -o, --out FILE   write to FILE instead of stdout\n"
    "  --month, --quarter, --half PERIOD   the period of rankings/units, stars, credit\n"
    "  --all DIR        every export into DIR\n"
    "  -v, --verbose    --all: list the files written on stderr\n"
    "  --help           this text\n");
  ctl_env_help(out);
}

int ctl_export_main(int argc, char **argv)
{
  struct ctl_env e;
  ctl_env_init(&e);
  const char *out_path = NULL, *month = NULL, *quarter = NULL, *half = NULL, *all = NULL;
  int verbose = 0;
  static const struct option opts[] = {
    { "out", required_argument, NULL, 'o' },      { "month", required_argument, NULL, 'm' },
    { "quarter", required_argument, NULL, 'q' },  { "half", required_argument, NULL, 'H' },
    { "all", required_argument, NULL, 'a' },      { "verbose", no_argument, NULL, 'v' },
    { "help", no_argument, NULL, 'h' },           CTL_COMMON_OPTS, { NULL, 0, NULL, 0 }
  };
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "o:vh", opts, NULL)) != -1) {
    switch (c) {
    case 'o': out_path = optarg; break;
    case 'm': month = optarg; break;
    case 'q': quarter = optarg; break;
    case 'H': half = optarg; break;
    case 'a': all = optarg; break;
    case 'v': verbose = 1; break;
    case 'h': usage(stdout); return CTL_OK;
    default: {
      int r = c == '?' ? -1 : ctl_env_option(&e, c, optarg);
      if (r) {
        fprintf(stderr, CTL_PROG ": export --help for the options\n");
        return CTL_USAGE;
      }
    }
    }
  }
  if (all) {
    if (optind != argc || out_path || month || quarter || half) {
      fprintf(stderr, CTL_PROG ": export --all DIR takes no other export or period\n");
      return CTL_USAGE;
    }
    return ctl_export_all(&e, all, verbose) ? CTL_FAIL : CTL_OK;
  }
  if (argc - optind != 1) {
    fprintf(stderr, CTL_PROG ": export takes one of notices, decisions, tickets, rankings, units, "
                    "credit, stars (or --all DIR; export --help)\n");
    return CTL_USAGE;
  }
  const struct kind *k = kind_of(argv[optind]);
  if (!k) {
    fprintf(stderr, CTL_PROG ": unknown export \"%s\" (notices, decisions, tickets, rankings, units, "
                    "credit, stars)\n", argv[optind]);
    return CTL_USAGE;
  }
  const char *period = k->period == 'M' ? month : k->period == 'Q' ? quarter : k->period == 'H' ? half : NULL;
  const char *opt = k->period == 'M' ? "--month YYYY-MM" : k->period == 'Q' ? "--quarter YYYYQn"
                                                                            : "--half YYYYHn";
  int extra = (month != NULL) + (quarter != NULL) + (half != NULL) - (period != NULL);
  if (k->period && !period) {
    fprintf(stderr, CTL_PROG ": export %s needs %s\n", k->name, opt);
    return CTL_USAGE;
  }
  if (extra) {
    fprintf(stderr, CTL_PROG ": export %s takes %s\n", k->name, k->period ? opt : "no period");
    return CTL_USAGE;
  }
  if (period && !valid_period(k->period, period)) {
    fprintf(stderr, CTL_PROG ": %s is not a period of the form %s\n", period, opt + 2 + strcspn(opt + 2, " ") + 1);
    return CTL_USAGE;
  }
  FILE *out = stdout;
  if (out_path && !(out = fopen(out_path, "w"))) {
    fprintf(stderr, CTL_PROG ": %s: %s\n", out_path, strerror(errno));
    return CTL_FAIL;
  }
  int rc = ctl_export_one(&e, k->name, period, out);
  if (out != stdout && fclose(out)) rc = -1;
  if (fflush(stdout)) rc = -1;
  return rc ? CTL_FAIL : CTL_OK;
}
