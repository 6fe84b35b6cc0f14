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


/* ---- escalation_store.c: all SQL of the service ---- */

struct svc_pg;
struct svc_pg_batch;
struct esc_store;
/* A row: n text values (NULL for SQL NULL), valid during the call (= svc_pg_row_cb). */
typedef void (*esc_row_cb)(void *arg, int n, const char *const *v);

/* A trigger as taken from an input: an overdue event (source "overdue",
 * type decided at issuance by the ladder) or a decision ("decision"). */
struct esc_trigger {
  char key[ESC_KEY_MAX];
  const char *source;
  int64_t event_us;
  char rule[16], rule_id[16], rule_set[32], period[16], type[16];
  char recipient[ESC_CODE_MAX];
  const char *const *cc; size_t n_cc;
  const char *const *measures; size_t n_measures;
  const char *const *evidence; size_t n_evidence;
  const char *const *facts; size_t n_facts;
  char ticket_no[ESC_CODE_MAX];
  uint32_t step;
  int resolve;
  char unit[ESC_CODE_MAX];
  int32_t quarter;
};

struct esc_store *esc_store_new(struct svc_pg *pg);
void esc_store_destroy(struct esc_store **s);
/* Records a trigger once by key (a redelivered one changes nothing). */
SVC_MUST_CHECK int esc_store_trigger(struct esc_store *s, struct svc_pg_batch *b,
                                     const struct esc_trigger *t);
/* Moves the input watermarks forward (0 leaves one as it is). */
SVC_MUST_CHECK int esc_store_clock(struct esc_store *s, struct svc_pg_batch *b, int64_t referral_wm,
                                   int64_t rating_wm);
/* What an issuance up to until_us (exclusive) reads, after locking the
 * clock row (so that an issuance of an earlier process still committing is
 * waited for and seen), rows tagged: "k" out_wm (the clock); "t" key,
 * source, event_us, rule, rule_id, rule_set, period, type, recipient,
 * cc (JSON), measures (JSON), evidence (JSON), facts (JSON), ticket_no, step,
 * resolve (t/f), unit, quarter: the pending triggers in (event time, key)
 * order; "l" unit, quarter, k: the ladder of their units and quarters; "c"
 * type, year, n: every counter; "r" number, payload (hex): the notices due
 * for a second delivery before until_us. */
SVC_MUST_CHECK int esc_store_issue_load(struct esc_store *s, struct svc_pg_batch *b,
                                        int64_t until_us, esc_row_cb cb, void *arg);
/* A notice issued: its row (with its packed payload), its trigger marked
 * issued. */
struct esc_notice_row {
  const char *number, *type, *key, *source, *recipient, *rule, *rule_id, *rule_set, *period;
  int year;
  int64_t n, event_us, respond_by_us, redeliver_us;
  int k;
  const char *const *cc; size_t n_cc;
  const char *const *evidence; size_t n_evidence;
  const char *const *measures; size_t n_measures;
  const char *text;
  const uint8_t *payload; size_t payload_len;
  int redelivered;            /* R-E6: delivered again in the issuing transaction */
};
SVC_MUST_CHECK int esc_store_notice(struct esc_store *s, struct svc_pg_batch *b,
                                    const struct esc_notice_row *n);
/* The triggers of these keys (their notices written in the same batch) issued. */
SVC_MUST_CHECK int esc_store_issued(struct esc_store *s, struct svc_pg_batch *b, const char *const *keys,
                                    size_t n);
SVC_MUST_CHECK int esc_store_ladder(struct esc_store *s, struct svc_pg_batch *b, const char *unit,
                                    int32_t quarter, int k);
SVC_MUST_CHECK int esc_store_counter(struct esc_store *s, struct svc_pg_batch *b, const char *type,
                                     int year, int64_t n);
SVC_MUST_CHECK int esc_store_redelivered(struct esc_store *s, struct svc_pg_batch *b,
                                         const char *number);
SVC_MUST_CHECK int esc_store_published(struct esc_store *s, struct svc_pg_batch *b, int64_t out_wm);
/* Signs a notice for recipient at at_us: one row: outcome ("signed",
 * "already", "wrong_recipient", "unknown"), signed_us, payload (hex). */
SVC_MUST_CHECK int esc_store_sign(struct esc_store *s, struct svc_pg_batch *b, const char *number,
                                  const char *recipient, int64_t at_us, esc_row_cb cb, void *arg);
/* Queries: NOTICES rows number, type, recipient, cc (JSON), rule, rule_set,
 * period, key, event_us, evidence (JSON), measures (JSON), signed_us, in
 * (type, year, n) order; UNSIGNED likewise for the redelivered unsigned;
 * TRACE (number) one row: number, type, key, source, recipient, rule_id,
 * period, event_us, evidence (JSON), measures (JSON), text, signed_us, k. */
enum esc_query { EQ_NOTICES = 1, EQ_TRACE, EQ_UNSIGNED };
SVC_MUST_CHECK int esc_store_query(struct esc_store *s, struct svc_pg_batch *b, enum esc_query q,
                                   const char *number, esc_row_cb cb, void *arg);
struct esc_clock_row { int64_t referral_wm, rating_wm, out_wm; };
int esc_store_load_clock(const char *conninfo, struct esc_clock_row *out);

/* ---- escalation_apply.c, escalation_issue.c, escalation_requests.c ---- */

struct svc_registry;
struct svc_stream_producer;
struct svc_stream_event;
struct svc_server_ops;

struct esc_counters { uint64_t triggers, notices, redelivered, signed_, queries, skipped; };

struct esc_ctx {
  struct svc_registry *reg;        /* swapped on SIGHUP */
  char *templates[ESC_TYPES];      /* the letters' templates (registry directory) */
  int off_s;
  struct svc_clock clock;
  struct esc_store *store;
  struct svc_stream_producer *prod;
  struct svc_pg *pg;
  int curve;
  char ops[256];                   /* identities allowed to query (CURVE on) */
  int64_t referral_wm, rating_wm, out_wm;   /* committed */
  int issue_busy;
  const int *stopping;
  struct esc_issuejob *job;
  struct esc_counters n;
};
struct esc_input { struct esc_ctx *x; int which; };  /* 0 referral, 1 rating */

/* Stream consumer callback (svc_stream_apply_cb) with a struct esc_input as
 * arg: records each overdue event or decision as a trigger, once by key. */
int esc_apply(void *arg, struct svc_pg_batch *b, const struct svc_stream_event *ev, size_t n);
/* Issues, in one transaction, the notices of every trigger before the
 * inputs' minimum watermark, numbered in (event time, key) order, delivers
 * again the unsigned ones due, and publishes escalation's watermark. */
void esc_issue_run(struct esc_ctx *x);
void esc_issue_free(struct esc_ctx *x);
/* Loads the templates <TYPE>.txt of the templates directory dir (every
 * type required). 0, or -1 with "path: reason" in err. */
int esc_templates_load(char *out[ESC_TYPES], const char *dir, char *err, size_t errlen);
void esc_templates_free(char *t[ESC_TYPES]);
/* The templates directory: WHISTLE_NOTICE_TEMPLATES (templates) when set,
 * else the registry's notice_templates/ (written into buf). */
const char *esc_templates_dir(const char *templates, const char *registry, char *buf, size_t n);
/* WHISTLE_NOTICE_TEMPLATES's check: every template there, valid. */
int esc_templates_check(const char *dir, char *err, size_t errlen);
/* Loads the templates (esc_templates_dir) into x (at start,
 * reloading 0; on SIGHUP a refusal keeps the ones in force, logged and
 * counted as a failed reload). 0 or -1. */
int esc_templates_use(struct esc_ctx *x, const char *templates, const char *registry, int reloading);
/* WHISTLE_REGISTRY's check: the registry, and its notice_templates/ unless
 * WHISTLE_NOTICE_TEMPLATES names the templates elsewhere. */
int esc_registry_check(const char *dir, char *err, size_t errlen);
/* ---- escalation_letter.c: the text of a notice ---- */

/* What a letter says, from a trigger being issued. */
struct esc_letter {
  const char *number, *type_name, *recipient, *rule, *rule_id, *rule_set, *period, *key, *source;
  const char *const *cc; size_t n_cc;
  const char *const *measures; size_t n_measures;
  const char *const *evidence; size_t n_evidence;
  const char *const *facts; size_t n_facts;  /* name=value */
  int64_t event_us, respond_by_us;
  int k;                                     /* R-E1 */
};
/* Renders the letter with the type's template: names from the registry,
 * dates in local time, measures in words. NULL when out of memory. */
char *esc_letter_render(const struct esc_ctx *x, const char *tmpl, const struct esc_letter *l);

/* The request interface (proto/notice.proto): signatures and queries. */
extern const struct svc_server_ops esc_request_ops;

#endif
