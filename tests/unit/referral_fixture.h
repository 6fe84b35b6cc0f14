/* Shared fixture of test_referral_rules.c and test_referral_clocks.c: the
 * sample registry, times, tickets, wrappers that keep the last rule's result
 * in R and its effects in FX, snapshots showing a refusal changed nothing,
 * and a suite runner. Helpers are static inline (each file uses some). */
#ifndef REFERRAL_FIXTURE_H
#define REFERRAL_FIXTURE_H

#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "referral.h"
#include "svc_registry.h"
#include "svc_time.h"
#include "unit_run.h"

#define SEC SVC_US_PER_SEC
#define MINUTE (60 * SEC)
#define HOUR (3600 * SEC)
#define DAY (24 * HOUR)

/* 2026-10-09 is a Friday; 2026-10-10 (Saturday) is a make-up working day. */
#define T0_TEXT "2026-10-09T10:00:00+08:00"

static struct svc_registry *reg;

/* The result and effects of the last rule applied. */
static struct referral_result R;
static struct referral_fxs FX;

static inline void load_reg(void) {
  char err[512];

  reg = svc_registry_load("deploy/registry", err, sizeof err);
  ck_assert_msg(reg != NULL, "registry refused: %s", err);
}

static inline void free_reg(void) { svc_registry_destroy(&reg); }

static inline int64_t at(const char *s) {
  int64_t us = 0;

  ck_assert_msg(svc_time_parse(s, (size_t)-1, &us) == 0, "bad time %s", s);
  return us;
}

/* 23:59:59 local (+08:00) of date. */
static inline int64_t end_of(const char *date) {
  char buf[64];

  snprintf(buf, sizeof buf, "%sT23:59:59+08:00", date);
  return at(buf);
}

static inline const char *mgmt_name(enum svc_management m) {
  switch (m) {
  case SVC_MGMT_PROFESSIONAL: return "PROFESSIONAL";
  case SVC_MGMT_SELF: return "SELF";
  case SVC_MGMT_CUSTODIAL: return "CUSTODIAL";
  case SVC_MGMT_NONE: return "NONE";
  }
  return "?";
}

/* Ticket no of category about compound (NULL: no compound, no street). */
static inline struct referral_ticket *new_ticket(const char *no, const char *category,
                                                 const char *compound) {
  struct referral_ticket *t = calloc(1, sizeof *t);

  ck_assert_ptr_nonnull(t);
  snprintf(t->ticket_no, sizeof t->ticket_no, "%s", no);
  snprintf(t->request_type, sizeof t->request_type, "COMPLAINT");
  snprintf(t->category, sizeof t->category, "%s", category);
  snprintf(t->management, sizeof t->management, "NONE");
  if (compound) {
    const struct svc_compound *c = svc_registry_compound(reg, compound);

    ck_assert_msg(c != NULL, "no compound %s", compound);
    snprintf(t->compound, sizeof t->compound, "%s", c->code);
    snprintf(t->street, sizeof t->street, "%s", c->street);
    snprintf(t->district, sizeof t->district, "%s", c->district);
    snprintf(t->management, sizeof t->management, "%s", mgmt_name(c->management));
    snprintf(t->company, sizeof t->company, "%s", c->company);
  }
  t->address = strdup("和平路1号");
  t->content = strdup("投诉内容");
  ck_assert(t->address && t->content);
  return t;
}

static inline void drop(struct referral_ticket *t) {
  referral_ticket_clear(t);
  free(t);
}

static inline void dispatch(struct referral_ticket *t, int64_t when) {
  memset(&FX, 0, sizeof FX);
  t->received_us = when;
  ck_assert_int_eq(referral_dispatch(t, reg, when, &FX), 0);
}

static inline struct referral_step *step(struct referral_ticket *t, uint32_t no) {
  struct referral_step *s = referral_find_step(t, no);

  ck_assert_msg(s != NULL, "no step %u", no);
  return s;
}

/* An update of step no from unit (a return gives a reason, every update the
 * note 办理中). */
static inline enum referral_verdict update(struct referral_ticket *t, uint32_t no,
                                           const char *unit, enum referral_action a,
                                           int64_t when, int violation,
                                           const char *prohibition) {
  char who[REFERRAL_CODE_MAX];
  struct referral_update u;

  snprintf(who, sizeof who, "%s", unit);
  u = (struct referral_update){ .ticket_no = t->ticket_no, .step = no, .unit = who,
                                .at_us = when, .action = a, .note = "办理中",
                                .reason = a == RA_RETURN ? "不属本单位职责" : NULL,
                                .violation = violation, .prohibition = prohibition };
  memset(&FX, 0, sizeof FX);
  referral_update_apply(t, reg, &u, 0, &R, &FX);
  return R.verdict;
}

/* An update from the unit step no (which must exist) was issued to. */
static inline enum referral_verdict act(struct referral_ticket *t, uint32_t no,
                                        enum referral_action a, int64_t when) {
  return update(t, no, step(t, no)->unit, a, when, 0, NULL);
}

static inline enum referral_verdict resolve(struct referral_ticket *t, uint32_t no, int64_t when,
                                            int violation, const char *prohibition) {
  return update(t, no, step(t, no)->unit, RA_RESOLVE, when, violation, prohibition);
}

static inline void redispatch(struct referral_ticket *t, uint32_t no, const char *unit,
                              int64_t when) {
  memset(&FX, 0, sizeof FX);
  referral_redispatch(t, reg, no, unit, when, &R, &FX);
}

static inline int feedback(struct referral_ticket *t, const char *satisfaction, int64_t when) {
  memset(&FX, 0, sizeof FX);
  return referral_feedback(t, reg, satisfaction, when, &FX);
}

static inline size_t n_fx(enum referral_fx_kind k) {
  size_t n = 0;

  for (size_t i = 0; i < FX.n; i++) n += FX.v[i].kind == k;
  return n;
}

static inline const struct referral_fx *fx_of(enum referral_fx_kind k) {
  for (size_t i = 0; i < FX.n; i++)
    if (FX.v[i].kind == k) return &FX.v[i];
  ck_abort_msg("no effect of kind %d among %zu", (int)k, FX.n);
  return NULL;
}

/* A copy of a ticket and its steps, to show that a refused input changed
 * nothing at all: not the ticket, not a step, and no effect in FX. */
#define SNAP_STEPS 16
struct snap { struct referral_ticket t; struct referral_step s[SNAP_STEPS]; };

static inline void snap_take(struct snap *sn, const struct referral_ticket *t) {
  ck_assert_uint_le(t->n_steps, SNAP_STEPS);
  memcpy(&sn->t, t, sizeof *t);
  if (t->n_steps) memcpy(sn->s, t->steps, t->n_steps * sizeof *t->steps);
}

static inline void snap_same(const struct snap *sn, const struct referral_ticket *t) {
  ck_assert_int_eq(t->state, sn->t.state);
  ck_assert_uint_eq(t->n_steps, sn->t.n_steps);
  for (size_t i = 0; i < t->n_steps; i++) {
    ck_assert_int_eq(t->steps[i].state, sn->s[i].state);
    ck_assert(t->steps[i].accepted_us == sn->s[i].accepted_us);
    ck_assert(t->steps[i].resolved_us == sn->s[i].resolved_us);
    ck_assert(t->steps[i].returned_us == sn->s[i].returned_us);
    ck_assert_mem_eq(&t->steps[i], &sn->s[i], sizeof t->steps[i]);
  }
  ck_assert_mem_eq(t, &sn->t, sizeof *t);
  ck_assert_uint_eq(FX.n, 0);
}

/* Runs the n tests in one case against the sample registry; the exit status. */
static inline int run_tests(const char *suite, const char *tcase, const TTest *const *tests,
                            size_t n) {
  return unit_run(suite, tcase, load_reg, free_reg, 60, tests, n);
}

#endif
