/* whistle-keygen: writes a CURVE key pair for a daemon or a client system:
 * STEM.pub (Z85 public key, give it to the other side; as <identity>.pub in a
 * server's allowed-keys directory it admits that identity) and STEM.key (Z85
 * secret key, mode 0600, stays with its owner). Never overwrites a key pair
 * unless told to; can hand both files to the user a container runs as. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "svc_config.h"
#include "svc_zmq.h"

static void usage(FILE *f)
{
  fprintf(f, "usage: whistle-keygen [--force] [--owner UID:GID] STEM\n"
             "  Writes STEM.pub (public key, mode 0644) and STEM.key (secret key, mode 0600),\n"
             "  both Z85. Example: whistle-keygen keys/GA  ->  keys/GA.pub, keys/GA.key\n"
             "  Put GA.pub in a daemon's WHISTLE_CURVE_ALLOWED_DIR to admit identity GA.\n"
             "  --force          replace an existing key pair (its old secret key is lost)\n"
             "  --owner UID:GID  give both files to this user and group (as root), e.g.\n"
             "                   10001:10001, the user of the Whistle image, so that a\n"
             "                   daemon in a container can read its secret key\n"
             "  --version        print the version and exit\n"
             "Exit status: 0 written, 1 cannot write, 2 bad usage, 3 a key pair exists.\n");
}

/* Parses "UID:GID" (numbers); 0 or -1. */
static int parse_owner(const char *s, uid_t *uid, gid_t *gid)
{
  char *end;
  errno = 0;
  unsigned long u = strtoul(s, &end, 10);
  if (end == s || *end != ':' || errno) return -1;
  const char *g = end + 1;
  unsigned long v = strtoul(g, &end, 10);
  if (end == g || *end || errno) return -1;
  *uid = (uid_t)u;
  *gid = (gid_t)v;
  return 0;
}

int main(int argc, char **argv)
{
  static const struct option opts[] = {
    { "force", no_argument, NULL, 'f' },
    { "owner", required_argument, NULL, 'o' },
    { "help", no_argument, NULL, 'h' },
    { "version", no_argument, NULL, 'V' },
    { NULL, 0, NULL, 0 },
  };
  int force = 0, own = 0, c;
  uid_t uid = 0;
  gid_t gid = 0;
  while ((c = getopt_long(argc, argv, "h", opts, NULL)) != -1) {
    switch (c) {
    case 'f': force = 1; break;
    case 'o':
      if (parse_owner(optarg, &uid, &gid)) {
        fprintf(stderr, "whistle-keygen: --owner takes UID:GID in numbers, e.g. 10001:10001\n");
        return 2;
      }
      own = 1;
      break;
    case 'h': usage(stdout); return 0;
    case 'V': printf("whistle-keygen %s\n", svc_version()); return 0;
    default: usage(stderr); return 2;
    }
  }
  if (optind != argc - 1 || !argv[optind][0]) {
    usage(stderr);
    return 2;
  }
  const char *stem = argv[optind];
  char pub[4096], key[4096];
  snprintf(pub, sizeof pub, "%s.pub", stem);
  snprintf(key, sizeof key, "%s.key", stem);
  struct stat st;
  if (!force && (stat(pub, &st) == 0 || stat(key, &st) == 0)) {
    fprintf(stderr, "whistle-keygen: %s or %s exists: not replaced (--force replaces the pair;"
                    " see key rotation in the README)\n", pub, key);
    return 3;
  }
  if (svc_curve_keygen(stem) != 0) {
    fprintf(stderr, "whistle-keygen: cannot write %s / %s: %s\n", pub, key, strerror(errno));
    return 1;
  }
  if (chmod(pub, 0644) != 0 || chmod(key, 0600) != 0 ||
      (own && (chown(pub, uid, gid) != 0 || chown(key, uid, gid) != 0))) {
    fprintf(stderr, "whistle-keygen: cannot set the owner or mode of %s / %s: %s%s\n", pub, key,
            strerror(errno), own && geteuid() != 0 ? " (--owner needs root)" : "");
    return 1;
  }
  printf("%s\n%s\n", pub, key);
  return 0;
}
