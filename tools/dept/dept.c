/* whistle-dept: the unit's client of whistle-referral's unit interface
 * (proto/unit.proto) and of whistle-escalation's notices (proto/notice.proto).
 * Watches the unit's referral stream (watch), reports on steps (accept,
 * progress, return, resolve), re-dispatches returned steps (redispatch,
 * operators), plays a scripted department for demos and tests (run), receives
 * the unit's notices (notices) and signs for them (sign). This file: the
 * commands, their options and --help. */
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dept.h"
#include "svc_config.h"
#include "svc_log.h"
#include "svc_time.h"

#define DEFAULT_STREAM "tcp://127.0.0.1:7202"
#define DEFAULT_UNITS "tcp://127.0.0.1:7201"
#define DEFAULT_ESC_REQUESTS "tcp://127.0.0.1:7401"
#define DEFAULT_ESC_STREAM "tcp://127.0.0.1:7402"

static const char *const CMD_NAMES[DEPT_NCMDS] = { "watch", "run", "accept", "progress",
                                                   "return", "resolve", "redispatch",
                                                   "notices", "sign" };

static void usage(FILE *out)
{
  fprintf(out,
    "usage: whistle-dept watch --unit UNIT [--stream EP] [--position FILE] [--out FILE|-]\n"
    "                          [--until-idle MS] [--max N] [--stamp]\n"
    "       whistle-dept accept|progress|return|resolve TICKET_NO STEP --unit UNIT [--at TIME]\n"
    "                          [--note TEXT] [--reason TEXT] [--evidence REF]... [--violation]\n"
    "                          [--prohibition P1..P9] [--units EP] [--timeout-ms N]\n"
    "       whistle-dept redispatch TICKET_NO STEP NEW_UNIT [--at TIME] [--note TEXT]\n"
    "                          [--units EP] [--timeout-ms N]\n"
    "       whistle-dept run --unit UNIT --policy FILE [--stream EP] [--units EP]\n"
    "                          [--position FILE] [--out FILE|-] [--until-idle MS] [--max N]\n"
    "       whistle-dept notices --unit UNIT [--stream EP] [--position FILE] [--out FILE|-]\n"
    "                          [--until-idle MS] [--max N] [--stamp]\n"
    "       whistle-dept sign NUMBER --unit UNIT [--at TIME] [--requests EP] [--timeout-ms N]\n"
    "\n"
    "The unit's client of whistle-referral (proto/unit.proto) and whistle-escalation\n"
    "(proto/notice.proto): a unit (department code such as GA, street or district code) or a\n"
    "company receives its referral steps and reports back, and receives its notices and\n"
    "signs for them.\n"
    "\n"
    "watch   Subscribes to referral's stream as UNIT (proto/stream.proto) and writes every\n"
    "        event as one JSON object per line (UTF-8): {\"seq\",\"kind\",\"event_at\",\"unit\",\n"
    "        ...the payload's fields (proto/referral_events.proto)}; times are RFC 3339 at\n"
    "        +08:00 under the field name without \"_us\"; WATERMARK events are\n"
    "        {\"seq\",\"kind\":\"WATERMARK\",\"event_at\"}. With --position the last seq durably\n"
    "        written (fsync'd) is kept in FILE: the next watch resumes after it and writes\n"
    "        every event exactly once, also after hours offline.\n"
    "accept, progress, return, resolve\n"
    "        Sends one StepUpdate for step STEP of TICKET_NO and prints the Reply as one JSON\n"
    "        line {\"status\",\"code\",\"reason\",\"step_state\",\"ticket_state\",\"late\",\n"
    "        \"next_step\"} (status NO_REPLY when none came). return needs --reason, progress\n"
    "        --note; --violation and --prohibition belong to resolve.\n"
    "redispatch\n"
    "        Operator: re-dispatches returned step STEP of TICKET_NO to NEW_UNIT (STEP 0: a\n"
    "        ticket referral could not route at all gets its first step).\n"
    "run     A scripted department for demos and tests: watches like watch and answers each\n"
    "        step.issued addressed to UNIT as the policy says: ACCEPT, then after its reply\n"
    "        RESOLVE or RETURN, stamped relative to the step's issue time and deadlines (event\n"
    "        time, never the wall clock). A step's line is written once its updates are\n"
    "        answered, so a restart redoes unfinished steps (referral answers DUPLICATE to\n"
    "        what it applied before). A summary goes to stderr at the end.\n"
    "notices Subscribes to escalation's stream as UNIT and writes each notice event for UNIT\n"
    "        as one JSON line, with --position like watch: {\"seq\",\"kind\",\"event_at\",\n"
    "        \"unit\",\"number\",\"type\",\"type_name\",\"recipient\",\"cc\",\"rule\",\"rule_id\",\n"
    "        \"rule_set\",\"period\",\"key\",\"event\",\"evidence\",\"measures\",\"text\" (the\n"
    "        letter),\"k\",\"respond_by\",\"copy_to\",\"signed\"}. kind is notice.issued (to\n"
    "        UNIT), notice.copy (UNIT is cc'd: copy_to), notice.redelivered (still unsigned\n"
    "        2 working days later) or notice.signed (UNIT's signature confirmed, signed set);\n"
    "        WATERMARK events move the position and write no line.\n"
    "sign    Signs for (签收) notice NUMBER (e.g. 督办〔2026〕7号) addressed to UNIT and prints\n"
    "        the Reply as one JSON line {\"number\",\"status\",\"reason\",\"signed_at\"}:\n"
    "        APPLIED (signed now), DUPLICATE (signed before, signed_at the first time),\n"
    "        REFUSED (not UNIT's, no such notice) or NO_REPLY.\n"
    "\n"
    "options:\n"
    "  --unit UNIT          this unit's code (Subscribe.consumer, StepUpdate.unit)\n"
    "  --stream EP          referral's stream (default " DEFAULT_STREAM "); notices:\n"
    "                       escalation's stream (default " DEFAULT_ESC_STREAM ")\n"
    "  --units EP           referral's unit interface (default " DEFAULT_UNITS ")\n"
    "  --requests EP        sign: escalation's request interface (default " DEFAULT_ESC_REQUESTS ")\n"
    "  --position FILE      the position file (default: none, from the beginning)\n"
    "  --out FILE|-         append the events to FILE (default -: stdout)\n"
    "  --until-idle MS      exit 0 after MS ms without a new event and with nothing pending\n"
    "                       (exit 1 if the stream never answered)\n"
    "  --max N              exit after writing N events\n"
    "  --stamp              add \"received_us\": when this client received the event (system\n"
    "                       clock, microseconds since the epoch), for latency measurements\n"
    "  --at TIME            the update's event time or sign's time of signing, RFC 3339\n"
    "                       with offset (default: now)\n"
    "  --note TEXT          a note (progress: required, 1-2000 characters)\n"
    "  --reason TEXT        return: why the step is not this unit's (1-500 characters)\n"
    "  --evidence REF       return: a reference (file name, URL); up to 20\n"
    "  --violation          resolve: a violation was confirmed\n"
    "  --prohibition P      resolve with --violation: the prohibition P1..P9 of the company\n"
    "  --policy FILE        run: the policy (below)\n"
    "  --timeout-ms N       give a request up after N ms without a final answer, resending it\n"
    "                       every second (default 5000; run: 0 = never)\n"
    "  --server-key FILE    referral's (notices, sign: escalation's) CURVE public key (Z85);\n"
    "                       with --client-key: CURVE on\n"
    "  --client-key FILE    this unit's CURVE secret key (Z85, from whistle-keygen)\n"
    "  --help               this text\n"
    "Without keys the connection is plain (development mode; referral and escalation then\n"
    "believe --unit).\n"
    "\n"
    "The run policy is a JSON object (// comments allowed); every key is optional:\n"
    "  {\"accept_after_min\": 60,    ACCEPT 60 min after issue\n"
    "   \"resolve_after_min\": 1440, RESOLVE a day after issue\n"
    "   \"return_after_min\": 120,   RETURN 2 h after issue\n"
    "   \"late_every\": 7,           about 1 step in 7 acts late: ACCEPT at accept_by +\n"
    "   \"late_accept_min\": 60,       late_accept_min, RESOLVE/RETURN at resolve_by +\n"
    "   \"late_resolve_min\": 1440,    late_resolve_min\n"
    "   \"return_every\": 10,        about 1 step in 10 is RETURNed with return_reason\n"
    "   \"return_reason\": \"非本单位职责\",\n"
    "   \"violation_every\": 3,      about 1 in 3 is resolved with a confirmed violation and\n"
    "                              the step's default_prohibition; the others without, but\n"
    "                              a step before the end of its chain is always confirmed\n"
    "   \"ignore_every\": 0}         about 1 step in n gets no update at all (0 = never)\n"
    "Steps are picked by the FNV-1a hash of \"ticket_no|step\": the same on every run.\n"
    "\n"
    "exit status: 0 done (watch/run/notices: idle, --max or SIGINT/SIGTERM after saving the\n"
    "position; updates and sign: APPLIED or DUPLICATE); 1 failure (REFUSED, UNAVAILABLE, no reply, the stream\n"
    "never answered, cannot write); 2 bad usage.\n");
}

/* Which commands take an option (bit per enum dept_cmd). */
#define B(c) (1u << (c))
#define NET_ALL (B(DEPT_WATCH) | B(DEPT_RUN) | UPD | B(DEPT_REDISPATCH) | B(DEPT_NOTICES) | \
                 B(DEPT_SIGN))
#define UPD (B(DEPT_ACCEPT) | B(DEPT_PROGRESS) | B(DEPT_RETURN) | B(DEPT_RESOLVE))
#define STREAMING (B(DEPT_WATCH) | B(DEPT_RUN) | B(DEPT_NOTICES))

enum { O_UNIT = 256, O_STREAM, O_UNITS, O_POSITION, O_OUT, O_IDLE, O_MAX, O_AT, O_NOTE, O_REASON,
       O_EVIDENCE, O_VIOLATION, O_PROHIBITION, O_POLICY, O_TIMEOUT, O_SKEY, O_CKEY, O_STAMP,
       O_REQUESTS, O_HELP };

static const struct option OPTS[] = {
  { "unit", required_argument, NULL, O_UNIT },
  { "stream", required_argument, NULL, O_STREAM },
  { "units", required_argument, NULL, O_UNITS },
  { "position", required_argument, NULL, O_POSITION },
  { "out", required_argument, NULL, O_OUT },
  { "until-idle", required_argument, NULL, O_IDLE },
  { "max", required_argument, NULL, O_MAX },
  { "at", required_argument, NULL, O_AT },
  { "note", required_argument, NULL, O_NOTE },
  { "reason", required_argument, NULL, O_REASON },
  { "evidence", required_argument, NULL, O_EVIDENCE },
  { "violation", no_argument, NULL, O_VIOLATION },
  { "prohibition", required_argument, NULL, O_PROHIBITION },
  { "policy", required_argument, NULL, O_POLICY },
  { "timeout-ms", required_argument, NULL, O_TIMEOUT },
  { "server-key", required_argument, NULL, O_SKEY },
  { "client-key", required_argument, NULL, O_CKEY },
  { "stamp", no_argument, NULL, O_STAMP },
  { "requests", required_argument, NULL, O_REQUESTS },
  { "help", no_argument, NULL, O_HELP },
  { NULL, 0, NULL, 0 },
};

static const unsigned OPT_CMDS[] = {
  [O_UNIT - O_UNIT] = STREAMING | UPD | B(DEPT_SIGN), [O_STREAM - O_UNIT] = STREAMING,
  [O_UNITS - O_UNIT] = B(DEPT_RUN) | UPD | B(DEPT_REDISPATCH),
  [O_POSITION - O_UNIT] = STREAMING, [O_OUT - O_UNIT] = STREAMING,
  [O_IDLE - O_UNIT] = STREAMING, [O_MAX - O_UNIT] = STREAMING, [O_STAMP - O_UNIT] = STREAMING,
  [O_AT - O_UNIT] = UPD | B(DEPT_REDISPATCH) | B(DEPT_SIGN), [O_NOTE - O_UNIT] = UPD | B(DEPT_REDISPATCH),
  [O_REASON - O_UNIT] = B(DEPT_RETURN), [O_EVIDENCE - O_UNIT] = B(DEPT_RETURN),
  [O_VIOLATION - O_UNIT] = B(DEPT_RESOLVE), [O_PROHIBITION - O_UNIT] = B(DEPT_RESOLVE),
  [O_POLICY - O_UNIT] = B(DEPT_RUN),
  [O_TIMEOUT - O_UNIT] = B(DEPT_RUN) | UPD | B(DEPT_REDISPATCH) | B(DEPT_SIGN),
  [O_SKEY - O_UNIT] = NET_ALL, [O_CKEY - O_UNIT] = NET_ALL, [O_REQUESTS - O_UNIT] = B(DEPT_SIGN),
  [O_HELP - O_UNIT] = NET_ALL,
};

static int parse_num(const char *s, long long lo, long long hi, long long *out)
{
  char *end;
  long long v = strtoll(s, &end, 10);
  if (!*s || *end || v < lo || v > hi) return -1;
  *out = v;
  return 0;
}

static int bad(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int bad(const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  fprintf(stderr, "whistle-dept: ");
  vfprintf(stderr, fmt, ap);
  fprintf(stderr, "\ntry: whistle-dept --help\n");
  va_end(ap);
  return 2;
}

static size_t utf8_chars(const char *s)
{
  size_t n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

/* Applies one option; 0, or 2 after printing the problem. */
static int take_option(struct dept_args *a, int c, const char *arg)
{
  long long v;
  switch (c) {
  case O_UNIT: a->unit = arg; break;
  case O_STREAM: a->stream = arg; break;
  case O_UNITS: a->units = arg; break;
  case O_REQUESTS: a->requests = arg; break;
  case O_POSITION: a->position = arg; break;
  case O_OUT: a->out = arg; break;
  case O_POLICY: a->policy = arg; break;
  case O_NOTE: a->note = arg; break;
  case O_REASON: a->reason = arg; break;
  case O_PROHIBITION: a->prohibition = arg; break;
  case O_VIOLATION: a->violation = 1; break;
  case O_SKEY: a->server_key_file = arg; break;
  case O_CKEY: a->client_key_file = arg; break;
  case O_STAMP: a->stamp = 1; break;
  case O_IDLE:
    if (parse_num(arg, 1, 86400000, &v)) return bad("bad value for --until-idle: %s", arg);
    a->until_idle_ms = v;
    break;
  case O_MAX:
    if (parse_num(arg, 1, 1000000000000LL, &v)) return bad("bad value for --max: %s", arg);
    a->max = (uint64_t)v;
    break;
  case O_TIMEOUT:
    if (parse_num(arg, 0, 86400000, &v)) return bad("bad value for --timeout-ms: %s", arg);
    a->timeout_ms = v;
    break;
  case O_AT:
    if (svc_time_parse(arg, (size_t)-1, &a->at_us))
      return bad("bad --at %s: expected RFC 3339 with offset, e.g. 2026-10-01T09:00:00+08:00", arg);
    a->have_at = 1;
    break;
  case O_EVIDENCE:
    if (a->n_evidence == DEPT_MAX_EVIDENCE) return bad("at most 20 --evidence");
    a->evidence[a->n_evidence++] = arg;
    break;
  }
  return 0;
}

static int check_unit(const char *opt, const char *u)
{
  if (!u) return bad("%s is required", opt);
  if (!svc_identity_valid(u, strlen(u)))
    return bad("bad unit code %s: 1-127 of A-Z a-z 0-9 _ - .", u);
  return 0;
}

/* The positional arguments of the update commands. */
static int take_step_args(struct dept_args *a, int argc, char **argv)
{
  int want = a->cmd == DEPT_REDISPATCH ? 3 : 2;
  if (argc - optind != want)
    return bad("%s expects %s", CMD_NAMES[a->cmd], want == 3 ? "TICKET_NO STEP NEW_UNIT"
                                                             : "TICKET_NO STEP");
  long long v;
  a->ticket_no = argv[optind];
  if (!a->ticket_no[0] || strlen(a->ticket_no) > 64)
    return bad("bad TICKET_NO: %s", a->ticket_no);
  /* redispatch STEP 0: a ticket referral could not route at all (no step yet). */
  if (parse_num(argv[optind + 1], want == 3 ? 0 : 1, UINT32_MAX, &v))
    return bad("bad STEP %s: a step number from %d", argv[optind + 1], want == 3 ? 0 : 1);
  a->step = (uint32_t)v;
  if (want == 3) {
    a->new_unit = argv[optind + 2];
    if (check_unit("NEW_UNIT", a->new_unit)) return 2;
  }
  return 0;
}

static int valid_prohibition(const char *p)
{
  return p[0] == 'P' && p[1] >= '1' && p[1] <= '9' && p[2] == 0;
}

/* What each command needs beyond its options' own checks. */
static int check_command(struct dept_args *a, int argc, char **argv)
{
  const char *name = CMD_NAMES[a->cmd];
  if (a->cmd == DEPT_SIGN) {
    if (argc - optind != 1) return bad("sign expects NUMBER (e.g. 督办〔2026〕7号)");
    a->number = argv[optind];
    if (!a->number[0] || strlen(a->number) >= 96) return bad("bad NUMBER: %s", a->number);
    return check_unit("--unit", a->unit);
  }
  if (a->cmd == DEPT_WATCH || a->cmd == DEPT_RUN || a->cmd == DEPT_NOTICES) {
    if (optind != argc) return bad("%s takes no argument (got %s)", name, argv[optind]);
    if (a->cmd == DEPT_RUN && !a->policy) return bad("run needs --policy FILE");
    return check_unit("--unit", a->unit);
  }
  if (take_step_args(a, argc, argv)) return 2;
  if (a->cmd != DEPT_REDISPATCH && check_unit("--unit", a->unit)) return 2;
  if (a->cmd == DEPT_RETURN && (!a->reason || !a->reason[0] || utf8_chars(a->reason) > 500))
    return bad("return needs --reason TEXT (1-500 characters)");
  if (a->cmd == DEPT_PROGRESS && (!a->note || !a->note[0]))
    return bad("progress needs --note TEXT");
  if (a->note && utf8_chars(a->note) > 2000) return bad("--note: at most 2000 characters");
  if (a->prohibition && !valid_prohibition(a->prohibition))
    return bad("bad --prohibition %s: one of P1..P9", a->prohibition);
  if (a->prohibition && !a->violation)
    return bad("--prohibition %s needs --violation", a->prohibition);
  return 0;
}

static int find_command(const char *s, enum dept_cmd *cmd)
{
  for (int i = 0; i < DEPT_NCMDS; i++) {
    if (strcmp(s, CMD_NAMES[i]) == 0) {
      *cmd = (enum dept_cmd)i;
      return 0;
    }
  }
  return -1;
}

static int read_server_key(struct dept_args *a)
{
  if (!a->server_key_file != !a->client_key_file)
    return bad("CURVE needs both --server-key and --client-key");
  if (a->server_key_file && svc_curve_read_key(a->server_key_file, a->server_key)) {
    fprintf(stderr, "whistle-dept: cannot read --server-key %s (a Z85 public key of 40 "
                    "characters)\n", a->server_key_file);
    return 2;
  }
  return 0;
}

/* 0 to run, 1 after --help, 2 on bad usage (message printed). */
static int parse_args(int argc, char **argv, struct dept_args *a)
{
  if (argc < 2) return bad("a command is required: watch, accept, progress, return, resolve, "
                           "redispatch, run, notices or sign");
  if (strcmp(argv[1], "--version") == 0) {
    printf("whistle-dept %s\n", svc_version());
    return 1;
  }
  if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
      strcmp(argv[1], "help") == 0) {
    usage(stdout);
    return 1;
  }
  if (find_command(argv[1], &a->cmd)) return bad("unknown command %s", argv[1]);
  a->stream = a->cmd == DEPT_NOTICES ? DEFAULT_ESC_STREAM : DEFAULT_STREAM;
  a->units = DEFAULT_UNITS;
  a->requests = DEFAULT_ESC_REQUESTS;
  a->timeout_ms = a->cmd == DEPT_RUN ? 0 : 5000;
  int c;
  opterr = 0;
  optind = 2;
  while ((c = getopt_long(argc, argv, "h", OPTS, NULL)) != -1) {
    if (c == 'h' || c == O_HELP) {
      usage(stdout);
      return 1;
    }
    if (c < O_UNIT || c > O_HELP)
      return bad("unknown option or missing value: %s", argv[optind - 1]);
    if (!(OPT_CMDS[c - O_UNIT] & B(a->cmd)))
      return bad("--%s is not an option of %s", OPTS[c - O_UNIT].name, CMD_NAMES[a->cmd]);
    if (take_option(a, c, optarg)) return 2;
  }
  if (check_command(a, argc, argv)) return 2;
  return read_server_key(a);
}

int main(int argc, char **argv)
{
  struct dept_args a;
  memset(&a, 0, sizeof a);
  svc_log_set_level(SVC_LOG_WARN);
  svc_log_init("dept");
  int rc = parse_args(argc, argv, &a);
  if (rc) return rc == 1 ? 0 : 2;
  switch (a.cmd) {
  case DEPT_WATCH: return dept_watch_main(&a);
  case DEPT_RUN: return dept_run_main(&a);
  case DEPT_NOTICES: return dept_notices_main(&a);
  case DEPT_SIGN: return dept_sign_main(&a);
  default: return dept_update_main(&a);
  }
}
