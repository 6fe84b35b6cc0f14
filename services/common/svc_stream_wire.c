/* Framing shared by the stream producer and consumer: one StreamMessage per
 * frame, behind the routing id on the producer's ROUTER. */
#include "svc_stream_int.h"

#include <stdlib.h>

int svc__stream_send(struct svc_zsock *s, const uint8_t *peer, size_t peer_len,
                    const Whistle__Stream__StreamMessage *msg)
{
  size_t len = whistle__stream__stream_message__get_packed_size(msg);
  uint8_t stackbuf[512];
  uint8_t *buf = len <= sizeof stackbuf ? stackbuf : malloc(len);
  if (!buf) return -1;
  whistle__stream__stream_message__pack(msg, buf);
  struct svc_frame f[2];
  size_t n = 0;
  if (peer) f[n++] = (struct svc_frame){ peer, peer_len };
  f[n++] = (struct svc_frame){ buf, len };
  int rc = svc_zsock_send(s, f, n);
  if (buf != stackbuf) free(buf);
  return rc;
}
