/**
 * @file test_conformance.c
 * @brief Runs conformance.txt: EventBridge pattern semantics as a table.
 *
 * Every `match:` / `nomatch:` event is checked three ways: through
 * evbus__matcher_match_json, through evbus__matcher_match (the envelope
 * struct the router uses) when the event fits it, and, in the `all-at-once`
 * test, with every pattern of the table compiled into one matcher, so that
 * deduplication and anchoring across rules cannot change an answer. The
 * first two also run on text vouched for as valid (what evbusd does after
 * checking a detail at ingest), which skips without validating.
 */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

#define LINE_MAX_LEN 8192

typedef struct tline {
    int no;
    char kind[24];
    char *text;
} tline;

typedef struct table {
    tline *l;
    size_t n;
} table;

static table load_table(void) {
    table t = {NULL, 0};
    const char *dir = getenv("EVBUS_SRC_DIR");
    char path[1024];
    snprintf(path, sizeof path, "%s/tests/match/conformance.txt",
             dir ? dir : EVBUS_SRC_DIR_DEFAULT);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "cannot open %s", path);
    char buf[LINE_MAX_LEN];
    int no = 0;
    size_t cap = 0;
    while (fgets(buf, sizeof buf, f)) {
        no++;
        size_t len = strcspn(buf, "\n");
        buf[len] = '\0';
        if (buf[0] == '\0' || (buf[0] == '#' && strncmp(buf, "## ", 3)))
            continue;
        tline l = {no, "", NULL};
        const char *text;
        if (!strncmp(buf, "## ", 3)) {
            strcpy(l.kind, "section");
            text = buf + 3;
        } else {
            const char *colon = strchr(buf, ':');
            cr_assert_not_null(colon, "line %d: no kind", no);
            size_t kl = (size_t)(colon - buf);
            cr_assert_lt(kl, sizeof l.kind, "line %d: bad kind", no);
            memcpy(l.kind, buf, kl);
            l.kind[kl] = '\0';
            text = colon + 1;
            while (*text == ' ')
                text++;
        }
        l.text = strdup(text);
        if (t.n == cap) {
            cap = cap ? cap * 2 : 256;
            t.l = realloc(t.l, cap * sizeof *t.l);
        }
        t.l[t.n++] = l;
    }
    fclose(f);
    return t;
}

static void free_table(table *t) {
    for (size_t i = 0; i < t->n; i++)
        free(t->l[i].text);
    free(t->l);
    t->l = NULL;
    t->n = 0;
}

static void on_match(void *arg, uint32_t rule) {
    (void)rule;
    (*(int *)arg)++;
}

static const char *skip_ws(const char *c) {
    while (*c == ' ' || *c == '\t' || *c == '\n' || *c == '\r')
        c++;
    return c;
}

/* Past the string starting at c (at its opening quote). */
static const char *skip_string(const char *c) {
    for (c++; *c && *c != '"'; c++)
        if (*c == '\\' && c[1])
            c++;
    return *c ? c + 1 : c;
}

/* Past the (valid) JSON value starting at c. */
static const char *skip_value(const char *c) {
    if (*c == '"')
        return skip_string(c);
    if (*c != '{' && *c != '[')
        return c + strcspn(c, ",}] \t\n\r");
    int depth = 0;
    while (*c) {
        if (*c == '"') {
            c = skip_string(c);
            continue;
        }
        depth += (*c == '{' || *c == '[') - (*c == '}' || *c == ']');
        c++;
        if (depth == 0)
            break;
    }
    return c;
}

/* The text of the top-level member `key` of a (valid) JSON object, as
 * written: jansson would print numbers back differently (%.17g), and the
 * envelope API must see the same event as the JSON one. */
static bool raw_member(const char *json, const char *key, const char **at, size_t *len) {
    const char *c = skip_ws(json);
    if (*c != '{')
        return false;
    for (c = skip_ws(c + 1); *c == '"'; c = skip_ws(c + 1)) {
        const char *k = c + 1, *v = skip_string(c);
        bool found = (size_t)(v - 1 - k) == strlen(key) && !memcmp(k, key, strlen(key));
        v = skip_ws(skip_ws(v) + 1); /* past the colon */
        c = skip_value(v);
        if (found) {
            *at = v;
            *len = (size_t)(c - v);
            return true;
        }
        c = skip_ws(c);
        if (*c != ',')
            break;
    }
    return false;
}

/* The event as the router holds it, when it has that shape. */
static bool as_struct(const char *json, evbus__match_event *ev, char **detail, const char **res,
                      size_t res_cap, json_t **keep) {
    static const char *env[] = {"version", "id",     "source", "detail-type",
                                "time",    "region", "account"};
    json_t *o = json_loads(json, JSON_DECODE_ANY, NULL);
    const char *key;
    json_t *v;
    memset(ev, 0, sizeof *ev);
    *detail = NULL;
    *keep = o;
    if (!json_is_object(o))
        return false;
    json_object_foreach(o, key, v) {
        bool known = false;
        for (size_t i = 0; i < 7; i++) {
            if (!strcmp(key, env[i])) {
                if (!json_is_string(v))
                    return false;
                known = true;
            }
        }
        if (!strcmp(key, "resources")) {
            if (!json_is_array(v) || json_array_size(v) > res_cap)
                return false;
            for (size_t i = 0; i < json_array_size(v); i++) {
                if (!json_is_string(json_array_get(v, i)))
                    return false;
                res[i] = json_string_value(json_array_get(v, i));
            }
            ev->resources = res;
            ev->n_resources = json_array_size(v);
            known = true;
        }
        if (!strcmp(key, "detail")) {
            const char *at;
            size_t len;
            if (!raw_member(json, "detail", &at, &len))
                return false;
            *detail = strndup(at, len);
            ev->detail = *detail;
            ev->detail_len = len;
            known = true;
        }
        if (!known)
            return false;
    }
    ev->version = json_string_value(json_object_get(o, "version"));
    ev->id = json_string_value(json_object_get(o, "id"));
    ev->source = json_string_value(json_object_get(o, "source"));
    ev->detail_type = json_string_value(json_object_get(o, "detail-type"));
    ev->time = json_string_value(json_object_get(o, "time"));
    ev->region = json_string_value(json_object_get(o, "region"));
    ev->account = json_string_value(json_object_get(o, "account"));
    return true;
}

static char *generated(const char *kind, const char *arg) {
    int n = atoi(arg);
    char *p = malloc(65536);
    if (!strcmp(kind, "invalid-long") || !strcmp(kind, "valid-long")) {
        /* {"a":["xxx"]} is 10 characters plus the x's */
        strcpy(p, "{\"a\":[\"");
        size_t o = strlen(p);
        for (int i = 0; i < n - 10; i++)
            p[o++] = 'x';
        strcpy(p + o, "\"]}");
        return p;
    }
    /* invalid-or: n sibling fields each an $or of two, 2^n combinations */
    size_t o = 0;
    p[o++] = '{';
    for (int i = 0; i < n; i++)
        o += (size_t)sprintf(p + o, "%s\"f%d\":{\"$or\":[{\"a\":[\"1\"]},{\"b\":[\"2\"]}]}",
                             i ? "," : "", i);
    strcpy(p + o, "}");
    return p;
}

static int run_section(const table *t, const char *section) {
    bool in = false;
    int cases = 0;
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    char err[1024] = "";
    int pattern_line = 0;
    const char *pending_invalid_err = NULL;
    int invalid_line = 0;
    bool expect_error_line = false;

    for (size_t i = 0; i < t->n; i++) {
        const tline *l = &t->l[i];
        if (!strcmp(l->kind, "section")) {
            in = !strcmp(l->text, section);
            continue;
        }
        if (!in)
            continue;
        if (!strcmp(l->kind, "pattern") || !strcmp(l->kind, "invalid") ||
            !strncmp(l->kind, "invalid-", 8) || !strcmp(l->kind, "valid-long")) {
            cr_assert(!expect_error_line, "line %d: error line missing", invalid_line);
            evbus__match_scratch_destroy(&s);
            evbus__matcher_destroy(&m);
            char *gen = NULL;
            const char *text = l->text;
            if (!strcmp(l->kind, "invalid-long") || !strcmp(l->kind, "invalid-or") ||
                !strcmp(l->kind, "valid-long"))
                text = gen = generated(l->kind, l->text);
            evbus__match_rule r = {"t", text};
            evbus_err rc = evbus__matcher_compile(&r, 1, &m, err, sizeof err);
            free(gen);
            if (!strcmp(l->kind, "pattern") || !strcmp(l->kind, "valid-long")) {
                cr_assert_eq(rc, EVBUS_OK, "line %d: pattern refused: %s", l->no, err);
                cr_assert_eq(evbus__match_scratch_new(m, &s), EVBUS_OK);
                pattern_line = l->no;
            } else {
                cr_assert_eq(rc, EVBUS_ECONFIG, "line %d: invalid pattern accepted", l->no);
                cr_assert_null(m);
                pending_invalid_err = err;
                invalid_line = l->no;
                expect_error_line = true;
            }
            cases++;
            continue;
        }
        if (!strcmp(l->kind, "error")) {
            cr_assert(expect_error_line, "line %d: error without invalid", l->no);
            cr_expect(strstr(pending_invalid_err, l->text) != NULL,
                      "line %d: message\n  %s\ndoes not contain\n  %s", invalid_line,
                      pending_invalid_err, l->text);
            cr_expect(!strncmp(pending_invalid_err, "rule \"t\": pattern", 17),
                      "line %d: message does not name the rule and path: %s", invalid_line,
                      pending_invalid_err);
            expect_error_line = false;
            continue;
        }
        bool want = !strcmp(l->kind, "match");
        cr_assert(want || !strcmp(l->kind, "nomatch"), "line %d: unknown kind %s", l->no, l->kind);
        cr_assert_not_null(m, "line %d: event without a pattern", l->no);
        int hits = 0;
        evbus_err rc = evbus__matcher_match_json(m, s, l->text, strlen(l->text), on_match, &hits);
        cr_assert_eq(rc, EVBUS_OK, "line %d: event refused: %s", l->no,
                     evbus__match_scratch_error(s, NULL));
        cr_expect_eq(hits, want ? 1 : 0, "line %d: %s expected (pattern line %d)", l->no,
                     want ? "match" : "no match", pattern_line);
        hits = 0;
        rc = evbus__matcher_match_checked_json(m, s, l->text, strlen(l->text), on_match, &hits);
        cr_assert_eq(rc, EVBUS_OK, "line %d: checked event refused", l->no);
        cr_expect_eq(hits, want ? 1 : 0, "line %d: checked JSON: %s expected (pattern line %d)",
                     l->no, want ? "match" : "no match", pattern_line);
        evbus__match_event ev;
        char *detail;
        const char *res[16];
        json_t *keep;
        if (as_struct(l->text, &ev, &detail, res, 16, &keep)) {
            hits = 0;
            rc = evbus__matcher_match(m, s, &ev, on_match, &hits);
            cr_assert_eq(rc, EVBUS_OK, "line %d: struct event refused", l->no);
            cr_expect_eq(hits, want ? 1 : 0, "line %d: envelope API: %s expected (pattern line %d)",
                         l->no, want ? "match" : "no match", pattern_line);
            hits = 0;
            ev.detail_checked = true;
            rc = evbus__matcher_match(m, s, &ev, on_match, &hits);
            cr_assert_eq(rc, EVBUS_OK, "line %d: checked struct event refused", l->no);
            cr_expect_eq(hits, want ? 1 : 0,
                         "line %d: envelope API, detail checked: %s expected (pattern line %d)",
                         l->no, want ? "match" : "no match", pattern_line);
        }
        free(detail);
        json_decref(keep);
        cases++;
    }
    cr_assert(!expect_error_line, "line %d: error line missing", invalid_line);
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
    return cases;
}

typedef struct section_param {
    char name[32];
} section_param;

static section_param sections[] = {
    {"exact"},
    {"and"},
    {"arrays"},
    {"prefix"},
    {"prefix-ignore-case"},
    {"suffix"},
    {"equals-ignore-case"},
    {"anything-but"},
    {"numeric"},
    {"exists"},
    {"cidr"},
    {"wildcard"},
    {"or"},
    {"empty-and-null"},
    {"unicode-and-escapes"},
    {"invalid"},
    {"limits"},
};

ParameterizedTestParameters(conformance, section) {
    return cr_make_param_array(section_param, sections, sizeof sections / sizeof sections[0]);
}

ParameterizedTest(section_param *p, conformance, section, .timeout = 60) {
    table t = load_table();
    int n = run_section(&t, p->name);
    free_table(&t);
    cr_assert_gt(n, 0, "section %s has no cases", p->name);
}

Test(conformance, every_section_is_run, .timeout = 30) {
    table t = load_table();
    size_t total = 0;
    for (size_t i = 0; i < t.n; i++) {
        if (strcmp(t.l[i].kind, "section")) {
            total++;
            continue;
        }
        bool listed = false;
        for (size_t k = 0; k < sizeof sections / sizeof sections[0]; k++)
            listed |= !strcmp(sections[k].name, t.l[i].text);
        cr_expect(listed, "section %s is not in the test's list", t.l[i].text);
    }
    free_table(&t);
    cr_expect_gt(total, 300, "the table shrank: %zu lines", total);
}

typedef struct hitset {
    uint32_t *rules;
    size_t n;
} hitset;

static void collect(void *arg, uint32_t rule) {
    hitset *h = arg;
    h->rules[h->n++] = rule;
}

/* All patterns in one matcher: each event must match exactly the rules
 * whose pattern matches it alone. */
Test(conformance, all_at_once, .timeout = 120) {
    table t = load_table();
    evbus__match_rule *rules = calloc(t.n, sizeof *rules);
    size_t nr = 0;
    for (size_t i = 0; i < t.n; i++)
        if (!strcmp(t.l[i].kind, "pattern"))
            rules[nr++] = (evbus__match_rule){"r", t.l[i].text};
    evbus__matcher *all = NULL;
    char err[512];
    cr_assert_eq(evbus__matcher_compile(rules, nr, &all, err, sizeof err), EVBUS_OK, "%s", err);
    evbus__match_scratch *sa = NULL;
    cr_assert_eq(evbus__match_scratch_new(all, &sa), EVBUS_OK);
    evbus__matcher **one = calloc(nr, sizeof *one);
    evbus__match_scratch **os = calloc(nr, sizeof *os);
    for (size_t r = 0; r < nr; r++) {
        cr_assert_eq(evbus__matcher_compile(&rules[r], 1, &one[r], err, sizeof err), EVBUS_OK);
        cr_assert_eq(evbus__match_scratch_new(one[r], &os[r]), EVBUS_OK);
    }
    hitset h = {calloc(nr + 1, sizeof(uint32_t)), 0};
    char *want = calloc(nr, 1), *got = calloc(nr, 1);
    for (size_t i = 0; i < t.n; i++) {
        if (strcmp(t.l[i].kind, "match") && strcmp(t.l[i].kind, "nomatch"))
            continue;
        const char *ev = t.l[i].text;
        h.n = 0;
        cr_assert_eq(evbus__matcher_match_json(all, sa, ev, strlen(ev), collect, &h), EVBUS_OK);
        memset(got, 0, nr);
        for (size_t k = 0; k < h.n; k++) {
            cr_expect_eq(got[h.rules[k]], 0, "line %d: rule %u reported twice", t.l[i].no,
                         h.rules[k]);
            got[h.rules[k]] = 1;
        }
        for (size_t r = 0; r < nr; r++) {
            int hits = 0;
            cr_assert_eq(evbus__matcher_match_json(one[r], os[r], ev, strlen(ev), on_match, &hits),
                         EVBUS_OK);
            want[r] = hits > 0;
            cr_expect_eq(got[r], want[r], "line %d: rule %zu (%s): %d alone, %d together",
                         t.l[i].no, r, rules[r].pattern_json, want[r], got[r]);
        }
    }
    for (size_t r = 0; r < nr; r++) {
        evbus__match_scratch_destroy(&os[r]);
        evbus__matcher_destroy(&one[r]);
    }
    evbus__match_scratch_destroy(&sa);
    evbus__matcher_destroy(&all);
    free(one);
    free(os);
    free(h.rules);
    free(want);
    free(got);
    free(rules);
    free_table(&t);
    cr_assert_null(all);
}
