/* The ops queries' answers (proto/unit.proto Query) as JSON objects, one
 * per line once written by svc_lines (the export shapes, docs/exports.md):
 * a ticket in the shape of `whistlectl export tickets`, with times and step
 * details for Query TICKET, and what a ticket waiting for re-dispatch waits
 * with (R-R3). What is absent is null: a time not reached yet, the compound
 * of a ticket not matched, repeat_of of a ticket that is not a repeat. */
#include <stdio.h>

#include <jansson.h>

#include "referral.h"

/* A time in local time (R-T1), or null when absent (0). */
static json_t *jtime(int64_t us)
{
  char at[40];
  if (!us || svc_time_format(us, SVC_DEFAULT_UTC_OFFSET, at, sizeof at) < 0) return json_null();
  return json_string(at);
}

/* A code, or null when empty. */
static json_t *jcode(const char *s)
{
  return s && s[0] ? json_string(s) : json_null();
}

/* The export's ticket states: referral's RETURNED (waiting for re-dispatch)
 * is an OPEN ticket to the outside. */
static const char *export_state(enum referral_ticket_state s)
{
  return s == RT_RETURNED ? "OPEN" : referral_ticket_state_name(s);
}

static json_t *step_json(const struct referral_step *s, int detail)
{
  json_t *o = json_pack("{s:I,s:s,s:s,s:o,s:o,s:b,s:b}", "step", (json_int_t)s->no, "unit", s->unit,
                        "state", referral_step_state_name(s->state), "accepted_at",
                        jtime(s->accepted_us), "resolved_at", jtime(s->resolved_us),
                        "accept_overdue", referral_step_overdue(s, 0), "resolve_overdue",
                        referral_step_overdue(s, 1));
  if (!o || !detail) return o;
  json_t *d = json_pack("{s:o,s:o,s:o,s:o,s:o,s:s,s:b,s:o}", "issued_at", jtime(s->issued_us),
                        "accept_by", jtime(s->accept_by_us), "resolve_by", jtime(s->resolve_by_us),
                        "returned_at", jtime(s->returned_us), "reopened_at", jtime(s->reopened_us),
                        "reason", referral_issue_reason_name(s->reason), "violation", s->violation,
                        "prohibition", jcode(s->prohibition));
  if (!d || json_object_update(o, d)) {
    json_decref(d);
    json_decref(o);
    return NULL;
  }
  json_decref(d);
  return o;
}

json_t *referral_ticket_json(const struct referral_ticket *t, int detail)
{
  json_t *steps = json_array();
  for (size_t i = 0; steps && i < t->n_steps; i++) {
    json_t *s = step_json(&t->steps[i], detail);
    if (!s || json_array_append_new(steps, s)) {
      json_decref(steps);
      return NULL;
    }
  }
  /* R-I5: a ticket referral found not to be a repeat (the earlier referral
   * had closed) is referred, and no export links it. */
  const char *repeat_of = t->state == RT_REPEAT ? t->repeat_of : "";
  json_t *o = json_pack("{s:s,s:s,s:o,s:o,s:b,s:s,s:o*}", "ticket_no", t->ticket_no, "category",
                        t->category, "compound", jcode(t->compound), "repeat_of", jcode(repeat_of),
                        "exempt", t->exempt, "state", export_state(t->state), "steps", steps);
  if (!o || !detail) return o;
  int64_t close_by = t->state == RT_RESOLVED ? t->close_by_us : 0;
  json_t *d = json_pack("{s:o,s:o,s:o,s:o}", "received_at", jtime(t->received_us), "resolved_at",
                        jtime(t->resolved_us), "closed_at", jtime(t->closed_us), "close_by",
                        jtime(close_by));
  if (!d || json_object_update(o, d)) {
    json_decref(d);
    json_decref(o);
    return NULL;
  }
  json_decref(d);
  return o;
}

json_t *referral_returned_json(const struct referral_ticket *t)
{
  if (t->state != RT_RETURNED) return NULL;
  const struct referral_step *last = t->n_steps ? &t->steps[t->n_steps - 1] : NULL;
  /* A returned step, or (step 0) a ticket that no routing step could be
   * issued for: no routing for its category, or no street for STREET. */
  int step = last && last->state == RS_RETURNED;
  int64_t since = t->wait_us ? t->wait_us : (step ? last->returned_us : 0);
  return json_pack("{s:s,s:I,s:s,s:o,s:s,s:s,s:o,s:s,s:i}", "ticket_no", t->ticket_no, "step",
                   (json_int_t)(step ? last->no : 0), "unit", step ? last->unit : "",
                   "returned_at", jtime(since), "reason", t->wait_reason, "category", t->category,
                   "compound", jcode(t->compound), "street", t->street, "returns", t->returns);
}
