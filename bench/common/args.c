#include "args.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int bench_parse_size(const char *s, size_t *out) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s)
        return -1;
    if (strcmp(end, "") == 0 || strcmp(end, "B") == 0)
        ;
    else if (strcmp(end, "K") == 0 || strcmp(end, "k") == 0 || strcmp(end, "KiB") == 0)
        v *= 1024;
    else
        return -1;
    *out = (size_t)v;
    return 0;
}

int bench_parse_list(const char *arg, bench_list *l, size_t min, size_t max, int sizes) {
    char buf[256];
    snprintf(buf, sizeof buf, "%s", arg);
    l->n = 0;
    for (char *save = NULL, *tok = strtok_r(buf, ",", &save); tok;
         tok = strtok_r(NULL, ",", &save)) {
        size_t v;
        if (l->n == BENCH_MAX_LIST)
            return -1;
        if (sizes ? bench_parse_size(tok, &v) : bench_parse_size(tok, &v) || strpbrk(tok, "KkB"))
            return -1;
        if (v < min || v > max)
            return -1;
        l->v[l->n++] = v;
    }
    return l->n ? 0 : -1;
}

int bench_parse_seconds(const char *s, double *out) {
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || !(v > 0) || v > 3600)
        return -1;
    *out = v;
    return 0;
}
