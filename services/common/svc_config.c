/* Configuration tables: reads each WHISTLE_* variable once from the environment
 * (or its default), validates it by kind, and serves --help and --check-config
 * from the same table. Secret values are never printed, in help, checks or
 * error messages. */
#include "svc_config.h"

#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "whistle_version.h"

extern char **environ;

/* Writes a reason into err; always returns -1. */
__attribute__((format(printf, 3, 4)))
static int reason(char *err, size_t errlen, const char *fmt, ...) {
  va_list ap;

  if (!err || errlen == 0) return -1;
  va_start(ap, fmt);
  vsnprintf(err, errlen, fmt, ap);
  va_end(ap);
  return -1;
}

/* Parses a decimal integer with an optional sign and nothing else; 0 or -1. */
static int parse_int(const char *s, int64_t *out) {
  int neg = (*s == '-');
  uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX, v = 0;

  if (*s == '-' || *s == '+') s++;
  if (*s == '\0') return -1;
  for (; *s; s++) {
    unsigned d = (unsigned)(*s - '0');
    if (d > 9) return -1;
    if (v > (limit - d) / 10) return -1;
    v = v * 10 + d;
  }
  *out = neg ? (int64_t)(0 - v) : (int64_t)v;
  return 0;
}

static int validate_int(const struct svc_config_var *v, const char *value, int64_t *ival,
                        char *err, size_t errlen) {
  int64_t x;

  if (parse_int(value, &x) != 0) return reason(err, errlen, "not a decimal integer");
  if (x < v->min || x > v->max)
    return reason(err, errlen, "out of range [%" PRId64 ", %" PRId64 "]", v->min, v->max);
  *ival = x;
  return 0;
}

static int validate_bool(const char *value, int64_t *ival, char *err, size_t errlen) {
  static const char *const yes[] = {"1", "true", "yes", "on"};
  static const char *const no[] = {"0", "false", "no", "off"};

  for (int i = 0; i < 4; i++) {
    if (strcmp(value, yes[i]) == 0 || strcmp(value, no[i]) == 0) {
      *ival = strcmp(value, yes[i]) == 0;
      return 0;
    }
  }
  return reason(err, errlen, "not a boolean (0/1, true/false, yes/no, on/off)");
}

static int validate_enum(const struct svc_config_var *v, const char *value, int64_t *ival,
                         char *err, size_t errlen) {
  const char *p = v->choices ? v->choices : "";
  size_t n = strlen(value);

  for (int64_t i = 0;; i++) {
    const char *bar = strchr(p, '|');
    size_t wl = bar ? (size_t)(bar - p) : strlen(p);
    if (n > 0 && wl == n && memcmp(p, value, n) == 0) {
      *ival = i;
      return 0;
    }
    if (!bar) break;
    p = bar + 1;
  }
  return reason(err, errlen, "not one of %s", v->choices ? v->choices : "(no choices)");
}

static int validate_endpoint(const char *value, char *err, size_t errlen) {
  static const char *const schemes[] = {"tcp://", "ipc://", "inproc://"};

  for (const char *p = value; *p; p++) {
    if ((unsigned char)*p <= ' ') return reason(err, errlen, "endpoint contains a space or control character");
  }
  for (int i = 0; i < 3; i++) {
    size_t sl = strlen(schemes[i]);
    const char *rest = value + sl, *colon;
    if (strncmp(value, schemes[i], sl) != 0) continue;
    if (*rest == '\0') return reason(err, errlen, "endpoint has nothing after %s", schemes[i]);
    colon = strrchr(rest, ':');
    if (i == 0 && (!colon || colon == rest || colon[1] == '\0'))
      return reason(err, errlen, "tcp endpoint needs host:port");
    return 0;
  }
  return reason(err, errlen, "not an endpoint (tcp://host:port, ipc://path or inproc://name)");
}

/* A readable regular file (want_dir 0) or a readable, searchable directory. */
static int validate_fs(const char *value, int want_dir, char *err, size_t errlen) {
  struct stat st;

  if (stat(value, &st) != 0) return reason(err, errlen, "%s", strerror(errno));
  if (want_dir && !S_ISDIR(st.st_mode)) return reason(err, errlen, "not a directory");
  if (!want_dir && !S_ISREG(st.st_mode)) return reason(err, errlen, "not a regular file");
  if (access(value, want_dir ? R_OK | X_OK : R_OK) != 0)
    return reason(err, errlen, "cannot be read by uid %u: %s", (unsigned)geteuid(), strerror(errno));
  return 0;
}

/* host:port as the HTTP listener takes it: an IPv4 address, "*" or nothing. */
static int validate_hostport(const char *value, char *err, size_t errlen) {
  const char *colon = strrchr(value, ':');
  char host[64];
  int64_t port;
  struct in_addr a;

  if (!colon) return reason(err, errlen, "not host:port");
  if (parse_int(colon + 1, &port) != 0 || port < 1 || port > 65535)
    return reason(err, errlen, "port is not a number in [1, 65535]");
  if ((size_t)(colon - value) >= sizeof host) return reason(err, errlen, "host too long");
  snprintf(host, sizeof host, "%.*s", (int)(colon - value), value);
  if (host[0] && strcmp(host, "*") != 0 && inet_pton(AF_INET, host, &a) != 1)
    return reason(err, errlen, "host must be an IPv4 address, * or empty");
  return 0;
}

int svc_config_validate(const struct svc_config_var *v, const char *value, int64_t *ival,
                        char *err, size_t errlen) {
  int64_t dummy = 0;

  if (err && errlen) err[0] = '\0';
  if (!ival) ival = &dummy;
  *ival = 0;
  if (!v) return reason(err, errlen, "no variable");
  if (!value) return reason(err, errlen, "required but not set");
  if (*value == '\0') {
    int may = v->kind == SVC_CFG_STRING || v->kind == SVC_CFG_FILE || v->kind == SVC_CFG_DIR ||
              v->kind == SVC_CFG_HOSTPORT;
    if (may && v->def && *v->def == '\0') return 0;
    return reason(err, errlen, "must not be empty");
  }
  if (v->check && v->kind != SVC_CFG_FILE && v->kind != SVC_CFG_DIR) {
    int rc = 0;
    switch (v->kind) {
    case SVC_CFG_INT: rc = validate_int(v, value, ival, err, errlen); break;
    case SVC_CFG_ENDPOINT: rc = validate_endpoint(value, err, errlen); break;
    case SVC_CFG_HOSTPORT: rc = validate_hostport(value, err, errlen); break;
    default: break;
    }
    if (rc != 0) return rc;
    return v->check(value, err, errlen);
  }
  switch (v->kind) {
  case SVC_CFG_STRING: return 0;
  case SVC_CFG_INT: return validate_int(v, value, ival, err, errlen);
  case SVC_CFG_BOOL: return validate_bool(value, ival, err, errlen);
  case SVC_CFG_ENUM: return validate_enum(v, value, ival, err, errlen);
  case SVC_CFG_ENDPOINT: return validate_endpoint(value, err, errlen);
  case SVC_CFG_PATH: return 0;
  case SVC_CFG_FILE:
  case SVC_CFG_DIR:
    if (validate_fs(value, v->kind == SVC_CFG_DIR, err, errlen) != 0) return -1;
    return v->check ? v->check(value, err, errlen) : 0;
  case SVC_CFG_HOSTPORT: return validate_hostport(value, err, errlen);
  }
  return reason(err, errlen, "unknown kind");
}

/* Describes a variable's kind and limits, e.g. "int [1, 65535]". */
static const char *kind_text(const struct svc_config_var *v, char *buf, size_t n) {
  switch (v->kind) {
  case SVC_CFG_STRING: return "string";
  case SVC_CFG_INT:
    snprintf(buf, n, "int [%" PRId64 ", %" PRId64 "]", v->min, v->max);
    return buf;
  case SVC_CFG_BOOL: return "bool";
  case SVC_CFG_ENUM:
    snprintf(buf, n, "one of %s", v->choices ? v->choices : "");
    return buf;
  case SVC_CFG_ENDPOINT: return "endpoint";
  case SVC_CFG_PATH: return "path";
  case SVC_CFG_FILE: return "file";
  case SVC_CFG_DIR: return "directory";
  case SVC_CFG_HOSTPORT: return "host:port";
  }
  return "?";
}

/* The default column of the help table; never a secret's value. */
static const char *default_text(const struct svc_config_var *v) {
  if (!v->def) return "(required)";
  if (v->secret) return "(secret)";
  if (*v->def == '\0') return "\"\"";
  return v->def;
}

void svc_config_usage(const struct svc_config_var *table, FILE *f, const char *prog,
                      const char *summary) {
  int wn = 8, wd = 7, wk = 4;
  char kb[160];

  if (!f) return;
  fprintf(f, "usage: %s [--help] [--version] [--check-config]\n\n", prog ? prog : "whistle");
  if (summary && *summary) fprintf(f, "%s\n\n", summary);
  fprintf(f, "  --help          print this text and exit\n"
             "  --version       print the version and exit\n"
             "  --check-config  validate the settings as start-up does, print them (secrets\n"
             "                  masked) and exit: 0 if they are good, 2 if not\n\n");
  fprintf(f, "Settings (environment variables):\n");
  for (const struct svc_config_var *v = table; v && v->name; v++) {
    int a = (int)strlen(v->name), b = (int)strlen(default_text(v));
    int k = (int)strlen(kind_text(v, kb, sizeof kb));
    wn = a > wn ? a : wn;
    wd = b > wd ? b : wd;
    wk = k > wk ? k : wk;
  }
  fprintf(f, "  %-*s  %-*s  %-*s  %s\n", wn, "variable", wd, "default", wk, "kind", "meaning");
  for (const struct svc_config_var *v = table; v && v->name; v++) {
    fprintf(f, "  %-*s  %-*s  %-*s  %s\n", wn, v->name, wd, default_text(v), wk,
            kind_text(v, kb, sizeof kb), v->help ? v->help : "");
  }
  fflush(f);
}

/* Loads and validates one variable, printing an error to stderr if invalid. */
static int load_var(struct svc_config_var *v, const char *prog) {
  const char *env = getenv(v->name);
  char err[200];

  v->value = env ? env : v->def;
  v->ival = 0;
  if (svc_config_validate(v, v->value, &v->ival, err, sizeof err) == 0) return 0;
  if (!v->value || v->secret) fprintf(stderr, "%s: %s: %s\n", prog, v->name, err);
  else fprintf(stderr, "%s: %s: %s (got '%s')\n", prog, v->name, err, v->value);
  return -1;
}

/* Whether a variable counts as on for another's needs: set, not empty and not
 * a false boolean. */
static int is_on(const struct svc_config_var *table, const char *name) {
  const struct svc_config_var *v = svc_config_get(table, name);
  const char *s = v ? v->value : NULL;

  if (!s || !*s) return 0;
  return strcmp(s, "0") && strcmp(s, "false") && strcmp(s, "no") && strcmp(s, "off");
}

/* A variable left empty although the variables it needs are on; 0 or -1 (printed). */
static int check_needs(const struct svc_config_var *table, const struct svc_config_var *v,
                       const char *prog) {
  if (!v->needs[0] || (v->value && *v->value)) return 0;
  for (int i = 0; i < 2 && v->needs[i]; i++)
    if (!is_on(table, v->needs[i])) return 0;
  fprintf(stderr, "%s: %s: required when %s%s%s is on\n", prog, v->name, v->needs[0],
          v->needs[1] ? " and " : "", v->needs[1] ? v->needs[1] : "");
  return -1;
}

/* Edit distance of two short names (for "did you mean"). */
static size_t distance(const char *a, const char *b) {
  size_t la = strlen(a), lb = strlen(b), row[128];

  if (la >= 127 || lb >= 127) return 1000;
  for (size_t j = 0; j <= lb; j++) row[j] = j;
  for (size_t i = 1; i <= la; i++) {
    size_t diag = row[0];
    row[0] = i;
    for (size_t j = 1; j <= lb; j++) {
      size_t up = row[j], best = diag + (a[i - 1] != b[j - 1]);
      if (up + 1 < best) best = up + 1;
      if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
      diag = up;
      row[j] = best;
    }
  }
  return row[lb];
}

/* Variables of Whistle's tools and harness, not of any daemon: never warned about. */
static int tooling_var(const char *name) {
  static const char *const prefixes[] = {"WHISTLE_PGDEV_", "WHISTLE_RUN_", "WHISTLE_ROOT",
                                         "WHISTLE_PG_BINDIR"};
  size_t n = strlen(name);

  for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++)
    if (strncmp(name, prefixes[i], strlen(prefixes[i])) == 0) return 1;
  return n > 4 && strcmp(name + n - 4, "_BIN") == 0; /* a test's choice of binary */
}

/* Warns about WHISTLE_* variables of the environment that the table lacks. */
static void warn_unknown(const struct svc_config_var *table, const char *prog) {
  for (char **e = environ; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    char name[128];
    const struct svc_config_var *best = NULL;
    size_t bd = 1000;

    if (strncmp(*e, "WHISTLE_", 8) != 0 || !eq || (size_t)(eq - *e) >= sizeof name) continue;
    snprintf(name, sizeof name, "%.*s", (int)(eq - *e), *e);
    if (svc_config_get(table, name) || tooling_var(name)) continue;
    for (const struct svc_config_var *v = table; v && v->name; v++) {
      size_t d = distance(name, v->name);
      if (d < bd) bd = d, best = v;
    }
    if (best && bd <= 3)
      fprintf(stderr, "%s: warning: %s is not a setting of %s (did you mean %s?)\n", prog, name,
              prog, best->name);
    else
      fprintf(stderr, "%s: warning: %s is not a setting of %s (ignored)\n", prog, name, prog);
  }
}

/* Prints every effective value for --check-config, secrets masked. */
static void print_values(const struct svc_config_var *table, FILE *f) {
  for (const struct svc_config_var *v = table; v->name; v++) {
    const char *shown = !v->value ? "(unset)" : v->secret ? "****" : v->value;
    fprintf(f, "%s=%s%s\n", v->name, shown, (v->value && !getenv(v->name)) ? "  # default" : "");
  }
  fflush(f);
}

/* Reads the command line: *help and *check are set; -1 for anything unknown. */
static int parse_args(int argc, char **argv, const char *prog, int *help, int *check) {
  *help = *check = 0;
  for (int i = 1; i < argc && argv; i++) {
    if (argv[i] && strcmp(argv[i], "--version") == 0) {
      printf("%s %s\n", prog, svc_version());
      fflush(stdout);
      *help = 2;
      return 0;
    }
  }
  for (int i = 1; i < argc && argv; i++) {
    if (!argv[i]) continue;
    if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      *help = 1;
    } else if (strcmp(argv[i], "--check-config") == 0) {
      *check = 1;
    } else {
      fprintf(stderr, "%s: unknown argument '%s' (try --help)\n", prog, argv[i]);
      return -1;
    }
  }
  return 0;
}

int svc_config_load(struct svc_config_var *table, int argc, char **argv, const char *prog,
                    const char *summary) {
  int help, check, bad = 0;

  if (!prog && argv && argc > 0 && argv[0]) {
    const char *slash = strrchr(argv[0], '/');
    prog = slash ? slash + 1 : argv[0];
  }
  if (!prog || !*prog) prog = "whistle";
  if (parse_args(argc, argv, prog, &help, &check) != 0) return -1;
  if (help) {
    if (help == 1) svc_config_usage(table, stdout, prog, summary);
    return 1;
  }
  for (struct svc_config_var *v = table; v && v->name; v++) bad |= load_var(v, prog) != 0;
  for (struct svc_config_var *v = table; v && v->name; v++) bad |= check_needs(table, v, prog) != 0;
  warn_unknown(table, prog);
  fflush(stderr);
  if (check && table) print_values(table, stdout);
  if (bad) return -1;
  if (check) printf("%s: configuration ok\n", prog);
  fflush(stdout);
  return check ? 1 : 0;
}

const char *svc_version(void) {
  return WHISTLE_VERSION;
}

const struct svc_config_var *svc_config_get(const struct svc_config_var *table, const char *name) {
  if (!name) return NULL;
  for (const struct svc_config_var *v = table; v && v->name; v++) {
    if (strcmp(v->name, name) == 0) return v;
  }
  return NULL;
}

const char *svc_config_str(const struct svc_config_var *table, const char *name) {
  const struct svc_config_var *v = svc_config_get(table, name);
  return v ? v->value : NULL;
}

int64_t svc_config_int(const struct svc_config_var *table, const char *name) {
  const struct svc_config_var *v = svc_config_get(table, name);
  return v ? v->ival : 0;
}
