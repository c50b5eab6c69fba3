/* Policy replicate end to end: a real evbusd with the region-health
 * selector and the regions test sink (it writes the region of every event
 * it delivers), a health endpoint per region served by this process. Every
 * region must get every acked event: exactly once while nothing crashes, at
 * least once (at most each region's window more: 2 x max_in_flight
 * batches) across a kill -9. */
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"

#define MAX_EVENTS 4000

typedef struct health {
    struct MHD_Daemon *mhd;
    atomic_int healthy;
    int port;
} health;

static harness h;
static evbus_client_t *client;
static health east, west;
static int published;
static const char *const region_names[2] = {"us-east-1", "us-west-2"};
static int counts[2][MAX_EVENTS]; /* deliveries of ev-N per region */

static enum MHD_Result on_http(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls) {
    (void)url, (void)method, (void)version, (void)data, (void)size, (void)con_cls;
    health *hs = cls;
    bool ok = atomic_load(&hs->healthy);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(ok ? 2 : 4, ok ? "OK" : "down", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, ok ? 200 : 503, r);
    MHD_destroy_response(r);
    return rc;
}

static void serve(health *hs) {
    atomic_store(&hs->healthy, 1);
    hs->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_http, hs,
                               MHD_OPTION_END);
    cr_assert_not_null(hs->mhd);
    hs->port = MHD_get_daemon_info(hs->mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
}

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
    if (east.mhd)
        MHD_stop_daemon(east.mhd);
    if (west.mhd)
        MHD_stop_daemon(west.mhd);
}

TestSuite(replicate, .fini = stop, .timeout = 120);

static int64_t now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void connect_client(void) {
    evbus_client_destroy(&client);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

/* Two regions, each checked every second, and target orders replicating to
 * both in batches of `batch`. */
static void start(int batch) {
    serve(&east);
    serve(&west);
    harness_init(&h, NULL);
    FILE *f = fopen(h.config, "a");
    cr_assert_not_null(f);
    fprintf(f,
            "regions:\n"
            "  - name: us-east-1\n"
            "    health_check: {url: \"http://127.0.0.1:%d/ok\", interval: 1s, timeout: 500ms, "
            "failure_threshold: 2, recovery_threshold: 2}\n"
            "  - name: us-west-2\n"
            "    health_check: {url: \"http://127.0.0.1:%d/ok\", interval: 1s, timeout: 500ms, "
            "failure_threshold: 2, recovery_threshold: 2}\n"
            "targets:\n"
            "  - name: orders\n"
            "    plugin: %s/test_sink_regions.so\n"
            "    policy: replicate\n"
            "    batch_max_events: %d\n"
            "    max_in_flight: 2\n"
            "    config: {path: \"%s/orders.txt\"}\n"
            "    regions:\n"
            "      us-east-1: {queue_url: q-east}\n"
            "      us-west-2: {queue_url: q-west}\n"
            "rules:\n"
            "  - name: all\n"
            "    pattern: {source: [a]}\n"
            "    targets: [orders]\n",
            east.port, west.port, EVBUS_TEST_PLUGIN_DIR, batch, h.dir);
    fclose(f);
    cr_assert(harness_start(&h), "log: %s", h.log);
    connect_client();
}

/* Publishes `count` events ev-N in requests of up to 100; all acked. */
static void publish(int count) {
    static char ids[100][32];
    evbus_event ev[100];
    evbus_ack acks[100];
    cr_assert_leq(published + count, MAX_EVENTS);
    while (count > 0) {
        int n = count < 100 ? count : 100;
        for (int i = 0; i < n; i++) {
            snprintf(ids[i], sizeof ids[i], "ev-%d", published + i);
            ev[i] = (evbus_event){.id = ids[i], .source = "a", .detail_type = "T", .detail = "{}"};
        }
        cr_assert_eq(evbus_publish(client, ev, (size_t)n, acks), EVBUS_OK);
        for (int i = 0; i < n; i++)
            cr_assert_eq(acks[i].status, EVBUS_ACK_ACCEPTED, "%s", acks[i].reason);
        published += n;
        count -= n;
    }
}

/* Reads the sink's lines "deliver orders REGION queue_url=Q SEQ ID" into
 * counts; returns the number of lines. */
static int read_deliveries(void) {
    char path[400], line[512], region[64], id[64];
    snprintf(path, sizeof path, "%s/orders.txt", h.dir);
    memset(counts, 0, sizeof counts);
    int lines = 0;
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        unsigned long long seq;
        int n;
        if (sscanf(line, "deliver orders %63s queue_url=%*s %llu %63s", region, &seq, id) != 3 ||
            sscanf(id, "ev-%d", &n) != 1 || n < 0 || n >= MAX_EVENTS)
            continue;
        for (int r = 0; r < 2; r++)
            if (strcmp(region, region_names[r]) == 0)
                counts[r][n]++;
        lines++;
    }
    if (f)
        fclose(f);
    return lines;
}

/* Waits until region r has every event in [from, to) at least once. */
static void wait_region_has(int r, int from, int to) {
    int64_t end = now_ms() + 30000;
    for (;;) {
        read_deliveries();
        int missing = -1;
        for (int i = from; i < to && missing < 0; i++)
            if (!counts[r][i])
                missing = i;
        if (missing < 0)
            return;
        if (now_ms() > end)
            cr_assert_fail("ev-%d never reached %s", missing, region_names[r]);
        usleep(20000);
    }
}

static int cli(const char *args, char *out, size_t len) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s -c '%s' 2>&1", harness_bin("evbus"), args, h.config);
    return harness_run(cmd, out, len);
}

static void wait_status(const char *want) {
    char out[16384];
    int64_t end = now_ms() + 15000;
    while (now_ms() < end) {
        cli("status", out, sizeof out);
        if (strstr(out, want))
            return;
        usleep(50000);
    }
    cr_assert_fail("'%s' not in:\n%s", want, out);
}

Test(replicate, two_healthy_regions_each_get_every_event_once) {
    start(10);
    wait_status("us-west-2        on       healthy");
    publish(200);
    wait_region_has(0, 0, 200);
    wait_region_has(1, 0, 200);
    /* Done in both regions: nothing owed, nothing pending. */
    wait_status("replicate, owed to: us-east-1 0, us-west-2 0");
    read_deliveries();
    for (int i = 0; i < 200; i++)
        for (int r = 0; r < 2; r++)
            cr_assert_eq(counts[r][i], 1, "ev-%d reached %s %d times", i, region_names[r],
                         counts[r][i]);
}

Test(replicate, a_region_back_from_an_outage_catches_up_with_what_it_missed) {
    start(10);
    wait_status("us-west-2        on       healthy");
    publish(20);
    wait_region_has(1, 0, 20);

    atomic_store(&west.healthy, 0);
    wait_status("us-west-2        on       unhealthy");
    publish(50); /* ev-20 .. ev-69: us-east-1 now, us-west-2 owes them */
    wait_region_has(0, 20, 70);
    wait_status("replicate, owed to: us-east-1 0, us-west-2 50");
    read_deliveries();
    for (int i = 20; i < 70; i++)
        cr_assert_eq(counts[1][i], 0, "ev-%d reached us-west-2 while it was unhealthy", i);

    atomic_store(&west.healthy, 1);
    wait_region_has(1, 20, 70);
    publish(10);
    wait_region_has(0, 70, 80);
    wait_region_has(1, 70, 80);
    wait_status("replicate, owed to: us-east-1 0, us-west-2 0");
    read_deliveries();
    for (int i = 0; i < 80; i++)
        for (int r = 0; r < 2; r++)
            cr_assert_eq(counts[r][i], 1, "ev-%d reached %s %d times", i, region_names[r],
                         counts[r][i]);
}

Test(replicate, a_region_switched_off_is_not_owed_what_others_got_meanwhile) {
    start(10);
    wait_status("us-west-2        on       healthy");
    char out[4096];
    cr_assert_eq(cli("region off us-west-2", out, sizeof out), 0, "%s", out);
    publish(30);
    wait_region_has(0, 0, 30);
    /* Settled without us-west-2: nothing stays pending for it. */
    wait_status("replicate, owed to: us-east-1 0, us-west-2 0");
    cr_assert_eq(cli("region on us-west-2", out, sizeof out), 0, "%s", out);
    publish(10);
    wait_region_has(0, 30, 40);
    wait_region_has(1, 30, 40);
    read_deliveries();
    for (int i = 0; i < 30; i++)
        cr_assert_eq(counts[1][i], 0, "ev-%d reached us-west-2, switched off", i);
    for (int i = 0; i < 40; i++)
        cr_assert_eq(counts[0][i], 1, "ev-%d reached us-east-1 %d times", i, counts[0][i]);
}

Test(replicate, kill9_during_delivery_every_event_reaches_both_regions) {
    start(10);
    wait_status("us-west-2        on       healthy");
    publish(3000);
    /* kill -9 once deliveries are under way in both regions. */
    int64_t end = now_ms() + 20000;
    for (;;) {
        read_deliveries();
        int got[2] = {0, 0};
        for (int r = 0; r < 2; r++)
            for (int i = 0; i < 3000; i++)
                got[r] += counts[r][i] > 0;
        if (got[0] > 0 && got[1] > 0)
            break;
        cr_assert_lt(now_ms(), end, "no deliveries in both regions");
        usleep(1000);
    }
    harness_kill9(&h);
    read_deliveries();
    int before[2] = {0, 0};
    for (int r = 0; r < 2; r++)
        for (int i = 0; i < 3000; i++)
            before[r] += counts[r][i] > 0;
    cr_log_info("killed with %d / %d delivered", before[0], before[1]);
    cr_assert(harness_start(&h), "restart failed: %s", h.log);
    connect_client();
    wait_region_has(0, 0, 3000);
    wait_region_has(1, 0, 3000);
    wait_status("replicate, owed to: us-east-1 0, us-west-2 0");
    read_deliveries();
    /* Redelivered: at most each lane's window, 2 x max_in_flight (2) batches
     * (10) per region: in flight, or answered with results not yet durable. */
    for (int r = 0; r < 2; r++) {
        int twice = 0;
        for (int i = 0; i < 3000; i++) {
            cr_assert_leq(counts[r][i], 2, "ev-%d reached %s %d times", i, region_names[r],
                          counts[r][i]);
            twice += counts[r][i] == 2;
        }
        cr_log_info("%s: %d redelivered", region_names[r], twice);
        cr_assert_leq(twice, 2 * 2 * 10, "%s: %d events redelivered", region_names[r], twice);
    }
}
