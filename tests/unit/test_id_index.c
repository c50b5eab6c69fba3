/* The in-memory id index against a plain reference, with forced collisions:
 * backward-shift deletion must never lose or invent an entry. */
#include <criterion/criterion.h>
#include <stdlib.h>

#include "id_index.h"

TestSuite(id_index, .timeout = 30);

static size_t count_seqs(const evbus__id_index *ix, uint64_t hash, uint64_t want) {
    size_t cursor = 0, found = 0;
    uint64_t seq;
    while (evbus__id_index_next(ix, hash, &cursor, &seq))
        found += seq == want;
    return found;
}

Test(id_index, randomized_against_reference) {
    enum { N = 5000 };
    /* Few distinct hashes: long probe runs and many equal hashes. */
    static uint64_t hashes[N];
    static int present[N];
    evbus__id_index *ix = evbus__id_index_new();
    cr_assert_not_null(ix);
    srand(7);
    size_t live = 0;
    for (int round = 0; round < 60000; round++) {
        int i = rand() % N;
        if (!hashes[i])
            hashes[i] = 1 + (uint64_t)(rand() % 800) * 0x10001;
        if (present[i]) {
            evbus__id_index_del(ix, hashes[i], (uint64_t)i + 1);
            present[i] = 0;
            live--;
        } else {
            cr_assert_eq(evbus__id_index_put(ix, hashes[i], (uint64_t)i + 1), 0);
            present[i] = 1;
            live++;
        }
        if (round % 6000 == 0) {
            for (int j = 0; j < N; j++)
                if (hashes[j])
                    cr_assert_eq(count_seqs(ix, hashes[j], (uint64_t)j + 1), (size_t)present[j],
                                 "entry %d: expected %d copies", j, present[j]);
        }
    }
    cr_assert_eq(evbus__id_index_count(ix), live);
    for (int j = 0; j < N; j++)
        if (hashes[j])
            cr_assert_eq(count_seqs(ix, hashes[j], (uint64_t)j + 1), (size_t)present[j]);
    evbus__id_index_destroy(&ix);
    cr_assert_null(ix);
}

Test(id_index, hash_is_never_zero_and_depends_on_every_byte) {
    cr_assert_neq(evbus__id_hash("", 0), 0);
    uint64_t a = evbus__id_hash("0123456789abcdef0123456789abcdef0123", 36);
    uint64_t b = evbus__id_hash("0123456789abcdef0123456789abcdef0124", 36);
    uint64_t c = evbus__id_hash("1123456789abcdef0123456789abcdef0123", 36);
    cr_assert_neq(a, b);
    cr_assert_neq(a, c);
    cr_assert_neq(evbus__id_hash("ab", 2), evbus__id_hash("ab\0", 3));
}
