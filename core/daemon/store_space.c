#include "store_space.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>

#include "common/log.h"

/* How long a full disk is left alone before the allocation is tried again,
 * and before ingest tries a commit again after one failed for lack of
 * space: short enough that freeing space is noticed at once by a person,
 * long enough that a full disk does not cost a failed fallocate (or a
 * failed commit) per batch. */
#define DISK_RETRY_MS 250
/* A refusal is not "over" until none happened for this long, so that a
 * store hovering at its limit logs one line, not one per batch. */
#define QUIET_MS 5000

/* LMDB 0.9's page header and the largest node kept on a leaf page (larger
 * values go to overflow pages): (psize - header) / 2 keys per page. */
#define PAGE_HEADER 16

static uint64_t min_u64(uint64_t a, uint64_t b) {
    return a < b ? a : b;
}

static uint64_t clamp_u64(uint64_t v, uint64_t lo, uint64_t hi) {
    return v < lo ? lo : v > hi ? hi : v;
}

/* Grows the data file's allocation to `pages` (no-op when already there).
 * Returns 0 or the error posix_fallocate gave. */
static int grow_to(evbus__space *sp, uint64_t pages) {
    if (pages <= sp->alloc_pages)
        return 0;
    int e = posix_fallocate(sp->fd, 0, (off_t)(pages * sp->psize));
    if (e == 0)
        sp->alloc_pages = pages;
    return e;
}

void evbus__space_init(evbus__space *sp, int fd, const char *dir, uint64_t psize, uint64_t map_size,
                       uint64_t hwm_pages, int64_t now_ms) {
    memset(sp, 0, sizeof *sp);
    snprintf(sp->dir, sizeof sp->dir, "%s", dir);
    sp->fd = fd;
    sp->psize = psize;
    sp->map_pages = map_size / psize;
    /* A sixteenth of the map, at least 256 KiB and at most 64 MiB: deleting
     * a batch's entries dirties a few pages per sub-database and level, and
     * a dead letter adds up to 1 KiB, so results of every batch in flight
     * fit several times over. */
    sp->min_reserve_pages = (256u << 10) / psize;
    sp->reserve_pages = clamp_u64(sp->map_pages / 16, sp->min_reserve_pages, (64u << 20) / psize);
    if (sp->reserve_pages > sp->map_pages / 2)
        sp->reserve_pages = sp->map_pages / 2;
    if (sp->min_reserve_pages > sp->reserve_pages)
        sp->min_reserve_pages = sp->reserve_pages;
    sp->chunk_pages = clamp_u64(sp->map_pages / 16, (1u << 20) / psize, (64u << 20) / psize);
    sp->state = EVBUS__STORED;
    struct stat st;
    sp->prealloc = fd >= 0 && fstat(fd, &st) == 0;
    if (sp->prealloc)
        sp->alloc_pages = (uint64_t)st.st_size / psize;
    evbus__space_prepare(sp, hwm_pages, 0, now_ms);
}

/* The reserve kept for results inside a file system too small for the
 * map's: a sixteenth of the data, at least 256 KiB, never more than the
 * map's reserve. A fixed share of a 1 GiB map (64 MiB) would leave nothing
 * for events on a disk of 100 MiB. */
static uint64_t reserve_for(const evbus__space *sp, uint64_t data_pages) {
    return clamp_u64(data_pages / 16, sp->min_reserve_pages, sp->reserve_pages);
}

static bool out_of_space(int e) {
    return e == ENOSPC || e == EDQUOT || e == EFBIG || e == EINTR;
}

void evbus__space_prepare(evbus__space *sp, uint64_t hwm_pages, uint64_t need_pages,
                          int64_t now_ms) {
    if (!sp->prealloc)
        return;
    uint64_t ahead = hwm_pages + need_pages + sp->reserve_pages;
    if (sp->alloc_pages >= min_u64(sp->map_pages, ahead + sp->chunk_pages / 2)) {
        sp->disk_short = sp->disk_full = false;
        return;
    }
    /* What the next commit needs, with the reserve scaled to the data. */
    uint64_t floor =
        min_u64(sp->map_pages, hwm_pages + need_pages + reserve_for(sp, hwm_pages + need_pages));
    /* Short of disk, the file system is asked again only every 250 ms,
     * unless the next commit does not fit in what is allocated. */
    if (sp->disk_short && now_ms < sp->retry_ms && (sp->disk_full || sp->alloc_pages >= floor))
        return;
    int e = grow_to(sp, min_u64(sp->map_pages, ahead + sp->chunk_pages));
    if (e == 0) {
        sp->disk_short = sp->disk_full = false;
        return;
    }
    if (out_of_space(e)) {
        /* Short of a whole increment: the largest smaller one that fits,
         * halving down to what the next commit needs. */
        for (uint64_t step = sp->chunk_pages;; step /= 2) {
            e = grow_to(sp, min_u64(sp->map_pages, floor + step));
            if (e == 0 || step == 0 || !out_of_space(e))
                break;
        }
        bool full = e != 0; /* not even the next commit fits: the disk is full */
        if (full && !sp->disk_full)
            EVBUS_LOG_D("store", "%s: cannot grow data.mdb to %llu KiB: %s", sp->dir,
                        (unsigned long long)(floor * sp->psize >> 10), strerror(e));
        else if (!full && !sp->disk_short)
            EVBUS_LOG_D("store",
                        "%s: the file system has no room for a %llu MiB step of data.mdb; it is "
                        "grown in smaller ones (now %llu KiB)",
                        sp->dir, (unsigned long long)(sp->chunk_pages * sp->psize >> 20),
                        (unsigned long long)(sp->alloc_pages * sp->psize >> 10));
        sp->disk_short = true;
        sp->disk_full = full;
        sp->retry_ms = now_ms + DISK_RETRY_MS;
        return;
    }
    /* The file system cannot preallocate (EOPNOTSUPP and the like): a full
     * disk then shows up as a failed commit, which evbus__space_classify()
     * recognises. */
    EVBUS_LOG_I("store",
                "%s: the file system cannot preallocate data.mdb (%s); a full disk is "
                "noticed when a commit fails instead",
                sp->dir, strerror(e));
    sp->prealloc = false;
    sp->disk_short = sp->disk_full = false;
}

uint64_t evbus__space_item_pages(const evbus__space *sp, const evbus__store_item *it) {
    size_t nodemax = (sp->psize - PAGE_HEADER) / 2;
    uint64_t pages = 1;
    if (it->record_len + 16 > nodemax)
        pages += (it->record_len + PAGE_HEADER + sp->psize - 1) / sp->psize;
    return pages;
}

evbus__store_outcome evbus__space_admit(const evbus__space *sp, uint64_t live, uint64_t need,
                                        int64_t now_ms) {
    if (now_ms < sp->refuse_until_ms)
        return EVBUS__DISK_FULL;
    if (live + need + sp->reserve_pages > sp->map_pages)
        return EVBUS__FULL;
    /* Live pages rather than the file's high-water mark: pages freed by
     * delivery are reused before the file grows. When they cannot be (a
     * reader still sees them), the commit fails with ENOSPC and
     * evbus__space_classify() holds ingest off for a moment. */
    if (sp->prealloc && sp->disk_short &&
        live + need + reserve_for(sp, live + need) > sp->alloc_pages)
        return EVBUS__DISK_FULL;
    return EVBUS__STORED;
}

/* Whether the file system holding the data file is (nearly) out of space:
 * what a short write, reported by LMDB as EIO, most likely meant. */
static bool fs_nearly_full(const evbus__space *sp) {
    struct statvfs vfs;
    if (sp->fd < 0 || fstatvfs(sp->fd, &vfs) != 0)
        return false;
    return (uint64_t)vfs.f_bavail * vfs.f_frsize < (4u << 20);
}

evbus__store_outcome evbus__space_classify(evbus__space *sp, int mrc, int64_t now_ms) {
    evbus__store_outcome o;
    if (mrc == MDB_MAP_FULL)
        return EVBUS__FULL;
    if (mrc == ENOSPC || mrc == EDQUOT || mrc == EFBIG)
        o = EVBUS__DISK_FULL;
    else if (mrc == EIO)
        o = fs_nearly_full(sp) ? EVBUS__DISK_FULL : EVBUS__IO_ERROR;
    else
        return 0;
    if (o == EVBUS__DISK_FULL) {
        sp->refuse_until_ms = now_ms + DISK_RETRY_MS;
        sp->disk_short = sp->disk_full = true;
        sp->retry_ms = now_ms; /* grow the allocation as soon as it can */
    }
    return o;
}

void evbus__space_note(evbus__space *sp, evbus__store_outcome state, uint64_t refused,
                       int64_t now_ms) {
    if (state != EVBUS__STORED) {
        sp->refused += refused;
        sp->last_refusal_ms = now_ms;
        if (state == sp->state)
            return;
        sp->state = state;
        /* Once per cause until ingest has room again: on a full disk the
         * batches alternate between "disk full" and forgetting ids early,
         * and a line per switch would flood the log. */
        if (sp->logged & (1u << state))
            return;
        sp->logged |= 1u << state;
        if (state == EVBUS__FULL)
            EVBUS_LOG_W("store",
                        "storage full: %s holds storage.map_size (%llu KiB) less the %llu KiB "
                        "kept for delivery results; producers get RETRY_LATER until delivery "
                        "frees space (or raise storage.map_size)",
                        sp->dir, (unsigned long long)(sp->map_pages * sp->psize >> 10),
                        (unsigned long long)(sp->reserve_pages * sp->psize >> 10));
        else if (state == EVBUS__FULL_IDS && sp->disk_short)
            EVBUS_LOG_W("store",
                        "event ids kept for deduplication fill the disk: the file system "
                        "holding %s has no space left and at least half of the store is ids; "
                        "the oldest are forgotten early to make room (or free space there)",
                        sp->dir);
        else if (state == EVBUS__FULL_IDS)
            EVBUS_LOG_W("store",
                        "storage full of event ids kept for deduplication: %s holds "
                        "storage.map_size (%llu KiB) less the %llu KiB kept for delivery "
                        "results, at least half of it ids; the oldest are forgotten early to make "
                        "room (or raise storage.map_size)",
                        sp->dir, (unsigned long long)(sp->map_pages * sp->psize >> 10),
                        (unsigned long long)(sp->reserve_pages * sp->psize >> 10));
        else if (state == EVBUS__DISK_FULL)
            EVBUS_LOG_W("store",
                        "disk full: the file system holding %s has no space left; producers get "
                        "RETRY_LATER until space is freed there (evbusd resumes by itself)",
                        sp->dir);
        else
            EVBUS_LOG_E("store",
                        "storage I/O error writing to %s; producers get RETRY_LATER while it "
                        "lasts (check the disk and the system log)",
                        sp->dir);
        return;
    }
    if (sp->state != EVBUS__STORED && now_ms - sp->last_refusal_ms >= QUIET_MS) {
        EVBUS_LOG_I("store", "%s has room again: accepting events (%llu refused meanwhile)",
                    sp->dir, (unsigned long long)sp->refused);
        sp->state = EVBUS__STORED;
        sp->refused = 0;
        sp->logged = 0;
    }
}
