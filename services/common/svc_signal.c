/* Signal handling on the libuv loop: the first SIGTERM or SIGINT calls on_stop
 * (drain), a second one exits at once with status 130, and SIGHUP calls
 * on_reload. The callbacks run on the loop thread, not in signal context.
 * Before the loop, a stop signal only sets a flag (the start-up wait checks
 * it); failed reloads are counted here. */
#include "svc_signal.h"

#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "svc_log.h"

/* The conventional name of one of the watched signals. */
static const char *sig_name(int signum) {
  switch (signum) {
  case SIGTERM: return "SIGTERM";
  case SIGINT: return "SIGINT";
  case SIGHUP: return "SIGHUP";
  default: return "other";
  }
}

static volatile sig_atomic_t early_stop;
static uint64_t reload_failures;

static void early_handler(int signum) {
  (void)signum;
  early_stop = 1;
}

void svc_signals_early(void) {
  struct sigaction sa;

  memset(&sa, 0, sizeof sa);
  sa.sa_handler = early_handler; /* no SA_RESTART: sleeps end at once */
  sigemptyset(&sa.sa_mask);
  sigaction(SIGTERM, &sa, NULL);
  sigaction(SIGINT, &sa, NULL);
}

int svc_stop_requested(void) {
  return early_stop != 0;
}

void svc_reload_failed(const char *what, const char *reason) {
  char q[600];

  reload_failures++;
  svc_error("reload failed: the previous one stays in force", " what=\"%s\" error=%s",
            what ? what : "", svc_log_quote(q, sizeof q, reason ? reason : ""));
}

uint64_t svc_reload_failures(void) {
  return reload_failures;
}

static void on_stop_signal(uv_signal_t *h, int signum) {
  struct svc_signals *s = h->data;

  early_stop = 1;
  if (s->stopping) {
    svc_warn("second stop signal, exiting now", " signal=%s", sig_name(signum));
    _exit(130);
  }
  s->stopping = 1;
  svc_info("stop signal, draining", " signal=%s", sig_name(signum));
  if (s->on_stop) s->on_stop(s->arg);
}

static void on_hup_signal(uv_signal_t *h, int signum) {
  struct svc_signals *s = h->data;

  svc_info("reload signal", " signal=%s", sig_name(signum));
  if (s->on_reload) s->on_reload(s->arg);
}

/* Initialises and starts one watcher; 0 or -1 (logged). */
static int watch(struct svc_signals *s, uv_loop_t *loop, uv_signal_t *h, uv_signal_cb cb, int signum) {
  int rc = uv_signal_init(loop, h);

  if (rc == 0) {
    h->data = s;
    rc = uv_signal_start(h, cb, signum);
  }
  if (rc != 0) {
    svc_error("cannot watch signal", " signal=%d err=%s", signum, uv_strerror(rc));
    return -1;
  }
  return 0;
}

int svc_signals_start(struct svc_signals *s, uv_loop_t *loop,
                      void (*on_stop)(void *), void (*on_reload)(void *), void *arg) {
  if (!s || !loop) return -1;
  memset(s, 0, sizeof *s);
  s->on_stop = on_stop;
  s->on_reload = on_reload;
  s->arg = arg;
  if (watch(s, loop, &s->term, on_stop_signal, SIGTERM) != 0 ||
      watch(s, loop, &s->intr, on_stop_signal, SIGINT) != 0 ||
      watch(s, loop, &s->hup, on_hup_signal, SIGHUP) != 0) {
    svc_signals_close(s);
    return -1;
  }
  if (early_stop) raise(SIGTERM); /* asked for before the loop: drain now */
  return 0;
}

/* Closes h if it was initialised and is not already closing. */
static void close_one(uv_signal_t *h) {
  if (h->type == UV_SIGNAL && h->loop && !uv_is_closing((uv_handle_t *)h))
    uv_close((uv_handle_t *)h, NULL);
}

void svc_signals_close(struct svc_signals *s) {
  if (!s) return;
  close_one(&s->term);
  close_one(&s->intr);
  close_one(&s->hup);
}
