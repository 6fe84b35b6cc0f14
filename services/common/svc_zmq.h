/* ZeroMQ on libuv (DESIGN §3) and the one place where sockets are made.
 * A struct svc_zsock couples a socket with a uv_poll on ZMQ_FD. ZMQ_FD is
 * edge-triggered, so one pump drains whole multipart messages while
 * ZMQ_EVENTS says POLLIN (a bounded batch, then it reschedules itself) and
 * flushes queued sends while POLLOUT. Sends made outside the pump schedule it.
 * Every socket gets ZMQ_MAXMSGSIZE, linger, heartbeats and, when security is
 * on, CURVE; servers authenticate clients through the ZAP handler, which maps
 * each allowed client key to an identity that handlers read as `user_id`. */
#ifndef SVC_ZMQ_H
#define SVC_ZMQ_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>
#include <zmq.h>

#define SVC_Z85_KEY_LEN 40

/* Security settings and the ZAP handler of a process. */
struct svc_zctx;

struct svc_zctx_opts {
  int curve;                       /* 0: development mode (loudly logged) */
  const char *server_secret_file;  /* Z85 secret key of this process as a server */
  const char *allowed_dir;         /* directory of <identity>.pub files (Z85 public keys) */
  const char *client_secret_file;  /* Z85 secret key of this process as a client */
  int64_t maxmsgsize;              /* bytes; 0 = 1 MiB */
};

/* Creates the ZeroMQ context and, with CURVE, loads keys and starts the ZAP
 * handler on loop. Returns NULL after logging what is wrong (missing or bad
 * key file, unreadable directory). */
struct svc_zctx *svc_zctx_new(uv_loop_t *loop, const struct svc_zctx_opts *o);
/* Reloads the allowed-keys directory (SIGHUP). 0 or -1 (old set kept). */
int svc_zctx_reload(struct svc_zctx *z);
/* Closes the ZAP socket; sockets must be closed first. Terminates the context. */
void svc_zctx_destroy(struct svc_zctx **z);
int svc_zctx_curve(const struct svc_zctx *z);
/* Counters: ZAP requests allowed and denied. */
void svc_zctx_stats(const struct svc_zctx *z, uint64_t *allowed, uint64_t *denied);

/* Generates a CURVE key pair into files (public gets ".pub" appended to path
 * stem: path + ".pub"; secret: path + ".key"). 0 or -1. For tools and tests. */
int svc_curve_keygen(const char *path_stem);
/* Reads a Z85 key (first 40 non-space characters) from a file. 0 or -1. */
int svc_curve_read_key(const char *path, char out[SVC_Z85_KEY_LEN + 1]);

/* 1 if the n bytes at s form an identity: 1-127 characters of A-Z a-z 0-9
 * _ - . (unit codes, system names; also the names of allowed-key files). */
int svc_identity_valid(const char *s, size_t n);

struct svc_frame { const uint8_t *data; size_t len; };

struct svc_zsock;
/* One received multipart message: frames[0..n-1]; user_id is the
 * authenticated identity (CURVE) or NULL in development mode. Frames are
 * valid only during the call. */
typedef void (*svc_zsock_msg_cb)(struct svc_zsock *s, const struct svc_frame *frames,
                                 size_t n, const char *user_id, void *arg);

struct svc_zsock_opts {
  int type;             /* ZMQ_ROUTER or ZMQ_DEALER */
  const char *bind;     /* endpoint to bind, or NULL */
  const char *connect;  /* endpoint to connect, or NULL */
  int heartbeat_ms;     /* ZMTP heartbeats; 0 = 1000 */
  int hwm;              /* send and receive high-water marks; 0 = 100000 */
  const char *routing_id; /* DEALER: optional routing id */
  const char *server_key; /* connecting with CURVE: the server's Z85 public key */
};

/* Creates, configures and binds/connects a socket and starts polling it on the
 * loop. With CURVE, a bound socket is a CURVE server with ZAP domain
 * "whistle"; a connecting socket is a CURVE client using the configured keys.
 * Returns NULL after logging. */
struct svc_zsock *svc_zsock_new(struct svc_zctx *z, uv_loop_t *loop,
                                const struct svc_zsock_opts *o,
                                svc_zsock_msg_cb cb, void *arg);
/* Sends a multipart message (frames copied). Returns 0 when sent or queued,
 * -1 when the peer is unknown (ROUTER, EHOSTUNREACH) or the socket is
 * closing; counted either way. */
int svc_zsock_send(struct svc_zsock *s, const struct svc_frame *frames, size_t n);
/* Stops (1) or resumes (0) reading: back-pressure. Sends continue. */
void svc_zsock_pause(struct svc_zsock *s, int paused);
/* Closes the socket (pending sends flushed up to linger) and frees it after
 * the uv close callback. *s is set to NULL. */
void svc_zsock_close(struct svc_zsock **s);
void *svc_zsock_raw(struct svc_zsock *s);
struct svc_zsock_stats { uint64_t received, sent, queued, dropped_unroutable, dropped_bad; };
void svc_zsock_stats(const struct svc_zsock *s, struct svc_zsock_stats *st);
/* Counts a frame a handler refused (malformed, oversized, hostile). */
void svc_zsock_count_bad(struct svc_zsock *s);

#endif
