/* evbusd end to end: a real daemon on an ipc:// endpoint, real producers
 * (libevbus, a raw ZeroMQ socket, the evbus CLI). */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zmq.h>

#include "evbus.pb-c.h"
#include "evbus/evbus.h"
#include "harness.h"

static harness h;
static evbus_client_t *client;

static void start(void) {
    harness_init(&h, NULL);
    cr_assert(harness_start(&h), "evbusd did not become ready (log in %s)", h.log);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 5000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
}

TestSuite(ingest, .init = start, .fini = stop, .timeout = 60);

static evbus_event order(const char *id, const char *detail) {
    evbus_event e = {0};
    e.id = id;
    e.source = "app.orders";
    e.detail_type = "OrderPlaced";
    e.detail = detail;
    return e;
}

Test(ingest, accepts_then_reports_duplicate_with_first_sequence) {
    evbus_event e = order("order-1", "{\"amount\": 12.5}");
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "reason: %s", ack.reason);
    cr_assert_str_eq(ack.event_id, "order-1");
    cr_assert_str_eq(ack.region, "test-1");
    uint64_t seq = ack.sequence;
    cr_assert_gt(seq, 0);

    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_DUPLICATE);
    cr_assert_eq(ack.sequence, seq);
}

Test(ingest, batch_acks_each_event_in_order) {
    evbus_event evs[5] = {
        order("b-1", "{}"), order(NULL, "{\"a\":[1,2,{\"b\":null}]}"), order("b-3", "{not json}"),
        order("b-1", "{}"), order("b-5", "{\"x\":\"\\u00e9\"}"),
    };
    evs[1].source = "";
    evbus_ack acks[5];
    cr_assert_eq(evbus_publish(client, evs, 5, acks), EVBUS_OK);
    cr_assert_eq(acks[0].status, EVBUS_ACK_ACCEPTED);
    cr_assert_eq(acks[1].status, EVBUS_ACK_REJECTED);
    cr_assert(strstr(acks[1].reason, "source is required"), "reason: %s", acks[1].reason);
    cr_assert_eq(strlen(acks[1].event_id), 36, "client assigns a UUID: %s", acks[1].event_id);
    cr_assert_eq(acks[2].status, EVBUS_ACK_REJECTED);
    cr_assert(strstr(acks[2].reason, "detail is not a JSON object"), "reason: %s", acks[2].reason);
    /* Same id twice in one batch: the second is a duplicate of the first. */
    cr_assert_eq(acks[3].status, EVBUS_ACK_DUPLICATE);
    cr_assert_eq(acks[3].sequence, acks[0].sequence);
    cr_assert_eq(acks[4].status, EVBUS_ACK_ACCEPTED);
    cr_assert_gt(acks[4].sequence, acks[0].sequence);
}

Test(ingest, rejects_events_over_eventbridge_limits) {
    static char big_source[300];
    memset(big_source, 's', sizeof big_source - 1);
    evbus_event e = order("lim-1", "{}");
    e.source = big_source;
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_REJECTED);
    cr_assert(strstr(ack.reason, "source is 299 bytes; the limit is 256"), "%s", ack.reason);

    e = order("lim-2", "{}");
    e.time = "yesterday";
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_REJECTED);
    cr_assert(strstr(ack.reason, "RFC 3339"), "%s", ack.reason);
}

/* A raw DEALER that sends garbage must get an error ack, and the daemon must
 * go on serving others. */
Test(ingest, bad_frames_get_clear_errors_and_daemon_lives) {
    void *ctx = zmq_ctx_new();
    void *s = zmq_socket(ctx, ZMQ_DEALER);
    int timeout = 5000, linger = 0;
    zmq_setsockopt(s, ZMQ_RCVTIMEO, &timeout, sizeof timeout);
    zmq_setsockopt(s, ZMQ_LINGER, &linger, sizeof linger);
    cr_assert_eq(zmq_connect(s, h.endpoint), 0);

    struct {
        const char *what;
        const char *frames[3];
        size_t nframes;
        const char *expect;
    } cases[] = {
        {"garbage", {"\xff\xff\xff\xff garbage"}, 1, "not a serialized evbus.v1.Publish"},
        {"three frames", {"a", "b", "c"}, 3, "expected one frame"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        for (size_t f = 0; f < cases[i].nframes; f++)
            zmq_send(s, cases[i].frames[f], strlen(cases[i].frames[f]),
                     f + 1 < cases[i].nframes ? ZMQ_SNDMORE : 0);
        char buf[1024];
        int n = zmq_recv(s, buf, sizeof buf, 0);
        cr_assert_gt(n, 0, "%s: no answer", cases[i].what);
        Evbus__V1__Ack *ack = evbus__v1__ack__unpack(NULL, (size_t)n, (uint8_t *)buf);
        cr_assert_not_null(ack, "%s: answer is not an Ack", cases[i].what);
        cr_assert(strstr(ack->error, cases[i].expect), "%s: error was '%s'", cases[i].what,
                  ack->error);
        evbus__v1__ack__free_unpacked(ack, NULL);
    }

    /* A future version is refused with both versions named. */
    Evbus__V1__Publish pub = EVBUS__V1__PUBLISH__INIT;
    pub.request_id = 77;
    pub.version = 9;
    uint8_t frame[64];
    size_t len = evbus__v1__publish__pack(&pub, frame);
    zmq_send(s, frame, len, 0);
    char buf[1024];
    int n = zmq_recv(s, buf, sizeof buf, 0);
    cr_assert_gt(n, 0);
    Evbus__V1__Ack *ack = evbus__v1__ack__unpack(NULL, (size_t)n, (uint8_t *)buf);
    cr_assert_not_null(ack);
    cr_assert_eq(ack->request_id, 77);
    cr_assert(strstr(ack->error, "version 9 is not supported"), "%s", ack->error);
    evbus__v1__ack__free_unpacked(ack, NULL);
    zmq_close(s);
    zmq_ctx_term(ctx);

    evbus_event e = order("after-garbage", "{}");
    evbus_ack a;
    cr_assert_eq(evbus_publish(client, &e, 1, &a), EVBUS_OK);
    cr_assert_eq(a.status, EVBUS_ACK_ACCEPTED);
}

Test(ingest, acked_events_survive_restart_and_stay_deduplicated) {
    evbus_event e = order("persist-1", "{\"k\":1}");
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);
    uint64_t seq = ack.sequence;

    cr_assert_eq(harness_stop(&h), 0, "SIGTERM must exit 0");
    cr_assert(harness_start(&h));
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_DUPLICATE);
    cr_assert_eq(ack.sequence, seq);

    evbus_event f = order("persist-2", "{}");
    cr_assert_eq(evbus_publish(client, &f, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);
    cr_assert_gt(ack.sequence, seq, "sequence numbers continue after a restart");
}

Test(ingest, second_daemon_on_same_data_dir_is_refused) {
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' --config '%s' 2>&1", harness_bin("evbusd"), h.config);
    int rc = harness_run(cmd, out, sizeof out);
    cr_assert_neq(rc, 0);
    cr_assert(strstr(out, "is in use by another evbusd"), "output: %s", out);
}

Test(ingest, cli_publishes_json_lines_and_reports_each_ack) {
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd,
             "printf '%%s\\n' '{\"id\":\"cli-1\",\"source\":\"s\",\"detail-type\":\"t\","
             "\"detail\":{\"n\":1}}' '{\"Id\":\"cli-2\",\"Source\":\"s\",\"DetailType\":\"t\","
             "\"Detail\":\"{}\"}' '{\"id\":\"cli-3\",\"source\":\"s\",\"detail-type\":\"t\"}' "
             "| '%s' pub -e '%s'",
             harness_bin("evbus"), h.endpoint);
    int rc = harness_run(cmd, out, sizeof out);
    cr_assert_eq(rc, 1, "a rejected event makes the exit status 1; output: %s", out);
    cr_assert(strstr(out, "accepted seq=") && strstr(out, "id=cli-1 line=1"), "%s", out);
    cr_assert(strstr(out, "id=cli-2 line=2"), "%s", out);
    cr_assert(strstr(out, "rejected id=cli-3 line=3: detail is required"), "%s", out);
}

Test(ingest, example_producer_publishes_pipelined) {
    char cmd[1024], out[1024];
    snprintf(cmd, sizeof cmd, "'%s/evbus-example-producer' '%s' 5000", getenv("EVBUS_EXAMPLES_DIR"),
             h.endpoint);
    int rc = harness_run(cmd, out, sizeof out);
    cr_assert_eq(rc, 0, "output: %s", out);
    cr_assert(strstr(out, "5000 durable, 0 rejected"), "%s", out);
}
