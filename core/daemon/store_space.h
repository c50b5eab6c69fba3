/* How full the store may get, and what a full store is full of. Used by
 * store.c, on the writer thread only.
 *
 * Two limits keep a full store working instead of stopping it:
 *
 * - Headroom for delivery results. Deleting a delivered entry needs free
 *   pages too (LMDB copies every page it changes), so a map filled to the
 *   last page could never drain. Ingest may fill the map only up to
 *   map_size minus `reserve_pages`; results, retries, dead letters and
 *   deletions may use the rest.
 *
 * - Disk space. The data file is preallocated (posix_fallocate) ahead of
 *   the pages LMDB has used, in increments of `chunk_pages`. A file system
 *   that fills up then fails the fallocate, before any transaction, instead
 *   of a commit's page writes (which LMDB reports as EIO on a short write).
 *   Where a whole increment (with the map's reserve) does not fit, smaller
 *   ones are taken, halving down to what the next commit needs with a
 *   reserve scaled to the data (a sixteenth, at least 256 KiB), so a disk
 *   far smaller than map_size is used to the end. While the allocation is
 *   short, ingest may use only what is allocated, less that reserve, so
 *   results still commit into space already ours; "disk full" means that
 *   not even the next commit fits on the file system.
 *   Increments rather than the whole map at once: map_size is a ceiling
 *   that is often set far above the data a deployment keeps, and reserving
 *   it all would take the disk from everything else on it. */
#ifndef EVBUS_STORE_SPACE_H
#define EVBUS_STORE_SPACE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store.h"

typedef struct evbus__space {
    char dir[256];              /* for log lines */
    int fd;                     /* the data file: LMDB's descriptor, not ours to close */
    uint64_t psize;             /* page size */
    uint64_t map_pages;         /* map_size in pages */
    uint64_t reserve_pages;     /* kept for results below map_size */
    uint64_t min_reserve_pages; /* the least kept on a file system smaller than that */
    uint64_t chunk_pages;
    uint64_t alloc_pages;       /* the data file is allocated up to here */
    bool prealloc;              /* false once the file system cannot fallocate */
    bool disk_short;            /* the allocation could not take a whole increment: ingest
                                   stays within it, less a reserve scaled to the data */
    bool disk_full;             /* not even the next commit fitted on the file system */
    int64_t retry_ms;           /* monotonic: when to try growing it again */
    int64_t refuse_until_ms;    /* monotonic: a commit failed for lack of disk:
                                   refuse ingest without trying until then */
    evbus__store_outcome state; /* EVBUS__STORED when not full; for logging */
    uint64_t refused;           /* events refused since the state was logged */
    int64_t last_refusal_ms;
    unsigned logged; /* bit per state already logged since ingest last had room */
} evbus__space;

/* Sets up the limits for a map of map_size bytes whose data file is `fd`,
 * and preallocates the file's first increment. */
void evbus__space_init(evbus__space *sp, int fd, const char *dir, uint64_t psize, uint64_t map_size,
                       uint64_t hwm_pages, int64_t now_ms);

/* Before a transaction that may add about `need_pages` pages to a store
 * whose last used page is hwm_pages - 1: grows the preallocation when it is
 * running out (retried at most every 250 ms while the disk is full). */
void evbus__space_prepare(evbus__space *sp, uint64_t hwm_pages, uint64_t need_pages,
                          int64_t now_ms);

/* Pages one event may add at most: its record's overflow pages, if it has
 * any, plus one for the small entries (an over-estimate used only to look
 * one event ahead). */
uint64_t evbus__space_item_pages(const evbus__space *sp, const evbus__store_item *it);

/* Whether ingest may add `need` pages now: EVBUS__STORED if so, else
 * EVBUS__FULL (the map's share for events is used up) or EVBUS__DISK_FULL.
 * `live` is the pages the trees hold now, inside the transaction. */
evbus__store_outcome evbus__space_admit(const evbus__space *sp, uint64_t live, uint64_t need,
                                        int64_t now_ms);

/* What a failed LMDB call means for the items that were not stored:
 * EVBUS__FULL (map full), EVBUS__DISK_FULL (no space on the file system:
 * ENOSPC, EDQUOT, or LMDB's EIO for a short write while the file system is
 * out of space), EVBUS__IO_ERROR (any other write error), or 0 for an
 * error that is not about space or I/O. Sets the state refusing ingest
 * for a while after a disk-full commit. */
evbus__store_outcome evbus__space_classify(evbus__space *sp, int mrc, int64_t now_ms);

/* Logs a change of state once: entering full or disk full (with the events
 * refused), and leaving it. `state` is EVBUS__STORED when nothing was
 * refused for lack of space. */
void evbus__space_note(evbus__space *sp, evbus__store_outcome state, uint64_t refused,
                       int64_t now_ms);

#endif
