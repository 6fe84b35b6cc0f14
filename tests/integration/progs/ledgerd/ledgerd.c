/* ledgerd: a minimal real service on the svc_ library, for the foundation's
 * integration, fault and bench runs. It takes Put requests through the
 * group-commit server, records each new key in its schema and publishes one
 * stream event per new key, exactly as a business daemon would. */
#include <stdlib.h>
#include <string.h>

#include "ledger.pb-c.h"
#include "svc_alloc.h"
#include "svc_csv.h"
#include "svc_daemon.h"
#include "svc_log.h"
#include "svc_migrate.h"
#include "svc_pg.h"
#include "svc_server.h"
#include "svc_status.h"
#include "svc_stream.h"
#include "svc_time.h"

static const struct svc_migration migrations[] = {
  { "001_ledger",
    "CREATE TABLE ledger (id bigserial PRIMARY KEY, key text NOT NULL UNIQUE,"
    " value bytea NOT NULL, addressee text NOT NULL,"
    /* A constraint only some requests violate: the group-commit server must
     * isolate such a request instead of failing its whole batch. */
    " CONSTRAINT no_poison CHECK (key NOT LIKE 'poison%'))" },
  { NULL, NULL },
};

static const struct svc_config_var vars[] = {
  { .name = "WHISTLE_LEDGER_RPC", .def = "ipc:///tmp/whistle-ledger-rpc", .kind = SVC_CFG_ENDPOINT,
    .help = "Request endpoint (ROUTER) for Put requests." },
  { .name = "WHISTLE_LEDGER_STREAM", .def = "ipc:///tmp/whistle-ledger-stream",
    .kind = SVC_CFG_ENDPOINT, .help = "Stream endpoint (ROUTER) for subscribers." },
  { .name = "WHISTLE_SCHEMA", .def = "t_ledger", .kind = SVC_CFG_STRING,
    .help = "The schema this daemon owns." },
  { .name = "WHISTLE_STREAM_FULL_ACCESS", .def = "", .kind = SVC_CFG_STRING,
    .help = "Comma-separated identities that see every event." },
  { .name = "WHISTLE_STREAM_MAX_WINDOW", .def = "10000", .kind = SVC_CFG_INT, .min = 1,
    .max = 100000, .help = "Cap on a subscriber's window." },
  { .name = "WHISTLE_WATERMARK_MS", .def = "0", .kind = SVC_CFG_INT, .min = 0, .max = 3600000,
    .help = "Commit a wall-clock watermark this often (0: never)." },
  { .name = "WHISTLE_LEDGER_BULK", .def = "1", .kind = SVC_CFG_BOOL,
    .help = "Stage each batch as one bulk INSERT (1) or one INSERT per request (0)." },
  { .name = "WHISTLE_LEDGER_STORE", .def = "1", .kind = SVC_CFG_BOOL,
    .help = "Record keys in the ledger table (1), or only append stream events (0: every Put is NEW; for measuring the stream alone)." },
  { .name = "WHISTLE_BATCH", .def = "1000", .kind = SVC_CFG_INT, .min = 1, .max = 100000,
    .help = "Most requests per transaction." },
  { .name = NULL },
};

struct ledgerd {
  struct svc_daemon d;
  struct svc_pg *pgw, *pgr;
  struct svc_stream_producer *prod;
  struct svc_server *srv;
  struct svc_pg_stmt *insert, *bulk;
  int store; /* record keys in the ledger table */
};

struct put {
  Whistle__Test__PutReply__Status status;
  uint64_t req_id, row_id;
  int64_t event_us;
  char *key, *addressee;
  uint8_t *value;
  size_t value_len;
};

static void reply(struct svc_req *req, uint64_t req_id, Whistle__Test__PutReply__Status st,
                  uint64_t row_id, const char *reason)
{
  Whistle__Test__PutReply r = WHISTLE__TEST__PUT_REPLY__INIT;
  r.req_id = req_id;
  r.status = st;
  r.row_id = row_id;
  r.reason = (char *)(reason ? reason : "");
  Whistle__Test__LedgerMessage m = WHISTLE__TEST__LEDGER_MESSAGE__INIT;
  m.version = 1;
  m.body_case = WHISTLE__TEST__LEDGER_MESSAGE__BODY_REPLY;
  m.reply = &r;
  uint8_t buf[1024];
  size_t len = whistle__test__ledger_message__get_packed_size(&m);
  if (len > sizeof buf) return;
  whistle__test__ledger_message__pack(&m, buf);
  svc_req_reply(req, buf, len);
}

static int valid_addressee(const char *a)
{
  size_t n = strlen(a);
  if (n > 127) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = a[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-' || c == '.' || c == '*'))
      return 0;
  }
  return 1;
}

static int on_decode(void *arg, struct svc_req *req, const uint8_t *frame, size_t len)
{
  struct ledgerd *l = arg;
  struct svc_pballoc al;
  int bad_strings;
  Whistle__Test__LedgerMessage *m = (Whistle__Test__LedgerMessage *)svc_pb_unpack(
    &whistle__test__ledger_message__descriptor, &al, 256 * 1024, frame, len, &bad_strings);
  const char *bad = NULL;
  if (!m) bad = "not a LedgerMessage";
  else if (bad_strings) bad = "string fields must be UTF-8 without NUL";
  else if (m->version != 1) bad = "unsupported version";
  else if (m->body_case != WHISTLE__TEST__LEDGER_MESSAGE__BODY_PUT) bad = "expected Put";
  else if (!m->put->key[0] || strlen(m->put->key) > 200 ||
           !svc_utf8_valid(m->put->key, strlen(m->put->key)))
    bad = "key must be 1-200 bytes of UTF-8";
  else if (m->put->value.len > 65536) bad = "value over 64 KiB";
  else if (!valid_addressee(m->put->addressee)) bad = "bad addressee";
  uint64_t req_id = m && m->body_case == WHISTLE__TEST__LEDGER_MESSAGE__BODY_PUT ? m->put->req_id : 0;
  if (bad) {
    svc_server_count_rejected(l->srv);
    if (m) whistle__test__ledger_message__free_unpacked(m, &al.a);
    reply(req, req_id, WHISTLE__TEST__PUT_REPLY__STATUS__BAD, 0, bad);
    return 1;
  }
  struct put *p = calloc(1, sizeof *p);
  if (p) {
    p->req_id = req_id;
    p->key = strdup(m->put->key);
    p->addressee = strdup(m->put->addressee);
    p->value_len = m->put->value.len;
    p->value = malloc(p->value_len + 1);
    p->event_us = m->put->event_us ? m->put->event_us : svc_wall_us();
    if (p->value && p->value_len) memcpy(p->value, m->put->value.data, p->value_len);
  }
  whistle__test__ledger_message__free_unpacked(m, &al.a);
  if (!p || !p->key || !p->addressee || !p->value) {
    if (p) { free(p->key); free(p->addressee); free(p->value); free(p); }
    return -1;
  }
  req->data = p;
  return 0;
}

static void insert_result(void *arg, const PGresult *r)
{
  struct put *p = arg;
  if (PQntuples(r) == 1) {
    p->status = WHISTLE__TEST__PUT_REPLY__STATUS__NEW;
    p->row_id = (uint64_t)svc_pg_get_i64(r, 0, 0);
  }
}

static int on_stage(void *arg, struct svc_req *req, struct svc_pg_batch *b)
{
  struct ledgerd *l = arg;
  struct put *p = req->data;
  p->status = WHISTLE__TEST__PUT_REPLY__STATUS__DUPLICATE;
  p->row_id = 0;
  const char *v[3] = { p->key, (const char *)p->value, p->addressee };
  int len[3] = { (int)strlen(p->key), (int)p->value_len, (int)strlen(p->addressee) };
  int fmt[3] = { 0, 1, 0 };
  return svc_pg_batch_add(b, l->insert, 3, v, len, fmt, 1, insert_result, p);
}

/* The bulk path: one INSERT ... SELECT FROM unnest for the whole batch; the
 * returned keys say which requests were new (the first of equal keys). */
struct bulk_ctx {
  size_t n;
  struct put **puts; /* sorted by key, then arrival */
};

static int cmp_put(const void *a, const void *b)
{
  const struct put *x = *(struct put *const *)a, *y = *(struct put *const *)b;
  int c = strcmp(x->key, y->key);
  return c ? c : (x->req_id < y->req_id ? -1 : x->req_id > y->req_id);
}

static void bulk_result(void *arg, const PGresult *r)
{
  struct bulk_ctx *c = arg;
  for (int i = 0; i < PQntuples(r); i++) {
    const char *key = PQgetvalue(r, i, 0);
    size_t lo = 0, hi = c->n;
    while (lo < hi) { /* the first put with this key */
      size_t mid = (lo + hi) / 2;
      if (strcmp(c->puts[mid]->key, key) < 0) lo = mid + 1; else hi = mid;
    }
    if (lo < c->n && strcmp(c->puts[lo]->key, key) == 0) {
      c->puts[lo]->status = WHISTLE__TEST__PUT_REPLY__STATUS__NEW;
      c->puts[lo]->row_id = (uint64_t)svc_pg_get_i64(r, i, 1);
    }
  }
}

static void bulk_free(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct bulk_ctx *c = arg;
  (void)b;
  (void)oc;
  (void)err;
  free(c->puts);
  free(c);
}

static int on_stage_batch(void *arg, struct svc_req *const *reqs, size_t n, struct svc_pg_batch *b)
{
  struct ledgerd *l = arg;
  if (!l->store) { /* events only: every Put is new */
    for (size_t i = 0; i < n; i++) {
      struct put *p = reqs[i]->data;
      p->status = WHISTLE__TEST__PUT_REPLY__STATUS__NEW;
      p->row_id = 0;
    }
    return 0;
  }
  struct bulk_ctx *c = calloc(1, sizeof *c);
  struct put **puts = malloc(n * sizeof *puts);
  if (!c || !puts) {
    free(c);
    free(puts);
    return -1;
  }
  struct svc_pgarr a[3];
  svc_pgarr_init(&a[0], SVC_OID_TEXT);
  svc_pgarr_init(&a[1], SVC_OID_BYTEA);
  svc_pgarr_init(&a[2], SVC_OID_TEXT);
  for (size_t i = 0; i < n; i++) {
    struct put *p = reqs[i]->data;
    p->status = WHISTLE__TEST__PUT_REPLY__STATUS__DUPLICATE;
    p->row_id = 0;
    puts[i] = p;
    svc_pgarr_add(&a[0], p->key, strlen(p->key));
    svc_pgarr_add(&a[1], p->value, p->value_len);
    svc_pgarr_add(&a[2], p->addressee, strlen(p->addressee));
  }
  qsort(puts, n, sizeof *puts, cmp_put);
  c->n = n;
  c->puts = puts;
  int rc = 0;
  const char *v[3];
  int len[3], fmt[3] = { 1, 1, 1 };
  for (int i = 0; i < 3; i++) {
    rc |= svc_pgarr_finish(&a[i]);
    v[i] = a[i].buf;
    len[i] = (int)a[i].len;
  }
  if (rc == 0) rc = svc_pg_batch_add(b, l->bulk, 3, v, len, fmt, 0, bulk_result, c);
  for (int i = 0; i < 3; i++) svc_pgarr_free(&a[i]);
  if (rc != 0) {
    bulk_free(b, SVC_PG_RETRY, NULL, c);
    return -1;
  }
  if (svc_pg_batch_hook(b, bulk_free, c)) {
    bulk_free(b, SVC_PG_RETRY, NULL, c);
    return -1;
  }
  return 0;
}

static int on_stage_next(void *arg, struct svc_req *req, struct svc_pg_batch *b, int n)
{
  struct ledgerd *l = arg;
  struct put *p = req->data;
  (void)n;
  if (p->status == WHISTLE__TEST__PUT_REPLY__STATUS__NEW &&
      svc_stream_append(l->prod, b, p->event_us, "ledger.put", p->addressee, p->key, strlen(p->key)))
    return -1;
  return 0;
}

static void on_committed(void *arg, struct svc_req *req)
{
  struct put *p = req->data;
  (void)arg;
  reply(req, p->req_id, p->status, p->row_id, NULL);
}

static void on_failed(void *arg, struct svc_req *req, const char *why)
{
  struct put *p = req->data;
  (void)arg;
  reply(req, p->req_id, WHISTLE__TEST__PUT_REPLY__STATUS__ERROR, 0, why);
}

static void on_release(void *arg, struct svc_req *req)
{
  struct put *p = req->data;
  (void)arg;
  if (!p) return;
  free(p->key);
  free(p->addressee);
  free(p->value);
  free(p);
}

static const struct svc_server_ops bulk_ops = {
  .decode = on_decode, .stage_batch = on_stage_batch, .stage_next = on_stage_next,
  .committed = on_committed, .failed = on_failed, .release = on_release,
};

static const struct svc_server_ops ops = {
  .decode = on_decode, .stage = on_stage, .stage_next = on_stage_next, .committed = on_committed,
  .failed = on_failed, .release = on_release,
};

static void fill_status(void *arg, struct svc_status_out *o)
{
  struct ledgerd *l = arg;
  svc_server_status(l->srv, "server", o);
  svc_stream_producer_status(l->prod, "stream", o);
  svc_pg_status(l->pgw, "pg", o);
}

static int64_t wall_watermark(void *arg)
{
  (void)arg;
  return svc_wall_us();
}

static void finish(void *arg)
{
  struct ledgerd *l = arg;
  svc_pg_destroy(&l->pgw);
  svc_pg_destroy(&l->pgr);
  svc_server_destroy(&l->srv);
  svc_stream_producer_destroy(&l->prod);
  svc_daemon_close(&l->d);
}

static void on_stop(void *arg)
{
  struct ledgerd *l = arg;
  svc_info("draining", "%s", "");
  svc_stream_producer_stop(l->prod);
  svc_server_drain(l->srv, finish, l);
}

static void on_reload(void *arg)
{
  struct ledgerd *l = arg;
  svc_zctx_reload(l->d.z);
}

int main(int argc, char **argv)
{
  static struct ledgerd l;
  int rc = svc_daemon_init(&l.d, argc, argv, "ledgerd", "Test ledger service.", vars);
  if (rc) return rc > 0 ? 0 : 2;
  const char *pg = svc_daemon_str(&l.d, "WHISTLE_PG");
  if (svc_migrate(pg, svc_daemon_str(&l.d, "WHISTLE_SCHEMA"), migrations,
                  (int)svc_daemon_int(&l.d, "WHISTLE_PG_WAIT_S")))
    return 1;
  l.pgw = svc_pg_new(&l.d.loop, "write", pg);
  l.pgr = svc_pg_new(&l.d.loop, "read", pg);
  l.insert = svc_pg_prepare(l.pgw, "INSERT INTO ledger (key, value, addressee) VALUES ($1, $2, $3)"
                                   " ON CONFLICT (key) DO NOTHING RETURNING id", 3, NULL);
  struct svc_stream_producer_opts po = {
    .endpoint = svc_daemon_str(&l.d, "WHISTLE_LEDGER_STREAM"), .name = "ledger",
    .full_access = svc_daemon_str(&l.d, "WHISTLE_STREAM_FULL_ACCESS"),
    .max_window = (uint32_t)svc_daemon_int(&l.d, "WHISTLE_STREAM_MAX_WINDOW"),
    .watermark_ms = (int)svc_daemon_int(&l.d, "WHISTLE_WATERMARK_MS"),
    .watermark_fn = wall_watermark,
  };
  l.prod = svc_stream_producer_new(&l.d.loop, l.d.z, l.pgw, l.pgr, &po);
  struct svc_server_opts so = { .endpoint = svc_daemon_str(&l.d, "WHISTLE_LEDGER_RPC"),
                                .max_batch = (size_t)svc_daemon_int(&l.d, "WHISTLE_BATCH"),
                                .producer = l.prod };
  l.bulk = svc_pg_prepare(l.pgw, "INSERT INTO ledger (key, value, addressee)"
                                 " SELECT * FROM unnest($1::text[], $2::bytea[], $3::text[])"
                                 " ON CONFLICT (key) DO NOTHING RETURNING key, id", 3, NULL);
  l.store = (int)svc_daemon_int(&l.d, "WHISTLE_LEDGER_STORE");
  const struct svc_server_ops *o =
    svc_daemon_int(&l.d, "WHISTLE_LEDGER_BULK") || !l.store ? &bulk_ops : &ops;
  l.srv = l.prod ? svc_server_new(&l.d.loop, l.d.z, l.pgw, &so, o, &l) : NULL;
  if (!l.pgw || !l.pgr || !l.insert || !l.prod || !l.srv || svc_daemon_status(&l.d, fill_status, &l) ||
      svc_daemon_signals(&l.d, on_stop, on_reload, &l)) {
    l.d.exit_code = 1;
    finish(&l);
  } else {
    svc_info("ready", " rpc=%s stream=%s", so.endpoint, po.endpoint);
  }
  return svc_daemon_run(&l.d);
}
