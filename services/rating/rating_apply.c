/* Applying the intake and referral streams to rating's facts: each batch of
 * events is decoded and the tickets, steps and nine-prohibitions state it
 * touches are loaded (stage 1), then the events are applied in order and
 * every changed fact, per-period sum, violation, deduction and R-P3
 * decision is staged (stage 2), in the consumer's transaction. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake_events.pb-c.h"
#include "rating.h"
#include "referral_events.pb-c.h"
#include "svc_alloc.h"
#include "svc_log.h"
#include "svc_pg.h"
#include "svc_registry.h"
#include "svc_stream.h"

#define DECODE_BUDGET (256 * 1024)

enum kind {
  K_IGNORE, K_WATERMARK, K_ACCEPTED, K_TRIAGED, K_EXEMPTED, K_ISSUED, K_S_ACCEPTED,
  K_S_RESOLVED, K_S_RETURNED, K_S_REOPENED, K_FEEDBACK, K_VIOLATION
};

static const struct { const char *name; int input; enum kind k; const ProtobufCMessageDescriptor *d; } KINDS[] = {
  { "ticket.accepted", 0, K_ACCEPTED, &whistle__intake__ticket_accepted__descriptor },
  { "ticket.triaged", 0, K_TRIAGED, &whistle__intake__ticket_triaged__descriptor },
  { "ticket.exempted", 0, K_EXEMPTED, &whistle__intake__ticket_exempted__descriptor },
  { "step.issued", 1, K_ISSUED, &whistle__referral__step_issued__descriptor },
  { "step.accepted", 1, K_S_ACCEPTED, &whistle__referral__step_changed__descriptor },
  { "step.resolved", 1, K_S_RESOLVED, &whistle__referral__step_changed__descriptor },
  { "step.returned", 1, K_S_RETURNED, &whistle__referral__step_changed__descriptor },
  { "step.reopened", 1, K_S_REOPENED, &whistle__referral__step_changed__descriptor },
  { "ticket.feedback", 1, K_FEEDBACK, &whistle__referral__feedback__descriptor },
  { "violation.confirmed", 1, K_VIOLATION, &whistle__referral__violation_confirmed__descriptor },
};

struct pev {
  enum kind k;
  int64_t event_us;
  ProtobufCMessage *m;
  struct svc_pballoc al;
};

struct tk { struct rating_ticket t; int was_counted; int32_t was_month; char was_compound[RATING_CODE_MAX], was_company[RATING_CODE_MAX]; };
struct sp { struct rating_step s; int was[3]; };
struct pyear { char compound[RATING_CODE_MAX]; int32_t year; unsigned mask; int dirty; char **tickets; size_t n_tickets; };
struct cyear { char company[RATING_CODE_MAX]; int32_t year; int fired; };

struct rating_apply {
  struct pev *ev; size_t n_ev;
  struct tk **t; size_t n_t, cap_t;
  struct sp **s; size_t n_s, cap_s;
  struct pyear *py; size_t n_py, cap_py;
  struct cyear *cy; size_t n_cy, cap_cy;
  int oom;
};

static void *grow(void *v, size_t *cap, size_t n, size_t size)
{
  if (n < *cap) return v;
  size_t c = *cap ? *cap * 2 : 16;
  void *p = realloc(v, c * size);
  if (p) *cap = c;
  return p;
}

static void apply_free(struct rating_apply **pa)
{
  struct rating_apply *a = *pa;
  if (!a) return;
  for (size_t i = 0; i < a->n_ev; i++)
    if (a->ev[i].m) protobuf_c_message_free_unpacked(a->ev[i].m, &a->ev[i].al.a);
  free(a->ev);
  for (size_t i = 0; i < a->n_t; i++) free(a->t[i]);
  for (size_t i = 0; i < a->n_s; i++) free(a->s[i]);
  for (size_t i = 0; i < a->n_py; i++) {
    for (size_t j = 0; j < a->py[i].n_tickets; j++) free(a->py[i].tickets[j]);
    free(a->py[i].tickets);
  }
  free(a->t);
  free(a->s);
  free(a->py);
  free(a->cy);
  free(a);
  *pa = NULL;
}

void rating_input_free(struct rating_input *in)
{
  apply_free(&in->a);
}

/* ---- lookups (a batch holds at most a few thousand facts: linear scans of
 * the ones an event names are cheap next to the SQL) ---- */

static struct tk *find_ticket(struct rating_apply *a, const char *no)
{
  for (size_t i = a->n_t; i-- > 0;)
    if (strcmp(a->t[i]->t.ticket_no, no) == 0) return a->t[i];
  return NULL;
}

static struct tk *add_ticket(struct rating_apply *a, const struct rating_ticket *t)
{
  struct tk *k = calloc(1, sizeof *k);
  struct tk **v = grow(a->t, &a->cap_t, a->n_t, sizeof *v);
  if (!k || !v) {
    free(k);
    if (v) a->t = v;
    a->oom = 1;
    return NULL;
  }
  a->t = v;
  k->t = *t;
  k->was_counted = t->counted;
  snprintf(k->was_compound, sizeof k->was_compound, "%s", t->compound);
  snprintf(k->was_company, sizeof k->was_company, "%s", t->company);
  a->t[a->n_t++] = k;
  return k;
}

static struct sp *find_step(struct rating_apply *a, const char *no, uint32_t step)
{
  for (size_t i = a->n_s; i-- > 0;)
    if (a->s[i]->s.step == step && strcmp(a->s[i]->s.ticket_no, no) == 0) return a->s[i];
  return NULL;
}

static struct sp *add_step(struct rating_apply *a, const struct rating_step *s)
{
  struct sp *k = calloc(1, sizeof *k);
  struct sp **v = grow(a->s, &a->cap_s, a->n_s, sizeof *v);
  if (!k || !v) {
    free(k);
    if (v) a->s = v;
    a->oom = 1;
    return NULL;
  }
  a->s = v;
  k->s = *s;
  k->was[0] = s->in_pop;
  k->was[1] = s->acc_ok;
  k->was[2] = s->res_ok;
  a->s[a->n_s++] = k;
  return k;
}

static void loaded_ticket(void *arg, const struct rating_ticket *t)
{
  struct rating_apply *a = arg;
  if (!find_ticket(a, t->ticket_no)) add_ticket(a, t);
}

static void loaded_step(void *arg, const struct rating_step *s)
{
  struct rating_apply *a = arg;
  if (!find_step(a, s->ticket_no, s->step)) add_step(a, s);
}

static struct pyear *find_py(struct rating_apply *a, const char *compound, int32_t year, int make)
{
  for (size_t i = 0; i < a->n_py; i++)
    if (a->py[i].year == year && strcmp(a->py[i].compound, compound) == 0) return &a->py[i];
  if (!make) return NULL;
  struct pyear *v = grow(a->py, &a->cap_py, a->n_py, sizeof *v);
  if (!v) {
    a->oom = 1;
    return NULL;
  }
  a->py = v;
  struct pyear *p = &a->py[a->n_py++];
  memset(p, 0, sizeof *p);
  snprintf(p->compound, sizeof p->compound, "%s", compound);
  p->year = year;
  return p;
}

static struct cyear *find_cy(struct rating_apply *a, const char *company, int32_t year, int make)
{
  for (size_t i = 0; i < a->n_cy; i++)
    if (a->cy[i].year == year && strcmp(a->cy[i].company, company) == 0) return &a->cy[i];
  if (!make) return NULL;
  struct cyear *v = grow(a->cy, &a->cap_cy, a->n_cy, sizeof *v);
  if (!v) {
    a->oom = 1;
    return NULL;
  }
  a->cy = v;
  struct cyear *c = &a->cy[a->n_cy++];
  memset(c, 0, sizeof *c);
  snprintf(c->company, sizeof c->company, "%s", company);
  c->year = year;
  return c;
}

static int py_ticket(struct rating_apply *a, struct pyear *p, const char *no)
{
  char **v = realloc(p->tickets, (p->n_tickets + 1) * sizeof *v);
  char *s = strdup(no);
  if (!v || !s) {
    free(s);
    if (v) p->tickets = v;
    a->oom = 1;
    return -1;
  }
  p->tickets = v;
  p->tickets[p->n_tickets++] = s;
  return 0;
}

static void loaded_p3(void *arg, int n, const char *const *v)
{
  struct rating_apply *a = arg;
  if (n < 4 || !v[0] || !v[1] || !v[2] || !v[3]) return;
  int32_t year = (int32_t)strtol(v[2], NULL, 10);
  if (v[0][0] == 'p') {
    struct pyear *p = find_py(a, v[1], year, 1);
    if (p) p->mask = (unsigned)strtoul(v[3], NULL, 10);
  } else if (v[0][0] == 'c') {
    struct cyear *c = find_cy(a, v[1], year, 1);
    if (c) c->fired = v[3][0] == 't';
  } else if (v[0][0] == 'v') {
    struct pyear *p = find_py(a, v[1], year, 1);
    if (p) py_ticket(a, p, v[3]);
  }
}

/* ---- stage 1: decode and load ---------------------------------------------------- */

static const char *event_ticket(const struct pev *e)
{
  switch (e->k) {
  case K_ACCEPTED: return ((Whistle__Intake__TicketAccepted *)e->m)->ticket_no;
  case K_TRIAGED: return ((Whistle__Intake__TicketTriaged *)e->m)->ticket_no;
  case K_EXEMPTED: return ((Whistle__Intake__TicketExempted *)e->m)->ticket_no;
  case K_ISSUED: return ((Whistle__Referral__StepIssued *)e->m)->ticket_no;
  case K_S_ACCEPTED: case K_S_RESOLVED: case K_S_RETURNED: case K_S_REOPENED:
    return ((Whistle__Referral__StepChanged *)e->m)->ticket_no;
  default: return NULL;
  }
}

static int32_t year_of(int64_t us, int off_s)
{
  return rating_month_index(us, off_s) / 12;
}

int rating_apply(void *arg, struct svc_pg_batch *b, const struct svc_stream_event *ev, size_t n)
{
  struct rating_input *in = arg;
  struct rating_ctx *x = in->x;
  apply_free(&in->a);
  struct rating_apply *a = calloc(1, sizeof *a);
  if (!a || !(a->ev = calloc(n ? n : 1, sizeof *a->ev))) {
    free(a);
    return -1;
  }
  in->a = a;
  const char **nos = calloc(n ? n : 1, sizeof *nos);
  const char **vc = calloc(n ? n : 1, sizeof *vc), **vk = calloc(n ? n : 1, sizeof *vk);
  int32_t *vy = calloc(n ? n : 1, sizeof *vy);
  size_t k = 0, nv = 0;
  int rc = -1;
  if (!nos || !vc || !vk || !vy) goto out;
  for (size_t i = 0; i < n; i++) {
    struct pev *e = &a->ev[a->n_ev++];
    e->event_us = ev[i].event_us;
    if (strcmp(ev[i].kind, SVC_STREAM_WATERMARK) == 0) {
      e->k = K_WATERMARK;
      continue;
    }
    for (size_t j = 0; j < sizeof KINDS / sizeof KINDS[0]; j++) {
      if (KINDS[j].input != in->which || strcmp(KINDS[j].name, ev[i].kind) != 0) continue;
      e->m = svc_pb_unpack(KINDS[j].d, &e->al, DECODE_BUDGET, ev[i].payload, ev[i].payload_len, NULL);
      if (!e->m) {
        svc_warn("unreadable event skipped", " input=%s seq=%llu kind=%s",
                 in->which ? "referral" : "intake", (unsigned long long)ev[i].seq, ev[i].kind);
        break;
      }
      e->k = KINDS[j].k;
    }
    const char *no = e->m ? event_ticket(e) : NULL;
    if (no) nos[k++] = no;
    if (e->k == K_VIOLATION) {
      Whistle__Referral__ViolationConfirmed *m = (Whistle__Referral__ViolationConfirmed *)e->m;
      vc[nv] = m->compound;
      vk[nv] = m->company;
      vy[nv++] = year_of(m->at_us, x->off_s);
    }
  }
  rc = 0;
  if (k) rc = rating_store_load(x->store, b, nos, k, loaded_ticket, loaded_step, a);
  if (!rc && nv) rc = rating_store_load_p3(x->store, b, vc, vk, vy, nv, loaded_p3, a);
out:
  free(nos);
  free(vc);
  free(vk);
  free(vy);
  return rc;
}

/* ---- stage 2: apply ------------------------------------------------------------- */

static void copy(char *dst, size_t n, const char *s)
{
  snprintf(dst, n, "%s", s ? s : "");
}

static struct tk *ticket(struct rating_apply *a, const char *no)
{
  struct tk *t = find_ticket(a, no);
  if (t) return t;
  struct rating_ticket z;
  memset(&z, 0, sizeof z);
  copy(z.ticket_no, sizeof z.ticket_no, no);
  z.is_new = 1;
  return add_ticket(a, &z);
}

static void classify(struct rating_ctx *x, struct rating_ticket *t)
{
  const struct svc_category *c = t->category[0] ? svc_registry_category(x->reg, t->category) : NULL;
  t->counting_category = c ? c->counts : 0;
}

static void on_accepted(struct rating_ctx *x, struct rating_apply *a, const Whistle__Intake__TicketAccepted *m)
{
  struct tk *k = ticket(a, m->ticket_no);
  if (!k || k->t.known) return; /* applied before */
  struct rating_ticket *t = &k->t;
  t->known = 1;
  copy(t->request_type, sizeof t->request_type, m->request_type);
  copy(t->category, sizeof t->category, m->category);
  copy(t->compound, sizeof t->compound, m->compound);
  copy(t->company, sizeof t->company, m->company);
  copy(t->street, sizeof t->street, m->street);
  copy(t->district, sizeof t->district, m->district);
  copy(t->management, sizeof t->management, m->management);
  t->received_us = m->received_us;
  t->triage = strcmp(m->disposition, "TRIAGE") == 0;
  t->repeat = strcmp(m->disposition, "REPEAT") == 0;
  classify(x, t);
  t->dirty = 1;
}

/* R-C1: an operator's completion counts only before the month's close. */
static void on_triaged(struct rating_ctx *x, struct rating_apply *a, const Whistle__Intake__TicketTriaged *m)
{
  struct tk *k = ticket(a, m->ticket_no);
  if (!k || !k->t.known || !k->t.triage || !rating_ticket_in_month(&k->t, m->at_us, x->off_s)) return;
  struct rating_ticket *t = &k->t;
  copy(t->category, sizeof t->category, m->category);
  copy(t->compound, sizeof t->compound, m->compound);
  copy(t->company, sizeof t->company, m->company);
  copy(t->street, sizeof t->street, m->street);
  copy(t->district, sizeof t->district, m->district);
  copy(t->management, sizeof t->management, m->management);
  t->triage = 0;
  classify(x, t);
  t->dirty = 1;
}

static void on_exempted(struct rating_ctx *x, struct rating_apply *a, const Whistle__Intake__TicketExempted *m)
{
  struct tk *k = ticket(a, m->ticket_no);
  if (!k || !k->t.known || k->t.exempt || !rating_ticket_in_month(&k->t, m->at_us, x->off_s)) return;
  k->t.exempt = 1;
  k->t.dirty = 1;
}

static void on_issued(struct rating_ctx *x, struct rating_apply *a, const Whistle__Referral__StepIssued *m)
{
  struct tk *k = ticket(a, m->ticket_no);
  /* R-I5: referral's view decides; a ticket it refers is not a repeat. */
  if (k && !k->t.referred && (!k->t.known || rating_ticket_in_month(&k->t, m->issued_us, x->off_s))) {
    k->t.referred = 1;
    k->t.dirty = 1;
  }
  if (find_step(a, m->ticket_no, m->step)) return; /* applied before */
  struct rating_step s;
  memset(&s, 0, sizeof s);
  copy(s.ticket_no, sizeof s.ticket_no, m->ticket_no);
  s.step = m->step;
  copy(s.unit, sizeof s.unit, m->unit);
  s.street_unit = strcmp(m->unit_kind, "STREET") == 0;
  copy(s.district, sizeof s.district, m->unit_district);
  s.issued_us = m->issued_us;
  s.accept_by_us = m->accept_by_us;
  s.resolve_by_us = m->resolve_by_us;
  s.is_new = s.dirty = 1;
  add_step(a, &s);
}

static void on_changed(struct rating_apply *a, enum kind kd, const Whistle__Referral__StepChanged *m)
{
  struct sp *p = find_step(a, m->ticket_no, m->step);
  if (!p) return;
  int64_t *at = kd == K_S_ACCEPTED ? &p->s.accepted_us : kd == K_S_RESOLVED ? &p->s.resolved_us
              : kd == K_S_RETURNED ? &p->s.returned_us : &p->s.reopened_us;
  if (*at == 0 || kd == K_S_REOPENED) {
    *at = m->at_us;
    p->s.dirty = 1;
  }
}

static int64_t unit_month_key(const struct rating_ctx *x, int64_t us)
{
  return rating_month_index(us, x->off_s);
}

/* R-U2: a callback for the unit whose step was the ticket's last. */
static int on_feedback(struct rating_ctx *x, struct svc_pg_batch *b, const Whistle__Referral__Feedback *m)
{
  if (!m->last_unit[0]) return 0;
  const struct svc_street *st = svc_registry_street(x->reg, m->last_unit);
  int sat = strcmp(m->satisfaction, "SATISFIED") == 0 || strcmp(m->satisfaction, "BASICALLY_SATISFIED") == 0;
  const int64_t d[5] = { 0, 0, 0, 1, sat };
  return rating_store_unit_delta(x->store, b, (int32_t)unit_month_key(x, m->at_us), m->last_unit,
                                 st != NULL, st ? st->district : "", d);
}

/* R-P2, R-P3, R-K1: a confirmed violation. */
static int on_violation(struct rating_ctx *x, struct rating_apply *a, struct svc_pg_batch *b,
                        const Whistle__Referral__ViolationConfirmed *m, int64_t event_us,
                        uint64_t *decisions)
{
  int p = rating_prohibition_parse(m->prohibition);
  if (!p || !m->compound[0]) return 0;
  int32_t mi = rating_month_index(m->at_us, x->off_s), year = mi / 12;
  struct pyear *py = find_py(a, m->compound, year, 1);
  struct cyear *cy = m->company[0] ? find_cy(a, m->company, year, 1) : NULL;
  if (!py || (m->company[0] && !cy)) return -1;
  for (size_t i = 0; i < py->n_tickets; i++)
    if (strcmp(py->tickets[i], m->ticket_no) == 0) return 0; /* applied before */
  if (py_ticket(a, py, m->ticket_no)) return -1;
  int rc = rating_store_violation(x->store, b, m->ticket_no, m->step, m->compound, m->company, p,
                                  m->at_us, year);
  char key[200];
  snprintf(key, sizeof key, "R-K1|%s", m->ticket_no);
  rc |= rating_store_deduction(x->store, b, key, m->company, year * 2 + (mi % 12 >= 6),
                               x->table.deduct[p], m->at_us);
  unsigned before = py->mask;
  int d = rating_p3_apply(&py->mask, p, cy ? cy->fired : 1);
  if (py->mask != before) rc |= rating_store_project_year(x->store, b, m->compound, year, py->mask);
  if (!d) return rc ? -1 : 0;
  struct rating_decision dc;
  memset(&dc, 0, sizeof dc);
  const char *subject = d == 4 ? m->company : m->compound;
  snprintf(dc.key, sizeof dc.key, "R-P3.%d|%s|%d", d, subject, (int)year);
  dc.rule = "R-P3";
  snprintf(dc.rule_id, sizeof dc.rule_id, "R-P3.%d", d);
  dc.n_measures = rating_p3_measures(d, dc.measures);
  copy(dc.subject, sizeof dc.subject, subject);
  dc.subject_kind = d == 4 ? "COMPANY" : "PROJECT";
  snprintf(dc.period, sizeof dc.period, "%04d", (int)(year % 10000));
  dc.event_us = event_us;
  snprintf(dc.figures[dc.n_figures++], sizeof dc.figures[0], "D=%d", rating_p3_count(py->mask));
  snprintf(dc.figures[dc.n_figures++], sizeof dc.figures[0], "project=%s", m->compound);
  copy(dc.recipient, sizeof dc.recipient, m->company[0] ? m->company : m->compound);
  if (m->street[0]) copy(dc.cc[dc.n_cc++], sizeof dc.cc[0], m->street);
  if (m->district[0]) copy(dc.cc[dc.n_cc++], sizeof dc.cc[0], m->district);
  copy(dc.company, sizeof dc.company, m->company);
  copy(dc.street, sizeof dc.street, m->street);
  copy(dc.district, sizeof dc.district, m->district);
  for (size_t i = 0; i < py->n_tickets; i++) rc |= rating_decision_evidence(&dc, py->tickets[i]);
  if (d == 4) {
    cy->fired = 1;
    rc |= rating_store_company_d4(x->store, b, m->company, year);
  }
  rc |= rating_decision_hold(x, b, &dc);
  rating_decision_clear(&dc);
  (*decisions)++;
  return rc ? -1 : 0;
}

/* Stages the saves of changed facts and the changes of the per-period sums. */
static int save(struct rating_ctx *x, struct rating_apply *a, struct svc_pg_batch *b, int64_t *late)
{
  int rc = 0;
  for (size_t i = 0; i < a->n_t && !rc; i++) {
    struct tk *k = a->t[i];
    struct rating_ticket *t = &k->t;
    if (!t->dirty) continue;
    int32_t month = t->known ? rating_month_index(t->received_us, x->off_s) : 0;
    t->counted = rating_ticket_counts(t);
    if (t->is_new && t->known && x->closed_month && month <= x->closed_month) (*late)++;
    int same = k->was_counted && t->counted && strcmp(k->was_compound, t->compound) == 0;
    if (k->was_counted && !same)
      rc |= rating_store_project_delta(x->store, b, month, k->was_compound, k->was_company, -1);
    if (t->counted && !same)
      rc |= rating_store_project_delta(x->store, b, month, t->compound, t->company, 1);
    rc |= rating_store_save_ticket(x->store, b, t, month);
  }
  for (size_t i = 0; i < a->n_s && !rc; i++) {
    struct sp *p = a->s[i];
    struct rating_step *s = &p->s;
    if (!s->dirty) continue;
    int32_t month = rating_month_index(s->resolve_by_us, x->off_s);
    rating_step_flags(s, x->off_s, &s->in_pop, &s->acc_ok, &s->res_ok);
    const int64_t d[5] = { s->in_pop - p->was[0], s->acc_ok - p->was[1], s->res_ok - p->was[2], 0, 0 };
    if (d[0] || d[1] || d[2]) {
      if (x->closed_month && month <= x->closed_month) (*late)++;
      rc |= rating_store_unit_delta(x->store, b, month, s->unit, s->street_unit, s->district, d);
    }
    rc |= rating_store_save_step(x->store, b, s, month);
  }
  return rc ? -1 : 0;
}

static void committed(struct svc_pg_batch *b, enum svc_pg_outcome o, const char *e, void *arg);

struct done { struct rating_input *in; int64_t wm; int64_t late; uint64_t tickets, steps, violations, decisions; int32_t first; };

int rating_apply_next(void *arg, struct svc_pg_batch *b, const struct svc_stream_event *ev,
                      size_t n, int stage)
{
  struct rating_input *in = arg;
  struct rating_ctx *x = in->x;
  struct rating_apply *a = in->a;
  (void)ev;
  (void)n;
  if (stage != 2 || !a) return 0;
  if (a->oom) return -1;
  struct done *dn = calloc(1, sizeof *dn);
  if (!dn) return -1;
  dn->in = in;
  int rc = 0;
  int64_t wm = in->which ? x->referral_wm : x->intake_wm;
  for (size_t i = 0; i < a->n_ev && rc == 0; i++) {
    struct pev *e = &a->ev[i];
    switch (e->k) {
    case K_WATERMARK: if (e->event_us > wm) wm = e->event_us; break;
    case K_ACCEPTED: on_accepted(x, a, (Whistle__Intake__TicketAccepted *)e->m); dn->tickets++; break;
    case K_TRIAGED: on_triaged(x, a, (Whistle__Intake__TicketTriaged *)e->m); break;
    case K_EXEMPTED: on_exempted(x, a, (Whistle__Intake__TicketExempted *)e->m); break;
    case K_ISSUED: on_issued(x, a, (Whistle__Referral__StepIssued *)e->m); dn->steps++; break;
    case K_S_ACCEPTED: case K_S_RESOLVED: case K_S_RETURNED: case K_S_REOPENED:
      on_changed(a, e->k, (Whistle__Referral__StepChanged *)e->m);
      break;
    case K_FEEDBACK: {
      const Whistle__Referral__Feedback *m = (Whistle__Referral__Feedback *)e->m;
      if (x->closed_month && rating_month_index(m->at_us, x->off_s) <= x->closed_month) dn->late++;
      rc = on_feedback(x, b, m);
      break;
    }
    case K_VIOLATION:
      rc = on_violation(x, a, b, (Whistle__Referral__ViolationConfirmed *)e->m, e->event_us,
                        &dn->decisions);
      dn->violations++;
      break;
    case K_IGNORE: break;
    }
    if (a->oom) rc = -1;
    int64_t t = 0;
    if (e->k == K_ACCEPTED) t = ((Whistle__Intake__TicketAccepted *)e->m)->received_us;
    else if (e->k == K_ISSUED) t = ((Whistle__Referral__StepIssued *)e->m)->issued_us;
    if (t) {
      int32_t mi = rating_month_index(t, x->off_s);
      if (!dn->first || mi < dn->first) dn->first = mi;
    }
  }
  if (!rc) rc = save(x, a, b, &dn->late);
  dn->wm = wm;
  if (!rc)
    rc = rating_store_clock(x->store, b, in->which ? 0 : wm, in->which ? wm : 0, dn->first, dn->late);
  if (rc || svc_pg_batch_hook(b, committed, dn)) {
    free(dn);
    return -1;
  }
  return 0;
}

static void committed(struct svc_pg_batch *b, enum svc_pg_outcome o, const char *e, void *arg)
{
  struct done *dn = arg;
  struct rating_ctx *x = dn->in->x;
  (void)b;
  (void)e;
  if (o == SVC_PG_COMMITTED) {
    int64_t *wm = dn->in->which ? &x->referral_wm : &x->intake_wm;
    if (dn->wm > *wm) *wm = dn->wm;
    svc_clock_observe(&x->clock, x->intake_wm < x->referral_wm ? x->intake_wm : x->referral_wm);
    if (dn->first && (!x->first_month || dn->first < x->first_month)) x->first_month = dn->first;
    x->n.tickets += dn->tickets;
    x->n.steps += dn->steps;
    x->n.violations += dn->violations;
    x->n.decisions += dn->decisions;
    if (dn->late) {
      x->n.late += (uint64_t)dn->late;
      svc_warn("input for a closed period", " input=%s count=%lld rule=\"facts recorded, published"
               " results unchanged\"", dn->in->which ? "referral" : "intake", (long long)dn->late);
    }
    rating_close_run(x);
  }
  free(dn);
}
