/* A budgeted ProtobufCAllocator: unpacking a hostile frame can allocate at most
 * `budget` bytes in all, after which allocation fails and unpack returns NULL
 * (repeated empty sub-messages, huge counts). One per unpack, on the stack. */
#ifndef SVC_ALLOC_H
#define SVC_ALLOC_H

#include <stddef.h>
#include <protobuf-c/protobuf-c.h>

struct svc_pballoc {
  ProtobufCAllocator a; /* pass &x.a to *__unpack and *__free_unpacked */
  size_t budget, used;
  int exhausted;
};

void svc_pballoc_init(struct svc_pballoc *b, size_t budget);

#endif
