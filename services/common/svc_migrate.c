/* The migrations runner: at start-up, before the loop runs, applies the
 * library's and the service's embedded SQL files in order, each in its own
 * transaction under an advisory lock, recording them in schema_migrations.
 * Blocking libpq is fine here: nothing else runs yet. */
#include "svc_migrate.h"

#include <libpq-fe.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "svc_log.h"
#include "svc_pg.h"
#include "svc_signal.h"
#include "svc_time.h"

static PGconn *connect_wait(const char *conninfo, int wait_s)
{
  int64_t deadline = svc_mono_us() + (int64_t)wait_s * SVC_US_PER_SEC;
  useconds_t backoff = 100000;
  char bad[200];
  if (svc_pg_conninfo_check(conninfo, bad, sizeof bad) != 0) {
    svc_error("the Postgres connection string is refused", " error=\"%s\"", bad);
    return NULL;
  }
  for (;;) {
    if (svc_stop_requested()) {
      svc_info("stop signal while waiting for postgres: exiting", "%s", "");
      return NULL;
    }
    PGconn *c = PQconnectdb(conninfo);
    if (PQstatus(c) == CONNECTION_OK) return c;
    char why[256];
    snprintf(why, sizeof why, "%s", PQerrorMessage(c));
    for (char *p = why; *p; p++) if (*p == '\n' || *p == '"') *p = ' ';
    PQfinish(c);
    if (svc_mono_us() >= deadline) {
      svc_error("cannot connect to postgres", " reason=\"%s\" waited_s=%d", why, wait_s);
      return NULL;
    }
    svc_info("waiting for postgres", " reason=\"%s\"", why);
    usleep(backoff); /* a stop signal ends it early */
    if (backoff < 2000000) backoff *= 2;
  }
}

static void quiet(void *arg, const char *msg)
{
  (void)arg;
  (void)msg;
}

static int exec_ok(PGconn *c, PGresult *r, const char *what)
{
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
    PQclear(r);
    return 0;
  }
  char why[512];
  snprintf(why, sizeof why, "%s", PQresultErrorMessage(r));
  for (char *p = why; *p; p++) if (*p == '\n' || *p == '"') *p = ' ';
  svc_error("migration step failed", " step=\"%s\" error=\"%s\"", what, why);
  PQclear(r);
  (void)c;
  return -1;
}

static int applied(PGconn *c, const char *name, int *yes)
{
  const char *v[1] = { name };
  PGresult *r = PQexecParams(c, "SELECT 1 FROM schema_migrations WHERE name = $1", 1, NULL, v,
                             NULL, NULL, 0);
  if (PQresultStatus(r) != PGRES_TUPLES_OK) return exec_ok(c, r, name);
  *yes = PQntuples(r) > 0;
  PQclear(r);
  return 0;
}

static int apply_one(PGconn *c, const char *prefix, const struct svc_migration *m)
{
  char name[256];
  snprintf(name, sizeof name, "%s%s", prefix, m->name);
  int yes = 0;
  if (applied(c, name, &yes)) return -1;
  if (yes) return 0;
  if (exec_ok(c, PQexec(c, "BEGIN"), "BEGIN")) return -1;
  if (exec_ok(c, PQexec(c, m->sql), name)) goto rollback;
  const char *v[1] = { name };
  if (exec_ok(c, PQexecParams(c, "INSERT INTO schema_migrations(name) VALUES ($1)", 1, NULL, v,
                              NULL, NULL, 0), name))
    goto rollback;
  if (exec_ok(c, PQexec(c, "COMMIT"), "COMMIT")) return -1;
  svc_info("migration applied", " name=%s", name);
  return 0;
rollback:
  PQclear(PQexec(c, "ROLLBACK"));
  return -1;
}

int svc_migrate(const char *conninfo, const char *schema, const struct svc_migration *own,
                int wait_s)
{
  PGconn *c = connect_wait(conninfo, wait_s);
  if (!c) return -1;
  int rc = -1;
  PQsetNoticeProcessor(c, quiet, NULL);
  char *ident = PQescapeIdentifier(c, schema, strlen(schema));
  char sql[512];
  if (!ident) goto out;
  /* The schema name is an identifier, which cannot be a parameter. */
  snprintf(sql, sizeof sql, "SET search_path TO %s", ident);
  PQfreemem(ident);
  if (exec_ok(c, PQexec(c, sql), "search_path")) goto out;
  const char *v[1] = { schema };
  if (exec_ok(c, PQexecParams(c, "SELECT pg_advisory_lock(hashtext('whistle.migrate.' || $1))",
                              1, NULL, v, NULL, NULL, 0), "lock"))
    goto out;
  if (exec_ok(c, PQexec(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                           " name text PRIMARY KEY,"
                           " applied_at timestamptz NOT NULL DEFAULT now())"),
              "schema_migrations"))
    goto out;
  for (const struct svc_migration *m = svc_common_migrations; m->name; m++)
    if (apply_one(c, "common/", m)) goto out;
  for (const struct svc_migration *m = own; m && m->name; m++)
    if (apply_one(c, "", m)) goto out;
  rc = 0;
out:
  PQfinish(c); /* the advisory lock ends with the session */
  return rc;
}
