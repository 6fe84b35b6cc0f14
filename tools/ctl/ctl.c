/* whistlectl: the operators' tool for a Whistle deployment. Commands:
 * status, replay, export, trace, triage, summary. This file: the
 * endpoints and keys (environment, deployment defaults, common options) and
 * the command dispatch. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"
#include "whistle_version.h"

static const char *const DEFAULT_CONTROL[D_N] = { "tcp://127.0.0.1:7103", "tcp://127.0.0.1:7203",
                                                  "tcp://127.0.0.1:7303", "tcp://127.0.0.1:7403" };
static const char *const DEFAULT_REQUEST[D_N] = { "tcp://127.0.0.1:7101", "tcp://127.0.0.1:7201",
                                                  "tcp://127.0.0.1:7301", "tcp://127.0.0.1:7401" };
static const char *const ENV_CONTROL[D_N] = { "WHISTLE_INTAKE_CONTROL", "WHISTLE_REFERRAL_CONTROL",
                                              "WHISTLE_RATING_CONTROL", "WHISTLE_ESCALATION_CONTROL" };
static const char *const ENV_REQUEST[D_N] = { "WHISTLE_INTAKE_HOTLINE", "WHISTLE_REFERRAL_UNITS",
                                              "WHISTLE_RATING_REQUESTS", "WHISTLE_ESCALATION_REQUESTS" };
static const char *const ENV_SKEY[D_N] = { "WHISTLE_INTAKE_SERVER_KEY", "WHISTLE_REFERRAL_SERVER_KEY",
                                           "WHISTLE_RATING_SERVER_KEY", "WHISTLE_ESCALATION_SERVER_KEY" };

static const char *env_or(const char *name, const char *dflt)
{
  const char *v = getenv(name);
  return v && v[0] ? v : dflt;
}

void ctl_env_init(struct ctl_env *e)
{
  memset(e, 0, sizeof *e);
  for (int d = 0; d < D_N; d++) {
    e->control[d] = env_or(ENV_CONTROL[d], DEFAULT_CONTROL[d]);
    e->request[d] = env_or(ENV_REQUEST[d], DEFAULT_REQUEST[d]);
    e->server_key[d] = env_or(ENV_SKEY[d], NULL);
  }
  e->client_key = env_or("WHISTLE_CURVE_CLIENT_KEY", NULL);
  e->timeout_us = 5 * INT64_C(1000000);
  e->settle_us = 120 * INT64_C(1000000);
}

static int parse_secs(const char *arg, int64_t *out)
{
  char *end;
  double v = strtod(arg, &end);
  if (end == arg || *end || !(v > 0) || v > 86400) return -1;
  *out = (int64_t)(v * 1e6);
  return 0;
}

int ctl_env_option(struct ctl_env *e, int c, const char *arg)
{
  switch (c) {
  case 1001:
    if (parse_secs(arg, &e->timeout_us)) {
      fprintf(stderr, CTL_PROG ": --timeout takes seconds (> 0), not \"%s\"\n", arg);
      return -1;
    }
    return 0;
  case 1004:
    if (parse_secs(arg, &e->settle_us)) {
      fprintf(stderr, CTL_PROG ": --settle-timeout takes seconds (> 0), not \"%s\"\n", arg);
      return -1;
    }
    return 0;
  case 1002: e->client_key = arg; return 0;
  case 1003: {
    const char *eq = strchr(arg, '=');
    for (int d = 0; eq && d < D_N; d++)
      if ((size_t)(eq - arg) == strlen(ctl_daemon_names[d]) &&
          strncmp(arg, ctl_daemon_names[d], (size_t)(eq - arg)) == 0) {
        e->server_key[d] = eq + 1;
        return 0;
      }
    fprintf(stderr, CTL_PROG ": --server-key takes DAEMON=FILE (DAEMON intake, referral, rating or "
                    "escalation), not \"%s\"\n", arg);
    return -1;
  }
  default: return 1;
  }
}

void ctl_env_help(FILE *out)
{
  fprintf(out,
    "common options:\n"
    "  --timeout SEC          wait this long for each answer (default 5); a daemon that does\n"
    "                         not answer is named with its endpoint, exit status 1\n"
    "  --settle-timeout SEC   replay: wait this long for the daemons to settle (default 120)\n"
    "  --client-key FILE      this client's CURVE secret key (Z85, whistle-keygen)\n"
    "  --server-key D=FILE    daemon D's CURVE public key (D: intake, referral, rating,\n"
    "                         escalation); with a client key, CURVE on for D\n"
    "environment (deployment defaults in brackets):\n"
    "  WHISTLE_INTAKE_CONTROL [%s]  WHISTLE_REFERRAL_CONTROL [%s]\n"
    "  WHISTLE_RATING_CONTROL [%s]  WHISTLE_ESCALATION_CONTROL [%s]\n"
    "  WHISTLE_INTAKE_HOTLINE [%s]  WHISTLE_REFERRAL_UNITS [%s]\n"
    "  WHISTLE_RATING_REQUESTS [%s] WHISTLE_ESCALATION_REQUESTS [%s]\n"
    "  WHISTLE_CURVE_CLIENT_KEY, WHISTLE_<DAEMON>_SERVER_KEY (e.g. WHISTLE_INTAKE_SERVER_KEY):\n"
    "                         key files as --client-key and --server-key\n",
    DEFAULT_CONTROL[0], DEFAULT_CONTROL[1], DEFAULT_CONTROL[2], DEFAULT_CONTROL[3],
    DEFAULT_REQUEST[0], DEFAULT_REQUEST[1], DEFAULT_REQUEST[2], DEFAULT_REQUEST[3]);
}

static void usage(FILE *out)
{
  fprintf(out,
    "usage: whistlectl COMMAND [options]   (whistlectl COMMAND --help for each)\n"
    "\n"
    "The operators' tool of a Whistle deployment (whistle-intake, whistle-referral,\n"
    "whistle-rating, whistle-escalation).\n"
    "\n"
    "commands:\n"
    "  status                 every daemon: up, version, Postgres, stream head and watermark,\n"
    "                         inputs' positions and lag, server queue; settled or not\n"
    "  replay REGISTRY FEED   replays a scenario feed (docs/formats.md) through the daemons' interfaces, each\n"
    "                         line once everything before it has settled\n"
    "  export WHAT            notices, decisions, tickets, rankings --month M, units --month M,\n"
    "                         credit --half YYYYHn, stars --quarter YYYYQn; or --all DIR\n"
    "  trace TICKET_NO        a ticket, its steps, the decisions and notices behind it\n"
    "  triage                 tickets waiting in manual triage, returned steps waiting for\n"
    "                         re-dispatch\n"
    "  summary                a readable summary of results and where to look next\n"
    "  --version              the version\n"
    "\n"
    "exit status: 0 done, 1 failure (a daemon did not answer, refused, not settled,\n"
    "period not closed yet), 2 bad usage.\n\n");
  ctl_env_help(out);
}

int main(int argc, char **argv)
{
  if (argc < 2) {
    usage(stderr);
    return CTL_USAGE;
  }
  const char *cmd = argv[1];
  if (!strcmp(cmd, "--help") || !strcmp(cmd, "-h") || !strcmp(cmd, "help")) {
    usage(stdout);
    return CTL_OK;
  }
  if (!strcmp(cmd, "--version")) {
    printf("whistlectl %s\n", WHISTLE_VERSION);
    return CTL_OK;
  }
  static const struct { const char *name; int (*fn)(int, char **); } cmds[] = {
    { "status", ctl_status_main }, { "replay", ctl_replay_main }, { "export", ctl_export_main },
    { "trace", ctl_trace_main },   { "triage", ctl_triage_main }, { "summary", ctl_summary_main },
  };
  for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++)
    if (!strcmp(cmd, cmds[i].name)) return cmds[i].fn(argc - 1, argv + 1);
  fprintf(stderr, CTL_PROG ": unknown command \"%s\" (status, replay, export, trace, triage, "
                  "summary; --help)\n", cmd);
  return CTL_USAGE;
}
