/* Backpressure: a backlog limit and a full store answer RETRY_LATER with a
 * reason, the daemon stays up, and what was acked stays acked. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "evbus/evbus.h"
#include "harness.h"

static harness h;
static evbus_client_t *client;

static void open_client(void) {
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 10000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
}

TestSuite(backpressure, .fini = stop, .timeout = 60);

Test(backpressure, backlog_limit_answers_retry_later) {
    /* The harness writes a storage: section; this one overrides it. */
    harness_init(&h, NULL);
    FILE *f = fopen(h.config, "w");
    cr_assert_not_null(f);
    fprintf(f, "ingest:\n  listen: [\"%s\"]\nstorage:\n  data_dir: data\n  max_backlog: 3\n",
            h.endpoint);
    fclose(f);
    cr_assert(harness_start(&h));
    open_client();
    evbus_event evs[5];
    char ids[5][8];
    for (int i = 0; i < 5; i++) {
        snprintf(ids[i], sizeof ids[i], "bl-%d", i);
        evs[i] = (evbus_event){.id = ids[i], .source = "s", .detail_type = "t", .detail = "{}"};
    }
    evbus_ack acks[5];
    cr_assert_eq(evbus_publish(client, evs, 5, acks), EVBUS_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(acks[i].status, EVBUS_ACK_ACCEPTED);
    for (int i = 3; i < 5; i++) {
        cr_assert_eq(acks[i].status, EVBUS_ACK_RETRY_LATER);
        cr_assert(strstr(acks[i].reason, "storage.max_backlog"), "%s", acks[i].reason);
    }
    /* An already stored id is still answered as a duplicate. */
    cr_assert_eq(evbus_publish(client, evs, 1, acks), EVBUS_OK);
    cr_assert_eq(acks[0].status, EVBUS_ACK_DUPLICATE);
}

Test(backpressure, full_store_answers_retry_later_and_keeps_acked_events) {
    harness_init(&h, NULL);
    FILE *f = fopen(h.config, "w");
    cr_assert_not_null(f);
    fprintf(f, "ingest:\n  listen: [\"%s\"]\nstorage:\n  data_dir: data\n  map_size: 2MiB\n",
            h.endpoint);
    fclose(f);
    cr_assert(harness_start(&h));
    open_client();
    static char detail[8000];
    memset(detail, ' ', sizeof detail - 1);
    detail[0] = '{';
    detail[sizeof detail - 2] = '}';
    char first_id[16] = "";
    int accepted = 0, full = 0;
    for (int i = 0; i < 2000 && !full; i++) {
        char id[16];
        snprintf(id, sizeof id, "full-%d", i);
        evbus_event e = {.id = id, .source = "s", .detail_type = "t", .detail = detail};
        evbus_ack ack;
        cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK, "daemon stopped answering");
        if (ack.status == EVBUS_ACK_ACCEPTED) {
            accepted++;
            if (!first_id[0])
                snprintf(first_id, sizeof first_id, "%s", id);
        } else {
            cr_assert_eq(ack.status, EVBUS_ACK_RETRY_LATER);
            cr_assert(strstr(ack.reason, "storage full"), "%s", ack.reason);
            full = 1;
        }
    }
    cr_assert(full, "2 MiB never filled up");
    cr_assert_gt(accepted, 10);
    evbus_event again = {.id = first_id, .source = "s", .detail_type = "t", .detail = "{}"};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &again, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_DUPLICATE, "acked events survive a full store");
    cr_assert_eq(harness_stop(&h), 0);
}
