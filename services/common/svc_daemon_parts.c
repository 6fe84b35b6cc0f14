/* More of what every business daemon's main.c shares: its registry loaded and
 * reloaded, its service clock set up and a restored clock reported, the
 * parts it registered, the stop sequence a stop signal starts (each consumer
 * and server drains in turn) and the teardown that follows. See svc_daemon.h. */
#include "svc_daemon_int.h"

#include "svc_log.h"
#include "svc_registry.h"
#include "svc_server.h"
#include "svc_stream.h"
#include "svc_time.h"

int svc_daemon_registry(struct svc_daemon *d, struct svc_registry **slot, int reloading)
{
  char err[512], q[600];
  const char *dir = svc_daemon_str(d, "WHISTLE_REGISTRY");
  struct svc_registry *r = svc_registry_load(dir, err, sizeof err);
  if (!r) {
    if (reloading) svc_reload_failed("registry", err);
    else svc_error("registry refused", " error=%s", svc_log_quote(q, sizeof q, err));
    return -1;
  }
  svc_registry_destroy(slot); /* services hold copies of its values, never pointers */
  *slot = r;
  if (!reloading) d->registry = slot;
  svc_info("registry loaded", " dir=%s compounds=%zu keywords=%zu routing=%zu departments=%zu"
           " streets=%zu", dir, r->n_compounds, r->n_keywords, r->n_routing, r->n_departments,
           r->n_streets);
  return 0;
}

void svc_daemon_clock(const struct svc_daemon *d, struct svc_clock *c)
{
  enum svc_clock_mode mode = SVC_CLOCK_WALL;
  svc_clock_mode_parse(svc_daemon_str(d, "WHISTLE_CLOCK"), &mode); /* validated by the table */
  svc_clock_init(c, mode);
}

void svc_daemon_clock_restored(const struct svc_clock *c)
{
  int64_t ahead = svc_clock_ahead_us(c);
  if (ahead > SVC_DAY_US) /* dragged before inputs were bounded (R-T3) */
    svc_warn("clock restored ahead of the system clock (R-T3): deadlines and watermarks run"
             " ahead until the system clock catches up", " ahead_s=%lld",
             (long long)(ahead / 1000000));
}

/* ---- parts -------------------------------------------------------------------- */

int svc__daemon_has_room(const struct svc_daemon *d, const char *what)
{
  if (d->parts_n < SVC_DAEMON_PARTS_MAX) return 1;
  svc_error("too many daemon parts", " what=%s max=%d", what, SVC_DAEMON_PARTS_MAX);
  return 0;
}

void svc__daemon_add(struct svc_daemon *d, enum svc__part_kind kind, void *obj)
{
  d->parts[d->parts_n++] = (struct svc__daemon_part){ (int)kind, obj };
}

void svc_daemon_on_reload(struct svc_daemon *d, void (*reload)(void *), void *arg)
{
  d->reload = reload;
  d->reload_arg = arg;
}

void svc_daemon_on_release(struct svc_daemon *d, void (*release)(void *), void *arg)
{
  d->release = release;
  d->release_arg = arg;
}

/* ---- the stop sequence and teardown ------------------------------------------- */

/* Drains the next consumer, or once every consumer has drained the next
 * server; when none is left, finishes. Positions 0..n-1 look for consumers,
 * n..2n-1 for servers. */
static void drain_next(void *arg)
{
  struct svc_daemon *d = arg;
  size_t n = d->parts_n;
  while (d->drain_pos < 2 * n) {
    size_t pos = d->drain_pos++;
    struct svc__daemon_part *p = &d->parts[pos % n];
    if (pos < n && p->kind == SVC__PART_CONSUMER) {
      svc_stream_consumer_drain(p->obj, drain_next, d);
      return;
    }
    if (pos >= n && p->kind == SVC__PART_SERVER) {
      svc_server_drain(p->obj, drain_next, d); /* its drained callback runs last */
      return;
    }
  }
  svc_daemon_finish(d);
}

void svc_daemon_stop(struct svc_daemon *d)
{
  if (d->stopping) return;
  d->stopping = 1;
  svc_info("draining", "%s", "");
  for (size_t i = 0; i < d->parts_n; i++) {
    struct svc__daemon_part *p = &d->parts[i];
    if (p->kind == SVC__PART_TIMER) uv_timer_stop(p->obj);
    else if (p->kind == SVC__PART_PRODUCER) svc_stream_producer_stop(p->obj);
  }
  d->drain_pos = 0;
  drain_next(d);
}

static void destroy_part(struct svc__daemon_part *p)
{
  switch (p->kind) {
  case SVC__PART_TIMER:
    uv_timer_stop(p->obj);
    uv_close(p->obj, NULL); /* embedded in the service's state */
    break;
  case SVC__PART_PG: {
    struct svc_pg *pg = p->obj;
    svc_pg_destroy(&pg);
    break;
  }
  case SVC__PART_SERVER: {
    struct svc_server *s = p->obj;
    svc_server_destroy(&s);
    break;
  }
  case SVC__PART_CONSUMER: {
    struct svc_stream_consumer *c = p->obj;
    svc_stream_consumer_destroy(&c);
    break;
  }
  case SVC__PART_PRODUCER: {
    struct svc_stream_producer *pr = p->obj;
    svc_stream_producer_destroy(&pr);
    break;
  }
  }
  p->obj = NULL;
}

void svc_daemon_finish(struct svc_daemon *d)
{
  /* Connections first: their pending batches end (RETRY) into servers,
   * consumers and producers that still exist (svc_pg_destroy); servers and
   * consumers before the producers they append to. */
  for (int kind = 0; kind < SVC__PART_KINDS; kind++)
    for (size_t i = 0; i < d->parts_n; i++)
      if (d->parts[i].kind == kind && d->parts[i].obj) destroy_part(&d->parts[i]);
  d->parts_n = 0;
  if (d->release) d->release(d->release_arg);
  d->release = NULL;
  if (d->registry) svc_registry_destroy(d->registry);
  d->registry = NULL;
  svc_daemon_close(d);
}

int svc_daemon_abort(struct svc_daemon *d, int exit_code)
{
  d->exit_code = svc_stop_requested() ? 0 : exit_code;
  svc_daemon_finish(d);
  return svc_daemon_run(d);
}

/* ---- signals ------------------------------------------------------------------- */

static void on_stop(void *arg)
{
  svc_daemon_stop(arg);
}

static void on_reload(void *arg)
{
  struct svc_daemon *d = arg;
  if (d->registry) svc_daemon_registry(d, d->registry, 1); /* on failure the old one stays */
  if (d->reload) d->reload(d->reload_arg);
  svc_zctx_reload(d->z);
}

int svc_daemon_serve(struct svc_daemon *d, svc_status_fill_cb fill, void *arg)
{
  return svc_daemon_status(d, fill, arg) || svc_daemon_signals(d, on_stop, on_reload, d) ? -1 : 0;
}
