/**
 * @file pattern_parse.c
 * @brief Pattern JSON to a rule in disjunctive normal form, refusing what
 * EventBridge refuses, with errors that name the rule and the path.
 *
 * jansson parses the text (patterns are parsed once, at start-up); the rest
 * is a recursive walk that keeps the JSON path of the node it is looking at,
 * so that every error can say where it is: `pattern.detail.amount[0].numeric`.
 *
 * A refused value does not end the walk: the field (or list element, or $or
 * branch) holding it is left out and its siblings are still checked, so that
 * one run reports up to PATTERN_ERRORS_MAX problems of a pattern, one per
 * line. Only siblings are checked after an error, never what contains the
 * bad value, so no error is a consequence of another.
 */
#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pattern.h"

/* ---- parser state ---- */

#define KEYS_MAX (EVBUS_MATCH_DEPTH_MAX - 1)

/* Problems of one pattern reported at once; the rest are not looked for. */
#define PATTERN_ERRORS_MAX 8

typedef struct pp {
    evbus__arena *a;
    const char *name;
    char path[1024];
    size_t plen;
    const char *keys[KEYS_MAX];
    size_t key_lens[KEYS_MAX];
    size_t n_keys;
    char *err;
    size_t errlen, errused;
    unsigned n_errors;
    evbus_err rc;
} pp;

/* Adds one problem (a line of err) and returns false. */
__attribute__((format(printf, 2, 3))) static bool fail(pp *p, const char *fmt, ...) {
    if (p->rc == EVBUS_ENOMEM || p->n_errors >= PATTERN_ERRORS_MAX)
        return false;
    p->rc = EVBUS_ECONFIG;
    p->n_errors++;
    if (p->err && p->errlen > p->errused + 1) {
        char *at = p->err + p->errused;
        size_t room = p->errlen - p->errused;
        int n = snprintf(at, room, "%srule \"%s\": %s: ", p->n_errors > 1 ? "\n" : "", p->name,
                         p->path);
        if (n >= 0 && (size_t)n < room) {
            va_list ap;
            va_start(ap, fmt);
            vsnprintf(at + n, room - (size_t)n, fmt, ap);
            va_end(ap);
        }
        p->errused += strlen(at);
    }
    return false;
}

/* After a part of the pattern was refused: whether to go on with its
 * siblings (not after running out of memory, nor once enough is said). */
static bool go_on(const pp *p) {
    return p->rc == EVBUS_ECONFIG && p->n_errors < PATTERN_ERRORS_MAX;
}

static bool oom(pp *p) {
    if (p->rc != EVBUS_ENOMEM) {
        p->rc = EVBUS_ENOMEM;
        if (p->err && p->errlen)
            snprintf(p->err, p->errlen, "rule \"%s\": out of memory", p->name);
    }
    return false;
}

__attribute__((format(printf, 2, 3))) static size_t push(pp *p, const char *fmt, ...) {
    size_t old = p->plen;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(p->path + p->plen, sizeof p->path - p->plen, fmt, ap);
    va_end(ap);
    if (n > 0) {
        p->plen += (size_t)n;
        if (p->plen >= sizeof p->path)
            p->plen = sizeof p->path - 1;
    }
    return old;
}

static void pop(pp *p, size_t old) {
    p->plen = old;
    p->path[old] = '\0';
}

static const char *type_name(const json_t *v) {
    switch (json_typeof(v)) {
    case JSON_OBJECT: return "an object";
    case JSON_ARRAY: return "a list";
    case JSON_STRING: return "a string";
    case JSON_INTEGER:
    case JSON_REAL: return "a number";
    case JSON_TRUE:
    case JSON_FALSE: return "a boolean";
    default: return "null";
    }
}

/* ---- DNF ---- */

static bool dnf_one(pp *p, pdnf *d, pterm *t) {
    d->c = evbus__arena_alloc(p->a, sizeof *d->c);
    if (!d->c)
        return oom(p);
    d->n = 1;
    d->c[0].n = t ? 1 : 0;
    d->c[0].t = NULL;
    if (t) {
        d->c[0].t = evbus__arena_alloc(p->a, sizeof(pterm *));
        if (!d->c[0].t)
            return oom(p);
        d->c[0].t[0] = t;
    }
    return true;
}

static bool dnf_cross(pp *p, pdnf *acc, const pdnf *b) {
    size_t n = acc->n * b->n;
    if (n > EVBUS_MATCH_COMBINATIONS_MAX)
        return fail(p,
                    "the pattern expands to %zu combinations ($or and "
                    "exists:false alternatives); the limit is %d",
                    n, EVBUS_MATCH_COMBINATIONS_MAX);
    pconj *c = evbus__arena_alloc(p->a, n * sizeof *c);
    if (!c)
        return oom(p);
    for (size_t i = 0; i < acc->n; i++) {
        for (size_t k = 0; k < b->n; k++) {
            pconj *o = &c[i * b->n + k];
            o->n = acc->c[i].n + b->c[k].n;
            o->t = evbus__arena_alloc(p->a, (o->n ? o->n : 1) * sizeof(pterm *));
            if (!o->t)
                return oom(p);
            /* An empty conjunction has no array at all. */
            if (acc->c[i].n)
                memcpy(o->t, acc->c[i].t, acc->c[i].n * sizeof(pterm *));
            if (b->c[k].n)
                memcpy(o->t + acc->c[i].n, b->c[k].t, b->c[k].n * sizeof(pterm *));
        }
    }
    acc->c = c;
    acc->n = n;
    return true;
}

static bool dnf_union(pp *p, pdnf *acc, const pdnf *b) {
    size_t n = acc->n + b->n;
    if (n > EVBUS_MATCH_COMBINATIONS_MAX)
        return fail(p, "the pattern expands to more than %d combinations",
                    EVBUS_MATCH_COMBINATIONS_MAX);
    pconj *c = evbus__arena_alloc(p->a, n * sizeof *c);
    if (!c)
        return oom(p);
    memcpy(c, acc->c, acc->n * sizeof *c);
    memcpy(c + acc->n, b->c, b->n * sizeof *c);
    acc->c = c;
    acc->n = n;
    return true;
}

/* ---- operands ---- */

/* The shortest decimal that reads back as d (%g style), into buf. */
static void shortest(double d, char *buf, size_t cap) {
    for (int digits = 1; digits <= 17; digits++) {
        snprintf(buf, cap, "%.*g", digits, d);
        if (strtod(buf, NULL) == d)
            return;
    }
}

/* A number operand. jansson keeps an integer exactly, so its text is known
 * and it may be inexact (more digits than its double: compared as text in
 * exact values, refused by anything-but and numeric); a real is only its
 * double, the text having been checked exact by inexact_reals(). */
static bool number_of(pp *p, const json_t *v, evbus__num *out, const char **txt, size_t *txtlen) {
    char buf[64];
    int n;
    if (json_is_integer(v)) {
        n = snprintf(buf, sizeof buf, "%" JSON_INTEGER_FORMAT, json_integer_value(v));
        if (n <= 0 || (size_t)n >= sizeof buf || !evbus__num_parse(buf, (size_t)n, out))
            return fail(p, "cannot read the number");
    } else {
        double d = json_real_value(v);
        shortest(d, buf, sizeof buf);
        n = (int)strlen(buf);
        memset(out, 0, sizeof *out);
        out->d = d;
        out->exact = isfinite(d);
        out->key = evbus__num_key(d);
        out->in_range = out->exact && fabs(d) <= EVBUS__NUM_RANGE;
    }
    if (txt) {
        *txt = evbus__arena_strdup(p->a, buf, (size_t)n);
        if (!*txt)
            return oom(p);
        *txtlen = (size_t)n;
    }
    return true;
}

/* The operand's bytes; equals-ignore-case operands are kept case-folded
 * (possibly longer or shorter than the text), as event values are folded
 * before they are compared with them. */
static bool str_of(pp *p, const json_t *v, bool fold, const char **s, size_t *len) {
    size_t n = json_string_length(v);
    char *d = evbus__arena_alloc(p->a, (fold ? EVBUS__FOLD_LEN_MAX(n) : n) + 1);
    if (!d)
        return oom(p);
    if (fold) {
        n = evbus__fold(json_string_value(v), n, d);
    } else {
        memcpy(d, json_string_value(v), n);
    }
    d[n] = '\0';
    *s = d;
    *len = n;
    return true;
}

/* A wildcard is often a plain prefix, suffix or value in disguise: those
 * kinds are found by hashing instead of being tried one by one. */
static bool wildcard_of(pp *p, const json_t *v, pmatch *m) {
    const char *pat = json_string_value(v);
    size_t len = json_string_length(v);
    const char *why = evbus__wildcard_check(pat, len);
    size_t stars = 0, star_at = 0;
    if (why)
        return fail(p, "%s", why);
    for (size_t i = 0; i < len; i++) {
        if (pat[i] == '\\') {
            i++;
        } else if (pat[i] == '*') {
            stars++;
            star_at = i;
        }
    }
    if (stars <= 1) {
        char *u = evbus__arena_alloc(p->a, len + 1);
        size_t n = 0;
        if (!u)
            return oom(p);
        for (size_t i = 0; i < len; i++) {
            if (pat[i] == '\\')
                u[n++] = pat[++i];
            else if (pat[i] != '*')
                u[n++] = pat[i];
        }
        u[n] = '\0';
        if (stars == 0) {
            m->kind = K_EXACT;
        } else if (star_at == len - 1 && len > 1) {
            m->kind = K_PREFIX;
        } else if (star_at == 0 && len > 1) {
            m->kind = K_SUFFIX;
        } else {
            goto general;
        }
        m->s = u;
        m->len = n;
        return true;
    }
general:
    m->kind = K_WILDCARD;
    return str_of(p, v, false, &m->s, &m->len);
}

static bool list_items(pp *p, const json_t *v, bool strings_only, bool fold, bool wildcard,
                       pmatch *m) {
    size_t n = json_is_array(v) ? json_array_size(v) : 1;
    if (json_is_array(v) && n == 0)
        return fail(p, "the list is empty");
    m->items = evbus__arena_alloc(p->a, n * sizeof *m->items);
    if (!m->items)
        return oom(p);
    m->n_items = n;
    int seen_type = -1;
    for (size_t i = 0; i < n; i++) {
        const json_t *e = json_is_array(v) ? json_array_get(v, i) : v;
        pitem *it = &m->items[i];
        size_t old = json_is_array(v) ? push(p, "[%zu]", i) : p->plen;
        if (json_is_string(e)) {
            it->type = V_STR;
            if (wildcard) {
                const char *why =
                    evbus__wildcard_check(json_string_value(e), json_string_length(e));
                if (why)
                    return fail(p, "%s", why);
            }
            if (!str_of(p, e, fold, &it->s, &it->len))
                return false;
        } else if (json_is_number(e) && !strings_only) {
            it->type = V_NUM;
            if (!number_of(p, e, &it->num, &it->s, &it->len))
                return false;
            if (!it->num.exact)
                return fail(p,
                            "%s has more digits than a binary64 double holds and cannot be "
                            "compared by value",
                            it->s);
        } else {
            return fail(p, "expected %s, not %s",
                        strings_only ? "a string" : "a string or a number", type_name(e));
        }
        if (seen_type >= 0 && (uint32_t)seen_type != it->type) {
            pop(p, old);
            return fail(p, "the list mixes strings and numbers");
        }
        seen_type = (int)it->type;
        pop(p, old);
    }
    return true;
}

static bool anything_but(pp *p, const json_t *v, pmatch *m) {
    if (json_is_string(v) || json_is_number(v) || json_is_array(v)) {
        m->kind = K_AB_VALUES;
        return list_items(p, v, false, false, false, m);
    }
    if (!json_is_object(v))
        return fail(p,
                    "anything-but takes a string, a number, a list of "
                    "them, or an object with prefix, suffix, "
                    "equals-ignore-case or wildcard; not %s",
                    type_name(v));
    if (json_object_size(v) != 1)
        return fail(p, "anything-but takes an object with exactly one of "
                       "prefix, suffix, equals-ignore-case or wildcard");
    const char *k = json_object_iter_key(json_object_iter((json_t *)v));
    const json_t *x = json_object_iter_value(json_object_iter((json_t *)v));
    size_t old = push(p, ".%s", k);
    bool ok;
    if (!strcmp(k, "prefix") || !strcmp(k, "suffix")) {
        if (!json_is_string(x))
            return fail(p, "%s takes a string, not %s", k, type_name(x));
        m->kind = k[0] == 'p' ? K_AB_PREFIX : K_AB_SUFFIX;
        ok = str_of(p, x, false, &m->s, &m->len);
    } else if (!strcmp(k, "equals-ignore-case")) {
        m->kind = K_AB_EIC;
        ok = list_items(p, x, true, true, false, m);
    } else if (!strcmp(k, "wildcard")) {
        m->kind = K_AB_WILDCARD;
        ok = list_items(p, x, true, false, true, m);
    } else {
        return fail(p,
                    "anything-but does not take \"%s\" (only prefix, "
                    "suffix, equals-ignore-case or wildcard)",
                    k);
    }
    pop(p, old);
    return ok;
}

static bool numeric(pp *p, const json_t *v, pmatch *m) {
    size_t n = json_is_array(v) ? json_array_size(v) : 0;
    if (n != 2 && n != 4)
        return fail(p, "numeric needs an operator and a number, or two of "
                       "them for a range, e.g. [\">\", 0, \"<=\", 5]");
    m->kind = K_NUMERIC;
    for (size_t i = 0; i < n; i += 2) {
        const json_t *op = json_array_get(v, i);
        const json_t *num = json_array_get(v, i + 1);
        size_t old = push(p, "[%zu]", i);
        if (!json_is_string(op))
            return fail(p, "expected an operator (=, <, <=, >, >=), not %s", type_name(op));
        const char *o = json_string_value(op);
        pop(p, old);
        old = push(p, "[%zu]", i + 1);
        if (!json_is_number(num))
            return fail(p, "numeric needs a number after \"%s\", not %s", o, type_name(num));
        evbus__num x;
        const char *text;
        size_t text_len;
        if (!number_of(p, num, &x, &text, &text_len))
            return false;
        if (!x.exact)
            return fail(p,
                        "%s has more digits than a binary64 double holds and cannot be "
                        "compared by value",
                        text);
        if (!x.in_range)
            return fail(p,
                        "%g is outside EventBridge's numeric range "
                        "[-5.0e9, 5.0e9]",
                        x.d);
        pop(p, old);
        old = push(p, "[%zu]", i);
        if (!strcmp(o, "=")) {
            if (n != 2)
                return fail(p, "\"=\" cannot be combined with a range");
            m->has_lo = m->has_hi = m->lo_incl = m->hi_incl = 1;
            m->lo = m->hi = x.key;
        } else if (!strcmp(o, ">") || !strcmp(o, ">=")) {
            if (m->has_lo)
                return fail(p, "numeric has two lower bounds");
            m->has_lo = 1;
            m->lo_incl = o[1] == '=';
            m->lo = x.key;
        } else if (!strcmp(o, "<") || !strcmp(o, "<=")) {
            if (m->has_hi)
                return fail(p, "numeric has two upper bounds");
            m->has_hi = 1;
            m->hi_incl = o[1] == '=';
            m->hi = x.key;
        } else {
            return fail(p,
                        "unknown numeric operator \"%s\" (use =, <, <=, "
                        ">, >=)",
                        o);
        }
        pop(p, old);
    }
    if (m->has_lo && m->has_hi && !(m->lo_incl && m->hi_incl) && m->lo >= m->hi)
        return fail(p, "the range is empty: the lower bound must be below "
                       "the upper bound");
    if (m->has_lo && m->has_hi && m->lo > m->hi)
        return fail(p, "the range is empty: the lower bound must be below "
                       "the upper bound");
    return true;
}

/* One operator object in a list of values. */
static bool op_object(pp *p, const json_t *v, pmatch *m, bool *absent, bool *present) {
    if (json_object_size(v) != 1)
        return fail(p, json_object_size(v) ? "an operator object holds "
                                             "exactly one operator"
                                           : "empty object");
    const char *k = json_object_iter_key(json_object_iter((json_t *)v));
    const json_t *x = json_object_iter_value(json_object_iter((json_t *)v));
    size_t old = push(p, ".%s", k);
    bool ok = true;

    if (!strcmp(k, "prefix") || !strcmp(k, "suffix")) {
        bool pre = k[0] == 'p';
        if (json_is_string(x)) {
            m->kind = pre ? K_PREFIX : K_SUFFIX;
            ok = str_of(p, x, false, &m->s, &m->len);
        } else if (json_is_object(x) && json_object_size(x) == 1 &&
                   json_is_string(json_object_get(x, "equals-ignore-case"))) {
            m->kind = pre ? K_PREFIX_EIC : K_SUFFIX_EIC;
            ok = str_of(p, json_object_get(x, "equals-ignore-case"), true, &m->s, &m->len);
        } else {
            return fail(p,
                        "%s takes a string or {\"equals-ignore-case\": "
                        "string}, not %s",
                        k, type_name(x));
        }
    } else if (!strcmp(k, "equals-ignore-case")) {
        if (!json_is_string(x))
            return fail(p, "equals-ignore-case takes a string, not %s", type_name(x));
        m->kind = K_EIC;
        ok = str_of(p, x, true, &m->s, &m->len);
    } else if (!strcmp(k, "anything-but")) {
        ok = anything_but(p, x, m);
    } else if (!strcmp(k, "numeric")) {
        ok = numeric(p, x, m);
    } else if (!strcmp(k, "exists")) {
        if (!json_is_boolean(x))
            return fail(p, "exists takes true or false, not %s", type_name(x));
        if (json_is_true(x)) {
            m->kind = K_EXISTS;
            *present = true;
        } else {
            m->kind = K_ABSENT;
            *absent = true;
        }
    } else if (!strcmp(k, "cidr")) {
        if (!json_is_string(x) ||
            !evbus__cidr_parse(json_string_value(x), json_string_length(x), &m->cidr))
            return fail(p, "cidr takes an IPv4 or IPv6 block such as "
                           "\"10.0.0.0/24\" or \"2001:db8::/32\"");
        m->kind = K_CIDR;
    } else if (!strcmp(k, "wildcard")) {
        if (!json_is_string(x))
            return fail(p, "wildcard takes a string, not %s", type_name(x));
        ok = wildcard_of(p, x, m);
    } else {
        return fail(p, "unrecognized operator \"%s\"", k);
    }
    if (ok)
        pop(p, old);
    return ok;
}

static const char *dotted(pp *p) {
    size_t n = 0;
    for (size_t i = 0; i < p->n_keys; i++)
        n += p->key_lens[i] + 1;
    char *d = evbus__arena_alloc(p->a, n + 1);
    if (!d)
        return NULL;
    size_t o = 0;
    for (size_t i = 0; i < p->n_keys; i++) {
        if (i)
            d[o++] = '.';
        memcpy(d + o, p->keys[i], p->key_lens[i]);
        o += p->key_lens[i];
    }
    d[o] = '\0';
    return d;
}

static pterm *new_term(pp *p, const json_t *list, bool absent) {
    pterm *t = evbus__arena_alloc(p->a, sizeof *t);
    const char *path = dotted(p);
    if (!t || !path)
        return NULL;
    memset(t, 0, sizeof *t);
    t->keys = evbus__arena_alloc(p->a, p->n_keys * sizeof(char *));
    t->key_lens = evbus__arena_alloc(p->a, p->n_keys * sizeof(size_t));
    if (!t->keys || !t->key_lens)
        return NULL;
    memcpy(t->keys, p->keys, p->n_keys * sizeof(char *));
    memcpy(t->key_lens, p->key_lens, p->n_keys * sizeof(size_t));
    t->n_keys = p->n_keys;
    t->absent = absent;
    char desc[256];
    if (absent) {
        snprintf(desc, sizeof desc, "%s: wanted no value (exists:false)", path);
    } else {
        char *js = json_dumps(list, JSON_COMPACT | JSON_ENCODE_ANY);
        snprintf(desc, sizeof desc, "%s: wanted %s%s", path, js ? js : "?",
                 js && strlen(js) > 160 ? " (truncated)" : "");
        if (js && strlen(js) > 160)
            snprintf(desc, sizeof desc, "%s: wanted %.160s... ", path, js);
        free(js);
    }
    t->desc = evbus__arena_strdup(p->a, desc, strlen(desc));
    return t->desc ? t : NULL;
}

static bool leaf(pp *p, const json_t *list, pdnf *out) {
    size_t n = json_array_size(list);
    bool absent = false, present = false;
    if (n == 0)
        return fail(p, "empty list of values");
    pmatch *ms = evbus__arena_alloc(p->a, n * sizeof *ms);
    if (!ms)
        return oom(p);
    size_t nm = 0;
    bool refused = false;
    for (size_t i = 0; i < n; i++) {
        const json_t *v = json_array_get(list, i);
        pmatch *m = &ms[nm];
        memset(m, 0, sizeof *m);
        size_t old = push(p, "[%zu]", i);
        bool ok = true;
        switch (json_typeof(v)) {
        case JSON_STRING:
            m->kind = K_EXACT;
            ok = str_of(p, v, false, &m->s, &m->len);
            break;
        case JSON_INTEGER:
        case JSON_REAL:
            m->kind = K_NUM;
            ok = number_of(p, v, &m->num, &m->s, &m->len);
            break;
        case JSON_TRUE:
        case JSON_FALSE:
        case JSON_NULL:
            m->kind = K_LIT;
            m->s = json_is_true(v) ? "t" : json_is_false(v) ? "f" : "n";
            m->len = 1;
            break;
        case JSON_OBJECT: ok = op_object(p, v, m, &absent, &present); break;
        case JSON_ARRAY: ok = fail(p, "a list of values cannot hold a list"); break;
        }
        pop(p, old);
        if (!ok) {
            if (!go_on(p))
                return false;
            refused = true; /* the other values may be wrong too */
            continue;
        }
        if (m->kind != K_ABSENT)
            nm++;
    }
    if (refused)
        return false;
    pterm *val = NULL, *abs = NULL;
    if (nm) {
        val = new_term(p, list, false);
        if (!val)
            return oom(p);
        val->m = ms;
        val->n_m = nm;
    }
    if (absent) {
        abs = new_term(p, list, true);
        if (!abs)
            return oom(p);
    }
    if (val && abs) {
        /* "absent, or one of these": two alternatives */
        pdnf b;
        if (!dnf_one(p, out, val) || !dnf_one(p, &b, abs))
            return false;
        return dnf_union(p, out, &b);
    }
    return dnf_one(p, out, val ? val : abs);
}

static bool is_or(const char *key, const json_t *v) {
    if (strcmp(key, "$or") || !json_is_array(v) || json_array_size(v) == 0)
        return false;
    for (size_t i = 0; i < json_array_size(v); i++)
        if (!json_is_object(json_array_get(v, i)))
            return false;
    return true;
}

static bool object(pp *p, const json_t *obj, pdnf *out) {
    const char *key;
    json_t *v;
    if (json_object_size(obj) == 0)
        return fail(p, "empty object");
    if (!dnf_one(p, out, NULL))
        return false;
    bool refused = false;
    json_object_foreach((json_t *)obj, key, v) {
        pdnf sub;
        if (is_or(key, v)) {
            size_t old = push(p, ".$or");
            size_t n = json_array_size(v);
            bool ok = n >= 2 || fail(p, "$or needs at least two sub-patterns");
            bool have = false, bad = false;
            for (size_t i = 0; ok && i < n; i++) {
                pdnf b;
                size_t o2 = push(p, "[%zu]", i);
                if (!object(p, json_array_get(v, i), &b)) {
                    pop(p, o2);
                    if (!go_on(p))
                        return false;
                    bad = true; /* look at the other branches still */
                    continue;
                }
                pop(p, o2);
                if (!have)
                    sub = b;
                else
                    ok = dnf_union(p, &sub, &b);
                have = true;
            }
            ok = ok && !bad && !refused && dnf_cross(p, out, &sub);
            pop(p, old);
            if (!ok && !go_on(p))
                return false;
            refused |= !ok;
            continue;
        }
        size_t old = push(p, ".%s", key);
        if (p->n_keys >= KEYS_MAX)
            return fail(p, "the pattern nests deeper than %d levels", KEYS_MAX);
        /* Terms outlive jansson's tree: keep the key in the arena. */
        p->key_lens[p->n_keys] = strlen(key);
        p->keys[p->n_keys] = evbus__arena_strdup(p->a, key, strlen(key));
        if (!p->keys[p->n_keys])
            return oom(p);
        p->n_keys++;
        bool ok;
        if (json_is_object(v))
            ok = object(p, v, &sub);
        else if (json_is_array(v))
            ok = leaf(p, v, &sub);
        else
            ok = fail(p,
                      "a field takes a list of values or an object, not "
                      "%s (write [%s])",
                      type_name(v), json_is_string(v) ? "\"...\"" : "...");
        ok = ok && !refused && dnf_cross(p, out, &sub);
        p->n_keys--;
        pop(p, old);
        if (!ok && !go_on(p))
            return false;
        refused |= !ok;
    }
    return !refused;
}

/* Refuses the real numbers of the pattern text that do not name their own
 * double (0.30000000000000003, 1e-400; see numeric.c): jansson keeps only
 * the double, so they would silently stand for another number. (event-ruler
 * compares such a number in an exact value as text, and refuses it in
 * anything-but and numeric.) Integers are kept exactly and handled where
 * they are used. */
static bool inexact_reals(pp *p, const char *text) {
    bool in_str = false, ok = true;
    for (const char *c = text; *c; c++) {
        if (in_str) {
            if (*c == '\\' && c[1])
                c++;
            else if (*c == '"')
                in_str = false;
            continue;
        }
        if (*c == '"') {
            in_str = true;
            continue;
        }
        if (*c != '-' && (*c < '0' || *c > '9'))
            continue;
        size_t n = strspn(c, "0123456789+-.eE");
        evbus__num x;
        if (strcspn(c, ".eE") < n && evbus__num_parse(c, n, &x) && !x.exact) {
            char near[32] = "";
            char tmp[64];
            if (n < sizeof tmp) {
                memcpy(tmp, c, n);
                tmp[n] = '\0';
                shortest(strtod(tmp, NULL), near, sizeof near);
            }
            ok = fail(p,
                      "the number %.*s has more digits than a binary64 double holds or is "
                      "beyond its range (it would read as %s): write the double's own "
                      "digits, or a string to compare text",
                      (int)(n < 40 ? n : 40), c, near);
            if (!go_on(p))
                return false;
        }
        c += n - 1;
    }
    return ok;
}

static size_t utf8_chars(const char *s) {
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xC0) != 0x80;
    return n;
}

evbus_err evbus__pattern_parse(evbus__arena *a, const char *name, const char *text,
                               size_t pattern_max, pdnf *out, char *err, size_t errlen) {
    pp p;
    json_error_t je;
    json_t *root = NULL;

    memset(&p, 0, sizeof p);
    p.a = a;
    p.name = name ? name : "";
    p.err = err;
    p.errlen = errlen;
    push(&p, "pattern");

    size_t chars = utf8_chars(text);
    if (chars > pattern_max) {
        fail(&p, "the pattern is %zu characters; EventBridge's limit is %zu", chars, pattern_max);
        goto fail;
    }
    root = json_loads(text, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    if (!root) {
        fail(&p, "not valid JSON at line %d column %d: %s", je.line, je.column, je.text);
        goto fail;
    }
    if (!json_is_object(root)) {
        fail(&p, "a pattern is a JSON object, not %s", type_name(root));
        goto fail;
    }
    if (!inexact_reals(&p, text))
        goto fail;
    if (!object(&p, root, out))
        goto fail;
    json_decref(root);
    return EVBUS_OK;
fail:
    json_decref(root);
    return p.rc != EVBUS_OK ? p.rc : EVBUS_ECONFIG;
}
