/* The R-I6a one-off at start-up: numbers typed into content and address
 * that referral took from intake, stored and published before intake masked
 * them. Rewrites each step.issued payload (the only referral event with
 * content and address) with both masked; the SQL (the outbox and tickets
 * passes, recorded once done) is in referral_store.c. */
#include "referral.h"
#include "referral_events.pb-c.h"
#include "svc_mask.h"

int referral_scrub_step_issued(void *arg, const uint8_t *payload, size_t len, uint8_t **out,
                               size_t *out_len)
{
  static const char *const fields[] = { "content", "address" };
  (void)arg;
  return svc_mask_pb(&whistle__referral__step_issued__descriptor, fields, 2, payload, len, out,
                     out_len);
}

int referral_scrub(const char *conninfo)
{
  return referral_store_scrub(conninfo, referral_scrub_step_issued);
}
