/* Small helpers: UUID generation, time formatting, big-endian keys, arena. */
#include <criterion/criterion.h>
#include <stdlib.h>
#include <string.h>

#include "common/arena.h"
#include "common/util.h"

TestSuite(util, .timeout = 30);

static int cmp(const void *a, const void *b) {
    return memcmp(a, b, 37);
}

Test(util, uuids_are_v4_and_unique_within_and_across_generators) {
    enum { N = 200000 };
    char(*ids)[37] = malloc(N * 2 * sizeof *ids);
    cr_assert_not_null(ids);
    evbus__uuid_gen g1, g2;
    evbus__uuid_gen_init(&g1);
    evbus__uuid_gen_init(&g2);
    for (int i = 0; i < N; i++) {
        evbus__uuid_next(&g1, ids[i]);
        evbus__uuid_next(&g2, ids[N + i]);
    }
    for (int i = 0; i < 2 * N; i += 9973) {
        const char *u = ids[i];
        cr_assert_eq(strlen(u), 36);
        cr_assert(u[8] == '-' && u[13] == '-' && u[18] == '-' && u[23] == '-', "%s", u);
        cr_assert_eq(u[14], '4', "version nibble: %s", u);
        cr_assert(strchr("89ab", u[19]), "variant: %s", u);
    }
    qsort(ids, 2 * N, sizeof *ids, cmp);
    for (int i = 1; i < 2 * N; i++)
        cr_assert_neq(memcmp(ids[i - 1], ids[i], 37), 0, "repeated id %s", ids[i]);
    free(ids);
}

Test(util, format_time_is_rfc3339_utc) {
    char out[21];
    evbus__format_time(1795456460123LL, out);
    cr_assert_str_eq(out, "2026-11-23T17:54:20Z");
    evbus__format_time(0, out);
    cr_assert_str_eq(out, "1970-01-01T00:00:00Z");
}

Test(util, big_endian_keys_sort_numerically) {
    unsigned char a[8], b[8];
    evbus__put_be64(a, 255);
    evbus__put_be64(b, 256);
    cr_assert_lt(memcmp(a, b, 8), 0);
    cr_assert_eq(evbus__get_be64(b), 256);
    evbus__put_be64(a, UINT64_MAX);
    cr_assert_eq(evbus__get_be64(a), UINT64_MAX);
}

Test(util, arena_aligns_and_reuses) {
    evbus__arena a;
    evbus__arena_init(&a, 256);
    char *p = evbus__arena_alloc(&a, 3);
    char *q = evbus__arena_alloc(&a, 8);
    cr_assert_eq((uintptr_t)q % _Alignof(max_align_t), 0);
    cr_assert_geq(q - p, 3);
    char *big = evbus__arena_alloc(&a, 10000); /* larger than a chunk */
    cr_assert_not_null(big);
    memset(big, 1, 10000);
    evbus__arena_reset(&a);
    cr_assert_not_null(evbus__arena_alloc(&a, 9000), "the large chunk is kept for reuse");
    evbus__arena_destroy(&a);
}
