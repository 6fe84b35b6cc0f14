/* whistlectl summary: placeholder until the summary view lands. */
#include <stdio.h>
#include "ctl.h"

int ctl_summary_main(int argc, char **argv)
{
  (void)argc;
  (void)argv;
  fprintf(stderr, CTL_PROG ": summary is not available yet\n");
  return CTL_FAIL;
}
