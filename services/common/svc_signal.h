/* Signals through uv_signal_t: SIGTERM and SIGINT ask the daemon to drain and
 * stop, SIGHUP asks it to reload registry data and keys. A second SIGTERM/SIGINT
 * while draining exits at once. */
#ifndef SVC_SIGNAL_H
#define SVC_SIGNAL_H

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

#endif
