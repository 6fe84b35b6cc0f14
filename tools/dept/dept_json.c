/* Stream events and update replies as JSON lines (UTF-8 unescaped, keys in a
 * fixed order): the payload of each referral event kind is decoded by the
 * caller and written here field by field from its protobuf-c descriptor, so
 * new payload fields appear without code changes. Times (int64 fields named
 * *_us) become RFC 3339 in local time (+08:00) under the name without _us. */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dept.h"
#include "referral_events.pb-c.h"
#include "svc_time.h"

struct kind_map { const char *kind; const ProtobufCMessageDescriptor *d; };

static const struct kind_map KINDS[] = {
  { "step.issued", &whistle__referral__step_issued__descriptor },
  { "step.accepted", &whistle__referral__step_changed__descriptor },
  { "step.returned", &whistle__referral__step_changed__descriptor },
  { "step.progress", &whistle__referral__step_changed__descriptor },
  { "step.resolved", &whistle__referral__step_changed__descriptor },
  { "step.reopened", &whistle__referral__step_changed__descriptor },
  { "step.note", &whistle__referral__step_changed__descriptor },
  { "step.warning", &whistle__referral__step_clock__descriptor },
  { "ACCEPT_OVERDUE", &whistle__referral__step_clock__descriptor },
  { "RESOLVE_OVERDUE", &whistle__referral__step_clock__descriptor },
  { "ticket.resolved", &whistle__referral__ticket_state__descriptor },
  { "ticket.closed", &whistle__referral__ticket_state__descriptor },
  { "ticket.reopened", &whistle__referral__ticket_state__descriptor },
  { "ticket.returned", &whistle__referral__ticket_state__descriptor },
  { "ticket.consult", &whistle__referral__ticket_state__descriptor },
  { "ticket.feedback", &whistle__referral__feedback__descriptor },
  { "violation.confirmed", &whistle__referral__violation_confirmed__descriptor },
};

const ProtobufCMessageDescriptor *dept_payload_descriptor(const char *kind)
{
  for (size_t i = 0; i < sizeof KINDS / sizeof KINDS[0]; i++)
    if (strcmp(kind, KINDS[i].kind) == 0) return KINDS[i].d;
  return NULL;
}

static json_t *time_json(int64_t us)
{
  char buf[40];
  if (us == 0 || svc_time_format(us, SVC_DEFAULT_UTC_OFFSET, buf, sizeof buf) < 0)
    return json_null();
  return json_string(buf);
}

static int is_time_field(const ProtobufCFieldDescriptor *f)
{
  size_t n = strlen(f->name);
  return f->type == PROTOBUF_C_TYPE_INT64 && n > 3 && strcmp(f->name + n - 3, "_us") == 0;
}

/* One value of field f stored at p. */
static json_t *value_json(const ProtobufCFieldDescriptor *f, const void *p)
{
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: {
    const char *s = *(char *const *)p;
    return json_string(s ? s : ""); /* svc_pb_unpack checked the UTF-8 */
  }
  case PROTOBUF_C_TYPE_BOOL: return json_boolean(*(const protobuf_c_boolean *)p);
  case PROTOBUF_C_TYPE_UINT32:
  case PROTOBUF_C_TYPE_FIXED32: return json_integer(*(const uint32_t *)p);
  case PROTOBUF_C_TYPE_INT32:
  case PROTOBUF_C_TYPE_SINT32:
  case PROTOBUF_C_TYPE_SFIXED32: return json_integer(*(const int32_t *)p);
  case PROTOBUF_C_TYPE_INT64:
  case PROTOBUF_C_TYPE_SINT64:
  case PROTOBUF_C_TYPE_SFIXED64:
    return is_time_field(f) ? time_json(*(const int64_t *)p) : json_integer(*(const int64_t *)p);
  case PROTOBUF_C_TYPE_UINT64:
  case PROTOBUF_C_TYPE_FIXED64: return json_integer((json_int_t)*(const uint64_t *)p);
  case PROTOBUF_C_TYPE_ENUM: {
    const ProtobufCEnumValue *v =
      protobuf_c_enum_descriptor_get_value(f->descriptor, *(const int *)p);
    return v ? json_string(v->name) : json_integer(*(const int *)p);
  }
  default: return json_null(); /* the referral payloads have no other types */
  }
}

static size_t value_size(const ProtobufCFieldDescriptor *f)
{
  switch (f->type) {
  case PROTOBUF_C_TYPE_STRING: return sizeof(char *);
  case PROTOBUF_C_TYPE_BOOL: return sizeof(protobuf_c_boolean);
  case PROTOBUF_C_TYPE_INT64: case PROTOBUF_C_TYPE_SINT64: case PROTOBUF_C_TYPE_SFIXED64:
  case PROTOBUF_C_TYPE_UINT64: case PROTOBUF_C_TYPE_FIXED64: return 8;
  case PROTOBUF_C_TYPE_MESSAGE: return sizeof(void *);
  case PROTOBUF_C_TYPE_BYTES: return sizeof(ProtobufCBinaryData);
  case PROTOBUF_C_TYPE_DOUBLE: return sizeof(double);
  default: return 4;
  }
}

/* The JSON name of field f: time fields lose their "_us". */
static void field_name(const ProtobufCFieldDescriptor *f, char *buf, size_t n)
{
  size_t len = strlen(f->name);
  if (is_time_field(f)) len -= 3;
  snprintf(buf, n, "%.*s", (int)len, f->name);
}

/* Adds every field of m to o, in field order; keys o has already keep their
 * value ("unit" is the watcher's own), except that a differing payload value
 * is added as "payload_<name>". */
static void add_fields(json_t *o, const ProtobufCMessage *m)
{
  const ProtobufCMessageDescriptor *d = m->descriptor;
  for (unsigned i = 0; i < d->n_fields; i++) {
    const ProtobufCFieldDescriptor *f = &d->fields[i];
    const char *base = (const char *)m + f->offset;
    json_t *v;
    if (f->label == PROTOBUF_C_LABEL_REPEATED) {
      size_t cnt = *(const size_t *)(const void *)((const char *)m + f->quantifier_offset);
      const char *arr = *(const char *const *)(const void *)base;
      v = json_array();
      for (size_t k = 0; k < cnt; k++)
        json_array_append_new(v, value_json(f, arr + k * value_size(f)));
    } else {
      v = value_json(f, base);
    }
    char name[128];
    field_name(f, name, sizeof name);
    json_t *had = json_object_get(o, name);
    if (had && json_equal(had, v)) {
      json_decref(v);
      continue;
    }
    if (had) {
      char alt[160];
      snprintf(alt, sizeof alt, "payload_%s", name);
      json_object_set_new(o, alt, v);
    } else {
      json_object_set_new(o, name, v);
    }
  }
}

static json_t *hex_json(const uint8_t *p, size_t n)
{
  char *s = malloc(2 * n + 1);
  if (!s) return json_null();
  for (size_t i = 0; i < n; i++) snprintf(s + 2 * i, 3, "%02x", p[i]);
  s[2 * n] = 0;
  json_t *v = json_string(s);
  free(s);
  return v;
}

static char *dump_line(json_t *o, size_t *n)
{
  char *body = json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_decref(o);
  if (!body) return NULL;
  size_t len = strlen(body);
  char *line = realloc(body, len + 2);
  if (!line) {
    free(body);
    return NULL;
  }
  line[len] = '\n';
  line[len + 1] = 0;
  if (n) *n = len + 1;
  return line;
}

char *dept_event_line(uint64_t seq, int64_t event_us, int64_t received_us, const char *kind,
                      const char *unit, const ProtobufCMessage *payload, const uint8_t *raw,
                      size_t len, size_t *n)
{
  json_t *o = json_object();
  if (!o) return NULL;
  json_object_set_new(o, "seq", json_integer((json_int_t)seq));
  if (received_us) json_object_set_new(o, "received_us", json_integer((json_int_t)received_us));
  json_object_set_new(o, "kind", json_string(kind));
  json_object_set_new(o, "event_at", time_json(event_us));
  if (strcmp(kind, "WATERMARK") != 0) json_object_set_new(o, "unit", json_string(unit));
  if (payload) add_fields(o, payload);
  else if (len) json_object_set_new(o, "payload_hex", hex_json(raw, len));
  return dump_line(o, n);
}

static json_t *enum_json(const ProtobufCEnumDescriptor *d, int v)
{
  const ProtobufCEnumValue *e = protobuf_c_enum_descriptor_get_value(d, v);
  return e ? json_string(e->name) : json_integer(v);
}

static json_t *str_or_null(const char *s)
{
  return s && s[0] ? json_string(s) : json_null();
}

char *dept_reply_line(const Whistle__Unit__Reply *r)
{
  json_t *o = json_object();
  if (!o) return NULL;
  if (!r) {
    json_object_set_new(o, "status", json_string("NO_REPLY"));
    return dump_line(o, NULL);
  }
  json_object_set_new(o, "status", enum_json(&whistle__unit__reply__status__descriptor, (int)r->status));
  json_object_set_new(o, "code", enum_json(&whistle__unit__reply__code__descriptor, (int)r->code));
  json_object_set_new(o, "reason", str_or_null(r->reason));
  json_object_set_new(o, "step_state", str_or_null(r->step_state));
  json_object_set_new(o, "ticket_state", str_or_null(r->ticket_state));
  json_object_set_new(o, "late", json_boolean(r->late));
  json_object_set_new(o, "next_step", json_integer(r->next_step));
  return dump_line(o, NULL);
}
