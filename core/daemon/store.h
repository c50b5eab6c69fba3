/* The durable store: one LMDB environment in the data directory, with named
 * sub-databases keyed by fixed-width big-endian integers so they sort
 * numerically:
 *
 *   events     seq(8)                  -> serialized evbus.v1.Event
 *   dedup_log  seq(8)                  -> accepted_ms(8) event id
 *   pending    target(4) seq(8)        -> accepted_ms(8) [owed(4)]: one per matched target;
 *                                         owed: policy replicate, the regions that still
 *                                         need the event (absent: all of them)
 *   retry      target(4) seq(8)        -> attempts(4) due_ms(8): a scheduled retry
 *   dlq        target(4) seq(8)        -> attempts(4) dead_ms(8) reason [NUL regions(4)]
 *   state      name                    -> region state, routing controls
 *   meta       name                    -> counters such as "next_seq"
 *
 * Ids are looked up through an in-memory hash index rebuilt from dedup_log at
 * open (id_index.h says why it is not an LMDB sub-database).
 *
 * Only the ingest/writer thread writes. A second process cannot open the same
 * data directory: it is locked with flock() for the life of the store. */
#ifndef EVBUS_STORE_H
#define EVBUS_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evbus/error.h"

typedef struct evbus__store evbus__store;

/* What the store did with one item of an append. */
typedef enum evbus__store_outcome {
    EVBUS__STORED = 1,    /* new: committed under seq */
    EVBUS__DUPLICATE = 2, /* id already stored under seq */
    EVBUS__FULL = 3,      /* not stored: the map is full */
    EVBUS__BACKLOG = 4,   /* not stored: max_backlog events are waiting */
    EVBUS__DISK_FULL = 5, /* not stored: the file system holding the store is full */
    EVBUS__IO_ERROR = 6,  /* not stored: writing to the store failed */
    EVBUS__FULL_IDS = 7,  /* not stored: the map or disk is full, mostly of ids kept for
                             deduplication (the oldest are being forgotten early) */
} evbus__store_outcome;

typedef struct evbus__store_item {
    /* in */
    const char *id;
    size_t id_len;
    const void *record;
    size_t record_len;
    const uint32_t *targets; /* targets the event is routed to, written as pending
                                entries in the same transaction when it is stored */
    size_t n_targets;
    /* out */
    evbus__store_outcome outcome;
    uint64_t seq;
} evbus__store_item;

/* What the writer records about one delivery attempt of (target, seq). */
typedef enum evbus__delivery {
    EVBUS__DELIVERED = 1, /* the pending entry and any retry are removed */
    EVBUS__RETRY = 2,     /* a retry is scheduled for due_ms */
    EVBUS__DEAD = 3,      /* moved to the dead-letter store with its reason */
    EVBUS__REQUEUE = 4,   /* a dead letter made pending again (replay) */
    EVBUS__DROP = 5,      /* a dead letter deleted (and its event, if no longer needed) */
    EVBUS__REPLAY = 6,    /* a stored event made pending again for a target */
    EVBUS__STATE = 7,     /* not a delivery: `reason` "KEY=VALUE" is written to the
                             state sub-database (target and seq unused) */
} evbus__delivery;

typedef struct evbus__store_result {
    uint32_t target;
    uint64_t seq;
    evbus__delivery outcome;
    uint32_t attempts; /* attempts made so far */
    int64_t due_ms;    /* RETRY: when (wall clock) */
    const char *reason;
    /* Policy replicate (regions_all non-zero): the result is about the
     * regions in `regions` (a bit per position in the target's regions), not
     * the whole entry. DELIVERED and DEAD take `regions` and `settled` (regions
     * excused: switched off) out of the entry's owed set; the entry leaves
     * pending when none is owed. DEAD dead-letters it for `regions` (merged
     * with an earlier dead letter of other regions). RETRY stores nothing
     * (the dispatcher finds the entry again by its owed set). REQUEUE makes
     * the dead letter's regions owed again. regions_all is what an entry
     * without an owed set owes: every region. 0: as for any other target. */
    uint32_t regions, settled, regions_all;
} evbus__store_result;

/* Delivery results applied in the same transaction as an append. */
typedef struct evbus__store_results {
    const evbus__store_result *v;
    size_t n;
    uint32_t n_targets; /* targets configured: an event record is removed when
                           none of them has it pending or dead-lettered */
    size_t n_recorded;  /* out: how many leading results are durable */
    /* in: the caller accepts that a system crash (power loss, a kernel
     * crash; not a crash of evbusd, which the page cache survives) undoes
     * the commit when it holds only results whose loss means delivering
     * again: DELIVERED, RETRY and DEAD, no item. Such a commit then skips
     * the sync of LMDB's meta page (MDB_NOMETASYNC: data pages are still
     * synced, the store stays consistent, and the next commit of any kind,
     * or evbus__store_sync, makes it durable): one device flush instead of
     * two. So at most the last commit can be undone. Commits holding
     * events, or any other result, are always fully synced. */
    bool may_undo;
} evbus__store_results;

typedef struct evbus__store_stats {
    uint64_t events;              /* event records stored */
    uint64_t pending;             /* pending deliveries (event, target) */
    uint64_t ids;                 /* ids remembered for deduplication */
    uint64_t ids_forgotten_early; /* before storage.dedup_window ended, to make room */
    int64_t dedup_window_ms;      /* how long ids were kept when some were last forgotten
                                     early; 0 when that never happened */
    uint64_t next_seq;            /* sequence the next new event gets */
    uint64_t map_size, map_used;
} evbus__store_stats;

/* Opens (creating if needed) the store in `dir`, takes the directory's lock
 * and clears reader slots left by a killed process. EVBUS_EBUSY when another
 * process holds the directory; EVBUS_EIO / EVBUS_ESTORE otherwise. err says
 * what and where. The caller owns *out (evbus__store_close()). */
evbus_err evbus__store_open(const char *dir, uint64_t map_size, evbus__store **out, char *err,
                            size_t errlen);

/* How long event records are kept after every target has them (0: removed
 * at once), and how many targets there are. Set once after opening, before
 * the first append. */
void evbus__store_set_retention(evbus__store *s, int64_t retention_ms, uint32_t n_targets);

/* Calls fn(arg, seq) for each stored event accepted at or after since_ms, in
 * sequence order; fn returns non-zero to stop. */
evbus_err evbus__store_foreach_since(evbus__store *s, int64_t since_ms,
                                     int (*fn)(void *arg, uint64_t seq), void *arg);

/* Closes the store and releases the lock; NULLs *s; accepts NULL. */
void evbus__store_close(evbus__store **s);

/* Appends a batch in one write transaction (group commit), applies delivery
 * results `res` (may be NULL) in the same transaction, and returns only
 * after the commit is on disk (see res->may_undo for the one exception). Items are handled in
 * order; a later item with the id of an earlier one in the same batch is a DUPLICATE of it. Ids
 * whose dedup window ended before `expire_before_ms` are forgotten along the way.
 *
 * A store short of space keeps working (store_space.h): events stop being
 * stored once the map, less a reserve kept for delivery results, is used
 * up (FULL: then, without retention, records no target needs any more
 * (events no rule routed) are removed in the same commit; FULL_IDS when ids
 * kept for deduplication hold at least half of the store: the oldest ids
 * are then forgotten before their window ends, so that later events fit), or while the file system
 * is full (DISK_FULL: unrouted records and the oldest ids are then removed the same way, as
 * delivery frees neither); a commit that fails writing comes back DISK_FULL or IO_ERROR. Such items
 * are not stored and nothing already acked is touched. Results may use the reserve; when even they
 * do not fit they are committed in smaller parts, and res->n_recorded says how many leading ones
 * are durable (the rest: try again later). Each change of state is logged once.
 *
 * Returns EVBUS_OK (check each outcome and res->n_recorded) or EVBUS_ESTORE
 * when LMDB failed in a way that is not about space or I/O (nothing of the
 * call is then stored). */
evbus_err evbus__store_append(evbus__store *s, evbus__store_item *items, size_t n,
                              evbus__store_results *res, int64_t now_ms, int64_t expire_before_ms,
                              uint64_t max_backlog);

/* True when the last commit was one that may be undone by a system crash
 * (res->may_undo): nothing has synced it yet. Writer thread only. */
bool evbus__store_unsynced(const evbus__store *s);

/* Makes every commit so far durable: syncs what the last commit left
 * unsynced (res->may_undo); nothing to do otherwise. EVBUS_EIO (logged) when
 * the sync fails. Writer thread only. */
evbus_err evbus__store_sync(evbus__store *s);

/* Counters, read in a short read transaction. */
evbus_err evbus__store_stats_get(evbus__store *s, evbus__store_stats *out);

/* Calls fn(arg, seq) for each pending delivery of `target` with a sequence
 * above `after`, in sequence order, within one read transaction. fn returns
 * non-zero to stop. */
evbus_err evbus__store_foreach_pending(evbus__store *s, uint32_t target, uint64_t after,
                                       int (*fn)(void *arg, uint64_t seq), void *arg);

/* Like evbus__store_foreach_pending, with each entry's owed regions
 * (policy replicate): the stored set, or `all` for an entry that has none
 * (no region has it yet; every entry written before this policy). */
evbus_err evbus__store_foreach_owed(evbus__store *s, uint32_t target, uint64_t after, uint32_t all,
                                    int (*fn)(void *arg, uint64_t seq, uint32_t owed), void *arg);

/* Counts, for the n regions of `target` (bit p: counts[p]), the pending
 * entries still owed to each, `all` standing for an entry without an owed
 * set. Walks every pending entry of the target in one read transaction
 * (for `evbus status`, not the hot path). */
evbus_err evbus__store_owed_counts(evbus__store *s, uint32_t target, uint32_t all, uint64_t *counts,
                                   size_t n);

/* How many deliveries `target` has pending, and when the oldest was accepted
 * (wall-clock ms; 0 when none). Safe from any thread. */
evbus_err evbus__store_target_backlog(evbus__store *s, uint32_t target, uint64_t *pending,
                                      int64_t *oldest_ms);

/* Copies the pending counts of targets 0..n-1 into out (0 for a target with
 * none yet). Safe from any thread; cheap enough to call once per batch. */
void evbus__store_pending_counts(evbus__store *s, uint64_t *out, size_t n);

/* Calls fn for each scheduled retry: target, seq, attempts so far, due_ms. */
evbus_err evbus__store_foreach_retry(evbus__store *s,
                                     int (*fn)(void *arg, uint32_t target, uint64_t seq,
                                               uint32_t attempts, int64_t due_ms),
                                     void *arg);

/* Calls fn for each dead letter of `target` (all targets when target is
 * UINT32_MAX): seq, attempts, when it died, and the last error. */
evbus_err evbus__store_foreach_dead(evbus__store *s, uint32_t target,
                                    int (*fn)(void *arg, uint32_t target, uint64_t seq,
                                              uint32_t attempts, int64_t dead_ms,
                                              const char *reason),
                                    void *arg);

/* Reads the records of n events in one read transaction: fn(arg, i, record,
 * len) for each found (record memory valid only during the call). */
evbus_err evbus__store_read_events(evbus__store *s, const uint64_t *seqs, size_t n,
                                   void (*fn)(void *arg, size_t i, const void *record, size_t len),
                                   void *arg);

/* Calls fn(arg, key, value) for every entry of the state sub-database (the
 * regions' routing controls, application states, health and routes), in
 * key order, within one read transaction; both strings are valid only
 * during the call. */
evbus_err evbus__store_foreach_state(evbus__store *s,
                                     void (*fn)(void *arg, const char *key, const char *value),
                                     void *arg);

/* Calls fn for each stored event in sequence order, within one read
 * transaction; record memory is valid only during the call. fn returns
 * non-zero to stop. */
evbus_err evbus__store_foreach_event(
    evbus__store *s, int (*fn)(void *arg, uint64_t seq, const void *record, size_t len), void *arg);

#endif
