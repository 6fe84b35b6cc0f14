/* The hotline client of the tools' library (whistle-hotline, whistlectl
 * replay): the feed lines as read and packed by hotline_feed.c (scenario feed (docs/formats.md)
 * format) and the sender in hotline_send.c (many requests in flight over one
 * DEALER, resends, barriers). */
#ifndef HOTLINE_CLIENT_H
#define HOTLINE_CLIENT_H

#include <stddef.h>
#include <stdint.h>

/* The feed line types that go to intake (the order of the summary rows). */
enum hotline_type { HL_TICKET, HL_FEEDBACK, HL_WATERMARK, HL_TRIAGE, HL_EXEMPT, HL_NTYPES };
extern const char *const hotline_type_names[HL_NTYPES];

/* Reply statuses as in proto/hotline.proto, plus "never answered". */
enum hotline_status { HL_ACCEPTED, HL_DUPLICATE, HL_REJECTED, HL_UNAVAILABLE, HL_NOREPLY,
                      HL_NSTATUS };
extern const char *const hotline_status_names[HL_NSTATUS];

/* Where a line is in its exchange with intake. */
enum hotline_state {
  HL_WAITING,  /* not sent yet */
  HL_INFLIGHT, /* sent, no final answer yet */
  HL_RETRY,    /* answered UNAVAILABLE: to be sent again after the timeout */
  HL_DONE      /* answered ACCEPTED, DUPLICATE or REJECTED */
};

/* One feed line bound for intake, its packed request and its final reply. */
struct hotline_line {
  size_t lineno;               /* 1-based line number in the feed; the request_id */
  enum hotline_type type;
  int64_t at_us;
  char *ticket_no;             /* "" for watermarks */
  uint8_t *msg; size_t len;    /* the packed HotlineMessage */
  size_t prev_same;            /* 1 + index of the previous line with this
                                  ticket_no, 0 if none (it must be answered first) */
  size_t prev_watermark;       /* 1 + index of the previous watermark, 0 if none
                                  (it must be answered first) */
  enum hotline_state state;
  enum hotline_status status;  /* the last reply (HL_NOREPLY before any) */
  unsigned sends;
  uint64_t gen;                /* bumped on every send: stale timers are ignored */
  uint64_t ticket_id;
  char *reason, *category, *compound, *disposition; /* from the reply, or NULL */
};

/* A whole feed, validated before anything is sent. */
struct hotline_feed {
  struct hotline_line *v; size_t n;
  size_t lines;                 /* lines read, blank ones included */
  size_t blank;                 /* whitespace-only lines (ignored) */
  size_t skipped_update, skipped_inspection, skipped_redispatch;
  size_t out_of_order;          /* lines whose `at` is before an earlier line's */
  size_t first_out_of_order;    /* the line number of the first of them */
};

/* Reads and validates the feed at path ("-" for stdin) into f, packing each
 * line's request with request_id = its line number. strict: `update`,
 * `inspection` and triage lines naming a `unit` (referral's re-dispatch) and
 * lines out of `at` order are errors instead of being skipped or counted.
 * Returns 0, or -1 with "path:line: reason" (or "path: reason") in err; f is
 * then freed. */
int hotline_feed_load(struct hotline_feed *f, const char *path, int strict, char *err,
                      size_t errlen);
/* Frees everything f holds; f is zeroed. */
void hotline_feed_free(struct hotline_feed *f);

/* Builds one intake line from a parsed feed object o whose "type" is type
 * (ticket, feedback, watermark, triage or exempt; a triage line is packed as
 * TriageComplete whatever its unit): sets l->type, l->ticket_no and the packed
 * request with request_id l->lineno; l->lineno and l->at_us must be set.
 * 0, or -1 with the reason (e.g. a field of the wrong type) in err. */
struct json_t;
int hotline_line_from_json(struct json_t *o, const char *type, struct hotline_line *l, char *err,
                           size_t errlen);
/* Frees what one line holds (not the line itself). */
void hotline_line_free(struct hotline_line *l);

/* Records a Reply (proto/hotline.proto) to line l: its status and reason;
 * for a final answer (not UNAVAILABLE) also state HL_DONE and what intake
 * decided. For senders of their own (whistlectl replay's schedule). */
void hotline_line_answer(struct hotline_line *l, unsigned status, const char *reason, uint64_t ticket_id,
                         const char *category, const char *compound, const char *disposition);

/* How to talk to intake. */
struct hotline_opts {
  const char *endpoint;
  const char *server_key_file;  /* Z85 public key of intake; NULL: plain */
  const char *client_key_file;  /* Z85 secret key of this client; NULL: plain */
  size_t inflight;              /* most lines sent and not finally answered */
  int ordered;                  /* each line only after the previous one is answered */
  int64_t timeout_us;           /* resend after this long without an answer */
  int64_t deadline_us;          /* give up after this long in all; 0: never */
  int progress;                 /* 0 none, 1 a live line (terminal), 2 every 10 % */
  size_t maxmsgsize;            /* largest reply accepted */
  const char *prog;             /* the name in messages; NULL: "whistle-hotline" */
};

/* What happened while pushing. */
struct hotline_run {
  size_t sent, answered;        /* lines sent at least once; lines finally answered */
  uint64_t resent_timeout;      /* resends after --timeout-ms without an answer */
  uint64_t resent_unavailable;  /* resends after an UNAVAILABLE answer */
  uint64_t extra_replies;       /* replies to lines answered already (resends) */
  uint64_t bad_replies;         /* frames that were not a Reply to one of our requests */
  uint64_t send_errors;
  int64_t elapsed_us;           /* from the first send to the last answer */
  int interrupted;              /* SIGINT or SIGTERM stopped the run */
  int deadline_passed;
};

/* Connects to intake and pushes every line of f, recording each line's final
 * reply in it. Returns 0 when the run went its course (whether or not every
 * line was answered: see run and the lines), or -1 with a message on stderr
 * when the socket could not be set up (bad key file, bad endpoint). */
int hotline_push(struct hotline_feed *f, const struct hotline_opts *o, struct hotline_run *run);


#endif
