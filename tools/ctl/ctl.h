/* The private header of whistlectl, the operators' tool: the daemons and their
 * endpoints (ctl.c), requests and the settled signal (ctl_net.c), replay
 * (ctl_replay.c), exports (ctl_export.c) and the views for people: status,
 * trace, triage, summary (ctl_view.c). */
#ifndef CTL_H
#define CTL_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include <protobuf-c/protobuf-c.h>

#include "control.pb-c.h"

#define CTL_PROG "whistlectl"

/* Exit statuses. */
enum { CTL_OK = 0, CTL_FAIL = 1, CTL_USAGE = 2 };

/* The daemons, in the order of the settled pass (proto/control.proto). */
enum ctl_daemon { D_INTAKE, D_REFERRAL, D_RATING, D_ESCALATION, D_N };
extern const char *const ctl_daemon_names[D_N];
/* The request interface of each: hotline, units, requests, requests. */
extern const char *const ctl_iface_names[D_N];

/* Endpoints, keys and timeouts: environment and deployment defaults, then
 * the common options. */
struct ctl_env {
  const char *control[D_N];
  const char *request[D_N];
  const char *client_key;          /* this client's Z85 secret key file, or NULL */
  const char *server_key[D_N];     /* each daemon's Z85 public key file, or NULL */
  int64_t timeout_us;              /* one request's answer */
  int64_t settle_us;               /* one wait for the settled signal */
};
void ctl_env_init(struct ctl_env *e);
/* The common options, for each command's getopt_long table and switch. */
#define CTL_COMMON_OPTS                                                            \
  { "timeout", required_argument, NULL, 1001 },                                    \
  { "client-key", required_argument, NULL, 1002 },                                 \
  { "server-key", required_argument, NULL, 1003 },                                 \
  { "settle-timeout", required_argument, NULL, 1004 }
/* Handles a common option (c from getopt_long). 0 handled, 1 not a common
 * option, -1 bad value (message printed). */
int ctl_env_option(struct ctl_env *e, int c, const char *arg);
/* The help text of the common options and the environment. */
void ctl_env_help(FILE *out);

/* A client DEALER to one interface of one daemon. */
struct ctl_conn {
  enum ctl_daemon d;
  int control;                 /* the control endpoint (else the request interface) */
  const char *endpoint;
  void *sock;
  uint64_t next_id;
  const struct ctl_env *env;
};
/* 0, or -1 after printing why (bad endpoint, key file). */
int ctl_conn_open(struct ctl_conn *c, const struct ctl_env *e, enum ctl_daemon d, int control);
void ctl_conn_close(struct ctl_conn *c);
/* "referral (units tcp://127.0.0.1:7201)" for messages. */
const char *ctl_conn_name(const struct ctl_conn *c, char *buf, size_t n);

/* Sends req, an envelope message (HotlineMessage, UnitMessage, RatingMessage,
 * NoticeMessage: version and request_id are set here), and waits for the
 * reply with its request_id, resending every second and after UNAVAILABLE,
 * up to timeout_us. Returns the unpacked envelope (free with
 * protobuf_c_message_free_unpacked(m, NULL)), or NULL after printing (unless
 * quiet) that the daemon did not answer in time. */
ProtobufCMessage *ctl_call(struct ctl_conn *c, ProtobufCMessage *req, int64_t timeout_us, int quiet);
/* For callers that keep many requests in flight on one connection: packs
 * req (version and the connection's next request_id set; *id) into a
 * malloc'd buffer of *len bytes, or NULL (out of memory). */
uint8_t *ctl_pack(struct ctl_conn *c, ProtobufCMessage *req, size_t *len, uint64_t *id);
/* A one-frame answer to such a request: the unpacked envelope (of
 * descriptor d) with its reply's request_id in *id and *unavailable set for
 * an UNAVAILABLE reply (send again shortly); NULL when the frame is no
 * reply. */
ProtobufCMessage *ctl_unpack_reply(const ProtobufCMessageDescriptor *d, const void *data, size_t len,
                                   uint64_t *id, int *unavailable);
/* One status request on a control connection: the ControlMessage, or NULL
 * when nothing came within timeout_us (the socket is then reopened so that a
 * late answer cannot be taken for the next one). */
Whistle__Control__ControlMessage *ctl_status(struct ctl_conn *c, int64_t timeout_us);

/* For callers that keep their own poll loop: sends one status request on a
 * control connection (-1 when it cannot), and takes a status reply that has
 * come (NULL when none has yet). A caller that gives up waiting replaces the
 * socket (ctl_conn_reopen) so that the late answer is never read. */
int ctl_status_send(struct ctl_conn *c);
Whistle__Control__ControlMessage *ctl_status_take(struct ctl_conn *c);
/* Closes and opens the connection again: 0, or -1 after printing why. */
int ctl_conn_reopen(struct ctl_conn *c);

/* A paged query: calls make(arg, offset) for each page's request and
 * collects the reply's lines. Returns 0 with *lines (malloc'd array of
 * malloc'd strings) and *n, 1 when the reply says pending (period not closed
 * yet), -1 after printing why (no answer, refused). */
typedef ProtobufCMessage *(*ctl_page_fn)(void *arg, uint32_t offset);
int ctl_query_lines(struct ctl_conn *c, ctl_page_fn make, void *arg, char ***lines, size_t *n);
void ctl_lines_free(char **lines, size_t n);

/* The settled signal over the four control connections. */
struct ctl_settle {
  struct ctl_conn ctl[D_N];
  /* The daemons a pass reads (bit 1 << enum ctl_daemon); 0: all four. A pass
   * over intake and referral only says that every step the lines sent so far
   * caused is visible in referral (the replay rule); rating and escalation
   * only consume. */
  unsigned mask;
  /* Also each input read before its producer in the pass (intake's of
   * referral) against the head the producer reports later in it: a closure
   * referral made is then known to intake too. */
  int back;
  uint64_t passes, waits;
  int64_t wait_us;             /* time spent waiting, in all */
  Whistle__Control__ControlMessage *last[D_N]; /* the last pass's replies */
};
int ctl_settle_open(struct ctl_settle *s, const struct ctl_env *e);
void ctl_settle_close(struct ctl_settle *s);
/* One pass: 1 settled, 0 not (why says who is behind), -1 a daemon did not
 * answer (why names it). The replies stay in s->last. */
int ctl_settle_pass(struct ctl_settle *s, int64_t timeout_us, char *why, size_t n);
/* Waits until a pass is settled, polling; 0, or -1 after printing which
 * daemon is behind (or silent) when the deadline passes. */
int ctl_settle_wait(struct ctl_settle *s, int64_t deadline_us);

/* RFC 3339 at +08:00 into buf (>= 40 bytes). */
const char *ctl_time(int64_t us, char *buf, size_t n);

/* Commands: argc/argv start at the command's name. Exit status. */
int ctl_status_main(int argc, char **argv);
int ctl_replay_main(int argc, char **argv);
int ctl_export_main(int argc, char **argv);
int ctl_trace_main(int argc, char **argv);
int ctl_triage_main(int argc, char **argv);
int ctl_summary_main(int argc, char **argv);

/* Exports shared by export and summary: writes one export to out (the
 * export shape, lines as the daemons give them). what: notices,
 * decisions, tickets, rankings, units, credit, stars; period for the last
 * four. 0, 1 period not closed yet (message printed), -1 failure. */
int ctl_export_one(const struct ctl_env *e, const char *what, const char *period, FILE *out);
/* export --all DIR. 0 or -1. */
int ctl_export_all(const struct ctl_env *e, const char *dir, int verbose);

#endif
