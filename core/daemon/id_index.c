#include "id_index.h"

#include "common/util.h"

#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

typedef struct entry {
    uint64_t hash; /* 0: empty */
    uint64_t seq;
} entry;

struct evbus__id_index {
    entry *slots;
    size_t mask; /* capacity - 1; capacity is a power of two */
    size_t count;
};

uint64_t evbus__id_hash(const void *id, size_t len) {
    const unsigned char *p = id;
    uint64_t h = 0x9e3779b97f4a7c15ULL ^ (len * 0xff51afd7ed558ccdULL);
    while (len >= 8) {
        uint64_t w;
        memcpy(&w, p, 8);
        h = evbus__mix64(h ^ w) + 0x9e3779b97f4a7c15ULL;
        p += 8;
        len -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, p, len);
    h = evbus__mix64(h ^ w ^ ((uint64_t)len << 56));
    return h ? h : 1;
}

evbus__id_index *evbus__id_index_new(void) {
    evbus__id_index *ix = calloc(1, sizeof *ix);
    if (!ix)
        return NULL;
    ix->slots = calloc(1024, sizeof *ix->slots);
    if (!ix->slots) {
        free(ix);
        return NULL;
    }
    ix->mask = 1023;
    return ix;
}

void evbus__id_index_destroy(evbus__id_index **ixp) {
    if (!ixp || !*ixp)
        return;
    free((*ixp)->slots);
    free(*ixp);
    *ixp = NULL;
}

void evbus__id_index_prefetch(const evbus__id_index *ix, uint64_t hash) {
    __builtin_prefetch(&ix->slots[(size_t)hash & ix->mask]);
}

size_t evbus__id_index_count(const evbus__id_index *ix) {
    return ix->count;
}

static void insert_slot(entry *slots, size_t mask, uint64_t hash, uint64_t seq) {
    size_t i = (size_t)hash & mask;
    while (slots[i].hash)
        i = (i + 1) & mask;
    slots[i].hash = hash;
    slots[i].seq = seq;
}

/* Large tables are asked for transparent huge pages: lookups land anywhere
 * in the table, and 4 KiB pages would make most of them TLB misses too. */
static entry *alloc_slots(size_t cap) {
    size_t bytes = cap * sizeof(entry);
    if (bytes < (2u << 20))
        return calloc(cap, sizeof(entry));
    entry *slots = aligned_alloc(2u << 20, bytes);
    if (!slots)
        return NULL;
    madvise(slots, bytes, MADV_HUGEPAGE);
    memset(slots, 0, bytes);
    return slots;
}

static int grow(evbus__id_index *ix) {
    size_t cap = (ix->mask + 1) * 2;
    entry *slots = alloc_slots(cap);
    if (!slots)
        return -1;
    for (size_t i = 0; i <= ix->mask; i++)
        if (ix->slots[i].hash)
            insert_slot(slots, cap - 1, ix->slots[i].hash, ix->slots[i].seq);
    free(ix->slots);
    ix->slots = slots;
    ix->mask = cap - 1;
    return 0;
}

int evbus__id_index_put(evbus__id_index *ix, uint64_t hash, uint64_t seq) {
    /* Keep the load at most 1/2: a miss (the common case: a new id) probes
     * about 2.5 slots on average there, against 8.5 at 3/4. */
    if ((ix->count + 1) * 2 > ix->mask + 1 && grow(ix))
        return -1;
    insert_slot(ix->slots, ix->mask, hash, seq);
    ix->count++;
    return 0;
}

void evbus__id_index_del(evbus__id_index *ix, uint64_t hash, uint64_t seq) {
    size_t i = (size_t)hash & ix->mask;
    while (ix->slots[i].hash) {
        if (ix->slots[i].hash == hash && ix->slots[i].seq == seq)
            break;
        i = (i + 1) & ix->mask;
    }
    if (!ix->slots[i].hash)
        return;
    /* Backward-shift deletion: pull later members of the probe run into the
     * hole when their home slot allows it, so lookups never need tombstones. */
    size_t hole = i;
    for (size_t j = (i + 1) & ix->mask; ix->slots[j].hash; j = (j + 1) & ix->mask) {
        size_t home = (size_t)ix->slots[j].hash & ix->mask;
        /* Move j into the hole unless its home lies cyclically in (hole, j]. */
        int home_after_hole = hole <= j ? (home > hole && home <= j) : (home > hole || home <= j);
        if (!home_after_hole) {
            ix->slots[hole] = ix->slots[j];
            hole = j;
        }
    }
    ix->slots[hole].hash = 0;
    ix->slots[hole].seq = 0;
    ix->count--;
}

int evbus__id_index_next(const evbus__id_index *ix, uint64_t hash, size_t *cursor, uint64_t *seq) {
    size_t i = ((size_t)hash + *cursor) & ix->mask;
    while (ix->slots[i].hash) {
        (*cursor)++;
        if (ix->slots[i].hash == hash) {
            *seq = ix->slots[i].seq;
            return 1;
        }
        i = (i + 1) & ix->mask;
    }
    return 0;
}
