/* What evbusd does with requests it cannot take: a message far larger than
 * a socket allows is cut off by ZeroMQ (ZMQ_MAXMSGSIZE) before it is read
 * whole, on the control socket and at ingest, and the daemon goes on
 * answering; an unknown control command gets a list of every command. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zmq.h>

#include "harness.h"

static harness h;
static void *ctx;

static void stop(void) {
    if (ctx)
        zmq_ctx_term(ctx);
    ctx = NULL;
    harness_cleanup(&h);
}

TestSuite(input_limits, .fini = stop, .timeout = 120);

static void start(void) {
    harness_init(&h, NULL);
    cr_assert(harness_start(&h), "evbusd did not start: see %s", h.log);
    ctx = zmq_ctx_new();
    cr_assert_not_null(ctx);
}

static void control_endpoint(char *out, size_t len) {
    snprintf(out, len, "ipc://%s/data/control.sock", h.dir);
}

/* The most memory evbusd has held (VmHWM), in KiB. */
static long peak_rss_kib(void) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%d/status", (int)h.pid);
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f);
    long kib = -1;
    while (fgets(line, sizeof line, f))
        if (sscanf(line, "VmHWM: %ld kB", &kib) == 1)
            break;
    fclose(f);
    return kib;
}

typedef enum { ANSWERED, CUT_OFF, NOTHING } outcome;

/* Sends one message of `size` bytes on a new socket of `type` and waits (up
 * to 30 s) for what comes first: an answer, or evbusd closing the
 * connection (seen by a socket monitor). */
static outcome send_huge(const char *endpoint, int type, size_t size) {
    static int n;
    char mon_ep[64];
    snprintf(mon_ep, sizeof mon_ep, "inproc://monitor-%d", n++);
    void *s = zmq_socket(ctx, type);
    void *mon = zmq_socket(ctx, ZMQ_PAIR);
    int linger = 0;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq(zmq_socket_monitor(s, mon_ep, ZMQ_EVENT_DISCONNECTED), 0);
    cr_assert_eq(zmq_connect(mon, mon_ep), 0);
    cr_assert_eq(zmq_connect(s, endpoint), 0);
    zmq_msg_t msg;
    cr_assert_eq(zmq_msg_init_size(&msg, size), 0);
    memset(zmq_msg_data(&msg), 'x', size);
    cr_assert_eq(zmq_msg_send(&msg, s, 0), (int)size);
    outcome got = NOTHING;
    time_t end = time(NULL) + 30;
    while (got == NOTHING && time(NULL) < end) {
        zmq_pollitem_t items[] = {{s, 0, ZMQ_POLLIN, 0}, {mon, 0, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, 200) <= 0)
            continue;
        got = items[0].revents & ZMQ_POLLIN ? ANSWERED : CUT_OFF;
    }
    zmq_socket_monitor(s, NULL, 0);
    zmq_close(mon);
    zmq_close(s);
    return got;
}

/* A request sent on a new REQ socket; returns the answer (caller frees). */
static char *ask(const char *request) {
    char endpoint[400];
    control_endpoint(endpoint, sizeof endpoint);
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0, timeout = 10000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    cr_assert_eq(zmq_connect(s, endpoint), 0);
    cr_assert_eq(zmq_send(s, request, strlen(request), 0), (int)strlen(request));
    char *buf = calloc(1, 65536);
    int n = zmq_recv(s, buf, 65535, 0);
    cr_assert_gt(n, 0, "no answer to %s", request);
    buf[n < 65535 ? n : 65535] = '\0';
    zmq_close(s);
    return buf;
}

Test(input_limits, control_request_of_200_mib_is_cut_off_unread) {
    start();
    char endpoint[400];
    control_endpoint(endpoint, sizeof endpoint);
    outcome got = send_huge(endpoint, ZMQ_REQ, 200u << 20);
    cr_assert_eq(got, CUT_OFF, "evbusd %s the 200 MiB request instead of closing the connection",
                 got == ANSWERED ? "answered" : "neither answered nor refused");
    long kib = peak_rss_kib();
    cr_assert_lt(kib, 100 * 1024, "evbusd held %ld KiB: it read the request", kib);
    char *answer = ask("{\"cmd\":\"status\"}");
    cr_assert(strstr(answer, "\"ok\":true"), "%s", answer);
    free(answer);
    cr_assert_eq(harness_stop(&h), 0);
}

/* A request just over the limit is still read, and refused by name. */
Test(input_limits, control_request_just_over_the_limit_is_refused_with_why) {
    start();
    char *big = malloc(70 * 1024);
    memset(big, ' ', 70 * 1024 - 1);
    big[70 * 1024 - 1] = '\0';
    char *answer = ask(big);
    cr_assert(strstr(answer, "request too large"), "%s", answer);
    free(answer);
    free(big);
    cr_assert_eq(harness_stop(&h), 0);
}

Test(input_limits, ingest_frame_of_200_mib_is_cut_off_unread) {
    start();
    outcome got = send_huge(h.endpoint, ZMQ_DEALER, 200u << 20);
    cr_assert_eq(got, CUT_OFF, "evbusd %s the 200 MiB frame instead of closing the connection",
                 got == ANSWERED ? "answered" : "neither answered nor refused");
    long kib = peak_rss_kib();
    cr_assert_lt(kib, 100 * 1024, "evbusd held %ld KiB: it read the frame", kib);
    cr_assert_eq(harness_stop(&h), 0);
}

Test(input_limits, unknown_control_command_lists_every_command) {
    start();
    char *answer = ask("{\"cmd\":\"stauts\"}");
    cr_assert(strstr(answer, "unknown command (status, dlq, dlq-show, dlq-replay, dlq-drop, "
                             "replay, region-status, region-on, region-off, region-fence, "
                             "region-unfence, region-failover, region-failback)"),
              "%s", answer);
    free(answer);
    cr_assert_eq(harness_stop(&h), 0);
}
