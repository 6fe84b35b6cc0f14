/* whistlectl's views for people: status (the four daemons), trace (one
 * ticket through referral, rating and escalation), triage (what waits for
 * an operator) and summary (results from the exports). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "ctl.h"
#include "hotline.pb-c.h"
#include "notice.pb-c.h"
#include "rating.pb-c.h"
#include "svc_time.h"
#include "unit.pb-c.h"

/* Parses the common options and the command's own flags (letters in
 * `flags`, set to 1 in `set`); returns the index of the first operand, or
 * -1 (usage error printed) or -2 (--help shown). */
static int parse(int argc, char **argv, struct ctl_env *e, const struct option *own, int *set,
                 void (*usage)(FILE *))
{
  struct option opts[16];
  size_t n = 0;
  for (; own && own[n].name; n++) opts[n] = own[n];
  const struct option common[] = { { "help", no_argument, NULL, 'h' }, CTL_COMMON_OPTS,
                                   { NULL, 0, NULL, 0 } };
  for (size_t i = 0; i < sizeof common / sizeof common[0]; i++) opts[n++] = common[i];
  int c;
  optind = 1;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    if (c == 'h') {
      usage(stdout);
      return -2;
    }
    if (c >= 'A' && c <= 'z' && set) {
      set[c] = 1;
      continue;
    }
    if (c == '?' || ctl_env_option(e, c, optarg)) {
      fprintf(stderr, CTL_PROG ": %s --help for the options\n", argv[0]);
      return -1;
    }
  }
  return optind;
}

static const char *fmt_time(int64_t us, char *buf, size_t n)
{
  if (!us) return "none";
  return ctl_time(us, buf, n);
}

/* ---- status ---------------------------------------------------------------------- */

static int64_t counter(const Whistle__Control__StatusReply *r, const char *name, int *found)
{
  for (size_t i = 0; i < r->n_counters; i++)
    if (!strcmp(r->counters[i]->name, name)) {
      if (found) *found = 1;
      return r->counters[i]->value;
    }
  if (found) *found = 0;
  return 0;
}

static void status_usage(FILE *out)
{
  fprintf(out,
    "usage: whistlectl status [--counters] [--json]\n"
    "\n"
    "Asks every daemon's control endpoint (proto/control.proto) and shows for each: up or\n"
    "not (no answer within --timeout), its version, Postgres (counter pg.up), its stream's\n"
    "head and watermark, each input's position, lag (the producer's head minus the\n"
    "position) and watermark, and the server's queue (counters server.*); then whether\n"
    "the system has settled (proto/control.proto's settled signal) and, if not, who is\n"
    "behind.\n"
    "\n"
    "options:\n"
    "  --counters   show every counter of every daemon\n"
    "  --json       one JSON object instead of text\n"
    "  --help       this text\n");
  ctl_env_help(out);
  fprintf(out, "\nexit status: 0 every daemon answered, 1 some did not, 2 bad usage.\n");
}

int ctl_status_main(int argc, char **argv)
{
  struct ctl_env e;
  ctl_env_init(&e);
  int set[128] = { 0 };
  static const struct option own[] = { { "counters", no_argument, NULL, 'c' },
                                       { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
  int k = parse(argc, argv, &e, own, set, status_usage);
  if (k == -2) return CTL_OK;
  if (k < 0) return CTL_USAGE;
  if (k != argc) {
    fprintf(stderr, CTL_PROG ": status takes no operands\n");
    return CTL_USAGE;
  }
  struct ctl_settle s;
  if (ctl_settle_open(&s, &e)) return CTL_FAIL;
  char why[512], t1[48];
  int settled = ctl_settle_pass(&s, e.timeout_us, why, sizeof why);
  /* A daemon that did not answer stops the pass: ask the ones after it too. */
  int silent = -1;
  for (int d = 0; d < D_N; d++)
    if (!s.last[d] && silent < 0) silent = d;
    else if (!s.last[d]) s.last[d] = ctl_status(&s.ctl[d], e.timeout_us);
  int down = 0;
  json_t *js = json_object();
  for (int d = 0; d < D_N; d++) {
    const Whistle__Control__StatusReply *r = s.last[d] ? s.last[d]->status_reply : NULL;
    json_t *jd = json_object();
    json_object_set_new(js, ctl_daemon_names[d], jd);
    json_object_set_new(jd, "control", json_string(e.control[d]));
    json_object_set_new(jd, "up", json_boolean(r != NULL));
    if (!r) {
      down++;
      if (!set['j'])
        printf("%-11s DOWN: no answer from %s within %.1f s\n", ctl_daemon_names[d], e.control[d],
               (double)e.timeout_us / 1e6);
      continue;
    }
    int has_pg;
    int64_t pg = counter(r, "pg.up", &has_pg);
    json_object_set_new(jd, "version", json_string(r->build_version));
    json_object_set_new(jd, "pg_up", has_pg ? json_boolean(pg == 1) : json_null());
    if (!set['j'])
      printf("%-11s up    version %s  postgres %s  (control %s)\n", ctl_daemon_names[d],
             r->build_version[0] ? r->build_version : "?", !has_pg ? "?" : pg == 1 ? "up" : "DOWN",
             e.control[d]);
    if (r->output) {
      json_object_set_new(jd, "stream", json_pack("{s:s,s:I,s:s}", "name", r->output->stream, "head",
                                                   (json_int_t)r->output->head, "watermark",
                                                   fmt_time(r->output->watermark_us, t1, sizeof t1)));
      if (!set['j'])
        printf("  stream %-10s head %llu, watermark %s\n", r->output->stream,
               (unsigned long long)r->output->head, fmt_time(r->output->watermark_us, t1, sizeof t1));
    }
    json_t *ji = json_array();
    json_object_set_new(jd, "inputs", ji);
    for (size_t i = 0; i < r->n_inputs; i++) {
      const Whistle__Control__InputPosition *in = r->inputs[i];
      long long lag = -1;
      for (int p = 0; p < D_N; p++) {
        const Whistle__Control__StatusReply *pr = s.last[p] ? s.last[p]->status_reply : NULL;
        if (pr && pr->output && !strcmp(pr->output->stream, in->input))
          lag = (long long)pr->output->head - (long long)in->position;
      }
      json_array_append_new(ji, json_pack("{s:s,s:I,s:o,s:s,s:b}", "input", in->input, "position",
                                          (json_int_t)in->position,
                                          "lag", lag >= 0 ? json_integer(lag) : json_null(), "watermark",
                                          fmt_time(in->watermark_us, t1, sizeof t1), "clock", in->clock));
      if (!set['j']) {
        printf("  input  %-10s position %llu, lag ", in->input, (unsigned long long)in->position);
        if (lag >= 0) printf("%lld", lag);
        else printf("?");
        printf(", watermark %s%s\n", fmt_time(in->watermark_us, t1, sizeof t1),
               in->clock ? " (drives its clock)" : "");
      }
    }
    json_t *jc = json_object();
    json_object_set_new(jd, "counters", jc);
    int shown = 0;
    for (size_t i = 0; i < r->n_counters; i++) {
      const char *n = r->counters[i]->name;
      json_object_set_new(jc, n, json_integer((json_int_t)r->counters[i]->value));
      if (set['j'] || (!set['c'] && strncmp(n, "server.", 7))) continue;
      printf("%s%s %lld", shown++ % 4 ? ", " : shown > 1 ? "\n    " : "  counters: ", n,
             (long long)r->counters[i]->value);
    }
    if (shown && !set['j']) printf("\n");
  }
  json_object_set_new(js, "settled", settled == 1 ? json_true() : json_false());
  json_object_set_new(js, "behind", settled == 1 ? json_null() : json_string(why));
  if (set['j']) {
    char *txt = json_dumps(js, JSON_SORT_KEYS | JSON_INDENT(2));
    printf("%s\n", txt ? txt : "{}");
    free(txt);
  } else {
    if (settled == 1) printf("settled: yes\n");
    else printf("settled: no (%s)\n", why);
  }
  json_decref(js);
  ctl_settle_close(&s);
  return down ? CTL_FAIL : CTL_OK;
}

/* ---- queries used by trace and triage ----------------------------------------------- */

struct q {
  Whistle__Unit__Query uq; Whistle__Unit__UnitMessage um;
  Whistle__Hotline__Query hq; Whistle__Hotline__HotlineMessage hm;
  Whistle__Rating__Query rq; Whistle__Rating__RatingMessage rm;
  Whistle__Notice__Query nq; Whistle__Notice__NoticeMessage nm;
  int what;
  const char *arg;
};

static ProtobufCMessage *unit_q(void *a, uint32_t offset)
{
  struct q *x = a;
  whistle__unit__query__init(&x->uq);
  whistle__unit__unit_message__init(&x->um);
  x->uq.what = (Whistle__Unit__Query__What)x->what;
  x->uq.ticket_no = (char *)(x->arg ? x->arg : "");
  x->uq.offset = offset;
  x->um.body_case = WHISTLE__UNIT__UNIT_MESSAGE__BODY_QUERY;
  x->um.query = &x->uq;
  return &x->um.base;
}

static ProtobufCMessage *hotline_q(void *a, uint32_t offset)
{
  struct q *x = a;
  whistle__hotline__query__init(&x->hq);
  whistle__hotline__hotline_message__init(&x->hm);
  x->hq.what = (Whistle__Hotline__Query__What)x->what;
  x->hq.offset = offset;
  x->hm.body_case = WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_QUERY;
  x->hm.query = &x->hq;
  return &x->hm.base;
}

static ProtobufCMessage *notice_q(void *a, uint32_t offset)
{
  struct q *x = a;
  whistle__notice__query__init(&x->nq);
  whistle__notice__notice_message__init(&x->nm);
  x->nq.what = (Whistle__Notice__Query__What)x->what;
  x->nq.number = (char *)(x->arg ? x->arg : "");
  x->nq.offset = offset;
  x->nm.body_case = WHISTLE__NOTICE__NOTICE_MESSAGE__BODY_QUERY;
  x->nm.query = &x->nq;
  return &x->nm.base;
}

static ProtobufCMessage *rating_q(void *a, uint32_t offset)
{
  struct q *x = a;
  whistle__rating__query__init(&x->rq);
  whistle__rating__rating_message__init(&x->rm);
  x->rq.what = (Whistle__Rating__Query__What)x->what;
  x->rq.period = (char *)(x->arg ? x->arg : "");
  x->rq.offset = offset;
  x->rm.body_case = WHISTLE__RATING__RATING_MESSAGE__BODY_QUERY;
  x->rm.query = &x->rq;
  return &x->rm.base;
}

/* One query's lines parsed into a JSON array (NULL after printing why). */
static json_t *query_json(const struct ctl_env *e, enum ctl_daemon d, int what, const char *arg)
{
  struct ctl_conn c;
  if (ctl_conn_open(&c, e, d, 0)) return NULL;
  struct q x = { .what = what, .arg = arg };
  ctl_page_fn fn = d == D_INTAKE ? hotline_q : d == D_REFERRAL ? unit_q : d == D_RATING ? rating_q : notice_q;
  char **lines = NULL;
  size_t n = 0;
  int rc = ctl_query_lines(&c, fn, &x, &lines, &n);
  ctl_conn_close(&c);
  if (rc) return NULL;
  json_t *a = json_array();
  for (size_t i = 0; i < n; i++) {
    json_t *o = json_loads(lines[i], 0, NULL);
    if (o) json_array_append_new(a, o);
  }
  ctl_lines_free(lines, n);
  return a;
}

static const char *js(json_t *o, const char *k)
{
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : json_is_null(v) || !v ? "-" : "?";
}

static int has_str(json_t *arr, const char *s, size_t prefix_len)
{
  size_t i;
  json_t *v;
  json_array_foreach(arr, i, v) {
    if (!json_is_string(v)) continue;
    const char *t = json_string_value(v);
    if (!strcmp(t, s)) return 1;
    /* "<ticket_no>#<step>" names a step of the ticket */
    if (prefix_len && !strncmp(t, s, prefix_len) && t[prefix_len] == '#') return 1;
  }
  return 0;
}

static void print_obj_line(const char *indent, json_t *o)
{
  char *t = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
  printf("%s%s", indent, t ? t : "");
  free(t);
}

/* ---- trace ---------------------------------------------------------------------- */

static void trace_usage(FILE *out)
{
  fprintf(out,
    "usage: whistlectl trace [--json] TICKET_NO\n"
    "\n"
    "Follows one ticket: its state and steps with their times (referral Query TICKET),\n"
    "the decisions with the ticket or one of its steps in their evidence (rating\n"
    "DECISIONS), and the notices with the ticket, its steps or those decisions in their\n"
    "evidence (escalation NOTICES, with TRACE for each notice: its trigger, and the\n"
    "letter's text in --json).\n"
    "\n"
    "options:\n"
    "  --json   one JSON object {ticket, decisions, notices} instead of text\n"
    "  --help   this text\n");
  ctl_env_help(out);
  fprintf(out, "\nexit status: 0 found, 1 unknown ticket or a daemon did not answer, 2 bad usage.\n");
}

int ctl_trace_main(int argc, char **argv)
{
  struct ctl_env e;
  ctl_env_init(&e);
  int set[128] = { 0 };
  static const struct option own[] = { { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
  int k = parse(argc, argv, &e, own, set, trace_usage);
  if (k == -2) return CTL_OK;
  if (k < 0) return CTL_USAGE;
  if (argc - k != 1) {
    fprintf(stderr, CTL_PROG ": trace takes one TICKET_NO (trace --help)\n");
    return CTL_USAGE;
  }
  const char *tno = argv[k];
  json_t *t = query_json(&e, D_REFERRAL, WHISTLE__UNIT__QUERY__WHAT__TICKET, tno);
  if (!t) return CTL_FAIL;
  json_t *ticket = json_incref(json_array_get(t, 0));
  json_decref(t);
  if (!ticket) {
    fprintf(stderr, CTL_PROG ": referral answered nothing for %s\n", tno);
    return CTL_FAIL;
  }
  json_t *dec = query_json(&e, D_RATING, WHISTLE__RATING__QUERY__WHAT__DECISIONS, NULL);
  json_t *not = dec ? query_json(&e, D_ESCALATION, WHISTLE__NOTICE__QUERY__WHAT__NOTICES, NULL) : NULL;
  if (!dec || !not) {
    json_decref(ticket);
    json_decref(dec);
    return CTL_FAIL;
  }
  size_t tl = strlen(tno), i;
  json_t *v, *mydec = json_array(), *mynot = json_array(), *keys = json_array();
  json_array_foreach(dec, i, v) if (has_str(json_object_get(v, "evidence"), tno, tl)) {
    json_array_append(mydec, v);
    json_array_append_new(keys, json_string(js(v, "key")));
  }
  json_array_foreach(not, i, v) {
    json_t *ev = json_object_get(v, "evidence");
    int hit = has_str(ev, tno, tl);
    size_t j;
    json_t *kk;
    json_array_foreach(keys, j, kk) hit |= has_str(ev, json_string_value(kk), 0) ||
                                           !strcmp(js(v, "key"), json_string_value(kk));
    if (!hit) continue;
    json_t *tr = query_json(&e, D_ESCALATION, WHISTLE__NOTICE__QUERY__WHAT__TRACE, js(v, "number"));
    json_t *n = json_deep_copy(v);
    json_object_set_new(n, "trace", tr && json_array_size(tr) ? json_incref(json_array_get(tr, 0)) : json_null());
    json_decref(tr);
    json_array_append_new(mynot, n);
  }
  if (set['j']) {
    json_t *o = json_pack("{s:O,s:O,s:O}", "ticket", ticket, "decisions", mydec, "notices", mynot);
    char *txt = json_dumps(o, JSON_SORT_KEYS | JSON_ENSURE_ASCII * 0);
    printf("%s\n", txt ? txt : "{}");
    free(txt);
    json_decref(o);
  } else {
    printf("ticket %s: %s, category %s, compound %s%s%s%s\n", tno, js(ticket, "state"),
           js(ticket, "category"), js(ticket, "compound"),
           json_is_string(json_object_get(ticket, "repeat_of")) ? ", repeat of " : "",
           json_is_string(json_object_get(ticket, "repeat_of")) ? js(ticket, "repeat_of") : "",
           json_is_true(json_object_get(ticket, "exempt")) ? ", exempt" : "");
    printf("  received %s  resolved %s  closed %s  close by %s\n", js(ticket, "received_at"),
           js(ticket, "resolved_at"), js(ticket, "closed_at"), js(ticket, "close_by"));
    json_array_foreach(json_object_get(ticket, "steps"), i, v) {
      printf("  step %lld  %-8s %-9s issued %s (%s)\n", (long long)json_integer_value(json_object_get(v, "step")),
             js(v, "unit"), js(v, "state"), js(v, "issued_at"), js(v, "reason"));
      printf("          accept by %s, accepted %s%s; resolve by %s, resolved %s%s\n", js(v, "accept_by"),
             js(v, "accepted_at"), json_is_true(json_object_get(v, "accept_overdue")) ? " OVERDUE" : "",
             js(v, "resolve_by"), js(v, "resolved_at"),
             json_is_true(json_object_get(v, "resolve_overdue")) ? " OVERDUE" : "");
      if (json_is_string(json_object_get(v, "returned_at")))
        printf("          returned %s\n", js(v, "returned_at"));
      if (json_is_true(json_object_get(v, "violation")))
        printf("          violation confirmed%s%s\n", json_is_string(json_object_get(v, "prohibition")) ? ", " : "",
               json_is_string(json_object_get(v, "prohibition")) ? js(v, "prohibition") : "");
    }
    printf("decisions with it in their evidence: %zu\n", json_array_size(mydec));
    json_array_foreach(mydec, i, v)
      printf("  %s  %s %s  subject %s  period %s  at %s\n", js(v, "key"), js(v, "rule"), js(v, "decision"),
             js(v, "subject"), js(v, "period"), js(v, "event_at"));
    printf("notices: %zu\n", json_array_size(mynot));
    json_array_foreach(mynot, i, v) {
      printf("  %s  %s to %s  rule %s  event %s  signed %s\n", js(v, "number"), js(v, "type"),
             js(v, "recipient"), js(v, "rule"), js(v, "event_at"), js(v, "signed_at"));
      json_t *tr = json_object_get(v, "trace");
      if (!json_is_object(tr)) continue;
      printf("    trigger: %s %s (%s)", js(tr, "source"), js(tr, "key"), js(tr, "rule"));
      static const char *const lists[] = { "measures", "tickets", "steps", "other" };
      for (size_t l = 0; l < 4; l++) {
        json_t *a = json_object_get(tr, lists[l]);
        if (!json_is_array(a) || !json_array_size(a)) continue;
        printf("; %s", lists[l]);
        size_t j;
        json_t *x;
        json_array_foreach(a, j, x) {
          if (json_is_string(x)) printf(" %s", json_string_value(x));
          else print_obj_line(" ", x);
        }
      }
      printf("\n");
    }
  }
  json_decref(ticket);
  json_decref(dec);
  json_decref(not);
  json_decref(mydec);
  json_decref(mynot);
  json_decref(keys);
  return CTL_OK;
}

/* ---- triage --------------------------------------------------------------------- */

static void triage_usage(FILE *out)
{
  fprintf(out,
    "usage: whistlectl triage [--json]\n"
    "\n"
    "What waits for an operator: tickets in manual triage (intake Query TRIAGE) with what\n"
    "they need (compound, category), and returned steps waiting for re-dispatch (referral\n"
    "Query RETURNED) with the unit that returned them and why. Complete them with a\n"
    "`triage` line (whistlectl replay) or whistle-dept redispatch.\n"
    "\n"
    "options:\n"
    "  --json   the two lists as JSON {triage: [...], returned: [...]}\n"
    "  --help   this text\n");
  ctl_env_help(out);
}

int ctl_triage_main(int argc, char **argv)
{
  struct ctl_env e;
  ctl_env_init(&e);
  int set[128] = { 0 };
  static const struct option own[] = { { "json", no_argument, NULL, 'j' }, { NULL, 0, NULL, 0 } };
  int k = parse(argc, argv, &e, own, set, triage_usage);
  if (k == -2) return CTL_OK;
  if (k < 0) return CTL_USAGE;
  if (k != argc) {
    fprintf(stderr, CTL_PROG ": triage takes no operands\n");
    return CTL_USAGE;
  }
  json_t *tri = query_json(&e, D_INTAKE, WHISTLE__HOTLINE__QUERY__WHAT__TRIAGE, NULL);
  json_t *ret = tri ? query_json(&e, D_REFERRAL, WHISTLE__UNIT__QUERY__WHAT__RETURNED, NULL) : NULL;
  if (!tri || !ret) {
    json_decref(tri);
    return CTL_FAIL;
  }
  if (set['j']) {
    json_t *o = json_pack("{s:O,s:O}", "triage", tri, "returned", ret);
    char *txt = json_dumps(o, JSON_SORT_KEYS);
    printf("%s\n", txt ? txt : "{}");
    free(txt);
    json_decref(o);
  } else {
    size_t i;
    json_t *v;
    printf("waiting in manual triage: %zu\n", json_array_size(tri));
    json_array_foreach(tri, i, v) {
      json_t *needs = json_object_get(v, "needs"), *n;
      size_t j;
      printf("  %s  received %s  needs", js(v, "ticket_no"), js(v, "received_at"));
      json_array_foreach(needs, j, n) printf(" %s", json_string_value(n));
      printf("  (category %s, compound %s, address %s)\n    %s\n", js(v, "category"), js(v, "compound"),
             js(v, "address"), js(v, "reason"));
    }
    printf("returned steps waiting for re-dispatch: %zu\n", json_array_size(ret));
    json_array_foreach(ret, i, v)
      printf("  %s step %lld  returned by %s at %s (%lld returns)  category %s, compound %s, street %s\n"
             "    %s\n", js(v, "ticket_no"), (long long)json_integer_value(json_object_get(v, "step")),
             js(v, "unit"), js(v, "returned_at"), (long long)json_integer_value(json_object_get(v, "returns")),
             js(v, "category"), js(v, "compound"), js(v, "street"), js(v, "reason"));
    if (json_array_size(tri) || json_array_size(ret))
      printf("next: a feed `triage` line completes a ticket (compound_code, category) or re-dispatches "
             "a returned step (unit); see whistlectl replay --help\n");
  }
  json_decref(tri);
  json_decref(ret);
  return CTL_OK;
}

/* ---- summary -------------------------------------------------------------------- */

int ctl_summary_main(int argc, char **argv);
