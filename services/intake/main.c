/* whistle-intake: the 12345 hotline feed. Wiring only: configuration,
 * migrations, registry, Postgres connections, the hotline server, the intake
 * stream (with its wall-clock watermarks), the retention purge timer, status,
 * signals. */
#include "intake.h"
#include "svc_daemon.h"
#include "svc_log.h"
#include "svc_registry.h"

extern const struct svc_migration intake_migrations[];

static const struct svc_config_var vars[] = {
  { .name = "WHISTLE_INTAKE_HOTLINE", .def = "tcp://*:7101", .kind = SVC_CFG_ENDPOINT,
    .help = "Hotline interface endpoint (ROUTER; proto/hotline.proto)." },
  { .name = "WHISTLE_INTAKE_STREAM", .def = "tcp://*:7102", .kind = SVC_CFG_ENDPOINT,
    .help = "Intake stream endpoint (ROUTER; proto/stream.proto, proto/intake_events.proto)." },
  { .name = "WHISTLE_REGISTRY", .def = "deploy/registry", .kind = SVC_CFG_DIR,
    .check = svc_registry_check,
    .help = "Directory of registry CSV files (deploy/registry is an example); reloaded on SIGHUP." },
  { .name = "WHISTLE_PSEUDONYM_KEY", .def = "", .kind = SVC_CFG_FILE, .check = intake_key_check,
    .needs = { "WHISTLE_CURVE" },
    .help = "File holding the secret key of caller pseudonyms (R-I6); required with CURVE on." },
  { .name = "WHISTLE_CLOCK", .def = "wall", .kind = SVC_CFG_ENUM, .choices = "wall|event",
    .help = "wall: now is the system clock; event: now moves only with event times (R-T3)." },
  { .name = "WHISTLE_WATERMARK_MS", .def = "1000", .kind = SVC_CFG_INT, .min = 10, .max = 3600000,
    .help = "wall mode: how often intake publishes its own watermark, at the system clock (R-T3)." },
  { .name = "WHISTLE_WATERMARK_LAG_S", .def = "0", .kind = SVC_CFG_INT, .min = 0, .max = 86400,
    .help = "wall mode: how far that watermark trails the system clock; an input accepted later "
            "with an earlier time is published at the watermark, its payload unchanged (R-T3)." },
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
  uv_timer_t purge_timer;
  struct intake_purge purge;
  uint8_t key[INTAKE_KEY_MAX];
};

static void purge_cb(uv_timer_t *t)
{
  intake_purge_run(t->data);
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
  svc_stream_producer_output(in->x.prod, "intake", intake_last_watermark(&in->x), o);
  if (in->closures) svc_stream_consumer_input(in->closures, "referral", 0, 0, o);
}

/* What the library does not tear down: the store and the handlers' state. */
static void release(void *arg)
{
  struct intake *in = arg;
  intake_store_destroy(&in->x.store);
  intake_handlers_free(&in->x);
}

/* Reads referral's stream for closures when WHISTLE_REFERRAL_STREAM_AT is set.
 * Its batches run on the write connection, after the hotline's. 0 or -1. */
static int start_closures(struct intake *in)
{
  if (!*svc_daemon_str(&in->d, "WHISTLE_REFERRAL_STREAM_AT")) return 0;
  struct svc_pg_stmt *st = intake_store_prepare_closed(in->pgw);
  struct svc_stream_consumer_opts co = { .consumer = "intake", .producer = "referral" };
  in->closures = st ? svc_daemon_consumer(&in->d, "WHISTLE_REFERRAL_STREAM_AT",
                                          "WHISTLE_REFERRAL_SERVER_KEY", in->pgw, &co,
                                          intake_closure_apply, st) : NULL;
  return in->closures ? 0 : -1;
}

int main(int argc, char **argv)
{
  static struct intake in;
  int rc = svc_daemon_init(&in.d, argc, argv, "intake",
                           "whistle-intake: takes 12345 hotline tickets, classifies them and "
                           "publishes the intake stream.", vars);
  if (rc) return rc > 0 ? 0 : 2;
  svc_daemon_on_release(&in.d, release, &in);
  svc_daemon_clock(&in.d, &in.x.clock);
  in.x.key = in.key;
  if (intake_key_load(svc_daemon_str(&in.d, "WHISTLE_PSEUDONYM_KEY"), svc_zctx_curve(in.d.z), in.key,
                      &in.x.keylen) || svc_daemon_registry(&in.d, &in.x.reg, 0))
    return svc_daemon_abort(&in.d, 2);
  const char *pg = svc_daemon_str(&in.d, "WHISTLE_PG");
  int64_t latest;
  if (svc_daemon_open_pg(&in.d, "intake", intake_migrations, &in.pgw, &in.pgr) ||
      intake_scrub(pg) || intake_store_load_clock(pg, &in.x.watermark_us, &latest))
    return svc_daemon_abort(&in.d, 1);
  svc_clock_observe(&in.x.clock, latest > in.x.watermark_us ? latest : in.x.watermark_us);
  svc_daemon_clock_restored(&in.x.clock);
  in.x.store = intake_store_new(in.pgw);
  struct svc_stream_producer_opts po = { .name = "intake" };
  if (in.x.clock.mode == SVC_CLOCK_WALL) { /* R-T3: intake's watermark follows the wall clock */
    po.watermark_ms = (int)svc_daemon_int(&in.d, "WHISTLE_WATERMARK_MS");
    po.watermark_fn = intake_wall_watermark;
    po.watermark_arg = &in.x;
    in.x.watermark_lag_us = svc_daemon_int(&in.d, "WHISTLE_WATERMARK_LAG_S") * 1000000;
  }
  in.x.prod = svc_daemon_producer(&in.d, "WHISTLE_INTAKE_STREAM", in.pgw, in.pgr, &po);
  struct svc_server_opts so = { .max_batch = (size_t)svc_daemon_int(&in.d, "WHISTLE_BATCH"),
                                .producer = in.x.prod };
  in.srv = in.x.prod && in.x.store ? svc_daemon_server(&in.d, "WHISTLE_INTAKE_HOTLINE", in.pgw,
                                                       &so, &intake_hotline_ops, &in.x) : NULL;
  in.purge = (struct intake_purge){
    .x = &in.x, .pg = in.pgw, .stopping = &in.d.stopping,
    .retention_us = svc_daemon_int(&in.d, "WHISTLE_RETENTION_DAYS") * INTAKE_DAY_US };
  uint64_t every = (uint64_t)svc_daemon_int(&in.d, "WHISTLE_PURGE_INTERVAL_S") * 1000;
  if (!in.srv || svc_daemon_timer(&in.d, &in.purge_timer, purge_cb, &in.purge, every) ||
      start_closures(&in) || svc_daemon_serve(&in.d, fill_status, &in))
    return svc_daemon_abort(&in.d, 1);
  svc_info("ready", " hotline=%s stream=%s clock=%s", svc_daemon_str(&in.d, "WHISTLE_INTAKE_HOTLINE"),
           svc_daemon_str(&in.d, "WHISTLE_INTAKE_STREAM"), svc_daemon_str(&in.d, "WHISTLE_CLOCK"));
  return svc_daemon_run(&in.d);
}
