#include "arena.h"

#include <stdalign.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

struct evbus__arena_chunk {
    evbus__arena_chunk *next;
    size_t size, used;
    alignas(max_align_t) unsigned char data[];
};

void evbus__arena_init(evbus__arena *a, size_t chunk_size) {
    a->head = NULL;
    a->chunk_size = chunk_size;
}

void *evbus__arena_alloc(evbus__arena *a, size_t n) {
    const size_t align = alignof(max_align_t);
    n = (n + align - 1) & ~(align - 1);
    evbus__arena_chunk *c = a->head;
    if (!c || c->size - c->used < n) {
        size_t chunk = a->chunk_size ? a->chunk_size : 64 * 1024;
        size_t size = n > chunk ? n : chunk;
        c = malloc(sizeof *c + size);
        if (!c)
            return NULL;
        c->size = size;
        c->used = 0;
        c->next = a->head;
        a->head = c;
    }
    void *p = c->data + c->used;
    c->used += n;
    return p;
}

char *evbus__arena_strdup(evbus__arena *a, const char *s, size_t len) {
    char *d = evbus__arena_alloc(a, len + 1);
    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

void evbus__arena_reset(evbus__arena *a) {
    /* Keep the largest chunk: the next batch is likely the same size. */
    evbus__arena_chunk *keep = NULL;
    for (evbus__arena_chunk *c = a->head; c;) {
        evbus__arena_chunk *next = c->next;
        if (!keep || c->size > keep->size) {
            free(keep);
            keep = c;
        } else {
            free(c);
        }
        c = next;
    }
    if (keep) {
        keep->used = 0;
        keep->next = NULL;
    }
    a->head = keep;
}

void evbus__arena_destroy(evbus__arena *a) {
    evbus__arena_reset(a);
    free(a->head);
    a->head = NULL;
}
