/* The usual start-up sequence of a daemon, each piece registered with it so
 * that the stop sequence drains it and the teardown destroys it in order:
 * migrations and the write/read connections, the stream producer and
 * consumers, request servers and periodic timers. See svc_daemon.h. */
#include "svc_daemon_int.h"

#include "svc_log.h"

int svc_daemon_open_pg(struct svc_daemon *d, const char *schema, const struct svc_migration *own,
                       struct svc_pg **write, struct svc_pg **read)
{
  if (svc_migrate(svc_daemon_str(d, "WHISTLE_PG"), schema, own,
                  (int)svc_daemon_int(d, "WHISTLE_PG_WAIT_S")))
    return -1;
  *write = svc_daemon_pg(d, "write");
  if (read) *read = svc_daemon_pg(d, "read");
  return *write && (!read || *read) ? 0 : -1;
}

struct svc_pg *svc_daemon_pg(struct svc_daemon *d, const char *name)
{
  if (!svc__daemon_has_room(d, name)) return NULL;
  struct svc_pg *pg = svc_pg_new(&d->loop, name, svc_daemon_str(d, "WHISTLE_PG"));
  if (pg) svc__daemon_add(d, SVC__PART_PG, pg);
  return pg;
}

struct svc_stream_producer *svc_daemon_producer(struct svc_daemon *d, const char *var,
                                                struct svc_pg *write, struct svc_pg *read,
                                                const struct svc_stream_producer_opts *o)
{
  if (!write || !read || !svc__daemon_has_room(d, var)) return NULL;
  struct svc_stream_producer_opts po = *o;
  po.endpoint = svc_daemon_str(d, var);
  if (!po.full_access) po.full_access = svc_daemon_str(d, "WHISTLE_STREAM_FULL_ACCESS");
  struct svc_stream_producer *p = svc_stream_producer_new(&d->loop, d->z, write, read, &po);
  if (p) svc__daemon_add(d, SVC__PART_PRODUCER, p);
  return p;
}

struct svc_stream_consumer *svc_daemon_consumer(struct svc_daemon *d, const char *var,
                                                const char *key_var, struct svc_pg *pg,
                                                const struct svc_stream_consumer_opts *o,
                                                svc_stream_apply_cb apply, void *arg)
{
  char key[SVC_Z85_KEY_LEN + 1];
  if (!pg || !svc__daemon_has_room(d, var) || svc_daemon_server_key(d, key_var, key)) return NULL;
  struct svc_stream_consumer_opts co = *o;
  co.endpoint = svc_daemon_str(d, var);
  co.server_key = key[0] ? key : NULL; /* copied by the consumer */
  struct svc_stream_consumer *c = svc_stream_consumer_new(&d->loop, d->z, pg, &co, apply, arg);
  if (c) svc__daemon_add(d, SVC__PART_CONSUMER, c);
  return c;
}

struct svc_server *svc_daemon_server(struct svc_daemon *d, const char *var, struct svc_pg *pg,
                                     const struct svc_server_opts *o,
                                     const struct svc_server_ops *ops, void *arg)
{
  if (!pg || !svc__daemon_has_room(d, var)) return NULL;
  struct svc_server_opts so = { 0 };
  if (o) so = *o;
  so.endpoint = svc_daemon_str(d, var);
  struct svc_server *s = svc_server_new(&d->loop, d->z, pg, &so, ops, arg);
  if (s) svc__daemon_add(d, SVC__PART_SERVER, s);
  return s;
}

int svc_daemon_timer(struct svc_daemon *d, uv_timer_t *t, uv_timer_cb cb, void *data,
                     uint64_t every_ms)
{
  if (!svc__daemon_has_room(d, "timer") || uv_timer_init(&d->loop, t) != 0) return -1;
  t->data = data;
  svc__daemon_add(d, SVC__PART_TIMER, t);
  return uv_timer_start(t, cb, every_ms, every_ms) == 0 ? 0 : -1;
}
