/* Configuration: every daemon reads its settings once, from WHISTLE_* environment
 * variables, through one table of (name, default, kind, limits, help). The same
 * table prints --help and backs --check-config. Secrets are never printed. */
#ifndef SVC_CONFIG_H
#define SVC_CONFIG_H

#include <stdint.h>
#include <stdio.h>

enum svc_config_kind {
  SVC_CFG_STRING,   /* any non-empty string (or empty if the default is empty) */
  SVC_CFG_INT,      /* decimal integer within [min, max] */
  SVC_CFG_BOOL,     /* 0/1, true/false, yes/no, on/off */
  SVC_CFG_ENUM,     /* one of the '|'-separated words in choices */
  SVC_CFG_ENDPOINT, /* a ZeroMQ endpoint: tcp://host:port, ipc://path, inproc://name */
  SVC_CFG_PATH,     /* a file-system path (existence is checked by the user) */
  SVC_CFG_FILE,     /* a readable regular file (or empty if the default is empty) */
  SVC_CFG_DIR,      /* a readable directory (or empty if the default is empty) */
  SVC_CFG_HOSTPORT, /* host:port with an IPv4 address, "*" or nothing as host (or empty) */
};

struct svc_config_var {
  const char *name;        /* e.g. "WHISTLE_LOG_LEVEL" */
  const char *def;         /* default as text; NULL means required */
  enum svc_config_kind kind;
  int64_t min, max;        /* SVC_CFG_INT limits */
  const char *choices;     /* SVC_CFG_ENUM: "debug|info|warn|error" */
  int secret;              /* never printed */
  const char *help;        /* one sentence */
  /* Filled by svc_config_load: */
  const char *value;       /* the effective text (env or default); owned by env/table */
  int64_t ival;            /* parsed INT/BOOL value */
  /* Optional: */
  const char *needs[2];    /* required (not empty) when every variable named here is on
                            * (set, not empty and not a false boolean) */
  int (*check)(const char *value, char *err, size_t errlen); /* what start-up would refuse
                            * in a set value (a key file's content, a connection string);
                            * 0, or -1 with a reason in err that quotes no secret */
};

/* Reads argv and the environment for every variable of the NULL-name-terminated
 * table. Handles --help (prints usage with every variable, default and help to
 * stdout), --version and --check-config (validates, prints the effective
 * values, secrets masked). Validation is the same with or without
 * --check-config: each value's kind, files and directories readable, each
 * variable's check, and variables required by others (needs). A WHISTLE_*
 * variable of the environment that is not in the table is warned about on
 * stderr (with the closest name), never refused. Returns 0 to run, 1 when the
 * caller should exit 0 (help, version or a good check), -1 on an error
 * (already printed to stderr with the variable's name and the reason; the
 * caller exits 2). prog and summary head the help text. */
int svc_config_load(struct svc_config_var *table, int argc, char **argv,
                    const char *prog, const char *summary);

/* The build's version (git describe at build time, or "unknown"). */
const char *svc_version(void);

/* Looks a variable up by name after svc_config_load; NULL if absent. */
const struct svc_config_var *svc_config_get(const struct svc_config_var *table, const char *name);
const char *svc_config_str(const struct svc_config_var *table, const char *name);
int64_t svc_config_int(const struct svc_config_var *table, const char *name);

/* Validates one value of a kind; on error writes a reason to err and returns -1. */
int svc_config_validate(const struct svc_config_var *v, const char *value, int64_t *ival,
                        char *err, size_t errlen);

/* Prints the help text for the table to f. */
void svc_config_usage(const struct svc_config_var *table, FILE *f, const char *prog, const char *summary);

#endif
