/* Applying the referral stream (overdue events, R-E1) and the rating stream
 * (decisions, R-E2) to escalation's triggers: each is recorded once by its
 * key, in the consumer's transaction with its position (R-E4); watermarks
 * move the inputs' clock, after which the issuance runs. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escalation.h"
#include "rating_events.pb-c.h"
#include "referral_events.pb-c.h"
#include "svc_alloc.h"
#include "svc_log.h"
#include "svc_pg.h"
#include "svc_stream.h"

#define DECODE_BUDGET (256 * 1024)

static void copy(char *dst, size_t n, const char *s)
{
  snprintf(dst, n, "%s", s ? s : "");
}

/* R-E1: an overdue event; its notice type waits for the ladder. */
static int on_overdue(struct esc_ctx *x, struct svc_pg_batch *b, const Whistle__Referral__StepClock *m)
{
  struct esc_trigger t;
  memset(&t, 0, sizeof t);
  copy(t.key, sizeof t.key, m->key);
  t.source = "overdue";
  t.event_us = m->deadline_us; /* R-E2a */
  copy(t.rule, sizeof t.rule, "R-E1");
  copy(t.rule_id, sizeof t.rule_id, "R-E1");
  copy(t.rule_set, sizeof t.rule_set, m->rule_set);
  t.quarter = esc_quarter(m->deadline_us, x->off_s);
  esc_quarter_name(t.quarter, t.period);
  copy(t.recipient, sizeof t.recipient, m->unit);
  const char *cc[1] = { m->unit_district };
  int street = strcmp(m->unit_kind, "STREET") == 0;
  t.cc = cc;
  t.n_cc = street && m->unit_district[0] ? 1 : 0; /* a street's overdue: cc its district */
  char step_ref[ESC_CODE_MAX + 16], f[3][64];
  snprintf(step_ref, sizeof step_ref, "%s#%u", m->ticket_no, m->step);
  const char *ev[2] = { m->ticket_no, step_ref };
  t.evidence = ev;
  t.n_evidence = 2;
  snprintf(f[0], sizeof f[0], "clock=%s", m->clock);
  snprintf(f[1], sizeof f[1], "issued_us=%lld", (long long)m->issued_us);
  snprintf(f[2], sizeof f[2], "deadline_us=%lld", (long long)m->deadline_us);
  const char *facts[3] = { f[0], f[1], f[2] };
  t.facts = facts;
  t.n_facts = 3;
  copy(t.ticket_no, sizeof t.ticket_no, m->ticket_no);
  t.step = m->step;
  t.resolve = strcmp(m->clock, "RESOLVE") == 0;
  copy(t.unit, sizeof t.unit, m->unit);
  return esc_store_trigger(x->store, b, &t);
}

/* R-E2: a rating decision, one notice with all its measures. */
static int on_decision(struct esc_ctx *x, struct svc_pg_batch *b, const Whistle__Rating__Decision *m)
{
  enum esc_type type;
  if (esc_decision_type(m->rule_id, m->n_measures ? m->measures[0] : "", &type)) {
    x->n.skipped++;
    svc_warn("decision without a notice type skipped", " key=%s rule=%s", m->key, m->rule_id);
    return 0;
  }
  struct esc_trigger t;
  memset(&t, 0, sizeof t);
  copy(t.key, sizeof t.key, m->key);
  t.source = "decision";
  t.event_us = m->event_us;
  copy(t.rule, sizeof t.rule, m->rule);
  copy(t.rule_id, sizeof t.rule_id, m->rule_id);
  copy(t.rule_set, sizeof t.rule_set, m->rule_set);
  copy(t.period, sizeof t.period, m->period);
  copy(t.type, sizeof t.type, esc_type_code(type));
  copy(t.recipient, sizeof t.recipient, m->recipient);
  t.cc = (const char *const *)m->cc;
  t.n_cc = m->n_cc;
  t.measures = (const char *const *)m->measures;
  t.n_measures = m->n_measures;
  t.evidence = (const char *const *)m->evidence;
  t.n_evidence = m->n_evidence;
  char subj[ESC_CODE_MAX + 16];
  snprintf(subj, sizeof subj, "subject=%s", m->subject);
  const char **facts = calloc(m->n_figures + 1, sizeof *facts);
  if (!facts) return -1;
  facts[0] = subj;
  for (size_t i = 0; i < m->n_figures; i++) facts[i + 1] = m->figures[i];
  t.facts = facts;
  t.n_facts = m->n_figures + 1;
  int rc = esc_store_trigger(x->store, b, &t);
  free(facts);
  return rc;
}

struct done { struct esc_input *in; int64_t wm; uint64_t triggers; };

static void committed(struct svc_pg_batch *b, enum svc_pg_outcome o, const char *e, void *arg)
{
  struct done *dn = arg;
  struct esc_ctx *x = dn->in->x;
  (void)b;
  (void)e;
  if (o == SVC_PG_COMMITTED) {
    int64_t *wm = dn->in->which ? &x->rating_wm : &x->referral_wm;
    if (dn->wm > *wm) *wm = dn->wm;
    svc_clock_observe(&x->clock, x->referral_wm < x->rating_wm ? x->referral_wm : x->rating_wm);
    x->n.triggers += dn->triggers;
    esc_issue_run(x);
  }
  free(dn);
}

int esc_apply(void *arg, struct svc_pg_batch *b, const struct svc_stream_event *ev, size_t n)
{
  struct esc_input *in = arg;
  struct esc_ctx *x = in->x;
  struct done *dn = calloc(1, sizeof *dn);
  if (!dn) return -1;
  dn->in = in;
  dn->wm = in->which ? x->rating_wm : x->referral_wm;
  int rc = 0;
  for (size_t i = 0; i < n && !rc; i++) {
    const struct svc_stream_event *e = &ev[i];
    struct svc_pballoc al;
    if (strcmp(e->kind, SVC_STREAM_WATERMARK) == 0) {
      if (e->event_us > dn->wm) dn->wm = e->event_us;
    } else if (!in->which && (strcmp(e->kind, "ACCEPT_OVERDUE") == 0 ||
                              strcmp(e->kind, "RESOLVE_OVERDUE") == 0)) {
      Whistle__Referral__StepClock *m = (Whistle__Referral__StepClock *)svc_pb_unpack(
        &whistle__referral__step_clock__descriptor, &al, DECODE_BUDGET, e->payload, e->payload_len, NULL);
      if (!m) {
        svc_warn("unreadable event skipped", " input=referral seq=%llu kind=%s", (unsigned long long)e->seq, e->kind);
        continue;
      }
      rc = on_overdue(x, b, m);
      dn->triggers++;
      protobuf_c_message_free_unpacked(&m->base, &al.a);
    } else if (in->which && strcmp(e->kind, "decision") == 0) {
      Whistle__Rating__Decision *m = (Whistle__Rating__Decision *)svc_pb_unpack(
        &whistle__rating__decision__descriptor, &al, DECODE_BUDGET, e->payload, e->payload_len, NULL);
      if (!m) {
        svc_warn("unreadable event skipped", " input=rating seq=%llu kind=%s", (unsigned long long)e->seq, e->kind);
        continue;
      }
      rc = on_decision(x, b, m);
      dn->triggers++;
      protobuf_c_message_free_unpacked(&m->base, &al.a);
    }
  }
  if (!rc) rc = esc_store_clock(x->store, b, in->which ? 0 : dn->wm, in->which ? dn->wm : 0);
  if (rc || svc_pg_batch_hook(b, committed, dn)) {
    free(dn);
    return -1;
  }
  return 0;
}
