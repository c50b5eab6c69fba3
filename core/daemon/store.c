#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <lmdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/log.h"
#include "common/util.h"

enum { DB_EVENTS, DB_IDS, DB_DEDUP_LOG, DB_PENDING, DB_RETRY, DB_DLQ, DB_STATE, DB_META, DB_COUNT };

static const char *const db_names[DB_COUNT] = {"events", "ids", "dedup_log", "pending",
                                               "retry",  "dlq", "state",     "meta"};

struct evbus__store {
    MDB_env *env;
    MDB_dbi dbi[DB_COUNT];
    int lock_fd;
    uint64_t next_seq;
};

static const char NEXT_SEQ_KEY[] = "next_seq";

static int take_lock(const char *dir, char *err, size_t errlen) {
    char path[4096];
    snprintf(path, sizeof path, "%s/evbusd.lock", dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
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

evbus_err evbus__store_open(const char *dir, uint64_t map_size, evbus__store **out, char *err,
                            size_t errlen) {
    evbus__store *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    s->lock_fd = -1;
    evbus_err rc = EVBUS_ESTORE;
    MDB_txn *txn = NULL;
    int mrc;

    if (mkdir(dir, 0755) != 0 && errno != EEXIST) {
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
        (mrc = mdb_env_open(s->env, dir, MDB_NOTLS, 0644))) {
        snprintf(err, errlen, "%s: cannot open LMDB store: %s", dir, mdb_strerror(mrc));
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
    if ((mrc = mdb_txn_commit(txn))) {
        txn = NULL;
        snprintf(err, errlen, "%s: cannot commit: %s", dir, mdb_strerror(mrc));
        goto fail;
    }
    *out = s;
    return EVBUS_OK;

fail:
    if (txn)
        mdb_txn_abort(txn);
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
    free(s);
    *sp = NULL;
}

/* Forgets up to `budget` ids accepted before `before_ms`, oldest first. The
 * dedup log is in sequence order, which is acceptance order. */
static int expire_ids(evbus__store *s, MDB_txn *txn, int64_t before_ms, size_t budget) {
    MDB_cursor *cur;
    int mrc = mdb_cursor_open(txn, s->dbi[DB_DEDUP_LOG], &cur);
    if (mrc)
        return mrc;
    MDB_val k, v;
    while (budget-- > 0 && (mrc = mdb_cursor_get(cur, &k, &v, MDB_FIRST)) == 0) {
        if (v.mv_size < 8 || (int64_t)evbus__get_be64(v.mv_data) >= before_ms)
            break;
        MDB_val id = {v.mv_size - 8, (char *)v.mv_data + 8};
        mrc = mdb_del(txn, s->dbi[DB_IDS], &id, NULL);
        if (mrc && mrc != MDB_NOTFOUND)
            break;
        if ((mrc = mdb_cursor_del(cur, 0)))
            break;
    }
    mdb_cursor_close(cur);
    return mrc == MDB_NOTFOUND ? 0 : mrc;
}

/* One attempt at appending items[0..n). Returns an LMDB code; on success every
 * item's outcome is set. */
static int append_txn(evbus__store *s, evbus__store_item *items, size_t n, int64_t now_ms,
                      int64_t expire_before_ms, uint64_t max_backlog) {
    MDB_txn *txn;
    int mrc = mdb_txn_begin(s->env, NULL, 0, &txn);
    if (mrc)
        return mrc;
    uint64_t seq = s->next_seq;
    MDB_stat st;
    uint64_t stored = 0;
    if (max_backlog) {
        if ((mrc = mdb_stat(txn, s->dbi[DB_EVENTS], &st)))
            goto abort;
        stored = st.ms_entries;
    }
    unsigned char idrec[8 + 8];
    evbus__put_be64(idrec + 8, (uint64_t)now_ms);
    for (size_t i = 0; i < n; i++) {
        evbus__store_item *it = &items[i];
        MDB_val k = {it->id_len, (void *)it->id}, v;
        mrc = mdb_get(txn, s->dbi[DB_IDS], &k, &v);
        if (mrc == 0 && v.mv_size >= 8) {
            it->outcome = EVBUS__DUPLICATE;
            it->seq = evbus__get_be64(v.mv_data);
            continue;
        }
        if (mrc && mrc != MDB_NOTFOUND)
            goto abort;
        if (max_backlog && stored >= max_backlog) {
            it->outcome = EVBUS__BACKLOG;
            it->seq = 0;
            continue;
        }
        unsigned char key[8];
        evbus__put_be64(key, seq);
        MDB_val ek = {8, key}, ev = {it->record_len, (void *)it->record};
        if ((mrc = mdb_put(txn, s->dbi[DB_EVENTS], &ek, &ev, MDB_APPEND)))
            goto abort;
        evbus__put_be64(idrec, seq);
        MDB_val iv = {sizeof idrec, idrec};
        if ((mrc = mdb_put(txn, s->dbi[DB_IDS], &k, &iv, 0)))
            goto abort;
        /* dedup_log value: accepted_ms then the id, written in place. */
        MDB_val lv = {8 + it->id_len, NULL};
        if ((mrc = mdb_put(txn, s->dbi[DB_DEDUP_LOG], &ek, &lv, MDB_APPEND | MDB_RESERVE)))
            goto abort;
        evbus__put_be64(lv.mv_data, (uint64_t)now_ms);
        memcpy((char *)lv.mv_data + 8, it->id, it->id_len);
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
    if ((mrc = expire_ids(s, txn, expire_before_ms, 2 * n + 16)))
        goto abort;
    if ((mrc = mdb_txn_commit(txn)))
        return mrc;
    s->next_seq = seq;
    return 0;
abort:
    mdb_txn_abort(txn);
    return mrc;
}

evbus_err evbus__store_append(evbus__store *s, evbus__store_item *items, size_t n, int64_t now_ms,
                              int64_t expire_before_ms, uint64_t max_backlog) {
    size_t fit = n;
    while (fit > 0) {
        int mrc = append_txn(s, items, fit, now_ms, expire_before_ms, max_backlog);
        if (mrc == 0)
            break;
        if (mrc != MDB_MAP_FULL) {
            EVBUS_LOG_E("store", "append of %zu events failed: %s", fit, mdb_strerror(mrc));
            return EVBUS_ESTORE;
        }
        /* Map full: commit the leading part that fits, halving until it does
         * (or nothing does); the rest are told to retry later. */
        fit /= 2;
    }
    for (size_t i = fit; i < n; i++) {
        items[i].outcome = EVBUS__FULL;
        items[i].seq = 0;
    }
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
    if (mdb_stat(txn, s->dbi[DB_IDS], &st) == 0)
        out->ids = st.ms_entries;
    mdb_txn_abort(txn);
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
    if (mdb_txn_begin(s->env, NULL, MDB_RDONLY, &txn))
        return EVBUS_ESTORE;
    if (mdb_cursor_open(txn, s->dbi[DB_EVENTS], &cur)) {
        mdb_txn_abort(txn);
        return EVBUS_ESTORE;
    }
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
