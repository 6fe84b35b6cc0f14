/* R-I6a for events already published: decodes a protobuf payload, masks the
 * string fields named with svc_mask_text and encodes the message again, so
 * that a start-up clean-up can rewrite an outbox row in place. Pure: no I/O. */
#include <stdlib.h>

#include "svc_alloc.h"
#include "svc_mask.h"

#define MAX_FIELDS 8

/* The slot of the singular string field `name` of m, or NULL. */
static char **string_slot(const ProtobufCMessageDescriptor *d, ProtobufCMessage *m,
                          const char *name)
{
  const ProtobufCFieldDescriptor *f = protobuf_c_message_descriptor_get_field_by_name(d, name);
  if (!f || f->type != PROTOBUF_C_TYPE_STRING || f->label == PROTOBUF_C_LABEL_REPEATED ||
      (f->flags & PROTOBUF_C_FIELD_FLAG_ONEOF))
    return NULL;
  return (char **)((unsigned char *)m + f->offset);
}

/* Packs m into a fresh buffer. 0 or -1 (out of memory). */
static int pack(const ProtobufCMessage *m, unsigned char **out, size_t *out_len)
{
  size_t n = protobuf_c_message_get_packed_size(m);
  unsigned char *buf = malloc(n ? n : 1);
  if (!buf) return -1;
  *out_len = protobuf_c_message_pack(m, buf);
  *out = buf;
  return 0;
}

int svc_mask_pb(const struct ProtobufCMessageDescriptor *d, const char *const *fields,
                size_t n_fields, const unsigned char *in, size_t n, unsigned char **out,
                size_t *out_len)
{
  struct svc_pballoc al;
  char **slot[MAX_FIELDS], *orig[MAX_FIELDS];
  size_t k = 0;
  int rc = 0;
  if (!d || !out || !out_len || n_fields > MAX_FIELDS) return -1;
  *out = NULL;
  *out_len = 0;
  ProtobufCMessage *m = svc_pb_unpack(d, &al, 64 * 1024 + 2 * n, in, n, NULL);
  if (!m) return -1;
  for (size_t i = 0; i < n_fields && rc == 0; i++) {
    char **s = string_slot(d, m, fields[i]);
    int changed = 0;
    char *masked = s ? svc_mask_dup(*s, &changed) : NULL;
    if (!masked) {
      rc = -1;
    } else if (!changed) {
      free(masked);
    } else { /* the message points at masked until it is packed */
      slot[k] = s;
      orig[k] = *s;
      *s = masked;
      k++;
    }
  }
  if (rc == 0 && k > 0) rc = pack(m, out, out_len) == 0 ? 1 : -1;
  for (size_t j = 0; j < k; j++) {
    free(*slot[j]);
    *slot[j] = orig[j]; /* what free_unpacked expects to free */
  }
  protobuf_c_message_free_unpacked(m, &al.a);
  return rc;
}
