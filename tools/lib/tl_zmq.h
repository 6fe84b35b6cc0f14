/* The tools' library (build/lib/libtools.a, linked by whistle-hotline,
 * whistle-dept and whistlectl): a client DEALER socket to a daemon's ROUTER
 * with the options every tool uses (no linger, unbounded queues, heartbeats,
 * quick reconnects) and, when key files are given, CURVE. */
#ifndef TL_ZMQ_H
#define TL_ZMQ_H

#include <stddef.h>
#include <stdint.h>

/* Creates a DEALER on ctx and connects it to endpoint. With server_key_file
 * (the daemon's Z85 public key) and client_key_file (this client's Z85 secret
 * key) the connection uses CURVE; with neither it is plain. maxmsgsize 0: no
 * limit. Returns the socket, or NULL after printing "prog: reason" to stderr. */
void *tl_dealer_new(void *ctx, const char *prog, const char *endpoint,
                    const char *server_key_file, const char *client_key_file, int64_t maxmsgsize);

#endif
