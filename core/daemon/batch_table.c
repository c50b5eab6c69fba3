#include "batch_table.h"

#include <stdlib.h>
#include <string.h>

typedef struct slot {
    evbus_batch b; /* first: a header's address is its slot's */
    void *owner;   /* NULL while free */
    struct slot *next_free;
    int64_t freed_ms;
} slot;

/* Chunk k holds FIRST_CHUNK << k slots: a few chunks cover any table, so a
 * lookup compares against a handful of ranges. */
#define FIRST_CHUNK 256
#define MAX_CHUNKS  24

struct evbus__batch_table {
    slot *chunks[MAX_CHUNKS];
    size_t n_chunks;
    size_t fresh;    /* slots handed out of the newest chunk so far */
    size_t total;    /* slots ever handed out, in all chunks */
    slot *free_head; /* oldest free slot first */
    slot *free_tail;
};

static size_t chunk_len(size_t k) {
    return (size_t)FIRST_CHUNK << k;
}

evbus__batch_table *evbus__batch_table_new(void) {
    return calloc(1, sizeof(evbus__batch_table));
}

void evbus__batch_table_destroy(evbus__batch_table **tp) {
    if (!tp || !*tp)
        return;
    for (size_t k = 0; k < (*tp)->n_chunks; k++)
        free((*tp)->chunks[k]);
    free(*tp);
    *tp = NULL;
}

static slot *fresh_slot(evbus__batch_table *t) {
    if (t->n_chunks == 0 || t->fresh == chunk_len(t->n_chunks - 1)) {
        if (t->n_chunks == MAX_CHUNKS)
            return NULL;
        slot *c = calloc(chunk_len(t->n_chunks), sizeof *c);
        if (!c)
            return NULL;
        t->chunks[t->n_chunks++] = c;
        t->fresh = 0;
    }
    t->total++;
    return &t->chunks[t->n_chunks - 1][t->fresh++];
}

static slot *pop_free(evbus__batch_table *t) {
    slot *s = t->free_head;
    t->free_head = s->next_free;
    if (!t->free_head)
        t->free_tail = NULL;
    s->next_free = NULL;
    return s;
}

evbus_batch *evbus__batch_table_take(evbus__batch_table *t, void *owner, int64_t now_ms) {
    slot *s = NULL;
    if (t->free_head && (now_ms - t->free_head->freed_ms >= EVBUS__BATCH_QUARANTINE_MS ||
                         t->total >= EVBUS__BATCH_TABLE_MAX))
        s = pop_free(t);
    if (!s)
        s = fresh_slot(t);
    if (!s && t->free_head)
        s = pop_free(t); /* out of memory for a new chunk: reuse early */
    if (!s)
        return NULL;
    memset(&s->b, 0, sizeof s->b);
    s->owner = owner;
    return &s->b;
}

void evbus__batch_table_release(evbus__batch_table *t, evbus_batch *b, int64_t now_ms) {
    slot *s = (slot *)b;
    memset(&s->b, 0, sizeof s->b);
    s->owner = NULL;
    s->freed_ms = now_ms;
    s->next_free = NULL;
    if (t->free_tail)
        t->free_tail->next_free = s;
    else
        t->free_head = s;
    t->free_tail = s;
}

evbus__batch_state evbus__batch_table_find(const evbus__batch_table *t, const evbus_batch *b,
                                           void **owner) {
    /* Integer arithmetic on the address: comparing pointers into different
     * objects is undefined, and the pointer may name nothing at all. */
    uintptr_t p = (uintptr_t)b;
    for (size_t k = 0; k < t->n_chunks; k++) {
        uintptr_t base = (uintptr_t)t->chunks[k];
        size_t handed = k + 1 == t->n_chunks ? t->fresh : chunk_len(k);
        if (p < base || p >= base + handed * sizeof(slot))
            continue;
        if ((p - base) % sizeof(slot) != 0)
            return EVBUS__BATCH_UNKNOWN;
        const slot *s = &t->chunks[k][(p - base) / sizeof(slot)];
        if (!s->owner)
            return EVBUS__BATCH_FINISHED;
        *owner = s->owner;
        return EVBUS__BATCH_LIVE;
    }
    return EVBUS__BATCH_UNKNOWN;
}
