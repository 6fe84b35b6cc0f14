/* The hotline interface of whistle-intake: decodes each HotlineMessage,
 * applies the intake rules (R-I1..R-I8), stages its statements into the
 * group-commit batch, publishes the intake stream events, and replies once
 * the batch is committed. Tickets staged earlier in the same batch are kept
 * in an overlay, so twins and repeats within one batch are seen too. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "hotline.pb-c.h"
#include "intake.h"
#include "intake_events.pb-c.h"
#include "svc_alloc.h"
#include "svc_csv.h"
#include "svc_lines.h"
#include "svc_log.h"
#include "svc_pg.h"
#include "svc_server.h"
#include "svc_stream.h"

enum kind { K_SUBMIT, K_FEEDBACK, K_WATERMARK, K_TRIAGE, K_EXEMPT, K_QUERY };
#define PAGE_MAX 5000 /* query lines per reply (limit 0: up to this) */

/* The stages of a hotline batch (one transaction), in order. Each stage's
 * statements see the results of the stages before it.
 *   STAGE_LOOKUP    reads, for the batch's new tickets at once (on_stage_batch):
 *                   their ticket_no (R-I1), their callers' earlier tickets
 *                   (R-I5), and reserves their ids.
 *   STAGE_TICKETS   decides R-I1 and R-I5 per ticket (submit_next), then
 *                   writes every new ticket and caller with one statement and
 *                   appends their ticket.accepted (on_stage_end).
 *   STAGE_ACTIONS   twins learn their original's id; callbacks are inserted,
 *                   exemptions updated, triage targets read (action_statements),
 *                   so that they see the batch's new tickets.
 *   STAGE_DECIDE    callbacks and exemptions append their events; triage
 *                   decides and writes its update (triage_next).
 *   STAGE_TRIAGED   triage appends ticket.triaged; queries read (they see
 *                   what the batch's requests before them staged).
 *   STAGE_WATERMARK watermarks are appended last, after every event they cover.
 * A request returns 1 from on_stage_next while it needs a later stage. */
enum stage {
  STAGE_LOOKUP = 1, STAGE_TICKETS, STAGE_ACTIONS, STAGE_DECIDE, STAGE_TRIAGED, STAGE_WATERMARK
};
typedef Whistle__Hotline__Reply__Status reply_status;
#define ST_ACCEPTED WHISTLE__HOTLINE__REPLY__STATUS__ACCEPTED
#define ST_DUPLICATE WHISTLE__HOTLINE__REPLY__STATUS__DUPLICATE
#define ST_REJECTED WHISTLE__HOTLINE__REPLY__STATUS__REJECTED
#define ST_UNAVAILABLE WHISTLE__HOTLINE__REPLY__STATUS__UNAVAILABLE

struct ireq {
  enum kind kind;
  uint64_t request_id;
  int64_t at_us;                 /* received time or action time */
  reply_status status;
  char reason[256];
  uint64_t ticket_id;
  char *ticket_no, *hotline_category, *phone, *name, *address, *content, *text;
  char request_type[16];
  enum intake_request_type type;
  uint32_t urgency;
  char fingerprint[INTAKE_HEX_SHA256], pseudonym[INTAKE_HEX_SHA256], masked[INTAKE_MASKED_MAX];
  char category[72], category_source[16], compound[72], street[72], district[72];
  char management[16], company[72], disposition[16], repeat_of[INTAKE_TICKET_NO_MAX + 1];
  char triage_reason[192], op[128];
  int urgent, repeat_eligible, fb_state;
  struct intake_existing existing;
  struct intake_candidates *cands;
  uint64_t new_id;
  struct ireq *twin;             /* the same ticket staged earlier in the batch */
  uint32_t offset, limit;        /* K_QUERY: the page asked for */
  struct svc_lines lines;        /* K_QUERY: the answer */
};

/* Entry i of the overlay also heads bucket i of two chained hash tables (as
 * many buckets as entries allocated): by ticket number (twins) and by
 * pseudonym (repeats), so a batch of n tickets costs O(n), not O(n^2). */
#define NIL UINT32_MAX
struct intake_overlay {
  struct ireq *r;
  uint32_t next_no, next_ps; /* the next entry in the same bucket */
  uint32_t head_no, head_ps; /* the first entry of bucket i */
};

static uint32_t hash_str(const char *s)
{
  uint32_t h = 2166136261u; /* FNV-1a */
  for (; *s; s++) h = (h ^ (uint8_t)*s) * 16777619u;
  return h;
}

static const char *const management_names[] = { "PROFESSIONAL", "SELF", "CUSTODIAL", "NONE" };

/* ---- replies and events ------------------------------------------------ */

static void send_reply(struct svc_req *req, uint64_t request_id, reply_status st, uint64_t id,
                       const char *reason, const struct ireq *r)
{
  Whistle__Hotline__Reply rep = WHISTLE__HOTLINE__REPLY__INIT;
  rep.request_id = request_id;
  rep.status = st;
  rep.ticket_id = id;
  rep.reason = (char *)(reason ? reason : "");
  if (r && r->kind == K_SUBMIT && (st == ST_ACCEPTED || st == ST_DUPLICATE)) {
    rep.category = (char *)r->category;
    rep.compound = (char *)r->compound;
    rep.disposition = (char *)r->disposition;
  }
  if (r && r->kind == K_QUERY && st == ST_ACCEPTED) {
    rep.total = (uint32_t)r->lines.n;
    svc_lines_page(&r->lines, r->offset, r->limit, PAGE_MAX, &rep.lines, &rep.n_lines);
  }
  Whistle__Hotline__HotlineMessage m = WHISTLE__HOTLINE__HOTLINE_MESSAGE__INIT;
  m.version = 1;
  m.request_id = request_id;
  m.body_case = WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_REPLY;
  m.reply = &rep;
  svc_req_reply_msg(req, &m.base);
}

static void reject(struct ireq *r, const char *why)
{
  r->status = ST_REJECTED;
  snprintf(r->reason, sizeof r->reason, "%s", why);
}

int64_t intake_last_watermark(const struct intake_ctx *x)
{
  int64_t p = x->prod ? svc_stream_last_watermark(x->prod) : 0;
  return p > x->watermark_us ? p : x->watermark_us;
}

int64_t intake_wall_watermark(void *arg)
{
  const struct intake_ctx *x = arg;
  int64_t us = svc_wall_us() - x->watermark_lag_us;
  return us > intake_last_watermark(x) ? us : 0; /* R-T3: only forward */
}

/* Appends an event to batch b; if it cannot, b fails as a whole (nothing of
 * it commits, so no state change goes without its event). In wall mode the
 * stream promises no event before its last watermark (R-T3): an input
 * accepted after it with an earlier business time (a ticket the hotline
 * delivers late) is published at the watermark, its payload keeping its own
 * time. Batches run one at a time, so every watermark committed before this
 * one is known here; this batch's own go after its events. */
static void append(struct intake_ctx *x, struct svc_pg_batch *b, int64_t at, const char *kind,
                   const ProtobufCMessage *m)
{
  int64_t wm = x->clock.mode == SVC_CLOCK_WALL ? intake_last_watermark(x) : 0;
  if (at < wm) at = wm;
  if (svc_stream_append_msg(x->prod, b, at, kind, SVC_STREAM_INTERNAL, m))
    svc_pg_batch_fail(b, "cannot append a stream event");
}

/* ticket.accepted carries the masked content and address (R-I6a). */
static void event_accepted(struct intake_ctx *x, struct svc_pg_batch *b, const struct ireq *r,
                           const struct intake_public_text *pub)
{
  Whistle__Intake__TicketAccepted e = WHISTLE__INTAKE__TICKET_ACCEPTED__INIT;
  e.ticket_no = r->ticket_no;
  e.ticket_id = r->new_id;
  e.received_us = r->at_us;
  e.request_type = (char *)r->request_type;
  e.category = (char *)r->category;
  e.category_source = (char *)r->category_source;
  e.compound = (char *)r->compound;
  e.street = (char *)r->street;
  e.district = (char *)r->district;
  e.management = (char *)r->management;
  e.company = (char *)r->company;
  e.pseudonym = (char *)r->pseudonym;
  e.masked_phone = (char *)r->masked;
  e.address = pub->address;
  e.content = pub->content;
  e.urgent = r->urgent;
  e.disposition = (char *)r->disposition;
  e.repeat_of = (char *)r->repeat_of;
  e.triage_reason = (char *)r->triage_reason;
  append(x, b, r->at_us, "ticket.accepted", &e.base);
}

/* ---- decoding ------------------------------------------------------------ */

static char *sdup(const char *s)
{
  return strdup(s ? s : "");
}

/* The compound-derived fields of a request, copied out of the registry. */
static void set_compound(struct ireq *r, const struct svc_registry *reg, const char *code)
{
  const struct svc_compound *c = code ? svc_registry_compound(reg, code) : NULL;
  snprintf(r->compound, sizeof r->compound, "%s", c ? c->code : "");
  snprintf(r->street, sizeof r->street, "%s", c ? c->street : "");
  snprintf(r->district, sizeof r->district, "%s", c ? c->district : "");
  snprintf(r->management, sizeof r->management, "%s", c ? management_names[c->management] : "");
  snprintf(r->company, sizeof r->company, "%s", c ? c->company : "");
}

/* "Now" for the R-I8 future check: an input may carry a time at most a day
 * past it. In wall mode it is the system clock, whatever the clock observed,
 * so inputs a day ahead cannot ratchet "now" forward (R-T3); in event mode
 * the feed is the clock: only the year 2100 bounds it. */
static int64_t validation_now(const struct intake_ctx *x)
{
  return svc_clock_input_bound(&x->clock) - INTAKE_DAY_US;
}

static int decode_submit(struct intake_ctx *x, struct ireq *r, const Whistle__Hotline__TicketSubmit *m)
{
  struct intake_submission s = {
    .ticket_no = m->ticket_no, .received_us = m->received_us, .request_type = m->request_type,
    .hotline_category = m->hotline_category, .caller_phone = m->caller_phone,
    .caller_name = m->caller_name, .compound_code = m->compound_code, .district = m->district,
    .address = m->address, .content = m->content, .urgency = m->urgency,
  };
  char why[160];
  const char *bad = intake_validate(&s, validation_now(x), why, sizeof why); /* R-I8 */
  if (bad) return reject(r, bad), 1;
  if (intake_request_type_parse(m->request_type, &r->type) || intake_fingerprint(&s, r->fingerprint))
    return reject(r, "request_type: unknown"), 1;
  r->ticket_no = sdup(m->ticket_no);
  r->hotline_category = sdup(m->hotline_category);
  r->phone = sdup(m->caller_phone);
  r->name = sdup(m->caller_name);
  r->address = sdup(m->address);
  r->content = sdup(m->content);
  r->at_us = m->received_us;
  r->urgency = m->urgency;
  snprintf(r->request_type, sizeof r->request_type, "%s", m->request_type);
  struct intake_category_result cr;        /* R-I3 */
  struct intake_compound_result pr;        /* R-I4 */
  if (intake_classify(x->reg, m->hotline_category, m->content, strlen(m->content), &cr) ||
      intake_match_compound(x->reg, m->compound_code, m->address, strlen(m->address), &pr))
    return -1;
  snprintf(r->category, sizeof r->category, "%s", cr.category->code);
  snprintf(r->category_source, sizeof r->category_source, "%s", cr.how);
  r->urgent = cr.category->urgent || m->urgency == 1;
  set_compound(r, x->reg, pr.compound ? pr.compound->code : NULL);
  if (!pr.compound) snprintf(r->triage_reason, sizeof r->triage_reason, "%s", pr.reason);
  else if (cr.category == x->reg->other)
    snprintf(r->triage_reason, sizeof r->triage_reason, "no category for the content");
  if (m->caller_phone[0]) { /* R-I6 */
    intake_phone_mask(m->caller_phone, r->masked, sizeof r->masked);
    intake_phone_pseudonym(x->key, x->keylen, m->caller_phone, r->pseudonym);
  }
  r->repeat_eligible = intake_request_counted(r->type) && r->pseudonym[0] && pr.compound &&
                       cr.category != x->reg->other; /* R-I5 */
  return 0;
}

static const char *const satisfactions[] = { "SATISFIED", "BASICALLY_SATISFIED", "UNSATISFIED" };

static int valid_time(struct intake_ctx *x, int64_t at)
{
  return at >= INTAKE_RECEIVED_MIN_US && at <= validation_now(x) + INTAKE_DAY_US;
}

static int valid_ticket_no(const char *s)
{
  size_t n = strlen(s);
  if (n == 0 || n > INTAKE_TICKET_NO_MAX) return 0;
  for (size_t i = 0; i < n; i++)
    if (!((s[i] >= 'A' && s[i] <= 'Z') || (s[i] >= 'a' && s[i] <= 'z') ||
          (s[i] >= '0' && s[i] <= '9') || s[i] == '-' || s[i] == '_'))
      return 0;
  return 1;
}

static int decode_action(struct intake_ctx *x, struct ireq *r, const Whistle__Hotline__HotlineMessage *m)
{
  const char *tno = NULL;
  switch (m->body_case) {
  case WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_FEEDBACK:
    r->kind = K_FEEDBACK;
    tno = m->feedback->ticket_no;
    r->at_us = m->feedback->received_us;
    for (size_t i = 0; i < 3 && !r->text; i++)
      if (strcmp(m->feedback->satisfaction, satisfactions[i]) == 0) r->text = sdup(satisfactions[i]);
    if (!r->text) return reject(r, "satisfaction: must be SATISFIED, BASICALLY_SATISFIED or UNSATISFIED"), 1;
    break;
  case WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_WATERMARK:
    r->kind = K_WATERMARK;
    r->at_us = m->watermark->at_us;
    if (!valid_time(x, r->at_us)) /* R-T3 */
      return reject(r, "at_us: before 2000 or more than 1 day past the clock"), 1;
    return 0;
  case WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_TRIAGE:
    r->kind = K_TRIAGE;
    tno = m->triage->ticket_no;
    r->at_us = m->triage->at_us;
    if (m->triage->compound_code[0] && !svc_registry_compound(x->reg, m->triage->compound_code))
      return reject(r, "compound_code: unknown compound"), 1;
    if (m->triage->category[0] && (!svc_registry_category(x->reg, m->triage->category) ||
                                   strcmp(m->triage->category, "OTHER") == 0))
      return reject(r, "category: unknown, or OTHER"), 1;
    set_compound(r, x->reg, m->triage->compound_code[0] ? m->triage->compound_code : NULL);
    snprintf(r->category, sizeof r->category, "%s", m->triage->category);
    break;
  case WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_EXEMPT:
    r->kind = K_EXEMPT;
    tno = m->exempt->ticket_no;
    r->at_us = m->exempt->at_us;
    if (svc_utf8_blank(m->exempt->reason, strlen(m->exempt->reason)) || /* R-I8 */
        svc_utf8_len(m->exempt->reason, strlen(m->exempt->reason)) > 500)
      return reject(r, "reason: 1 to 500 characters required, not only white space"), 1;
    r->text = sdup(m->exempt->reason);
    break;
  case WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_QUERY: /* any hotline identity may ask */
    r->kind = K_QUERY;
    if (m->query->what != WHISTLE__HOTLINE__QUERY__WHAT__TRIAGE) return reject(r, "what: TRIAGE"), 1;
    r->offset = m->query->offset;
    r->limit = m->query->limit;
    return 0;
  default:
    return reject(r, "expected TicketSubmit, TicketFeedback, Watermark, TriageComplete, Exempt or Query"), 1;
  }
  if (!valid_ticket_no(tno)) return reject(r, "ticket_no: 1-64 characters of A-Z a-z 0-9 - _"), 1;
  if (!valid_time(x, r->at_us)) /* R-T3 */
    return reject(r, "time: before 2000 or more than 1 day past the clock"), 1;
  r->ticket_no = sdup(tno);
  return 0;
}

static int on_decode(void *arg, struct svc_req *req, const uint8_t *frame, size_t len)
{
  struct intake_ctx *x = arg;
  struct ireq *r = calloc(1, sizeof *r);
  if (!r) return -1;
  req->data = r;
  struct svc_pballoc al;
  int bad_strings;
  Whistle__Hotline__HotlineMessage *m = (Whistle__Hotline__HotlineMessage *)svc_pb_unpack(
    &whistle__hotline__hotline_message__descriptor, &al, 64 * 1024 + len, frame, len, &bad_strings);
  int rc;
  if (!m) { /* answered with the request id, if the envelope shows one (field 2) */
    uint64_t id = 0;
    if (svc_pb_peek_varint(frame, len, 2, &id) == 0) r->request_id = id;
    rc = (reject(r, "not a HotlineMessage"), 1);
  }
  else if ((r->request_id = m->request_id), bad_strings)
    rc = (reject(r, "text fields must be valid UTF-8 without NUL characters"), 1); /* R-I8 */
  else if (m->version != 1) rc = (reject(r, "unsupported version (expected 1)"), 1);
  else if (m->body_case == WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_SUBMIT)
    rc = (r->kind = K_SUBMIT, decode_submit(x, r, m->submit));
  else rc = decode_action(x, r, m);
  if (m) protobuf_c_message_free_unpacked(&m->base, &al.a);
  if (req->user_id[0]) snprintf(r->op, sizeof r->op, "%s", req->user_id);
  else snprintf(r->op, sizeof r->op, "operator");
  if (rc == 1) {
    x->n.rejected++;
    svc_server_count_rejected(req->srv);
    send_reply(req, r->request_id, r->status, 0, r->reason, NULL);
  }
  return rc;
}

/* ---- staging ------------------------------------------------------------- */

/* STAGE_ACTIONS for operator actions and callbacks: their statements run
 * after the batch's new tickets are inserted, so they see those tickets. */
static int action_statements(struct intake_ctx *x, struct ireq *r, struct svc_pg_batch *b)
{
  switch (r->kind) {
  case K_FEEDBACK:
    return intake_store_feedback(x->store, b, r->ticket_no, r->at_us, r->text, &r->fb_state);
  case K_TRIAGE:
    return intake_store_lookup(x->store, b, r->ticket_no, &r->existing);
  case K_EXEMPT:
    if (intake_store_lookup(x->store, b, r->ticket_no, &r->existing)) return -1;
    return intake_store_exempt(x->store, b, r->ticket_no, r->text, r->at_us, r->op, &r->new_id);
  default:
    return 0;
  }
}

/* The overlay holds the tickets staged in the current batch. */
static struct ireq *overlay_find(struct intake_ctx *x, const char *ticket_no)
{
  if (!x->cap_overlay) return NULL;
  uint32_t i = x->overlay[hash_str(ticket_no) & (x->cap_overlay - 1)].head_no;
  for (; i != NIL; i = x->overlay[i].next_no)
    if (strcmp(x->overlay[i].r->ticket_no, ticket_no) == 0) return x->overlay[i].r;
  return NULL;
}

static void overlay_link(struct intake_ctx *x, uint32_t i)
{
  struct intake_overlay *o = x->overlay;
  size_t mask = x->cap_overlay - 1;
  uint32_t bn = hash_str(o[i].r->ticket_no) & mask, bp = hash_str(o[i].r->pseudonym) & mask;
  o[i].next_no = o[bn].head_no;
  o[bn].head_no = i;
  o[i].next_ps = o[bp].head_ps;
  o[bp].head_ps = i;
}

static void overlay_clear(struct intake_ctx *x)
{
  x->n_overlay = 0;
  for (size_t i = 0; i < x->cap_overlay; i++) x->overlay[i].head_no = x->overlay[i].head_ps = NIL;
}

/* Adds r to the overlay (and so to the batch's inserts). 0 or -1. */
static int overlay_add(struct intake_ctx *x, struct ireq *r)
{
  if (x->n_overlay == x->cap_overlay) { /* grow (a power of two) and rehash */
    size_t cap = x->cap_overlay ? x->cap_overlay * 2 : 256;
    struct intake_overlay *n = cap < NIL ? realloc(x->overlay, cap * sizeof *n) : NULL;
    if (!n) return -1;
    x->overlay = n;
    x->cap_overlay = cap;
    size_t keep = x->n_overlay;
    overlay_clear(x);
    for (x->n_overlay = 0; x->n_overlay < keep; x->n_overlay++) overlay_link(x, (uint32_t)x->n_overlay);
  }
  x->overlay[x->n_overlay].r = r;
  overlay_link(x, (uint32_t)x->n_overlay);
  x->n_overlay++;
  return 0;
}

static int req_type(const char *name, enum intake_request_type *t)
{
  return intake_request_type_parse(name, t) == 0;
}

/* R-I5 over the earlier tickets found in the database and in the batch. */
static void decide_repeat(struct intake_ctx *x, struct ireq *r)
{
  struct intake_repeat_facts t = { r->ticket_no, r->at_us, r->type, r->pseudonym, r->compound,
                                   r->category, 0, 0, 0 };
  uint32_t head = x->cap_overlay ? x->overlay[hash_str(r->pseudonym) & (x->cap_overlay - 1)].head_ps
                                 : NIL;
  size_t cap = r->cands ? r->cands->n : 0, n = 0;
  for (uint32_t i = head; i != NIL; i = x->overlay[i].next_ps) cap++;
  struct intake_repeat_facts *e = cap ? calloc(cap, sizeof *e) : NULL;
  if (!e) return;
  for (size_t i = 0; r->cands && i < r->cands->n; i++) {
    const struct intake_candidate *c = &r->cands->v[i];
    if (!req_type(c->request_type, &e[n].type)) continue;
    e[n] = (struct intake_repeat_facts){ c->ticket_no, c->received_us, e[n].type, r->pseudonym,
                                         r->compound, r->category,
                                         strcmp(c->disposition, "DISPATCHED") == 0 ||
                                           strcmp(c->disposition, "REPEAT") == 0,
                                         c->is_repeat, c->closed };
    n++;
  }
  for (uint32_t i = head; i != NIL; i = x->overlay[i].next_ps) { /* only the same caller can be repeated */
    const struct ireq *o = x->overlay[i].r;
    if (strcmp(o->pseudonym, r->pseudonym) != 0) continue;
    e[n++] = (struct intake_repeat_facts){ o->ticket_no, o->at_us, o->type, o->pseudonym,
                                           o->compound, o->category,
                                           strcmp(o->disposition, "DISPATCHED") == 0 ||
                                             strcmp(o->disposition, "REPEAT") == 0,
                                           o->repeat_of[0] != 0, 0 };
  }
  const struct intake_repeat_facts *hit = intake_find_repeat(&t, e, n);
  if (hit) snprintf(r->repeat_of, sizeof r->repeat_of, "%s", hit->ticket_no);
  free(e);
}

static const char *disposition_of(struct intake_ctx *x, struct ireq *r)
{
  if (r->triage_reason[0]) return "TRIAGE";
  if (!intake_request_dispatched(r->type)) return "RECORDED";
  if (r->repeat_eligible) decide_repeat(x, r);
  return r->repeat_of[0] ? "REPEAT" : "DISPATCHED";
}

static void unavailable(struct ireq *r)
{
  r->status = ST_UNAVAILABLE;
  snprintf(r->reason, sizeof r->reason, "could not be staged; send it again");
}

/* STAGE_TICKETS decides R-I1 and R-I5 and queues a new ticket in the
 * overlay; on_stage_end inserts the overlay's tickets with one statement and
 * appends their events. A twin of one of them learns the outcome in
 * STAGE_ACTIONS. */
static int submit_next(struct intake_ctx *x, struct ireq *r, int n)
{
  if (n == STAGE_ACTIONS) { /* only twins get here */
    if (r->twin->status == ST_UNAVAILABLE) unavailable(r);
    else r->ticket_id = r->twin->new_id;
    return 0;
  }
  const char *fp = NULL;
  if (r->existing.found) {
    fp = r->existing.fingerprint;
    r->ticket_id = r->existing.id;
    snprintf(r->category, sizeof r->category, "%s", r->existing.category);
    snprintf(r->compound, sizeof r->compound, "%s", r->existing.compound);
    snprintf(r->disposition, sizeof r->disposition, "%s", r->existing.disposition);
  } else if ((r->twin = overlay_find(x, r->ticket_no))) {
    fp = r->twin->fingerprint;
  }
  if (fp) { /* R-I1 */
    if (strcmp(fp, r->fingerprint) == 0) r->status = ST_DUPLICATE;
    else reject(r, "conflict: this ticket_no was submitted with different content");
    if (r->twin) { /* replies after the batch: take what the twin decided */
      snprintf(r->category, sizeof r->category, "%s", r->twin->category);
      snprintf(r->compound, sizeof r->compound, "%s", r->twin->compound);
      snprintf(r->disposition, sizeof r->disposition, "%s", r->twin->disposition);
    }
    return r->twin ? 1 : 0; /* a twin learns its original's id in STAGE_ACTIONS */
  }
  snprintf(r->disposition, sizeof r->disposition, "%s", disposition_of(x, r));
  if (x->n_overlay >= x->cap_ids || overlay_add(x, r)) return unavailable(r), 0;
  r->new_id = x->ids[x->n_overlay - 1];
  if (!r->new_id) unavailable(r); /* no id reserved: cannot happen */
  return 0;
}

static void event_triaged(struct intake_ctx *x, struct svc_pg_batch *b, const struct ireq *r)
{
  Whistle__Intake__TicketTriaged e = WHISTLE__INTAKE__TICKET_TRIAGED__INIT;
  e.ticket_no = r->ticket_no;
  e.at_us = r->at_us;
  e.category = (char *)r->category;
  e.compound = (char *)r->compound;
  e.street = (char *)r->street;
  e.district = (char *)r->district;
  e.management = (char *)r->management;
  e.company = (char *)r->company;
  e.disposition = (char *)r->disposition;
  e.operator_ = (char *)r->op;
  append(x, b, r->at_us, "ticket.triaged", &e.base);
}

static int triage_next(struct intake_ctx *x, struct ireq *r, struct svc_pg_batch *b, int n)
{
  const struct intake_existing *e = &r->existing;
  if (n == STAGE_TRIAGED) {
    if (r->new_id) event_triaged(x, b, r);
    else reject(r, "ticket is no longer waiting in triage");
    return 0;
  }
  if (!e->found) return reject(r, "unknown ticket_no"), 0;
  if (!r->compound[0]) set_compound(r, x->reg, e->compound[0] ? e->compound : NULL);
  if (!r->category[0]) snprintf(r->category, sizeof r->category, "%s", e->category);
  if (strcmp(e->disposition, "TRIAGE") != 0) {
    r->ticket_id = e->id;
    if (strcmp(e->compound, r->compound) == 0 && strcmp(e->category, r->category) == 0)
      r->status = ST_DUPLICATE;
    else reject(r, "ticket is not waiting in triage");
    return 0;
  }
  if (!r->compound[0] || !strcmp(r->category, "OTHER") || !r->category[0])
    return reject(r, "triage needs both a compound and a category"), 0;
  enum intake_request_type t;
  if (!req_type(e->request_type, &t)) return reject(r, "stored request type unreadable"), 0;
  snprintf(r->disposition, sizeof r->disposition, "%s",
           intake_request_dispatched(t) ? "DISPATCHED" : "RECORDED");
  r->ticket_id = e->id;
  if (intake_store_triage(x->store, b, r->ticket_no, r->compound, r->street, r->district,
                          r->category, r->disposition, r->at_us, r->op, &r->new_id))
    return -1; /* the batch fails: no ACCEPTED without the update */
  return 1;
}

/* Resets what a previous attempt at the batch set (it may be retried). */
static void reset_request(struct ireq *r)
{
  r->status = ST_ACCEPTED;
  r->reason[0] = 0;
  r->new_id = 0;
  r->twin = NULL;
  r->ticket_id = 0;
  r->repeat_of[0] = 0;
  svc_lines_clear(&r->lines);
}

/* The batch's watermarks count once it committed (this runs before the
 * server stages the next batch). */
static void watermark_hook(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err,
                           void *arg)
{
  struct intake_ctx *x = arg;
  (void)b;
  (void)err;
  if (oc == SVC_PG_COMMITTED && x->pending_watermark_us > x->watermark_us)
    x->watermark_us = x->pending_watermark_us;
}

/* Room for n reserved ids. 0 or -1. */
static int reserve_ids(struct intake_ctx *x, size_t n)
{
  x->cap_ids = 0;
  uint64_t *v = realloc(x->ids, (n ? n : 1) * sizeof *v);
  if (!v) return -1;
  x->ids = v;
  return 0;
}

/* STAGE_LOOKUP: the lookups of the batch's new tickets (R-I1), the earlier
 * tickets of their callers (R-I5) and ids for them, one statement each for
 * the whole batch. Callbacks, exemptions and triage wait for STAGE_ACTIONS. */
static int on_stage_batch(void *arg, struct svc_req *const *reqs, size_t n,
                          struct svc_pg_batch *b)
{
  struct intake_ctx *x = arg;
  overlay_clear(x);
  x->pending_watermark_us = x->watermark_us; /* forget those of a failed batch */
  if (svc_pg_batch_hook(b, watermark_hook, x)) return -1;
  struct intake_lookup *lk = malloc(n * sizeof *lk);
  struct intake_repeat_query *rq = malloc(n * sizeof *rq);
  size_t nl = 0, nq = 0;
  int rc = -1;
  if (!lk || !rq || reserve_ids(x, n)) goto out;
  for (size_t i = 0; i < n; i++) {
    struct ireq *r = reqs[i]->data;
    reset_request(r);
    if (r->kind != K_SUBMIT) continue;
    lk[nl++] = (struct intake_lookup){ r->ticket_no, &r->existing };
    if (!r->repeat_eligible) continue;
    if (!r->cands && !(r->cands = malloc(sizeof *r->cands))) goto out;
    rq[nq++] = (struct intake_repeat_query){ r->pseudonym, r->compound, r->category,
                                             r->at_us - INTAKE_REPEAT_WINDOW_US, r->at_us,
                                             r->cands };
  }
  rc = intake_store_lookup_many(x->store, b, lk, nl) ||
           intake_store_candidates_many(x->store, b, rq, nq) ||
           intake_store_ids(x->store, b, nl, x->ids) ? -1 : 0;
  x->cap_ids = rc == 0 ? nl : 0;
out:
  free(lk);
  free(rq);
  return rc;
}

/* End of STAGE_TICKETS: the batch's new tickets (the overlay, in arrival
 * order) go in with one statement, and their events are appended. What is
 * stored in tickets and published carries the masked content and address;
 * the originals go to callers when masking changed them (R-I6a). */
static void on_stage_end(void *arg, struct svc_pg_batch *b, int n)
{
  struct intake_ctx *x = arg;
  if (n != STAGE_TICKETS || x->n_overlay == 0) return;
  struct intake_ticket_row *rows = malloc(x->n_overlay * sizeof *rows);
  struct intake_public_text *pub = calloc(x->n_overlay, sizeof *pub);
  size_t k = 0;
  int rc = rows && pub ? 0 : -1;
  for (size_t i = 0; rc == 0 && i < x->n_overlay; i++) {
    struct ireq *r = x->overlay[i].r;
    if (r->status != ST_ACCEPTED) continue;
    if (intake_mask_ticket(r->content, r->address, &pub[i])) {
      rc = -1;
      break;
    }
    rows[k++] = (struct intake_ticket_row){
      r->new_id, r->ticket_no, r->fingerprint, r->at_us, r->request_type, r->hotline_category,
      r->category, r->category_source, r->compound, r->street, r->district, pub[i].address,
      pub[i].content, r->urgency, r->pseudonym, r->masked, r->disposition, r->repeat_of,
      r->triage_reason, r->phone, r->name, pub[i].content_masked ? r->content : NULL,
      pub[i].address_masked ? r->address : NULL,
    };
  }
  if (rc == 0) rc = intake_store_insert_many(x->store, b, rows, k);
  for (size_t i = 0; i < x->n_overlay; i++) {
    struct ireq *r = x->overlay[i].r;
    if (rc != 0) unavailable(r);
    else if (r->status == ST_ACCEPTED) event_accepted(x, b, r, &pub[i]);
  }
  for (size_t i = 0; pub && i < x->n_overlay; i++) intake_public_text_free(&pub[i]);
  free(pub);
  free(rows);
}

/* Every request's part in the stages after STAGE_LOOKUP (see enum stage). */
static int on_stage_next(void *arg, struct svc_req *req, struct svc_pg_batch *b, int n)
{
  struct intake_ctx *x = arg;
  struct ireq *r = req->data;
  if (r->kind == K_SUBMIT) return submit_next(x, r, n);
  if (r->kind == K_QUERY) {
    if (n < STAGE_TRIAGED) return 1;
    return intake_store_triage_list(x->store, b, intake_triage_row, &r->lines) ? -1 : 0;
  }
  if (r->kind == K_WATERMARK) {
    if (n < STAGE_WATERMARK) return 1;
    /* Not past the stream's last watermark (in wall mode maybe intake's own): DUPLICATE. */
    if (r->at_us <= x->pending_watermark_us || r->at_us <= intake_last_watermark(x))
      return r->status = ST_DUPLICATE, 0;
    x->pending_watermark_us = r->at_us; /* R-T3: only forward */
    if (svc_stream_watermark(x->prod, b, r->at_us)) return -1;
    return 0;
  }
  if (n == STAGE_TICKETS) return 1;
  if (n == STAGE_ACTIONS) return action_statements(x, r, b) == 0 ? 1 : -1; /* -1: the batch fails */
  if (r->kind == K_TRIAGE) return triage_next(x, r, b, n);
  if (r->kind == K_FEEDBACK) {
    if (r->fb_state == 0) return reject(r, "unknown ticket_no"), 0;
    if (r->fb_state == 1) return r->status = ST_DUPLICATE, 0;
    Whistle__Intake__TicketFeedback e = WHISTLE__INTAKE__TICKET_FEEDBACK__INIT;
    e.ticket_no = r->ticket_no;
    e.at_us = r->at_us;
    e.satisfaction = r->text;
    append(x, b, r->at_us, "ticket.feedback", &e.base); /* R-I7: referral acts on it */
    return 0;
  }
  /* K_EXEMPT */
  if (!r->existing.found) return reject(r, "unknown ticket_no"), 0;
  r->ticket_id = r->existing.id;
  if (!r->new_id) return r->status = ST_DUPLICATE, 0;
  Whistle__Intake__TicketExempted e = WHISTLE__INTAKE__TICKET_EXEMPTED__INIT;
  e.ticket_no = r->ticket_no;
  e.at_us = r->at_us;
  e.reason = r->text;
  e.operator_ = r->op;
  append(x, b, r->at_us, "ticket.exempted", &e.base);
  return 0;
}

static void on_committed(void *arg, struct svc_req *req)
{
  struct intake_ctx *x = arg;
  struct ireq *r = req->data;
  if (r->kind == K_QUERY && r->lines.oom) {
    svc_lines_clear(&r->lines);
    r->status = ST_UNAVAILABLE;
    snprintf(r->reason, sizeof r->reason, "out of memory: ask again");
  }
  if (r->kind == K_QUERY) {
    send_reply(req, r->request_id, r->status, 0, r->reason, r);
    return;
  }
  if (r->status == ST_ACCEPTED) {
    svc_clock_observe(&x->clock, r->at_us);
    if (r->kind == K_SUBMIT) {
      r->ticket_id = r->new_id;
      x->n.accepted++;
      x->n.triage += strcmp(r->disposition, "TRIAGE") == 0;
      x->n.repeats += r->repeat_of[0] != 0;
    } else if (r->kind == K_WATERMARK) {
      x->n.watermarks++; /* x->watermark_us: see watermark_hook */
    } else if (r->kind == K_FEEDBACK) {
      x->n.feedback++;
    }
  } else if (r->status == ST_DUPLICATE) {
    x->n.duplicate++;
  } else if (r->status != ST_UNAVAILABLE) {
    x->n.rejected++;
  }
  send_reply(req, r->request_id, r->status, r->ticket_id, r->reason, r);
}

static void on_failed(void *arg, struct svc_req *req, const char *why)
{
  struct ireq *r = req->data;
  (void)arg;
  svc_warn("request could not be committed", " ticket_no=%s", r->ticket_no ? r->ticket_no : "-");
  (void)why; /* database details stay in the log, not in replies */
  send_reply(req, r->request_id, ST_UNAVAILABLE, 0, "could not be committed; send it again", NULL);
}

static void on_release(void *arg, struct svc_req *req)
{
  struct ireq *r = req->data;
  (void)arg;
  if (!r) return;
  free(r->ticket_no);
  free(r->hotline_category);
  free(r->phone);
  free(r->name);
  free(r->address);
  free(r->content);
  free(r->text);
  free(r->cands);
  svc_lines_clear(&r->lines);
  free(r);
}

void intake_handlers_free(struct intake_ctx *x)
{
  free(x->overlay);
  x->overlay = NULL;
  free(x->ids);
  x->ids = NULL;
  x->cap_ids = 0;
  x->n_overlay = x->cap_overlay = 0;
}

const struct svc_server_ops intake_hotline_ops = {
  .decode = on_decode, .stage_batch = on_stage_batch, .stage_next = on_stage_next,
  .stage_end = on_stage_end, .committed = on_committed, .failed = on_failed, .release = on_release,
};
