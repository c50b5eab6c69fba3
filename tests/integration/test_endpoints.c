/* What evbusd binds is what it says it binds, and how its control socket
 * answers requests of any size. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "harness.h"

static harness h;

static void stop(void) {
    harness_cleanup(&h);
}

TestSuite(endpoints, .fini = stop, .timeout = 60);

/* tcp://HOST:* asks for any free port: the log names the port bound (it
 * used to print the `*`, and 99999 bound 34463 while logging 99999), and a
 * producer reaches evbusd there. */
Test(endpoints, the_log_names_the_port_actually_bound) {
    harness_init(&h, NULL);
    FILE *f = fopen(h.config, "w");
    cr_assert_not_null(f);
    fprintf(f, "region: test-1\n"
               "ingest:\n"
               "  listen: [\"tcp://127.0.0.1:*\"]\n"
               "storage:\n"
               "  data_dir: data\n"
               "  map_size: 64MiB\n");
    fclose(f);
    cr_assert(harness_start(&h));
    char log[16384];
    harness_read_log(&h, log, sizeof log);
    const char *at = strstr(log, "listening on tcp://127.0.0.1:");
    cr_assert_not_null(at, "%s", log);
    char *end;
    long port = strtol(at + strlen("listening on tcp://127.0.0.1:"), &end, 10);
    cr_assert(port > 0 && port <= 65535 && (*end == ' ' || *end == '\n'), "%s", log);

    char cmd[600], out[1024];
    snprintf(cmd, sizeof cmd, "%s pub -e tcp://127.0.0.1:%ld -s a -t T -d '{}' 2>&1",
             harness_bin("evbus"), port);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "accepted"), "%s", out);
    cr_assert_eq(harness_stop(&h), 0);
}

/* Sends one control request of `size` bytes on a fresh REQ socket and waits
 * up to 2 s. Returns the answer's first bytes in `out`, or "" for none. */
static void ask(void *ctx, const char *endpoint, size_t size, char *out, size_t outlen) {
    void *s = zmq_socket(ctx, ZMQ_REQ);
    int linger = 0, timeout = 2000;
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    cr_assert_eq(zmq_connect(s, endpoint), 0);
    char *req = malloc(size);
    cr_assert_not_null(req);
    static const char head[] = "{\"cmd\":\"status\",\"x\":\"";
    memset(req, 'a', size);
    memcpy(req, head, sizeof head - 1);
    memcpy(req + size - 2, "\"}", 2);
    cr_assert_eq(zmq_send(s, req, size, 0), (int)size);
    free(req);
    int n = zmq_recv(s, out, outlen - 1, 0);
    out[n > 0 ? (size_t)n < outlen ? (size_t)n : outlen - 1 : 0] = '\0';
    zmq_close(s);
}

/* Up to 64 KiB a request is read; above, up to ZeroMQ's cut at 128 KiB
 * (ZMQ_MAXMSGSIZE), it is answered "request too large"; above that cut
 * ZeroMQ drops the connection unread, and evbusd still answers others. */
Test(endpoints, control_requests_of_every_size_get_an_answer_or_a_cut) {
    harness_init(&h, NULL);
    cr_assert(harness_start(&h));
    char endpoint[400], out[256];
    snprintf(endpoint, sizeof endpoint, "ipc://%s/data/control.sock", h.dir);
    void *ctx = zmq_ctx_new();
    static const size_t too_large[] = {64 * 1024 + 1, 70 * 1024, 100 * 1024, 128 * 1024 - 64};
    for (size_t i = 0; i < sizeof too_large / sizeof too_large[0]; i++) {
        ask(ctx, endpoint, too_large[i], out, sizeof out);
        cr_assert_str_eq(out, "{\"ok\":false,\"error\":\"request too large\"}", "%zu bytes",
                         too_large[i]);
    }
    ask(ctx, endpoint, 64 * 1024, out, sizeof out);
    cr_assert(strstr(out, "\"ok\":true"), "64 KiB: %s", out);
    ask(ctx, endpoint, 200 * 1024, out, sizeof out);
    cr_assert_str_eq(out, "", "200 KiB are cut off by ZeroMQ");
    ask(ctx, endpoint, 100, out, sizeof out);
    cr_assert(strstr(out, "\"ok\":true"), "after the cut: %s", out);
    zmq_ctx_term(ctx);
    cr_assert_eq(harness_stop(&h), 0);
}

/* evbus pub -e takes a list of routers: spaces around items are dropped; an
 * empty item or a router listed twice is refused up front, naming it, with
 * exit status 2 (they used to be skipped, or to open two connections to one
 * router). */
Test(endpoints, pub_endpoint_lists_are_checked_item_by_item) {
    static const struct {
        const char *list, *want;
    } cases[] = {
        {"tcp://127.0.0.1:1,,tcp://127.0.0.1:2", "endpoint 2 of the list is empty"},
        {",tcp://127.0.0.1:2", "endpoint 1 of the list is empty"},
        {"tcp://127.0.0.1:1, tcp://127.0.0.1:1", "tcp://127.0.0.1:1 is listed twice"},
    };
    char cmd[600], out[1024];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(cmd, sizeof cmd, "%s pub -e '%s' -s a -t T -d '{}' --timeout 300 2>&1",
                 harness_bin("evbus"), cases[i].list);
        cr_assert_eq(harness_run(cmd, out, sizeof out), 2, "%s: %s", cases[i].list, out);
        cr_assert(strstr(out, cases[i].want), "%s: %s", cases[i].list, out);
    }
    /* A space after the comma is not part of the endpoint: the router is
     * reached. */
    harness_init(&h, NULL);
    cr_assert(harness_start(&h));
    snprintf(cmd, sizeof cmd, "%s pub -e 'tcp://127.0.0.1:1, %s' -s a -t T -d '{}' 2>&1",
             harness_bin("evbus"), h.endpoint);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "accepted"), "%s", out);
    cr_assert_eq(harness_stop(&h), 0);
}
