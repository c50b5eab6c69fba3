/* The open-loop part of the benchmarks (--open-loop): once a cell's
 * closed-loop runs have found its maximum, the same producers send on a
 * fixed schedule at given percentages of that maximum (bench_load.rate), and
 * latency counts from each request's scheduled send time. A closed loop
 * saturates the server and measures its queue; this measures what a producer
 * sending at a steady rate below the maximum waits for. */
#ifndef BENCH_OPEN_LOOP_H
#define BENCH_OPEN_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "args.h"

/* What one run at one rate measured; error non-empty when it failed. */
typedef struct open_loop_figures {
    double per_s; /* events/s achieved */
    double p50_ms, p99_ms, p999_ms;
    char error[256];
} open_loop_figures;

/* Medians over the runs of one side that succeeded. */
typedef struct open_loop_side {
    size_t runs_ok;
    double per_s, p50_ms, p99_ms, p999_ms;
} open_loop_side;

typedef struct open_loop_row {
    char label[64]; /* the cell, as its closed-loop table names it */
    unsigned percent;
    double rate;             /* offered events/s, every side */
    open_loop_side sides[2]; /* runs_ok 0 for a side that did not run */
} open_loop_row;

typedef struct open_loop_table {
    open_loop_row *v;
    size_t n, cap;
} open_loop_table;

/* Runs one load at `rate` events/s against a freshly started server of
 * side `side` (0: evbusd; 1: the compared server). Returns 0, or -1 with
 * out->error set. */
typedef int (*open_loop_run_fn)(void *ctx, int side, double rate, uint32_t nonce,
                                open_loop_figures *out);

/* For each percentage in `percents`, offers percent * max_per_s / 100
 * events/s: `runs` runs of side 0, each followed by one of side 1 when
 * n_sides is 2. Appends a row per percentage, labelled `label`. *failures
 * counts the runs that failed. Returns 0, or -1 when out of memory. */
int open_loop_cell(open_loop_table *t, const char *label, double max_per_s,
                   const bench_list *percents, unsigned runs, int n_sides, open_loop_run_fn run,
                   void *ctx, uint32_t *nonce, int *failures);

/* Prints the table (nothing when it is empty): a heading line of what the
 * label columns hold, what the latency is measured to, and the sides' names
 * (side_names[1] NULL when only side 0 ran). */
void open_loop_print(const open_loop_table *t, const char *label_head, const char *latency_to,
                     const char *const side_names[2]);

void open_loop_free(open_loop_table *t);

#endif
