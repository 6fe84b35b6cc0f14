/* Migrations (docs/architecture.md): services/<svc>/sql/NNN_name.sql are embedded at build
 * time and applied at start-up in name order, each in its own transaction,
 * under an advisory lock, and recorded in <schema>.schema_migrations. */
#ifndef SVC_MIGRATE_H
#define SVC_MIGRATE_H

struct svc_migration {
  const char *name; /* "001_stream" */
  const char *sql;  /* NUL-terminated text */
};

/* The library's own migrations (stream outbox and positions), applied into the
 * service's schema before the service's own, under the "common/" prefix. */
extern const struct svc_migration svc_common_migrations[];

/* Connects with conninfo (blocking: start-up only, before the loop runs),
 * retrying with back-off for up to wait_s seconds while Postgres is not up,
 * then applies the common migrations and `own` (a {NULL,NULL}-terminated
 * table, may be NULL) into `schema`. Returns 0, or -1 after logging which
 * migration failed and why (nothing of that migration is applied), or after
 * a stop signal during the wait (svc_stop_requested() then says 1: the
 * caller exits 0). The connection string is never logged. */
int svc_migrate(const char *conninfo, const char *schema,
                const struct svc_migration *own, int wait_s);

#endif
