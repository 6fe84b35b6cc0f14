/* The connection layer of svc_pg: connection attempts (host names resolved
 * off the loop, then libpq's non-blocking handshake), the uv_poll on libpq's
 * socket, and the watchdog that bounds an attempt by connect_timeout and each
 * wait for results by the batch timeout. What is sent and what the results
 * mean is the batch runner's (svc_pg.c). */
#include "svc_pg_int.h"

#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>

static void poll_cb(uv_poll_t *h, int status, int events);

/* ---- the socket -------------------------------------------------------- */

static void poll_close_cb(uv_handle_t *h)
{
  free(h);
}

void svc__pg_drop_poll(struct svc_pg *pg)
{
  if (!pg->poll) return;
  uv_poll_stop(pg->poll);
  uv_close((uv_handle_t *)pg->poll, poll_close_cb);
  pg->poll = NULL;
  pg->poll_fd = -1;
  pg->poll_events = 0;
}

/* The socket's identity: a new socket may reuse a closed one's number. */
static unsigned long long socket_id(int fd)
{
  struct stat st;
  return fstat(fd, &st) == 0 ? (unsigned long long)st.st_ino : 0;
}

void svc__pg_update_poll(struct svc_pg *pg, int events)
{
  int fd = pg->conn ? PQsocket(pg->conn) : -1;
  if (fd < 0) return;
  /* During the handshake libpq may move to another address or host, on a
   * new socket that can have the old one's number. */
  if (pg->poll && (pg->poll_fd != fd || (pg->handshake && pg->poll_id != socket_id(fd))))
    svc__pg_drop_poll(pg);
  if (!pg->poll) {
    pg->poll = malloc(sizeof *pg->poll);
    if (!pg->poll || uv_poll_init(pg->loop, pg->poll, fd) != 0) {
      free(pg->poll);
      pg->poll = NULL;
      return;
    }
    pg->poll->data = pg;
    pg->poll_fd = fd;
    pg->poll_id = socket_id(fd);
    pg->poll_events = 0;
  }
  if (events != pg->poll_events) {
    uv_poll_start(pg->poll, events, poll_cb);
    pg->poll_events = events;
  }
}

/* ---- the watchdog ------------------------------------------------------ */

static int awaiting_results(const struct svc_pg *pg)
{
  return pg->conn && pg->cur_slot < pg->n_slots;
}

/* Bounds a connection attempt (from its start) and each wait for results
 * (from the last sign of life): past the bound the connection is lost. */
static void watchdog_cb(uv_timer_t *t)
{
  struct svc_pg *pg = t->data;
  int connecting = pg->state == ST_CONNECTING && (pg->handshake || pg->resolving);
  if (!pg->wait_limit_ms || (!connecting && !awaiting_results(pg))) return;
  uint64_t quiet = uv_now(pg->loop) - pg->last_io;
  if (quiet < pg->wait_limit_ms) {
    uv_timer_start(t, watchdog_cb, pg->wait_limit_ms - quiet, 0);
    return;
  }
  char why[80];
  snprintf(why, sizeof why, "%s %llu ms", connecting ? "connect timed out after" : "no result for",
           (unsigned long long)quiet);
  svc__pg_lost(pg, why);
}

/* Starts bounding a wait of limit_ms (0: unbounded) from now. */
static void watch(struct svc_pg *pg, uint64_t limit_ms)
{
  pg->last_io = uv_now(pg->loop);
  pg->wait_limit_ms = limit_ms;
  if (limit_ms) uv_timer_start(&pg->watchdog, watchdog_cb, limit_ms, 0);
  else uv_timer_stop(&pg->watchdog);
}

void svc__pg_watch_io(struct svc_pg *pg)
{
  pg->last_io = uv_now(pg->loop);
  if (pg->wait_limit_ms && !uv_is_active((uv_handle_t *)&pg->watchdog))
    uv_timer_start(&pg->watchdog, watchdog_cb, pg->wait_limit_ms, 0);
}

/* ---- connecting -------------------------------------------------------- */

static void connect_step(struct svc_pg *pg)
{
  switch (PQconnectPoll(pg->conn)) {
  case PGRES_POLLING_READING: svc__pg_update_poll(pg, UV_READABLE); return;
  case PGRES_POLLING_WRITING: svc__pg_update_poll(pg, UV_WRITABLE); return;
  case PGRES_POLLING_FAILED: svc__pg_lost(pg, PQerrorMessage(pg->conn)); return;
  default: break;
  }
  pg->handshake = 0;
  pg->backend_pid = PQbackendPID(pg->conn);
  watch(pg, (uint64_t)pg->opts.batch_timeout_ms); /* from now on, results are waited for */
  svc__pg_pipeline_begin(pg);
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
  struct svc_pg *pg = h->data;
  if (!pg->conn) return;
  if (pg->handshake) {
    /* An error on the socket (libuv stops the handle and says UV_EBADF) is
     * for libpq to read: it may go on to the next address or host. */
    if (status < 0) pg->poll_events = 0;
    connect_step(pg);
    return;
  }
  if (status < 0) {
    svc__pg_lost(pg, uv_strerror(status));
    return;
  }
  if (events & UV_WRITABLE) {
    if (svc__pg_pipeline_flush(pg)) {
      svc__pg_lost(pg, PQerrorMessage(pg->conn));
      return;
    }
  }
  if (events & UV_READABLE) {
    if (!PQconsumeInput(pg->conn)) {
      svc__pg_lost(pg, PQerrorMessage(pg->conn));
      return;
    }
    pg->last_io = uv_now(pg->loop);
    svc__pg_pipeline_input(pg);
    if (pg->conn && PQstatus(pg->conn) == CONNECTION_BAD) svc__pg_lost(pg, "connection bad");
  }
}

/* Starts the handshake, to the resolved addresses where names were resolved. */
static void connect_now(struct svc_pg *pg)
{
  watch(pg, svc__pg_params_connect_ms(pg->params));
  pg->conn = svc__pg_params_connect(pg->params);
  if (!pg->conn || PQstatus(pg->conn) == CONNECTION_BAD) {
    svc__pg_lost(pg, pg->conn ? PQerrorMessage(pg->conn) : "out of memory");
    return;
  }
  pg->handshake = 1;
  svc__pg_update_poll(pg, UV_WRITABLE);
}

static void resolved_cb(void *arg, const char *error)
{
  struct svc_pg *pg = arg;
  pg->resolving = 0;
  if (error) svc__pg_lost(pg, error);
  else connect_now(pg);
}

static void reconnect_timer_cb(uv_timer_t *t)
{
  struct svc_pg *pg = t->data;
  if (pg->destroying) return;
  pg->state = ST_CONNECTING;
  watch(pg, svc__pg_params_connect_ms(pg->params)); /* the look-up is part of the attempt */
  int r = svc__pg_params_resolve(pg->params, pg->loop, resolved_cb, pg);
  if (r == 0) pg->resolving = 1;
  else if (r < 0) svc__pg_lost(pg, "no host name could be resolved");
  else connect_now(pg);
}

void svc__pg_reconnect_later(struct svc_pg *pg, uint64_t delay_ms)
{
  uv_timer_start(&pg->timer, reconnect_timer_cb, delay_ms, 0);
}
