/* Asynchronous libpq on libuv: connection state machine (non-blocking connect,
 * reconnect with back-off, statement preparation) and the batch runner that
 * sends each transaction as pipelined stages and settles in-doubt commits with
 * pg_xact_status() after a reconnect. See svc_pg.h for the contract. */
#include "svc_pg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_log.h"
#include "svc_status.h"
#include "svc_pg_int.h"

#define BACKOFF_MIN_MS 100
#define BACKOFF_MAX_MS 5000
#define RESOLVE_MIN_MS 100  /* in-doubt questions: first pause, doubling to */
#define RESOLVE_MAX_MS 5000

struct svc_pg_stmt {
  char name[16];
  char *sql;
  int nparams;
  Oid *types;
  int prepared;
  struct svc_pg_stmt *next;
};

struct query {
  struct svc_pg_stmt *st;  /* NULL: text in `sql` (internal statements) */
  const char *sql;
  int nparams;
  char **values;
  int *lengths, *formats;
  int result_format;
  svc_pg_result_cb cb;
  void *cb_arg;
  long ordinal; /* position among the batch's statements, from 0 */
  struct query *next;
};

struct hook { svc_pg_done_cb fn; void *arg; struct hook *next; };
struct precommit { svc_pg_stage_cb fn; void *arg; struct precommit *next; };

struct svc_pg_batch {
  struct svc_pg *pg;
  struct query *head, *tail; /* statements of the stage being built */
  size_t n_added;
  svc_pg_stage_cb on_stage;
  svc_pg_done_cb done;
  void *arg;
  struct hook *hooks, *hooks_tail;
  struct precommit *precommits, *precommits_tail;
  int ending;        /* the before-commit callbacks have run */
  struct svc_pg_batch *next;
  char xid[32];      /* transaction id as text, once known */
  int readonly;
  int commit_sent;
  int rollback_sent;
  int failed;        /* a statement failed: roll back and report */
  char *error;
  char sqlstate[6];
  long failed_index; /* ordinal of the statement that failed, or -1 */
  uint64_t id;       /* unique per connection, never reused */
};

/* What the connection waits for in the pipeline. */
enum slot_kind { SLOT_QUERY, SLOT_XID, SLOT_PREPARE, SLOT_RESOLVE, SLOT_SYNC };
struct slot {
  enum slot_kind kind;
  struct query *q; /* SLOT_QUERY: the statement whose result this is */
  int got;         /* a result arrived; a NULL ends the slot */
};

static void pg_lost(struct svc_pg *pg, const char *why);
static void pg_kick(struct svc_pg *pg);

/* ---- small helpers ------------------------------------------------------ */

static void query_free(struct query *q)
{
  while (q) {
    struct query *n = q->next;
    for (int i = 0; i < q->nparams; i++) free(q->values[i]);
    free(q->values);
    free(q->lengths);
    free(q->formats);
    free(q);
    q = n;
  }
}

static void batch_free(struct svc_pg_batch *b)
{
  query_free(b->head);
  for (struct hook *h = b->hooks; h;) {
    struct hook *n = h->next;
    free(h);
    h = n;
  }
  for (struct precommit *h = b->precommits; h;) {
    struct precommit *n = h->next;
    free(h);
    h = n;
  }
  free(b->error);
  free(b);
}

static int slot_push(struct svc_pg *pg, enum slot_kind kind, struct query *q)
{
  if (pg->n_slots == pg->cap_slots) {
    size_t cap = pg->cap_slots ? pg->cap_slots * 2 : 64;
    struct slot *s = realloc(pg->slots, cap * sizeof *s);
    if (!s) return -1;
    pg->slots = s;
    pg->cap_slots = cap;
  }
  pg->slots[pg->n_slots++] = (struct slot){ .kind = kind, .q = q, .got = 0 };
  return 0;
}

static void slots_reset(struct svc_pg *pg)
{
  pg->n_slots = 0;
  pg->cur_slot = 0;
}

static int awaiting(const struct svc_pg *pg)
{
  return pg->cur_slot < pg->n_slots;
}

/* Flushes libpq's output buffer; watches for writability while data remains. */
static int pg_flush(struct svc_pg *pg)
{
  int r = PQflush(pg->conn);
  if (r < 0) return -1;
  svc__pg_watch_io(pg); /* a wait begins or goes on: the watchdog bounds it */
  svc__pg_update_poll(pg, UV_READABLE | (r == 1 ? UV_WRITABLE : 0));
  return 0;
}

/* ---- batches: building ------------------------------------------------- */

struct svc_pg_batch *svc_pg_batch_new(struct svc_pg *pg, svc_pg_stage_cb on_stage,
                                      svc_pg_done_cb done, void *arg)
{
  struct svc_pg_batch *b = calloc(1, sizeof *b);
  if (!b) return NULL;
  b->pg = pg;
  b->failed_index = -1;
  b->id = ++pg->batch_ids;
  b->on_stage = on_stage;
  b->done = done;
  b->arg = arg;
  return b;
}

static struct query *query_new(int nparams, const char *const *values, const int *lengths,
                               const int *formats)
{
  struct query *q = calloc(1, sizeof *q);
  if (!q) return NULL;
  q->nparams = nparams;
  if (nparams > 0) {
    q->values = calloc((size_t)nparams, sizeof *q->values);
    q->lengths = calloc((size_t)nparams, sizeof *q->lengths);
    q->formats = calloc((size_t)nparams, sizeof *q->formats);
    if (!q->values || !q->lengths || !q->formats) goto fail;
  }
  for (int i = 0; i < nparams; i++) {
    int bin = formats ? formats[i] : 0;
    q->formats[i] = bin;
    if (!values[i]) continue;
    size_t len = (bin || lengths) ? (size_t)lengths[i] : strlen(values[i]);
    q->values[i] = malloc(len + 1);
    if (!q->values[i]) goto fail;
    memcpy(q->values[i], values[i], len);
    q->values[i][len] = 0;
    q->lengths[i] = (int)len;
  }
  return q;
fail:
  query_free(q);
  return NULL;
}

int svc_pg_batch_add(struct svc_pg_batch *b, struct svc_pg_stmt *st, int nparams,
                     const char *const *values, const int *lengths, const int *formats,
                     int result_format, svc_pg_result_cb cb, void *cb_arg)
{
  struct query *q = query_new(nparams, values, lengths, formats);
  if (!q) return -1;
  q->st = st;
  q->result_format = result_format;
  q->cb = cb;
  q->cb_arg = cb_arg;
  q->ordinal = (long)b->n_added;
  if (b->tail) b->tail->next = q; else b->head = q;
  b->tail = q;
  b->n_added++;
  return 0;
}

size_t svc_pg_batch_size(const struct svc_pg_batch *b)
{
  return b->n_added;
}

int svc_pg_batch_hook(struct svc_pg_batch *b, svc_pg_done_cb hook, void *arg)
{
  struct hook *h = calloc(1, sizeof *h);
  if (!h) return -1;
  h->fn = hook;
  h->arg = arg;
  if (b->hooks_tail) b->hooks_tail->next = h; else b->hooks = h;
  b->hooks_tail = h;
  return 0;
}

int svc_pg_batch_before_commit(struct svc_pg_batch *b, svc_pg_stage_cb fn, void *arg)
{
  struct precommit *h = calloc(1, sizeof *h);
  if (!h) return -1;
  h->fn = fn;
  h->arg = arg;
  if (b->precommits_tail) b->precommits_tail->next = h; else b->precommits = h;
  b->precommits_tail = h;
  return 0;
}

/* Runs the hooks of a batch that never ran (or never will) and frees it. */
static void batch_abandon(struct svc_pg_batch *b)
{
  for (struct hook *h = b->hooks; h; h = h->next) h->fn(b, SVC_PG_FAILED, "discarded", h->arg);
  batch_free(b);
}

void svc_pg_batch_readonly(struct svc_pg_batch *b)
{
  b->readonly = 1;
}

void svc_pg_batch_discard(struct svc_pg_batch **b)
{
  if (*b) batch_abandon(*b);
  *b = NULL;
}

void svc_pg_submit(struct svc_pg_batch *b)
{
  struct svc_pg *pg = b->pg;
  if (pg->destroying) { /* shutting down: nothing runs any more */
    batch_abandon(b);
    return;
  }
  b->next = NULL;
  if (pg->qtail) pg->qtail->next = b; else pg->qhead = b;
  pg->qtail = b;
  pg->qlen++;
  pg_kick(pg);
}

/* ---- batches: running -------------------------------------------------- */

static void batch_finish(struct svc_pg *pg, struct svc_pg_batch *b, enum svc_pg_outcome oc)
{
  if (oc == SVC_PG_COMMITTED) pg->stats.committed++;
  else if (oc == SVC_PG_RETRY) pg->stats.retried++;
  else pg->stats.failed++;
  for (struct hook *h = b->hooks; h; h = h->next) h->fn(b, oc, b->error, h->arg);
  if (b->done) b->done(b, oc, b->error, b->arg);
  batch_free(b);
}

/* Removes the running batch from the queue head. */
static struct svc_pg_batch *dequeue(struct svc_pg *pg)
{
  struct svc_pg_batch *b = pg->qhead;
  pg->qhead = b->next;
  if (!pg->qhead) pg->qtail = NULL;
  pg->qlen--;
  pg->running = 0;
  return b;
}

static int send_text(struct svc_pg *pg, const char *sql, int nparams, const char *const *vals)
{
  return PQsendQueryParams(pg->conn, sql, nparams, NULL, vals, NULL, NULL, 0) ? 0 : -1;
}

/* Sends the statements of b's current stage, followed by a sync. */
static int send_stage(struct svc_pg *pg, struct svc_pg_batch *b, int first)
{
  slots_reset(pg);
  if (first) {
    if (send_text(pg, "BEGIN", 0, NULL) || slot_push(pg, SLOT_QUERY, NULL)) return -1;
    if (!b->readonly && (send_text(pg, "SELECT pg_current_xact_id()::text", 0, NULL) ||
                         slot_push(pg, SLOT_XID, NULL)))
      return -1;
  }
  query_free(pg->sent);
  pg->sent = b->head;
  b->head = b->tail = NULL;
  for (struct query *q = pg->sent; q; q = q->next) {
    int ok = PQsendQueryPrepared(pg->conn, q->st->name, q->nparams,
                                 (const char *const *)q->values, q->lengths, q->formats,
                                 q->result_format);
    if (!ok || slot_push(pg, SLOT_QUERY, q)) return -1;
    pg->stats.statements++;
  }
  if (!PQpipelineSync(pg->conn) || slot_push(pg, SLOT_SYNC, NULL)) return -1;
  return pg_flush(pg);
}

static int send_end(struct svc_pg *pg, struct svc_pg_batch *b)
{
  slots_reset(pg);
  const char *sql = b->failed ? "ROLLBACK" : "COMMIT";
  if (b->failed) b->rollback_sent = 1; else b->commit_sent = 1;
  if (send_text(pg, sql, 0, NULL) || slot_push(pg, SLOT_QUERY, NULL)) return -1;
  if (!PQpipelineSync(pg->conn) || slot_push(pg, SLOT_SYNC, NULL)) return -1;
  return pg_flush(pg);
}

/* Every statement not yet prepared. (Statements that filter on a partial
 * index restate its predicate, so that their generic plans can use it.) */
static int send_prepares(struct svc_pg *pg)
{
  slots_reset(pg);
  int any = 0;
  for (struct svc_pg_stmt *s = pg->stmts; s; s = s->next) {
    if (s->prepared) continue;
    if (!PQsendPrepare(pg->conn, s->name, s->sql, s->nparams, s->types)) return -1;
    if (slot_push(pg, SLOT_PREPARE, NULL)) return -1;
    s->prepared = 1; /* a failure is logged; batches using it then fail */
    any = 1;
  }
  if (!any) return 0;
  if (!PQpipelineSync(pg->conn) || slot_push(pg, SLOT_SYNC, NULL)) return -1;
  return pg_flush(pg) ? -1 : 1;
}

static int send_resolve(struct svc_pg *pg)
{
  const char *v[1] = { pg->indoubt->xid };
  slots_reset(pg);
  if (!PQsendQueryParams(pg->conn, "SELECT pg_xact_status($1::xid8)", 1, NULL, v, NULL, NULL, 0) ||
      slot_push(pg, SLOT_RESOLVE, NULL) || !PQpipelineSync(pg->conn) ||
      slot_push(pg, SLOT_SYNC, NULL))
    return -1;
  return pg_flush(pg);
}

static void resolve_timer_cb(uv_timer_t *t)
{
  struct svc_pg *pg = t->data;
  pg->resolve_waiting = 0;
  if (pg->state == ST_UP && pg->indoubt && !awaiting(pg) && send_resolve(pg))
    pg_lost(pg, PQerrorMessage(pg->conn));
}

/* The in-doubt COMMIT is still in progress (or the question failed): asks
 * again after a pause growing to RESOLVE_MAX_MS; past the bound, and after
 * each further bound, reports it (see svc_pg.h). */
static void ask_again_later(struct svc_pg *pg)
{
  uint64_t now = uv_now(pg->loop);
  if (now >= pg->indoubt_report) {
    if (!pg->indoubt_reported++) pg->stats.indoubt_overdue++;
    svc_error("in-doubt commit still in progress: later batches wait for it",
              " pg=%s xid=%s backend_pid=%d waited_ms=%llu", pg->name, pg->indoubt->xid,
              pg->indoubt_pid, (unsigned long long)(now - pg->indoubt_since));
    pg->indoubt_report = now + (uint64_t)pg->opts.indoubt_bound_ms;
  }
  pg->resolve_waiting = 1;
  uv_timer_start(&pg->timer, resolve_timer_cb, (uint64_t)pg->indoubt_delay_ms, 0);
  pg->indoubt_delay_ms *= 2;
  if (pg->indoubt_delay_ms > RESOLVE_MAX_MS) pg->indoubt_delay_ms = RESOLVE_MAX_MS;
}

/* Starts the next piece of work when the pipeline is idle. */
static void pg_kick(struct svc_pg *pg)
{
  if (pg->state != ST_UP || !pg->conn || awaiting(pg)) return;
  if (pg->indoubt) {
    if (!pg->resolve_waiting && send_resolve(pg)) pg_lost(pg, PQerrorMessage(pg->conn));
    return;
  }
  int r = send_prepares(pg);
  if (r != 0) {
    if (r < 0) pg_lost(pg, PQerrorMessage(pg->conn));
    return;
  }
  if (pg->running || !pg->qhead) return;
  pg->running = 1;
  if (send_stage(pg, pg->qhead, 1)) pg_lost(pg, PQerrorMessage(pg->conn));
}

static void record_error(struct svc_pg_batch *b, const PGresult *r)
{
  if (b->failed) return;
  b->failed = 1;
  const char *msg = PQresultErrorMessage(r);
  const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
  free(b->error);
  b->error = strdup(msg && *msg ? msg : "statement failed");
  if (b->error) {
    size_t n = strlen(b->error);
    while (n && (b->error[n - 1] == '\n' || b->error[n - 1] == ' ')) b->error[--n] = 0;
  }
  snprintf(b->sqlstate, sizeof b->sqlstate, "%s", state ? state : "");
}

void svc_pg_batch_fail(struct svc_pg_batch *b, const char *why)
{
  if (b->failed) return;
  b->failed = 1;
  b->failed_index = -1;
  free(b->error);
  b->error = strdup(why ? why : "failed by the service");
  b->sqlstate[0] = 0;
}

const char *svc_pg_batch_sqlstate(const struct svc_pg_batch *b)
{
  return b->sqlstate;
}

uint64_t svc_pg_batch_id(const struct svc_pg_batch *b)
{
  return b->id;
}

long svc_pg_batch_failed_index(const struct svc_pg_batch *b)
{
  return b->failed_index;
}

/* A stage's sync arrived: decide what comes next for the running batch. */
static void stage_complete(struct svc_pg *pg)
{
  if (pg->indoubt || !pg->running) return; /* prepares or resolution */
  struct svc_pg_batch *b = pg->qhead;
  query_free(pg->sent);
  pg->sent = NULL;
  if (b->commit_sent) {
    b = dequeue(pg);
    batch_finish(pg, b, b->failed ? SVC_PG_FAILED : SVC_PG_COMMITTED);
    pg_kick(pg);
    return;
  }
  if (b->rollback_sent) {
    b = dequeue(pg);
    batch_finish(pg, b, SVC_PG_FAILED);
    pg_kick(pg);
    return;
  }
  if (!b->failed && b->on_stage && !b->ending) b->on_stage(b, b->arg);
  if (!b->failed && !b->head && !b->ending) { /* about to commit */
    b->ending = 1;
    for (struct precommit *h = b->precommits; h && !b->failed; h = h->next) h->fn(b, h->arg);
  }
  int r = (!b->failed && b->head) ? send_stage(pg, b, 0) : send_end(pg, b);
  if (r) pg_lost(pg, PQerrorMessage(pg->conn));
}

static void on_result(struct svc_pg *pg, struct slot *s, PGresult *r)
{
  ExecStatusType st = PQresultStatus(r);
  struct svc_pg_batch *b = pg->running ? pg->qhead : NULL;
  s->got = 1;
  if (st == PGRES_FATAL_ERROR || st == PGRES_NONFATAL_ERROR) {
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    if (s->kind == SLOT_RESOLVE && pg->indoubt && state && strcmp(state, "22023") == 0) {
      /* "transaction ID is in the future": this server never assigned it (a
       * failover to a standby the transaction had not reached), so it did
       * not commit here. */
      struct svc_pg_batch *d = pg->indoubt;
      pg->indoubt = NULL;
      svc_warn("in-doubt commit unknown to this server (failover?): settled as not committed",
               " pg=%s xid=%s", pg->name, d->xid);
      batch_finish(pg, d, SVC_PG_RETRY);
      return;
    }
    if (s->kind == SLOT_PREPARE || s->kind == SLOT_RESOLVE || !b) {
      svc_error("statement failed", " pg=%s kind=%d error=\"%s\"", pg->name, (int)s->kind,
                PQresultErrorMessage(r));
      if (s->kind == SLOT_RESOLVE && pg->indoubt) ask_again_later(pg);
      return;
    }
    if (!b->failed && s->q) b->failed_index = s->q->ordinal;
    record_error(b, r);
    return;
  }
  if (st == PGRES_PIPELINE_ABORTED) return;
  switch (s->kind) {
  case SLOT_XID:
    if (b && PQntuples(r) == 1)
      snprintf(b->xid, sizeof b->xid, "%s", PQgetvalue(r, 0, 0));
    break;
  case SLOT_QUERY:
    if (b && !b->failed && s->q && s->q->cb) s->q->cb(s->q->cb_arg, r);
    break;
  case SLOT_RESOLVE: {
    const char *v = PQntuples(r) == 1 && !PQgetisnull(r, 0, 0) ? PQgetvalue(r, 0, 0) : "";
    struct svc_pg_batch *d = pg->indoubt;
    if (strcmp(v, "in progress") == 0) {
      ask_again_later(pg);
      break;
    }
    pg->indoubt = NULL;
    svc_info("in-doubt commit settled", " pg=%s xid=%s status=\"%s\" waited_ms=%llu", pg->name,
             d->xid, v, (unsigned long long)(uv_now(pg->loop) - pg->indoubt_since));
    batch_finish(pg, d, strcmp(v, "committed") == 0 ? SVC_PG_COMMITTED : SVC_PG_RETRY);
    break;
  }
  default:
    break;
  }
}

static void pg_consume(struct svc_pg *pg)
{
  while (awaiting(pg) && !PQisBusy(pg->conn)) {
    struct slot *s = &pg->slots[pg->cur_slot];
    PGresult *r = PQgetResult(pg->conn);
    if (s->kind == SLOT_SYNC) {
      if (!r) continue; /* a stray end marker */
      ExecStatusType st = PQresultStatus(r);
      PQclear(r);
      if (st != PGRES_PIPELINE_SYNC) continue;
      pg->cur_slot++;
      if (pg->cur_slot == pg->n_slots) {
        slots_reset(pg);
        if (pg->state != ST_UP) { /* prepares done: the connection is ready */
          pg->state = ST_UP;
          pg->backoff_ms = BACKOFF_MIN_MS;
          svc_info("postgres connection ready", " pg=%s", pg->name);
          if (pg->state_cb) pg->state_cb(pg->state_arg, 1);
        }
        stage_complete(pg);
        if (pg->state == ST_UP) pg_kick(pg);
      }
      continue;
    }
    if (!r) {
      if (s->got) pg->cur_slot++;
      continue;
    }
    on_result(pg, s, r);
    PQclear(r);
  }
}

/* ---- connection: what the connection layer (svc_pg_conn.c) calls ------ */

/* The connection failed or was lost: settle the running batch, schedule a
 * reconnect. */
static void pg_lost(struct svc_pg *pg, const char *why)
{
  int was_up = pg->state == ST_UP;
  char reason[256];
  snprintf(reason, sizeof reason, "%s", why ? why : "");
  for (char *p = reason; *p; p++) if (*p == '\n' || *p == '"') *p = ' ';
  svc__pg_drop_poll(pg);
  if (pg->conn) PQfinish(pg->conn);
  pg->conn = NULL;
  pg->handshake = 0;
  if (pg->resolving) svc__pg_params_cancel(pg->params);
  pg->resolving = 0;
  pg->resolve_waiting = 0;
  slots_reset(pg);
  query_free(pg->sent);
  pg->sent = NULL;
  for (struct svc_pg_stmt *s = pg->stmts; s; s = s->next) s->prepared = 0;
  pg->state = pg->destroying ? ST_CLOSED : ST_DOWN;
  if (pg->running) {
    struct svc_pg_batch *b = pg->qhead;
    /* After COMMIT was sent, even an error result (libpq reports a lost
     * connection as one) leaves the outcome open: ask the server. */
    if (b->commit_sent && b->xid[0]) {
      dequeue(pg);
      pg->indoubt = b; /* settled after reconnecting */
      pg->stats.indoubt++;
      pg->indoubt_pid = pg->backend_pid;
      pg->indoubt_since = uv_now(pg->loop);
      pg->indoubt_report = pg->indoubt_since + (uint64_t)pg->opts.indoubt_bound_ms;
      pg->indoubt_reported = 0;
      pg->indoubt_delay_ms = RESOLVE_MIN_MS;
    } else {
      dequeue(pg);
      batch_finish(pg, b, SVC_PG_RETRY);
    }
  }
  if (was_up) {
    pg->stats.reconnects++;
    svc_warn("postgres connection lost", " pg=%s reason=\"%s\"", pg->name, reason);
    if (pg->state_cb) pg->state_cb(pg->state_arg, 0);
  } else if (!pg->destroying) {
    svc_log(pg->backoff_ms >= BACKOFF_MAX_MS ? SVC_LOG_WARN : SVC_LOG_DEBUG, __func__,
            "postgres connect failed", " pg=%s retry_ms=%d reason=\"%s\"", pg->name,
            pg->backoff_ms, reason);
  }
  if (pg->destroying) return;
  svc__pg_reconnect_later(pg, (uint64_t)pg->backoff_ms);
  pg->backoff_ms = pg->backoff_ms * 2 > BACKOFF_MAX_MS ? BACKOFF_MAX_MS : pg->backoff_ms * 2;
}

/* The handshake is done: pipeline mode, then the statements are prepared
 * and the connection is reported up. */
void svc__pg_pipeline_begin(struct svc_pg *pg)
{
  if (PQsetnonblocking(pg->conn, 1) != 0 || PQenterPipelineMode(pg->conn) != 1) {
    pg_lost(pg, "cannot enter pipeline mode");
    return;
  }
  svc__pg_update_poll(pg, UV_READABLE);
  int r = send_prepares(pg);
  if (r < 0) {
    pg_lost(pg, PQerrorMessage(pg->conn));
    return;
  }
  if (r == 0) { /* nothing to prepare: ready now */
    pg->state = ST_UP;
    pg->backoff_ms = BACKOFF_MIN_MS;
    svc_info("postgres connection ready", " pg=%s", pg->name);
    if (pg->state_cb) pg->state_cb(pg->state_arg, 1);
    pg_kick(pg);
  }
  /* else: ready when the prepares' sync arrives (pg_consume) */
}

void svc__pg_lost(struct svc_pg *pg, const char *why)
{
  pg_lost(pg, why);
}

void svc__pg_pipeline_input(struct svc_pg *pg)
{
  pg_consume(pg);
}

int svc__pg_pipeline_flush(struct svc_pg *pg)
{
  return pg_flush(pg);
}

/* ---- public ------------------------------------------------------------ */

struct svc_pg *svc_pg_new(uv_loop_t *loop, const char *name, const char *conninfo)
{
  struct svc_pg *pg = calloc(1, sizeof *pg);
  if (!pg) return NULL;
  pg->loop = loop;
  pg->name = strdup(name);
  pg->poll_fd = -1;
  pg->backoff_ms = BACKOFF_MIN_MS;
  svc__pg_get_defaults(&pg->opts);
  /* The server ends a transaction of ours idle for twice the batch timeout:
   * one whose client is gone must not hold its locks for long. */
  if (pg->name)
    pg->params = svc__pg_params_new(conninfo, name, 2 * pg->opts.batch_timeout_ms);
  if (!pg->params || uv_timer_init(loop, &pg->timer) != 0) {
    svc__pg_params_destroy(&pg->params);
    free(pg->name);
    free(pg);
    return NULL;
  }
  uv_timer_init(loop, &pg->watchdog); /* cannot fail once a timer could be made */
  pg->timer.data = pg->watchdog.data = pg;
  pg->open_timers = 2;
  /* Connect from the loop, so statements registered before uv_run are prepared. */
  svc__pg_reconnect_later(pg, 0);
  return pg;
}

struct svc_pg_stmt *svc_pg_prepare(struct svc_pg *pg, const char *sql, int nparams,
                                   const Oid *param_types)
{
  struct svc_pg_stmt *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->sql = strdup(sql);
  s->nparams = nparams;
  if (param_types && nparams > 0) {
    s->types = malloc((size_t)nparams * sizeof *s->types);
    if (s->types) memcpy(s->types, param_types, (size_t)nparams * sizeof *s->types);
  }
  if (!s->sql || (param_types && nparams > 0 && !s->types)) {
    free(s->sql);
    free(s->types);
    free(s);
    return NULL;
  }
  snprintf(s->name, sizeof s->name, "w%d", ++pg->n_stmts);
  if (pg->stmts_tail) pg->stmts_tail->next = s; else pg->stmts = s;
  pg->stmts_tail = s;
  pg_kick(pg);
  return s;
}

static void timer_close_cb(uv_handle_t *h)
{
  struct svc_pg *pg = h->data;
  if (--pg->open_timers) return;
  for (struct svc_pg_stmt *s = pg->stmts; s;) {
    struct svc_pg_stmt *n = s->next;
    free(s->sql);
    free(s->types);
    free(s);
    s = n;
  }
  free(pg->slots);
  free(pg->name);
  free(pg);
}

void svc_pg_destroy(struct svc_pg **pgp)
{
  struct svc_pg *pg = *pgp;
  if (!pg) return;
  *pgp = NULL;
  pg->destroying = 1;
  svc__pg_drop_poll(pg);
  if (pg->conn) PQfinish(pg->conn);
  pg->conn = NULL;
  query_free(pg->sent);
  pg->sent = NULL;
  pg->running = 0;
  slots_reset(pg);
  if (pg->indoubt) {
    batch_finish(pg, pg->indoubt, SVC_PG_RETRY);
    pg->indoubt = NULL;
  }
  while (pg->qhead) batch_finish(pg, dequeue(pg), SVC_PG_RETRY);
  pg->state = ST_CLOSED;
  svc__pg_params_destroy(&pg->params); /* abandons a look-up in progress */
  pg->resolving = 0;
  uv_timer_stop(&pg->timer);
  uv_close((uv_handle_t *)&pg->timer, timer_close_cb);
  uv_close((uv_handle_t *)&pg->watchdog, timer_close_cb);
}

void svc_pg_on_state(struct svc_pg *pg, svc_pg_state_cb cb, void *arg)
{
  pg->state_cb = cb;
  pg->state_arg = arg;
}

int svc_pg_is_up(const struct svc_pg *pg)
{
  return pg->state == ST_UP;
}

size_t svc_pg_queue_len(const struct svc_pg *pg)
{
  return pg->qlen + (pg->indoubt ? 1 : 0);
}

void svc_pg_stats(const struct svc_pg *pg, struct svc_pg_stats *st)
{
  *st = pg->stats;
}

int64_t svc_pg_get_i64(const PGresult *r, int row, int col)
{
  if (PQgetisnull(r, row, col)) return 0;
  const unsigned char *p = (const unsigned char *)PQgetvalue(r, row, col);
  if (PQfformat(r, col) == 0) return strtoll((const char *)p, NULL, 10);
  uint64_t v = 0;
  for (int i = 0; i < 8; i++) v = (v << 8) | p[i];
  return (int64_t)v;
}

void svc_pg_status(const struct svc_pg *pg, const char *prefix, struct svc_status_out *o)
{
  struct svc_pg_stats st;
  svc_pg_stats(pg, &st);
  const struct svc_status_kv kv[] = {
    { "up", (uint64_t)svc_pg_is_up(pg) }, { "committed", st.committed }, { "retried", st.retried },
    { "failed", st.failed }, { "statements", st.statements }, { "reconnects", st.reconnects },
    { "indoubt", st.indoubt }, { "indoubt_overdue", st.indoubt_overdue },
  };
  svc_status_add_all(o, prefix, kv, sizeof kv / sizeof kv[0]);
}
