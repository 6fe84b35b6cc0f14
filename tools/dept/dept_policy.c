/* The policy of the scripted department (`whistle-dept run`) and the plan it
 * gives each step: which steps are ignored, returned, handled late or
 * resolved with a confirmed violation, and the event times of the updates,
 * computed from the step's own times only. Pure: no sockets, no clock.
 *
 * The policy file is one JSON object; `//` starts a comment that runs to the
 * end of the line (outside strings). Every key is optional:
 *   accept_after_min     60     ACCEPT this many minutes after issued_us
 *   resolve_after_min    1440   RESOLVE this many minutes after issued_us
 *                               (more than accept_after_min)
 *   return_after_min     120    RETURN this many minutes after issued_us
 *                               (more than accept_after_min)
 *   late_every           7      about one step in n acts late: ACCEPT at
 *                               accept_by + late_accept_min, RESOLVE (or
 *                               RETURN) at resolve_by + late_resolve_min
 *   late_accept_min      60
 *   late_resolve_min     1440
 *   return_every         10     about one step in n is RETURNed (no RESOLVE)
 *   return_reason        "非本单位职责"
 *   violation_every      3      about one step in n is resolved with a
 *                               confirmed violation and the step's
 *                               default_prohibition; the others without,
 *                               except steps before the end of their chain
 *                               (chain_pos < chain_len), always confirmed
 *                               (without a prohibition unless picked) so
 *                               that the chain goes on
 *   ignore_every         0      about one step in n gets no update at all
 * n = 0 means never. A step is picked for a selection when the FNV-1a hash of
 * "ticket_no|step", mixed with the selection's number, is a multiple of n:
 * the same steps are picked on every run. Ignoring comes first, then
 * returning; lateness applies to returned and resolved steps alike. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dept.h"

#define US_PER_MIN INT64_C(60000000)
#define MAX_MIN (INT64_C(366) * 24 * 60 * 10) /* ten years */
#define MAX_EVERY 1000000
#define MAX_POLICY_BYTES (1 << 20)
#define MAX_REASON_CHARS 500

void dept_policy_defaults(struct dept_policy *p)
{
  memset(p, 0, sizeof *p);
  p->accept_after_min = 60;
  p->resolve_after_min = 1440;
  p->return_after_min = 120;
  p->late_accept_min = 60;
  p->late_resolve_min = 1440;
  p->late_every = 7;
  p->return_every = 10;
  p->violation_every = 3;
  p->ignore_every = 0;
  snprintf(p->return_reason, sizeof p->return_reason, "%s", "非本单位职责");
}

/* Copies text with `//` comments (outside strings) replaced by spaces, so
 * that jansson's line and column numbers stay right. */
static char *strip_comments(const char *text, size_t len)
{
  char *s = malloc(len + 1);
  if (!s) return NULL;
  int in_str = 0, esc = 0, in_comment = 0;
  for (size_t i = 0; i < len; i++) {
    char c = text[i];
    if (in_comment) {
      if (c == '\n') in_comment = 0;
      s[i] = c == '\n' ? '\n' : ' ';
      continue;
    }
    if (in_str) {
      if (esc) esc = 0;
      else if (c == '\\') esc = 1;
      else if (c == '"') in_str = 0;
    } else if (c == '"') {
      in_str = 1;
    } else if (c == '/' && i + 1 < len && text[i + 1] == '/') {
      in_comment = 1;
      s[i] = ' ';
      continue;
    }
    s[i] = c;
  }
  s[len] = 0;
  return s;
}

struct int_key { const char *name; int64_t lo, hi; int is_every; size_t off; };

#define MIN_KEY(f) { #f, 0, MAX_MIN, 0, offsetof(struct dept_policy, f) }
#define EVERY_KEY(f) { #f, 0, MAX_EVERY, 1, offsetof(struct dept_policy, f) }
static const struct int_key INT_KEYS[] = {
  MIN_KEY(accept_after_min), MIN_KEY(resolve_after_min), MIN_KEY(return_after_min),
  MIN_KEY(late_accept_min), MIN_KEY(late_resolve_min),
  EVERY_KEY(late_every), EVERY_KEY(return_every), EVERY_KEY(violation_every),
  EVERY_KEY(ignore_every),
};
#define N_INT_KEYS (sizeof INT_KEYS / sizeof INT_KEYS[0])

static size_t utf8_chars(const char *s)
{
  size_t n = 0;
  for (; *s; s++) n += ((unsigned char)*s & 0xC0) != 0x80;
  return n;
}

static int set_int(struct dept_policy *p, const struct int_key *k, json_t *v, char *err,
                   size_t errlen)
{
  if (!json_is_integer(v) || json_integer_value(v) < k->lo || json_integer_value(v) > k->hi) {
    snprintf(err, errlen, "\"%s\" must be a whole number from %lld to %lld", k->name,
             (long long)k->lo, (long long)k->hi);
    return -1;
  }
  char *f = (char *)p + k->off;
  if (k->is_every) *(uint32_t *)(void *)f = (uint32_t)json_integer_value(v);
  else *(int64_t *)(void *)f = (int64_t)json_integer_value(v);
  return 0;
}

static int set_key(struct dept_policy *p, const char *key, json_t *v, char *err, size_t errlen)
{
  for (size_t i = 0; i < N_INT_KEYS; i++)
    if (strcmp(key, INT_KEYS[i].name) == 0) return set_int(p, &INT_KEYS[i], v, err, errlen);
  if (strcmp(key, "return_reason") == 0) {
    const char *s = json_string_value(v);
    if (!s || !s[0] || strlen(s) >= sizeof p->return_reason ||
        utf8_chars(s) > MAX_REASON_CHARS || memchr(s, 0, json_string_length(v))) {
      snprintf(err, errlen, "\"return_reason\" must be a string of 1 to %d characters",
               MAX_REASON_CHARS);
      return -1;
    }
    snprintf(p->return_reason, sizeof p->return_reason, "%s", s);
    return 0;
  }
  snprintf(err, errlen, "unknown key \"%s\" (see whistle-dept --help)", key);
  return -1;
}

int dept_policy_parse(struct dept_policy *p, const char *text, size_t len, char *err,
                      size_t errlen)
{
  struct dept_policy q;
  dept_policy_defaults(&q);
  char *clean = strip_comments(text, len);
  if (!clean) {
    snprintf(err, errlen, "out of memory");
    return -1;
  }
  json_error_t je;
  json_t *root = json_loadb(clean, len, JSON_REJECT_DUPLICATES, &je);
  free(clean);
  if (!root) {
    snprintf(err, errlen, "line %d, column %d: %s", je.line, je.column, je.text);
    return -1;
  }
  int rc = 0;
  if (!json_is_object(root)) {
    snprintf(err, errlen, "the policy must be a JSON object");
    rc = -1;
  }
  const char *key;
  json_t *v;
  json_object_foreach(root, key, v) {
    if (rc == 0 && set_key(&q, key, v, err, errlen)) rc = -1;
  }
  json_decref(root);
  if (rc == 0 && q.resolve_after_min <= q.accept_after_min) {
    snprintf(err, errlen, "\"resolve_after_min\" (%lld) must be more than \"accept_after_min\" (%lld)",
             (long long)q.resolve_after_min, (long long)q.accept_after_min);
    rc = -1;
  }
  if (rc == 0 && q.return_after_min <= q.accept_after_min) {
    snprintf(err, errlen, "\"return_after_min\" (%lld) must be more than \"accept_after_min\" (%lld)",
             (long long)q.return_after_min, (long long)q.accept_after_min);
    rc = -1;
  }
  if (rc == 0) *p = q;
  return rc;
}

int dept_policy_load(struct dept_policy *p, const char *path, char *err, size_t errlen)
{
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  char *buf = malloc(MAX_POLICY_BYTES + 1);
  size_t n = buf ? fread(buf, 1, MAX_POLICY_BYTES + 1, f) : 0;
  int bad = !buf || ferror(f) || n > MAX_POLICY_BYTES;
  fclose(f);
  if (bad) {
    snprintf(err, errlen, "%s: %s", path, !buf ? "out of memory"
                                      : n > MAX_POLICY_BYTES ? "larger than 1 MiB" : "read error");
    free(buf);
    return -1;
  }
  char why[256];
  int rc = dept_policy_parse(p, buf, n, why, sizeof why);
  free(buf);
  if (rc) snprintf(err, errlen, "%s: %s", path, why);
  return rc;
}

uint32_t dept_fnv1a(uint32_t h, const void *data, size_t len)
{
  const unsigned char *s = data;
  for (size_t i = 0; i < len; i++) {
    h ^= s[i];
    h *= UINT32_C(16777619);
  }
  return h;
}

uint32_t dept_step_hash(const char *ticket_no, uint32_t step)
{
  char num[16];
  int n = snprintf(num, sizeof num, "|%u", (unsigned)step);
  uint32_t h = dept_fnv1a(DEPT_FNV_BASIS, ticket_no, strlen(ticket_no));
  return dept_fnv1a(h, num, (size_t)n);
}

int dept_pick(uint32_t hash, uint32_t every, enum dept_pick_salt salt)
{
  if (every == 0) return 0;
  unsigned char b = (unsigned char)salt;
  uint32_t h = dept_fnv1a(hash, &b, 1);
  h ^= h >> 16; /* FNV-1a's low bits mix poorly: fold the high half in */
  return h % every == 0;
}

/* A deadline, or when the step has none, the on-time instant instead. */
static int64_t after_deadline(int64_t deadline_us, int64_t fallback_us, int64_t min)
{
  return (deadline_us > 0 ? deadline_us : fallback_us) + min * US_PER_MIN;
}

void dept_plan_step(const struct dept_policy *p, const struct dept_step *s, struct dept_plan *out)
{
  memset(out, 0, sizeof *out);
  out->hash = dept_step_hash(s->ticket_no, s->step);
  out->prohibition = "";
  if (dept_pick(out->hash, p->ignore_every, DEPT_PICK_IGNORE)) {
    out->kind = DEPT_PLAN_IGNORE;
    return;
  }
  int ret = dept_pick(out->hash, p->return_every, DEPT_PICK_RETURN);
  out->kind = ret ? DEPT_PLAN_RETURN : DEPT_PLAN_RESOLVE;
  out->late = dept_pick(out->hash, p->late_every, DEPT_PICK_LATE);
  int64_t on_time_accept = s->issued_us + p->accept_after_min * US_PER_MIN;
  int64_t on_time_second =
    s->issued_us + (ret ? p->return_after_min : p->resolve_after_min) * US_PER_MIN;
  if (out->late) {
    out->accept_at_us = after_deadline(s->accept_by_us, on_time_accept, p->late_accept_min);
    out->second_at_us = after_deadline(s->resolve_by_us, on_time_second, p->late_resolve_min);
  } else {
    out->accept_at_us = on_time_accept;
    out->second_at_us = on_time_second;
  }
  if (out->second_at_us <= out->accept_at_us) out->second_at_us = out->accept_at_us + US_PER_MIN;
  if (ret) return;
  int picked = dept_pick(out->hash, p->violation_every, DEPT_PICK_VIOLATION);
  out->violation_confirmed = picked || (s->chain_len && s->chain_pos < s->chain_len);
  if (picked && s->default_prohibition) out->prohibition = s->default_prohibition;
}
