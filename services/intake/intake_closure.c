/* Referral's closures back into intake: the ticket.closed events of the
 * referral stream set intake.tickets.closed_us, so that a ticket whose
 * referral is closed is no repeat target (R-I5) and its caller's personal
 * data ages out after the retention period (R-I6). Everything else on the
 * referral stream is ignored here. */
#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "referral_events.pb-c.h"
#include "svc_alloc.h"
#include "svc_log.h"
#include "svc_pg.h"
#include "svc_stream.h"

#define DECODE_BUDGET (1u << 20)

int intake_closure_apply(void *arg, struct svc_pg_batch *b, const struct svc_stream_event *ev,
                         size_t n)
{
  struct svc_pg_stmt *st = arg;
  char **nos = calloc(n + 1, sizeof *nos);
  int64_t *ats = calloc(n + 1, sizeof *ats);
  size_t k = 0;
  int rc = -1;
  if (!nos || !ats) goto out;
  for (size_t i = 0; i < n; i++) {
    if (strcmp(ev[i].kind, "ticket.closed") != 0) continue;
    struct svc_pballoc al;
    Whistle__Referral__TicketState *m = (Whistle__Referral__TicketState *)svc_pb_unpack(
      &whistle__referral__ticket_state__descriptor, &al, DECODE_BUDGET, ev[i].payload,
      ev[i].payload_len, NULL);
    if (!m) {
      svc_warn("unreadable ticket.closed event skipped", " seq=%llu", (unsigned long long)ev[i].seq);
      continue;
    }
    nos[k] = strdup(m->ticket_no);
    ats[k] = m->at_us;
    protobuf_c_message_free_unpacked(&m->base, &al.a);
    if (!nos[k]) goto out;
    k++;
  }
  rc = k ? intake_store_closed(st, b, (const char *const *)nos, ats, k) : 0;
out:
  for (size_t i = 0; nos && i < k; i++) free(nos[i]);
  free(nos);
  free(ats);
  return rc;
}
