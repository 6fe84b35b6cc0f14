/* whistle-rating: rankings, nine prohibitions, credit, stars and the three
 * rates (R-C1..R-U5). Wiring only: configuration, migrations, registry and
 * rule table, the write connection every batch runs on, the intake and
 * referral stream consumers, the request interface, the rating stream, the
 * close timer, status and signals. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

/* WHISTLE_REGISTRY's check: the registry and the rule table in it, as
 * start-up reads them, so --check-config refuses what start-up would. */
static int check_registry(const char *dir, char *err, size_t errlen)
{
  char path[1024];
  struct rating_table t;
  if (svc_registry_check(dir, err, errlen)) return -1;
  snprintf(path, sizeof path, "%s/rating_rules.csv", dir);
  return rating_table_load(&t, path, err, errlen);
}

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
    .check = check_registry,
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
  rating_close_run(&((struct rating *)t->data)->x);
}

static void fill_status(void *arg, struct svc_status_out *o)
{
  struct rating *rt = arg;
  const struct rating_counters *n = &rt->x.n;
  svc_status_add(o, "rating.tickets", (int64_t)n->tickets);
  svc_status_add(o, "rating.steps", (int64_t)n->steps);
  svc_status_add(o, "rating.violations", (int64_t)n->violations);
  svc_status_add(o, "rating.decisions", (int64_t)n->decisions);
  svc_status_add(o, "rating.closes", (int64_t)n->closes);
  svc_status_add(o, "rating.inspections", (int64_t)n->inspections);
  svc_status_add(o, "rating.queries", (int64_t)n->queries);
  svc_status_add(o, "rating.late", (int64_t)n->late);
  svc_status_add(o, "rating.closed_month", rt->x.closed_month);
  svc_server_status(rt->srv, "server", o);
  svc_stream_producer_status(rt->x.prod, "stream", o);
  svc_stream_consumer_status(rt->cons[0], "intake", o);
  svc_stream_consumer_status(rt->cons[1], "referral", o);
  svc_status_add(o, "clock.intake_watermark_us", rt->x.intake_wm);
  svc_status_add(o, "clock.referral_watermark_us", rt->x.referral_wm);
  svc_status_add(o, "clock.out_watermark_us", rt->x.out_wm);
  svc_pg_status(rt->pgw, "pg", o);
}

static void finish(void *arg)
{
  struct rating *rt = arg;
  uv_timer_stop(&rt->tick);
  uv_close((uv_handle_t *)&rt->tick, NULL);
  svc_pg_destroy(&rt->pgw);
  svc_pg_destroy(&rt->pgr);
  svc_server_destroy(&rt->srv);
  svc_stream_consumer_destroy(&rt->cons[0]);
  svc_stream_consumer_destroy(&rt->cons[1]);
  svc_stream_producer_destroy(&rt->x.prod);
  rating_store_destroy(&rt->x.store);
  rating_input_free(&rt->in[0]);
  rating_input_free(&rt->in[1]);
  rating_close_free(&rt->x);
  svc_registry_destroy(&rt->x.reg);
  svc_daemon_close(&rt->d);
}

static void on_stop(void *arg)
{
  struct rating *rt = arg;
  rt->x.draining = 1;
  svc_stream_producer_stop(rt->x.prod);
  struct svc_drain_step steps[] = { svc_drain_consumer(rt->cons[0]), svc_drain_consumer(rt->cons[1]),
                                    svc_drain_server(rt->srv) };
  svc_daemon_drain(&rt->d, steps, 3, finish, rt);
}

/* The registry and the rule table, at start and on SIGHUP (a refused reload
 * keeps the ones in force). */
static int load(struct rating *rt, int reloading)
{
  char path[1024], err[512];
  struct rating_table t;
  rating_table_defaults(&t);
  snprintf(path, sizeof path, "%s/rating_rules.csv", svc_daemon_str(&rt->d, "WHISTLE_REGISTRY"));
  if (rating_table_load(&t, path, err, sizeof err)) {
    if (reloading) svc_reload_failed("rule table", err);
    else svc_error("rule table refused", " error=\"%s\"", err);
    return -1;
  }
  if (svc_daemon_registry(&rt->d, &rt->x.reg, reloading)) return -1;
  rt->x.table = t;
  svc_info("rule table loaded", " version=%s top_k=%d", t.version, t.top_k);
  return 0;
}

static void on_reload(void *arg)
{
  struct rating *rt = arg;
  load(rt, 1);
  svc_zctx_reload(rt->d.z);
}

static struct svc_stream_consumer *consumer(struct rating *rt, int which, const char *key)
{
  struct svc_stream_consumer_opts co = {
    .endpoint = svc_daemon_str(&rt->d, which ? "WHISTLE_REFERRAL_STREAM_AT" : "WHISTLE_INTAKE_STREAM_AT"),
    .consumer = "rating", .producer = which ? "referral" : "intake", .server_key = key[0] ? key : NULL,
    .max_batch = (size_t)svc_daemon_int(&rt->d, "WHISTLE_BATCH"),
  };
  rt->in[which] = (struct rating_input){ &rt->x, which, NULL };
  struct svc_stream_consumer *c = svc_stream_consumer_new(&rt->d.loop, rt->d.z, rt->pgw, &co,
                                                          rating_apply, &rt->in[which]);
  if (c) svc_stream_consumer_stages(c, rating_apply_next, rt->x.prod);
  return c;
}

static int start(struct rating *rt, const char *pg, const char keys[2][SVC_Z85_KEY_LEN + 1])
{
  rt->pgw = svc_pg_new(&rt->d.loop, "write", pg);
  rt->pgr = svc_pg_new(&rt->d.loop, "read", pg);
  if (!rt->pgw || !rt->pgr || !(rt->x.store = rating_store_new(rt->pgw))) return -1;
  rt->x.pg = rt->pgw;
  struct svc_stream_producer_opts po = {
    .endpoint = svc_daemon_str(&rt->d, "WHISTLE_RATING_STREAM"), .name = "rating",
    .full_access = svc_daemon_str(&rt->d, "WHISTLE_STREAM_FULL_ACCESS"),
  };
  if (!(rt->x.prod = svc_stream_producer_new(&rt->d.loop, rt->d.z, rt->pgw, rt->pgr, &po)) ||
      !(rt->cons[0] = consumer(rt, 0, keys[0])) || !(rt->cons[1] = consumer(rt, 1, keys[1])))
    return -1;
  struct svc_server_opts so = { .endpoint = svc_daemon_str(&rt->d, "WHISTLE_RATING_REQUESTS"),
                                .max_batch = (size_t)svc_daemon_int(&rt->d, "WHISTLE_BATCH") };
  if (!(rt->srv = svc_server_new(&rt->d.loop, rt->d.z, rt->pgw, &so, &rating_request_ops, &rt->x)))
    return -1;
  uint64_t every = (uint64_t)svc_daemon_int(&rt->d, "WHISTLE_TICK_MS");
  uv_timer_start(&rt->tick, tick_cb, every, every);
  svc_info("ready", " requests=%s stream=%s intake=%s referral=%s", so.endpoint, po.endpoint,
           svc_daemon_str(&rt->d, "WHISTLE_INTAKE_STREAM_AT"),
           svc_daemon_str(&rt->d, "WHISTLE_REFERRAL_STREAM_AT"));
  return 0;
}

int main(int argc, char **argv)
{
  static struct rating rt;
  int rc = svc_daemon_init(&rt.d, argc, argv, "rating",
                           "whistle-rating: complaint rankings, nine prohibitions, credit, stars and "
                           "unit assessment, closed in event time; publishes the rating stream.",
                           vars);
  if (rc) return rc > 0 ? 0 : 2;
  svc_daemon_clock(&rt.d, &rt.x.clock);
  rt.x.off_s = SVC_DEFAULT_UTC_OFFSET;
  char keys[2][SVC_Z85_KEY_LEN + 1];
  if (svc_daemon_server_key(&rt.d, "WHISTLE_INTAKE_SERVER_KEY", keys[0]) ||
      svc_daemon_server_key(&rt.d, "WHISTLE_REFERRAL_SERVER_KEY", keys[1]) || load(&rt, 0))
    return 2;
  const char *pg = svc_daemon_str(&rt.d, "WHISTLE_PG");
  struct rating_clock_row c;
  if (svc_migrate(pg, "rating", rating_migrations, (int)svc_daemon_int(&rt.d, "WHISTLE_PG_WAIT_S")) ||
      rating_store_load_clock(pg, &c))
    return svc_stop_requested() ? 0 : 1;
  rt.x.intake_wm = c.intake_wm, rt.x.referral_wm = c.referral_wm, rt.x.out_wm = c.out_wm;
  rt.x.closed_month = c.closed_month, rt.x.first_month = c.first_month, rt.x.n.late = (uint64_t)c.late;
  uv_timer_init(&rt.d.loop, &rt.tick);
  rt.tick.data = &rt;
  if (start(&rt, pg, keys) || svc_daemon_status(&rt.d, fill_status, &rt) ||
      svc_daemon_signals(&rt.d, on_stop, on_reload, &rt)) {
    rt.d.exit_code = 1;
    finish(&rt);
  }
  return svc_daemon_run(&rt.d);
}
