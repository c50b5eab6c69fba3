/* SIGTERM under load: every request evbusd has read gets an answer, the
 * commit in progress and the batch being filled behind it included. A
 * producer that sent a request before the signal never has to wait for its
 * timeout to learn what became of it. */
#include <criterion/criterion.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "evbus/evbus.h"
#include "harness.h"

#define EVENTS_PER_REQUEST 100
#define MAX_REQUESTS       4000

static harness h;
static evbus_client_t *client;

/* What became of each request, from its callback. */
typedef struct outcome {
    bool done;
    evbus_err err;
    size_t accepted, retry_later, other;
} outcome;
static outcome outcomes[MAX_REQUESTS];
static size_t answered;

static void on_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    outcome *o = arg;
    o->done = true;
    o->err = err;
    for (size_t i = 0; i < n; i++) {
        if (acks[i].status == EVBUS_ACK_ACCEPTED)
            o->accepted++;
        else if (acks[i].status == EVBUS_ACK_RETRY_LATER)
            o->retry_later++;
        else
            o->other++;
    }
    answered++;
}

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
}

TestSuite(shutdown, .fini = stop, .timeout = 60);

Test(shutdown, sigterm_under_load_answers_every_request_sent_before) {
    /* Small commits (ten requests each), so that at the signal one batch is
     * committing, the next is filled behind it, and more requests wait in
     * the socket's queue: all three must be answered. */
    harness_init(&h, "  commit_max_events: 1000\n");
    cr_assert(harness_start(&h), "evbusd did not become ready (log in %s)", h.log);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    /* A request left unanswered shows up as a timeout; no resend, so that a
     * resent copy cannot hide a lost first answer. */
    o.timeout_ms = 5000;
    o.resend_ms = 5000;
    o.max_in_flight = 256;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);

    static char detail[512];
    memset(detail, ' ', sizeof detail - 1);
    detail[0] = '{';
    detail[sizeof detail - 2] = '}';
    static char ids[EVENTS_PER_REQUEST][32];
    evbus_event evs[EVENTS_PER_REQUEST];

    /* Keep the daemon busy committing, then stop it while requests are
     * still arriving. */
    size_t sent = 0;
    bool signalled = false;
    while (!signalled && sent < MAX_REQUESTS) {
        for (int i = 0; i < EVENTS_PER_REQUEST; i++) {
            snprintf(ids[i], sizeof ids[i], "sd-%zu-%d", sent, i);
            evs[i] =
                (evbus_event){.id = ids[i], .source = "s", .detail_type = "t", .detail = detail};
        }
        cr_assert_eq(evbus_publish_async(client, evs, EVENTS_PER_REQUEST, on_ack, &outcomes[sent]),
                     EVBUS_OK);
        sent++;
        if (answered >= 100) {
            cr_assert_eq(kill(h.pid, SIGTERM), 0);
            signalled = true;
        }
    }
    cr_assert(signalled, "the load never got going: %zu answered of %zu", answered, sent);

    evbus_client_flush(client, -1); /* at most timeout_ms */
    size_t accepted = 0, retry_later = 0, lost = 0;
    for (size_t i = 0; i < sent; i++) {
        const outcome *r = &outcomes[i];
        if (!r->done || r->err != EVBUS_OK) {
            lost++;
            continue;
        }
        cr_assert_eq(r->other, 0, "request %zu: an answer other than accepted or retry_later", i);
        accepted += r->accepted;
        retry_later += r->retry_later;
    }
    cr_assert_eq(lost, 0,
                 "%zu of %zu requests sent before SIGTERM got no answer (%zu events accepted, "
                 "%zu retry_later)",
                 lost, sent, accepted, retry_later);
    cr_assert_eq(harness_stop(&h), 0, "evbusd must exit 0 after SIGTERM");
}
