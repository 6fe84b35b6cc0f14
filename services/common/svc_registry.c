/* Loads a registry directory (docs/rules.md §1, registry CSVs of docs/formats.md) into a fresh
 * struct svc_registry: checks every column value, code reference and
 * duplicate, refusing a broken registry with "path:line: reason", and builds
 * the lookup tables and the matchers for keywords (R-I3) and compound names
 * and aliases (R-I4). A live registry is never touched (SIGHUP reload). */
#include "svc_registry.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc_csv.h"

#define CODE_MAX 64
#define ARENA_CHUNK ((size_t)64 << 10)

struct svc_reg_arena {
  struct svc_reg_arena *next;
  size_t used, cap;
  char data[];
};

struct loader {
  struct svc_registry *r;
  char path[4096];
  size_t line;
  int oom;
  char *err;
  size_t errlen;
};

/* The key and line every keyed record starts with. */
struct keyhead { const char *code; size_t line; };
#define KEYED(T) \
  _Static_assert(offsetof(struct T, line) == offsetof(struct keyhead, line), #T " layout")
KEYED(svc_district);
KEYED(svc_street);
KEYED(svc_company);
KEYED(svc_department);
KEYED(svc_category);
KEYED(svc_compound);
KEYED(svc_hotline_map);
KEYED(svc_keyword);

/* Records "path:line: reason" for the current record; returns -1. */
__attribute__((format(printf, 2, 3)))
static int bad(struct loader *L, const char *fmt, ...) {
  char reason[512];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  snprintf(L->err, L->errlen, "%s:%zu: %s", L->path, L->line, reason);
  return -1;
}

/* Records "path: reason" for a problem of a whole file; returns -1. */
__attribute__((format(printf, 3, 4)))
static int bad_file(struct loader *L, const char *file, const char *fmt, ...) {
  char reason[512];
  va_list ap;

  va_start(ap, fmt);
  vsnprintf(reason, sizeof reason, fmt, ap);
  va_end(ap);
  snprintf(L->err, L->errlen, "%s/%s: %s", L->r->dir, file, reason);
  return -1;
}

/* ---- memory: an arena for strings, growing arrays for records ---- */

static void *arena_alloc(struct loader *L, size_t n) {
  struct svc_reg_arena *a = L->r->arena;
  void *p;

  n = (n + 7) & ~(size_t)7;
  if (!a || a->cap - a->used < n) {
    size_t cap = n > ARENA_CHUNK ? n : ARENA_CHUNK;
    a = malloc(sizeof *a + cap);
    if (!a) {
      L->oom = 1;
      return NULL;
    }
    a->next = L->r->arena;
    a->used = 0;
    a->cap = cap;
    L->r->arena = a;
  }
  p = a->data + a->used;
  a->used += n;
  return p;
}

/* A registry-owned copy of s; "" (and L->oom set) when out of memory. */
static const char *save(struct loader *L, const char *s) {
  size_t n = strlen(s) + 1;
  char *p = arena_alloc(L, n);

  if (!p) return "";
  memcpy(p, s, n);
  return p;
}

/* Makes room for record n of size bytes in base; returns the (new) base. */
static void *grow(struct loader *L, void *base, size_t n, size_t size) {
  void *nb;

  if (n != 0 && (n < 16 || (n & (n - 1)) != 0)) return base; /* room left */
  nb = realloc(base, (n ? n * 2 : 16) * size);
  if (!nb) bad(L, "out of memory");
  return nb;
}

/* Appends a zeroed record to the array arr of n records; NULL when out of memory. */
#define NEW_REC(L, arr, n)                                          \
  __extension__({                                                   \
    void *nb_ = grow((L), (arr), (n), sizeof *(arr));               \
    if (nb_) (arr) = nb_;                                           \
    if (nb_) memset(&(arr)[(n)], 0, sizeof *(arr));                 \
    nb_ ? &(arr)[(n)++] : NULL;                                     \
  })

/* The normalised form of s (as matched, R-I3/R-I4) in the arena. */
static const char *save_norm(struct loader *L, const char *s) {
  size_t n = strlen(s);
  char *p = arena_alloc(L, n + 1);

  if (!p) return "";
  svc_text_normalize(s, n, p);
  return p;
}

/* ---- sorted tables ---- */

static struct keyhead head_of(const void *rec) {
  struct keyhead h;

  memcpy(&h, rec, sizeof h);
  return h;
}

static int cmp_head(const void *a, const void *b) {
  struct keyhead x = head_of(a), y = head_of(b);
  int c = strcmp(x.code, y.code);

  return c ? c : (x.line > y.line) - (x.line < y.line);
}

/* Sorts a keyed table by code; refuses a duplicate at its later line. */
static int sort_unique(struct loader *L, void *base, size_t n, size_t size, const char *what) {
  qsort(base, n, size, cmp_head);
  for (size_t i = 1; i < n; i++) {
    struct keyhead prev = head_of((char *)base + (i - 1) * size);
    struct keyhead h = head_of((char *)base + i * size);
    if (strcmp(prev.code, h.code) == 0) {
      L->line = h.line;
      return bad(L, "duplicate %s %.64s (first on line %zu)", what, h.code, prev.line);
    }
  }
  return 0;
}

/* The record with this code in a table sorted by code, or NULL. */
static const void *find(const void *base, size_t n, size_t size, const char *code) {
  size_t lo = 0, hi = n;

  if (!code) return NULL;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    const char *rec = (const char *)base + mid * size;
    int c = strcmp(head_of(rec).code, code);
    if (c == 0) return rec;
    if (c < 0) lo = mid + 1;
    else hi = mid;
  }
  return NULL;
}

#define FIND(r, table, code) find((r)->table, (r)->n_##table, sizeof *(r)->table, (code))

/* ---- column checks ---- */

static int check_code(struct loader *L, const char *what, const char *s) {
  size_t n = strlen(s);

  if (n == 0) return bad(L, "empty %s", what);
  if (n > CODE_MAX) return bad(L, "%s longer than %d characters", what, CODE_MAX);
  for (const char *p = s; *p; p++) {
    char c = *p;
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_' || c == '.'))
      return bad(L, "%s '%.64s' may hold only A-Z a-z 0-9 . - _", what, s);
  }
  return 0;
}

/* 1 if s has nothing but white space (as normalisation sees it). */
static int blank(struct loader *L, const char *s) {
  return *save_norm(L, s) == '\0' && !L->oom; /* out of memory is reported apart */
}

static int check_name(struct loader *L, const char *what, const char *s) {
  return blank(L, s) ? bad(L, "empty %s", what) : 0;
}

/* Parses a decimal integer in [lo, hi] with nothing around it; 0 or -1. */
static int parse_int(const char *s, long long lo, long long hi, long long *v) {
  char *end;
  long long x;

  if (!((*s >= '0' && *s <= '9') || (*s == '-' && s[1] >= '0' && s[1] <= '9'))) return -1;
  errno = 0;
  x = strtoll(s, &end, 10);
  if (errno != 0 || *end != '\0' || x < lo || x > hi) return -1;
  *v = x;
  return 0;
}

static int parse_flag(struct loader *L, const char *what, const char *s, int *v) {
  if (strcmp(s, "0") != 0 && strcmp(s, "1") != 0)
    return bad(L, "%s must be 0 or 1, not '%.32s'", what, s);
  *v = s[0] == '1';
  return 0;
}

static int parse_positive(struct loader *L, const char *what, const char *s, int max, int *v) {
  long long x;

  if (parse_int(s, 1, max, &x) != 0)
    return bad(L, "%s must be an integer from 1 to %d, not '%.32s'", what, max, s);
  *v = (int)x;
  return 0;
}

static const struct svc_category *known_category(struct loader *L, const char *code) {
  const struct svc_category *c = FIND(L->r, categories, code);

  if (!c) bad(L, "unknown category %.64s", code);
  return c;
}

/* ---- one handler per file: checks a record and appends it ---- */

static int row_district(struct loader *L, char **f) {
  struct svc_registry *r = L->r;
  struct svc_district *d;

  if (check_code(L, "code", f[0]) != 0 || check_name(L, "name", f[1]) != 0) return -1;
  if (!(d = NEW_REC(L, r->districts, r->n_districts))) return -1;
  *d = (struct svc_district){save(L, f[0]), L->line, save(L, f[1])};
  return 0;
}

static int row_street(struct loader *L, char **f) {
  struct svc_registry *r = L->r;
  struct svc_street *s;

  if (check_code(L, "code", f[0]) != 0 || check_name(L, "name", f[1]) != 0) return -1;
  if (!FIND(r, districts, f[2])) return bad(L, "unknown district %.64s", f[2]);
  if (!(s = NEW_REC(L, r->streets, r->n_streets))) return -1;
  *s = (struct svc_street){save(L, f[0]), L->line, save(L, f[1]), save(L, f[2])};
  return 0;
}

static int row_company(struct loader *L, char **f) {
  struct svc_registry *r = L->r;
  struct svc_company *c;

  if (check_code(L, "code", f[0]) != 0 || check_name(L, "name", f[1]) != 0) return -1;
  if (!(c = NEW_REC(L, r->companies, r->n_companies))) return -1;
  *c = (struct svc_company){save(L, f[0]), L->line, save(L, f[1])};
  return 0;
}

static int row_department(struct loader *L, char **f) {
  struct svc_registry *r = L->r;
  struct svc_department *d;

  if (check_code(L, "code", f[0]) != 0 || check_name(L, "name", f[1]) != 0) return -1;
  if (strcmp(f[0], "STREET") == 0) return bad(L, "code STREET is reserved for street offices");
  if (!(d = NEW_REC(L, r->departments, r->n_departments))) return -1;
  *d = (struct svc_department){save(L, f[0]), L->line, save(L, f[1])};
  return 0;
}

static int row_category(struct loader *L, char **f) {
  struct svc_registry *r = L->r;
  struct svc_category *c;
  const char *p = f[4];
  int counts = 0, urgent = 0;

  if (check_code(L, "category", f[0]) != 0 || check_name(L, "name", f[1]) != 0 ||
      parse_flag(L, "counts", f[2], &counts) != 0 || parse_flag(L, "urgent", f[3], &urgent) != 0)
    return -1;
  if (p[0] != '\0' && !(p[0] == 'P' && p[1] >= '1' && p[1] <= '9' && p[2] == '\0'))
    return bad(L, "prohibition must be empty or P1..P9, not '%.32s'", p);
  if (!(c = NEW_REC(L, r->categories, r->n_categories))) return -1;
  *c = (struct svc_category){save(L, f[0]), L->line, save(L, f[1]), counts, urgent, save(L, p)};
  return 0;
}

static int row_route(struct loader *L, char **f) {
  struct svc_registry *r = L->r;
  struct svc_route_step *s;
  int step = 0, accept = 0, resolve = 0;

  if (!known_category(L, f[0])) return -1;
  if (strcmp(f[0], "OTHER") == 0)
    return bad(L, "category OTHER goes to manual triage and has no routing steps");
  if (parse_positive(L, "step", f[1], 99, &step) != 0) return -1;
  if (strcmp(f[2], "STREET") != 0 && !FIND(r, departments, f[2]))
    return bad(L, "unknown unit %.64s (want a department code or STREET)", f[2]);
  if (parse_positive(L, "accept_hours", f[3], 8760, &accept) != 0 ||
      parse_positive(L, "resolve_workdays", f[4], 365, &resolve) != 0)
    return -1;
  if (!(s = NEW_REC(L, r->routing, r->n_routing))) return -1;
  *s = (struct svc_route_step){save(L, f[0]), L->line, step, save(L, f[2]), accept, resolve};
  return 0;
}

/* Splits the '|'-separated aliases into c->aliases; refuses an empty one. */
static int set_aliases(struct loader *L, struct svc_compound *c, const char *s) {
  size_t n = 0, i = 0;
  const char **a;
  char *copy;

  if (*s == '\0') return 0;
  for (const char *p = s; p; p = strchr(p, '|'), p = p ? p + 1 : NULL) n++;
  a = arena_alloc(L, n * sizeof *a);
  copy = (char *)save(L, s);
  if (!a || L->oom) return bad(L, "out of memory");
  for (char *tok = copy, *bar; tok; tok = bar ? bar + 1 : NULL) {
    if ((bar = strchr(tok, '|')) != NULL) *bar = '\0';
    if (blank(L, tok)) return bad(L, "empty alias in '%.200s'", s);
    a[i++] = tok;
  }
  c->aliases = a;
  c->n_aliases = n;
  return 0;
}

static int parse_management(struct loader *L, const char *s, enum svc_management *m) {
  static const char *const names[] = {"PROFESSIONAL", "SELF", "CUSTODIAL", "NONE"};

  for (int i = 0; i < 4; i++) {
    if (strcmp(s, names[i]) == 0) {
      *m = (enum svc_management)i;
      return 0;
    }
  }
  return bad(L, "unknown management '%.32s' (want PROFESSIONAL, SELF, CUSTODIAL or NONE)", s);
}

/* A PROFESSIONAL compound names a known company and a manager; others neither. */
static int check_company(struct loader *L, enum svc_management m, const char *company,
                         const char *manager) {
  if (m != SVC_MGMT_PROFESSIONAL) {
    if (*company || *manager)
      return bad(L, "company and manager must be empty unless PROFESSIONAL");
    return 0;
  }
  if (!*company) return bad(L, "a PROFESSIONAL compound needs a company");
  if (!FIND(L->r, companies, company)) return bad(L, "unknown company %.64s", company);
  if (blank(L, manager)) return bad(L, "a PROFESSIONAL compound needs a manager");
  return 0;
}

/* compounds.csv: code,name,aliases,street,management,company,manager,households */
static int row_compound(struct loader *L, char **f) {
  struct svc_registry *r = L->r;
  const struct svc_street *st;
  struct svc_compound *c;
  enum svc_management m = SVC_MGMT_NONE;
  long long hh;

  if (check_code(L, "code", f[0]) != 0 || check_name(L, "name", f[1]) != 0) return -1;
  if (!(st = FIND(r, streets, f[3]))) return bad(L, "unknown street %.64s", f[3]);
  if (parse_management(L, f[4], &m) != 0 || check_company(L, m, f[5], f[6]) != 0) return -1;
  if (parse_int(f[7], 0, INT64_MAX, &hh) != 0)
    return bad(L, "households must be a non-negative integer, not '%.32s'", f[7]);
  if (!(c = NEW_REC(L, r->compounds, r->n_compounds))) return -1;
  c->code = save(L, f[0]);
  c->line = L->line;
  c->name = save(L, f[1]);
  c->street = st->code;
  c->district = st->district;
  c->management = m;
  c->company = save(L, f[5]);
  c->manager = save(L, f[6]);
  c->households = hh;
  return set_aliases(L, c, f[2]);
}

static int row_hotline(struct loader *L, char **f) {
  struct svc_registry *r = L->r;
  const struct svc_category *cat;
  struct svc_hotline_map *h;

  if (check_code(L, "hotline_code", f[0]) != 0 || !(cat = known_category(L, f[1]))) return -1;
  if (!(h = NEW_REC(L, r->hotline, r->n_hotline))) return -1;
  *h = (struct svc_hotline_map){save(L, f[0]), L->line, cat->code};
  return 0;
}

static int row_keyword(struct loader *L, char **f) {
  struct svc_registry *r = L->r;
  const struct svc_category *cat;
  struct svc_keyword *k;
  long long prio;

  if (blank(L, f[0])) return bad(L, "empty keyword");
  if (!(cat = known_category(L, f[1]))) return -1;
  if (parse_int(f[2], INT_MIN, INT_MAX, &prio) != 0)
    return bad(L, "priority must be an integer, not '%.32s'", f[2]);
  if (!(k = NEW_REC(L, r->keywords, r->n_keywords))) return -1;
  *k = (struct svc_keyword){save_norm(L, f[0]), L->line, save(L, f[0]), cat->code, (int)prio};
  return 0;
}

/* ---- per-file checks after the last record ---- */

#define SORT_UNIQUE(L, table, what) \
  sort_unique((L), (L)->r->table, (L)->r->n_##table, sizeof *(L)->r->table, (what))

static int end_districts(struct loader *L) { return SORT_UNIQUE(L, districts, "code"); }
static int end_streets(struct loader *L) { return SORT_UNIQUE(L, streets, "code"); }
static int end_companies(struct loader *L) { return SORT_UNIQUE(L, companies, "code"); }
static int end_departments(struct loader *L) { return SORT_UNIQUE(L, departments, "code"); }
static int end_categories(struct loader *L) { return SORT_UNIQUE(L, categories, "category"); }
static int end_compounds(struct loader *L) { return SORT_UNIQUE(L, compounds, "code"); }
static int end_hotline(struct loader *L) { return SORT_UNIQUE(L, hotline, "hotline_code"); }

/* Keywords keep file order (R-I3 table order): duplicates are found in a copy. */
static int end_keywords(struct loader *L) {
  struct svc_registry *r = L->r;
  struct keyhead *heads;
  int rc;

  if (r->n_keywords < 2) return 0;
  heads = malloc(r->n_keywords * sizeof *heads);
  if (!heads) return bad(L, "out of memory");
  for (size_t i = 0; i < r->n_keywords; i++) heads[i] = head_of(&r->keywords[i]);
  rc = sort_unique(L, heads, r->n_keywords, sizeof *heads, "keyword");
  free(heads);
  return rc;
}

static int cmp_route(const void *a, const void *b) {
  const struct svc_route_step *x = a, *y = b;
  int c = strcmp(x->category, y->category);

  if (c != 0) return c;
  if (x->step != y->step) return x->step < y->step ? -1 : 1;
  return (x->line > y->line) - (x->line < y->line);
}

/* Steps of each category are numbered 1, 2, 3, ... without gaps or repeats. */
static int end_routing(struct loader *L) {
  struct svc_registry *r = L->r;

  qsort(r->routing, r->n_routing, sizeof *r->routing, cmp_route);
  for (size_t i = 0; i < r->n_routing; i++) {
    const struct svc_route_step *s = &r->routing[i];
    int first = i == 0 || strcmp(r->routing[i - 1].category, s->category) != 0;
    int want = first ? 1 : r->routing[i - 1].step + 1;
    L->line = s->line;
    if (!first && s->step == want - 1)
      return bad(L, "duplicate step %d of %s (first on line %zu)", s->step, s->category,
                 r->routing[i - 1].line);
    if (s->step != want)
      return bad(L, "step %d of %s without step %d", s->step, s->category, want);
  }
  return 0;
}

/* ---- the files, in dependency order ---- */

struct file_spec {
  const char *file, *header;
  int (*row)(struct loader *, char **);
  int (*end)(struct loader *);
};

static const struct file_spec FILES[] = {
  {"districts.csv", "code,name", row_district, end_districts},
  {"streets.csv", "code,name,district", row_street, end_streets},
  {"companies.csv", "code,name", row_company, end_companies},
  {"departments.csv", "code,name", row_department, end_departments},
  {"categories.csv", "category,name,counts,urgent,prohibition", row_category, end_categories},
  {"routing.csv", "category,step,unit,accept_hours,resolve_workdays", row_route, end_routing},
  {"compounds.csv", "code,name,aliases,street,management,company,manager,households",
   row_compound, end_compounds},
  {"hotline_categories.csv", "hotline_code,category", row_hotline, end_hotline},
  {"keywords.csv", "keyword,category,priority", row_keyword, end_keywords},
};

/* Sets L->path to dir/file; refuses a missing file. */
static int open_path(struct loader *L, const char *file) {
  int n = snprintf(L->path, sizeof L->path, "%s/%s", L->r->dir, file);

  L->line = 0;
  if (n < 0 || (size_t)n >= sizeof L->path) return bad_file(L, file, "path too long");
  if (access(L->path, F_OK) != 0)
    return bad_file(L, file, "%s", errno == ENOENT ? "missing file" : strerror(errno));
  return 0;
}

static int load_file(struct loader *L, const struct file_spec *spec) {
  struct svc_csv c;
  int rc;

  if (open_path(L, spec->file) != 0) return -1;
  if (svc_csv_open(&c, L->path, spec->header) != 0) {
    snprintf(L->err, L->errlen, "%s", c.err);
    return -1;
  }
  while ((rc = svc_csv_next(&c)) == 1) {
    L->line = c.line;
    if (spec->row(L, c.fields) != 0) break;
    if (L->oom) {
      bad(L, "out of memory");
      break;
    }
  }
  if (rc < 0) snprintf(L->err, L->errlen, "%s", c.err);
  svc_csv_close(&c);
  return rc == 0 ? spec->end(L) : -1;
}

static int load_calendar(struct loader *L) {
  if (open_path(L, "calendar.csv") != 0) return -1;
  return svc_calendar_load_csv(&L->r->calendar, L->path, L->err, L->errlen);
}

/* OTHER exists (the R-I3 fallback); every other category has routing. */
static int check_categories(struct loader *L) {
  struct svc_registry *r = L->r;

  r->other = FIND(r, categories, "OTHER");
  if (!r->other)
    return bad_file(L, "categories.csv", "no category OTHER (the fallback for manual triage)");
  for (size_t i = 0; i < r->n_categories; i++) {
    size_t n;
    if (&r->categories[i] == r->other) continue;
    if (!svc_registry_route(r, r->categories[i].code, &n))
      return bad_file(L, "routing.csv", "category %s has no routing steps", r->categories[i].code);
  }
  return 0;
}

/* ---- matchers ---- */

static int build_keyword_matcher(struct svc_registry *r) {
  if (!(r->keyword_matcher = svc_matcher_new())) return -1;
  for (size_t i = 0; i < r->n_keywords; i++) {
    const char *k = r->keywords[i].norm;
    if (svc_matcher_add(r->keyword_matcher, k, strlen(k), (uint32_t)i) != 0) return -1;
  }
  return svc_matcher_build(r->keyword_matcher);
}

/* Adds one normalised name or alias of compound ci as name pattern k. */
static int add_name(struct loader *L, uint32_t ci, const char *name) {
  struct svc_registry *r = L->r;
  const char *norm = save_norm(L, name);
  size_t len = strlen(norm);
  struct svc_reg_name *nm = NEW_REC(L, r->names, r->n_names);

  if (!nm || L->oom) return -1;
  nm->compound = ci;
  nm->chars = (uint32_t)svc_utf8_len(norm, len);
  return svc_matcher_add(r->name_matcher, norm, len, (uint32_t)(r->n_names - 1));
}

static int build_name_matcher(struct loader *L) {
  struct svc_registry *r = L->r;

  if (!(r->name_matcher = svc_matcher_new())) return -1;
  for (size_t i = 0; i < r->n_compounds; i++) {
    const struct svc_compound *c = &r->compounds[i];
    if (add_name(L, (uint32_t)i, c->name) != 0) return -1;
    for (size_t a = 0; a < c->n_aliases; a++) {
      if (add_name(L, (uint32_t)i, c->aliases[a]) != 0) return -1;
    }
  }
  return svc_matcher_build(r->name_matcher);
}

/* ---- public ---- */

struct svc_registry *svc_registry_load(const char *dir, char *err, size_t errlen) {
  struct loader L = {0};
  char dummy[8];

  if (!err || errlen == 0) {
    err = dummy;
    errlen = sizeof dummy;
  }
  err[0] = '\0';
  L.err = err;
  L.errlen = errlen;
  if (!dir || !(L.r = calloc(1, sizeof *L.r)) || !(L.r->dir = strdup(dir))) {
    snprintf(err, errlen, "%s", dir ? "out of memory" : "no registry directory given");
    svc_registry_destroy(&L.r);
    return NULL;
  }
  svc_calendar_init(&L.r->calendar);
  for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++) {
    if (load_file(&L, &FILES[i]) != 0) goto fail;
  }
  if (load_calendar(&L) != 0 || check_categories(&L) != 0) goto fail;
  if (build_keyword_matcher(L.r) != 0 || build_name_matcher(&L) != 0) {
    snprintf(err, errlen, "%s: out of memory building the matchers", dir);
    goto fail;
  }
  return L.r;
fail:
  svc_registry_destroy(&L.r);
  return NULL;
}

int svc_registry_check(const char *dir, char *err, size_t errlen) {
  struct svc_registry *r = svc_registry_load(dir, err, errlen);

  if (!r) return -1;
  svc_registry_destroy(&r);
  return 0;
}

void svc_registry_destroy(struct svc_registry **pr) {
  struct svc_registry *r;

  if (!pr || !*pr) return;
  r = *pr;
  while (r->arena) {
    struct svc_reg_arena *next = r->arena->next;
    free(r->arena);
    r->arena = next;
  }
  free(r->districts);
  free(r->streets);
  free(r->companies);
  free(r->departments);
  free(r->categories);
  free(r->routing);
  free(r->compounds);
  free(r->hotline);
  free(r->keywords);
  free(r->names);
  svc_matcher_destroy(&r->keyword_matcher);
  svc_matcher_destroy(&r->name_matcher);
  svc_calendar_free(&r->calendar);
  free(r->dir);
  free(r);
  *pr = NULL;
}

const struct svc_compound *svc_registry_compound(const struct svc_registry *r,
                                                       const char *code) {
  return r ? FIND(r, compounds, code) : NULL;
}

const struct svc_category *svc_registry_category(const struct svc_registry *r,
                                                       const char *code) {
  return r ? FIND(r, categories, code) : NULL;
}

const struct svc_street *svc_registry_street(const struct svc_registry *r,
                                                   const char *code) {
  return r ? FIND(r, streets, code) : NULL;
}

const struct svc_company *svc_registry_company(const struct svc_registry *r,
                                                     const char *code) {
  return r ? FIND(r, companies, code) : NULL;
}

const struct svc_department *svc_registry_department(const struct svc_registry *r,
                                                           const char *code) {
  return r ? FIND(r, departments, code) : NULL;
}

const struct svc_category *svc_registry_hotline(const struct svc_registry *r,
                                                      const char *hotline_code) {
  const struct svc_hotline_map *h = r ? FIND(r, hotline, hotline_code) : NULL;

  return h ? FIND(r, categories, h->category) : NULL;
}

const struct svc_route_step *svc_registry_route(const struct svc_registry *r,
                                                     const char *category, size_t *n) {
  size_t lo = 0, hi = r && category ? r->n_routing : 0, end;

  *n = 0;
  while (lo < hi) { /* the first step of the category */
    size_t mid = lo + (hi - lo) / 2;
    if (strcmp(r->routing[mid].category, category) < 0) lo = mid + 1;
    else hi = mid;
  }
  for (end = lo; r && end < r->n_routing && strcmp(r->routing[end].category, category) == 0;)
    end++;
  *n = end - lo;
  return *n ? &r->routing[lo] : NULL;
}
