/* The R-I6a one-off at start-up: numbers typed into content and address
 * that intake stored and published before they were masked. Rewrites each
 * ticket.accepted payload with content and address masked; the SQL (the
 * outbox and tickets passes, recorded once done) is in intake_store.c. */
#include "intake.h"
#include "intake_events.pb-c.h"
#include "svc_mask.h"

int intake_scrub_accepted(void *arg, const uint8_t *payload, size_t len, uint8_t **out,
                          size_t *out_len)
{
  static const char *const fields[] = { "content", "address" };
  (void)arg;
  return svc_mask_pb(&whistle__intake__ticket_accepted__descriptor, fields, 2, payload, len, out,
                     out_len);
}

int intake_scrub(const char *conninfo)
{
  return intake_store_scrub(conninfo, intake_scrub_accepted);
}
