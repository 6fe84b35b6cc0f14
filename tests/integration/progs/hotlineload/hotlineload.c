/* hotlineload: a load generator for whistle-intake's hotline interface, used
 * by bench/intake_bench.sh. It sends realistic TicketSubmit requests over a
 * DEALER with many in flight, optionally paced, and measures ack latency
 * (send to the committed reply). Tickets are varied from the registry CSVs:
 * addresses naming a compound by name or alias (sometimes its code, a few
 * none), contents with keywords (some without), all five request types,
 * hotline category codes for some, callers' phones and names. Ticket numbers
 * are <prefix><n>, unique per run when the prefix is new; the received time
 * is the wall clock at send. Everything but the times is a function of --seed
 * and n, so two runs with the same options send the same tickets. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "hotline.pb-c.h"
#include "../../../lib/loadgen.h"
#include "svc_csv.h"

#define MAX_ROWS 4096
#define MAX_NAMES 8

struct opts {
  const char *endpoint, *prefix, *registry, *dump;
  long count, inflight, callers, seed;
  double rate, timeout_s;
};

/* What the tickets are made of, read from the registry. */
struct compound { char *code; char *names[MAX_NAMES]; int n_names; };
struct corpus {
  struct compound compounds[MAX_ROWS]; int n_compounds;
  char *keywords[MAX_ROWS]; int n_keywords;
  char *hotline[MAX_ROWS]; int n_hotline;
};

static void usage(FILE *f)
{
  fprintf(f,
          "usage: hotlineload [OPTION...]\n"
          "\n"
          "Sends TicketSubmit requests <prefix><n> to whistle-intake and prints one line:\n"
          "  sent= accepted= dup= rejected= unavailable= err= seconds= rate= accepted_rate=\n"
          "  ack_p50_us= ack_p99_us= ack_max_us=\n"
          "(rates per second from the first send to the last answer; ack: send to reply)\n"
          "\n"
          "  --endpoint EP     intake's hotline endpoint\n"
          "                    (default ipc:///tmp/whistle-intake-hotline)\n"
          "  --count N         tickets to send (default 10000)\n"
          "  --inflight N      most tickets awaiting a reply (default 1000)\n"
          "  --rate R          tickets per second; 0 = as fast as possible (default 0)\n"
          "  --prefix S        ticket number prefix, A-Z a-z 0-9 - _ (default L)\n"
          "  --registry DIR    registry CSVs the tickets are made from (default deploy/registry)\n"
          "  --callers N       distinct callers' phones (default: one per ticket)\n"
          "  --seed N          varies the tickets (default 1)\n"
          "  --timeout S       give up after S seconds without progress (default 60)\n"
          "  --dump FILE       one line per ticket: n send_wall_us ack_us status\n"
          "  --help            print this text and exit\n");
}

static int valid_prefix(const char *p)
{
  if (strlen(p) > 40) return 0;
  for (; *p; p++)
    if (!((*p >= 'A' && *p <= 'Z') || (*p >= 'a' && *p <= 'z') || (*p >= '0' && *p <= '9') ||
          *p == '-' || *p == '_'))
      return 0;
  return 1;
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
  static const struct option lo[] = {
    { "endpoint", required_argument, NULL, 'e' }, { "count", required_argument, NULL, 'n' },
    { "inflight", required_argument, NULL, 'i' }, { "rate", required_argument, NULL, 'r' },
    { "prefix", required_argument, NULL, 'p' },   { "registry", required_argument, NULL, 'g' },
    { "callers", required_argument, NULL, 'c' },  { "seed", required_argument, NULL, 's' },
    { "timeout", required_argument, NULL, 'T' },  { "dump", required_argument, NULL, 'd' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  *o = (struct opts){ .endpoint = "ipc:///tmp/whistle-intake-hotline", .prefix = "L",
                      .registry = "deploy/registry", .count = 10000, .inflight = 1000,
                      .seed = 1, .timeout_s = 60 };
  int c;
  long t;
  char *end;
  while ((c = getopt_long(argc, argv, "", lo, NULL)) != -1) {
    int bad = 0;
    switch (c) {
    case 'e': o->endpoint = optarg; break;
    case 'n': bad = parse_long(optarg, 1, 100000000, &o->count); break;
    case 'i': bad = parse_long(optarg, 1, 1000000, &o->inflight); break;
    case 'r':
      o->rate = strtod(optarg, &end);
      bad = *end || end == optarg || o->rate < 0;
      break;
    case 'p': o->prefix = optarg; bad = !valid_prefix(optarg); break;
    case 'g': o->registry = optarg; break;
    case 'c': bad = parse_long(optarg, 1, 100000000, &o->callers); break;
    case 's': bad = parse_long(optarg, 0, 1000000000, &o->seed); break;
    case 'T':
      bad = parse_long(optarg, 1, 86400, &t);
      o->timeout_s = (double)t;
      break;
    case 'd': o->dump = optarg; break;
    case 'h': usage(stdout); return 1;
    default: usage(stderr); return -1;
    }
    if (bad) {
      fprintf(stderr, "hotlineload: bad value for an option: %s\n", optarg);
      return -1;
    }
  }
  if (optind < argc) {
    usage(stderr);
    return -1;
  }
  if (!o->callers) o->callers = o->count;
  return 0;
}

/* ---- the corpus ------------------------------------------------------------ */

static char *xstrdup(const char *s)
{
  char *d = strdup(s);
  if (!d) {
    fprintf(stderr, "hotlineload: out of memory\n");
    exit(2);
  }
  return d;
}

/* Reads column `col` of every record of dir/file (header checked) into out. */
static int read_column(const char *dir, const char *file, const char *header, size_t col,
                       char **out, int *n)
{
  char path[1024];
  struct svc_csv c;
  snprintf(path, sizeof path, "%s/%s", dir, file);
  if (svc_csv_open(&c, path, header)) {
    fprintf(stderr, "hotlineload: %s\n", c.err);
    svc_csv_close(&c);
    return -1;
  }
  int rc;
  while ((rc = svc_csv_next(&c)) == 1 && *n < MAX_ROWS) out[(*n)++] = xstrdup(c.fields[col]);
  if (rc < 0) fprintf(stderr, "hotlineload: %s\n", c.err);
  svc_csv_close(&c);
  return rc < 0 || *n == 0 ? -1 : 0;
}

static int read_compounds(const char *dir, struct corpus *k)
{
  char path[1024];
  struct svc_csv c;
  snprintf(path, sizeof path, "%s/compounds.csv", dir);
  if (svc_csv_open(&c, path, "code,name,aliases,street,management,company,manager,households")) {
    fprintf(stderr, "hotlineload: %s\n", c.err);
    svc_csv_close(&c);
    return -1;
  }
  int rc;
  while ((rc = svc_csv_next(&c)) == 1 && k->n_compounds < MAX_ROWS) {
    struct compound *p = &k->compounds[k->n_compounds++];
    p->code = xstrdup(c.fields[0]);
    p->names[p->n_names++] = xstrdup(c.fields[1]);
    char *aliases = xstrdup(c.fields[2]), *save = NULL;
    for (char *a = strtok_r(aliases, "|", &save); a && p->n_names < MAX_NAMES;
         a = strtok_r(NULL, "|", &save))
      p->names[p->n_names++] = xstrdup(a);
    free(aliases);
  }
  if (rc < 0) fprintf(stderr, "hotlineload: %s\n", c.err);
  svc_csv_close(&c);
  return rc < 0 || k->n_compounds == 0 ? -1 : 0;
}

static int load_corpus(const char *dir, struct corpus *k)
{
  memset(k, 0, sizeof *k);
  if (read_compounds(dir, k)) return -1;
  if (read_column(dir, "keywords.csv", "keyword,category,priority", 0, k->keywords,
                  &k->n_keywords))
    return -1;
  return read_column(dir, "hotline_categories.csv", "hotline_code,category", 0, k->hotline,
                     &k->n_hotline);
}

static void free_corpus(struct corpus *k)
{
  for (int i = 0; i < k->n_compounds; i++) {
    free(k->compounds[i].code);
    for (int j = 0; j < k->compounds[i].n_names; j++) free(k->compounds[i].names[j]);
  }
  for (int i = 0; i < k->n_keywords; i++) free(k->keywords[i]);
  for (int i = 0; i < k->n_hotline; i++) free(k->hotline[i]);
}

/* ---- tickets ------------------------------------------------------------------ */

/* splitmix64: the ticket's random stream is a function of (seed, n). */
static uint64_t mix(uint64_t *x)
{
  uint64_t z = (*x += UINT64_C(0x9e3779b97f4a7c15));
  z = (z ^ (z >> 30)) * UINT64_C(0xbf58476d1ce4e5b9);
  z = (z ^ (z >> 27)) * UINT64_C(0x94d049bb133111eb);
  return z ^ (z >> 31);
}
static uint32_t pick(uint64_t *x, uint32_t n) { return (uint32_t)(mix(x) % n); }

static const char *const TYPES[] = { "COMPLAINT", "COMPLAINT", "COMPLAINT", "COMPLAINT",
                                     "COMPLAINT", "REPORT", "REPORT", "HELP", "HELP",
                                     "CONSULT", "SUGGEST" };
static const char *const SURNAMES[] = { "王", "李", "张", "刘", "陈", "杨", "赵", "黄", "周", "吴",
                                        "徐", "孙", "胡", "朱", "高", "林", "何", "郭", "马", "罗" };
static const char *const GIVEN[] = { "伟", "芳", "娜", "秀英", "敏", "静", "丽", "强", "磊", "军",
                                     "洋", "勇", "艳", "杰", "娟", "涛", "明", "超", "霞", "平" };
static const char *const FILLER[] = { "，已经持续一周了，希望尽快处理", "，多次反映无果",
                                      "，影响居民正常生活", "，老人孩子出行不便，请相关部门核实",
                                      "，物业一直推诿", "。" };
#define N_OF(a) (sizeof a / sizeof a[0])

struct ticket {
  char ticket_no[64], address[256], content[512], phone[16], name[16];
  const char *type, *hotline, *code;
  uint32_t urgency;
};

static void make_ticket(const struct opts *o, const struct corpus *k, long n, struct ticket *t)
{
  uint64_t x = (uint64_t)o->seed * UINT64_C(0x100000001b3) ^ (uint64_t)n;
  snprintf(t->ticket_no, sizeof t->ticket_no, "%s%ld", o->prefix, n);
  const struct compound *c = &k->compounds[pick(&x, (uint32_t)k->n_compounds)];
  t->type = TYPES[pick(&x, N_OF(TYPES))];
  t->code = "";
  uint32_t roll = pick(&x, 100);
  if (roll < 10) {
    t->code = c->code;
    snprintf(t->address, sizeof t->address, "%u号楼%u单元", 1 + pick(&x, 30), 1 + pick(&x, 6));
  } else if (roll < 97) {
    snprintf(t->address, sizeof t->address, "%s%u栋%u室", c->names[pick(&x, (uint32_t)c->n_names)],
             1 + pick(&x, 30), 101 + pick(&x, 2700));
  } else {
    snprintf(t->address, sizeof t->address, "人民路%u号附近", 1 + pick(&x, 999));
  }
  if (pick(&x, 100) < 85)
    snprintf(t->content, sizeof t->content, "%s%s", k->keywords[pick(&x, (uint32_t)k->n_keywords)],
             FILLER[pick(&x, N_OF(FILLER))]);
  else
    snprintf(t->content, sizeof t->content, "来电反映情况%u%s", pick(&x, 100000),
             FILLER[pick(&x, N_OF(FILLER))]);
  t->hotline = pick(&x, 100) < 20 ? k->hotline[pick(&x, (uint32_t)k->n_hotline)] : "";
  uint64_t caller = (uint64_t)(n % o->callers) * UINT64_C(2654435761) + (uint64_t)o->seed;
  uint64_t y = caller;
  snprintf(t->phone, sizeof t->phone, "1%c%09" PRIu64, "3456789"[pick(&y, 7)],
           mix(&y) % UINT64_C(1000000000));
  snprintf(t->name, sizeof t->name, "%s%s", SURNAMES[pick(&y, N_OF(SURNAMES))],
           GIVEN[pick(&y, N_OF(GIVEN))]);
  t->urgency = pick(&x, 100) < 5;
}

/* ---- the sender ------------------------------------------------------------------ */

struct sender {
  void *sock;
  const struct corpus *corpus;
  uint8_t buf[4096];
  int64_t *sent_at;            /* monotonic send time per ticket; 0 = not in flight */
  int64_t *ack_lat;
  size_t nack;
  int64_t *send_wall, *ack_of; /* per ticket, with --dump */
  uint8_t *status_of;          /* per ticket, with --dump: reply status + 1 */
  long sent, replied, accepted, dup, rejected, unavailable, err;
  int64_t first_us, last_us;
};

static int send_one(struct sender *s, const struct opts *o, long i)
{
  struct ticket t;
  make_ticket(o, s->corpus, i, &t);
  Whistle__Hotline__TicketSubmit sub = WHISTLE__HOTLINE__TICKET_SUBMIT__INIT;
  sub.ticket_no = t.ticket_no;
  sub.request_type = (char *)t.type;
  sub.hotline_category = (char *)t.hotline;
  sub.caller_phone = t.phone;
  sub.caller_name = t.name;
  sub.compound_code = (char *)t.code;
  sub.address = t.address;
  sub.content = t.content;
  sub.urgency = t.urgency;
  Whistle__Hotline__HotlineMessage m = WHISTLE__HOTLINE__HOTLINE_MESSAGE__INIT;
  m.version = 1;
  m.request_id = (uint64_t)i + 1;
  m.body_case = WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_SUBMIT;
  m.submit = &sub;
  sub.received_us = svc_wall_us();
  if (s->send_wall) s->send_wall[i] = sub.received_us;
  size_t len = whistle__hotline__hotline_message__get_packed_size(&m);
  if (len > sizeof s->buf) return -1;
  whistle__hotline__hotline_message__pack(&m, s->buf);
  int64_t now = svc_mono_us();
  if (zmq_send(s->sock, s->buf, len, ZMQ_DONTWAIT) < 0) return errno == EAGAIN ? 1 : -1;
  if (!s->first_us) s->first_us = now;
  s->sent_at[i] = now;
  s->sent++;
  return 0;
}

static void take_reply(struct sender *s, const struct opts *o, const uint8_t *data, size_t len)
{
  Whistle__Hotline__HotlineMessage *m = whistle__hotline__hotline_message__unpack(NULL, len, data);
  if (!m || m->body_case != WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_REPLY ||
      m->reply->request_id < 1 || m->reply->request_id > (uint64_t)o->count ||
      !s->sent_at[m->reply->request_id - 1]) {
    if (m) whistle__hotline__hotline_message__free_unpacked(m, NULL);
    return; /* not ours, or answered already */
  }
  long i = (long)m->reply->request_id - 1;
  int64_t now = svc_mono_us();
  s->ack_lat[s->nack++] = now - s->sent_at[i];
  s->last_us = now;
  if (s->ack_of) {
    s->ack_of[i] = s->ack_lat[s->nack - 1];
    s->status_of[i] = (uint8_t)(m->reply->status + 1);
  }
  s->sent_at[i] = 0;
  s->replied++;
  switch (m->reply->status) {
  case WHISTLE__HOTLINE__REPLY__STATUS__ACCEPTED: s->accepted++; break;
  case WHISTLE__HOTLINE__REPLY__STATUS__DUPLICATE: s->dup++; break;
  case WHISTLE__HOTLINE__REPLY__STATUS__REJECTED:
    if (s->rejected++ < 3)
      fprintf(stderr, "hotlineload: %s%ld REJECTED: %s\n", o->prefix, i, m->reply->reason);
    break;
  case WHISTLE__HOTLINE__REPLY__STATUS__UNAVAILABLE: s->unavailable++; break;
  default: s->err++; break;
  }
  whistle__hotline__hotline_message__free_unpacked(m, NULL);
}

static void drain_replies(struct sender *s, const struct opts *o)
{
  zmq_msg_t msg;
  zmq_msg_init(&msg);
  while (zmq_msg_recv(&msg, s->sock, ZMQ_DONTWAIT) >= 0)
    take_reply(s, o, zmq_msg_data(&msg), zmq_msg_size(&msg));
  zmq_msg_close(&msg);
}

struct run_arg { struct sender *s; const struct opts *o; };
static int send_cb(void *arg, long i)
{
  struct run_arg *r = arg;
  return send_one(r->s, r->o, i);
}
static void drain_cb(void *arg)
{
  struct run_arg *r = arg;
  drain_replies(r->s, r->o);
}

/* Sends every ticket (paced with --rate) and waits for every reply. */
static int run_load(struct sender *s, const struct opts *o)
{
  struct run_arg ra = { s, o };
  struct loadgen_run r = { .name = "hotlineload", .sock = s->sock, .count = o->count,
                           .inflight = o->inflight, .rate = o->rate, .timeout_s = o->timeout_s,
                           .sent = &s->sent, .replied = &s->replied, .err = &s->err,
                           .send = send_cb, .drain = drain_cb, .arg = &ra };
  return loadgen_run(&r, svc_mono_us());
}

/* Nearest-rank percentile of a sorted array; 0 when empty. */
static void print_summary(struct sender *s)
{
  double secs = s->last_us > s->first_us ? (double)(s->last_us - s->first_us) / 1e6 : 0;
  qsort(s->ack_lat, s->nack, sizeof *s->ack_lat, cmp_i64);
  double rate = secs > 0 ? (double)s->replied / secs : 0;
  double accepted_rate = secs > 0 ? (double)s->accepted / secs : 0;
  printf("sent=%ld accepted=%ld dup=%ld rejected=%ld unavailable=%ld err=%ld seconds=%.3f"
         " rate=%.0f accepted_rate=%.0f ack_p50_us=%" PRId64 " ack_p99_us=%" PRId64
         " ack_max_us=%" PRId64 "\n",
         s->sent, s->accepted, s->dup, s->rejected, s->unavailable, s->err, secs, rate,
         accepted_rate, pct(s->ack_lat, s->nack, 50), pct(s->ack_lat, s->nack, 99),
         s->nack ? s->ack_lat[s->nack - 1] : 0);
  fflush(stdout);
}

static int write_dump(const char *path, const struct sender *s, const struct opts *o)
{
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "hotlineload: cannot write %s\n", path);
    return -1;
  }
  fprintf(f, "# n send_wall_us ack_us status"
             " (0 none, 1 ACCEPTED, 2 DUPLICATE, 3 REJECTED, 4 UNAVAILABLE)\n");
  for (long i = 0; i < o->count; i++)
    if (s->send_wall[i])
      fprintf(f, "%ld %" PRId64 " %" PRId64 " %u\n", i, s->send_wall[i], s->ack_of[i],
              s->status_of[i]);
  return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
  struct opts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc) return rc > 0 ? 0 : 2;
  static struct corpus corpus;
  if (load_corpus(o.registry, &corpus)) return 2;
  struct sender s = { .corpus = &corpus };
  void *ctx = zmq_ctx_new();
  int ok = 0;
  s.sent_at = calloc((size_t)o.count, sizeof *s.sent_at);
  s.ack_lat = malloc((size_t)o.count * sizeof *s.ack_lat);
  if (o.dump) {
    s.send_wall = calloc((size_t)o.count, sizeof *s.send_wall);
    s.ack_of = calloc((size_t)o.count, sizeof *s.ack_of);
    s.status_of = calloc((size_t)o.count, 1);
    if (!s.send_wall || !s.ack_of || !s.status_of) goto fail;
  }
  if (!ctx || !s.sent_at || !s.ack_lat) goto fail;
  s.sock = zmq_socket(ctx, ZMQ_DEALER);
  int hwm = (int)(o.inflight * 2 + 1000), linger = 0;
  if (!s.sock || zmq_setsockopt(s.sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
      zmq_setsockopt(s.sock, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
      zmq_setsockopt(s.sock, ZMQ_LINGER, &linger, sizeof linger) ||
      zmq_connect(s.sock, o.endpoint)) {
    fprintf(stderr, "hotlineload: cannot connect to %s: %s\n", o.endpoint, zmq_strerror(errno));
    goto fail;
  }
  if (run_load(&s, &o)) goto fail;
  ok = s.err == 0 && s.rejected == 0 && s.unavailable == 0;
  if (o.dump && write_dump(o.dump, &s, &o)) ok = 0;
  print_summary(&s);
fail:
  if (s.sock) zmq_close(s.sock);
  if (ctx) zmq_ctx_term(ctx);
  free(s.sent_at);
  free(s.ack_lat);
  free(s.send_wall);
  free(s.ack_of);
  free(s.status_of);
  free_corpus(&corpus);
  return ok ? 0 : 1;
}
