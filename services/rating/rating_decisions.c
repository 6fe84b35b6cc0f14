/* Rating's decisions and its state as a whole: a decision's evidence list,
 * publishing it on rating's stream (Decision of proto/rating_events.proto),
 * saving it published or held for a later watermark (R-E4: once by key),
 * the rule table loaded beside the registry, and the state restored at
 * start. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rating.h"
#include "rating_events.pb-c.h"
#include "svc_log.h"
#include "svc_pg.h"
#include "svc_signal.h"
#include "svc_stream.h"

int rating_decision_evidence(struct rating_decision *d, const char *item)
{
  if (d->n_evidence >= RATING_EVIDENCE_MAX) return 0; /* a decision names at most this many */
  if (d->n_evidence == d->cap_evidence) {
    size_t c = d->cap_evidence ? d->cap_evidence * 2 : 8;
    char **p = realloc(d->evidence, c * sizeof *p);
    if (!p) return -1;
    d->evidence = p;
    d->cap_evidence = c;
  }
  if (!(d->evidence[d->n_evidence] = strdup(item))) return -1;
  d->n_evidence++;
  return 0;
}

void rating_decision_clear(struct rating_decision *d)
{
  for (size_t i = 0; i < d->n_evidence; i++) free(d->evidence[i]);
  free(d->evidence);
  d->evidence = NULL;
  d->n_evidence = d->cap_evidence = 0;
}

int rating_decision_publish(struct rating_ctx *x, struct svc_pg_batch *b,
                            const struct rating_decision *d)
{
  Whistle__Rating__Decision m = WHISTLE__RATING__DECISION__INIT;
  char *measures[RATING_MEASURES_MAX], *cc[2], *figures[6];
  for (size_t i = 0; i < d->n_measures; i++) measures[i] = (char *)d->measures[i];
  for (size_t i = 0; i < d->n_cc; i++) cc[i] = (char *)d->cc[i];
  for (size_t i = 0; i < d->n_figures; i++) figures[i] = (char *)d->figures[i];
  m.key = (char *)d->key;
  m.rule = (char *)d->rule;
  m.rule_id = (char *)d->rule_id;
  m.decision = (char *)(d->n_measures ? d->measures[0] : "");
  m.n_measures = d->n_measures;
  m.measures = measures;
  m.subject = (char *)d->subject;
  m.subject_kind = (char *)d->subject_kind;
  m.period = (char *)d->period;
  m.event_us = d->event_us;
  m.n_evidence = d->n_evidence;
  m.evidence = d->evidence;
  m.recipient = (char *)d->recipient;
  m.n_cc = d->n_cc;
  m.cc = cc;
  m.company = (char *)d->company;
  m.street = (char *)d->street;
  m.district = (char *)d->district;
  m.rule_set = (char *)(d->rule_set ? d->rule_set : x->table.version);
  m.n_figures = d->n_figures;
  m.figures = figures;
  return svc_stream_append_msg(x->prod, b, d->event_us, "decision", SVC_STREAM_BROADCAST, &m.base);
}

int rating_decision_emit(struct rating_ctx *x, struct svc_pg_batch *b, const struct rating_decision *d)
{
  struct rating_decision c = *d;
  c.rule_set = x->table.version;
  if (rating_store_decision(x->store, b, &c, 1)) return -1;
  return rating_decision_publish(x, b, &c);
}

int rating_decision_hold(struct rating_ctx *x, struct svc_pg_batch *b, const struct rating_decision *d)
{
  struct rating_decision c = *d;
  c.rule_set = x->table.version;
  return rating_store_decision(x->store, b, &c, 0);
}

/* A held decision as loaded (rating_store_held) back into a struct; its
 * strings point into the row, which outlives it. */

int rating_load_table(struct rating_ctx *x, const char *dir, int reloading)
{
  char path[1024], err[512];
  struct rating_table t;
  rating_table_defaults(&t);
  snprintf(path, sizeof path, "%s/rating_rules.csv", dir);
  if (rating_table_load(&t, path, err, sizeof err)) {
    if (reloading) svc_reload_failed("rule table", err);
    else svc_error("rule table refused", " error=\"%s\"", err);
    return -1;
  }
  x->table = t;
  svc_info("rule table loaded", " version=%s top_k=%d", t.version, t.top_k);
  return 0;
}

void rating_restore(struct rating_ctx *x, const struct rating_clock_row *c)
{
  x->intake_wm = c->intake_wm;
  x->referral_wm = c->referral_wm;
  x->out_wm = c->out_wm;
  x->closed_month = c->closed_month;
  x->first_month = c->first_month;
  x->n.late = (uint64_t)c->late;
  svc_clock_observe(&x->clock, x->intake_wm < x->referral_wm ? x->intake_wm : x->referral_wm);
}
