/* libevbus against daemons that come and go: publishing before the daemon
 * starts, across a kill -9, and timeouts when none ever answers. */
#include <criterion/criterion.h>
#include <string.h>

#include "evbus/evbus.h"
#include "harness.h"

static harness h;
static evbus_client_t *client;

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
}

TestSuite(client, .fini = stop, .timeout = 60);

typedef struct result {
    int calls;
    evbus_err err;
    evbus_ack_status status;
} result;

static void on_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    result *r = arg;
    r->calls++;
    r->err = err;
    if (err == EVBUS_OK && n == 1)
        r->status = acks[0].status;
}

static void open_client(int timeout_ms) {
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = timeout_ms;
    o.resend_ms = 200;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

Test(client, publish_before_the_daemon_starts_is_acked_once_it_is_up) {
    harness_init(&h, NULL);
    open_client(20000);
    evbus_event e = {.id = "early-1", .source = "s", .detail_type = "t", .detail = "{}"};
    result r = {0};
    cr_assert_eq(evbus_publish_async(client, &e, 1, on_ack, &r), EVBUS_OK);
    cr_assert_eq(evbus_client_poll(client, 300), EVBUS_OK);
    cr_assert_eq(r.calls, 0, "nothing can answer yet");
    cr_assert(harness_start(&h));
    cr_assert_eq(evbus_client_flush(client, 15000), EVBUS_OK);
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.err, EVBUS_OK);
    cr_assert_eq(r.status, EVBUS_ACK_ACCEPTED);
}

Test(client, request_sent_to_a_killed_daemon_is_resent_to_its_successor) {
    harness_init(&h, NULL);
    cr_assert(harness_start(&h));
    open_client(20000);
    evbus_event e = {.id = "k-1", .source = "s", .detail_type = "t", .detail = "{}"};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);
    harness_kill9(&h);
    evbus_event f = {.id = "k-2", .source = "s", .detail_type = "t", .detail = "{}"};
    result r = {0};
    cr_assert_eq(evbus_publish_async(client, &f, 1, on_ack, &r), EVBUS_OK);
    evbus_client_poll(client, 300);
    cr_assert(harness_start(&h));
    cr_assert_eq(evbus_client_flush(client, 15000), EVBUS_OK);
    cr_assert_eq(r.err, EVBUS_OK);
    cr_assert_eq(r.status, EVBUS_ACK_ACCEPTED);
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_DUPLICATE, "the first event survived kill -9");
}

Test(client, no_daemon_means_timeout_not_a_hang) {
    harness_init(&h, NULL);
    open_client(500);
    evbus_event e = {.source = "s", .detail_type = "t", .detail = "{}"};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_ETIMEDOUT);
    result r = {0};
    cr_assert_eq(evbus_publish_async(client, &e, 1, on_ack, &r), EVBUS_OK);
    cr_assert_eq(evbus_client_flush(client, 5000), EVBUS_OK);
    cr_assert_eq(r.calls, 1);
    cr_assert_eq(r.err, EVBUS_ETIMEDOUT);
    cr_assert_eq(evbus_client_in_flight(client), 0);
}

Test(client, bad_arguments_are_refused) {
    harness_init(&h, NULL);
    evbus_client_t *c = NULL;
    cr_assert_eq(evbus_client_new(NULL, NULL, &c), EVBUS_EINVAL);
    cr_assert_eq(evbus_client_new("nonsense", NULL, &c), EVBUS_EINVAL);
    cr_assert_null(c);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.max_in_flight = 0;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &c), EVBUS_EINVAL);
    open_client(1000);
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, NULL, 1, &ack), EVBUS_EINVAL);
    evbus_event e = {.source = "s", .detail_type = "t", .detail = "{}"};
    cr_assert_eq(evbus_publish(client, &e, 0, &ack), EVBUS_EINVAL);
    cr_assert_eq(evbus_publish_async(client, &e, 1, NULL, NULL), EVBUS_EINVAL);
    evbus_client_destroy(&client);
    cr_assert_null(client);
    evbus_client_destroy(&client); /* NULL is fine */
    cr_assert_str_eq(evbus_strerror(EVBUS_ETIMEDOUT), "timed out");
}
