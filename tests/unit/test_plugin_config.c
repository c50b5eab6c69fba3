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

/* Loads a configuration whose one target has `settings` under config:. */
static const evbus__target_cfg *load(const char *settings) {
    char path[128], err[1024];
    snprintf(path, sizeof path, "%s/evbus.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fprintf(f, "targets:\n  - name: out\n    config:\n%s", settings);
    fclose(f);
    cr_assert_eq(evbus__config_load(&cfg, path, err, sizeof err), EVBUS_OK, "%s", err);
    return evbus__config_target(&cfg, 0);
}

Test(plugin_config, values_defaults_and_unset_optional_keys) {
    const evbus__target_cfg *t = load("      url: http://x\n");
    const char *v = "untouched";
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, "url", EVBUS_CONFIG_STRING, &v), EVBUS_OK);
    cr_assert_str_eq(v, "http://x");
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, "timeout", EVBUS_CONFIG_DURATION, &v),
                 EVBUS_OK);
    cr_assert_str_eq(v, "5s", "the declared default");

    /* Declared, no default, left unset: its own answer, not "undeclared". */
    v = "untouched";
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, "token", EVBUS_CONFIG_STRING, &v),
                 EVBUS_ENOENT);
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, "retries", EVBUS_CONFIG_INT, &v),
                 EVBUS_ENOENT);
    cr_assert_str_eq(v, "untouched");

    /* A key the plugin never declared, or asked for with another type. */
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, "nope", EVBUS_CONFIG_STRING, &v),
                 EVBUS_EINVAL);
    cr_assert_eq(evbus__plugin_config_value(&plugin, t, "url", EVBUS_CONFIG_INT, &v), EVBUS_EINVAL);
    cr_assert_str_eq(v, "untouched");
    cr_assert_str_eq(evbus_strerror(EVBUS_ENOENT), "no such value");
}

Test(plugin_config, unknown_key_error_points_at_the_key) {
    const evbus__target_cfg *t = load("      url: http://x\n"
                                      "      tokn: abc\n");
    char err[512];
    cr_assert_eq(evbus__plugin_config_check("evbus.yaml", 0, 2, t, &plugin, err, sizeof err), -1);
    cr_assert_str_eq(err, "evbus.yaml:5:7: targets[0].config.tokn: unknown key for plugin web "
                          "(known: url, token, timeout, retries)");
}

Test(plugin_config, bad_value_error_points_at_the_value) {
    const evbus__target_cfg *t = load("      url: http://x\n"
                                      "      timeout: soon\n");
    char err[512];
    cr_assert_eq(evbus__plugin_config_check("evbus.yaml", 0, 2, t, &plugin, err, sizeof err), -1);
    cr_assert_str_eq(err, "evbus.yaml:5:16: targets[0].config.timeout: expected a duration such "
                          "as 250ms or 30s, got 'soon' (optional, with a default)");
}

Test(plugin_config, required_key_left_out_names_the_target) {
    const evbus__target_cfg *t = load("      token: abc\n");
    char err[512];
    cr_assert_eq(evbus__plugin_config_check("evbus.yaml", 0, 2, t, &plugin, err, sizeof err), -1);
    cr_assert_str_eq(err,
                     "evbus.yaml:2: targets[0] (out): plugin web needs config key 'url' (where to "
                     "send)");
}
