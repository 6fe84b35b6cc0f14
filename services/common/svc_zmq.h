/* ZeroMQ on libuv (docs/architecture.md) and the one place where sockets are made.
 * A struct svc_zsock couples a socket with a uv_poll on ZMQ_FD. ZMQ_FD is
 * edge-triggered, so one pump drains whole multipart messages while
 * ZMQ_EVENTS says POLLIN (a bounded batch, then it reschedules itself) and
 * flushes queued sends while POLLOUT. Sends made outside the pump schedule it.
 * What a socket cannot take at once waits in a bounded queue, one per peer on
 * a ROUTER, so a peer that stops reading delays nobody else.
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
  const char *allowed_dir;         /* directory of <identity>.pub files (Z85 public keys);
                                    * <identity>+<label>.pub is one more key of it */
  const char *client_secret_file;  /* Z85 secret key of this process as a client */
  int64_t maxmsgsize;              /* bytes; 0 = 1 MiB */
  /* Defaults for every socket of the context (0: the value in brackets). */
  int hwm;                         /* ZMQ_SNDHWM and ZMQ_RCVHWM [100000] */
  size_t queue_msgs;               /* messages queued per peer [10000] */
  size_t queue_bytes;              /* payload bytes queued per peer [4 MiB] */
  size_t queue_peers;              /* ROUTER: peers with a queue [1024] */
};

/* Creates the ZeroMQ context and, with CURVE, loads keys and starts the ZAP
 * handler on loop. Returns NULL after logging what is wrong (missing or bad
 * key file, unreadable directory). */
struct svc_zctx *svc_zctx_new(uv_loop_t *loop, const struct svc_zctx_opts *o);
/* Reloads the allowed-keys directory (SIGHUP). 0 or -1 (old set kept, the
 * failure logged and counted by svc_reload_failed). */
int svc_zctx_reload(struct svc_zctx *z);
/* Closes the ZAP socket; sockets must be closed first. Terminates the context. */
void svc_zctx_destroy(struct svc_zctx **z);
int svc_zctx_curve(const struct svc_zctx *z);
/* Counters: ZAP requests allowed and denied. */
void svc_zctx_stats(const struct svc_zctx *z, uint64_t *allowed, uint64_t *denied);
struct svc_zsock_stats;
/* The counters of every socket of the context added up, closed sockets
 * included; the queue gauges are those of the open sockets. */
void svc_zctx_sock_stats(const struct svc_zctx *z, struct svc_zsock_stats *sum);

/* Generates a CURVE key pair into files (public gets ".pub" appended to path
 * stem: path + ".pub"; secret: path + ".key"). 0 or -1. For tools and tests. */
int svc_curve_keygen(const char *path_stem);
/* Reads a Z85 key (first 40 non-space characters) from a file. 0 or -1. */
int svc_curve_read_key(const char *path, char out[SVC_Z85_KEY_LEN + 1]);
/* Checks without logging that path holds a Z85 key (for --check-config): 0,
 * or -1 with a reason in err that never quotes the file's content. */
int svc_curve_check_key_file(const char *path, char *err, size_t errlen);
/* Checks every <identity>.pub of an allowed-keys directory the same way. */
int svc_curve_check_allowed_dir(const char *dir, char *err, size_t errlen);

/* 1 if the n bytes at s form an identity: 1-127 characters of A-Z a-z 0-9
 * _ - . (unit codes, system names; also the names of allowed-key files). */
int svc_identity_valid(const char *s, size_t n);
/* 1 if id is one of the comma-separated identities of list (e.g. the
 * operators or ops tools a daemon's configuration names). */
int svc_identity_listed(const char *list, const char *id);

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
  int hwm;              /* send and receive high-water marks; 0 = the context's */
  const char *routing_id; /* DEALER: optional routing id */
  const char *server_key; /* connecting with CURVE: the server's Z85 public key */
  size_t queue_msgs, queue_bytes, queue_peers; /* send queue caps; 0 = the context's */
};

/* Creates, configures and binds/connects a socket and starts polling it on the
 * loop. With CURVE, a bound socket is a CURVE server with ZAP domain
 * "whistle"; a connecting socket is a CURVE client using the configured keys.
 * Returns NULL after logging. */
struct svc_zsock *svc_zsock_new(struct svc_zctx *z, uv_loop_t *loop,
                                const struct svc_zsock_opts *o,
                                svc_zsock_msg_cb cb, void *arg);
/* Sends a multipart message (frames copied; on a ROUTER frames[0] is the
 * peer's routing id). It goes out at once when nothing waits for that peer
 * and its pipe is below the high-water mark, else it is queued behind that
 * peer's earlier messages (other peers are not held up). Queues are bounded:
 * per peer queue_msgs messages and queue_bytes payload bytes, and on a ROUTER
 * queue_peers peers with a queue; a peer's queue is freed once empty, or
 * dropped (counted unroutable) when the peer is gone. On every socket type a
 * message that finds no room is dropped, counted in dropped_full, and -1 is
 * returned: a peer that stops reading loses its newest messages, and a
 * DEALER whose server stops reading sees -1 once its queue is full.
 * Returns 0 when sent or queued; -1 when dropped: peer unknown (ROUTER,
 * EHOSTUNREACH; counted), no room (counted), or the socket is closing. */
int svc_zsock_send(struct svc_zsock *s, const struct svc_frame *frames, size_t n);
/* Stops (1) or resumes (0) reading: back-pressure. Sends continue. */
void svc_zsock_pause(struct svc_zsock *s, int paused);
/* Closes the socket (pending sends flushed up to linger) and frees it after
 * the uv close callback. *s is set to NULL. */
void svc_zsock_close(struct svc_zsock **s);
void *svc_zsock_raw(struct svc_zsock *s);
struct svc_zsock_stats {
  uint64_t received, sent;
  uint64_t queued;             /* messages that had to wait in a queue */
  uint64_t dropped_unroutable; /* peer unknown or gone (ROUTER) */
  uint64_t dropped_full;       /* no room: a peer's queue or the peer table was full */
  uint64_t dropped_bad;        /* received and refused (too many frames, svc_zsock_count_bad) */
  uint64_t queue_msgs, queue_bytes, queue_peers; /* now: queued messages, bytes, peers */
};
/* The socket's counters and current queue gauges. */
void svc_zsock_stats(const struct svc_zsock *s, struct svc_zsock_stats *st);
/* Counts a frame a handler refused (malformed, oversized, hostile). */
void svc_zsock_count_bad(struct svc_zsock *s);

#endif
