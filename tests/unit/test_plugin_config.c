/* A target's plugin settings against the keys its plugin declares: what the
 * host's config_* services answer, and where errors point. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "config.h"
#include "plugin_config.h"

static char dir[64];
static evbus__config cfg;

static void setup(void) {
    snprintf(dir, sizeof dir, "/tmp/evbus-plugcfg-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    evbus__config_defaults(&cfg);
}

static void teardown(void) {
    evbus__config_free(&cfg);
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(plugin_config, .init = setup, .fini = teardown, .timeout = 10);

static const evbus_config_key keys[] = {
    {"url", EVBUS_CONFIG_STRING, NULL, 1, "where to send"},
    {"token", EVBUS_CONFIG_STRING, NULL, 0, "optional, no default"},
    {"timeout", EVBUS_CONFIG_DURATION, "5s", 0, "optional, with a default"},
    {"retries", EVBUS_CONFIG_INT, NULL, 0, "optional number, no default"},
    {NULL, 0, NULL, 0, NULL},
};

static const evbus_plugin plugin = {.name = "web", .config_keys = keys};

/* Loads a configuration file of `text`; returns its first target. */
static const evbus__target_cfg *load_file(const char *text) {
    char path[128], err[1024];
    snprintf(path, sizeof path, "%s/evbus.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    cr_assert_eq(evbus__config_load(&cfg, path, err, sizeof err), EVBUS_OK, "%s", err);
    return evbus__config_target(&cfg, 0);
}

/* Loads a configuration whose one target has `settings` under config:. */
static const evbus__target_cfg *load(const char *settings) {
    char text[1024];
    snprintf(text, sizeof text, "targets:\n  - name: out\n    config:\n%s", settings);
    return load_file(text);
}

/* The plugin check's problems, as evbusd would print them. */
static unsigned check(const evbus__target_cfg *t, char *err, size_t errlen) {
    evbus__cfg_errors e;
    err[0] = '\0';
    evbus__cfg_errors_init(&e, "evbus.yaml", err, errlen);
    return evbus__plugin_config_check(&e, 0, cfg.targets.pos[0], t, &plugin);
}

static const char *value(const evbus__target_cfg *t, const evbus__target_region *r, const char *key,
                         evbus_config_type type) {
    const char *v = NULL;
    evbus_err rc = evbus__plugin_config_value(&plugin, t, r, key, type, &v);
    return rc == EVBUS_OK ? v : evbus_strerror(rc);
}

Test(plugin_config, values_defaults_and_unset_optional_keys) {
    const evbus__target_cfg *t = load("      url: http://x\n");
    const char *v = "untouched";
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, NULL, "url", EVBUS_CONFIG_STRING, &v),
                 EVBUS_OK);
    cr_assert_str_eq(v, "http://x");
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, NULL, "timeout", EVBUS_CONFIG_DURATION, &v),
                 EVBUS_OK);
    cr_assert_str_eq(v, "5s", "the declared default");

    /* Declared, no default, left unset: its own answer, not "undeclared". */
    v = "untouched";
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, NULL, "token", EVBUS_CONFIG_STRING, &v),
                 EVBUS_ENOENT);
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, NULL, "retries", EVBUS_CONFIG_INT, &v),
                 EVBUS_ENOENT);
    cr_assert_str_eq(v, "untouched");

    /* A key the plugin never declared, or asked for with another type. */
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, NULL, "nope", EVBUS_CONFIG_STRING, &v),
                 EVBUS_EINVAL);
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, NULL, "url", EVBUS_CONFIG_INT, &v),
                 EVBUS_EINVAL);
    cr_assert_str_eq(v, "untouched");
    cr_assert_str_eq(evbus_strerror(EVBUS_ENOENT), "no such value");
}

Test(plugin_config, unknown_key_error_points_at_the_key) {
    const evbus__target_cfg *t = load("      url: http://x\n"
                                      "      tokn: abc\n");
    char err[512];
    cr_assert_eq(check(t, err, sizeof err), 1);
    cr_assert_str_eq(err, "evbus.yaml:5:7: targets[0].config.tokn: unknown key for plugin web "
                          "(known: url, token, timeout, retries)");
}

Test(plugin_config, bad_value_error_points_at_the_value) {
    const evbus__target_cfg *t = load("      url: http://x\n"
                                      "      timeout: soon\n");
    char err[512];
    cr_assert_eq(check(t, err, sizeof err), 1);
    cr_assert_str_eq(err, "evbus.yaml:5:16: targets[0].config.timeout: expected a duration such "
                          "as 250ms or 30s, got 'soon' (optional, with a default)");
}

Test(plugin_config, required_key_left_out_names_the_target) {
    const evbus__target_cfg *t = load("      token: abc\n");
    char err[512];
    cr_assert_eq(check(t, err, sizeof err), 1);
    cr_assert_str_eq(
        err, "evbus.yaml:2:5: targets[0] (out): plugin web needs config key 'url' (where to "
             "send)");
}

/* Two regions: each instance sees the region's keys over the target's
 * config:, in the order of the top-level list, not of the target's map. */
static const char two_regions[] = "regions:\n"
                                  "  - name: us-east-1\n"
                                  "  - name: us-west-2\n"
                                  "targets:\n"
                                  "  - name: out\n"
                                  "    config:\n"
                                  "      url: http://common\n"
                                  "      timeout: 1s\n"
                                  "    regions:\n"
                                  "      us-west-2: {url: http://west, token: w}\n"
                                  "      us-east-1:\n";

Test(plugin_config, region_keys_override_config_and_fall_back_to_it) {
    const evbus__target_cfg *t = load_file(two_regions);
    cr_assert_eq(t->n_delivery_regions, 2);
    const evbus__target_region *east = &t->delivery_regions[0], *west = &t->delivery_regions[1];
    cr_assert_str_eq(east->name, "us-east-1", "the top-level list's order of preference");
    cr_assert_str_eq(west->name, "us-west-2");
    cr_assert_str_eq(value(t, east, "url", EVBUS_CONFIG_STRING), "http://common");
    cr_assert_str_eq(value(t, west, "url", EVBUS_CONFIG_STRING), "http://west");
    cr_assert_str_eq(value(t, west, "timeout", EVBUS_CONFIG_DURATION), "1s");
    cr_assert_str_eq(value(t, west, "token", EVBUS_CONFIG_STRING), "w");
    cr_assert_str_eq(value(t, east, "token", EVBUS_CONFIG_STRING), "no such value");
    char err[512];
    cr_assert_eq(check(t, err, sizeof err), 0, "%s", err);
}

Test(plugin_config, target_without_regions_delivers_in_the_routers_region) {
    const evbus__target_cfg *t = load("      url: http://x\n");
    cr_assert_eq(t->n_delivery_regions, 1);
    cr_assert_str_eq(t->delivery_regions[0].name, "local");
    cr_assert_null(t->delivery_regions[0].config);
    cr_assert_str_eq(value(t, &t->delivery_regions[0], "url", EVBUS_CONFIG_STRING), "http://x");
}

/* Every problem, whether in config: or in a region's keys, points at its own
 * line and column. */
Test(plugin_config, region_key_problems_point_into_the_regions_map) {
    const evbus__target_cfg *t = load_file("regions:\n"
                                           "  - name: us-east-1\n"
                                           "  - name: us-west-2\n"
                                           "targets:\n"
                                           "  - name: out\n"
                                           "    config:\n"
                                           "      tokn: abc\n"
                                           "    regions:\n"
                                           "      us-east-1: {url: http://east, timeout: soon}\n"
                                           "      us-west-2:\n"
                                           "        urll: http://west\n");
    char err[2048];
    cr_assert_eq(check(t, err, sizeof err), 4, "%s", err);
    cr_assert_str_eq(err, "evbus.yaml:7:7: targets[0].config.tokn: unknown key for plugin web "
                          "(known: url, token, timeout, retries)\n"
                          "evbus.yaml:9:46: targets[0].regions.us-east-1.timeout: expected a "
                          "duration such as 250ms or 30s, got 'soon' (optional, with a default)\n"
                          "evbus.yaml:11:9: targets[0].regions.us-west-2.urll: unknown key for "
                          "plugin web (known: url, token, timeout, retries)\n"
                          "evbus.yaml:10:7: targets[0].regions.us-west-2 (out): plugin web needs "
                          "config key 'url', in config: or in this region's keys (where to send)");
}
