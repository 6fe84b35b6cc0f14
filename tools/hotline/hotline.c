/* whistle-hotline: the hotline client. Pushes a scenario feed (docs/formats.md) (JSON Lines) to
 * whistle-intake through the hotline interface (proto/hotline.proto): options,
 * the run (validate the whole feed, then send), the summary of the replies
 * and the optional replies file. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "hotline_client.h"
#include "svc_config.h"
#include "svc_log.h"
#include "svc_time.h"

#define DEFAULT_ENDPOINT "tcp://127.0.0.1:7101"

static void usage(FILE *out)
{
  fprintf(out,
    "usage: whistle-hotline [options] FEED.jsonl\n"
    "\n"
    "Pushes a feed (JSON Lines, see the README's feed format; \"-\" reads stdin) to whistle-intake\n"
    "through the hotline interface (proto/hotline.proto). `ticket`, `feedback` and\n"
    "`watermark` lines are hotline requests; `triage` and `exempt` lines are operator\n"
    "actions sent to intake too. `update` and `inspection` lines (and `triage` lines\n"
    "naming a `unit`, a re-dispatch) are for other daemons: they are counted and\n"
    "skipped. The whole feed is validated before anything is sent: a line that does not\n"
    "parse, or has an unknown type, stops the run with its line number (exit 2).\n"
    "\n"
    "options:\n"
    "  --endpoint EP        intake's hotline endpoint (default " DEFAULT_ENDPOINT ")\n"
    "  --inflight N         most requests in flight (default 1000)\n"
    "  --ordered            send each line only after the previous one is answered (replays)\n"
    "  --timeout-ms N       resend a request unanswered this long, same request_id (default 5000)\n"
    "  --deadline-s N       give up after N seconds in all; 0 = never (default 120)\n"
    "  --server-key FILE    intake's CURVE public key (Z85); with --client-key: CURVE on\n"
    "  --client-key FILE    this client's CURVE secret key (Z85, from whistle-keygen)\n"
    "  --replies FILE       write one JSON line per line sent, in line order: line, type,\n"
    "                       ticket_no, status, reason, ticket_id, category, compound,\n"
    "                       disposition, sends\n"
    "  --strict             refuse lines meant for other daemons, and lines out of `at` order\n"
    "  --fail-on-reject     exit 1 if any line was REJECTED\n"
    "  --dry-run            validate the feed and print what would be sent; send nothing\n"
    "  --quiet              no progress on stderr\n"
    "  --help               this text\n"
    "  --version            print the version and exit\n"
    "\n"
    "In pipelined mode (the default) a feedback, triage or exempt line waits until the\n"
    "earlier lines about its ticket are answered; a watermark waits until every earlier\n"
    "line is, and the lines after it wait for the watermark (intake's event clock). A\n"
    "request answered UNAVAILABLE is sent again after a pause. Progress goes to stderr\n"
    "(live on a terminal, every 10%% otherwise), the summary to stdout.\n"
    "\n"
    "exit status: 0 every line answered (ACCEPTED, DUPLICATE or REJECTED); 1 some line\n"
    "unanswered at the deadline (or REJECTED with --fail-on-reject); 2 bad usage or feed,\n"
    "nothing sent; 130 interrupted.\n");
}

struct args {
  struct hotline_opts o;
  const char *feed, *replies;
  int strict, fail_on_reject, dry_run, quiet;
};

static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
  char *end;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

/* 0 to run, 1 after --help, 2 on bad usage (message printed). */
static int parse_args(int argc, char **argv, struct args *a)
{
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--version") == 0) {
      printf("whistle-hotline %s\n", svc_version());
      return 1;
    }
  }
  enum { O_ENDPOINT = 256, O_INFLIGHT, O_ORDERED, O_TIMEOUT, O_DEADLINE, O_SKEY, O_CKEY,
         O_REPLIES, O_STRICT, O_FAILREJ, O_DRY, O_QUIET, O_HELP };
  static const struct option opts[] = {
    { "endpoint", required_argument, NULL, O_ENDPOINT },
    { "inflight", required_argument, NULL, O_INFLIGHT },
    { "ordered", no_argument, NULL, O_ORDERED },
    { "timeout-ms", required_argument, NULL, O_TIMEOUT },
    { "deadline-s", required_argument, NULL, O_DEADLINE },
    { "server-key", required_argument, NULL, O_SKEY },
    { "client-key", required_argument, NULL, O_CKEY },
    { "replies", required_argument, NULL, O_REPLIES },
    { "strict", no_argument, NULL, O_STRICT },
    { "fail-on-reject", no_argument, NULL, O_FAILREJ },
    { "dry-run", no_argument, NULL, O_DRY },
    { "quiet", no_argument, NULL, O_QUIET },
    { "help", no_argument, NULL, O_HELP },
    { NULL, 0, NULL, 0 },
  };
  long long v, inflight = 1000, timeout = 5000, deadline = 120;
  a->o.endpoint = DEFAULT_ENDPOINT;
  int c, li = 0;
  opterr = 0;
  while ((c = getopt_long(argc, argv, "h", opts, &li)) != -1) {
    switch (c) {
    case O_ENDPOINT: a->o.endpoint = optarg; break;
    case O_INFLIGHT:
      if (parse_num(optarg, 1, 1000000, &v)) goto bad_value;
      inflight = v;
      break;
    case O_TIMEOUT:
      if (parse_num(optarg, 1, 3600000, &v)) goto bad_value;
      timeout = v;
      break;
    case O_DEADLINE:
      if (parse_num(optarg, 0, 31536000, &v)) goto bad_value;
      deadline = v;
      break;
    case O_ORDERED: a->o.ordered = 1; break;
    case O_SKEY: a->o.server_key_file = optarg; break;
    case O_CKEY: a->o.client_key_file = optarg; break;
    case O_REPLIES: a->replies = optarg; break;
    case O_STRICT: a->strict = 1; break;
    case O_FAILREJ: a->fail_on_reject = 1; break;
    case O_DRY: a->dry_run = 1; break;
    case O_QUIET: a->quiet = 1; break;
    case 'h':
    case O_HELP: usage(stdout); return 1;
    default:
      fprintf(stderr, "whistle-hotline: unknown option or missing value: %s\n", argv[optind - 1]);
      goto bad;
    }
  }
  if (optind != argc - 1) {
    fprintf(stderr, "whistle-hotline: expected one feed file\n");
    goto bad;
  }
  if (!a->o.server_key_file != !a->o.client_key_file) {
    fprintf(stderr, "whistle-hotline: CURVE needs both --server-key and --client-key\n");
    goto bad;
  }
  a->feed = argv[optind];
  a->o.inflight = (size_t)inflight;
  a->o.timeout_us = timeout * 1000;
  a->o.deadline_us = deadline * SVC_US_PER_SEC;
  a->o.maxmsgsize = 1 << 20;
  a->o.progress = a->quiet ? 0 : isatty(STDERR_FILENO) ? 1 : 2;
  return 0;
bad_value:
  fprintf(stderr, "whistle-hotline: bad value for --%s: %s\n", opts[li].name, optarg);
bad:
  fprintf(stderr, "try: whistle-hotline --help\n");
  return 2;
}

/* ---- the summary ------------------------------------------------------- */

struct reason_count { enum hotline_type type; const char *reason; size_t n; };

static int by_count(const void *a, const void *b)
{
  const struct reason_count *x = a, *y = b;
  if (x->n != y->n) return x->n < y->n ? 1 : -1;
  if (x->type != y->type) return x->type < y->type ? -1 : 1;
  return strcmp(x->reason, y->reason);
}

static void print_reasons(const struct hotline_feed *f)
{
  struct reason_count *v = calloc(f->n ? f->n : 1, sizeof *v);
  size_t n = 0;
  if (!v) return;
  for (size_t i = 0; i < f->n; i++) {
    const struct hotline_line *l = &f->v[i];
    if (l->status != HL_REJECTED && l->status != HL_UNAVAILABLE) continue;
    const char *why = l->reason ? l->reason : "(no reason given)";
    size_t k = 0;
    while (k < n && !(v[k].type == l->type && strcmp(v[k].reason, why) == 0)) k++;
    if (k == n) v[n++] = (struct reason_count){ l->type, why, 0 };
    v[k].n++;
  }
  qsort(v, n, sizeof *v, by_count);
  if (n) printf("  rejected or unavailable, by reason:\n");
  for (size_t k = 0; k < n; k++)
    printf("    %5zu  %-9s %s\n", v[k].n, hotline_type_names[v[k].type], v[k].reason);
  free(v);
}

static const char *const dispositions[] = { "DISPATCHED", "REPEAT", "TRIAGE", "RECORDED" };

static void print_dispositions(const struct hotline_feed *f)
{
  size_t cnt[5] = { 0 };
  for (size_t i = 0; i < f->n; i++) {
    const struct hotline_line *l = &f->v[i];
    if (l->type != HL_TICKET || (l->status != HL_ACCEPTED && l->status != HL_DUPLICATE)) continue;
    size_t k = 0;
    while (k < 4 && !(l->disposition && strcmp(l->disposition, dispositions[k]) == 0)) k++;
    cnt[k]++;
  }
  printf("  dispositions of the tickets taken (ACCEPTED or DUPLICATE):");
  for (size_t k = 0; k < 4; k++) printf(" %s %zu%s", dispositions[k], cnt[k], k < 3 ? "," : "");
  if (cnt[4]) printf(", other %zu", cnt[4]);
  printf("\n");
}

static void print_summary(const struct args *a, const struct hotline_feed *f,
                          const struct hotline_run *r)
{
  size_t cnt[HL_NTYPES + 1][HL_NSTATUS + 1];
  memset(cnt, 0, sizeof cnt);
  for (size_t i = 0; i < f->n; i++) {
    const struct hotline_line *l = &f->v[i];
    enum hotline_status st = l->state == HL_WAITING ? HL_NSTATUS : l->status; /* not sent */
    cnt[l->type][st]++;
    cnt[HL_NTYPES][st]++;
  }
  printf("whistle-hotline: %s -> %s (%s)\n", a->feed, a->o.endpoint,
         a->o.ordered ? "ordered" : "pipelined");
  printf("  feed: %zu lines, %zu for intake; skipped: %zu update, %zu inspection, "
         "%zu triage re-dispatch%s\n", f->lines, f->n, f->skipped_update, f->skipped_inspection,
         f->skipped_redispatch, f->blank ? ", blank lines ignored" : "");
  if (f->out_of_order)
    printf("  warning: %zu lines out of `at` order (first: line %zu)\n", f->out_of_order,
           f->first_out_of_order);
  printf("  %-10s %7s %9s %9s %9s %11s %9s %8s\n", "type", "lines", "ACCEPTED", "DUPLICATE",
         "REJECTED", "UNAVAILABLE", "NO_REPLY", "not_sent");
  for (int t = 0; t <= HL_NTYPES; t++) {
    size_t total = 0;
    for (int s = 0; s <= HL_NSTATUS; s++) total += cnt[t][s];
    if (t < HL_NTYPES && !total) continue;
    printf("  %-10s %7zu %9zu %9zu %9zu %11zu %9zu %8zu\n",
           t < HL_NTYPES ? hotline_type_names[t] : "total", total, cnt[t][HL_ACCEPTED],
           cnt[t][HL_DUPLICATE], cnt[t][HL_REJECTED], cnt[t][HL_UNAVAILABLE], cnt[t][HL_NOREPLY],
           cnt[t][HL_NSTATUS]);
  }
  print_dispositions(f);
  print_reasons(f);
  double secs = (double)r->elapsed_us / 1e6;
  printf("  resent: %llu after the timeout, %llu after UNAVAILABLE; %llu late or extra replies "
         "ignored%s\n", (unsigned long long)r->resent_timeout,
         (unsigned long long)r->resent_unavailable, (unsigned long long)r->extra_replies,
         r->bad_replies ? " (and some frames that were not replies to this run)" : "");
  printf("  elapsed: %.3f s, %zu of %zu lines answered (%.0f lines/s)%s\n", secs, r->answered,
         f->n, secs > 0 ? (double)r->answered / secs : 0.0,
         r->interrupted ? "; interrupted" : r->deadline_passed ? "; deadline passed" : "");
}

/* ---- the replies file ---------------------------------------------------- */

static json_t *str_or_null(const char *s)
{
  return s ? json_string(s) : json_null();
}

static int write_replies(const char *path, const struct hotline_feed *f)
{
  FILE *out = fopen(path, "w");
  if (!out) {
    perror(path);
    return -1;
  }
  int rc = 0;
  for (size_t i = 0; i < f->n && !rc; i++) {
    const struct hotline_line *l = &f->v[i];
    if (l->state == HL_WAITING) continue;
    json_t *o = json_object();
    json_object_set_new(o, "line", json_integer((json_int_t)l->lineno));
    json_object_set_new(o, "type", json_string(hotline_type_names[l->type]));
    json_object_set_new(o, "ticket_no", l->ticket_no[0] ? json_string(l->ticket_no) : json_null());
    json_object_set_new(o, "status", json_string(hotline_status_names[l->status]));
    json_object_set_new(o, "reason", str_or_null(l->reason));
    json_object_set_new(o, "ticket_id", l->ticket_id ? json_integer((json_int_t)l->ticket_id)
                                                      : json_null());
    json_object_set_new(o, "category", str_or_null(l->category));
    json_object_set_new(o, "compound", str_or_null(l->compound));
    json_object_set_new(o, "disposition", str_or_null(l->disposition));
    json_object_set_new(o, "sends", json_integer(l->sends));
    rc = json_dumpf(o, out, JSON_COMPACT | JSON_PRESERVE_ORDER) || fputc('\n', out) == EOF;
    json_decref(o);
  }
  if (fclose(out) != 0) rc = -1;
  if (rc) fprintf(stderr, "whistle-hotline: writing %s failed\n", path);
  return rc ? -1 : 0;
}

static void print_dry_run(const struct args *a, const struct hotline_feed *f)
{
  size_t per[HL_NTYPES] = { 0 };
  for (size_t i = 0; i < f->n; i++) per[f->v[i].type]++;
  printf("whistle-hotline: %s is valid: %zu lines, %zu for intake (", a->feed, f->lines, f->n);
  for (int t = 0; t < HL_NTYPES; t++)
    printf("%s%zu %s", t ? ", " : "", per[t], hotline_type_names[t]);
  printf("); skipped: %zu update, %zu inspection, %zu triage re-dispatch; nothing sent\n",
         f->skipped_update, f->skipped_inspection, f->skipped_redispatch);
}

int main(int argc, char **argv)
{
  struct args a;
  memset(&a, 0, sizeof a);
  svc_log_init("hotline");
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc == 1 ? 0 : 2;
  struct hotline_feed f;
  char err[512];
  if (hotline_feed_load(&f, a.feed, a.strict, err, sizeof err)) {
    fprintf(stderr, "whistle-hotline: %s\n", err);
    fprintf(stderr, "whistle-hotline: the feed was refused; nothing was sent\n");
    return 2;
  }
  if (a.dry_run) {
    print_dry_run(&a, &f);
    hotline_feed_free(&f);
    return 0;
  }
  struct hotline_run run;
  if (hotline_push(&f, &a.o, &run)) {
    hotline_feed_free(&f);
    return 2;
  }
  print_summary(&a, &f, &run);
  fflush(stdout);
  size_t rejected = 0;
  for (size_t i = 0; i < f.n; i++) rejected += f.v[i].status == HL_REJECTED;
  int wrote = a.replies ? write_replies(a.replies, &f) : 0;
  if (run.interrupted) rc = 130;
  else if (run.answered < f.n || wrote) rc = 1;
  else rc = a.fail_on_reject && rejected ? 1 : 0;
  if (run.answered < f.n && !run.interrupted)
    fprintf(stderr, "whistle-hotline: %zu of %zu lines got no final answer%s\n",
            f.n - run.answered, f.n, run.deadline_passed ? " before the deadline" : "");
  hotline_feed_free(&f);
  return rc;
}
