#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"
#include "id_index.h"
#include "store_space.h"

enum { DB_EVENTS, DB_DEDUP_LOG, DB_PENDING, DB_RETRY, DB_DLQ, DB_STATE, DB_META, DB_COUNT };

static const char *const db_names[DB_COUNT] = {"events", "dedup_log", "pending", "retry",
                                               "dlq",    "state",     "meta"};

/* An index change made inside a write transaction, undone if it aborts or
 * applied once it commits. */
typedef struct index_change {
    uint64_t hash, seq;
} index_change;

struct evbus__store {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    int lock_fd;
    uint64_t next_seq;
    evbus__id_index *ids;
    index_change *added, *expired;
    size_t added_cap, expired_cap, n_added, n_expired;
    uint64_t *hashes; /* the batch's id hashes, computed ahead for prefetching */
    size_t hashes_cap;
    /* Pending entries per target: counted once at open, then kept by the
     * writer; `delta` collects one transaction's changes until it commits.
     * The mutex lets other threads read the counts. */
    pthread_mutex_t counts_lock;
    uint64_t *pending;
    int64_t *delta;
    size_t n_counted;
    int64_t retention_ms;
    uint32_t n_targets;
    uint64_t sweep_seq; /* where the retention sweep goes on from */
    MDB_dbi main_dbi;   /* the main DB, which holds the sub-databases' roots */
    evbus__space space; /* limits that keep a full store working */
    int64_t results_log_ms;
    int64_t io_log_ms;
    /* Ids forgotten before their window ended (store full of ids): the
     * total, and the window they had, published under counts_lock. */
    uint64_t ids_early, ids_early_logged;
    int64_t early_window_ms, early_log_ms;
    bool meta_unsynced; /* the last commit skipped its meta page's sync (may_undo) */
    /* Within one write transaction: whether the retry and dead-letter
     * sub-databases may hold entries. Mostly they hold none, and a delivered
     * result then needs no lookup in them (apply_result). */
    bool may_retry, may_dead;
};

void evbus__store_set_retention(evbus__store *s, int64_t retention_ms, uint32_t n_targets) {
    s->retention_ms = retention_ms;
    s->n_targets = n_targets;
}

/* Reads a protobuf varint at *p (not past end). */
static uint64_t read_varint(const unsigned char **p, const unsigned char *end) {
    uint64_t v = 0;
    for (int shift = 0; *p < end && shift < 64; shift += 7) {
        unsigned char b = *(*p)++;
        v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            break;
    }
    return v;
}

/* The acceptance time stored in a record (evbus.v1.Event field 15), read
 * without decoding the rest; 0 when absent or unreadable. */
static uint64_t record_accepted_ms(const unsigned char *p, size_t len) {
    const unsigned char *end = p + len;
    uint64_t found = 0;
    while (p < end) {
        uint64_t tag = read_varint(&p, end), v;
        switch (tag & 7) {
        case 0:
            v = read_varint(&p, end);
            if ((tag >> 3) == 15)
                found = v;
            break;
        case 1: p += 8; break;
        case 2:
            v = read_varint(&p, end);
            if (v > (uint64_t)(end - p))
                return 0;
            p += v;
            break;
        case 5: p += 4; break;
        default: return 0;
        }
    }
    return p == end ? found : 0;
}

/* Makes room to count pending entries of targets below n. */
static int count_room(evbus__store *s, size_t n) {
    if (n <= s->n_counted)
        return 0;
    int rc = -1;
    pthread_mutex_lock(&s->counts_lock); /* readers may be looking at `pending` */
    uint64_t *p = realloc(s->pending, n * sizeof *p);
    if (p) {
        s->pending = p;
        int64_t *d = realloc(s->delta, n * sizeof *d);
        if (d) {
            s->delta = d;
            for (size_t i = s->n_counted; i < n; i++) {
                s->pending[i] = 0;
                s->delta[i] = 0;
            }
            s->n_counted = n;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&s->counts_lock);
    return rc;
}

static void count_change(evbus__store *s, uint32_t target, int64_t by) {
    if (count_room(s, (size_t)target + 1) == 0)
        s->delta[target] += by;
}

/* How many events ahead the id index is prefetched: enough to cover a miss,
 * few enough that the lines are still cached when used. */
#define PREFETCH_AHEAD 8

static int push_change(index_change **v, size_t *cap, size_t *n, uint64_t hash, uint64_t seq) {
    if (*n == *cap) {
        size_t c = *cap ? *cap * 2 : 1024;
        index_change *nv = realloc(*v, c * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = c;
    }
    (*v)[*n].hash = hash;
    (*v)[*n].seq = seq;
    (*n)++;
    return 0;
}

static uint32_t get_be32(const unsigned char *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

/* Calls fn on every entry of one sub-database inside `txn`, for the
 * start-up scans. fn returns 0 to go on, or an error code that ends the walk
 * and is returned. */
static int walk_all(evbus__store *s, MDB_txn *txn, int db,
                    int (*fn)(evbus__store *s, const MDB_val *k, const MDB_val *v)) {
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, s->dbi[db], &cur);
    if (mrc)
        return mrc;
    MDB_val k, v;
    for (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST); mrc == 0;
         mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT))
        if ((mrc = fn(s, &k, &v)))
            break;
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : mrc;
}

static int count_one_pending(evbus__store *s, const MDB_val *k, const MDB_val *v) {
    (void)v;
    if (k->mv_size != 12)
        return 0;
    uint32_t t = get_be32(k->mv_data);
    if (count_room(s, (size_t)t + 1))
        return ENOMEM;
    s->pending[t]++;
    return 0;
}

/* Rebuilds the in-memory id index from one dedup log entry. */
static int load_one_id(evbus__store *s, const MDB_val *k, const MDB_val *v) {
    if (k->mv_size != 8 || v->mv_size < 8)
        return 0;
    uint64_t h = evbus__id_hash((char *)v->mv_data + 8, v->mv_size - 8);
    return evbus__id_index_put(s->ids, h, evbus__get_be64(k->mv_data)) ? ENOMEM : 0;
}

static const char NEXT_SEQ_KEY[] = "next_seq";

/* The key of pending, retry and dlq entries: target(4) seq(8), big-endian. */
static void target_key(unsigned char k[12], uint32_t target, uint64_t seq) {
    k[0] = (unsigned char)(target >> 24);
    k[1] = (unsigned char)(target >> 16);
    k[2] = (unsigned char)(target >> 8);
    k[3] = (unsigned char)target;
    evbus__put_be64(k + 4, seq);
}

static void put_be32(unsigned char *p, uint32_t v) {
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

static int del_if_present(MDB_txn *txn, MDB_dbi dbi, MDB_val *k) {
    int mrc = mdb_del(txn, dbi, k, NULL);
    return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* Removes the event record once no target has it pending or dead-lettered
 * (the dedup log keeps its id for the dedup window regardless). `gone`: a
 * target whose pending entry this transaction has just removed (UINT32_MAX:
 * none), which needs no lookup. */
static int release_event(evbus__store *s, MDB_txn *txn, uint64_t seq, uint32_t n_targets,
                         uint32_t gone) {
    for (uint32_t t = 0; t < n_targets; t++) {
        unsigned char k[12];
        target_key(k, t, seq);
        MDB_val kv = {sizeof k, k}, v;
        int mrc;
        if (t != gone && (mrc = mdb_get(txn, s->dbi[DB_PENDING], &kv, &v)) != MDB_NOTFOUND)
            return mrc == 0 ? 0 : mrc;
        if (s->may_dead && (mrc = mdb_get(txn, s->dbi[DB_DLQ], &kv, &v)) != MDB_NOTFOUND)
            return mrc == 0 ? 0 : mrc;
    }
    if (s->retention_ms > 0)
        return 0; /* the retention sweep removes it when its time is up */
    unsigned char ek[8];
    evbus__put_be64(ek, seq);
    MDB_val ekv = {8, ek};
    return del_if_present(txn, s->dbi[DB_EVENTS], &ekv);
}

/* Removes up to `budget` event records older than the retention that no
 * target has pending or dead-lettered, walking on from where the last sweep
 * stopped (records still needed are passed over, not waited for). */
static int sweep_retained(evbus__store *s, MDB_txn *txn, int64_t before_ms, size_t budget) {
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, s->dbi[DB_EVENTS], &cur);
    if (mrc)
        return mrc;
    unsigned char start[8];
    evbus__put_be64(start, s->sweep_seq);
    MDB_val k = {8, start}, v;
    mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    if (mrc == MDB_NOTFOUND) { /* past the end: start over next time */
        s->sweep_seq = 0;
        mdb_cursor_close(cur);
        return 0;
    }
    while (mrc == 0 && budget-- > 0 && k.mv_size == 8) {
        uint64_t seq = evbus__get_be64(k.mv_data);
        uint64_t at = record_accepted_ms(v.mv_data, v.mv_size);
        if (at && (int64_t)at >= before_ms)
            break; /* sequences grow with time: the rest are younger */
        s->sweep_seq = seq + 1;
        bool needed = false;
        for (uint32_t t = 0; t < s->n_targets && !needed; t++) {
            unsigned char tk[12];
            target_key(tk, t, seq);
            MDB_val tkv = {sizeof tk, tk}, tv;
            needed = mdb_get(txn, s->dbi[DB_PENDING], &tkv, &tv) == 0 ||
                     mdb_get(txn, s->dbi[DB_DLQ], &tkv, &tv) == 0;
        }
        if (!needed && (mrc = mdb_cursor_del(cur, 0)))
            break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* ---- policy replicate: entries owed to several regions ---- */

/* The regions a dead letter was recorded for: the 4 bytes after a NUL that
 * ends its reason (older dead letters, and other policies', have none). */
static uint32_t dead_regions(const MDB_val *v) {
    if (v->mv_size < 12 + 5)
        return 0;
    const unsigned char *p = v->mv_data;
    const unsigned char *nul = memchr(p + 12, 0, v->mv_size - 12);
    return nul && (size_t)(p + v->mv_size - nul) == 5 ? get_be32(nul + 1) : 0;
}

/* Dead-letters (target, seq) for r->regions, keeping the regions and reason
 * of an earlier dead letter of the same entry: "region A: why; region B:
 * why". */
static int put_dead_regions(evbus__store *s, MDB_txn *txn, MDB_val *kv,
                            const evbus__store_result *r) {
    char reason[1024];
    size_t len = 0;
    uint32_t regions = r->regions;
    MDB_val old;
    int mrc = mdb_get(txn, s->dbi[DB_DLQ], kv, &old);
    if (mrc && mrc != MDB_NOTFOUND)
        return mrc;
    if (mrc == 0 && old.mv_size >= 12) {
        regions |= dead_regions(&old);
        len = strnlen((const char *)old.mv_data + 12, old.mv_size - 12);
        len = len < sizeof reason - 3 ? len : sizeof reason - 3;
        memcpy(reason, (const char *)old.mv_data + 12, len);
        reason[len++] = ';';
        reason[len++] = ' ';
    }
    const char *add = r->reason ? r->reason : "";
    size_t alen = strnlen(add, sizeof reason - len);
    memcpy(reason + len, add, alen);
    len += alen;
    MDB_val vv = {12 + len + 5, NULL};
    s->may_dead = true;
    if ((mrc = mdb_put(txn, s->dbi[DB_DLQ], kv, &vv, MDB_RESERVE)))
        return mrc;
    unsigned char *p = vv.mv_data;
    put_be32(p, r->attempts);
    evbus__put_be64(p + 4, (uint64_t)r->due_ms);
    memcpy(p + 12, reason, len);
    p[12 + len] = 0;
    put_be32(p + 12 + len + 1, regions);
    return 0;
}

/* Writes (target, seq) pending with the regions it owes: `owed` (never
 * 0), merged into an entry already there. */
static int put_owed(evbus__store *s, MDB_txn *txn, MDB_val *kv, uint32_t target, uint32_t owed,
                    int64_t accepted_ms) {
    MDB_val old;
    int mrc = mdb_get(txn, s->dbi[DB_PENDING], kv, &old);
    if (mrc && mrc != MDB_NOTFOUND)
        return mrc;
    if (mrc == 0 && old.mv_size < 12)
        return 0; /* owed to every region already */
    unsigned char v[12];
    if (mrc == 0) {
        owed |= get_be32((const unsigned char *)old.mv_data + 8);
        memcpy(v, old.mv_data, 8);
    } else {
        evbus__put_be64(v, (uint64_t)accepted_ms);
        count_change(s, target, 1);
    }
    put_be32(v + 8, owed);
    MDB_val vv = {sizeof v, v};
    return mdb_put(txn, s->dbi[DB_PENDING], kv, &vv, 0);
}

/* A replicate target's result for some of an entry's regions (store.h:
 * evbus__store_result). */
static int apply_regions(evbus__store *s, MDB_txn *txn, const evbus__store_result *r, MDB_val *kv,
                         uint32_t n_targets) {
    int mrc;
    if (r->outcome != EVBUS__DELIVERED && r->outcome != EVBUS__DEAD)
        return 0; /* RETRY: kept by the dispatcher, which finds the entry by what it owes */
    MDB_val v;
    if ((mrc = mdb_get(txn, s->dbi[DB_PENDING], kv, &v)))
        return mrc == MDB_NOTFOUND ? 0 : mrc; /* settled already */
    uint32_t owed =
        v.mv_size >= 12 ? get_be32((const unsigned char *)v.mv_data + 8) : r->regions_all;
    unsigned char nv[12];
    memcpy(nv, v.mv_data, 8);
    owed &= ~(r->regions | r->settled);
    if (r->outcome == EVBUS__DEAD && (mrc = put_dead_regions(s, txn, kv, r)))
        return mrc;
    if (owed) {
        put_be32(nv + 8, owed);
        MDB_val nvv = {sizeof nv, nv};
        return mdb_put(txn, s->dbi[DB_PENDING], kv, &nvv, 0);
    }
    if ((mrc = mdb_del(txn, s->dbi[DB_PENDING], kv, NULL)))
        return mrc;
    count_change(s, r->target, -1);
    if (s->may_retry && (mrc = del_if_present(txn, s->dbi[DB_RETRY], kv)))
        return mrc;
    return release_event(s, txn, r->seq, n_targets, r->target);
}

static int apply_result(evbus__store *s, MDB_txn *txn, const evbus__store_result *r,
                        uint32_t n_targets) {
    unsigned char k[12];
    target_key(k, r->target, r->seq);
    MDB_val kv = {sizeof k, k};
    int mrc;
    if (r->regions_all && r->outcome != EVBUS__STATE && r->outcome != EVBUS__DROP)
        return apply_regions(s, txn, r, &kv, n_targets);
    if (r->outcome == EVBUS__STATE) {
        const char *eq = r->reason ? strchr(r->reason, '=') : NULL;
        if (!eq || eq == r->reason)
            return 0; /* malformed: a bug of the sender's, nothing to store */
        MDB_val sk = {(size_t)(eq - r->reason), (void *)r->reason},
                sv = {strlen(eq + 1), (void *)(eq + 1)};
        return mdb_put(txn, s->dbi[DB_STATE], &sk, &sv, 0);
    }
    if (r->outcome == EVBUS__REPLAY) {
        unsigned char ek[8], pv[8];
        evbus__put_be64(ek, r->seq);
        MDB_val ekv = {8, ek}, ev;
        if ((mrc = mdb_get(txn, s->dbi[DB_EVENTS], &ekv, &ev)))
            return mrc == MDB_NOTFOUND ? 0 : mrc; /* swept meanwhile */
        evbus__put_be64(pv, (uint64_t)r->due_ms);
        MDB_val pvv = {sizeof pv, pv};
        mrc = mdb_put(txn, s->dbi[DB_PENDING], &kv, &pvv, MDB_NOOVERWRITE);
        if (mrc == 0)
            count_change(s, r->target, 1);
        return mrc == MDB_KEYEXIST ? 0 : mrc;
    }
    if (r->outcome == EVBUS__REQUEUE || r->outcome == EVBUS__DROP) {
        /* A replicate target's dead letter is owed again only to the regions
         * it died for. */
        MDB_val dv;
        uint32_t regions = 0;
        if (r->outcome == EVBUS__REQUEUE && mdb_get(txn, s->dbi[DB_DLQ], &kv, &dv) == 0)
            regions = dead_regions(&dv);
        mrc = mdb_del(txn, s->dbi[DB_DLQ], &kv, NULL);
        if (mrc == MDB_NOTFOUND)
            return 0; /* replayed or dropped already */
        if (mrc)
            return mrc;
        if (r->outcome == EVBUS__DROP)
            return release_event(s, txn, r->seq, n_targets, UINT32_MAX);
        if (regions)
            return put_owed(s, txn, &kv, r->target, regions, r->due_ms);
        unsigned char pv[8];
        evbus__put_be64(pv, (uint64_t)r->due_ms);
        MDB_val pvv = {sizeof pv, pv};
        if ((mrc = mdb_put(txn, s->dbi[DB_PENDING], &kv, &pvv, 0)))
            return mrc;
        count_change(s, r->target, 1);
        return 0;
    }
    if (r->outcome == EVBUS__RETRY) {
        unsigned char v[12];
        put_be32(v, r->attempts);
        evbus__put_be64(v + 4, (uint64_t)r->due_ms);
        MDB_val vv = {sizeof v, v};
        s->may_retry = true;
        return mdb_put(txn, s->dbi[DB_RETRY], &kv, &vv, 0);
    }
    mrc = mdb_del(txn, s->dbi[DB_PENDING], &kv, NULL);
    if (mrc == 0)
        count_change(s, r->target, -1);
    else if (mrc != MDB_NOTFOUND)
        return mrc;
    if (s->may_retry && (mrc = del_if_present(txn, s->dbi[DB_RETRY], &kv)))
        return mrc;
    if (r->outcome == EVBUS__DEAD) {
        s->may_dead = true;
        const char *reason = r->reason ? r->reason : "";
        size_t rlen = strnlen(reason, 1024);
        MDB_val vv = {12 + rlen, NULL};
        if ((mrc = mdb_put(txn, s->dbi[DB_DLQ], &kv, &vv, MDB_RESERVE)))
            return mrc;
        put_be32(vv.mv_data, r->attempts);
        evbus__put_be64((unsigned char *)vv.mv_data + 4, (uint64_t)r->due_ms);
        memcpy((char *)vv.mv_data + 12, reason, rlen);
        return 0;
    }
    return release_event(s, txn, r->seq, n_targets, r->target);
}

static int take_lock(const char *dir, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/evbusd.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0) {
        snprintf(err, errlen, "%s: cannot open lock file: %s", path, strerror(errno));
        return -1;
    }
    if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t n = pread(fd, pid, sizeof pid - 1, 0);
        pid[n > 0 ? n : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        snprintf(err, errlen,
                 "data directory %s is in use by another evbusd (pid %s); stop it first or "
                 "give this one its own storage.data_dir",
                 dir, pid[0] ? pid : "unknown");
        close(fd);
        return -2;
    }
    char pid[32];
    int n = snprintf(pid, sizeof pid, "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) != 0 || pwrite(fd, pid, (size_t)n, 0) != n) {
        /* The pid is only informative; the lock is what matters. */
    }
    return fd;
}

/* Events are a company's data: only evbusd's user may read them, whatever
 * the umask, and also in a store created before this rule. */
static int make_private(const char *dir) {
    static const char *const files[] = {"data.mdb", "lock.mdb", "evbusd.lock"};
    if (chmod(dir, 0700) != 0)
        return -1;
    for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/%s", dir, files[i]);
        if (chmod(path, 0600) != 0 && errno != ENOENT)
            return -1;
    }
    return 0;
}

evbus_err evbus__store_open(const char *dir, uint64_t map_size, evbus__store **out, char *err,
                            size_t errlen) {
    evbus__store *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    s->lock_fd = -1;
    evbus_err rc = EVBUS_ESTORE;
    MDB_txn *txn = NULL;
    int mrc;

    if (mkdir(dir, 0700) != 0 && errno != EEXIST) {
        snprintf(err, errlen, "%s: cannot create data directory: %s", dir, strerror(errno));
        rc = EVBUS_EIO;
        goto fail;
    }
    s->lock_fd = take_lock(dir, err, errlen);
    if (s->lock_fd < 0) {
        rc = s->lock_fd == -2 ? EVBUS_EBUSY : EVBUS_EIO;
        goto fail;
    }
    if ((mrc = mdb_env_create(&s->env)) || (mrc = mdb_env_set_maxdbs(s->env, 16)) ||
        (mrc = mdb_env_set_mapsize(s->env, (size_t)map_size)) ||
        (mrc = mdb_env_set_maxreaders(s->env, 126)) ||
        (mrc = mdb_env_open(s->env, dir, MDB_NOTLS, 0600))) {
        snprintf(err, errlen, "%s: cannot open LMDB store: %s", dir, mdb_strerror(mrc));
        goto fail;
    }
    if (make_private(dir) != 0) {
        snprintf(err, errlen, "%s: cannot make the data directory private (0700, files 0600): %s",
                 dir, strerror(errno));
        rc = EVBUS_EIO;
        goto fail;
    }
    /* A process killed with -9 leaves its reader slots behind; they would pin
     * old pages forever. */
    int dead = 0;
    mdb_reader_check(s->env, &dead);
    if (dead)
        EVBUS_LOG_I("store", "cleared %d stale reader slot(s) left by a killed process", dead);

    if ((mrc = mdb_txn_begin(s->env, NULL, 0, &txn))) {
        snprintf(err, errlen, "%s: cannot begin transaction: %s", dir, mdb_strerror(mrc));
        goto fail;
    }
    for (int i = 0; i < DB_COUNT; i++) {
        if ((mrc = mdb_dbi_open(txn, db_names[i], MDB_CREATE, &s->dbi[i]))) {
            snprintf(err, errlen, "%s: cannot open sub-database %s: %s", dir, db_names[i],
                     mdb_strerror(mrc));
            goto fail;
        }
    }
    MDB_val k = {sizeof NEXT_SEQ_KEY - 1, (void *)NEXT_SEQ_KEY}, v;
    mrc = mdb_get(txn, s->dbi[DB_META], &k, &v);
    if (mrc == 0 && v.mv_size == 8) {
        s->next_seq = evbus__get_be64(v.mv_data);
    } else if (mrc == MDB_NOTFOUND) {
        s->next_seq = 1;
    } else {
        snprintf(err, errlen, "%s: cannot read next sequence: %s", dir,
                 mrc ? mdb_strerror(mrc) : "record has the wrong size");
        goto fail;
    }
    pthread_mutex_init(&s->counts_lock, NULL);
    if ((mrc = walk_all(s, txn, DB_PENDING, count_one_pending))) {
        snprintf(err, errlen, "%s: cannot count pending deliveries: %s", dir, mdb_strerror(mrc));
        goto fail;
    }
    s->ids = evbus__id_index_new();
    if (!s->ids || (mrc = walk_all(s, txn, DB_DEDUP_LOG, load_one_id))) {
        snprintf(err, errlen, "%s: cannot load the dedup window: %s", dir,
                 s->ids ? mdb_strerror(mrc) : "out of memory");
        goto fail;
    }
    if ((mrc = mdb_dbi_open(txn, NULL, 0, &s->main_dbi))) {
        snprintf(err, errlen, "%s: cannot open the main database: %s", dir, mdb_strerror(mrc));
        goto fail;
    }
    if ((mrc = mdb_txn_commit(txn))) {
        txn = NULL;
        snprintf(err, errlen, "%s: cannot commit: %s", dir, mdb_strerror(mrc));
        goto fail;
    }
    int fd = -1;
    MDB_stat est;
    MDB_envinfo info;
    mdb_env_get_fd(s->env, &fd);
    mdb_env_stat(s->env, &est);
    mdb_env_info(s->env, &info);
    evbus__space_init(&s->space, fd, dir, est.ms_psize, info.me_mapsize,
                      (uint64_t)info.me_last_pgno + 1, evbus__now_mono_ms());
    *out = s;
    return EVBUS_OK;

fail:
    if (txn)
        mdb_txn_abort(txn);
    evbus__id_index_destroy(&s->ids);
    if (s->env)
        mdb_env_close(s->env);
    if (s->lock_fd >= 0)
        close(s->lock_fd);
    free(s);
    return rc;
}

void evbus__store_close(evbus__store **sp) {
    if (!sp || !*sp)
        return;
    evbus__store *s = *sp;
    mdb_env_close(s->env);
    close(s->lock_fd);
    evbus__id_index_destroy(&s->ids);
    free(s->added);
    free(s->expired);
    free(s->hashes);
    free(s->pending);
    free(s->delta);
    pthread_mutex_destroy(&s->counts_lock);
    free(s);
    *sp = NULL;
}

/* Forgets up to `budget` ids accepted before `before_ms`, oldest first. The
 * dedup log is in sequence order, which is acceptance order. The index
 * entries are removed only once the transaction commits. */
static int expire_ids(evbus__store *s, MDB_txn *txn, int64_t before_ms, size_t budget) {
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, s->dbi[DB_DEDUP_LOG], &cur);
    if (mrc)
        return mrc;
    MDB_val k, v;
    while (budget-- > 0 && (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
        if (k.mv_size != 8 || v.mv_size < 8 || (int64_t)evbus__get_be64(v.mv_data) >= before_ms)
            break;
        uint64_t h = evbus__id_hash((char *)v.mv_data + 8, v.mv_size - 8);
        if (push_change(&s->expired, &s->expired_cap, &s->n_expired, h,
                        evbus__get_be64(k.mv_data))) {
            mrc = ENOMEM;
            break;
        }
        if ((mrc = mdb_cursor_del(cur, 0)))
            break;
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* The sequence an id was stored under, or 0. A hash hit in the index is only
 * a candidate: it is confirmed against the id kept in the dedup log. */
static int find_id(evbus__store *s, MDB_txn *txn, const char *id, size_t len, uint64_t h,
                   uint64_t *seq) {
    uint64_t cand;
    size_t cursor = 0;
    *seq = 0;
    while (evbus__id_index_next(s->ids, h, &cursor, &cand)) {
        unsigned char ck[8];
        evbus__put_be64(ck, cand);
        MDB_val k = {8, ck}, v;
        int mrc = mdb_get(txn, s->dbi[DB_DEDUP_LOG], &k, &v);
        if (mrc && mrc != MDB_NOTFOUND)
            return mrc;
        if (mrc == 0 && v.mv_size == 8 + len && memcmp((char *)v.mv_data + 8, id, len) == 0) {
            *seq = cand;
            return 0;
        }
    }
    return 0;
}

/* Pages the trees hold in `txn`, its own changes included: every
 * sub-database, the main DB and the free-page DB (dbi 0, as mdb_stat(1)
 * reads it), plus the two meta pages. Pages on the free list are not
 * counted: LMDB reuses them before it grows the file. */
static uint64_t pages_in_use(evbus__store *s, MDB_txn *txn) {
    uint64_t n = 2;
    MDB_stat st;
    MDB_dbi all[DB_COUNT + 2] = {0, s->main_dbi};
    for (int i = 0; i < DB_COUNT; i++)
        all[i + 2] = s->dbi[i];
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        if (mdb_stat(txn, all[i], &st) == 0)
            n += st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    return n;
}

/* About how many pages a batch adds: records too big for a leaf page in
 * overflow pages of their own, everything else packed at half a page's
 * fill (pages split in two). */
static uint64_t batch_pages(const evbus__store *s, const evbus__store_item *items, size_t n) {
    uint64_t pages = 8, small = 0;
    for (size_t i = 0; i < n; i++) {
        uint64_t p = evbus__space_item_pages(&s->space, &items[i]) - 1;
        pages += p;
        small += (p ? 0 : items[i].record_len) + items[i].id_len + 64 + 32 * items[i].n_targets;
    }
    return pages + 2 * small / s->space.psize;
}

/* Most ids forgotten early in one commit, which keeps that commit short. */
#define EARLY_IDS_MAX 100000

/* The map (or the disk under it) is full for events. When ids kept for deduplication hold at least
 * half of it, waiting for their window to end (24 h by default) would keep
 * ingest refused all that time with nothing to deliver: the oldest ids are
 * forgotten now instead (an eighth of them per commit), which shortens the
 * dedup window; the refused items are told so (FULL_IDS). Sets *forgot and
 * *window_ms (how long the oldest id left had been kept). Returns an LMDB
 * code. */
static int forget_ids_early(evbus__store *s, MDB_txn *txn, evbus__store_item *items, size_t n,
                            int64_t now_ms, size_t *forgot, int64_t *window_ms) {
    MDB_stat st;
    int mrc = mdb_stat(txn, s->dbi[DB_DEDUP_LOG], &st);
    if (mrc)
        return mrc;
    uint64_t id_pages = st.ms_branch_pages + st.ms_leaf_pages + st.ms_overflow_pages;
    if (2 * id_pages < pages_in_use(s, txn))
        return 0; /* mostly events waiting for delivery: delivery frees space */
    size_t budget = st.ms_entries / 8;
    if (budget < 2 * n + 16)
        budget = 2 * n + 16;
    if (budget > EARLY_IDS_MAX)
        budget = EARLY_IDS_MAX;
    size_t before = s->n_expired;
    if ((mrc = expire_ids(s, txn, INT64_MAX, budget)))
        return mrc;
    *forgot = s->n_expired - before;
    MDB_cursor *cur;
    if ((mrc = mdb_cursor_open(txn, s->dbi[DB_DEDUP_LOG], &cur)))
        return mrc;
    MDB_val k, v;
    *window_ms = 0;
    if (mdb_cursor_get(cur, &k, &v, MDB_FIRST) == 0 && v.mv_size >= 8)
        *window_ms = now_ms - (int64_t)evbus__get_be64(v.mv_data);
    mdb_cursor_close(cur);
    for (size_t i = 0; i < n; i++)
        if (items[i].outcome == EVBUS__FULL || items[i].outcome == EVBUS__DISK_FULL)
            items[i].outcome = EVBUS__FULL_IDS;
    return 0;
}

/* Says, at most once a minute, that ids are forgotten early and how long
 * they are kept now: producers relying on deduplication need to know. */
static void warn_ids_early(evbus__store *s, int64_t window_ms, int64_t mono_ms) {
    if (s->early_log_ms && mono_ms - s->early_log_ms < 60000)
        return;
    EVBUS_LOG_W("store",
                "storage full of event ids kept for deduplication: forgot %llu id(s) before "
                "storage.dedup_window ended; ids are now remembered for about %lld s, so a "
                "producer resending later gets its event stored twice (raise storage.map_size "
                "to keep the whole window)",
                (unsigned long long)(s->ids_early - s->ids_early_logged),
                (long long)(window_ms / 1000));
    s->ids_early_logged = s->ids_early;
    s->early_log_ms = mono_ms;
}

/* True when a commit holding only `res` may skip the meta page's sync
 * (store.h: may_undo): undoing it after a system crash only makes entries
 * pending again, to be delivered again, and never loses an acked event nor
 * anything an operator was told is done (replays, drops, routing state). */
static bool undo_only_redelivers(const evbus__store_results *res, size_t n_items) {
    if (!res || !res->may_undo || n_items > 0 || res->n == 0)
        return false;
    for (size_t i = 0; i < res->n; i++) {
        evbus__delivery o = res->v[i].outcome;
        if (o != EVBUS__DELIVERED && o != EVBUS__RETRY && o != EVBUS__DEAD)
            return false;
    }
    return true;
}

/* Whether the retry and dead-letter sub-databases hold anything now (see
 * may_retry in evbus__store). */
static int note_retries_and_dead(evbus__store *s, MDB_txn *txn) {
    MDB_stat st;
    int mrc = mdb_stat(txn, s->dbi[DB_RETRY], &st);
    if (mrc)
        return mrc;
    s->may_retry = st.ms_entries > 0;
    if ((mrc = mdb_stat(txn, s->dbi[DB_DLQ], &st)))
        return mrc;
    s->may_dead = st.ms_entries > 0;
    return 0;
}

/* One attempt at appending items[0..n). Returns an LMDB code; on success every
 * item's outcome is set. */
static int append_txn(evbus__store *s, evbus__store_item *items, size_t n,
                      const evbus__store_results *res, int64_t now_ms, int64_t expire_before_ms,
                      uint64_t max_backlog, int64_t mono_ms) {
    MDB_txn *txn;
    int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (mrc)
        return mrc;
    /* What this attempt changes, undone or applied at its end: reset before
     * anything can fail. */
    s->n_added = s->n_expired = 0;
    for (size_t i = 0; i < s->n_counted; i++)
        s->delta[i] = 0;
    /* Results first: they mostly free space the new events may need. */
    if (res && res->n && (mrc = note_retries_and_dead(s, txn)))
        goto abort;
    for (size_t i = 0; res && i < res->n; i++)
        if ((mrc = apply_result(s, txn, &res->v[i], res->n_targets)))
            goto abort;
    uint64_t seq = s->next_seq;
    MDB_stat st;
    uint64_t stored = 0;
    if (max_backlog) {
        if ((mrc = mdb_stat(txn, s->dbi[DB_EVENTS], &st)))
            goto abort;
        stored = st.ms_entries;
    }
    if (n > s->hashes_cap) {
        uint64_t *hv = realloc(s->hashes, n * sizeof *hv);
        if (!hv) {
            mrc = ENOMEM;
            goto abort;
        }
        s->hashes = hv;
        s->hashes_cap = n;
    }
    for (size_t i = 0; i < n; i++)
        s->hashes[i] = evbus__id_hash(items[i].id, items[i].id_len);
    /* Events may not use the reserve kept for results (applied above). Each
     * one is checked against the limit only when the whole batch might not
     * fit: far from full, this costs nothing per event. */
    bool check = n > 0 && evbus__space_admit(&s->space, pages_in_use(s, txn),
                                             batch_pages(s, items, n), mono_ms) != EVBUS__STORED;
    evbus__store_outcome refused = 0; /* once one is refused, so are all later new events */
    for (size_t i = 0; i < n; i++) {
        evbus__store_item *it = &items[i];
        uint64_t h = s->hashes[i], dup;
        if (i + PREFETCH_AHEAD < n)
            evbus__id_index_prefetch(s->ids, s->hashes[i + PREFETCH_AHEAD]);
        if ((mrc = find_id(s, txn, it->id, it->id_len, h, &dup)))
            goto abort;
        if (dup) {
            it->outcome = EVBUS__DUPLICATE;
            it->seq = dup;
            continue;
        }
        if (max_backlog && stored >= max_backlog) {
            it->outcome = EVBUS__BACKLOG;
            it->seq = 0;
            continue;
        }
        if (check && !refused) {
            evbus__store_outcome o = evbus__space_admit(
                &s->space, pages_in_use(s, txn), evbus__space_item_pages(&s->space, it), mono_ms);
            refused = o == EVBUS__STORED ? 0 : o;
        }
        if (refused) {
            it->outcome = refused;
            it->seq = 0;
            continue;
        }
        /* Both writes append at the end of their tree (MDB_APPEND): a commit
         * dirties only the last pages, whatever the ids look like. */
        unsigned char key[8];
        evbus__put_be64(key, seq);
        MDB_val ek = {8, key}, ev = {it->record_len, (void *)it->record};
        if ((mrc = mdb_put(txn, s->dbi[DB_EVENTS], &ek, &ev, MDB_APPEND)))
            goto abort;
        MDB_val lv = {8 + it->id_len, NULL};
        if ((mrc = mdb_put(txn, s->dbi[DB_DEDUP_LOG], &ek, &lv, MDB_APPEND | MDB_RESERVE)))
            goto abort;
        evbus__put_be64(lv.mv_data, (uint64_t)now_ms);
        memcpy((char *)lv.mv_data + 8, it->id, it->id_len);
        for (size_t t = 0; t < it->n_targets; t++) {
            unsigned char pk[12], pv[8];
            target_key(pk, it->targets[t], seq);
            evbus__put_be64(pv, (uint64_t)now_ms);
            MDB_val pkv = {sizeof pk, pk}, pvv = {sizeof pv, pv};
            if ((mrc = mdb_put(txn, s->dbi[DB_PENDING], &pkv, &pvv, 0)))
                goto abort;
            count_change(s, it->targets[t], 1);
        }
        if (push_change(&s->added, &s->added_cap, &s->n_added, h, seq) ||
            evbus__id_index_put(s->ids, h, seq)) {
            mrc = ENOMEM;
            goto abort;
        }
        it->outcome = EVBUS__STORED;
        it->seq = seq++;
        stored++;
    }
    if (seq != s->next_seq) {
        unsigned char nv[8];
        evbus__put_be64(nv, seq);
        MDB_val k = {sizeof NEXT_SEQ_KEY - 1, (void *)NEXT_SEQ_KEY}, v = {8, nv};
        if ((mrc = mdb_put(txn, s->dbi[DB_META], &k, &v, 0)))
            goto abort;
    }
    /* Expiry rides along in the same commit: forgetting twice as many ids as
     * were added keeps the window bounded without a commit of its own. */
    int64_t early_window = 0;
    size_t n_early = 0;
    /* Full for events: first what nothing needs any more (events no target
     * takes, kept only until space is wanted when there is no retention),
     * then, if ids hold most of the store, the oldest ids. A full disk
     * counts as full too: delivery frees neither, so on a file system
     * smaller than the map "disk full" would otherwise last until the
     * dedup window ends, with nothing left to deliver. */
    bool full = refused == EVBUS__FULL || refused == EVBUS__DISK_FULL;
    if (full && s->retention_ms == 0 && (mrc = sweep_retained(s, txn, INT64_MAX, 8 * n + 1024)))
        goto abort;
    if (full && (mrc = forget_ids_early(s, txn, items, n, now_ms, &n_early, &early_window)))
        goto abort;
    if ((mrc = expire_ids(s, txn, expire_before_ms, 2 * n + 16)))
        goto abort;
    if (s->retention_ms > 0 &&
        (mrc = sweep_retained(s, txn, now_ms - s->retention_ms, 2 * n + (res ? res->n : 0) + 16)))
        goto abort;
    /* LMDB reads MDB_NOMETASYNC when the commit writes the meta page, and
     * only this thread writes, so it applies to this commit alone. It is
     * documented as changeable at any time (lmdb.h, mdb_env_open). */
    bool lazy = undo_only_redelivers(res, n);
    if (lazy)
        mdb_env_set_flags(s->env, MDB_NOMETASYNC, 1);
    mrc = mdb_txn_commit(txn);
    if (lazy)
        mdb_env_set_flags(s->env, MDB_NOMETASYNC, 0);
    txn = NULL;
    if (mrc)
        goto abort;
    /* A synced commit makes every earlier one durable too. */
    s->meta_unsynced = lazy;
    s->next_seq = seq;
    if (n_early) {
        pthread_mutex_lock(&s->counts_lock);
        s->ids_early += n_early;
        s->early_window_ms = early_window;
        pthread_mutex_unlock(&s->counts_lock);
        warn_ids_early(s, early_window, mono_ms);
    }
    for (size_t i = 0; i < s->n_expired; i++)
        evbus__id_index_del(s->ids, s->expired[i].hash, s->expired[i].seq);
    pthread_mutex_lock(&s->counts_lock);
    for (size_t i = 0; i < s->n_counted; i++)
        s->pending[i] = (uint64_t)((int64_t)s->pending[i] + s->delta[i]);
    pthread_mutex_unlock(&s->counts_lock);
    return 0;
abort:
    if (txn)
        mdb_txn_abort(txn);
    /* The index must match what is durable: forget what this attempt added. */
    for (size_t i = 0; i < s->n_added; i++)
        evbus__id_index_del(s->ids, s->added[i].hash, s->added[i].seq);
    return mrc;
}

/* Records results [off, off + len) in parts small enough to commit, after
 * they did not fit in one transaction: halves, then halves of those.
 * Returns how many leading results are durable. */
static size_t record_in_parts(evbus__store *s, const evbus__store_results *res, size_t off,
                              size_t len, int64_t now_ms, int64_t expire_before_ms,
                              int64_t mono_ms) {
    if (len < 2)
        return 0;
    size_t done = 0;
    for (size_t part = len / 2, at = off; at < off + len; at += part) {
        if (part > off + len - at)
            part = off + len - at;
        evbus__store_results sub = {res->v + at, part, res->n_targets, 0, res->may_undo};
        int mrc = append_txn(s, NULL, 0, &sub, now_ms, expire_before_ms, 0, mono_ms);
        size_t got = part;
        if (mrc && evbus__space_classify(&s->space, mrc, mono_ms))
            got = record_in_parts(s, res, at, part, now_ms, expire_before_ms, mono_ms);
        else if (mrc)
            got = 0;
        done += got;
        if (got < part)
            break;
    }
    return done;
}

/* Logs what a call refused or recorded, once per change of state. */
static void note_space(evbus__store *s, const evbus__store_item *items, size_t n,
                       const evbus__store_results *res, int mrc, int64_t mono_ms) {
    uint64_t refused = 0, stored = 0;
    evbus__store_outcome why = EVBUS__STORED;
    for (size_t i = 0; i < n; i++) {
        evbus__store_outcome o = items[i].outcome;
        if (o == EVBUS__FULL || o == EVBUS__FULL_IDS || o == EVBUS__DISK_FULL ||
            o == EVBUS__IO_ERROR) {
            refused++;
            why = o;
        }
        stored += o == EVBUS__STORED;
    }
    if (refused || stored)
        evbus__space_note(&s->space, why, refused, mono_ms);
    if (mrc && mrc != MDB_MAP_FULL && mono_ms - s->io_log_ms >= 10000) {
        s->io_log_ms = mono_ms;
        EVBUS_LOG_W("store", "a commit failed: %s (%s)", mdb_strerror(mrc),
                    why == EVBUS__IO_ERROR ? "an I/O error" : "no space left");
    }
    if (res && res->n_recorded < res->n && mono_ms - s->results_log_ms >= 10000) {
        s->results_log_ms = mono_ms;
        EVBUS_LOG_W("store",
                    "%zu delivery result(s) wait for space to be recorded; their events stay in "
                    "flight until then",
                    res->n - res->n_recorded);
    }
}

evbus_err evbus__store_append(evbus__store *s, evbus__store_item *items, size_t n,
                              evbus__store_results *res, int64_t now_ms, int64_t expire_before_ms,
                              uint64_t max_backlog) {
    int64_t mono = evbus__now_mono_ms();
    MDB_envinfo info;
    mdb_env_info(s->env, &info);
    evbus__space_prepare(&s->space, (uint64_t)info.me_last_pgno + 1, batch_pages(s, items, n),
                         mono);
    if (res)
        res->n_recorded = 0;
    size_t fit = n;
    evbus__store_outcome cause = EVBUS__FULL; /* why items from `fit` on were not stored */
    int mrc, first_err = 0;
    for (;;) {
        mrc = append_txn(s, items, fit, res, now_ms, expire_before_ms, max_backlog, mono);
        if (mrc == 0)
            break;
        first_err = first_err ? first_err : mrc;
        cause = evbus__space_classify(&s->space, mrc, mono);
        if (!cause) {
            EVBUS_LOG_E("store", "append of %zu events failed: %s", fit, mdb_strerror(mrc));
            return EVBUS_ESTORE;
        }
        if (fit == 0)
            break;
        /* Map full: commit the leading part that fits, halving until it does
         * (or nothing does). Out of disk or failing to write: commit the
         * results alone (they mostly reuse pages inside the file). */
        fit = cause == EVBUS__FULL ? fit / 2 : 0;
    }
    for (size_t i = fit; i < n; i++) {
        items[i].outcome = cause;
        items[i].seq = 0;
    }
    if (res && mrc == 0)
        res->n_recorded = res->n;
    else if (res)
        res->n_recorded =
            record_in_parts(s, res, 0, res->n, now_ms, expire_before_ms, evbus__now_mono_ms());
    note_space(s, items, n, res, first_err, mono);
    return EVBUS_OK;
}

/* A short read transaction and a cursor on one sub-database: end both with
 * mdb_cursor_close() and mdb_txn_abort(). Returns 0, or -1 (nothing open). */
static int read_cursor(evbus__store *s, int db, MDB_txn **txn, MDB_cursor **cur) {
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, txn))
        return -1;
    if (mdb_cursor_open(*txn, s->dbi[db], cur)) {
        mdb_txn_abort(*txn);
        return -1;
    }
    return 0;
}

bool evbus__store_unsynced(const evbus__store *s) {
    return s->meta_unsynced;
}

evbus_err evbus__store_sync(evbus__store *s) {
    if (!s->meta_unsynced)
        return EVBUS_OK;
    int mrc = mdb_env_sync(s->env, 1);
    if (mrc) {
        EVBUS_LOG_W("store", "cannot sync the store: %s", mdb_strerror(mrc));
        return EVBUS_EIO;
    }
    s->meta_unsynced = false;
    return EVBUS_OK;
}

evbus_err evbus__store_stats_get(evbus__store *s, evbus__store_stats *out) {
    MDB_txn *txn;
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return EVBUS_ESTORE;
    MDB_stat st;
    MDB_envinfo info;
    MDB_stat envst;
    memset(out, 0, sizeof *out);
    if (mdb_stat(txn, s->dbi[DB_EVENTS], &st) == 0)
        out->events = st.ms_entries;
    if (mdb_stat(txn, s->dbi[DB_PENDING], &st) == 0)
        out->pending = st.ms_entries;
    mdb_txn_abort(txn);
    out->ids = evbus__id_index_count(s->ids);
    pthread_mutex_lock(&s->counts_lock);
    out->ids_forgotten_early = s->ids_early;
    out->dedup_window_ms = s->early_window_ms;
    pthread_mutex_unlock(&s->counts_lock);
    mdb_env_info(s->env, &info);
    mdb_env_stat(s->env, &envst);
    out->map_size = info.me_mapsize;
    out->map_used = (uint64_t)(info.me_last_pgno + 1) * envst.ms_psize;
    out->next_seq = s->next_seq;
    return EVBUS_OK;
}

evbus_err evbus__store_foreach_event(evbus__store *s,
                                     int (*fn)(void *arg, uint64_t seq, const void *record,
                                               size_t len),
                                     void *arg) {
    MDB_txn *txn;
    MDB_cursor *cur;
    if (read_cursor(s, DB_EVENTS, &txn, &cur))
        return EVBUS_ESTORE;
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0) {
        if (k.mv_size == 8 && fn(arg, evbus__get_be64(k.mv_data), v.mv_data, v.mv_size))
            break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return EVBUS_OK;
}

/* Walks one sub-database keyed by target(4) seq(8): the entries of `target`
 * from sequence `from` on, or of every target when target is UINT32_MAX. */
static evbus_err walk_targets(evbus__store *s, int db, uint32_t target, uint64_t from,
                              int (*fn)(void *arg, const MDB_val *k, const MDB_val *v), void *arg) {
    MDB_txn *txn;
    MDB_cursor *cur;
    if (read_cursor(s, db, &txn, &cur))
        return EVBUS_ESTORE;
    unsigned char start[12];
    target_key(start, target == UINT32_MAX ? 0 : target, from);
    MDB_val k = {sizeof start, start}, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE);
    while (mrc == 0 && k.mv_size == 12 &&
           (target == UINT32_MAX || memcmp(k.mv_data, start, 4) == 0)) {
        if (fn(arg, &k, &v))
            break;
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return EVBUS_OK;
}

typedef struct pending_walk {
    int (*fn)(void *arg, uint64_t seq);
    void *arg;
} pending_walk;

static int on_pending(void *arg, const MDB_val *k, const MDB_val *v) {
    (void)v;
    pending_walk *w = arg;
    return w->fn(w->arg, evbus__get_be64((const unsigned char *)k->mv_data + 4));
}

evbus_err evbus__store_foreach_pending(evbus__store *s, uint32_t target, uint64_t after,
                                       int (*fn)(void *arg, uint64_t seq), void *arg) {
    if (after == UINT64_MAX)
        return EVBUS_OK;
    pending_walk w = {fn, arg};
    return walk_targets(s, DB_PENDING, target, after + 1, on_pending, &w);
}

typedef struct owed_walk {
    int (*fn)(void *arg, uint64_t seq, uint32_t owed);
    void *arg;
    uint32_t all;
    uint64_t *counts;
    size_t n;
} owed_walk;

static uint32_t owed_of(const owed_walk *w, const MDB_val *v) {
    return v->mv_size >= 12 ? get_be32((const unsigned char *)v->mv_data + 8) : w->all;
}

static int on_owed(void *arg, const MDB_val *k, const MDB_val *v) {
    owed_walk *w = arg;
    return w->fn(w->arg, evbus__get_be64((const unsigned char *)k->mv_data + 4), owed_of(w, v));
}

evbus_err evbus__store_foreach_owed(evbus__store *s, uint32_t target, uint64_t after, uint32_t all,
                                    int (*fn)(void *arg, uint64_t seq, uint32_t owed), void *arg) {
    if (after == UINT64_MAX)
        return EVBUS_OK;
    owed_walk w = {.fn = fn, .arg = arg, .all = all};
    return walk_targets(s, DB_PENDING, target, after + 1, on_owed, &w);
}

static int count_owed(void *arg, const MDB_val *k, const MDB_val *v) {
    (void)k;
    owed_walk *w = arg;
    uint32_t owed = owed_of(w, v);
    for (size_t p = 0; p < w->n && p < 32; p++)
        w->counts[p] += (owed >> p) & 1;
    return 0;
}

evbus_err evbus__store_owed_counts(evbus__store *s, uint32_t target, uint32_t all, uint64_t *counts,
                                   size_t n) {
    memset(counts, 0, n * sizeof *counts);
    owed_walk w = {.all = all, .counts = counts, .n = n};
    return walk_targets(s, DB_PENDING, target, 0, count_owed, &w);
}

typedef struct retry_walk {
    int (*fn)(void *arg, uint32_t target, uint64_t seq, uint32_t attempts, int64_t due_ms);
    void *arg;
} retry_walk;

static int on_retry(void *arg, const MDB_val *k, const MDB_val *v) {
    retry_walk *w = arg;
    if (v->mv_size < 12)
        return 0;
    const unsigned char *kp = k->mv_data, *vp = v->mv_data;
    return w->fn(w->arg, get_be32(kp), evbus__get_be64(kp + 4), get_be32(vp),
                 (int64_t)evbus__get_be64(vp + 4));
}

evbus_err evbus__store_foreach_retry(evbus__store *s,
                                     int (*fn)(void *arg, uint32_t target, uint64_t seq,
                                               uint32_t attempts, int64_t due_ms),
                                     void *arg) {
    retry_walk w = {fn, arg};
    return walk_targets(s, DB_RETRY, UINT32_MAX, 0, on_retry, &w);
}

typedef struct dead_walk {
    int (*fn)(void *arg, uint32_t target, uint64_t seq, uint32_t attempts, int64_t dead_ms,
              const char *reason);
    void *arg;
} dead_walk;

static int on_dead(void *arg, const MDB_val *k, const MDB_val *v) {
    dead_walk *w = arg;
    if (v->mv_size < 12)
        return 0;
    const unsigned char *kp = k->mv_data, *vp = v->mv_data;
    char reason[1025];
    size_t rlen = v->mv_size - 12 < 1024 ? v->mv_size - 12 : 1024;
    memcpy(reason, vp + 12, rlen);
    reason[rlen] = '\0';
    return w->fn(w->arg, get_be32(kp), evbus__get_be64(kp + 4), get_be32(vp),
                 (int64_t)evbus__get_be64(vp + 4), reason);
}

evbus_err evbus__store_foreach_dead(evbus__store *s, uint32_t target,
                                    int (*fn)(void *arg, uint32_t target, uint64_t seq,
                                              uint32_t attempts, int64_t dead_ms,
                                              const char *reason),
                                    void *arg) {
    dead_walk w = {fn, arg};
    return walk_targets(s, DB_DLQ, target, 0, on_dead, &w);
}

evbus_err evbus__store_read_events(evbus__store *s, const uint64_t *seqs, size_t n,
                                   void (*fn)(void *arg, size_t i, const void *record, size_t len),
                                   void *arg) {
    MDB_txn *txn;
    MDB_cursor *cur;
    if (read_cursor(s, DB_EVENTS, &txn, &cur))
        return EVBUS_ESTORE;
    /* A batch's sequences mostly follow each other: one cursor steps to the
     * next record instead of searching the tree from its root for each. */
    bool placed = false;
    uint64_t at = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char k[8];
        evbus__put_be64(k, seqs[i]);
        MDB_val kv, v;
        int mrc = MDB_NOTFOUND;
        if (placed && seqs[i] > at) {
            mrc = mdb_cursor_get(cur, &kv, &v, MDB_NEXT);
            if (mrc == 0 && (kv.mv_size != 8 || memcmp(kv.mv_data, k, 8) != 0))
                mrc = MDB_NOTFOUND;
        }
        if (mrc != 0) {
            kv = (MDB_val){8, k};
            mrc = mdb_cursor_get(cur, &kv, &v, MDB_SET_KEY);
        }
        placed = mrc == 0;
        at = seqs[i];
        if (placed)
            fn(arg, i, v.mv_data, v.mv_size);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return EVBUS_OK;
}

evbus_err evbus__store_target_backlog(evbus__store *s, uint32_t target, uint64_t *pending,
                                      int64_t *oldest_ms) {
    pthread_mutex_lock(&s->counts_lock);
    *pending = target < s->n_counted ? s->pending[target] : 0;
    pthread_mutex_unlock(&s->counts_lock);
    *oldest_ms = 0;
    MDB_txn *txn;
    MDB_cursor *cur;
    if (read_cursor(s, DB_PENDING, &txn, &cur))
        return EVBUS_ESTORE;
    unsigned char start[12];
    target_key(start, target, 0);
    MDB_val k = {sizeof start, start}, v;
    /* The lowest sequence is the oldest entry: sequences grow with time. */
    if (mdb_cursor_get(cur, &k, &v, MDB_SET_RANGE) == 0 && k.mv_size == 12 &&
        memcmp(k.mv_data, start, 4) == 0 && v.mv_size >= 8)
        *oldest_ms = (int64_t)evbus__get_be64(v.mv_data);
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return EVBUS_OK;
}

void evbus__store_pending_counts(evbus__store *s, uint64_t *out, size_t n) {
    pthread_mutex_lock(&s->counts_lock);
    for (size_t i = 0; i < n; i++)
        out[i] = i < s->n_counted ? s->pending[i] : 0;
    pthread_mutex_unlock(&s->counts_lock);
}

evbus_err evbus__store_foreach_since(evbus__store *s, int64_t since_ms,
                                     int (*fn)(void *arg, uint64_t seq), void *arg) {
    MDB_txn *txn;
    MDB_cursor *cur;
    if (read_cursor(s, DB_EVENTS, &txn, &cur))
        return EVBUS_ESTORE;
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    for (; mrc == 0; mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT)) {
        if (k.mv_size != 8 || (int64_t)record_accepted_ms(v.mv_data, v.mv_size) < since_ms)
            continue;
        if (fn(arg, evbus__get_be64(k.mv_data)))
            break;
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return EVBUS_OK;
}

evbus_err evbus__store_foreach_state(evbus__store *s,
                                     void (*fn)(void *arg, const char *key, const char *value),
                                     void *arg) {
    MDB_txn *txn;
    MDB_cursor *cur;
    if (read_cursor(s, DB_STATE, &txn, &cur))
        return EVBUS_ESTORE;
    MDB_val k, v;
    int mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST);
    while (mrc == 0) {
        char key[256], value[1100];
        if (k.mv_size < sizeof key && v.mv_size < sizeof value) {
            memcpy(key, k.mv_data, k.mv_size);
            key[k.mv_size] = '\0';
            memcpy(value, v.mv_data, v.mv_size);
            value[v.mv_size] = '\0';
            fn(arg, key, value);
        }
        mrc = mdb_cursor_get(cur, &k, &v, MDB_NEXT);
    }
    mdb_cursor_close(cur);
    mdb_txn_abort(txn);
    return EVBUS_OK;
}
