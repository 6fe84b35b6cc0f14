/* Unit tests for the intake rules that read the registry or compare tickets:
 * R-I3, R-I4 (against a small registry written to a temporary directory, with
 * Chinese text edge cases: full-width characters, mixed scripts, keywords
 * split across lines), R-I5, and R-I6a's masked ticket text (which leaves
 * classification and compound matching as they are on the original). R-I1,
 * R-I2, R-I6 and R-I8 are in test_intake_checks.c; the matcher is tested in
 * test_svc_registry.c; the masking of a text itself in test_mask.c. */
#include <check.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "intake.h"
#include "svc_time.h"

/* ---- fixture registry ---- */

#define F_DISTRICTS "code,name\nD01,和平区\n"
#define F_STREETS "code,name,district\nS01,和平街道,D01\nS02,新华街道,D01\n"
#define F_COMPANIES "code,name\nE01,安居物业服务有限公司\n"
#define F_DEPARTMENTS "code,name\nGA,公安局\nXF,消防救援支队\nSCJG,市场监管局\nSTHJ,生态环境局\n"
#define F_CATEGORIES                                                                         \
  "category,name,counts,urgent,prohibition\nPS_SANITATION,环境卫生,1,0,P2\n"                 \
  "PS_FEES,乱收费,1,0,P7\nPS_ORDER,秩序维护,1,0,\nPS_FACILITY,设施设备维修,1,0,\n"          \
  "V_FIRE_LANE,占用消防通道,0,1,\nV_NOISE,噪音扰民,0,0,\nV_HAZMAT,易燃易爆,0,1,\n"          \
  "V_ELEVATOR,电梯安全隐患,0,1,\nV_DUST,扬尘污染,0,0,\nOTHER,无法分类,0,0,\n"
#define F_ROUTING                                                                            \
  "category,step,unit,accept_hours,resolve_workdays\nPS_SANITATION,1,STREET,24,5\n"          \
  "PS_FEES,1,SCJG,24,10\nPS_ORDER,1,STREET,24,5\nPS_FACILITY,1,STREET,24,5\n"               \
  "V_FIRE_LANE,1,XF,2,2\nV_NOISE,1,GA,12,3\nV_HAZMAT,1,XF,1,1\nV_ELEVATOR,1,SCJG,2,3\n"      \
  "V_DUST,1,STHJ,24,5\n"
#define F_COMPOUNDS                                                                          \
  "code,name,aliases,street,management,company,manager,households\n"                        \
  "C0001,幸福里,幸福里小区,S01,PROFESSIONAL,E01,王经理,860\n"                                \
  "C0002,幸福里二期,幸福二期,S01,PROFESSIONAL,E01,李经理,640\n"                              \
  "C0003,阳光花园,阳光苑,S01,SELF,,,300\n"                                                  \
  "C0004,阳光小区,阳光苑,S02,NONE,,,80\n"                                                   \
  "C0005,锦绣华庭,锦绣小区,S02,CUSTODIAL,,,400\n"                                           \
  "C0006,CBD公寓,,S02,NONE,,,120\n"
#define F_HOTLINE "hotline_code,category\nWY01,PS_SANITATION\nWY05,PS_FEES\n"
#define F_KEYWORDS                                                                           \
  "keyword,category,priority\n楼道堆物,V_FIRE_LANE,80\n垃圾,PS_SANITATION,50\n"             \
  "乱收费,PS_FEES,50\n煤气罐,V_HAZMAT,90\npm2.5,V_DUST,30\n停车,PS_ORDER,45\n"              \
  "停车费,PS_FEES,45\n电梯故障,V_ELEVATOR,70\nＬＥＤ灯,PS_FACILITY,40\n噪音,V_NOISE,40\n"   \
  "wifi信号,PS_FACILITY,35\n"
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

static char fixture_dir[64];

static void write_text(const char *dir, const char *name, const char *text) {
  char path[256];
  FILE *f;

  snprintf(path, sizeof path, "%s/%s", dir, name);
  f = fopen(path, "wb");
  ck_assert_ptr_nonnull(f);
  ck_assert_int_eq(fputs(text, f) >= 0, 1);
  ck_assert_int_eq(fclose(f), 0);
}

/* Writes the fixture into a new temporary directory (its path into dir),
 * with file `name` replaced by text (name NULL: no replacement). */
static void write_fixture(char *dir, size_t n, const char *name, const char *text) {
  snprintf(dir, n, "/tmp/test_intake_rules_XXXXXX");
  ck_assert_ptr_nonnull(mkdtemp(dir));
  for (size_t i = 0; i < N_FIXTURE; i++) {
    int replaced = name && strcmp(name, FIXTURE[i].name) == 0;
    write_text(dir, FIXTURE[i].name, replaced ? text : FIXTURE[i].text);
  }
}

static void remove_dir(const char *dir) {
  char path[256];

  for (size_t i = 0; i < N_FIXTURE; i++) {
    snprintf(path, sizeof path, "%s/%s", dir, FIXTURE[i].name);
    unlink(path);
  }
  rmdir(dir);
}

static void setup_dir(void) { write_fixture(fixture_dir, sizeof fixture_dir, NULL, NULL); }
static void teardown_dir(void) { remove_dir(fixture_dir); }

static struct svc_registry *load(const char *dir) {
  char err[512];
  struct svc_registry *r = svc_registry_load(dir, err, sizeof err);

  ck_assert_msg(r != NULL, "registry refused: %s", err);
  return r;
}

/* The fixture registry, loaded before and freed after each R-I3/R-I4 test. */
static struct svc_registry *reg;
static void load_reg(void) { reg = load(fixture_dir); }
static void free_reg(void) { svc_registry_destroy(&reg); }

/* ---- R-I3 helpers ---- */

/* Classifies content with hotline code; checks category and how. */
static void ck_class(const char *code, const char *content,
                     const char *want_cat, const char *want_how) {
  struct intake_category_result res;

  ck_assert_int_eq(intake_classify(reg, code, content, strlen(content), &res), 0);
  ck_assert_ptr_nonnull(res.category);
  ck_assert_msg(strcmp(res.category->code, want_cat) == 0, "'%s': got %s, want %s", content,
                res.category->code, want_cat);
  ck_assert_str_eq(res.how, want_how);
  ck_assert_int_eq(res.keyword != NULL, strcmp(want_how, "keyword") == 0);
}

START_TEST(test_R_I3_hotline_mapping_wins_over_keyword) {
  ck_class("WY01", "楼下有人存放煤气罐", "PS_SANITATION", "hotline");
  ck_class("WY05", "你好", "PS_FEES", "hotline");
}
END_TEST

START_TEST(test_R_I3_unmapped_code_falls_back_to_keywords) {
  ck_class("ZZ99", "楼下有人存放煤气罐", "V_HAZMAT", "keyword");
  ck_class("", "楼下有人存放煤气罐", "V_HAZMAT", "keyword");
  ck_class(NULL, "楼下有人存放煤气罐", "V_HAZMAT", "keyword");
}
END_TEST

START_TEST(test_R_I3_priority_beats_position) {
  /* 垃圾 (50) comes first, 楼道堆物 (80) wins. */
  ck_class(NULL, "门口垃圾很多，楼道堆物严重", "V_FIRE_LANE", "keyword");
}
END_TEST

START_TEST(test_R_I3_earliest_position_breaks_priority_tie) {
  /* 乱收费 and 垃圾 both have priority 50. */
  ck_class(NULL, "物业乱收费，门口垃圾没人管", "PS_FEES", "keyword");
  ck_class(NULL, "门口垃圾没人管，物业乱收费", "PS_SANITATION", "keyword");
}
END_TEST

START_TEST(test_R_I3_table_order_breaks_position_tie) {
  struct intake_category_result res;

  /* 停车 (row 6) and 停车费 (row 7) both start at 0 with priority 45. */
  ck_class(NULL, "停车费太高了", "PS_ORDER", "keyword");
  ck_assert_int_eq(intake_classify(reg, NULL, "停车费太高了", 18, &res), 0);
  ck_assert_str_eq(res.keyword->keyword, "停车");
}
END_TEST

START_TEST(test_R_I3_keyword_split_across_lines) {
  ck_class(NULL, "楼道\n堆物很多", "V_FIRE_LANE", "keyword");
  ck_class(NULL, "楼道\r\n　堆物很多", "V_FIRE_LANE", "keyword");
  ck_class(NULL, "楼 道\t堆\u00a0物", "V_FIRE_LANE", "keyword");
  ck_class(NULL, "电梯\r\n故障三天了", "V_ELEVATOR", "keyword");
}
END_TEST

START_TEST(test_R_I3_full_width_characters) {
  /* Full-width text against an ASCII keyword, and the other way round. */
  ck_class(NULL, "工地扬尘，ＰＭ２．５超标", "V_DUST", "keyword");
  ck_class(NULL, "工地扬尘，PM2.5超标", "V_DUST", "keyword");
  ck_class(NULL, "楼道led灯坏了", "PS_FACILITY", "keyword");
  ck_class(NULL, "楼道ＬＥＤ灯坏了", "PS_FACILITY", "keyword");
  ck_class(NULL, "楼道ｌｅｄ灯坏了", "PS_FACILITY", "keyword");
}
END_TEST

START_TEST(test_R_I3_mixed_scripts) {
  ck_class(NULL, "小区WiFi信号很差", "PS_FACILITY", "keyword");
  ck_class(NULL, "小区ＷｉＦｉ 信号很差", "PS_FACILITY", "keyword");
  ck_class(NULL, "noise噪音problem", "V_NOISE", "keyword");
  ck_class(NULL, "WiFi密码是多少", "OTHER", "none");
}
END_TEST

START_TEST(test_R_I3_no_match_is_other) {
  struct intake_category_result res;

  ck_class(NULL, "请问社保卡怎么办理", "OTHER", "none");
  ck_class("ZZ99", "请问社保卡怎么办理", "OTHER", "none");
  ck_assert_int_eq(intake_classify(reg, NULL, "", 0, &res), 0);
  ck_assert_ptr_eq(res.category, reg->other);
}
END_TEST

/* Appends ideograph k (0-39) of the test alphabet as UTF-8. */
static size_t put_han(char *p, unsigned k) {
  unsigned c = 0x4e00 + k * 37; /* 40 distinct CJK ideographs */

  p[0] = (char)(0xe0 | (c >> 12));
  p[1] = (char)(0x80 | ((c >> 6) & 0x3f));
  p[2] = (char)(0x80 | (c & 0x3f));
  return 3;
}

static unsigned rnd(unsigned *s) {
  *s = *s * 1103515245u + 12345u;
  return (*s >> 16) & 0x7fff;
}

#define N_KW 5000
#define TEXT_CHARS 4000

/* Writes N_KW distinct random keywords (2-4 ideographs) into kw. */
static void make_keywords(char (*kw)[16], int *prio, unsigned *seed) {
  for (int i = 0; i < N_KW; i++) {
    int dup;
    do {
      size_t len = 0, chars = 2 + rnd(seed) % 3;
      for (size_t j = 0; j < chars; j++) len += put_han(kw[i] + len, rnd(seed) % 40);
      kw[i][len] = '\0';
      dup = 0;
      for (int j = 0; j < i && !dup; j++) dup = strcmp(kw[i], kw[j]) == 0;
    } while (dup);
    prio[i] = (int)(rnd(seed) % 10);
  }
}

START_TEST(test_R_I3_many_keywords_long_text) {
  static char kw[N_KW][16];
  static int prio[N_KW];
  static const char *const cats[] = {"PS_SANITATION", "PS_FEES", "V_NOISE", "V_DUST"};
  char text[TEXT_CHARS * 3 + 1], dir[64];
  size_t tl = 0, best = N_KW, best_pos = 0;
  unsigned seed = 2026;
  struct intake_category_result res;
  struct svc_registry *r;
  char *csv = NULL;
  size_t csv_len = 0;
  FILE *f = open_memstream(&csv, &csv_len);

  make_keywords(kw, prio, &seed);
  fputs("keyword,category,priority\n", f);
  for (int i = 0; i < N_KW; i++) fprintf(f, "%s,%s,%d\n", kw[i], cats[i % 4], prio[i]);
  fclose(f);
  write_fixture(dir, sizeof dir, "keywords.csv", csv);
  free(csv);
  r = load(dir);
  ck_assert_uint_eq(r->n_keywords, N_KW);
  for (int i = 0; i < TEXT_CHARS; i++) tl += put_han(text + tl, rnd(&seed) % 40);
  text[tl] = '\0';
  /* The expected winner by brute force: priority, first occurrence, row. */
  for (int i = 0; i < N_KW; i++) {
    const char *p = strstr(text, kw[i]);
    size_t pos = p ? (size_t)(p - text) : 0;
    if (!p) continue;
    if (best == N_KW || prio[i] > prio[best] || (prio[i] == prio[best] && pos < best_pos)) {
      best = (size_t)i;
      best_pos = pos;
    }
  }
  ck_assert_uint_ne(best, N_KW);
  ck_assert_int_eq(intake_classify(r, NULL, text, tl, &res), 0);
  ck_assert_str_eq(res.how, "keyword");
  ck_assert_ptr_eq(res.keyword, &r->keywords[best]);
  ck_assert_str_eq(res.category->code, cats[best % 4]);
  svc_registry_destroy(&r);
  remove_dir(dir);
}
END_TEST

/* ---- R-I4 ---- */

static void ck_compound(const char *code, const char *address,
                        const char *want, const char *how, const char *reason) {
  struct intake_compound_result res;

  ck_assert_int_eq(intake_match_compound(reg, code, address, address ? strlen(address) : 0, &res), 0);
  if (want) {
    ck_assert_msg(res.compound != NULL, "'%s': no compound (%s)", address, res.reason);
    ck_assert_str_eq(res.compound->code, want);
    ck_assert_str_eq(res.reason, "");
  } else {
    ck_assert_msg(res.compound == NULL, "'%s': got %s", address, res.compound->code);
    ck_assert_str_eq(res.reason, reason);
  }
  ck_assert_str_eq(res.how, how);
}

START_TEST(test_R_I4_valid_code_wins) {
  ck_compound("C0005", "幸福里二期3栋", "C0005", "code", NULL);
  ck_compound("C0005", NULL, "C0005", "code", NULL);
  /* An unknown code does not win: the address decides. */
  ck_compound("C9999", "幸福里二期3栋", "C0002", "address", NULL);
}
END_TEST

START_TEST(test_R_I4_longest_name_or_alias_wins) {
  ck_compound("", "和平街道幸福里二期3栋2单元", "C0002", "address", NULL);
  ck_compound(NULL, "幸福里5栋", "C0001", "address", NULL);
  ck_compound(NULL, "幸福里小区5栋", "C0001", "address", NULL);
  ck_compound(NULL, "幸福二期门口", "C0002", "address", NULL);
  ck_compound(NULL, "阳光花园3号楼", "C0003", "address", NULL);
}
END_TEST

START_TEST(test_R_I4_address_is_normalised) {
  ck_compound(NULL, "幸福里 二期\n3栋", "C0002", "address", NULL);
  ck_compound(NULL, "ｃｂｄ 公寓A座", "C0006", "address", NULL);
  ck_compound(NULL, "cbd公寓", "C0006", "address", NULL);
}
END_TEST

START_TEST(test_R_I4_tie_between_compounds_is_ambiguous) {
  /* The alias 阳光苑 belongs to two compounds. */
  ck_compound(NULL, "阳光苑5号楼", NULL, "ambiguous", "ambiguous: C0003 C0004");
  /* Two different names of four characters each. */
  ck_compound(NULL, "锦绣华庭对面的阳光花园", NULL, "ambiguous", "ambiguous: C0003 C0005");
}
END_TEST

START_TEST(test_R_I4_same_compound_twice_is_not_a_tie) {
  ck_compound(NULL, "锦绣华庭（锦绣小区）5栋", "C0005", "address", NULL);
  ck_compound(NULL, "阳光花园，就是阳光花园", "C0003", "address", NULL);
}
END_TEST

START_TEST(test_R_I4_no_name_in_address) {
  ck_compound(NULL, "人民路100号", NULL, "none", "no compound name in address");
  ck_compound("", "", NULL, "none", "no compound name in address");
  ck_compound(NULL, NULL, NULL, "none", "no compound name in address");
  ck_compound("C9999", "人民路100号", NULL, "none",
              "unknown compound code; no compound name in address");
}
END_TEST

/* ---- R-I5 ---- */

#define HOUR_US (INT64_C(3600) * 1000000)
#define T0 INT64_C(1790000000000000) /* 2026-09-21T22:13:20+08:00 */

static struct intake_repeat_facts fact(const char *no, int64_t at, enum intake_request_type t) {
  return (struct intake_repeat_facts){no, at, t, "p1", "C0001", "PS_SANITATION", 1, 0, 0};
}

/* A new COMPLAINT at T0, and an earlier dispatched COMPLAINT `ago` before it. */
#define NEW_T() fact("T9", T0, INTAKE_REQ_COMPLAINT)
#define EARLIER(ago) fact("T1", T0 - (ago), INTAKE_REQ_COMPLAINT)

/* 1 if t is found to repeat e (R-I5). */
static int repeats(struct intake_repeat_facts t, struct intake_repeat_facts e) {
  const struct intake_repeat_facts *r = intake_find_repeat(&t, &e, 1);

  ck_assert(r == NULL || r == &e);
  return r != NULL;
}

START_TEST(test_R_I5_within_7_days_is_repeat) {
  struct intake_repeat_facts t = NEW_T(), e = EARLIER(3 * INTAKE_DAY_US);

  ck_assert(repeats(t, e));
  e.type = t.type = INTAKE_REQ_REPORT;
  ck_assert(repeats(t, e));
  e.received_us = T0; /* the same second */
  ck_assert(repeats(t, e));
}
END_TEST

START_TEST(test_R_I5_boundary_exactly_7_days) {
  struct intake_repeat_facts e = EARLIER(7 * INTAKE_DAY_US);

  ck_assert(repeats(NEW_T(), e));
  e.received_us -= 1;
  ck_assert(!repeats(NEW_T(), e));
  e.received_us = T0 + 1; /* after the new ticket */
  ck_assert(!repeats(NEW_T(), e));
}
END_TEST

START_TEST(test_R_I5_closed_referral_is_not_repeated) {
  struct intake_repeat_facts e = EARLIER(HOUR_US);

  e.referral_closed = 1;
  ck_assert(!repeats(NEW_T(), e));
}
END_TEST

START_TEST(test_R_I5_earlier_repeat_or_undispatched_is_not_a_target) {
  struct intake_repeat_facts e = EARLIER(HOUR_US);

  e.is_repeat = 1;
  ck_assert(!repeats(NEW_T(), e));
  e.is_repeat = 0;
  e.dispatched = 0; /* still in triage */
  ck_assert(!repeats(NEW_T(), e));
}
END_TEST

START_TEST(test_R_I5_earlier_consult_or_help_is_not_a_target) {
  struct intake_repeat_facts e = EARLIER(HOUR_US);

  e.type = INTAKE_REQ_CONSULT;
  e.dispatched = 0;
  ck_assert(!repeats(NEW_T(), e));
  e.type = INTAKE_REQ_HELP; /* dispatched but not counted */
  e.dispatched = 1;
  ck_assert(!repeats(NEW_T(), e));
}
END_TEST

START_TEST(test_R_I5_new_ticket_must_be_complaint_or_report) {
  struct intake_repeat_facts t = NEW_T();

  t.type = INTAKE_REQ_HELP;
  ck_assert(!repeats(t, EARLIER(HOUR_US)));
  t.type = INTAKE_REQ_SUGGEST;
  ck_assert(!repeats(t, EARLIER(HOUR_US)));
  t.type = INTAKE_REQ_REPORT;
  ck_assert(repeats(t, EARLIER(HOUR_US)));
}
END_TEST

START_TEST(test_R_I5_no_phone_or_unknown_compound_category_not_checked) {
  struct intake_repeat_facts t = NEW_T(), e = EARLIER(HOUR_US);

  t.pseudonym = e.pseudonym = "";
  ck_assert(!repeats(t, e));
  t = NEW_T();
  t.pseudonym = NULL;
  ck_assert(!repeats(t, EARLIER(HOUR_US)));
  t = NEW_T();
  t.compound = "";
  ck_assert(!repeats(t, EARLIER(HOUR_US)));
  t = NEW_T();
  t.category = e.category = "OTHER";
  e.pseudonym = "p1";
  ck_assert(!repeats(t, e));
}
END_TEST

START_TEST(test_R_I5_same_caller_compound_and_category_required) {
  struct intake_repeat_facts e = EARLIER(HOUR_US);

  e.pseudonym = "p2";
  ck_assert(!repeats(NEW_T(), e));
  e = EARLIER(HOUR_US);
  e.compound = "C0002";
  ck_assert(!repeats(NEW_T(), e));
  e = EARLIER(HOUR_US);
  e.category = "PS_FEES";
  ck_assert(!repeats(NEW_T(), e));
  e = EARLIER(HOUR_US);
  e.ticket_no = "T9"; /* the new ticket itself */
  ck_assert(!repeats(NEW_T(), e));
}
END_TEST

START_TEST(test_R_I5_most_recent_of_several) {
  struct intake_repeat_facts t = NEW_T();
  struct intake_repeat_facts e[] = {
    fact("T1", T0 - 6 * INTAKE_DAY_US, INTAKE_REQ_COMPLAINT),
    fact("T3", T0 - 1 * INTAKE_DAY_US, INTAKE_REQ_REPORT),
    fact("T2", T0 - 2 * INTAKE_DAY_US, INTAKE_REQ_COMPLAINT),
    fact("T4", T0 - HOUR_US, INTAKE_REQ_COMPLAINT),
  };

  ck_assert_ptr_eq(intake_find_repeat(&t, e, 4), &e[3]);
  e[3].referral_closed = 1; /* the most recent is closed: the next one */
  ck_assert_ptr_eq(intake_find_repeat(&t, e, 4), &e[1]);
  e[2].received_us = e[1].received_us; /* a tie in time: the greater ticket_no */
  ck_assert_ptr_eq(intake_find_repeat(&t, e, 4), &e[1]);
  ck_assert_ptr_null(intake_find_repeat(&t, e, 0));
  ck_assert_ptr_null(intake_find_repeat(NULL, e, 4));
}
END_TEST

/* ---- R-I6a: the ticket's public text ---- */

START_TEST(test_R_I6a_mask_ticket) {
  struct intake_public_text p;

  ck_assert_int_eq(intake_mask_ticket("楼上噪音扰民，请回电13911112222", "幸福里小区3栋", &p), 0);
  ck_assert_str_eq(p.content, "楼上噪音扰民，请回电139****2222");
  ck_assert_str_eq(p.address, "幸福里小区3栋");
  ck_assert_int_eq(p.content_masked, 1);
  ck_assert_int_eq(p.address_masked, 0);
  intake_public_text_free(&p);
  ck_assert_ptr_null(p.content);
  ck_assert_int_eq(intake_mask_ticket(NULL, "幸福里3栋 0539-8123456", &p), 0);
  ck_assert_str_eq(p.content, "");
  ck_assert_str_eq(p.address, "幸福里3栋 *******3456");
  ck_assert_int_eq(p.content_masked, 0);
  ck_assert_int_eq(p.address_masked, 1);
  intake_public_text_free(&p);
  intake_public_text_free(&p); /* twice is harmless */
  intake_public_text_free(NULL);
}
END_TEST

/* Category and compound of the original text equal those of the masked
 * text for what the rule masks; intake decides on the original all the same
 * (masking runs after R-I3 and R-I4), which this pins down for the cases
 * where a number sits next to a keyword or a name. */
START_TEST(test_R_I6a_classify_and_match_on_the_original) {
  static const char *const contents[] = {
    "噪音扰民，请回电13911112222", "13911112222噪音", "电梯故障１３９１２３４５６７８困人",
    "乱收费6222021234567890", "楼道堆物 0539-8123456",
  };
  static const char *const addresses[] = {
    "幸福里小区3栋 13911112222", "13911112222幸福里二期", "CBD公寓0539-8123456",
    "锦绣华庭110105199001011234",
  };
  for (size_t i = 0; i < sizeof contents / sizeof contents[0]; i++) {
    struct intake_public_text p;
    struct intake_category_result a, b;
    ck_assert_int_eq(intake_classify(reg, NULL, contents[i], strlen(contents[i]), &a), 0);
    ck_assert_int_eq(intake_mask_ticket(contents[i], "", &p), 0);
    ck_assert_int_eq(p.content_masked, 1);
    ck_assert_int_eq(intake_classify(reg, NULL, p.content, strlen(p.content), &b), 0);
    ck_assert_msg(a.category == b.category && a.category != reg->other, "%s", contents[i]);
    intake_public_text_free(&p);
  }
  for (size_t i = 0; i < sizeof addresses / sizeof addresses[0]; i++) {
    struct intake_public_text p;
    struct intake_compound_result a, b;
    ck_assert_int_eq(intake_match_compound(reg, NULL, addresses[i], strlen(addresses[i]), &a), 0);
    ck_assert_int_eq(intake_mask_ticket("", addresses[i], &p), 0);
    ck_assert_int_eq(p.address_masked, 1);
    ck_assert_int_eq(intake_match_compound(reg, NULL, p.address, strlen(p.address), &b), 0);
    ck_assert_msg(a.compound == b.compound && a.compound, "%s", addresses[i]);
    intake_public_text_free(&p);
  }
}
END_TEST

static void add_case(Suite *s, const char *name, int fixture, const TTest *const *tests) {
  TCase *tc = tcase_create(name);

  if (fixture) {
    tcase_add_unchecked_fixture(tc, setup_dir, teardown_dir);
    tcase_add_checked_fixture(tc, load_reg, free_reg);
  }
  tcase_set_timeout(tc, 60);
  for (; *tests; tests++) tcase_add_test(tc, *tests);
  suite_add_tcase(s, tc);
}

static Suite *rules_suite(void) {
  Suite *s = suite_create("intake_rules");
  const TTest *r3[] = {test_R_I3_hotline_mapping_wins_over_keyword,
                       test_R_I3_unmapped_code_falls_back_to_keywords,
                       test_R_I3_priority_beats_position,
                       test_R_I3_earliest_position_breaks_priority_tie,
                       test_R_I3_table_order_breaks_position_tie,
                       test_R_I3_keyword_split_across_lines,
                       test_R_I3_full_width_characters,
                       test_R_I3_mixed_scripts,
                       test_R_I3_no_match_is_other,
                       test_R_I3_many_keywords_long_text, NULL};
  const TTest *r4[] = {test_R_I4_valid_code_wins,
                       test_R_I4_longest_name_or_alias_wins,
                       test_R_I4_address_is_normalised,
                       test_R_I4_tie_between_compounds_is_ambiguous,
                       test_R_I4_same_compound_twice_is_not_a_tie,
                       test_R_I4_no_name_in_address, NULL};
  const TTest *r5[] = {test_R_I5_within_7_days_is_repeat,
                       test_R_I5_boundary_exactly_7_days,
                       test_R_I5_closed_referral_is_not_repeated,
                       test_R_I5_earlier_repeat_or_undispatched_is_not_a_target,
                       test_R_I5_earlier_consult_or_help_is_not_a_target,
                       test_R_I5_new_ticket_must_be_complaint_or_report,
                       test_R_I5_no_phone_or_unknown_compound_category_not_checked,
                       test_R_I5_same_caller_compound_and_category_required,
                       test_R_I5_most_recent_of_several, NULL};

  add_case(s, "R-I3", 1, r3);
  add_case(s, "R-I4", 1, r4);
  const TTest *r6a[] = {test_R_I6a_mask_ticket, NULL};
  const TTest *r6a_reg[] = {test_R_I6a_classify_and_match_on_the_original, NULL};

  add_case(s, "R-I5", 0, r5);
  add_case(s, "R-I6a", 0, r6a);
  add_case(s, "R-I6a registry", 1, r6a_reg);
  return s;
}

int main(void) {
  SRunner *sr = srunner_create(rules_suite());
  int failed;

  srunner_run_all(sr, CK_NORMAL);
  failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
