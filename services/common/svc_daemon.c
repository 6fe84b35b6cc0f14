/* The shared daemon frame: the common configuration variables, logging, the
 * loop, signals, the ZeroMQ context with its CURVE settings, and the Postgres
 * connections' timeouts. */
#include "svc_daemon.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_log.h"
#include "svc_pg.h"

/* --check-config's checks that need the library's other parts. */
static int check_conninfo(const char *v, char *err, size_t n) { return svc_pg_conninfo_check(v, err, n); }
static int check_key(const char *v, char *err, size_t n) { return svc_curve_check_key_file(v, err, n); }
static int check_allowed(const char *v, char *err, size_t n) { return svc_curve_check_allowed_dir(v, err, n); }
static int check_endpoint(const char *v, char *err, size_t n)
{
  struct svc_config_var e = { .name = "endpoint", .kind = SVC_CFG_ENDPOINT };
  return svc_config_validate(&e, v, NULL, err, n);
}

/* Reads the password file's first line; 0, or -1 with a reason (never the content). */
static int read_password(const char *path, char *out, size_t cap, char *err, size_t n)
{
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, n, "cannot read the password file: %s", strerror(errno));
    return -1;
  }
  size_t len = fread(out, 1, cap - 1, f);
  int more = fgetc(f) != EOF;
  fclose(f);
  out[len] = 0;
  out[strcspn(out, "\r\n")] = 0;
  if (more) {
    snprintf(err, n, "the password file is longer than %zu bytes", cap - 1);
    return -1;
  }
  if (!out[0]) {
    snprintf(err, n, "the password file's first line is empty");
    return -1;
  }
  return 0;
}

static int check_password(const char *v, char *err, size_t n)
{
  char pw[1024];
  int rc = read_password(v, pw, sizeof pw, err, n);
  memset(pw, 0, sizeof pw);
  return rc;
}

static const struct svc_config_var common_vars[] = {
  { .name = "WHISTLE_LOG_LEVEL", .def = "info", .kind = SVC_CFG_ENUM,
    .choices = "debug|info|warn|error", .help = "Lowest level of log lines written to stderr." },
  { .name = "WHISTLE_PG", .def = "", .kind = SVC_CFG_STRING, .secret = 1, .check = check_conninfo,
    .help = "libpq connection string (empty: PGHOST/PGPORT/PGDATABASE and user = the service name); put no password in it: see WHISTLE_PG_PASSWORD_FILE or PGPASSFILE." },
  { .name = "WHISTLE_PG_PASSWORD_FILE", .def = "", .kind = SVC_CFG_FILE, .check = check_password,
    .help = "File whose first line is the Postgres password (read once at start, never logged; e.g. a Docker secret)." },
  { .name = "WHISTLE_PG_WAIT_S", .def = "60", .kind = SVC_CFG_INT, .min = 0, .max = 86400,
    .help = "Seconds to wait for Postgres at start-up before giving up." },
  { .name = "WHISTLE_PG_BATCH_TIMEOUT_MS", .def = "30000", .kind = SVC_CFG_INT, .min = 100,
    .max = 3600000, .help = "A Postgres query with no result for this long means the connection is lost: it is re-established and the work retried (or its COMMIT settled first)." },
  { .name = "WHISTLE_PG_INDOUBT_MS", .def = "60000", .kind = SVC_CFG_INT, .min = 100,
    .max = 86400000, .help = "A COMMIT whose connection was lost and that is still in progress this long is logged as an error and counted (later work keeps waiting for it)." },
  { .name = "WHISTLE_CURVE", .def = "1", .kind = SVC_CFG_BOOL,
    .help = "CURVE encryption and client authentication on every socket (0: development mode)." },
  /* A daemon that serves clients requires these two with CURVE on: its own
   * table names them again with .needs only (see svc_daemon_init). */
  { .name = "WHISTLE_CURVE_SECRET_KEY", .def = "", .kind = SVC_CFG_FILE, .check = check_key,
    .help = "File with this daemon's Z85 secret key as a server." },
  { .name = "WHISTLE_CURVE_ALLOWED_DIR", .def = "", .kind = SVC_CFG_DIR, .check = check_allowed,
    .help = "Directory of <identity>.pub files: the client keys allowed, each mapped to its identity." },
  { .name = "WHISTLE_CURVE_CLIENT_KEY", .def = "", .kind = SVC_CFG_FILE, .check = check_key,
    .help = "File with this daemon's Z85 secret key as a client of other daemons." },
  { .name = "WHISTLE_MAX_MSG_BYTES", .def = "1048576", .kind = SVC_CFG_INT, .min = 1024,
    .max = 64 << 20, .help = "Largest message accepted on any socket (ZMQ_MAXMSGSIZE)." },
  { .name = "WHISTLE_ZMQ_HWM", .def = "100000", .kind = SVC_CFG_INT, .min = 1, .max = 10000000,
    .help = "Messages held in each connection's ZeroMQ pipe, each way (ZMQ_SNDHWM, ZMQ_RCVHWM)." },
  { .name = "WHISTLE_ZMQ_QUEUE_MSGS", .def = "10000", .kind = SVC_CFG_INT, .min = 1,
    .max = 10000000, .help = "Messages queued for one peer beyond its pipe; more are dropped and counted." },
  { .name = "WHISTLE_ZMQ_QUEUE_BYTES", .def = "4194304", .kind = SVC_CFG_INT, .min = 1024,
    .max = (int64_t)1 << 32, .help = "Payload bytes queued for one peer beyond its pipe." },
  { .name = "WHISTLE_ZMQ_QUEUE_PEERS", .def = "1024", .kind = SVC_CFG_INT, .min = 1, .max = 1000000,
    .help = "Peers of one socket that may have messages queued at once." },
  { .name = "WHISTLE_CONTROL", .def = "", .kind = SVC_CFG_STRING, .check = check_endpoint,
    .help = "Control endpoint answering status requests (empty: none)." },
  { .name = "WHISTLE_HTTP", .def = "", .kind = SVC_CFG_HOSTPORT,
    .help = "host:port serving GET /healthz and /metrics (empty: none)." },
};
#define N_COMMON (sizeof common_vars / sizeof common_vars[0])


static char default_conninfo[256];
static char *pw_conninfo; /* WHISTLE_PG with the password file's password: a secret */

/* Sets the effective connection string when a password file is given; 0 or -1. */
static int apply_password(struct svc_daemon *d)
{
  const char *path = svc_daemon_str(d, "WHISTLE_PG_PASSWORD_FILE");
  char pw[1024], err[200];
  if (!*path) return 0;
  if (read_password(path, pw, sizeof pw, err, sizeof err) != 0) {
    svc_error("WHISTLE_PG_PASSWORD_FILE refused", " path=%s error=\"%s\"", path, err);
    return -1;
  }
  pw_conninfo = svc_pg_conninfo_with_password(svc_daemon_str(d, "WHISTLE_PG"), pw);
  memset(pw, 0, sizeof pw);
  return pw_conninfo ? 0 : -1;
}

int svc_daemon_init(struct svc_daemon *d, int argc, char **argv, const char *name,
                    const char *summary, const struct svc_config_var *own)
{
  memset(d, 0, sizeof *d);
  d->name = name;
  size_t n_own = 0;
  while (own && own[n_own].name) n_own++;
  d->cfg = calloc(N_COMMON + n_own + 1, sizeof *d->cfg);
  if (!d->cfg) return -1;
  memcpy(d->cfg, common_vars, sizeof common_vars);
  size_t n = N_COMMON;
  for (size_t i = 0; i < n_own; i++) { /* a daemon's own entry replaces a common one */
    size_t j = 0;
    while (j < N_COMMON && strcmp(d->cfg[j].name, own[i].name) != 0) j++;
    if (j < N_COMMON && !own[i].help) { /* only more conditions on the common entry */
      d->cfg[j].needs[0] = own[i].needs[0];
      d->cfg[j].needs[1] = own[i].needs[1];
    } else {
      d->cfg[j < N_COMMON ? j : n++] = own[i];
    }
  }
  int rc = svc_config_load(d->cfg, argc, argv, name, summary);
  if (rc != 0) {
    free(d->cfg);
    d->cfg = NULL;
    return rc;
  }
  svc_log_init(name);
  svc_log_set_level_name(svc_daemon_str(d, "WHISTLE_LOG_LEVEL"));
  svc_info("starting", " version=%s", svc_version());
  svc_signals_early();
  if (uv_loop_init(&d->loop) != 0) return -1;
  struct svc_zctx_opts zo = {
    .curve = (int)svc_daemon_int(d, "WHISTLE_CURVE"),
    .maxmsgsize = svc_daemon_int(d, "WHISTLE_MAX_MSG_BYTES"),
    .hwm = (int)svc_daemon_int(d, "WHISTLE_ZMQ_HWM"),
    .queue_msgs = (size_t)svc_daemon_int(d, "WHISTLE_ZMQ_QUEUE_MSGS"),
    .queue_bytes = (size_t)svc_daemon_int(d, "WHISTLE_ZMQ_QUEUE_BYTES"),
    .queue_peers = (size_t)svc_daemon_int(d, "WHISTLE_ZMQ_QUEUE_PEERS"),
  };
  const char *sk = svc_daemon_str(d, "WHISTLE_CURVE_SECRET_KEY");
  const char *ck = svc_daemon_str(d, "WHISTLE_CURVE_CLIENT_KEY");
  const char *dir = svc_daemon_str(d, "WHISTLE_CURVE_ALLOWED_DIR");
  zo.server_secret_file = *sk ? sk : NULL;
  zo.client_secret_file = *ck ? ck : NULL;
  zo.allowed_dir = *dir ? dir : NULL;
  d->z = svc_zctx_new(&d->loop, &zo);
  if (!d->z) return -1;
  struct svc_pg_opts po = {
    .batch_timeout_ms = (int)svc_daemon_int(d, "WHISTLE_PG_BATCH_TIMEOUT_MS"),
    .indoubt_bound_ms = (int)svc_daemon_int(d, "WHISTLE_PG_INDOUBT_MS"),
  };
  svc_pg_set_defaults(&po);
  if (!*svc_daemon_str(d, "WHISTLE_PG"))
    snprintf(default_conninfo, sizeof default_conninfo, "user=%s application_name=%s", name, name);
  return apply_password(d);
}

const char *svc_daemon_str(const struct svc_daemon *d, const char *var)
{
  if (strcmp(var, "WHISTLE_PG") == 0 && pw_conninfo) return pw_conninfo;
  if (strcmp(var, "WHISTLE_PG") == 0 && default_conninfo[0]) return default_conninfo;
  const char *v = svc_config_str(d->cfg, var);
  return v ? v : "";
}

int64_t svc_daemon_int(const struct svc_daemon *d, const char *var)
{
  return svc_config_int(d->cfg, var);
}

int svc_daemon_server_key(const struct svc_daemon *d, const char *var,
                          char out[SVC_Z85_KEY_LEN + 1])
{
  out[0] = 0;
  if (!svc_zctx_curve(d->z)) return 0;
  const char *path = svc_daemon_str(d, var);
  if (!*path) {
    svc_error("CURVE is on: the server's public key file is required", " variable=%s", var);
    return -1;
  }
  return svc_curve_read_key(path, out);
}

int svc_daemon_signals(struct svc_daemon *d, void (*on_stop)(void *), void (*on_reload)(void *),
                       void *arg)
{
  return svc_signals_start(&d->sig, &d->loop, on_stop, on_reload, arg);
}

static void close_walk(uv_handle_t *h, void *arg)
{
  (void)arg;
  if (!uv_is_closing(h)) uv_close(h, NULL);
}

int svc_daemon_status(struct svc_daemon *d, svc_status_fill_cb fill, void *arg)
{
  const char *ctl = svc_daemon_str(d, "WHISTLE_CONTROL"), *http = svc_daemon_str(d, "WHISTLE_HTTP");
  if (!*ctl && !*http) return 0;
  d->status = svc_status_new(&d->loop, d->z, ctl, http, d->name, fill, arg);
  return d->status ? 0 : -1;
}

void svc_daemon_close(struct svc_daemon *d)
{
  svc_status_destroy(&d->status);
  svc_signals_close(&d->sig);
  svc_zctx_destroy(&d->z);
}

int svc_daemon_run(struct svc_daemon *d)
{
  uv_run(&d->loop, UV_RUN_DEFAULT);
  int rc = uv_loop_close(&d->loop);
  if (rc != 0) { /* a handle someone forgot: close it so the loop can end */
    svc_warn("handles left open at exit", " error=%s", uv_err_name(rc));
    uv_walk(&d->loop, close_walk, NULL);
    uv_run(&d->loop, UV_RUN_DEFAULT);
    uv_loop_close(&d->loop);
  }
  free(d->cfg);
  d->cfg = NULL;
  if (pw_conninfo) {
    memset(pw_conninfo, 0, strlen(pw_conninfo));
    free(pw_conninfo);
    pw_conninfo = NULL;
  }
  svc_info("stopped", " exit_code=%d", d->exit_code);
  return d->exit_code;
}
