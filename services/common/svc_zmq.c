/* ZeroMQ sockets on libuv: creation with every option in one place, the
 * edge-triggered pump (bounded receive batches, queued sends flushed on
 * POLLOUT; the queues themselves are svc_zqueue.c), CURVE key handling and
 * the ZAP handler that maps allowed client keys to identities. See svc_zmq.h. */
#include "svc_zmq.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svc_log.h"
#include "svc_signal.h"
#include "svc_zqueue_int.h"

#define MAX_FRAMES 8
#define PUMP_BATCH 256
#define RETRY_MS 10 /* queued messages: the pump runs again at least this often */
#define ZAP_ENDPOINT "inproc://zeromq.zap.01"
#define ZAP_DOMAIN "whistle"
#define ID_MAX 127

struct keymap { char pub[SVC_Z85_KEY_LEN + 1]; char id[ID_MAX + 1]; };

struct svc_zctx {
  void *ctx;
  uv_loop_t *loop;
  int curve;
  int64_t maxmsgsize;
  char *allowed_dir;
  char server_secret[SVC_Z85_KEY_LEN + 1];
  char client_secret[SVC_Z85_KEY_LEN + 1], client_public[SVC_Z85_KEY_LEN + 1];
  int have_server, have_client;
  struct keymap *keys;
  size_t n_keys;
  struct svc_zsock *zap;
  uint64_t allowed, denied;
  int hwm;
  struct svc__zq_limits lim;
  struct svc_zsock *socks;        /* open sockets */
  struct svc_zsock_stats closed;  /* counters of the sockets closed so far */
};

struct svc_zsock {
  struct svc_zctx *z;
  void *sock;
  uv_loop_t *loop;
  uv_poll_t poll;
  uv_idle_t idle;
  uv_timer_t retry;
  int handles_open;
  svc_zsock_msg_cb cb;
  void *arg;
  int paused, closing, in_pump, idle_on;
  struct svc__zq *q;
  struct svc_zsock_stats st;
  struct svc_zsock *znext, *zprev; /* the context's open sockets */
};

static void pump(struct svc_zsock *s);

/* ---- keys ---------------------------------------------------------------- */

/* The identity of an allowed-key file name of len bytes ending in ".pub":
 * the name before ".pub", or before the first '+' ("GA+2027.pub" is a second
 * key of GA, for rotations). */
static size_t id_len(const char *name, size_t len)
{
  const char *plus = memchr(name, '+', len - 4);
  return plus ? (size_t)(plus - name) : len - 4;
}

/* Reads a Z85 key file without logging; 0, or -1 with a reason in err that
 * never quotes the file's content. */
static int read_key_quiet(const char *path, char out[SVC_Z85_KEY_LEN + 1], char *err, size_t errlen)
{
  FILE *f = fopen(path, "r");
  if (!f) {
    snprintf(err, errlen, "cannot read key file: %s", strerror(errno));
    return -1;
  }
  size_t n = 0;
  int c;
  while ((c = fgetc(f)) != EOF && n < SVC_Z85_KEY_LEN) {
    if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
    out[n++] = (char)c;
  }
  fclose(f);
  out[n] = 0;
  uint8_t bin[32];
  if (n != SVC_Z85_KEY_LEN || !zmq_z85_decode(bin, out)) {
    snprintf(err, errlen, "key file does not hold a Z85 key of 40 characters");
    return -1;
  }
  return 0;
}

int svc_curve_read_key(const char *path, char out[SVC_Z85_KEY_LEN + 1])
{
  char err[160];
  if (read_key_quiet(path, out, err, sizeof err) == 0) return 0;
  svc_error(err, " path=%s", path);
  return -1;
}

int svc_curve_check_key_file(const char *path, char *err, size_t errlen)
{
  char key[SVC_Z85_KEY_LEN + 1];
  int rc = read_key_quiet(path, key, err, errlen);
  memset(key, 0, sizeof key);
  return rc;
}

int svc_curve_check_allowed_dir(const char *dir, char *err, size_t errlen)
{
  DIR *d = opendir(dir);
  struct dirent *e;
  int rc = 0;
  if (!d) {
    snprintf(err, errlen, "cannot open allowed-keys directory: %s", strerror(errno));
    return -1;
  }
  while (rc == 0 && (e = readdir(d))) {
    size_t len = strlen(e->d_name);
    char path[4096], why[120];
    if (len < 5 || strcmp(e->d_name + len - 4, ".pub") != 0) continue;
    if (!svc_identity_valid(e->d_name, id_len(e->d_name, len))) continue; /* skipped at start too */
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (svc_curve_check_key_file(path, why, sizeof why) != 0) {
      snprintf(err, errlen, "%s: %s", e->d_name, why);
      rc = -1;
    }
  }
  closedir(d);
  return rc;
}

static int write_file(const char *path, const char *text, mode_t mode)
{
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
  if (fd < 0) return -1;
  size_t len = strlen(text);
  int rc = write(fd, text, len) == (ssize_t)len && write(fd, "\n", 1) == 1 ? 0 : -1;
  close(fd);
  return rc;
}

int svc_curve_keygen(const char *stem)
{
  char pub[SVC_Z85_KEY_LEN + 1], sec[SVC_Z85_KEY_LEN + 1], path[4096];
  if (zmq_curve_keypair(pub, sec) != 0) return -1;
  snprintf(path, sizeof path, "%s.pub", stem);
  if (write_file(path, pub, 0644)) return -1;
  snprintf(path, sizeof path, "%s.key", stem);
  return write_file(path, sec, 0600);
}

int svc_identity_valid(const char *s, size_t n)
{
  if (n == 0 || n > ID_MAX) return 0;
  for (size_t i = 0; i < n; i++) {
    char c = s[i];
    if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
          c == '_' || c == '-' || c == '.'))
      return 0;
  }
  return 1;
}

int svc_identity_listed(const char *list, const char *id)
{
  size_t n = strlen(id);
  for (const char *p = list; *p;) {
    const char *e = strchr(p, ',');
    size_t len = e ? (size_t)(e - p) : strlen(p);
    if (len == n && strncmp(p, id, n) == 0) return 1;
    p += len + (e ? 1 : 0);
  }
  return 0;
}

/* Reads <identity>.pub files of the allowed directory into a fresh table. */
static int load_allowed(const char *dir, struct keymap **out, size_t *n_out)
{
  DIR *d = opendir(dir);
  if (!d) {
    svc_error("cannot open allowed-keys directory", " path=%s error=\"%s\"", dir, strerror(errno));
    return -1;
  }
  struct keymap *keys = NULL;
  size_t n = 0, cap = 0;
  struct dirent *e;
  int rc = 0;
  while ((e = readdir(d))) {
    size_t len = strlen(e->d_name);
    if (len < 5 || strcmp(e->d_name + len - 4, ".pub") != 0) continue;
    size_t idlen = id_len(e->d_name, len);
    if (!svc_identity_valid(e->d_name, idlen)) {
      svc_warn("skipping key file with an invalid identity name", " file=%s", e->d_name);
      continue;
    }
    if (n == cap) {
      cap = cap ? cap * 2 : 16;
      struct keymap *k = realloc(keys, cap * sizeof *k);
      if (!k) { rc = -1; break; }
      keys = k;
    }
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, e->d_name);
    if (svc_curve_read_key(path, keys[n].pub)) { rc = -1; break; }
    snprintf(keys[n].id, sizeof keys[n].id, "%.*s", (int)idlen, e->d_name);
    n++;
  }
  closedir(d);
  if (rc) {
    free(keys);
    return -1;
  }
  *out = keys;
  *n_out = n;
  return 0;
}

/* ---- ZAP ------------------------------------------------------------------ */

static void zap_reply(struct svc_zsock *s, const struct svc_frame *req_id, const char *code,
                      const char *text, const char *user)
{
  struct svc_frame f[6] = {
    { (const uint8_t *)"1.0", 3 }, *req_id, { (const uint8_t *)code, 3 },
    { (const uint8_t *)text, strlen(text) }, { (const uint8_t *)user, strlen(user) },
    { (const uint8_t *)"", 0 },
  };
  svc_zsock_send(s, f, 6);
}

/* ZAP request: version, request id, domain, address, routing id, mechanism,
 * credentials. Only CURVE with an allowed key passes. */
static void zap_cb(struct svc_zsock *s, const struct svc_frame *f, size_t n, const char *uid,
                   void *arg)
{
  struct svc_zctx *z = arg;
  (void)uid;
  if (n < 6) return;
  static const struct svc_frame none = { (const uint8_t *)"", 0 };
  const struct svc_frame *rid = &f[1];
  if (f[0].len != 3 || memcmp(f[0].data, "1.0", 3) != 0) {
    zap_reply(s, n > 1 ? rid : &none, "400", "bad version", "");
    return;
  }
  if (n == 7 && f[5].len == 5 && memcmp(f[5].data, "CURVE", 5) == 0 && f[6].len == 32) {
    char z85[SVC_Z85_KEY_LEN + 1];
    zmq_z85_encode(z85, f[6].data, 32);
    for (size_t i = 0; i < z->n_keys; i++) {
      if (strcmp(z->keys[i].pub, z85) == 0) {
        z->allowed++;
        zap_reply(s, rid, "200", "OK", z->keys[i].id);
        return;
      }
    }
    z->denied++;
    svc_warn("client key not allowed", " key=%s", z85);
    zap_reply(s, rid, "400", "key not allowed", "");
    return;
  }
  z->denied++;
  zap_reply(s, rid, "400", "CURVE required", "");
}

/* ---- context -------------------------------------------------------------- */

struct svc_zctx *svc_zctx_new(uv_loop_t *loop, const struct svc_zctx_opts *o)
{
  struct svc_zctx *z = calloc(1, sizeof *z);
  if (!z) return NULL;
  z->loop = loop;
  z->curve = o->curve;
  z->maxmsgsize = o->maxmsgsize > 0 ? o->maxmsgsize : 1 << 20;
  z->hwm = o->hwm > 0 ? o->hwm : 100000;
  z->lim.msgs = o->queue_msgs ? o->queue_msgs : 10000;
  z->lim.bytes = o->queue_bytes ? o->queue_bytes : 4u << 20;
  z->lim.peers = o->queue_peers ? o->queue_peers : 1024;
  z->ctx = zmq_ctx_new();
  if (!z->ctx) goto fail;
  if (!z->curve) {
    svc_warn("CURVE is OFF: development mode, any client may connect and claim any identity",
             " security=none");
    return z;
  }
  if (!zmq_has("curve")) {
    svc_error("libzmq was built without CURVE support", "%s", "");
    goto fail;
  }
  if (o->server_secret_file) {
    if (svc_curve_read_key(o->server_secret_file, z->server_secret)) goto fail;
    z->have_server = 1;
    if (!o->allowed_dir) {
      svc_error("CURVE server needs an allowed-keys directory", "%s", "");
      goto fail;
    }
    z->allowed_dir = strdup(o->allowed_dir);
    if (!z->allowed_dir || load_allowed(z->allowed_dir, &z->keys, &z->n_keys)) goto fail;
    struct svc_zsock_opts zo = { .type = ZMQ_REP, .bind = ZAP_ENDPOINT };
    z->zap = svc_zsock_new(z, loop, &zo, zap_cb, z);
    if (!z->zap) goto fail;
    svc_info("CURVE on", " allowed_keys=%zu", z->n_keys);
  }
  if (o->client_secret_file) {
    if (svc_curve_read_key(o->client_secret_file, z->client_secret)) goto fail;
    if (zmq_curve_public(z->client_public, z->client_secret) != 0) goto fail;
    z->have_client = 1;
  }
  return z;
fail:
  svc_zctx_destroy(&z);
  return NULL;
}

int svc_zctx_reload(struct svc_zctx *z)
{
  if (!z->curve || !z->allowed_dir) return 0;
  struct keymap *keys;
  size_t n;
  if (load_allowed(z->allowed_dir, &keys, &n)) {
    svc_reload_failed("allowed keys", "the allowed-keys directory cannot be read (logged above)");
    return -1;
  }
  free(z->keys);
  z->keys = keys;
  z->n_keys = n;
  svc_info("allowed keys reloaded", " allowed_keys=%zu", n);
  return 0;
}

void svc_zctx_destroy(struct svc_zctx **zp)
{
  struct svc_zctx *z = *zp;
  if (!z) return;
  *zp = NULL;
  if (z->zap) svc_zsock_close(&z->zap);
  if (z->ctx) zmq_ctx_term(z->ctx);
  free(z->keys);
  free(z->allowed_dir);
  free(z);
}

int svc_zctx_curve(const struct svc_zctx *z)
{
  return z->curve;
}

void svc_zctx_stats(const struct svc_zctx *z, uint64_t *allowed, uint64_t *denied)
{
  *allowed = z->allowed;
  *denied = z->denied;
}

static void add_counters(struct svc_zsock_stats *sum, const struct svc_zsock_stats *st)
{
  sum->received += st->received;
  sum->sent += st->sent;
  sum->queued += st->queued;
  sum->dropped_unroutable += st->dropped_unroutable;
  sum->dropped_full += st->dropped_full;
  sum->dropped_bad += st->dropped_bad;
}

void svc_zctx_sock_stats(const struct svc_zctx *z, struct svc_zsock_stats *sum)
{
  *sum = z->closed;
  for (const struct svc_zsock *s = z->socks; s; s = s->znext) {
    struct svc_zsock_stats st;
    svc_zsock_stats(s, &st);
    add_counters(sum, &st);
    sum->queue_msgs += st.queue_msgs;
    sum->queue_bytes += st.queue_bytes;
    sum->queue_peers += st.queue_peers;
  }
}

/* ---- sockets --------------------------------------------------------------- */

static int setopt_int(void *sock, int opt, int v)
{
  return zmq_setsockopt(sock, opt, &v, sizeof v);
}

static int configure(struct svc_zctx *z, void *sock, const struct svc_zsock_opts *o)
{
  int hb = o->heartbeat_ms > 0 ? o->heartbeat_ms : 1000;
  int hwm = o->hwm > 0 ? o->hwm : z->hwm;
  int64_t max = z->maxmsgsize;
  if (setopt_int(sock, ZMQ_LINGER, 1000) || setopt_int(sock, ZMQ_SNDHWM, hwm) ||
      setopt_int(sock, ZMQ_RCVHWM, hwm) ||
      zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max))
    return -1;
  if (o->type == ZMQ_REP) return 0; /* the in-process ZAP socket */
  if (setopt_int(sock, ZMQ_HEARTBEAT_IVL, hb) || setopt_int(sock, ZMQ_HEARTBEAT_TIMEOUT, hb * 3) ||
      setopt_int(sock, ZMQ_HEARTBEAT_TTL, hb * 3) || setopt_int(sock, ZMQ_RECONNECT_IVL, 100) ||
      setopt_int(sock, ZMQ_RECONNECT_IVL_MAX, 2000))
    return -1;
  if (o->type == ZMQ_ROUTER && setopt_int(sock, ZMQ_ROUTER_MANDATORY, 1)) return -1;
  if (o->routing_id &&
      zmq_setsockopt(sock, ZMQ_ROUTING_ID, o->routing_id, strlen(o->routing_id)))
    return -1;
  if (!z->curve) return 0;
  if (o->bind) {
    if (!z->have_server) {
      svc_error("CURVE is on but no server secret key is configured", " bind=%s", o->bind);
      return -1;
    }
    if (setopt_int(sock, ZMQ_CURVE_SERVER, 1) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, z->server_secret, SVC_Z85_KEY_LEN + 1) ||
        zmq_setsockopt(sock, ZMQ_ZAP_DOMAIN, ZAP_DOMAIN, strlen(ZAP_DOMAIN)))
      return -1;
  } else {
    if (!z->have_client || !o->server_key || strlen(o->server_key) != SVC_Z85_KEY_LEN) {
      svc_error("CURVE is on but the client key or the server's public key is missing",
                " connect=%s", o->connect);
      return -1;
    }
    if (zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, o->server_key, SVC_Z85_KEY_LEN + 1) ||
        zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, z->client_public, SVC_Z85_KEY_LEN + 1) ||
        zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, z->client_secret, SVC_Z85_KEY_LEN + 1))
      return -1;
  }
  return 0;
}

static void poll_cb(uv_poll_t *h, int status, int events)
{
  (void)status;
  (void)events;
  pump(h->data);
}

static void idle_cb(uv_idle_t *h)
{
  struct svc_zsock *s = h->data;
  uv_idle_stop(&s->idle);
  s->idle_on = 0;
  pump(s);
}

static void retry_cb(uv_timer_t *h)
{
  pump(h->data);
}

static void schedule(struct svc_zsock *s)
{
  if (s->idle_on || s->closing) return;
  s->idle_on = 1;
  uv_idle_start(&s->idle, idle_cb);
}

struct svc_zsock *svc_zsock_new(struct svc_zctx *z, uv_loop_t *loop,
                                const struct svc_zsock_opts *o, svc_zsock_msg_cb cb, void *arg)
{
  struct svc_zsock *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->z = z;
  s->loop = loop;
  s->cb = cb;
  s->arg = arg;
  struct svc__zq_limits lim = {
    .msgs = o->queue_msgs ? o->queue_msgs : z->lim.msgs,
    .bytes = o->queue_bytes ? o->queue_bytes : z->lim.bytes,
    .peers = o->queue_peers ? o->queue_peers : z->lim.peers,
  };
  s->q = svc__zq_new(&lim, o->type == ZMQ_ROUTER);
  s->sock = s->q ? zmq_socket(z->ctx, o->type) : NULL;
  const char *where = o->bind ? o->bind : o->connect;
  if (!s->sock || configure(z, s->sock, o)) {
    svc_error("cannot create socket", " endpoint=%s error=\"%s\"", where ? where : "-",
              zmq_strerror(zmq_errno()));
    goto fail;
  }
  if ((o->bind && zmq_bind(s->sock, o->bind) != 0) ||
      (o->connect && zmq_connect(s->sock, o->connect) != 0)) {
    svc_error(o->bind ? "cannot bind" : "cannot connect", " endpoint=%s error=\"%s\"", where,
              zmq_strerror(zmq_errno()));
    goto fail;
  }
  int fd;
  size_t sz = sizeof fd;
  if (zmq_getsockopt(s->sock, ZMQ_FD, &fd, &sz) != 0 || uv_poll_init(loop, &s->poll, fd) != 0 ||
      uv_idle_init(loop, &s->idle) != 0 || uv_timer_init(loop, &s->retry) != 0)
    goto fail;
  s->handles_open = 3;
  s->poll.data = s;
  s->idle.data = s;
  s->retry.data = s;
  uv_poll_start(&s->poll, UV_READABLE, poll_cb);
  s->znext = z->socks;
  if (z->socks) z->socks->zprev = s;
  z->socks = s;
  schedule(s);
  return s;
fail:
  if (s->sock) zmq_close(s->sock);
  svc__zq_destroy(&s->q);
  free(s);
  return NULL;
}

/* Receives one whole multipart message and hands it to the callback. Returns 1
 * when a message was taken, 0 when none was ready. */
static int recv_one(struct svc_zsock *s)
{
  zmq_msg_t parts[MAX_FRAMES];
  size_t n = 0;
  int more = 1, too_many = 0;
  while (more) {
    zmq_msg_t m;
    zmq_msg_init(&m);
    if (zmq_msg_recv(&m, s->sock, ZMQ_DONTWAIT) < 0) {
      zmq_msg_close(&m);
      if (n == 0) return 0;
      break; /* cannot happen: multipart messages arrive whole */
    }
    more = zmq_msg_more(&m);
    if (n < MAX_FRAMES) parts[n++] = m;
    else {
      too_many = 1;
      zmq_msg_close(&m);
    }
  }
  s->st.received++;
  if (too_many) {
    s->st.dropped_bad++;
    s->cb(s, NULL, 0, NULL, s->arg); /* n == 0: dropped, too many frames */
  } else {
    struct svc_frame f[MAX_FRAMES];
    for (size_t i = 0; i < n; i++) f[i] = (struct svc_frame){ zmq_msg_data(&parts[i]), zmq_msg_size(&parts[i]) };
    const char *uid = s->z->curve ? zmq_msg_gets(&parts[n - 1], "User-Id") : NULL;
    s->cb(s, f, n, uid, s->arg);
  }
  for (size_t i = 0; i < n; i++) zmq_msg_close(&parts[i]);
  return 1;
}

/* Drains the socket: flushes queued sends and receives whole messages until
 * each would block (at most PUMP_BATCH messages, then it reschedules), then
 * reads ZMQ_EVENTS, which re-arms the edge-triggered ZMQ_FD and applies the
 * commands that reopen full pipes, and goes on while that shows more work. */
static void pump(struct svc_zsock *s)
{
  if (s->in_pump || s->closing) return;
  s->in_pump = 1;
  int budget = PUMP_BATCH;
  size_t out_budget = 64 * PUMP_BATCH;
  for (;;) {
    size_t flushed = svc__zq_empty(s->q) ? 0 : svc__zq_flush(s->q, s->sock, &s->st);
    out_budget -= flushed < out_budget ? flushed : out_budget;
    while (!s->paused && !s->closing && budget > 0 && recv_one(s)) budget--;
    if (s->closing) break;
    uint32_t ev = 0;
    size_t sz = sizeof ev;
    if (zmq_getsockopt(s->sock, ZMQ_EVENTS, &ev, &sz) != 0) break;
    int more_in = (ev & ZMQ_POLLIN) && !s->paused;
    if ((more_in && budget == 0) || out_budget == 0) {
      schedule(s); /* let the loop breathe, then go on */
      break;
    }
    if (more_in) continue;
    if (svc__zq_empty(s->q) || !(ev & ZMQ_POLLOUT)) break;
    /* A ROUTER reports POLLOUT while some peers' pipes are full: go on while
     * queued messages move. Reading ZMQ_EVENTS may have just reopened a pipe,
     * and no edge will say so again: one more flush decides. That attempt may
     * itself have taken commands in (an edge for incoming messages): read the
     * events once more before waiting. */
    if (flushed == 0 && svc__zq_flush(s->q, s->sock, &s->st) == 0) {
      if (zmq_getsockopt(s->sock, ZMQ_EVENTS, &ev, &sz) == 0 && (ev & ZMQ_POLLIN) && !s->paused)
        continue;
      break;
    }
  }
  /* A pipe reopened by commands that a send attempt took in gives no edge
   * either: while messages wait, the pump also runs on a short timer. */
  if (!s->closing && !svc__zq_empty(s->q)) uv_timer_start(&s->retry, retry_cb, RETRY_MS, 0);
  s->in_pump = 0;
}

int svc_zsock_send(struct svc_zsock *s, const struct svc_frame *frames, size_t n)
{
  if (s->closing || n == 0) return -1;
  int rc = svc__zq_send(s->q, s->sock, frames, n, &s->st);
  if (!s->in_pump) schedule(s); /* a send may have consumed the FD's edge, or queued */
  return rc;
}

void svc_zsock_pause(struct svc_zsock *s, int paused)
{
  s->paused = paused;
  if (!paused) schedule(s);
}

static void handle_close_cb(uv_handle_t *h)
{
  struct svc_zsock *s = h->data;
  if (--s->handles_open == 0) free(s);
}

void svc_zsock_close(struct svc_zsock **sp)
{
  struct svc_zsock *s = *sp;
  if (!s) return;
  *sp = NULL;
  s->closing = 1;
  if (!svc__zq_empty(s->q)) svc__zq_flush(s->q, s->sock, &s->st);
  svc__zq_destroy(&s->q); /* what is still queued is given up */
  add_counters(&s->z->closed, &s->st);
  if (s->zprev) s->zprev->znext = s->znext; else s->z->socks = s->znext;
  if (s->znext) s->znext->zprev = s->zprev;
  uv_poll_stop(&s->poll);
  uv_idle_stop(&s->idle);
  uv_timer_stop(&s->retry);
  zmq_close(s->sock);
  uv_close((uv_handle_t *)&s->poll, handle_close_cb);
  uv_close((uv_handle_t *)&s->idle, handle_close_cb);
  uv_close((uv_handle_t *)&s->retry, handle_close_cb);
}

void *svc_zsock_raw(struct svc_zsock *s)
{
  return s->sock;
}

void svc_zsock_stats(const struct svc_zsock *s, struct svc_zsock_stats *st)
{
  *st = s->st;
  st->queue_msgs = st->queue_bytes = st->queue_peers = 0;
  if (s->q) svc__zq_gauges(s->q, &st->queue_msgs, &st->queue_bytes, &st->queue_peers);
}

void svc_zsock_count_bad(struct svc_zsock *s)
{
  s->st.dropped_bad++;
}
