/* The configuration loader: defaults, and errors that name file, line and key. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "config.h"

static char dir[64];

static void mkdir_tmp(void) {
    snprintf(dir, sizeof dir, "/tmp/evbus-cfg-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
}

static void rm_tmp(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

TestSuite(config, .init = mkdir_tmp, .fini = rm_tmp, .timeout = 10);

static const char *write_file(const char *text) {
    static char path[128];
    snprintf(path, sizeof path, "%s/evbus.yaml", dir);
    FILE *f = fopen(path, "w");
    cr_assert_not_null(f);
    fputs(text, f);
    fclose(f);
    return path;
}

Test(config, empty_file_means_defaults) {
    evbus__config cfg;
    char err[1024];
    evbus__config_defaults(&cfg);
    cr_assert_eq(evbus__config_load(&cfg, write_file(""), err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_str_eq(cfg.region, "local");
    cr_assert_eq(cfg.listen.n, 1);
    cr_assert_str_eq(cfg.listen.v[0], "tcp://127.0.0.1:5555");
    cr_assert_eq(cfg.max_event_size, 256 * 1024);
    cr_assert_eq(cfg.dedup_window_ms, 24 * 3600 * 1000LL);
    /* data_dir is made absolute, relative to the file's directory. */
    char expect[256];
    char *real = realpath(dir, NULL);
    snprintf(expect, sizeof expect, "%s/evbus-data", real);
    free(real);
    cr_assert_str_eq(cfg.data_dir, expect);
    evbus__config_free(&cfg);
}

Test(config, reads_every_type) {
    evbus__config cfg;
    char err[1024];
    evbus__config_defaults(&cfg);
    const char *path = write_file("region: eu-west-1\n"
                                  "log_level: debug\n"
                                  "ingest:\n"
                                  "  listen: [tcp://127.0.0.1:7000, ipc:///tmp/x.sock]\n"
                                  "  max_event_size: 64KiB\n"
                                  "storage:\n"
                                  "  data_dir: /var/lib/evbus\n"
                                  "  map_size: 2GiB\n"
                                  "  dedup_window: 90m\n"
                                  "  max_backlog: 1000\n"
                                  "  commit_max_bytes: 1MiB\n");
    cr_assert_eq(evbus__config_load(&cfg, path, err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_str_eq(cfg.region, "eu-west-1");
    cr_assert_eq(cfg.log_level, 3);
    cr_assert_eq(cfg.listen.n, 2);
    cr_assert_str_eq(cfg.listen.v[1], "ipc:///tmp/x.sock");
    cr_assert_eq(cfg.max_event_size, 64 * 1024);
    cr_assert_str_eq(cfg.data_dir, "/var/lib/evbus");
    cr_assert_eq(cfg.map_size, 2ULL << 30);
    cr_assert_eq(cfg.dedup_window_ms, 90 * 60 * 1000LL);
    cr_assert_eq(cfg.max_backlog, 1000);
    cr_assert_eq(cfg.commit_max_bytes, 1 << 20);
    evbus__config_free(&cfg);
}

typedef struct bad_case {
    char yaml[256];
    char expect[160]; /* must appear in the error text */
} bad_case;

ParameterizedTestParameters(config, bad_files_name_line_and_key) {
    static bad_case cases[] = {
        {"storage:\n  map_sise: 1GiB\n", "evbus.yaml:2:3: storage.map_sise: unknown key"},
        {"ingest:\n  max_event_size: huge\n",
         "evbus.yaml:2:19: ingest.max_event_size: expected a size"},
        {"storage:\n  dedup_window: 10\n", "storage.dedup_window: expected a duration"},
        {"storage:\n  dedup_window: 1ms\n", "storage.dedup_window: 1ms is out of range"},
        {"log_level: loud\n", "log_level: expected one of error, warn, info, debug"},
        {"region: a\nregion: b\n", "evbus.yaml:2:1: region: key given twice"},
        {"ingest: [1, 2]\n", "ingest: expected a mapping"},
        {"ingest:\n  listen: [\"http://x\"]\n", "is not a tcp:// or ipc:// endpoint"},
        {"ingest:\n  listen: [a\n", "invalid YAML"},
        {"- just\n- a list\n", "(top level): expected a mapping"},
        {"ingest:\n  max_request_bytes: 1MiB\n  max_event_size: 2MiB\n",
         "max_event_size (2097152) is larger than ingest.max_request_bytes"},
        {"storage:\n  map_size: 5\n", "storage.map_size: 5 is out of range"},

        {"rules:\n  - name: r\n    targets: [t]\n",
         "evbus.yaml:2:5: rules[0]: missing required key 'pattern'"},
        {"targets:\n  - name: t\nrules:\n  - name: r\n    pattern: {a: [1]}\n    targets: [u]\n",
         "evbus.yaml:4: rules[0] (r): target 'u' is not defined"},
        {"targets:\n  - name: t\n  - name: t\n", "evbus.yaml:3: targets[1]: target name 't' is "
                                                 "used twice"},
        {"rules: {name: r}\n", "rules: expected a list"},
        {"rules:\n  - just a string\n", "rules[0]: expected a mapping"},
        {"targets:\n  - name: t\n    plugn: sqs\n",
         "targets[0].plugn: unknown key (known here: name, plugin"},
        {"routing:\n  catch_all_target: nowhere\n", "routing.catch_all_target: target 'nowhere'"},
        {"targets:\n  - name: t\nrules:\n  - name: r\n    pattern: &a [*a]\n    targets: [t]\n",
         "rules[0].pattern: cannot be written as JSON"},
    };
    return cr_make_param_array(bad_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(bad_case *c, config, bad_files_name_line_and_key) {
    evbus__config cfg;
    char err[2048];
    evbus__config_defaults(&cfg);
    evbus_err rc = evbus__config_load(&cfg, write_file(c->yaml), err, sizeof err);
    cr_assert_eq(rc, EVBUS_ECONFIG, "accepted:\n%s", c->yaml);
    cr_assert(strstr(err, c->expect), "error for\n%s\nwas: %s\nwanted: %s", c->yaml, err,
              c->expect);
    cr_assert(strstr(err, "evbus.yaml"), "error must name the file: %s", err);
    evbus__config_free(&cfg);
}

Test(config, reports_every_problem_not_just_the_first) {
    evbus__config cfg;
    char err[2048];
    evbus__config_defaults(&cfg);
    evbus__config_load(&cfg, write_file("colour: red\nstorage:\n  map_size: big\n"), err,
                       sizeof err);
    cr_assert(strstr(err, ":1:1: colour: unknown key"), "%s", err);
    cr_assert(strstr(err, ":3:13: storage.map_size"), "%s", err);
    evbus__config_free(&cfg);
}

Test(config, missing_file_is_an_io_error) {
    evbus__config cfg;
    char err[512];
    evbus__config_defaults(&cfg);
    cr_assert_eq(evbus__config_load(&cfg, "/nonexistent/evbus.yaml", err, sizeof err), EVBUS_EIO);
    cr_assert(strstr(err, "/nonexistent/evbus.yaml: cannot open"), "%s", err);
    evbus__config_free(&cfg);
}

Test(config, size_and_duration_parsers) {
    uint64_t v;
    int64_t ms;
    cr_assert_eq(evbus__cfg_parse_size("512KiB", &v), 0);
    cr_assert_eq(v, 512 * 1024);
    cr_assert_eq(evbus__cfg_parse_size("3 MB", &v), 0);
    cr_assert_eq(v, 3000000);
    cr_assert_neq(evbus__cfg_parse_size("99999999999999TiB", &v), 0, "overflow is an error");
    cr_assert_neq(evbus__cfg_parse_size("-1", &v), 0);
    cr_assert_eq(evbus__cfg_parse_duration("250ms", &ms), 0);
    cr_assert_eq(ms, 250);
    cr_assert_eq(evbus__cfg_parse_duration("7d", &ms), 0);
    cr_assert_eq(ms, 7 * 86400000LL);
    cr_assert_neq(evbus__cfg_parse_duration("7 days", &ms), 0);
}

Test(config, rules_and_targets_with_patterns_as_yaml_or_json) {
    evbus__config cfg;
    char err[2048];
    evbus__config_defaults(&cfg);
    const char *path = write_file("targets:\n"
                                  "  - name: orders-queue\n"
                                  "  - name: audit\n"
                                  "rules:\n"
                                  "  - name: big-orders\n"
                                  "    pattern:\n"
                                  "      source: [com.example.orders]\n"
                                  "      detail:\n"
                                  "        amount: [{numeric: ['>', 100]}]\n"
                                  "        code: ['007', 7, true, null, \"12\"]\n"
                                  "    targets: [orders-queue, audit]\n"
                                  "  - name: as-json\n"
                                  "    pattern: '{\"source\": [\"x\"]}'\n"
                                  "    targets: audit\n"
                                  "    enabled: false\n"
                                  "routing:\n"
                                  "  catch_all_target: audit\n");
    cr_assert_eq(evbus__config_load(&cfg, path, err, sizeof err), EVBUS_OK, "%s", err);
    cr_assert_eq(cfg.targets.n, 2);
    cr_assert_str_eq(evbus__config_target(&cfg, 1)->name, "audit");
    cr_assert_eq(cfg.rules.n, 2);
    const evbus__rule_cfg *r = evbus__config_rule(&cfg, 0);
    cr_assert_str_eq(r->name, "big-orders");
    cr_assert_str_eq(r->pattern,
                     "{\"source\":[\"com.example.orders\"],\"detail\":{\"amount\":[{\"numeric\":"
                     "[\">\",100]}],\"code\":[\"007\",7,true,null,\"12\"]}}");
    cr_assert(r->enabled, "rules are enabled by default");
    cr_assert_eq(r->targets.n, 2);
    cr_assert_eq(cfg.rules.lines[0], 5);
    const evbus__rule_cfg *j = evbus__config_rule(&cfg, 1);
    cr_assert_str_eq(j->pattern, "{\"source\": [\"x\"]}");
    cr_assert_not(j->enabled);
    cr_assert_str_eq(cfg.catch_all_target, "audit");
    cr_assert_eq(evbus__config_target_index(&cfg, "orders-queue"), 0);
    cr_assert_eq(evbus__config_target_index(&cfg, "nope"), -1);
    evbus__config_free(&cfg);
}
