/* Blocking database work for start-up, before a daemon's loop runs (its
 * own short-lived connection): what a service must know before it takes
 * work, such as the watermarks it had reached; one-off data fixes that must
 * be done before it serves, run once per schema; and the connection string's
 * checks and password, which never let a byte of the string reach a log.
 * Never used on the loop. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_log.h"
#include "svc_pg.h"

int svc_pg_conninfo_check(const char *conninfo, char *err, size_t errlen)
{
  char *msg = NULL;
  PQconninfoOption *o = PQconninfoParse(conninfo ? conninfo : "", &msg);
  if (o) {
    PQconninfoFree(o);
    return 0;
  }
  /* libpq's message quotes a piece of the string, which may be a password:
   * only its kind is told. */
  const char *why = "not a valid libpq connection string";
  if (msg && strstr(msg, "missing \"=\"")) why = "a word without \"=\" (keyword=value expected; quote values with spaces)";
  else if (msg && strstr(msg, "unterminated quoted string")) why = "an unterminated quoted value";
  else if (msg && strstr(msg, "invalid connection option")) why = "an unknown connection option";
  else if (msg && strstr(msg, "URI")) why = "an invalid postgresql:// URI";
  else if (!msg) why = "out of memory";
  if (msg) {
    memset(msg, 0, strlen(msg));
    PQfreemem(msg);
  }
  snprintf(err, errlen, "cannot be parsed: %s (the string is not shown: it may hold a password)", why);
  return -1;
}

/* Appends keyword='value' (value escaped as libpq reads it); 0 or -1. */
static int append_kv(char **buf, size_t *len, size_t *cap, const char *kw, const char *val)
{
  size_t need = *len + strlen(kw) + 2 * strlen(val) + 8;
  if (need > *cap) {
    size_t ncap = need * 2;
    char *nb = malloc(ncap);
    if (!nb) return -1;
    if (*buf) {
      memcpy(nb, *buf, *len + 1);
      memset(*buf, 0, *cap);
      free(*buf);
    }
    *buf = nb;
    *cap = ncap;
  }
  char *p = *buf + *len;
  if (*len) *p++ = ' ';
  p += sprintf(p, "%s='", kw);
  for (const char *v = val; *v; v++) {
    if (*v == '\'' || *v == '\\') *p++ = '\\';
    *p++ = *v;
  }
  *p++ = '\'';
  *p = 0;
  *len = (size_t)(p - *buf);
  return 0;
}

char *svc_pg_conninfo_with_password(const char *conninfo, const char *password)
{
  PQconninfoOption *opts = PQconninfoParse(conninfo ? conninfo : "", NULL);
  char *buf = NULL;
  size_t len = 0, cap = 0;
  int bad = !opts;
  for (PQconninfoOption *o = opts; !bad && o->keyword; o++) {
    if (!o->val || strcmp(o->keyword, "password") == 0) continue;
    bad = append_kv(&buf, &len, &cap, o->keyword, o->val) != 0;
  }
  if (!bad) bad = append_kv(&buf, &len, &cap, "password", password) != 0;
  if (opts) PQconninfoFree(opts);
  if (bad && buf) {
    memset(buf, 0, cap);
    free(buf);
    buf = NULL;
  }
  return buf;
}

int svc_pg_fetch_row(const char *conninfo, const char *sql, int64_t *out, int n,
                     const char *err_what)
{
  char why[200];
  for (int i = 0; i < n; i++) out[i] = 0;
  if (svc_pg_conninfo_check(conninfo, why, sizeof why) != 0) {
    svc_error("cannot read at start-up: the Postgres connection string", " what=\"%s\" error=\"%s\"",
              err_what, why);
    return -1;
  }
  PGconn *c = PQconnectdb(conninfo);
  int rc = -1;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == n) {
      for (int i = 0; i < n; i++) out[i] = strtoll(PQgetvalue(r, 0, i), NULL, 10);
      rc = 0;
    }
    PQclear(r);
  }
  if (rc) {
    snprintf(why, sizeof why, "%s", PQerrorMessage(c));
    for (char *p = why; *p; p++) if (*p == '\n' || *p == '"') *p = ' ';
    svc_error("cannot read at start-up", " what=\"%s\" error=\"%s\"", err_what, why);
  }
  PQfinish(c);
  return rc;
}

/* msg without quotes and line ends, for a log value. */
static void flatten(char *buf, size_t n, const char *msg)
{
  snprintf(buf, n, "%s", msg ? msg : "");
  for (char *p = buf; *p; p++)
    if (*p == '\n' || *p == '"') *p = ' ';
}

PGresult *svc_pg_exec(PGconn *c, const char *sql, int n, const char *const *values,
                      const int *lengths, const int *formats, int result_format,
                      const char *err_what)
{
  PGresult *r = PQexecParams(c, sql, n, NULL, values, lengths, formats, result_format);
  ExecStatusType st = PQresultStatus(r);
  if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) return r;
  char why[512];
  flatten(why, sizeof why, r ? PQresultErrorMessage(r) : PQerrorMessage(c));
  svc_error("start-up statement failed", " what=\"%s\" error=\"%s\"", err_what, why);
  PQclear(r);
  return NULL;
}

/* 1 if one_offs records name, 0 if not, -1 on error. */
static int one_off_done(PGconn *c, const char *name)
{
  const char *v[1] = { name };
  PGresult *r = svc_pg_exec(c, "SELECT 1 FROM one_offs WHERE name = $1", 1, v, NULL, NULL, 0,
                            "one_offs");
  if (!r) return -1;
  int done = PQntuples(r) > 0;
  PQclear(r);
  return done;
}

int svc_pg_one_off(const char *conninfo, const char *name, svc_one_off_fn run, void *arg)
{
  PGconn *c = PQconnectdb(conninfo);
  PGresult *r = NULL;
  int64_t changed = 0;
  int rc = -1, done;
  char why[256], n[24];
  const char *v[2] = { name, n };
  if (PQstatus(c) != CONNECTION_OK) {
    flatten(why, sizeof why, PQerrorMessage(c));
    svc_error("cannot connect for a one-off", " name=%s error=\"%s\"", name, why);
    goto out;
  }
  /* Two instances starting together: the second waits, then finds it done. */
  r = svc_pg_exec(c, "SELECT pg_advisory_lock(hashtext('whistle.one_off.' || current_schema()"
                     " || '.' || $1))", 1, v, NULL, NULL, 0, "one-off lock");
  if (!r) goto out;
  PQclear(r);
  if ((done = one_off_done(c, name)) != 0) {
    rc = done > 0 ? 0 : -1;
    goto out;
  }
  svc_info("one-off starts", " name=%s", name);
  if (run(c, arg, &changed)) {
    svc_error("one-off failed; it runs again at the next start", " name=%s changed=%lld", name,
              (long long)changed);
    goto out;
  }
  snprintf(n, sizeof n, "%lld", (long long)changed);
  r = svc_pg_exec(c, "INSERT INTO one_offs (name, changed) VALUES ($1, $2)", 2, v, NULL, NULL, 0,
                  "one_offs");
  if (!r) goto out;
  PQclear(r);
  svc_info("one-off done", " name=%s changed=%lld", name, (long long)changed);
  rc = 0;
out:
  PQfinish(c); /* the advisory lock ends with the session */
  return rc;
}
