/* whistle-referral's handlers for the intake stream and the clock, and what
 * every handler shares: the cache of the tickets a running batch works on
 * (loaded in its first stage, decided on in the next, so several inputs on
 * the same ticket in one batch see each other), and publishing what the
 * rules decided as referral stream events (proto/referral_events.proto). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake_events.pb-c.h"
#include "referral.h"
#include "referral_events.pb-c.h"
#include "svc_alloc.h"
#include "svc_log.h"
#include "svc_mask.h"
#include "svc_pg.h"
#include "svc_stream.h"

#define CLOCK_BATCH 500        /* tickets per clock transaction */
#define DECODE_BUDGET (1u << 20)

/* ---- the batch cache ------------------------------------------------------ */

struct referral_cache {
  uint64_t batch;
  struct referral_ticket **v; size_t n, cap;
};

static void ticket_free(struct referral_ticket *t)
{
  if (!t) return;
  referral_ticket_clear(t);
  free(t);
}

void referral_cache_begin(struct referral_ctx *x, struct svc_pg_batch *b)
{
  struct referral_cache *c = x->cache;
  if (c->batch == svc_pg_batch_id(b) && c->batch) return;
  for (size_t i = 0; i < c->n; i++) ticket_free(c->v[i]);
  c->n = 0;
  c->batch = svc_pg_batch_id(b);
}

struct referral_ticket *referral_cache_get(struct referral_ctx *x, const char *ticket_no)
{
  struct referral_cache *c = x->cache;
  for (size_t i = c->n; i-- > 0;) /* recent first: a batch touches few tickets twice */
    if (strcmp(c->v[i]->ticket_no, ticket_no) == 0) return c->v[i];
  return NULL;
}

struct referral_ticket *referral_cache_put(struct referral_ctx *x, struct referral_ticket *t)
{
  struct referral_cache *c = x->cache;
  struct referral_ticket *have = referral_cache_get(x, t->ticket_no);
  if (have) {
    ticket_free(t);
    return have;
  }
  if (c->n == c->cap) {
    size_t cap = c->cap ? c->cap * 2 : 64;
    struct referral_ticket **v = realloc(c->v, cap * sizeof *v);
    if (!v) {
      ticket_free(t);
      return NULL;
    }
    c->v = v;
    c->cap = cap;
  }
  c->v[c->n++] = t;
  return t;
}

int referral_cache_save(struct referral_ctx *x, struct svc_pg_batch *b)
{
  struct referral_cache *c = x->cache;
  for (size_t i = 0; i < c->n; i++) {
    if (!c->v[i]->dirty) continue;
    if (referral_store_save(x->store, b, c->v[i]) != 0) return -1;
    c->v[i]->dirty = 0;
    c->v[i]->is_new = 0;
  }
  return 0;
}

/* Loaded tickets waiting for their batch's decision stage. */
void referral_loaded_add(struct referral_loaded *l, struct referral_ticket *t)
{
  if (l->n == l->cap) {
    size_t cap = l->cap ? l->cap * 2 : 16;
    struct referral_ticket **v = realloc(l->v, cap * sizeof *v);
    if (!v) {
      ticket_free(t);
      return;
    }
    l->v = v;
    l->cap = cap;
  }
  l->v[l->n++] = t;
}

void referral_loaded_absorb(struct referral_ctx *x, struct referral_loaded *l)
{
  for (size_t i = 0; i < l->n; i++) referral_cache_put(x, l->v[i]);
  l->n = 0;
}

void referral_loaded_clear(struct referral_loaded *l)
{
  for (size_t i = 0; i < l->n; i++) ticket_free(l->v[i]);
  free(l->v);
  memset(l, 0, sizeof *l);
}

/* ---- counting ------------------------------------------------------------- */

static void counters_end(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct referral_ctx *x = arg;
  (void)b;
  (void)err;
  if (oc == SVC_PG_COMMITTED) {
    uint64_t *n = (uint64_t *)&x->n;
    const uint64_t *d = (const uint64_t *)&x->staged;
    for (size_t i = 0; i < sizeof x->n / sizeof *n; i++) n[i] += d[i];
  }
  memset(&x->staged, 0, sizeof x->staged);
  x->staged_batch = 0;
}

/* The counters of batch b's effects: they count once b has committed (a
 * batch that is retried must not count twice). */
static struct referral_counters *counting(struct referral_ctx *x, struct svc_pg_batch *b)
{
  if (x->staged_batch != svc_pg_batch_id(b)) {
    memset(&x->staged, 0, sizeof x->staged);
    x->staged_batch = svc_pg_batch_id(b);
    if (svc_pg_batch_hook(b, counters_end, x)) svc_pg_batch_fail(b, "out of memory");
  }
  return &x->staged;
}

/* ---- publishing ----------------------------------------------------------- */

/* Appends an event to batch b; if it cannot, b fails as a whole (nothing of
 * it commits, so no state change goes without its event). */
static void append(struct referral_ctx *x, struct svc_pg_batch *b, int64_t at, const char *kind,
                   const char *to, const ProtobufCMessage *m)
{
  /* The stream promises no event before the published watermark: an update
   * stamped earlier keeps its true time in the payload. */
  if (at < x->out_watermark_us) at = x->out_watermark_us;
  if (svc_stream_append_msg(x->prod, b, at, kind, to, m))
    svc_pg_batch_fail(b, "cannot append a stream event");
}

static void pub_issued(struct referral_ctx *x, struct svc_pg_batch *b, const struct referral_ticket *t,
                       const struct referral_step *s, const char *note)
{
  Whistle__Referral__StepIssued e = WHISTLE__REFERRAL__STEP_ISSUED__INIT;
  const struct svc_category *cat = svc_registry_category(x->reg, t->category);
  e.ticket_no = (char *)t->ticket_no;
  e.step = s->no;
  e.unit = (char *)s->unit;
  e.unit_kind = s->street_unit ? "STREET" : "DEPARTMENT";
  e.unit_district = (char *)s->unit_district;
  e.chain_pos = s->chain_pos;
  e.chain_len = s->chain_len;
  e.reason = (char *)referral_issue_reason_name(s->reason);
  e.issued_us = s->issued_us;
  e.accept_by_us = s->accept_by_us;
  e.resolve_by_us = s->resolve_by_us;
  e.category = (char *)t->category;
  e.category_name = (char *)(cat ? cat->name : "");
  e.urgent = t->urgent;
  e.default_prohibition = (char *)(cat ? cat->prohibition : "");
  e.request_type = (char *)t->request_type;
  e.received_us = t->received_us;
  e.compound = (char *)t->compound;
  e.street = (char *)t->street;
  e.district = (char *)t->district;
  e.management = (char *)t->management;
  e.company = (char *)t->company;
  e.address = t->address ? t->address : "";
  e.content = t->content ? t->content : "";
  e.masked_phone = (char *)t->masked_phone;
  e.pseudonym = (char *)t->pseudonym;
  e.consult = t->consult;
  e.note = (char *)(note ? note : "");
  e.replaces_step = s->replaces;
  e.rule_set = REFERRAL_RULE_SET;
  append(x, b, s->issued_us, "step.issued", s->unit, &e.base);
}

static const char *const CHANGED_KIND[] = {
  [FX_STEP_ACCEPTED] = "step.accepted", [FX_STEP_RETURNED] = "step.returned",
  [FX_STEP_PROGRESS] = "step.progress", [FX_STEP_RESOLVED] = "step.resolved",
  [FX_STEP_REOPENED] = "step.reopened", [FX_STEP_NOTE] = "step.note",
};

static void pub_changed(struct referral_ctx *x, struct svc_pg_batch *b, const struct referral_ticket *t,
                        const struct referral_step *s, const struct referral_fx *f,
                        const struct referral_change *ch)
{
  Whistle__Referral__StepChanged e = WHISTLE__REFERRAL__STEP_CHANGED__INIT;
  e.ticket_no = (char *)t->ticket_no;
  e.step = s->no;
  e.unit = (char *)s->unit;
  e.at_us = f->at_us;
  e.state = (char *)referral_step_state_name(s->state);
  e.late = f->late;
  e.note = (char *)(f->kind == FX_STEP_NOTE ? "repeat call (重复件)" : (f->text ? f->text : ""));
  e.reason = (char *)(f->kind == FX_STEP_RETURNED && f->text ? f->text : "");
  if (f->kind == FX_STEP_RETURNED && ch) {
    e.n_evidence = ch->n_evidence;
    e.evidence = (char **)ch->evidence;
  }
  if (f->kind == FX_STEP_RESOLVED) {
    e.violation_confirmed = s->violation;
    e.prohibition = (char *)s->prohibition;
  }
  e.repeat_ticket_no = (char *)(f->kind == FX_STEP_NOTE && f->text ? f->text : "");
  e.accept_by_us = s->accept_by_us;
  e.resolve_by_us = s->resolve_by_us;
  e.rule_set = REFERRAL_RULE_SET;
  append(x, b, f->at_us, CHANGED_KIND[f->kind], s->unit, &e.base);
}

static void pub_clock(struct referral_ctx *x, struct svc_pg_batch *b, const struct referral_ticket *t,
                      const struct referral_step *s, const struct referral_fx *f)
{
  Whistle__Referral__StepClock e = WHISTLE__REFERRAL__STEP_CLOCK__INIT;
  int accept = f->kind == FX_WARN_ACCEPT || f->kind == FX_ACCEPT_OVERDUE;
  int overdue = f->kind == FX_ACCEPT_OVERDUE || f->kind == FX_RESOLVE_OVERDUE;
  char key[REFERRAL_CODE_MAX + 40];
  snprintf(key, sizeof key, "R-E1|%s|%u|%s", t->ticket_no, s->no, accept ? "ACCEPT" : "RESOLVE");
  e.ticket_no = (char *)t->ticket_no;
  e.step = s->no;
  e.unit = (char *)s->unit;
  e.unit_kind = s->street_unit ? "STREET" : "DEPARTMENT";
  e.unit_district = (char *)s->unit_district;
  e.clock = accept ? "ACCEPT" : "RESOLVE";
  e.issued_us = s->issued_us;
  e.deadline_us = accept ? s->accept_by_us : s->resolve_by_us;
  e.key = overdue ? key : "";
  e.rule = "R-R4";
  e.rule_set = REFERRAL_RULE_SET;
  append(x, b, f->at_us,
         !overdue ? "step.warning" : (accept ? "ACCEPT_OVERDUE" : "RESOLVE_OVERDUE"), s->unit,
         &e.base);
  if (overdue) counting(x, b)->overdue++;
  else counting(x, b)->warnings++;
}

static const char *const TICKET_KIND[] = {
  [FX_TICKET_RESOLVED] = "ticket.resolved", [FX_TICKET_CLOSED] = "ticket.closed",
  [FX_TICKET_REOPENED] = "ticket.reopened", [FX_TICKET_RETURNED] = "ticket.returned",
  [FX_TICKET_CONSULT] = "ticket.consult",
};

static void pub_ticket(struct referral_ctx *x, struct svc_pg_batch *b, const struct referral_ticket *t,
                       const struct referral_step *last, const struct referral_fx *f)
{
  Whistle__Referral__TicketState e = WHISTLE__REFERRAL__TICKET_STATE__INIT;
  e.ticket_no = (char *)t->ticket_no;
  e.at_us = f->at_us;
  e.state = (char *)referral_ticket_state_name(t->state);
  e.last_step = last ? last->no : 0;
  e.last_unit = (char *)(last ? last->unit : "");
  e.reason = (char *)(f->text ? f->text : "");
  e.rule = f->kind == FX_TICKET_CONSULT ? "R-R3" : (f->kind == FX_TICKET_REOPENED ? "R-R6" : "R-R2");
  e.rule_set = REFERRAL_RULE_SET;
  if (f->kind == FX_TICKET_CLOSED) counting(x, b)->closed++;
  append(x, b, f->at_us, TICKET_KIND[f->kind], last ? last->unit : SVC_STREAM_INTERNAL, &e.base);
}

static void pub_violation(struct referral_ctx *x, struct svc_pg_batch *b, const struct referral_ticket *t,
                          const struct referral_step *s, const struct referral_fx *f)
{
  Whistle__Referral__ViolationConfirmed e = WHISTLE__REFERRAL__VIOLATION_CONFIRMED__INIT;
  e.ticket_no = (char *)t->ticket_no;
  e.step = s->no;
  e.unit = (char *)s->unit;
  e.at_us = f->at_us;
  e.prohibition = (char *)s->prohibition;
  e.compound = (char *)t->compound;
  e.company = (char *)t->company;
  e.street = (char *)t->street;
  e.district = (char *)t->district;
  e.category = (char *)t->category;
  e.rule = "R-P2";
  e.rule_set = REFERRAL_RULE_SET;
  counting(x, b)->violations++;
  append(x, b, f->at_us, "violation.confirmed", SVC_STREAM_INTERNAL, &e.base);
}

static void pub_feedback(struct referral_ctx *x, struct svc_pg_batch *b, const struct referral_ticket *t,
                         const struct referral_step *s, const struct referral_fx *f)
{
  Whistle__Referral__Feedback e = WHISTLE__REFERRAL__FEEDBACK__INIT;
  e.ticket_no = (char *)t->ticket_no;
  e.at_us = f->at_us;
  e.satisfaction = (char *)f->text;
  e.last_step = s ? s->no : 0;
  e.last_unit = (char *)(s ? s->unit : "");
  e.ticket_state = (char *)referral_ticket_state_name(f->before);
  e.effect = (char *)(f->effect ? f->effect : "NONE");
  e.rule_set = REFERRAL_RULE_SET;
  append(x, b, f->at_us, "ticket.feedback", s ? s->unit : SVC_STREAM_INTERNAL, &e.base);
}

void referral_publish(struct referral_ctx *x, struct svc_pg_batch *b, struct referral_ticket *t,
                      const struct referral_fxs *fx, const struct referral_change *ch)
{
  for (size_t i = 0; i < fx->n; i++) {
    const struct referral_fx *f = &fx->v[i];
    struct referral_step *s = f->step ? referral_find_step(t, f->step) : NULL;
    switch (f->kind) {
    case FX_STEP_ISSUED:
      if (s) pub_issued(x, b, t, s, f->text);
      counting(x, b)->steps++;
      break;
    case FX_STEP_ACCEPTED: case FX_STEP_RETURNED: case FX_STEP_PROGRESS:
    case FX_STEP_RESOLVED: case FX_STEP_REOPENED: case FX_STEP_NOTE:
      if (s) pub_changed(x, b, t, s, f, ch);
      if (f->kind == FX_STEP_NOTE) counting(x, b)->notes++;
      break;
    case FX_WARN_ACCEPT: case FX_WARN_RESOLVE: case FX_ACCEPT_OVERDUE: case FX_RESOLVE_OVERDUE:
      if (s) pub_clock(x, b, t, s, f);
      break;
    case FX_TICKET_RESOLVED: case FX_TICKET_CLOSED: case FX_TICKET_REOPENED:
    case FX_TICKET_RETURNED: case FX_TICKET_CONSULT:
      pub_ticket(x, b, t, referral_last_step(t), f);
      break;
    case FX_VIOLATION:
      if (s) pub_violation(x, b, t, s, f);
      break;
    case FX_FEEDBACK:
      pub_feedback(x, b, t, s, f);
      break;
    }
  }
}

/* ---- the intake stream ------------------------------------------------------ */

struct referral_apply {
  struct referral_loader loader;
  struct referral_loaded loaded;
};

static void apply_loaded(void *arg, struct referral_ticket *t)
{
  referral_loaded_add(&((struct referral_apply *)arg)->loaded, t);
}

static void apply_free(struct referral_apply **pa)
{
  if (!*pa) return;
  referral_loaded_clear(&(*pa)->loaded);
  free(*pa);
  *pa = NULL;
}

static void *unpack(const ProtobufCMessageDescriptor *d, struct svc_pballoc *al,
                    const struct svc_stream_event *e)
{
  return svc_pb_unpack(d, al, DECODE_BUDGET, e->payload, e->payload_len, NULL);
}

/* The ticket numbers an event needs loaded (0, 1 or 2 of them). */
static size_t event_tickets(const struct svc_stream_event *e, char out[2][REFERRAL_CODE_MAX])
{
  struct svc_pballoc al;
  size_t n = 0;
  if (strcmp(e->kind, "ticket.accepted") == 0) {
    Whistle__Intake__TicketAccepted *m = unpack(&whistle__intake__ticket_accepted__descriptor, &al, e);
    if (!m) return 0;
    snprintf(out[n++], REFERRAL_CODE_MAX, "%s", m->ticket_no);
    if (m->repeat_of[0]) snprintf(out[n++], REFERRAL_CODE_MAX, "%s", m->repeat_of);
    protobuf_c_message_free_unpacked(&m->base, &al.a);
  } else if (strcmp(e->kind, "ticket.triaged") == 0) {
    Whistle__Intake__TicketTriaged *m = unpack(&whistle__intake__ticket_triaged__descriptor, &al, e);
    if (!m) return 0;
    snprintf(out[n++], REFERRAL_CODE_MAX, "%s", m->ticket_no);
    protobuf_c_message_free_unpacked(&m->base, &al.a);
  } else if (strcmp(e->kind, "ticket.feedback") == 0) {
    Whistle__Intake__TicketFeedback *m = unpack(&whistle__intake__ticket_feedback__descriptor, &al, e);
    if (!m) return 0;
    snprintf(out[n++], REFERRAL_CODE_MAX, "%s", m->ticket_no);
    protobuf_c_message_free_unpacked(&m->base, &al.a);
  } else if (strcmp(e->kind, "ticket.exempted") == 0) {
    Whistle__Intake__TicketExempted *m = unpack(&whistle__intake__ticket_exempted__descriptor, &al, e);
    if (!m) return 0;
    snprintf(out[n++], REFERRAL_CODE_MAX, "%s", m->ticket_no);
    protobuf_c_message_free_unpacked(&m->base, &al.a);
  }
  return n;
}

int referral_intake_apply(void *arg, struct svc_pg_batch *b, const struct svc_stream_event *ev,
                          size_t n)
{
  struct referral_ctx *x = arg;
  apply_free(&x->applying);
  struct referral_apply *a = calloc(1, sizeof *a);
  const char **nos = calloc(2 * n + 1, sizeof *nos);
  char (*buf)[REFERRAL_CODE_MAX] = calloc(2 * n + 1, sizeof *buf);
  size_t k = 0;
  int rc = -1;
  if (!a || !nos || !buf) goto out;
  a->loader = (struct referral_loader){ apply_loaded, a };
  x->applying = a;
  for (size_t i = 0; i < n; i++) {
    size_t got = event_tickets(&ev[i], &buf[k]);
    for (size_t j = 0; j < got; j++, k++) nos[k] = buf[k];
  }
  rc = k ? referral_store_load(x->store, b, nos, k, &a->loader) : 0;
  a = NULL;
out:
  free(a);
  free(nos);
  free(buf);
  return rc;
}

static void copy(char *dst, size_t n, const char *s)
{
  snprintf(dst, n, "%s", s ? s : "");
}

/* Fails b with why; returns -1 (for the apply functions below). */
static int fail(struct svc_pg_batch *b, const char *why)
{
  svc_pg_batch_fail(b, why);
  return -1;
}

static int new_ticket(struct referral_ctx *x, struct svc_pg_batch *b,
                      const Whistle__Intake__TicketAccepted *m)
{
  struct referral_ticket *t = calloc(1, sizeof *t);
  struct referral_fxs fx = { .n = 0 };
  if (!t) return fail(b, "out of memory");
  copy(t->ticket_no, sizeof t->ticket_no, m->ticket_no);
  t->ticket_id = m->ticket_id;
  copy(t->request_type, sizeof t->request_type, m->request_type);
  copy(t->category, sizeof t->category, m->category);
  copy(t->compound, sizeof t->compound, m->compound);
  copy(t->street, sizeof t->street, m->street);
  copy(t->district, sizeof t->district, m->district);
  copy(t->management, sizeof t->management, m->management);
  copy(t->company, sizeof t->company, m->company);
  copy(t->repeat_of, sizeof t->repeat_of, m->repeat_of);
  copy(t->pseudonym, sizeof t->pseudonym, m->pseudonym);
  copy(t->masked_phone, sizeof t->masked_phone, m->masked_phone);
  /* R-I6a: intake publishes content and address masked; masking again
   * (idempotent) keeps out a number in an event published before it did. */
  t->address = svc_mask_dup(m->address, NULL);
  t->content = svc_mask_dup(m->content, NULL);
  t->received_us = m->received_us;
  t->urgent = m->urgent;
  t->is_new = t->dirty = 1;
  const char *d = m->disposition;
  t->state = strcmp(d, "TRIAGE") == 0 ? RT_TRIAGE
           : strcmp(d, "REPEAT") == 0 ? RT_REPEAT
           : strcmp(d, "DISPATCHED") == 0 ? RT_OPEN : RT_RECORDED;
  if (!t->address || !t->content) {
    ticket_free(t);
    return fail(b, "out of memory");
  }
  if (!(t = referral_cache_put(x, t))) return fail(b, "out of memory");
  counting(x, b)->tickets++;
  if (t->state == RT_OPEN) {
    referral_dispatch(t, x->reg, m->received_us, &fx);
    referral_publish(x, b, t, &fx, NULL);
  } else if (t->state == RT_REPEAT) {
    struct referral_ticket *e = m->repeat_of[0] ? referral_cache_get(x, m->repeat_of) : NULL;
    if (e) { /* R-I5: a note on the open step, no new step */
      referral_repeat_note(e, t->ticket_no, m->received_us, &fx);
      referral_publish(x, b, e, &fx, NULL);
    }
    /* R-I5: if the earlier referral had closed by then (intake may not know
     * yet), this is no repeat: it is referred like any other ticket. */
    if (!e || (e->state == RT_CLOSED && e->closed_us <= m->received_us)) {
      fx.n = 0;
      t->state = RT_OPEN;
      referral_dispatch(t, x->reg, m->received_us, &fx);
      referral_publish(x, b, t, &fx, NULL);
    }
  }
  return 0;
}

/* Each of these applies one intake event to batch b: 0, or -1 after failing
 * b with the reason (an undecodable payload, out of memory). */
static int on_accepted(struct referral_ctx *x, struct svc_pg_batch *b, const struct svc_stream_event *e)
{
  struct svc_pballoc al;
  Whistle__Intake__TicketAccepted *m = unpack(&whistle__intake__ticket_accepted__descriptor, &al, e);
  if (!m) return fail(b, "ticket.accepted: payload cannot be decoded");
  int rc = referral_cache_get(x, m->ticket_no) ? 0 : new_ticket(x, b, m); /* else: seen already */
  protobuf_c_message_free_unpacked(&m->base, &al.a);
  return rc;
}

static int on_triaged(struct referral_ctx *x, struct svc_pg_batch *b, const struct svc_stream_event *e)
{
  struct svc_pballoc al;
  Whistle__Intake__TicketTriaged *m = unpack(&whistle__intake__ticket_triaged__descriptor, &al, e);
  if (!m) return fail(b, "ticket.triaged: payload cannot be decoded");
  struct referral_ticket *t = referral_cache_get(x, m->ticket_no);
  if (t && t->state == RT_TRIAGE) {
    struct referral_fxs fx = { .n = 0 };
    copy(t->category, sizeof t->category, m->category);
    copy(t->compound, sizeof t->compound, m->compound);
    copy(t->street, sizeof t->street, m->street);
    copy(t->district, sizeof t->district, m->district);
    copy(t->management, sizeof t->management, m->management);
    copy(t->company, sizeof t->company, m->company);
    t->dirty = 1;
    if (strcmp(m->disposition, "DISPATCHED") == 0) referral_dispatch(t, x->reg, m->at_us, &fx);
    else t->state = RT_RECORDED;
    referral_publish(x, b, t, &fx, NULL);
  }
  protobuf_c_message_free_unpacked(&m->base, &al.a);
  return 0;
}

static int on_feedback(struct referral_ctx *x, struct svc_pg_batch *b, const struct svc_stream_event *e)
{
  struct svc_pballoc al;
  Whistle__Intake__TicketFeedback *m = unpack(&whistle__intake__ticket_feedback__descriptor, &al, e);
  if (!m) return fail(b, "ticket.feedback: payload cannot be decoded");
  struct referral_ticket *t = referral_cache_get(x, m->ticket_no);
  if (t) {
    struct referral_fxs fx = { .n = 0 };
    if (referral_feedback(t, x->reg, m->satisfaction, m->at_us, &fx) == 0) {
      counting(x, b)->feedback++;
      referral_publish(x, b, t, &fx, NULL);
    }
  }
  protobuf_c_message_free_unpacked(&m->base, &al.a);
  return 0;
}

/* 核减: the ticket no longer counts (R-C1, rating's to apply); referral
 * records it for the ops queries, in stream order like every intake event. */
static int on_exempted(struct referral_ctx *x, struct svc_pg_batch *b, const struct svc_stream_event *e)
{
  struct svc_pballoc al;
  Whistle__Intake__TicketExempted *m = unpack(&whistle__intake__ticket_exempted__descriptor, &al, e);
  if (!m) return fail(b, "ticket.exempted: payload cannot be decoded");
  struct referral_ticket *t = referral_cache_get(x, m->ticket_no);
  if (t && !t->exempt) {
    t->exempt = 1;
    t->dirty = 1;
  }
  protobuf_c_message_free_unpacked(&m->base, &al.a);
  return 0;
}

/* The clock moves with a watermark only once the batch recording it has
 * committed: a batch that is retried must not have moved it (R-T2). */
static void watermark_committed(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err,
                                void *arg)
{
  struct referral_ctx *x = arg;
  (void)b;
  (void)err;
  if (oc != SVC_PG_COMMITTED || x->staged_in_watermark_us <= x->in_watermark_us) return;
  x->in_watermark_us = x->staged_in_watermark_us;
  svc_clock_observe(&x->clock, x->in_watermark_us);
  x->clock_again = 1;
  referral_clock_run(x);
}

int referral_intake_apply_next(void *arg, struct svc_pg_batch *b,
                               const struct svc_stream_event *ev, size_t n, int stage)
{
  struct referral_ctx *x = arg;
  int64_t wm = x->in_watermark_us;
  (void)stage;
  referral_cache_begin(x, b);
  if (x->applying) referral_loaded_absorb(x, &x->applying->loaded);
  int rc = 0;
  for (size_t i = 0; i < n && rc == 0; i++) {
    const struct svc_stream_event *e = &ev[i];
    if (strcmp(e->kind, "ticket.accepted") == 0) rc = on_accepted(x, b, e);
    else if (strcmp(e->kind, "ticket.triaged") == 0) rc = on_triaged(x, b, e);
    else if (strcmp(e->kind, "ticket.feedback") == 0) rc = on_feedback(x, b, e);
    else if (strcmp(e->kind, "ticket.exempted") == 0) rc = on_exempted(x, b, e);
    else if (strcmp(e->kind, SVC_STREAM_WATERMARK) == 0 && e->event_us > wm) wm = e->event_us;
  }
  if (rc != 0 || referral_cache_save(x, b) != 0) return -1;
  if (wm > x->in_watermark_us) {
    if (referral_store_clock(x->store, b, wm, 0) != 0) return -1;
    x->staged_in_watermark_us = wm; /* the clock acts on it once this batch is in */
    if (svc_pg_batch_hook(b, watermark_committed, x)) return -1;
  }
  apply_free(&x->applying);
  return 0;
}

/* ---- the clock ------------------------------------------------------------------ */

struct referral_tickjob {
  struct referral_ctx *x;
  struct referral_loader loader;
  struct referral_loaded loaded;
  int64_t now;
  int stage, all_done;
};

static void tick_loaded(void *arg, struct referral_ticket *t)
{
  referral_loaded_add(&((struct referral_tickjob *)arg)->loaded, t);
}

int64_t referral_clock_now(const struct referral_ctx *x)
{
  int64_t now = x->in_watermark_us;
  if (x->clock.mode == SVC_CLOCK_WALL) {
    int64_t w = svc_wall_us();
    if (w > now) now = w;
  }
  return now;
}

static void tick_stage(struct svc_pg_batch *b, void *arg)
{
  struct referral_tickjob *j = arg;
  struct referral_ctx *x = j->x;
  if (j->stage++ > 0) return;
  size_t loaded = j->loaded.n;
  referral_cache_begin(x, b);
  referral_loaded_absorb(x, &j->loaded);
  for (size_t i = 0; i < x->cache->n; i++) {
    struct referral_ticket *t = x->cache->v[i];
    struct referral_fxs fx;
    int more;
    do {
      fx.n = 0;
      more = referral_tick(t, j->now, &fx);
      referral_publish(x, b, t, &fx, NULL);
    } while (more);
  }
  int rc = referral_cache_save(x, b);
  if (loaded < CLOCK_BATCH && j->now > x->out_watermark_us) { /* every deadline before now is dealt with */
    rc |= svc_stream_watermark(x->prod, b, j->now);
    rc |= referral_store_clock(x->store, b, 0, j->now);
    j->all_done = 1;
  } else if (loaded < CLOCK_BATCH) {
    j->all_done = 1;
  }
  if (rc) { /* nothing of it commits; the clock runs again later */
    svc_pg_batch_fail(b, "cannot stage the clock");
    j->all_done = 0;
  }
  if (svc_stream_flush(x->prod, b) < 0) {
    svc_pg_batch_fail(b, "cannot flush the clock's events");
    j->all_done = 0;
  }
}

static void tick_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct referral_tickjob *j = arg;
  struct referral_ctx *x = j->x;
  (void)b;
  x->clock_busy = 0;
  x->tick = NULL;
  if (oc == SVC_PG_COMMITTED) {
    if (j->all_done && j->now > x->out_watermark_us) x->out_watermark_us = j->now;
    if (!j->all_done) x->clock_again = 1;
  } else { /* nothing committed: the timer runs it again */
    x->clock_again = 1;
    if (oc == SVC_PG_FAILED) svc_error("clock transaction failed", " error=\"%s\"", err ? err : "");
  }
  referral_loaded_clear(&j->loaded);
  free(j);
  if (oc == SVC_PG_COMMITTED && x->clock_again) referral_clock_run(x);
}

void referral_clock_run(struct referral_ctx *x)
{
  if (x->clock_busy || !svc_pg_is_up(x->pg)) return;
  int64_t now = referral_clock_now(x);
  if (!x->clock_again && now <= x->out_watermark_us) return;
  struct referral_tickjob *j = calloc(1, sizeof *j);
  if (!j) return;
  j->x = x;
  j->now = now;
  j->loader = (struct referral_loader){ tick_loaded, j };
  struct svc_pg_batch *b = svc_pg_batch_new(x->pg, tick_stage, tick_done, j);
  if (!b || referral_store_due(x->store, b, now, CLOCK_BATCH, &j->loader) != 0) {
    svc_pg_batch_discard(&b);
    free(j);
    return;
  }
  x->clock_again = 0;
  x->clock_busy = 1;
  x->tick = j;
  svc_pg_submit(b);
}

int referral_handlers_init(struct referral_ctx *x)
{
  x->cache = calloc(1, sizeof *x->cache);
  return x->cache ? 0 : -1;
}

void referral_handlers_free(struct referral_ctx *x)
{
  if (x->cache) {
    for (size_t i = 0; i < x->cache->n; i++) ticket_free(x->cache->v[i]);
    free(x->cache->v);
    free(x->cache);
    x->cache = NULL;
  }
  apply_free(&x->applying);
  if (x->tick) { /* its batch was discarded with the connection */
    referral_loaded_clear(&x->tick->loaded);
    free(x->tick);
    x->tick = NULL;
  }
}
