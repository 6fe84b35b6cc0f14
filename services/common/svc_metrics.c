/* The Prometheus face of the status counters: one table of known status
 * names (exact, or "*.suffix" for the counters of a stream producer or
 * consumer, whose prefix is the daemon's choice) with their kind and help
 * text, and the text format built from it: monotonic counts as counters named
 * _total, microseconds as seconds, anything unknown as a gauge. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_status_int.h"

struct metric {
  const char *name; /* status name; "*.x" matches any prefix */
  enum svc__metric_kind kind;
  const char *help; /* "%s" is replaced by the prefix for "*." entries */
};

#define C SVC__METRIC_COUNTER
#define G SVC__METRIC_GAUGE
static const struct metric metrics[] = {
  { "control.bad_frames", C, "Control endpoint messages that were not a status request." },
  { "reload.failures", C, "SIGHUP reloads refused (the previous registry or key set stayed in force)." },
  { "zap.allowed", C, "CURVE handshakes admitted (an allowed client key)." },
  { "zap.denied", C, "CURVE handshakes refused (a key not allowed, or no CURVE)." },
  { "zmq.received", C, "Messages received on the daemon's ZeroMQ sockets." },
  { "zmq.sent", C, "Messages sent on the daemon's ZeroMQ sockets." },
  { "zmq.queued", C, "Messages that waited in a peer's queue because its pipe was full." },
  { "zmq.dropped_full", C, "Messages dropped because a peer's queue was full." },
  { "zmq.dropped_unroutable", C, "Messages dropped because their peer had gone." },
  { "zmq.dropped_bad", C, "Messages dropped as malformed." },
  { "zmq.queue_msgs", G, "Messages now held in peers' queues." },
  { "zmq.queue_bytes", G, "Payload bytes now held in peers' queues." },
  { "zmq.queue_peers", G, "Peers that now have a queue." },
  { "pg.up", G, "1 while the daemon's Postgres connection is up, else 0." },
  { "pg.reconnects", C, "Postgres connections lost and re-established." },
  { "pg.committed", C, "Postgres transactions committed." },
  { "pg.retried", C, "Postgres transactions retried after a lost connection." },
  { "pg.failed", C, "Postgres transactions that failed on an SQL error (nothing committed)." },
  { "pg.statements", C, "Statements sent to Postgres." },
  { "pg.indoubt", C, "COMMITs whose outcome was lost with the connection (settled after it)." },
  { "pg.indoubt_overdue", C, "In-doubt COMMITs still in progress after WHISTLE_PG_INDOUBT_MS." },
  { "server.requests", C, "Client requests answered." },
  { "server.replied", C, "Replies sent to clients (answers and refusals)." },
  { "server.batches", C, "Transactions committed for client requests (group commits)." },
  { "server.dropped", C, "Client requests dropped (malformed or over the limits)." },
  { "server.rejected", C, "Client requests refused." },
  { "server.pending", G, "Client requests waiting for their commit." },
  { "server.ack", G, "Time from a client request's arrival to its reply (after the commit)." },
  { "clock.now_us", G, "The daemon's clock (Unix time)." },
  { "clock.ahead_us", G, "How far the daemon's clock is ahead of the system clock." },
  { "clock.in_watermark_us", G, "The upstream watermark reached (Unix time)." },
  { "clock.out_watermark_us", G, "The watermark published (Unix time)." },
  { "intake.accepted", C, "Hotline tickets accepted." },
  { "intake.duplicate", C, "Hotline requests answered DUPLICATE." },
  { "intake.rejected", C, "Hotline requests answered REJECTED." },
  { "intake.triage", C, "Tickets sent to manual triage." },
  { "intake.repeats", C, "Tickets linked to an earlier one as repeats." },
  { "intake.feedback", C, "Satisfaction callbacks recorded." },
  { "intake.watermarks", C, "Watermarks taken." },
  { "intake.purged", C, "Callers' phone numbers and names erased by the retention purge." },
  { "referral.tickets", C, "Tickets taken for referral." },
  { "referral.steps", C, "Referral steps issued." },
  { "referral.updates", C, "Unit updates applied." },
  { "referral.refused", C, "Unit requests refused." },
  { "referral.duplicates", C,
    "Unit requests answered DUPLICATE (in rating and escalation: events of referral's stream "
    "received twice)." },
  { "referral.redispatches", C, "Returned steps re-dispatched by an operator." },
  { "referral.feedback", C, "Satisfaction callbacks applied." },
  { "referral.warnings", C, "Deadline warnings issued (80% of a clock gone)." },
  { "referral.overdue", C, "Overdue events issued (a deadline passed without the action)." },
  { "referral.closed", C, "Tickets closed." },
  { "referral.violations", C, "Steps resolved with a confirmed violation." },
  { "referral.notes", C, "Repeat calls noted on an open step." },
  { "rating.tickets", C, "Accepted tickets taken from intake's stream." },
  { "rating.steps", C, "Referral steps taken from referral's stream." },
  { "rating.violations", C, "Confirmed violations taken from referral's stream (R-P3)." },
  { "rating.decisions", C, "Decisions published (R-P3 at the violation, the others at a month close)." },
  { "rating.closes", C, "Months closed (rankings, credit, stars and unit scores published)." },
  { "rating.inspections", C, "Inspections recorded from the request interface." },
  { "rating.queries", C, "Queries answered on the request interface." },
  { "rating.late", C, "Input events for a month already closed (kept; published results unchanged)." },
  { "rating.closed_month", G, "The last month closed, as year * 12 + month - 1 (0: none yet)." },
  { "escalation.triggers", C, "Overdue events and rating decisions taken from the input streams." },
  { "escalation.notices", C, "Notices issued (numbered, rendered and delivered to recipient and copies)." },
  { "escalation.redelivered", C, "Unsigned notices delivered again after 2 working days (R-E6)." },
  { "escalation.signed", C, "Signatures recorded (a recipient signed its notice)." },
  { "escalation.queries", C, "Queries answered on the request interface." },
  { "escalation.skipped", C, "Rating decisions skipped: no notice type for their rule and measure (R-E2)." },
  { "clock.intake_watermark_us", G, "The watermark of intake's stream applied (Unix time)." },
  { "clock.referral_watermark_us", G, "The watermark of referral's stream applied (Unix time)." },
  { "clock.rating_watermark_us", G, "The watermark of rating's stream applied (Unix time)." },
  /* a stream producer's counters, "<prefix>.x" */
  { "*.head", G, "Last seq committed to the %s log." },
  { "*.appended", C, "Events committed to the %s log." },
  { "*.dropped", C, "Events that went with a failed transaction of the %s log (retried)." },
  { "*.sent", C, "Events sent to subscribers of the %s log." },
  { "*.acks", C, "Acknowledgements received from subscribers of the %s log." },
  { "*.subscribes", C, "Subscriptions to the %s log." },
  { "*.subscribers", G, "Subscribers of the %s log now." },
  { "*.catchup_pages", C, "Pages of the %s log read from Postgres for subscribers catching up." },
  { "*.bad_frames", C, "Malformed messages on the %s stream." },
  { "*.max_inflight", G, "Most events of the %s log in flight to one subscriber." },
  /* a stream consumer's counters, "<input>.x" */
  { "*.position", G, "Last seq of the %s input applied and committed." },
  { "*.lag", G, "Events of the %s input's log not yet applied (its head minus position)." },
  { "*.lag_us", G, "How far the %s input's applied events are behind in event time." },
  { "*.received", C, "Events of the %s input received." },
  { "*.applied", C, "Events of the %s input applied." },
  { "*.batches", C, "Transactions that applied events of the %s input." },
  { "*.resubscribes", C, "Subscriptions to the %s input renewed." },
  { "*.duplicates", C, "Events of the %s input received twice (skipped)." },
  { "*.errors", C, "Failed applies of the %s input (retried)." },
  { "*.max_unacked", G, "Most events of the %s input received and not yet acknowledged." },
  { "*.poisoned", C, "Events of the %s input that failed to apply on their own." },
  { "*.poison_seq", G, "The event of the %s input failing to apply now, or 0." },
  { "*.apply", G, "Time from an event of the %s input's arrival to the commit that applied it." },
  { "*.poison_tries", G, "Failed attempts of the %s input's poison event so far." },
  { "*.refused", C, "Requests refused on %s." },
  { NULL, G, NULL },
};
#undef C
#undef G

/* The table entry for name: exact first, then by suffix; NULL if unknown. */
static const struct metric *lookup(const char *name)
{
  const char *dot = strchr(name, '.');
  for (const struct metric *m = metrics; m->name; m++)
    if (strcmp(m->name, name) == 0) return m;
  for (const struct metric *m = metrics; dot && m->name; m++)
    if (m->name[0] == '*' && strcmp(m->name + 1, dot) == 0) return m;
  return NULL;
}

enum svc__metric_kind svc__metric_describe(const char *name, char *pname, size_t pn,
                                           char *help, size_t hn, int *scale_us)
{
  const struct metric *m = lookup(name);
  size_t len = strlen(name);
  int us = len > 3 && strcmp(name + len - 3, "_us") == 0;
  char base[96];
  snprintf(base, sizeof base, "whistle_%.*s", (int)(us ? len - 3 : len), name);
  for (char *p = base; *p; p++)
    if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9')))
      *p = '_';
  enum svc__metric_kind kind = m ? m->kind : SVC__METRIC_GAUGE;
  snprintf(pname, pn, "%s%s", base, us ? "_seconds" : kind == SVC__METRIC_COUNTER ? "_total" : "");
  *scale_us = us;
  if (!m) {
    snprintf(help, hn, "Status value %s.", name);
  } else if (m->name[0] == '*') {
    const char *dot = strchr(name, '.');
    char prefix[64];
    snprintf(prefix, sizeof prefix, "%.*s", (int)(dot - name), name);
    const char *at = strstr(m->help, "%s");
    if (at) snprintf(help, hn, "%.*s%s%s", (int)(at - m->help), m->help, prefix, at + 2);
    else snprintf(help, hn, "%s", m->help);
  } else {
    snprintf(help, hn, "%s", m->help);
  }
  return kind;
}
