/* The stream's counters in a daemon's status reply: the producer's and a
 * consumer's, each under the name of its role in the daemon. Built on the
 * public stats calls only. */
#include "svc_status.h"
#include "svc_stream.h"

void svc_stream_producer_status(const struct svc_stream_producer *p, const char *prefix,
                                struct svc_status_out *o)
{
  struct svc_stream_producer_stats st;
  svc_stream_producer_stats(p, &st);
  const struct svc_status_kv c[] = {
    { "head", st.head }, { "appended", st.appended }, { "dropped", st.dropped },
    { "sent", st.sent }, { "acks", st.acks }, { "subscribes", st.subscribes },
    { "subscribers", st.subscribers }, { "catchup_pages", st.catchup_pages },
    { "bad_frames", st.bad_frames }, { "refused", st.refused },
    { "max_inflight", st.max_inflight },
  };
  svc_status_add_all(o, prefix, c, sizeof c / sizeof c[0]);
}

void svc_stream_consumer_status(const struct svc_stream_consumer *c, const char *prefix,
                                struct svc_status_out *o)
{
  struct svc_stream_consumer_stats st;
  svc_stream_consumer_stats(c, &st);
  const struct svc_status_kv v[] = {
    { "position", st.position }, { "lag", st.lag }, { "lag_us", st.lag_us }, { "received", st.received },
    { "applied", st.applied },
    { "batches", st.batches }, { "resubscribes", st.resubscribes },
    { "duplicates", st.duplicates }, { "errors", st.errors }, { "max_unacked", st.max_unacked },
    { "poisoned", st.poisoned }, { "poison_seq", st.poison_seq },
    { "poison_tries", st.poison_tries },
  };
  svc_status_add_all(o, prefix, v, sizeof v / sizeof v[0]);
  char name[64];
  snprintf(name, sizeof name, "%s.apply", prefix);
  svc_status_add_hist(o, name, svc_stream_consumer_apply_hist(c));
}

void svc_stream_producer_output(const struct svc_stream_producer *p, const char *stream,
                                int64_t watermark_us, struct svc_status_out *o)
{
  struct svc_stream_producer_stats st;
  svc_stream_producer_stats(p, &st);
  svc_status_output(o, stream, st.head, watermark_us);
}

void svc_stream_consumer_input(const struct svc_stream_consumer *c, const char *input,
                               int64_t watermark_us, int clock, struct svc_status_out *o)
{
  struct svc_stream_consumer_stats st;
  svc_stream_consumer_stats(c, &st);
  svc_status_input(o, input, st.position, watermark_us, clock);
}
