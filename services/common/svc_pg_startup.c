/* Blocking database reads for start-up, before a daemon's loop runs (its
 * own short-lived connection): what a service must know before it takes
 * work, such as the watermarks it had reached. Never used on the loop. */
#include <stdlib.h>

#include "svc_log.h"
#include "svc_pg.h"

int svc_pg_fetch_row(const char *conninfo, const char *sql, int64_t *out, int n,
                     const char *err_what)
{
  PGconn *c = PQconnectdb(conninfo);
  int rc = -1;
  for (int i = 0; i < n; i++) out[i] = 0;
  if (PQstatus(c) == CONNECTION_OK) {
    PGresult *r = PQexec(c, sql);
    if (PQresultStatus(r) == PGRES_TUPLES_OK && PQntuples(r) == 1 && PQnfields(r) == n) {
      for (int i = 0; i < n; i++) out[i] = strtoll(PQgetvalue(r, 0, i), NULL, 10);
      rc = 0;
    }
    PQclear(r);
  }
  if (rc) svc_error("cannot read at start-up", " what=\"%s\" error=\"%s\"", err_what, PQerrorMessage(c));
  PQfinish(c);
  return rc;
}
