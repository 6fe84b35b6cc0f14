/* Unit tests for the ops queries' lines (referral_queries.c) and the
 * overdue flags they show (referral_step_overdue, R-R4), against the sample
 * registry: a ticket no step could be issued for waits as step 0 (R-R3), a
 * returned step waits with the unit's reason, referral's RETURNED is OPEN
 * outside, and an overdue is shown once published or once the action that
 * stopped its clock was stamped after the deadline. */
#include <jansson.h>

#include "referral_fixture.h"

/* The object as one export line (sorted keys, compact separators). */
static char *dump(json_t *o) {
  char *s;

  ck_assert_ptr_nonnull(o);
  s = json_dumps(o, JSON_SORT_KEYS);
  json_decref(o);
  ck_assert_ptr_nonnull(s);
  return s;
}

START_TEST(r_r3_an_unrouted_ticket_waits_as_step_0) {
  struct referral_ticket *t = new_ticket("T1", "OTHER", "C0001");
  char *s;

  dispatch(t, at(T0_TEXT));
  ck_assert_int_eq(t->state, RT_RETURNED);
  s = dump(referral_returned_json(t));
  ck_assert_str_eq(s, "{\"category\": \"OTHER\", \"compound\": \"C0001\", \"reason\": \"no routing for "
                      "the category\", \"returned_at\": \"2026-10-09T10:00:00+08:00\", \"returns\": 0, "
                      "\"step\": 0, \"street\": \"S0101\", \"ticket_no\": \"T1\", \"unit\": \"\"}");
  free(s);
  s = dump(referral_ticket_json(t, 0));
  ck_assert_str_eq(s, "{\"category\": \"OTHER\", \"compound\": \"C0001\", \"exempt\": false, "
                      "\"repeat_of\": null, \"state\": \"OPEN\", \"steps\": [], \"ticket_no\": \"T1\"}");
  free(s);
  drop(t);
}
END_TEST

START_TEST(r_r3_a_returned_step_waits_with_the_units_reason) {
  struct referral_ticket *t = new_ticket("T2", "PS_SANITATION", "C0001");
  char *s;

  dispatch(t, at(T0_TEXT));
  ck_assert_ptr_null(referral_returned_json(t)); /* open: nothing waits */
  ck_assert_int_eq(act(t, 1, RA_RETURN, at(T0_TEXT) + HOUR), RV_APPLIED);
  s = dump(referral_returned_json(t));
  ck_assert_str_eq(s, "{\"category\": \"PS_SANITATION\", \"compound\": \"C0001\", \"reason\": "
                      "\"不属本单位职责\", \"returned_at\": \"2026-10-09T11:00:00+08:00\", \"returns\": 1, "
                      "\"step\": 1, \"street\": \"S0101\", \"ticket_no\": \"T2\", \"unit\": \"S0101\"}");
  free(s);
  drop(t);
}
END_TEST

START_TEST(r_r4_overdue_flags_published_or_certain) {
  struct referral_ticket *t = new_ticket("T3", "PS_SANITATION", "C0001");
  int64_t t0 = at(T0_TEXT), by;

  dispatch(t, t0);
  by = step(t, 1)->accept_by_us;
  ck_assert(by == t0 + 24 * HOUR);
  ck_assert_int_eq(referral_step_overdue(step(t, 1), 0), 0); /* the clock runs */
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, by + SEC - 1), RV_APPLIED); /* within the second: on time */
  ck_assert_int_eq(referral_step_overdue(step(t, 1), 0), 0);
  drop(t);

  t = new_ticket("T4", "PS_SANITATION", "C0001");
  dispatch(t, t0);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, by + HOUR), RV_APPLIED); /* late: certain before the tick */
  ck_assert_int_eq(referral_step_overdue(step(t, 1), 0), 1);
  ck_assert_int_eq(referral_step_overdue(step(t, 1), 1), 0);
  drop(t);

  t = new_ticket("T5", "PS_SANITATION", "C0001");
  dispatch(t, t0);
  memset(&FX, 0, sizeof FX);
  ck_assert_int_eq(referral_tick(t, by + 2 * SEC, &FX), 0); /* ACCEPT_OVERDUE published */
  ck_assert_int_eq(referral_step_overdue(step(t, 1), 0), 1);
  ck_assert_int_eq(act(t, 1, RA_ACCEPT, by - HOUR), RV_APPLIED); /* stamped in time, arrived late */
  ck_assert_int_eq(referral_step_overdue(step(t, 1), 0), 1);  /* the overdue stands */
  drop(t);

  t = new_ticket("T6", "PS_SANITATION", "C0001");
  dispatch(t, t0);
  ck_assert_int_eq(act(t, 1, RA_RETURN, by + HOUR), RV_APPLIED); /* a return stops both clocks */
  ck_assert_int_eq(referral_step_overdue(step(t, 1), 0), 1);
  ck_assert_int_eq(referral_step_overdue(step(t, 1), 1), 0);
  drop(t);
}
END_TEST

int main(void) {
  const TTest *const tests[] = {
    r_r3_an_unrouted_ticket_waits_as_step_0,
    r_r3_a_returned_step_waits_with_the_units_reason,
    r_r4_overdue_flags_published_or_certain,
  };

  return run_tests("referral_queries", "R-R3, R-R4", tests, sizeof tests / sizeof tests[0]);
}
