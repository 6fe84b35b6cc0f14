/* Signals through uv_signal_t: SIGTERM and SIGINT ask the daemon to drain and
 * stop, SIGHUP asks it to reload registry data and keys. A second SIGTERM/SIGINT
 * while draining exits at once. */
#ifndef SVC_SIGNAL_H
#define SVC_SIGNAL_H

#include <stdint.h>
#include <uv.h>

struct svc_signals {
  uv_signal_t term, intr, hup;
  void (*on_stop)(void *arg);   /* first SIGTERM/SIGINT */
  void (*on_reload)(void *arg); /* SIGHUP; may be NULL */
  void *arg;
  int stopping;
};

/* Starts the three watchers on loop. Returns 0 or -1. */
int svc_signals_start(struct svc_signals *s, uv_loop_t *loop,
                      void (*on_stop)(void *), void (*on_reload)(void *), void *arg);
/* Closes the watchers (uv_close); the struct must live until the loop has run
 * the close callbacks. */
void svc_signals_close(struct svc_signals *s);

/* Before the loop runs (the start-up wait for Postgres): SIGTERM/SIGINT only
 * set a flag that svc_stop_requested() reports and interrupt sleeps. A stop
 * asked for then is handed to the loop's watchers by svc_signals_start. */
void svc_signals_early(void);
/* 1 once a stop signal has arrived (early or on the loop). */
int svc_stop_requested(void);

/* A SIGHUP reload of what (e.g. "registry", "allowed keys") failed: logs that
 * the previous one stays in force and counts it (svc_reload_failures). */
void svc_reload_failed(const char *what, const char *reason);
uint64_t svc_reload_failures(void);

#endif
