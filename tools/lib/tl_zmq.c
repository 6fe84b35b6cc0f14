/* A tool's client DEALER (tl_zmq.h). */
#include <stdio.h>
#include <string.h>

#include <zmq.h>

#include "svc_zmq.h"
#include "tl_zmq.h"

static int setopt_int(void *sock, int opt, int v)
{
  return zmq_setsockopt(sock, opt, &v, sizeof v);
}

static int set_curve(void *sock, const char *prog, const char *server_key_file,
                     const char *client_key_file)
{
  char server[SVC_Z85_KEY_LEN + 1], secret[SVC_Z85_KEY_LEN + 1], public[SVC_Z85_KEY_LEN + 1];
  if (!server_key_file || !client_key_file) {
    fprintf(stderr, "%s: CURVE needs both the server's public key and this client's secret key "
                    "(got only %s)\n", prog, server_key_file ? "the server key" : "the client key");
    return -1;
  }
  if (svc_curve_read_key(server_key_file, server) || svc_curve_read_key(client_key_file, secret)) {
    fprintf(stderr, "%s: cannot read the CURVE keys (server key %s, client key %s)\n", prog,
            server_key_file, client_key_file);
    return -1;
  }
  int rc = zmq_curve_public(public, secret) ||
           zmq_setsockopt(sock, ZMQ_CURVE_SERVERKEY, server, SVC_Z85_KEY_LEN + 1) ||
           zmq_setsockopt(sock, ZMQ_CURVE_PUBLICKEY, public, SVC_Z85_KEY_LEN + 1) ||
           zmq_setsockopt(sock, ZMQ_CURVE_SECRETKEY, secret, SVC_Z85_KEY_LEN + 1);
  memset(secret, 0, sizeof secret);
  if (rc) fprintf(stderr, "%s: CURVE setup failed: %s\n", prog, zmq_strerror(zmq_errno()));
  return rc ? -1 : 0;
}

void *tl_dealer_new(void *ctx, const char *prog, const char *endpoint,
                    const char *server_key_file, const char *client_key_file, int64_t maxmsgsize)
{
  void *sock = zmq_socket(ctx, ZMQ_DEALER);
  if (!sock) {
    fprintf(stderr, "%s: cannot create a ZeroMQ socket: %s\n", prog, zmq_strerror(zmq_errno()));
    return NULL;
  }
  int64_t max = maxmsgsize ? maxmsgsize : -1;
  if (setopt_int(sock, ZMQ_LINGER, 0) || setopt_int(sock, ZMQ_SNDHWM, 0) ||
      setopt_int(sock, ZMQ_RCVHWM, 0) ||
      zmq_setsockopt(sock, ZMQ_MAXMSGSIZE, &max, sizeof max) ||
      setopt_int(sock, ZMQ_HEARTBEAT_IVL, 1000) || setopt_int(sock, ZMQ_HEARTBEAT_TIMEOUT, 3000) ||
      setopt_int(sock, ZMQ_HEARTBEAT_TTL, 3000) || setopt_int(sock, ZMQ_RECONNECT_IVL, 100) ||
      setopt_int(sock, ZMQ_RECONNECT_IVL_MAX, 2000)) {
    fprintf(stderr, "%s: socket options: %s\n", prog, zmq_strerror(zmq_errno()));
    zmq_close(sock);
    return NULL;
  }
  if ((server_key_file || client_key_file) &&
      set_curve(sock, prog, server_key_file, client_key_file)) {
    zmq_close(sock);
    return NULL;
  }
  if (zmq_connect(sock, endpoint) != 0) {
    fprintf(stderr, "%s: cannot connect to %s: %s\n", prog, endpoint, zmq_strerror(zmq_errno()));
    zmq_close(sock);
    return NULL;
  }
  return sock;
}
