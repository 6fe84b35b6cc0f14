/* The HTTP face of the status counters, for compose healthchecks and
 * Prometheus: GET /healthz (200 while Postgres is up, else 503) and GET
 * /metrics (the Prometheus text of svc_status.c and svc_metrics.c). One
 * request per connection; anything else is answered 404/405/400 and closed.
 * Runs on the loop, never blocks. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "svc_log.h"
#include "svc_status_int.h"

#define REQ_MAX 2048

struct conn {
  uv_tcp_t tcp;
  uv_write_t wr;
  struct svc__http *h;
  char req[REQ_MAX];
  size_t len;
  char *resp;
  int answered;
};

struct svc__http {
  uv_tcp_t server;
  struct svc_status *st;
};

static void conn_closed(uv_handle_t *hd)
{
  struct conn *c = hd->data;
  free(c->resp);
  free(c);
}

static void written(uv_write_t *w, int status)
{
  struct conn *c = w->data;
  (void)status;
  uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void respond(struct conn *c, int code, const char *reason, const char *ctype, const char *body)
{
  size_t blen = strlen(body), cap = blen + 256;
  c->resp = malloc(cap);
  if (!c->resp) {
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    return;
  }
  int n = snprintf(c->resp, cap,
                   "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n"
                   "Connection: close\r\n\r\n%s", code, reason, ctype, blen, body);
  uv_buf_t b = uv_buf_init(c->resp, (unsigned)n);
  c->wr.data = c;
  c->answered = 1;
  uv_read_stop((uv_stream_t *)&c->tcp);
  if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, written) != 0)
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void handle(struct conn *c)
{
  char method[8] = "", path[64] = "";
  if (sscanf(c->req, "%7s %63s", method, path) != 2) {
    respond(c, 400, "Bad Request", "text/plain", "bad request\n");
    return;
  }
  if (strcmp(method, "GET") != 0) {
    respond(c, 405, "Method Not Allowed", "text/plain", "GET only\n");
    return;
  }
  if (strcmp(path, "/healthz") == 0) {
    int up = svc__status_value(c->h->st, "pg.up", 1) != 0;
    respond(c, up ? 200 : 503, up ? "OK" : "Service Unavailable", "text/plain",
            up ? "ok\n" : "postgres unavailable\n");
  } else if (strcmp(path, "/metrics") == 0) {
    char *text = svc__status_prometheus(c->h->st);
    respond(c, text ? 200 : 500, text ? "OK" : "Internal Server Error",
            "text/plain; version=0.0.4", text ? text : "");
    free(text);
  } else {
    respond(c, 404, "Not Found", "text/plain", "try /healthz or /metrics\n");
  }
}

static void alloc_cb(uv_handle_t *hd, size_t hint, uv_buf_t *buf)
{
  struct conn *c = hd->data;
  (void)hint;
  buf->base = c->req + c->len;
  buf->len = REQ_MAX - 1 - c->len;
}

static void read_cb(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
  struct conn *c = s->data;
  (void)buf;
  if (c->answered) return;
  if (n < 0) {
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
    return;
  }
  c->len += (size_t)n;
  c->req[c->len] = 0;
  if (strstr(c->req, "\r\n\r\n") || strstr(c->req, "\n\n")) handle(c);
  else if (c->len >= REQ_MAX - 1) respond(c, 400, "Bad Request", "text/plain", "request too long\n");
}

static void server_closed(uv_handle_t *hd)
{
  free(hd->data);
}

static void on_connection(uv_stream_t *server, int status)
{
  struct svc__http *h = server->data;
  if (status < 0) return;
  struct conn *c = calloc(1, sizeof *c);
  if (!c) return;
  c->h = h;
  uv_tcp_init(server->loop, &c->tcp);
  c->tcp.data = c;
  if (uv_accept(server, (uv_stream_t *)&c->tcp) != 0 ||
      uv_read_start((uv_stream_t *)&c->tcp, alloc_cb, read_cb) != 0)
    uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

struct svc__http *svc__http_new(uv_loop_t *loop, const char *addr, struct svc_status *st)
{
  char host[64];
  int port;
  const char *colon = strrchr(addr, ':');
  if (!colon || colon - addr >= (long)sizeof host || sscanf(colon + 1, "%d", &port) != 1 ||
      port <= 0 || port > 65535) {
    svc_error("WHISTLE_HTTP must be host:port", " value=%s", addr);
    return NULL;
  }
  snprintf(host, sizeof host, "%.*s", (int)(colon - addr), addr);
  if (!host[0] || strcmp(host, "*") == 0) snprintf(host, sizeof host, "0.0.0.0");
  struct sockaddr_in sa;
  struct svc__http *h = calloc(1, sizeof *h);
  if (!h) return NULL;
  h->st = st;
  uv_tcp_init(loop, &h->server);
  h->server.data = h;
  int rc = uv_ip4_addr(host, port, &sa);
  if (rc == 0) rc = uv_tcp_bind(&h->server, (const struct sockaddr *)&sa, 0);
  if (rc == 0) rc = uv_listen((uv_stream_t *)&h->server, 64, on_connection);
  if (rc != 0) {
    svc_error("cannot listen for HTTP", " addr=%s error=%s", addr, uv_strerror(rc));
    uv_close((uv_handle_t *)&h->server, server_closed);
    return NULL;
  }
  svc_info("HTTP health and metrics", " addr=%s", addr);
  return h;
}

void svc__http_destroy(struct svc__http **hp)
{
  struct svc__http *h = *hp;
  if (!h) return;
  *hp = NULL;
  uv_close((uv_handle_t *)&h->server, server_closed);
}
