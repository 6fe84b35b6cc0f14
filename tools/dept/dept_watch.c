/* The stream subscription of watch and run (proto/stream.proto): Subscribe
 * as the unit from the recorded position, check each Events message's
 * session and from_seq, write the new events in seq order (an event may be
 * held until its updates are answered), record the position after each
 * durable write and acknowledge it, acknowledge once a second when idle, and
 * re-subscribe (on a fresh socket after silence) when the producer errs,
 * falls silent or shows a gap. The payload type of each kind comes from the
 * caller (referral's or escalation's events); watermarks may be skipped. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dept.h"
#include "stream.pb-c.h"
#include "svc_alloc.h"
#include "svc_time.h"

#define STREAM_VERSION 1
#define TICK_MS 100
#define ACK_EVERY_US SVC_US_PER_SEC
#define RESUB_MIN_US (200 * 1000)
#define FRAME_BUDGET (16u << 20)
#define PAYLOAD_BUDGET (1u << 20)

struct item {
  uint64_t seq;
  char *line; size_t len;
  unsigned holds;
};

struct dept_watch {
  uv_loop_t *loop;
  struct svc_zctx *z;
  struct svc_zsock *sock;
  uv_timer_t tick, soon;        /* housekeeping; flush/finish on the next turn */
  int open_handles;
  char *endpoint, *unit, *server_key;
  struct dept_watch_opts o;
  dept_event_cb on_event;
  dept_done_cb on_done;
  void *arg;
  struct dept_out *out;
  struct item *q; size_t q_head, q_n, q_cap; /* received, not yet written */
  uint64_t received;            /* the last seq queued or written */
  uint64_t session, subscribed, accepted;
  int64_t heard_us, acked_us, resub_us, activity_us;
  int heard_any, resub_due, flush_due, finishing, finished, rc;
  const char *resub_why;        /* why resub_due was set */
  struct dept_watch_stats st;
};

static void on_message(struct svc_zsock *z, const struct svc_frame *f, size_t n,
                       const char *user_id, void *arg);

static void finish(struct dept_watch *w, int rc);

/* ---- sending ------------------------------------------------------------- */

static void send_msg(struct dept_watch *w, Whistle__Stream__StreamMessage *m)
{
  m->version = STREAM_VERSION;
  size_t len = whistle__stream__stream_message__get_packed_size(m);
  uint8_t *buf = malloc(len ? len : 1);
  if (!buf) return;
  whistle__stream__stream_message__pack(m, buf);
  struct svc_frame fr = { buf, len };
  svc_zsock_send(w->sock, &fr, 1);
  free(buf);
}

static void send_ack(struct dept_watch *w)
{
  Whistle__Stream__Ack a = WHISTLE__STREAM__ACK__INIT;
  a.seq = dept_out_position(w->out);
  Whistle__Stream__StreamMessage m = WHISTLE__STREAM__STREAM_MESSAGE__INIT;
  m.body_case = WHISTLE__STREAM__STREAM_MESSAGE__BODY_ACK;
  m.ack = &a;
  send_msg(w, &m);
  w->acked_us = svc_mono_us();
}

/* A new session after what is written or queued: queued events are kept. */
static void subscribe(struct dept_watch *w)
{
  w->received = w->q_n ? w->q[(w->q_head + w->q_n - 1) % w->q_cap].seq : dept_out_position(w->out);
  w->session = (uint64_t)svc_wall_us() ^ (w->subscribed << 48);
  Whistle__Stream__Subscribe s = WHISTLE__STREAM__SUBSCRIBE__INIT;
  s.consumer = w->unit;
  s.after_seq = w->received;
  s.window = w->o.window ? w->o.window : 1000;
  s.session = w->session;
  Whistle__Stream__StreamMessage m = WHISTLE__STREAM__STREAM_MESSAGE__INIT;
  m.body_case = WHISTLE__STREAM__STREAM_MESSAGE__BODY_SUBSCRIBE;
  m.subscribe = &s;
  send_msg(w, &m);
  w->resub_us = svc_mono_us();
  if (!w->heard_any) w->heard_us = w->resub_us;
  w->resub_due = 0;
  if (w->subscribed++) w->st.resubscribes++;
}

static void request_resubscribe(struct dept_watch *w, const char *why)
{
  if (w->finishing) return;
  if (svc_mono_us() - w->resub_us < RESUB_MIN_US) {
    w->resub_due = 1; /* the tick does it shortly */
    w->resub_why = why;
    return;
  }
  if (w->subscribed > 1 || strcmp(why, "producer silent") != 0)
    fprintf(stderr, "whistle-dept: re-subscribing after seq %llu: %s\n",
            (unsigned long long)w->received, why);
  subscribe(w);
}

/* A fresh DEALER: libzmq does not reconnect a connection it dropped for a
 * protocol error (such as a frame over the size limit). */
static void reconnect(struct dept_watch *w)
{
  struct svc_zsock_opts zo = { .type = ZMQ_DEALER, .connect = w->endpoint,
                               .server_key = w->server_key };
  struct svc_zsock *n = svc_zsock_new(w->z, w->loop, &zo, on_message, w);
  if (!n) return;
  svc_zsock_close(&w->sock);
  w->sock = n;
}

/* ---- the queue and the output ------------------------------------------ */

static void schedule_flush(struct dept_watch *w);

static int queue_push(struct dept_watch *w, uint64_t seq, char *line, size_t len, unsigned holds)
{
  if (w->q_n == w->q_cap) {
    size_t cap = w->q_cap ? w->q_cap * 2 : 256;
    struct item *n = malloc(cap * sizeof *n);
    if (!n) return -1;
    for (size_t i = 0; i < w->q_n; i++) n[i] = w->q[(w->q_head + i) % w->q_cap];
    free(w->q);
    w->q = n;
    w->q_cap = cap;
    w->q_head = 0;
  }
  w->q[(w->q_head + w->q_n++) % w->q_cap] = (struct item){ seq, line, len, holds };
  return 0;
}

/* Writes the events at the head of the queue that are not held, makes them
 * durable, records the position and acknowledges it. */
static void flush(struct dept_watch *w)
{
  uint64_t last = 0;
  while (w->q_n && w->q[w->q_head].holds == 0) {
    struct item *it = &w->q[w->q_head];
    int bad = it->len && dept_out_write(w->out, it->line, it->len); /* 0: a skipped event */
    if (bad) {
      fprintf(stderr, "whistle-dept: cannot write the output\n");
      finish(w, 1);
      return;
    }
    last = it->seq;
    if (it->len) w->st.written++;
    free(it->line);
    w->q_head = (w->q_head + 1) % w->q_cap;
    w->q_n--;
  }
  if (last) {
    if (dept_out_commit(w->out, last)) {
      finish(w, 1);
      return;
    }
    send_ack(w);
  }
  if (w->o.max_events && w->accepted >= w->o.max_events && w->q_n == 0) finish(w, 0);
}

static void soon_cb(uv_timer_t *t)
{
  struct dept_watch *w = t->data;
  if (w->flush_due && !w->finishing) {
    w->flush_due = 0;
    flush(w);
  }
  if (w->finishing && !w->finished) {
    w->finished = 1;
    w->on_done(w->arg, w->rc);
  }
}

static void schedule_flush(struct dept_watch *w)
{
  w->flush_due = 1;
  if (!uv_is_active((uv_handle_t *)&w->soon)) uv_timer_start(&w->soon, soon_cb, 0, 0);
}

/* Ends the watch; the done callback runs on the next turn of the loop. */
static void finish(struct dept_watch *w, int rc)
{
  if (w->finishing) return;
  w->finishing = 1;
  w->rc = rc;
  uv_timer_stop(&w->tick);
  svc_zsock_pause(w->sock, 1);
  uv_timer_start(&w->soon, soon_cb, 0, 0);
}

/* ---- receiving ----------------------------------------------------------- */

static char *event_line(struct dept_watch *w, const Whistle__Stream__Event *e, size_t *len,
                        unsigned *holds)
{
  const ProtobufCMessageDescriptor *d = w->o.payload_of ? w->o.payload_of(e->kind)
                                                        : dept_payload_descriptor(e->kind);
  ProtobufCMessage *p = NULL;
  struct svc_pballoc al;
  if (d) p = svc_pb_unpack(d, &al, PAYLOAD_BUDGET, e->payload.data, e->payload.len, NULL);
  if (d && !p) {
    w->st.bad_frames++;
    fprintf(stderr, "whistle-dept: seq %llu: the %s payload does not decode; written as hex\n",
            (unsigned long long)e->seq, e->kind);
  }
  *holds = w->on_event ? w->on_event(w->arg, e->seq, e->kind, p) : 0;
  char *line = dept_event_line(e->seq, e->event_time_us, w->o.stamp ? svc_wall_us() : 0, e->kind,
                               w->unit, p,
                               e->payload.data, e->payload.len, len);
  if (p) protobuf_c_message_free_unpacked(p, &al.a);
  return line;
}

static void on_events(struct dept_watch *w, const Whistle__Stream__Events *ev)
{
  if (ev->session != w->session) return; /* an earlier session's leftovers */
  if (w->o.max_events && w->accepted >= w->o.max_events) return; /* taking no more */
  if (ev->from_seq != w->received) {
    request_resubscribe(w, "gap in the stream (from_seq is not the last seq received)");
    return;
  }
  for (size_t i = 0; i < ev->n_events; i++) {
    const Whistle__Stream__Event *e = ev->events[i];
    if (e->seq <= w->received) {
      w->st.duplicates++;
      continue;
    }
    if (w->o.max_events && w->accepted >= w->o.max_events) break;
    if (w->o.skip_watermarks && strcmp(e->kind, "WATERMARK") == 0) {
      /* No line; the position still moves past it, in seq order. */
      if (queue_push(w, e->seq, NULL, 0, 0)) {
        fprintf(stderr, "whistle-dept: out of memory\n");
        finish(w, 1);
        return;
      }
      w->received = e->seq;
      continue;
    }
    size_t len;
    unsigned holds;
    char *line = event_line(w, e, &len, &holds);
    if (!line || queue_push(w, e->seq, line, len, holds)) {
      free(line);
      fprintf(stderr, "whistle-dept: out of memory\n");
      finish(w, 1);
      return;
    }
    w->received = e->seq;
    w->accepted++;
    w->activity_us = svc_mono_us();
  }
  schedule_flush(w);
}

static void on_error(struct dept_watch *w, const Whistle__Stream__StreamError *e)
{
  const ProtobufCEnumValue *v =
    protobuf_c_enum_descriptor_get_value(&whistle__stream__stream_error__code__descriptor, e->code);
  fprintf(stderr, "whistle-dept: the stream answered %s: %s\n", v ? v->name : "an error",
          e->message ? e->message : "");
  if (e->code == WHISTLE__STREAM__STREAM_ERROR__CODE__FORBIDDEN)
    fprintf(stderr, "whistle-dept: (is --unit %s the identity of --client-key?)\n", w->unit);
  request_resubscribe(w, "error from the stream");
}

static void on_message(struct svc_zsock *z, const struct svc_frame *f, size_t n,
                       const char *user_id, void *arg)
{
  struct dept_watch *w = arg;
  (void)z;
  (void)user_id;
  if (w->finishing) return;
  if (n != 1) {
    w->st.bad_frames++;
    return;
  }
  struct svc_pballoc al;
  Whistle__Stream__StreamMessage *m = (Whistle__Stream__StreamMessage *)svc_pb_unpack(
    &whistle__stream__stream_message__descriptor, &al, FRAME_BUDGET, f[0].data, f[0].len, NULL);
  if (!m || m->version != STREAM_VERSION) {
    w->st.bad_frames++;
    if (m) whistle__stream__stream_message__free_unpacked(m, &al.a);
    return;
  }
  w->heard_us = svc_mono_us();
  w->heard_any = 1;
  if (m->body_case == WHISTLE__STREAM__STREAM_MESSAGE__BODY_EVENTS) on_events(w, m->events);
  else if (m->body_case == WHISTLE__STREAM__STREAM_MESSAGE__BODY_ERROR) on_error(w, m->error);
  whistle__stream__stream_message__free_unpacked(m, &al.a); /* heartbeats: alive */
}

/* ---- housekeeping -------------------------------------------------------- */

static void tick_cb(uv_timer_t *t)
{
  struct dept_watch *w = t->data;
  int64_t now = svc_mono_us();
  int silent = now - w->heard_us > (int64_t)w->o.silence_ms * 1000;
  if (silent && now - w->resub_us > (int64_t)w->o.silence_ms * 1000) {
    reconnect(w);
    request_resubscribe(w, "producer silent");
  } else if (w->resub_due) {
    request_resubscribe(w, w->resub_why);
  } else if (now - w->acked_us >= ACK_EVERY_US) {
    send_ack(w);
  }
  if (w->o.until_idle_ms && now - w->activity_us >= w->o.until_idle_ms * 1000 && w->q_n == 0) {
    if (!w->heard_any)
      fprintf(stderr, "whistle-dept: no answer from the stream at %s in %lld ms\n", w->endpoint,
              (long long)w->o.until_idle_ms);
    finish(w, w->heard_any ? 0 : 1);
  }
}

/* ---- life cycle ---------------------------------------------------------- */

struct dept_watch *dept_watch_new(uv_loop_t *loop, struct svc_zctx *z,
                                  const struct dept_watch_opts *o, dept_event_cb on_event,
                                  dept_done_cb on_done, void *arg, char *err, size_t errlen)
{
  struct dept_watch *w = calloc(1, sizeof *w);
  if (!w) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  w->loop = loop;
  w->z = z;
  w->o = *o;
  if (!w->o.silence_ms) w->o.silence_ms = 5000;
  w->on_event = on_event;
  w->on_done = on_done;
  w->arg = arg;
  w->endpoint = strdup(o->endpoint);
  w->unit = strdup(o->unit);
  w->server_key = o->server_key ? strdup(o->server_key) : NULL;
  if (!w->endpoint || !w->unit || (o->server_key && !w->server_key)) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  w->out = dept_out_open(o->out_path, o->position_path, err, errlen);
  if (!w->out) goto fail;
  struct svc_zsock_opts zo = { .type = ZMQ_DEALER, .connect = w->endpoint,
                               .server_key = w->server_key };
  w->sock = svc_zsock_new(z, loop, &zo, on_message, w);
  if (!w->sock) {
    snprintf(err, errlen, "cannot connect to the stream at %s", o->endpoint);
    goto fail;
  }
  uv_timer_init(loop, &w->tick);
  uv_timer_init(loop, &w->soon);
  w->tick.data = w->soon.data = w;
  w->open_handles = 2;
  w->activity_us = w->acked_us = svc_mono_us();
  uv_timer_start(&w->tick, tick_cb, TICK_MS, TICK_MS);
  subscribe(w);
  return w;
fail:
  dept_out_close(&w->out);
  free(w->endpoint);
  free(w->unit);
  free(w->server_key);
  free(w);
  return NULL;
}

void dept_watch_release(struct dept_watch *w, uint64_t seq)
{
  size_t lo = 0, hi = w->q_n;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (w->q[(w->q_head + mid) % w->q_cap].seq < seq) lo = mid + 1;
    else hi = mid;
  }
  struct item *it = lo < w->q_n ? &w->q[(w->q_head + lo) % w->q_cap] : NULL;
  if (!it || it->seq != seq || it->holds == 0) return; /* dropped on a stop */
  it->holds--;
  w->activity_us = svc_mono_us();
  if (it->holds == 0 && lo == 0 && !w->finishing) schedule_flush(w);
}

void dept_watch_stop(struct dept_watch *w)
{
  if (w->finishing) return;
  flush(w);
  finish(w, 0);
}

void dept_watch_stats(const struct dept_watch *w, struct dept_watch_stats *st)
{
  *st = w->st;
  st->position = dept_out_position(w->out);
}

static void close_cb(uv_handle_t *h)
{
  struct dept_watch *w = h->data;
  if (--w->open_handles > 0) return;
  free(w);
}

void dept_watch_destroy(struct dept_watch **wp)
{
  struct dept_watch *w = *wp;
  if (!w) return;
  *wp = NULL;
  svc_zsock_close(&w->sock);
  for (size_t i = 0; i < w->q_n; i++) free(w->q[(w->q_head + i) % w->q_cap].line);
  free(w->q);
  w->q = NULL;
  w->q_n = 0;
  dept_out_close(&w->out);
  free(w->endpoint);
  free(w->unit);
  free(w->server_key);
  uv_timer_stop(&w->tick);
  uv_timer_stop(&w->soon);
  uv_close((uv_handle_t *)&w->tick, close_cb);
  uv_close((uv_handle_t *)&w->soon, close_cb);
}
