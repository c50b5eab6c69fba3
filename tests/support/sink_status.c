/* Reading a sink test's target from `evbus status --json` (sink_status.h). */
#include "sink_status.h"

#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

json_t *sink_status(const harness *h) {
    char cmd[1024];
    static char out[1 << 16];
    snprintf(cmd, sizeof cmd, "'%s' status --json -c '%s' 2>&1", harness_bin("evbus"), h->config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "evbus status: %s", out);
    json_t *st = json_loads(out, 0, NULL);
    cr_assert_not_null(st, "evbus status: %s", out);
    json_t *t = json_incref(json_array_get(json_object_get(st, "targets"), 0));
    json_decref(st);
    cr_assert_not_null(t, "evbus status shows no target: %s", out);
    return t;
}

json_int_t sink_status_num(const harness *h, const char *key) {
    json_t *t = sink_status(h);
    json_int_t v = json_integer_value(json_object_get(t, key));
    json_decref(t);
    return v;
}

json_int_t sink_plugin_counter(const harness *h, const char *key) {
    json_t *t = sink_status(h);
    json_int_t v = json_integer_value(json_object_get(json_object_get(t, "plugin_counters"), key));
    json_decref(t);
    return v;
}

void sink_wait_status(const harness *h, const char *key, json_int_t want, int seconds) {
    time_t end = time(NULL) + seconds;
    json_int_t got = 0;
    while (time(NULL) < end && (got = sink_status_num(h, key)) < want)
        usleep(50000);
    cr_assert_geq(got, want, "%s: %lld of %lld after %d s", key, (long long)got, (long long)want,
                  seconds);
}

void sink_status_text(const harness *h, char *out, size_t len) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' status -c '%s' 2>&1", harness_bin("evbus"), h->config);
    cr_assert_eq(harness_run(cmd, out, len), 0, "evbus status: %s", out);
}

void sink_assert_logged_once(const harness *h, const char *line, const char *again) {
    static char log[1 << 20];
    harness_read_log(h, log, sizeof log);
    const char *first = strstr(log, line);
    cr_assert_not_null(first, "'%s' is not in the log: %s", line, log);
    cr_assert_null(strstr(first + 1, again), "'%s' logged more than once: %s", again, log);
}
