/* The pure intake rules (docs/rules.md §2): validation (R-I8), the submission
 * fingerprint for idempotency (R-I1), request types (R-I2), classification
 * (R-I3), compound matching (R-I4), repeats (R-I5), the caller's pseudonym
 * and masked phone (R-I6) and the masked free text (R-I6a). No I/O: time,
 * keys and registry are arguments. */
#include "intake.h"

#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_csv.h"
#include "svc_mask.h"

static const char *str(const char *s) { return s ? s : ""; }

/* ---- R-I2: request types ---- */

static const char *const REQ_NAMES[] = {NULL, "CONSULT", "HELP", "COMPLAINT", "REPORT", "SUGGEST"};
#define N_REQ ((int)(sizeof REQ_NAMES / sizeof REQ_NAMES[0]))

int intake_request_type_parse(const char *s, enum intake_request_type *t) {
  for (int i = 1; s && i < N_REQ; i++) {
    if (strcmp(s, REQ_NAMES[i]) == 0) {
      *t = (enum intake_request_type)i;
      return 0;
    }
  }
  return -1;
}

const char *intake_request_type_name(enum intake_request_type t) {
  return (int)t >= 1 && (int)t < N_REQ ? REQ_NAMES[t] : NULL;
}

int intake_request_dispatched(enum intake_request_type t) {
  return t == INTAKE_REQ_COMPLAINT || t == INTAKE_REQ_REPORT || t == INTAKE_REQ_HELP;
}

int intake_request_counted(enum intake_request_type t) {
  return t == INTAKE_REQ_COMPLAINT || t == INTAKE_REQ_REPORT;
}

/* ---- R-I8: validation ---- */

__attribute__((format(printf, 3, 4)))
static const char *reason(char *buf, size_t n, const char *fmt, ...) {
  va_list ap;

  if (!buf || n == 0) return "invalid ticket";
  va_start(ap, fmt);
  vsnprintf(buf, n, fmt, ap);
  va_end(ap);
  return buf;
}

static int valid_ticket_no(const char *s) {
  size_t n = strlen(s);

  if (n < 1 || n > INTAKE_TICKET_NO_MAX) return 0;
  for (; *s; s++) {
    char c = *s;
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '-' || c == '_'))
      return 0;
  }
  return 1;
}

/* 5-20 characters of digits, '+' and '-', at least 5 of them digits. */
static int valid_phone(const char *s) {
  size_t n = strlen(s), digits = 0;

  if (n < INTAKE_PHONE_MIN || n > INTAKE_PHONE_MAX) return 0;
  for (; *s; s++) {
    if (*s >= '0' && *s <= '9') digits++;
    else if (*s != '+' && *s != '-') return 0;
  }
  return digits >= INTAKE_PHONE_MIN;
}

static size_t chars(const char *s) { return svc_utf8_len(s, strlen(s)); }

/* The text fields with their length limits in characters (0: checked apart). */
struct text_field { const char *name, *value; size_t max; };

static void text_fields(const struct intake_submission *s, struct text_field f[9]) {
  f[0] = (struct text_field){"ticket_no", str(s->ticket_no), 0};
  f[1] = (struct text_field){"request_type", str(s->request_type), 0};
  f[2] = (struct text_field){"hotline_category", str(s->hotline_category), INTAKE_SHORT_MAX_CHARS};
  f[3] = (struct text_field){"caller_phone", str(s->caller_phone), 0};
  f[4] = (struct text_field){"caller_name", str(s->caller_name), INTAKE_SHORT_MAX_CHARS};
  f[5] = (struct text_field){"compound_code", str(s->compound_code), INTAKE_SHORT_MAX_CHARS};
  f[6] = (struct text_field){"district", str(s->district), INTAKE_SHORT_MAX_CHARS};
  f[7] = (struct text_field){"address", str(s->address), INTAKE_ADDRESS_MAX_CHARS};
  f[8] = (struct text_field){"content", str(s->content), 0};
}

/* Every text field is valid UTF-8 and within its limit. */
static const char *check_texts(const struct intake_submission *s, char *buf, size_t n) {
  struct text_field f[9];

  text_fields(s, f);
  for (int i = 0; i < 9; i++) {
    if (!svc_utf8_valid(f[i].value, strlen(f[i].value)))
      return reason(buf, n, "%s: not valid UTF-8", f[i].name);
    if (f[i].max && chars(f[i].value) > f[i].max)
      return reason(buf, n, "%s: over %zu characters", f[i].name, f[i].max);
  }
  return NULL;
}

static const char *check_time(int64_t received_us, int64_t now_us, char *buf, size_t n) {
  if (received_us == 0) return reason(buf, n, "received_us: missing");
  if (received_us < INTAKE_RECEIVED_MIN_US)
    return reason(buf, n, "received_us: before 2000-01-01T00:00:00+08:00");
  if (now_us < INT64_MAX - INTAKE_DAY_US && received_us > now_us + INTAKE_DAY_US)
    return reason(buf, n, "received_us: more than 1 day in the future");
  return NULL;
}

const char *intake_validate(const struct intake_submission *s, int64_t now_us, char *buf,
                            size_t n) {
  enum intake_request_type t;
  const char *why;
  size_t content_chars;

  if (!s) return reason(buf, n, "no ticket");
  if ((why = check_texts(s, buf, n)) != NULL) return why;
  if (!*str(s->ticket_no)) return reason(buf, n, "ticket_no: missing");
  if (!valid_ticket_no(s->ticket_no))
    return reason(buf, n, "ticket_no: must be 1-%d characters of A-Z a-z 0-9 - _",
                  INTAKE_TICKET_NO_MAX);
  if ((why = check_time(s->received_us, now_us, buf, n)) != NULL) return why;
  if (!*str(s->request_type)) return reason(buf, n, "request_type: missing");
  if (intake_request_type_parse(s->request_type, &t) != 0)
    return reason(buf, n,
                  "request_type: unknown (want CONSULT, HELP, COMPLAINT, REPORT or SUGGEST)");
  content_chars = chars(str(s->content));
  if (svc_utf8_blank(str(s->content), strlen(str(s->content))))
    return reason(buf, n, content_chars ? "content: only white space or invisible characters"
                                        : "content: missing");
  if (content_chars > INTAKE_CONTENT_MAX_CHARS)
    return reason(buf, n, "content: over %d characters (%zu)", INTAKE_CONTENT_MAX_CHARS,
                  content_chars);
  if (svc_utf8_blank(str(s->address), strlen(str(s->address))) &&
      svc_utf8_blank(str(s->compound_code), strlen(str(s->compound_code))))
    return reason(buf, n, *str(s->address)
                            ? "address: only white space or invisible characters (an address or"
                              " a compound_code is required)"
                            : "address: missing (an address or a compound_code is required)");
  if (*str(s->caller_phone) && !valid_phone(s->caller_phone))
    return reason(buf, n, "caller_phone: must be %d-%d characters of digits, + and -",
                  INTAKE_PHONE_MIN, INTAKE_PHONE_MAX);
  if (s->urgency > 1) return reason(buf, n, "urgency: must be 0 or 1");
  return NULL;
}

/* ---- R-I1: fingerprint ---- */

static int put_u64(EVP_MD_CTX *ctx, uint64_t v) {
  unsigned char b[8];

  for (int i = 0; i < 8; i++) b[i] = (unsigned char)(v >> (56 - 8 * i));
  return EVP_DigestUpdate(ctx, b, sizeof b) == 1 ? 0 : -1;
}

/* A string as its 8-byte big-endian length and its bytes. */
static int put_str(EVP_MD_CTX *ctx, const char *s) {
  size_t n = strlen(str(s));

  if (put_u64(ctx, n) != 0) return -1;
  return n == 0 || EVP_DigestUpdate(ctx, s, n) == 1 ? 0 : -1;
}

static void to_hex(const unsigned char *d, size_t n, char *out) {
  static const char hex[] = "0123456789abcdef";

  for (size_t i = 0; i < n; i++) {
    out[2 * i] = hex[d[i] >> 4];
    out[2 * i + 1] = hex[d[i] & 15];
  }
  out[2 * n] = '\0';
}

static int digest_submission(EVP_MD_CTX *ctx, const struct intake_submission *s) {
  const char *texts[] = {s->ticket_no, s->request_type, s->hotline_category, s->caller_phone,
                         s->caller_name, s->compound_code, s->district, s->address, s->content};

  if (EVP_DigestInit_ex(ctx, EVP_sha256(), NULL) != 1) return -1;
  if (put_str(ctx, "whistle.TicketSubmit.v1") != 0) return -1;
  if (put_u64(ctx, (uint64_t)s->received_us) != 0 || put_u64(ctx, s->urgency) != 0) return -1;
  for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
    if (put_str(ctx, texts[i]) != 0) return -1;
  }
  return 0;
}

int intake_fingerprint(const struct intake_submission *s, char out[INTAKE_HEX_SHA256]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  EVP_MD_CTX *ctx;
  int rc = -1;

  out[0] = '\0';
  if (!s || !(ctx = EVP_MD_CTX_new())) return -1;
  if (digest_submission(ctx, s) == 0 && EVP_DigestFinal_ex(ctx, md, &len) == 1 && len == 32) {
    to_hex(md, len, out);
    rc = 0;
  }
  EVP_MD_CTX_free(ctx);
  return rc;
}

/* ---- R-I3: classification ---- */

struct kw_best {
  const struct svc_keyword *all; /* the registry's keywords (ids index it) */
  const struct svc_keyword *kw;  /* the best so far, or NULL */
  size_t row, start;
};

/* Keeps the best keyword match: priority, then earliest start, then row. */
static int keep_best_keyword(void *arg, uint32_t id, size_t start, size_t end) {
  struct kw_best *b = arg;
  const struct svc_keyword *k = &b->all[id];

  (void)end;
  if (!b->kw || k->priority > b->kw->priority ||
      (k->priority == b->kw->priority &&
       (start < b->start || (start == b->start && id < b->row)))) {
    b->kw = k;
    b->row = id;
    b->start = start;
  }
  return 0;
}

/* Normalises s into a fresh buffer (R-I3/R-I4); NULL when out of memory. */
static char *normalized(const char *s, size_t len, size_t *out_len) {
  char *buf = malloc(len + 1);

  if (buf) *out_len = svc_text_normalize(s, len, buf);
  return buf;
}

int intake_classify(const struct svc_registry *r, const char *hotline_code,
                    const char *content, size_t len, struct intake_category_result *out) {
  const struct svc_category *mapped;
  struct kw_best best = {r ? r->keywords : NULL, NULL, 0, 0};
  size_t n;
  char *text;

  if (!r || !out || (!content && len > 0)) return -1;
  mapped = hotline_code && *hotline_code ? svc_registry_hotline(r, hotline_code) : NULL;
  if (mapped) {
    *out = (struct intake_category_result){mapped, "hotline", NULL};
    return 0;
  }
  if (!(text = normalized(content, len, &n))) return -1;
  svc_matcher_scan(r->keyword_matcher, text, n, keep_best_keyword, &best);
  free(text);
  if (!best.kw) {
    *out = (struct intake_category_result){r->other, "none", NULL};
    return 0;
  }
  *out = (struct intake_category_result){svc_registry_category(r, best.kw->category),
                                         "keyword", best.kw};
  return 0;
}

/* ---- R-I4: compound ---- */

#define MAX_TIED 8

struct name_best {
  const struct svc_registry *r;
  uint32_t chars;
  size_t n_tied;               /* distinct compounds at the longest length
                                  (past MAX_TIED, an upper bound) */
  uint32_t tied[MAX_TIED];     /* the first MAX_TIED of them, ascending */
};

/* Adds compound c to the sorted tie list (once). */
static void add_tied(struct name_best *b, uint32_t c) {
  size_t i = 0, shown = b->n_tied < MAX_TIED ? b->n_tied : MAX_TIED;

  while (i < shown && b->tied[i] < c) i++;
  if (i < shown && b->tied[i] == c) return;
  if (shown == MAX_TIED && i == MAX_TIED) { /* not shown, but counted once */
    b->n_tied++;
    return;
  }
  memmove(&b->tied[i + 1], &b->tied[i], (shown - i - (shown == MAX_TIED)) * sizeof b->tied[0]);
  b->tied[i] = c;
  b->n_tied++;
}

static int keep_longest_name(void *arg, uint32_t id, size_t start, size_t end) {
  struct name_best *b = arg;
  const struct svc_reg_name *nm = &b->r->names[id];

  (void)start;
  (void)end;
  if (nm->chars < b->chars) return 0;
  if (nm->chars > b->chars) {
    b->chars = nm->chars;
    b->n_tied = 0;
  }
  add_tied(b, nm->compound);
  return 0;
}

/* "ambiguous: C0001 C0007" with the tied codes (and "..." past MAX_TIED). */
static void ambiguous_reason(const struct name_best *b, char *buf, size_t n) {
  size_t used = (size_t)snprintf(buf, n, "ambiguous:");

  for (size_t i = 0; i < b->n_tied && i < MAX_TIED && used < n; i++)
    used += (size_t)snprintf(buf + used, n - used, " %s", b->r->compounds[b->tied[i]].code);
  if (b->n_tied > MAX_TIED && used < n) snprintf(buf + used, n - used, " ...");
}

int intake_match_compound(const struct svc_registry *r, const char *code,
                          const char *address, size_t len, struct intake_compound_result *out) {
  const struct svc_compound *c = code && *code ? svc_registry_compound(r, code) : NULL;
  struct name_best best = {r, 0, 0, {0}};
  size_t n;
  char *text;

  if (!r || !out || (!address && len > 0)) return -1;
  out->reason[0] = '\0';
  if (c) {
    out->compound = c;
    out->how = "code";
    return 0;
  }
  if (!(text = normalized(address, len, &n))) return -1;
  svc_matcher_scan(r->name_matcher, text, n, keep_longest_name, &best);
  free(text);
  out->compound = best.n_tied == 1 ? &r->compounds[best.tied[0]] : NULL;
  out->how = best.n_tied == 1 ? "address" : best.n_tied ? "ambiguous" : "none";
  if (best.n_tied == 0)
    snprintf(out->reason, sizeof out->reason, "%sno compound name in address",
             code && *code ? "unknown compound code; " : "");
  else if (best.n_tied > 1)
    ambiguous_reason(&best, out->reason, sizeof out->reason);
  return 0;
}

/* ---- R-I5: repeats ---- */

static int known(const char *s) { return s && *s; }

/* The new ticket is checked at all: a COMPLAINT/REPORT with a caller phone,
 * compound and category known at intake. */
static int repeat_checkable(const struct intake_repeat_facts *t) {
  return intake_request_counted(t->type) && known(t->pseudonym) && known(t->compound) &&
         known(t->category) && strcmp(t->category, "OTHER") != 0;
}

/* e can be the ticket t repeats. */
static int repeat_candidate(const struct intake_repeat_facts *t,
                            const struct intake_repeat_facts *e) {
  if (!intake_request_counted(e->type) || !e->dispatched || e->is_repeat || e->referral_closed)
    return 0;
  if (!known(e->pseudonym) || !known(e->compound) || !known(e->category)) return 0;
  if (strcmp(e->pseudonym, t->pseudonym) != 0 || strcmp(e->compound, t->compound) != 0 ||
      strcmp(e->category, t->category) != 0)
    return 0;
  if (strcmp(str(e->ticket_no), str(t->ticket_no)) == 0) return 0;
  return e->received_us <= t->received_us &&
         e->received_us >= t->received_us - INTAKE_REPEAT_WINDOW_US;
}

const struct intake_repeat_facts *intake_find_repeat(const struct intake_repeat_facts *t,
                                                     const struct intake_repeat_facts *earlier,
                                                     size_t n) {
  const struct intake_repeat_facts *best = NULL;

  if (!t || !earlier || !repeat_checkable(t)) return NULL;
  for (size_t i = 0; i < n; i++) {
    const struct intake_repeat_facts *e = &earlier[i];
    if (!repeat_candidate(t, e)) continue;
    if (!best || e->received_us > best->received_us ||
        (e->received_us == best->received_us &&
         strcmp(str(e->ticket_no), str(best->ticket_no)) > 0))
      best = e;
  }
  return best;
}

/* ---- R-I6: pseudonym and masked phone ---- */

int intake_phone_mask(const char *phone, char *out, size_t n) {
  char d[INTAKE_PHONE_MAX + 32];
  size_t len = svc_phone_digits(phone, d, sizeof d);
  size_t head = len >= 11 ? 3 : 0, tail = len >= 11 ? 4 : (len > 2 ? 2 : 0);

  if (!out || n < len + 1) {
    if (out && n) out[0] = '\0';
    return -1;
  }
  for (size_t i = 0; i < len; i++) out[i] = (i < head || i >= len - tail) ? d[i] : '*';
  out[len] = '\0';
  return 0;
}

int intake_phone_pseudonym(const void *key, size_t keylen, const char *phone,
                           char out[INTAKE_HEX_SHA256]) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int maclen = 0;
  char d[INTAKE_PHONE_MAX + 32];
  size_t len = svc_phone_digits(phone, d, sizeof d);

  out[0] = '\0';
  if (len == 0 || !key || keylen == 0 || keylen > INT32_MAX) return -1;
  if (!HMAC(EVP_sha256(), key, (int)keylen, (const unsigned char *)d, len, mac, &maclen) ||
      maclen != 32)
    return -1;
  to_hex(mac, maclen, out);
  return 0;
}

/* ---- R-I6a: numbers typed into content and address ---- */

int intake_mask_ticket(const char *content, const char *address, struct intake_public_text *out) {
  *out = (struct intake_public_text){NULL, NULL, 0, 0};
  out->content = svc_mask_dup(content, &out->content_masked);
  out->address = svc_mask_dup(address, &out->address_masked);
  if (!out->content || !out->address) {
    intake_public_text_free(out);
    return -1;
  }
  return 0;
}

void intake_public_text_free(struct intake_public_text *p) {
  if (!p) return;
  free(p->content);
  free(p->address);
  *p = (struct intake_public_text){NULL, NULL, 0, 0};
}
