/* Decoding hostile frames: the budgeted protobuf-c allocator (every allocation
 * of one unpack is charged against a byte budget; each block carries its size
 * in a small header) and the string-field check protobuf-c lacks. */
#include "svc_alloc.h"

#include <stdint.h>
#include <stdlib.h>

#include "svc_csv.h"

#define HDR sizeof(max_align_t)

static void *budget_alloc(void *data, size_t size)
{
  struct svc_pballoc *b = data;
  if (size > b->budget || b->used + size + HDR > b->budget) {
    b->exhausted = 1;
    return NULL;
  }
  unsigned char *p = malloc(size + HDR);
  if (!p) return NULL;
  *(size_t *)p = size;
  b->used += size + HDR;
  return p + HDR;
}

static void budget_free(void *data, void *ptr)
{
  struct svc_pballoc *b = data;
  if (!ptr) return;
  unsigned char *p = (unsigned char *)ptr - HDR;
  size_t size = *(size_t *)p;
  b->used -= size + HDR;
  free(p);
}

void svc_pballoc_init(struct svc_pballoc *b, size_t budget)
{
  b->a.alloc = budget_alloc;
  b->a.free = budget_free;
  b->a.allocator_data = b;
  b->budget = budget;
  b->used = 0;
  b->exhausted = 0;
}

static int get_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
  *v = 0;
  for (int shift = 0; shift < 70 && *p < end; shift += 7) {
    uint8_t b = *(*p)++;
    *v |= (uint64_t)(b & 0x7f) << (shift < 64 ? shift : 0);
    if (!(b & 0x80)) return 0;
  }
  return -1;
}

static int check_msg(const ProtobufCMessageDescriptor *d, const uint8_t *p, const uint8_t *end,
                     int depth)
{
  if (depth > 32) return -1;
  while (p < end) {
    uint64_t key, v;
    if (get_varint(&p, end, &key)) return -1;
    switch (key & 7) {
    case 0: if (get_varint(&p, end, &v)) return -1; break;
    case 1: if (end - p < 8) return -1; p += 8; break;
    case 5: if (end - p < 4) return -1; p += 4; break;
    case 2: {
      if (get_varint(&p, end, &v) || v > (uint64_t)(end - p)) return -1;
      const ProtobufCFieldDescriptor *f =
        (key >> 3) <= UINT32_MAX ? protobuf_c_message_descriptor_get_field(d, (unsigned)(key >> 3)) : NULL;
      if (f && f->type == PROTOBUF_C_TYPE_STRING && !svc_utf8_valid((const char *)p, v)) return -1;
      if (f && f->type == PROTOBUF_C_TYPE_MESSAGE && check_msg(f->descriptor, p, p + v, depth + 1))
        return -1;
      p += v;
      break;
    }
    default: return -1;
    }
  }
  return 0;
}

int svc_pb_strings_ok(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len)
{
  return check_msg(d, data, data + len, 0);
}

ProtobufCMessage *svc_pb_unpack(const ProtobufCMessageDescriptor *d, struct svc_pballoc *b,
                                size_t budget, const uint8_t *data, size_t len,
                                int *bad_strings)
{
  svc_pballoc_init(b, budget);
  if (bad_strings) *bad_strings = 0;
  ProtobufCMessage *m = protobuf_c_message_unpack(d, &b->a, len, data);
  if (m && svc_pb_strings_ok(d, data, len) != 0) {
    if (bad_strings) {
      *bad_strings = 1;
      return m;
    }
    protobuf_c_message_free_unpacked(m, &b->a);
    return NULL;
  }
  return m;
}

int svc_pb_peek_varint(const uint8_t *data, size_t len, uint32_t field, uint64_t *out)
{
  const uint8_t *p = data, *end = data + len;
  int found = 0;
  while (p < end) {
    uint64_t key, v;
    if (get_varint(&p, end, &key)) break;
    switch (key & 7) {
    case 0:
      if (get_varint(&p, end, &v)) return found ? 0 : -1;
      if ((key >> 3) == field) {
        *out = v; /* the last occurrence wins, as in protobuf */
        found = 1;
      }
      break;
    case 1: if (end - p < 8) return found ? 0 : -1; p += 8; break;
    case 5: if (end - p < 4) return found ? 0 : -1; p += 4; break;
    case 2:
      if (get_varint(&p, end, &v) || v > (uint64_t)(end - p)) return found ? 0 : -1;
      p += v;
      break;
    default: return found ? 0 : -1;
    }
  }
  return found ? 0 : -1;
}
