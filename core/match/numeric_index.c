/**
 * @file numeric_index.c
 * @brief Numeric ranges of one field as a centred interval tree.
 *
 * Tried one by one, ten thousand rules with different ranges on one field
 * would cost ten thousand comparisons per number in the event. The tree
 * finds the ranges holding a value in O(log n + hits): each node keeps the
 * ranges that contain its centre, sorted by lower bound ascending and by
 * upper bound descending, so a query stops at the first range that cannot
 * hold the value. Centres are median endpoints, so the depth is O(log n).
 * Bounds are closed intervals of number keys (evbus__num_key): an open
 * bound is moved to the next double, key + 1, which is exact.
 */
#include <stdlib.h>
#include <string.h>

#include "match_int.h"

static int cmp_i64(const void *x, const void *y) {
    int64_t a = *(const int64_t *)x, b = *(const int64_t *)y;
    return a < b ? -1 : a > b;
}

static int by_lo(const void *x, const void *y) {
    const mnum *a = x, *b = y;
    return a->a < b->a ? -1 : a->a > b->a;
}

static int by_hi_desc(const void *x, const void *y) {
    const mnum *a = x, *b = y;
    return a->b > b->b ? -1 : a->b < b->b;
}

static bool build(evbus__numidx *x, const mnum *items, size_t n, uint32_t *out) {
    bool ok = false;
    int64_t *ends = NULL;
    mnum *left = NULL, *right = NULL, *here = NULL;
    size_t nl = 0, nr = 0, nh = 0;
    uint32_t self;

    *out = NONE32;
    if (n == 0)
        return true;
    ends = malloc(2 * n * sizeof *ends);
    left = malloc(n * sizeof *left);
    right = malloc(n * sizeof *right);
    here = malloc(n * sizeof *here);
    if (!ends || !left || !right || !here)
        goto fail;
    for (size_t i = 0; i < n; i++) {
        ends[2 * i] = items[i].a;
        ends[2 * i + 1] = items[i].b;
    }
    qsort(ends, 2 * n, sizeof *ends, cmp_i64);
    /* The median endpoint belongs to some range, which therefore stays at
     * this node: every level makes progress, and each side keeps at most
     * half of the ranges. */
    int64_t center = ends[n];
    for (size_t i = 0; i < n; i++) {
        if (items[i].b < center)
            left[nl++] = items[i];
        else if (items[i].a > center)
            right[nr++] = items[i];
        else
            here[nh++] = items[i];
    }
    if (x->n_nodes == x->cap_nodes) {
        size_t cap = x->cap_nodes ? x->cap_nodes * 2 : 16;
        mntree *nn = realloc(x->nodes, cap * sizeof *nn);
        if (!nn)
            goto fail;
        x->nodes = nn;
        x->cap_nodes = cap;
    }
    self = x->n_nodes++;
    x->nodes[self].center = center;
    x->nodes[self].off = x->n;
    x->nodes[self].cnt = (uint32_t)nh;
    /* x->lo / x->hi were sized for every range of the field up front. */
    qsort(here, nh, sizeof *here, by_lo);
    memcpy(x->lo + x->n, here, nh * sizeof *here);
    qsort(here, nh, sizeof *here, by_hi_desc);
    memcpy(x->hi + x->n, here, nh * sizeof *here);
    x->n += (uint32_t)nh;
    uint32_t l, r;
    if (!build(x, left, nl, &l) || !build(x, right, nr, &r))
        goto fail;
    x->nodes[self].left = l;
    x->nodes[self].right = r;
    *out = self;
    ok = true;
fail:
    free(ends);
    free(left);
    free(right);
    free(here);
    return ok;
}

bool evbus__numidx_add(evbus__numidx *x, const mnum *items, size_t n, uint32_t *root) {
    mnum *lo = realloc(x->lo, (x->n + n + 1) * sizeof *lo);
    if (!lo)
        return false;
    x->lo = lo;
    mnum *hi = realloc(x->hi, (x->n + n + 1) * sizeof *hi);
    if (!hi)
        return false;
    x->hi = hi;
    return build(x, items, n, root);
}

void evbus__numidx_free(evbus__numidx *x) {
    free(x->nodes);
    free(x->lo);
    free(x->hi);
    memset(x, 0, sizeof *x);
}
