#include "http_test_util.h"

#include <criterion/criterion.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "moto.h"

int http_test_start(harness *h, const char *http_extra, const char *ingest_extra) {
    int port = moto_free_port();
    cr_assert_gt(port, 0);
    char ingest[1024], extra[1024];
    snprintf(ingest, sizeof ingest,
             "%s"
             "  http:\n"
             "    listen: 127.0.0.1:%d\n"
             "    credentials: http.keys\n"
             "%s",
             ingest_extra ? ingest_extra : "", port, http_extra ? http_extra : "");
    harness_init_ingest(h, ingest, NULL);
    snprintf(extra, sizeof extra,
             "targets:\n"
             "  - name: file\n"
             "    plugin: %s/evbus_sink_jsonl.so\n"
             "    config:\n"
             "      path: %s/out.jsonl\n"
             "rules:\n"
             "  - name: examples\n"
             "    pattern: {source: [{prefix: com.example.}]}\n"
             "    targets: [file]\n",
             getenv("EVBUS_EXAMPLES_DIR"), h->dir);
    FILE *f = fopen(h->config, "a");
    fputs(extra, f);
    fclose(f);
    char keys[400];
    snprintf(keys, sizeof keys, "%s/http.keys", h->dir);
    f = fopen(keys, "w");
    fprintf(f, "# test keys\nproducer %s %s com.example.*\nother AKIDOTHER othersecret\n", KEY,
            SECRET);
    fclose(f);
    cr_assert(harness_start(h), "evbusd did not start; see %s", h->log);
    return port;
}

void http_test_client(char *out, size_t outlen, const char *fmt, ...) {
    char args[8192], cmd[9000];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(args, sizeof args, fmt, ap);
    va_end(ap);
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/integration/http_client.py' %s 2>&1",
             getenv("EVBUS_SRC_DIR"), args);
    int rc = harness_run(cmd, out, outlen);
    cr_assert_eq(rc, 0, "%s: %s", cmd, out);
}

int http_test_delivered(const harness *h, const char *needle, int want) {
    char path[400];
    snprintf(path, sizeof path, "%s/out.jsonl", h->dir);
    int n = 0;
    for (time_t end = time(NULL) + 20; time(NULL) < end; usleep(20000)) {
        FILE *f = fopen(path, "r");
        char line[8192];
        n = 0;
        while (f && fgets(line, sizeof line, f))
            n += strstr(line, needle) != NULL;
        if (f)
            fclose(f);
        if (n >= want)
            break;
    }
    return n;
}

uint64_t http_test_stored_events(harness *h) {
    cr_assert_eq(harness_stop(h), 0);
    static char log[1 << 20];
    harness_read_log(h, log, sizeof log);
    const char *at = strstr(log, "[evbusd] stopped: ");
    cr_assert(at, "%s", log);
    return strtoull(at + strlen("[evbusd] stopped: "), NULL, 10);
}
