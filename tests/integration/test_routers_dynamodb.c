/* Three routers that share nothing deliver to one DynamoDB table (moto, with
 * signature checking) in conditional mode: a spread producer publishes
 * while one router is killed (kill -9) and restarted, and some events are
 * stored by two routers (a resend that reached a second router); the table
 * still holds every acked event exactly once. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"
#include "npm_server.h"

#define ROUTERS 3
#define EVENTS  300

static harness h[ROUTERS];
static moto m;
static evbus_client_t *client;

static void stop(void) {
    evbus_client_destroy(&client);
    for (int i = 0; i < ROUTERS; i++)
        harness_cleanup(&h[i]);
    moto_stop(&m);
}

TestSuite(routers_dynamodb, .fini = stop, .timeout = 280);

static int ddb_tool(const char *args, char *out, size_t len) {
    const char *src = getenv("EVBUS_SRC_DIR");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/support/ddb_tool.py' %s", src ? src : ".", args);
    return harness_run(cmd, out, len);
}

static bool acked[EVENTS];

static void on_ack(void *arg, evbus_err err, const evbus_ack *acks, size_t n) {
    (void)arg;
    for (size_t i = 0; err == EVBUS_OK && i < n; i++)
        if (acks[i].status == EVBUS_ACK_ACCEPTED || acks[i].status == EVBUS_ACK_DUPLICATE)
            acked[atoi(acks[i].event_id + 4)] = true; /* "ddb-N" */
}

static void publish(evbus_client_t *c, int from, int to) {
    for (int i = from; i < to; i++) {
        char id[32];
        snprintf(id, sizeof id, "ddb-%d", i);
        evbus_event e = {
            .id = id, .source = "com.example.orders", .detail_type = "OrderPlaced", .detail = "{}"};
        cr_assert_eq(evbus_publish_async(c, &e, 1, on_ack, NULL), EVBUS_OK);
    }
}

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Counts of each id in the table; true once every acked id is there. */
static bool table_has_all(int counts[EVENTS], size_t *items) {
    static char out[1 << 21];
    char args[512];
    snprintf(args, sizeof args, "items %s us-east-1 events", m.endpoint);
    cr_assert_eq(ddb_tool(args, out, sizeof out), 0, "%s", out);
    json_t *all = json_loads(out, 0, NULL);
    cr_assert(json_is_array(all), "%s", out);
    memset(counts, 0, EVENTS * sizeof *counts);
    size_t i;
    json_t *it;
    json_array_foreach(all, i, it) {
        const char *id = json_string_value(json_object_get(json_object_get(it, "id"), "S"));
        cr_assert(id && strncmp(id, "ddb-", 4) == 0, "unexpected item");
        counts[atoi(id + 4)]++;
    }
    *items = json_array_size(all);
    json_decref(all);
    for (int k = 0; k < EVENTS; k++)
        if (acked[k] && counts[k] == 0)
            return false;
    return true;
}

Test(routers_dynamodb, conditional_puts_keep_each_event_once_across_routers) {
    char log[300], out[4096], args[512];
    snprintf(log, sizeof log, "/tmp/evbus-routers-moto-%d.log", (int)getpid());
    cr_assert(aws_server_start(&m, "moto", log), "moto did not start (see %s)", log);
    snprintf(args, sizeof args, "create-table %s us-east-1 events id", m.endpoint);
    cr_assert_eq(ddb_tool(args, out, sizeof out), 0, "%s", out);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "region: us-east-1\n"
             "targets:\n"
             "  - name: orders\n"
             "    plugin: dynamodb\n"
             "    config:\n"
             "      endpoint: %s\n"
             "      table: events\n"
             "    retry_base_delay: 10ms\n"
             "    retry_max_delay: 50ms\n"
             "rules:\n"
             "  - name: all\n"
             "    pattern: {source: [{prefix: com.example}]}\n"
             "    targets: [orders]\n",
             m.endpoint);
    const char *endpoints[ROUTERS];
    for (int i = 0; i < ROUTERS; i++) {
        harness_init(&h[i], yaml);
        cr_assert(harness_start(&h[i]), "router %d did not start", i);
        endpoints[i] = h[i].endpoint;
    }
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.endpoints = endpoints;
    o.n_endpoints = ROUTERS;
    o.policy = EVBUS_ROUTER_SPREAD;
    o.resend_ms = 500;
    o.probe_ms = 200;
    o.timeout_ms = 60000;
    cr_assert_eq(evbus_client_new(NULL, &o, &client), EVBUS_OK);

    publish(client, 0, EVENTS / 3);
    cr_assert_eq(evbus_client_flush(client, 60000), EVBUS_OK);
    harness_kill9(&h[1]);
    publish(client, EVENTS / 3, 2 * EVENTS / 3);
    cr_assert_eq(evbus_client_flush(client, 60000), EVBUS_OK);
    cr_assert(harness_start(&h[1]), "router 1 did not restart");
    publish(client, 2 * EVENTS / 3, EVENTS);
    cr_assert_eq(evbus_client_flush(client, 60000), EVBUS_OK);

    /* What a resend to another router does: the first 50 ids again, each
     * to a router that has not seen it (spread put id k on router k % 3
     * or, while router 1 was dead, on another; router 2 takes them all). */
    evbus_client_t *direct;
    cr_assert_eq(evbus_client_new(h[2].endpoint, NULL, &direct), EVBUS_OK);
    publish(direct, 0, 50);
    cr_assert_eq(evbus_client_flush(direct, 60000), EVBUS_OK);
    evbus_client_destroy(&direct);

    int counts[EVENTS];
    size_t items = 0;
    int64_t deadline = now_ms() + 90000;
    while (!table_has_all(counts, &items)) {
        cr_assert_lt(now_ms(), deadline, "acked events missing from the table after 90 s");
        usleep(300 * 1000);
    }
    int n_acked = 0;
    for (int k = 0; k < EVENTS; k++) {
        n_acked += acked[k];
        cr_assert_leq(counts[k], 1, "ddb-%d is in the table %d times", k, counts[k]);
    }
    cr_assert_eq(n_acked, EVENTS, "every event was acked by some router");
    cr_log_info("%zu items for %d acked events over %d routers", items, n_acked, ROUTERS);
}
