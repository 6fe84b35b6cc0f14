/* The output of watch and run (JSON Lines on stdout or appended to a file)
 * and the position file: the seq of the last event durably written, replaced
 * atomically after each fsync of the output, so that a restart resumes after
 * it and writes every event exactly once (a crash in the middle of a write is
 * repaired from the output file itself when it is a regular file). */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "dept.h"

#define TAIL_BYTES (1 << 20) /* the last line of an output file is shorter */

struct dept_out {
  FILE *f;
  int own;          /* f is a file we opened */
  int regular;      /* a regular file: fsync errors are real */
  char *pos_path, *tmp_path;
  uint64_t position;
};

static int read_position(const char *path, uint64_t *pos, char *err, size_t errlen)
{
  FILE *f = fopen(path, "r");
  *pos = 0;
  if (!f) {
    if (errno == ENOENT) return 0;
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  char buf[64] = "";
  size_t n = fread(buf, 1, sizeof buf - 1, f);
  fclose(f);
  buf[n] = 0;
  char *end;
  errno = 0;
  unsigned long long v = strtoull(buf, &end, 10);
  while (*end == '\n' || *end == ' ' || *end == '\r') end++;
  if (n == 0 || buf[0] < '0' || buf[0] > '9' || *end || errno) {
    snprintf(err, errlen, "%s: not a position file (one decimal seq expected)", path);
    return -1;
  }
  *pos = v;
  return 0;
}

/* The seq of the last whole line of the output file fd; a partial last line
 * is cut off. 0 or -1 (with err). */
static int repair_tail(int fd, const char *path, uint64_t *last, char *err, size_t errlen)
{
  struct stat st;
  *last = 0;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size == 0) return 0;
  off_t from = st.st_size > TAIL_BYTES ? st.st_size - TAIL_BYTES : 0;
  size_t n = (size_t)(st.st_size - from);
  char *buf = malloc(n + 1);
  if (!buf || pread(fd, buf, n, from) != (ssize_t)n) {
    free(buf);
    snprintf(err, errlen, "%s: cannot read its end", path);
    return -1;
  }
  size_t end = n;
  while (end > 0 && buf[end - 1] != '\n') end--;
  if (end < n) { /* a partial line: the write it belongs to never completed */
    if (ftruncate(fd, from + (off_t)end) != 0 || fsync(fd) != 0) {
      free(buf);
      snprintf(err, errlen, "%s: cannot cut its partial last line: %s", path, strerror(errno));
      return -1;
    }
    fprintf(stderr, "whistle-dept: %s: cut a partial last line (%zu bytes)\n", path, n - end);
  }
  size_t start = end ? end - 1 : 0;
  while (start > 0 && buf[start - 1] != '\n') start--;
  json_t *o = end ? json_loadb(buf + start, end - start, 0, NULL) : NULL;
  json_t *seq = json_object_get(o, "seq");
  if (json_is_integer(seq) && json_integer_value(seq) > 0) *last = (uint64_t)json_integer_value(seq);
  json_decref(o);
  free(buf);
  return 0;
}

static int open_output(struct dept_out *o, const char *path, char *err, size_t errlen)
{
  if (!path || strcmp(path, "-") == 0) {
    o->f = stdout;
    struct stat st;
    o->regular = fstat(STDOUT_FILENO, &st) == 0 && S_ISREG(st.st_mode);
    return 0;
  }
  int fd = open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (fd < 0) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    return -1;
  }
  uint64_t last = 0;
  if (o->pos_path && repair_tail(fd, path, &last, err, errlen)) {
    close(fd);
    return -1;
  }
  if (last > o->position) {
    fprintf(stderr, "whistle-dept: %s already holds seq %llu (position file: %llu); resuming "
                    "after it\n", path, (unsigned long long)last, (unsigned long long)o->position);
    o->position = last;
  }
  o->f = fdopen(fd, "a");
  if (!o->f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    close(fd);
    return -1;
  }
  o->own = 1;
  o->regular = 1;
  return 0;
}

struct dept_out *dept_out_open(const char *out_path, const char *pos_path, char *err, size_t errlen)
{
  struct dept_out *o = calloc(1, sizeof *o);
  if (!o) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (pos_path) {
    size_t n = strlen(pos_path) + 5;
    o->pos_path = strdup(pos_path);
    o->tmp_path = malloc(n);
    if (!o->pos_path || !o->tmp_path) {
      snprintf(err, errlen, "out of memory");
      goto fail;
    }
    snprintf(o->tmp_path, n, "%s.tmp", pos_path);
    if (read_position(pos_path, &o->position, err, errlen)) goto fail;
  }
  if (open_output(o, out_path, err, errlen)) goto fail;
  return o;
fail:
  dept_out_close(&o);
  return NULL;
}

uint64_t dept_out_position(const struct dept_out *o)
{
  return o->position;
}

int dept_out_write(struct dept_out *o, const char *line, size_t len)
{
  return fwrite(line, 1, len, o->f) == len ? 0 : -1;
}

static int fsync_dir_of(const char *path)
{
  char *copy = strdup(path);
  if (!copy) return -1;
  int fd = open(dirname(copy), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  free(copy);
  if (fd < 0) return -1;
  int rc = fsync(fd);
  close(fd);
  return rc;
}

static int save_position(struct dept_out *o, uint64_t seq)
{
  int fd = open(o->tmp_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return -1;
  char buf[32];
  int n = snprintf(buf, sizeof buf, "%llu\n", (unsigned long long)seq);
  int rc = write(fd, buf, (size_t)n) == n && fsync(fd) == 0 ? 0 : -1;
  if (close(fd) != 0) rc = -1;
  if (rc == 0) rc = rename(o->tmp_path, o->pos_path);
  if (rc == 0) fsync_dir_of(o->pos_path); /* best effort: the rename itself is atomic */
  return rc;
}

int dept_out_commit(struct dept_out *o, uint64_t seq)
{
  if (fflush(o->f) != 0) {
    fprintf(stderr, "whistle-dept: cannot write the output: %s\n", strerror(errno));
    return -1;
  }
  /* A pipe or a terminal cannot be synced; once read, the lines are out. */
  if (fsync(fileno(o->f)) != 0 && o->regular) {
    fprintf(stderr, "whistle-dept: cannot sync the output: %s\n", strerror(errno));
    return -1;
  }
  if (o->pos_path && seq != o->position && save_position(o, seq) != 0) {
    fprintf(stderr, "whistle-dept: cannot record the position in %s: %s\n", o->pos_path,
            strerror(errno));
    return -1;
  }
  o->position = seq;
  return 0;
}

void dept_out_close(struct dept_out **op)
{
  struct dept_out *o = *op;
  if (!o) return;
  *op = NULL;
  if (o->own && o->f) fclose(o->f);
  else if (o->f) fflush(o->f);
  free(o->pos_path);
  free(o->tmp_path);
  free(o);
}
