/* An example producer: publishes N events to evbusd in pipelined mode (many
 * requests in flight, one callback per request) and reports how many are
 * durable. Build against an installed evbus:
 *
 *   cc producer.c $(pkg-config --cflags --libs evbus) -o producer
 *   ./producer tcp://127.0.0.1:5555 10000 [IN_FLIGHT]
 */
#include <evbus/evbus.h>
#include <stdio.h>
#include <stdlib.h>

#define BATCH 100

typedef struct tally {
    unsigned long durable, rejected, retry_later, failed;
} tally;

/* Runs once per request, from evbus_client_poll() / evbus_client_flush() or
 * from evbus_publish_async() when it waits for room. */
static void on_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    tally *t = arg;
    if (err != EVBUS_OK) {
        /* Timed out or refused: the events may or may not be stored. Their ids
         * make a resend safe; here we only count them. */
        t->failed += BATCH;
        return;
    }
    for (size_t i = 0; i < n; i++) {
        switch (acks[i].status) {
        case EVBUS_ACK_ACCEPTED:
        case EVBUS_ACK_DUPLICATE: t->durable++; break;
        case EVBUS_ACK_REJECTED:
            t->rejected++;
            fprintf(stderr, "rejected %s: %s\n", acks[i].event_id, acks[i].reason);
            break;
        case EVBUS_ACK_RETRY_LATER: t->retry_later++; break;
        }
    }
}

int main(int argc, char **argv) {
    const char *endpoint = argc > 1 ? argv[1] : "tcp://127.0.0.1:5555";
    unsigned long total = argc > 2 ? strtoul(argv[2], NULL, 10) : 10000;
    unsigned in_flight = argc > 3 ? (unsigned)strtoul(argv[3], NULL, 10) : 32;

    evbus_client_opts opts;
    evbus_client_opts_init(&opts);
    opts.max_in_flight = in_flight ? in_flight : 32;
    evbus_client_t *client;
    evbus_err rc = evbus_client_new(endpoint, &opts, &client);
    if (rc != EVBUS_OK) {
        fprintf(stderr, "cannot open %s: %s\n", endpoint, evbus_strerror(rc));
        return 1;
    }

    tally t = {0};
    char details[BATCH][64];
    evbus_event events[BATCH];
    for (unsigned long sent = 0; sent < total;) {
        size_t n = 0;
        for (; n < BATCH && sent < total; n++, sent++) {
            snprintf(details[n], sizeof details[n], "{\"orderId\":%lu,\"amount\":%lu.5}", sent,
                     sent % 100);
            /* No id: the client assigns a UUID, so a resend cannot duplicate. */
            events[n] = (evbus_event){
                .source = "com.example.orders", .detail_type = "OrderPlaced", .detail = details[n]};
        }
        /* Encodes the events before returning: the arrays can be reused. */
        rc = evbus_publish_async(client, events, n, on_ack, &t);
        if (rc != EVBUS_OK) {
            fprintf(stderr, "publish failed: %s\n", evbus_strerror(rc));
            break;
        }
    }
    evbus_client_flush(client, -1);
    evbus_client_destroy(&client);
    printf("%lu durable, %lu rejected, %lu retry later, %lu failed\n", t.durable, t.rejected,
           t.retry_later, t.failed);
    return t.durable == total ? 0 : 1;
}
