/**
 * @file bench_match.c
 * @brief evbus-bench-match: matching throughput for growing rule counts.
 *
 *   evbus-bench-match --events FILE --rules FILE [--counts 1,10,100,1000,10000]
 *                     [--runs 5] [--passes N] [--envelope | --checked]
 *                     [--quamina PATH]
 *
 * Events are JSON Lines (whole EventBridge events), rules one pattern a line;
 * the first N rules are compiled for each count N. Each run matches every
 * event `passes` times on one thread; the median run is reported, so that
 * one noisy run on a shared machine does not decide the figure.
 *
 * By default whole events are matched as JSON text (evbus__matcher_match_json,
 * what other matchers are measured on). --envelope splits each event first
 * (not timed) into the envelope fields and the detail text, as the router
 * holds it, and measures evbus__matcher_match. --checked matches whole
 * events as evbusd matches them: their text was validated once at ingest
 * (here: by evbus__json_check_object, not timed), so the parts no pattern
 * names are skipped without validating them again
 * (evbus__matcher_match_checked_json).
 *
 * With the quamina benchmark built (bench/match/build-quamina.sh, from
 * ../shared/peers), each rule count is also run through it right after
 * evbus's own runs, on the same files and counts, with GOMAXPROCS=1 (one
 * core, as here), and the row shows both and their ratio. It is found with
 * --quamina PATH, $EVBUS_QBENCH, or as qbench beside this program.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/json_check.h"
#include "match.h"

typedef struct lines {
    char **s;
    size_t *len;
    size_t n;
} lines;

static int read_lines(const char *path, lines *out) {
    FILE *f = fopen(path, "r");
    if (!f) {
        perror(path);
        return -1;
    }
    size_t cap = 0;
    char *line = NULL;
    size_t lcap = 0;
    ssize_t r;
    memset(out, 0, sizeof *out);
    while ((r = getline(&line, &lcap, f)) >= 0) {
        while (r > 0 && (line[r - 1] == '\n' || line[r - 1] == '\r'))
            line[--r] = '\0';
        if (r == 0)
            continue;
        if (out->n == cap) {
            cap = cap ? cap * 2 : 1024;
            out->s = realloc(out->s, cap * sizeof *out->s);
            out->len = realloc(out->len, cap * sizeof *out->len);
            if (!out->s || !out->len) {
                fclose(f);
                return -1;
            }
        }
        out->s[out->n] = strdup(line);
        out->len[out->n] = (size_t)r;
        out->n++;
    }
    free(line);
    fclose(f);
    return 0;
}

/* An event held as the router holds it after decoding: envelope strings,
 * resources and detail packed together in one block, so that the benchmark
 * does not measure cache misses on strings scattered over the heap. */
typedef struct split {
    evbus__match_event ev;
    char *block;
} split;

static const char *str_of(json_t *o, const char *k) {
    return json_string_value(json_object_get(o, k));
}

/* Copy s into *at (advancing it); NULL stays NULL. */
static const char *pack(char **at, const char *s) {
    if (!s)
        return NULL;
    size_t n = strlen(s) + 1;
    memcpy(*at, s, n);
    *at += n;
    return *at - n;
}

static int split_event(const char *line, split *out) {
    static const char *const env[] = {"version", "id",     "source", "detail-type",
                                      "time",    "region", "account"};
    json_error_t je;
    int rc = -1;
    char *detail = NULL;
    json_t *root = json_loads(line, 0, &je);
    memset(out, 0, sizeof *out);
    if (!json_is_object(root))
        goto fail;
    json_t *res = json_object_get(root, "resources");
    size_t nres = json_is_array(res) ? json_array_size(res) : 0;
    json_t *d = json_object_get(root, "detail");
    detail = d ? json_dumps(d, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
    size_t need = (nres + 1) * sizeof(char *) + strlen(line) + 64;
    out->block = malloc(need);
    if (!out->block)
        goto fail;
    const char **rp = (const char **)(void *)out->block;
    char *at = out->block + (nres + 1) * sizeof(char *);
    const char *e[7];
    for (size_t i = 0; i < 7; i++)
        e[i] = pack(&at, str_of(root, env[i]));
    for (size_t i = 0; i < nres; i++)
        rp[i] = pack(&at, json_string_value(json_array_get(res, i)));
    const char *dp = pack(&at, detail);
    out->ev = (evbus__match_event){
        e[0], e[1], e[2], e[3], e[4], e[5], e[6], rp, nres, dp, dp ? strlen(dp) : 0, false};
    rc = 0;
fail:
    free(detail);
    json_decref(root);
    return rc;
}

static double now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

static void count_hit(void *arg, uint32_t rule) {
    (void)rule;
    (*(size_t *)arg)++;
}

static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* The quamina benchmark: --quamina, $EVBUS_QBENCH, or qbench beside argv0. */
static char *find_qbench(const char *given, const char *argv0) {
    if (given)
        return access(given, X_OK) == 0 ? strdup(given) : NULL;
    const char *env = getenv("EVBUS_QBENCH");
    if (env && *env)
        return access(env, X_OK) == 0 ? strdup(env) : NULL;
    const char *slash = strrchr(argv0, '/');
    if (!slash)
        return NULL;
    char path[4096];
    snprintf(path, sizeof path, "%.*s/qbench", (int)(slash - argv0), argv0);
    return access(path, X_OK) == 0 ? strdup(path) : NULL;
}

/* quamina's median events/s for n rules (its row for n), or 0 when it
 * failed or refused a rule (it lacks some operators: its message is shown). */
static double run_qbench(const char *qbench, const char *events, const char *rules, size_t n,
                         int runs, int passes) {
    char cmd[8192];
    snprintf(cmd, sizeof cmd,
             "GOMAXPROCS=1 '%s' -events '%s' -rules '%s' -counts %zu -runs %d -passes %d", qbench,
             events, rules, n, runs, passes);
    FILE *f = popen(cmd, "r");
    if (!f)
        return 0;
    char line[512];
    double rate = 0;
    while (fgets(line, sizeof line, f)) {
        size_t got;
        double r;
        if (line[0] != '#' && sscanf(line, "%zu %lf", &got, &r) == 2 && got == n)
            rate = r;
    }
    return pclose(f) == 0 ? rate : 0;
}

static int usage(void) {
    fprintf(stderr, "usage: evbus-bench-match --events FILE --rules FILE "
                    "[--counts 1,10,100,1000,10000] [--runs 5] [--passes N] "
                    "[--envelope | --checked] [--quamina PATH]\n");
    return 2;
}

int main(int argc, char **argv) {
    const char *events_path = NULL, *rules_path = NULL, *qbench_arg = NULL;
    const char *counts_arg = "1,10,100,1000,10000";
    int runs = 5, passes = 0;
    int envelope = 0, checked = 0;
    split *sp = NULL;
    lines ev, ru;

    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--events") && i + 1 < argc)
            events_path = argv[++i];
        else if (!strcmp(argv[i], "--rules") && i + 1 < argc)
            rules_path = argv[++i];
        else if (!strcmp(argv[i], "--counts") && i + 1 < argc)
            counts_arg = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--passes") && i + 1 < argc)
            passes = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--envelope"))
            envelope = 1;
        else if (!strcmp(argv[i], "--checked"))
            checked = 1;
        else if (!strcmp(argv[i], "--quamina") && i + 1 < argc)
            qbench_arg = argv[++i];
        else
            return usage();
    }
    if (!events_path || !rules_path || runs < 1 || (envelope && checked))
        return usage();
    if (read_lines(events_path, &ev) || read_lines(rules_path, &ru))
        return 1;
    if (ev.n == 0) {
        fprintf(stderr, "no events in %s\n", events_path);
        return 1;
    }
    for (size_t i = 0; checked && i < ev.n; i++) {
        const char *why;
        size_t off;
        if (evbus__json_check_object(ev.s[i], ev.len[i], &why, &off) != 0) {
            fprintf(stderr, "event %zu: %s at byte %zu\n", i + 1, why, off);
            return 1;
        }
    }
    if (envelope) {
        sp = calloc(ev.n, sizeof *sp);
        for (size_t i = 0; i < ev.n; i++) {
            if (split_event(ev.s[i], &sp[i]) != 0) {
                fprintf(stderr, "event %zu: not a JSON object\n", i + 1);
                return 1;
            }
        }
    }
    size_t bytes = 0;
    for (size_t i = 0; i < ev.n; i++)
        bytes += ev.len[i];
    if (passes < 1)
        passes = ev.n >= 200000 ? 1 : (int)(200000 / ev.n) + 1;
    printf("# %zu events (%.0f bytes avg), %zu rules available, %d runs of %d passes, median; "
           "%s\n",
           ev.n, (double)bytes / (double)ev.n, ru.n, runs, passes,
           envelope  ? "envelope + detail (evbus__matcher_match)"
           : checked ? "whole JSON events validated before (evbus__matcher_match_checked_json)"
                     : "whole JSON events (evbus__matcher_match_json)");
    char *qbench = find_qbench(qbench_arg, argv[0]);
    if (qbench_arg && !qbench) {
        fprintf(stderr, "%s: not an executable (build it with bench/match/build-quamina.sh)\n",
                qbench_arg);
        return 2;
    }
    if (qbench)
        printf("# side by side: quamina (%s, GOMAXPROCS=1) on the same files, after each row\n",
               qbench);
    printf("%8s %12s %10s %10s %12s %12s", "rules", "events/s", "ns/event", "hits/event",
           "memory_B", "compile_ms");
    if (qbench)
        printf(" %12s %8s", "quamina/s", "ratio");
    printf("\n");

    char *counts = strdup(counts_arg);
    for (char *tok = strtok(counts, ","); tok; tok = strtok(NULL, ",")) {
        size_t n = strtoul(tok, NULL, 10);
        if (n > ru.n) {
            printf("%8zu (only %zu rules in the file: skipped)\n", n, ru.n);
            continue;
        }
        evbus__match_rule *rules = calloc(n ? n : 1, sizeof *rules);
        for (size_t i = 0; i < n; i++)
            rules[i] = (evbus__match_rule){"bench", ru.s[i]};
        evbus__matcher *m = NULL;
        evbus__match_scratch *s = NULL;
        char err[512];
        double t0 = now();
        if (evbus__matcher_compile(rules, n, &m, err, sizeof err) != EVBUS_OK) {
            fprintf(stderr, "compile: %s\n", err);
            return 1;
        }
        double compile_ms = (now() - t0) * 1e3;
        if (evbus__match_scratch_new(m, &s) != EVBUS_OK)
            return 1;
        double *rate = calloc((size_t)runs, sizeof *rate);
        size_t hits = 0;
        for (int r = 0; r < runs; r++) {
            hits = 0;
            double a = now();
            for (int p = 0; p < passes; p++) {
                for (size_t i = 0; i < ev.n; i++) {
                    evbus_err rc =
                        envelope ? evbus__matcher_match(m, s, &sp[i].ev, count_hit, &hits)
                        : checked
                            ? evbus__matcher_match_checked_json(m, s, ev.s[i], ev.len[i], count_hit,
                                                                &hits)
                            : evbus__matcher_match_json(m, s, ev.s[i], ev.len[i], count_hit, &hits);
                    if (rc != EVBUS_OK) {
                        fprintf(stderr, "event %zu: %s\n", i + 1,
                                evbus__match_scratch_error(s, NULL));
                        return 1;
                    }
                }
            }
            rate[r] = (double)ev.n * passes / (now() - a);
        }
        qsort(rate, (size_t)runs, sizeof *rate, cmp_d);
        double med = rate[runs / 2];
        printf("%8zu %12.0f %10.1f %10.3f %12zu %12.1f", n, med, 1e9 / med,
               (double)hits / ((double)ev.n * passes), evbus__matcher_memory(m), compile_ms);
        if (qbench) {
            fflush(stdout);
            double q = run_qbench(qbench, events_path, rules_path, n, runs, passes);
            if (q > 0)
                printf(" %12.0f %7.2fx", q, med / q);
            else
                printf(" %12s %8s", "failed", "-");
        }
        printf("\n");
        fflush(stdout);
        free(rate);
        evbus__match_scratch_destroy(&s);
        evbus__matcher_destroy(&m);
        free(rules);
    }
    free(counts);
    free(qbench);
    return 0;
}
