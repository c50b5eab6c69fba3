/**
 * @file pattern_compile.c
 * @brief All rules to one matcher (see match_int.h for the layout).
 *
 * Compilation deduplicates at every level — field paths, predicates,
 * conditions — so that ten thousand rules that say `"source": ["aws.ec2"]`
 * cost one hash probe per event, not ten thousand comparisons. Each
 * conjunction is hung off the condition that is cheapest to wait for: the
 * estimated chance that it holds times the number of conjunctions waiting on
 * it. Exact values on fields with many distinct values win; anything-but and
 * exists lose.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"

#define NK (K_ABSENT + 1)

/* ---- growable arrays ---- */

static bool grow(void **p, size_t *cap, size_t need, size_t sz) {
    if (need <= *cap)
        return true;
    size_t nc = *cap ? *cap * 2 : 16;
    while (nc < need)
        nc *= 2;
    void *q = realloc(*p, nc * sz);
    if (!q)
        return false;
    *p = q;
    *cap = nc;
    return true;
}

#define VEC(T)                                                                                     \
    struct {                                                                                       \
        T *p;                                                                                      \
        size_t n, cap;                                                                             \
    }
#define VPUSH(v, x)                                                                                \
    (grow((void **)&(v).p, &(v).cap, (v).n + 1, sizeof *(v).p) ? ((v).p[(v).n++] = (x), true)      \
                                                               : false)

/* ---- compile-time map: bytes -> id ---- */

typedef struct sment {
    uint64_t h;
    const char *k;
    size_t klen;
    uint32_t v;
} sment;

typedef struct smap {
    sment *t;
    size_t mask, n;
} smap;

/* Find key; if absent insert it with value `nv`. *found says which. */
static bool smap_put(smap *m, evbus__arena *a, const void *k, size_t klen, uint32_t nv,
                     uint32_t *out, bool *found) {
    if ((m->n + 1) * 2 > m->mask + 1 || !m->t) {
        size_t ncap = m->t ? (m->mask + 1) * 2 : 64;
        sment *nt = calloc(ncap, sizeof *nt);
        if (!nt)
            return false;
        for (size_t i = 0; m->t && i <= m->mask; i++) {
            if (!m->t[i].k)
                continue;
            size_t j = m->t[i].h & (ncap - 1);
            while (nt[j].k)
                j = (j + 1) & (ncap - 1);
            nt[j] = m->t[i];
        }
        free(m->t);
        m->t = nt;
        m->mask = ncap - 1;
    }
    uint64_t h = evbus__hash(0, k, klen);
    size_t j = h & m->mask;
    while (m->t[j].k) {
        if (m->t[j].h == h && m->t[j].klen == klen && !memcmp(m->t[j].k, k, klen)) {
            *out = m->t[j].v;
            *found = true;
            return true;
        }
        j = (j + 1) & m->mask;
    }
    char *kc = evbus__arena_alloc(a, klen ? klen : 1);
    if (!kc)
        return false;
    memcpy(kc, k, klen);
    m->t[j] = (sment){h, kc, klen, nv};
    m->n++;
    *out = nv;
    *found = false;
    return true;
}

/* ---- context ---- */

typedef struct pctx {
    evbus__arena a;
    VEC(mnode) nodes;
    VEC(char) strs;
    VEC(mpred) preds;
    VEC(uint32_t) pred_node;
    VEC(uint32_t) pred_hoff; /* hashed operand in strs */
    VEC(uint32_t) pred_hlen;
    VEC(mcond) conds;
    VEC(uint32_t) cond_refs;
    VEC(uint32_t) cp_cond; /* (condition, predicate) pairs */
    VEC(uint32_t) cp_pred;
    VEC(mconj) conjs;
    VEC(uint32_t) ids;
    VEC(mitem) items;
    smap node_map, pred_map, cond_map;
    uint32_t *rule_off, *rule_cnt;
} pctx;

static bool add_str(pctx *c, const char *s, size_t len, uint32_t *off) {
    if (!grow((void **)&c->strs.p, &c->strs.cap, c->strs.n + len + 1, 1))
        return false;
    *off = (uint32_t)c->strs.n;
    if (len)
        memcpy(c->strs.p + c->strs.n, s, len);
    c->strs.n += len;
    c->strs.p[c->strs.n++] = '\0'; /* for printing */
    return true;
}

static uint32_t compile_node(pctx *c, uint32_t parent, const char *key, size_t len) {
    char stackbuf[256];
    char *k = len + 4 <= sizeof stackbuf ? stackbuf : malloc(len + 4);
    uint32_t id = NONE32;
    bool found;
    if (!k)
        return NONE32;
    memcpy(k, &parent, 4);
    memcpy(k + 4, key, len);
    if (!smap_put(&c->node_map, &c->a, k, len + 4, (uint32_t)c->nodes.n, &id, &found)) {
        id = NONE32;
        goto out;
    }
    if (!found) {
        mnode n = {NONE32, 0, c->nodes.p[parent].depth + 1, parent, 0, (uint32_t)len};
        if (!add_str(c, key, len, &n.key_off) || !VPUSH(c->nodes, n)) {
            id = NONE32;
            goto out;
        }
        c->nodes.p[parent].has_children = 1;
    }
out:
    if (k != stackbuf)
        free(k);
    return id;
}

static bool is_hashed(uint32_t kind) {
    return kind >= K_EXACT && kind <= K_SUFFIX_EIC;
}

/* The bytes a hashed predicate is looked up by. */
static size_t hashed_key(const pmatch *m, char *buf, size_t cap, const char **out) {
    if (m->kind == K_NUM && m->num.exact) {
        /* As match.c looks numbers up: 'n' and the key, or the text. */
        buf[0] = 'n';
        memcpy(buf + 1, &m->num.key, 8);
        *out = buf;
        return 9;
    }
    (void)cap;
    *out = m->s;
    return m->len;
}

/* Canonical bytes of a predicate, for deduplication. */
static size_t canon(const pmatch *m, uint32_t node, char *buf, size_t cap) {
    size_t o = 0;
#define PUT(p, n)                                                                                  \
    do {                                                                                           \
        if (o + (n) > cap)                                                                         \
            return SIZE_MAX;                                                                       \
        memcpy(buf + o, (p), (n));                                                                 \
        o += (n);                                                                                  \
    } while (0)
    PUT(&node, 4);
    PUT(&m->kind, 4);
    if (is_hashed(m->kind)) {
        char nb[16];
        const char *k;
        size_t kl = hashed_key(m, nb, sizeof nb, &k);
        PUT(k, kl);
    } else if (m->kind == K_NUMERIC) {
        PUT(&m->lo, 8);
        PUT(&m->hi, 8);
        PUT(&m->lo_incl, 1);
        PUT(&m->hi_incl, 1);
        PUT(&m->has_lo, 1);
        PUT(&m->has_hi, 1);
    } else if (m->kind == K_CIDR) {
        PUT(&m->cidr, sizeof m->cidr);
    } else if (m->n_items) {
        for (size_t i = 0; i < m->n_items; i++) {
            uint32_t l = (uint32_t)m->items[i].len;
            PUT(&m->items[i].type, 4);
            if (m->items[i].type == V_NUM) {
                PUT(&m->items[i].num.key, 8);
            } else {
                PUT(&l, 4);
                PUT(m->items[i].s, l);
            }
        }
    } else if (m->s) {
        PUT(m->s, m->len);
    }
#undef PUT
    return o;
}

static uint32_t pred_id(pctx *c, uint32_t node, const pmatch *m) {
    size_t cap = 64 + m->len * 2;
    for (size_t i = 0; i < m->n_items; i++)
        cap += 24 + m->items[i].len;
    char *buf = malloc(cap);
    uint32_t id = NONE32;
    bool found;
    if (!buf)
        return NONE32;
    size_t n = canon(m, node, buf, cap);
    if (n == SIZE_MAX ||
        !smap_put(&c->pred_map, &c->a, buf, n, (uint32_t)c->preds.n, &id, &found)) {
        id = NONE32;
        goto out;
    }
    if (found)
        goto out;
    mpred p;
    memset(&p, 0, sizeof p);
    p.kind = m->kind;
    p.lo = m->lo;
    p.hi = m->hi;
    p.lo_incl = m->lo_incl;
    p.hi_incl = m->hi_incl;
    p.has_lo = m->has_lo;
    p.has_hi = m->has_hi;
    p.cidr = m->cidr;
    uint32_t hoff = 0, hlen = 0;
    if (is_hashed(m->kind)) {
        char nb[16];
        const char *k;
        size_t kl = hashed_key(m, nb, sizeof nb, &k);
        if (!add_str(c, k, kl, &hoff))
            goto oom;
        hlen = (uint32_t)kl;
    } else if (m->n_items) {
        p.a_off = (uint32_t)c->items.n;
        p.a_cnt = (uint32_t)m->n_items;
        for (size_t i = 0; i < m->n_items; i++) {
            mitem it = {m->items[i].type, 0, (uint32_t)m->items[i].len, m->items[i].num};
            if (!add_str(c, m->items[i].s, m->items[i].len, &it.off) || !VPUSH(c->items, it))
                goto oom;
        }
    } else if (m->s) {
        if (!add_str(c, m->s, m->len, &p.a_off))
            goto oom;
        p.a_cnt = (uint32_t)m->len;
    }
    if (!VPUSH(c->preds, p) || !VPUSH(c->pred_node, node) || !VPUSH(c->pred_hoff, hoff) ||
        !VPUSH(c->pred_hlen, hlen))
        goto oom;
out:
    free(buf);
    return id;
oom:
    free(buf);
    return NONE32;
}

static int cmp_u32(const void *a, const void *b) {
    uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;
    return x < y ? -1 : x > y;
}

static uint32_t cond_id(pctx *c, uint32_t node, uint32_t *preds, size_t n, const char *desc) {
    qsort(preds, n, sizeof *preds, cmp_u32);
    size_t u = 0;
    for (size_t i = 0; i < n; i++)
        if (i == 0 || preds[i] != preds[u - 1])
            preds[u++] = preds[i];
    size_t klen = 4 + u * 4;
    uint32_t *key = malloc(klen);
    uint32_t id = NONE32;
    bool found;
    if (!key)
        return NONE32;
    key[0] = node;
    memcpy(key + 1, preds, u * 4);
    if (!smap_put(&c->cond_map, &c->a, key, klen, (uint32_t)c->conds.n, &id, &found)) {
        id = NONE32;
        goto out;
    }
    if (!found) {
        mcond cd = {node, 0, 0, 0, (uint32_t)strlen(desc)};
        if (!add_str(c, desc, strlen(desc), &cd.desc_off) || !VPUSH(c->conds, cd) ||
            !VPUSH(c->cond_refs, 0)) {
            id = NONE32;
            goto out;
        }
        for (size_t i = 0; i < u; i++) {
            if (!VPUSH(c->cp_cond, id) || !VPUSH(c->cp_pred, preds[i])) {
                id = NONE32;
                goto out;
            }
        }
    }
out:
    free(key);
    return id;
}

static uint32_t term_node(pctx *c, const pterm *t) {
    uint32_t n = 0; /* the root */
    for (size_t i = 0; i < t->n_keys && n != NONE32; i++)
        n = compile_node(c, n, t->keys[i], t->key_lens[i]);
    return n;
}

static bool add_conj(pctx *c, uint32_t rule, const pconj *pc) {
    mconj cj = {rule, 0, 0, 0, 0, NONE32};
    uint32_t *pos = malloc((pc->n + 1) * sizeof *pos);
    uint32_t *neg = malloc((pc->n + 1) * sizeof *neg);
    size_t npos = 0, nneg = 0;
    bool ok = false;
    if (!pos || !neg)
        goto out;
    for (size_t i = 0; i < pc->n; i++) {
        const pterm *t = pc->t[i];
        uint32_t node = term_node(c, t);
        if (node == NONE32)
            goto out;
        if (t->absent) {
            bool dup = false;
            for (size_t k = 0; k < nneg; k++)
                dup |= neg[k] == node;
            if (!dup)
                neg[nneg++] = node;
            continue;
        }
        uint32_t *preds = malloc(t->n_m * sizeof *preds);
        if (!preds)
            goto out;
        for (size_t k = 0; k < t->n_m; k++) {
            preds[k] = pred_id(c, node, &t->m[k]);
            if (preds[k] == NONE32) {
                free(preds);
                goto out;
            }
        }
        uint32_t cd = cond_id(c, node, preds, t->n_m, t->desc);
        free(preds);
        if (cd == NONE32)
            goto out;
        bool dup = false;
        for (size_t k = 0; k < npos; k++)
            dup |= pos[k] == cd;
        if (!dup) {
            pos[npos++] = cd;
            c->cond_refs.p[cd]++;
        }
    }
    cj.pos_off = (uint32_t)c->ids.n;
    cj.pos_cnt = (uint32_t)npos;
    for (size_t i = 0; i < npos; i++)
        if (!VPUSH(c->ids, pos[i]))
            goto out;
    cj.neg_off = (uint32_t)c->ids.n;
    cj.neg_cnt = (uint32_t)nneg;
    for (size_t i = 0; i < nneg; i++)
        if (!VPUSH(c->ids, neg[i]))
            goto out;
    ok = VPUSH(c->conjs, cj);
out:
    free(pos);
    free(neg);
    return ok;
}

static void ctx_free(pctx *c) {
    free(c->nodes.p);
    free(c->strs.p);
    free(c->preds.p);
    free(c->pred_node.p);
    free(c->pred_hoff.p);
    free(c->pred_hlen.p);
    free(c->conds.p);
    free(c->cond_refs.p);
    free(c->cp_cond.p);
    free(c->cp_pred.p);
    free(c->conjs.p);
    free(c->ids.p);
    free(c->items.p);
    free(c->node_map.t);
    free(c->pred_map.t);
    free(c->cond_map.t);
    free(c->rule_off);
    free(c->rule_cnt);
    evbus__arena_destroy(&c->a);
}

void evbus__matcher_destroy(evbus__matcher **pm) {
    if (!pm || !*pm)
        return;
    evbus__matcher *m = *pm;
    free(m->nodes);
    free(m->fields);
    free(m->preds);
    free(m->conds);
    free(m->conjs);
    free(m->ids);
    free(m->lens);
    free(m->slow);
    free(m->items);
    free(m->strs);
    free(m->vtab);
    free(m->ctab);
    free(m->always);
    evbus__numidx_free(&m->num);
    free(m->rule_conj_off);
    free(m->rule_conj_cnt);
    free(m);
    *pm = NULL;
}

/* ---- building the final layout ---- */

static int len_kind(uint32_t kind) {
    switch (kind) {
    case K_PREFIX: return 0;
    case K_PREFIX_EIC: return 1;
    case K_SUFFIX: return 2;
    case K_SUFFIX_EIC: return 3;
    default: return -1;
    }
}

typedef struct triple {
    uint32_t a, b, c;
} triple;

static int cmp_triple(const void *x, const void *y) {
    const triple *p = x, *q = y;
    if (p->a != q->a)
        return p->a < q->a ? -1 : 1;
    if (p->b != q->b)
        return p->b < q->b ? -1 : 1;
    return p->c < q->c ? -1 : p->c > q->c;
}

static uint32_t pow2_at_least(size_t n) {
    uint32_t c = 16;
    while (c < n * 2)
        c *= 2;
    return c;
}

static double pred_chance(const mpred *p, const uint32_t *distinct) {
    switch (p->kind) {
    case K_EXACT:
    case K_NUM:
    case K_EIC:
    case K_PREFIX:
    case K_PREFIX_EIC:
    case K_SUFFIX:
    case K_SUFFIX_EIC: {
        uint32_t d = distinct[p->kind];
        return 1.0 / (d > 4 ? d : 4);
    }
    case K_LIT: return 0.5;
    case K_NUMERIC:
        if (p->has_lo && p->has_hi && p->lo == p->hi)
            return 0.05;
        return p->has_lo && p->has_hi ? 0.2 : 0.4;
    case K_CIDR: return 0.25;
    case K_WILDCARD: return 0.25;
    case K_EXISTS: return 1.0;
    default: return 0.9; /* anything-but */
    }
}

/* tr[0..nt): (field, numeric predicate) sorted by field. */
static bool build_numeric(pctx *c, evbus__matcher *m, const triple *tr, size_t nt) {
    mnum *items = malloc((nt ? nt : 1) * sizeof *items);
    bool ok = false;
    if (!items)
        return false;
    for (size_t i = 0; i < nt;) {
        size_t k = 0, start = i;
        for (; i < nt && tr[i].a == tr[start].a; i++) {
            const mpred *p = &c->preds.p[tr[i].b];
            mnum x = {p->has_lo ? (p->lo_incl ? p->lo : p->lo + 1) : INT64_MIN,
                      p->has_hi ? (p->hi_incl ? p->hi : p->hi - 1) : INT64_MAX, tr[i].b};
            if (x.a <= x.b) /* (1, next double after 1) holds no double */
                items[k++] = x;
        }
        mfield *f = &m->fields[tr[start].a];
        f->flags |= 1u << K_NUMERIC;
        if (!evbus__numidx_add(&m->num, items, k, &f->num_root))
            goto fail;
    }
    ok = true;
fail:
    free(items);
    return ok;
}

static evbus_err build(pctx *c, evbus__matcher *m) {
    evbus_err rc = EVBUS_ENOMEM;
    triple *tr = NULL;
    uint32_t *distinct = NULL;
    size_t nt = 0;

    m->n_nodes = (uint32_t)c->nodes.n;
    m->n_preds = (uint32_t)c->preds.n;
    m->n_conds = (uint32_t)c->conds.n;
    m->n_conjs = (uint32_t)c->conjs.n;

    /* Fields: nodes that receive values (a predicate or an exists:false). */
    for (size_t i = 0; i < c->preds.n; i++)
        c->nodes.p[c->pred_node.p[i]].field = 0;
    for (size_t i = 0; i < c->conjs.n; i++)
        for (uint32_t k = 0; k < c->conjs.p[i].neg_cnt; k++)
            c->nodes.p[c->ids.p[c->conjs.p[i].neg_off + k]].field = 0;
    for (size_t i = 0; i < c->nodes.n; i++)
        if (c->nodes.p[i].field == 0)
            m->n_fields++;
    m->fields = calloc(m->n_fields ? m->n_fields : 1, sizeof *m->fields);
    if (!m->fields)
        goto fail;
    for (uint32_t f = 0; f < m->n_fields; f++)
        m->fields[f].num_root = NONE32;
    {
        uint32_t f = 0;
        for (size_t i = 0; i < c->nodes.n; i++) {
            if (c->nodes.p[i].field == 0) {
                c->nodes.p[i].field = f;
                m->fields[f].node = (uint32_t)i;
                f++;
            }
        }
    }

    /* Distinct operand lengths of prefixes and suffixes, per field. */
    tr = malloc((c->preds.n + c->cp_cond.n + c->conjs.n + 1) * sizeof *tr);
    if (!tr)
        goto fail;
    nt = 0;
    for (size_t i = 0; i < c->preds.n; i++) {
        int lk = len_kind(c->preds.p[i].kind);
        uint32_t f = c->nodes.p[c->pred_node.p[i]].field;
        if (is_hashed(c->preds.p[i].kind))
            m->fields[f].flags |= 1u << c->preds.p[i].kind;
        if (lk >= 0)
            tr[nt++] = (triple){f, (uint32_t)lk, c->pred_hlen.p[i]};
    }
    qsort(tr, nt, sizeof *tr, cmp_triple);
    m->lens = malloc((nt ? nt : 1) * sizeof *m->lens);
    if (!m->lens)
        goto fail;
    for (size_t i = 0; i < nt; i++) {
        if (i && tr[i].a == tr[i - 1].a && tr[i].b == tr[i - 1].b && tr[i].c == tr[i - 1].c)
            continue;
        mfield *f = &m->fields[tr[i].a];
        if (f->len_cnt[tr[i].b] == 0)
            f->len_off[tr[i].b] = m->n_lens;
        f->len_cnt[tr[i].b]++;
        /* Lengths over 65535 cannot occur: patterns are 4096 chars at most. */
        m->lens[m->n_lens++] = (uint16_t)tr[i].c;
    }

    /* Scanned predicates per field. */
    nt = 0;
    for (size_t i = 0; i < c->preds.n; i++)
        if (!is_hashed(c->preds.p[i].kind) && c->preds.p[i].kind != K_NUMERIC)
            tr[nt++] = (triple){c->nodes.p[c->pred_node.p[i]].field, (uint32_t)i, 0};
    qsort(tr, nt, sizeof *tr, cmp_triple);
    m->slow = malloc((nt ? nt : 1) * sizeof *m->slow);
    if (!m->slow)
        goto fail;
    for (size_t i = 0; i < nt; i++) {
        mfield *f = &m->fields[tr[i].a];
        if (f->slow_cnt == 0)
            f->slow_off = (uint32_t)i;
        f->slow_cnt++;
        m->slow[i] = tr[i].b;
        /* Scanned kinds get a flag too, so that deliver() knows without
         * looking whether a value must be folded. */
        f->flags |= 1u << c->preds.p[tr[i].b].kind;
    }
    m->n_slow = (uint32_t)nt;

    /* Numeric ranges per field, as interval trees (numeric_index.c). */
    nt = 0;
    for (size_t i = 0; i < c->preds.n; i++)
        if (c->preds.p[i].kind == K_NUMERIC)
            tr[nt++] = (triple){c->nodes.p[c->pred_node.p[i]].field, (uint32_t)i, 0};
    qsort(tr, nt, sizeof *tr, cmp_triple);
    if (!build_numeric(c, m, tr, nt))
        goto fail;

    /* Predicate -> conditions. */
    nt = 0;
    for (size_t i = 0; i < c->cp_cond.n; i++)
        tr[nt++] = (triple){c->cp_pred.p[i], c->cp_cond.p[i], 0};
    qsort(tr, nt, sizeof *tr, cmp_triple);
    for (size_t i = 0; i < nt; i++) {
        mpred *p = &c->preds.p[tr[i].a];
        if (p->cond_cnt == 0)
            p->cond_off = (uint32_t)c->ids.n;
        p->cond_cnt++;
        if (!VPUSH(c->ids, tr[i].b))
            goto fail;
    }

    /* Anchors: the condition with the lowest expected work. */
    distinct = calloc(c->nodes.n * NK + 1, sizeof *distinct);
    if (!distinct)
        goto fail;
    for (size_t i = 0; i < c->preds.n; i++)
        distinct[c->pred_node.p[i] * NK + c->preds.p[i].kind]++;
    double *chance = malloc((c->conds.n + 1) * sizeof *chance);
    if (!chance)
        goto fail;
    for (size_t i = 0; i < c->conds.n; i++)
        chance[i] = 0;
    for (size_t i = 0; i < c->cp_cond.n; i++) {
        uint32_t pi = c->cp_pred.p[i];
        chance[c->cp_cond.p[i]] += pred_chance(&c->preds.p[pi], &distinct[c->pred_node.p[pi] * NK]);
    }
    nt = 0;
    m->always = malloc((c->conjs.n ? c->conjs.n : 1) * sizeof *m->always);
    if (!m->always) {
        free(chance);
        goto fail;
    }
    for (size_t i = 0; i < c->conjs.n; i++) {
        mconj *cj = &c->conjs.p[i];
        double best = INFINITY;
        for (uint32_t k = 0; k < cj->pos_cnt; k++) {
            uint32_t cd = c->ids.p[cj->pos_off + k];
            double ch = chance[cd] > 1.0 ? 1.0 : chance[cd];
            double cost = ch * (double)c->cond_refs.p[cd];
            if (cost < best) {
                best = cost;
                cj->anchor = cd;
            }
        }
        if (cj->anchor == NONE32)
            m->always[m->n_always++] = (uint32_t)i;
        else
            tr[nt++] = (triple){cj->anchor, (uint32_t)i, 0};
    }
    free(chance);
    qsort(tr, nt, sizeof *tr, cmp_triple);
    for (size_t i = 0; i < nt; i++) {
        mcond *cd = &c->conds.p[tr[i].a];
        if (cd->conj_cnt == 0)
            cd->conj_off = (uint32_t)c->ids.n;
        cd->conj_cnt++;
        if (!VPUSH(c->ids, tr[i].b))
            goto fail;
    }

    /* Hash tables. */
    size_t nh = 0;
    for (size_t i = 0; i < c->preds.n; i++)
        nh += is_hashed(c->preds.p[i].kind);
    m->vmask = pow2_at_least(nh) - 1;
    m->vtab = calloc((size_t)m->vmask + 1, sizeof *m->vtab);
    if (!m->vtab)
        goto fail;
    for (size_t i = 0; i < c->preds.n; i++) {
        if (!is_hashed(c->preds.p[i].kind))
            continue;
        hent e = {
            0,          c->pred_node.p[i], c->preds.p[i].kind, c->pred_hoff.p[i], c->pred_hlen.p[i],
            (uint32_t)i};
        e.hash = evbus__hash(((uint64_t)e.a << 8) | e.kind, c->strs.p + e.off, e.len) |
                 1; /* 0 marks a free slot */
        size_t j = e.hash & m->vmask;
        while (m->vtab[j].hash)
            j = (j + 1) & m->vmask;
        m->vtab[j] = e;
    }
    m->cmask = pow2_at_least(c->nodes.n) - 1;
    m->ctab = calloc((size_t)m->cmask + 1, sizeof *m->ctab);
    if (!m->ctab)
        goto fail;
    for (size_t i = 1; i < c->nodes.n; i++) {
        mnode *n = &c->nodes.p[i];
        hent e = {0, n->parent, 0, n->key_off, n->key_len, (uint32_t)i};
        e.hash = evbus__hash(e.a, c->strs.p + e.off, e.len) | 1;
        size_t j = e.hash & m->cmask;
        while (m->ctab[j].hash)
            j = (j + 1) & m->cmask;
        m->ctab[j] = e;
    }

    /* Hand the arrays over. */
    m->nodes = c->nodes.p;
    c->nodes.p = NULL;
    m->preds = c->preds.p;
    c->preds.p = NULL;
    m->conds = c->conds.p;
    c->conds.p = NULL;
    m->conjs = c->conjs.p;
    c->conjs.p = NULL;
    m->ids = c->ids.p;
    m->n_ids = (uint32_t)c->ids.n;
    c->ids.p = NULL;
    m->items = c->items.p;
    m->n_items = (uint32_t)c->items.n;
    c->items.p = NULL;
    m->strs = c->strs.p;
    m->n_strs = c->strs.n;
    c->strs.p = NULL;
    m->rule_conj_off = c->rule_off;
    m->rule_conj_cnt = c->rule_cnt;
    c->rule_off = c->rule_cnt = NULL;

    m->memory = sizeof *m + m->n_nodes * sizeof(mnode) + m->n_fields * sizeof(mfield) +
                m->n_preds * sizeof(mpred) + m->n_conds * sizeof(mcond) +
                m->n_conjs * sizeof(mconj) + m->n_ids * 4 + m->n_lens * 2 + m->n_slow * 4 +
                m->n_items * sizeof(mitem) + m->n_strs + m->num.n_nodes * sizeof(mntree) +
                (size_t)m->num.n * 2 * sizeof(mnum) +
                ((size_t)m->vmask + 1 + m->cmask + 1) * sizeof(hent) + m->n_always * 4 +
                (size_t)m->n_rules * 8;
    rc = EVBUS_OK;
fail:
    free(tr);
    free(distinct);
    return rc;
}

evbus_err evbus__matcher_compile_opts(const evbus__match_rule *rules, size_t n,
                                      const evbus__match_opts *opts, evbus__matcher **out,
                                      char *err, size_t errlen) {
    pctx c;
    evbus__matcher *m = NULL;
    evbus_err rc = EVBUS_EINVAL;
    size_t pmax = opts && opts->pattern_max ? opts->pattern_max : EVBUS_MATCH_PATTERN_MAX;

    memset(&c, 0, sizeof c);
    if (err && errlen)
        err[0] = '\0';
    if (!out || (n && !rules) || n > UINT32_MAX / 2)
        return EVBUS_EINVAL;
    rc = EVBUS_ENOMEM;
    m = calloc(1, sizeof *m);
    c.rule_off = calloc(n ? n : 1, sizeof *c.rule_off);
    c.rule_cnt = calloc(n ? n : 1, sizeof *c.rule_cnt);
    if (!m || !c.rule_off || !c.rule_cnt)
        goto fail;
    m->n_rules = (uint32_t)n;
    {
        mnode root = {NONE32, 0, 0, NONE32, 0, 0};
        if (!VPUSH(c.nodes, root))
            goto fail;
    }
    for (size_t i = 0; i < n; i++) {
        pdnf d;
        evbus__arena scratch = {NULL};
        if (!rules[i].pattern_json) {
            if (err && errlen)
                snprintf(err, errlen, "rule \"%s\": no pattern",
                         rules[i].name ? rules[i].name : "");
            rc = EVBUS_ECONFIG;
            if (opts && opts->failed_rule)
                *opts->failed_rule = i;
            goto fail;
        }
        rc = evbus__pattern_parse(&scratch, rules[i].name, rules[i].pattern_json, pmax, &d, err,
                                  errlen);
        if (rc != EVBUS_OK) {
            if (rc == EVBUS_ECONFIG && opts && opts->failed_rule)
                *opts->failed_rule = i;
            evbus__arena_destroy(&scratch);
            goto fail;
        }
        c.rule_off[i] = (uint32_t)c.conjs.n;
        c.rule_cnt[i] = (uint32_t)d.n;
        for (size_t k = 0; k < d.n; k++) {
            if (!add_conj(&c, (uint32_t)i, &d.c[k])) {
                evbus__arena_destroy(&scratch);
                rc = EVBUS_ENOMEM;
                goto fail;
            }
        }
        evbus__arena_destroy(&scratch);
    }
    rc = build(&c, m);
    if (rc != EVBUS_OK)
        goto fail;
    ctx_free(&c);
    *out = m;
    return EVBUS_OK;
fail:
    if (rc == EVBUS_ENOMEM && err && errlen && !err[0])
        snprintf(err, errlen, "out of memory compiling the rules");
    ctx_free(&c);
    evbus__matcher_destroy(&m);
    return rc;
}

evbus_err evbus__matcher_compile(const evbus__match_rule *rules, size_t n, evbus__matcher **out,
                                 char *err, size_t errlen) {
    return evbus__matcher_compile_opts(rules, n, NULL, out, err, errlen);
}

size_t evbus__matcher_rule_count(const evbus__matcher *m) {
    return m ? m->n_rules : 0;
}

size_t evbus__matcher_memory(const evbus__matcher *m) {
    return m ? m->memory : 0;
}
