/* A router that hangs with its connection open (SIGSTOP, a stuck disk) while
 * a failover producer has requests pipelined to it. It answered its earlier
 * requests after the later ones were sent, as any busy router does, then
 * went silent. resend_ms of silence must be the verdict: the request it
 * holds goes to the next router, not to the hung one a second time (which
 * cost a second resend_ms before the client gave up on it). The hung router
 * is a ZeroMQ ROUTER socket played by the test, so what it answers and when
 * is exact. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <zmq.h>

#include "evbus.pb-c.h"
#include "evbus/evbus.h"
#include "harness.h"

static harness next_router;
static void *zctx, *hung;
static char hung_ep[128];

static void cleanup(void) {
    if (hung)
        zmq_close(hung);
    if (zctx)
        zmq_ctx_term(zctx);
    if (hung_ep[0])
        unlink(hung_ep + strlen("ipc://"));
    harness_cleanup(&next_router);
}

TestSuite(routers_hang, .fini = cleanup, .timeout = 120);

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void collect_line(void *arg, const char *line) {
    char *buf = arg;
    strncat(buf, line, 4095 - strlen(buf));
    strncat(buf, "\n", 4095 - strlen(buf));
}

/* One request as the hung router received it: the peer's routing id and the
 * Publish (NULL when it did not parse). */
typedef struct received {
    zmq_msg_t peer;
    Evbus__V1__Publish *publish;
} received;

static bool receive(received *r, int flags) {
    zmq_msg_init(&r->peer);
    if (zmq_msg_recv(&r->peer, hung, flags) < 0) {
        zmq_msg_close(&r->peer);
        return false;
    }
    zmq_msg_t body;
    zmq_msg_init(&body);
    cr_assert_geq(zmq_msg_recv(&body, hung, 0), 0);
    r->publish = evbus__v1__publish__unpack(NULL, zmq_msg_size(&body), zmq_msg_data(&body));
    zmq_msg_close(&body);
    return true;
}

static void release(received *r) {
    zmq_msg_close(&r->peer);
    if (r->publish)
        evbus__v1__publish__free_unpacked(r->publish, NULL);
}

static bool carries(const Evbus__V1__Publish *p, const char *id) {
    for (size_t i = 0; p && i < p->n_events; i++)
        if (strcmp(p->events[i]->id, id) == 0)
            return true;
    return false;
}

/* Answers `r` as evbusd would: every event ACCEPTED. */
static void accept_all(received *r) {
    Evbus__V1__Ack ack = EVBUS__V1__ACK__INIT;
    ack.request_id = r->publish->request_id;
    ack.version = 1;
    Evbus__V1__EventAck results[4], *ptrs[4];
    cr_assert_leq(r->publish->n_events, 4);
    for (size_t i = 0; i < r->publish->n_events; i++) {
        evbus__v1__event_ack__init(&results[i]);
        results[i].status = EVBUS__V1__ACK_STATUS__ACCEPTED;
        results[i].sequence = i + 1;
        results[i].event_id = r->publish->events[i]->id;
        results[i].region = "hung-1";
        results[i].index = (uint32_t)i;
        ptrs[i] = &results[i];
    }
    ack.n_results = r->publish->n_events;
    ack.results = ptrs;
    uint8_t buf[1024];
    size_t len = evbus__v1__ack__pack(&ack, buf);
    cr_assert_eq(zmq_send(hung, zmq_msg_data(&r->peer), zmq_msg_size(&r->peer), ZMQ_SNDMORE),
                 (int)zmq_msg_size(&r->peer));
    cr_assert_eq(zmq_send(hung, buf, len, 0), (int)len);
}

typedef struct acked {
    evbus_client_t *c;
    char by[2][300];
    int n;
    evbus_err err[2];
} acked;

static void on_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    (void)acks;
    (void)n;
    acked *a = arg;
    cr_assert_lt(a->n, 2);
    a->err[a->n] = err;
    snprintf(a->by[a->n], sizeof a->by[a->n], "%s", evbus_client_ack_router(a->c));
    a->n++;
}

Test(routers_hang, a_router_silent_for_resend_ms_is_left_without_a_second_resend) {
    enum { RESEND_MS = 2000 };
    harness_init(&next_router, NULL);
    cr_assert(harness_start(&next_router));
    snprintf(hung_ep, sizeof hung_ep, "ipc:///tmp/evbus-routers-hang-%d", (int)getpid());
    zctx = zmq_ctx_new();
    hung = zmq_socket(zctx, ZMQ_ROUTER);
    int linger = 0;
    zmq_setsockopt(hung, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq(zmq_bind(hung, hung_ep), 0);

    const char *endpoints[2] = {hung_ep, next_router.endpoint};
    char log[4096] = "";
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.endpoints = endpoints;
    o.n_endpoints = 2;
    o.policy = EVBUS_ROUTER_FAILOVER;
    o.resend_ms = RESEND_MS;
    o.probe_ms = 200;
    o.timeout_ms = 60000;
    o.log_fn = collect_line;
    o.log_arg = log;
    evbus_client_t *c = NULL;
    cr_assert_eq(evbus_client_new(NULL, &o, &c), EVBUS_OK);

    acked a = {.c = c};
    evbus_event first = {
        .id = "hang-a", .source = "routers.test", .detail_type = "t", .detail = "{}"};
    evbus_event second = first;
    second.id = "hang-b";
    cr_assert_eq(evbus_publish_async(c, &first, 1, on_ack, &a), EVBUS_OK);
    cr_assert_eq(evbus_publish_async(c, &second, 1, on_ack, &a), EVBUS_OK);

    /* The hung router receives both requests before it answers the first:
     * the second was sent before the router's last answer. */
    received got[2];
    int n_got = 0;
    int64_t deadline = now_ms() + 10000;
    while (n_got < 2) {
        cr_assert_lt(now_ms(), deadline, "the first router got %d of 2 requests", n_got);
        cr_assert_eq(evbus_client_poll(c, 10), EVBUS_OK);
        received r;
        if (!receive(&r, ZMQ_DONTWAIT))
            continue;
        if (r.publish && r.publish->n_events > 0)
            got[n_got++] = r;
        else
            release(&r);
    }
    cr_assert(carries(got[0].publish, "hang-a") && carries(got[1].publish, "hang-b"));
    accept_all(&got[0]);
    /* ... and then nothing more: it hangs with its connection open. */
    int64_t silent_since = now_ms();
    cr_assert_eq(evbus_client_flush(c, 30000), EVBUS_OK);
    int64_t took = now_ms() - silent_since;

    int resent_to_hung = 0;
    received r;
    while (receive(&r, ZMQ_DONTWAIT)) {
        resent_to_hung += carries(r.publish, "hang-b");
        release(&r);
    }
    cr_log_info("a hung router left %lld ms after its last answer (resend_ms %d)", (long long)took,
                RESEND_MS);
    cr_assert_eq(a.n, 2);
    cr_assert_eq(a.err[0], EVBUS_OK);
    cr_assert_str_eq(a.by[0], hung_ep);
    cr_assert_eq(a.err[1], EVBUS_OK);
    cr_assert_str_eq(a.by[1], next_router.endpoint, "the held request went to the next router");
    cr_assert_eq(resent_to_hung, 0,
                 "the held request was resent to the silent router %d time(s), leaving it "
                 "only after %lld ms:\n%s",
                 resent_to_hung, (long long)took, log);
    char needle[300];
    snprintf(needle, sizeof needle, "router %s is down (no answer in", hung_ep);
    cr_assert_not_null(strstr(log, needle), "the log says %s:\n%s", needle, log);
    release(&got[0]);
    release(&got[1]);
    evbus_client_destroy(&c);
}
