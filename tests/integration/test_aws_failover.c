/* Failover with a real sink: the SQS sink with an instance per region
 * against a moto_server per region (us-east-1 primary, us-west-2), each
 * region checked over TCP on its server's port and with passive health.
 * The primary's server is stopped (killed region): events published from
 * then on land in us-west-2's queue, none lost; read back with boto3. The
 * primary stalls (tests/support/fault_proxy.py holds its calls) while
 * traffic moves: the calls held there move with it when they time out. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "fault_proxy.h"
#include "harness.h"
#include "moto.h"
#include "sink_status.h"

#define N 6

static harness h;
static moto server[2]; /* [0] us-east-1, [1] us-west-2 */
static const char *const name[2] = {"us-east-1", "us-west-2"};
static char queue_url[2][512];
static evbus_client_t *client;
static fault_proxy proxy;  /* in front of us-east-1's server, when a test asks */
static char proxy_dir[64]; /* its port file and log */

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
    fault_proxy_stop(&proxy);
    harness_remove_dir(proxy_dir);
    moto_stop(&server[0]);
    moto_stop(&server[1]);
}

TestSuite(aws_failover, .fini = stop, .timeout = 240);

static void as_region(int r) {
    setenv("AWS_ACCESS_KEY_ID", server[r].key_id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", server[r].secret, 1);
}

/* The servers, a queue in each, and evbusd with target `queue` delivering
 * to both regions; `target_extra`: lines under the target (delays,
 * timeouts); `east_through_proxy`: us-east-1's calls pass the fault proxy,
 * whose sink there waits at most 8 s for an answer. */
static void start_all(bool east_through_proxy, const char *target_extra) {
    char log[300], args[1024];
    for (int r = 0; r < 2; r++) {
        snprintf(log, sizeof log, "/tmp/evbus-moto-%d-%s.log", (int)getpid(), name[r]);
        cr_assert(moto_start(&server[r], log), "moto_server did not start (see %s)", log);
        as_region(r);
        snprintf(args, sizeof args, "create-queue %s %s orders", server[r].endpoint, name[r]);
        cr_assert_eq(aws_tool(args, queue_url[r], sizeof queue_url[r]), 0, "%s", queue_url[r]);
        queue_url[r][strcspn(queue_url[r], "\n")] = '\0';
    }
    char east[200];
    snprintf(east, sizeof east, "endpoint: \"%s\"", server[0].endpoint);
    if (east_through_proxy) {
        snprintf(proxy_dir, sizeof proxy_dir, "/tmp/evbus-aws-failover-XXXXXX");
        cr_assert_not_null(mkdtemp(proxy_dir));
        cr_assert(fault_proxy_start(&proxy, server[0].endpoint, proxy_dir),
                  "the proxy did not start (see %s)", proxy.log);
        snprintf(east, sizeof east, "endpoint: \"%s\", timeout: 8s", proxy.endpoint);
    }
    static char yaml[4096];
    snprintf(yaml, sizeof yaml,
             "region: us-east-1\n"
             "regions:\n"
             "  - name: us-east-1\n"
             "    health_check: {url: \"tcp://127.0.0.1:%d\", interval: 1s, timeout: 500ms, "
             "failure_threshold: 2, recovery_threshold: 2}\n"
             "    passive_health: {window: 5s, min_failures: 2}\n"
             "  - name: us-west-2\n"
             "    health_check: {url: \"tcp://127.0.0.1:%d\", interval: 1s, timeout: 500ms, "
             "failure_threshold: 2, recovery_threshold: 2}\n"
             "    passive_health: {window: 5s, min_failures: 2}\n"
             "targets:\n"
             "  - name: queue\n"
             "    plugin: sqs\n"
             "    config: {message_attributes: false}\n"
             "    failback_hold: 60s\n"
             "%s"
             "    regions:\n"
             "      us-east-1: {%s, profile: us-east-1, queue_url: \"%s\"}\n"
             "      us-west-2: {endpoint: \"%s\", profile: us-west-2, queue_url: \"%s\"}\n"
             "rules:\n"
             "  - name: all\n"
             "    pattern: {source: [com.example.orders]}\n"
             "    targets: [queue]\n",
             server[0].port, server[1].port, target_extra, east, queue_url[0], server[1].endpoint,
             queue_url[1]);
    harness_init(&h, yaml);
    char path[400];
    snprintf(path, sizeof path, "%s/credentials", h.dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    for (int r = 0; r < 2; r++)
        fprintf(f, "[%s]\naws_access_key_id = %s\naws_secret_access_key = %s\n\n", name[r],
                server[r].key_id, server[r].secret);
    fclose(f);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    cr_assert(harness_start(&h), "evbusd did not start");
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

static void publish(const char *phase) {
    for (int i = 0; i < N; i++) {
        char id[64];
        snprintf(id, sizeof id, "%s-%d", phase, i);
        evbus_event e = {
            .id = id, .source = "com.example.orders", .detail_type = "Order", .detail = "{}"};
        evbus_ack ack;
        cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
        cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "%s: %s", id, ack.reason);
    }
}

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

/* Asserts region r's queue holds each of PHASE-0 .. PHASE-(N-1) (at least
 * once; at most once for those sent while the region was up). */
static void expect_queue(int r, const char *phase) {
    char out[65536], args[1024];
    as_region(r);
    snprintf(args, sizeof args, "receive %s %s '%s' %d 20", server[r].endpoint, name[r],
             queue_url[r], N);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "%s", out);
    for (int i = 0; i < N; i++) {
        char needle[64];
        snprintf(needle, sizeof needle, "%s-%d\"", phase, i);
        const char *at = strstr(out, needle);
        cr_assert_not_null(at, "%s%s not in %s's queue: %s", phase, needle, name[r], out);
        cr_assert_null(strstr(at + 1, needle), "%s arrived twice in %s: %s", needle, name[r], out);
    }
}

Test(aws_failover, primary_killed_moves_deliveries_to_the_secondary_region) {
    start_all(false, "    delivery_timeout: 5s\n    retry_base_delay: 50ms\n"
                     "    retry_max_delay: 300ms\n");
    publish("before");
    wait_all_delivered();
    expect_queue(0, "before");

    moto_stop(&server[0]); /* the region's service is gone: connections refused */
    publish("after");
    wait_all_delivered();
    expect_queue(1, "after");
    char cmd[1024], out[16384];
    snprintf(cmd, sizeof cmd, "'%s' region status -c '%s' 2>&1", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "us-east-1        on       unhealthy"), "%s", out);
    cr_assert(strstr(out, "us-west-2"), "%s", out);
}

/* Calls the proxy holds now (mode hang). */
static json_int_t proxy_busy(void) {
    char out[65536];
    cr_assert(fault_proxy_counters(&proxy, out, sizeof out), "the proxy does not answer");
    json_t *c = json_loads(out, 0, NULL);
    cr_assert_not_null(c, "%s", out);
    json_int_t busy = json_integer_value(json_object_get(c, "busy"));
    json_decref(c);
    return busy;
}

/* The primary stalls: its service takes calls and never answers (the proxy
 * holds them). While calls are held there, traffic moves to us-west-2
 * (routing control). When the held calls time out, a fault of the target
 * in a region traffic has left, their events are retried in us-west-2 at
 * once, not after the target's backoff (10 minutes here: long enough that
 * only the move can deliver them within the test), and arrive there once. */
Test(aws_failover, calls_stalled_in_the_primary_move_with_the_traffic_when_they_time_out) {
    start_all(true, "    delivery_timeout: 60s\n    retry_base_delay: 10m\n"
                    "    retry_max_delay: 10m\n");
    publish("before");
    wait_all_delivered();
    expect_queue(0, "before");

    cr_assert(fault_proxy_set(&proxy, "hang", -1, 0));
    publish("held");
    time_t end = time(NULL) + 20;
    while (time(NULL) < end && proxy_busy() == 0)
        usleep(20000);
    cr_assert_gt(proxy_busy(), 0, "no call reached the stalled primary");
    char cmd[1024], out[16384];
    snprintf(cmd, sizeof cmd, "'%s' region off us-east-1 -c '%s' 2>&1", harness_bin("evbus"),
             h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    end = time(NULL) + 20;
    char region[64] = "";
    while (time(NULL) < end && strcmp(region, "us-west-2") != 0) {
        json_t *t = sink_status(&h);
        snprintf(region, sizeof region, "%s", json_string_value(json_object_get(t, "region")));
        json_decref(t);
        usleep(20000);
    }
    cr_assert_str_eq(region, "us-west-2", "traffic did not move");
    cr_assert_gt(proxy_busy(), 0,
                 "the calls to us-east-1 timed out before traffic moved, so this run did not "
                 "test what it is for (a very slow machine?)");

    wait_all_delivered();
    expect_queue(1, "held");
    json_t *t = sink_status(&h);
    cr_assert_gt(json_integer_value(json_object_get(t, "target_faults")), 0,
                 "the stalled calls ended as target faults");
    cr_assert_eq(json_integer_value(json_object_get(t, "dead_lettered")), 0);
    json_decref(t);
}
