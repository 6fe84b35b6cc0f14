/* The pure notice rules of whistle-escalation over plain structs: the notice
 * types of R-E2's table, the overdue ladder (R-E1), decision to notice type
 * (R-E2), document numbers and their local year (R-E3, R-T1), the orders in
 * which events are counted and notices numbered (R-E1, R-E3, R-E3a), the
 * redelivery time of unsigned notices (R-E6) and letter rendering. No I/O. */
#include "escalation.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- notice types (R-E2's table) ---- */

static const struct {
  const char *code, *name, *prefix;
} TYPES[ESC_TYPES] = {
  [ESC_TISHI] = {"TISHI", "提示函", "提示"},
  [ESC_DUBAN] = {"DUBAN", "督办函", "督办"},
  [ESC_WENZE] = {"WENZE", "问责建议函", "问责"},
  [ESC_YUETAN] = {"YUETAN", "约谈通知书", "约谈"},
  [ESC_ZHENGGAI] = {"ZHENGGAI", "整改通知书", "整改"},
  [ESC_HEIBANG] = {"HEIBANG", "黑榜公告", "黑榜"},
  [ESC_JIANGXING] = {"JIANGXING", "降星通知", "降星"},
  [ESC_QINGTUI] = {"QINGTUI", "清退通知", "清退"},
  [ESC_HEIMINGDAN] = {"HEIMINGDAN", "黑名单公告", "黑名单"},
  [ESC_ZHONGDIAN] = {"ZHONGDIAN", "重点监管通知", "重点"},
  [ESC_HUANGPAI] = {"HUANGPAI", "黄牌警告", "黄牌"},
};

static int type_valid(enum esc_type t) {
  return (int)t >= 0 && t < ESC_TYPES;
}

/* The three accessors return NULL for a value outside the enum. */
const char *esc_type_code(enum esc_type t) {
  return type_valid(t) ? TYPES[t].code : NULL;
}

const char *esc_type_name(enum esc_type t) {
  return type_valid(t) ? TYPES[t].name : NULL;
}

const char *esc_type_prefix(enum esc_type t) {
  return type_valid(t) ? TYPES[t].prefix : NULL;
}

int esc_type_parse(const char *code, enum esc_type *out) {
  if (!code) return -1;
  for (int i = 0; i < ESC_TYPES; i++) {
    if (strcmp(code, TYPES[i].code) == 0) {
      if (out) *out = (enum esc_type)i;
      return 0;
    }
  }
  return -1;
}

/* ---- R-E1: the overdue ladder ---- */

/* k below 1 is not a count of events; it is treated as the first. */
enum esc_type esc_ladder_type(int k) {
  if (k <= 1) return ESC_TISHI;
  if (k == 2) return ESC_DUBAN;
  return ESC_WENZE;
}

/* ---- R-E2: decisions to notice types ---- */

/* One row per (rule ID, first measure) of R-E2's table. The rules of R-P3
 * are matched by their threshold's rule ID alone ("R-P3.1".."R-P3.4"): each
 * threshold issues one decision whose first measure R-P3 fixes. */
static const struct {
  const char *rule_id, *measure;
  enum esc_type type;
} DECISIONS[] = {
  {"R-C4", "INTERVIEW_COMPANY", ESC_YUETAN},
  {"R-C4", "REPLACE_MANAGER", ESC_ZHENGGAI},
  {"R-C4", "BLACKLIST", ESC_HEIBANG},
  {"R-P3.1", NULL, ESC_ZHENGGAI},
  {"R-P3.2", NULL, ESC_JIANGXING},
  {"R-P3.3", NULL, ESC_QINGTUI},
  {"R-P3.4", NULL, ESC_HEIMINGDAN},
  {"R-S3", "EVICT", ESC_QINGTUI},
  {"R-S3", "KEY_TARGET", ESC_ZHONGDIAN},
  {"R-U3", "DEPT_REMINDER", ESC_TISHI},
  {"R-U3", "DEPT_SUPERVISE", ESC_DUBAN},
  {"R-U4", "STREET_SUPERVISE", ESC_DUBAN},
  {"R-U4", "STREET_INTERVIEW", ESC_YUETAN},
  {"R-U4", "STREET_ACCOUNTABILITY", ESC_WENZE},
  {"R-U5", "DISTRICT_INTERVIEW", ESC_YUETAN},
  {"R-U5", "DISTRICT_YELLOW_CARD", ESC_HUANGPAI},
};

int esc_decision_type(const char *rule_id, const char *measure, enum esc_type *out) {
  if (!rule_id) return -1;
  for (size_t i = 0; i < sizeof DECISIONS / sizeof DECISIONS[0]; i++) {
    if (strcmp(rule_id, DECISIONS[i].rule_id) != 0) continue;
    if (DECISIONS[i].measure && (!measure || strcmp(measure, DECISIONS[i].measure) != 0))
      continue;
    if (out) *out = DECISIONS[i].type;
    return 0;
  }
  return -1;
}

/* ---- R-E3: document numbers and periods ---- */

int esc_number(enum esc_type t, int year, int64_t n, char *out, size_t cap) {
  int len;

  if (!out || cap == 0) return -1;
  out[0] = '\0';
  if (!type_valid(t)) return -1;
  len = snprintf(out, cap, "%s〔%d〕%" PRId64 "号", TYPES[t].prefix, year, n);
  if (len < 0 || (size_t)len >= cap) {
    /* Never leave half a number (or half a UTF-8 sequence) behind. */
    out[0] = '\0';
    return -1;
  }
  return len;
}

int esc_year(int64_t event_us, int off_s) {
  return svc_civil_from_days(svc_local_day(event_us, off_s)).y;
}

int32_t esc_quarter(int64_t event_us, int off_s) {
  struct svc_date d = svc_civil_from_days(svc_local_day(event_us, off_s));

  return (int32_t)d.y * 4 + (d.m - 1) / 3;
}

void esc_quarter_name(int32_t q, char out[8]) {
  /* Floor division keeps the quarter in 1..4 for indices below zero too. */
  int64_t y = q >= 0 ? (int64_t)q / 4 : -((-(int64_t)q + 3) / 4);
  int qq = (int)(q - y * 4) + 1;
  char buf[32];

  snprintf(buf, sizeof buf, "%04" PRId64 "Q%d", y, qq);
  snprintf(out, 8, "%.7s", buf);
}

/* ---- R-E1, R-E3, R-E3a: orders ---- */

static int cmp_i64(int64_t a, int64_t b) {
  return (a > b) - (a < b);
}

int esc_overdue_cmp(const struct esc_overdue *a, const struct esc_overdue *b) {
  int c;

  if ((c = cmp_i64(a->deadline_us, b->deadline_us)) != 0) return c;
  if ((c = strcmp(a->ticket_no, b->ticket_no)) != 0) return c < 0 ? -1 : 1;
  if (a->step != b->step) return a->step < b->step ? -1 : 1;
  /* ACCEPT (resolve 0) before RESOLVE. */
  return cmp_i64(a->resolve != 0, b->resolve != 0);
}

int esc_order_cmp(int64_t a_us, const char *a_key, int64_t b_us, const char *b_key) {
  int c = cmp_i64(a_us, b_us);

  if (c != 0) return c;
  c = strcmp(a_key ? a_key : "", b_key ? b_key : "");
  return (c > 0) - (c < 0);
}

/* ---- R-E6: redelivery ---- */

int64_t esc_redeliver_at(const struct svc_calendar *cal, int64_t delivered_us, int off_s) {
  return svc_deadline_workdays(cal, delivered_us, ESC_SIGN_WORKDAYS, off_s);
}

/* ---- letter rendering ---- */

/* The value of the placeholder name[0..len), or NULL when no variable has
 * that name (the first of equal names wins). */
static const char *lookup(const struct esc_var *vars, size_t n, const char *name, size_t len) {
  for (size_t i = 0; i < n; i++) {
    const char *v = vars[i].name;

    if (v && strncmp(v, name, len) == 0 && v[len] == '\0')
      return vars[i].value ? vars[i].value : "";
  }
  return NULL;
}

/* Renders tmpl into out (when out is not NULL) and returns the length of the
 * rendering. A placeholder is '{', a name without '{' or '}', then '}'; a '{'
 * that opens none, and an unknown placeholder, are copied as they are. Values
 * are copied verbatim, never scanned for placeholders. Text is handled as
 * bytes, so UTF-8 passes through unchanged ('{' and '}' never occur inside a
 * multi-byte sequence). */
static size_t render(const char *tmpl, const struct esc_var *vars, size_t n, char *out) {
  size_t len = 0;
  const char *p = tmpl;

  while (*p) {
    const char *piece = p, *val = NULL;
    size_t plen = 1;

    if (p[0] == '{' && p[1] == '{') {
      plen = 2;
      val = "{";
    } else if (p[0] == '{') {
      size_t name = strcspn(p + 1, "{}");

      if (p[1 + name] == '}') {
        plen = name + 2;
        val = lookup(vars, n, p + 1, name);
      }
    }
    if (val) {
      size_t vlen = strlen(val);

      if (out) memcpy(out + len, val, vlen);
      len += vlen;
    } else {
      if (out) memcpy(out + len, piece, plen);
      len += plen;
    }
    p += plen;
  }
  if (out) out[len] = '\0';
  return len;
}

char *esc_render(const char *tmpl, const struct esc_var *vars, size_t n) {
  char *out;

  if (!tmpl) tmpl = "";
  if (!vars) n = 0;
  out = malloc(render(tmpl, vars, n, NULL) + 1);
  if (!out) return NULL;
  render(tmpl, vars, n, out);
  return out;
}
