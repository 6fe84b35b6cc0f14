/* sinkd: a minimal stream consumer on the svc_ library, for the foundation's
 * integration, fault and bench runs. It applies every event it receives into
 * its own schema's table, in the same transaction as its stream position, and
 * reports when a producer ever exceeds the window it asked for. */
#include <stdlib.h>
#include <string.h>

#include "svc_daemon.h"
#include "svc_log.h"
#include "svc_migrate.h"
#include "svc_pg.h"
#include "svc_status.h"
#include "svc_stream.h"

static const struct svc_migration migrations[] = {
  { "001_sink",
    "CREATE TABLE sink (apply_order bigserial PRIMARY KEY, seq bigint NOT NULL UNIQUE,"
    " event_us bigint NOT NULL, kind text NOT NULL, addressee text NOT NULL,"
    " payload bytea NOT NULL)" },
  { NULL, NULL },
};

static const struct svc_config_var vars[] = {
  { .name = "WHISTLE_SINK_SOURCE", .def = "ipc:///tmp/whistle-ledger-stream",
    .kind = SVC_CFG_ENDPOINT, .help = "The producer's stream endpoint." },
  { .name = "WHISTLE_SINK_NAME", .def = "sink", .kind = SVC_CFG_STRING,
    .help = "Identity claimed in Subscribe." },
  { .name = "WHISTLE_SINK_PRODUCER", .def = "ledger", .kind = SVC_CFG_STRING,
    .help = "Position key of the stream read." },
  { .name = "WHISTLE_SINK_WINDOW", .def = "1000", .kind = SVC_CFG_INT, .min = 1, .max = 100000,
    .help = "Window asked of the producer." },
  { .name = "WHISTLE_SINK_SERVER_KEY", .def = "", .kind = SVC_CFG_STRING,
    .help = "File with the producer's Z85 public key (CURVE)." },
  { .name = "WHISTLE_SCHEMA", .def = "t_sink", .kind = SVC_CFG_STRING,
    .help = "The schema this daemon owns." },
  { .name = NULL },
};

struct sinkd {
  struct svc_daemon d;
  struct svc_pg *pg;
  struct svc_stream_consumer *cons;
  struct svc_pg_stmt *insert;
  uint32_t window;
  int over_window_logged;
};

static int apply(void *arg, struct svc_pg_batch *b, const struct svc_stream_event *ev, size_t n)
{
  struct sinkd *s = arg;
  struct svc_stream_consumer_stats st;
  svc_stream_consumer_stats(s->cons, &st);
  if (st.max_unacked > s->window && !s->over_window_logged) {
    s->over_window_logged = 1;
    svc_error("window exceeded", " unacked=%llu window=%u", (unsigned long long)st.max_unacked,
              s->window);
  }
  struct svc_pgarr a[5];
  svc_pgarr_init(&a[0], SVC_OID_INT8);
  svc_pgarr_init(&a[1], SVC_OID_INT8);
  svc_pgarr_init(&a[2], SVC_OID_TEXT);
  svc_pgarr_init(&a[3], SVC_OID_TEXT);
  svc_pgarr_init(&a[4], SVC_OID_BYTEA);
  for (size_t i = 0; i < n; i++) {
    svc_pgarr_add_i64(&a[0], (int64_t)ev[i].seq);
    svc_pgarr_add_i64(&a[1], ev[i].event_us);
    svc_pgarr_add(&a[2], ev[i].kind, strlen(ev[i].kind));
    svc_pgarr_add(&a[3], ev[i].addressee, strlen(ev[i].addressee));
    svc_pgarr_add(&a[4], ev[i].payload, ev[i].payload_len);
  }
  int rc = 0;
  const char *v[5];
  int len[5], fmt[5];
  for (int i = 0; i < 5; i++) {
    rc |= svc_pgarr_finish(&a[i]);
    v[i] = a[i].buf;
    len[i] = (int)a[i].len;
    fmt[i] = 1;
  }
  if (rc == 0) rc = svc_pg_batch_add(b, s->insert, 5, v, len, fmt, 0, NULL, NULL);
  for (int i = 0; i < 5; i++) svc_pgarr_free(&a[i]);
  return rc;
}

static void fill_status(void *arg, struct svc_status_out *o)
{
  struct sinkd *s = arg;
  svc_stream_consumer_status(s->cons, "consumer", o);
  svc_status_add(o, "pg.up", svc_pg_is_up(s->pg));
}

static void finish(void *arg)
{
  struct sinkd *s = arg;
  svc_pg_destroy(&s->pg);
  svc_stream_consumer_destroy(&s->cons);
  svc_daemon_close(&s->d);
}

static void on_stop(void *arg)
{
  struct sinkd *s = arg;
  svc_info("draining", "%s", "");
  svc_stream_consumer_drain(s->cons, finish, s);
}

int main(int argc, char **argv)
{
  static struct sinkd s;
  int rc = svc_daemon_init(&s.d, argc, argv, "sinkd", "Test stream consumer.", vars);
  if (rc) return rc > 0 ? 0 : 2;
  const char *pg = svc_daemon_str(&s.d, "WHISTLE_PG");
  if (svc_migrate(pg, svc_daemon_str(&s.d, "WHISTLE_SCHEMA"), migrations,
                  (int)svc_daemon_int(&s.d, "WHISTLE_PG_WAIT_S")))
    return 1;
  char server_key[SVC_Z85_KEY_LEN + 1];
  if (svc_daemon_server_key(&s.d, "WHISTLE_SINK_SERVER_KEY", server_key)) return 2;
  s.window = (uint32_t)svc_daemon_int(&s.d, "WHISTLE_SINK_WINDOW");
  s.pg = svc_pg_new(&s.d.loop, "apply", pg);
  s.insert = svc_pg_prepare(s.pg, "INSERT INTO sink (seq, event_us, kind, addressee, payload)"
                                  " SELECT * FROM unnest($1::int8[], $2::int8[], $3::text[],"
                                  " $4::text[], $5::bytea[])", 5, NULL);
  struct svc_stream_consumer_opts co = {
    .endpoint = svc_daemon_str(&s.d, "WHISTLE_SINK_SOURCE"),
    .consumer = svc_daemon_str(&s.d, "WHISTLE_SINK_NAME"),
    .producer = svc_daemon_str(&s.d, "WHISTLE_SINK_PRODUCER"),
    .window = s.window,
    .server_key = server_key[0] ? server_key : NULL,
  };
  s.cons = svc_stream_consumer_new(&s.d.loop, s.d.z, s.pg, &co, apply, &s);
  if (!s.pg || !s.insert || !s.cons || svc_daemon_status(&s.d, fill_status, &s) ||
      svc_daemon_signals(&s.d, on_stop, NULL, &s)) {
    s.d.exit_code = 1;
    finish(&s);
  } else {
    svc_info("ready", " source=%s consumer=%s", co.endpoint, co.consumer);
  }
  return svc_daemon_run(&s.d);
}
