/* More of what every business daemon's main.c shares: its registry loaded and
 * reloaded, its service clock set up and a restored clock reported, and the
 * drain chain a stop signal starts (each part drains in turn, then the
 * daemon finishes). See svc_daemon.h. */
#include "svc_daemon.h"

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

/* ---- the drain chain ---------------------------------------------------------- */

static void drain_next(void *arg)
{
  struct svc_daemon *d = arg;
  if (d->drain_i < d->drain_n) {
    struct svc_drain_step s = d->drain[d->drain_i++];
    s.drain(s.obj, drain_next, d);
    return;
  }
  if (d->drain_finish) d->drain_finish(d->drain_arg);
}

void svc_daemon_drain(struct svc_daemon *d, const struct svc_drain_step *steps, size_t n,
                      void (*finish)(void *), void *arg)
{
  svc_info("draining", "%s", "");
  d->drain_n = n < SVC_DRAIN_MAX ? n : SVC_DRAIN_MAX;
  for (size_t i = 0; i < d->drain_n; i++) d->drain[i] = steps[i];
  d->drain_i = 0;
  d->drain_finish = finish;
  d->drain_arg = arg;
  drain_next(d);
}

static void drain_consumer(void *obj, void (*done)(void *), void *arg)
{
  if (obj) svc_stream_consumer_drain(obj, done, arg);
  else done(arg);
}

static void drain_server(void *obj, void (*done)(void *), void *arg)
{
  if (obj) svc_server_drain(obj, done, arg);
  else done(arg);
}

struct svc_drain_step svc_drain_consumer(struct svc_stream_consumer *c)
{
  return (struct svc_drain_step){ drain_consumer, c };
}

struct svc_drain_step svc_drain_server(struct svc_server *s)
{
  return (struct svc_drain_step){ drain_server, s };
}
