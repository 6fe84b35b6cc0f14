/* whistlectl summary: a readable page for a person, from an export
 * directory (--export DIR, as `export --all` writes it; without it the
 * exports are fetched into a temporary directory first) and the daemons'
 * status: the top list with streaks, notices by type with one letter in
 * full (escalation TRACE), unit scores, credit grades, stars, and where to
 * look next. */
#include <dirent.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "notice.pb-c.h"

/* Every object of DIR/name, or an empty array. */
static json_t *read_rows(const char *dir, const char *name)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", dir, name);
  json_t *a = json_array();
  FILE *f = fopen(path, "r");
  if (!f) return a;
  char *buf = NULL;
  size_t cap = 0;
  while (getline(&buf, &cap, f) > 0) {
    json_t *o = json_loads(buf, 0, NULL);
    if (o) json_array_append_new(a, o);
  }
  free(buf);
  fclose(f);
  return a;
}

/* The latest file name "prefix*.jsonl" of dir (names sort by period), or
 * "", and its period in per. */
static char per[64];
static void latest(const char *dir, const char *prefix, char *out, size_t n)
{
  out[0] = per[0] = 0;
  DIR *d = opendir(dir);
  if (!d) return;
  struct dirent *e;
  while ((e = readdir(d)))
    if (!strncmp(e->d_name, prefix, strlen(prefix)) && strcmp(e->d_name, out) > 0)
      snprintf(out, n, "%s", e->d_name);
  closedir(d);
  if (out[0]) snprintf(per, sizeof per, "%.*s", (int)strcspn(out + strlen(prefix), "."), out + strlen(prefix));
}

static const char *s_(json_t *o, const char *k)
{
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : "-";
}

static double num(json_t *o, const char *k)
{
  return json_number_value(json_object_get(o, k));
}

/* The first "text" string anywhere in o. */
static const char *find_text(json_t *o)
{
  if (json_is_object(o)) {
    json_t *t = json_object_get(o, "text");
    if (json_is_string(t)) return json_string_value(t);
    const char *k;
    json_t *v;
    json_object_foreach(o, k, v) {
      const char *r = find_text(v);
      if (r) return r;
    }
  } else if (json_is_array(o)) {
    size_t i;
    json_t *v;
    json_array_foreach(o, i, v) {
      const char *r = find_text(v);
      if (r) return r;
    }
  }
  return NULL;
}

static ProtobufCMessage *trace_page(void *arg, uint32_t offset)
{
  static Whistle__Notice__Query q;
  static Whistle__Notice__NoticeMessage m;
  whistle__notice__query__init(&q);
  whistle__notice__notice_message__init(&m);
  q.what = WHISTLE__NOTICE__QUERY__WHAT__TRACE;
  q.number = arg;
  q.offset = offset;
  m.body_case = WHISTLE__NOTICE__NOTICE_MESSAGE__BODY_QUERY;
  m.query = &q;
  return &m.base;
}

static void usage(FILE *out)
{
  fprintf(out,
    "usage: whistlectl summary [--export DIR]\n"
    "\n"
    "A readable summary: the daemons' state, the latest closed month's top list with\n"
    "streaks, notices by type with one letter in full, unit scores (best and worst),\n"
    "credit grades, stars, and the commands to look further. From DIR (written by\n"
    "`whistlectl export --all DIR`) when given, else from the daemons' exports.\n"
    "\n"
    "options:\n"
    "  --export DIR   read the exports from DIR\n"
    "  --help         this text\n");
  ctl_env_help(out);
}

int ctl_summary_main(int argc, char **argv)
{
  struct ctl_env e;
  ctl_env_init(&e);
  const char *dir = NULL;
  static const struct option opts[] = { { "export", required_argument, NULL, 'x' },
                                        { "help", no_argument, NULL, 'h' }, CTL_COMMON_OPTS,
                                        { NULL, 0, NULL, 0 } };
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'x') dir = optarg;
    else if (c == 'h') {
      usage(stdout);
      return CTL_OK;
    } else if (c == '?' || ctl_env_option(&e, c, optarg)) {
      fprintf(stderr, CTL_PROG ": summary --help for the options\n");
      return CTL_USAGE;
    }
  }
  if (optind != argc) {
    fprintf(stderr, CTL_PROG ": summary takes no operands\n");
    return CTL_USAGE;
  }
  char tmp[] = "/tmp/whistlectl-summary-XXXXXX";
  int own = 0;
  if (!dir) {
    if (!mkdtemp(tmp)) {
      perror(CTL_PROG ": mkdtemp");
      return CTL_FAIL;
    }
    own = 1;
    dir = tmp;
    if (ctl_export_all(&e, dir, 0)) return CTL_FAIL;
  }
  int live = 0;
  struct ctl_settle st;
  if (!ctl_settle_open(&st, &e)) {
    char why[512];
    int rc = ctl_settle_pass(&st, e.timeout_us, why, sizeof why);
    live = rc >= 0;
    printf("System: %s\n", rc == 1 ? "all four daemons up and settled"
                           : rc == 0 ? "all four daemons up, still working" : why);
    ctl_settle_close(&st);
  }
  char name[256];
  size_t i;
  json_t *v;
  latest(dir, "rankings-", name, sizeof name);
  json_t *rk = read_rows(dir, name);
  printf("\nTop list (%s): %zu projects with complaints\n", name[0] ? per : "no closed month",
         json_array_size(rk));
  size_t in_top = 0;
  json_array_foreach(rk, i, v) if (json_is_true(json_object_get(v, "in_top"))) {
    if (in_top++ < 10)
      printf("  #%-3lld %-8s company %-6s %3lld complaint%s, on the list %lld month%s in a row\n",
             (long long)num(v, "rank"), s_(v, "compound"), s_(v, "company"), (long long)num(v, "count"),
             num(v, "count") == 1 ? "" : "s", (long long)num(v, "streak"), num(v, "streak") == 1 ? "" : "s");
  }
  if (in_top > 10) printf("  ... %zu projects in the top list in all (ties at its boundary are all in)\n", in_top);
  json_decref(rk);
  json_t *no = read_rows(dir, "notices.jsonl");
  printf("\nNotices: %zu\n", json_array_size(no));
  const char *types[16];
  size_t counts[16], nt = 0;
  json_array_foreach(no, i, v) {
    size_t k = 0;
    while (k < nt && strcmp(types[k], s_(v, "type"))) k++;
    if (k == nt && nt < 16) types[nt] = s_(v, "type"), counts[nt++] = 0;
    if (k < 16) counts[k]++;
  }
  for (size_t k = 0; k < nt; k++) printf("  %-10s %zu\n", types[k], counts[k]);
  if (json_array_size(no) && live) {
    json_t *n0 = json_array_get(no, 0);
    struct ctl_conn cn;
    char **lines = NULL;
    size_t nl = 0;
    if (!ctl_conn_open(&cn, &e, D_ESCALATION, 0) &&
        !ctl_query_lines(&cn, trace_page, (void *)s_(n0, "number"), &lines, &nl) && nl) {
      json_t *t = json_loads(lines[0], 0, NULL);
      const char *text = find_text(t);
      printf("  one letter in full: %s to %s\n", s_(n0, "number"), s_(n0, "recipient"));
      printf("  ----\n%s\n  ----\n", text ? text : "(no text in the trace)");
      json_decref(t);
    }
    ctl_lines_free(lines, nl);
    ctl_conn_close(&cn);
  }
  json_decref(no);
  latest(dir, "units-", name, sizeof name);
  json_t *un = read_rows(dir, name);
  printf("\nUnit scores (%s): %zu units\n", name[0] ? per : "no closed month", json_array_size(un));
  json_t *best = NULL, *worst = NULL;
  json_array_foreach(un, i, v) {
    if (!best || num(v, "score") > num(best, "score")) best = v;
    if (!worst || num(v, "score") < num(worst, "score")) worst = v;
  }
  if (best) printf("  best  %-8s score %.2f (rank %lld among its kind)\n", s_(best, "unit"), num(best, "score"), (long long)num(best, "rank"));
  if (worst) printf("  worst %-8s score %.2f (rank %lld among its kind)\n", s_(worst, "unit"), num(worst, "score"), (long long)num(worst, "rank"));
  json_decref(un);
  latest(dir, "credit-", name, sizeof name);
  json_t *cr = read_rows(dir, name);
  size_t g[4] = { 0 };
  json_array_foreach(cr, i, v) {
    const char *gr = s_(v, "grade");
    if (gr[0] >= 'A' && gr[0] <= 'D') g[gr[0] - 'A']++;
  }
  printf("\nCredit (%s): A %zu, B %zu, C %zu, D %zu\n", name[0] ? per : "none", g[0], g[1], g[2], g[3]);
  size_t shown = 0;
  json_array_foreach(cr, i, v) if (!strcmp(s_(v, "grade"), "D") && shown++ < 10)
    printf("  grade D: %s (%.1f)\n", s_(v, "company"), num(v, "score"));
  json_decref(cr);
  latest(dir, "stars-", name, sizeof name);
  json_t *sr = read_rows(dir, name);
  printf("\nStars (%s): %zu rated projects\n", name[0] ? per : "no closed quarter", json_array_size(sr));
  size_t by[6] = { 0 };
  json_array_foreach(sr, i, v) {
    long long k = (long long)num(v, "stars");
    if (k >= 0 && k <= 5) by[k]++;
  }
  if (json_array_size(sr))
    printf("  5 stars %zu, 4 stars %zu, 3 stars %zu, 2 stars %zu, 1 star %zu, NONCOMPLIANT (0) %zu\n",
           by[5], by[4], by[3], by[2], by[1], by[0]);
  shown = 0;
  json_array_foreach(sr, i, v) if (num(v, "stars") == 0 && shown++ < 10)
    printf("  NONCOMPLIANT: %s (score %.1f)\n", s_(v, "compound"), num(v, "score"));
  json_decref(sr);
  printf("\nWhere to look next:\n"
         "  whistlectl status              the daemons, their streams and lag\n"
         "  whistlectl triage              tickets and returned steps waiting for an operator\n"
         "  whistlectl trace TICKET_NO     one ticket's steps, decisions and notices\n"
         "  whistlectl export --all DIR    every export file (make run writes them to build/run/export/)\n");
  if (own) {
    DIR *d = opendir(dir);
    struct dirent *de;
    while (d && (de = readdir(d)))
      if (de->d_name[0] != '.') {
        char p[4096];
        snprintf(p, sizeof p, "%s/%s", dir, de->d_name);
        unlink(p);
      }
    if (d) closedir(d);
    rmdir(dir);
  }
  return CTL_OK;
}
