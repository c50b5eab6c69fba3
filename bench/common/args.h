/* Command-line values the benchmarks share: sizes ("1KiB"), lists of them
 * ("256,1KiB") and seconds ("0.5"). */
#ifndef BENCH_ARGS_H
#define BENCH_ARGS_H

#include <stddef.h>

#define BENCH_MAX_LIST 16

typedef struct bench_list {
    size_t v[BENCH_MAX_LIST];
    size_t n;
} bench_list;

/* A whole number, optionally followed by B, or K / k / KiB for 1024 times
 * it. 0 with *out set, or -1. */
int bench_parse_size(const char *s, size_t *out);

/* A comma-separated list of at most BENCH_MAX_LIST values in [min, max];
 * sizes: values may carry a unit (see bench_parse_size), else they must be
 * plain numbers. 0 with *l set, or -1. */
int bench_parse_list(const char *arg, bench_list *l, size_t min, size_t max, int sizes);

/* Seconds, more than 0 and at most an hour. 0 with *out set, or -1. */
int bench_parse_seconds(const char *s, double *out);

#endif
