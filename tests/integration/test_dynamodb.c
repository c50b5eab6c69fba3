/* The DynamoDB sink against a real DynamoDB implementation, read back with
 * boto3: moto_server with signature checking on (test_dynamodb), and
 * dynalite (test_dynamodb_dynalite; it checks no signatures). Each event
 * becomes one item with its envelope and its detail, numbers exact;
 * redeliveries write nothing in conditional mode; batch mode writes 25 at a
 * time; items DynamoDB would refuse are dead-lettered with why; a missing
 * table is the target's fault, never the events'. */
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
#include "sink_status.h"

#ifndef EVBUS_TEST_IMPL
#define EVBUS_TEST_IMPL "moto"
#endif

static harness h;
static moto m;
static evbus_client_t *client;

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
    moto_stop(&m);
}

TestSuite(dynamodb, .fini = stop, .timeout = 150);

static int ddb_tool(const char *args, char *out, size_t len) {
    const char *src = getenv("EVBUS_SRC_DIR");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/support/ddb_tool.py' %s", src ? src : ".", args);
    return harness_run(cmd, out, len);
}

static void create_table(const char *table) {
    char args[512], out[4096];
    snprintf(args, sizeof args, "create-table %s us-east-1 %s id", m.endpoint, table);
    cr_assert_eq(ddb_tool(args, out, sizeof out), 0, "%s", out);
}

/* Inserts `text` into the configuration after the line `after`. */
static void config_insert(const char *after, const char *text) {
    static char yaml[8192];
    FILE *f = fopen(h.config, "r");
    size_t n = fread(yaml, 1, sizeof yaml - 1, f);
    fclose(f);
    yaml[n] = '\0';
    char *at = strstr(yaml, after);
    cr_assert_not_null(at, "%s", after);
    at += strlen(after);
    f = fopen(h.config, "w");
    fwrite(yaml, 1, (size_t)(at - yaml), f);
    fputs(text, f);
    fputs(at, f);
    fclose(f);
}

/* The server, a table `events` (unless create is false) and an evbusd
 * whose target `orders` writes to it. */
static void start_all(bool create, const char *extra_config, const char *extra_target) {
    char log[300];
    snprintf(log, sizeof log, "/tmp/evbus-%s-%d.log", EVBUS_TEST_IMPL, (int)getpid());
    cr_assert(aws_server_start(&m, EVBUS_TEST_IMPL, log), "%s did not start (see %s)",
              EVBUS_TEST_IMPL, log);
    if (create)
        create_table("events");
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "region: us-east-1\n"
             "targets:\n"
             "  - name: orders\n"
             "    plugin: dynamodb\n"
             "    config:\n"
             "      endpoint: %s\n"
             "      table: events\n"
             "%s"
             "    retry_base_delay: 10ms\n"
             "    retry_max_delay: 50ms\n"
             "%s"
             "rules:\n"
             "  - name: all\n"
             "    pattern: {source: [{prefix: com.example}]}\n"
             "    targets: [orders]\n",
             m.endpoint, extra_config ? extra_config : "", extra_target ? extra_target : "");
    harness_init(&h, yaml);
}

static void run_evbusd(void) {
    cr_assert(harness_start(&h), "evbusd did not start");
    evbus_client_destroy(&client);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

/* A detail with nesting, numbers a double cannot hold, an empty string, a
 * boolean and a null. */
#define DETAIL                                                                                     \
    "{\"n\":%d,\"order\":{\"total\":12345678901234567890.123456789012345678,"                      \
    "\"big\":18446744073709551617,\"small\":-0.000000000000000000000000000001,"                    \
    "\"lines\":[{\"sku\":\"caf\\u00e9 \\\"%d\\\"\",\"qty\":3},[],{}],"                             \
    "\"note\":\"\",\"paid\":true,\"coupon\":null}}"

static void publish_one(const char *id, const char *detail) {
    const char *resources[] = {"arn:aws:example:us-east-1:123456789012:order/1"};
    evbus_event e = {.id = id,
                     .source = "com.example.orders",
                     .detail_type = "OrderPlaced",
                     .detail = detail,
                     .time = "2024-05-01T12:00:00Z",
                     .resources = resources,
                     .n_resources = 1};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "%s: %s", id, ack.reason);
}

static void publish(const char *prefix, int n) {
    for (int i = 0; i < n; i++) {
        char id[64], detail[512];
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        snprintf(detail, sizeof detail, DETAIL, i, i);
        publish_one(id, detail);
    }
}

/* Every item of the table, as DynamoDB answers them (caller frees). */
static json_t *items(void) {
    static char out[1 << 21];
    char args[512];
    snprintf(args, sizeof args, "items %s us-east-1 events", m.endpoint);
    cr_assert_eq(ddb_tool(args, out, sizeof out), 0, "%s", out);
    json_t *all = json_loads(out, 0, NULL);
    cr_assert(json_is_array(all), "%s", out);
    return all;
}

static const char *av(json_t *item, const char *path, const char *type) {
    json_t *v = item;
    char buf[256];
    snprintf(buf, sizeof buf, "%s", path);
    for (char *save, *part = strtok_r(buf, ".", &save); part; part = strtok_r(NULL, ".", &save)) {
        char *end;
        long idx = strtol(part, &end, 10);
        if (*end == '\0' && json_is_object(v) && json_object_get(v, "L"))
            v = json_array_get(json_object_get(v, "L"), (size_t)idx);
        else if (json_object_get(v, "M"))
            v = json_object_get(json_object_get(v, "M"), part);
        else
            v = json_object_get(v, part);
    }
    json_t *s = json_object_get(v, type);
    cr_assert_not_null(s, "%s has no %s: %s", path, type, json_dumps(item, 0));
    return json_is_string(s) ? json_string_value(s) : json_is_true(s) ? "true" : "false";
}

/* Exactly ids PREFIX-0..n-1, once each, with their attributes. */
static void assert_items(json_t *all, const char *prefix, int n) {
    cr_assert_eq(json_array_size(all), (size_t)n, "%zu items for %d events", json_array_size(all),
                 n);
    int *seen = calloc((size_t)n, sizeof *seen);
    size_t i;
    json_t *it;
    json_array_foreach(all, i, it) {
        const char *id = av(it, "id", "S");
        char pfx[64];
        snprintf(pfx, sizeof pfx, "%s-", prefix);
        cr_assert_eq(strncmp(id, pfx, strlen(pfx)), 0, "%s", id);
        int k = atoi(id + strlen(pfx));
        cr_assert(k >= 0 && k < n);
        seen[k]++;
        cr_assert_str_eq(av(it, "source", "S"), "com.example.orders");
        cr_assert_str_eq(av(it, "detail-type", "S"), "OrderPlaced");
        cr_assert_str_eq(av(it, "time", "S"), "2024-05-01T12:00:00Z");
        cr_assert_str_eq(av(it, "region", "S"), "us-east-1");
        cr_assert_str_eq(av(it, "resources.0", "S"),
                         "arn:aws:example:us-east-1:123456789012:order/1");
        cr_assert_null(json_object_get(it, "account"), "evbus events carry no account");
        char n_text[16], sku[32];
        snprintf(n_text, sizeof n_text, "%d", k);
        cr_assert_str_eq(av(it, "detail.n", "N"), n_text);
        /* Exact: a double would give 12345678901234567000 and 18446744073709552000. */
        cr_assert_str_eq(av(it, "detail.order.total", "N"),
                         "12345678901234567890.123456789012345678");
        cr_assert_str_eq(av(it, "detail.order.big", "N"), "18446744073709551617");
        cr_assert_str_eq(av(it, "detail.order.small", "N"), "-0.000000000000000000000000000001");
        snprintf(sku, sizeof sku, "caf\xc3\xa9 \"%d\"", k);
        cr_assert_str_eq(av(it, "detail.order.lines.0.sku", "S"), sku);
        cr_assert_str_eq(av(it, "detail.order.lines.0.qty", "N"), "3");
        av(it, "detail.order.lines.1", "L");
        av(it, "detail.order.lines.2", "M");
        cr_assert_str_eq(av(it, "detail.order.note", "S"), "");
        cr_assert_str_eq(av(it, "detail.order.paid", "BOOL"), "true");
        av(it, "detail.order.coupon", "NULL");
    }
    for (int k = 0; k < n; k++)
        cr_assert_eq(seen[k], 1, "%s-%d stored %d times", prefix, k, seen[k]);
    free(seen);
}

static void evbus_cmd(const char *args, char *out, size_t len) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s -c '%s' 2>&1", harness_bin("evbus"), args, h.config);
    cr_assert_eq(harness_run(cmd, out, len), 0, "%s", out);
}

Test(dynamodb, items_arrive_once_with_envelope_and_exact_detail) {
    start_all(true, NULL, NULL);
    run_evbusd();
    publish("cond", 30);
    sink_wait_status(&h, "delivered", 30, 40);
    json_t *all = items();
    assert_items(all, "cond", 30);
    json_decref(all);
    cr_assert_eq(sink_plugin_counter(&h, "items_written"), 30);
    cr_assert_eq(sink_status_num(&h, "dead_lettered"), 0);
    cr_assert_eq(harness_stop(&h), 0, "a clean exit (and no leak under ASan)");
}

/* Conditional mode: events delivered again (evbus replay) find their item
 * and count as delivered; the table still holds each once. */
Test(dynamodb, conditional_redelivery_counts_as_delivered) {
    start_all(true, NULL, NULL);
    config_insert("storage:\n", "  retention: 1h\n");
    run_evbusd();
    publish("again", 8);
    sink_wait_status(&h, "delivered", 8, 40);
    char out[4096];
    evbus_cmd("replay -t orders --since 1h", out, sizeof out);
    sink_wait_status(&h, "delivered", 16, 40);
    cr_assert_eq(sink_plugin_counter(&h, "items_already_present"), 8);
    cr_assert_eq(sink_plugin_counter(&h, "items_written"), 8);
    cr_assert_eq(sink_status_num(&h, "dead_lettered"), 0);
    json_t *all = items();
    assert_items(all, "again", 8);
    json_decref(all);
}

/* Batch mode: BatchWriteItem, 25 items a call, each item once, with the
 * expiry the event's time plus ttl. */
Test(dynamodb, batch_mode_writes_every_item_once_with_expiry) {
    start_all(true,
              "      mode: batch\n"
              "      ttl_attribute: expires_at\n"
              "      ttl: 1h\n",
              "    batch_max_events: 25\n");
    run_evbusd();
    publish("batch", 60);
    sink_wait_status(&h, "delivered", 60, 40);
    json_t *all = items();
    assert_items(all, "batch", 60);
    size_t i;
    json_t *it;
    json_array_foreach(all, i, it) {
        /* 2024-05-01T12:00:00Z is 1714564800. */
        cr_assert_str_eq(av(it, "expires_at", "N"), "1714568400");
    }
    json_decref(all);
    cr_assert_eq(sink_plugin_counter(&h, "items_written"), 60);
    cr_assert_eq(sink_status_num(&h, "dead_lettered"), 0);
}

/* Items DynamoDB would refuse are dead-lettered at once with why, before
 * any request; the good events around them arrive. */
Test(dynamodb, items_dynamodb_cannot_hold_are_dead_lettered_with_why) {
    start_all(true, NULL, "    retry_max_attempts: 5\n");
    config_insert("ingest:\n", "  max_event_size: 2MiB\n  max_request_bytes: 8MiB\n");
    run_evbusd();
    publish("ok", 2);
    /* 420,000 bytes of text: past 400 KB as DynamoDB counts. */
    size_t big_len = 420000;
    char *big = malloc(big_len + 32);
    strcpy(big, "{\"blob\":\"");
    memset(big + 9, 'x', big_len);
    strcpy(big + 9 + big_len, "\"}");
    publish_one("too-large", big);
    free(big);
    publish_one("too-precise", "{\"v\":1.23456789012345678901234567890123456789}");
    publish_one("too-big", "{\"v\":[1,2,{\"w\":1e126}]}");
    sink_wait_status(&h, "dead_lettered", 3, 40);
    sink_wait_status(&h, "delivered", 2, 40);
    char out[16384];
    evbus_cmd("dlq list", out, sizeof out);
    cr_assert(strstr(out, "id=too-large attempts=1"), "%s", out);
    cr_assert(strstr(out, "Item size has exceeded the maximum allowed size"), "%s", out);
    cr_assert(strstr(out, "id=too-precise attempts=1"), "%s", out);
    cr_assert(strstr(out, "more than 38 significant digits"), "%s", out);
    cr_assert(strstr(out, "id=too-big attempts=1"), "%s", out);
    cr_assert(strstr(out, "larger than 9.9999999999999999999999999999999999999E+125"), "%s", out);
    cr_assert_eq(sink_plugin_counter(&h, "items_refused"), 3);
    json_t *all = items();
    cr_assert_eq(json_array_size(all), 2);
    json_decref(all);
}

/* No table: the target's fault. Retried past retry_max_attempts without a
 * dead letter, shown in evbus status, logged once; delivered once the
 * table exists. */
Test(dynamodb, missing_table_is_a_target_fault_until_it_is_created) {
    start_all(false, NULL, "    retry_max_attempts: 2\n");
    run_evbusd();
    publish("wait", 5);
    time_t end = time(NULL) + 30;
    json_int_t faults = 0;
    while (time(NULL) < end && faults < 20) {
        json_t *t = sink_status(&h);
        faults = json_integer_value(json_object_get(t, "target_faults"));
        cr_assert_eq(json_integer_value(json_object_get(t, "dead_lettered")), 0);
        cr_assert_eq(json_integer_value(json_object_get(t, "delivered")), 0);
        json_decref(t);
        usleep(50000);
    }
    cr_assert_geq(faults, 20, "only %lld target faults", (long long)faults);
    char out[8192];
    evbus_cmd("status", out, sizeof out);
    cr_assert(strstr(out, "orders: target fault (events are kept and retried): "
                          "ResourceNotFoundException: "),
              "%s", out);
    cr_assert(strstr(out, "create the resource"), "%s", out);
    sink_assert_logged_once(&h, "DynamoDB refuses this target (HTTP 400)",
                            "DynamoDB refuses this target");
    create_table("events");
    sink_wait_status(&h, "delivered", 5, 40);
    json_t *all = items();
    assert_items(all, "wait", 5);
    json_decref(all);
    evbus_cmd("dlq list", out, sizeof out);
    cr_assert_str_eq(out, "no dead letters\n");
    cr_assert_eq(harness_stop(&h), 0, "a clean exit (and no leak under ASan)");
}
