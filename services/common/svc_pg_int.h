/* Internal to the svc_pg files: the connection object shared by the batch
 * runner (svc_pg.c) and the connection layer (svc_pg_conn.c: connect, poll,
 * watchdog), and the connection parameters (svc_pg_params.c: the user's
 * conninfo merged with the network timeouts, host names resolved off the
 * loop). Not for use outside services/common/svc_pg*.c. */
#ifndef SVC_PG_INT_H
#define SVC_PG_INT_H

#include <stdint.h>
#include <libpq-fe.h>
#include <uv.h>

#include "svc_pg.h"

struct svc__pg_params;
struct slot;
struct query;

enum conn_state { ST_DOWN, ST_CONNECTING, ST_UP, ST_CLOSED };

struct svc_pg {
  uv_loop_t *loop;
  char *name;
  PGconn *conn;
  enum conn_state state;
  uv_poll_t *poll;
  int poll_fd, poll_events;
  unsigned long long poll_id; /* the watched socket's inode */
  int handshake; /* PQconnectPoll in progress */
  uv_timer_t timer;
  int backoff_ms;
  struct svc_pg_stmt *stmts, *stmts_tail;
  int n_stmts;
  struct svc_pg_batch *qhead, *qtail; /* queued; qhead runs when `running` */
  size_t qlen;
  int running;
  struct svc_pg_batch *indoubt; /* COMMIT sent, connection lost before its result */
  struct slot *slots; size_t n_slots, cap_slots, cur_slot;
  struct query *sent; /* statements of the stage in flight (freed after it) */
  svc_pg_state_cb state_cb;
  void *state_arg;
  struct svc_pg_stats stats;
  uint64_t batch_ids;
  int destroying;
  struct svc__pg_params *params; /* conninfo merged with the network timeouts */
  struct svc_pg_opts opts;
  uv_timer_t watchdog;  /* bounds a connection attempt and each wait for results */
  uint64_t last_io;     /* loop time the current wait began or the server last spoke */
  uint64_t wait_limit_ms;
  int resolving;        /* host names being looked up */
  int open_timers;      /* timers not yet closed (destroy) */
  int backend_pid;
  /* The in-doubt COMMIT: its backend, since when, when to report it next,
   * the next pause before asking again, and whether a question is due. */
  int indoubt_pid, indoubt_reported, indoubt_delay_ms, resolve_waiting;
  uint64_t indoubt_since, indoubt_report;
};

/* ---- svc_pg_conn.c ---- */

/* Starts (or stops) watching the socket for events; follows a changed socket. */
void svc__pg_update_poll(struct svc_pg *pg, int events);
void svc__pg_drop_poll(struct svc_pg *pg);
/* Starts a connection attempt after delay_ms. */
void svc__pg_reconnect_later(struct svc_pg *pg, uint64_t delay_ms);
/* Something was sent or received: the wait for results goes on from now,
 * bounded by the batch timeout. */
void svc__pg_watch_io(struct svc_pg *pg);

/* ---- svc_pg.c, for the connection layer ---- */

/* The connection failed or was lost: settles the running batch (RETRY or in
 * doubt), reports the state and schedules a reconnect with back-off. */
void svc__pg_lost(struct svc_pg *pg, const char *why);
/* The handshake is done: enters pipeline mode, prepares, reports up. */
void svc__pg_pipeline_begin(struct svc_pg *pg);
/* Input arrived (already consumed from the socket): handles the results. */
void svc__pg_pipeline_input(struct svc_pg *pg);
/* The socket is writable: flushes what libpq holds; 0 or -1. */
int svc__pg_pipeline_flush(struct svc_pg *pg);

/* ---- svc_pg_params.c ---- */


/* Parses conninfo (key=value words or a URI) and adds, for each setting that
 * neither the string nor libpq's environment variable for it sets: keepalives
 * (on, idle 10 s, interval 5 s, count 3), tcp_user_timeout 30 s,
 * connect_timeout 10 s, fallback_application_name = name, and the server-side
 * idle_in_transaction_session_timeout (idle_tx_ms, 0: none) appended to the
 * options. name also labels logs. Returns NULL after logging when conninfo
 * cannot be parsed; the log never quotes conninfo (it may hold a password). */
struct svc__pg_params *svc__pg_params_new(const char *conninfo, const char *name, int idle_tx_ms);
/* Frees the parameters; a resolution in progress is abandoned first. */
void svc__pg_params_destroy(struct svc__pg_params **p);

/* Called on the loop when a resolution ends: error is NULL when at least one
 * host can be tried, else why none can (no host name or password in it). */
typedef void (*svc_pg_resolved_cb)(void *arg, const char *error);
/* Resolves the host names of the parameters (each name of a host list; not
 * Unix-socket paths or IP literals; nothing when hostaddr or a service file is
 * used) with uv_getaddrinfo, so that libpq never looks a name up on the loop.
 * Returns 1 when there is nothing to resolve (connect now), 0 when started
 * (cb runs once, unless cancelled), -1 when no host is left to try (no
 * lookup could start, or out of memory). */
int svc__pg_params_resolve(struct svc__pg_params *p, uv_loop_t *loop, svc_pg_resolved_cb cb,
                          void *arg);
/* Abandons a resolution in progress: its callback will not run. */
void svc__pg_params_cancel(struct svc__pg_params *p);
/* Starts a non-blocking connection (PQconnectStartParams) with the merged
 * parameters; each resolved name is passed as host together with its
 * addresses as hostaddr (one entry per address). NULL when out of memory. */
PGconn *svc__pg_params_connect(const struct svc__pg_params *p);
/* How long the handshake of one attempt may take, ms (0: no bound):
 * connect_timeout for each address libpq may try (libpq leaves this bound to
 * the caller of PQconnectPoll). */
uint64_t svc__pg_params_connect_ms(const struct svc__pg_params *p);

/* The options connections are created with (svc_pg_set_defaults). */
void svc__pg_get_defaults(struct svc_pg_opts *o);

#endif
