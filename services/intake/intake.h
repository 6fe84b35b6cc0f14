/* The private header of whistle-intake (the 12345 feed, docs/rules.md §2), with
 * prototypes grouped by file: the multi-pattern matcher, the registry (docs/rules.md
 * §1, registry CSVs of docs/formats.md), the pure intake rules R-I1..R-I8, then the
 * store and the handlers. */
#ifndef INTAKE_H
#define INTAKE_H

#include <stddef.h>
#include <stdint.h>
#include "svc_attr.h"

#include "svc_registry.h"
#include "svc_time.h"

/* ---- intake_rules.c: the pure intake rules (docs/rules.md §2) ---- */

#define INTAKE_TICKET_NO_MAX 64
#define INTAKE_CONTENT_MAX_CHARS 4000
#define INTAKE_ADDRESS_MAX_CHARS 1000
#define INTAKE_SHORT_MAX_CHARS 100 /* hotline_category, caller_name, compound_code, district */
#define INTAKE_PHONE_MIN 5
#define INTAKE_PHONE_MAX 20
/* 2000-01-01T00:00:00+08:00, the earliest acceptable received time (R-I8). */
#define INTAKE_RECEIVED_MIN_US INT64_C(946656000000000)
#define INTAKE_DAY_US (INT64_C(86400) * 1000000)
#define INTAKE_REPEAT_WINDOW_US (7 * INTAKE_DAY_US) /* R-I5 */
#define INTAKE_HEX_SHA256 65                        /* 64 hex digits and NUL */
#define INTAKE_MASKED_MAX (INTAKE_PHONE_MAX + 1)

/* R-I2 request types. 0 is never a valid type. */
enum intake_request_type {
  INTAKE_REQ_CONSULT = 1, /* 咨询 */
  INTAKE_REQ_HELP,        /* 求助 */
  INTAKE_REQ_COMPLAINT,   /* 投诉 */
  INTAKE_REQ_REPORT,      /* 举报 */
  INTAKE_REQ_SUGGEST      /* 建议 */
};

/* Parses "CONSULT", "HELP", "COMPLAINT", "REPORT" or "SUGGEST" (exact case).
 * Returns 0, or -1 for anything else (*t untouched). */
int intake_request_type_parse(const char *s, enum intake_request_type *t);
/* The wire name of t, or NULL for an invalid value. */
const char *intake_request_type_name(enum intake_request_type t);
/* 1 if tickets of type t are dispatched (referred): COMPLAINT, REPORT, HELP. */
int intake_request_dispatched(enum intake_request_type t);
/* 1 if tickets of type t count in rankings: COMPLAINT, REPORT. */
int intake_request_counted(enum intake_request_type t);

/* A ticket as submitted by the hotline (TicketSubmit). NULL strings are read
 * as "". Nothing is kept beyond a call. */
struct intake_submission {
  const char *ticket_no;
  int64_t received_us;
  const char *request_type;
  const char *hotline_category;
  const char *caller_phone;
  const char *caller_name;
  const char *compound_code;
  const char *district;
  const char *address;
  const char *content;
  uint32_t urgency;
};

/* R-I8: checks a submission at service time now_us. Returns NULL when it is
 * valid, else a sentence naming the field ("content: over 4000 characters"),
 * written into buf (n bytes, 128 is plenty) and returned. Checks: every text
 * field valid UTF-8; ticket_no 1-64 of A-Z a-z 0-9 - _; received_us present,
 * not before 2000-01-01T00:00:00+08:00 and at most one day after now_us;
 * request_type known; content 1-4,000 characters; address or compound_code
 * present; address at most 1,000 and short fields at most 100 characters;
 * caller_phone empty or 5-20 of digits, + and - (at least 5 digits);
 * urgency 0 or 1. */
const char *intake_validate(const struct intake_submission *s, int64_t now_us, char *buf,
                            size_t n);

/* R-I1: the content fingerprint of a submission: lowercase hex SHA-256 over a
 * length-prefixed serialisation of every field, so equal fingerprints mean an
 * identical resubmission (DUPLICATE) and different ones under the same
 * ticket_no a conflict (REJECTED). Returns 0, or -1 (libcrypto failure). */
int intake_fingerprint(const struct intake_submission *s, char out[INTAKE_HEX_SHA256]);

/* How a category was decided (R-I3). */
struct intake_category_result {
  const struct svc_category *category; /* OTHER when unclassified */
  const char *how;                        /* "hotline", "keyword" or "none" */
  const struct svc_keyword *keyword;   /* the winning keyword, or NULL */
};

/* R-I3: the hotline code mapped through hotline_categories wins; otherwise
 * the keywords are matched against the normalised content: highest priority,
 * then earliest start, then table order. No match: OTHER with how "none"
 * (manual triage). hotline_code may be NULL. Results point into r. Returns 0,
 * or -1 (out of memory, NULL arguments). */
int intake_classify(const struct svc_registry *r, const char *hotline_code,
                    const char *content, size_t len, struct intake_category_result *out);

/* How a compound was decided (R-I4). */
struct intake_compound_result {
  const struct svc_compound *compound; /* NULL: manual triage */
  const char *how;   /* "code", "address", "ambiguous" or "none" */
  char reason[192];  /* when compound is NULL: "ambiguous: C0001 C0007" or
                        "no compound name in address" (after "unknown compound
                        code; " if a code was given); else "" */
};

/* R-I4: a known compound code wins; otherwise the longest (in characters)
 * compound name or alias occurring in the normalised address; several
 * compounds tied for longest, or none, give NULL with a reason. code and
 * address may be NULL. Returns 0, or -1 (out of memory, NULL arguments). */
int intake_match_compound(const struct svc_registry *r, const char *code,
                          const char *address, size_t len, struct intake_compound_result *out);

/* A ticket as seen by the repeat rule (R-I5). The last three fields describe
 * an earlier ticket and are ignored for the new one. */
struct intake_repeat_facts {
  const char *ticket_no;
  int64_t received_us;
  enum intake_request_type type;
  const char *pseudonym; /* NULL or "" without a caller phone */
  const char *compound;  /* NULL or "" when not known at intake */
  const char *category;  /* NULL, "" or "OTHER" when not known at intake */
  int dispatched;        /* referred (not left in triage, not RECORDED) */
  int is_repeat;         /* itself linked as a repeat */
  int referral_closed;   /* its referral is CLOSED (销号) */
};

/* R-I5: the earlier ticket that t repeats, or NULL. t must be a COMPLAINT or
 * REPORT with pseudonym, compound and a category other than OTHER; the
 * earlier one must have the same three, be a dispatched non-repeat
 * COMPLAINT/REPORT whose referral is not closed, with a different ticket_no
 * and received in [t - 7 days, t]. Of several, the most recent (ties: the
 * greatest ticket_no). Returns a pointer into earlier. */
const struct intake_repeat_facts *intake_find_repeat(const struct intake_repeat_facts *t,
                                                     const struct intake_repeat_facts *earlier,
                                                     size_t n);

/* R-I6: the masked phone: first 3 and last 4 digits kept ("138****5678")
 * when there are 11 or more, otherwise all but the last 2 masked. Never the
 * full number. "" for a phone without digits. out needs INTAKE_MASKED_MAX
 * bytes. Returns 0, or -1 if n is too small. */
int intake_phone_mask(const char *phone, char *out, size_t n);
/* R-I6: the caller pseudonym: lowercase hex HMAC-SHA256(key, phone digits).
 * Returns 0, or -1 (no digits, empty key, libcrypto failure) with out "". */
int intake_phone_pseudonym(const void *key, size_t keylen, const char *phone,
                           char out[INTAKE_HEX_SHA256]);

/* R-I6a: a ticket's content and address as they may leave intake's schema
 * (its stream, its public table), numbers masked by svc_mask_text. */
struct intake_public_text {
  char *content, *address;          /* owned: intake_public_text_free */
  int content_masked, address_masked; /* 1 when masking changed the text */
};
/* R-I6a: masks content and address (NULL reads as ""). Call it after
 * classification (R-I3) and compound matching (R-I4), which read the
 * original text, so masking never changes a category or a compound.
 * Returns 0, or -1 (out of memory; out holds nothing to free). */
int intake_mask_ticket(const char *content, const char *address, struct intake_public_text *out);
void intake_public_text_free(struct intake_public_text *p);

/* ---- intake_store.c: all SQL of the service ---- */

struct svc_pg;
struct svc_pg_batch;
struct intake_store;

/* A ticket already in the database, as a lookup found it. */
struct intake_existing {
  int found;
  uint64_t id;
  char fingerprint[INTAKE_HEX_SHA256];
  char category[72], compound[72], street[72], district[72];
  char disposition[16], request_type[16];
  int exempt;
};

/* An earlier ticket of the same caller, compound and category (R-I5). */
#define INTAKE_MAX_CANDIDATES 50
struct intake_candidate {
  char ticket_no[INTAKE_TICKET_NO_MAX + 1];
  int64_t received_us;
  char request_type[16], disposition[16];
  int is_repeat, closed;
};
struct intake_candidates { size_t n; struct intake_candidate v[INTAKE_MAX_CANDIDATES]; };

/* The row inserted for a new ticket. address and content are the masked
 * text (R-I6a); caller_phone, caller_name and the original texts go to
 * callers (R-I6), the originals only when masking changed them (else NULL). */
struct intake_ticket_row {
  uint64_t id; /* from intake_store_ids */
  const char *ticket_no, *fingerprint;
  int64_t received_us;
  const char *request_type, *hotline_category, *category, *category_source;
  const char *compound, *street, *district, *address, *content;
  uint32_t urgency;
  const char *pseudonym, *masked_phone, *disposition, *repeat_of, *triage_reason;
  const char *caller_phone, *caller_name;
  const char *content_original, *address_original;
};

/* Registers the statements on pg (before the loop runs). NULL on failure. */
struct intake_store *intake_store_new(struct svc_pg *pg);
void intake_store_destroy(struct intake_store **s);
/* Each adds one statement to b; its result is written to *out when the
 * stage's results arrive (out must live until then). 0 or -1. */
SVC_MUST_CHECK int intake_store_lookup(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                        struct intake_existing *out);

/* Bulk statements: each adds one statement for n elements (none when n is
 * 0), the parameters going as arrays (unnest); results are written through
 * the out pointers, which must live until the batch ends. 0 or -1. */
struct intake_lookup {
  const char *ticket_no;
  struct intake_existing *out;
};
SVC_MUST_CHECK int intake_store_lookup_many(struct intake_store *s, struct svc_pg_batch *b,
                             const struct intake_lookup *q, size_t n);
/* R-I5: the earlier tickets of the same pseudonym, compound and category
 * received in [from_us, to_us], the most recent first, at most
 * INTAKE_MAX_CANDIDATES. */
struct intake_repeat_query {
  const char *pseudonym, *compound, *category;
  int64_t from_us, to_us;
  struct intake_candidates *out;
};
SVC_MUST_CHECK int intake_store_candidates_many(struct intake_store *s, struct svc_pg_batch *b,
                                 const struct intake_repeat_query *q, size_t n);
/* Reserves n new ticket ids: out[0..n) receives them (0 until the results
 * arrive); out must live until the batch ends. */
SVC_MUST_CHECK int intake_store_ids(struct intake_store *s, struct svc_pg_batch *b, size_t n, uint64_t *out);
/* Inserts the rows, with the ids reserved, and their callers. A ticket
 * number that exists fails the batch (unique index). */
SVC_MUST_CHECK int intake_store_insert_many(struct intake_store *s, struct svc_pg_batch *b,
                             const struct intake_ticket_row *rows, size_t n);
/* *state_out: 0 unknown ticket, 1 callback recorded before, 2 recorded now. */
SVC_MUST_CHECK int intake_store_feedback(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                          int64_t at_us, const char *satisfaction, int *state_out);
/* *id_out: the ticket's id if it was in triage and is now completed, else 0. */
SVC_MUST_CHECK int intake_store_triage(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                        const char *compound, const char *street, const char *district,
                        const char *category, const char *disposition, int64_t at_us,
                        const char *operator_id, uint64_t *id_out);
/* *id_out: the ticket's id if it is exempted now, 0 if unknown or exempt already. */
SVC_MUST_CHECK int intake_store_exempt(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                        const char *reason, int64_t at_us, const char *operator_id,
                        uint64_t *id_out);
/* Ops: the tickets waiting in manual triage (R-I3, R-I4), sorted by
 * ticket_no, each handed to cb as (ticket_no, received_us, triage_reason,
 * category, compound, address) in text. 0 or -1. */
typedef void (*intake_row_cb)(void *arg, int n, const char *const *v);
SVC_MUST_CHECK int intake_store_triage_list(struct intake_store *s, struct svc_pg_batch *b,
                                            intake_row_cb cb, void *arg);
/* intake_queries.c: a row of intake_store_triage_list as its JSON line,
 * added to the struct svc_lines arg. */
void intake_triage_row(void *arg, int n, const char *const *v);

/* R-I6 retention: erases phone, name and the original content and address
 * (R-I6a) of tickets closed before cutoff_us (RECORDED tickets count as
 * closed when received); the masked text stays. At most INTAKE_PURGE_CHUNK
 * callers per call: *erased_out (rows) equal to it means run it again. */
#define INTAKE_PURGE_CHUNK 5000
SVC_MUST_CHECK int intake_store_purge(struct intake_store *s, struct svc_pg_batch *b, int64_t now_us,
                       int64_t cutoff_us, uint64_t *erased_out);

/* At start-up, before the loop runs (blocking): the last watermark and the
 * latest event time on the intake stream, so that a restart neither moves the
 * clock back nor publishes an older watermark again. 0 or -1. */
int intake_store_load_clock(const char *conninfo, int64_t *watermark_us, int64_t *latest_us);

/* ---- intake_scrub.c (its SQL in intake_store.c): the R-I6a one-off ---- */

/* The name under which the one-off is recorded in intake.one_offs. */
#define INTAKE_SCRUB_NAME "r-i6a-mask-typed-numbers"
/* Rewrites one stream payload (an svc_stream_rewrite_fn): 1 with *out
 * (malloc'd), 0 unchanged, -1 unreadable. */
typedef int (*intake_payload_fn)(void *arg, const uint8_t *payload, size_t len, uint8_t **out,
                                 size_t *out_len);
/* R-I6a for what intake stored and published before typed numbers were
 * masked. At start-up, after the migrations and before anything is served
 * (blocking, its own connection), once per schema (svc_pg_one_off): masks
 * content and address of every ticket.accepted payload in the outbox, in
 * place (seq and order unchanged), and of every ticket row, moving the
 * originals to callers unless the retention purge erased its caller. Logs
 * progress. 0 (done now or before), or -1 (logged; runs again next start). */
int intake_scrub(const char *conninfo);
/* The rewrite of a ticket.accepted payload: content and address masked. */
int intake_scrub_accepted(void *arg, const uint8_t *payload, size_t len, uint8_t **out,
                          size_t *out_len);
/* The one-off's SQL: the outbox pass with `accepted`, then the tickets. */
int intake_store_scrub(const char *conninfo, intake_payload_fn accepted);

/* ---- intake_handlers.c: decode -> rules -> store -> reply ---- */

struct svc_server_ops;
struct svc_stream_producer;

/* What the handlers share with main.c. */
struct intake_ctx {
  struct svc_registry *reg;      /* swapped on SIGHUP */
  struct intake_store *store;
  struct svc_stream_producer *prod;
  struct svc_clock clock;
  const uint8_t *key; size_t keylen; /* pseudonym key (R-I6) */
  int64_t watermark_us;             /* the last watermark committed from the hotline (or
                                       restored at start) */
  int64_t watermark_lag_us;         /* wall mode: how far intake's own watermark trails */
  int64_t pending_watermark_us;     /* the highest one staged in the open batch */
  struct intake_overlay *overlay;   /* new tickets staged in the open batch */
  size_t n_overlay, cap_overlay;
  uint64_t *ids;                    /* ids reserved for them (intake_store_ids) */
  size_t cap_ids;
  struct intake_counters {
    uint64_t accepted, duplicate, rejected, triage, repeats, feedback, watermarks, purged;
  } n;
};

/* The request/reply operations of the hotline interface (proto/hotline.proto). */
extern const struct svc_server_ops intake_hotline_ops;
/* Frees the overlay. */
void intake_handlers_free(struct intake_ctx *x);
/* The latest watermark on intake's stream: the hotline's (or the one
 * restored at start) or intake's own in wall mode, whichever is later. */
int64_t intake_last_watermark(const struct intake_ctx *x);
/* R-T3 wall mode: the stream producer's watermark_fn (arg: the context).
 * The system clock less watermark_lag_us, when that is past the latest
 * watermark; else 0 (nothing to publish). */
int64_t intake_wall_watermark(void *arg);

/* ---- intake_privacy.c: the pseudonym key and the retention purge (R-I6) ---- */

#define INTAKE_KEY_MIN 16  /* bytes of a pseudonym key */
#define INTAKE_KEY_MAX 256
/* The configuration's check of WHISTLE_PSEUDONYM_KEY: 0 when the file can be
 * read and holds at least INTAKE_KEY_MIN bytes, else -1 with a reason in err
 * (never the content). */
int intake_key_check(const char *path, char *err, size_t errlen);
/* Reads the pseudonym key from path (trailing newlines dropped) into key,
 * its length into *len. An empty path means the development key, which is
 * refused with CURVE on (curve 1). 0, or -1 (logged). */
int intake_key_load(const char *path, int curve, uint8_t key[INTAKE_KEY_MAX], size_t *len);

/* R-I6 retention: the purge a timer runs. */
struct intake_purge {
  struct intake_ctx *x;  /* its store, clock and counters */
  struct svc_pg *pg;     /* the connection its batches run on */
  int64_t retention_us;  /* personal data is kept this long after closing */
  const int *stopping;   /* non-zero while the daemon drains: no new chunk */
  int running;           /* a chunk is in flight */
  uint64_t erasing;      /* rows the chunk in flight erases */
};
/* Erases one chunk (intake_store_purge, cut-off now - retention_us, "now"
 * the system clock in wall mode), unless one is in flight or the daemon is
 * draining; after a full chunk committed, the next one. */
void intake_purge_run(struct intake_purge *p);

/* ---- intake_closure.c (and its SQL in intake_store.c): referral's closures ---- */

/* R-I5 and R-I6 need to know when a ticket's referral closed (销号), which
 * only referral knows: intake reads referral's stream for ticket.closed. */
struct svc_stream_event;
struct svc_pg_stmt *intake_store_prepare_closed(struct svc_pg *pg);
/* Sets closed_us of the tickets named, where not set yet (one statement). */
SVC_MUST_CHECK int intake_store_closed(struct svc_pg_stmt *st, struct svc_pg_batch *b,
                        const char *const *ticket_nos, const int64_t *at_us, size_t n);
/* The referral stream consumer's apply callback; arg is the prepared
 * statement of intake_store_prepare_closed. */
int intake_closure_apply(void *arg, struct svc_pg_batch *b, const struct svc_stream_event *ev,
                         size_t n);

#endif
