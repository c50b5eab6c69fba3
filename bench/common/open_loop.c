/* --open-loop: latency at fixed rates below the maximum (open_loop.h). */
#include "open_loop.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "host.h"
#include "load.h"

/* Medians of the runs that succeeded. */
static open_loop_side summarize(const open_loop_figures *f, unsigned runs) {
    double *v = calloc(4 * (size_t)(runs ? runs : 1), sizeof *v);
    open_loop_side s = {0};
    if (!v)
        return s;
    double *per_s = v, *p50 = v + runs, *p99 = v + 2 * runs, *p999 = v + 3 * runs;
    size_t k = 0;
    for (unsigned i = 0; i < runs; i++) {
        if (f[i].error[0])
            continue;
        per_s[k] = f[i].per_s;
        p50[k] = f[i].p50_ms;
        p99[k] = f[i].p99_ms;
        p999[k] = f[i].p999_ms;
        k++;
    }
    s.runs_ok = k;
    s.per_s = bench_median(per_s, k);
    s.p50_ms = bench_median(p50, k);
    s.p99_ms = bench_median(p99, k);
    s.p999_ms = bench_median(p999, k);
    free(v);
    return s;
}

static open_loop_row *new_row(open_loop_table *t) {
    if (t->n == t->cap) {
        size_t cap = t->cap ? t->cap * 2 : 16;
        open_loop_row *v = realloc(t->v, cap * sizeof *v);
        if (!v)
            return NULL;
        t->v = v;
        t->cap = cap;
    }
    open_loop_row *row = &t->v[t->n];
    memset(row, 0, sizeof *row);
    return row;
}

int open_loop_cell(open_loop_table *t, const char *label, double max_per_s,
                   const bench_list *percents, unsigned runs, int n_sides, open_loop_run_fn run,
                   void *ctx, uint32_t *nonce, int *failures) {
    open_loop_figures *f = calloc(2 * (size_t)(runs ? runs : 1), sizeof *f);
    if (!f)
        return -1;
    int rc = 0;
    for (size_t pi = 0; pi < percents->n && !bench_interrupted && max_per_s > 0; pi++) {
        open_loop_row *row = new_row(t);
        if (!row) {
            rc = -1;
            break;
        }
        snprintf(row->label, sizeof row->label, "%s", label);
        row->percent = (unsigned)percents->v[pi];
        row->rate = max_per_s * (double)row->percent / 100.0;
        memset(f, 0, 2 * runs * sizeof *f);
        unsigned done = 0;
        /* Sides in turns, run for run, so that both see the same drift of
         * the machine's load. */
        for (unsigned r = 0; r < runs && !bench_interrupted; r++, done++)
            for (int side = 0; side < n_sides && !bench_interrupted; side++)
                *failures += run(ctx, side, row->rate, (*nonce)++, &f[side * runs + r]) != 0;
        for (int side = 0; side < n_sides; side++)
            row->sides[side] = summarize(f + side * runs, done);
        t->n++;
    }
    free(f);
    return rc;
}

static void print_side(const open_loop_side *s) {
    char n[32];
    if (s->runs_ok)
        printf(" %10s %6.2f %6.2f %6.2f |", bench_fmt_count(s->per_s, n, sizeof n), s->p50_ms,
               s->p99_ms, s->p999_ms);
    else
        printf(" %10s %6s %6s %6s |", "failed", "-", "-", "-");
}

void open_loop_print(const open_loop_table *t, const char *label_head, const char *latency_to,
                     const char *const side_names[2]) {
    if (t->n == 0)
        return;
    int two = side_names[1] != NULL;
    printf("\nopen loop: requests sent on a fixed schedule at a percentage of the cell's "
           "maximum\n           above (its median events/s)%s\n"
           "latency:   in ms, from each request's scheduled send time to %s,\n"
           "           for the requests scheduled in the measured interval\n\n",
           two ? ", the same rate offered to both servers;" : ";", latency_to);
    printf("%s load %10s |", label_head, "offered/s");
    for (int side = 0; side < 1 + two; side++) {
        char head[40];
        snprintf(head, sizeof head, "%s/s", side_names[side]);
        printf(" %10s %6s %6s %6s |", head, "p50", "p99", "p99.9");
    }
    printf("\n");
    for (size_t i = 0; i < t->n; i++) {
        const open_loop_row *r = &t->v[i];
        char rate_s[32];
        printf("%s %3u%% %10s |", r->label, r->percent,
               bench_fmt_count(r->rate, rate_s, sizeof rate_s));
        for (int side = 0; side < 1 + two; side++)
            print_side(&r->sides[side]);
        printf("\n");
    }
    fflush(stdout);
}

void open_loop_free(open_loop_table *t) {
    free(t->v);
    memset(t, 0, sizeof *t);
}
