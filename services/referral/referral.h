/* The private header of whistle-referral (吹哨报到, docs/rules.md §3), with
 * prototypes grouped by file: the pure referral rules R-R1..R-R6 over plain
 * structs (routing, the step state machine, the two clocks, closing), the
 * store (all SQL) and the handlers (unit interface, intake stream, clock). */
#ifndef REFERRAL_H
#define REFERRAL_H

#include <stddef.h>
#include <stdint.h>
#include "svc_attr.h"

#include "svc_registry.h"
#include "svc_time.h"

#define REFERRAL_RULE_SET "v1"
#define REFERRAL_CODE_MAX 72       /* codes: ticket numbers, units, categories */
#define REFERRAL_REDO_WORKDAYS 3   /* R-R6: the redo step's resolve clock */
#define REFERRAL_CLOSE_WORKDAYS 3  /* R-R2: closing without a callback */
#define REFERRAL_WARN_PCT 80       /* R-R4: warnings at 80% of a clock */
#define REFERRAL_TEXT_MAX 2000     /* notes (characters) */
#define REFERRAL_REASON_MAX 500
#define REFERRAL_EVIDENCE_MAX 20
#define REFERRAL_PROGRESS_MAX 64   /* progress times remembered per step (duplicates) */
#define REFERRAL_PENDING_MAX 8     /* repeat notes kept while no step is open */
/* Times units and operators may stamp: 2000-01-01 to 2100-01-01 (+08:00), so
 * deadline arithmetic never leaves int64 (hostile input). */
#define REFERRAL_AT_MIN_US INT64_C(946656000000000)
#define REFERRAL_AT_MAX_US INT64_C(4102416000000000)

/* ---- referral_rules.c: the pure rules (docs/rules.md §3) ---- */

enum referral_step_state { RS_ISSUED, RS_ACCEPTED, RS_RETURNED, RS_RESOLVED, RS_REOPENED };
enum referral_ticket_state {
  RT_TRIAGE,   /* waits for intake's operator (R-I3, R-I4) */
  RT_RECORDED, /* not dispatched (R-I2) */
  RT_REPEAT,   /* linked to an earlier ticket (R-I5) */
  RT_OPEN,     /* a step is with a unit */
  RT_RETURNED, /* its step was returned: waits for re-dispatch (R-R3) */
  RT_RESOLVED, /* the chain is done (R-R2) */
  RT_CLOSED    /* 销号 */
};
enum referral_issue_reason { RI_ROUTE, RI_REDISPATCH, RI_REDO };

/* Clock flags of a step: a clock is settled once its warning or overdue
 * event is emitted or known to be needless (R-R4: exactly once). */
#define RC_ACCEPT_WARN 1u
#define RC_ACCEPT_DUE 2u
#define RC_RESOLVE_WARN 4u
#define RC_RESOLVE_DUE 8u
#define RC_ALL 15u

struct referral_step {
  uint32_t no;                  /* 1, 2, 3, ... per ticket in issue order (R-E3a) */
  uint32_t chain_pos, chain_len;
  char unit[REFERRAL_CODE_MAX];
  int street_unit;              /* 1: a street office, 0: a department */
  char unit_district[REFERRAL_CODE_MAX];
  enum referral_issue_reason reason;
  uint32_t replaces;            /* REDISPATCH/REDO: the step replaced */
  enum referral_step_state state;
  int accept_hours, resolve_workdays;
  int64_t issued_us, accept_by_us, resolve_by_us;
  int64_t accepted_us, resolved_us, returned_us, reopened_us; /* 0 = not yet */
  int violation;                /* RESOLVE: violation confirmed */
  char prohibition[4];          /* "" or P1..P9 */
  unsigned settled;             /* RC_* */
  unsigned overdue;             /* RC_ACCEPT_DUE / RC_RESOLVE_DUE emitted */
  int64_t progress_us[REFERRAL_PROGRESS_MAX]; size_t n_progress;
};

struct referral_ticket {
  char ticket_no[REFERRAL_CODE_MAX];
  uint64_t ticket_id;
  enum referral_ticket_state state;
  char request_type[16], category[REFERRAL_CODE_MAX], compound[REFERRAL_CODE_MAX];
  char street[REFERRAL_CODE_MAX], district[REFERRAL_CODE_MAX], management[16];
  char company[REFERRAL_CODE_MAX], repeat_of[REFERRAL_CODE_MAX];
  char pseudonym[72], masked_phone[24];
  char *address, *content;      /* owned */
  int64_t received_us;
  int urgent, returns, consult, violation_done;
  int exempt;                   /* 核减 by an operator (intake's ticket.exempted) */
  int64_t resolved_us, close_by_us, closed_us;
  /* While RT_RETURNED: since when and why it waits for re-dispatch (R-R3). */
  int64_t wait_us;
  char wait_reason[REFERRAL_REASON_MAX * 4 + 1];
  struct referral_step *steps; size_t n_steps, cap_steps;
  /* Repeat calls (R-I5) made while no step was open (waiting for re-dispatch):
   * their ticket numbers, noted on the next step issued. */
  char pending[REFERRAL_PENDING_MAX][REFERRAL_CODE_MAX]; size_t n_pending;
  int is_new, dirty;
};

/* What a rule decided, for the handlers to publish. */
enum referral_fx_kind {
  FX_STEP_ISSUED, FX_STEP_ACCEPTED, FX_STEP_RETURNED, FX_STEP_PROGRESS, FX_STEP_RESOLVED,
  FX_STEP_REOPENED, FX_STEP_NOTE, FX_WARN_ACCEPT, FX_WARN_RESOLVE, FX_ACCEPT_OVERDUE,
  FX_RESOLVE_OVERDUE, FX_TICKET_RESOLVED, FX_TICKET_CLOSED, FX_TICKET_REOPENED,
  FX_TICKET_RETURNED, FX_TICKET_CONSULT, FX_VIOLATION, FX_FEEDBACK
};
struct referral_fx {
  enum referral_fx_kind kind;
  uint32_t step;                /* step number (0: none) */
  int64_t at_us;                /* event time */
  int late;
  const char *text;             /* note, reason, satisfaction, close reason, repeat ticket */
  const char *effect;           /* FX_FEEDBACK: CLOSED, REDO or NONE */
  enum referral_ticket_state before; /* FX_FEEDBACK: the state before */
};
#define REFERRAL_FX_MAX 32
struct referral_fxs { struct referral_fx v[REFERRAL_FX_MAX]; size_t n; };

/* A unit's update (proto/unit.proto StepUpdate) after decoding. */
enum referral_action { RA_ACCEPT = 1, RA_RETURN, RA_PROGRESS, RA_RESOLVE };
struct referral_update {
  const char *ticket_no;
  uint32_t step;
  const char *unit;             /* the acting unit (authenticated identity) */
  int64_t at_us;
  enum referral_action action;
  const char *note, *reason;
  int violation;
  const char *prohibition;
};

/* Outcome of an update, a re-dispatch or a callback. */
enum referral_verdict { RV_APPLIED, RV_DUPLICATE, RV_BAD, RV_UNKNOWN, RV_WRONG_UNIT, RV_WRONG_STATE };
struct referral_result {
  enum referral_verdict verdict;
  char reason[160];
  int late;
  uint32_t step, next_step;     /* the step acted on; the one issued, 0 if none */
};

const char *referral_step_state_name(enum referral_step_state s);
const char *referral_ticket_state_name(enum referral_ticket_state s);
/* 0 and the state, or -1 for an unknown name. */
int referral_step_state_parse(const char *s, enum referral_step_state *out);
int referral_ticket_state_parse(const char *s, enum referral_ticket_state *out);
const char *referral_issue_reason_name(enum referral_issue_reason r);
int referral_issue_reason_parse(const char *s, enum referral_issue_reason *out);

/* R-R1 and routing: the unit of a routing step for a ticket: "STREET" is the
 * compound's street, and PS_* categories of a SELF/CUSTODIAL/NONE compound go
 * to the street whatever the table says. Writes the unit into out; returns
 * 0, or -1 when it cannot be decided (no street). */
int referral_route_unit(const struct svc_route_step *rs, const char *category,
                        const char *management, const char *street, char *out, size_t n);

/* The last step of the ticket, or NULL. */
struct referral_step *referral_last_step(struct referral_ticket *t);
struct referral_step *referral_find_step(struct referral_ticket *t, uint32_t no);

/* Issues a new step to unit at at_us with the given clocks (R-R4, R-T5),
 * appending FX_STEP_ISSUED. Returns the step, or NULL (out of memory). */
struct referral_step *referral_issue(struct referral_ticket *t, const struct svc_registry *reg,
                                     const char *unit, uint32_t chain_pos, uint32_t chain_len,
                                     int accept_hours, int resolve_workdays,
                                     enum referral_issue_reason why, uint32_t replaces,
                                     int64_t at_us, struct referral_fxs *fx);

/* R-R2: dispatches a ticket (first step at at_us: received time, or triage
 * time) along its category's routing. Without routing or unit the ticket
 * waits for re-dispatch (RT_RETURNED with FX_TICKET_RETURNED). 0 or -1 (OOM). */
int referral_dispatch(struct referral_ticket *t, const struct svc_registry *reg, int64_t at_us,
                      struct referral_fxs *fx);

/* R-R2..R-R4: applies a unit's update to the ticket. On RV_APPLIED the ticket
 * changed (dirty) and fx lists what to publish; any other verdict changes
 * nothing. now_us bounds future stamps (0 = no bound). */
void referral_update_apply(struct referral_ticket *t, const struct svc_registry *reg,
                           const struct referral_update *u, int64_t now_us,
                           struct referral_result *res, struct referral_fxs *fx);

/* R-R3: an operator re-dispatches returned step `step` to unit at at_us;
 * step 0 dispatches a ticket that could not be routed at all (no steps). */
void referral_redispatch(struct referral_ticket *t, const struct svc_registry *reg, uint32_t step,
                         const char *unit, int64_t at_us, struct referral_result *res,
                         struct referral_fxs *fx);

/* R-R2, R-R6, R-I7: a satisfaction callback. Always appends FX_FEEDBACK;
 * closes (SATISFIED, BASICALLY_SATISFIED) or redoes (UNSATISFIED) a RESOLVED
 * ticket; any other state changes nothing. 0 or -1 (bad satisfaction, OOM). */
int referral_feedback(struct referral_ticket *t, const struct svc_registry *reg,
                      const char *satisfaction, int64_t at_us, struct referral_fxs *fx);

/* R-I5: a repeat call adds a note to the earlier ticket's open step
 * (FX_STEP_NOTE). While the ticket waits for re-dispatch the note is kept
 * and goes to the next step issued; a resolved ticket's last step gets it
 * (the caller says the matter persists); a closed ticket none. */
void referral_repeat_note(struct referral_ticket *earlier, const char *repeat_ticket_no,
                          int64_t at_us, struct referral_fxs *fx);

/* R-R4, R-R2: moves the ticket's clocks to now_us: warnings at 80%, exactly
 * one overdue per step and clock whose deadline passed without the action
 * (an action stamped within the deadline second is on time; a return stops
 * both clocks), closing 3 working days after resolving. Event times are the
 * warning instants and deadlines. fx may fill up: call again while it
 * returns 1 (more to do); 0 when done. */
int referral_tick(struct referral_ticket *t, int64_t now_us, struct referral_fxs *fx);

/* The earliest instant at which referral_tick would do something, or 0 if
 * never (no pending clock). */
int64_t referral_next_due(const struct referral_ticket *t);

/* R-R4 for the ops queries: 1 if the step's accept (resolve 0/1) clock is
 * overdue for good: its ACCEPT_OVERDUE (RESOLVE_OVERDUE) was published, or
 * the action that stopped the clock (accept, resolve, or a return) was
 * stamped after the deadline, so that the overdue is certain (it is
 * published once event time passes the deadline) and the update was
 * reported late. A clock still running or met in time: 0. */
int referral_step_overdue(const struct referral_step *s, int resolve);

/* Frees what the ticket owns (not t itself). */
void referral_ticket_clear(struct referral_ticket *t);

/* ---- referral_store.c: all SQL of the service ---- */

struct svc_pg;
struct svc_pg_batch;
struct referral_store;

/* Called with each ticket a load found; the ticket is the callee's to keep
 * (free with referral_ticket_clear + free). */
typedef void (*referral_ticket_cb)(void *arg, struct referral_ticket *t);
/* Where loaded tickets go; must live until the batch's results are in. */
struct referral_loader { referral_ticket_cb cb; void *arg; };

struct referral_store *referral_store_new(struct svc_pg *pg);
void referral_store_destroy(struct referral_store **s);
/* Loads the tickets named (one statement). 0 or -1. */
SVC_MUST_CHECK int referral_store_load(struct referral_store *s, struct svc_pg_batch *b,
                        const char *const *ticket_nos, size_t n, const struct referral_loader *l);
/* Loads up to limit tickets with a clock due at or before now_us. */
SVC_MUST_CHECK int referral_store_due(struct referral_store *s, struct svc_pg_batch *b, int64_t now_us,
                       size_t limit, const struct referral_loader *l);
/* Inserts or updates the ticket with its steps and next due instant. */
SVC_MUST_CHECK int referral_store_save(struct referral_store *s, struct svc_pg_batch *b,
                        const struct referral_ticket *t);
/* Records the intake watermark received and the watermark published. */
SVC_MUST_CHECK int referral_store_clock(struct referral_store *s, struct svc_pg_batch *b, int64_t in_us,
                         int64_t out_us);
/* Ops queries (read-only; the loader gets each ticket in ticket_no order):
 * the count of every ticket (*total, once the batch's results are in), the
 * page [offset, offset + limit) of every ticket, and the tickets waiting
 * for re-dispatch (RT_RETURNED). */
SVC_MUST_CHECK int referral_store_count(struct referral_store *s, struct svc_pg_batch *b,
                                        uint32_t *total);
SVC_MUST_CHECK int referral_store_page(struct referral_store *s, struct svc_pg_batch *b,
                                       uint32_t offset, uint32_t limit,
                                       const struct referral_loader *l);
SVC_MUST_CHECK int referral_store_returned(struct referral_store *s, struct svc_pg_batch *b,
                                           const struct referral_loader *l);
/* At start-up, before the loop runs (blocking): the saved watermarks. */
int referral_store_load_clock(const char *conninfo, int64_t *in_us, int64_t *out_us);

/* ---- referral_scrub.c (its SQL in referral_store.c): the R-I6a one-off ---- */

/* The name under which the one-off is recorded in referral.one_offs. */
#define REFERRAL_SCRUB_NAME "r-i6a-mask-typed-numbers"
/* Rewrites one stream payload (an svc_stream_rewrite_fn): 1 with *out
 * (malloc'd), 0 unchanged, -1 unreadable. */
typedef int (*referral_payload_fn)(void *arg, const uint8_t *payload, size_t len, uint8_t **out,
                                   size_t *out_len);
/* R-I6a for the numbers typed into content and address that referral took
 * from intake before intake masked them. At start-up, after the migrations
 * and before anything is served (blocking, its own connection), once per
 * schema (svc_pg_one_off): masks content and address of every step.issued
 * payload in the outbox (the only referral event carrying them), in place
 * with seq and order unchanged, and of every ticket row. Logs progress. 0
 * (done now or before), or -1 (logged; runs again at the next start). */
int referral_scrub(const char *conninfo);
/* The rewrite of a step.issued payload: content and address masked. */
int referral_scrub_step_issued(void *arg, const uint8_t *payload, size_t len, uint8_t **out,
                               size_t *out_len);
/* The one-off's SQL: the outbox pass with `issued`, then the tickets. */
int referral_store_scrub(const char *conninfo, referral_payload_fn issued);

/* ---- referral_handlers.c: unit interface, intake stream, clock ---- */

struct svc_server_ops;
struct svc_stream_producer;
struct svc_stream_event;
struct referral_cache;
struct referral_apply;
struct referral_tickjob;

struct referral_ctx {
  struct svc_registry *reg;        /* swapped on SIGHUP */
  struct referral_store *store;
  struct svc_stream_producer *prod;
  struct svc_pg *pg;               /* the write connection every batch runs on */
  struct svc_clock clock;
  char operators[256];             /* identities allowed to re-dispatch */
  char ops[256];                   /* identities allowed to query (WHISTLE_REFERRAL_OPS) */
  char act_as[256];                /* identities that may act as any unit (WHISTLE_REFERRAL_ACT_AS) */
  int curve;
  int64_t in_watermark_us;         /* the intake watermark applied (committed) */
  int64_t staged_in_watermark_us;  /* the one the running consumer batch records */
  int64_t out_watermark_us;        /* the referral watermark published */
  int clock_busy, clock_again;
  struct referral_cache *cache;    /* tickets of the running batch */
  struct referral_apply *applying; /* the intake apply in flight */
  struct referral_tickjob *tick;
  struct referral_counters {
    uint64_t tickets, steps, updates, refused, duplicates, redispatches, feedback, warnings,
             overdue, closed, violations, notes;
  } n;                             /* of what committed */
  struct referral_counters staged; /* of the running batch: added to n if it commits */
  uint64_t staged_batch;           /* the batch they belong to */
};

/* What a unit's update carried beyond struct referral_update (for events). */
struct referral_change { const char *const *evidence; size_t n_evidence; };

/* Tickets loaded by a batch's first stage, waiting for its decision stage. */
struct referral_loaded { struct referral_ticket **v; size_t n, cap; };
void referral_loaded_add(struct referral_loaded *l, struct referral_ticket *t);
/* Moves the loaded tickets into the running batch's cache. */
void referral_loaded_absorb(struct referral_ctx *x, struct referral_loaded *l);
void referral_loaded_clear(struct referral_loaded *l);

/* The cache of the tickets the running batch b works on: begin drops what
 * an earlier batch left (decisions are made in stages >= 2, which run only
 * while their batch is the connection's running one). put takes ownership
 * and returns the cached ticket (an earlier load of the same wins); NULL on
 * out of memory. save stages the upsert of every changed ticket. */
void referral_cache_begin(struct referral_ctx *x, struct svc_pg_batch *b);
struct referral_ticket *referral_cache_get(struct referral_ctx *x, const char *ticket_no);
struct referral_ticket *referral_cache_put(struct referral_ctx *x, struct referral_ticket *t);
SVC_MUST_CHECK int referral_cache_save(struct referral_ctx *x, struct svc_pg_batch *b);
/* Appends to batch b the stream events for what the rules decided (fx) on
 * ticket t; an event that cannot be appended fails b. */
void referral_publish(struct referral_ctx *x, struct svc_pg_batch *b, struct referral_ticket *t,
                      const struct referral_fxs *fx, const struct referral_change *ch);
/* "Now" for the clocks: the intake watermark, or (wall mode) the later of it
 * and the system clock. */
int64_t referral_clock_now(const struct referral_ctx *x);
int referral_handlers_init(struct referral_ctx *x);

/* ---- referral_queries.c: the ops queries' JSON lines (proto/unit.proto Query) ---- */
struct json_t;
/* The ticket in the export shape of `whistlectl export tickets`; detail
 * adds the times and step details of Query TICKET. NULL: out of memory. */
struct json_t *referral_ticket_json(const struct referral_ticket *t, int detail);
/* What a ticket waiting for re-dispatch (RT_RETURNED) waits with (Query
 * RETURNED); NULL if it does not wait, or out of memory. */
struct json_t *referral_returned_json(const struct referral_ticket *t);

/* ---- referral_units.c: the unit interface (proto/unit.proto) ---- */
extern const struct svc_server_ops referral_unit_ops;
/* The intake stream consumer's callbacks (svc_stream_consumer_new + _stages). */
int referral_intake_apply(void *arg, struct svc_pg_batch *b, const struct svc_stream_event *ev,
                          size_t n);
int referral_intake_apply_next(void *arg, struct svc_pg_batch *b,
                               const struct svc_stream_event *ev, size_t n, int stage);
/* Moves the clocks to the current time if anything is due (one batch at a
 * time; again until nothing is due), then publishes the referral watermark. */
void referral_clock_run(struct referral_ctx *x);
void referral_handlers_free(struct referral_ctx *x);

#endif
