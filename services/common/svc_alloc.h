/* Decoding hostile frames: a budgeted ProtobufCAllocator (unpacking can
 * allocate at most `budget` bytes in all, after which unpack returns NULL:
 * repeated empty sub-messages, huge counts), and a check of every string field
 * that protobuf-c does not make (UTF-8, no NUL). One allocator per unpack. */
#ifndef SVC_ALLOC_H
#define SVC_ALLOC_H

#include <stddef.h>
#include <stdint.h>
#include <protobuf-c/protobuf-c.h>

struct svc_pballoc {
  ProtobufCAllocator a; /* pass &x.a to *__unpack and *__free_unpacked */
  size_t budget, used;
  int exhausted;
};

void svc_pballoc_init(struct svc_pballoc *b, size_t budget);

/* Walks a serialized message of type d and returns 0 if every string field,
 * at any depth, holds UTF-8 without NUL (protobuf-c cuts strings at a NUL and
 * checks no UTF-8); -1 otherwise or on malformed wire data. */
int svc_pb_strings_ok(const ProtobufCMessageDescriptor *d, const uint8_t *data, size_t len);

/* The one way to decode a frame from the network: initialises b with budget
 * and unpacks a message of type d, refusing (NULL) malformed or truncated
 * data, anything over the budget, and string fields holding a NUL or invalid
 * UTF-8. A caller that wants to answer such a message (with its request id)
 * passes bad_strings: the message is then returned with *bad_strings = 1,
 * and its strings must not be used. Free the result with
 * protobuf_c_message_free_unpacked(m, &b->a). */
ProtobufCMessage *svc_pb_unpack(const ProtobufCMessageDescriptor *d, struct svc_pballoc *b,
                                size_t budget, const uint8_t *data, size_t len,
                                int *bad_strings);
/* For answering a frame that does not decode: the value of top-level varint
 * field `field` (e.g. an envelope's request_id) as far as the wire data can
 * be read. 0 with *out set, or -1 when the field cannot be read before the
 * data goes bad. */
int svc_pb_peek_varint(const uint8_t *data, size_t len, uint32_t field, uint64_t *out);

#endif
