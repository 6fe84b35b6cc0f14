/* What every daemon's main.c shares: the common configuration variables
 * (log level, Postgres, CURVE keys, message size, control endpoint), the loop,
 * signals and the ZeroMQ context, so that main.c stays wiring only. */
#ifndef SVC_DAEMON_H
#define SVC_DAEMON_H

#include <uv.h>
#include "svc_config.h"
#include "svc_signal.h"
#include "svc_status.h"
#include "svc_zmq.h"

/* One part of a daemon's stop sequence: drain(obj, done, arg) stops the part
 * taking work and calls done(arg) once what it had in flight has ended. */
struct svc_drain_step {
  void (*drain)(void *obj, void (*done)(void *), void *arg);
  void *obj;
};
#define SVC_DRAIN_MAX 8

struct svc_daemon {
  const char *name;
  uv_loop_t loop;
  struct svc_config_var *cfg; /* common variables followed by the daemon's own */
  struct svc_signals sig;
  struct svc_zctx *z;
  struct svc_status *status; /* control endpoint and HTTP health/metrics */
  int exit_code;
  struct svc_drain_step drain[SVC_DRAIN_MAX]; /* the stop sequence (svc_daemon_drain) */
  size_t drain_n, drain_i;
  void (*drain_finish)(void *);
  void *drain_arg;
};

/* Parses the configuration (common + own, a NULL-name-terminated table; an
 * own entry with a common name replaces it, or with no help only adds its
 * .needs to it, e.g. { .name = "WHISTLE_CURVE_SECRET_KEY", .needs = { "WHISTLE_CURVE" } }),
 * handles --help/--check-config, starts logging, the loop and the ZeroMQ
 * context. Returns 0 to run, 1 to exit 0 at once, -1 to exit 2 (printed). */
int svc_daemon_init(struct svc_daemon *d, int argc, char **argv, const char *name,
                    const char *summary, const struct svc_config_var *own);
/* Looks up a variable's effective text / integer value. */
const char *svc_daemon_str(const struct svc_daemon *d, const char *var);
int64_t svc_daemon_int(const struct svc_daemon *d, const char *var);
/* Reads the Z85 public key file named by variable var into out; 0 or -1.
 * With CURVE off it writes "" and returns 0. */
int svc_daemon_server_key(const struct svc_daemon *d, const char *var, char out[SVC_Z85_KEY_LEN + 1]);
/* Starts SIGTERM/SIGINT/SIGHUP handling with the daemon's callbacks. */
int svc_daemon_signals(struct svc_daemon *d, void (*on_stop)(void *), void (*on_reload)(void *),
                       void *arg);
/* Starts the status endpoints configured by WHISTLE_CONTROL and WHISTLE_HTTP
 * (none if both are empty), answering with fill's counters. 0 or -1. */
int svc_daemon_status(struct svc_daemon *d, svc_status_fill_cb fill, void *arg);
/* Closes the status endpoints, the signal watchers and the ZeroMQ context (with its ZAP socket):
 * the last step of a daemon's stop sequence, after every socket is closed. */
void svc_daemon_close(struct svc_daemon *d);
/* Runs the loop until nothing is left (svc_daemon_close must have been
 * called by then), then closes the loop. Returns d->exit_code. */
int svc_daemon_run(struct svc_daemon *d);

/* ---- svc_daemon_parts.c ---- */
struct svc_registry;
struct svc_clock;
struct svc_server;
struct svc_stream_consumer;
/* Loads the registry WHISTLE_REGISTRY names into *slot, replacing the one
 * there. At start a refusal is logged; on a SIGHUP reload (reloading 1) it is
 * logged and counted as a failed reload, and the previous registry stays in
 * force. 0 or -1. */
int svc_daemon_registry(struct svc_daemon *d, struct svc_registry **slot, int reloading);
/* Sets up the service clock in the mode WHISTLE_CLOCK names (R-T3). */
void svc_daemon_clock(const struct svc_daemon *d, struct svc_clock *c);
/* After the clock has observed what was restored from the database: logs a
 * clock more than a day ahead of the system clock (R-T3). */
void svc_daemon_clock_restored(const struct svc_clock *c);
/* Starts the stop sequence: each step drains in turn (steps are copied; at
 * most SVC_DRAIN_MAX), then finish(arg) tears the daemon down. */
void svc_daemon_drain(struct svc_daemon *d, const struct svc_drain_step *steps, size_t n,
                      void (*finish)(void *), void *arg);
/* Steps for the library's parts (a NULL part is done at once). */
struct svc_drain_step svc_drain_consumer(struct svc_stream_consumer *c);
struct svc_drain_step svc_drain_server(struct svc_server *s);

#endif
