/* Integration tests of the async libpq layer and the migrations runner
 * against the private Postgres cluster (real server, real sockets): pipelined
 * stages, binary array parameters, SQL errors that commit nothing, a killed
 * backend (reconnect and retry), an in-doubt COMMIT settled through
 * pg_xact_status (also one still in progress past the in-doubt bound), the
 * batch timeout, the server-side settings every connection gets, a host
 * list resolved off the loop, a connection string that cannot be parsed,
 * migrations applied once and atomically, and one-off data fixes run once
 * per schema. */
#include <check.h>
#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "svc_log.h"
#include "svc_migrate.h"
#include "svc_pg.h"

#define CONNINFO "user=c_pg"

static uv_loop_t loop;
static struct svc_pg *pg;

/* A blocking side connection for setting up and checking. */
static long long q1(const char *sql)
{
  PGconn *c = PQconnectdb("user=postgres options=--client-min-messages=warning");
  ck_assert_int_eq(PQstatus(c), CONNECTION_OK);
  PGresult *r = PQexec(c, sql);
  ExecStatusType st = PQresultStatus(r);
  if (st != PGRES_TUPLES_OK && st != PGRES_COMMAND_OK)
    ck_abort_msg("%s: %s", sql, PQresultErrorMessage(r));
  long long v = st == PGRES_TUPLES_OK && PQntuples(r) ? atoll(PQgetvalue(r, 0, 0)) : 0;
  PQclear(r);
  PQfinish(c);
  return v;
}

static void timeout_cb(uv_timer_t *t)
{
  (void)t;
  uv_stop(&loop);
}

static void closed_cb(uv_handle_t *h)
{
  *(int *)h->data = 1;
}

/* Closes a handle that lives on the stack and runs the loop until it is closed. */
static void close_now(uv_handle_t *h)
{
  int closed = 0;
  h->data = &closed;
  uv_close(h, closed_cb);
  while (!closed) uv_run(&loop, UV_RUN_ONCE);
}

/* Runs the loop until *flag or a 20 s guard. */
static void run_until(int *flag)
{
  uv_timer_t guard;
  uv_timer_init(&loop, &guard);
  uv_timer_start(&guard, timeout_cb, 20000, 0);
  while (!*flag) {
    if (uv_run(&loop, UV_RUN_ONCE) == 0) break;
    if (!uv_timer_get_due_in(&guard)) break;
  }
  close_now((uv_handle_t *)&guard);
  ck_assert_msg(*flag, "timed out");
}

static void setup(void)
{
  q1("SET client_min_messages = warning; DROP SCHEMA IF EXISTS c_pg CASCADE");
  q1("DO $$BEGIN IF NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname='c_pg') THEN "
     "CREATE ROLE c_pg LOGIN; END IF; END$$");
  q1("CREATE SCHEMA c_pg AUTHORIZATION c_pg");
  q1("ALTER ROLE c_pg SET search_path = c_pg");
  q1("CREATE TABLE c_pg.t (k text PRIMARY KEY, v bigint NOT NULL)");
  q1("ALTER TABLE c_pg.t OWNER TO c_pg");
  uv_loop_init(&loop);
  pg = svc_pg_new(&loop, "test", CONNINFO);
}

static void teardown(void)
{
  svc_pg_destroy(&pg);
  uv_run(&loop, UV_RUN_DEFAULT);
  ck_assert_int_eq(uv_loop_close(&loop), 0);
}

struct outcome { int done; enum svc_pg_outcome oc; char state[8]; long long got; int stages; };

static void done_cb(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct outcome *o = arg;
  (void)err;
  o->oc = oc;
  snprintf(o->state, sizeof o->state, "%s", svc_pg_batch_sqlstate(b));
  o->done = 1;
}

static void got_cb(void *arg, const PGresult *r)
{
  struct outcome *o = arg;
  o->got = PQntuples(r) ? svc_pg_get_i64(r, 0, 0) : -1;
}

static struct svc_pg_stmt *ins, *sum;

static void prepare(void)
{
  ins = svc_pg_prepare(pg, "INSERT INTO t (k, v) VALUES ($1, $2)", 2, NULL);
  sum = svc_pg_prepare(pg, "SELECT coalesce(sum(v), 0)::int8 FROM t", 0, NULL);
}

static void add_ins(struct svc_pg_batch *b, const char *k, const char *v)
{
  const char *p[2] = { k, v };
  ck_assert_int_eq(svc_pg_batch_add(b, ins, 2, p, NULL, NULL, 0, NULL, NULL), 0);
}

START_TEST(test_pipelined_batch_commits)
{
  prepare();
  struct outcome o = { 0 };
  struct svc_pg_batch *b = svc_pg_batch_new(pg, NULL, done_cb, &o);
  char k[16], v[16];
  for (int i = 1; i <= 500; i++) {
    snprintf(k, sizeof k, "k%d", i);
    snprintf(v, sizeof v, "%d", i);
    add_ins(b, k, v);
  }
  ck_assert_int_eq(svc_pg_batch_add(b, sum, 0, NULL, NULL, NULL, 1, got_cb, &o), 0);
  svc_pg_submit(b);
  run_until(&o.done);
  ck_assert_int_eq(o.oc, SVC_PG_COMMITTED);
  ck_assert_int_eq(o.got, 500 * 501 / 2); /* the sum sees the batch's own rows */
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.t"), 500);
}
END_TEST

/* A second stage added from the first stage's result, in the same transaction. */
static void stage_cb(struct svc_pg_batch *b, void *arg)
{
  struct outcome *o = arg;
  if (o->stages++ > 0) return;
  char v[24];
  snprintf(v, sizeof v, "%lld", o->got * 10);
  add_ins(b, "derived", v);
}

START_TEST(test_stage_depends_on_results)
{
  prepare();
  q1("INSERT INTO c_pg.t VALUES ('a', 4)");
  struct outcome o = { 0 };
  struct svc_pg_batch *b = svc_pg_batch_new(pg, stage_cb, done_cb, &o);
  ck_assert_int_eq(svc_pg_batch_add(b, sum, 0, NULL, NULL, NULL, 1, got_cb, &o), 0);
  svc_pg_submit(b);
  run_until(&o.done);
  ck_assert_int_eq(o.oc, SVC_PG_COMMITTED);
  ck_assert_int_eq(q1("SELECT v FROM c_pg.t WHERE k = 'derived'"), 40);
}
END_TEST

START_TEST(test_sql_error_commits_nothing)
{
  prepare();
  struct outcome o = { 0 };
  struct svc_pg_batch *b = svc_pg_batch_new(pg, NULL, done_cb, &o);
  add_ins(b, "x", "1");
  add_ins(b, "x", "2"); /* duplicate key */
  add_ins(b, "y", "3");
  svc_pg_submit(b);
  run_until(&o.done);
  ck_assert_int_eq(o.oc, SVC_PG_FAILED);
  ck_assert_str_eq(o.state, "23505");
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.t"), 0);
  /* The connection is usable afterwards. */
  struct outcome o2 = { 0 };
  b = svc_pg_batch_new(pg, NULL, done_cb, &o2);
  add_ins(b, "z", "1");
  svc_pg_submit(b);
  run_until(&o2.done);
  ck_assert_int_eq(o2.oc, SVC_PG_COMMITTED);
}
END_TEST

START_TEST(test_binary_arrays_roundtrip)
{
  struct svc_pg_stmt *bulk = svc_pg_prepare(
    pg, "INSERT INTO t (k, v) SELECT * FROM unnest($1::text[], $2::int8[])", 2, NULL);
  struct svc_pgarr a[2];
  svc_pgarr_init(&a[0], SVC_OID_TEXT);
  svc_pgarr_init(&a[1], SVC_OID_INT8);
  char k[32];
  for (int i = 0; i < 1000; i++) {
    snprintf(k, sizeof k, "小区%d", i);
    svc_pgarr_add(&a[0], k, strlen(k));
    svc_pgarr_add_i64(&a[1], (int64_t)i * 1000000007LL);
  }
  svc_pgarr_finish(&a[0]);
  svc_pgarr_finish(&a[1]);
  const char *v[2] = { a[0].buf, a[1].buf };
  int len[2] = { (int)a[0].len, (int)a[1].len }, fmt[2] = { 1, 1 };
  struct outcome o = { 0 };
  struct svc_pg_batch *b = svc_pg_batch_new(pg, NULL, done_cb, &o);
  ck_assert_int_eq(svc_pg_batch_add(b, bulk, 2, v, len, fmt, 0, NULL, NULL), 0);
  svc_pgarr_free(&a[0]);
  svc_pgarr_free(&a[1]);
  svc_pg_submit(b);
  run_until(&o.done);
  ck_assert_int_eq(o.oc, SVC_PG_COMMITTED);
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.t WHERE k LIKE '小区%'"), 1000);
  ck_assert_int_eq(q1("SELECT v FROM c_pg.t WHERE k = '小区999'"), 999LL * 1000000007LL);
}
END_TEST

/* The owner's retry loop: resubmit on RETRY, as the server and consumer do. */
struct retrying { struct outcome o; int retries; const char *key; };

static void retry_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct retrying *r = arg;
  (void)b;
  (void)err;
  if (oc == SVC_PG_RETRY) {
    r->retries++;
    struct svc_pg_batch *nb = svc_pg_batch_new(pg, NULL, retry_done, r);
    add_ins(nb, r->key, "1");
    svc_pg_submit(nb);
    return;
  }
  r->o.oc = oc;
  r->o.done = 1;
}

START_TEST(test_killed_backend_reconnects_and_retries)
{
  prepare();
  struct outcome o = { 0 };
  struct svc_pg_batch *b = svc_pg_batch_new(pg, NULL, done_cb, &o);
  add_ins(b, "before", "1");
  svc_pg_submit(b);
  run_until(&o.done);
  q1("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'c_pg'");
  struct retrying r = { .key = "after" };
  b = svc_pg_batch_new(pg, NULL, retry_done, &r);
  add_ins(b, r.key, "1");
  svc_pg_submit(b);
  run_until(&r.o.done);
  ck_assert_int_eq(r.o.oc, SVC_PG_COMMITTED);
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.t WHERE k = 'after'"), 1);
  struct svc_pg_stats st;
  svc_pg_stats(pg, &st);
  ck_assert_uint_ge(st.reconnects, 1);
}
END_TEST

/* COMMIT is sent, then the backend dies while the commit is running (a
 * deferred trigger sleeps at commit time): the outcome is in doubt and is
 * settled with pg_xact_status() after reconnecting: aborted, so RETRY. */
static void kill_cb(uv_timer_t *t)
{
  (void)t;
  q1("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = 'c_pg'"
     " AND query = 'COMMIT'");
}

START_TEST(test_indoubt_commit_is_settled)
{
  prepare();
  q1("CREATE FUNCTION c_pg.slow() RETURNS trigger LANGUAGE plpgsql AS "
     "$$BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END$$");
  q1("CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON c_pg.t DEFERRABLE INITIALLY DEFERRED "
     "FOR EACH ROW EXECUTE FUNCTION c_pg.slow()");
  struct outcome o = { 0 };
  struct svc_pg_batch *b = svc_pg_batch_new(pg, NULL, done_cb, &o);
  add_ins(b, "doubt", "1");
  svc_pg_submit(b);
  uv_timer_t t;
  uv_timer_init(&loop, &t);
  uv_timer_start(&t, kill_cb, 700, 0);
  run_until(&o.done);
  close_now((uv_handle_t *)&t);
  ck_assert_int_eq(o.oc, SVC_PG_RETRY);
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.t"), 0);
  struct svc_pg_stats st;
  svc_pg_stats(pg, &st);
  ck_assert_uint_eq(st.indoubt, 1); /* it went through pg_xact_status */
}
END_TEST

/* Replaces the fixture's connection with one made under opts. */
static void reopen(int batch_timeout_ms, int indoubt_bound_ms)
{
  struct svc_pg_opts o = { batch_timeout_ms, indoubt_bound_ms };
  svc_pg_set_defaults(&o);
  svc_pg_destroy(&pg);
  pg = svc_pg_new(&loop, "test", CONNINFO);
  ck_assert_ptr_nonnull(pg);
  struct svc_pg_opts back = { 30000, 60000 };
  svc_pg_set_defaults(&back);
}

/* A statement that gives no result within the batch timeout: the connection
 * is treated as lost and the batch ends RETRY (nothing was committed). */
START_TEST(test_batch_timeout_drops_connection)
{
  reopen(500, 60000);
  prepare();
  struct svc_pg_stmt *slow = svc_pg_prepare(pg, "SELECT pg_sleep(3)", 0, NULL);
  struct outcome o = { 0 };
  struct svc_pg_batch *b = svc_pg_batch_new(pg, NULL, done_cb, &o);
  add_ins(b, "slow", "1");
  ck_assert_int_eq(svc_pg_batch_add(b, slow, 0, NULL, NULL, NULL, 0, NULL, NULL), 0);
  svc_pg_submit(b);
  run_until(&o.done);
  ck_assert_int_eq(o.oc, SVC_PG_RETRY);
  struct svc_pg_stats st;
  svc_pg_stats(pg, &st);
  ck_assert_uint_ge(st.reconnects, 1);
  ck_assert_uint_eq(st.indoubt, 0);
  /* The connection comes back and works. */
  struct outcome o2 = { 0 };
  b = svc_pg_batch_new(pg, NULL, done_cb, &o2);
  add_ins(b, "after", "1");
  svc_pg_submit(b);
  run_until(&o2.done);
  ck_assert_int_eq(o2.oc, SVC_PG_COMMITTED);
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.t"), 1);
}
END_TEST

/* COMMIT runs a commit-time trigger that takes 3 s: the batch timeout
 * (500 ms) drops the connection while the old backend goes on committing, so
 * pg_xact_status says "in progress" past the in-doubt bound (1 s): that is
 * reported and counted, the question is asked again with back-off, a later
 * batch waits, and the outcome is the real one (committed), in order. */
struct ordered { struct outcome o; int *seq; int at; };

static void ordered_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct ordered *x = arg;
  x->at = ++*x->seq;
  done_cb(b, oc, err, &x->o);
}

START_TEST(test_indoubt_in_progress_past_the_bound)
{
  reopen(500, 1000);
  prepare();
  q1("CREATE FUNCTION c_pg.slow() RETURNS trigger LANGUAGE plpgsql AS "
     "$$BEGIN IF NEW.k = 'doubt' THEN PERFORM pg_sleep(3); END IF; RETURN NULL; END$$");
  q1("CREATE CONSTRAINT TRIGGER slow AFTER INSERT ON c_pg.t DEFERRABLE INITIALLY DEFERRED "
     "FOR EACH ROW EXECUTE FUNCTION c_pg.slow()");
  int seq = 0;
  struct ordered first = { .seq = &seq }, later = { .seq = &seq };
  struct svc_pg_batch *b = svc_pg_batch_new(pg, NULL, ordered_done, &first);
  add_ins(b, "doubt", "1");
  svc_pg_submit(b);
  b = svc_pg_batch_new(pg, NULL, ordered_done, &later);
  add_ins(b, "later", "1");
  svc_pg_submit(b);
  run_until(&later.o.done);
  ck_assert_int_eq(first.o.done, 1);
  ck_assert_int_eq(first.o.oc, SVC_PG_COMMITTED);
  ck_assert_int_eq(later.o.oc, SVC_PG_COMMITTED);
  ck_assert_int_lt(first.at, later.at);
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.t"), 2);
  struct svc_pg_stats st;
  svc_pg_stats(pg, &st);
  ck_assert_uint_eq(st.indoubt, 1);
  ck_assert_uint_eq(st.indoubt_overdue, 1);
}
END_TEST

/* Every connection gets the server-side idle-transaction bound (twice the
 * batch timeout) and is named after the connection unless conninfo says. */
static char setting[64];

static void setting_cb(void *arg, const PGresult *r)
{
  (void)arg;
  snprintf(setting, sizeof setting, "%s|%s", PQgetvalue(r, 0, 0), PQgetvalue(r, 0, 1));
}

START_TEST(test_connection_settings)
{
  reopen(4000, 60000);
  struct svc_pg_stmt *show = svc_pg_prepare(
    pg, "SELECT current_setting('idle_in_transaction_session_timeout'), application_name"
        " FROM pg_stat_activity WHERE pid = pg_backend_pid()", 0, NULL);
  struct outcome o = { 0 };
  struct svc_pg_batch *b = svc_pg_batch_new(pg, NULL, done_cb, &o);
  ck_assert_int_eq(svc_pg_batch_add(b, show, 0, NULL, NULL, NULL, 0, setting_cb, NULL), 0);
  svc_pg_submit(b);
  run_until(&o.done);
  ck_assert_int_eq(o.oc, SVC_PG_COMMITTED);
  ck_assert_str_eq(setting, "8s|test");
}
END_TEST

/* A host list with per-host ports: a name that does not resolve is left out
 * (with its port), localhost is resolved and tried at a port where nothing
 * listens, and the cluster's socket directory, last, is reached at its own
 * port: the lists stay aligned. */
START_TEST(test_host_list_resolved)
{
  const char *dir = getenv("PGHOST"), *port = getenv("PGPORT");
  ck_assert_ptr_nonnull(dir);
  ck_assert_ptr_nonnull(port);
  char ci[512];
  snprintf(ci, sizeof ci, "user=c_pg host=nonexistent.invalid,localhost,%s port=1,1,%s", dir, port);
  svc_pg_destroy(&pg);
  pg = svc_pg_new(&loop, "hosts", ci);
  ck_assert_ptr_nonnull(pg);
  prepare();
  struct outcome o = { 0 };
  struct svc_pg_batch *b = svc_pg_batch_new(pg, NULL, done_cb, &o);
  add_ins(b, "via-list", "1");
  svc_pg_submit(b);
  run_until(&o.done);
  ck_assert_int_eq(o.oc, SVC_PG_COMMITTED);
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.t"), 1);
}
END_TEST

/* A connection string that cannot be parsed: no connection, and the log
 * names the problem without quoting the string (it may hold a password). */
START_TEST(test_bad_conninfo_is_not_logged)
{
  char path[] = "/tmp/check_pg_log_XXXXXX";
  int fd = mkstemp(path);
  ck_assert_int_ge(fd, 0);
  fflush(stderr);
  int saved = dup(2);
  dup2(fd, 2);
  /* libpq's own message for this one quotes the whole string. */
  struct svc_pg *bad = svc_pg_new(&loop, "bad", "postgresql://c_pg:hunter2@[::1/whistle");
  fflush(stderr);
  dup2(saved, 2);
  close(saved);
  ck_assert_ptr_null(bad);
  char buf[4096] = "";
  ssize_t n = pread(fd, buf, sizeof buf - 1, 0);
  close(fd);
  unlink(path);
  ck_assert_int_gt(n, 0);
  ck_assert_ptr_nonnull(strstr(buf, "cannot be parsed"));
  ck_assert_ptr_null(strstr(buf, "hunter2"));
}
END_TEST

static const struct svc_migration good[] = {
  { "001_a", "CREATE TABLE a (x int); INSERT INTO a VALUES (1);" },
  { "002_b", "CREATE TABLE b (y int);" },
  { NULL, NULL },
};
static const struct svc_migration bad[] = {
  { "001_a", "CREATE TABLE a (x int); INSERT INTO a VALUES (1);" },
  { "002_b", "CREATE TABLE b (y int);" },
  { "003_broken", "CREATE TABLE c (z int); SELECT no_such_function();" },
  { NULL, NULL },
};

START_TEST(test_migrations_once_and_atomic)
{
  ck_assert_int_eq(svc_migrate(CONNINFO, "c_pg", good, 5), 0);
  ck_assert_int_eq(svc_migrate(CONNINFO, "c_pg", good, 5), 0);
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.a"), 1); /* applied once */
  long long common = 0;
  for (const struct svc_migration *m = svc_common_migrations; m->name; m++) common++;
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.schema_migrations"), 2 + common);
  ck_assert_int_eq(svc_migrate(CONNINFO, "c_pg", bad, 5), -1);
  ck_assert_int_eq(q1("SELECT count(*) FROM pg_tables WHERE schemaname = 'c_pg' AND tablename = 'c'"), 0);
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.schema_migrations WHERE name = '003_broken'"), 0);
}
END_TEST

static int runs;

static int one_off_ok(PGconn *c, void *arg, int64_t *changed)
{
  (void)c;
  runs++;
  *changed += *(const int *)arg;
  return 0;
}

static int one_off_fails(PGconn *c, void *arg, int64_t *changed)
{
  (void)c;
  (void)arg;
  runs++;
  *changed += 1;
  return -1;
}

/* A one-off data fix runs once per schema; one that fails is not recorded
 * and runs again (svc_pg_one_off, used by the R-I6a clean-up). */
START_TEST(test_one_off_runs_once)
{
  int n = 7;
  ck_assert_int_eq(svc_migrate(CONNINFO, "c_pg", good, 5), 0); /* one_offs is the library's */
  runs = 0;
  ck_assert_int_eq(svc_pg_one_off(CONNINFO, "t.fails", one_off_fails, NULL), -1);
  ck_assert_int_eq(svc_pg_one_off(CONNINFO, "t.fails", one_off_fails, NULL), -1);
  ck_assert_int_eq(runs, 2);
  ck_assert_int_eq(svc_pg_one_off(CONNINFO, "t.ok", one_off_ok, &n), 0);
  ck_assert_int_eq(svc_pg_one_off(CONNINFO, "t.ok", one_off_ok, &n), 0);
  ck_assert_int_eq(runs, 3);
  ck_assert_int_eq(q1("SELECT changed FROM c_pg.one_offs WHERE name = 't.ok'"), 7);
  ck_assert_int_eq(q1("SELECT count(*) FROM c_pg.one_offs"), 1);
  ck_assert_int_eq(svc_pg_one_off("user=c_pg dbname=no_such_db", "t.x", one_off_ok, &n), -1);
  ck_assert_int_eq(runs, 3);
}
END_TEST

int main(void)
{
  svc_log_init("check_pg");
  svc_log_set_level(SVC_LOG_WARN);
  Suite *s = suite_create("pg");
  TCase *tc = tcase_create("pg");
  tcase_set_timeout(tc, 60);
  tcase_add_checked_fixture(tc, setup, teardown);
  tcase_add_test(tc, test_pipelined_batch_commits);
  tcase_add_test(tc, test_stage_depends_on_results);
  tcase_add_test(tc, test_sql_error_commits_nothing);
  tcase_add_test(tc, test_binary_arrays_roundtrip);
  tcase_add_test(tc, test_killed_backend_reconnects_and_retries);
  tcase_add_test(tc, test_indoubt_commit_is_settled);
  tcase_add_test(tc, test_batch_timeout_drops_connection);
  tcase_add_test(tc, test_indoubt_in_progress_past_the_bound);
  tcase_add_test(tc, test_connection_settings);
  tcase_add_test(tc, test_host_list_resolved);
  tcase_add_test(tc, test_bad_conninfo_is_not_logged);
  tcase_add_test(tc, test_one_off_runs_once);
  tcase_add_test(tc, test_migrations_once_and_atomic);
  suite_add_tcase(s, tc);
  SRunner *sr = srunner_create(s);
  srunner_set_fork_status(sr, CK_NOFORK);
  srunner_run_all(sr, CK_NORMAL);
  int failed = srunner_ntests_failed(sr);
  srunner_free(sr);
  return failed ? 1 : 0;
}
