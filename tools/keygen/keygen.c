/* whistle-keygen: writes a CURVE key pair for a daemon or a client system:
 * STEM.pub (Z85 public key, give it to the other side; as <identity>.pub in a
 * server's allowed-keys directory it admits that identity) and STEM.key (Z85
 * secret key, mode 0600, stays with its owner). */
#include <stdio.h>
#include <string.h>

#include "svc_zmq.h"

static void usage(FILE *f)
{
  fprintf(f, "usage: whistle-keygen STEM\n"
             "  Writes STEM.pub (public key) and STEM.key (secret key, mode 0600), both Z85.\n"
             "  Example: whistle-keygen keys/GA  ->  keys/GA.pub, keys/GA.key\n"
             "  Put GA.pub in a daemon's WHISTLE_CURVE_ALLOWED_DIR to admit identity GA.\n");
}

int main(int argc, char **argv)
{
  if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
    usage(stdout);
    return 0;
  }
  if (argc != 2 || argv[1][0] == '-') {
    usage(stderr);
    return 2;
  }
  if (svc_curve_keygen(argv[1]) != 0) {
    fprintf(stderr, "whistle-keygen: cannot write %s.pub / %s.key\n", argv[1], argv[1]);
    return 1;
  }
  printf("%s.pub\n%s.key\n", argv[1], argv[1]);
  return 0;
}
