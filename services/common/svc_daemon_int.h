/* Internal to the daemon frame: the kinds of parts a daemon registers
 * (svc_daemon_start.c creates them, svc_daemon_parts.c drains and destroys
 * them). Not for services: internal symbols carry the svc__ prefix; the
 * svc_ ones are the public svc_daemon.h. */
#ifndef SVC_DAEMON_INT_H
#define SVC_DAEMON_INT_H

#include "svc_daemon.h"

/* In the order svc_daemon_finish tears them down. */
enum svc__part_kind {
  SVC__PART_TIMER,     /* uv_timer_t * */
  SVC__PART_PG,        /* struct svc_pg * */
  SVC__PART_SERVER,    /* struct svc_server * */
  SVC__PART_CONSUMER,  /* struct svc_stream_consumer * */
  SVC__PART_PRODUCER,  /* struct svc_stream_producer * */
  SVC__PART_KINDS
};

/* 1 when d can take one more part; else logs what could not be added and
 * returns 0. */
int svc__daemon_has_room(const struct svc_daemon *d, const char *what);
/* Registers obj (not NULL; svc__daemon_has_room said yes) as a part of kind. */
void svc__daemon_add(struct svc_daemon *d, enum svc__part_kind kind, void *obj);

#endif
