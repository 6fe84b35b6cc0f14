/* R-I6 personal data, the parts that run beside the handlers: the secret key
 * of caller pseudonyms, checked by the configuration and read at start, and
 * the retention purge that erases callers' phone numbers and names a
 * retention period after their tickets closed, one chunk at a time. */
#include <stdio.h>
#include <string.h>

#include "intake.h"
#include "svc_log.h"
#include "svc_pg.h"

#define DEV_KEY "whistle-development-key"

/* Reads the pseudonym key file (trailing newlines dropped); its length, or -1. */
static long read_key(const char *path, uint8_t *key, size_t cap)
{
  FILE *f = fopen(path, "rb");
  size_t n = f ? fread(key, 1, cap, f) : 0;
  if (!f) return -1;
  fclose(f);
  while (n && (key[n - 1] == '\n' || key[n - 1] == '\r')) n--;
  return (long)n;
}

int intake_key_check(const char *path, char *err, size_t errlen)
{
  uint8_t key[INTAKE_KEY_MAX];
  long n = read_key(path, key, sizeof key);
  memset(key, 0, sizeof key);
  if (n >= INTAKE_KEY_MIN) return 0;
  snprintf(err, errlen, n < 0 ? "cannot be read" : "shorter than %d bytes", INTAKE_KEY_MIN);
  return -1;
}

int intake_key_load(const char *path, int curve, uint8_t key[INTAKE_KEY_MAX], size_t *len)
{
  long n = (long)strlen(DEV_KEY);
  if (!*path && curve) {
    svc_error("WHISTLE_PSEUDONYM_KEY is required with CURVE on", "%s", "");
    return -1;
  } else if (!*path) {
    svc_warn("no pseudonym key: using the development key (pseudonyms are guessable)", "%s", "");
    memcpy(key, DEV_KEY, (size_t)n);
  } else if ((n = read_key(path, key, INTAKE_KEY_MAX)) < INTAKE_KEY_MIN) {
    svc_error("pseudonym key file missing or shorter than 16 bytes", " path=%s", path);
    return -1;
  }
  *len = (size_t)n;
  return 0;
}

static void purge_done(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  struct intake_purge *p = arg;
  (void)b;
  p->running = 0;
  if (oc == SVC_PG_COMMITTED && p->erasing) {
    p->x->n.purged += p->erasing;
    svc_info("retention purge", " erased=%llu", (unsigned long long)p->erasing);
    if (p->erasing == INTAKE_PURGE_CHUNK) intake_purge_run(p); /* more to erase: the next chunk */
  } else if (oc == SVC_PG_FAILED) {
    svc_warn("retention purge failed", " error=\"%s\"", err ? err : "");
  }
}

void intake_purge_run(struct intake_purge *p)
{
  /* R-T3: in wall mode the purge of personal data runs on the system clock
   * only, never on a clock that inputs could have moved. */
  int64_t now = p->x->clock.mode == SVC_CLOCK_WALL ? svc_wall_us() : svc_clock_now(&p->x->clock);
  if (!now || p->running || *p->stopping) return;
  struct svc_pg_batch *b = svc_pg_batch_new(p->pg, NULL, purge_done, p);
  if (!b) return;
  if (intake_store_purge(p->x->store, b, now, now - p->retention_us, &p->erasing)) {
    svc_pg_batch_discard(&b);
    return;
  }
  p->running = 1;
  svc_pg_submit(b);
}
