/* The private header of whistle-escalation (notices, R-E1..R-E6), with
 * prototypes grouped by file: the pure notice rules over plain structs (the
 * overdue ladder, decision to notice type, recipients, document numbers,
 * letter rendering, redelivery), the store (all SQL) and the handlers. */
#ifndef ESCALATION_H
#define ESCALATION_H

#include <stddef.h>
#include <stdint.h>
#include "svc_attr.h"
#include "svc_time.h"

#define ESC_CODE_MAX 72
#define ESC_KEY_MAX 200
#define ESC_SIGN_WORKDAYS 2       /* R-E6: unsigned after 2 working days: again */

/* ---- escalation_rules.c: the pure rules ---- */

/* The notice types of R-E2's table, in a fixed order. */
enum esc_type {
  ESC_TISHI, ESC_DUBAN, ESC_WENZE, ESC_YUETAN, ESC_ZHENGGAI, ESC_HEIBANG, ESC_JIANGXING,
  ESC_QINGTUI, ESC_HEIMINGDAN, ESC_ZHONGDIAN, ESC_HUANGPAI, ESC_TYPES
};
/* "TISHI", ...; the letter's name (提示函, ...); the number prefix (提示, ...). */
const char *esc_type_code(enum esc_type t);
const char *esc_type_name(enum esc_type t);
const char *esc_type_prefix(enum esc_type t);
/* Parses "TISHI".. into *out: 0, or -1. */
int esc_type_parse(const char *code, enum esc_type *out);

/* R-E1: the notice type of a unit's k-th overdue event in a quarter (k >= 1):
 * 1 TISHI (with 通报), 2 DUBAN (with 约谈), 3 and more WENZE. */
enum esc_type esc_ladder_type(int k);

/* R-E2: the notice type of a rating decision from its rule ID ("R-C4",
 * "R-P3.2", "R-U3", ...) and first measure ("INTERVIEW_COMPANY", ...).
 * 0 and *out, or -1 for a decision no notice type covers. */
int esc_decision_type(const char *rule_id, const char *measure, enum esc_type *out);

/* R-E3: the document number "<prefix>〔YYYY〕N号" of the n-th notice of type t
 * in year. Returns the length written (out always NUL-terminated), -1 if
 * cap is too small. */
int esc_number(enum esc_type t, int year, int64_t n, char *out, size_t cap);
/* The local year (R-T1) of an event time: the numbering year (R-E3). */
int esc_year(int64_t event_us, int off_s);
/* The calendar quarter index (year * 4 + q - 1) of an event time: the
 * period of R-E1's ladder. */
int32_t esc_quarter(int64_t event_us, int off_s);
/* "2026Q4" of a quarter index. */
void esc_quarter_name(int32_t q, char out[8]);

/* R-E1/R-E3a: overdue events of one unit and quarter are counted in the
 * order (deadline, ticket_no, step, ACCEPT before RESOLVE). Returns <0, 0,
 * >0 like strcmp. */
struct esc_overdue {
  char key[ESC_KEY_MAX];          /* "R-E1|<ticket_no>|<step>|ACCEPT" */
  char ticket_no[ESC_CODE_MAX];
  uint32_t step;
  int resolve;                    /* 0 ACCEPT, 1 RESOLVE */
  char unit[ESC_CODE_MAX];
  int street_unit;
  char district[ESC_CODE_MAX];    /* a street's district */
  int64_t deadline_us, issued_us;
};
int esc_overdue_cmp(const struct esc_overdue *a, const struct esc_overdue *b);

/* R-E3: notices are numbered in the order (event time, trigger key). */
int esc_order_cmp(int64_t a_us, const char *a_key, int64_t b_us, const char *b_key);

/* R-E6: when an unsigned notice delivered at delivered_us is delivered again:
 * 23:59:59 local of the 2nd working day after the delivery date (R-T5). */
int64_t esc_redeliver_at(const struct svc_calendar *cal, int64_t delivered_us, int off_s);

/* Letter rendering: a template is text with placeholders {name}; values are
 * looked up by name; an unknown placeholder is left as it is and "{{" writes
 * "{". Returns the rendered text (malloc'd), or NULL (out of memory). */
struct esc_var { const char *name, *value; };
char *esc_render(const char *tmpl, const struct esc_var *vars, size_t n);

#endif
