/* The batch headers handed to plugins (`evbus_batch`), kept in a table the
 * dispatcher owns so that a plugin's report can be checked without reading
 * the memory its pointer names.
 *
 * A plugin reports results as (batch pointer, index). A buggy plugin may
 * report for a batch that has already finished (from a timer, or from an
 * HTTP completion after the batch's delivery_timeout), and the batch's
 * memory would then be gone. So headers live in chunks that are never freed
 * while the table lives: a pointer is looked up by address arithmetic alone,
 * and even a plugin that reads a finished header reads mapped memory (an
 * empty batch: no events). A freed header is reused only after it has been
 * free for EVBUS__BATCH_QUARANTINE_MS (oldest first), so that a late report
 * is recognised as late instead of being taken for a newer batch that got
 * the same address; beyond EVBUS__BATCH_TABLE_MAX headers the oldest free one
 * is reused early, which bounds the memory at a rate no real sink reaches.
 * Used by the delivery thread only. */
#ifndef EVBUS_BATCH_TABLE_H
#define EVBUS_BATCH_TABLE_H

#include <stdint.h>

#include "evbus/plugin.h"

#define EVBUS__BATCH_QUARANTINE_MS 10000
#define EVBUS__BATCH_TABLE_MAX     (1u << 17) /* 8 MiB of headers */

typedef struct evbus__batch_table evbus__batch_table;

/* What a pointer a plugin passed names. */
typedef enum evbus__batch_state {
    EVBUS__BATCH_UNKNOWN = 0, /* not a header of this table: never handed out */
    EVBUS__BATCH_FINISHED,    /* a header whose batch has finished */
    EVBUS__BATCH_LIVE,        /* a batch in flight; *owner says whose */
} evbus__batch_state;

/* An empty table; NULL when out of memory. Caller owns it
 * (evbus__batch_table_destroy()). */
evbus__batch_table *evbus__batch_table_new(void);

/* Frees every header; NULLs *t; accepts NULL. No plugin may hold one after. */
void evbus__batch_table_destroy(evbus__batch_table **t);

/* A zeroed header for a new batch of `owner` (non-NULL), valid until the
 * table is destroyed. `now_ms` is a monotonic clock. NULL when out of
 * memory. */
evbus_batch *evbus__batch_table_take(evbus__batch_table *t, void *owner, int64_t now_ms);

/* Marks the batch finished and empties its header (no events). */
void evbus__batch_table_release(evbus__batch_table *t, evbus_batch *b, int64_t now_ms);

/* What `b` names, without dereferencing it; for a live batch sets *owner. */
evbus__batch_state evbus__batch_table_find(const evbus__batch_table *t, const evbus_batch *b,
                                           void **owner);

#endif
