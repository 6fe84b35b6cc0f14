/* Reading a scenario feed (docs/formats.md) (JSON Lines) for whistle-hotline (and the intake
 * lines of whistlectl replay): parses every line
 * with jansson, checks its type, its `at` and the types of its fields, packs
 * the HotlineMessage it becomes (request_id = line number), and links each
 * line to the previous line about the same ticket. Nothing is sent from here:
 * a feed with one bad line is refused whole, naming that line. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "hotline.pb-c.h"
#include "hotline_client.h"
#include "svc_time.h"

const char *const hotline_type_names[HL_NTYPES] = { "ticket", "feedback", "watermark", "triage",
                                                    "exempt" };

/* A field problem found while reading one line. */
struct lerr { char text[256]; };

static int fail(struct lerr *e, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(struct lerr *e, const char *fmt, ...)
{
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(e->text, sizeof e->text, fmt, ap);
  va_end(ap);
  return -1;
}

/* A string field: absent or null reads as "", anything but a string is an
 * error naming the field. */
static int get_str(json_t *o, const char *key, const char **out, struct lerr *e)
{
  json_t *v = json_object_get(o, key);
  if (!v || json_is_null(v)) {
    *out = "";
    return 0;
  }
  if (!json_is_string(v)) return fail(e, "field \"%s\" must be a string", key);
  *out = json_string_value(v);
  return 0;
}

static int get_urgency(json_t *o, uint32_t *out, struct lerr *e)
{
  json_t *v = json_object_get(o, "urgency");
  *out = 0;
  if (!v || json_is_null(v)) return 0;
  if (json_is_boolean(v)) {
    *out = json_is_true(v);
    return 0;
  }
  if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > UINT32_MAX)
    return fail(e, "field \"urgency\" must be 0 or 1 (or a boolean)");
  *out = (uint32_t)json_integer_value(v); /* intake judges values other than 0 and 1 */
  return 0;
}

static int pack(struct hotline_line *l, Whistle__Hotline__HotlineMessage *m)
{
  m->version = 1;
  m->request_id = l->lineno;
  l->len = whistle__hotline__hotline_message__get_packed_size(m);
  l->msg = malloc(l->len ? l->len : 1);
  if (!l->msg) return -1;
  whistle__hotline__hotline_message__pack(m, l->msg);
  return 0;
}

/* Builds the request of a ticket line (SCENARIO `ticket`). */
static int ticket_line(json_t *o, struct hotline_line *l, struct lerr *e)
{
  static const char *const keys[] = { "ticket_no", "request_type", "hotline_category",
                                       "caller_phone", "caller_name", "compound_code",
                                       "district", "address", "content" };
  const char *v[9] = { "" };
  for (size_t i = 0; i < 9; i++)
    if (get_str(o, keys[i], &v[i], e)) return -1;
  Whistle__Hotline__TicketSubmit t = WHISTLE__HOTLINE__TICKET_SUBMIT__INIT;
  if (get_urgency(o, &t.urgency, e)) return -1;
  t.ticket_no = (char *)v[0];
  t.request_type = (char *)v[1];
  t.hotline_category = (char *)v[2];
  t.caller_phone = (char *)v[3];
  t.caller_name = (char *)v[4];
  t.compound_code = (char *)v[5];
  t.district = (char *)v[6];
  t.address = (char *)v[7];
  t.content = (char *)v[8];
  t.received_us = l->at_us;
  Whistle__Hotline__HotlineMessage m = WHISTLE__HOTLINE__HOTLINE_MESSAGE__INIT;
  m.body_case = WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_SUBMIT;
  m.submit = &t;
  l->ticket_no = strdup(v[0]);
  return l->ticket_no ? pack(l, &m) : -1;
}

static int feedback_line(json_t *o, struct hotline_line *l, struct lerr *e)
{
  Whistle__Hotline__TicketFeedback t = WHISTLE__HOTLINE__TICKET_FEEDBACK__INIT;
  const char *tno = "", *sat = "";
  if (get_str(o, "ticket_no", &tno, e) || get_str(o, "satisfaction", &sat, e)) return -1;
  t.ticket_no = (char *)tno;
  t.satisfaction = (char *)sat;
  t.received_us = l->at_us;
  Whistle__Hotline__HotlineMessage m = WHISTLE__HOTLINE__HOTLINE_MESSAGE__INIT;
  m.body_case = WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_FEEDBACK;
  m.feedback = &t;
  l->ticket_no = strdup(tno);
  return l->ticket_no ? pack(l, &m) : -1;
}

static int watermark_line(struct hotline_line *l)
{
  Whistle__Hotline__Watermark w = WHISTLE__HOTLINE__WATERMARK__INIT;
  w.at_us = l->at_us;
  Whistle__Hotline__HotlineMessage m = WHISTLE__HOTLINE__HOTLINE_MESSAGE__INIT;
  m.body_case = WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_WATERMARK;
  m.watermark = &w;
  l->ticket_no = strdup("");
  return l->ticket_no ? pack(l, &m) : -1;
}

static int triage_line(json_t *o, struct hotline_line *l, struct lerr *e)
{
  Whistle__Hotline__TriageComplete t = WHISTLE__HOTLINE__TRIAGE_COMPLETE__INIT;
  const char *tno = "", *code = "", *cat = "";
  if (get_str(o, "ticket_no", &tno, e) || get_str(o, "compound_code", &code, e) ||
      get_str(o, "category", &cat, e))
    return -1;
  t.ticket_no = (char *)tno;
  t.compound_code = (char *)code;
  t.category = (char *)cat;
  t.at_us = l->at_us;
  Whistle__Hotline__HotlineMessage m = WHISTLE__HOTLINE__HOTLINE_MESSAGE__INIT;
  m.body_case = WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_TRIAGE;
  m.triage = &t;
  l->ticket_no = strdup(tno);
  return l->ticket_no ? pack(l, &m) : -1;
}

static int exempt_line(json_t *o, struct hotline_line *l, struct lerr *e)
{
  Whistle__Hotline__Exempt t = WHISTLE__HOTLINE__EXEMPT__INIT;
  const char *tno = "", *why = "";
  if (get_str(o, "ticket_no", &tno, e) || get_str(o, "reason", &why, e)) return -1;
  t.ticket_no = (char *)tno;
  t.reason = (char *)why;
  t.at_us = l->at_us;
  Whistle__Hotline__HotlineMessage m = WHISTLE__HOTLINE__HOTLINE_MESSAGE__INIT;
  m.body_case = WHISTLE__HOTLINE__HOTLINE_MESSAGE__BODY_EXEMPT;
  m.exempt = &t;
  l->ticket_no = strdup(tno);
  return l->ticket_no ? pack(l, &m) : -1;
}

/* Packs the request of an intake line of the given type. */
static int build_line(json_t *o, const char *type, struct hotline_line *l, struct lerr *e)
{
  if (strcmp(type, "ticket") == 0) {
    l->type = HL_TICKET;
    return ticket_line(o, l, e);
  } else if (strcmp(type, "feedback") == 0) {
    l->type = HL_FEEDBACK;
    return feedback_line(o, l, e);
  } else if (strcmp(type, "watermark") == 0) {
    l->type = HL_WATERMARK;
    return watermark_line(l);
  } else if (strcmp(type, "triage") == 0) {
    l->type = HL_TRIAGE;
    return triage_line(o, l, e);
  } else if (strcmp(type, "exempt") == 0) {
    l->type = HL_EXEMPT;
    return exempt_line(o, l, e);
  }
  return fail(e, "unknown type \"%s\"", type);
}

int hotline_line_from_json(struct json_t *o, const char *type, struct hotline_line *l, char *err,
                           size_t errlen)
{
  struct lerr e = { "" };
  l->status = HL_NOREPLY;
  if (build_line(o, type, l, &e) == 0) return 0;
  snprintf(err, errlen, "%s", e.text[0] ? e.text : "out of memory");
  hotline_line_free(l);
  return -1;
}

void hotline_line_free(struct hotline_line *l)
{
  free(l->ticket_no);
  free(l->msg);
  free(l->reason);
  free(l->category);
  free(l->compound);
  free(l->disposition);
  l->ticket_no = l->reason = l->category = l->compound = l->disposition = NULL;
  l->msg = NULL;
}

enum verdict { V_ERROR = -1, V_KEEP, V_SKIP };

/* Classifies one parsed line and, when it goes to intake, fills l. */
static enum verdict one_line(struct hotline_feed *f, json_t *o, struct hotline_line *l,
                             int strict, struct lerr *e)
{
  if (!json_is_object(o)) return fail(e, "not a JSON object"), V_ERROR;
  json_t *tv = json_object_get(o, "type"), *av = json_object_get(o, "at");
  if (!json_is_string(tv)) return fail(e, "no \"type\" string"), V_ERROR;
  const char *type = json_string_value(tv);
  if (!json_is_string(av)) return fail(e, "no \"at\" string"), V_ERROR;
  if (svc_time_parse(json_string_value(av), json_string_length(av), &l->at_us))
    return fail(e, "\"at\" is not an RFC 3339 time with an offset: %s", json_string_value(av)),
           V_ERROR;
  if (strcmp(type, "update") == 0 || strcmp(type, "inspection") == 0) {
    if (strict)
      return fail(e, "type \"%s\" is not for intake (referral or rating takes it; --strict)", type),
             V_ERROR;
    if (type[0] == 'u') f->skipped_update++;
    else f->skipped_inspection++;
    return V_SKIP;
  }
  if (strcmp(type, "triage") == 0) {
    const char *unit = "";
    if (get_str(o, "unit", &unit, e)) return V_ERROR;
    if (unit[0]) { /* re-dispatch of a returned step: referral's operator action */
      if (strict)
        return fail(e, "a triage line naming a unit re-dispatches a returned step (referral; "
                       "--strict): unit %s", unit), V_ERROR;
      f->skipped_redispatch++;
      return V_SKIP;
    }
  }
  int rc = build_line(o, type, l, e);
  if (rc && !e->text[0]) fail(e, "out of memory");
  return rc ? V_ERROR : V_KEEP;
}

static int cmp_ticket(const void *a, const void *b, void *arg)
{
  const struct hotline_line *v = arg;
  size_t i = *(const size_t *)a, j = *(const size_t *)b;
  int c = strcmp(v[i].ticket_no, v[j].ticket_no);
  return c ? c : (i < j ? -1 : i > j);
}

/* Links every line to the previous watermark, and to the previous line with
 * the same (non-empty) ticket_no. */
static int link_lines(struct hotline_feed *f)
{
  for (size_t i = 0, wm = 0; i < f->n; i++) {
    f->v[i].prev_watermark = wm;
    if (f->v[i].type == HL_WATERMARK) wm = i + 1;
  }
  size_t *ix = malloc((f->n ? f->n : 1) * sizeof *ix);
  if (!ix) return -1;
  for (size_t i = 0; i < f->n; i++) ix[i] = i;
  qsort_r(ix, f->n, sizeof *ix, cmp_ticket, f->v);
  for (size_t k = 1; k < f->n; k++) {
    const struct hotline_line *p = &f->v[ix[k - 1]];
    struct hotline_line *l = &f->v[ix[k]];
    if (l->ticket_no[0] && strcmp(p->ticket_no, l->ticket_no) == 0) l->prev_same = ix[k - 1] + 1;
  }
  free(ix);
  return 0;
}

static int add_line(struct hotline_feed *f, size_t *cap)
{
  if (f->n < *cap) return 0;
  size_t nc = *cap ? *cap * 2 : 1024;
  struct hotline_line *v = realloc(f->v, nc * sizeof *v);
  if (!v) return -1;
  f->v = v;
  *cap = nc;
  return 0;
}

static int blank(const char *s, size_t n)
{
  for (size_t i = 0; i < n; i++)
    if (s[i] != ' ' && s[i] != '\t' && s[i] != '\r') return 0;
  return 1;
}

int hotline_feed_load(struct hotline_feed *f, const char *path, int strict, char *err,
                      size_t errlen)
{
  memset(f, 0, sizeof *f);
  FILE *in = strcmp(path, "-") == 0 ? stdin : fopen(path, "r");
  if (!in) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  char *buf = NULL;
  size_t bufcap = 0, cap = 0;
  ssize_t got;
  int64_t last_at = INT64_MIN;
  struct lerr e = { "" };
  while ((got = getline(&buf, &bufcap, in)) >= 0) {
    size_t len = (size_t)got, lineno = ++f->lines;
    char *s = buf;
    if (len && s[len - 1] == '\n') len--;
    if (lineno == 1 && len >= 3 && memcmp(s, "\xef\xbb\xbf", 3) == 0) s += 3, len -= 3; /* BOM */
    if (blank(s, len)) {
      f->blank++;
      continue;
    }
    json_error_t je;
    json_t *o = json_loadb(s, len, JSON_REJECT_DUPLICATES, &je);
    if (!o) {
      snprintf(err, errlen, "%s:%zu: does not parse (column %d: %s)", path, lineno, je.column,
               je.text);
      goto fail;
    }
    if (add_line(f, &cap)) {
      json_decref(o);
      snprintf(err, errlen, "%s:%zu: out of memory", path, lineno);
      goto fail;
    }
    struct hotline_line *l = &f->v[f->n];
    memset(l, 0, sizeof *l);
    l->lineno = lineno;
    l->status = HL_NOREPLY;
    enum verdict v = one_line(f, o, l, strict, &e);
    json_decref(o);
    if (v == V_ERROR) {
      free(l->ticket_no);
      free(l->msg);
      snprintf(err, errlen, "%s:%zu: %s", path, lineno, e.text);
      goto fail;
    }
    if (l->at_us < last_at && !f->out_of_order++) f->first_out_of_order = lineno;
    if (l->at_us < last_at && strict) {
      if (v == V_KEEP) f->n++; /* freed below */
      snprintf(err, errlen, "%s:%zu: \"at\" is earlier than an earlier line's (the feed must be "
                            "sorted by at; --strict)", path, lineno);
      goto fail;
    }
    if (l->at_us > last_at) last_at = l->at_us;
    if (v == V_KEEP) f->n++;
  }
  if (ferror(in)) {
    snprintf(err, errlen, "%s: read error after line %zu: %s", path, f->lines, strerror(errno));
    goto fail;
  }
  free(buf);
  if (in != stdin) fclose(in);
  if (link_lines(f)) {
    snprintf(err, errlen, "%s: out of memory", path);
    hotline_feed_free(f);
    return -1;
  }
  return 0;
fail:
  free(buf);
  if (in != stdin) fclose(in);
  hotline_feed_free(f);
  return -1;
}

void hotline_feed_free(struct hotline_feed *f)
{
  for (size_t i = 0; i < f->n; i++) hotline_line_free(&f->v[i]);
  free(f->v);
  memset(f, 0, sizeof *f);
}
