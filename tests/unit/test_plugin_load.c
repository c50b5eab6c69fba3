/* The plugin loader against a good plugin and deliberately broken ones: each
 * refusal must say what was expected and what was found. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <string.h>

#include "plugin_load.h"

TestSuite(plugin_load, .timeout = 30);

static const char *plugin_path(const char *variant) {
    static char path[512];
    snprintf(path, sizeof path, "%s/test_sink_%s.so", EVBUS_TEST_PLUGIN_DIR, variant);
    return path;
}

Test(plugin_load, good_plugin_loads) {
    evbus__plugin_lib *lib = NULL;
    char err[512] = "";
    cr_assert_eq(evbus__plugin_open(plugin_path("good"), &lib, err, sizeof err), EVBUS_OK, "%s",
                 err);
    cr_assert_str_eq(lib->desc->name, "test-sink");
    cr_assert_eq(lib->desc->max_batch_events, 10);
    evbus__plugin_close(&lib);
    cr_assert_null(lib);
    evbus__plugin_close(&lib);
}

typedef struct bad_plugin {
    char variant[24];
    char expect[2][96];
} bad_plugin;

ParameterizedTestParameters(plugin_load, broken_plugins_are_refused_with_reasons) {
    static bad_plugin cases[] = {
        {"bad_magic", {"descriptor magic is 0x12345678", "expected 0x45564250"}},
        {"old_major", {"built for evbus plugin ABI 0.0", "this evbusd speaks 1.x"}},
        {"future_major", {"built for evbus plugin ABI 2.0", "rebuild the plugin"}},
        {"short", {"descriptor is 24 bytes", "needs at least"}},
        {"no_symbol", {"no evbus_plugin_entry symbol", "EVBUS_PLUGIN_EXPORT"}},
        {"does_not_exist", {"cannot load plugin", "test_sink_does_not_exist.so"}},
    };
    return cr_make_param_array(bad_plugin, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_plugin *c, plugin_load, broken_plugins_are_refused_with_reasons) {
    evbus__plugin_lib *lib = NULL;
    char err[512] = "";
    cr_assert_eq(evbus__plugin_open(plugin_path(c->variant), &lib, err, sizeof err), EVBUS_ECONFIG,
                 "%s loaded", c->variant);
    cr_assert_null(lib);
    for (int i = 0; i < 2; i++)
        cr_assert(strstr(err, c->expect[i]), "%s: '%s' lacks '%s'", c->variant, err, c->expect[i]);
}
