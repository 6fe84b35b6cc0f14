/* The city's registry (docs/rules.md §1, registry CSVs of docs/formats.md), shared by every
 * service: districts, streets, compounds, companies, departments, categories,
 * routing, hotline category map, keywords and the working-day calendar; and
 * the text normalisation and multi-pattern matcher used for keywords (R-I3)
 * and compound names (R-I4). */
#ifndef SVC_REGISTRY_H
#define SVC_REGISTRY_H

#include <stddef.h>
#include <stdint.h>

#include "svc_time.h"

/* ---- svc_match.c: text normalisation and Aho-Corasick matching ---- */

/* Normalises UTF-8 text for matching (R-I3, R-I4): drops ASCII and Unicode
 * white space and line breaks (including U+3000 and zero-width spaces), folds
 * full-width ASCII U+FF01..U+FF5E to ASCII and ASCII letters to lower case.
 * Writes the result NUL-terminated to out, which must have room for n + 1
 * bytes (the result is never longer than the input), and returns its length.
 * Bytes that are not valid UTF-8 are copied unchanged. */
size_t svc_text_normalize(const char *s, size_t n, char *out);

/* A set of byte patterns searched in one pass over a text. Add patterns, then
 * build, then scan any number of texts (scans do not modify the matcher). */
struct svc_matcher;

/* Returns an empty matcher, or NULL when out of memory. */
struct svc_matcher *svc_matcher_new(void);
/* Adds a pattern of len >= 1 bytes with a caller-chosen id; the same bytes may
 * be added under several ids and each is reported. The bytes are copied into
 * the automaton. Returns 0, or -1 (len 0, already built, out of memory). */
int svc_matcher_add(struct svc_matcher *m, const char *pat, size_t len, uint32_t id);
/* Freezes the patterns into the automaton. Returns 0 or -1 (out of memory, in
 * which case the matcher only remains destroyable). */
int svc_matcher_build(struct svc_matcher *m);
/* Reports every occurrence of every pattern in text (overlapping ones too) as
 * fn(arg, id, start, end) with byte offsets [start, end), in order of end.
 * If both text and patterns are valid UTF-8, matches align to code points.
 * Returns 0 after the whole text, the callback's value if it returned non-zero
 * (which stops the scan), or -1 if the matcher is not built. */
int svc_matcher_scan(const struct svc_matcher *m, const char *text, size_t len,
                        int (*fn)(void *arg, uint32_t id, size_t start, size_t end), void *arg);
/* Number of trie nodes and bytes held by a built matcher (for logs). */
void svc_matcher_stats(const struct svc_matcher *m, size_t *nodes, size_t *bytes);
/* Frees *m and sets it to NULL; safe on NULL and *m == NULL. */
void svc_matcher_destroy(struct svc_matcher **m);

/* ---- svc_registry.c: registry data (docs/rules.md §1) ---- */

/* Every record starts with its key and the line of its file it came from.
 * Strings are owned by the registry; "" where a column is empty. */
enum svc_management {
  SVC_MGMT_PROFESSIONAL, /* 专业物业: company and manager named */
  SVC_MGMT_SELF,         /* 业主自管 */
  SVC_MGMT_CUSTODIAL,    /* 社区托管 */
  SVC_MGMT_NONE          /* 三无小区 */
};

struct svc_district { const char *code; size_t line; const char *name; };
struct svc_street { const char *code; size_t line; const char *name, *district; };
struct svc_company { const char *code; size_t line; const char *name; };
struct svc_department { const char *code; size_t line; const char *name; };

struct svc_category {
  const char *code; size_t line;
  const char *name;
  int counts, urgent;      /* 0 or 1 */
  const char *prohibition; /* "" or "P1".."P9" (R-P2 default) */
};

struct svc_compound {
  const char *code; size_t line;
  const char *name;
  const char *const *aliases; size_t n_aliases;
  const char *street, *district; /* the district is the street's */
  enum svc_management management;
  const char *company, *manager; /* "" unless PROFESSIONAL */
  int64_t households;
};

struct svc_route_step {
  const char *category; size_t line;
  int step;           /* 1, 2, 3, ... within the category */
  const char *unit;   /* a department code or "STREET" */
  int accept_hours, resolve_workdays;
};

struct svc_hotline_map { const char *code; size_t line; const char *category; };

struct svc_keyword {
  const char *norm; size_t line; /* normalised as by svc_text_normalize */
  const char *keyword;           /* as written in keywords.csv */
  const char *category;
  int priority;
};

/* A compound name or alias as a pattern of the name matcher. */
struct svc_reg_name { uint32_t compound; uint32_t chars; };

struct svc_reg_arena;

/* A loaded registry; read-only after svc_registry_load(). Tables are
 * sorted by code except keywords (file order: the R-I3 table order) and
 * routing (by category, then step). */
struct svc_registry {
  char *dir;
  struct svc_district *districts; size_t n_districts;
  struct svc_street *streets; size_t n_streets;
  struct svc_company *companies; size_t n_companies;
  struct svc_department *departments; size_t n_departments;
  struct svc_category *categories; size_t n_categories;
  struct svc_route_step *routing; size_t n_routing;
  struct svc_compound *compounds; size_t n_compounds;
  struct svc_hotline_map *hotline; size_t n_hotline;
  struct svc_keyword *keywords; size_t n_keywords;
  struct svc_calendar calendar;
  const struct svc_category *other; /* the OTHER fallback (R-I3) */
  /* Used by intake_rules.c: ids are indexes into keywords and names. */
  struct svc_matcher *keyword_matcher;
  struct svc_matcher *name_matcher;
  struct svc_reg_name *names; size_t n_names;
  struct svc_reg_arena *arena;
};

/* Loads the registry directory dir (districts, streets, compounds, companies,
 * departments, categories, routing, hotline_categories, keywords, calendar)
 * into a new registry and builds its matchers. Returns it, or NULL with
 * "path:line: reason" (or "path: reason" for a missing file or a file-level
 * problem) in err. Never touches any other registry, so a SIGHUP reload loads
 * a new one and swaps it in only on success. */
struct svc_registry *svc_registry_load(const char *dir, char *err, size_t errlen);
/* Frees *r and sets it to NULL; safe on NULL. Every pointer obtained from the
 * registry (records, codes, results of the rules below) dies with it. */
void svc_registry_destroy(struct svc_registry **r);
/* Loads and drops the registry of dir, for --check-config: 0, or -1 with
 * svc_registry_load's reason in err. */
int svc_registry_check(const char *dir, char *err, size_t errlen);

/* Lookups by code; NULL when unknown. */
const struct svc_compound *svc_registry_compound(const struct svc_registry *r,
                                                       const char *code);
const struct svc_category *svc_registry_category(const struct svc_registry *r,
                                                       const char *code);
const struct svc_street *svc_registry_street(const struct svc_registry *r,
                                                   const char *code);
const struct svc_company *svc_registry_company(const struct svc_registry *r,
                                                     const char *code);
const struct svc_department *svc_registry_department(const struct svc_registry *r,
                                                           const char *code);
/* The category a hotline category code maps to (R-I3), or NULL if unmapped. */
const struct svc_category *svc_registry_hotline(const struct svc_registry *r,
                                                      const char *hotline_code);
/* The routing steps of a category: *n steps from the returned pointer (NULL
 * and *n = 0 for OTHER or an unknown category). */
const struct svc_route_step *svc_registry_route(const struct svc_registry *r,
                                                     const char *category, size_t *n);

#endif
