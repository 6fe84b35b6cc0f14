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

/* The Prometheus description of a status name (svc_metrics.c): the metric
 * name (whistle_..., _total for counters, _seconds for _us values) into
 * pname, its help text, *scale_us set when the value is microseconds. */
enum svc__metric_kind { SVC__METRIC_GAUGE, SVC__METRIC_COUNTER };
enum svc__metric_kind svc__metric_describe(const char *name, char *pname, size_t pn,
                                           char *help, size_t hn, int *scale_us);

#endif
