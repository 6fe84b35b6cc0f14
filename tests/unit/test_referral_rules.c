/* Unit tests for the referral rules (docs/rules.md §3) against the sample city
 * registry in deploy/registry (tests run from the repository root): routing
 * of every row of routing.csv with R-R1, the three-step illegal-construction
 * chain (R-R2), the step state machine with returns and re-dispatch (R-R2,
 * R-R3), confirmed prohibitions (R-P2) and repeat notes (R-I5). The clocks
 * (R-T4, R-T5, R-R4) and callbacks with closing and redo (R-R2, R-R6, R-I7)
 * are in test_referral_clocks.c. */
#include "referral_fixture.h"

/* 23:59:59 local of the N-th working day strictly after 2026-10-09 (R-T5). */
static const char *const WD_AFTER_OCT9[] = {
  NULL,         "2026-10-10", "2026-10-12", "2026-10-13", "2026-10-14", "2026-10-15",
  "2026-10-16", "2026-10-19", "2026-10-20", "2026-10-21", "2026-10-22", "2026-10-23",
  "2026-10-26", "2026-10-27", "2026-10-28", "2026-10-29",
};

/* ---- routing (R-R1, R-R2) ---- */

/* deploy/registry/routing.csv as docs/rules.md §3 gives it. */
struct route_row { const char *cat; int step; const char *unit; int hours, workdays; };
static const struct route_row ROUTES[] = {
  {"PS_SANITATION", 1, "STREET", 24, 5},  {"PS_GREENING", 1, "STREET", 24, 5},
  {"PS_ORDER", 1, "STREET", 24, 5},       {"PS_FACILITY", 1, "STREET", 24, 5},
  {"PS_ATTITUDE", 1, "STREET", 24, 5},    {"PS_FEES", 1, "SCJG", 24, 10},
  {"PS_DISCLOSURE", 1, "STREET", 24, 10}, {"PS_PRIVACY", 1, "GA", 24, 10},
  {"PS_SERVICE_STOP", 1, "ZJ", 2, 3},     {"PS_COERCION", 1, "ZJ", 2, 3},
  {"V_ILLEGAL_BUILD", 1, "ZRZY", 24, 5},  {"V_ILLEGAL_BUILD", 2, "SF", 24, 3},
  {"V_ILLEGAL_BUILD", 3, "CGZF", 24, 15}, {"V_GREEN_OCCUPY", 1, "CGZF", 24, 7},
  {"V_RENOVATION", 1, "ZJ", 24, 5},       {"V_NOISE", 1, "GA", 12, 3},
  {"V_FIRE_LANE", 1, "XF", 2, 2},         {"V_EBIKE", 1, "XF", 2, 2},
  {"V_PETS", 1, "GA", 24, 5},             {"V_HAZMAT", 1, "XF", 1, 1},
  {"V_ELEVATOR", 1, "SCJG", 2, 3},        {"V_GARBAGE", 1, "CGZF", 24, 5},
  {"V_MAINT_FUND", 1, "GA", 24, 15},      {"V_OWNERS_COMMITTEE", 1, "STREET", 24, 15},
  {"V_CHARGING_BLOCK", 1, "STREET", 24, 10},
};
#define N_ROUTES (sizeof ROUTES / sizeof ROUTES[0])

static size_t chain_len(const char *cat) {
  size_t n = 0;

  for (size_t i = 0; i < N_ROUTES; i++) n += strcmp(ROUTES[i].cat, cat) == 0;
  return n;
}

START_TEST(r_r2_sample_registry_routing_is_the_domain_table) {
  size_t total = 0;

  for (size_t i = 0; i < N_ROUTES; i++) {
    size_t n = 0;
    const struct svc_route_step *r = svc_registry_route(reg, ROUTES[i].cat, &n);

    ck_assert_ptr_nonnull(r);
    ck_assert_uint_eq(n, chain_len(ROUTES[i].cat));
    r += ROUTES[i].step - 1;
    ck_assert_str_eq(r->unit, ROUTES[i].unit);
    ck_assert_int_eq(r->step, ROUTES[i].step);
    ck_assert_int_eq(r->accept_hours, ROUTES[i].hours);
    ck_assert_int_eq(r->resolve_workdays, ROUTES[i].workdays);
    total++;
  }
  ck_assert_uint_eq(reg->n_routing, total);
}
END_TEST

/* Dispatches every category for compound at T0 and walks each chain
 * (violation confirmed one hour after each issue): every row of
 * routing.csv gives its unit (STREET: the compound's street; R-R1: PS_* of
 * an unmanaged compound too), position, length and both clocks. */
static void check_every_route(const char *compound) {
  const struct svc_compound *c = svc_registry_compound(reg, compound);
  int unmanaged;

  ck_assert_ptr_nonnull(c);
  unmanaged = c->management != SVC_MGMT_PROFESSIONAL;
  for (size_t i = 0; i < N_ROUTES; i++) {
    const char *cat = ROUTES[i].cat;
    size_t len = chain_len(cat);
    struct referral_ticket *t;

    if (ROUTES[i].step != 1) continue;
    t = new_ticket("T-ROUTE", cat, compound);
    dispatch(t, at(T0_TEXT));
    for (size_t k = 0; k < len; k++) {
      const struct route_row *row = &ROUTES[i + k];
      int to_street = strcmp(row->unit, "STREET") == 0 || (unmanaged && strncmp(cat, "PS_", 3) == 0);
      int64_t issued = at(T0_TEXT) + (int64_t)k * HOUR;
      struct referral_step *s;

      ck_assert_str_eq(row->cat, cat);
      ck_assert_uint_eq(t->n_steps, k + 1);
      ck_assert_int_eq(t->state, RT_OPEN);
      s = step(t, (uint32_t)k + 1);
      ck_assert_msg(strcmp(s->unit, to_street ? c->street : row->unit) == 0,
                    "%s step %zu for %s: unit %s", cat, k + 1, compound, s->unit);
      ck_assert_int_eq(s->street_unit, to_street);
      ck_assert_str_eq(s->unit_district, to_street ? c->district : "");
      ck_assert_uint_eq(s->chain_pos, k + 1);
      ck_assert_uint_eq(s->chain_len, len);
      ck_assert_int_eq(s->reason, RI_ROUTE);
      ck_assert_int_eq(s->state, RS_ISSUED);
      ck_assert_int_eq(s->accept_hours, row->hours);
      ck_assert_int_eq(s->resolve_workdays, row->workdays);
      ck_assert(s->issued_us == issued);
      ck_assert(s->accept_by_us == issued + (int64_t)row->hours * HOUR);
      ck_assert_msg(s->resolve_by_us == end_of(WD_AFTER_OCT9[row->workdays]),
                    "%s step %zu: resolve_by", cat, k + 1);
      ck_assert_uint_eq(n_fx(FX_STEP_ISSUED), 1);
      ck_assert_uint_eq(fx_of(FX_STEP_ISSUED)->step, k + 1);
      ck_assert(fx_of(FX_STEP_ISSUED)->at_us == issued);
      if (k + 1 < len) {
        ck_assert_int_eq(act(t, s->no, RA_ACCEPT, issued + 10 * MINUTE), RV_APPLIED);
        ck_assert_int_eq(resolve(t, s->no, issued + HOUR, 1, "P1"), RV_APPLIED);
        ck_assert_uint_eq(R.next_step, k + 2);
      }
    }
    drop(t);
  }
}

START_TEST(r_r1_every_route_for_a_professional_compound) {
  check_every_route("C0001"); /* S0101, D01 */
  check_every_route("C0011"); /* S0202, D02 */
}
END_TEST

START_TEST(r_r1_every_route_for_none_self_custodial_compounds) {
  check_every_route("C0004"); /* NONE, S0101 */
  check_every_route("C0005"); /* SELF, S0102 */
  check_every_route("C0007"); /* CUSTODIAL, S0102 */
  check_every_route("C0012"); /* NONE, S0202 in D02 */
}
END_TEST

START_TEST(r_r1_ps_department_categories_go_to_the_street_without_a_company) {
  struct referral_ticket *t = new_ticket("T1", "PS_FEES", "C0009"); /* CUSTODIAL, S0201 */

  dispatch(t, at(T0_TEXT));
  ck_assert_str_eq(step(t, 1)->unit, "S0201");
  ck_assert_str_eq(step(t, 1)->unit_district, "D02");
  ck_assert_int_eq(step(t, 1)->resolve_workdays, 10); /* the category's clocks stay */
  drop(t);
  t = new_ticket("T2", "PS_FEES", "C0008"); /* PROFESSIONAL, S0201 */
  dispatch(t, at(T0_TEXT));
  ck_assert_str_eq(step(t, 1)->unit, "SCJG");
  drop(t);
}
END_TEST

START_TEST(r_r1_a_ticket_without_street_waits_for_redispatch) {
  const char *cats[] = {"PS_SANITATION", "PS_FEES", "V_OWNERS_COMMITTEE"};

  for (size_t i = 0; i < 3; i++) {
    struct referral_ticket *t = new_ticket("T1", cats[i], NULL); /* no compound, no street */

    dispatch(t, at(T0_TEXT));
    ck_assert_int_eq(t->state, RT_RETURNED);
    ck_assert_uint_eq(t->n_steps, 0);
    ck_assert_uint_eq(FX.n, 1);
    ck_assert_int_eq(FX.v[0].kind, FX_TICKET_RETURNED);
    ck_assert(FX.v[0].at_us == at(T0_TEXT));
    ck_assert_int_eq(referral_next_due(t), 0);
    drop(t);
  }
  /* a department's category needs no street */
  struct referral_ticket *t = new_ticket("T2", "V_NOISE", NULL);
  dispatch(t, at(T0_TEXT));
  ck_assert_int_eq(t->state, RT_OPEN);
  ck_assert_str_eq(step(t, 1)->unit, "GA");
  drop(t);
}
END_TEST

START_TEST(r_r2_other_has_no_routing_and_waits_for_redispatch) {
  struct referral_ticket *t = new_ticket("T1", "OTHER", "C0001");

  dispatch(t, at(T0_TEXT));
  ck_assert_int_eq(t->state, RT_RETURNED);
  ck_assert_uint_eq(t->n_steps, 0);
  ck_assert_uint_eq(n_fx(FX_TICKET_RETURNED), 1);
  ck_assert_uint_eq(n_fx(FX_STEP_ISSUED), 0);
  drop(t);
}
END_TEST

/* ---- the illegal-construction chain (R-R2) ---- */

START_TEST(r_r2_illegal_build_chain_zrzy_sf_cgzf) {
  struct referral_ticket *t = new_ticket("T1", "V_ILLEGAL_BUILD", "C0001");
  int64_t r1 = at("2026-10-12T15:00:00+08:00"), r2 = at("2026-10-14T09:00:00+08:00");
  int64_t r3 = at("2026-10-20T16:00:00+08:00");
  struct referral_step *s;

  dispatch(t, at(T0_TEXT));
  s = step(t, 1);
  ck_assert_str_eq(s->unit, "ZRZY");
  ck_assert(s->resolve_by_us == end_of("2026-10-15"));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, r1, 1, "P1"), RV_APPLIED);
  ck_assert_int_eq(R.late, 0);
  ck_assert_uint_eq(R.step, 1);
  ck_assert_uint_eq(R.next_step, 2);
  ck_assert_int_eq(step(t, 1)->state, RS_RESOLVED);
  ck_assert_int_eq(t->state, RT_OPEN);
  ck_assert_uint_eq(n_fx(FX_STEP_RESOLVED), 1);
  ck_assert_uint_eq(n_fx(FX_TICKET_RESOLVED), 0);
  ck_assert_uint_eq(n_fx(FX_STEP_ISSUED), 1);
  ck_assert_uint_eq(fx_of(FX_STEP_ISSUED)->step, 2);
  s = step(t, 2); /* issued at the resolve time, its own clocks */
  ck_assert_str_eq(s->unit, "SF");
  ck_assert_uint_eq(s->chain_pos, 2);
  ck_assert_uint_eq(s->chain_len, 3);
  ck_assert(s->issued_us == r1);
  ck_assert(s->accept_by_us == r1 + 24 * HOUR);
  ck_assert(s->resolve_by_us == end_of("2026-10-15")); /* 3 wd after Mon 12th */
  ck_assert_int_eq(s->reason, RI_ROUTE);

  ck_assert_int_eq(act(t, 2, RA_ACCEPT, r1 + 2 * HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 2, r2, 1, "P1"), RV_APPLIED);
  ck_assert_uint_eq(R.next_step, 3);
  s = step(t, 3);
  ck_assert_str_eq(s->unit, "CGZF");
  ck_assert_uint_eq(s->chain_pos, 3);
  ck_assert(s->issued_us == r2);
  ck_assert(s->accept_by_us == r2 + 24 * HOUR);
  ck_assert(s->resolve_by_us == end_of("2026-11-04")); /* 15 wd after Wed 14th */

  ck_assert_int_eq(act(t, 3, RA_ACCEPT, r2 + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 3, r3, 1, "P1"), RV_APPLIED);
  ck_assert_uint_eq(R.next_step, 0);
  ck_assert_uint_eq(t->n_steps, 3);
  ck_assert_int_eq(t->state, RT_RESOLVED);
  ck_assert(t->resolved_us == r3);
  ck_assert(t->close_by_us == end_of("2026-10-23")); /* 3 wd after Tue 20th */
  ck_assert_uint_eq(n_fx(FX_TICKET_RESOLVED), 1);
  ck_assert_uint_eq(fx_of(FX_TICKET_RESOLVED)->step, 3);
  ck_assert(fx_of(FX_TICKET_RESOLVED)->at_us == r3);
  ck_assert_uint_eq(n_fx(FX_STEP_ISSUED), 0);
  drop(t);
}
END_TEST

START_TEST(r_r2_no_violation_ends_the_chain) {
  for (uint32_t stop = 1; stop <= 3; stop++) {
    struct referral_ticket *t = new_ticket("T1", "V_ILLEGAL_BUILD", "C0001");
    int64_t when = at(T0_TEXT);

    dispatch(t, when);
    for (uint32_t no = 1; no <= stop; no++) {
      ck_assert_int_eq(act(t, no, RA_ACCEPT, when + MINUTE), RV_APPLIED);
      when += HOUR;
      ck_assert_int_eq(resolve(t, no, when, no < stop, no < stop ? "P1" : NULL), RV_APPLIED);
    }
    ck_assert_uint_eq(t->n_steps, stop);
    ck_assert_int_eq(t->state, RT_RESOLVED);
    ck_assert_uint_eq(R.next_step, 0);
    ck_assert_uint_eq(n_fx(FX_TICKET_RESOLVED), 1);
    ck_assert_uint_eq(n_fx(FX_STEP_ISSUED), 0);
    ck_assert_int_eq(step(t, stop)->violation, 0);
    ck_assert(t->close_by_us == end_of("2026-10-13"));
    drop(t);
  }
}
END_TEST

/* ---- the step state machine (R-R2, R-R3) ---- */

START_TEST(r_r2_resolve_before_accept_is_wrong_state_and_changes_nothing) {
  /* step 1 of V_NOISE is GA's */
  static const struct {
    uint32_t no; const char *unit; enum referral_action a; enum referral_verdict want;
  } refused[] = {
    {1, "GA", RA_PROGRESS, RV_WRONG_STATE}, {1, "XF", RA_ACCEPT, RV_WRONG_UNIT},
    {1, "S0101", RA_RETURN, RV_WRONG_UNIT}, {2, "GA", RA_ACCEPT, RV_UNKNOWN},
    {0, "GA", RA_ACCEPT, RV_UNKNOWN},
  };
  struct referral_ticket *t = new_ticket("T1", "V_NOISE", "C0001");
  struct snap sn;

  dispatch(t, at(T0_TEXT));
  t->dirty = 0;
  snap_take(&sn, t);
  ck_assert_int_eq(resolve(t, 1, at(T0_TEXT) + HOUR, 1, "P2"), RV_WRONG_STATE);
  snap_same(&sn, t);
  for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
    enum referral_verdict got =
      update(t, refused[i].no, refused[i].unit, refused[i].a, at(T0_TEXT) + HOUR, 0, NULL);

    ck_assert_msg(got == refused[i].want, "refusal %zu: verdict %d, want %d", i, (int)got,
                  (int)refused[i].want);
    snap_same(&sn, t);
  }
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) - SEC), RV_BAD); /* before the issue */
  snap_same(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT)), RV_APPLIED); /* at the issue: fine */
  ck_assert_int_eq(step(t, 1)->state, RS_ACCEPTED);
  drop(t);
}
END_TEST

START_TEST(r_r2_double_accept_same_time_duplicate_other_time_wrong_state) {
  struct referral_ticket *t = new_ticket("T1", "V_NOISE", "C0001");
  int64_t a = at(T0_TEXT) + HOUR;
  struct snap sn;

  dispatch(t, at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, a), RV_APPLIED);
  ck_assert_uint_eq(n_fx(FX_STEP_ACCEPTED), 1);
  ck_assert(step(t, 1)->accepted_us == a);
  t->dirty = 0;
  snap_take(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, a), RV_DUPLICATE);
  snap_same(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, a + SEC), RV_WRONG_STATE);
  snap_same(&sn, t);
  drop(t);
}
END_TEST

START_TEST(r_r2_double_resolve_same_time_duplicate_other_time_wrong_state) {
  struct referral_ticket *t = new_ticket("T1", "V_NOISE", "C0001");
  int64_t r = at(T0_TEXT) + 5 * HOUR;
  struct snap sn;

  dispatch(t, at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, r, 0, NULL), RV_APPLIED);
  ck_assert_int_eq(t->state, RT_RESOLVED);
  t->dirty = 0;
  snap_take(&sn, t);
  ck_assert_int_eq(resolve(t, 1, r, 0, NULL), RV_DUPLICATE);
  snap_same(&sn, t);
  ck_assert_int_eq(resolve(t, 1, r + HOUR, 0, NULL), RV_WRONG_STATE);
  snap_same(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_RETURN, r + HOUR), RV_WRONG_STATE);
  snap_same(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_PROGRESS, r + HOUR), RV_WRONG_STATE);
  snap_same(&sn, t);
  drop(t);
}
END_TEST

START_TEST(r_r2_closed_ticket_refuses_updates_but_answers_resends) {
  struct referral_ticket *t = new_ticket("T1", "V_NOISE", "C0001");
  int64_t a = at(T0_TEXT) + HOUR, r = at(T0_TEXT) + 5 * HOUR;
  struct snap sn;

  dispatch(t, at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, a), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, r, 0, NULL), RV_APPLIED);
  ck_assert_int_eq(feedback(t, "SATISFIED", r + HOUR), 0);
  ck_assert_int_eq(t->state, RT_CLOSED);
  t->dirty = 0;
  snap_take(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, a), RV_DUPLICATE);
  snap_same(&sn, t);
  ck_assert_int_eq(resolve(t, 1, r, 0, NULL), RV_DUPLICATE);
  snap_same(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, a + SEC), RV_WRONG_STATE);
  ck_assert_ptr_nonnull(strstr(R.reason, "CLOSED"));
  snap_same(&sn, t);
  ck_assert_int_eq(resolve(t, 1, r + SEC, 1, "P2"), RV_WRONG_STATE);
  ck_assert_ptr_nonnull(strstr(R.reason, "CLOSED"));
  snap_same(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_PROGRESS, r + HOUR), RV_WRONG_STATE);
  snap_same(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_RETURN, r + HOUR), RV_WRONG_STATE);
  snap_same(&sn, t);
  drop(t);
}
END_TEST

START_TEST(r_r2_progress_needs_an_accepted_step) {
  struct referral_ticket *t = new_ticket("T1", "V_NOISE", "C0001");
  int64_t p = at(T0_TEXT) + 2 * HOUR;
  struct snap sn;

  dispatch(t, at(T0_TEXT));
  t->dirty = 0;
  snap_take(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_PROGRESS, p), RV_WRONG_STATE);
  snap_same(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + HOUR), RV_APPLIED);
  ck_assert_int_eq(act(t, 1, RA_PROGRESS, p), RV_APPLIED);
  ck_assert_uint_eq(FX.n, 1);
  ck_assert_int_eq(FX.v[0].kind, FX_STEP_PROGRESS);
  ck_assert_str_eq(FX.v[0].text, "办理中");
  ck_assert_int_eq(act(t, 1, RA_PROGRESS, p), RV_DUPLICATE);
  ck_assert_uint_eq(FX.n, 0);
  ck_assert_int_eq(act(t, 1, RA_PROGRESS, p + SEC), RV_APPLIED);
  ck_assert_uint_eq(step(t, 1)->n_progress, 2);
  ck_assert_int_eq(step(t, 1)->state, RS_ACCEPTED);
  drop(t);
}
END_TEST

START_TEST(r_r3_return_puts_the_ticket_back_for_redispatch) {
  struct referral_ticket *t = new_ticket("T1", "V_ILLEGAL_BUILD", "C0001");
  int64_t ret = at(T0_TEXT) + 3 * HOUR;
  struct snap sn;

  dispatch(t, at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_RETURN, ret), RV_APPLIED);
  ck_assert_int_eq(R.late, 0);
  ck_assert_int_eq(step(t, 1)->state, RS_RETURNED);
  ck_assert(step(t, 1)->returned_us == ret);
  ck_assert_int_eq(t->state, RT_RETURNED);
  ck_assert_int_eq(t->returns, 1);
  ck_assert_int_eq(t->consult, 0);
  ck_assert_uint_eq(FX.n, 2);
  ck_assert_int_eq(FX.v[0].kind, FX_STEP_RETURNED);
  ck_assert_int_eq(FX.v[1].kind, FX_TICKET_RETURNED);
  ck_assert_uint_eq(FX.v[0].step, 1);
  ck_assert_str_eq(FX.v[0].text, "不属本单位职责");
  ck_assert_uint_eq(n_fx(FX_TICKET_CONSULT), 0);
  t->dirty = 0;
  snap_take(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_RETURN, ret), RV_DUPLICATE);
  snap_same(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_RETURN, ret + SEC), RV_WRONG_STATE);
  snap_same(&sn, t);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, ret + SEC), RV_WRONG_STATE);
  snap_same(&sn, t);
  ck_assert_int_eq(resolve(t, 1, ret + SEC, 1, "P1"), RV_WRONG_STATE);
  snap_same(&sn, t);
  drop(t);
}
END_TEST

START_TEST(r_r3_redispatch_takes_the_returned_steps_place_in_the_chain) {
  struct referral_ticket *t = new_ticket("T1", "V_ILLEGAL_BUILD", "C0001");
  int64_t ret = at(T0_TEXT) + 3 * HOUR, rd = at("2026-10-12T09:30:00+08:00");
  int64_t r2 = at("2026-10-13T11:00:00+08:00");
  struct referral_step *s;

  dispatch(t, at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + HOUR), RV_APPLIED);
  ck_assert_int_eq(act(t, 1, RA_RETURN, ret), RV_APPLIED);
  redispatch(t, 1, "S0102", rd);
  ck_assert_int_eq(R.verdict, RV_APPLIED);
  ck_assert_uint_eq(R.step, 1);
  ck_assert_uint_eq(R.next_step, 2);
  ck_assert_int_eq(t->state, RT_OPEN);
  ck_assert_uint_eq(n_fx(FX_STEP_ISSUED), 1);
  ck_assert_uint_eq(fx_of(FX_STEP_ISSUED)->step, 2);
  s = step(t, 2);
  ck_assert_str_eq(s->unit, "S0102");
  ck_assert_int_eq(s->street_unit, 1);
  ck_assert_str_eq(s->unit_district, "D01");
  ck_assert_int_eq(s->reason, RI_REDISPATCH);
  ck_assert_uint_eq(s->replaces, 1);
  ck_assert_uint_eq(s->chain_pos, 1);
  ck_assert_uint_eq(s->chain_len, 3);
  ck_assert_int_eq(s->accept_hours, 24);
  ck_assert_int_eq(s->resolve_workdays, 5);
  ck_assert(s->issued_us == rd);
  ck_assert(s->accept_by_us == rd + 24 * HOUR);
  ck_assert(s->resolve_by_us == end_of("2026-10-19")); /* 5 wd after Mon 12th */
  ck_assert_int_eq(step(t, 1)->state, RS_RETURNED);

  /* the chain goes on after it: position 2 is SF */
  ck_assert_int_eq(act(t, 2, RA_ACCEPT, rd + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 2, r2, 1, "P1"), RV_APPLIED);
  ck_assert_uint_eq(R.next_step, 3);
  s = step(t, 3);
  ck_assert_str_eq(s->unit, "SF");
  ck_assert_uint_eq(s->chain_pos, 2);
  ck_assert_int_eq(s->reason, RI_ROUTE);
  ck_assert(s->issued_us == r2);

  /* a later position returned: its replacement keeps position 2 and SF's clocks */
  ck_assert_int_eq(act(t, 3, RA_RETURN, r2 + HOUR), RV_APPLIED);
  redispatch(t, 3, "GA", r2 + 2 * HOUR);
  ck_assert_int_eq(R.verdict, RV_APPLIED);
  s = step(t, 4);
  ck_assert_uint_eq(s->chain_pos, 2);
  ck_assert_int_eq(s->accept_hours, 24);
  ck_assert_int_eq(s->resolve_workdays, 3);
  ck_assert(s->resolve_by_us == end_of("2026-10-16")); /* 3 wd after Tue 13th */
  ck_assert_int_eq(act(t, 4, RA_ACCEPT, r2 + 3 * HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 4, r2 + 4 * HOUR, 1, "P1"), RV_APPLIED);
  ck_assert_uint_eq(R.next_step, 5);
  ck_assert_str_eq(step(t, 5)->unit, "CGZF");
  ck_assert_uint_eq(step(t, 5)->chain_pos, 3);
  ck_assert_int_eq(resolve(t, 5, r2 + 5 * HOUR, 1, "P1"), RV_WRONG_STATE);
  ck_assert_int_eq(act(t, 5, RA_ACCEPT, r2 + 5 * HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 5, r2 + 6 * HOUR, 1, "P1"), RV_APPLIED);
  ck_assert_int_eq(t->state, RT_RESOLVED);
  ck_assert_int_eq(t->consult, 1); /* returned twice */
  drop(t);
}
END_TEST

/* Re-dispatches step no to unit at when: the verdict is want and the ticket is
 * as sn took it. */
static void redispatch_refused(struct referral_ticket *t, const struct snap *sn, uint32_t no,
                               const char *unit, int64_t when, enum referral_verdict want) {
  redispatch(t, no, unit, when);
  ck_assert_msg(R.verdict == want, "re-dispatch of step %u to %s: verdict %d, want %d", no,
                unit, (int)R.verdict, (int)want);
  snap_same(sn, t);
}

START_TEST(r_r3_redispatch_refusals_change_nothing) {
  struct referral_ticket *t = new_ticket("T1", "V_NOISE", "C0001");
  int64_t ret = at(T0_TEXT) + 3 * HOUR, rd = at(T0_TEXT) + 5 * HOUR;
  struct snap sn;

  dispatch(t, at(T0_TEXT));
  t->dirty = 0;
  snap_take(&sn, t);
  redispatch_refused(t, &sn, 1, "XF", rd, RV_WRONG_STATE); /* step 1 is not returned */
  ck_assert_int_eq(act(t, 1, RA_RETURN, ret), RV_APPLIED);
  t->dirty = 0;
  snap_take(&sn, t);
  redispatch_refused(t, &sn, 1, "NOSUCH", rd, RV_BAD);
  redispatch_refused(t, &sn, 7, "XF", rd, RV_UNKNOWN);
  redispatch_refused(t, &sn, 1, "XF", ret - SEC, RV_BAD); /* before the return */
  redispatch(t, 1, "XF", rd);
  ck_assert_int_eq(R.verdict, RV_APPLIED);
  ck_assert_uint_eq(R.next_step, 2);
  t->dirty = 0;
  snap_take(&sn, t);
  redispatch(t, 1, "XF", rd); /* the same, resent */
  ck_assert_int_eq(R.verdict, RV_DUPLICATE);
  ck_assert_uint_eq(R.next_step, 2);
  snap_same(&sn, t);
  redispatch_refused(t, &sn, 1, "ZJ", rd, RV_WRONG_STATE); /* step 1 is no longer the last */
  redispatch_refused(t, &sn, 1, "XF", rd + SEC, RV_WRONG_STATE);
  redispatch_refused(t, &sn, 2, "ZJ", rd + SEC, RV_WRONG_STATE); /* step 2 open, not returned */
  drop(t);
}
END_TEST

START_TEST(r_r3_second_return_flags_joint_consultation_once) {
  struct referral_ticket *t = new_ticket("T1", "V_NOISE", "C0001");
  int64_t when = at(T0_TEXT);
  const char *units[] = {"ZJ", "CGZF", "S0101"};

  dispatch(t, when);
  for (uint32_t no = 1; no <= 3; no++) {
    when += HOUR;
    ck_assert_int_eq(act(t, no, RA_RETURN, when), RV_APPLIED);
    ck_assert_int_eq(t->returns, (int)no);
    ck_assert_uint_eq(n_fx(FX_TICKET_CONSULT), no == 2);
    if (no == 2) ck_assert_uint_eq(fx_of(FX_TICKET_CONSULT)->step, 2);
    ck_assert_int_eq(t->consult, no >= 2);
    when += HOUR;
    redispatch(t, no, units[no - 1], when);
    ck_assert_int_eq(R.verdict, RV_APPLIED);
    ck_assert_uint_eq(n_fx(FX_TICKET_CONSULT), 0);
  }
  ck_assert_uint_eq(t->n_steps, 4);
  ck_assert_str_eq(step(t, 4)->unit, "S0101");
  drop(t);
}
END_TEST

/* ---- confirmed prohibitions (R-P2) ---- */

START_TEST(r_p2_confirmed_prohibition_once_per_ticket_for_a_professional_compound) {
  struct referral_ticket *t = new_ticket("T1", "V_ILLEGAL_BUILD", "C0001");
  int64_t when = at(T0_TEXT);

  dispatch(t, when);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, when + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, when + 2 * HOUR, 1, "P1"), RV_APPLIED);
  ck_assert_uint_eq(n_fx(FX_VIOLATION), 1);
  ck_assert_str_eq(fx_of(FX_VIOLATION)->text, "P1");
  ck_assert_uint_eq(fx_of(FX_VIOLATION)->step, 1);
  ck_assert(fx_of(FX_VIOLATION)->at_us == when + 2 * HOUR);
  ck_assert_str_eq(step(t, 1)->prohibition, "P1");
  ck_assert_int_eq(t->violation_done, 1);
  ck_assert_int_eq(act(t, 2, RA_ACCEPT, when + 3 * HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 2, when + 4 * HOUR, 1, "P1"), RV_APPLIED);
  ck_assert_uint_eq(n_fx(FX_VIOLATION), 0);
  ck_assert_int_eq(act(t, 3, RA_ACCEPT, when + 5 * HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 3, when + 6 * HOUR, 1, "P1"), RV_APPLIED);
  ck_assert_uint_eq(n_fx(FX_VIOLATION), 0);
  drop(t);
}
END_TEST

START_TEST(r_p2_no_violation_event_without_a_company_or_a_confirmation) {
  struct referral_ticket *t = new_ticket("T1", "V_ILLEGAL_BUILD", "C0004"); /* NONE */
  int64_t when = at(T0_TEXT);

  dispatch(t, when);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, when + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, when + 2 * HOUR, 1, "P1"), RV_APPLIED);
  ck_assert_uint_eq(n_fx(FX_VIOLATION), 0);
  ck_assert_int_eq(t->violation_done, 0);
  ck_assert_uint_eq(R.next_step, 2); /* the chain still goes on */
  drop(t);

  t = new_ticket("T2", "PS_SANITATION", "C0001"); /* no violation confirmed */
  dispatch(t, when);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, when + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, when + 2 * HOUR, 0, "P2"), RV_APPLIED);
  ck_assert_uint_eq(n_fx(FX_VIOLATION), 0);
  ck_assert_str_eq(step(t, 1)->prohibition, "");
  drop(t);

  t = new_ticket("T3", "PS_SANITATION", "C0001"); /* confirmed, company not at fault */
  dispatch(t, when);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, when + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, when + 2 * HOUR, 1, ""), RV_APPLIED);
  ck_assert_uint_eq(n_fx(FX_VIOLATION), 0);
  drop(t);
}
END_TEST

/* ---- repeat notes (R-I5) ---- */

START_TEST(r_i5_repeat_note_goes_to_the_open_step) {
  struct referral_ticket *t = new_ticket("T1", "V_NOISE", "C0001");
  int64_t when = at(T0_TEXT);

  dispatch(t, when);
  FX.n = 0;
  referral_repeat_note(t, "T2", when + HOUR, &FX);
  ck_assert_uint_eq(FX.n, 1);
  ck_assert_int_eq(FX.v[0].kind, FX_STEP_NOTE);
  ck_assert_uint_eq(FX.v[0].step, 1);
  ck_assert_str_eq(FX.v[0].text, "T2");
  ck_assert(FX.v[0].at_us == when + HOUR);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, when + 2 * HOUR), RV_APPLIED);
  FX.n = 0;
  referral_repeat_note(t, "T3", when + 3 * HOUR, &FX);
  ck_assert_uint_eq(FX.n, 1);
  ck_assert_int_eq(FX.v[0].kind, FX_STEP_NOTE);
  ck_assert_int_eq(resolve(t, 1, when + 4 * HOUR, 0, NULL), RV_APPLIED);
  FX.n = 0;
  referral_repeat_note(t, "T4", when + 5 * HOUR, &FX); /* resolved, not closed: still told */
  ck_assert_uint_eq(FX.n, 1);
  ck_assert_uint_eq(FX.v[0].step, 1);
  ck_assert_int_eq(feedback(t, "SATISFIED", when + 6 * HOUR), 0);
  ck_assert_int_eq(t->state, RT_CLOSED);
  FX.n = 0;
  referral_repeat_note(t, "T5", when + 7 * HOUR, &FX); /* closed: no note */
  ck_assert_uint_eq(FX.n, 0);
  drop(t);
}
END_TEST

START_TEST(r_i5_repeat_while_waiting_for_redispatch_goes_to_the_next_step) {
  struct referral_ticket *t = new_ticket("T1", "V_NOISE", "C0001");
  int64_t when = at(T0_TEXT);

  dispatch(t, when);
  ck_assert_int_eq(act(t, 1, RA_RETURN, when + HOUR), RV_APPLIED);
  FX.n = 0;
  referral_repeat_note(t, "T2", when + 2 * HOUR, &FX);
  ck_assert_uint_eq(FX.n, 0);
  ck_assert_uint_eq(t->n_pending, 1);
  redispatch(t, 1, "S0101", when + 3 * HOUR);
  ck_assert_int_eq(R.verdict, RV_APPLIED);
  ck_assert_uint_eq(n_fx(FX_STEP_NOTE), 1);
  ck_assert_uint_eq(fx_of(FX_STEP_NOTE)->step, 2);
  ck_assert_str_eq(fx_of(FX_STEP_NOTE)->text, "T2");
  ck_assert_uint_eq(t->n_pending, 0);
  drop(t);
}
END_TEST

START_TEST(r_r2_resolve_stamped_before_the_accept_is_refused) {
  struct referral_ticket *t = new_ticket("T9", "V_NOISE", "C0001");
  struct snap sn;

  dispatch(t, at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + 2 * HOUR), RV_APPLIED);
  t->dirty = 0;
  snap_take(&sn, t);
  ck_assert_int_eq(resolve(t, 1, at(T0_TEXT) + HOUR, 0, NULL), RV_BAD);
  snap_same(&sn, t);
  ck_assert_int_eq(resolve(t, 1, at(T0_TEXT) + 2 * HOUR, 0, NULL), RV_APPLIED);
  drop(t);
}
END_TEST

START_TEST(r_r2_callback_stamped_before_the_resolve_changes_no_state) {
  struct referral_ticket *t = new_ticket("T10", "V_NOISE", "C0001");

  dispatch(t, at(T0_TEXT));
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, at(T0_TEXT) + HOUR), RV_APPLIED);
  ck_assert_int_eq(resolve(t, 1, at(T0_TEXT) + 5 * HOUR, 0, NULL), RV_APPLIED);
  ck_assert_int_eq(feedback(t, "UNSATISFIED", at(T0_TEXT) + 4 * HOUR), 0);
  ck_assert_int_eq(t->state, RT_RESOLVED);
  ck_assert_uint_eq(t->n_steps, 1);
  ck_assert_str_eq(fx_of(FX_FEEDBACK)->effect, "NONE");
  ck_assert_int_eq(feedback(t, "SATISFIED", at(T0_TEXT) + 6 * HOUR), 0);
  ck_assert_int_eq(t->state, RT_CLOSED);
  drop(t);
}
END_TEST

START_TEST(r_r3_an_unrouted_ticket_gets_its_first_step_by_redispatch) {
  struct referral_ticket *t = new_ticket("T11", "PS_SANITATION", NULL);

  dispatch(t, at(T0_TEXT));
  ck_assert_int_eq(t->state, RT_RETURNED);
  ck_assert_uint_eq(t->n_steps, 0);
  redispatch(t, 0, "NOPE", at(T0_TEXT) + HOUR);
  ck_assert_int_eq(R.verdict, RV_BAD);
  redispatch(t, 0, "S0101", at(T0_TEXT) + HOUR);
  ck_assert_int_eq(R.verdict, RV_APPLIED);
  ck_assert_uint_eq(R.next_step, 1);
  ck_assert_str_eq(step(t, 1)->unit, "S0101");
  ck_assert_int_eq(step(t, 1)->accept_by_us, at(T0_TEXT) + 25 * HOUR);
  ck_assert_int_eq(t->state, RT_OPEN);
  redispatch(t, 0, "S0101", at(T0_TEXT) + HOUR);
  ck_assert_int_eq(R.verdict, RV_DUPLICATE);
  redispatch(t, 0, "GA", at(T0_TEXT) + 2 * HOUR);
  ck_assert_int_ne(R.verdict, RV_APPLIED);
  ck_assert_uint_eq(t->n_steps, 1);
  drop(t);
}
END_TEST

int main(void) {
  const TTest *tests[] = {
    r_r2_sample_registry_routing_is_the_domain_table,
    r_r1_every_route_for_a_professional_compound,
    r_r1_every_route_for_none_self_custodial_compounds,
    r_r1_ps_department_categories_go_to_the_street_without_a_company,
    r_r1_a_ticket_without_street_waits_for_redispatch,
    r_r2_other_has_no_routing_and_waits_for_redispatch,
    r_r2_illegal_build_chain_zrzy_sf_cgzf,
    r_r2_no_violation_ends_the_chain,
    r_r2_resolve_before_accept_is_wrong_state_and_changes_nothing,
    r_r2_double_accept_same_time_duplicate_other_time_wrong_state,
    r_r2_double_resolve_same_time_duplicate_other_time_wrong_state,
    r_r2_closed_ticket_refuses_updates_but_answers_resends,
    r_r2_progress_needs_an_accepted_step,
    r_r3_return_puts_the_ticket_back_for_redispatch,
    r_r3_redispatch_takes_the_returned_steps_place_in_the_chain,
    r_r3_redispatch_refusals_change_nothing,
    r_r3_second_return_flags_joint_consultation_once,
    r_p2_confirmed_prohibition_once_per_ticket_for_a_professional_compound,
    r_p2_no_violation_event_without_a_company_or_a_confirmation,
    r_i5_repeat_note_goes_to_the_open_step,
    r_i5_repeat_while_waiting_for_redispatch_goes_to_the_next_step,
    r_r2_resolve_stamped_before_the_accept_is_refused,
    r_r3_an_unrouted_ticket_gets_its_first_step_by_redispatch,
    r_r2_callback_stamped_before_the_resolve_changes_no_state,
  };

  return run_tests("referral_rules", "R-R1..R-R6", tests, sizeof tests / sizeof tests[0]);
}
