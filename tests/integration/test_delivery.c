/* Delivery through a real plugin (tests/plugins/test_sink.c, loaded by
 * evbusd as a .so): every acked event routed to a target reaches its sink,
 * delivered entries leave the store, kill -9 during delivery loses nothing,
 * and bad plugin settings stop start-up with a clear message. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <curl/curl.h>
#include <jansson.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"
#include "store.h"

static harness h;
static evbus_client_t *client;

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
}

TestSuite(delivery, .fini = stop, .timeout = 120);

static void config_with_sink(const char *sink_variant, const char *extra_target_yaml) {
    char yaml[2048];
    harness_init(&h, NULL);
    snprintf(yaml, sizeof yaml,
             "targets:\n"
             "  - name: out\n"
             "    plugin: %s/test_sink_%s.so\n"
             "    config:\n"
             "      path: %s/out.txt\n"
             "%s"
             "  - name: parked\n"
             "rules:\n"
             "  - name: all-a\n"
             "    pattern: {source: [a]}\n"
             "    targets: [out]\n"
             "  - name: all-b\n"
             "    pattern: {source: [b]}\n"
             "    targets: [parked]\n",
             EVBUS_TEST_PLUGIN_DIR, sink_variant, h.dir,
             extra_target_yaml ? extra_target_yaml : "");
    FILE *f = fopen(h.config, "a");
    cr_assert_not_null(f);
    fputs(yaml, f);
    fclose(f);
}

static void open_client(void) {
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 60000;
    o.resend_ms = 300;
    o.max_in_flight = 16;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

static int cmp_ids(const void *a, const void *b) {
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Distinct event ids the sink wrote, and all lines. */
static size_t sink_lines(size_t *distinct, char ***ids_out) {
    char path[300];
    snprintf(path, sizeof path, "%s/out.txt", h.dir);
    FILE *f = fopen(path, "r");
    size_t lines = 0, cap = 0;
    char **ids = NULL;
    char target[64], id[64];
    unsigned long long seq;
    while (f && fscanf(f, "%63s %llu %63s", target, &seq, id) == 3) {
        cr_assert_str_eq(target, "out");
        if (lines == cap) {
            cap = cap ? cap * 2 : 1024;
            ids = realloc(ids, cap * sizeof *ids);
        }
        ids[lines++] = strdup(id);
    }
    if (f)
        fclose(f);
    if (lines)
        qsort(ids, lines, sizeof *ids, cmp_ids);
    size_t d = 0;
    for (size_t i = 0; i < lines; i++)
        if (i == 0 || strcmp(ids[i], ids[i - 1]) != 0)
            d++;
    *distinct = d;
    if (ids_out) {
        *ids_out = ids;
    } else {
        for (size_t i = 0; i < lines; i++)
            free(ids[i]);
        free(ids);
    }
    return lines;
}

static int cmp_sorted(const void *key, const void *elem) {
    return strcmp((const char *)key, *(char *const *)elem);
}

static void wait_for_distinct(size_t want, int seconds) {
    time_t end = time(NULL) + seconds;
    size_t d = 0;
    while (time(NULL) < end) {
        sink_lines(&d, NULL);
        if (d >= want)
            return;
        usleep(20000);
    }
    cr_assert_geq(d, want, "only %zu of %zu events reached the sink", d, want);
}

/* Nothing in the dead-letter store: an event there never reaches the sink,
 * which a test waiting for it would only report as missing. */
static void assert_no_dead_letters(void) {
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' dlq list -c '%s' 2>&1", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "no dead letters\n");
}

static void publish_range(int from, int to, const char *source) {
    char ids[100][32];
    evbus_event evs[100];
    evbus_ack acks[100];
    for (int base = from; base < to; base += 100) {
        int n = to - base < 100 ? to - base : 100;
        for (int i = 0; i < n; i++) {
            snprintf(ids[i], sizeof ids[i], "%s-%d", source, base + i);
            evs[i] = (evbus_event){
                .id = ids[i], .source = source, .detail_type = "T", .detail = "{\"n\":1}"};
        }
        cr_assert_eq(evbus_publish(client, evs, (size_t)n, acks), EVBUS_OK);
        for (int i = 0; i < n; i++)
            cr_assert(acks[i].status == EVBUS_ACK_ACCEPTED || acks[i].status == EVBUS_ACK_DUPLICATE,
                      "%s: %s", ids[i], acks[i].reason);
    }
}

static evbus__store *open_store(void) {
    char data[300], err[512];
    snprintf(data, sizeof data, "%s/data", h.dir);
    evbus__store *s;
    cr_assert_eq(evbus__store_open(data, 256 << 20, &s, err, sizeof err), EVBUS_OK, "%s", err);
    return s;
}

static int count(void *arg, uint64_t seq) {
    (void)seq;
    (*(size_t *)arg)++;
    return 0;
}

Test(delivery, every_routed_event_reaches_its_sink_and_leaves_the_store) {
    config_with_sink("good", NULL);
    cr_assert(harness_start(&h), "log: %s", h.log);
    open_client();
    publish_range(0, 500, "a");
    publish_range(0, 7, "b");
    wait_for_distinct(500, 20);
    cr_assert_eq(harness_stop(&h), 0);
    size_t distinct;
    size_t lines = sink_lines(&distinct, NULL);
    cr_assert_eq(lines, 500, "no redelivery without a crash (%zu lines)", lines);

    evbus__store *s = open_store();
    size_t pending_out = 0, pending_parked = 0;
    evbus__store_foreach_pending(s, 0, 0, count, &pending_out);
    evbus__store_foreach_pending(s, 1, 0, count, &pending_parked);
    evbus__store_stats st;
    evbus__store_stats_get(s, &st);
    evbus__store_close(&s);
    cr_assert_eq(pending_out, 0, "delivered entries are removed");
    cr_assert_eq(pending_parked, 7, "a target without a plugin keeps its entries");
    cr_assert_eq(st.events, 7, "records of fully delivered events are removed");
}

Test(delivery, kill9_during_delivery_loses_nothing) {
    config_with_sink("good", "    max_in_flight: 2\n    batch_max_events: 5\n");
    cr_assert(harness_start(&h));
    open_client();
    const int total = 6000;
    publish_range(0, total / 2, "a");
    size_t d = 0;
    /* Kill it while the sink is part way through. */
    time_t end = time(NULL) + 20;
    while (sink_lines(&d, NULL) < 200 && time(NULL) < end)
        usleep(1000);
    harness_kill9(&h);
    cr_assert(harness_start(&h));
    publish_range(total / 2, total, "a");
    wait_for_distinct((size_t)total, 60);
    cr_assert_eq(harness_stop(&h), 0);
    char **ids;
    size_t lines = sink_lines(&d, &ids);
    char id[32];
    for (int i = 0; i < total; i++) {
        snprintf(id, sizeof id, "a-%d", i);
        cr_assert(lines && bsearch(id, ids, lines, sizeof *ids, cmp_sorted), "%s never delivered",
                  id);
    }
    for (size_t i = 0; i < lines; i++)
        free(ids[i]);
    free(ids);
    cr_log_info("kill -9 during delivery: %d events, %zu deliveries, %zu redelivered", total, lines,
                lines - d);
    /* A batch counts in the window until its results are durable: in flight
     * (at most max_in_flight, 2) or waiting for the writer (in all at most
     * twice that), so a crash redelivers at most 4 batches of
     * batch_max_events (5). */
    cr_assert_leq(lines - d, 2 * 2 * 5, "redeliveries must be bounded by the window");
}

/* Polls `evbus status --json` until it shows `what`; false after `seconds`. */
static bool status_shows(const char *what, int seconds) {
    char cmd[1024], out[8192] = "";
    snprintf(cmd, sizeof cmd, "'%s' status --json -c '%s' 2>&1", harness_bin("evbus"), h.config);
    time_t end = time(NULL) + seconds;
    do {
        if (harness_run(cmd, out, sizeof out) == 0 && strstr(out, what))
            return true;
        usleep(20000);
    } while (time(NULL) < end);
    cr_log_error("evbus status --json: %s", out);
    return false;
}

/* A finished batch gives its request slot back at once, before the writer
 * has made its results durable: a slow commit must not hold requests back.
 * What a crash can deliver again stays bounded: batches in flight plus
 * batches whose results wait for the writer, at most 2 x max_in_flight.
 * With every fdatasync made to take 300 ms and max_in_flight 1, a second
 * batch goes out while the first one's results are being committed. */
Test(delivery, a_finished_batch_frees_its_request_slot_while_the_writer_commits) {
    config_with_sink("good", "    max_in_flight: 1\n    batch_max_events: 1\n");
    setenv("LD_PRELOAD", EVBUS_TEST_SLOW_SYNC, 1);
    setenv("EVBUS_TEST_SYNC_DELAY_MS", "300", 1);
    /* In a sanitizer build the runtime would refuse to come after it. */
    char asan[512];
    const char *was = getenv("ASAN_OPTIONS");
    snprintf(asan, sizeof asan, "%s%sverify_asan_link_order=0", was ? was : "", was ? ":" : "");
    setenv("ASAN_OPTIONS", asan, 1);
    bool started = harness_start(&h);
    unsetenv("LD_PRELOAD");
    char log[4096];
    harness_read_log(&h, log, sizeof log);
    cr_assert(started, "log: %s", log);
    open_client();
    publish_range(0, 20, "a");
    cr_assert(status_shows("\"in_flight_batches\": 2", 30),
              "a second batch went out while the first one's results were being committed");
    wait_for_distinct(20, 60);
    cr_assert(status_shows("\"in_flight_batches\": 0", 30));
    cr_assert_eq(harness_stop(&h), 0);
    size_t distinct;
    cr_assert_eq(sink_lines(&distinct, NULL), 20, "no redelivery without a crash");
}

Test(delivery, unknown_plugin_key_stops_startup_naming_file_line_and_key) {
    config_with_sink("good", "");
    FILE *f = fopen(h.config, "a");
    fputs("", f);
    fclose(f);
    /* Rewrite with a typo in the plugin's settings. */
    char cmd[600];
    snprintf(cmd, sizeof cmd, "sed -i 's/      path:/      pathh:/' '%s'", h.config);
    cr_assert_eq(system(cmd), 0);
    cr_assert_not(harness_start(&h));
    char log[8192];
    harness_read_log(&h, log, sizeof log);
    cr_assert(strstr(log, "evbus.yaml:13:7: targets[0].config.pathh: unknown key for plugin "
                          "test-sink (known: path)"),
              "%s", log);
}

Test(delivery, plugin_whose_init_fails_stops_startup) {
    config_with_sink("init_fails", NULL);
    cr_assert_not(harness_start(&h));
    char log[8192];
    harness_read_log(&h, log, sizeof log);
    cr_assert(strstr(log, "[sink:test-sink:out] refusing to start, as asked"), "%s", log);
    cr_assert(strstr(log, "targets[0] (out): plugin test-sink failed to start"), "%s", log);
}

Test(delivery, plugin_with_wrong_abi_stops_startup) {
    config_with_sink("future_major", NULL);
    cr_assert_not(harness_start(&h));
    char log[8192];
    harness_read_log(&h, log, sizeof log);
    cr_assert(strstr(log, "evbus.yaml:11:13: targets[0] (out):"), "%s", log);
    cr_assert(strstr(log, "plugin ABI 2.0; this evbusd speaks 1.x"), "%s", log);
}

typedef struct dead {
    char reasons[8][256];
    uint64_t seqs[8];
    uint32_t attempts[8];
    size_t n;
} dead;

static int on_dead(void *arg, uint32_t target, uint64_t seq, uint32_t attempts, int64_t when,
                   const char *reason) {
    (void)target;
    (void)when;
    dead *d = arg;
    if (d->n < 8) {
        d->seqs[d->n] = seq;
        d->attempts[d->n] = attempts;
        snprintf(d->reasons[d->n++], 256, "%s", reason);
    }
    return 0;
}

Test(delivery, retries_with_backoff_then_dead_letters_with_the_last_error) {
    config_with_sink("good", "    retry_max_attempts: 3\n"
                             "    retry_base_delay: 10ms\n"
                             "    retry_max_delay: 50ms\n");
    cr_assert(harness_start(&h));
    open_client();
    evbus_event evs[4] = {
        {.id = "ok", .source = "a", .detail_type = "T", .detail = "{}"},
        {.id = "bad", .source = "a", .detail_type = "T", .detail = "{\"fail\":\"permanent\"}"},
        {.id = "flaky", .source = "a", .detail_type = "T", .detail = "{\"fail\":\"once\"}"},
        {.id = "down", .source = "a", .detail_type = "T", .detail = "{\"fail\":\"retry\"}"},
    };
    evbus_ack acks[4];
    cr_assert_eq(evbus_publish(client, evs, 4, acks), EVBUS_OK);
    wait_for_distinct(2, 20); /* "ok", and "flaky" on its second attempt */
    /* "down" is dead-lettered after 3 attempts of at most 10 + 20 ms. */
    evbus__store *s = NULL;
    dead d = {0};
    time_t end = time(NULL) + 20;
    while (time(NULL) < end) {
        cr_assert_eq(harness_stop(&h), 0);
        s = open_store();
        memset(&d, 0, sizeof d);
        evbus__store_foreach_dead(s, UINT32_MAX, on_dead, &d);
        if (d.n >= 2)
            break;
        evbus__store_close(&s);
        cr_assert(harness_start(&h));
        usleep(100000);
    }
    cr_assert_not_null(s);
    size_t pending = 0;
    evbus__store_foreach_pending(s, 0, 0, count, &pending);
    evbus__store_close(&s);
    cr_assert_eq(d.n, 2, "two dead letters");
    cr_assert_eq(d.seqs[0], acks[1].sequence);
    cr_assert_eq(d.attempts[0], 1, "a permanent failure is not retried");
    cr_assert_str_eq(d.reasons[0], "ValidationError: the test asked for it");
    cr_assert_eq(d.seqs[1], acks[3].sequence);
    cr_assert_eq(d.attempts[1], 3);
    cr_assert_str_eq(d.reasons[1], "gave up after 3 attempts: Throttled: the test asked for it");
    cr_assert_eq(pending, 0, "nothing is left pending");
    size_t distinct;
    cr_assert_eq(sink_lines(&distinct, NULL), 2, "ok and flaky, each once");
}

/* The example sink from examples/sink-jsonl, as a user would configure it:
 * the file holds each event's EventBridge envelope with the right content. */
Test(delivery, example_jsonl_sink_writes_eventbridge_envelopes) {
    harness_init(&h, NULL);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "targets:\n"
             "  - name: audit-file\n"
             "    plugin: %s/evbus_sink_jsonl.so\n"
             "    config:\n"
             "      path: %s/audit.jsonl\n"
             "rules:\n"
             "  - name: orders\n"
             "    pattern: {source: [com.example.orders]}\n"
             "    targets: [audit-file]\n",
             getenv("EVBUS_EXAMPLES_DIR"), h.dir);
    FILE *f = fopen(h.config, "a");
    fputs(yaml, f);
    fclose(f);
    char cmd[1024], out[2048];
    snprintf(cmd, sizeof cmd, "'%s' --check-config --config '%s' 2>&1", harness_bin("evbusd"),
             h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(harness_start(&h));
    open_client();
    const char *resources[] = {"arn:aws:example:::order/7"};
    evbus_event e = {.id = "order-7",
                     .source = "com.example.orders",
                     .detail_type = "OrderPlaced",
                     .detail = "{\"amount\": 12.5, \"note\": \"caf\\u00e9 \\\"quoted\\\"\"}",
                     .time = "2026-11-23T17:44:20Z",
                     .resources = resources,
                     .n_resources = 1};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);
    char path[400], line[4096] = "";
    snprintf(path, sizeof path, "%s/audit.jsonl", h.dir);
    time_t end = time(NULL) + 10;
    while (time(NULL) < end) {
        FILE *in = fopen(path, "r");
        if (in && fgets(line, sizeof line, in)) {
            fclose(in);
            break;
        }
        if (in)
            fclose(in);
        usleep(10000);
    }
    cr_assert_str_eq(line,
                     "{\"version\":\"0\",\"id\":\"order-7\",\"detail-type\":\"OrderPlaced\","
                     "\"source\":\"com.example.orders\",\"account\":\"\",\"time\":"
                     "\"2026-11-23T17:44:20Z\",\"region\":\"test-1\",\"resources\":"
                     "[\"arn:aws:example:::order/7\"],\"detail\":{\"amount\": 12.5, \"note\": "
                     "\"caf\\u00e9 \\\"quoted\\\"\"}}\n");
    cr_assert_eq(harness_stop(&h), 0);
}

/* What an operator sees: evbus status and evbus dlq list over the control
 * socket, while evbusd runs. */
Test(delivery, status_and_dlq_commands_show_what_happened) {
    config_with_sink("good", "    retry_max_attempts: 2\n"
                             "    retry_base_delay: 5ms\n"
                             "    retry_max_delay: 10ms\n");
    cr_assert(harness_start(&h));
    open_client();
    publish_range(0, 50, "a");
    publish_range(0, 3, "b");
    /* Its detail holds an escaped NUL, legal JSON that dlq show must print. */
    evbus_event bad = {.id = "doomed",
                       .source = "a",
                       .detail_type = "T",
                       .detail = "{\"fail\":\"retry\",\"note\":\"nul\\u0000here\"}"};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &bad, 1, &ack), EVBUS_OK);
    wait_for_distinct(50, 20);
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' dlq list -c '%s' 2>&1", harness_bin("evbus"), h.config);
    time_t end = time(NULL) + 20;
    while (time(NULL) < end) {
        cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
        if (strstr(out, "id=doomed"))
            break;
        usleep(20000);
    }
    cr_assert(strstr(out, "out seq="), "%s", out);
    cr_assert(strstr(out, "id=doomed attempts=2 dead_at="), "%s", out);
    cr_assert(strstr(out, ": gave up after 2 attempts: Throttled: the test asked for it"), "%s",
              out);
    snprintf(cmd, sizeof cmd, "'%s' dlq show -t out --seq %llu -c '%s' 2>&1", harness_bin("evbus"),
             (unsigned long long)ack.sequence, h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "\"attempts\": 2,"), "%s", out);
    cr_assert(strstr(out, "\"id\": \"doomed\""), "%s", out);
    cr_assert(strstr(out, "\"fail\": \"retry\""), "the event's detail: %s", out);
    cr_assert(strstr(out, "\"note\": \"nul\\u0000here\""), "the event's detail: %s", out);

    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' 2>&1", harness_bin("evbus"), h.config);
    /* out: 50 delivered, 1 retried once then dead; parked: 3 pending, no plugin.
     * Counters and pending counts settle a moment apart: poll. */
    const char *want = "out                      test-sink             0         0           50 "
                       "        1         1";
    end = time(NULL) + 10;
    while (time(NULL) < end) {
        cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
        if (strstr(out, want))
            break;
        usleep(20000);
    }
    cr_assert(strstr(out, "ingest: 54 accepted"), "%s", out);
    cr_assert(strstr(out, want), "%s", out);
    cr_assert(
        strstr(out, "parked                   (none)                3         0            0"),
        "%s", out);

    snprintf(cmd, sizeof cmd, "'%s' status --timeout 300 --control 'ipc://%s/nowhere.sock' 2>&1",
             harness_bin("evbus"), h.dir);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 1);
    cr_assert(strstr(out, "is evbusd running?"), "%s", out);
}

/* Legal JSON that jansson cannot hold as an object (\u0000 in a key, a
 * number beyond a double): dlq show answered rc 0 without the event. It now
 * shows the event as its stored text, marked as such. */
Test(delivery, dlq_show_prints_an_event_jansson_cannot_parse_as_text) {
    config_with_sink("good", "    retry_max_attempts: 1\n");
    cr_assert(harness_start(&h));
    open_client();
    static const char *const details[] = {"{\"fail\":\"retry\",\"a\\u0000\":1}",
                                          "{\"fail\":\"retry\",\"k\":1e400}"};
    static const char *const wanted[] = {"\"detail\":{\"fail\":\"retry\",\"a\\u0000\":1}}",
                                         "\"detail\":{\"fail\":\"retry\",\"k\":1e400}}"};
    for (size_t i = 0; i < 2; i++) {
        evbus_event e = {.source = "a", .detail_type = "T", .detail = details[i]};
        evbus_ack ack;
        cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
        cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);
        char cmd[1024], out[8192] = "";
        snprintf(cmd, sizeof cmd, "'%s' dlq show -t out --seq %llu -c '%s' 2>&1",
                 harness_bin("evbus"), (unsigned long long)ack.sequence, h.config);
        time_t end = time(NULL) + 20;
        int rc = 1;
        while (time(NULL) < end && (rc = harness_run(cmd, out, sizeof out)) != 0)
            usleep(20000); /* until it is dead-lettered */
        cr_assert_eq(rc, 0, "%s", out);
        cr_assert(strstr(out, "event (raw JSON text, not reformatted: "), "%s", out);
        cr_assert(strstr(out, wanted[i]), "the event's detail, as sent: %s", out);

        /* The control answer carries it too, for scripts. */
        snprintf(cmd, sizeof cmd, "'%s' dlq show --json -t out --seq %llu -c '%s' 2>&1",
                 harness_bin("evbus"), (unsigned long long)ack.sequence, h.config);
        cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
        cr_assert(strstr(out, "\"event_json\": \"{"), "%s", out);
        cr_assert(strstr(out, "\"event_json_why\": "), "%s", out);
    }
}

static size_t collect_body(char *data, size_t size, size_t n, void *arg) {
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

/* Prometheus scrapes the same counters over HTTP. */
Test(delivery, metrics_endpoint_serves_prometheus_text) {
    int port = free_port();
    char extra[128];
    snprintf(extra, sizeof extra, "    max_in_flight: 4\n");
    config_with_sink("good", extra);
    FILE *f = fopen(h.config, "a");
    fprintf(f, "metrics:\n  listen: 127.0.0.1:%d\n", port);
    fclose(f);
    cr_assert(harness_start(&h), "log: %s", h.log);
    open_client();
    publish_range(0, 20, "a");
    wait_for_distinct(20, 20);
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", port);
    static char body[16384];
    CURL *c = curl_easy_init();
    curl_easy_setopt(c, CURLOPT_URL, url);
    curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, collect_body);
    curl_easy_setopt(c, CURLOPT_WRITEDATA, body);
    /* Delivery counters are published once per delivery loop, and pending
     * counts drop when the writer has recorded the results: poll for both. */
    time_t end = time(NULL) + 10;
    long code = 0;
    while (time(NULL) < end) {
        body[0] = '\0';
        cr_assert_eq(curl_easy_perform(c), CURLE_OK);
        curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &code);
        if (strstr(body, "evbus_target_delivered_total{target=\"out\"} 20\n") &&
            strstr(body, "evbus_target_pending{target=\"out\"} 0\n"))
            break;
        usleep(20000);
    }
    curl_easy_cleanup(c);
    cr_assert_eq(code, 200);
    cr_assert(strstr(body, "# TYPE evbus_ingest_events_total counter\n"), "%s", body);
    cr_assert(strstr(body, "evbus_ingest_events_total{status=\"accepted\"} 20\n"), "%s", body);
    cr_assert(strstr(body, "evbus_target_delivered_total{target=\"out\"} 20\n"), "%s", body);
    cr_assert(strstr(body, "evbus_target_pending{target=\"out\"} 0\n"), "%s", body);
    cr_assert(strstr(body, "evbus_sink_events_written_total{target=\"out\"} 20\n"), "%s", body);
    cr_assert_eq(harness_stop(&h), 0);
}

/* A stuck target (here: one without a plugin) fills up to its max_pending;
 * then producers get RETRY_LATER for events routed to it, others still flow,
 * and evbus status says why. */
Test(delivery, stuck_target_turns_its_events_away_past_max_pending) {
    config_with_sink("good", NULL);
    char cmd[600];
    snprintf(cmd, sizeof cmd,
             "sed -i 's/^  - name: parked$/  - name: parked\\n    max_pending: 5/' '%s'", h.config);
    cr_assert_eq(system(cmd), 0);
    cr_assert(harness_start(&h), "log: %s", h.log);
    open_client();
    evbus_ack ack;
    char id[16];
    for (int i = 0; i < 5; i++) {
        snprintf(id, sizeof id, "b-%d", i);
        evbus_event e = {.id = id, .source = "b", .detail_type = "T", .detail = "{}"};
        cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
        cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "%s: %s", id, ack.reason);
    }
    evbus_event more = {.id = "b-5", .source = "b", .detail_type = "T", .detail = "{}"};
    cr_assert_eq(evbus_publish(client, &more, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_RETRY_LATER);
    cr_assert_str_eq(ack.reason, "target parked has 5 pending deliveries (its max_pending is 5): "
                                 "send again later");
    publish_range(0, 10, "a"); /* the other target is not held up */
    wait_for_distinct(10, 20);
    char out[4096];
    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' 2>&1", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "parked: 5 pending >= max_pending 5: producers get RETRY_LATER"), "%s",
              out);
}

/* With the destination down (its ".down" file, whose path goes to `down`),
 * publishes 30 events and waits until all 30 are dead-lettered after 2 quick
 * attempts each. */
static void dead_letter_30(char *down, size_t len) {
    config_with_sink("good", "    retry_max_attempts: 2\n"
                             "    retry_base_delay: 5ms\n"
                             "    retry_max_delay: 10ms\n");
    char cmd[1024], out[8192];
    snprintf(down, len, "%s/out.txt.down", h.dir);
    FILE *f = fopen(down, "w");
    fclose(f);
    cr_assert(harness_start(&h));
    open_client();
    publish_range(0, 30, "a");
    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' --json 2>&1", harness_bin("evbus"), h.config);
    time_t end = time(NULL) + 20;
    while (time(NULL) < end) {
        cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
        if (strstr(out, "\"dead_lettered\": 30"))
            break;
        usleep(20000);
    }
    cr_assert(strstr(out, "\"dead_lettered\": 30"), "%s", out);
}

/* The destination was down long enough for events to be dead-lettered; once
 * it is back, evbus dlq replay delivers them, and dlq drop deletes others. */
Test(delivery, dead_letters_are_replayed_once_the_destination_is_back) {
    char down[400], cmd[1024], out[8192];
    dead_letter_30(down, sizeof down);
    unlink(down);
    snprintf(cmd, sizeof cmd, "'%s' dlq replay -t out -c '%s' 2>&1", harness_bin("evbus"),
             h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "30 dead letters queued for delivery again\n");
    wait_for_distinct(30, 20);
    snprintf(cmd, sizeof cmd, "'%s' dlq list -c '%s' 2>&1", harness_bin("evbus"), h.config);
    time_t end = time(NULL) + 10;
    while (time(NULL) < end && harness_run(cmd, out, sizeof out) == 0 &&
           !strstr(out, "no dead letters"))
        usleep(20000);
    cr_assert_str_eq(out, "no dead letters\n");

    /* Down again; this time the operator drops what died. */
    FILE *f = fopen(down, "w");
    fclose(f);
    evbus_event e = {.id = "lost", .source = "a", .detail_type = "T", .detail = "{}"};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    end = time(NULL) + 20;
    while (time(NULL) < end && harness_run(cmd, out, sizeof out) == 0 && !strstr(out, "id=lost"))
        usleep(20000);
    cr_assert(strstr(out, "id=lost attempts=2"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' dlq drop -t out -c '%s' 2>&1", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "1 dead letters dropped\n");
    cr_assert_eq(harness_stop(&h), 0);
    evbus__store *s = open_store();
    evbus__store_stats st;
    evbus__store_stats_get(s, &st);
    evbus__store_close(&s);
    cr_assert_eq(st.events, 0, "the dropped event's record is gone too");
}

/* Dead-lettering is said in the log, with the reason and the command that
 * shows the events, but not once per event: a burst of 30 takes a line for
 * the first and one for the rest (at the latest when evbusd stops). */
Test(delivery, dead_letters_are_logged_with_a_count_not_a_line_each) {
    char down[400];
    dead_letter_30(down, sizeof down);
    cr_assert_eq(harness_stop(&h), 0);
    static char log[1 << 16];
    harness_read_log(&h, log, sizeof log);
    unsigned long told = 0, lines = 0;
    for (const char *at = log; (at = strstr(at, "target out: ")); at++) {
        unsigned long n;
        char more[8];
        if (sscanf(at, "target out: %lu event(s) moved to the dead-letter store", &n) == 1 ||
            (sscanf(at, "target out: %lu %4s event(s) moved to the dead-letter store", &n, more) ==
                 2 &&
             strcmp(more, "more") == 0)) {
            told += n;
            lines++;
        }
    }
    cr_assert_eq(told, 30, "the log tells every dead letter: %s", log);
    cr_assert_leq(lines, 3, "not a line per event: %s", log);
    cr_assert(strstr(log, "retryable failure") || strstr(log, "gave up after 2 attempts"),
              "the reason: %s", log);
    cr_assert(strstr(log, "`evbus dlq list -t out` shows them"), "%s", log);
}

/* A target fault (here: wrong credentials) is retried for as long as it
 * lasts without spending the events' attempts: nothing is dead-lettered,
 * evbus status says what is wrong, and once it is fixed everything arrives. */
Test(delivery, target_fault_is_retried_and_shown_never_dead_lettered) {
    config_with_sink("good", "    retry_max_attempts: 2\n"
                             "    retry_base_delay: 5ms\n"
                             "    retry_max_delay: 10ms\n");
    char fault[400], cmd[1024], out[8192];
    snprintf(fault, sizeof fault, "%s/out.txt.fault", h.dir);
    FILE *f = fopen(fault, "w");
    fclose(f);
    cr_assert(harness_start(&h));
    open_client();
    publish_range(0, 20, "a");
    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' --json 2>&1", harness_bin("evbus"), h.config);
    /* Far more attempts than retry_max_attempts allows. */
    time_t end = time(NULL) + 20;
    json_int_t faults = 0;
    while (time(NULL) < end && faults < 200) {
        cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
        json_t *st = json_loads(out, 0, NULL);
        json_t *t = json_array_get(json_object_get(st, "targets"), 0);
        faults = json_integer_value(json_object_get(t, "target_faults"));
        cr_assert_eq(json_integer_value(json_object_get(t, "dead_lettered")), 0, "%s", out);
        json_decref(st);
        usleep(20000);
    }
    cr_assert_geq(faults, 200, "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' 2>&1", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "out: target fault (events are kept and retried): "
                          "SignatureDoesNotMatch: check the target's secret key"),
              "%s", out);
    unlink(fault);
    wait_for_distinct(20, 20);
    end = time(NULL) + 10;
    while (time(NULL) < end && harness_run(cmd, out, sizeof out) == 0 &&
           strstr(out, "target fault"))
        usleep(20000);
    cr_assert_null(strstr(out, "target fault"), "the fault is cleared by a delivery: %s", out);
    snprintf(cmd, sizeof cmd, "'%s' dlq list -c '%s' 2>&1", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "no dead letters\n");
}

/* Events waiting for a retry when evbusd stops are delivered once after the
 * restart, not twice (the first scan after a restart starts behind them).
 * retry_max_attempts is far above the default 8: with retries every 200 ms
 * on average, 8 attempts last about 1.3 s, which a loaded machine can spend
 * between the publish and the stop, and a dead-lettered event never reaches
 * the sink. */
Test(delivery, retries_pending_at_restart_are_delivered_once) {
    config_with_sink("good", "    retry_max_attempts: 1000\n"
                             "    retry_base_delay: 200ms\n"
                             "    retry_max_delay: 400ms\n");
    char down[400], cmd[1024], out[8192];
    snprintf(down, sizeof down, "%s/out.txt.down", h.dir);
    FILE *f = fopen(down, "w");
    fclose(f);
    cr_assert(harness_start(&h));
    open_client();
    publish_range(0, 5, "a");
    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' --json 2>&1", harness_bin("evbus"), h.config);
    time_t end = time(NULL) + 20;
    json_int_t retried = 0;
    while (time(NULL) < end && retried < 5) {
        cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
        json_t *st = json_loads(out, 0, NULL);
        retried = json_integer_value(
            json_object_get(json_array_get(json_object_get(st, "targets"), 0), "retried"));
        json_decref(st);
        usleep(20000);
    }
    cr_assert_geq(retried, 5, "%s", out);
    evbus_client_destroy(&client);
    cr_assert_eq(harness_stop(&h), 0);
    unlink(down);
    cr_assert(harness_start(&h));
    assert_no_dead_letters();
    wait_for_distinct(5, 20);
    usleep(300000); /* room for a duplicate to show up */
    size_t distinct;
    cr_assert_eq(sink_lines(&distinct, NULL), 5, "each event delivered once");
}

/* The same with more due retries than one batch holds: the first dispatch
 * after the restart takes them batch by batch, and its scan of pending
 * entries (from sequence 0) must not take the ones already in flight.
 * retry_max_attempts as above. */
Test(delivery, retries_spanning_batches_at_restart_are_delivered_once) {
    config_with_sink("good", "    batch_max_events: 10\n"
                             "    retry_max_attempts: 1000\n"
                             "    retry_base_delay: 200ms\n"
                             "    retry_max_delay: 400ms\n");
    char down[400], cmd[1024], out[8192];
    snprintf(down, sizeof down, "%s/out.txt.down", h.dir);
    FILE *f = fopen(down, "w");
    fclose(f);
    cr_assert(harness_start(&h));
    open_client();
    publish_range(0, 30, "a");
    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' --json 2>&1", harness_bin("evbus"), h.config);
    time_t end = time(NULL) + 20;
    json_int_t retried = 0;
    while (time(NULL) < end && retried < 30) {
        cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
        json_t *st = json_loads(out, 0, NULL);
        retried = json_integer_value(
            json_object_get(json_array_get(json_object_get(st, "targets"), 0), "retried"));
        json_decref(st);
        usleep(20000);
    }
    cr_assert_geq(retried, 30, "%s", out);
    evbus_client_destroy(&client);
    cr_assert_eq(harness_stop(&h), 0);
    usleep(500000); /* every stored retry is due when evbusd starts again */
    unlink(down);
    cr_assert(harness_start(&h));
    assert_no_dead_letters();
    wait_for_distinct(30, 20);
    usleep(300000); /* room for a duplicate to show up */
    size_t distinct;
    cr_assert_eq(sink_lines(&distinct, NULL), 30, "each event delivered once");
}

/* ---- the host's HTTP service, against a real HTTP server ---- */

typedef struct http_server {
    struct MHD_Daemon *mhd;
    int port;
    int fail_first; /* answer 503 to this many requests first */
    int requests;
    char bodies[65536];
    size_t len;
} http_server;

static enum MHD_Result on_http(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload,
                               size_t *upload_len, void **con_cls) {
    (void)url;
    (void)method;
    (void)version;
    http_server *srv = cls;
    if (!*con_cls) { /* first call: headers only */
        *con_cls = srv;
        return MHD_YES;
    }
    if (*upload_len) {
        size_t take = *upload_len;
        if (srv->len + take >= sizeof srv->bodies)
            take = sizeof srv->bodies - srv->len - 1;
        if (srv->fail_first <= srv->requests) {
            memcpy(srv->bodies + srv->len, upload, take);
            srv->len += take;
            srv->bodies[srv->len] = '\0';
        }
        *upload_len = 0;
        return MHD_YES;
    }
    unsigned status = srv->requests++ < srv->fail_first ? 503 : 200;
    struct MHD_Response *r = MHD_create_response_from_buffer(2, "ok", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

Test(delivery, http_service_posts_through_the_shared_multi_handle_and_retries_5xx) {
    static http_server srv;
    srv.port = free_port();
    srv.fail_first = 1;
    srv.mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, (uint16_t)srv.port, NULL, NULL,
                               on_http, &srv, MHD_OPTION_END);
    cr_assert_not_null(srv.mhd);
    harness_init(&h, NULL);
    char yaml[1024];
    snprintf(yaml, sizeof yaml,
             "targets:\n"
             "  - name: web\n"
             "    plugin: %s/test_sink_http.so\n"
             "    config:\n"
             "      url: http://127.0.0.1:%d/events\n"
             "    retry_base_delay: 10ms\n"
             "rules:\n"
             "  - name: all\n"
             "    pattern: {source: [a]}\n"
             "    targets: [web]\n",
             EVBUS_TEST_PLUGIN_DIR, srv.port);
    FILE *f = fopen(h.config, "a");
    fputs(yaml, f);
    fclose(f);
    cr_assert(harness_start(&h), "log: %s", h.log);
    open_client();
    publish_range(0, 25, "a");
    time_t end = time(NULL) + 20;
    int got = 0;
    while (time(NULL) < end) {
        got = 0;
        for (int i = 0; i < 25; i++) {
            char id[32];
            snprintf(id, sizeof id, "\"id\":\"a-%d\"", i);
            got += strstr(srv.bodies, id) != NULL;
        }
        if (got == 25)
            break;
        usleep(20000);
    }
    cr_assert_eq(got, 25, "only %d of 25 events were POSTed (%d requests)", got, srv.requests);
    cr_assert_geq(srv.requests, 4, "the first batch was refused with 503 and sent again");
    cr_assert_eq(harness_stop(&h), 0);
    MHD_stop_daemon(srv.mhd);
}

/* With storage.retention, delivered events stay stored, and evbus replay
 * delivers those accepted since a time to a target again. */
Test(delivery, replay_redelivers_retained_events_since_a_time) {
    config_with_sink("good", NULL);
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "sed -i 's/^storage:$/storage:\\n  retention: 1h/' '%s'", h.config);
    cr_assert_eq(system(cmd), 0);
    cr_assert(harness_start(&h), "log: %s", h.log);
    open_client();
    publish_range(0, 10, "a");
    wait_for_distinct(10, 20);
    usleep(1100000); /* two acceptance times, over a second apart */
    char since[32];
    time_t now = time(NULL);
    /* Lower-case t and z, as RFC 3339 and the wire allow. */
    strftime(since, sizeof since, "%Y-%m-%dt%H:%M:%Sz", gmtime(&now));
    usleep(1100000);
    publish_range(10, 15, "a");
    wait_for_distinct(15, 20);

    snprintf(cmd, sizeof cmd, "'%s' replay --target out --since %s -c '%s' 2>&1",
             harness_bin("evbus"), since, h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "5 stored events queued for delivery again\n");
    size_t distinct, lines = 0;
    time_t end = time(NULL) + 20;
    while (time(NULL) < end && (lines = sink_lines(&distinct, NULL)) < 20)
        usleep(20000);
    cr_assert_eq(lines, 20, "the 5 events since %s were delivered again", since);
    cr_assert_eq(distinct, 15);

    snprintf(cmd, sizeof cmd, "'%s' replay --target out --since 2h -c '%s' 2>&1",
             harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "15 stored events queued for delivery again\n");
    snprintf(cmd, sizeof cmd, "'%s' replay --target out --since yesterday -c '%s' 2>&1",
             harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 2, "%s", out);
    cr_assert(strstr(out, "--since wants a time"), "%s", out);
    end = time(NULL) + 20;
    while (time(NULL) < end && (lines = sink_lines(&distinct, NULL)) < 35)
        usleep(20000);
    cr_assert_eq(lines, 35);
    cr_assert_eq(harness_stop(&h), 0);
    evbus__store *s = open_store();
    evbus__store_stats st;
    evbus__store_stats_get(s, &st);
    evbus__store_close(&s);
    cr_assert_eq(st.events, 15, "delivered events are retained");
    cr_assert_eq(st.pending, 0);
}

/* batch_max_bytes cuts batches by the size of their envelopes. */
Test(delivery, batches_stay_within_the_byte_limit) {
    config_with_sink("good", "    batch_max_bytes: 300\n");
    cr_assert(harness_start(&h), "log: %s", h.log);
    open_client();
    publish_range(0, 20, "a"); /* envelopes of about 140 bytes: 2 fit in 300 */
    wait_for_distinct(20, 20);
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' status --json -c '%s' 2>&1", harness_bin("evbus"), h.config);
    time_t end = time(NULL) + 10;
    while (time(NULL) < end) {
        cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
        if (strstr(out, "\"events_written\": 20"))
            break;
        usleep(20000);
    }
    const char *b = strstr(out, "\"batches\": ");
    cr_assert_not_null(b, "%s", out);
    int batches = atoi(b + strlen("\"batches\": "));
    cr_assert_geq(batches, 10, "20 events of ~140 bytes in batches of at most 300 bytes: %s", out);
    size_t distinct;
    cr_assert_eq(sink_lines(&distinct, NULL), 20, "none lost or doubled by the cuts");
}

/* batch_linger: events published one by one within the linger time leave in
 * one batch. */
Test(delivery, lingering_batches_gather_events_published_apart) {
    config_with_sink("good", "    batch_linger: 600ms\n");
    cr_assert(harness_start(&h), "log: %s", h.log);
    open_client();
    for (int i = 0; i < 4; i++) {
        publish_range(i, i + 1, "a");
        usleep(60000); /* apart enough that without linger each leaves alone */
    }
    wait_for_distinct(4, 20);
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' status --json -c '%s' 2>&1", harness_bin("evbus"), h.config);
    time_t end = time(NULL) + 10;
    while (time(NULL) < end) {
        cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
        if (strstr(out, "\"events_written\": 4"))
            break;
        usleep(20000);
    }
    cr_assert(strstr(out, "\"batches\": 1\n"), "one batch for the four events: %s", out);
}
