/* whistle-referral: street whistles, departments report (吹哨报到). Wiring
 * only: configuration, migrations, registry, the one write connection every
 * batch runs on, the intake stream consumer, the unit interface, the
 * referral stream, the clock timer, status and signals. */
#include <stdio.h>

#include "referral.h"
#include "svc_daemon.h"
#include "svc_log.h"
#include "svc_registry.h"

extern const struct svc_migration referral_migrations[];

static const struct svc_config_var vars[] = {
  { .name = "WHISTLE_REFERRAL_UNITS", .def = "tcp://*:7201", .kind = SVC_CFG_ENDPOINT,
    .help = "Unit interface endpoint (ROUTER; proto/unit.proto)." },
  { .name = "WHISTLE_REFERRAL_STREAM", .def = "tcp://*:7202", .kind = SVC_CFG_ENDPOINT,
    .help = "Referral stream endpoint (ROUTER; proto/stream.proto, proto/referral_events.proto)." },
  { .name = "WHISTLE_INTAKE_STREAM_AT", .def = "tcp://127.0.0.1:7102", .kind = SVC_CFG_ENDPOINT,
    .help = "Where intake's stream is (connect)." },
  { .name = "WHISTLE_INTAKE_SERVER_KEY", .def = "", .kind = SVC_CFG_FILE,
    .check = svc_curve_check_key_file, .needs = { "WHISTLE_CURVE" },
    .help = "File holding intake's Z85 public key; required with CURVE on." },
  { .name = "WHISTLE_REGISTRY", .def = "deploy/registry", .kind = SVC_CFG_DIR,
    .check = svc_registry_check,
    .help = "Directory of registry CSV files (deploy/registry is an example); reloaded on SIGHUP." },
  { .name = "WHISTLE_CLOCK", .def = "wall", .kind = SVC_CFG_ENUM, .choices = "wall|event",
    .help = "wall: clocks run on the system clock and intake's watermarks; event: on intake's "
            "watermarks only (R-T3)." },
  { .name = "WHISTLE_STREAM_FULL_ACCESS", .def = "rating,escalation,intake", .kind = SVC_CFG_STRING,
    .help = "Identities that read the whole referral stream (intake: for closures)." },
  { .name = "WHISTLE_REFERRAL_OPERATORS", .def = "operator", .kind = SVC_CFG_STRING,
    .help = "Identities allowed to re-dispatch returned steps (comma-separated; CURVE on)." },
  { .name = "WHISTLE_REFERRAL_OPS", .def = "ops", .kind = SVC_CFG_STRING,
    .help = "Identities allowed to query every ticket on the unit interface (comma-separated; "
            "CURVE on): units see only their own steps (R-R5)." },
  { .name = "WHISTLE_REFERRAL_ACT_AS", .def = "", .kind = SVC_CFG_STRING,
    .help = "Identities allowed to send a unit's updates as the unit StepUpdate.unit names, for "
            "replaying a scenario with CURVE on (comma-separated; default none)." },
  { .name = "WHISTLE_BATCH", .def = "1000", .kind = SVC_CFG_INT, .min = 1, .max = 100000,
    .help = "Most requests or events committed in one transaction." },
  { .name = "WHISTLE_TICK_MS", .def = "1000", .kind = SVC_CFG_INT, .min = 10, .max = 60000,
    .help = "How often the clocks are moved in wall mode (and watermarks published)." },
  /* Required with CURVE on: it serves units and reads intake's stream. */
  { .name = "WHISTLE_CURVE_SECRET_KEY", .needs = { "WHISTLE_CURVE" } },
  { .name = "WHISTLE_CURVE_ALLOWED_DIR", .needs = { "WHISTLE_CURVE" } },
  { .name = "WHISTLE_CURVE_CLIENT_KEY", .needs = { "WHISTLE_CURVE" } },
  { .name = NULL },
};

struct referral {
  struct svc_daemon d;
  struct referral_ctx x;
  struct svc_pg *pgw, *pgr;
  struct svc_server *srv;
  struct svc_stream_consumer *cons;
  uv_timer_t tick;
};

static void tick_cb(uv_timer_t *t)
{
  struct referral *rf = t->data;
  if (!rf->d.stopping) referral_clock_run(&rf->x);
}

static void fill_status(void *arg, struct svc_status_out *o)
{
  struct referral *rf = arg;
  struct referral_counters *n = &rf->x.n;
  svc_status_add(o, "referral.tickets", (int64_t)n->tickets);
  svc_status_add(o, "referral.steps", (int64_t)n->steps);
  svc_status_add(o, "referral.updates", (int64_t)n->updates);
  svc_status_add(o, "referral.refused", (int64_t)n->refused);
  svc_status_add(o, "referral.duplicates", (int64_t)n->duplicates);
  svc_status_add(o, "referral.redispatches", (int64_t)n->redispatches);
  svc_status_add(o, "referral.feedback", (int64_t)n->feedback);
  svc_status_add(o, "referral.warnings", (int64_t)n->warnings);
  svc_status_add(o, "referral.overdue", (int64_t)n->overdue);
  svc_status_add(o, "referral.closed", (int64_t)n->closed);
  svc_status_add(o, "referral.violations", (int64_t)n->violations);
  svc_status_add(o, "referral.notes", (int64_t)n->notes);
  svc_server_status(rf->srv, "server", o);
  svc_stream_producer_status(rf->x.prod, "stream", o);
  svc_stream_consumer_status(rf->cons, "intake", o);
  svc_status_add(o, "clock.in_watermark_us", rf->x.in_watermark_us);
  svc_status_add(o, "clock.ahead_us", svc_clock_ahead_us(&rf->x.clock));
  svc_status_add(o, "clock.out_watermark_us", rf->x.out_watermark_us);
  svc_stream_producer_output(rf->x.prod, "referral", rf->x.out_watermark_us, o);
  svc_stream_consumer_input(rf->cons, "intake", rf->x.in_watermark_us, 1, o);
  svc_pg_status(rf->pgw, "pg", o);
}

/* What the library does not tear down: the store and the handlers' state. */
static void release(void *arg)
{
  struct referral *rf = arg;
  referral_store_destroy(&rf->x.store);
  referral_handlers_free(&rf->x);
}

/* Every batch runs on pgw: the consumer's, the server's and the clock's, one
 * after the other, so each sees the others' committed tickets. 0 or -1. */
static int start(struct referral *rf)
{
  if (!(rf->x.store = referral_store_new(rf->pgw)) || referral_handlers_init(&rf->x)) return -1;
  rf->x.pg = rf->pgw;
  struct svc_stream_producer_opts po = { .name = "referral" };
  rf->x.prod = svc_daemon_producer(&rf->d, "WHISTLE_REFERRAL_STREAM", rf->pgw, rf->pgr, &po);
  if (!rf->x.prod) return -1;
  size_t batch = (size_t)svc_daemon_int(&rf->d, "WHISTLE_BATCH");
  struct svc_stream_consumer_opts co = { .consumer = "referral", .producer = "intake",
                                         .max_batch = batch };
  rf->cons = svc_daemon_consumer(&rf->d, "WHISTLE_INTAKE_STREAM_AT", "WHISTLE_INTAKE_SERVER_KEY",
                                 rf->pgw, &co, referral_intake_apply, &rf->x);
  if (!rf->cons) return -1;
  svc_stream_consumer_stages(rf->cons, referral_intake_apply_next, rf->x.prod);
  struct svc_server_opts so = { .max_batch = batch, .producer = rf->x.prod };
  rf->srv = svc_daemon_server(&rf->d, "WHISTLE_REFERRAL_UNITS", rf->pgw, &so, &referral_unit_ops,
                              &rf->x);
  return rf->srv ? svc_daemon_timer(&rf->d, &rf->tick, tick_cb, rf,
                                    (uint64_t)svc_daemon_int(&rf->d, "WHISTLE_TICK_MS")) : -1;
}

int main(int argc, char **argv)
{
  static struct referral rf;
  int rc = svc_daemon_init(&rf.d, argc, argv, "referral",
                           "whistle-referral: turns tickets into referral steps for departments "
                           "and streets, runs their clocks and publishes the referral stream.",
                           vars);
  if (rc) return rc > 0 ? 0 : 2;
  svc_daemon_on_release(&rf.d, release, &rf);
  svc_daemon_clock(&rf.d, &rf.x.clock);
  rf.x.curve = svc_zctx_curve(rf.d.z);
  snprintf(rf.x.operators, sizeof rf.x.operators, "%s",
           svc_daemon_str(&rf.d, "WHISTLE_REFERRAL_OPERATORS"));
  snprintf(rf.x.ops, sizeof rf.x.ops, "%s", svc_daemon_str(&rf.d, "WHISTLE_REFERRAL_OPS"));
  snprintf(rf.x.act_as, sizeof rf.x.act_as, "%s", svc_daemon_str(&rf.d, "WHISTLE_REFERRAL_ACT_AS"));
  if (svc_daemon_registry(&rf.d, &rf.x.reg, 0)) return svc_daemon_abort(&rf.d, 2);
  const char *pg = svc_daemon_str(&rf.d, "WHISTLE_PG");
  if (svc_daemon_open_pg(&rf.d, "referral", referral_migrations, &rf.pgw, &rf.pgr) ||
      referral_scrub(pg) ||
      referral_store_load_clock(pg, &rf.x.in_watermark_us, &rf.x.out_watermark_us))
    return svc_daemon_abort(&rf.d, 1);
  svc_clock_observe(&rf.x.clock, rf.x.in_watermark_us);
  svc_daemon_clock_restored(&rf.x.clock);
  if (start(&rf) || svc_daemon_serve(&rf.d, fill_status, &rf)) return svc_daemon_abort(&rf.d, 1);
  svc_info("ready", " units=%s stream=%s intake=%s clock=%s",
           svc_daemon_str(&rf.d, "WHISTLE_REFERRAL_UNITS"),
           svc_daemon_str(&rf.d, "WHISTLE_REFERRAL_STREAM"),
           svc_daemon_str(&rf.d, "WHISTLE_INTAKE_STREAM_AT"), svc_daemon_str(&rf.d, "WHISTLE_CLOCK"));
  return svc_daemon_run(&rf.d);
}
