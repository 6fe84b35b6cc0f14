/* Multi-pattern matching for the keyword table (R-I3) and the compound names
 * and aliases (R-I4): an Aho-Corasick automaton over bytes, and the text
 * normalisation applied to both texts and patterns before matching. While
 * patterns are added, trie edges live in a hash; build() turns them into
 * sorted per-node edge arrays (a dense table only at the root). */
#include "svc_registry.h"

#include <stdlib.h>
#include <string.h>

#define NONE UINT32_MAX
#define MAX_NODES (UINT32_MAX - 1)
#define DENSE_MIN 16 /* nodes with this many children get a 256-entry table */

struct pattern { uint32_t id, len, next; }; /* next: another pattern ending at the node */

struct svc_matcher {
  int built;
  uint32_t n_nodes, cap_nodes;
  uint32_t *out;           /* per node: first pattern ending there, or NONE */
  /* While adding: each node's parent and edge byte, and (node, byte) -> child. */
  uint32_t *parent;
  uint8_t *label;
  uint64_t *hkeys;         /* (node << 8 | byte) + 1; 0 = empty slot */
  uint32_t *hvals;
  size_t hcap, hused;
  /* After build: */
  uint32_t *first;         /* n_nodes + 1 offsets into ebyte/echild */
  uint8_t *ebyte;          /* edge bytes, sorted within a node */
  uint32_t *echild;
  uint32_t *dense;         /* per node: its row in dtab, or NONE (sparse) */
  uint32_t *dtab;          /* rows of 256 children (NONE: no edge) */
  uint32_t n_dense;
  uint32_t *fail;          /* failure link */
  uint32_t *dict;          /* nearest node on the failure chain with output */
  uint32_t root[256];      /* the root's transitions (0: stay at the root) */
  struct pattern *pats;
  uint32_t n_pats, cap_pats;
};

/* ---- normalisation ---- */

/* Decodes one UTF-8 sequence at p (n > 0 bytes left); returns its length, or
 * 0 if it is not a valid sequence. */
static size_t decode(const unsigned char *p, size_t n, uint32_t *cp) {
  size_t k;
  uint32_t c;

  if (p[0] < 0x80) {
    *cp = p[0];
    return 1;
  }
  if (p[0] >= 0xc2 && p[0] <= 0xdf) k = 2;
  else if (p[0] >= 0xe0 && p[0] <= 0xef) k = 3;
  else if (p[0] >= 0xf0 && p[0] <= 0xf4) k = 4;
  else return 0;
  c = p[0] & (0x7fu >> k); /* the lead byte's payload bits */
  if (n < k) return 0;
  for (size_t i = 1; i < k; i++) {
    if ((p[i] & 0xc0) != 0x80) return 0;
    c = (c << 6) | (p[i] & 0x3fu);
  }
  if ((k == 3 && c < 0x800) || (k == 4 && (c < 0x10000 || c > 0x10ffff))) return 0;
  if (c >= 0xd800 && c <= 0xdfff) return 0;
  *cp = c;
  return k;
}

/* White space, line breaks and zero-width characters, which matching ignores. */
static int is_blank(uint32_t c) {
  if ((c >= 0x09 && c <= 0x0d) || c == 0x20 || c == 0x85 || c == 0xa0) return 1;
  if (c == 0x1680 || (c >= 0x2000 && c <= 0x200d) || c == 0x2028 || c == 0x2029) return 1;
  return c == 0x202f || c == 0x205f || c == 0x2060 || c == 0x3000 || c == 0xfeff;
}

size_t svc_text_normalize(const char *s, size_t n, char *out) {
  const unsigned char *p = (const unsigned char *)s;
  size_t i = 0, o = 0;

  while (s && i < n) {
    uint32_t c;
    size_t k = decode(p + i, n - i, &c);
    if (k == 0) { /* not UTF-8: copy the byte as it is */
      out[o++] = (char)p[i++];
      continue;
    }
    if (c >= 0xff01 && c <= 0xff5e) c -= 0xfee0; /* full-width ASCII */
    if (c >= 'A' && c <= 'Z') c += 'a' - 'A';
    if (!is_blank(c)) {
      if (c < 0x80) {
        out[o++] = (char)c;
      } else {
        memcpy(out + o, p + i, k);
        o += k;
      }
    }
    i += k;
  }
  out[o] = '\0';
  return o;
}

/* ---- building the trie ---- */

struct svc_matcher *svc_matcher_new(void) {
  struct svc_matcher *m = calloc(1, sizeof *m);

  if (!m) return NULL;
  m->cap_nodes = 64;
  m->out = malloc(m->cap_nodes * sizeof *m->out);
  m->parent = malloc(m->cap_nodes * sizeof *m->parent);
  m->label = malloc(m->cap_nodes);
  if (!m->out || !m->parent || !m->label) {
    svc_matcher_destroy(&m);
    return NULL;
  }
  m->n_nodes = 1; /* the root */
  m->out[0] = NONE;
  m->parent[0] = 0;
  m->label[0] = 0;
  return m;
}

static uint64_t hash_key(uint32_t node, uint8_t b) {
  return (((uint64_t)node << 8) | b) + 1;
}

static size_t hash_slot(uint64_t key, size_t cap) {
  uint64_t h = key * UINT64_C(0x9e3779b97f4a7c15);
  return (size_t)(h >> 20) & (cap - 1);
}

/* The child of node by byte b while adding, or NONE. */
static uint32_t hash_get(const struct svc_matcher *m, uint32_t node, uint8_t b) {
  uint64_t key = hash_key(node, b);

  if (m->hcap == 0) return NONE;
  for (size_t i = hash_slot(key, m->hcap);; i = (i + 1) & (m->hcap - 1)) {
    if (m->hkeys[i] == key) return m->hvals[i];
    if (m->hkeys[i] == 0) return NONE;
  }
}

static void hash_insert(uint64_t *keys, uint32_t *vals, size_t cap, uint64_t key, uint32_t v) {
  size_t i = hash_slot(key, cap);

  while (keys[i] != 0) i = (i + 1) & (cap - 1);
  keys[i] = key;
  vals[i] = v;
}

/* Doubles the hash when it would pass half full; 0 or -1. */
static int hash_reserve(struct svc_matcher *m) {
  size_t nc = m->hcap ? m->hcap * 2 : 1024;
  uint64_t *nk;
  uint32_t *nv;

  if ((m->hused + 1) * 2 <= m->hcap) return 0;
  nk = calloc(nc, sizeof *nk);
  nv = malloc(nc * sizeof *nv);
  if (!nk || !nv) {
    free(nk);
    free(nv);
    return -1;
  }
  for (size_t i = 0; i < m->hcap; i++) {
    if (m->hkeys[i] != 0) hash_insert(nk, nv, nc, m->hkeys[i], m->hvals[i]);
  }
  free(m->hkeys);
  free(m->hvals);
  m->hkeys = nk;
  m->hvals = nv;
  m->hcap = nc;
  return 0;
}

static int grow_u32(uint32_t **a, size_t cap) {
  uint32_t *na = realloc(*a, cap * sizeof *na);

  if (!na) return -1;
  *a = na;
  return 0;
}

/* Appends a child of parent by byte b; returns it, or NONE when out of memory. */
static uint32_t node_new(struct svc_matcher *m, uint32_t parent, uint8_t b) {
  uint32_t v = m->n_nodes;

  if (v >= MAX_NODES || hash_reserve(m) != 0) return NONE;
  if (v == m->cap_nodes) {
    size_t nc = (size_t)m->cap_nodes * 2;
    uint8_t *nl;
    if (nc > MAX_NODES) nc = MAX_NODES;
    if (grow_u32(&m->out, nc) != 0 || grow_u32(&m->parent, nc) != 0) return NONE;
    nl = realloc(m->label, nc);
    if (!nl) return NONE;
    m->label = nl;
    m->cap_nodes = (uint32_t)nc;
  }
  m->out[v] = NONE;
  m->parent[v] = parent;
  m->label[v] = b;
  hash_insert(m->hkeys, m->hvals, m->hcap, hash_key(parent, b), v);
  m->hused++;
  m->n_nodes++;
  return v;
}

int svc_matcher_add(struct svc_matcher *m, const char *pat, size_t len, uint32_t id) {
  uint32_t node = 0;

  if (!m || !pat || m->built || len == 0 || len >= UINT32_MAX || m->n_pats == UINT32_MAX)
    return -1;
  if (m->n_pats == m->cap_pats) {
    uint32_t nc = m->cap_pats ? m->cap_pats * 2 : 64;
    struct pattern *np = realloc(m->pats, (size_t)nc * sizeof *np);
    if (!np) return -1;
    m->pats = np;
    m->cap_pats = nc;
  }
  for (size_t i = 0; i < len; i++) {
    uint8_t b = (uint8_t)pat[i];
    uint32_t next = hash_get(m, node, b);
    if (next == NONE && (next = node_new(m, node, b)) == NONE) return -1;
    node = next;
  }
  m->pats[m->n_pats] = (struct pattern){id, (uint32_t)len, m->out[node]};
  m->out[node] = m->n_pats++;
  return 0;
}

/* ---- build: edge arrays, failure and dictionary links ---- */

/* The child of node by byte b in the built edge arrays, or NONE. */
static uint32_t child_of(const struct svc_matcher *m, uint32_t node, uint8_t b) {
  uint32_t lo = m->first[node], hi = m->first[node + 1];

  if (m->dense[node] != NONE) return m->dtab[(size_t)m->dense[node] * 256 + b];
  while (hi - lo > 8) { /* narrow to a short run whose first byte is <= b */
    uint32_t mid = lo + (hi - lo) / 2;
    if (m->ebyte[mid] <= b) lo = mid;
    else hi = mid;
  }
  for (; lo < hi && m->ebyte[lo] <= b; lo++) {
    if (m->ebyte[lo] == b) return m->echild[lo];
  }
  return NONE;
}

/* Fills first/ebyte/echild from the parent links (sorted later). */
static int make_edges(struct svc_matcher *m) {
  uint32_t n = m->n_nodes;

  m->first = calloc((size_t)n + 1, sizeof *m->first);
  m->ebyte = malloc(n);
  m->echild = malloc((size_t)n * sizeof *m->echild);
  if (!m->first || !m->ebyte || !m->echild) return -1;
  for (uint32_t v = 1; v < n; v++) m->first[m->parent[v] + 1]++;
  for (uint32_t u = 0; u < n; u++) m->first[u + 1] += m->first[u];
  /* first[u] is now u's start; use it as a cursor, then shift back. */
  for (uint32_t v = 1; v < n; v++) {
    uint32_t at = m->first[m->parent[v]]++;
    m->echild[at] = v;
    m->ebyte[at] = m->label[v];
  }
  memmove(m->first + 1, m->first, (size_t)n * sizeof *m->first);
  m->first[0] = 0;
  return 0;
}

/* Sorts each node's edges by byte (insertion sort: ranges are small). */
static void sort_edges(struct svc_matcher *m) {
  for (uint32_t u = 0; u < m->n_nodes; u++) {
    for (uint32_t i = m->first[u] + 1; i < m->first[u + 1]; i++) {
      uint8_t b = m->ebyte[i];
      uint32_t c = m->echild[i], j = i;
      for (; j > m->first[u] && m->ebyte[j - 1] > b; j--) {
        m->ebyte[j] = m->ebyte[j - 1];
        m->echild[j] = m->echild[j - 1];
      }
      m->ebyte[j] = b;
      m->echild[j] = c;
    }
  }
}

/* Gives every node with DENSE_MIN or more children a 256-entry row. */
static int make_dense(struct svc_matcher *m) {
  uint32_t k = 0;

  m->dense = malloc((size_t)m->n_nodes * sizeof *m->dense);
  if (!m->dense) return -1;
  for (uint32_t u = 0; u < m->n_nodes; u++)
    m->n_dense += m->first[u + 1] - m->first[u] >= DENSE_MIN;
  m->dtab = malloc(((size_t)m->n_dense * 256 + 1) * sizeof *m->dtab);
  if (!m->dtab) return -1;
  for (uint32_t u = 0; u < m->n_nodes; u++) {
    uint32_t *row = m->dtab + (size_t)k * 256;
    m->dense[u] = NONE;
    if (m->first[u + 1] - m->first[u] < DENSE_MIN) continue;
    for (int b = 0; b < 256; b++) row[b] = NONE;
    for (uint32_t e = m->first[u]; e < m->first[u + 1]; e++) row[m->ebyte[e]] = m->echild[e];
    m->dense[u] = k++;
  }
  return 0;
}

/* The state after reading byte b in state s: its child, else the failure
 * chain's first state with such a child, else the root. */
static uint32_t step(const struct svc_matcher *m, uint32_t s, uint8_t b) {
  for (;;) {
    uint32_t t = s == 0 ? m->root[b] : child_of(m, s, b);
    if (t != NONE) return t;
    s = m->fail[s];
  }
}

/* Breadth-first: the failure link of each node and the dictionary link. */
static int link_nodes(struct svc_matcher *m) {
  uint32_t *queue = malloc((size_t)m->n_nodes * sizeof *queue);
  size_t head = 0, tail = 0;

  m->fail = malloc((size_t)m->n_nodes * sizeof *m->fail);
  m->dict = malloc((size_t)m->n_nodes * sizeof *m->dict);
  if (!queue || !m->fail || !m->dict) {
    free(queue);
    return -1;
  }
  m->fail[0] = 0;
  m->dict[0] = NONE;
  queue[tail++] = 0;
  while (head < tail) {
    uint32_t u = queue[head++];
    for (uint32_t e = m->first[u]; e < m->first[u + 1]; e++) {
      uint32_t v = m->echild[e], t = u == 0 ? 0 : step(m, m->fail[u], m->ebyte[e]);
      m->fail[v] = t;
      m->dict[v] = m->out[t] != NONE ? t : m->dict[t];
      queue[tail++] = v;
    }
  }
  free(queue);
  return 0;
}

int svc_matcher_build(struct svc_matcher *m) {
  if (!m || m->built) return -1;
  if (make_edges(m) != 0) return -1;
  sort_edges(m);
  if (make_dense(m) != 0) return -1;
  for (int b = 0; b < 256; b++) m->root[b] = 0;
  for (uint32_t e = m->first[0]; e < m->first[1]; e++) m->root[m->ebyte[e]] = m->echild[e];
  if (link_nodes(m) != 0) return -1;
  free(m->parent);
  free(m->label);
  free(m->hkeys);
  free(m->hvals);
  m->parent = NULL;
  m->label = NULL;
  m->hkeys = NULL;
  m->hvals = NULL;
  m->hcap = m->hused = 0;
  m->built = 1;
  return 0;
}

/* ---- scanning ---- */

/* Reports every pattern ending at node s (text offset end); non-zero stops. */
static int report(const struct svc_matcher *m, uint32_t s, size_t end,
                  int (*fn)(void *, uint32_t, size_t, size_t), void *arg) {
  for (uint32_t o = m->out[s] != NONE ? s : m->dict[s]; o != NONE; o = m->dict[o]) {
    for (uint32_t p = m->out[o]; p != NONE; p = m->pats[p].next) {
      int r = fn(arg, m->pats[p].id, end - m->pats[p].len, end);
      if (r != 0) return r;
    }
  }
  return 0;
}

int svc_matcher_scan(const struct svc_matcher *m, const char *text, size_t len,
                        int (*fn)(void *arg, uint32_t id, size_t start, size_t end), void *arg) {
  const uint8_t *p = (const uint8_t *)text;
  uint32_t s = 0;

  if (!m || !m->built || !fn || (!text && len > 0)) return -1;
  for (size_t i = 0; i < len; i++) {
    s = step(m, s, p[i]);
    if (s != 0 && (m->out[s] != NONE || m->dict[s] != NONE)) {
      int r = report(m, s, i + 1, fn, arg);
      if (r != 0) return r;
    }
  }
  return 0;
}

void svc_matcher_stats(const struct svc_matcher *m, size_t *nodes, size_t *bytes) {
  size_t n = m ? m->n_nodes : 0;

  if (nodes) *nodes = n;
  if (bytes) {
    *bytes = m ? sizeof *m + n * (6 * sizeof(uint32_t) + 1) +
                     (size_t)m->n_dense * 256 * sizeof(uint32_t) +
                     (size_t)m->cap_pats * sizeof(struct pattern)
               : 0;
  }
}

void svc_matcher_destroy(struct svc_matcher **pm) {
  struct svc_matcher *m;

  if (!pm || !*pm) return;
  m = *pm;
  free(m->out);
  free(m->parent);
  free(m->label);
  free(m->hkeys);
  free(m->hvals);
  free(m->first);
  free(m->ebyte);
  free(m->echild);
  free(m->dense);
  free(m->dtab);
  free(m->fail);
  free(m->dict);
  free(m->pats);
  free(m);
  *pm = NULL;
}
