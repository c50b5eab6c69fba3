/* The three AWS sinks with one instance per region, against two moto_servers
 * that stand for two regions (us-east-1 and us-west-2), each with signature
 * checking on and its own IAM user. Each region's instance sees its merged
 * keys (its own endpoint, queue URL and credentials profile over the common
 * `config:`), signs for its own region, and until a selector exists a target
 * delivers to the first region of the top-level list. What arrived is read
 * back with boto3: every event once, in the region it should be in, and
 * nothing in the other one. */
#include <criterion/criterion.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"
#include "moto.h"

#define N_EVENTS 12

static harness h;
static moto region_server[2]; /* [0] us-east-1, [1] us-west-2 */
static const char *const region_name[2] = {"us-east-1", "us-west-2"};
static char queue_url[2][512], archive_url[2][512];
static evbus_client_t *client;

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
    moto_stop(&region_server[0]);
    moto_stop(&region_server[1]);
}

TestSuite(aws_regions, .fini = stop, .timeout = 240);

/* boto3 calls go to one region's server with that server's IAM user. */
static void as_region(int r) {
    setenv("AWS_ACCESS_KEY_ID", region_server[r].key_id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", region_server[r].secret, 1);
}

/* Runs `script verb ENDPOINT REGION a b` against region r. */
static void tool(const char *script, int r, const char *verb, const char *a, const char *b,
                 char *out, size_t outlen) {
    as_region(r);
    char cmd[2048];
    const char *src = getenv("EVBUS_SRC_DIR");
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/support/%s' %s %s %s '%s' %s", src ? src : ".",
             script, verb, region_server[r].endpoint, region_name[r], a, b);
    cr_assert_eq(harness_run(cmd, out, outlen), 0, "%s: %s", cmd, out);
}

/* In region r: the queue `orders`, the bus `orders-bus` with a rule into the
 * queue `archive`, and the table `payments`. */
static void create_resources(int r) {
    char out[4096];
    tool("aws_tool.py", r, "create-queue", "orders", "", queue_url[r], sizeof queue_url[r]);
    queue_url[r][strcspn(queue_url[r], "\n")] = '\0';
    tool("aws_tool.py", r, "create-queue", "archive", "", archive_url[r], sizeof archive_url[r]);
    archive_url[r][strcspn(archive_url[r], "\n")] = '\0';
    tool("aws_tool.py", r, "create-bus", "orders-bus", "", out, sizeof out);
    tool("aws_tool.py", r, "bus-to-queue", "orders-bus", archive_url[r], out, sizeof out);
    tool("ddb_tool.py", r, "create-table", "payments", "id", out, sizeof out);
}

/* A shared credentials file with one profile per region's IAM user. */
static void write_profiles(void) {
    char path[400];
    snprintf(path, sizeof path, "%s/credentials", h.dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int r = 0; r < 2; r++)
        fprintf(f, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n\n", region_name[r],
                region_server[r].key_id, region_server[r].secret);
    fclose(f);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    /* Only the profiles may answer: a key in the environment would be the
     * wrong region's for one of the instances. */
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
}

/* Starts both regions and evbusd; `first` is the region listed first in
 * the top-level `regions:`, where every target delivers today. */
static void start_all(int first) {
    char log[300];
    for (int r = 0; r < 2; r++) {
        snprintf(log, sizeof log, "/tmp/evbus-moto-%d-%s.log", (int)getpid(), region_name[r]);
        cr_assert(moto_start(&region_server[r], log), "moto_server did not start (see %s)", log);
    }
    for (int r = 0; r < 2; r++)
        create_resources(r);
    int second = 1 - first;
    static char yaml[8192];
    char per_region[2][1024];
    for (int r = 0; r < 2; r++)
        snprintf(per_region[r], sizeof per_region[r],
                 "      %s: {endpoint: \"%s\", profile: %s, queue_url: \"%s\"}\n", region_name[r],
                 region_server[r].endpoint, region_name[r], queue_url[r]);
    /* The per-region maps of the eventbridge and dynamodb targets give the
     * endpoint and profile only; queue_url is an SQS key. */
    char short_region[2][512];
    for (int r = 0; r < 2; r++)
        snprintf(short_region[r], sizeof short_region[r],
                 "      %s: {endpoint: \"%s\", profile: %s}\n", region_name[r],
                 region_server[r].endpoint, region_name[r]);
    snprintf(yaml, sizeof yaml,
             "region: us-east-1\n"
             "regions:\n"
             "  - name: %s\n"
             "  - name: %s\n"
             "targets:\n"
             "  - name: queue\n"
             "    plugin: sqs\n"
             "    config: {message_attributes: false}\n"
             "    regions:\n%s%s"
             "    retry_base_delay: 10ms\n"
             "    retry_max_delay: 100ms\n"
             "  - name: bus\n"
             "    plugin: eventbridge\n"
             "    config: {event_bus: orders-bus}\n"
             "    regions:\n%s%s"
             "    retry_base_delay: 10ms\n"
             "    retry_max_delay: 100ms\n"
             "  - name: table\n"
             "    plugin: dynamodb\n"
             "    config: {table: payments}\n"
             "    regions:\n%s%s"
             "    retry_base_delay: 10ms\n"
             "    retry_max_delay: 100ms\n"
             "rules:\n"
             "  - name: all\n"
             "    pattern: {source: [{prefix: com.example}]}\n"
             "    targets: [queue, bus, table]\n",
             region_name[first], region_name[second], per_region[1], per_region[0], short_region[0],
             short_region[1], short_region[1], short_region[0]);
    harness_init(&h, yaml);
    write_profiles();
    cr_assert(harness_start(&h), "evbusd did not start");
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

static void publish_all(void) {
    for (int i = 0; i < N_EVENTS; i++) {
        char id[64], detail[96];
        snprintf(id, sizeof id, "regional-%d", i);
        snprintf(detail, sizeof detail, "{\"n\":%d,\"amount\":12.50}", i);
        evbus_event e = {
            .id = id, .source = "com.example.orders", .detail_type = "Order", .detail = detail};
        evbus_ack ack;
        cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
        cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "%s: %s", id, ack.reason);
    }
}

/* Counts the events regional-0 .. regional-(N-1) in `json` (each must
 * appear at most once) and returns how many distinct ones were there. By
 * id, or, where the service gives events ids of its own (EventBridge), by
 * the "n" of their detail. */
static int count_ids(const char *json, const char *what) {
    int found = 0;
    bool by_detail = strcmp(what, "eventbridge") == 0;
    for (int i = 0; i < N_EVENTS; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, by_detail ? "\"n\": %d," : "regional-%d\"", i);
        const char *at = strstr(json, needle);
        if (!at)
            continue;
        found++;
        cr_assert_null(strstr(at + 1, needle), "%s: regional-%d arrived twice: %s", what, i, json);
    }
    return found;
}

/* What region r's queue, bus (through its archive queue) and table hold. */
static void expect_region(int r, int want) {
    char out[65536], wantbuf[16];
    snprintf(wantbuf, sizeof wantbuf, "%d", want);
    const char *secs = want ? "20" : "1";
    char args[1024];
    as_region(r);
    snprintf(args, sizeof args, "receive %s %s '%s' %s %s", region_server[r].endpoint,
             region_name[r], queue_url[r], wantbuf, secs);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "%s", out);
    cr_assert_eq(count_ids(out, "sqs"), want, "SQS in %s: %s", region_name[r], out);
    snprintf(args, sizeof args, "receive %s %s '%s' %s %s", region_server[r].endpoint,
             region_name[r], archive_url[r], wantbuf, secs);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "%s", out);
    cr_assert_eq(count_ids(out, "eventbridge"), want, "EventBridge in %s: %s", region_name[r], out);
    tool("ddb_tool.py", r, "items", "payments", "", out, sizeof out);
    cr_assert_eq(count_ids(out, "dynamodb"), want, "DynamoDB in %s: %s", region_name[r], out);
    if (want)
        cr_assert(strstr(out, "{\"N\": \"12.50\"}"), "the number's text is kept: %s", out);
}

/* Polls `evbus status` until every target has delivered everything. */
static void wait_all_delivered(void) {
    char cmd[1024], out[16384];
    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' 2>&1", harness_bin("evbus"), h.config);
    time_t end = time(NULL) + 60;
    while (time(NULL) < end) {
        cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
        if (strstr(out, "0 pending deliveries"))
            return;
        usleep(100 * 1000);
    }
    cr_assert_fail("not everything delivered within 60 s:\n%s", out);
}

static void run_case(int first) {
    start_all(first);
    publish_all();
    wait_all_delivered();
    expect_region(first, N_EVENTS);
    expect_region(1 - first, 0);
    /* evbus status names the region each target delivers to now. */
    char cmd[1024], out[16384], want[64];
    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' 2>&1", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    snprintf(want, sizeof want, "%s (also %s)", region_name[first], region_name[1 - first]);
    cr_assert(strstr(out, want), "status should say '%s':\n%s", want, out);
    cr_assert_eq(harness_stop(&h), 0);
}

Test(aws_regions, every_sink_delivers_in_the_first_region_with_its_own_keys) {
    run_case(0);
}

/* The order of the top-level list decides, not the order of a target's map. */
Test(aws_regions, the_top_level_order_picks_the_region) {
    run_case(1);
}
