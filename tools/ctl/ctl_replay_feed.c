/* whistlectl replay: the feed as read (docs/formats.md), every line parsed and
 * checked before anything is sent, and the registry's codes to report those of
 * the feed it does not know. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "ctl_replay.h"
#include "hotline.pb-c.h"
#include "svc_csv.h"
#include "svc_mask.h"
#include "svc_time.h"

const char *const replay_kind_names[K_N] = { "ticket", "feedback", "watermark", "triage", "exempt",
                                             "update", "inspection" };

/* ---- the registry's codes ------------------------------------------------------ */

static int cmp_str(const void *a, const void *b)
{
  return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Adds column col of every row of file (with header) as "prefix:code". */
static int load_codes(struct replay *x, const char *file, const char *header, size_t col,
                      const char *prefix, size_t *count)
{
  char path[4096];
  snprintf(path, sizeof path, "%s/%s", x->registry, file);
  struct svc_csv c;
  if (svc_csv_open(&c, path, header)) {
    fprintf(stderr, CTL_PROG ": registry: %s\n", c.err);
    svc_csv_close(&c);
    return -1;
  }
  int rc;
  while ((rc = svc_csv_next(&c)) == 1) {
    char **nv = realloc(x->codes, (x->ncodes + 1) * sizeof *nv);
    if (!nv) break;
    x->codes = nv;
    size_t len = strlen(prefix) + strlen(c.fields[col]) + 2;
    if (!(x->codes[x->ncodes] = malloc(len))) break;
    snprintf(x->codes[x->ncodes++], len, "%s:%s", prefix, c.fields[col]);
    (*count)++;
  }
  if (rc < 0) fprintf(stderr, CTL_PROG ": registry: %s\n", c.err);
  svc_csv_close(&c);
  return rc < 0 ? -1 : 0;
}

int replay_load_registry(struct replay *x)
{
  size_t junk = 0;
  if (load_codes(x, "compounds.csv", "code,name,aliases,street,management,company,manager,households",
                 0, "compound", &x->n_compounds) ||
      load_codes(x, "departments.csv", "code,name", 0, "unit", &x->n_units) ||
      load_codes(x, "streets.csv", "code,name,district", 0, "unit", &x->n_units) ||
      load_codes(x, "categories.csv", "category,name,counts,urgent,prohibition", 0, "category",
                 &x->n_categories) ||
      load_codes(x, "districts.csv", "code,name", 0, "district", &junk))
    return -1;
  if (x->ncodes) qsort(x->codes, x->ncodes, sizeof *x->codes, cmp_str);
  return 0;
}

static void check_code(struct replay *x, size_t lineno, json_t *o, const char *key, const char *kind)
{
  json_t *v = json_object_get(o, key);
  if (!x->ncodes || !json_is_string(v) || !json_string_value(v)[0]) return;
  if (!strcmp(kind, "unit") && !strcmp(json_string_value(v), "STREET")) return;
  char want[256];
  snprintf(want, sizeof want, "%s:%s", kind, json_string_value(v));
  const char *k = want;
  if (bsearch(&k, x->codes, x->ncodes, sizeof *x->codes, cmp_str)) return;
  if (x->n_first_unknown < MAX_FIRST)
    snprintf(x->first_unknown[x->n_first_unknown++], sizeof x->first_unknown[0],
             "line %zu: %s \"%.100s\" is not in the registry", lineno, key, json_string_value(v));
  x->unknown_codes++;
}

/* ---- reading the feed ----------------------------------------------------------- */

static int want_str(json_t *o, const char *key, char *err, size_t n)
{
  json_t *v = json_object_get(o, key);
  if (v && !json_is_null(v) && !json_is_string(v)) {
    snprintf(err, n, "field \"%s\" must be a string", key);
    return -1;
  }
  return 0;
}

const char *replay_str(json_t *o, const char *key)
{
  json_t *v = json_object_get(o, key);
  return json_is_string(v) ? json_string_value(v) : "";
}

static int want_uint(json_t *o, const char *key, int required, char *err, size_t n)
{
  json_t *v = json_object_get(o, key);
  if ((!v || json_is_null(v)) && !required) return 0;
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX) {
    snprintf(err, n, "field \"%s\" must be a whole number >= 0", key);
    return -1;
  }
  return 0;
}

const char *const REPLAY_ACTIONS[5] = { "", "ACCEPT", "RETURN", "PROGRESS", "RESOLVE" };

static int check_update(json_t *o, char *err, size_t n)
{
  static const char *const s[] = { "ticket_no", "unit", "action", "reason", "note", "prohibition" };
  for (size_t i = 0; i < sizeof s / sizeof s[0]; i++)
    if (want_str(o, s[i], err, n)) return -1;
  if (want_uint(o, "step", 1, err, n)) return -1;
  json_t *vc = json_object_get(o, "violation_confirmed");
  if (vc && !json_is_null(vc) && !json_is_boolean(vc)) {
    snprintf(err, n, "field \"violation_confirmed\" must be true or false");
    return -1;
  }
  json_t *ev = json_object_get(o, "evidence");
  if (ev && !json_is_null(ev)) {
    size_t i;
    json_t *e;
    int bad = !json_is_array(ev);
    json_array_foreach(ev, i, e) bad |= !json_is_string(e);
    if (bad) {
      snprintf(err, n, "field \"evidence\" must be a list of strings");
      return -1;
    }
  }
  const char *a = replay_str(o, "action");
  for (size_t i = 1; i < 5; i++)
    if (!strcmp(a, REPLAY_ACTIONS[i])) return 0;
  snprintf(err, n, "field \"action\" must be ACCEPT, RETURN, PROGRESS or RESOLVE, not \"%.40s\"", a);
  return -1;
}

const char *const REPLAY_DIMS[7] = { "sanitation", "garbage", "greening", "order", "facilities",
                                    "disclosure", "governance" };

static int check_inspection(json_t *o, char *err, size_t n)
{
  if (want_str(o, "compound_code", err, n) || want_str(o, "inspection_id", err, n)) return -1;
  for (size_t i = 0; i < 7; i++)
    if (want_uint(o, REPLAY_DIMS[i], 1, err, n)) return -1;
  return 0;
}

static int parse_line(struct replay *x, struct rline *l, const char *s, size_t len, char *err,
                      size_t n)
{
  json_error_t je;
  json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
  if (!o) {
    snprintf(err, n, "does not parse (column %d: %s)", je.column, je.text);
    return -1;
  }
  int rc = -1;
  json_t *tv = json_object_get(o, "type"), *av = json_object_get(o, "at");
  if (!json_is_object(o)) snprintf(err, n, "not a JSON object");
  else if (!json_is_string(tv)) snprintf(err, n, "no \"type\" string");
  else if (!json_is_string(av)) snprintf(err, n, "no \"at\" string");
  else if (svc_time_parse(json_string_value(av), json_string_length(av), &l->at_us))
    snprintf(err, n, "\"at\" is not an RFC 3339 time with an offset: %.60s", json_string_value(av));
  else {
    const char *type = json_string_value(tv);
    int k = 0;
    while (k < K_N && strcmp(type, replay_kind_names[k])) k++;
    l->kind = (enum rkind)k;
    l->hl.lineno = l->lineno;
    l->hl.at_us = l->at_us;
    if (k == K_N) snprintf(err, n, "unknown type \"%.60s\"", type);
    else if (k == K_UPDATE) rc = check_update(o, err, n);
    else if (k == K_INSPECTION) rc = check_inspection(o, err, n);
    else rc = hotline_line_from_json(o, type, &l->hl, err, n);
    if (!rc && k == K_TRIAGE && want_str(o, "unit", err, n)) rc = -1;
    if (!rc) {
      check_code(x, l->lineno, o, "compound_code", "compound");
      check_code(x, l->lineno, o, "unit", "unit");
      check_code(x, l->lineno, o, "category", "category");
    }
  }
  char digits[64];
  if (!rc && l->kind == K_TICKET) svc_phone_digits(replay_str(o, "caller_phone"), digits, sizeof digits);
  if (!rc && l->kind == K_TICKET && !(l->caller = strdup(digits))) {
    snprintf(err, n, "out of memory");
    rc = -1;
  }
  if (!rc && (l->kind == K_TRIAGE || l->kind == K_UPDATE || l->kind == K_INSPECTION)) l->o = o;
  else json_decref(o);
  return rc;
}

int replay_load_feed(struct replay *x)
{
  FILE *in = strcmp(x->feed, "-") == 0 ? stdin : fopen(x->feed, "r");
  if (!in) {
    fprintf(stderr, CTL_PROG ": %s: %s\n", x->feed, strerror(errno));
    return -1;
  }
  char *buf = NULL, err[400];
  size_t bufcap = 0, cap = 0;
  ssize_t got;
  int rc = 0;
  while ((got = getline(&buf, &bufcap, in)) >= 0) {
    size_t len = (size_t)got, lineno = ++x->lines_read;
    char *s = buf;
    while (len && (s[len - 1] == '\n' || s[len - 1] == '\r')) len--;
    if (lineno == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) s += 3, len -= 3;
    size_t k = 0;
    while (k < len && (s[k] == ' ' || s[k] == '\t')) k++;
    if (k == len) continue; /* blank */
    if (x->n == cap) {
      cap = cap ? cap * 2 : 1024;
      struct rline *nv = realloc(x->v, cap * sizeof *nv);
      if (!nv) {
        fprintf(stderr, CTL_PROG ": out of memory\n");
        rc = -1;
        break;
      }
      x->v = nv;
    }
    struct rline *l = &x->v[x->n];
    memset(l, 0, sizeof *l);
    l->lineno = lineno;
    if (parse_line(x, l, s, len, err, sizeof err)) {
      fprintf(stderr, CTL_PROG ": %s:%zu: %s\n", x->feed, lineno, err);
      fprintf(stderr, CTL_PROG ": the replay stops at line %zu; nothing was sent\n", lineno);
      rc = -1;
      break;
    }
    x->n++;
  }
  if (!rc && ferror(in)) {
    fprintf(stderr, CTL_PROG ": %s: read error after line %zu\n", x->feed, x->lines_read);
    rc = -1;
  }
  free(buf);
  if (in != stdin) fclose(in);
  return rc;
}

