/* A bump allocator for memory that lives exactly as long as one batch: the
 * ingest loop decodes every request of a drain into it and releases it all
 * at once, instead of one malloc/free per decoded string. */
#ifndef EVBUS_ARENA_H
#define EVBUS_ARENA_H

#include <stddef.h>

typedef struct evbus__arena_chunk evbus__arena_chunk;

typedef struct evbus__arena {
    evbus__arena_chunk *head; /* current chunk; older ones follow */
    size_t chunk_size;
} evbus__arena;

/* Initialises an empty arena whose chunks are at least chunk_size bytes. A
 * zeroed arena is valid too, with 64 KiB chunks. */
void evbus__arena_init(evbus__arena *a, size_t chunk_size);

/* Returns n bytes aligned for any type, valid until the next reset; NULL when
 * out of memory. */
void *evbus__arena_alloc(evbus__arena *a, size_t n);

/* Copies s[0..len) and a NUL into the arena; NULL when out of memory. */
char *evbus__arena_strdup(evbus__arena *a, const char *s, size_t len);

/* Releases everything allocated; keeps one chunk for reuse. */
void evbus__arena_reset(evbus__arena *a);

/* Releases everything, including the kept chunk. */
void evbus__arena_destroy(evbus__arena *a);

#endif
