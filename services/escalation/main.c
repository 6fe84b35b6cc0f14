/* whistle-escalation: numbered notices (三函, R-E1..R-E6). Wiring only:
 * configuration, migrations, registry and letter templates, the write
 * connection every batch runs on, the referral and rating stream consumers,
 * the request interface (signatures, queries), the notice stream, the
 * issuance timer, status and signals. */
#include "escalation.h"
#include "svc_daemon.h"
#include "svc_log.h"
#include "svc_migrate.h"
#include "svc_pg.h"
#include "svc_registry.h"
#include "svc_server.h"
#include "svc_status.h"
#include "svc_stream.h"

extern const struct svc_migration escalation_migrations[];

static const struct svc_config_var vars[] = {
  { .name = "WHISTLE_ESCALATION_REQUESTS", .def = "tcp://*:7401", .kind = SVC_CFG_ENDPOINT,
    .help = "Request interface endpoint: signatures and queries (ROUTER; proto/notice.proto)." },
  { .name = "WHISTLE_ESCALATION_STREAM", .def = "tcp://*:7402", .kind = SVC_CFG_ENDPOINT,
    .help = "Notice stream endpoint: each recipient its own (ROUTER; proto/stream.proto, "
            "proto/notice.proto)." },
  { .name = "WHISTLE_REFERRAL_STREAM_AT", .def = "tcp://127.0.0.1:7202", .kind = SVC_CFG_ENDPOINT,
    .help = "Where referral's stream is (connect): overdue events." },
  { .name = "WHISTLE_RATING_STREAM_AT", .def = "tcp://127.0.0.1:7302", .kind = SVC_CFG_ENDPOINT,
    .help = "Where rating's stream is (connect): decisions." },
  { .name = "WHISTLE_REFERRAL_SERVER_KEY", .def = "", .kind = SVC_CFG_FILE,
    .check = svc_curve_check_key_file, .needs = { "WHISTLE_CURVE" },
    .help = "File holding referral's Z85 public key; required with CURVE on." },
  { .name = "WHISTLE_RATING_SERVER_KEY", .def = "", .kind = SVC_CFG_FILE,
    .check = svc_curve_check_key_file, .needs = { "WHISTLE_CURVE" },
    .help = "File holding rating's Z85 public key; required with CURVE on." },
  { .name = "WHISTLE_REGISTRY", .def = "deploy/registry", .kind = SVC_CFG_DIR,
    .check = esc_registry_check,
    .help = "Directory of registry CSV files and the letter templates notice_templates/<TYPE>.txt "
            "(deploy/registry is an example); reloaded on SIGHUP." },
  { .name = "WHISTLE_NOTICE_TEMPLATES", .def = "", .kind = SVC_CFG_DIR, .check = esc_templates_check,
    .help = "Directory of the letter templates <TYPE>.txt; empty: the registry's "
            "notice_templates/. Reloaded on SIGHUP." },
  { .name = "WHISTLE_CLOCK", .def = "wall", .kind = SVC_CFG_ENUM, .choices = "wall|event",
    .help = "wall or event: notices are numbered and delivered again on the inputs' watermarks "
            "in both modes; signatures are bounded by the system clock in wall mode (R-T3)." },
  { .name = "WHISTLE_ESCALATION_OPS", .def = "ops", .kind = SVC_CFG_STRING,
    .help = "Identities allowed to query notices on the request interface (comma-separated; "
            "CURVE on): recipients only sign." },
  { .name = "WHISTLE_STREAM_FULL_ACCESS", .def = "ops", .kind = SVC_CFG_STRING,
    .help = "Identities that read every notice (dashboards, archives)." },
  { .name = "WHISTLE_BATCH", .def = "1000", .kind = SVC_CFG_INT, .min = 1, .max = 100000,
    .help = "Most events or requests committed in one transaction." },
  { .name = "WHISTLE_TICK_MS", .def = "1000", .kind = SVC_CFG_INT, .min = 10, .max = 60000,
    .help = "How often escalation checks for notices to issue or deliver again." },
  { .name = "WHISTLE_CURVE_SECRET_KEY", .needs = { "WHISTLE_CURVE" } },
  { .name = "WHISTLE_CURVE_ALLOWED_DIR", .needs = { "WHISTLE_CURVE" } },
  { .name = "WHISTLE_CURVE_CLIENT_KEY", .needs = { "WHISTLE_CURVE" } },
  { .name = NULL },
};

struct escalation {
  struct svc_daemon d;
  struct esc_ctx x;
  struct esc_input in[2];
  struct svc_pg *pgw, *pgr;
  struct svc_server *srv;
  struct svc_stream_consumer *cons[2];
  uv_timer_t tick;
};

static void tick_cb(uv_timer_t *t)
{
  struct escalation *e = t->data;
  if (!e->d.stopping) esc_issue_run(&e->x);
}

static void fill_status(void *arg, struct svc_status_out *o)
{
  struct escalation *e = arg;
  const struct esc_counters *n = &e->x.n;
  svc_status_add(o, "escalation.triggers", (int64_t)n->triggers);
  svc_status_add(o, "escalation.notices", (int64_t)n->notices);
  svc_status_add(o, "escalation.redelivered", (int64_t)n->redelivered);
  svc_status_add(o, "escalation.signed", (int64_t)n->signed_);
  svc_status_add(o, "escalation.queries", (int64_t)n->queries);
  svc_status_add(o, "escalation.skipped", (int64_t)n->skipped);
  svc_server_status(e->srv, "server", o);
  svc_stream_producer_status(e->x.prod, "stream", o);
  svc_stream_consumer_status(e->cons[0], "referral", o);
  svc_stream_consumer_status(e->cons[1], "rating", o);
  svc_status_add(o, "clock.referral_watermark_us", e->x.referral_wm);
  svc_status_add(o, "clock.rating_watermark_us", e->x.rating_wm);
  svc_status_add(o, "clock.out_watermark_us", e->x.out_wm);
  svc_stream_producer_output(e->x.prod, "escalation", e->x.out_wm, o);
  svc_stream_consumer_input(e->cons[0], "referral", e->x.referral_wm, 1, o);
  svc_stream_consumer_input(e->cons[1], "rating", e->x.rating_wm, 1, o);
  svc_pg_status(e->pgw, "pg", o);
}

static void release(void *arg)
{
  struct escalation *e = arg;
  esc_store_destroy(&e->x.store);
  esc_issue_free(&e->x);
  esc_templates_free(e->x.templates);
}

static int use_templates(struct escalation *e, int reloading)
{
  return esc_templates_use(&e->x, svc_daemon_str(&e->d, "WHISTLE_NOTICE_TEMPLATES"),
                           svc_daemon_str(&e->d, "WHISTLE_REGISTRY"), reloading);
}

static void reload_templates(void *arg) { use_templates(arg, 1); }

/* Both consumers, the request server and the issuance run their batches on
 * pgw, one after the other, so each sees the others' commits. */
static int start(struct escalation *e)
{
  if (!(e->x.store = esc_store_new(e->pgw))) return -1;
  e->x.pg = e->pgw;
  struct svc_stream_producer_opts po = { .name = "escalation" };
  e->x.prod = svc_daemon_producer(&e->d, "WHISTLE_ESCALATION_STREAM", e->pgw, e->pgr, &po);
  if (!e->x.prod) return -1;
  size_t batch = (size_t)svc_daemon_int(&e->d, "WHISTLE_BATCH");
  static const char *const at[2] = { "WHISTLE_REFERRAL_STREAM_AT", "WHISTLE_RATING_STREAM_AT" };
  static const char *const key[2] = { "WHISTLE_REFERRAL_SERVER_KEY", "WHISTLE_RATING_SERVER_KEY" };
  for (int i = 0; i < 2; i++) {
    struct svc_stream_consumer_opts co = { .consumer = "escalation",
                                           .producer = i ? "rating" : "referral", .max_batch = batch };
    e->in[i] = (struct esc_input){ &e->x, i };
    e->cons[i] = svc_daemon_consumer(&e->d, at[i], key[i], e->pgw, &co, esc_apply, &e->in[i]);
    if (!e->cons[i]) return -1;
  }
  struct svc_server_opts so = { .max_batch = batch, .producer = e->x.prod };
  e->srv = svc_daemon_server(&e->d, "WHISTLE_ESCALATION_REQUESTS", e->pgw, &so, &esc_request_ops, &e->x);
  return e->srv ? svc_daemon_timer(&e->d, &e->tick, tick_cb, e,
                                   (uint64_t)svc_daemon_int(&e->d, "WHISTLE_TICK_MS")) : -1;
}

int main(int argc, char **argv)
{
  static struct escalation e;
  int rc = svc_daemon_init(&e.d, argc, argv, "escalation",
                           "whistle-escalation: turns overdue events and rating decisions into "
                           "numbered notices, delivers them to their recipients and records "
                           "their signatures.", vars);
  if (rc) return rc > 0 ? 0 : 2;
  svc_daemon_on_release(&e.d, release, &e);
  svc_daemon_on_reload(&e.d, reload_templates, &e);
  svc_daemon_clock(&e.d, &e.x.clock);
  e.x.off_s = SVC_DEFAULT_UTC_OFFSET;
  e.x.stopping = &e.d.stopping;
  e.x.curve = svc_zctx_curve(e.d.z);
  snprintf(e.x.ops, sizeof e.x.ops, "%s", svc_daemon_str(&e.d, "WHISTLE_ESCALATION_OPS"));
  if (use_templates(&e, 0) ||
      svc_daemon_registry(&e.d, &e.x.reg, 0)) return svc_daemon_abort(&e.d, 2);
  struct esc_clock_row c;
  if (svc_daemon_open_pg(&e.d, "escalation", escalation_migrations, &e.pgw, &e.pgr) ||
      esc_store_load_clock(svc_daemon_str(&e.d, "WHISTLE_PG"), &c))
    return svc_daemon_abort(&e.d, 1);
  e.x.referral_wm = c.referral_wm, e.x.rating_wm = c.rating_wm, e.x.out_wm = c.out_wm;
  if (start(&e) || svc_daemon_serve(&e.d, fill_status, &e)) return svc_daemon_abort(&e.d, 1);
  svc_info("ready", " requests=%s stream=%s referral=%s rating=%s",
           svc_daemon_str(&e.d, "WHISTLE_ESCALATION_REQUESTS"),
           svc_daemon_str(&e.d, "WHISTLE_ESCALATION_STREAM"),
           svc_daemon_str(&e.d, "WHISTLE_REFERRAL_STREAM_AT"), svc_daemon_str(&e.d, "WHISTLE_RATING_STREAM_AT"));
  return svc_daemon_run(&e.d);
}
