/* What evbusd binds is what it says it binds. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static harness h;

static void stop(void) {
    harness_cleanup(&h);
}

TestSuite(endpoints, .fini = stop, .timeout = 60);

/* tcp://HOST:* asks for any free port: the log names the port bound (it
 * used to print the `*`, and 99999 bound 34463 while logging 99999), and a
 * producer reaches evbusd there. */
Test(endpoints, the_log_names_the_port_actually_bound) {
    harness_init(&h, NULL);
    FILE *f = fopen(h.config, "w");
    cr_assert_not_null(f);
    fprintf(f, "region: test-1\n"
               "ingest:\n"
               "  listen: [\"tcp://127.0.0.1:*\"]\n"
               "storage:\n"
               "  data_dir: data\n"
               "  map_size: 64MiB\n");
    fclose(f);
    cr_assert(harness_start(&h));
    char log[16384];
    harness_read_log(&h, log, sizeof log);
    const char *at = strstr(log, "listening on tcp://127.0.0.1:");
    cr_assert_not_null(at, "%s", log);
    char *end;
    long port = strtol(at + strlen("listening on tcp://127.0.0.1:"), &end, 10);
    cr_assert(port > 0 && port <= 65535 && (*end == ' ' || *end == '\n'), "%s", log);

    char cmd[600], out[1024];
    snprintf(cmd, sizeof cmd, "%s pub -e tcp://127.0.0.1:%ld -s a -t T -d '{}' 2>&1",
             harness_bin("evbus"), port);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "accepted"), "%s", out);
    cr_assert_eq(harness_stop(&h), 0);
}
