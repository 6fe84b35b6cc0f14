/* whistle-intake: the 12345 hotline feed. Wiring only: configuration,
 * migrations, registry, Postgres connections, the hotline server, the intake
 * stream, the retention purge timer, status, signals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "svc_daemon.h"
#include "svc_log.h"
#include "svc_migrate.h"
#include "svc_pg.h"
#include "svc_registry.h"
#include "svc_server.h"
#include "svc_status.h"
#include "svc_stream.h"

extern const struct svc_migration intake_migrations[];

#define KEY_MIN 16

/* Reads the pseudonym key file (trailing newlines dropped); its length, or -1. */
static long read_pseudonym_key(const char *path, uint8_t *key, size_t cap)
{
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(key, 1, cap, f) : 0;
  if (!f) return -1;
  fclose(f);
  while (n && (key[n - 1] == '\n' || key[n - 1] == '\r')) n--;
  return (long)n;
}

static int check_pseudonym_key(const char *path, char *err, size_t errlen)
{
  uint8_t key[256];
  long n = read_pseudonym_key(path, key, sizeof key);
  memset(key, 0, sizeof key);
  if (n >= KEY_MIN) return 0;
  snprintf(err, errlen, n < 0 ? "cannot be read" : "shorter than %d bytes", KEY_MIN);
  return -1;
}

static const struct svc_config_var vars[] = {
  { .name = "WHISTLE_INTAKE_HOTLINE", .def = "tcp://*:7101", .kind = SVC_CFG_ENDPOINT,
    .help = "Hotline interface endpoint (ROUTER; proto/hotline.proto)." },
  { .name = "WHISTLE_INTAKE_STREAM", .def = "tcp://*:7102", .kind = SVC_CFG_ENDPOINT,
    .help = "Intake stream endpoint (ROUTER; proto/stream.proto, proto/intake_events.proto)." },
  { .name = "WHISTLE_REGISTRY", .def = "deploy/registry", .kind = SVC_CFG_DIR,
    .check = svc_registry_check,
    .help = "Directory of registry CSV files (deploy/registry is an example); reloaded on SIGHUP." },
  { .name = "WHISTLE_PSEUDONYM_KEY", .def = "", .kind = SVC_CFG_FILE, .check = check_pseudonym_key,
    .needs = { "WHISTLE_CURVE" },
    .help = "File holding the secret key of caller pseudonyms (R-I6); required with CURVE on." },
  { .name = "WHISTLE_CLOCK", .def = "wall", .kind = SVC_CFG_ENUM, .choices = "wall|event",
    .help = "wall: now is the system clock; event: now moves only with event times (R-T3)." },
  { .name = "WHISTLE_RETENTION_DAYS", .def = "180", .kind = SVC_CFG_INT, .min = 1, .max = 36500,
    .help = "Days after closing that a caller's phone and name are kept (R-I6)." },
  { .name = "WHISTLE_PURGE_INTERVAL_S", .def = "3600", .kind = SVC_CFG_INT, .min = 1,
    .max = 86400, .help = "How often the retention purge runs." },
  { .name = "WHISTLE_STREAM_FULL_ACCESS", .def = "referral,rating", .kind = SVC_CFG_STRING,
    .help = "Identities that read the whole intake stream." },
  { .name = "WHISTLE_BATCH", .def = "1000", .kind = SVC_CFG_INT, .min = 1, .max = 100000,
    .help = "Most requests committed in one transaction." },
  { .name = "WHISTLE_REFERRAL_STREAM_AT", .def = "", .kind = SVC_CFG_STRING,
    .help = "Where referral's stream is (connect), for its closures (R-I5, R-I6); empty: none." },
  { .name = "WHISTLE_REFERRAL_SERVER_KEY", .def = "", .kind = SVC_CFG_FILE,
    .check = svc_curve_check_key_file, .needs = { "WHISTLE_CURVE", "WHISTLE_REFERRAL_STREAM_AT" },
    .help = "File holding referral's Z85 public key; required with CURVE on and a referral stream." },
  /* Required with CURVE on: the server's key and allowed clients; the client
   * key only to read referral's closures. */
  { .name = "WHISTLE_CURVE_SECRET_KEY", .needs = { "WHISTLE_CURVE" } },
  { .name = "WHISTLE_CURVE_ALLOWED_DIR", .needs = { "WHISTLE_CURVE" } },
  { .name = "WHISTLE_CURVE_CLIENT_KEY", .needs = { "WHISTLE_CURVE", "WHISTLE_REFERRAL_STREAM_AT" } },
  { .name = NULL },
};

struct intake {
  struct svc_daemon d;
  struct intake_ctx x;
  struct svc_pg *pgw, *pgr;
  struct svc_server *srv;
  struct svc_stream_consumer *closures; /* referral's ticket.closed, or NULL */
  uv_timer_t purge;
  int purging, stopping;   /* a purge chunk in flight; draining */
  uint64_t erasing;
  uint8_t key[256];
};

static int load_key(struct intake *in)
{
  const char *path = svc_daemon_str(&in->d, "WHISTLE_PSEUDONYM_KEY");
  if (!*path) {
    if (svc_zctx_curve(in->d.z)) {
      svc_error("WHISTLE_PSEUDONYM_KEY is required with CURVE on", "%s", "");
      return -1;
    }
    svc_warn("no pseudonym key: using the development key (pseudonyms are guessable)", "%s", "");
    memcpy(in->key, "whistle-development-key", 23);
    in->x.key = in->key;
    in->x.keylen = 23;
    return 0;
  }
  long n = read_pseudonym_key(path, in->key, sizeof in->key);
  if (n < KEY_MIN) {
    svc_error("pseudonym key file missing or shorter than 16 bytes", " path=%s", path);
    return -1;
  }
  in->x.key = in->key;
  in->x.keylen = (size_t)n;
  return 0;
}

static void purge_run(struct intake *in);

static void purge_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct intake *in = arg;
  (void)b;
  in->purging = 0;
  if (oc == SVC_PG_COMMITTED && in->erasing) {
    in->x.n.purged += in->erasing;
    svc_info("retention purge", " erased=%llu", (unsigned long long)in->erasing);
    if (in->erasing == INTAKE_PURGE_CHUNK) purge_run(in); /* more to erase: the next chunk */
  } else if (oc == SVC_PG_FAILED) {
    svc_warn("retention purge failed", " error=\"%s\"", err ? err : "");
  }
}

/* One chunk of the retention purge (R-I6); purge_done runs the next. */
static void purge_run(struct intake *in)
{
  /* R-T3: in wall mode the purge of personal data runs on the system clock
   * only, never on a clock that inputs could have moved. */
  int64_t now = in->x.clock.mode == SVC_CLOCK_WALL ? svc_wall_us() : svc_clock_now(&in->x.clock);
  if (!now || in->purging || in->stopping) return;
  int64_t cutoff = now - svc_daemon_int(&in->d, "WHISTLE_RETENTION_DAYS") * INTAKE_DAY_US;
  struct svc_pg_batch *b = svc_pg_batch_new(in->pgw, NULL, purge_done, in);
  if (!b) return;
  if (intake_store_purge(in->x.store, b, now, cutoff, &in->erasing)) {
    svc_pg_batch_discard(&b);
    return;
  }
  in->purging = 1;
  svc_pg_submit(b);
}

static void purge_cb(uv_timer_t *t)
{
  purge_run(t->data);
}

static void fill_status(void *arg, struct svc_status_out *o)
{
  struct intake *in = arg;
  svc_status_add(o, "intake.accepted", (int64_t)in->x.n.accepted);
  svc_status_add(o, "intake.duplicate", (int64_t)in->x.n.duplicate);
  svc_status_add(o, "intake.rejected", (int64_t)in->x.n.rejected);
  svc_status_add(o, "intake.triage", (int64_t)in->x.n.triage);
  svc_status_add(o, "intake.repeats", (int64_t)in->x.n.repeats);
  svc_status_add(o, "intake.feedback", (int64_t)in->x.n.feedback);
  svc_status_add(o, "intake.watermarks", (int64_t)in->x.n.watermarks);
  svc_status_add(o, "intake.purged", (int64_t)in->x.n.purged);
  svc_server_status(in->srv, "server", o);
  svc_stream_producer_status(in->x.prod, "stream", o);
  svc_pg_status(in->pgw, "pg", o);
  svc_status_add(o, "clock.now_us", svc_clock_now(&in->x.clock));
  svc_status_add(o, "clock.ahead_us", svc_clock_ahead_us(&in->x.clock));
  if (in->closures) svc_stream_consumer_status(in->closures, "closures", o);
}

static void finish(void *arg)
{
  struct intake *in = arg;
  uv_timer_stop(&in->purge);
  uv_close((uv_handle_t *)&in->purge, NULL);
  svc_pg_destroy(&in->pgw);
  svc_pg_destroy(&in->pgr);
  svc_server_destroy(&in->srv);
  svc_stream_consumer_destroy(&in->closures);
  svc_stream_producer_destroy(&in->x.prod);
  intake_store_destroy(&in->x.store);
  svc_registry_destroy(&in->x.reg);
  intake_handlers_free(&in->x);
  svc_daemon_close(&in->d);
}

static void on_stop(void *arg)
{
  struct intake *in = arg;
  in->stopping = 1;
  svc_stream_producer_stop(in->x.prod);
  struct svc_drain_step steps[] = { svc_drain_consumer(in->closures), svc_drain_server(in->srv) };
  svc_daemon_drain(&in->d, steps, 2, finish, in);
}

/* Reads referral's stream for closures when WHISTLE_REFERRAL_STREAM_AT is set.
 * Its batches run on the write connection, after the hotline's. 0 or -1. */
static int start_closures(struct intake *in)
{
  const char *at = svc_daemon_str(&in->d, "WHISTLE_REFERRAL_STREAM_AT");
  char key[SVC_Z85_KEY_LEN + 1];
  if (!*at) return 0;
  if (svc_daemon_server_key(&in->d, "WHISTLE_REFERRAL_SERVER_KEY", key)) return -1;
  struct svc_pg_stmt *st = intake_store_prepare_closed(in->pgw);
  struct svc_stream_consumer_opts co = { .endpoint = at, .consumer = "intake",
                                         .producer = "referral",
                                         .server_key = key[0] ? key : NULL };
  in->closures = st ? svc_stream_consumer_new(&in->d.loop, in->d.z, in->pgw, &co,
                                              intake_closure_apply, st) : NULL;
  return in->closures ? 0 : -1;
}

static void on_reload(void *arg)
{
  struct intake *in = arg;
  svc_daemon_registry(&in->d, &in->x.reg, 1); /* on failure the old registry stays */
  svc_zctx_reload(in->d.z);
}

int main(int argc, char **argv)
{
  static struct intake in;
  int rc = svc_daemon_init(&in.d, argc, argv, "intake",
                           "whistle-intake: takes 12345 hotline tickets, classifies them and "
                           "publishes the intake stream.", vars);
  if (rc) return rc > 0 ? 0 : 2;
  svc_daemon_clock(&in.d, &in.x.clock);
  if (load_key(&in) || svc_daemon_registry(&in.d, &in.x.reg, 0)) return 2;
  const char *pg = svc_daemon_str(&in.d, "WHISTLE_PG");
  if (svc_migrate(pg, "intake", intake_migrations, (int)svc_daemon_int(&in.d, "WHISTLE_PG_WAIT_S")))
    return svc_stop_requested() ? 0 : 1;
  int64_t latest;
  if (intake_scrub(pg) || intake_store_load_clock(pg, &in.x.watermark_us, &latest)) return 1;
  svc_clock_observe(&in.x.clock, latest > in.x.watermark_us ? latest : in.x.watermark_us);
  svc_daemon_clock_restored(&in.x.clock);
  in.pgw = svc_pg_new(&in.d.loop, "write", pg);
  in.pgr = svc_pg_new(&in.d.loop, "read", pg);
  in.x.store = in.pgw ? intake_store_new(in.pgw) : NULL;
  struct svc_stream_producer_opts po = {
    .endpoint = svc_daemon_str(&in.d, "WHISTLE_INTAKE_STREAM"), .name = "intake",
    .full_access = svc_daemon_str(&in.d, "WHISTLE_STREAM_FULL_ACCESS"),
  };
  in.x.prod = in.pgr ? svc_stream_producer_new(&in.d.loop, in.d.z, in.pgw, in.pgr, &po) : NULL;
  struct svc_server_opts so = { .endpoint = svc_daemon_str(&in.d, "WHISTLE_INTAKE_HOTLINE"),
                                .max_batch = (size_t)svc_daemon_int(&in.d, "WHISTLE_BATCH"),
                                .producer = in.x.prod };
  in.srv = in.x.prod && in.x.store
             ? svc_server_new(&in.d.loop, in.d.z, in.pgw, &so, &intake_hotline_ops, &in.x) : NULL;
  uv_timer_init(&in.d.loop, &in.purge);
  in.purge.data = &in;
  uint64_t every = (uint64_t)svc_daemon_int(&in.d, "WHISTLE_PURGE_INTERVAL_S") * 1000;
  uv_timer_start(&in.purge, purge_cb, every, every);
  if (!in.srv || start_closures(&in) || svc_daemon_status(&in.d, fill_status, &in) ||
      svc_daemon_signals(&in.d, on_stop, on_reload, &in)) {
    in.d.exit_code = 1;
    finish(&in);
  } else {
    svc_info("ready", " hotline=%s stream=%s clock=%s", so.endpoint, po.endpoint,
             svc_daemon_str(&in.d, "WHISTLE_CLOCK"));
  }
  return svc_daemon_run(&in.d);
}
