/* Audit events made by the writer (audit.h says why there). */
#include "audit.h"

#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/util.h"
#include "frame.h"

typedef struct entry {
    char id[37]; /* fixed at the first attempt: a retry is deduplicated */
    char *detail_type, *detail;
    bool drop; /* cannot be an event (a bug, logged): forgotten at done */
} entry;

/* One audit item of the last evbus__audit_items(): offsets until laid out,
 * because the buffers move while they grow. */
typedef struct prep {
    size_t entry, rec_off, rec_len, tgt_off;
} prep;

struct evbus__audit {
    const evbus__config *cfg;
    const evbus__router *router;
    evbus__route_scratch *route;
    evbus__uuid_gen uuids;
    entry *q;
    size_t n, cap;
    size_t last_kept; /* entries left by the last commit, for the log */
    /* What the last evbus__audit_items() built. */
    evbus__store_item *items;
    size_t items_cap, n_batch;
    prep *prep;
    size_t n_prep, prep_cap;
    evbus__bytes records;
    uint32_t *targets;
    size_t n_tgt, targets_cap;
};
evbus__audit *evbus__audit_new(const evbus__config *cfg, const evbus__router *router) {
    evbus__audit *a = calloc(1, sizeof *a);
    if (!a)
        return NULL;
    a->cfg = cfg;
    a->router = router;
    if (router && evbus__route_scratch_new(router, &a->route) != EVBUS_OK) {
        free(a);
        return NULL;
    }
    evbus__uuid_gen_init(&a->uuids);
    return a;
}

static void entry_free(entry *e) {
    free(e->detail_type);
    free(e->detail);
}

void evbus__audit_destroy(evbus__audit **ap) {
    if (!ap || !*ap)
        return;
    evbus__audit *a = *ap;
    for (size_t i = 0; i < a->n; i++)
        entry_free(&a->q[i]);
    if (a->n)
        EVBUS_LOG_W("audit", "%zu audit event(s) could not be stored before stopping", a->n);
    free(a->q);
    free(a->items);
    free(a->prep);
    free(a->records.data);
    free(a->targets);
    evbus__route_scratch_destroy(&a->route);
    free(a);
    *ap = NULL;
}

bool evbus__audit_add(evbus__audit *a, const char *detail_type, const char *detail) {
    if (a->n == a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 8;
        entry *q = realloc(a->q, cap * sizeof *q);
        if (!q)
            goto fail;
        a->q = q;
        a->cap = cap;
    }
    entry *e = &a->q[a->n];
    e->detail_type = strdup(detail_type);
    e->detail = strdup(detail);
    if (!e->detail_type || !e->detail) {
        entry_free(e);
        goto fail;
    }
    e->drop = false;
    evbus__uuid_next(&a->uuids, e->id);
    a->n++;
    return true;
fail:
    EVBUS_LOG_E("audit", "out of memory: the audit event for %s is lost", detail);
    return false;
}

bool evbus__audit_waiting(const evbus__audit *a) {
    return a->n > 0;
}

static int grow(void **p, size_t *cap, size_t need, size_t elem) {
    if (need <= *cap)
        return 0;
    size_t n = *cap ? *cap : 16;
    while (n < need)
        n *= 2;
    void *q = realloc(*p, n * elem);
    if (!q)
        return -1;
    *p = q;
    *cap = n;
    return 0;
}

/* Prepares entry i as the receiver prepares a producer's event: validated,
 * encoded into `records`, routed by the same rules. Returns 0; 1 when it
 * cannot be an event (marked to drop); -1 when out of memory (kept). */
static int prepare(evbus__audit *a, size_t i, int64_t now_ms, const char *now_text, prep *p) {
    entry *e = &a->q[i];
    Evbus__V1__Event ev = EVBUS__V1__EVENT__INIT, filled;
    ev.id = e->id;
    ev.source = (char *)EVBUS__AUDIT_SOURCE;
    ev.detail_type = e->detail_type;
    ev.detail = e->detail;
    char gen_id[37], why[256];
    int rc = evbus__event_prepare(a->cfg, &ev, NULL, &a->uuids, now_ms, now_text, gen_id, &filled,
                                  &a->records, &p->rec_off, &p->rec_len, why, sizeof why);
    if (rc == 1) {
        EVBUS_LOG_E("audit", "audit event %s dropped: %s", e->detail, why);
        e->drop = true;
    }
    if (rc != 0)
        return rc;
    p->entry = i;
    p->tgt_off = a->n_tgt;
    size_t max = a->router ? evbus__router_target_count(a->router) : 0, got = 0;
    if (max && grow((void **)&a->targets, &a->targets_cap, a->n_tgt + max, sizeof *a->targets))
        return -1;
    int matched;
    if (max && evbus__route(a->router, a->route, &filled, a->targets + a->n_tgt, max, &got,
                            &matched) != EVBUS_OK)
        got = 0;
    a->n_tgt += got;
    return 0;
}

evbus__store_item *evbus__audit_items(evbus__audit *a, evbus__store_item *items, size_t n,
                                      int64_t now_ms, size_t *total) {
    a->n_batch = n;
    a->n_prep = 0;
    a->n_tgt = 0;
    a->records.len = 0;
    *total = n;
    if (a->n == 0 || grow((void **)&a->items, &a->items_cap, n + a->n, sizeof *a->items) ||
        grow((void **)&a->prep, &a->prep_cap, a->n, sizeof *a->prep))
        return items;
    char now_text[21];
    evbus__format_time(now_ms, now_text);
    for (size_t i = 0; i < a->n; i++)
        if (prepare(a, i, now_ms, now_text, &a->prep[a->n_prep]) == 0)
            a->n_prep++;
    if (a->n_prep == 0)
        return items;
    if (n)
        memcpy(a->items, items, n * sizeof *items);
    for (size_t k = 0; k < a->n_prep; k++) {
        const prep *p = &a->prep[k];
        size_t next = k + 1 < a->n_prep ? a->prep[k + 1].tgt_off : a->n_tgt;
        a->items[n + k] = (evbus__store_item){
            .id = a->q[p->entry].id,
            .id_len = strlen(a->q[p->entry].id),
            .record = a->records.data + p->rec_off,
            .record_len = p->rec_len,
            .targets = a->targets ? a->targets + p->tgt_off : NULL,
            .n_targets = next - p->tgt_off,
        };
    }
    *total = n + a->n_prep;
    return a->items;
}

/* Forgets the entries that are stored or cannot be; keeps the others. */
static void compact(evbus__audit *a) {
    size_t kept = 0;
    for (size_t i = 0; i < a->n; i++) {
        if (a->q[i].drop)
            entry_free(&a->q[i]);
        else
            a->q[kept++] = a->q[i];
    }
    if (kept && kept != a->last_kept)
        EVBUS_LOG_W("audit",
                    "%zu audit event(s) not stored yet (the store is short of space): tried "
                    "again with the next commits",
                    kept);
    a->n = a->last_kept = kept;
    a->n_prep = 0;
}

bool evbus__audit_done(evbus__audit *a, evbus__store_item *items, size_t n) {
    bool pending = false;
    if (a->n_prep && a->n_batch == n) {
        for (size_t i = 0; i < n; i++) {
            items[i].outcome = a->items[i].outcome;
            items[i].seq = a->items[i].seq;
        }
        for (size_t k = 0; k < a->n_prep; k++) {
            const evbus__store_item *it = &a->items[n + k];
            if (it->outcome == EVBUS__STORED || it->outcome == EVBUS__DUPLICATE)
                a->q[a->prep[k].entry].drop = true;
            pending |= it->outcome == EVBUS__STORED && it->n_targets > 0;
        }
    }
    compact(a);
    return pending;
}

void evbus__audit_forget(evbus__audit *a) {
    for (size_t i = 0; i < a->n; i++)
        a->q[i].drop = true;
    if (a->n)
        EVBUS_LOG_E("audit", "%zu audit event(s) lost with the commit that failed", a->n);
    a->last_kept = 0;
    compact(a);
}
