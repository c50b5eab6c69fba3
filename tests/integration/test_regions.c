/* Regions in the configuration, through a real evbusd and a real plugin
 * (tests/plugins/region_sink.c): one instance per target and region, each
 * with its region's keys over the target's config:; the first region in the
 * top-level list's order gets the events; evbus status and /metrics say
 * where each target delivers; mistakes stop start-up naming file, line,
 * column and key. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"

static harness h;
static evbus_client_t *client;

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
}

TestSuite(regions, .fini = stop, .timeout = 120);

/* Two listed regions; `orders` names them in the other order (the list's
 * order wins), `local` names none (the router's own region, test-1).
 * `orders_regions` replaces orders' regions: when given. */
static void write_config(const char *orders_regions, const char *extra) {
    harness_init(&h, NULL);
    FILE *f = fopen(h.config, "a");
    cr_assert_not_null(f);
    fprintf(f,
            "regions:\n"
            "  - name: us-east-1\n"
            "  - name: us-west-2\n"
            "targets:\n"
            "  - name: orders\n"
            "    plugin: %s/test_sink_regions.so\n"
            "    config:\n"
            "      path: %s/orders.txt\n"
            "      message_group_id: source\n"
            "      endpoint: \"https://common.invalid\"\n"
            "    regions:\n"
            "%s"
            "  - name: local\n"
            "    plugin: %s/test_sink_regions.so\n"
            "    config:\n"
            "      path: %s/local.txt\n"
            "      queue_url: q-local\n"
            "rules:\n"
            "  - name: all\n"
            "    pattern: {source: [a]}\n"
            "    targets: [orders, local]\n"
            "%s",
            EVBUS_TEST_PLUGIN_DIR, h.dir,
            orders_regions
                ? orders_regions
                : "      us-west-2: {queue_url: \"https://sqs.us-west-2.example/orders\",\n"
                  "                  endpoint: \"http://127.0.0.1:5002\"}\n"
                  "      us-east-1: {queue_url: "
                  "\"https://sqs.us-east-1.example/orders\"}\n",
            EVBUS_TEST_PLUGIN_DIR, h.dir, extra ? extra : "");
    fclose(f);
}

/* Lines of dir/name starting with `prefix`; the last one into last. */
static size_t count_lines(const char *name, const char *prefix, char *last, size_t lastlen) {
    char path[400], line[512];
    snprintf(path, sizeof path, "%s/%s", h.dir, name);
    FILE *f = fopen(path, "r");
    size_t n = 0;
    while (f && fgets(line, sizeof line, f)) {
        if (strncmp(line, prefix, strlen(prefix)) == 0) {
            n++;
            if (last)
                snprintf(last, lastlen, "%s", line);
        }
    }
    if (f)
        fclose(f);
    return n;
}

static void wait_lines(const char *name, const char *prefix, size_t want) {
    time_t end = time(NULL) + 20;
    size_t n = 0;
    while (time(NULL) < end && (n = count_lines(name, prefix, NULL, 0)) < want)
        usleep(20000);
    cr_assert_eq(n, want, "%s: %zu lines starting '%s', wanted %zu", name, n, prefix, want);
}

static void publish(int count) {
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
    for (int i = 0; i < count; i++) {
        char id[32];
        snprintf(id, sizeof id, "ev-%d", i);
        evbus_event e = {.id = id, .source = "a", .detail_type = "T", .detail = "{}"};
        evbus_ack ack;
        cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
        cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "%s", ack.reason);
    }
}

/* Polls `cmd` until its output holds every string of `want`. */
static void run_until(const char *cmd, const char *const *want, char *out, size_t outlen) {
    time_t end = time(NULL) + 10;
    bool all = false;
    while (!all && time(NULL) < end) {
        cr_assert_eq(harness_run(cmd, out, outlen), 0, "%s", out);
        all = true;
        for (const char *const *w = want; *w && all; w++)
            all = strstr(out, *w) != NULL;
        if (!all)
            usleep(20000);
    }
    for (const char *const *w = want; *w; w++)
        cr_assert(strstr(out, *w), "wanted '%s' in:\n%s", *w, out);
}

static size_t collect(char *data, size_t size, size_t n, void *arg) {
    char *buf = arg;
    size_t have = strlen(buf), take = size * n;
    if (have + take >= 16384)
        take = 16384 - have - 1;
    memcpy(buf + have, data, take);
    buf[have + take] = '\0';
    return size * n;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

Test(regions, each_region_has_its_instance_and_the_first_region_gets_the_events) {
    int port = free_port();
    char metrics[64];
    snprintf(metrics, sizeof metrics, "metrics:\n  listen: 127.0.0.1:%d\n", port);
    write_config(NULL, metrics);
    cr_assert(harness_start(&h), "log: %s", h.log);

    /* Both regions' instances started, each with its merged keys: its own
     * queue_url; config:'s endpoint, or us-west-2's over it; config:'s
     * message_group_id. */
    cr_assert_eq(count_lines("orders.txt",
                             "init queue_url=https://sqs.us-east-1.example/orders "
                             "endpoint=https://common.invalid message_group_id=source\n",
                             NULL, 0),
                 1);
    cr_assert_eq(count_lines("orders.txt",
                             "init queue_url=https://sqs.us-west-2.example/orders "
                             "endpoint=http://127.0.0.1:5002 message_group_id=source\n",
                             NULL, 0),
                 1);
    cr_assert_eq(count_lines("local.txt",
                             "init queue_url=q-local endpoint=https://default.invalid "
                             "message_group_id=(unset)\n",
                             NULL, 0),
                 1);
    char log[16384];
    harness_read_log(&h, log, sizeof log);
    cr_assert(strstr(log, "[sink:test-sink-regions:orders-us-east-1] sending to "
                          "https://sqs.us-east-1.example/orders"),
              "%s", log);
    cr_assert(strstr(log, "[sink:test-sink-regions:orders-us-west-2] sending to "
                          "https://sqs.us-west-2.example/orders"),
              "%s", log);
    cr_assert(strstr(log, "[sink:test-sink-regions:local] sending to q-local"), "%s", log);

    /* Every event goes to the first region of the list, through its
     * instance, and the batch names that region; none to the second. */
    publish(25);
    wait_lines("orders.txt", "deliver orders us-east-1 queue_url=https://sqs.us-east-1.example/",
               25);
    cr_assert_eq(count_lines("orders.txt", "deliver ", NULL, 0), 25);
    wait_lines("local.txt", "deliver local test-1 queue_url=q-local ", 25);

    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' 2>&1", harness_bin("evbus"), h.config);
    const char *const text[] = {"REGION\n",
                                "orders                   test-sink-regions          0         "
                                "0           25         0         0        0.0 s  us-east-1 "
                                "(also us-west-2)\n",
                                "local                    test-sink-regions          0         "
                                "0           25         0         0        0.0 s  test-1\n",
                                NULL};
    run_until(cmd, text, out, sizeof out);

    snprintf(cmd, sizeof cmd, "'%s' status --json -c '%s' 2>&1", harness_bin("evbus"), h.config);
    const char *const json[] = {"\"region\": \"us-east-1\",\n"
                                "      \"regions\": [\n"
                                "        \"us-east-1\",\n"
                                "        \"us-west-2\"\n"
                                "      ],",
                                "\"region\": \"test-1\",\n"
                                "      \"regions\": [\n"
                                "        \"test-1\"\n"
                                "      ],",
                                NULL};
    run_until(cmd, json, out, sizeof out);

    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    static char body[16384];
    body[0] = '\0';
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    cr_assert_eq(curl_easy_perform(c), CURLE_OK);
    curl_easy_cleanup(c);
    cr_assert(strstr(body, "evbus_target_region_active{target=\"orders\",region=\"us-east-1\"} 1\n"
                           "evbus_target_region_active{target=\"orders\",region=\"us-west-2\"} 0\n"
                           "evbus_target_region_active{target=\"local\",region=\"test-1\"} 1\n"),
              "%s", body);
    cr_assert_eq(harness_stop(&h), 0);
}

/* A key the plugin does not declare, in a region's keys and in config:, and
 * a key required in one region only: every problem at once, each where it
 * is, from --check-config and from a start. */
Test(regions, plugin_key_problems_in_regions_name_file_line_column_and_key) {
    write_config("      us-east-1: {queue_url: q-east, endpont: \"http://x\"}\n"
                 "      us-west-2:\n"
                 "        endpoint: \"http://y\"\n",
                 NULL);
    char cmd[1024];
    snprintf(cmd, sizeof cmd,
             "sed -i 's/      message_group_id: source/      message_grp: x/' '%s'", h.config);
    cr_assert_eq(system(cmd), 0);
    const char *want[] = {
        "evbus.yaml:17:7: targets[0].config.message_grp: unknown key for plugin test-sink-regions "
        "(known: path, queue_url, endpoint, message_group_id, fail_flag)",
        "evbus.yaml:20:38: targets[0].regions.us-east-1.endpont: unknown key for plugin "
        "test-sink-regions",
        "evbus.yaml:21:7: targets[0].regions.us-west-2 (orders): plugin test-sink-regions needs "
        "config key 'queue_url', in config: or in this region's keys",
    };
    char out[8192];
    snprintf(cmd, sizeof cmd, "'%s' --check-config --config '%s' 2>&1", harness_bin("evbusd"),
             h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 1, "%s", out);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(out, want[i]), "wanted '%s' in:\n%s", want[i], out);

    cr_assert_not(harness_start(&h));
    char log[8192];
    harness_read_log(&h, log, sizeof log);
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(log, want[i]), "wanted '%s' in:\n%s", want[i], log);
    cr_assert_eq(count_lines("orders.txt", "init", NULL, 0), 0, "no instance started");
}

/* Regions the top-level list does not have, and a name listed twice. */
Test(regions, unknown_and_repeated_regions_stop_startup) {
    write_config("      eu-west-1: {queue_url: q}\n", NULL);
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "sed -i 's/^  - name: us-west-2$/  - name: us-east-1/' '%s'",
             h.config);
    cr_assert_eq(system(cmd), 0);
    char out[8192];
    snprintf(cmd, sizeof cmd, "'%s' --check-config --config '%s' 2>&1", harness_bin("evbusd"),
             h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "evbus.yaml:11:11: regions[1].name: region 'us-east-1' is listed twice "
                          "(first as regions[0], line 10)"),
              "%s", out);
    cr_assert(strstr(out, "evbus.yaml:20:7: targets[0].regions.eu-west-1: region 'eu-west-1' is "
                          "not listed under the top-level regions: (listed: us-east-1, us-east-1)"),
              "%s", out);
}
