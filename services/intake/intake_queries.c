/* The ops query of the hotline interface (proto/hotline.proto Query
 * TRIAGE): each ticket waiting in manual triage as one JSON line in the
 * export writing (svc_lines): why intake could not complete it, what it
 * needs (an operator's compound, category, or both: R-I3, R-I4), what it
 * has (the category OTHER while unclassified, the compound null while
 * unmatched) and its address as stored, masked (R-I6a). */
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "intake.h"
#include "svc_lines.h"

void intake_triage_row(void *arg, int n, const char *const *v)
{
  struct svc_lines *l = arg;
  char at[40];
  if (n < 6 || !v[0] || !v[1] || !v[3] || !v[4] || !v[5]) return;
  if (svc_time_format(strtoll(v[1], NULL, 10), SVC_DEFAULT_UTC_OFFSET, at, sizeof at) < 0) {
    l->oom = 1;
    return;
  }
  int no_category = strcmp(v[3], "OTHER") == 0, no_compound = v[4][0] == 0;
  json_t *needs = json_array();
  if (needs && no_category) json_array_append_new(needs, json_string("category"));
  if (needs && no_compound) json_array_append_new(needs, json_string("compound"));
  svc_lines_add(l, json_pack("{s:s,s:s,s:s,s:o*,s:s,s:o,s:s}", "ticket_no", v[0], "received_at", at,
                             "reason", v[2] ? v[2] : "", "needs", needs, "category", v[3],
                             "compound", no_compound ? json_null() : json_string(v[4]), "address",
                             v[5]));
}
