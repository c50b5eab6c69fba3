/**
 * @file match.c
 * @brief Running a compiled matcher over one event.
 *
 * One pass over the event: keys are looked up in the field trie and whatever
 * no pattern names is skipped (validated, not decoded). Each value delivered
 * to a field fires the predicates it satisfies; those mark their conditions
 * with this event's epoch (so nothing is cleared between events) and remember
 * the anchors that fired. At the end only the conjunctions hanging off fired
 * anchors are checked.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match_int.h"

/* The scratch buffer: unescaped strings first, then their folding. */
#define FOLD_OFF EVBUS_MATCH_STRING_MAX
#define BUF_SIZE                                                                                   \
    ((size_t)EVBUS_MATCH_STRING_MAX + EVBUS__FOLD_LEN_MAX((size_t)EVBUS_MATCH_STRING_MAX))

typedef struct run {
    const evbus__matcher *m;
    evbus__match_scratch *s;
    evbus__jscan j;
    /* The arrays around the current value: (array id, index) pairs, outer
     * first. Ids grow as arrays open, so a trail is sorted by id. */
    uint32_t arr[2 * EVBUS_MATCH_DEPTH_MAX];
    uint32_t n_arr;
    uint32_t next_array;
    uint32_t snap_off; /* the current value's trail in s->trail, or NONE32 */
    /* The caller vouches that the text is valid JSON (evbusd checked it at
     * ingest): what no pattern names is skipped without validating it. */
    bool checked;
} run;

/* Skips a value no pattern names. */
static inline bool skip_unnamed(run *r, int depth) {
    return r->checked ? evbus__jscan_skip_valid(&r->j) : evbus__jscan_skip(&r->j, depth);
}

static inline const hent *vlookup(const evbus__matcher *m, uint32_t node, uint32_t kind,
                                  const char *s, size_t len) {
    uint64_t h = evbus__hash(((uint64_t)node << 8) | kind, s, len) | 1;
    size_t i = h & m->vmask;
    for (;;) {
        const hent *e = &m->vtab[i];
        if (!e->hash)
            return NULL;
        if (e->hash == h && e->a == node && e->kind == kind && e->len == len &&
            !memcmp(m->strs + e->off, s, len))
            return e;
        i = (i + 1) & m->vmask;
    }
}

static inline uint32_t child(const evbus__matcher *m, uint32_t parent, const char *key,
                             size_t len) {
    uint64_t h = evbus__hash(parent, key, len) | 1;
    size_t i = h & m->cmask;
    for (;;) {
        const hent *e = &m->ctab[i];
        if (!e->hash)
            return NONE32;
        if (e->hash == h && e->a == parent && e->len == len && !memcmp(m->strs + e->off, key, len))
            return e->target;
        i = (i + 1) & m->cmask;
    }
}

/* Remember where the value satisfying condition c sits, so that a rule's
 * fields can be required to come from the same array element (as
 * aws/event-ruler does: users read a match across peer elements as a bug). */
static void witness(run *r, uint32_t c) {
    evbus__match_scratch *s = r->s;
    if (s->cond_free[c] == s->epoch)
        return;
    if (r->n_arr == 0) {
        s->cond_free[c] = s->epoch;
        return;
    }
    if (s->overflow)
        return;
    if (r->snap_off == NONE32) {
        if (s->n_trail + r->n_arr > EVBUS__TRAIL_MAX) {
            s->overflow = true;
            return;
        }
        memcpy(s->trail + 2 * (size_t)s->n_trail, r->arr, 2 * sizeof(uint32_t) * r->n_arr);
        r->snap_off = s->n_trail;
        s->n_trail += r->n_arr;
    }
    if (s->n_wit >= EVBUS__WIT_MAX) {
        s->overflow = true;
        return;
    }
    mwit *w = &s->wit[s->n_wit];
    w->trail_off = r->snap_off;
    w->trail_len = r->n_arr;
    w->next = s->cond_wstamp[c] == s->epoch ? s->cond_whead[c] : NONE32;
    s->cond_wstamp[c] = s->epoch;
    s->cond_whead[c] = s->n_wit++;
}

static void fire(run *r, uint32_t pred) {
    const evbus__matcher *m = r->m;
    evbus__match_scratch *s = r->s;
    const mpred *p = &m->preds[pred];
    for (uint32_t i = 0; i < p->cond_cnt; i++) {
        uint32_t c = m->ids[p->cond_off + i];
        if (s->cond_stamp[c] != s->epoch) {
            s->cond_stamp[c] = s->epoch;
            if (m->conds[c].conj_cnt)
                s->fired[s->n_fired++] = c;
        }
        witness(r, c);
    }
}

/* Anything-but numbers are exact (the pattern parser refuses others, as
 * event-ruler does); an event number that is not is none of them. */
static bool num_eq(const evbus__num *a, const evbus__num *b) {
    return a->exact && b->exact && a->key == b->key;
}

/* Operands of scanned predicates live in strs at a_off, a_cnt bytes.
 * `folded` is the value's case folding (flen bytes), or NULL. */
static bool slow_match(const evbus__matcher *m, const mpred *p, const evbus__val *v,
                       const evbus__num *num, const char *folded, size_t flen) {
    const char *op = m->strs + p->a_off;
    switch (p->kind) {
    case K_EXISTS: return true;
    case K_CIDR: return v->type == V_STR && evbus__cidr_contains(&p->cidr, v->s, v->len);
    case K_WILDCARD: return v->type == V_STR && evbus__wildcard_match(op, p->a_cnt, v->s, v->len);
    case K_AB_PREFIX:
        return v->type != V_STR || !(v->len >= p->a_cnt && !memcmp(v->s, op, p->a_cnt));
    case K_AB_SUFFIX:
        return v->type != V_STR ||
               !(v->len >= p->a_cnt && !memcmp(v->s + v->len - p->a_cnt, op, p->a_cnt));
    case K_AB_VALUES:
    case K_AB_EIC:
    case K_AB_WILDCARD:
        for (uint32_t i = 0; i < p->a_cnt; i++) {
            const mitem *it = &m->items[p->a_off + i];
            const char *is = m->strs + it->off;
            if (p->kind == K_AB_VALUES) {
                if (it->type == V_NUM) {
                    if (v->type == V_NUM && num_eq(num, &it->num))
                        return false;
                } else if (v->type == V_STR && v->len == it->len && !memcmp(v->s, is, it->len)) {
                    return false;
                }
            } else if (v->type == V_STR) {
                if (p->kind == K_AB_EIC
                        ? (folded && flen == it->len && !memcmp(folded, is, it->len))
                        : evbus__wildcard_match(is, it->len, v->s, v->len))
                    return false;
            }
        }
        return true;
    default: return false;
    }
}

/* Fire the numeric ranges of a field that hold v (see numeric_index.c). */
static void numeric(run *r, uint32_t node, int64_t v) {
    const evbus__numidx *x = &r->m->num;
    while (node != NONE32) {
        const mntree *t = &x->nodes[node];
        if (v < t->center) {
            for (uint32_t i = 0; i < t->cnt && x->lo[t->off + i].a <= v; i++)
                fire(r, x->lo[t->off + i].pred);
            node = t->left;
        } else if (v > t->center) {
            for (uint32_t i = 0; i < t->cnt && x->hi[t->off + i].b >= v; i++)
                fire(r, x->hi[t->off + i].pred);
            node = t->right;
        } else {
            for (uint32_t i = 0; i < t->cnt; i++)
                fire(r, x->lo[t->off + i].pred);
            return;
        }
    }
}

static void deliver(run *r, uint32_t node, const evbus__val *v) {
    const evbus__matcher *m = r->m;
    evbus__match_scratch *s = r->s;
    const mfield *f = &m->fields[m->nodes[node].field];
    const hent *e;
    evbus__num num = {false, false, 0, 0.0};
    const char *folded = NULL;
    size_t flen = 0;

    r->snap_off = NONE32;
    s->node_stamp[node] = s->epoch;
    if (v->type == V_STR) {
        if ((f->flags & (1u << K_EXACT)) && (e = vlookup(m, node, K_EXACT, v->s, v->len)))
            fire(r, e->target);
        for (uint32_t i = 0; i < f->len_cnt[0]; i++) {
            uint16_t l = m->lens[f->len_off[0] + i];
            if (l > v->len)
                break;
            if ((e = vlookup(m, node, K_PREFIX, v->s, l)))
                fire(r, e->target);
        }
        for (uint32_t i = 0; i < f->len_cnt[2]; i++) {
            uint16_t l = m->lens[f->len_off[2] + i];
            if (l > v->len)
                break;
            if ((e = vlookup(m, node, K_SUFFIX, v->s + v->len - l, l)))
                fire(r, e->target);
        }
        bool need_fold = (f->flags & ((1u << K_EIC) | (1u << K_PREFIX_EIC) | (1u << K_SUFFIX_EIC) |
                                      (1u << K_AB_EIC))) != 0;
        if (need_fold && v->len <= EVBUS_MATCH_STRING_MAX) {
            /* Operands are stored folded; lengths are of folded bytes. */
            char *fb = s->buf + FOLD_OFF;
            flen = evbus__fold(v->s, v->len, fb);
            folded = fb;
            if ((f->flags & (1u << K_EIC)) && (e = vlookup(m, node, K_EIC, fb, flen)))
                fire(r, e->target);
            for (uint32_t i = 0; i < f->len_cnt[1]; i++) {
                uint16_t l = m->lens[f->len_off[1] + i];
                if (l > flen)
                    break;
                if ((e = vlookup(m, node, K_PREFIX_EIC, fb, l)))
                    fire(r, e->target);
            }
            for (uint32_t i = 0; i < f->len_cnt[3]; i++) {
                uint16_t l = m->lens[f->len_off[3] + i];
                if (l > flen)
                    break;
                if ((e = vlookup(m, node, K_SUFFIX_EIC, fb + flen - l, l)))
                    fire(r, e->target);
            }
        }
    } else if (v->type == V_NUM) {
        bool need = (f->flags & ((1u << K_NUM) | (1u << K_NUMERIC))) != 0 || f->slow_cnt;
        if (need && evbus__num_parse(v->s, v->len, &num) && num.in_range && f->num_root != NONE32)
            numeric(r, f->num_root, num.key);
        if (need && (f->flags & (1u << K_NUM))) {
            /* By value ('n' and the key), or as text when the number is not
             * its double's shortest decimal; no number text holds an 'n'. */
            char key[9];
            if (num.exact) {
                key[0] = 'n';
                memcpy(key + 1, &num.key, 8);
                e = vlookup(m, node, K_NUM, key, 9);
            } else {
                e = vlookup(m, node, K_NUM, v->s, v->len);
            }
            if (e)
                fire(r, e->target);
        }
    } else if (f->flags & (1u << K_LIT)) {
        const char *lit = v->type == V_TRUE ? "t" : v->type == V_FALSE ? "f" : "n";
        if ((e = vlookup(m, node, K_LIT, lit, 1)))
            fire(r, e->target);
    }
    for (uint32_t i = 0; i < f->slow_cnt; i++) {
        uint32_t pi = m->slow[f->slow_off + i];
        if (slow_match(m, &m->preds[pi], v, &num, folded, flen))
            fire(r, pi);
    }
}

static bool walk(run *r, uint32_t node, int depth) {
    evbus__jscan *j = &r->j;
    const evbus__matcher *m = r->m;
    unsigned char c = evbus__jscan_ws(j);
    const char *s;
    size_t len;
    bool esc;

    if (node == NONE32)
        return skip_unnamed(r, depth);
    const mnode *n = &m->nodes[node];
    if (c == '{') {
        if (!n->has_children)
            return skip_unnamed(r, depth);
        if (depth >= EVBUS_MATCH_DEPTH_MAX)
            return evbus__jscan_fail(j, "nested too deep");
        j->p++;
        if (evbus__jscan_ws(j) == '}') {
            j->p++;
            return true;
        }
        for (;;) {
            if (evbus__jscan_ws(j) != '"')
                return evbus__jscan_fail(j, "expected a key");
            if (!evbus__jscan_string(j, &s, &len, &esc))
                return false;
            if (esc) {
                len = evbus__json_unescape(s, len, r->s->buf, EVBUS_MATCH_STRING_MAX);
                if (len == SIZE_MAX)
                    return evbus__jscan_fail(j, "key too long");
                s = r->s->buf;
            }
            uint32_t ch = child(m, node, s, len);
            if (evbus__jscan_ws(j) != ':')
                return evbus__jscan_fail(j, "expected ':'");
            j->p++;
            /* Most keys name nothing: skip their values without a call. */
            if (!(ch == NONE32 ? skip_unnamed(r, depth + 1) : walk(r, ch, depth + 1)))
                return false;
            c = evbus__jscan_ws(j);
            j->p++;
            if (c == ',')
                continue;
            if (c == '}')
                return true;
            j->p--;
            return evbus__jscan_fail(j, "expected ',' or '}'");
        }
    }
    if (c == '[') {
        if (depth >= EVBUS_MATCH_DEPTH_MAX)
            return evbus__jscan_fail(j, "nested too deep");
        j->p++;
        if (evbus__jscan_ws(j) == ']') {
            j->p++;
            return true;
        }
        /* Arrays flatten: every element is a value of this field; the
         * element's index goes on the trail for array consistency. */
        uint32_t slot = r->n_arr++;
        r->arr[2 * slot] = r->next_array++;
        for (uint32_t idx = 0;; idx++) {
            r->arr[2 * slot + 1] = idx;
            if (!walk(r, node, depth + 1))
                return false;
            c = evbus__jscan_ws(j);
            j->p++;
            if (c == ',')
                continue;
            if (c == ']') {
                r->n_arr--;
                return true;
            }
            j->p--;
            return evbus__jscan_fail(j, "expected ',' or ']'");
        }
    }
    if (n->field == NONE32)
        return skip_unnamed(r, depth);
    evbus__val v;
    if (c == '"') {
        if (!evbus__jscan_string(j, &s, &len, &esc))
            return false;
        if (esc) {
            len = evbus__json_unescape(s, len, r->s->buf, EVBUS_MATCH_STRING_MAX);
            if (len == SIZE_MAX)
                return evbus__jscan_fail(j, "string too long");
            s = r->s->buf;
        }
        v = (evbus__val){V_STR, s, len};
    } else if (c == '-' || (c >= '0' && c <= '9')) {
        if (!evbus__jscan_number(j, &s, &len))
            return false;
        v = (evbus__val){V_NUM, s, len};
    } else if (c == 't' || c == 'f' || c == 'n') {
        const unsigned char *start = j->p;
        if (!evbus__jscan_skip(j, depth))
            return false;
        v = (evbus__val){*start == 't'   ? V_TRUE
                         : *start == 'f' ? V_FALSE
                                         : V_NULL,
                         (const char *)start, (size_t)(j->p - start)};
    } else {
        return evbus__jscan_skip(j, depth); /* reports the error */
    }
    deliver(r, node, &v);
    return true;
}

static bool trails_agree(const evbus__match_scratch *s, uint32_t wa, uint32_t wb) {
    const mwit *a = &s->wit[wa], *b = &s->wit[wb];
    const uint32_t *x = s->trail + 2 * (size_t)a->trail_off;
    const uint32_t *y = s->trail + 2 * (size_t)b->trail_off;
    uint32_t i = 0, k = 0;
    while (i < a->trail_len && k < b->trail_len) {
        if (x[2 * i] == y[2 * k]) {
            if (x[2 * i + 1] != y[2 * k + 1])
                return false; /* same array, different elements */
            i++;
            k++;
        } else if (x[2 * i] < y[2 * k]) {
            i++;
        } else {
            k++;
        }
    }
    return true;
}

/* Whether one witness per condition can be chosen with no two of them in
 * different elements of one array. Usually no condition is constrained;
 * otherwise a small bounded search. Past the bounds, arrays flatten. */
static bool consistent(const evbus__matcher *m, const evbus__match_scratch *s, const mconj *cj) {
    uint32_t list[64], choice[64];
    int n = 0;
    if (s->overflow)
        return true;
    for (uint32_t i = 0; i < cj->pos_cnt; i++) {
        uint32_t c = m->ids[cj->pos_off + i];
        if (s->cond_free[c] == s->epoch)
            continue;
        if (n == 64)
            return true;
        list[n++] = c;
    }
    if (n <= 1)
        return true;
    int k = 0;
    unsigned budget = 4096;
    choice[0] = s->cond_whead[list[0]];
    while (k >= 0) {
        if (choice[k] == NONE32) {
            if (--k >= 0)
                choice[k] = s->wit[choice[k]].next;
            continue;
        }
        if (--budget == 0)
            return true;
        bool ok = true;
        for (int i = 0; i < k && ok; i++)
            ok = trails_agree(s, choice[i], choice[k]);
        if (!ok) {
            choice[k] = s->wit[choice[k]].next;
            continue;
        }
        if (k == n - 1)
            return true;
        k++;
        choice[k] = s->cond_whead[list[k]];
    }
    return false;
}

static bool conj_stamps_hold(const evbus__matcher *m, const evbus__match_scratch *s,
                             const mconj *cj) {
    for (uint32_t i = 0; i < cj->pos_cnt; i++)
        if (s->cond_stamp[m->ids[cj->pos_off + i]] != s->epoch)
            return false;
    for (uint32_t i = 0; i < cj->neg_cnt; i++)
        if (s->node_stamp[m->ids[cj->neg_off + i]] == s->epoch)
            return false;
    return true;
}

static bool conj_holds(const evbus__matcher *m, const evbus__match_scratch *s, const mconj *cj) {
    return conj_stamps_hold(m, s, cj) && consistent(m, s, cj);
}

static void report(const evbus__matcher *m, evbus__match_scratch *s, uint32_t ci,
                   evbus__match_cb cb, void *arg) {
    const mconj *cj = &m->conjs[ci];
    if (s->rule_stamp[cj->rule] == s->epoch || !conj_holds(m, s, cj))
        return;
    s->rule_stamp[cj->rule] = s->epoch;
    cb(arg, cj->rule);
}

static void begin(evbus__match_scratch *s) {
    const evbus__matcher *m = s->m;
    if (++s->epoch == 0) {
        /* Wrapped after 2^32 events: stale stamps could collide. */
        memset(s->cond_stamp, 0, (m->n_conds + 1) * sizeof(uint32_t));
        memset(s->node_stamp, 0, (m->n_nodes + 1) * sizeof(uint32_t));
        memset(s->rule_stamp, 0, (m->n_rules + 1) * sizeof(uint32_t));
        memset(s->cond_free, 0, (m->n_conds + 1) * sizeof(uint32_t));
        memset(s->cond_wstamp, 0, (m->n_conds + 1) * sizeof(uint32_t));
        s->epoch = 1;
    }
    s->n_fired = 0;
    s->n_wit = 0;
    s->n_trail = 0;
    s->overflow = false;
    s->why = NULL;
    s->err_off = 0;
}

static void finish(const evbus__matcher *m, evbus__match_scratch *s, evbus__match_cb cb,
                   void *arg) {
    for (uint32_t i = 0; i < s->n_fired; i++) {
        const mcond *c = &m->conds[s->fired[i]];
        for (uint32_t k = 0; k < c->conj_cnt; k++)
            report(m, s, m->ids[c->conj_off + k], cb, arg);
    }
    for (uint32_t i = 0; i < m->n_always; i++)
        report(m, s, m->always[i], cb, arg);
}

static bool run_json(run *r, uint32_t node, const char *json, size_t len, bool top) {
    r->j = (evbus__jscan){(const unsigned char *)json, (const unsigned char *)json,
                          (const unsigned char *)json + len, NULL, 0};
    if (top && evbus__jscan_ws(&r->j) != '{')
        return evbus__jscan_fail(&r->j, "an event is a JSON object");
    if (!walk(r, node, 0))
        return false;
    if (evbus__jscan_ws(&r->j) != 0 || r->j.p < r->j.end)
        return evbus__jscan_fail(&r->j, "trailing characters after the JSON value");
    return true;
}

static evbus_err failed(evbus__match_scratch *s, const evbus__jscan *j) {
    s->why = j->why ? j->why : "invalid JSON";
    s->err_off = j->err_off;
    /* Nothing was reported; leave no half-marked state behind. */
    s->n_fired = 0;
    return EVBUS_EPROTO;
}

/* Sets up one match call. The trail array is written before it is read, so
 * the run is not cleared as a whole. */
static void start_run(run *r, const evbus__matcher *m, evbus__match_scratch *s, bool checked) {
    begin(s);
    r->checked = checked;
    r->m = m;
    r->s = s;
    r->n_arr = 0;
    r->next_array = 0;
    r->snap_off = NONE32;
    r->j.why = NULL;
}

static evbus_err match_json(const evbus__matcher *m, evbus__match_scratch *s, const char *json,
                            size_t len, bool checked, evbus__match_cb cb, void *arg) {
    if (!m || !s || s->m != m || (!json && len) || !cb)
        return EVBUS_EINVAL;
    run r;
    start_run(&r, m, s, checked);
    if (!run_json(&r, 0, json ? json : "", len, true))
        return failed(s, &r.j);
    finish(m, s, cb, arg);
    return EVBUS_OK;
}

evbus_err evbus__matcher_match_json(const evbus__matcher *m, evbus__match_scratch *s,
                                    const char *json, size_t len, evbus__match_cb cb, void *arg) {
    return match_json(m, s, json, len, false, cb, arg);
}

evbus_err evbus__matcher_match_checked_json(const evbus__matcher *m, evbus__match_scratch *s,
                                            const char *json, size_t len, evbus__match_cb cb,
                                            void *arg) {
    return match_json(m, s, json, len, true, cb, arg);
}

static void envelope(run *r, const char *name, const char *value) {
    if (!value)
        return;
    uint32_t n = child(r->m, 0, name, strlen(name));
    if (n == NONE32 || r->m->nodes[n].field == NONE32)
        return;
    evbus__val v = {V_STR, value, strlen(value)};
    deliver(r, n, &v);
}

evbus_err evbus__matcher_match(const evbus__matcher *m, evbus__match_scratch *s,
                               const evbus__match_event *ev, evbus__match_cb cb, void *arg) {
    if (!m || !s || s->m != m || !ev || !cb)
        return EVBUS_EINVAL;
    run r;
    start_run(&r, m, s, ev->detail_checked);
    if (ev->detail) {
        uint32_t dn = child(m, 0, "detail", 6);
        if (dn != NONE32) {
            if (!run_json(&r, dn, ev->detail, ev->detail_len, false))
                return failed(s, &r.j);
        } else if (!ev->detail_checked) {
            evbus_err rc = evbus__json_validate(ev->detail, ev->detail_len, &r.j.why, &r.j.err_off);
            if (rc != EVBUS_OK)
                return failed(s, &r.j);
        }
    }
    envelope(&r, "version", ev->version);
    envelope(&r, "id", ev->id);
    envelope(&r, "source", ev->source);
    envelope(&r, "detail-type", ev->detail_type);
    envelope(&r, "time", ev->time);
    envelope(&r, "region", ev->region);
    envelope(&r, "account", ev->account);
    /* resources is an array like any other: its elements get a trail. */
    r.arr[0] = r.next_array++;
    r.n_arr = 1;
    for (size_t i = 0; i < ev->n_resources; i++) {
        r.arr[1] = (uint32_t)i;
        envelope(&r, "resources", ev->resources ? ev->resources[i] : NULL);
    }
    r.n_arr = 0;
    finish(m, s, cb, arg);
    return EVBUS_OK;
}

evbus_err evbus__match_scratch_new(const evbus__matcher *m, evbus__match_scratch **out) {
    if (!m || !out)
        return EVBUS_EINVAL;
    evbus__match_scratch *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    s->m = m;
    s->cond_stamp = calloc(m->n_conds + 1, sizeof(uint32_t));
    s->node_stamp = calloc(m->n_nodes + 1, sizeof(uint32_t));
    s->rule_stamp = calloc(m->n_rules + 1, sizeof(uint32_t));
    s->fired = calloc(m->n_conds + 1, sizeof(uint32_t));
    s->buf = malloc(BUF_SIZE);
    s->cond_free = calloc(m->n_conds + 1, sizeof(uint32_t));
    s->cond_wstamp = calloc(m->n_conds + 1, sizeof(uint32_t));
    s->cond_whead = calloc(m->n_conds + 1, sizeof(uint32_t));
    s->wit = malloc(EVBUS__WIT_MAX * sizeof *s->wit);
    s->trail = malloc(2 * sizeof(uint32_t) * EVBUS__TRAIL_MAX);
    if (!s->cond_stamp || !s->node_stamp || !s->rule_stamp || !s->fired || !s->buf ||
        !s->cond_free || !s->cond_wstamp || !s->cond_whead || !s->wit || !s->trail) {
        evbus__match_scratch_destroy(&s);
        return EVBUS_ENOMEM;
    }
    *out = s;
    return EVBUS_OK;
}

void evbus__match_scratch_destroy(evbus__match_scratch **ps) {
    if (!ps || !*ps)
        return;
    evbus__match_scratch *s = *ps;
    free(s->cond_stamp);
    free(s->node_stamp);
    free(s->rule_stamp);
    free(s->fired);
    free(s->buf);
    free(s->cond_free);
    free(s->cond_wstamp);
    free(s->cond_whead);
    free(s->wit);
    free(s->trail);
    free(s);
    *ps = NULL;
}

const char *evbus__match_scratch_error(const evbus__match_scratch *s, size_t *offset) {
    if (!s)
        return NULL;
    if (offset)
        *offset = s->err_off;
    return s->why;
}

/* The path of a node, "detail.customer.id", for explanations. */
static size_t node_path(const evbus__matcher *m, uint32_t node, char *buf, size_t cap) {
    uint32_t chain[EVBUS_MATCH_DEPTH_MAX];
    size_t n = 0, o = 0;
    while (node != 0 && node != NONE32 && n < EVBUS_MATCH_DEPTH_MAX) {
        chain[n++] = node;
        node = m->nodes[node].parent;
    }
    while (n--) {
        const mnode *x = &m->nodes[chain[n]];
        if (o && o + 1 < cap)
            buf[o++] = '.';
        for (uint32_t i = 0; i < x->key_len && o + 1 < cap; i++)
            buf[o++] = m->strs[x->key_off + i];
    }
    if (cap)
        buf[o < cap ? o : cap - 1] = '\0';
    return o;
}

evbus_err evbus__matcher_explain(const evbus__matcher *m, const evbus__match_scratch *s,
                                 uint32_t rule, char *buf, size_t buflen) {
    if (!m || !s || s->m != m || rule >= m->n_rules || !buf || !buflen)
        return EVBUS_EINVAL;
    /* The conjunction with the fewest failures is the one the author most
     * likely meant; report its first failing field in pattern order. */
    uint32_t best = NONE32, best_fail = UINT32_MAX;
    for (uint32_t k = 0; k < m->rule_conj_cnt[rule]; k++) {
        const mconj *cj = &m->conjs[m->rule_conj_off[rule] + k];
        uint32_t f = 0;
        for (uint32_t i = 0; i < cj->pos_cnt; i++)
            f += s->cond_stamp[m->ids[cj->pos_off + i]] != s->epoch;
        for (uint32_t i = 0; i < cj->neg_cnt; i++)
            f += s->node_stamp[m->ids[cj->neg_off + i]] == s->epoch;
        if (f < best_fail) {
            best_fail = f;
            best = m->rule_conj_off[rule] + k;
        }
    }
    if (best == NONE32) {
        snprintf(buf, buflen, "the rule matches");
        return EVBUS_OK;
    }
    if (best_fail == 0) {
        snprintf(buf, buflen,
                 consistent(m, s, &m->conjs[best])
                     ? "the rule matches"
                     : "every field matched, but in different elements of the "
                       "same array (fields must match within one element)");
        return EVBUS_OK;
    }
    const mconj *cj = &m->conjs[best];
    for (uint32_t i = 0; i < cj->pos_cnt; i++) {
        uint32_t c = m->ids[cj->pos_off + i];
        if (s->cond_stamp[c] == s->epoch)
            continue;
        const mcond *cd = &m->conds[c];
        bool present = s->node_stamp[cd->node] == s->epoch;
        snprintf(buf, buflen, "%.*s%s", (int)cd->desc_len, m->strs + cd->desc_off,
                 present ? " (no value of the event matched)" : " (the event has no value there)");
        return EVBUS_OK;
    }
    for (uint32_t i = 0; i < cj->neg_cnt; i++) {
        uint32_t n = m->ids[cj->neg_off + i];
        if (s->node_stamp[n] != s->epoch)
            continue;
        char path[512];
        node_path(m, n, path, sizeof path);
        snprintf(buf, buflen,
                 "%s: wanted no value (exists:false) but the event "
                 "has one",
                 path);
        return EVBUS_OK;
    }
    snprintf(buf, buflen, "the rule matches");
    return EVBUS_OK;
}
