/* Asynchronous PostgreSQL on libuv (docs/architecture.md). One struct svc_pg is one
 * connection: non-blocking connect and reconnect with back-off, prepared
 * statements only, and transactions sent as pipelined batches.
 *
 * A batch is one transaction. Its statements are pipelined in stages: after a
 * stage's results have all arrived, the batch's on_stage callback may add
 * statements for a further stage (they may depend on the results), or add none,
 * and the batch commits. Every batch first fetches its transaction id, so that
 * when the connection is lost after COMMIT was sent, the outcome is settled
 * with pg_xact_status() after reconnecting: done() then reports COMMITTED,
 * RETRY (nothing was committed: stage it again) or FAILED (an SQL error: nothing
 * was committed). Batches run one at a time, in submission order.
 *
 * Network faults (docs/architecture.md): each connection has TCP keepalives,
 * tcp_user_timeout and connect_timeout unless its conninfo sets them, and its
 * host names are resolved on libuv's thread pool, never on the loop. A query
 * (a stage, a COMMIT, the preparations, an in-doubt question) with no result
 * for the batch timeout means the connection is lost: it is dropped and
 * re-established, and the running batch ends RETRY, or is in doubt if its
 * COMMIT was sent. The server ends a transaction of ours left idle for twice
 * that long (idle_in_transaction_session_timeout), so a transaction whose
 * client is gone does not hold its locks for long.
 *
 * In-doubt commits: while pg_xact_status() says "in progress" (the old backend
 * is still committing: slow commit-time triggers, a synchronous standby that
 * does not answer, a stopped process), it is asked again at intervals growing
 * from 100 ms to 5 s. Later batches wait for the outcome, since running them
 * first could reorder or duplicate work: the queue grows and servers apply
 * back-pressure. Past the in-doubt bound the wait is logged as an error, with
 * the xid and the old backend's pid (ending that backend, e.g. with
 * pg_terminate_backend(), settles it), counted in indoubt_overdue and logged
 * again after each further bound; the asking goes on, since an outcome must
 * never be guessed. Asking again on a new connection would change nothing: a
 * connection that stops answering is dropped by the batch timeout anyway. */
#ifndef SVC_PG_H
#define SVC_PG_H

#include <stddef.h>
#include <stdint.h>
#include <libpq-fe.h>
#include <uv.h>

#include "svc_attr.h"

struct svc_pg;
struct svc_pg_batch;
struct svc_pg_stmt;

enum svc_pg_outcome {
  SVC_PG_COMMITTED = 0,   /* committed; all result callbacks have run (COMMIT
                             is sent only after every stage's results) */
  SVC_PG_RETRY,           /* not committed (connection lost, server restart):
                             stage the same work again */
  SVC_PG_FAILED,          /* not committed: a statement failed (see error) */
};

/* Called with each statement's result. res is valid only during the call and
 * is PGRES_TUPLES_OK / PGRES_COMMAND_OK; errors abort the batch instead. */
typedef void (*svc_pg_result_cb)(void *arg, const PGresult *res);
/* Called when a stage's results are all in; may add statements (a new stage). */
typedef void (*svc_pg_stage_cb)(struct svc_pg_batch *b, void *arg);
/* Called once per batch at the end; the batch is freed after it returns. */
typedef void (*svc_pg_done_cb)(struct svc_pg_batch *b, enum svc_pg_outcome outcome,
                               const char *error, void *arg);
/* Connection state changes: up = 1 when ready (statements prepared), 0 when lost. */
typedef void (*svc_pg_state_cb)(void *arg, int up);

/* Timeouts of the connections created from then on; a field <= 0 keeps its
 * value. batch_timeout_ms (default 30000): a query with no result for this
 * long means the connection is lost. indoubt_bound_ms (default 60000): an
 * in-doubt COMMIT still in progress this long is reported. Daemons set them
 * from WHISTLE_PG_BATCH_TIMEOUT_MS and WHISTLE_PG_INDOUBT_MS. */
struct svc_pg_opts { int batch_timeout_ms, indoubt_bound_ms; };
void svc_pg_set_defaults(const struct svc_pg_opts *o);

/* Creates a connection on loop; connecting starts at once and retries with
 * back-off (100 ms doubling to 5 s) for as long as it fails. name labels logs
 * and is the fallback_application_name. Returns NULL when out of memory or
 * when conninfo cannot be parsed (logged without quoting it). */
struct svc_pg *svc_pg_new(uv_loop_t *loop, const char *name, const char *conninfo);
/* Closes the connection; pending batches get done(RETRY) first, and batches
 * submitted from then on are discarded. Destroy connections before the objects
 * whose batches they run (stream producer, consumer, server). */
void svc_pg_destroy(struct svc_pg **pg);
/* Registers a statement, prepared on every (re)connect before the connection is
 * reported up. sql uses $1..$n; param_types may be NULL. Call before any batch
 * uses it, ideally before the loop runs. The returned handle lives as long as pg. */
struct svc_pg_stmt *svc_pg_prepare(struct svc_pg *pg, const char *sql, int nparams,
                                   const Oid *param_types);
void svc_pg_on_state(struct svc_pg *pg, svc_pg_state_cb cb, void *arg);
int svc_pg_is_up(const struct svc_pg *pg);
/* Batches waiting or running; servers use it for back-pressure. */
size_t svc_pg_queue_len(const struct svc_pg *pg);
/* Counters for status: batches committed, statements sent, reconnects,
 * commits found in doubt, and those still in progress past the in-doubt bound. */
struct svc_pg_stats {
  uint64_t committed, retried, failed, statements, reconnects, indoubt, indoubt_overdue;
};
void svc_pg_stats(const struct svc_pg *pg, struct svc_pg_stats *st);
/* Adds "<prefix>.up" and the connection's counters to a status reply. */
struct svc_status_out;
void svc_pg_status(const struct svc_pg *pg, const char *prefix, struct svc_status_out *o);

/* Starts a batch (not yet queued). on_stage may be NULL. */
struct svc_pg_batch *svc_pg_batch_new(struct svc_pg *pg, svc_pg_stage_cb on_stage,
                                      svc_pg_done_cb done, void *arg);
/* Adds a statement to the batch's current stage. Params are copied: values[i]
 * of lengths[i] bytes (text when formats is NULL or formats[i] == 0, binary if
 * 1; NULL value = SQL NULL). result_format 1 asks for binary results. cb may be
 * NULL. Returns 0 or -1 (OOM). */
SVC_MUST_CHECK int svc_pg_batch_add(struct svc_pg_batch *b, struct svc_pg_stmt *st, int nparams,
                     const char *const *values, const int *lengths, const int *formats,
                     int result_format, svc_pg_result_cb cb, void *cb_arg);
/* Marks the batch read-only: no transaction id is fetched (a lost connection
 * simply means RETRY). For catch-up reads and start-up queries. */
void svc_pg_batch_readonly(struct svc_pg_batch *b);
/* From a stage callback: nothing of the batch is committed (ROLLBACK), and it
 * ends FAILED with why as its error (no statement index), e.g. when the
 * service cannot stage what its decisions need (out of memory). */
void svc_pg_batch_fail(struct svc_pg_batch *b, const char *why);
/* Frees a batch that was never submitted: its hooks run (FAILED, so that
 * what they hold is released), done does not. */
void svc_pg_batch_discard(struct svc_pg_batch **b);
/* Queues the batch; it runs when the connection is up and earlier batches are
 * done. On a connection being destroyed the batch is discarded (hooks run
 * with FAILED, done does not). */
void svc_pg_submit(struct svc_pg_batch *b);
/* Number of statements added so far. */
size_t svc_pg_batch_size(const struct svc_pg_batch *b);
/* The SQLSTATE of the statement that failed the batch ("" if none); valid in
 * done callbacks and hooks. */
const char *svc_pg_batch_sqlstate(const struct svc_pg_batch *b);
/* A number identifying the batch, unique for its connection's lifetime (a
 * retried piece of work gets a new batch and a new number). */
uint64_t svc_pg_batch_id(const struct svc_pg_batch *b);
/* Which statement failed the batch: its position among the statements added
 * (from 0, across stages), or -1 when unknown (BEGIN/COMMIT, connection). */
long svc_pg_batch_failed_index(const struct svc_pg_batch *b);
/* Adds a hook run when the batch ends (also when it is discarded), before
 * done; hooks run in the order added. Used by the stream producer to publish
 * what the batch appended, or drop it. 0, or -1 (out of memory). */
SVC_MUST_CHECK int svc_pg_batch_hook(struct svc_pg_batch *b, svc_pg_done_cb hook, void *arg);
/* Adds a callback run once, when the batch is about to commit (its last
 * stage's results are in, it has not failed and added no further stage). It
 * may add statements: they form one more stage, after which the batch
 * commits (no stage callback runs again), or fail the batch. Used by the
 * stream producer to insert the events nobody flushed. 0, or -1 (OOM). */
SVC_MUST_CHECK int svc_pg_batch_before_commit(struct svc_pg_batch *b, svc_pg_stage_cb fn, void *arg);

/* ---- svc_pg_rows.c ---- */
/* A row of a statement added with svc_pg_batch_add_rows: n text values (NULL
 * for SQL NULL), valid only during the call. */
typedef void (*svc_pg_row_cb)(void *arg, int n, const char *const *v);
/* svc_pg_batch_add with text results handed to cb(arg) row by row (at most
 * 32 columns); cb NULL: no rows wanted. 0 or -1 (out of memory). */
SVC_MUST_CHECK int svc_pg_batch_add_rows(struct svc_pg_batch *b, struct svc_pg_stmt *st,
                                         int nparams, const char *const *values,
                                         const int *lengths, const int *formats, svc_pg_row_cb cb,
                                         void *arg);
/* The text form of a text[] parameter, {"a","b"} with quotes and
 * backslashes escaped (malloc'd), or NULL (out of memory). */
char *svc_pg_text_array(const char *const *v, size_t n);

/* Binary array parameters (for unnest-based bulk statements). */
struct svc_pgarr { char *buf; size_t len, cap; int32_t n; Oid elem; int oom; };
void svc_pgarr_init(struct svc_pgarr *a, Oid elem); /* 20 int8, 25 text, 17 bytea */
void svc_pgarr_add(struct svc_pgarr *a, const void *data, size_t len);
void svc_pgarr_add_i64(struct svc_pgarr *a, int64_t v);
/* Finishes the header; returns 0 or -1 if anything failed to allocate. */
int svc_pgarr_finish(struct svc_pgarr *a);
void svc_pgarr_free(struct svc_pgarr *a);

/* Checks that conninfo parses as libpq reads it: 0, or -1 with a reason in
 * err that never quotes the string (it may hold a password). */
int svc_pg_conninfo_check(const char *conninfo, char *err, size_t errlen);
/* The same connection as conninfo (keywords or a URI) with password set, as
 * keyword='value' pairs: malloc'ed, NULL if it does not parse or out of
 * memory. The result holds a secret: never log it. */
char *svc_pg_conninfo_with_password(const char *conninfo, const char *password);

/* At start-up, before the loop runs (blocking, its own connection): runs sql,
 * which must return one row of n bigint columns, into out[0..n-1]. 0, or -1
 * after logging what (err_what) could not be read. */
int svc_pg_fetch_row(const char *conninfo, const char *sql, int64_t *out, int n,
                     const char *err_what);

/* Blocking, start-up only: runs one statement on c (params as for
 * svc_pg_batch_add) and returns its result when it succeeded (the caller
 * PQclears it), or NULL after logging what failed (err_what) and why. */
PGresult *svc_pg_exec(PGconn *c, const char *sql, int n, const char *const *values,
                      const int *lengths, const int *formats, int result_format,
                      const char *err_what);

/* A one-off data fix at start-up (blocking, before the loop runs, on its own
 * connection). run does the work on c, committing as it goes (each statement
 * or its own transactions), adds the rows it changed to *changed and returns
 * 0, or -1 to fail. It must be idempotent: after a crash or a failure it runs
 * again from the start. */
typedef int (*svc_one_off_fn)(PGconn *c, void *arg, int64_t *changed);
/* Runs `name` (letters, digits, '-' and '.') once per schema: under an
 * advisory lock, unless the table one_offs (a library migration) records it,
 * calls run and then records it with the rows changed. Logs the start and
 * the end. 0 (done now or before), or -1 (logged; not recorded). */
int svc_pg_one_off(const char *conninfo, const char *name, svc_one_off_fn run, void *arg);

/* Helpers for reading binary results. */
int64_t svc_pg_get_i64(const PGresult *r, int row, int col); /* binary int8 */

#define SVC_OID_INT8 20
#define SVC_OID_TEXT 25
#define SVC_OID_BYTEA 17

#endif
