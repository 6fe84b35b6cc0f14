/* Unit tests for the intake registry loader (docs/rules.md §1, registry (docs/formats.md)
 * CSVs) and the matchers it builds: the sample city in deploy/registry loads
 * and holds the docs/rules.md §3 table; broken copies of a small fixture are refused
 * with the exact "file:line: reason" for each class of error; a failed load
 * leaves a loaded registry alone (SIGHUP reload); the Aho-Corasick matcher
 * and normalisation (R-I3, R-I4) agree with a naive search. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intake.h"

/* ---- the fixture and broken copies of it ---- */

#define F_DISTRICTS "code,name\nD01,和平区\nD02,新华区\n"
#define F_STREETS "code,name,district\nS01,和平街道,D01\nS02,新华街道,D02\n"
#define F_COMPANIES "code,name\nE01,安居物业服务有限公司\n"
#define F_DEPARTMENTS "code,name\nGA,公安局\nXF,消防救援支队\n"
#define F_CATEGORIES                                                            \
  "category,name,counts,urgent,prohibition\nPS_FEES,乱收费、擅自涨价,1,0,P7\n"  \
  "V_NOISE,噪音扰民,0,0,\nOTHER,无法分类,0,0,\n"
#define F_ROUTING \
  "category,step,unit,accept_hours,resolve_workdays\nPS_FEES,1,STREET,24,10\nV_NOISE,1,GA,12,3\n"
#define F_COMPOUNDS                                                   \
  "code,name,aliases,street,management,company,manager,households\n" \
  "C01,幸福里,幸福里小区|幸福社区,S01,PROFESSIONAL,E01,王经理,100\n"  \
  "C02,阳光花园,,S02,NONE,,,50\n"
#define F_HOTLINE "hotline_code,category\nWY05,PS_FEES\n"
#define F_KEYWORDS "keyword,category,priority\n乱收费,PS_FEES,60\n噪音,V_NOISE,40\n"
#define F_CALENDAR "date,kind\n2026-10-01,HOLIDAY\n2026-10-10,WORKDAY\n"

struct file { const char *name, *text; };

static const struct file FIXTURE[] = {
  {"districts.csv", F_DISTRICTS},   {"streets.csv", F_STREETS},
  {"companies.csv", F_COMPANIES},   {"departments.csv", F_DEPARTMENTS},
  {"categories.csv", F_CATEGORIES}, {"routing.csv", F_ROUTING},
  {"compounds.csv", F_COMPOUNDS},   {"hotline_categories.csv", F_HOTLINE},
  {"keywords.csv", F_KEYWORDS},     {"calendar.csv", F_CALENDAR},
};
#define N_FIXTURE (sizeof FIXTURE / sizeof FIXTURE[0])

static char dir[64];

/* Writes the fixture into a fresh temporary directory with file `name`
 * replaced by text (text NULL: the file is left out). */
static void write_fixture(const char *name, const char *text) {
  snprintf(dir, sizeof dir, "/tmp/test_intake_registry_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  for (size_t i = 0; i < N_FIXTURE; i++) {
    const char *t = name && strcmp(name, FIXTURE[i].name) == 0 ? text : FIXTURE[i].text;
    char path[256];
    FILE *f;
    if (!t) continue;
    snprintf(path, sizeof path, "%s/%s", dir, FIXTURE[i].name);
    ck_assert_ptr_nonnull(f = fopen(path, "wb"));
    ck_assert_int_ge(fputs(t, f), 0);
    ck_assert_int_eq(fclose(f), 0);
  }
}

static void remove_fixture(void) {
  char path[256];

  for (size_t i = 0; i < N_FIXTURE; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, FIXTURE[i].name);
    unlink(path);
  }
  rmdir(dir);
}

/* Loads the fixture with one file replaced; expects "<dir>/<want>". */
static void ck_refused(const char *name, const char *text, const char *want) {
  char err[512], full[600];
  struct svc_registry *r;

  write_fixture(name, text);
  r = svc_registry_load(dir, err, sizeof err);
  snprintf(full, sizeof full, "%s/%s", dir, want);
  ck_assert_msg(r == NULL, "loaded, want refusal '%s'", want);
  ck_assert_str_eq(err, full);
  remove_fixture();
}

static struct svc_registry *load_ok(const char *d) {
  char err[512];
  struct svc_registry *r = svc_registry_load(d, err, sizeof err);

  ck_assert_msg(r != NULL, "refused: %s", err);
  return r;
}

/* ---- the sample city ---- */

static const char *sample_dir(void) {
  const char *d = getenv("WHISTLE_TEST_REGISTRY");

  return d && *d ? d : "deploy/registry";
}

START_TEST(test_registry_sample_loads) {
  struct svc_registry *r = load_ok(sample_dir());
  int mgmt[4] = {0};

  ck_assert_uint_eq(r->n_districts, 2);
  ck_assert_uint_eq(r->n_streets, 4);
  ck_assert_uint_eq(r->n_companies, 4);
  ck_assert_uint_eq(r->n_departments, 11);
  ck_assert_uint_eq(r->n_categories, 24);
  ck_assert_uint_ge(r->n_compounds, 10);
  ck_assert_uint_ge(r->n_keywords, 60);
  ck_assert_ptr_nonnull(r->other);
  ck_assert_str_eq(r->other->code, "OTHER");
  for (size_t i = 0; i < r->n_compounds; i++) {
    const struct svc_compound *c = &r->compounds[i];
    mgmt[c->management]++;
    ck_assert_int_eq(*c->company != '\0', c->management == SVC_MGMT_PROFESSIONAL);
    ck_assert_ptr_nonnull(svc_registry_street(r, c->street));
    ck_assert_ptr_nonnull(c->district);
  }
  for (int m = 0; m < 4; m++) ck_assert_int_gt(mgmt[m], 0);
  for (size_t i = 0; i < r->n_hotline; i++)
    ck_assert_ptr_nonnull(svc_registry_hotline(r, r->hotline[i].code));
  svc_registry_destroy(&r);
  ck_assert_ptr_null(r);
}
END_TEST

/* Every category of docs/rules.md §3 but OTHER has keywords and routing. */
START_TEST(test_registry_sample_categories_routing_keywords) {
  struct svc_registry *r = load_ok(sample_dir());
  const struct svc_route_step *s;
  const struct svc_category *c;
  size_t n;

  for (size_t i = 0; i < r->n_categories; i++) {
    const char *code = r->categories[i].code;
    size_t kw = 0;
    for (size_t k = 0; k < r->n_keywords; k++) kw += strcmp(r->keywords[k].category, code) == 0;
    s = svc_registry_route(r, code, &n);
    if (strcmp(code, "OTHER") == 0) {
      ck_assert_ptr_null(s);
      ck_assert_uint_eq(n, 0);
      continue;
    }
    ck_assert_msg(kw > 0, "no keyword for %s", code);
    ck_assert_msg(n > 0, "no routing for %s", code);
  }
  s = svc_registry_route(r, "V_ILLEGAL_BUILD", &n);
  ck_assert_uint_eq(n, 3);
  ck_assert_str_eq(s[0].unit, "ZRZY");
  ck_assert_str_eq(s[1].unit, "SF");
  ck_assert_int_eq(s[1].accept_hours, 24);
  ck_assert_int_eq(s[1].resolve_workdays, 3);
  ck_assert_str_eq(s[2].unit, "CGZF");
  ck_assert_int_eq(s[2].resolve_workdays, 15);
  s = svc_registry_route(r, "V_HAZMAT", &n);
  ck_assert_uint_eq(n, 1);
  ck_assert_str_eq(s[0].unit, "XF");
  ck_assert_int_eq(s[0].accept_hours, 1);
  c = svc_registry_category(r, "PS_SERVICE_STOP");
  ck_assert_int_eq(c->counts, 1);
  ck_assert_int_eq(c->urgent, 1);
  ck_assert_str_eq(c->prohibition, "P6");
  c = svc_registry_category(r, "V_CHARGING_BLOCK");
  ck_assert_int_eq(c->counts, 0);
  ck_assert_str_eq(c->prohibition, "P4");
  ck_assert_ptr_null(svc_registry_route(r, "NOPE", &n));
  svc_registry_destroy(&r);
}
END_TEST

START_TEST(test_registry_sample_compounds_and_calendar) {
  struct svc_registry *r = load_ok(sample_dir());
  struct intake_compound_result cr;
  const char *addr = "和平街道幸福里二期3栋";

  ck_assert_int_eq(intake_match_compound(r, NULL, addr, strlen(addr), &cr), 0);
  ck_assert_ptr_nonnull(cr.compound);
  ck_assert_str_eq(cr.compound->name, "幸福里二期");
  ck_assert_int_eq(svc_calendar_is_workday(&r->calendar, svc_days_from_civil(2026, 10, 1)), 0);
  ck_assert_int_eq(svc_calendar_is_workday(&r->calendar, svc_days_from_civil(2026, 10, 10)), 1);
  ck_assert_int_eq(svc_calendar_is_workday(&r->calendar, svc_days_from_civil(2026, 9, 30)), 1);
  svc_registry_destroy(&r);
}
END_TEST

START_TEST(test_registry_fixture_loads_and_lookups) {
  struct svc_registry *r;
  const struct svc_compound *c;

  write_fixture(NULL, NULL);
  r = load_ok(dir);
  c = svc_registry_compound(r, "C01");
  ck_assert_ptr_nonnull(c);
  ck_assert_str_eq(c->name, "幸福里");
  ck_assert_uint_eq(c->n_aliases, 2);
  ck_assert_str_eq(c->aliases[0], "幸福里小区");
  ck_assert_str_eq(c->aliases[1], "幸福社区");
  ck_assert_str_eq(c->street, "S01");
  ck_assert_str_eq(c->district, "D01");
  ck_assert_str_eq(c->company, "E01");
  ck_assert_str_eq(c->manager, "王经理");
  ck_assert_int_eq(c->households, 100);
  ck_assert_uint_eq(c->line, 2);
  ck_assert_uint_eq(svc_registry_compound(r, "C02")->n_aliases, 0);
  ck_assert_ptr_null(svc_registry_compound(r, "C03"));
  ck_assert_ptr_null(svc_registry_compound(r, NULL));
  ck_assert_str_eq(svc_registry_hotline(r, "WY05")->code, "PS_FEES");
  ck_assert_ptr_null(svc_registry_hotline(r, "WY06"));
  ck_assert_str_eq(svc_registry_department(r, "XF")->name, "消防救援支队");
  ck_assert_str_eq(svc_registry_company(r, "E01")->code, "E01");
  ck_assert_str_eq(r->keywords[1].keyword, "噪音"); /* file order kept */
  svc_registry_destroy(&r);
  svc_registry_destroy(&r);
  svc_registry_destroy(NULL);
  remove_fixture();
}
END_TEST

/* A failed load leaves the live registry as it was (SIGHUP reload). */
START_TEST(test_registry_failed_reload_keeps_live_registry) {
  char err[512];
  struct svc_registry *live, *next;

  write_fixture(NULL, NULL);
  live = load_ok(dir);
  remove_fixture();
  write_fixture("streets.csv", F_STREETS "S03,东街,D09\n");
  next = svc_registry_load(dir, err, sizeof err);
  ck_assert_ptr_null(next);
  ck_assert_ptr_nonnull(strstr(err, "streets.csv:4: unknown district D09"));
  ck_assert_str_eq(svc_registry_compound(live, "C01")->name, "幸福里");
  ck_assert_uint_eq(live->n_streets, 2);
  remove_fixture();
  ck_assert_ptr_null(svc_registry_load(NULL, err, sizeof err));
  ck_assert_ptr_null(svc_registry_load("/nonexistent/registry", NULL, 0));
  svc_registry_destroy(&live);
}
END_TEST

/* ---- refusals ---- */

START_TEST(test_registry_missing_file) {
  for (size_t i = 0; i < N_FIXTURE; i++) {
    char want[64];
    snprintf(want, sizeof want, "%s: missing file", FIXTURE[i].name);
    ck_refused(FIXTURE[i].name, NULL, want);
  }
}
END_TEST

START_TEST(test_registry_csv_errors) {
  ck_refused("districts.csv", "code,title\nD01,和平区\n",
             "districts.csv:1: expected header 'code,name' got 'code,title'");
  ck_refused("keywords.csv", F_KEYWORDS "垃圾\xff,V_NOISE,1\n",
             "keywords.csv:4: invalid UTF-8 in field 1");
  ck_refused("streets.csv", F_STREETS "S03,东街\n", "streets.csv:4: expected 3 fields, got 2");
  ck_refused("calendar.csv", F_CALENDAR "2026-10-02,FESTIVAL\n",
             "calendar.csv:4: invalid kind 'FESTIVAL' (want HOLIDAY or WORKDAY)");
}
END_TEST

START_TEST(test_registry_unknown_column_values) {
  ck_refused("compounds.csv", F_COMPOUNDS "C03,光明小区,,S01,MANAGED,,,10\n",
             "compounds.csv:4: unknown management 'MANAGED' (want PROFESSIONAL, SELF, CUSTODIAL or NONE)");
  ck_refused("categories.csv", F_CATEGORIES "V_PETS,违规饲养动物,yes,0,\n",
             "categories.csv:5: counts must be 0 or 1, not 'yes'");
  ck_refused("categories.csv", F_CATEGORIES "V_PETS,违规饲养动物,0,2,\n",
             "categories.csv:5: urgent must be 0 or 1, not '2'");
  ck_refused("categories.csv", F_CATEGORIES "V_PETS,违规饲养动物,0,0,P0\n",
             "categories.csv:5: prohibition must be empty or P1..P9, not 'P0'");
  ck_refused("categories.csv", F_CATEGORIES "V_PETS,违规饲养动物,0,0,P10\n",
             "categories.csv:5: prohibition must be empty or P1..P9, not 'P10'");
  ck_refused("keywords.csv", F_KEYWORDS "扰民,V_NOISE,high\n",
             "keywords.csv:4: priority must be an integer, not 'high'");
  ck_refused("keywords.csv", F_KEYWORDS "扰民,V_NOISE,1.5\n",
             "keywords.csv:4: priority must be an integer, not '1.5'");
  ck_refused("keywords.csv", F_KEYWORDS "扰民,V_NOISE,\n",
             "keywords.csv:4: priority must be an integer, not ''");
  ck_refused("compounds.csv", F_COMPOUNDS "C03,光明小区,,S01,NONE,,,-1\n",
             "compounds.csv:4: households must be a non-negative integer, not '-1'");
  ck_refused("routing.csv", F_ROUTING "V_NOISE,2,GA,0,3\n",
             "routing.csv:4: accept_hours must be an integer from 1 to 8760, not '0'");
  ck_refused("districts.csv", F_DISTRICTS "D 03,新区\n",
             "districts.csv:4: code 'D 03' may hold only A-Z a-z 0-9 . - _");
  ck_refused("departments.csv", F_DEPARTMENTS "STREET,街道办\n",
             "departments.csv:4: code STREET is reserved for street offices");
}
END_TEST

START_TEST(test_registry_unknown_references) {
  ck_refused("streets.csv", F_STREETS "S03,东街,D09\n", "streets.csv:4: unknown district D09");
  ck_refused("compounds.csv", F_COMPOUNDS "C03,光明小区,,S09,NONE,,,10\n",
             "compounds.csv:4: unknown street S09");
  ck_refused("compounds.csv", F_COMPOUNDS "C03,光明小区,,S01,PROFESSIONAL,E09,李经理,10\n",
             "compounds.csv:4: unknown company E09");
  ck_refused("hotline_categories.csv", F_HOTLINE "WY99,PS_NOPE\n",
             "hotline_categories.csv:3: unknown category PS_NOPE");
  ck_refused("keywords.csv", F_KEYWORDS "扰民,V_NOPE,40\n", "keywords.csv:4: unknown category V_NOPE");
  ck_refused("routing.csv", F_ROUTING "V_NOPE,1,GA,24,5\n", "routing.csv:4: unknown category V_NOPE");
  ck_refused("routing.csv", F_ROUTING "V_NOISE,2,CGZF,24,5\n",
             "routing.csv:4: unknown unit CGZF (want a department code or STREET)");
}
END_TEST

START_TEST(test_registry_duplicates) {
  ck_refused("districts.csv", F_DISTRICTS "D01,和平新区\n",
             "districts.csv:4: duplicate code D01 (first on line 2)");
  ck_refused("streets.csv", F_STREETS "S02,新华二街道,D02\n",
             "streets.csv:4: duplicate code S02 (first on line 3)");
  ck_refused("companies.csv", F_COMPANIES "E01,另一物业\n",
             "companies.csv:3: duplicate code E01 (first on line 2)");
  ck_refused("departments.csv", F_DEPARTMENTS "GA,公安分局\n",
             "departments.csv:4: duplicate code GA (first on line 2)");
  ck_refused("categories.csv", F_CATEGORIES "V_NOISE,噪音,0,0,\n",
             "categories.csv:5: duplicate category V_NOISE (first on line 3)");
  ck_refused("compounds.csv", F_COMPOUNDS "C01,幸福里三期,,S01,NONE,,,10\n",
             "compounds.csv:4: duplicate code C01 (first on line 2)");
  ck_refused("hotline_categories.csv", F_HOTLINE "WY05,V_NOISE\n",
             "hotline_categories.csv:3: duplicate hotline_code WY05 (first on line 2)");
  /* Keywords are compared as matched: full-width and case folded. */
  ck_refused("keywords.csv",
             "keyword,category,priority\npm2.5,V_NOISE,1\n噪音,V_NOISE,2\nＰＭ２．５,PS_FEES,3\n",
             "keywords.csv:4: duplicate keyword pm2.5 (first on line 2)");
  ck_refused("routing.csv", F_ROUTING "V_NOISE,1,XF,2,2\n",
             "routing.csv:4: duplicate step 1 of V_NOISE (first on line 3)");
}
END_TEST

START_TEST(test_registry_company_and_manager) {
  ck_refused("compounds.csv", F_COMPOUNDS "C03,光明小区,,S01,SELF,E01,,10\n",
             "compounds.csv:4: company and manager must be empty unless PROFESSIONAL");
  ck_refused("compounds.csv", F_COMPOUNDS "C03,光明小区,,S01,NONE,,张三,10\n",
             "compounds.csv:4: company and manager must be empty unless PROFESSIONAL");
  ck_refused("compounds.csv", F_COMPOUNDS "C03,光明小区,,S01,PROFESSIONAL,,李经理,10\n",
             "compounds.csv:4: a PROFESSIONAL compound needs a company");
  ck_refused("compounds.csv", F_COMPOUNDS "C03,光明小区,,S01,PROFESSIONAL,E01,,10\n",
             "compounds.csv:4: a PROFESSIONAL compound needs a manager");
}
END_TEST

START_TEST(test_registry_empty_names) {
  ck_refused("districts.csv", F_DISTRICTS "D03,\n", "districts.csv:4: empty name");
  ck_refused("districts.csv", F_DISTRICTS ",新区\n", "districts.csv:4: empty code");
  ck_refused("compounds.csv", F_COMPOUNDS "C03,　 ,,S01,NONE,,,10\n", "compounds.csv:4: empty name");
  ck_refused("compounds.csv", F_COMPOUNDS "C03,光明小区,光明||光明新村,S01,NONE,,,10\n",
             "compounds.csv:4: empty alias in '光明||光明新村'");
  ck_refused("keywords.csv", F_KEYWORDS "\"\r\n\",V_NOISE,1\n", "keywords.csv:4: empty keyword");
  ck_refused("categories.csv", F_CATEGORIES "V_PETS,,0,0,\n", "categories.csv:5: empty name");
}
END_TEST

START_TEST(test_registry_categories_and_routing_whole) {
  ck_refused("categories.csv",
             "category,name,counts,urgent,prohibition\nPS_FEES,乱收费,1,0,P7\nV_NOISE,噪音扰民,0,0,\n",
             "categories.csv: no category OTHER (the fallback for manual triage)");
  ck_refused("routing.csv", "category,step,unit,accept_hours,resolve_workdays\nPS_FEES,1,STREET,24,10\n",
             "routing.csv: category V_NOISE has no routing steps");
  ck_refused("routing.csv", F_ROUTING "OTHER,1,GA,24,5\n",
             "routing.csv:4: category OTHER goes to manual triage and has no routing steps");
  ck_refused("routing.csv", F_ROUTING "V_NOISE,3,XF,2,2\n", "routing.csv:4: step 3 of V_NOISE without step 2");
  ck_refused("routing.csv",
             "category,step,unit,accept_hours,resolve_workdays\nPS_FEES,2,STREET,24,10\n"
             "V_NOISE,1,GA,12,3\n",
             "routing.csv:2: step 2 of PS_FEES without step 1");
}
END_TEST

/* ---- the matchers the registry builds (R-I3 keywords, R-I4 names) ---- */

START_TEST(test_R_I3_normalisation) {
  char out[64];
  const char in[] = "Ａｂ　Ｃ\r\n１２\xe2\x80\x8b-Ｚ\xef\xbd\x9e";

  ck_assert_uint_eq(svc_text_normalize(in, strlen(in), out), strlen("abc12-z~"));
  ck_assert_str_eq(out, "abc12-z~");
  ck_assert_uint_eq(svc_text_normalize("楼道 堆物", strlen("楼道 堆物"), out), 12);
  ck_assert_str_eq(out, "楼道堆物");
  /* Invalid UTF-8 is copied, never dropped or read past. */
  ck_assert_uint_eq(svc_text_normalize("a\xe6\xa5", 3, out), 3);
  ck_assert_int_eq(memcmp(out, "a\xe6\xa5", 4), 0);
}
END_TEST

struct counter { size_t n; size_t *per_id; const char *text; const char *const *pats; };

static int count_match(void *arg, uint32_t id, size_t start, size_t end) {
  struct counter *c = arg;

  ck_assert_uint_eq(end - start, strlen(c->pats[id]));
  ck_assert_int_eq(memcmp(c->text + start, c->pats[id], end - start), 0);
  c->n++;
  c->per_id[id]++;
  return 0;
}

static unsigned rnd(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return *s >> 16;
}

static int count_any(void *arg, uint32_t id, size_t start, size_t end) {
  (void)id;
  (void)start;
  (void)end;
  (*(size_t *)arg)++;
  return 0;
}

static size_t naive_count(const char *text, const char *pat) {
  size_t n = 0, lt = strlen(text), lp = strlen(pat);

  for (size_t i = 0; i + lp <= lt; i++) n += memcmp(text + i, pat, lp) == 0;
  return n;
}

START_TEST(test_R_I3_matcher_agrees_with_naive_search) {
  static const char *const pats[] = {"a", "ab", "bab", "abab", "b", "aab", "ab", "bbbb", "c"};
  const size_t np = sizeof pats / sizeof pats[0];
  char text[2001];
  size_t per_id[sizeof pats / sizeof pats[0]] = {0};
  struct counter c = {0, per_id, text, pats};
  struct svc_matcher *m = svc_matcher_new();
  unsigned seed = 7;

  for (size_t i = 0; i < 2000; i++) text[i] = "abbc"[rnd(&seed) & 3];
  text[2000] = '\0';
  for (size_t i = 0; i < np; i++)
    ck_assert_int_eq(svc_matcher_add(m, pats[i], strlen(pats[i]), (uint32_t)i), 0);
  ck_assert_int_eq(svc_matcher_scan(m, text, 2000, count_match, &c), -1); /* not built */
  ck_assert_int_eq(svc_matcher_add(m, "", 0, 99), -1);
  ck_assert_int_eq(svc_matcher_build(m), 0);
  ck_assert_int_eq(svc_matcher_add(m, "x", 1, 99), -1); /* frozen */
  ck_assert_int_eq(svc_matcher_scan(m, text, 2000, count_match, &c), 0);
  for (size_t i = 0; i < np; i++) ck_assert_uint_eq(per_id[i], naive_count(text, pats[i]));
  ck_assert_int_eq(svc_matcher_scan(m, "", 0, count_match, &c), 0);
  svc_matcher_destroy(&m);
  ck_assert_ptr_null(m);
  svc_matcher_destroy(&m);
}
END_TEST

static int stop_at_first(void *arg, uint32_t id, size_t start, size_t end) {
  (void)start;
  (void)end;
  *(uint32_t *)arg = id;
  return 42;
}

START_TEST(test_R_I3_matcher_callback_stops_scan) {
  struct svc_matcher *m = svc_matcher_new();
  const char *text = "楼道堆物堆物";
  uint32_t id = 0;

  ck_assert_int_eq(svc_matcher_add(m, "堆物", strlen("堆物"), 5), 0);
  ck_assert_int_eq(svc_matcher_build(m), 0);
  ck_assert_int_eq(svc_matcher_scan(m, text, strlen(text), stop_at_first, &id), 42);
  ck_assert_uint_eq(id, 5);
  svc_matcher_destroy(&m);
}
END_TEST

/* Ideograph k (0-39) of a test alphabet, as UTF-8. */
static size_t put_han(char *p, unsigned k) {
  unsigned c = 0x4e00 + k * 37;

  p[0] = (char)(0xe0 | (c >> 12));
  p[1] = (char)(0x80 | ((c >> 6) & 0x3f));
  p[2] = (char)(0x80 | (c & 0x3f));
  return 3;
}

#define N_PAT 5000

/* 5,000 distinct keywords of 2 and 3 ideographs (i written in base 40)
 * against a random 4,000-character text: every occurrence is reported. */
START_TEST(test_R_I3_many_keywords_every_occurrence) {
  static char kw[N_PAT][16];
  static const char *pats[N_PAT];
  static size_t per_id[N_PAT];
  char text[4000 * 3 + 1];
  size_t tl = 0, want = 0, nodes = 0, bytes = 0;
  unsigned seed = 99;
  struct counter c = {0, per_id, text, pats};
  struct svc_matcher *m = svc_matcher_new();

  for (unsigned i = 0; i < N_PAT; i++) {
    unsigned v = i < 1600 ? i : i - 1600, digits = i < 1600 ? 2 : 3;
    size_t len = 0;
    for (unsigned d = 0; d < digits; d++, v /= 40) len += put_han(kw[i] + len, v % 40);
    pats[i] = kw[i];
    ck_assert_int_eq(svc_matcher_add(m, kw[i], len, i), 0);
  }
  ck_assert_int_eq(svc_matcher_build(m), 0);
  for (int i = 0; i < 4000; i++) tl += put_han(text + tl, rnd(&seed) & 31);
  text[tl] = '\0';
  ck_assert_int_eq(svc_matcher_scan(m, text, tl, count_match, &c), 0);
  for (int i = 0; i < N_PAT; i++) {
    ck_assert_uint_eq(per_id[i], naive_count(text, kw[i]));
    want += per_id[i];
  }
  ck_assert_uint_eq(c.n, want);
  ck_assert_uint_gt(want, 4000);
  svc_matcher_stats(m, &nodes, &bytes);
  ck_assert_uint_gt(nodes, N_PAT);
  ck_assert_uint_lt(bytes, (size_t)8 << 20);
  svc_matcher_destroy(&m);
}
END_TEST

/* Binary patterns over a wide byte range exercise the nodes with many
 * children (their 256-entry rows) and NUL bytes. */
START_TEST(test_R_I3_matcher_wide_nodes_and_binary) {
  static unsigned char pat[600][3], text[20000];
  size_t len[600], n = 0;
  unsigned seed = 3;
  struct svc_matcher *m = svc_matcher_new();

  for (size_t i = 0; i < 600; i++) {
    len[i] = 1 + i % 3;
    for (size_t j = 0; j < len[i]; j++) pat[i][j] = (unsigned char)rnd(&seed);
    pat[i][0] &= 3; /* four first bytes: their nodes have many children */
    ck_assert_int_eq(svc_matcher_add(m, (const char *)pat[i], len[i], (uint32_t)i), 0);
  }
  for (size_t i = 0; i < sizeof text; i++) {
    text[i] = (unsigned char)rnd(&seed);
    if (i % 2 == 0) text[i] &= 3;
  }
  ck_assert_int_eq(svc_matcher_build(m), 0);
  ck_assert_int_eq(svc_matcher_scan(m, (const char *)text, sizeof text, count_any, &n), 0);
  for (size_t i = 0; i < 600; i++) {
    for (size_t k = 0; k + len[i] <= sizeof text; k++) n -= memcmp(text + k, pat[i], len[i]) == 0;
  }
  ck_assert_uint_eq(n, 0);
  svc_matcher_stats(m, &n, NULL);
  ck_assert_uint_gt(n, 256);
  svc_matcher_destroy(&m);
}
END_TEST

static Suite *registry_suite(void) {
  Suite *s = suite_create("svc_registry");
  TCase *tc = tcase_create("registry"), *mc = tcase_create("matcher");

  tcase_add_test(tc, test_registry_sample_loads);
  tcase_add_test(tc, test_registry_sample_categories_routing_keywords);
  tcase_add_test(tc, test_registry_sample_compounds_and_calendar);
  tcase_add_test(tc, test_registry_fixture_loads_and_lookups);
  tcase_add_test(tc, test_registry_failed_reload_keeps_live_registry);
  tcase_add_test(tc, test_registry_missing_file);
  tcase_add_test(tc, test_registry_csv_errors);
  tcase_add_test(tc, test_registry_unknown_column_values);
  tcase_add_test(tc, test_registry_unknown_references);
  tcase_add_test(tc, test_registry_duplicates);
  tcase_add_test(tc, test_registry_company_and_manager);
  tcase_add_test(tc, test_registry_empty_names);
  tcase_add_test(tc, test_registry_categories_and_routing_whole);
  suite_add_tcase(s, tc);
  tcase_add_test(mc, test_R_I3_normalisation);
  tcase_add_test(mc, test_R_I3_matcher_agrees_with_naive_search);
  tcase_add_test(mc, test_R_I3_matcher_callback_stops_scan);
  tcase_add_test(mc, test_R_I3_many_keywords_every_occurrence);
  tcase_add_test(mc, test_R_I3_matcher_wide_nodes_and_binary);
  tcase_set_timeout(mc, 60);
  suite_add_tcase(s, mc);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(registry_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
