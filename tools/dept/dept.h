/* The private header of whistle-dept, the department client: the scripted
 * department's policy and plans (dept_policy.c, pure), stream events and
 * replies as JSON (dept_json.c), the output file and position (dept_out.c),
 * the stream watcher (dept_watch.c), the update client (dept_units.c), the
 * commands (dept_update.c, dept_run.c), escalation's notices and signatures
 * (dept_notices.c) and the options (dept.c). */
#ifndef DEPT_H
#define DEPT_H

#include <stddef.h>
#include <stdint.h>

#include <protobuf-c/protobuf-c.h>
#include <uv.h>

#include "svc_zmq.h"
#include "unit.pb-c.h"

/* ---- dept_policy.c: what a scripted department does with a step ---- */

/* The policy of `whistle-dept run` (a JSON object; see dept_policy.c). */
struct dept_policy {
  int64_t accept_after_min;   /* ACCEPT this long after issue */
  int64_t resolve_after_min;  /* RESOLVE this long after issue */
  int64_t return_after_min;   /* RETURN this long after issue */
  int64_t late_accept_min;    /* late steps: ACCEPT this long after accept_by */
  int64_t late_resolve_min;   /* late steps: RESOLVE or RETURN this long after resolve_by */
  uint32_t late_every, return_every, violation_every, ignore_every; /* 0 = never */
  char return_reason[1024];   /* RETURN's reason, 1-500 characters */
};

/* The facts of a step.issued that a plan depends on. */
struct dept_step {
  const char *ticket_no;
  uint32_t step, chain_pos, chain_len;
  int64_t issued_us, accept_by_us, resolve_by_us;
  const char *default_prohibition; /* may be "" */
};

enum dept_plan_kind { DEPT_PLAN_IGNORE, DEPT_PLAN_RESOLVE, DEPT_PLAN_RETURN };

/* What to send for one step: ACCEPT at accept_at_us, then RESOLVE or RETURN
 * at second_at_us (nothing for DEPT_PLAN_IGNORE). */
struct dept_plan {
  enum dept_plan_kind kind;
  int late;                   /* chosen to act after the step's deadlines */
  int64_t accept_at_us, second_at_us;
  int violation_confirmed;    /* RESOLVE */
  const char *prohibition;    /* RESOLVE: the step's default_prohibition or "" */
  uint32_t hash;              /* dept_step_hash of the step */
};

/* Sets the defaults (documented in dept_policy.c). */
void dept_policy_defaults(struct dept_policy *p);
/* Parses a policy from JSON text (// comments allowed) over the defaults:
 * absent keys keep their default, unknown keys and bad values are errors.
 * Returns 0, or -1 with the reason in err. */
int dept_policy_parse(struct dept_policy *p, const char *text, size_t len, char *err,
                      size_t errlen);
/* Reads and parses the policy file at path. 0, or -1 with "path: reason" in err. */
int dept_policy_load(struct dept_policy *p, const char *path, char *err, size_t errlen);
/* FNV-1a (32 bit) of len bytes, continuing from h (start with DEPT_FNV_BASIS). */
#define DEPT_FNV_BASIS UINT32_C(2166136261)
uint32_t dept_fnv1a(uint32_t h, const void *data, size_t len);
/* The stable hash of a step: FNV-1a of "ticket_no|step". */
uint32_t dept_step_hash(const char *ticket_no, uint32_t step);
/* The every-n selections: 1 when a step with this hash is picked for the
 * selection named by salt (about one step in `every`; never when every is 0). */
enum dept_pick_salt { DEPT_PICK_IGNORE = 1, DEPT_PICK_RETURN, DEPT_PICK_LATE, DEPT_PICK_VIOLATION };
int dept_pick(uint32_t hash, uint32_t every, enum dept_pick_salt salt);
/* Plans the actions on step s under policy p: deterministic, from the step's
 * times only. out->prohibition points into s. */
void dept_plan_step(const struct dept_policy *p, const struct dept_step *s, struct dept_plan *out);

/* ---- dept_json.c: events and replies as JSON lines ---- */

/* The payload message type of a referral stream event kind, or NULL
 * (WATERMARK, unknown kinds). */
const ProtobufCMessageDescriptor *dept_payload_descriptor(const char *kind);
/* Builds the JSON line (with '\n') of one event: seq, received_us (when
 * non-zero: --stamp), kind, event_at, unit,
 * then the payload's fields (times as RFC 3339 local, "_us" dropped from
 * their names). payload may be NULL (WATERMARK; or undecodable: raw, len
 * bytes, shown as payload_hex). Returns a malloc'd string, *n its length;
 * NULL on OOM. */
char *dept_event_line(uint64_t seq, int64_t event_us, int64_t received_us, const char *kind,
                      const char *unit, const ProtobufCMessage *payload, const uint8_t *raw,
                      size_t len, size_t *n);
/* The JSON line (with '\n') of a Reply, or of no reply (r NULL: status
 * NO_REPLY). Malloc'd, NULL on OOM. */
char *dept_reply_line(const Whistle__Unit__Reply *r);

/* ---- dept_out.c: the output file and the position ---- */

struct dept_out;
/* Opens the output (path "-" or NULL: stdout; a file is appended to) and
 * reads the position file (NULL: none, position 0; missing: 0). With a
 * position file and an output file, a partial last line (a crash in the
 * middle of a write) is cut and the position is at least the seq of the last
 * whole line. NULL with the reason in err. */
struct dept_out *dept_out_open(const char *out_path, const char *pos_path, char *err, size_t errlen);
uint64_t dept_out_position(const struct dept_out *o);
/* Writes one line (buffered). 0 or -1. */
int dept_out_write(struct dept_out *o, const char *line, size_t len);
/* Makes what was written durable (flush, fsync) and then records seq as the
 * position (atomically replaced file). 0, or -1 with the reason on stderr. */
int dept_out_commit(struct dept_out *o, uint64_t seq);
void dept_out_close(struct dept_out **o);

/* ---- dept_watch.c: the stream subscription ---- */

struct dept_watch_opts {
  const char *endpoint;        /* referral's stream */
  const char *unit;            /* Subscribe.consumer */
  const char *server_key;      /* Z85 public key of referral, or NULL (plain) */
  const char *out_path, *position_path;
  int64_t until_idle_ms;       /* 0: run until stopped */
  uint64_t max_events;         /* 0: no limit */
  uint32_t window;             /* 0: 1000 */
  int silence_ms;              /* re-subscribe after this much silence; 0: 5000 */
  int stamp;                   /* add received_us to every line */
  /* The payload type of an event kind (NULL: written as payload_hex); NULL
   * here: dept_payload_descriptor (referral's kinds). */
  const ProtobufCMessageDescriptor *(*payload_of)(const char *kind);
  int skip_watermarks;         /* WATERMARK events move the position, write no line */
};
struct dept_watch;
/* Called for every new event (seq above the position) before its line is
 * queued: payload is the decoded payload or NULL. Returns how many holds the
 * event gets (0: written at once; n: written after n dept_watch_release
 * calls with its seq). Events are written, and the position moved, in seq
 * order, so a held event holds back the ones after it. */
typedef unsigned (*dept_event_cb)(void *arg, uint64_t seq, const char *kind,
                                  const ProtobufCMessage *payload);
/* Called once when the watch ends: rc 0 (idle, --max, dept_watch_stop) or 1
 * (cannot write, nothing heard from the stream). The watch must then be
 * destroyed. */
typedef void (*dept_done_cb)(void *arg, int rc);
struct dept_watch *dept_watch_new(uv_loop_t *loop, struct svc_zctx *z,
                                  const struct dept_watch_opts *o, dept_event_cb on_event,
                                  dept_done_cb on_done, void *arg, char *err, size_t errlen);
void dept_watch_release(struct dept_watch *w, uint64_t seq);
/* Writes what is ready, records the position and ends the watch (done: rc 0). */
void dept_watch_stop(struct dept_watch *w);
struct dept_watch_stats { uint64_t position, written, duplicates, resubscribes, bad_frames; };
void dept_watch_stats(const struct dept_watch *w, struct dept_watch_stats *st);
void dept_watch_destroy(struct dept_watch **w);

/* ---- dept_units.c: the update interface ---- */

struct dept_units_opts {
  const char *endpoint;        /* referral's unit interface */
  const char *server_key;      /* Z85 or NULL */
  int64_t timeout_us;          /* give a request up after this long; 0: never */
  int64_t resend_us;           /* resend an unanswered request this often */
  int retry_unavailable;       /* UNAVAILABLE: send again (1) or report it (0) */
};
struct dept_units;
/* The final answer to a request sent with dept_units_send: r is NULL when the
 * request was given up (timeout, shutdown). r is valid during the call only. */
typedef void (*dept_reply_cb)(void *arg, void *req_arg, const Whistle__Unit__Reply *r);
struct dept_units *dept_units_new(uv_loop_t *loop, struct svc_zctx *z,
                                  const struct dept_units_opts *o, dept_reply_cb cb, void *arg);
/* Sends m (version and request_id are set here) and resends it until its
 * final answer. 0 or -1 (cannot pack, OOM). */
int dept_units_send(struct dept_units *u, Whistle__Unit__UnitMessage *m, void *req_arg);
size_t dept_units_pending(const struct dept_units *u);
struct dept_units_stats { uint64_t sent, resent, replies, extra, bad, gave_up; };
void dept_units_stats(const struct dept_units *u, struct dept_units_stats *st);
/* Gives up every pending request (callbacks with NULL) and closes the socket. */
void dept_units_destroy(struct dept_units **u);

/* ---- dept.c / dept_update.c / dept_run.c: the commands ---- */

enum dept_cmd { DEPT_WATCH, DEPT_RUN, DEPT_ACCEPT, DEPT_PROGRESS, DEPT_RETURN, DEPT_RESOLVE,
                DEPT_REDISPATCH, DEPT_NOTICES, DEPT_SIGN, DEPT_NCMDS };

#define DEPT_MAX_EVIDENCE 20

struct dept_args {
  enum dept_cmd cmd;
  const char *unit, *stream, *units, *requests, *position, *out, *policy;
  const char *server_key_file, *client_key_file;
  const char *ticket_no, *new_unit, *note, *reason, *prohibition;
  const char *number;          /* sign: the notice's number */
  const char *evidence[DEPT_MAX_EVIDENCE]; size_t n_evidence;
  uint32_t step;
  int64_t at_us; int have_at;
  int violation;
  int64_t until_idle_ms, timeout_ms;
  uint64_t max;
  int stamp;                   /* --stamp: lines carry received_us */
  char server_key[SVC_Z85_KEY_LEN + 1]; /* read from server_key_file */
};

/* The loop's ZeroMQ context for a command (CURVE when keys are given).
 * NULL after printing why. */
struct svc_zctx *dept_zctx_new(uv_loop_t *loop, const struct dept_args *a);
/* Closes every handle still open on loop, runs it dry and closes it. */
void dept_loop_close(uv_loop_t *loop);

/* accept, progress, return, resolve, redispatch: exit status 0 or 1. */
int dept_update_main(struct dept_args *a);
/* watch and run: exit status 0 or 1. */
int dept_watch_main(struct dept_args *a);
int dept_run_main(struct dept_args *a);
/* notices (escalation's stream as JSON lines) and sign (one Sign request):
 * exit status 0 or 1. */
int dept_notices_main(struct dept_args *a);
int dept_sign_main(struct dept_args *a);

#endif
