/* All SQL of whistle-intake: looking tickets up, finding repeat candidates,
 * inserting tickets with their caller apart, triage, exemption, callbacks,
 * the retention purge and the start-up clean-up of typed numbers (R-I6a).
 * Results are copied into the caller's plain structs; no PGresult leaves
 * this file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "intake.h"
#include "svc_log.h"
#include "svc_mask.h"
#include "svc_pg.h"
#include "svc_stream.h"

struct intake_store {
  struct svc_pg_stmt *lookup, *lookup_many, *candidates_many, *ids, *insert_many;
  struct svc_pg_stmt *feedback, *triage, *exempt, *purge, *triage_list;
};
/* Ops: what waits in manual triage (the address as stored: masked, R-I6a). */
static const char TRIAGE_LIST_SQL[] =
  "SELECT ticket_no, received_us, coalesce(triage_reason, ''), category, compound, address"
  " FROM tickets WHERE disposition = 'TRIAGE' ORDER BY ticket_no COLLATE \"C\"";

static const char LOOKUP_SQL[] =
  "SELECT id, fingerprint, category, compound, disposition, request_type,"
  " coalesce(exempt_reason, ''), street, district FROM tickets WHERE ticket_no = $1";
/* The bulk statements take one array per column (binary, unnest) and return
 * the ordinal k of the input element each row answers, so results go back to
 * the requests without a search. */
static const char LOOKUP_MANY_SQL[] =
  "SELECT q.k, t.id, t.fingerprint, t.category, t.compound, t.disposition, t.request_type,"
  " coalesce(t.exempt_reason, ''), t.street, t.district"
  " FROM unnest($1::text[]) WITH ORDINALITY AS q (ticket_no, k)"
  " JOIN tickets t ON t.ticket_no = q.ticket_no";
static const char CANDIDATES_MANY_SQL[] =
  "SELECT q.k, c.* FROM unnest($1::text[], $2::text[], $3::text[], $4::int8[], $5::int8[])"
  "   WITH ORDINALITY AS q (pseudonym, compound, category, from_us, to_us, k)"
  " CROSS JOIN LATERAL (SELECT t.ticket_no, t.received_us, t.request_type, t.disposition,"
  /* R-I5: closed as of the new ticket's received time (to_us), in event
   * time: a closure intake heard of but stamped after it does not count. */
  "   t.repeat_of IS NOT NULL, t.closed_us IS NOT NULL AND t.closed_us <= q.to_us FROM tickets t"
  /* t.pseudonym <> '' restates the predicate of the partial index
   * tickets_repeats, so that the generic plan of this prepared statement can
   * use that index instead of scanning the whole table per ticket. */
  "   WHERE t.pseudonym = q.pseudonym AND t.pseudonym <> '' AND t.compound = q.compound"
  "     AND t.category = q.category AND t.received_us >= q.from_us"
  "     AND t.received_us <= q.to_us"
  "   ORDER BY t.received_us DESC LIMIT 50) c";
/* Ids are taken from the sequence in stage 1, so that stage 2 inserts and
 * appends the events in one round trip and the insert returns nothing. A
 * ticket number inserted meanwhile by another writer fails the batch (the
 * unique index), which is retried and then finds it (DUPLICATE). */
static const char IDS_SQL[] =
  "SELECT nextval('tickets_id_seq') FROM generate_series(1, $1)";
static const char INSERT_MANY_SQL[] =
  "WITH t AS (INSERT INTO tickets (id, ticket_no, fingerprint, received_us, request_type,"
  "   hotline_category, category, category_source, compound, street, district, address,"
  "   content, urgency, pseudonym, masked_phone, disposition, repeat_of, triage_reason)"
  "  SELECT id, ticket_no, fingerprint, received_us, request_type, hotline_category, category,"
  "   category_source, compound, street, district, address, content, urgency::int, pseudonym,"
  "   masked_phone, disposition, nullif(repeat_of, ''), nullif(triage_reason, '')"
  "  FROM unnest($1::int8[], $2::text[], $3::text[], $4::int8[], $5::text[], $6::text[],"
  "   $7::text[], $8::text[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[],"
  "   $14::int8[], $15::text[], $16::text[], $17::text[], $18::text[], $19::text[])"
  "   AS i (id, ticket_no, fingerprint, received_us, request_type, hotline_category,"
  "   category, category_source, compound, street, district, address, content, urgency,"
  "   pseudonym, masked_phone, disposition, repeat_of, triage_reason))"
  " INSERT INTO callers (ticket_id, phone, name, content_original, address_original)"
  "  SELECT id, nullif(phone, ''), nullif(name, ''), nullif(content, ''), nullif(address, '')"
  "  FROM unnest($1::int8[], $20::text[], $21::text[], $22::text[], $23::text[])"
  "   AS c (id, phone, name, content, address)";
#define INSERT_COLUMNS 23 /* the parameters of INSERT_MANY_SQL */
static const char FEEDBACK_SQL[] =
  "WITH t AS (SELECT 1 FROM tickets WHERE ticket_no = $1),"
  " ins AS (INSERT INTO feedback (ticket_no, at_us, satisfaction)"
  "  SELECT $1, $2, $3 FROM t ON CONFLICT DO NOTHING RETURNING 1)"
  " SELECT (SELECT count(*) FROM t), (SELECT count(*) FROM ins)";
static const char TRIAGE_SQL[] =
  "UPDATE tickets SET compound = $2, street = $3, district = $4, category = $5,"
  " category_source = 'operator', disposition = $6, triaged_us = $7, triaged_by = $8"
  " WHERE ticket_no = $1 AND disposition = 'TRIAGE' RETURNING id";
static const char EXEMPT_SQL[] =
  "UPDATE tickets SET exempt_reason = $2, exempt_us = $3, exempt_by = $4"
  " WHERE ticket_no = $1 AND exempt_reason IS NULL RETURNING id";
/* R-I6, R-I6a: the original content and address go with phone and name. */
/* At most $3 callers per statement, so that a large backlog is erased in
 * short transactions (each well inside the batch timeout). */
static const char PURGE_SQL[] =
  "UPDATE callers SET phone = NULL, name = NULL, content_original = NULL,"
  " address_original = NULL, erased_us = $1"
  " WHERE ticket_id IN (SELECT c.ticket_id FROM callers c JOIN tickets t ON t.id = c.ticket_id"
  "   WHERE c.erased_us IS NULL"
  "     AND ((t.closed_us IS NOT NULL AND t.closed_us < $2)"
  "       OR (t.disposition = 'RECORDED' AND t.received_us < $2))"
  "   LIMIT $3)";

struct intake_store *intake_store_new(struct svc_pg *pg)
{
  struct intake_store *s = calloc(1, sizeof *s);
  if (!s) return NULL;
  s->lookup = svc_pg_prepare(pg, LOOKUP_SQL, 1, NULL);
  s->lookup_many = svc_pg_prepare(pg, LOOKUP_MANY_SQL, 1, NULL);
  s->candidates_many = svc_pg_prepare(pg, CANDIDATES_MANY_SQL, 5, NULL);
  s->ids = svc_pg_prepare(pg, IDS_SQL, 1, NULL);
  s->insert_many = svc_pg_prepare(pg, INSERT_MANY_SQL, INSERT_COLUMNS, NULL);
  s->feedback = svc_pg_prepare(pg, FEEDBACK_SQL, 3, NULL);
  s->triage = svc_pg_prepare(pg, TRIAGE_SQL, 8, NULL);
  s->exempt = svc_pg_prepare(pg, EXEMPT_SQL, 4, NULL);
  s->purge = svc_pg_prepare(pg, PURGE_SQL, 3, NULL);
  s->triage_list = svc_pg_prepare(pg, TRIAGE_LIST_SQL, 0, NULL);
  if (!s->triage_list || !s->lookup || !s->lookup_many || !s->candidates_many || !s->ids || !s->insert_many ||
      !s->feedback || !s->triage || !s->exempt || !s->purge) {
    free(s);
    return NULL;
  }
  return s;
}

void intake_store_destroy(struct intake_store **s)
{
  free(*s);
  *s = NULL;
}

static void copy(char *dst, size_t n, const PGresult *r, int row, int col)
{
  snprintf(dst, n, "%s", PQgetvalue(r, row, col));
}

/* A lookup row from column c on: id, fingerprint, category, compound,
 * disposition, request_type, exempt reason, street, district. */
static void existing_from(struct intake_existing *e, const PGresult *r, int row, int c)
{
  e->found = 1;
  e->id = (uint64_t)strtoull(PQgetvalue(r, row, c), NULL, 10);
  copy(e->fingerprint, sizeof e->fingerprint, r, row, c + 1);
  copy(e->category, sizeof e->category, r, row, c + 2);
  copy(e->compound, sizeof e->compound, r, row, c + 3);
  copy(e->disposition, sizeof e->disposition, r, row, c + 4);
  copy(e->request_type, sizeof e->request_type, r, row, c + 5);
  e->exempt = PQgetvalue(r, row, c + 6)[0] != 0;
  copy(e->street, sizeof e->street, r, row, c + 7);
  copy(e->district, sizeof e->district, r, row, c + 8);
}

static void lookup_result(void *arg, const PGresult *r)
{
  if (PQntuples(r) == 1) existing_from(arg, r, 0, 0);
}

int intake_store_lookup(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                        struct intake_existing *out)
{
  memset(out, 0, sizeof *out);
  const char *v[1] = { ticket_no };
  return svc_pg_batch_add(b, s->lookup, 1, v, NULL, NULL, 0, lookup_result, out);
}

/* ---- bulk statements ---------------------------------------------------- */

/* Where the rows of a bulk statement go: v[k - 1] receives the row answering
 * input element k. Freed when the batch ends. */
struct outs {
  size_t n;
  void *v[];
};

static struct outs *outs_new(size_t n)
{
  struct outs *o = malloc(sizeof *o + n * sizeof o->v[0]);
  if (o) o->n = n;
  return o;
}

static void outs_free(struct svc_pg_batch *b, enum svc_pg_outcome oc, const char *err, void *arg)
{
  (void)b;
  (void)oc;
  (void)err;
  free(arg);
}

/* The destination of result row `row`, whose column 0 is the ordinal k. */
static void *outs_at(const struct outs *o, const PGresult *r, int row)
{
  long long k = strtoll(PQgetvalue(r, row, 0), NULL, 10);
  return k >= 1 && (size_t)k <= o->n ? o->v[k - 1] : NULL;
}

#define BULK_MAX_PARAMS 23

/* Adds st with the arrays a[0..n) as binary parameters (finishing and then
 * freeing them); its rows go to cb(arg), cb may be NULL. 0 or -1. */
static int add_arrays(struct svc_pg_batch *b, struct svc_pg_stmt *st, struct svc_pgarr *a, int n,
                      svc_pg_result_cb cb, void *arg)
{
  const char *v[BULK_MAX_PARAMS] = { 0 };
  int len[BULK_MAX_PARAMS] = { 0 }, fmt[BULK_MAX_PARAMS] = { 0 }, rc = 0;
  if (n > BULK_MAX_PARAMS) rc = -1;
  for (int i = 0; rc == 0 && i < n; i++) {
    rc |= svc_pgarr_finish(&a[i]);
    v[i] = a[i].buf;
    len[i] = (int)a[i].len;
    fmt[i] = 1;
  }
  if (rc == 0) rc = svc_pg_batch_add(b, st, n, v, len, fmt, 0, cb, arg);
  for (int i = 0; i < n; i++) svc_pgarr_free(&a[i]);
  return rc;
}

/* add_arrays with the rows going to o, which is freed when the batch ends
 * (at once on failure; a NULL o is a failure). 0 or -1. */
static int add_bulk(struct svc_pg_batch *b, struct svc_pg_stmt *st, struct svc_pgarr *a, int n,
                    svc_pg_result_cb cb, struct outs *o)
{
  if (!o) {
    for (int i = 0; i < n; i++) svc_pgarr_free(&a[i]);
    return -1;
  }
  if (svc_pg_batch_hook(b, outs_free, o)) { /* the hook frees o from here on */
    free(o);
    for (int i = 0; i < n; i++) svc_pgarr_free(&a[i]);
    return -1;
  }
  return add_arrays(b, st, a, n, cb, o);
}

static void text(struct svc_pgarr *a, const char *s)
{
  s = s ? s : "";
  svc_pgarr_add(a, s, strlen(s));
}

static void lookup_many_result(void *arg, const PGresult *r)
{
  for (int i = 0; i < PQntuples(r); i++) {
    struct intake_existing *e = outs_at(arg, r, i);
    if (e) existing_from(e, r, i, 1);
  }
}

int intake_store_lookup_many(struct intake_store *s, struct svc_pg_batch *b,
                             const struct intake_lookup *q, size_t n)
{
  if (n == 0) return 0;
  struct outs *o = outs_new(n);
  struct svc_pgarr a;
  svc_pgarr_init(&a, SVC_OID_TEXT);
  for (size_t i = 0; i < n; i++) {
    memset(q[i].out, 0, sizeof *q[i].out);
    if (o) o->v[i] = q[i].out;
    text(&a, q[i].ticket_no);
  }
  return add_bulk(b, s->lookup_many, &a, 1, lookup_many_result, o);
}

static void candidates_many_result(void *arg, const PGresult *r)
{
  for (int i = 0; i < PQntuples(r); i++) {
    struct intake_candidates *c = outs_at(arg, r, i);
    if (!c || c->n >= INTAKE_MAX_CANDIDATES) continue;
    struct intake_candidate *x = &c->v[c->n++];
    copy(x->ticket_no, sizeof x->ticket_no, r, i, 1);
    x->received_us = strtoll(PQgetvalue(r, i, 2), NULL, 10);
    copy(x->request_type, sizeof x->request_type, r, i, 3);
    copy(x->disposition, sizeof x->disposition, r, i, 4);
    x->is_repeat = PQgetvalue(r, i, 5)[0] == 't';
    x->closed = PQgetvalue(r, i, 6)[0] == 't';
  }
}

int intake_store_candidates_many(struct intake_store *s, struct svc_pg_batch *b,
                                 const struct intake_repeat_query *q, size_t n)
{
  if (n == 0) return 0;
  struct outs *o = outs_new(n);
  struct svc_pgarr a[5];
  for (int j = 0; j < 5; j++) svc_pgarr_init(&a[j], j < 3 ? SVC_OID_TEXT : SVC_OID_INT8);
  for (size_t i = 0; i < n; i++) {
    q[i].out->n = 0;
    if (o) o->v[i] = q[i].out;
    text(&a[0], q[i].pseudonym);
    text(&a[1], q[i].compound);
    text(&a[2], q[i].category);
    svc_pgarr_add_i64(&a[3], q[i].from_us);
    svc_pgarr_add_i64(&a[4], q[i].to_us);
  }
  return add_bulk(b, s->candidates_many, a, 5, candidates_many_result, o);
}

struct ids_out {
  size_t n;
  uint64_t *v;
};

static void ids_result(void *arg, const PGresult *r)
{
  struct ids_out *o = arg;
  for (int i = 0; i < PQntuples(r) && (size_t)i < o->n; i++)
    o->v[i] = (uint64_t)strtoull(PQgetvalue(r, i, 0), NULL, 10);
}

int intake_store_ids(struct intake_store *s, struct svc_pg_batch *b, size_t n, uint64_t *out)
{
  if (n == 0) return 0;
  struct ids_out *o = malloc(sizeof *o);
  if (!o) return -1;
  *o = (struct ids_out){ n, out };
  memset(out, 0, n * sizeof *out);
  char nb[24];
  snprintf(nb, sizeof nb, "%zu", n);
  const char *v[1] = { nb };
  if (svc_pg_batch_hook(b, outs_free, o)) { /* the hook frees o from here on */
    free(o);
    return -1;
  }
  return svc_pg_batch_add(b, s->ids, 1, v, NULL, NULL, 0, ids_result, o);
}

/* The columns of INSERT_MANY_SQL, in order, for one row (a NULL text goes
 * as '', which the statement turns into NULL where a column may be NULL). */
static void ticket_columns(struct svc_pgarr *a, const struct intake_ticket_row *t)
{
  const char *v[INSERT_COLUMNS] = {
    NULL, t->ticket_no, t->fingerprint, NULL, t->request_type, t->hotline_category,
    t->category, t->category_source, t->compound, t->street, t->district, t->address,
    t->content, NULL, t->pseudonym, t->masked_phone, t->disposition, t->repeat_of,
    t->triage_reason, t->caller_phone, t->caller_name, t->content_original,
    t->address_original,
  };
  svc_pgarr_add_i64(&a[0], (int64_t)t->id);
  svc_pgarr_add_i64(&a[3], t->received_us);
  svc_pgarr_add_i64(&a[13], t->urgency);
  for (int j = 0; j < INSERT_COLUMNS; j++)
    if (j != 0 && j != 3 && j != 13) text(&a[j], v[j]);
}

int intake_store_insert_many(struct intake_store *s, struct svc_pg_batch *b,
                             const struct intake_ticket_row *rows, size_t n)
{
  if (n == 0) return 0;
  struct svc_pgarr a[INSERT_COLUMNS];
  for (int j = 0; j < INSERT_COLUMNS; j++)
    svc_pgarr_init(&a[j], j == 0 || j == 3 || j == 13 ? SVC_OID_INT8 : SVC_OID_TEXT);
  for (size_t i = 0; i < n; i++) ticket_columns(a, &rows[i]);
  return add_arrays(b, s->insert_many, a, INSERT_COLUMNS, NULL, NULL);
}

static void id_result(void *arg, const PGresult *r)
{
  uint64_t *id = arg;
  *id = PQntuples(r) == 1 ? (uint64_t)strtoull(PQgetvalue(r, 0, 0), NULL, 10) : 0;
}

static void feedback_result(void *arg, const PGresult *r)
{
  int *state = arg; /* 0 unknown ticket, 1 already recorded, 2 recorded now */
  if (PQntuples(r) != 1) return;
  int known = atoi(PQgetvalue(r, 0, 0)) > 0, fresh = atoi(PQgetvalue(r, 0, 1)) > 0;
  *state = !known ? 0 : (fresh ? 2 : 1);
}

int intake_store_feedback(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                          int64_t at_us, const char *satisfaction, int *state_out)
{
  char at[24];
  snprintf(at, sizeof at, "%lld", (long long)at_us);
  const char *v[3] = { ticket_no, at, satisfaction };
  *state_out = 0;
  return svc_pg_batch_add(b, s->feedback, 3, v, NULL, NULL, 0, feedback_result, state_out);
}

int intake_store_triage(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                        const char *compound, const char *street, const char *district,
                        const char *category, const char *disposition, int64_t at_us,
                        const char *operator_id, uint64_t *id_out)
{
  char at[24];
  snprintf(at, sizeof at, "%lld", (long long)at_us);
  const char *v[8] = { ticket_no, compound, street, district, category, disposition, at,
                       operator_id };
  *id_out = 0;
  return svc_pg_batch_add(b, s->triage, 8, v, NULL, NULL, 0, id_result, id_out);
}

int intake_store_exempt(struct intake_store *s, struct svc_pg_batch *b, const char *ticket_no,
                        const char *reason, int64_t at_us, const char *operator_id,
                        uint64_t *id_out)
{
  char at[24];
  snprintf(at, sizeof at, "%lld", (long long)at_us);
  const char *v[4] = { ticket_no, reason, at, operator_id };
  *id_out = 0;
  return svc_pg_batch_add(b, s->exempt, 4, v, NULL, NULL, 0, id_result, id_out);
}

static void count_result(void *arg, const PGresult *r)
{
  uint64_t *n = arg;
  *n = (uint64_t)strtoull(PQcmdTuples((PGresult *)r), NULL, 10);
}

int intake_store_purge(struct intake_store *s, struct svc_pg_batch *b, int64_t now_us,
                       int64_t cutoff_us, uint64_t *erased_out)
{
  char now[24], cut[24], lim[24];
  snprintf(now, sizeof now, "%lld", (long long)now_us);
  snprintf(cut, sizeof cut, "%lld", (long long)cutoff_us);
  snprintf(lim, sizeof lim, "%d", INTAKE_PURGE_CHUNK);
  const char *v[3] = { now, cut, lim };
  *erased_out = 0;
  return svc_pg_batch_add(b, s->purge, 3, v, NULL, NULL, 0, count_result, erased_out);
}

int intake_store_load_clock(const char *conninfo, int64_t *watermark_us, int64_t *latest_us)
{
  int64_t v[2];
  int rc = svc_pg_fetch_row(conninfo,
                            "SELECT coalesce(max(event_us) FILTER (WHERE kind = 'WATERMARK'), 0),"
                            " coalesce(max(event_us), 0) FROM stream_outbox",
                            v, 2, "the last event times");
  *watermark_us = v[0];
  *latest_us = v[1];
  return rc;
}

/* ---- R-I6a one-off: typed numbers stored before they were masked ---------- */

#define SCRUB_PAGE 500
#define SCRUB_LOG_EVERY 20 /* pages between progress lines */

/* The tickets whose content or address may hold an unmasked number, by id. */
static const char SCRUB_TICKETS_SQL[] =
  "SELECT id, content, address FROM tickets WHERE id > $1 AND (content ~ $2 OR address ~ $2)"
  " ORDER BY id LIMIT $3";
/* The masked text goes to tickets, the originals to callers (where masking
 * changed them, and unless the retention purge erased the caller already). */
static const char SCRUB_UPDATE_SQL[] =
  "WITH u AS (SELECT * FROM unnest($1::int8[], $2::text[], $3::text[], $4::text[], $5::text[])"
  "   AS u (id, content, address, content_original, address_original)),"
  " t AS (UPDATE tickets t SET content = u.content, address = u.address FROM u"
  "   WHERE t.id = u.id)"
  " UPDATE callers c"
  " SET content_original = coalesce(c.content_original, nullif(u.content_original, '')),"
  "  address_original = coalesce(c.address_original, nullif(u.address_original, ''))"
  " FROM u WHERE c.ticket_id = u.id AND c.erased_us IS NULL";

/* Adds row i of r to the update arrays if masking changes it: 1 added, 0
 * not, -1 out of memory. */
static int scrub_row(struct svc_pgarr a[5], const PGresult *r, int i)
{
  const char *content = PQgetvalue(r, i, 1), *address = PQgetvalue(r, i, 2);
  struct intake_public_text p;
  if (intake_mask_ticket(content, address, &p)) return -1;
  int changed = p.content_masked || p.address_masked;
  if (changed) {
    svc_pgarr_add_i64(&a[0], strtoll(PQgetvalue(r, i, 0), NULL, 10));
    text(&a[1], p.content);
    text(&a[2], p.address);
    text(&a[3], p.content_masked ? content : "");
    text(&a[4], p.address_masked ? address : "");
  }
  intake_public_text_free(&p);
  return changed;
}

/* Masks the page of tickets after *after; *rows: rows read. 0 or -1. */
static int scrub_page(PGconn *c, int64_t *after, int *rows, int64_t *changed)
{
  char a[24], l[16];
  snprintf(a, sizeof a, "%lld", (long long)*after);
  snprintf(l, sizeof l, "%d", SCRUB_PAGE);
  const char *v[3] = { a, SVC_MASK_CANDIDATE_RE, l };
  PGresult *r = svc_pg_exec(c, SCRUB_TICKETS_SQL, 3, v, NULL, NULL, 0, "tickets page");
  if (!r) return -1;
  struct svc_pgarr arr[5];
  for (int j = 0; j < 5; j++) svc_pgarr_init(&arr[j], j == 0 ? SVC_OID_INT8 : SVC_OID_TEXT);
  int n = PQntuples(r), k = 0, rc = 0;
  for (int i = 0; i < n && rc == 0; i++) {
    int x = scrub_row(arr, r, i);
    if (x < 0) rc = -1;
    k += x > 0;
    *after = strtoll(PQgetvalue(r, i, 0), NULL, 10);
  }
  PQclear(r);
  if (rc == 0 && k > 0) {
    int fail = 0;
    for (int j = 0; j < 5; j++) fail |= svc_pgarr_finish(&arr[j]);
    const char *p[5];
    int len[5], fmt[5];
    for (int j = 0; j < 5; j++) {
      p[j] = arr[j].buf;
      len[j] = (int)arr[j].len;
      fmt[j] = 1;
    }
    PGresult *u = fail ? NULL : svc_pg_exec(c, SCRUB_UPDATE_SQL, 5, p, len, fmt, 0, "tickets");
    rc = u ? 0 : -1;
    PQclear(u);
  }
  if (rc == 0) *changed += k;
  for (int j = 0; j < 5; j++) svc_pgarr_free(&arr[j]);
  *rows = n;
  return rc;
}

/* The tickets part of the one-off. */
static int scrub_tickets(PGconn *c, int64_t *changed)
{
  int64_t after = 0, mine = 0;
  int rows = 0, pages = 0;
  do {
    if (scrub_page(c, &after, &rows, &mine)) return -1;
    if (++pages % SCRUB_LOG_EVERY == 0)
      svc_info("masking stored tickets", " masked=%lld id=%lld", (long long)mine, (long long)after);
  } while (rows == SCRUB_PAGE);
  svc_info("stored tickets masked", " masked=%lld", (long long)mine);
  *changed += mine;
  return 0;
}

struct scrub { intake_payload_fn accepted; };

/* The one-off: the outbox's ticket.accepted payloads, then the tickets. */
static int scrub_run(PGconn *c, void *arg, int64_t *changed)
{
  const struct scrub *sc = arg;
  if (svc_stream_rewrite(c, "ticket.accepted", sc->accepted, NULL, changed)) return -1;
  return scrub_tickets(c, changed);
}

int intake_store_scrub(const char *conninfo, intake_payload_fn accepted)
{
  struct scrub sc = { accepted };
  return svc_pg_one_off(conninfo, INTAKE_SCRUB_NAME, scrub_run, &sc);
}

/* ---- closure (R-I5, R-I6): referral's ticket.closed events ---------------- */

static const char CLOSED_SQL[] =
  "UPDATE tickets t SET closed_us = u.at FROM unnest($1::text[], $2::int8[]) AS u(no, at)"
  " WHERE t.ticket_no = u.no AND t.closed_us IS NULL";

struct svc_pg_stmt *intake_store_prepare_closed(struct svc_pg *pg)
{
  return svc_pg_prepare(pg, CLOSED_SQL, 2, NULL);
}

int intake_store_closed(struct svc_pg_stmt *st, struct svc_pg_batch *b,
                        const char *const *ticket_nos, const int64_t *at_us, size_t n)
{
  struct svc_pgarr a[2];
  svc_pgarr_init(&a[0], SVC_OID_TEXT);
  svc_pgarr_init(&a[1], SVC_OID_INT8);
  for (size_t i = 0; i < n; i++) {
    svc_pgarr_add(&a[0], ticket_nos[i], strlen(ticket_nos[i]));
    svc_pgarr_add_i64(&a[1], at_us[i]);
  }
  int rc = svc_pgarr_finish(&a[0]) | svc_pgarr_finish(&a[1]);
  if (!rc) {
    const char *v[2] = { a[0].buf, a[1].buf };
    int len[2] = { (int)a[0].len, (int)a[1].len }, fmt[2] = { 1, 1 };
    rc = svc_pg_batch_add(b, st, 2, v, len, fmt, 0, NULL, NULL);
  }
  svc_pgarr_free(&a[0]);
  svc_pgarr_free(&a[1]);
  return rc;
}

int intake_store_triage_list(struct intake_store *s, struct svc_pg_batch *b, intake_row_cb cb,
                             void *arg)
{
  return svc_pg_batch_add_rows(b, s->triage_list, 0, NULL, NULL, NULL, cb, arg);
}
