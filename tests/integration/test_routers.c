/* Producers over three routers that share nothing: with either policy, one
 * router is killed (kill -9) mid-stream and restarted later; every acked id
 * must then be in the store of at least one router, and the producers must
 * have moved away from the dead router and back to it. */
#include <criterion/criterion.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "evbus.pb-c.h"
#include "evbus/evbus.h"
#include "harness.h"
#include "store.h"

#define ROUTERS   3
#define PRODUCERS 2
#define BATCH     20
#define MAX_ACKED 300000

typedef struct producer {
    int index;
    evbus_router_policy policy;
    char (*acked)[24]; /* ids acked ACCEPTED or DUPLICATE */
    size_t n_acked;
    unsigned long next, timeouts, retry_later;
    atomic_ulong by_router[ROUTERS]; /* events acked by each router */
    atomic_int up[ROUTERS];          /* what the client thinks, after each publish */
} producer;

static harness h[ROUTERS];
static producer ps[PRODUCERS];
static pthread_t threads[PRODUCERS];
static int n_threads;
static atomic_int stop_producing;
static atomic_ulong total_acked;

static void stop_all(void) {
    atomic_store(&stop_producing, 1);
    for (int i = 0; i < n_threads; i++)
        pthread_join(threads[i], NULL);
    n_threads = 0;
    for (int i = 0; i < ROUTERS; i++)
        harness_cleanup(&h[i]);
    for (int i = 0; i < PRODUCERS; i++)
        free(ps[i].acked);
}

TestSuite(routers, .fini = stop_all, .timeout = 240);

static int router_index(const char *endpoint) {
    for (int i = 0; i < ROUTERS; i++)
        if (strcmp(endpoint, h[i].endpoint) == 0)
            return i;
    return -1;
}

typedef struct request_ctx {
    producer *p;
    evbus_client_t *c;
} request_ctx;

static void on_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    request_ctx *rc = arg;
    producer *p = rc->p;
    if (err != EVBUS_OK) {
        p->timeouts++;
        return;
    }
    int from = router_index(evbus_client_ack_router(rc->c));
    for (size_t i = 0; i < n; i++) {
        if (acks[i].status == EVBUS_ACK_RETRY_LATER)
            p->retry_later++;
        if (acks[i].status != EVBUS_ACK_ACCEPTED && acks[i].status != EVBUS_ACK_DUPLICATE)
            continue;
        if (p->n_acked < MAX_ACKED)
            snprintf(p->acked[p->n_acked++], 24, "%s", acks[i].event_id);
    }
    if (from >= 0)
        atomic_fetch_add(&p->by_router[from], n);
    atomic_fetch_add(&total_acked, n);
}

static void *produce(void *arg) {
    producer *p = arg;
    const char *endpoints[ROUTERS];
    for (int i = 0; i < ROUTERS; i++)
        endpoints[i] = h[i].endpoint;
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.endpoints = endpoints;
    o.n_endpoints = ROUTERS;
    o.policy = p->policy;
    o.max_in_flight = 8;
    o.resend_ms = 500;
    o.probe_ms = 200;
    o.timeout_ms = 60000;
    evbus_client_t *c;
    if (evbus_client_new(NULL, &o, &c) != EVBUS_OK)
        return NULL;
    request_ctx ctx = {p, c};
    char ids[BATCH][24];
    evbus_event evs[BATCH];
    while (!atomic_load(&stop_producing) && p->n_acked + BATCH < MAX_ACKED) {
        for (int i = 0; i < BATCH; i++) {
            snprintf(ids[i], sizeof ids[i], "p%d-%lu", p->index, p->next++);
            evs[i] = (evbus_event){.id = ids[i],
                                   .source = "routers.test",
                                   .detail_type = "Tick",
                                   .detail = "{\"payload\":\"0123456789abcdef\"}"};
        }
        if (evbus_publish_async(c, evs, BATCH, on_ack, &ctx) != EVBUS_OK)
            p->timeouts++;
        for (int i = 0; i < ROUTERS; i++) {
            evbus_router_info info = {.size = sizeof info};
            if (evbus_client_router(c, (size_t)i, &info) == EVBUS_OK)
                atomic_store(&p->up[i], info.up);
        }
    }
    evbus_client_flush(c, -1);
    evbus_client_destroy(&c);
    return NULL;
}

static void start_producers(evbus_router_policy policy) {
    for (int i = 0; i < PRODUCERS; i++) {
        memset(&ps[i], 0, sizeof ps[i]);
        ps[i].index = i;
        ps[i].policy = policy;
        ps[i].acked = calloc(MAX_ACKED, sizeof *ps[i].acked);
        cr_assert_not_null(ps[i].acked);
        for (int r = 0; r < ROUTERS; r++)
            atomic_store(&ps[i].up[r], 1);
        pthread_create(&threads[i], NULL, produce, &ps[i]);
        n_threads++;
    }
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void wait_for_progress(unsigned long more) {
    unsigned long target = atomic_load(&total_acked) + more;
    int64_t deadline = now_ms() + 30000;
    while (atomic_load(&total_acked) < target) {
        cr_assert_lt(now_ms(), deadline, "no progress: producers stalled");
        usleep(2000);
    }
}

static unsigned long acked_by(int router) {
    unsigned long n = 0;
    for (int i = 0; i < PRODUCERS; i++)
        n += atomic_load(&ps[i].by_router[router]);
    return n;
}

/* Waits until every producer thinks router r is `up`, and at least `more`
 * events more were acked by the routers in `mask` than when it started. */
static void wait_until(int r, int up, unsigned mask, unsigned long more, const char *what) {
    unsigned long base = 0;
    for (int i = 0; i < ROUTERS; i++)
        if (mask & (1u << i))
            base += acked_by(i);
    int64_t deadline = now_ms() + 30000;
    for (;;) {
        bool all = true;
        for (int i = 0; i < PRODUCERS; i++)
            all = all && atomic_load(&ps[i].up[r]) == up;
        unsigned long got = 0;
        for (int i = 0; i < ROUTERS; i++)
            if (mask & (1u << i))
                got += acked_by(i);
        if (all && got >= base + more)
            return;
        cr_assert_lt(now_ms(), deadline, "%s: not within 30 s (router %d up=%d wanted %d)", what, r,
                     atomic_load(&ps[0].up[r]), up);
        usleep(5000);
    }
}

typedef struct stored {
    char **ids;
    size_t n, cap;
} stored;

static int collect(void *arg, uint64_t seq, const void *rec, size_t len) {
    stored *s = arg;
    Evbus__V1__Event *ev = evbus__v1__event__unpack(NULL, len, rec);
    cr_assert_not_null(ev, "stored record %llu does not decode", (unsigned long long)seq);
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 4096;
        s->ids = realloc(s->ids, s->cap * sizeof *s->ids);
        cr_assert_not_null(s->ids);
    }
    s->ids[s->n++] = strdup(ev->id);
    evbus__v1__event__free_unpacked(ev, NULL);
    return 0;
}

static int cmp_str(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Stops the producers and the routers, then checks every acked id against
 * the three stores: in at least one, and at most once in each. */
static void stop_and_check(void) {
    atomic_store(&stop_producing, 1);
    for (int i = 0; i < n_threads; i++)
        pthread_join(threads[i], NULL);
    n_threads = 0;
    stored s[ROUTERS] = {0};
    for (int r = 0; r < ROUTERS; r++) {
        cr_assert_eq(harness_stop(&h[r]), 0, "router %d did not stop cleanly", r);
        evbus__store *store;
        char err[512], data[300];
        snprintf(data, sizeof data, "%.256s/data", h[r].dir);
        cr_assert_eq(evbus__store_open(data, 256 << 20, &store, err, sizeof err), EVBUS_OK, "%s",
                     err);
        evbus__store_foreach_event(store, collect, &s[r]);
        evbus__store_close(&store);
        if (s[r].n) /* a router failover never used stored nothing: no array */
            qsort(s[r].ids, s[r].n, sizeof *s[r].ids, cmp_str);
        for (size_t i = 1; i < s[r].n; i++)
            cr_assert_str_neq(s[r].ids[i - 1], s[r].ids[i], "router %d stored %s twice", r,
                              s[r].ids[i]);
    }
    size_t acked = 0, on_two = 0;
    for (int i = 0; i < PRODUCERS; i++) {
        for (size_t j = 0; j < ps[i].n_acked; j++) {
            const char *id = ps[i].acked[j];
            int found = 0;
            for (int r = 0; r < ROUTERS; r++)
                found +=
                    s[r].n && bsearch(&id, s[r].ids, s[r].n, sizeof *s[r].ids, cmp_str) != NULL;
            cr_assert_gt(found, 0, "acked event %s is in no router's store", id);
            on_two += found > 1;
        }
        acked += ps[i].n_acked;
        cr_assert_eq(ps[i].retry_later, 0, "producer %d got %lu RETRY_LATER acks", i,
                     ps[i].retry_later);
    }
    cr_assert_gt(acked, 5000, "too few events to mean anything: %zu", acked);
    cr_log_info("%zu acked events, stored %zu/%zu/%zu, %zu in two routers: none lost", acked,
                s[0].n, s[1].n, s[2].n, on_two);
    for (int r = 0; r < ROUTERS; r++) {
        for (size_t i = 0; i < s[r].n; i++)
            free(s[r].ids[i]);
        free(s[r].ids);
    }
}

static void start_routers(void) {
    for (int i = 0; i < ROUTERS; i++) {
        harness_init(&h[i], NULL);
        cr_assert(harness_start(&h[i]), "router %d did not start", i);
    }
}

Test(routers, failover_moves_off_a_killed_router_and_back_losing_nothing) {
    start_routers();
    start_producers(EVBUS_ROUTER_FAILOVER);
    wait_for_progress(3000);
    cr_assert_gt(acked_by(0), 0, "failover sends to the first router");

    harness_kill9(&h[0]);
    wait_until(0, 0, 1u << 1, 3000, "failover to the second router after a kill -9 of the first");
    cr_assert(harness_start(&h[0]), "router 0 did not restart");
    wait_until(0, 1, 1u << 0, 3000, "failover back to the first router once it answers");
    stop_and_check();
}

Test(routers, spread_uses_every_router_and_survives_a_kill) {
    start_routers();
    start_producers(EVBUS_ROUTER_SPREAD);
    wait_for_progress(3000);
    for (int r = 0; r < ROUTERS; r++)
        cr_assert_gt(acked_by(r), 0, "spread sends to router %d too", r);

    harness_kill9(&h[1]);
    wait_until(1, 0, (1u << 0) | (1u << 2), 3000, "spread over the other routers after a kill");
    cr_assert(harness_start(&h[1]), "router 1 did not restart");
    wait_until(1, 1, 1u << 1, 1000, "spread back to the restarted router");
    stop_and_check();
}

/* A router stopped with SIGTERM answers what it still reads with RETRY_LATER
 * and the `stopping` flag: with other routers up, the producer sends those
 * requests there instead of handing the caller RETRY_LATER (which
 * stop_and_check() counts). */
Test(routers, a_router_shutting_down_hands_its_requests_to_the_others) {
    start_routers();
    start_producers(EVBUS_ROUTER_FAILOVER);
    wait_for_progress(3000);
    cr_assert_eq(harness_stop(&h[0]), 0);
    wait_until(0, 0, 1u << 1, 3000, "failover after a graceful stop of the first router");
    cr_assert(harness_start(&h[0]), "router 0 did not restart");
    wait_until(0, 1, 1u << 0, 2000, "back to the first router");
    stop_and_check();
}

static void collect_line(void *arg, const char *line) {
    char *buf = arg;
    strncat(buf, line, 4095 - strlen(buf));
    strncat(buf, "\n", 4095 - strlen(buf));
}

Test(routers, client_options_several_routers_and_their_state) {
    const char *eps[2] = {"ipc:///tmp/evbus-routers-none-a", "ipc:///tmp/evbus-routers-none-b"};
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    evbus_client_t *c = NULL;
    o.endpoints = eps;
    o.n_endpoints = 2;
    cr_assert_eq(evbus_client_new(eps[0], &o, &c), EVBUS_EINVAL, "an endpoint and a list");
    o.n_endpoints = 0;
    cr_assert_eq(evbus_client_new(NULL, &o, &c), EVBUS_EINVAL, "no endpoint at all");
    o.n_endpoints = 2;
    o.policy = (evbus_router_policy)7;
    cr_assert_eq(evbus_client_new(NULL, &o, &c), EVBUS_EINVAL, "an unknown policy");
    o.policy = EVBUS_ROUTER_SPREAD;
    const char *bad[2] = {eps[0], "nonsense://x"};
    o.endpoints = bad;
    cr_assert_eq(evbus_client_new(NULL, &o, &c), EVBUS_EINVAL, "a malformed endpoint");
    cr_assert_null(c);

    /* A caller built against the header before the router list. */
    evbus_client_opts old;
    evbus_client_opts_init(&old);
    old.size = offsetof(evbus_client_opts, endpoints);
    old.endpoints = bad; /* beyond its size: must not be read */
    cr_assert_eq(evbus_client_new(eps[0], &old, &c), EVBUS_OK);
    cr_assert_eq(evbus_client_router_count(c), 1);
    evbus_client_destroy(&c);

    /* Nothing listens: both routers go down, once each in the log. */
    char log[4096] = "";
    o.endpoints = eps;
    o.resend_ms = 100;
    o.probe_ms = 50;
    o.timeout_ms = 1500;
    o.log_fn = collect_line;
    o.log_arg = log;
    cr_assert_eq(evbus_client_new(NULL, &o, &c), EVBUS_OK);
    cr_assert_eq(evbus_client_router_count(c), 2);
    evbus_router_info info = {.size = sizeof info};
    cr_assert_eq(evbus_client_router(c, 1, &info), EVBUS_OK);
    cr_assert_str_eq(info.endpoint, eps[1]);
    cr_assert_eq(info.up, 1, "routers start up");
    cr_assert_eq(evbus_client_router(c, 2, &info), EVBUS_EINVAL);
    evbus_event e = {.id = "x-1", .source = "s", .detail_type = "t", .detail = "{}"};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(c, &e, 1, &ack), EVBUS_ETIMEDOUT);
    for (int i = 0; i < 2; i++) {
        cr_assert_eq(evbus_client_router(c, (size_t)i, &info), EVBUS_OK);
        cr_assert_eq(info.up, 0, "router %d is down after a timeout", i);
        cr_assert_gt(info.changed_ms, 0);
        char needle[128];
        snprintf(needle, sizeof needle, "router %s is down", eps[i]);
        const char *at = strstr(log, needle);
        cr_assert_not_null(at, "the log says %s:\n%s", needle, log);
        cr_assert_null(strstr(at + 1, needle), "logged once, not per request:\n%s", log);
    }
    evbus_client_destroy(&c);
}

static evbus_client_t *failover_client(int resend_ms, char *log) {
    static const char *endpoints[ROUTERS];
    for (int i = 0; i < ROUTERS; i++)
        endpoints[i] = h[i].endpoint;
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.endpoints = endpoints;
    o.n_endpoints = ROUTERS;
    o.policy = EVBUS_ROUTER_FAILOVER;
    o.resend_ms = resend_ms;
    o.probe_ms = 200;
    o.timeout_ms = 60000;
    o.log_fn = collect_line;
    o.log_arg = log;
    evbus_client_t *c = NULL;
    cr_assert_eq(evbus_client_new(NULL, &o, &c), EVBUS_OK);
    return c;
}

typedef struct kill_acks {
    evbus_client_t *c;
    int n, from_router1, accepted;
} kill_acks;

static void count_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    kill_acks *k = arg;
    cr_assert_eq(err, EVBUS_OK, "a request failed: %d", err);
    k->n++;
    k->from_router1 += strcmp(evbus_client_ack_router(k->c), h[1].endpoint) == 0;
    for (size_t i = 0; i < n; i++)
        k->accepted += acks[i].status == EVBUS_ACK_ACCEPTED;
}

/* The connection, not the resend timer, tells the client that a router was
 * killed: with resend_ms at 5 s, the requests the dead router held and the
 * next one are acked by the second router in well under that. Requests are
 * held by a router that is stopped (SIGSTOP) first, so that they are surely
 * in flight when it is killed. */
Test(routers, a_killed_router_is_left_at_once_not_after_resend_ms) {
    enum { RESEND_MS = 5000, HELD = 4 };
    start_routers();
    char log[4096] = "";
    evbus_client_t *c = failover_client(RESEND_MS, log);
    evbus_event e = {.id = "kill-0", .source = "routers.test", .detail_type = "t", .detail = "{}"};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(c, &e, 1, &ack), EVBUS_OK);
    cr_assert_str_eq(evbus_client_ack_router(c), h[0].endpoint, "failover starts on router 0");

    kill(h[0].pid, SIGSTOP);
    kill_acks k = {.c = c};
    char ids[HELD][16];
    for (int i = 0; i < HELD; i++) {
        snprintf(ids[i], sizeof ids[i], "kill-held-%d", i);
        evbus_event held = e;
        held.id = ids[i];
        cr_assert_eq(evbus_publish_async(c, &held, 1, count_ack, &k), EVBUS_OK);
    }
    cr_assert_eq(evbus_client_poll(c, 100), EVBUS_OK);
    cr_assert_eq(evbus_client_in_flight(c), HELD, "a stopped router answered");
    int64_t killed = now_ms();
    harness_kill9(&h[0]);
    cr_assert_eq(evbus_client_flush(c, 30000), EVBUS_OK);
    int64_t held_took = now_ms() - killed;
    e.id = "kill-1";
    cr_assert_eq(evbus_publish(c, &e, 1, &ack), EVBUS_OK);
    int64_t next_took = now_ms() - killed;
    cr_log_info("after kill -9: held requests acked in %lld ms, the next one in %lld ms",
                (long long)held_took, (long long)next_took);

    cr_assert_eq(k.from_router1, HELD, "the held requests went to router 1: %d of %d",
                 k.from_router1, HELD);
    cr_assert_eq(k.accepted, HELD, "router 1 accepted the held events (same ids)");
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);
    cr_assert_str_eq(evbus_client_ack_router(c), h[1].endpoint);
    cr_assert_lt(next_took, RESEND_MS / 2,
                 "%lld ms from kill -9 to the next ack: the resend timer, not the connection",
                 (long long)next_took);
    char needle[400];
    snprintf(needle, sizeof needle, "router %s is down (its connection dropped)", h[0].endpoint);
    const char *at = strstr(log, needle);
    cr_assert_not_null(at, "the log says %s:\n%s", needle, log);
    cr_assert_null(strstr(at + 1, needle), "logged once:\n%s", log);
    evbus_client_destroy(&c);
}

/* A lone router that is slow to answer is not worth a log line (the client
 * can only resend to it), though the client still reports it down; its
 * connection dropping is, once, and so is its answering again. */
Test(routers, a_lone_router_is_logged_when_its_connection_drops_not_when_slow) {
    char mute_ep[128], log[4096] = "";
    snprintf(mute_ep, sizeof mute_ep, "ipc:///tmp/evbus-routers-mute-%d", (int)getpid());
    void *zctx = zmq_ctx_new();
    void *mute = zmq_socket(zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(mute, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq(zmq_bind(mute, mute_ep), 0);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.resend_ms = 100;
    o.timeout_ms = 800;
    o.log_fn = collect_line;
    o.log_arg = log;
    evbus_client_t *c = NULL;
    evbus_event e = {.id = "lone-0", .source = "routers.test", .detail_type = "t", .detail = "{}"};
    evbus_ack ack;
    /* Nobody listens yet (a producer started before its router): quiet. */
    char nobody_ep[128];
    snprintf(nobody_ep, sizeof nobody_ep, "ipc:///tmp/evbus-routers-nobody-%d", (int)getpid());
    cr_assert_eq(evbus_client_new(nobody_ep, &o, &c), EVBUS_OK);
    cr_assert_eq(evbus_publish(c, &e, 1, &ack), EVBUS_ETIMEDOUT);
    cr_assert_str_eq(log, "", "a lone router not listening yet is not logged:\n%s", log);
    evbus_client_destroy(&c);

    cr_assert_eq(evbus_client_new(mute_ep, &o, &c), EVBUS_OK);
    cr_assert_eq(evbus_publish(c, &e, 1, &ack), EVBUS_ETIMEDOUT);
    evbus_router_info info = {.size = sizeof info};
    cr_assert_eq(evbus_client_router(c, 0, &info), EVBUS_OK);
    cr_assert_eq(info.up, 0, "a router that never answers is down");
    cr_assert_str_eq(log, "", "a slow lone router is not logged:\n%s", log);
    evbus_client_destroy(&c);
    zmq_close(mute);
    zmq_ctx_term(zctx);
    unlink(mute_ep + strlen("ipc://"));

    harness_init(&h[0], NULL);
    cr_assert(harness_start(&h[0]));
    cr_assert_eq(evbus_client_new(h[0].endpoint, &o, &c), EVBUS_OK);
    cr_assert_eq(evbus_publish(c, &e, 1, &ack), EVBUS_OK);
    harness_kill9(&h[0]);
    e.id = "lone-1";
    cr_assert_eq(evbus_publish(c, &e, 1, &ack), EVBUS_ETIMEDOUT);
    char needle[400];
    snprintf(needle, sizeof needle, "router %s is down (its connection dropped)", h[0].endpoint);
    const char *at = strstr(log, needle);
    cr_assert_not_null(at, "the log says %s:\n%s", needle, log);
    cr_assert_null(strstr(at + strlen(needle), "is down"), "logged once:\n%s", log);
    cr_assert(harness_start(&h[0]), "router 0 did not restart");
    /* Requests time out in 800 ms here; reconnecting may take longer. */
    e.id = "lone-2";
    int64_t deadline = now_ms() + 30000;
    evbus_err rc;
    while ((rc = evbus_publish(c, &e, 1, &ack)) == EVBUS_ETIMEDOUT && now_ms() < deadline)
        ;
    cr_assert_eq(rc, EVBUS_OK, "no answer from the restarted router: %d", rc);
    snprintf(needle, sizeof needle, "router %s answers again", h[0].endpoint);
    cr_assert_not_null(strstr(log, needle), "the log says %s:\n%s", needle, log);
    evbus_client_destroy(&c);
}
