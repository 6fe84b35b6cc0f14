/* Connection parameters for svc_pg: the user's conninfo merged with TCP
 * keepalives, tcp_user_timeout, connect_timeout and a server-side idle
 * transaction bound, and host names resolved on libuv's thread pool so that
 * libpq is handed addresses and never blocks the loop on DNS. The conninfo is
 * never logged: it may hold a password. */
#include "svc_pg_int.h"

#include <arpa/inet.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_log.h"

#define MAX_ADDRS 8        /* addresses kept per host name */
#define ADDR_LEN 46        /* INET6_ADDRSTRLEN */
#define CONNECT_TIMEOUT_S "10"

static struct svc_pg_opts defaults = { .batch_timeout_ms = 30000, .indoubt_bound_ms = 60000 };

/* One entry of the host list and what it resolved to. */
struct target {
  char *host, *port;      /* port: this host's own entry of a port list, or NULL */
  int resolve;            /* a name to look up (not a path or an IP literal) */
  char addrs[MAX_ADDRS][ADDR_LEN];
  int naddrs;
  char *logged;           /* the addresses last logged for it */
};

struct lookup {
  uv_getaddrinfo_t req;
  struct svc__pg_params *p; /* NULL once abandoned: the callback only frees */
  size_t target;
};

struct svc__pg_params {
  char *name;
  const char **kw;         /* NULL-terminated, with room for host, port, hostaddr */
  char **val;
  size_t n;
  struct target *t;        /* the host list when some name needs resolving */
  size_t nt;
  struct lookup **lk;      /* lookups in flight, by target */
  size_t pending;
  svc_pg_resolved_cb cb;
  void *arg;
  char *hosts, *ports, *addrs; /* lists built from the last resolution */
  size_t entries;          /* addresses libpq may try: entries of those lists */
  int connect_s;           /* connect_timeout in effect, 0: none */
};

void svc_pg_set_defaults(const struct svc_pg_opts *o)
{
  if (o->batch_timeout_ms > 0) defaults.batch_timeout_ms = o->batch_timeout_ms;
  if (o->indoubt_bound_ms > 0) defaults.indoubt_bound_ms = o->indoubt_bound_ms;
}

void svc__pg_get_defaults(struct svc_pg_opts *o)
{
  *o = defaults;
}

/* ---- merging ------------------------------------------------------------ */

static int find(const struct svc__pg_params *p, const char *kw)
{
  for (size_t i = 0; i < p->n; i++)
    if (strcmp(p->kw[i], kw) == 0) return (int)i;
  return -1;
}

/* The value in effect for kw: the string's, else the environment's. */
static const char *effective(const struct svc__pg_params *p, const char *kw, const char *env)
{
  int i = find(p, kw);
  if (i >= 0) return p->val[i];
  const char *e = env ? getenv(env) : NULL;
  return e && *e ? e : NULL;
}

/* Sets kw to an owned copy of v (replacing a value already there). */
static int set(struct svc__pg_params *p, const char *kw, const char *v)
{
  char *copy = strdup(v);
  if (!copy) return -1;
  int i = find(p, kw);
  if (i >= 0) {
    free(p->val[i]);
    p->val[i] = copy;
    return 0;
  }
  char *k = strdup(kw);
  if (!k) {
    free(copy);
    return -1;
  }
  p->kw[p->n] = k;
  p->val[p->n++] = copy;
  return 0;
}

static int add_defaults(struct svc__pg_params *p, int idle_tx_ms)
{
  static const struct { const char *kw, *env, *def; } d[] = {
    { "keepalives", NULL, "1" },
    { "keepalives_idle", NULL, "10" },
    { "keepalives_interval", NULL, "5" },
    { "keepalives_count", NULL, "3" },
    { "tcp_user_timeout", NULL, "30000" },
    { "connect_timeout", "PGCONNECT_TIMEOUT", CONNECT_TIMEOUT_S },
  };
  for (size_t i = 0; i < sizeof d / sizeof d[0]; i++)
    if (!effective(p, d[i].kw, d[i].env) && set(p, d[i].kw, d[i].def)) return -1;
  if (find(p, "fallback_application_name") < 0 && set(p, "fallback_application_name", p->name))
    return -1;
  p->connect_s = atoi(effective(p, "connect_timeout", "PGCONNECT_TIMEOUT"));
  if (p->connect_s < 0) p->connect_s = 0;
  if (p->connect_s == 1) p->connect_s = 2; /* libpq's own minimum */
  const char *opts = effective(p, "options", "PGOPTIONS");
  if (idle_tx_ms > 0 && !(opts && strstr(opts, "idle_in_transaction_session_timeout"))) {
    size_t len = (opts ? strlen(opts) : 0) + 64;
    char *o = malloc(len);
    if (!o) return -1;
    snprintf(o, len, "%s%s-c idle_in_transaction_session_timeout=%d", opts ? opts : "",
             opts ? " " : "", idle_tx_ms);
    int rc = set(p, "options", o);
    free(o);
    if (rc) return -1;
  }
  return 0;
}

/* ---- the host list ------------------------------------------------------ */

static int is_ip_literal(const char *h)
{
  unsigned char buf[16];
  return inet_pton(AF_INET, h, buf) == 1 || inet_pton(AF_INET6, h, buf) == 1;
}

/* Splits a comma-separated list into owned copies; the count in *n. */
static char **split(const char *s, size_t *n)
{
  size_t k = 1;
  for (const char *c = s; *c; c++) k += *c == ',';
  char **v = calloc(k, sizeof *v);
  if (!v) return NULL;
  for (size_t i = 0; i < k; i++) {
    const char *e = strchr(s, ',');
    size_t len = e ? (size_t)(e - s) : strlen(s);
    v[i] = strndup(s, len);
    if (!v[i]) {
      while (i--) free(v[i]);
      free(v);
      return NULL;
    }
    s = e ? e + 1 : s + len;
  }
  *n = k;
  return v;
}

static void free_list(char **v, size_t n)
{
  for (size_t i = 0; v && i < n; i++) free(v[i]);
  free(v);
}

/* Finds the host names to resolve; none when hostaddr or a service file is in
 * use (libpq then reads hosts we cannot see) or when every host is a path or
 * an address. 0, or -1 when out of memory. */
static int plan_targets(struct svc__pg_params *p)
{
  const char *hosts = effective(p, "host", "PGHOST");
  if (!hosts || effective(p, "hostaddr", "PGHOSTADDR") || effective(p, "service", "PGSERVICE"))
    return 0;
  size_t nh = 0, np = 0;
  char **h = split(hosts, &nh);
  const char *ports = effective(p, "port", "PGPORT");
  char **pl = ports ? split(ports, &np) : NULL;
  if (!h || (ports && !pl)) goto oom;
  int any = 0;
  for (size_t i = 0; i < nh; i++)
    any |= h[i][0] && h[i][0] != '/' && h[i][0] != '@' && !is_ip_literal(h[i]);
  if (!any || (np > 1 && np != nh)) { /* nothing to do, or a list libpq will reject */
    free_list(h, nh);
    free_list(pl, np);
    return 0;
  }
  p->t = calloc(nh, sizeof *p->t);
  p->lk = calloc(nh, sizeof *p->lk);
  if (!p->t || !p->lk) goto oom;
  p->nt = nh;
  for (size_t i = 0; i < nh; i++) {
    struct target *t = &p->t[i];
    t->host = h[i];
    h[i] = NULL;
    t->resolve = t->host[0] && t->host[0] != '/' && t->host[0] != '@' && !is_ip_literal(t->host);
    if (np > 1) {
      t->port = pl[i];
      pl[i] = NULL;
    }
  }
  free_list(h, nh);
  free_list(pl, np);
  return 0;
oom:
  free_list(h, nh);
  free_list(pl, np);
  return -1;
}

struct svc__pg_params *svc__pg_params_new(const char *conninfo, const char *name, int idle_tx_ms)
{
  char *err = NULL;
  PQconninfoOption *opts = PQconninfoParse(conninfo, &err);
  if (!opts) { /* err quotes the string: never log it */
    if (err) PQfreemem(err);
    svc_error("the Postgres connection string cannot be parsed (not shown: it may hold a password)",
              " pg=%s", name);
    return NULL;
  }
  size_t count = 0;
  for (PQconninfoOption *o = opts; o->keyword; o++) count++;
  struct svc__pg_params *p = calloc(1, sizeof *p);
  if (!p) goto oom;
  p->name = strdup(name);
  p->kw = calloc(count + 16, sizeof *p->kw);
  p->val = calloc(count + 16, sizeof *p->val);
  if (!p->name || !p->kw || !p->val) goto oom;
  for (PQconninfoOption *o = opts; o->keyword; o++)
    if (o->val && set(p, o->keyword, o->val)) goto oom;
  if (add_defaults(p, idle_tx_ms) || plan_targets(p)) goto oom;
  PQconninfoFree(opts);
  return p;
oom:
  PQconninfoFree(opts);
  svc_error("out of memory", " pg=%s", name);
  svc__pg_params_destroy(&p);
  return NULL;
}

void svc__pg_params_destroy(struct svc__pg_params **pp)
{
  struct svc__pg_params *p = *pp;
  if (!p) return;
  *pp = NULL;
  svc__pg_params_cancel(p);
  for (size_t i = 0; i < p->n; i++) {
    free((char *)p->kw[i]);
    free(p->val[i]);
  }
  for (size_t i = 0; i < p->nt; i++) {
    free(p->t[i].host);
    free(p->t[i].port);
    free(p->t[i].logged);
  }
  free(p->t);
  free(p->lk);
  free(p->kw);
  free(p->val);
  free(p->hosts);
  free(p->ports);
  free(p->addrs);
  free(p->name);
  free(p);
}

/* ---- resolution --------------------------------------------------------- */

/* Appends item to a comma-separated list as its entry number index. */
static int append(char **list, size_t *len, size_t index, const char *item)
{
  size_t add = strlen(item);
  char *n = realloc(*list, *len + add + 2);
  if (!n) return -1;
  if (index) n[(*len)++] = ',';
  memcpy(n + *len, item, add);
  *len += add;
  n[*len] = 0;
  *list = n;
  return 0;
}

/* Logs a host's addresses when they differ from what was logged before. */
static void log_addrs(struct svc__pg_params *p, struct target *t)
{
  char buf[MAX_ADDRS * ADDR_LEN + 1] = "";
  size_t len = 0;
  for (int i = 0; i < t->naddrs; i++)
    len += (size_t)snprintf(buf + len, sizeof buf - len, "%s%s", i ? "," : "", t->addrs[i]);
  if (t->logged && strcmp(t->logged, buf) == 0) return;
  free(t->logged);
  t->logged = strdup(buf);
  svc_info("postgres host resolved", " pg=%s host=%s addresses=%s", p->name, t->host, buf);
}

/* Builds host, port and hostaddr lists of equal length: one entry for each
 * address of a resolved name, and the entry as given for paths and IP
 * literals; names that did not resolve are left out. */
static int build_lists(struct svc__pg_params *p)
{
  char *h = NULL, *po = NULL, *a = NULL;
  size_t hl = 0, pl = 0, al = 0, entries = 0;
  int per_host_ports = p->nt && p->t[0].port;
  for (size_t i = 0; i < p->nt; i++) {
    struct target *t = &p->t[i];
    int k = t->resolve ? t->naddrs : 1;
    for (int j = 0; j < k; j++, entries++) {
      if (append(&h, &hl, entries, t->host) ||
          append(&a, &al, entries, t->resolve ? t->addrs[j] : "") ||
          (per_host_ports && append(&po, &pl, entries, t->port)))
        goto oom;
    }
  }
  free(p->hosts);
  free(p->addrs);
  free(p->ports);
  p->hosts = h;
  p->addrs = a;
  p->ports = po;
  p->entries = entries;
  return 0;
oom:
  free(h);
  free(a);
  free(po);
  return -1;
}

static void resolution_done(struct svc__pg_params *p)
{
  const char *error = NULL;
  for (size_t i = 0; i < p->nt; i++)
    if (p->t[i].resolve && p->t[i].naddrs) log_addrs(p, &p->t[i]);
  if (build_lists(p)) error = "out of memory";
  else if (!p->entries) error = "no host name could be resolved";
  p->cb(p->arg, error);
}

static void lookup_cb(uv_getaddrinfo_t *req, int status, struct addrinfo *res)
{
  struct lookup *l = (struct lookup *)req;
  struct svc__pg_params *p = l->p;
  if (p) {
    struct target *t = &p->t[l->target];
    p->lk[l->target] = NULL;
    if (status != 0)
      svc_warn("cannot resolve the postgres host", " pg=%s host=%s error=\"%s\"", p->name,
               t->host, uv_strerror(status));
    for (struct addrinfo *ai = status == 0 ? res : NULL; ai && t->naddrs < MAX_ADDRS; ai = ai->ai_next) {
      char buf[ADDR_LEN] = "";
      if (ai->ai_family == AF_INET) uv_ip4_name((struct sockaddr_in *)ai->ai_addr, buf, sizeof buf);
      else if (ai->ai_family == AF_INET6) uv_ip6_name((struct sockaddr_in6 *)ai->ai_addr, buf, sizeof buf);
      int dup = !buf[0];
      for (int i = 0; i < t->naddrs && !dup; i++) dup = strcmp(t->addrs[i], buf) == 0;
      if (!dup) memcpy(t->addrs[t->naddrs++], buf, sizeof buf);
    }
  }
  uv_freeaddrinfo(res);
  free(l);
  if (p && --p->pending == 0) resolution_done(p);
}

int svc__pg_params_resolve(struct svc__pg_params *p, uv_loop_t *loop, svc_pg_resolved_cb cb,
                          void *arg)
{
  if (!p->nt) return 1;
  svc__pg_params_cancel(p);
  p->cb = cb;
  p->arg = arg;
  struct addrinfo hints = { .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM };
  for (size_t i = 0; i < p->nt; i++) {
    struct target *t = &p->t[i];
    t->naddrs = 0;
    if (!t->resolve) continue;
    struct lookup *l = calloc(1, sizeof *l);
    if (!l) {
      svc__pg_params_cancel(p);
      return -1;
    }
    l->p = p;
    l->target = i;
    int rc = uv_getaddrinfo(loop, &l->req, lookup_cb, t->host, NULL, &hints);
    if (rc != 0) {
      svc_warn("cannot resolve the postgres host", " pg=%s host=%s error=\"%s\"", p->name,
               t->host, uv_strerror(rc));
      free(l);
      continue;
    }
    p->lk[i] = l;
    p->pending++;
  }
  if (p->pending) return 0;
  /* No lookup could start: connect now to what needs none, if anything. */
  if (build_lists(p)) return -1;
  return p->entries ? 1 : -1;
}

void svc__pg_params_cancel(struct svc__pg_params *p)
{
  for (size_t i = 0; i < p->nt; i++) {
    if (!p->lk[i]) continue;
    p->lk[i]->p = NULL;
    uv_cancel((uv_req_t *)&p->lk[i]->req);
    p->lk[i] = NULL;
  }
  p->pending = 0;
}

/* ---- connecting ----------------------------------------------------------- */

PGconn *svc__pg_params_connect(const struct svc__pg_params *p)
{
  const char **kw = calloc(p->n + 4, sizeof *kw);
  const char **val = calloc(p->n + 4, sizeof *val);
  PGconn *c = NULL;
  if (!kw || !val) goto out;
  size_t n = 0;
  for (size_t i = 0; i < p->n; i++) {
    if (p->hosts && (strcmp(p->kw[i], "host") == 0 || (p->ports && strcmp(p->kw[i], "port") == 0)))
      continue; /* replaced by the lists built from the resolution */
    kw[n] = p->kw[i];
    val[n++] = p->val[i];
  }
  if (p->hosts) {
    kw[n] = "host", val[n++] = p->hosts;
    kw[n] = "hostaddr", val[n++] = p->addrs;
    if (p->ports) kw[n] = "port", val[n++] = p->ports;
  }
  c = PQconnectStartParams(kw, val, 0);
out:
  free(kw);
  free(val);
  return c;
}

uint64_t svc__pg_params_connect_ms(const struct svc__pg_params *p)
{
  size_t tries = p->hosts ? p->entries : 1;
  if (!p->hosts && !p->nt) { /* libpq tries each host of the list */
    const char *h = effective(p, "host", "PGHOST");
    for (const char *c = h ? h : ""; *c; c++) tries += *c == ',';
  }
  return (uint64_t)p->connect_s * 1000u * (tries ? tries : 1);
}
