/* The two-region failover fixture (two_regions.h). */
#include "two_regions.h"

#include <criterion/criterion.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

harness tr_h;
evbus_client_t *tr_client;
tr_health tr_east, tr_west;
int tr_published;
const char *tr_region_extra;
const char *tr_east_check;
tr_health tr_more[TR_MORE];

/* ---- what a failure prints ---- */

/* The last `max` bytes of a file to stderr, from a line's start. */
static void print_tail(const char *path, long max) {
    FILE *f = fopen(path, "r");
    if (!f) {
        fprintf(stderr, "(cannot read %s)\n", path);
        return;
    }
    fseek(f, 0, SEEK_END);
    long size = ftell(f), from = size > max ? size - max : 0;
    fseek(f, from, SEEK_SET);
    char line[2048];
    if (from > 0 && !fgets(line, sizeof line, f)) /* a partial first line */
        line[0] = '\0';
    while (fgets(line, sizeof line, f))
        fputs(line, stderr);
    fclose(f);
}

/* What each region's instance of the test sink got (orders.txt: a line per
 * delivery or failed attempt), and which published events none has. */
static void print_queues(void) {
    char path[400], line[512];
    snprintf(path, sizeof path, "%s/orders.txt", tr_h.dir);
    static const char *const regions[] = {"us-east-1", "us-west-2"};
    for (size_t r = 0; r < 2; r++) {
        FILE *f = fopen(path, "r");
        int delivered = 0, failed = 0;
        char last[8][64] = {{0}};
        while (f && fgets(line, sizeof line, f)) {
            char what[16], target[64], region[64];
            if (sscanf(line, "%15s %63s %63s", what, target, region) != 3 ||
                strcmp(region, regions[r]) != 0)
                continue;
            if (strcmp(what, "deliver") == 0) {
                const char *id = strrchr(line, ' ');
                snprintf(last[delivered % 8], sizeof last[0], "%.*s", (int)strcspn(id + 1, "\n"),
                         id + 1);
                delivered++;
            } else {
                failed++;
            }
        }
        if (f)
            fclose(f);
        fprintf(stderr, "%s: %d delivered, %d failed attempts; last delivered:", regions[r],
                delivered, failed);
        for (int k = delivered > 8 ? delivered - 8 : 0; k < delivered; k++)
            fprintf(stderr, " %s", last[k % 8]);
        fprintf(stderr, "\n");
    }
    int missing = 0;
    fprintf(stderr, "published %d events (ev-0 on); in no region:", tr_published);
    for (int i = 0; i < tr_published; i++) {
        char got[64];
        tr_region_of(i, got, sizeof got);
        if (!got[0] && missing++ < 20)
            fprintf(stderr, " ev-%d", i);
    }
    fprintf(stderr, missing > 20 ? " ... (%d in all)\n" : " (%d)\n", missing);
}

void tr_dump(const char *why) {
    static bool dumping;
    if (dumping || !tr_h.dir[0])
        return;
    dumping = true;
    fprintf(stderr, "==== two_regions: %s\n==== evbusd's log (%s), its end:\n", why, tr_h.log);
    print_tail(tr_h.log, 12000);
    char out[16384];
    const char *const cmds[] = {"status", "dlq list"};
    for (size_t i = 0; i < sizeof cmds / sizeof cmds[0]; i++) {
        int rc = tr_cli(cmds[i], out, sizeof out);
        fprintf(stderr, "==== evbus %s (exit %d):\n%s", cmds[i], rc, out);
    }
    fprintf(stderr, "==== what each region's queue holds (%s/orders.txt):\n", tr_h.dir);
    print_queues();
    fprintf(stderr, "====\n");
    dumping = false;
}

/* Prints what explains a failure, then fails the test with the message. */
#define TR_FAIL(...)                                                                               \
    do {                                                                                           \
        char why_[512];                                                                            \
        snprintf(why_, sizeof why_, __VA_ARGS__);                                                  \
        tr_dump(why_);                                                                             \
        cr_assert_fail("%s", why_);                                                                \
    } while (0)

int64_t tr_now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static enum MHD_Result on_http(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *data,
                               size_t *size, void **con_cls) {
    (void)url, (void)method, (void)version, (void)data, (void)size, (void)con_cls;
    tr_health *hs = cls;
    int mode = atomic_load(&hs->healthy);
    /* TR_FLAPPING: fail, pass, fail, ... never two failures in a row. */
    bool ok = mode == TR_FLAPPING ? atomic_fetch_add(&hs->answers, 1) % 2 == 1 : mode != 0;
    struct MHD_Response *r =
        MHD_create_response_from_buffer(ok ? 2 : 4, ok ? "OK" : "down", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, ok ? 200 : 503, r);
    MHD_destroy_response(r);
    return rc;
}

void tr_serve(tr_health *hs) {
    atomic_store(&hs->healthy, 1);
    hs->mhd = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_http, hs,
                               MHD_OPTION_END);
    cr_assert_not_null(hs->mhd);
    hs->port = MHD_get_daemon_info(hs->mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
}

void tr_stop(void) {
    evbus_client_destroy(&tr_client);
    harness_cleanup(&tr_h);
    if (tr_east.mhd)
        MHD_stop_daemon(tr_east.mhd);
    if (tr_west.mhd)
        MHD_stop_daemon(tr_west.mhd);
    tr_east.mhd = tr_west.mhd = NULL;
    for (size_t i = 0; i < TR_MORE; i++) {
        if (tr_more[i].mhd)
            MHD_stop_daemon(tr_more[i].mhd);
        tr_more[i].mhd = NULL;
    }
}

/* tr_east_check with each @Pn@ replaced by tr_more[n]'s port. */
static void east_check(char *out, size_t len) {
    size_t used = 0;
    for (const char *p = tr_east_check; *p && used + 1 < len;) {
        if (p[0] == '@' && p[1] == 'P' && p[2] >= '0' && p[2] < '0' + TR_MORE && p[3] == '@') {
            used += (size_t)snprintf(out + used, len - used, "%d", tr_more[p[2] - '0'].port);
            if (used >= len)
                used = len - 1;
            p += 4;
        } else {
            out[used++] = *p++;
        }
    }
    out[used] = '\0';
}

void tr_start(const char *target_extra, const char *extra, bool checks) {
    tr_start_full(target_extra, extra, checks, NULL, NULL);
}

/* `text` with every @DIR@ replaced by the test's directory; static. */
static const char *with_dir(const char *text) {
    static char out[4096];
    size_t used = 0;
    for (const char *p = text ? text : ""; *p && used + 1 < sizeof out;) {
        if (strncmp(p, "@DIR@", 5) == 0) {
            used += (size_t)snprintf(out + used, sizeof out - used, "%s", tr_h.dir);
            p += 5;
        } else {
            out[used++] = *p++;
        }
    }
    out[used < sizeof out ? used : sizeof out - 1] = '\0';
    return out;
}

void tr_start_full(const char *target_extra, const char *extra, bool checks,
                   const char *more_targets, const char *more_rules) {
    tr_serve(&tr_east);
    tr_serve(&tr_west);
    /* A router's own region: line goes first, instead of the harness's. */
    bool own_region = extra && strncmp(extra, "region:", 7) == 0;
    harness_init(&tr_h, own_region ? extra : NULL);
    if (own_region)
        extra = NULL;
    char targets[4096];
    snprintf(targets, sizeof targets, "%s", with_dir(more_targets));
    FILE *f = fopen(tr_h.config, "a");
    cr_assert_not_null(f);
    char ce[1024] = "", cw[256] = "";
    if (checks && tr_east_check) {
        east_check(ce, sizeof ce);
        snprintf(cw, sizeof cw,
                 "    health_check: {url: \"http://127.0.0.1:%d/ok\", interval: 1s, timeout: "
                 "500ms, failure_threshold: 2, recovery_threshold: 2}\n",
                 tr_west.port);
    } else if (checks) {
        snprintf(ce, sizeof ce,
                 "    health_check: {url: \"http://127.0.0.1:%d/ok\", interval: 1s, timeout: "
                 "500ms, failure_threshold: 2, recovery_threshold: 2, match: \"OK\"}\n",
                 tr_east.port);
        snprintf(cw, sizeof cw,
                 "    health_check: {url: \"http://127.0.0.1:%d/ok\", interval: 1s, timeout: "
                 "500ms, failure_threshold: 2, recovery_threshold: 2}\n",
                 tr_west.port);
    }
    fprintf(f,
            "%s"
            "regions:\n"
            "  - name: us-east-1\n%s%s"
            "  - name: us-west-2\n%s%s"
            "targets:\n"
            "  - name: orders\n"
            "    plugin: %s/test_sink_regions.so\n"
            "%s"
            "    config: {path: \"%s/orders.txt\"}\n"
            "%s"
            "    regions:\n"
            "      us-east-1: {queue_url: q-east, fail_flag: \"%s/us-east-1.fail\"}\n"
            "      us-west-2: {queue_url: q-west, fail_flag: \"%s/us-west-2.fail\"}\n"
            "%s"
            "rules:\n"
            "  - name: all\n"
            "    pattern: {source: [a]}\n"
            "    targets: [orders]\n"
            "%s",
            extra ? extra : "", ce, tr_region_extra ? tr_region_extra : "", cw,
            tr_region_extra ? tr_region_extra : "", EVBUS_TEST_PLUGIN_DIR,
            target_extra && strstr(target_extra, "batch_max_events") ? ""
                                                                     : "    batch_max_events: 1\n",
            tr_h.dir, target_extra ? target_extra : "", tr_h.dir, tr_h.dir, targets,
            more_rules ? more_rules : "");
    fclose(f);
    if (!harness_start(&tr_h))
        TR_FAIL("evbusd did not start; log: %s", tr_h.log);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(tr_h.endpoint, &o, &tr_client), EVBUS_OK);
}

void tr_fail(const char *region, const char *mode) {
    char path[400], tmp[420];
    snprintf(path, sizeof path, "%s/%s.fail", tr_h.dir, region);
    if (!mode) {
        unlink(path);
        return;
    }
    /* Renamed into place, so the sink never reads a half-written mode. */
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    FILE *f = fopen(tmp, "w");
    cr_assert_not_null(f);
    fprintf(f, "%s\n", mode);
    fclose(f);
    cr_assert_eq(rename(tmp, path), 0);
}

int tr_publish_from(const char *origin) {
    char id[32];
    int n = tr_published++;
    snprintf(id, sizeof id, "ev-%d", n);
    evbus_event e = {
        .id = id, .source = "a", .detail_type = "T", .detail = "{}", .origin_region = origin};
    evbus_ack ack;
    evbus_err rc = evbus_publish(tr_client, &e, 1, &ack);
    if (rc != EVBUS_OK)
        TR_FAIL("publishing ev-%d: %s", n, evbus_strerror(rc));
    if (ack.status != EVBUS_ACK_ACCEPTED)
        TR_FAIL("ev-%d was not accepted: %s", n, ack.reason);
    return n;
}

int tr_publish(void) {
    return tr_publish_from(NULL);
}

void tr_region_of(int n, char *out, size_t len) {
    char path[400], line[512], want[40];
    snprintf(path, sizeof path, "%s/orders.txt", tr_h.dir);
    snprintf(want, sizeof want, " ev-%d\n", n);
    out[0] = '\0';
    FILE *f = fopen(path, "r");
    while (f && fgets(line, sizeof line, f)) {
        size_t l = strlen(line), w = strlen(want);
        if (strncmp(line, "deliver orders ", 15) == 0 && l > w && strcmp(line + l - w, want) == 0)
            snprintf(out, len, "%.*s", (int)strcspn(line + 15, " "), line + 15);
    }
    if (f)
        fclose(f);
}

void tr_wait_delivered(int n, char *out, size_t len) {
    int64_t end = tr_now_ms() + 30000;
    do {
        tr_region_of(n, out, len);
        if (out[0])
            return;
        usleep(10000);
    } while (tr_now_ms() < end);
    TR_FAIL("ev-%d was never delivered (waited 30 s)", n);
}

void tr_publish_expecting(int count, const char *region) {
    int first = tr_published;
    for (int i = 0; i < count; i++)
        tr_publish();
    for (int i = first; i < first + count; i++) {
        char got[64];
        tr_wait_delivered(i, got, sizeof got);
        if (strcmp(got, region) != 0)
            TR_FAIL("ev-%d went to %s, wanted %s", i, got, region);
    }
}

int64_t tr_publish_until(const char *region, int64_t since) {
    int64_t end = tr_now_ms() + 30000;
    while (tr_now_ms() < end) {
        int n = tr_publish();
        char got[64];
        tr_wait_delivered(n, got, sizeof got);
        if (strcmp(got, region) == 0)
            return tr_now_ms() - since;
        usleep(50000);
    }
    TR_FAIL("no event reached %s within 30 s", region);
    return -1;
}

void tr_assert_none_lost(void) {
    for (int i = 0; i < tr_published; i++) {
        char got[64];
        tr_wait_delivered(i, got, sizeof got);
    }
}

int tr_cli(const char *args, char *out, size_t len) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' %s -c '%s' 2>&1", harness_bin("evbus"), args, tr_h.config);
    return harness_run(cmd, out, len);
}

void tr_wait_status(const char *want) {
    char out[16384];
    int64_t end = tr_now_ms() + 15000;
    while (tr_now_ms() < end) {
        tr_cli("region status", out, sizeof out);
        if (strstr(out, want))
            return;
        usleep(50000);
    }
    TR_FAIL("'%s' not in `evbus region status` within 15 s", want);
}

void tr_fail_over_and_recover(void) {
    tr_wait_status("us-east-1        on       healthy");
    atomic_store(&tr_east.healthy, 0);
    tr_publish_until("us-west-2", tr_now_ms());
    atomic_store(&tr_east.healthy, 1);
    tr_wait_status("us-east-1        on       healthy");
}

void tr_restart_with_state(const char *key, const char *value) {
    cr_assert_eq(harness_stop(&tr_h), 0);
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd,
             "printf '%%s\\n%%s\\n' '%s' '%s' | mdb_load -T -s state '%s/data' 2>&1", key, value,
             tr_h.dir);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    evbus_client_destroy(&tr_client);
    cr_assert(harness_start(&tr_h), "log: %s", tr_h.log);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    cr_assert_eq(evbus_client_new(tr_h.endpoint, &o, &tr_client), EVBUS_OK);
}
