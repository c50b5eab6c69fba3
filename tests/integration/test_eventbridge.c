/* The EventBridge sink against a real EventBridge implementation
 * (moto_server, signature checking on): a bus with a rule whose target is an
 * SQS queue, read back with boto3. Every event arrives once with its source,
 * detail type, detail, resources and time; an entry EventBridge refuses is
 * dead-lettered with its code; an entry too large is refused before
 * sending; an unknown bus and a wrong secret are target faults, retried and
 * shown, never dead-lettered. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"
#include "moto.h"
#include "sink_status.h"

static harness h;
static moto m;
static evbus_client_t *client;
static char queue_url[512];

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
    moto_stop(&m);
}

TestSuite(eventbridge, .fini = stop, .timeout = 120);

/* aws_tool.py CMD ENDPOINT us-east-1 NAME; its output's first line. */
static void tool(const char *cmd, const char *name, char *out, size_t len) {
    char args[1024];
    snprintf(args, sizeof args, "%s %s us-east-1 %s", cmd, m.endpoint, name);
    cr_assert_eq(aws_tool(args, out, len), 0, "%s: %s", args, out);
    out[strcspn(out, "\n")] = '\0';
}

/* The bus and its rule into the queue, through boto3. */
static void create_bus(const char *bus) {
    char out[1024];
    tool("create-bus", bus, out, sizeof out);
    char args[1024];
    snprintf(args, sizeof args, "bus-to-queue %s us-east-1 %s '%s'", m.endpoint, bus, queue_url);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "%s", out);
}

/* moto, the queue (and the bus `bus` unless NULL), and an evbusd whose
 * target `bus` puts events on the bus `event_bus`. */
static void start_all(const char *bus, const char *event_bus, const char *extra_config,
                      const char *extra_target) {
    char log[300];
    snprintf(log, sizeof log, "/tmp/evbus-moto-%d.log", (int)getpid());
    cr_assert(moto_start(&m, log), "moto_server did not start (see %s)", log);
    tool("create-queue", "from-bus", queue_url, sizeof queue_url);
    if (bus)
        create_bus(bus);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "region: us-east-1\n"
             "targets:\n"
             "  - name: bus\n"
             "    plugin: eventbridge\n"
             "    config:\n"
             "      endpoint: %s\n"
             "      event_bus: %s\n"
             "%s"
             "    retry_base_delay: 10ms\n"
             "    retry_max_delay: 50ms\n"
             "%s"
             "rules:\n"
             "  - name: all\n"
             "    pattern: {source: [{prefix: com.example}]}\n"
             "    targets: [bus]\n",
             m.endpoint, event_bus, extra_config ? extra_config : "",
             extra_target ? extra_target : "");
    harness_init(&h, yaml);
}

static void run_evbusd(void) {
    cr_assert(harness_start(&h), "evbusd did not start");
    evbus_client_destroy(&client); /* from a run before a restart */
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

static void publish_one(const char *id, const char *detail) {
    char r0[64];
    snprintf(r0, sizeof r0, "arn:aws:example:us-east-1:1:order/%s", id);
    const char *res[] = {r0, "arn:aws:example:us-east-1:1:shop/main"};
    evbus_event e = {.id = id,
                     .source =
                         id[strlen(id) - 1] % 2 ? "com.example.orders" : "com.example.billing",
                     .detail_type = "OrderPlaced",
                     .detail = detail,
                     .time = "2026-11-23T18:44:20.250+01:00",
                     .resources = res,
                     .n_resources = 2};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "%s: %s", id, ack.reason);
}

/* Publishes PREFIX-0 .. PREFIX-(n-1); the detail carries the id, since
 * EventBridge gives each entry an id of its own. */
static void publish(const char *prefix, int n) {
    for (int i = 0; i < n; i++) {
        char id[64], detail[256];
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        snprintf(detail, sizeof detail,
                 "{\"id\":\"%s\",\"n\":%d,\"text\":\"caf\\u00e9 \\\"%d\\\"\"}", id, i, i);
        publish_one(id, detail);
    }
}

/* Every message the rule put in the queue, read (and deleted) with boto3. */
static json_t *receive_all(int want) {
    static char out[1 << 20];
    char args[1024];
    snprintf(args, sizeof args, "receive %s us-east-1 '%s' %d 10", m.endpoint, queue_url, want);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "%s", out);
    json_t *msgs = json_loads(out, 0, NULL);
    cr_assert(json_is_array(msgs), "%s", out);
    return msgs;
}

/* Exactly PREFIX-0..n-1, once each, with the content published. */
/* Every event PREFIX-0..n-1 arrived, with the content published, and once
 * each, except that an attempt evbusd retried (the status's `retried`: a
 * timeout under load leaves it unknown whether the service took the entry)
 * may have left one more copy: EventBridge has no deduplication id. */
static void assert_once_each_allowing(json_t *msgs, const char *prefix, int n, json_int_t retried) {
    json_t *t = sink_status(&h);
    char *st = json_dumps(t, JSON_COMPACT);
    json_decref(t);
    cr_assert(json_array_size(msgs) >= (size_t)n &&
                  json_array_size(msgs) <= (size_t)n + (size_t)retried,
              "%zu messages for %d events, %lld attempts retried; status: %s",
              json_array_size(msgs), n, (long long)retried, st);
    free(st);
    int *seen = calloc((size_t)n, sizeof *seen);
    size_t i;
    json_t *msg;
    json_array_foreach(msgs, i, msg) {
        json_t *body = json_object_get(msg, "body");
        json_t *detail = json_object_get(body, "detail");
        const char *id = json_string_value(json_object_get(detail, "id"));
        cr_assert_not_null(id);
        char pfx[64];
        snprintf(pfx, sizeof pfx, "%s-", prefix);
        cr_assert_eq(strncmp(id, pfx, strlen(pfx)), 0, "%s", id);
        int k = atoi(id + strlen(pfx));
        cr_assert(k >= 0 && k < n);
        seen[k]++;
        cr_assert_str_eq(json_string_value(json_object_get(body, "source")),
                         id[strlen(id) - 1] % 2 ? "com.example.orders" : "com.example.billing");
        cr_assert_str_eq(json_string_value(json_object_get(body, "detail-type")), "OrderPlaced");
        /* 18:44:20.250+01:00, in EventBridge's whole seconds, UTC. */
        cr_assert_str_eq(json_string_value(json_object_get(body, "time")), "2026-11-23T17:44:20Z");
        cr_assert_eq(json_integer_value(json_object_get(detail, "n")), k);
        char text[32];
        snprintf(text, sizeof text, "caf\xc3\xa9 \"%d\"", k);
        cr_assert_str_eq(json_string_value(json_object_get(detail, "text")), text);
        json_t *res = json_object_get(body, "resources");
        char r0[64];
        snprintf(r0, sizeof r0, "arn:aws:example:us-east-1:1:order/%s", id);
        cr_assert_eq(json_array_size(res), 2);
        cr_assert_str_eq(json_string_value(json_array_get(res, 0)), r0);
        cr_assert_str_eq(json_string_value(json_array_get(res, 1)),
                         "arn:aws:example:us-east-1:1:shop/main");
    }
    for (int k = 0; k < n; k++)
        cr_assert(seen[k] >= 1 && seen[k] <= 1 + retried, "%s-%d arrived %d times (%lld retried)",
                  prefix, k, seen[k], (long long)retried);
    free(seen);
}

static void assert_once_each(json_t *msgs, const char *prefix, int n) {
    assert_once_each_allowing(msgs, prefix, n, 0);
}

static void dlq_list(char *out, size_t len) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' dlq list -c '%s' 2>&1", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, len), 0, "%s", out);
}

Test(eventbridge, events_arrive_once_with_their_content) {
    start_all("orders", "orders", NULL, NULL);
    run_evbusd();
    publish("std", 25);
    sink_wait_status(&h, "delivered", 25, 60);
    json_int_t retried = sink_status_num(&h, "retried");
    json_t *msgs = receive_all(25);
    assert_once_each_allowing(msgs, "std", 25, retried);
    json_decref(msgs);
    json_t *t = sink_status(&h);
    json_t *pc = json_object_get(t, "plugin_counters");
    cr_assert_eq(json_integer_value(json_object_get(pc, "entries_sent")), 25);
    cr_assert_eq(json_integer_value(json_object_get(t, "dead_lettered")), 0);
    json_decref(t);
    cr_assert_eq(harness_stop(&h), 0, "a clean exit (and no leak under ASan)");
}

/* The bus named by its ARN, and calls cut by entry size: at 1 KiB per call
 * two of these entries fit, a 2 KiB detail fits in none and is refused
 * before it is sent. */
Test(eventbridge, bus_by_arn_and_calls_cut_by_entry_size) {
    start_all("orders", "arn:aws:events:us-east-1:123456789012:event-bus/orders",
              "      max_request_bytes: 1KiB\n", NULL);
    run_evbusd();
    char pad[200];
    memset(pad, 'x', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (int i = 0; i < 6; i++) {
        char id[32], detail[512];
        snprintf(id, sizeof id, "cut-%d", i);
        snprintf(detail, sizeof detail,
                 "{\"id\":\"%s\",\"n\":%d,\"text\":\"caf\\u00e9 \\\"%d\\\"\",\"pad\":\"%s\"}", id,
                 i, i, pad);
        publish_one(id, detail);
    }
    static char big[2300];
    memset(big, 'y', sizeof big);
    memcpy(big, "{\"id\":\"huge\",\"pad\":\"", 20);
    memcpy(big + sizeof big - 3, "\"}", 3);
    publish_one("huge-1", big);
    sink_wait_status(&h, "delivered", 6, 60);
    sink_wait_status(&h, "dead_lettered", 1, 60);
    json_t *msgs = receive_all(6);
    assert_once_each(msgs, "cut", 6);
    json_decref(msgs);
    char out[4096];
    dlq_list(out, sizeof out);
    cr_assert(strstr(out, "id=huge-1 "), "%s", out);
    /* EventBridge's rule: 14 for Time, then Source, DetailType, Detail and
     * each resource, without any JSON around them. */
    char want[128];
    snprintf(want, sizeof want, "EntryTooLarge: the entry is %zu bytes",
             14 + strlen("com.example.orders") + strlen("OrderPlaced") + strlen(big) +
                 strlen("arn:aws:example:us-east-1:1:order/huge-1") +
                 strlen("arn:aws:example:us-east-1:1:shop/main"));
    cr_assert(strstr(out, want), "%s", out);
    json_t *t = sink_status(&h);
    json_t *pc = json_object_get(t, "plugin_counters");
    cr_assert_eq(json_integer_value(json_object_get(pc, "entries_sent")), 6);
    cr_assert_eq(json_integer_value(json_object_get(pc, "entries_refused")), 1);
    json_decref(t);
}

/* evbusd checks that a detail is a JSON object, but moto reads it with
 * Python, whose int() refuses more than 4300 digits: EventBridge (moto)
 * answers MalformedDetail for that entry alone in a 200, and only that
 * event is dead-lettered, with the service's code and message; the others
 * of the same call arrive once. */
Test(eventbridge, entry_the_service_refuses_is_dead_lettered_with_its_code) {
    start_all("orders", "orders", NULL, NULL);
    run_evbusd();
    static char digits[5200];
    int n = snprintf(digits, sizeof digits, "{\"id\":\"bad\",\"n\":");
    memset(digits + n, '7', 5000);
    memcpy(digits + n + 5000, "}", 2);
    /* One batch: the refused entry sits between accepted ones. */
    evbus_event evs[3];
    const char *ids[] = {"mix-0", "mix-bad", "mix-1"};
    const char *details[] = {"{\"id\":\"mix-0\",\"n\":0,\"text\":\"caf\\u00e9 \\\"0\\\"\"}", digits,
                             "{\"id\":\"mix-1\",\"n\":1,\"text\":\"caf\\u00e9 \\\"1\\\"\"}"};
    const char *res0[] = {"arn:aws:example:us-east-1:1:order/mix-0",
                          "arn:aws:example:us-east-1:1:shop/main"};
    const char *res1[] = {"arn:aws:example:us-east-1:1:order/mix-1",
                          "arn:aws:example:us-east-1:1:shop/main"};
    const char *const *res[] = {res0, res0, res1};
    for (int i = 0; i < 3; i++)
        evs[i] = (evbus_event){.id = ids[i],
                               .source = i == 2 ? "com.example.orders" : "com.example.billing",
                               .detail_type = "OrderPlaced",
                               .detail = details[i],
                               .time = "2026-11-23T17:44:20Z",
                               .resources = res[i],
                               .n_resources = 2};
    evbus_ack acks[3];
    cr_assert_eq(evbus_publish(client, evs, 3, acks), EVBUS_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(acks[i].status, EVBUS_ACK_ACCEPTED, "%s: %s", ids[i], acks[i].reason);
    sink_wait_status(&h, "dead_lettered", 1, 60);
    sink_wait_status(&h, "delivered", 2, 60);
    char out[4096];
    dlq_list(out, sizeof out);
    cr_assert(strstr(out, "id=mix-bad "), "%s", out);
    cr_assert(strstr(out, "MalformedDetail: Detail is malformed."), "%s", out);
    cr_assert_null(strstr(out, "id=mix-0 "), "%s", out);
    json_t *msgs = receive_all(2);
    assert_once_each(msgs, "mix", 2);
    json_decref(msgs);
    cr_assert_eq(sink_status_num(&h, "dead_lettered"), 1);
}

/* An unknown bus is the target's fault: retried past retry_max_attempts
 * without a dead letter, shown in evbus status, logged once; once the bus
 * (and its rule) exist, every event arrives once. */
Test(eventbridge, unknown_bus_is_a_target_fault_until_it_is_created) {
    start_all(NULL, "late", NULL, "    retry_max_attempts: 2\n");
    run_evbusd();
    publish("late", 5);
    sink_wait_status(&h, "target_faults", 30, 60);
    cr_assert_eq(sink_status_num(&h, "dead_lettered"), 0);
    cr_assert_eq(sink_status_num(&h, "delivered"), 0);
    char out[8192];
    sink_status_text(&h, out, sizeof out);
    cr_assert(strstr(out, "bus: target fault (events are kept and retried): "
                          "ResourceNotFoundException: "),
              "%s", out);
    cr_assert(strstr(out, "create the resource"), "%s", out);
    /* A bus takes events as soon as it exists, but the rule into the queue
     * comes a moment later: evbusd waits (stopped) until both exist, or
     * events accepted in between would reach no rule. */
    cr_assert_eq(kill(h.pid, SIGSTOP), 0);
    create_bus("late");
    cr_assert_eq(kill(h.pid, SIGCONT), 0);
    sink_wait_status(&h, "delivered", 5, 60);
    json_t *msgs = receive_all(5);
    assert_once_each(msgs, "late", 5);
    json_decref(msgs);
    dlq_list(out, sizeof out);
    cr_assert_str_eq(out, "no dead letters\n");
    sink_assert_logged_once(&h, "EventBridge refuses this target (HTTP 400)",
                            "EventBridge refuses this target");
    static char log[1 << 20];
    harness_read_log(&h, log, sizeof log);
    cr_assert(strstr(log, "EventBridge accepts requests again"), "%s", log);
}

/* A wrong secret: SignatureDoesNotMatch, retried and shown, never
 * dead-lettered, the secret never written; the right one delivers all. */
Test(eventbridge, wrong_secret_is_retried_and_shown_never_dead_lettered) {
    start_all("orders", "orders", NULL, "    retry_max_attempts: 2\n");
    char right[128];
    snprintf(right, sizeof right, "%s", m.secret);
    setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-0123456789", 1);
    run_evbusd();
    publish("sec", 5);
    sink_wait_status(&h, "target_faults", 30, 60);
    cr_assert_eq(sink_status_num(&h, "dead_lettered"), 0);
    cr_assert_eq(sink_status_num(&h, "delivered"), 0);
    char out[8192];
    sink_status_text(&h, out, sizeof out);
    cr_assert(strstr(out, "bus: target fault (events are kept and retried): "
                          "SignatureDoesNotMatch: "),
              "%s", out);
    cr_assert(strstr(out, "check the credentials"), "%s", out);
    cr_assert_null(strstr(out, "wrong-secret"), "%s", out);
    static char log[1 << 20];
    harness_read_log(&h, log, sizeof log);
    cr_assert_null(strstr(log, "wrong-secret"), "the secret is never logged");
    cr_assert(strstr(log, "EventBridge refuses this target (HTTP 403)"), "%s", log);
    cr_assert_eq(harness_stop(&h), 0);
    setenv("AWS_SECRET_ACCESS_KEY", right, 1);
    run_evbusd();
    sink_wait_status(&h, "delivered", 5, 60);
    json_t *msgs = receive_all(5);
    assert_once_each(msgs, "sec", 5);
    json_decref(msgs);
    dlq_list(out, sizeof out);
    cr_assert_str_eq(out, "no dead letters\n");
}
