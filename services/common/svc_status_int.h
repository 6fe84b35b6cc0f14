/* Internal to the status pieces: reading the counters back for the HTTP
 * health and metrics endpoint (svc_http.c). Not for services: internal
 * symbols carry the svc__ prefix; the svc_ ones are the public *.h. */
#ifndef SVC_STATUS_INT_H
#define SVC_STATUS_INT_H

#include "svc_status.h"

struct svc__http;
/* Listens on "host:port" ("*:9101" for every address). NULL after logging. */
struct svc__http *svc__http_new(uv_loop_t *loop, const char *addr, struct svc_status *st);
void svc__http_destroy(struct svc__http **h);

/* The current value of one counter, or def if the daemon reports no such one. */
int64_t svc__status_value(struct svc_status *st, const char *name, int64_t def);
/* Every counter in Prometheus text format (whistle_<name>{service="..."}),
 * malloc'ed; NULL when out of memory. */
char *svc__status_prometheus(struct svc_status *st);

#endif
