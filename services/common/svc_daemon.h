/* What every daemon's main.c shares: the common configuration variables
 * (log level, Postgres, CURVE keys, message size, control endpoint), the loop,
 * signals and the ZeroMQ context; the daemon's parts (Postgres connections,
 * servers, stream consumers and producers, timers), created through it and
 * drained and torn down by it in the right order; so that main.c stays
 * wiring only. */
#ifndef SVC_DAEMON_H
#define SVC_DAEMON_H

#include <uv.h>
#include "svc_config.h"
#include "svc_migrate.h"
#include "svc_server.h"
#include "svc_stream.h"
#include "svc_signal.h"
#include "svc_status.h"
#include "svc_zmq.h"

/* A part of the daemon the library drains and tears down (svc_daemon_parts.c):
 * registered by the svc_daemon_* constructors below. Library-private. */
struct svc__daemon_part {
  int kind; /* enum svc__part_kind (svc_daemon_int.h) */
  void *obj;
};
#define SVC_DAEMON_PARTS_MAX 16

struct svc_registry;

struct svc_daemon {
  const char *name;
  uv_loop_t loop;
  struct svc_config_var *cfg; /* common variables followed by the daemon's own */
  struct svc_signals sig;
  struct svc_zctx *z;
  struct svc_status *status; /* control endpoint and HTTP health/metrics */
  int exit_code;
  int stopping; /* 1 once the stop sequence has begun: start no new work */
  /* Library-private: the parts in the order registered, the registry slot
   * loaded at start, the service's own release, the stop sequence's place. */
  struct svc__daemon_part parts[SVC_DAEMON_PARTS_MAX];
  size_t parts_n, drain_pos;
  struct svc_registry **registry;
  void (*release)(void *);
  void *release_arg;
  void (*reload)(void *);
  void *reload_arg;
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

/* ---- svc_daemon_parts.c: registry, clock, the stop sequence and teardown ---- */
struct svc_clock;
/* Loads the registry WHISTLE_REGISTRY names into *slot, replacing the one
 * there. At start (reloading 0) a refusal is logged, and the daemon keeps
 * slot: SIGHUP reloads into it (svc_daemon_serve) and svc_daemon_finish
 * destroys what it holds. On a SIGHUP reload (reloading 1) a refusal is
 * logged and counted as a failed reload, and the previous registry stays in
 * force. 0 or -1. */
int svc_daemon_registry(struct svc_daemon *d, struct svc_registry **slot, int reloading);
/* Sets up the service clock in the mode WHISTLE_CLOCK names (R-T3). */
void svc_daemon_clock(const struct svc_daemon *d, struct svc_clock *c);
/* After the clock has observed what was restored from the database: logs a
 * clock more than a day ahead of the system clock (R-T3). */
void svc_daemon_clock_restored(const struct svc_clock *c);
/* The service's own teardown (its store, handler state): release(arg) runs
 * in svc_daemon_finish once the registered parts are destroyed, before the
 * registry is. */
void svc_daemon_on_release(struct svc_daemon *d, void (*release)(void *), void *arg);
/* The service's own data reloaded on SIGHUP with the registry (e.g. a rule
 * table kept beside it): reload(arg) runs after the registry's reload, and
 * keeps what is in force when it refuses the new data. */
void svc_daemon_on_reload(struct svc_daemon *d, void (*reload)(void *), void *arg);
/* Starts the status endpoints (svc_daemon_status, answering with fill's
 * counters) and the signal handling: SIGTERM/SIGINT run svc_daemon_stop,
 * SIGHUP reloads the registry (svc_daemon_registry's slot) and the allowed
 * client keys. 0 or -1 (logged). */
int svc_daemon_serve(struct svc_daemon *d, svc_status_fill_cb fill, void *arg);
/* The stop sequence: sets d->stopping, stops the registered timers and
 * producers (no new subscriptions, nothing more sent), drains the consumers
 * and then the servers one after the other, each until what it had in
 * flight has ended (and been acknowledged), then runs svc_daemon_finish. */
void svc_daemon_stop(struct svc_daemon *d);
/* Tears the daemon down: closes the registered timers, destroys the Postgres
 * connections (their pending batches end while the parts that own them still
 * exist), then the servers, the consumers and the producers, runs the
 * service's release, destroys the registry, and ends with svc_daemon_close.
 * svc_daemon_run then returns once the loop has closed every handle. */
void svc_daemon_finish(struct svc_daemon *d);
/* Ends a start-up that failed after svc_daemon_init: tears down what was
 * set up (svc_daemon_finish) and runs the loop until it is closed. Returns
 * the exit status for main: exit_code, or 0 when a stop signal has arrived
 * (a start-up interrupted by SIGTERM/SIGINT ends cleanly). */
int svc_daemon_abort(struct svc_daemon *d, int exit_code);

/* ---- svc_daemon_start.c: the usual start-up sequence ---- */
/* Each constructor registers what it creates with d, which then drains it
 * at stop (servers, consumers) and destroys it at finish, in the right
 * order; main.c never destroys them. Each returns NULL (or -1) after
 * logging, also when d has SVC_DAEMON_PARTS_MAX parts already. */
/* Applies the library's migrations and own into schema (svc_migrate on
 * WHISTLE_PG, waiting for Postgres up to WHISTLE_PG_WAIT_S), then opens the
 * write connection into *write and, unless read is NULL, the read connection
 * (catch-up pages) into *read. 0, or -1 (logged; after a stop signal during
 * the wait too: svc_daemon_abort then exits 0). */
int svc_daemon_open_pg(struct svc_daemon *d, const char *schema, const struct svc_migration *own,
                       struct svc_pg **write, struct svc_pg **read);
/* A Postgres connection on WHISTLE_PG labelled name (logs, application name). */
struct svc_pg *svc_daemon_pg(struct svc_daemon *d, const char *name);
/* The stream producer bound at the endpoint variable var names, appending
 * on write and paging from read, with o's options (o->name required); when
 * o->full_access is NULL, the identities of WHISTLE_STREAM_FULL_ACCESS. */
struct svc_stream_producer *svc_daemon_producer(struct svc_daemon *d, const char *var,
                                                struct svc_pg *write, struct svc_pg *read,
                                                const struct svc_stream_producer_opts *o);
/* A stream consumer connecting to the endpoint variable var names, with the
 * producer's public key from the file variable key_var names (none with
 * CURVE off, svc_daemon_server_key), applying on pg with apply(arg), with
 * o's other options (o->consumer and o->producer required). */
struct svc_stream_consumer *svc_daemon_consumer(struct svc_daemon *d, const char *var,
                                                const char *key_var, struct svc_pg *pg,
                                                const struct svc_stream_consumer_opts *o,
                                                svc_stream_apply_cb apply, void *arg);
/* A request server bound at the endpoint variable var names, committing on
 * pg, with o's other options (o may be NULL) and the service's ops(arg). */
struct svc_server *svc_daemon_server(struct svc_daemon *d, const char *var, struct svc_pg *pg,
                                     const struct svc_server_opts *o,
                                     const struct svc_server_ops *ops, void *arg);
/* Starts t (embedded in the service's state, data set to data) calling cb
 * every every_ms milliseconds. Stopped when the stop sequence begins, closed
 * at finish. 0 or -1. */
int svc_daemon_timer(struct svc_daemon *d, uv_timer_t *t, uv_timer_cb cb, void *data,
                     uint64_t every_ms);

#endif
