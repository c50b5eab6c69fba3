/* Plugins named by short name (plugin_dir, then lib/evbus/plugins next to
 * the binaries) and `evbus plugin info`, as a user runs them. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "harness.h"

static harness h;

static void stop(void) {
    harness_cleanup(&h);
}

TestSuite(plugin_lookup, .fini = stop, .timeout = 60);

static void write_target(const char *plugin, const char *plugin_dir) {
    FILE *f = fopen(h.config, "a");
    cr_assert_not_null(f);
    if (plugin_dir)
        fprintf(f, "plugin_dir: %s\n", plugin_dir);
    fprintf(f,
            "targets:\n"
            "  - name: out\n"
            "    plugin: %s\n"
            "    config:\n"
            "      path: %s/out.txt\n",
            plugin, h.dir);
    fclose(f);
}

static int check_config(char *out, size_t len) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' --check-config --config '%s' 2>&1", harness_bin("evbusd"),
             h.config);
    return harness_run(cmd, out, len);
}

Test(plugin_lookup, short_name_is_found_in_plugin_dir) {
    harness_init(&h, NULL);
    write_target("test_sink_good", EVBUS_TEST_PLUGIN_DIR);
    char out[4096];
    cr_assert_eq(check_config(out, sizeof out), 0, "%s", out);
}

Test(plugin_lookup, unknown_short_name_says_where_it_looked) {
    harness_init(&h, NULL);
    write_target("no-such-sink", EVBUS_TEST_PLUGIN_DIR);
    char out[4096];
    cr_assert_neq(check_config(out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "targets[0].plugin: no plugin 'no-such-sink' (evbus_sink_no-such-sink.so "
                          "or no-such-sink.so) in " EVBUS_TEST_PLUGIN_DIR ", "),
              "%s", out);
    cr_assert(strstr(out, "lib/evbus/plugins"), "%s", out);
}

Test(plugin_lookup, a_path_still_works) {
    harness_init(&h, NULL);
    write_target(EVBUS_TEST_PLUGIN_DIR "/test_sink_good.so", NULL);
    char out[4096];
    cr_assert_eq(check_config(out, sizeof out), 0, "%s", out);
}

/* The AWS plugins are built into the build tree's lib/evbus/plugins, where
 * evbusd and evbus look next to themselves. */
Test(plugin_lookup, plugin_info_by_short_name_lists_limits_and_keys) {
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' plugin info sqs 2>&1", harness_bin("evbus"));
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "name:        sqs\n"), "%s", out);
    cr_assert(strstr(out, "version:     0.1.0\n"), "%s", out);
    cr_assert(strstr(out, "ABI:         1.5 (this evbus: 1.5)"), "%s", out);
    cr_assert(strstr(out, "limits:      10 events per batch, 1048576 bytes"), "%s", out);
    cr_assert(strstr(out, "  queue_url            string    (required)      URL of the queue"),
              "%s", out);
    cr_assert(strstr(out, "  max_request_bytes    size      1MiB"), "%s", out);
    cr_assert(strstr(out, "  message_group_id     string    partition_key"), "%s", out);
}

Test(plugin_lookup, plugin_info_by_path_and_errors) {
    char cmd[1024], out[8192];
    snprintf(cmd, sizeof cmd, "'%s' plugin info '%s/test_sink_good.so' 2>&1", harness_bin("evbus"),
             EVBUS_TEST_PLUGIN_DIR);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "name:        test-sink\n"), "%s", out);
    cr_assert(strstr(out, "  path                 string    (required)"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' plugin info '%s/test_sink_future_major.so' 2>&1",
             harness_bin("evbus"), EVBUS_TEST_PLUGIN_DIR);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "plugin ABI 2.0; this evbusd speaks 1.x"), "%s", out);
    snprintf(cmd, sizeof cmd, "'%s' plugin info nope 2>&1", harness_bin("evbus"));
    cr_assert_eq(harness_run(cmd, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "no plugin 'nope'"), "%s", out);
}
