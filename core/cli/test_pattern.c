/**
 * @file test_pattern.c
 * @brief `evbus test-pattern PATTERN EVENT`: try one pattern on one event,
 * like EventBridge's TestEventPattern, with grep's exit codes so that it
 * fits in scripts: 0 match, 1 no match, 2 invalid input.
 *
 * Output: the first line is `match`, `no match`, `invalid pattern` or
 * `invalid event`; for the last three a second line says why.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "match.h"

#define INPUT_MAX (16u << 20)

/* Read all of `f` into a NUL-terminated buffer the caller frees. */
static char *slurp(FILE *f, size_t *len) {
    size_t cap = 4096, n = 0;
    char *b = malloc(cap);
    if (!b)
        return NULL;
    for (;;) {
        if (n + 1 >= cap) {
            if (cap >= INPUT_MAX) {
                free(b);
                errno = EFBIG;
                return NULL;
            }
            char *nb = realloc(b, cap * 2);
            if (!nb) {
                free(b);
                return NULL;
            }
            b = nb;
            cap *= 2;
        }
        size_t r = fread(b + n, 1, cap - n - 1, f);
        n += r;
        if (r == 0) {
            if (ferror(f)) {
                free(b);
                return NULL;
            }
            break;
        }
    }
    b[n] = '\0';
    *len = n;
    return b;
}

/* An argument: inline JSON, @file, or - for stdin. */
static char *load(const char *what, const char *arg, bool *stdin_used, size_t *len) {
    char *text = NULL;
    if (!strcmp(arg, "-")) {
        if (*stdin_used) {
            fprintf(stderr, "evbus test-pattern: only one of PATTERN and "
                            "EVENT can be read from stdin\n");
            return NULL;
        }
        *stdin_used = true;
        text = slurp(stdin, len);
        if (!text)
            fprintf(stderr,
                    "evbus test-pattern: cannot read the %s from "
                    "stdin: %s\n",
                    what, strerror(errno));
        return text;
    }
    if (arg[0] == '@') {
        FILE *f = fopen(arg + 1, "rb");
        if (!f) {
            fprintf(stderr,
                    "evbus test-pattern: cannot open the %s file "
                    "%s: %s\n",
                    what, arg + 1, strerror(errno));
            return NULL;
        }
        text = slurp(f, len);
        if (!text)
            fprintf(stderr,
                    "evbus test-pattern: cannot read the %s file %s: "
                    "%s\n",
                    what, arg + 1, strerror(errno));
        fclose(f);
        return text;
    }
    *len = strlen(arg);
    text = malloc(*len + 1);
    if (text)
        memcpy(text, arg, *len + 1);
    return text;
}

static void line_col(const char *t, size_t off, size_t *line, size_t *col) {
    *line = 1;
    *col = 1;
    for (size_t i = 0; i < off && t[i]; i++) {
        if (t[i] == '\n') {
            (*line)++;
            *col = 1;
        } else {
            (*col)++;
        }
    }
}

static void on_match(void *arg, uint32_t rule) {
    (void)rule;
    *(bool *)arg = true;
}

int evbus__cmd_test_pattern(int argc, char **argv) {
    int rc = 2;
    bool stdin_used = false, matched = false;
    char *pattern = NULL, *event = NULL;
    size_t plen = 0, elen = 0;
    evbus__matcher *m = NULL;
    evbus__match_scratch *s = NULL;
    char err[1024];

    if (argc != 3 || !strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")) {
        fprintf(argc == 2 ? stdout : stderr,
                "usage: evbus test-pattern PATTERN EVENT\n"
                "  Test an EventBridge event pattern against one event.\n"
                "  PATTERN and EVENT are JSON, given inline, as @FILE, or - "
                "for stdin.\n"
                "  The event is a whole EventBridge event (source, "
                "detail-type, detail, ...).\n"
                "  Exit status: 0 match, 1 no match, 2 invalid pattern, "
                "event or usage.\n");
        return argc == 2 ? 0 : 2;
    }
    if (!strcmp(argv[1], "-") && !strcmp(argv[2], "-")) {
        fprintf(stderr, "evbus test-pattern: only one of PATTERN and EVENT can be read from "
                        "stdin\n");
        goto fail;
    }
    pattern = load("pattern", argv[1], &stdin_used, &plen);
    if (!pattern)
        goto fail;
    event = load("event", argv[2], &stdin_used, &elen);
    if (!event)
        goto fail;
    if (strlen(pattern) != plen) {
        printf("invalid pattern\npattern: contains a NUL byte\n");
        goto fail;
    }
    evbus__match_rule rule = {"test-pattern", pattern};
    evbus_err e = evbus__matcher_compile(&rule, 1, &m, err, sizeof err);
    if (e == EVBUS_ECONFIG) {
        /* "rule "test-pattern": pattern.x: why" -> "pattern.x: why" */
        const char *msg = strstr(err, ": ");
        printf("invalid pattern\n%s\n", msg ? msg + 2 : err);
        goto fail;
    }
    if (e != EVBUS_OK || evbus__match_scratch_new(m, &s) != EVBUS_OK) {
        fprintf(stderr, "evbus test-pattern: out of memory\n");
        goto fail;
    }
    e = evbus__matcher_match_json(m, s, event, elen, on_match, &matched);
    if (e == EVBUS_EPROTO) {
        size_t off = 0, line, col;
        const char *why = evbus__match_scratch_error(s, &off);
        line_col(event, off, &line, &col);
        printf("invalid event\nevent: %s at line %zu column %zu (byte %zu)\n", why, line, col, off);
        goto fail;
    }
    if (e != EVBUS_OK) {
        fprintf(stderr, "evbus test-pattern: matching failed (%d)\n", (int)e);
        goto fail;
    }
    if (matched) {
        printf("match\n");
        rc = 0;
    } else {
        char why[1024];
        evbus__matcher_explain(m, s, 0, why, sizeof why);
        printf("no match\n%s\n", why);
        rc = 1;
    }
fail:
    evbus__match_scratch_destroy(&s);
    evbus__matcher_destroy(&m);
    free(pattern);
    free(event);
    return rc;
}
