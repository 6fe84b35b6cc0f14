/* ledgerload: a load generator for ledgerd, used by `make bench`. It sends Put
 * requests over a DEALER with many in flight, optionally paced, stamps each
 * with its send wall-clock time as event time, and measures ack latency. With
 * --sink-poll it also watches the sink table over libpq in a second thread and
 * measures end-to-end latency (send to visible at the sink) and sink throughput. */
#include <errno.h>
#include <getopt.h>
#include <inttypes.h>
#include <libpq-fe.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "ledger.pb-c.h"
#include "../../../lib/loadgen.h"

struct opts {
  const char *endpoint, *prefix, *addressee, *sink_conninfo, *sink_table, *dump;
  long count;
  long inflight;
  double rate;
  long value_size;
  long poll_ms;
  double timeout_s;
};

/* The sink watcher: polls for rows with seq above what it has seen and
 * records, per row, the time it became visible minus its event time. */
struct poller {
  pthread_t th;
  PGconn *conn;
  char sql[256];
  long poll_ms;
  uint64_t last_seq;
  int64_t *lat;
  struct seen { uint64_t seq; int64_t event_us, seen_us; } *seen; /* with --dump */
  size_t nlat, cap;
  atomic_long target;  /* rows expected; -1 until the sender knows */
  atomic_int stop;     /* set by the sender on timeout */
  atomic_int done;     /* set by the poller when it has seen target rows */
  int64_t done_us;     /* wall time at which the last expected row was seen */
  atomic_int error;   /* set by the poller when a query failed */
};

static void usage(FILE *f)
{
  fprintf(f,
          "usage: ledgerload [OPTION...]\n"
          "\n"
          "Sends Put requests with keys <prefix><n> to ledgerd and prints one summary line:\n"
          "  sent= new= dup= bad= err= seconds= rate= ack_p50_us= ack_p99_us= ack_max_us=\n"
          "and with --sink-poll also sink_rows= sink_seconds= sink_rate= e2e_p50_us=\n"
          "e2e_p99_us= e2e_max_us= (event time to the row being visible in the sink table;\n"
          "visibility is observed at the end of the poll that first returns the row).\n"
          "\n"
          "  --endpoint EP        ledgerd request endpoint (default ipc:///tmp/whistle-ledger-rpc)\n"
          "  --count N            requests to send (default 10000)\n"
          "  --inflight N         most requests awaiting a reply (default 1000)\n"
          "  --rate R             requests per second; 0 = as fast as possible (default 0)\n"
          "  --prefix S           key prefix; must be new to get new keys (default k)\n"
          "  --addressee S        stream addressee of each event (default *)\n"
          "  --value-size N       bytes of value per Put (default 0)\n"
          "  --sink-poll CONNINFO libpq connection string of the sink's database\n"
          "  --sink-table NAME    table with (seq, event_us) columns (default t_sink.sink)\n"
          "  --poll-ms N          sink poll interval in milliseconds (default 2)\n"
          "  --timeout S          give up after S seconds without progress (default 60)\n"
          "  --dump FILE          write one line per request: req_id send_wall_us ack_us\n"
          "                       (and with --sink-poll one per sink row: seq event_us seen_us)\n"
          "  --help               print this text and exit\n");
}

static int parse_opts(int argc, char **argv, struct opts *o)
{
  static const struct option lo[] = {
    { "endpoint", required_argument, NULL, 'e' }, { "count", required_argument, NULL, 'n' },
    { "inflight", required_argument, NULL, 'i' }, { "rate", required_argument, NULL, 'r' },
    { "prefix", required_argument, NULL, 'p' },   { "addressee", required_argument, NULL, 'a' },
    { "value-size", required_argument, NULL, 'v' }, { "sink-poll", required_argument, NULL, 's' },
    { "sink-table", required_argument, NULL, 't' }, { "poll-ms", required_argument, NULL, 'P' },
    { "timeout", required_argument, NULL, 'T' },  { "dump", required_argument, NULL, 'd' },
    { "help", no_argument, NULL, 'h' },
    { NULL, 0, NULL, 0 },
  };
  *o = (struct opts){ .endpoint = "ipc:///tmp/whistle-ledger-rpc", .prefix = "k",
                      .addressee = "*", .sink_table = "t_sink.sink", .count = 10000,
                      .inflight = 1000, .poll_ms = 2, .timeout_s = 60 };
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
    case 'p': o->prefix = optarg; break;
    case 'a': o->addressee = optarg; break;
    case 'v': bad = parse_long(optarg, 0, 65536, &o->value_size); break;
    case 's': o->sink_conninfo = optarg; break;
    case 't': o->sink_table = optarg; break;
    case 'P': bad = parse_long(optarg, 1, 10000, &o->poll_ms); break;
    case 'T':
      bad = parse_long(optarg, 1, 86400, &t);
      o->timeout_s = (double)t;
      break;
    case 'd': o->dump = optarg; break;
    case 'h': usage(stdout); return 1;
    default: usage(stderr); return -1;
    }
    if (bad) {
      fprintf(stderr, "ledgerload: bad value for an option: %s\n", optarg);
      return -1;
    }
  }
  if (optind < argc) {
    usage(stderr);
    return -1;
  }
  for (const char *p = o->sink_table; *p; p++) {
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
          *p == '_' || *p == '.')) {
      fprintf(stderr, "ledgerload: --sink-table must be a plain [schema.]name\n");
      return -1;
    }
  }
  return 0;
}

/* Nearest-rank percentile of a sorted array; 0 when empty. */
/* ---- the sink watcher ---------------------------------------------------- */

static int poller_query_head(struct poller *pl, const char *table)
{
  char q[256];
  snprintf(q, sizeof q, "SELECT coalesce(max(seq), 0) FROM %s", table);
  PGresult *r = PQexec(pl->conn, q);
  if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
    fprintf(stderr, "ledgerload: sink head query failed: %s", PQerrorMessage(pl->conn));
    PQclear(r);
    return -1;
  }
  pl->last_seq = strtoull(PQgetvalue(r, 0, 0), NULL, 10);
  PQclear(r);
  return 0;
}

static int poller_init(struct poller *pl, const struct opts *o)
{
  memset(pl, 0, sizeof *pl);
  atomic_init(&pl->target, -1);
  pl->poll_ms = o->poll_ms;
  pl->cap = (size_t)o->count;
  pl->lat = malloc(pl->cap * sizeof *pl->lat);
  if (o->dump) pl->seen = malloc(pl->cap * sizeof *pl->seen);
  pl->conn = PQconnectdb(o->sink_conninfo);
  if (!pl->lat || (o->dump && !pl->seen) || PQstatus(pl->conn) != CONNECTION_OK) {
    fprintf(stderr, "ledgerload: cannot connect to the sink: %s", PQerrorMessage(pl->conn));
    return -1;
  }
  /* The table grows from empty during a run: without this the plan chosen
   * while it was small stays a sequential scan and the watcher itself
   * becomes a load on the database being measured. */
  PGresult *set = PQexec(pl->conn, "SET enable_seqscan = off");
  PQclear(set);
  snprintf(pl->sql, sizeof pl->sql,
           "SELECT seq, event_us FROM %s WHERE seq > $1 ORDER BY seq LIMIT 100000",
           o->sink_table);
  PGresult *r = PQprepare(pl->conn, "poll", pl->sql, 1, NULL);
  int ok = PQresultStatus(r) == PGRES_COMMAND_OK;
  PQclear(r);
  if (!ok) {
    fprintf(stderr, "ledgerload: cannot prepare the sink poll: %s", PQerrorMessage(pl->conn));
    return -1;
  }
  return poller_query_head(pl, o->sink_table);
}

/* One poll; returns rows seen, or -1. */
static int poll_once(struct poller *pl)
{
  char after[24];
  snprintf(after, sizeof after, "%" PRIu64, pl->last_seq);
  const char *v[1] = { after };
  PGresult *r = PQexecPrepared(pl->conn, "poll", 1, v, NULL, NULL, 0);
  int64_t now = svc_wall_us();
  if (PQresultStatus(r) != PGRES_TUPLES_OK) {
    fprintf(stderr, "ledgerload: sink poll failed: %s", PQerrorMessage(pl->conn));
    PQclear(r);
    return -1;
  }
  int n = PQntuples(r);
  for (int i = 0; i < n; i++) {
    pl->last_seq = strtoull(PQgetvalue(r, i, 0), NULL, 10);
    int64_t ev = strtoll(PQgetvalue(r, i, 1), NULL, 10);
    if (pl->nlat >= pl->cap) continue;
    if (pl->seen) pl->seen[pl->nlat] = (struct seen){ pl->last_seq, ev, now };
    pl->lat[pl->nlat++] = now - ev;
  }
  PQclear(r);
  return n;
}

static void *poller_run(void *arg)
{
  struct poller *pl = arg;
  struct timespec ivl = { .tv_sec = pl->poll_ms / 1000, .tv_nsec = (pl->poll_ms % 1000) * 1000000L };
  while (!atomic_load(&pl->stop)) {
    int n = poll_once(pl);
    if (n < 0) {
      atomic_store(&pl->error, 1);
      break;
    }
    long target = atomic_load(&pl->target);
    if (target >= 0 && (long)pl->nlat >= target) {
      pl->done_us = svc_wall_us();
      atomic_store(&pl->done, 1);
      break;
    }
    if (n < 100000) nanosleep(&ivl, NULL);
  }
  return NULL;
}

/* ---- the sender ---------------------------------------------------------- */

struct sender {
  void *sock;
  uint8_t *buf;
  size_t bufcap;
  char *value;
  int64_t *sent_at;   /* monotonic send time per request index; 0 = not in flight */
  int64_t *ack_lat;
  size_t nack;
  int64_t *send_wall, *ack_of; /* per request, with --dump */
  long sent, replied, n_new, dup, bad, err;
};

static int send_one(struct sender *s, const struct opts *o, long i)
{
  char key[256];
  snprintf(key, sizeof key, "%s%ld", o->prefix, i);
  Whistle__Test__Put put = WHISTLE__TEST__PUT__INIT;
  put.req_id = (uint64_t)i + 1;
  put.key = key;
  put.addressee = (char *)o->addressee;
  put.value.data = (uint8_t *)s->value;
  put.value.len = (size_t)o->value_size;
  Whistle__Test__LedgerMessage m = WHISTLE__TEST__LEDGER_MESSAGE__INIT;
  m.version = 1;
  m.body_case = WHISTLE__TEST__LEDGER_MESSAGE__BODY_PUT;
  m.put = &put;
  put.event_us = svc_wall_us();
  if (s->send_wall) s->send_wall[i] = put.event_us;
  size_t len = whistle__test__ledger_message__get_packed_size(&m);
  if (len > s->bufcap) return -1;
  whistle__test__ledger_message__pack(&m, s->buf);
  int64_t t = svc_mono_us();
  if (zmq_send(s->sock, s->buf, len, ZMQ_DONTWAIT) < 0) return errno == EAGAIN ? 1 : -1;
  s->sent_at[i] = t;
  s->sent++;
  return 0;
}

static void take_reply(struct sender *s, const struct opts *o, const uint8_t *data, size_t len)
{
  Whistle__Test__LedgerMessage *m = whistle__test__ledger_message__unpack(NULL, len, data);
  if (!m || m->body_case != WHISTLE__TEST__LEDGER_MESSAGE__BODY_REPLY || m->reply->req_id < 1 ||
      m->reply->req_id > (uint64_t)o->count || !s->sent_at[m->reply->req_id - 1]) {
    if (m) whistle__test__ledger_message__free_unpacked(m, NULL);
    return; /* not ours, or answered already */
  }
  long i = (long)m->reply->req_id - 1;
  s->ack_lat[s->nack++] = svc_mono_us() - s->sent_at[i];
  if (s->ack_of) s->ack_of[i] = s->ack_lat[s->nack - 1];
  s->sent_at[i] = 0;
  s->replied++;
  switch (m->reply->status) {
  case WHISTLE__TEST__PUT_REPLY__STATUS__NEW: s->n_new++; break;
  case WHISTLE__TEST__PUT_REPLY__STATUS__DUPLICATE: s->dup++; break;
  case WHISTLE__TEST__PUT_REPLY__STATUS__BAD: s->bad++; break;
  default: s->err++; break;
  }
  whistle__test__ledger_message__free_unpacked(m, NULL);
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

/* Sends everything and waits for every reply; returns the wall time of the
 * first send through *start_wall and the run's length in seconds. */
static int run_load(struct sender *s, const struct opts *o, int64_t *start_wall, double *secs)
{
  struct run_arg ra = { s, o };
  struct loadgen_run r = { .name = "ledgerload", .sock = s->sock, .count = o->count,
                           .inflight = o->inflight, .rate = o->rate, .timeout_s = o->timeout_s,
                           .sent = &s->sent, .replied = &s->replied, .err = &s->err,
                           .send = send_cb, .drain = drain_cb, .arg = &ra };
  int64_t t0 = svc_mono_us();
  *start_wall = svc_wall_us();
  int rc = loadgen_run(&r, t0);
  *secs = (double)(svc_mono_us() - t0) / 1e6;
  return rc;
}

static int wait_sink(struct poller *pl, long target, double timeout_s)
{
  atomic_store(&pl->target, target);
  int64_t end = svc_mono_us() + (int64_t)(timeout_s * 1e6);
  struct timespec ms = { 0, 1000000L };
  while (!atomic_load(&pl->done) && !atomic_load(&pl->error) && svc_mono_us() < end) nanosleep(&ms, NULL);
  atomic_store(&pl->stop, 1);
  pthread_join(pl->th, NULL);
  if (!atomic_load(&pl->done)) {
    fprintf(stderr, "ledgerload: the sink showed %zu of %ld rows\n", pl->nlat, target);
    return -1;
  }
  return 0;
}

static void print_summary(struct sender *s, const struct opts *o, double secs, struct poller *pl,
                          int64_t start_wall)
{
  qsort(s->ack_lat, s->nack, sizeof *s->ack_lat, cmp_i64);
  printf("sent=%ld new=%ld dup=%ld bad=%ld err=%ld seconds=%.3f rate=%.0f ack_p50_us=%" PRId64
         " ack_p99_us=%" PRId64 " ack_max_us=%" PRId64,
         s->sent, s->n_new, s->dup, s->bad, s->err, secs, secs > 0 ? (double)s->replied / secs : 0,
         pct(s->ack_lat, s->nack, 50), pct(s->ack_lat, s->nack, 99),
         s->nack ? s->ack_lat[s->nack - 1] : 0);
  if (o->sink_conninfo && pl) {
    double ss = pl->done_us ? (double)(pl->done_us - start_wall) / 1e6 : 0;
    qsort(pl->lat, pl->nlat, sizeof *pl->lat, cmp_i64);
    printf(" sink_rows=%zu sink_seconds=%.3f sink_rate=%.0f e2e_p50_us=%" PRId64
           " e2e_p99_us=%" PRId64 " e2e_max_us=%" PRId64,
           pl->nlat, ss, ss > 0 ? (double)pl->nlat / ss : 0, pct(pl->lat, pl->nlat, 50),
           pct(pl->lat, pl->nlat, 99), pl->nlat ? pl->lat[pl->nlat - 1] : 0);
  }
  printf("\n");
  fflush(stdout);
}

/* Writes the per-request and per-row records for offline analysis. */
static int write_dump(const char *path, const struct sender *s, const struct opts *o,
                      const struct poller *pl)
{
  FILE *f = fopen(path, "w");
  if (!f) {
    fprintf(stderr, "ledgerload: cannot write %s\n", path);
    return -1;
  }
  fprintf(f, "# req req_id send_wall_us ack_us\n");
  for (long i = 0; i < o->count; i++)
    if (s->send_wall[i]) fprintf(f, "req %ld %" PRId64 " %" PRId64 "\n", i + 1, s->send_wall[i], s->ack_of[i]);
  if (pl && pl->seen) {
    fprintf(f, "# row seq event_us seen_us\n");
    for (size_t i = 0; i < pl->nlat; i++)
      fprintf(f, "row %" PRIu64 " %" PRId64 " %" PRId64 "\n", pl->seen[i].seq, pl->seen[i].event_us,
              pl->seen[i].seen_us);
  }
  return fclose(f) == 0 ? 0 : -1;
}

int main(int argc, char **argv)
{
  struct opts o;
  int rc = parse_opts(argc, argv, &o);
  if (rc) return rc > 0 ? 0 : 2;
  static struct poller pl;
  struct sender s = { 0 };
  void *ctx = zmq_ctx_new();
  int ok = 0, started = 0;
  s.bufcap = strlen(o.prefix) + strlen(o.addressee) + (size_t)o.value_size + 512;
  s.buf = malloc(s.bufcap);
  s.value = calloc(1, (size_t)o.value_size + 1);
  s.sent_at = calloc((size_t)o.count, sizeof *s.sent_at);
  s.ack_lat = malloc((size_t)o.count * sizeof *s.ack_lat);
  if (o.dump) {
    s.send_wall = calloc((size_t)o.count, sizeof *s.send_wall);
    s.ack_of = calloc((size_t)o.count, sizeof *s.ack_of);
    if (!s.send_wall || !s.ack_of) goto fail;
  }
  if (!ctx || !s.buf || !s.value || !s.sent_at || !s.ack_lat) goto fail;
  if (strlen(o.prefix) > 180) {
    fprintf(stderr, "ledgerload: --prefix too long\n");
    goto fail;
  }
  if (o.sink_conninfo) {
    if (poller_init(&pl, &o)) goto fail;
    if (pthread_create(&pl.th, NULL, poller_run, &pl)) goto fail;
    started = 1;
  }
  s.sock = zmq_socket(ctx, ZMQ_DEALER);
  int hwm = (int)(o.inflight * 2 + 1000), linger = 0;
  if (!s.sock || zmq_setsockopt(s.sock, ZMQ_SNDHWM, &hwm, sizeof hwm) ||
      zmq_setsockopt(s.sock, ZMQ_RCVHWM, &hwm, sizeof hwm) ||
      zmq_setsockopt(s.sock, ZMQ_LINGER, &linger, sizeof linger) ||
      zmq_connect(s.sock, o.endpoint)) {
    fprintf(stderr, "ledgerload: cannot connect to %s: %s\n", o.endpoint, zmq_strerror(errno));
    goto fail;
  }
  int64_t start_wall;
  double secs;
  if (run_load(&s, &o, &start_wall, &secs)) goto fail;
  ok = s.err == 0 && s.bad == 0;
  if (started) {
    started = 0;
    if (wait_sink(&pl, s.n_new, o.timeout_s)) ok = 0;
  }
  if (o.dump && write_dump(o.dump, &s, &o, o.sink_conninfo ? &pl : NULL)) ok = 0;
  print_summary(&s, &o, secs, o.sink_conninfo ? &pl : NULL, start_wall);
fail:
  if (started) {
    atomic_store(&pl.stop, 1);
    pthread_join(pl.th, NULL);
  }
  if (pl.conn) PQfinish(pl.conn);
  free(pl.lat);
  free(pl.seen);
  free(s.send_wall);
  free(s.ack_of);
  if (s.sock) zmq_close(s.sock);
  if (ctx) zmq_ctx_term(ctx);
  free(s.buf);
  free(s.value);
  free(s.sent_at);
  free(s.ack_lat);
  return ok ? 0 : 1;
}
