/* The budgeted protobuf-c allocator: every allocation of one unpack is charged
 * against a byte budget, so a hostile frame cannot make a daemon allocate
 * without bound. Each block carries its size in a small header. */
#include "svc_alloc.h"

#include <stdint.h>
#include <stdlib.h>

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
