/* whistle-rating: rankings, nine prohibitions, credit, stars and the three
 * rates (R-C1..R-U5). Wiring only: configuration, migrations, registry and
 * rule table, the write connection every batch runs on, the intake and
 * referral stream consumers, the request interface, the rating stream, the
 * close timer, status and signals. */
#include "rating.h"
#include "svc_daemon.h"
#include "svc_log.h"
#include "svc_migrate.h"
#include "svc_pg.h"
#include "svc_registry.h"
#include "svc_server.h"
#include "svc_status.h"
#include "svc_stream.h"

extern const struct svc_migration rating_migrations[];

static const struct svc_config_var vars[] = {
  { .name = "WHISTLE_RATING_REQUESTS", .def = "tcp://*:7301", .kind = SVC_CFG_ENDPOINT,
    .help = "Request interface endpoint: inspections and queries (ROUTER; proto/rating.proto)." },
  { .name = "WHISTLE_RATING_STREAM", .def = "tcp://*:7302", .kind = SVC_CFG_ENDPOINT,
    .help = "Rating stream endpoint (ROUTER; proto/stream.proto, proto/rating_events.proto)." },
  { .name = "WHISTLE_INTAKE_STREAM_AT", .def = "tcp://127.0.0.1:7102", .kind = SVC_CFG_ENDPOINT,
    .help = "Where intake's stream is (connect)." },
  { .name = "WHISTLE_REFERRAL_STREAM_AT", .def = "tcp://127.0.0.1:7202", .kind = SVC_CFG_ENDPOINT,
    .help = "Where referral's stream is (connect)." },
  { .name = "WHISTLE_INTAKE_SERVER_KEY", .def = "", .kind = SVC_CFG_FILE,
    .check = svc_curve_check_key_file, .needs = { "WHISTLE_CURVE" },
    .help = "File holding intake's Z85 public key; required with CURVE on." },
  { .name = "WHISTLE_REFERRAL_SERVER_KEY", .def = "", .kind = SVC_CFG_FILE,
    .check = svc_curve_check_key_file, .needs = { "WHISTLE_CURVE" },
    .help = "File holding referral's Z85 public key; required with CURVE on." },
  { .name = "WHISTLE_REGISTRY", .def = "deploy/registry", .kind = SVC_CFG_DIR,
    .check = rating_registry_check,
    .help = "Directory of registry CSV files and the optional rule table rating_rules.csv "
            "(deploy/registry is an example); reloaded on SIGHUP." },
  { .name = "WHISTLE_CLOCK", .def = "wall", .kind = SVC_CFG_ENUM, .choices = "wall|event",
    .help = "wall: inspections are bounded by the system clock (R-T3); periods close on the "
            "inputs' watermarks in both modes." },
  { .name = "WHISTLE_STREAM_FULL_ACCESS", .def = "escalation", .kind = SVC_CFG_STRING,
    .help = "Identities that read the whole rating stream." },
  { .name = "WHISTLE_BATCH", .def = "1000", .kind = SVC_CFG_INT, .min = 1, .max = 100000,
    .help = "Most events or requests committed in one transaction." },
  { .name = "WHISTLE_TICK_MS", .def = "1000", .kind = SVC_CFG_INT, .min = 10, .max = 60000,
    .help = "How often rating checks for a period to close or a watermark to publish." },
  { .name = "WHISTLE_CURVE_SECRET_KEY", .needs = { "WHISTLE_CURVE" } },
  { .name = "WHISTLE_CURVE_ALLOWED_DIR", .needs = { "WHISTLE_CURVE" } },
  { .name = "WHISTLE_CURVE_CLIENT_KEY", .needs = { "WHISTLE_CURVE" } },
  { .name = NULL },
};

struct rating {
  struct svc_daemon d;
  struct rating_ctx x;
  struct rating_input in[2];
  struct svc_pg *pgw, *pgr;
  struct svc_server *srv;
  struct svc_stream_consumer *cons[2];
  uv_timer_t tick;
};

static void tick_cb(uv_timer_t *t)
{
  struct rating *rt = t->data;
  if (!rt->d.stopping) rating_close_run(&rt->x);
}

static void fill_status(void *arg, struct svc_status_out *o)
{
  struct rating *rt = arg;
  const struct rating_counters *n = &rt->x.n;
  const char *names[] = { "rating.tickets", "rating.steps", "rating.violations", "rating.decisions",
                          "rating.closes", "rating.inspections", "rating.queries", "rating.late" };
  const uint64_t v[] = { n->tickets, n->steps, n->violations, n->decisions, n->closes,
                         n->inspections, n->queries, n->late };
  for (size_t i = 0; i < sizeof v / sizeof v[0]; i++) svc_status_add(o, names[i], (int64_t)v[i]);
  svc_status_add(o, "rating.closed_month", rt->x.closed_month);
  svc_server_status(rt->srv, "server", o);
  svc_stream_producer_status(rt->x.prod, "stream", o);
  svc_stream_consumer_status(rt->cons[0], "intake", o);
  svc_stream_consumer_status(rt->cons[1], "referral", o);
  svc_status_add(o, "clock.intake_watermark_us", rt->x.intake_wm);
  svc_status_add(o, "clock.referral_watermark_us", rt->x.referral_wm);
  svc_status_add(o, "clock.out_watermark_us", rt->x.out_wm);
  svc_stream_producer_output(rt->x.prod, "rating", rt->x.out_wm, o);
  svc_stream_consumer_input(rt->cons[0], "intake", rt->x.intake_wm, 1, o);
  svc_stream_consumer_input(rt->cons[1], "referral", rt->x.referral_wm, 1, o);
  svc_pg_status(rt->pgw, "pg", o);
}

/* What the library does not tear down: the store and the handlers' state. */
static void release(void *arg)
{
  struct rating *rt = arg;
  rating_store_destroy(&rt->x.store);
  rating_input_free(&rt->in[0]);
  rating_input_free(&rt->in[1]);
  rating_close_free(&rt->x);
}

static void reload_table(void *arg)
{
  struct rating *rt = arg;
  rating_load_table(&rt->x, svc_daemon_str(&rt->d, "WHISTLE_REGISTRY"), 1);
}

/* Both consumers, the request server and the close timer run their
 * batches on pgw, one after the other, so each sees the others' commits. */
static int start(struct rating *rt)
{
  if (!(rt->x.store = rating_store_new(rt->pgw))) return -1;
  rt->x.pg = rt->pgw;
  struct svc_stream_producer_opts po = { .name = "rating" };
  rt->x.prod = svc_daemon_producer(&rt->d, "WHISTLE_RATING_STREAM", rt->pgw, rt->pgr, &po);
  if (!rt->x.prod) return -1;
  size_t batch = (size_t)svc_daemon_int(&rt->d, "WHISTLE_BATCH");
  static const char *const at[2] = { "WHISTLE_INTAKE_STREAM_AT", "WHISTLE_REFERRAL_STREAM_AT" };
  static const char *const key[2] = { "WHISTLE_INTAKE_SERVER_KEY", "WHISTLE_REFERRAL_SERVER_KEY" };
  for (int i = 0; i < 2; i++) {
    struct svc_stream_consumer_opts co = { .consumer = "rating", .producer = i ? "referral" : "intake",
                                           .max_batch = batch };
    rt->in[i] = (struct rating_input){ &rt->x, i, NULL };
    rt->cons[i] = svc_daemon_consumer(&rt->d, at[i], key[i], rt->pgw, &co, rating_apply, &rt->in[i]);
    if (!rt->cons[i]) return -1;
    svc_stream_consumer_stages(rt->cons[i], rating_apply_next, rt->x.prod);
  }
  struct svc_server_opts so = { .max_batch = batch };
  rt->srv = svc_daemon_server(&rt->d, "WHISTLE_RATING_REQUESTS", rt->pgw, &so, &rating_request_ops,
                              &rt->x);
  return rt->srv ? svc_daemon_timer(&rt->d, &rt->tick, tick_cb, rt,
                                    (uint64_t)svc_daemon_int(&rt->d, "WHISTLE_TICK_MS")) : -1;
}

int main(int argc, char **argv)
{
  static struct rating rt;
  int rc = svc_daemon_init(&rt.d, argc, argv, "rating",
                           "whistle-rating: complaint rankings, nine prohibitions, credit, stars and "
                           "unit assessment, closed in event time; publishes the rating stream.",
                           vars);
  if (rc) return rc > 0 ? 0 : 2;
  svc_daemon_on_release(&rt.d, release, &rt);
  svc_daemon_on_reload(&rt.d, reload_table, &rt);
  svc_daemon_clock(&rt.d, &rt.x.clock);
  rt.x.off_s = SVC_DEFAULT_UTC_OFFSET;
  rt.x.stopping = &rt.d.stopping;
  if (rating_load_table(&rt.x, svc_daemon_str(&rt.d, "WHISTLE_REGISTRY"), 0) ||
      svc_daemon_registry(&rt.d, &rt.x.reg, 0)) return svc_daemon_abort(&rt.d, 2);
  struct rating_clock_row c;
  if (svc_daemon_open_pg(&rt.d, "rating", rating_migrations, &rt.pgw, &rt.pgr) ||
      rating_store_load_clock(svc_daemon_str(&rt.d, "WHISTLE_PG"), &c))
    return svc_daemon_abort(&rt.d, 1);
  rating_restore(&rt.x, &c);
  if (start(&rt) || svc_daemon_serve(&rt.d, fill_status, &rt)) return svc_daemon_abort(&rt.d, 1);
  svc_info("ready", " requests=%s stream=%s intake=%s referral=%s clock=%s",
           svc_daemon_str(&rt.d, "WHISTLE_RATING_REQUESTS"), svc_daemon_str(&rt.d, "WHISTLE_RATING_STREAM"),
           svc_daemon_str(&rt.d, "WHISTLE_INTAKE_STREAM_AT"),
           svc_daemon_str(&rt.d, "WHISTLE_REFERRAL_STREAM_AT"), svc_daemon_str(&rt.d, "WHISTLE_CLOCK"));
  return svc_daemon_run(&rt.d);
}
