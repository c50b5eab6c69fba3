/* An in-memory index from event id to sequence number, for deduplication.
 *
 * Why not an LMDB sub-database keyed by id: ids are mostly random UUIDs, and
 * inserting thousands of random keys per group commit dirties a different
 * B-tree page for nearly every event — about 4 KiB written per event, which
 * capped ingest near 80,000 events/s. The durable truth stays in LMDB (the
 * dedup_log, appended in sequence order: cheap); this index only maps a
 * 64-bit hash of the id to candidate sequences, and every hit is confirmed
 * against the stored id, so hash collisions cannot cause a false duplicate.
 * It is rebuilt from the dedup_log at start-up.
 *
 * Open addressing with linear probing and backward-shift deletion; one
 * thread (the writer) uses it. */
#ifndef EVBUS_ID_INDEX_H
#define EVBUS_ID_INDEX_H

#include <stddef.h>
#include <stdint.h>

typedef struct evbus__id_index evbus__id_index;

/* 64-bit hash of an id; never 0 (0 marks an empty slot). */
uint64_t evbus__id_hash(const void *id, size_t len);

/* NULL when out of memory. */
evbus__id_index *evbus__id_index_new(void);
void evbus__id_index_destroy(evbus__id_index **ix);

/* Adds (hash, seq). Returns 0, or -1 when out of memory. */
int evbus__id_index_put(evbus__id_index *ix, uint64_t hash, uint64_t seq);

/* Removes the entry (hash, seq) if present. */
void evbus__id_index_del(evbus__id_index *ix, uint64_t hash, uint64_t seq);

/* Iterates the sequences stored under `hash`: call with *cursor = 0 first;
 * returns 1 and sets *seq while there are more, 0 at the end. The index must
 * not change during the iteration. */
int evbus__id_index_next(const evbus__id_index *ix, uint64_t hash, size_t *cursor, uint64_t *seq);

/* Hints that `hash` will be looked up soon. Lookups are one cache (and often
 * TLB) miss each in a table of millions of ids; issuing the misses of the
 * next few events early overlaps them. */
void evbus__id_index_prefetch(const evbus__id_index *ix, uint64_t hash);

/* Number of entries. */
size_t evbus__id_index_count(const evbus__id_index *ix);

#endif
