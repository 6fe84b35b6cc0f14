/* The text of a notice: the letter's variables (文号, the recipient and the
 * copies by name, the facts with ticket numbers and dates, the rule basis,
 * the measures in words, the response required and its deadline) filled
 * into the type's template from the registry directory. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escalation.h"
#include "svc_csv.h"
#include "svc_log.h"
#include "svc_registry.h"
#include "svc_signal.h"

static const struct { const char *code, *words; } MEASURES[] = {
  { "INTERVIEW_COMPANY", "约谈企业" }, { "REPLACE_MANAGER", "更换项目经理" },
  { "BLACKLIST", "列入黑榜，开展质量评价，按程序更换物业企业" }, { "CREDIT_DEDUCT", "扣减信用分" },
  { "RECTIFY", "限期整改" }, { "SUGGEST_REPLACE_MANAGER", "建议更换项目经理" },
  { "STAR_DOWNGRADE", "降低星级" }, { "NONCOMPLIANT", "评定为不合格" },
  { "EVICT", "清退所服务小区" }, { "BLACKLIST_COMPANY", "列入黑名单" },
  { "JOINT_PUNISHMENT", "实施联合惩戒" }, { "KEY_TARGET", "列为重点监管对象，增加检查频次" },
  { "DEPT_REMINDER", "发提示函" }, { "DEPT_SUPERVISE", "发督办函" },
  { "STREET_SUPERVISE", "督导整改" }, { "STREET_INTERVIEW", "约谈提醒" },
  { "STREET_ACCOUNTABILITY", "追究责任" }, { "DISTRICT_INTERVIEW", "约谈" },
  { "DISTRICT_YELLOW_CARD", "黄牌警告" },
};

/* R-E1: what the k-th overdue of a quarter brings (一次通报、二次约谈、三次问责). */
static const char *ladder_words(int k)
{
  return k <= 1 ? "予以通报" : k == 2 ? "予以通报并约谈单位负责人" : "提出问责建议";
}

static const char *name_of(const struct svc_registry *r, const char *code)
{
  const struct svc_department *d = svc_registry_department(r, code);
  if (d) return d->name;
  const struct svc_street *s = svc_registry_street(r, code);
  if (s) return s->name;
  const struct svc_company *c = svc_registry_company(r, code);
  if (c) return c->name;
  const struct svc_compound *p = svc_registry_compound(r, code);
  if (p) return p->name;
  for (size_t i = 0; i < r->n_districts; i++)
    if (strcmp(r->districts[i].code, code) == 0) return r->districts[i].name;
  return code;
}

/* "2026年10月9日 00:00" in local time. */
static void date_words(int64_t us, int off_s, char *out, size_t n)
{
  int32_t day = svc_local_day(us, off_s);
  struct svc_date d = svc_civil_from_days(day);
  int64_t secs = (us / SVC_US_PER_SEC + off_s) % 86400;
  if (secs < 0) secs += 86400;
  snprintf(out, n, "%d年%d月%d日 %02d:%02d", d.y, d.m, d.d, (int)(secs / 3600), (int)(secs / 60 % 60));
}

static const char *fact(const struct esc_letter *l, const char *name)
{
  size_t n = strlen(name);
  for (size_t i = 0; i < l->n_facts; i++)
    if (strncmp(l->facts[i], name, n) == 0 && l->facts[i][n] == '=') return l->facts[i] + n + 1;
  return NULL;
}

/* Appends s to the growing buffer; -1 when out of memory. */
struct buf { char *p; size_t n, cap; int oom; };
static void put(struct buf *b, const char *s)
{
  size_t k = strlen(s);
  if (b->oom) return;
  if (b->n + k + 1 > b->cap) {
    size_t c = (b->cap + k + 1) * 2;
    char *p = realloc(b->p, c);
    if (!p) {
      b->oom = 1;
      return;
    }
    b->p = p;
    b->cap = c;
  }
  memcpy(b->p + b->n, s, k + 1);
  b->n += k;
}

char *esc_letter_render(const struct esc_ctx *x, const char *tmpl, const struct esc_letter *l)
{
  struct buf cc = { 0 }, ms = { 0 }, ev = { 0 }, fx = { 0 };
  put(&cc, "");
  for (size_t i = 0; i < l->n_cc; i++) {
    if (i) put(&cc, "、");
    put(&cc, name_of(x->reg, l->cc[i]));
  }
  put(&ms, "");
  if (!strcmp(l->source, "overdue")) put(&ms, ladder_words(l->k));
  for (size_t i = 0; i < l->n_measures; i++) {
    const char *w = l->measures[i];
    for (size_t j = 0; j < sizeof MEASURES / sizeof MEASURES[0]; j++)
      if (!strcmp(MEASURES[j].code, l->measures[i])) w = MEASURES[j].words;
    if (i) put(&ms, "；");
    put(&ms, w);
  }
  put(&ev, "");
  for (size_t i = 0; i < l->n_evidence; i++) {
    if (i) put(&ev, "、");
    put(&ev, l->evidence[i]);
  }
  char when[48], by[48], line[512];
  date_words(l->event_us, x->off_s, when, sizeof when);
  date_words(l->respond_by_us, x->off_s, by, sizeof by);
  put(&fx, "");
  if (!strcmp(l->source, "overdue")) {
    const char *clock = fact(l, "clock"), *t = l->evidence && l->n_evidence ? l->evidence[0] : "";
    int accept = clock && !strcmp(clock, "ACCEPT");
    const char *step = l->n_evidence > 1 ? strchr(l->evidence[1], '#') : NULL;
    snprintf(line, sizeof line, "12345工单%s第%s步交由你单位办理，%s期限为%s，期限届满仍未%s（本季度第%d次超期）。",
             t, step ? step + 1 : "?", accept ? "签收" : "办结", when, accept ? "签收" : "办结", l->k);
    put(&fx, line);
  } else {
    const char *subject = fact(l, "subject");
    snprintf(line, sizeof line, "经%s期考核，%s（%s）依据%s触发本通知", l->period,
             name_of(x->reg, subject ? subject : l->recipient), subject ? subject : l->recipient, l->rule_id);
    put(&fx, line);
    for (size_t i = 0; i < l->n_facts; i++) {
      if (!strncmp(l->facts[i], "subject=", 8)) continue;
      put(&fx, i ? "，" : "：");
      put(&fx, l->facts[i]);
    }
    put(&fx, "。");
  }
  char k[16];
  snprintf(k, sizeof k, "%d", l->k);
  const struct esc_var vars[] = {
    { "number", l->number }, { "type_name", l->type_name }, { "recipient", l->recipient },
    { "recipient_name", name_of(x->reg, l->recipient) }, { "cc", cc.oom ? "" : cc.p },
    { "date", when }, { "period", l->period }, { "rule", l->rule }, { "rule_id", l->rule_id },
    { "rule_set", l->rule_set }, { "facts", fx.oom ? "" : fx.p }, { "measures", ms.oom ? "" : ms.p },
    { "evidence", ev.oom ? "" : ev.p }, { "respond_by", by }, { "k", k }, { "key", l->key },
  };
  char *out = cc.oom || ms.oom || ev.oom || fx.oom ? NULL : esc_render(tmpl, vars, sizeof vars / sizeof vars[0]);
  free(cc.p);
  free(ms.p);
  free(ev.p);
  free(fx.p);
  return out;
}

/* ---- templates (data in the registry directory) ---------------------------------- */

void esc_templates_free(char *t[ESC_TYPES])
{
  for (int i = 0; i < ESC_TYPES; i++) {
    free(t[i]);
    t[i] = NULL;
  }
}

int esc_templates_load(char *out[ESC_TYPES], const char *dir, char *err, size_t errlen)
{
  char *t[ESC_TYPES] = { 0 };
  for (int i = 0; i < ESC_TYPES; i++) {
    char path[4096];
    snprintf(path, sizeof path, "%s/%s.txt", dir, esc_type_code((enum esc_type)i));
    FILE *f = fopen(path, "rb");
    long n = -1;
    if (f && fseek(f, 0, SEEK_END) == 0) n = ftell(f);
    if (!f || n < 0 || n > 64 * 1024 || fseek(f, 0, SEEK_SET) != 0) {
      snprintf(err, errlen, "%s: %s", path, !f ? "missing (one template per notice type)" : "unreadable or over 64 KiB");
      if (f) fclose(f);
      esc_templates_free(t);
      return -1;
    }
    t[i] = malloc((size_t)n + 1);
    size_t got = t[i] ? fread(t[i], 1, (size_t)n, f) : 0;
    fclose(f);
    if (!t[i] || got != (size_t)n) {
      snprintf(err, errlen, "%s: cannot be read", path);
      esc_templates_free(t);
      return -1;
    }
    t[i][n] = 0;
    if (!svc_utf8_valid(t[i], (size_t)n) || !strstr(t[i], "{number}")) {
      snprintf(err, errlen, "%s: not UTF-8 text with a {number} placeholder", path);
      esc_templates_free(t);
      return -1;
    }
  }
  esc_templates_free(out);
  memcpy(out, t, sizeof t);
  return 0;
}

int esc_templates_use(struct esc_ctx *x, const char *templates, const char *registry, int reloading)
{
  char err[512], buf[4096];
  const char *dir = esc_templates_dir(templates, registry, buf, sizeof buf);
  if (!esc_templates_load(x->templates, dir, err, sizeof err)) return 0;
  if (reloading) svc_reload_failed("notice templates", err);
  else svc_error("notice templates refused", " error=\"%s\"", err);
  return -1;
}

const char *esc_templates_dir(const char *templates, const char *registry, char *buf, size_t n)
{
  if (templates && *templates) return templates;
  snprintf(buf, n, "%s/notice_templates", registry);
  return buf;
}

int esc_templates_check(const char *dir, char *err, size_t errlen)
{
  char *t[ESC_TYPES] = { 0 };
  if (esc_templates_load(t, dir, err, errlen)) return -1;
  esc_templates_free(t);
  return 0;
}

int esc_registry_check(const char *dir, char *err, size_t errlen)
{
  char tdir[4096];
  if (svc_registry_check(dir, err, errlen)) return -1;
  /* The templates are WHISTLE_NOTICE_TEMPLATES's (checked there) when it is set. */
  const char *own = getenv("WHISTLE_NOTICE_TEMPLATES");
  if (own && *own) return 0;
  return esc_templates_check(esc_templates_dir(NULL, dir, tdir, sizeof tdir), err, errlen);
}
