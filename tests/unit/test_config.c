/* The configuration loader: defaults, and errors that name file, line and key. */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <netdb.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
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
        {"ingest:\n  listen: [\"http://x\"]\n",
         "evbus.yaml:2:12: ingest.listen[0]: 'http://x' is not a tcp:// or ipc:// endpoint"},
        {"ingest:\n  listen: [a\n", "invalid YAML"},
        {"- just\n- a list\n", "(top level): expected a mapping"},
        {"ingest:\n  max_request_bytes: 1MiB\n  max_event_size: 2MiB\n",
         "evbus.yaml:3:19: ingest.max_event_size: 2097152 is larger than "
         "ingest.max_request_bytes (1048576)"},
        {"storage:\n  map_size: 5\n", "storage.map_size: 5 is out of range"},

        {"rules:\n  - name: r\n    targets: [t]\n",
         "evbus.yaml:2:5: rules[0]: missing required key 'pattern'"},
        {"targets:\n  - name: t\nrules:\n  - name: r\n    pattern: {a: [1]}\n    targets: [u]\n",
         "evbus.yaml:6:15: rules[0].targets[0]: target 'u' is not defined"},
        {"targets:\n  - name: t\n  - name: t\n",
         "evbus.yaml:3:11: targets[1].name: target name 't' is used twice"},
        {"rules: {name: r}\n", "rules: expected a list"},
        {"rules:\n  - just a string\n", "rules[0]: expected a mapping"},
        {"targets:\n  - name: t\n    plugn: sqs\n",
         "targets[0].plugn: unknown key (known here: name, plugin"},
        {"routing:\n  catch_all_target: nowhere\n",
         "evbus.yaml:2:21: routing.catch_all_target: target 'nowhere'"},
        {"metrics:\n  listen: localhost:80\n",
         "evbus.yaml:2:11: metrics.listen: the host must be an IPv4 address"},
        {"metrics:\n  listen: 127.0.0.1:http\n",
         "evbus.yaml:2:11: metrics.listen: the port must be a number"},
        {"control:\n  listen: inproc://x\n",
         "evbus.yaml:2:11: control.listen: 'inproc://x' is not a tcp:// or ipc://"},
        {"ingest:\n  listen: []\n",
         "evbus.yaml:2:11: ingest.listen: at least one endpoint is needed"},
        {"targets:\n  - name: t\n    retry_base_delay: 2m\n    retry_max_delay: 1m\n",
         "evbus.yaml:3:23: targets[0].retry_base_delay: is longer than retry_max_delay"},
        {"targets:\n  - name: t\nrules:\n  - name: r\n    pattern: &a [*a]\n    targets: [t]\n",
         "rules[0].pattern: cannot be written as JSON"},
        {"targets:\n  - name: t\n    config:\n      a: 1\n      a: 2\n",
         "evbus.yaml:5:7: targets[0].config.a: key given twice in the same mapping"},

        /* Endpoints that --check-config used to pass and evbusd could not use
         * (99999 bound port 34463: libzmq takes it modulo 65536). */
        {"ingest:\n  listen: [tcp://127.0.0.1:99999]\n",
         "evbus.yaml:2:12: ingest.listen[0]: the port of 'tcp://127.0.0.1:99999' must be a "
         "number from 1 to 65535"},
        {"ingest:\n  listen: [tcp://127.0.0.1:http]\n",
         "evbus.yaml:2:12: ingest.listen[0]: the port of 'tcp://127.0.0.1:http' must be"},
        {"ingest:\n  listen: [tcp://127.0.0.1]\n",
         "evbus.yaml:2:12: ingest.listen[0]: expected tcp://HOST:PORT"},
        {"control:\n  listen: tcp://127.0.0.1:*\n",
         "evbus.yaml:2:11: control.listen: 'tcp://127.0.0.1:*' asks for any free port"},
        {"ingest:\n  listen: [ipc:///tmp/"
         "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
         "aaaaaaaaaaaaaaaaaaaa.sock]\n",
         "evbus.yaml:2:12: ingest.listen[0]: the path of ipc:///tmp/aaaa"},
        {"ingest:\n  listen: [ipc:///nonexistent/dir/x.sock]\n",
         "evbus.yaml:2:12: ingest.listen[0]: cannot bind ipc:///nonexistent/dir/x.sock: directory "
         "/nonexistent/dir: No such file or directory"},
        /* One missing level is made at start-up (/run/evbus before systemd's
         * RuntimeDirectory exists); two are a mistake. */
        {"control:\n  listen: ipc:///nonexistent/dir/c.sock\n",
         "evbus.yaml:2:11: control.listen: cannot bind ipc:///nonexistent/dir/c.sock: directory"},
        /* Rules that route nowhere, or twice to the same place. */
        {"targets:\n  - name: a\nrules:\n  - name: r\n    pattern: {source: [x]}\n"
         "    targets: [a, a]\n",
         "evbus.yaml:6:18: rules[0].targets[1]: target 'a' is listed twice (first as targets[0])"},
        {"targets:\n  - name: a\nrules:\n  - name: r\n    pattern: {source: [x]}\n"
         "    targets: []\n",
         "evbus.yaml:6:14: rules[0].targets: lists no target (rule 'r')"},
        /* Files named by the configuration, with the key that names them. */
        {"targets:\n  - name: a\n    plugin: /nonexistent.so\n",
         "evbus.yaml:3:13: targets[0].plugin: cannot open /nonexistent.so: No such file"},
        {"ingest:\n  curve:\n    secret_key: /nonexistent.key\n"
         "    authorized_keys: /nonexistent.keys\n",
         "evbus.yaml:3:17: ingest.curve.secret_key: cannot open /nonexistent.key: No such file or "
         "directory"},
        {"ingest:\n  curve:\n    secret_key: /nonexistent.key\n",
         "evbus.yaml:3:17: ingest.curve.secret_key: is set but ingest.curve.authorized_keys is "
         "not"},
        /* The listener policy, with the listener's place. */
        {"ingest:\n  listen: [tcp://0.0.0.0:5555]\n",
         "evbus.yaml:2:12: ingest.listen[0]: tcp://0.0.0.0:5555 can be reached from other"},

        /* Regions. */
        {"regions:\n  - name: us-east-1\ntargets:\n  - name: t\n    regions:\n      us-west-9: "
         "{}\n",
         "evbus.yaml:6:7: targets[0].regions.us-west-9: region 'us-west-9' is not listed under "
         "the top-level regions: (listed: us-east-1)"},
        {"region: eu-west-1\ntargets:\n  - name: t\n    regions:\n      us-east-1: {}\n",
         "evbus.yaml:5:7: targets[0].regions.us-east-1: region 'us-east-1' is not this router's "
         "region ('eu-west-1')"},
        {"regions:\n  - name: us-east-1\n  - name: us-east-1\n",
         "evbus.yaml:3:11: regions[1].name: region 'us-east-1' is listed twice (first as "
         "regions[0], line 2)"},
        {"regions:\n  - name: US_East\n",
         "evbus.yaml:2:11: regions[0].name: 'US_East' is not a region name"},
        {"regions:\n  - name: -x\n", "evbus.yaml:2:11: regions[0].name: '-x' is not a region"},
        {"regions:\n  - name: \"\"\n",
         "evbus.yaml:2:11: regions[0].name: expected a non-empty string"},
        {"regions: []\n", "evbus.yaml:1:10: regions: lists no region"},
        {"regions:\n  - nam: x\n", "evbus.yaml:2:5: regions[0]: missing required key 'name'"},
        {"regions: us-east-1\n", "evbus.yaml:1:10: regions: expected a list"},
        {"targets:\n  - name: t\n    regions: {}\n",
         "evbus.yaml:3:14: targets[0].regions: names no region (target 't')"},
        {"regions:\n  - name: a\ntargets:\n  - name: t\n    regions:\n      a: {}\n      a: {}\n",
         "evbus.yaml:7:7: targets[0].regions.a: key given twice in the same mapping"},
        {"regions:\n  - name: a\ntargets:\n  - name: t\n    regions:\n      a: [1]\n",
         "evbus.yaml:6:10: targets[0].regions.a: expected a mapping of keys"},
        {"targets:\n  - name: t\n    regions: [local]\n",
         "evbus.yaml:3:14: targets[0].regions: expected a mapping of names to mappings"},
        /* calculated health checks */
        {"regions:\n  - name: a\n    health_check: {calculated: {at_least: 1}}\n",
         "regions[0].health_check.calculated.checks: names no child check (region 'a')"},
        {"regions:\n  - name: a\n    health_check: {url: \"http://h/\", calculated: {checks: "
         "[{url: \"tcp://h:1\"}]}}\n",
         "evbus.yaml:3:25: regions[0].health_check: a calculated check has no url"},
        {"regions:\n  - name: a\n    health_check: {calculated: {checks: [{url: \"http://h/\"}, "
         "{timeout: 1s}]}}\n",
         "evbus.yaml:3:62: regions[0].health_check.calculated.checks[1].url: missing"},
        {"regions:\n  - name: a\n    health_check: {calculated: {at_least: 257, checks: [{url: "
         "\"http://h/\"}]}}\n",
         "regions[0].health_check.calculated.at_least"},
        {"regions:\n  - name: a\n    health_check: {calculated: {checks: [{url: \"tcp://h:1\", "
         "calculated: {}}]}}\n",
         "regions[0].health_check.calculated.checks[0]"},
        /* A timeout given is kept, and one too long for the interval refused
         * where it is written, even when a child inherits it. */
        {"regions:\n  - name: a\n    health_check: {url: \"http://h/\", interval: 1s, timeout: "
         "1s}\n",
         "evbus.yaml:3:61: regions[0].health_check.timeout: 1000ms is not shorter than the "
         "interval (1000ms); leave timeout out for the default"},
        {"regions:\n  - name: a\n    health_check:\n      timeout: 1500ms\n      calculated:\n"
         "        checks:\n          - {url: \"http://h/\", interval: 1s}\n",
         "evbus.yaml:4:16: regions[0].health_check.calculated.checks[0].timeout: 1500ms is not "
         "shorter than the interval (1000ms): it is the calculated check's"},
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

/* Files with several problems of different kinds: every one is reported,
 * once, with file:line:col and its key, in one run. */
typedef struct many_case {
    char yaml[640];
    char expect[10][128]; /* each must appear; as many lines as there are */
} many_case;

ParameterizedTestParameters(config, every_problem_is_reported_at_once) {
    static many_case cases[] = {
        /* Several refused patterns: the matcher stops at the first. */
        {"targets:\n"
         "  - name: t\n"
         "rules:\n"
         "  - name: a\n"
         "    pattern: {source: a}\n"
         "    targets: [t]\n"
         "  - name: b\n"
         "    pattern: {detail: {n: [{numeric: ['>', 'x']}]}}\n"
         "    targets: [t]\n"
         "  - name: c\n"
         "    pattern: {source: [fine]}\n"
         "    targets: [t]\n"
         "  - name: d\n"
         "    pattern: '{\"source\": [\"x\"], \"detail\": []}'\n"
         "    targets: [t]\n",
         {"evbus.yaml:5:14: rules[0] (a): pattern.source: ",
          "evbus.yaml:8:14: rules[1] (b): pattern.detail.n[0].numeric",
          "evbus.yaml:14:14: rules[3] (d): pattern.detail: "}},
        /* An undefined target and a refused pattern in the same rule. */
        {"targets:\n"
         "  - name: t\n"
         "rules:\n"
         "  - name: a\n"
         "    pattern: {source: a}\n"
         "    targets: [t, nowhere]\n",
         {"evbus.yaml:6:18: rules[0].targets[1]: target 'nowhere' is not defined",
          "evbus.yaml:5:14: rules[0] (a): pattern.source: "}},
        /* A repeated target name and an unknown catch-all target. */
        {"targets:\n"
         "  - name: t\n"
         "  - name: t\n"
         "routing:\n"
         "  catch_all_target: nope\n",
         {"evbus.yaml:3:11: targets[1].name: target name 't' is used twice",
          "evbus.yaml:5:21: routing.catch_all_target: target 'nope' is not defined"}},
        /* Schema errors do not hide the checks across keys. */
        {"ingest:\n"
         "  listen: [tcp://127.0.0.1:1, \"udp://x\"]\n"
         "  max_event_siz: 1KiB\n"
         "storage:\n"
         "  map_size: tiny\n"
         "rules:\n"
         "  - name: r\n"
         "    pattern: {source: [a]}\n"
         "    targets: [ghost]\n"
         "  - name: r\n"
         "    pattern: '{\"source\": \"x\"}'\n"
         "    targets: ghost2\n"
         "  - pattern: {source: [b]}\n"
         "metrics:\n"
         "  listen: 1.2.3.4\n",
         {"evbus.yaml:2:31: ingest.listen[1]: 'udp://x' is not a tcp:// or ipc:// endpoint",
          "evbus.yaml:3:3: ingest.max_event_siz: unknown key",
          "evbus.yaml:5:13: storage.map_size: expected a size",
          "evbus.yaml:9:15: rules[0].targets[0]: target 'ghost' is not defined",
          "evbus.yaml:10:11: rules[1].name: rule name 'r' is used twice",
          "evbus.yaml:11:14: rules[1] (r): pattern.source: ",
          "evbus.yaml:12:14: rules[1].targets[0]: target 'ghost2' is not defined",
          "evbus.yaml:13:5: rules[2]: missing required key 'name'",
          "evbus.yaml:13:5: rules[2]: missing required key 'targets'",
          "evbus.yaml:15:11: metrics.listen: expected HOST:PORT"}},
        /* The listener policy, missing files, rules' target lists and several
         * problems of one pattern, besides the schema's errors. */
        {"log_levle: info\n"
         "ingest:\n"
         "  listen: [tcp://127.0.0.1:99999, tcp://0.0.0.0:5555]\n"
         "targets:\n"
         "  - name: a\n"
         "    plugin: /nonexistent.so\n"
         "rules:\n"
         "  - name: r\n"
         "    pattern: {source: [{prefix: 5}], x: [{cidr: \"10.0.0.0/33\"}]}\n"
         "    targets: [a, a]\n"
         "  - name: r2\n"
         "    pattern: {source: [x]}\n"
         "    targets: []\n"
         "metrics:\n"
         "  listen: 0.0.0.0:9464\n"
         "control:\n"
         "  listen: tcp://0.0.0.0:7000\n",
         {"evbus.yaml:1:1: log_levle: unknown key",
          "evbus.yaml:3:12: ingest.listen[0]: the port of 'tcp://127.0.0.1:99999'",
          "evbus.yaml:3:35: ingest.listen[1]: tcp://0.0.0.0:5555 can be reached",
          "evbus.yaml:6:13: targets[0].plugin: cannot open /nonexistent.so",
          "evbus.yaml:9:14: rules[0] (r): pattern.source[0].prefix: ",
          "evbus.yaml:9:14: rules[0] (r): pattern.x[0].cidr: ",
          "evbus.yaml:10:18: rules[0].targets[1]: target 'a' is listed twice",
          "evbus.yaml:13:14: rules[1].targets: lists no target",
          "evbus.yaml:15:11: metrics.listen: 0.0.0.0:9464 can be reached",
          "evbus.yaml:17:11: control.listen: tcp://0.0.0.0:7000 can be reached"}},
        /* Region problems in the list and in several targets. */
        {"regions:\n"
         "  - name: us-east-1\n"
         "  - name: us-east-1\n"
         "  - name: Bad\n"
         "targets:\n"
         "  - name: a\n"
         "    regions:\n"
         "      eu-west-1: {}\n"
         "  - name: b\n"
         "    regions: {us-east-1: {}, mars-1: {}}\n",
         {"evbus.yaml:3:11: regions[1].name: region 'us-east-1' is listed twice (first as "
          "regions[0], line 2)",
          "evbus.yaml:4:11: regions[2].name: 'Bad' is not a region name",
          "evbus.yaml:8:7: targets[0].regions.eu-west-1: region 'eu-west-1' is not listed",
          "evbus.yaml:10:30: targets[1].regions.mars-1: region 'mars-1' is not listed"}},
    };
    return cr_make_param_array(many_case, cases, sizeof cases / sizeof cases[0]);
}

ParameterizedTest(many_case *c, config, every_problem_is_reported_at_once) {
    evbus__config cfg;
    char err[8192];
    evbus__config_defaults(&cfg);
    cr_assert_eq(evbus__config_load(&cfg, write_file(c->yaml), err, sizeof err), EVBUS_ECONFIG,
                 "accepted:\n%s", c->yaml);
    size_t want = 0;
    for (; want < 10 && c->expect[want][0]; want++)
        cr_expect(strstr(err, c->expect[want]), "error for\n%s\nwas:\n%s\nwanted: %s", c->yaml, err,
                  c->expect[want]);
    size_t lines = 1;
    for (const char *p = err; *p; p++)
        lines += *p == '\n';
    cr_expect_eq(lines, want, "%zu problems reported, %zu wanted:\n%s", lines, want, err);
    evbus__config_free(&cfg);
}

/* A health check without a timeout: Route 53's 2 s, or half the interval
 * when that is shorter, so that `interval: 1s` alone is valid; a
 * calculated check's child without one follows its own interval. */
Test(config, a_health_check_timeout_defaults_from_its_interval) {
    evbus__config cfg;
    char err[2048];
    evbus__config_defaults(&cfg);
    /* A selector by path: loading the configuration does not look for it. */
    const char *yaml = "selector: ./selector.so\n"
                       "regions:\n"
                       "  - name: a\n"
                       "    health_check: {url: \"http://h/\", interval: 1s}\n"
                       "  - name: b\n"
                       "    health_check: {url: \"http://h/\", interval: 3s}\n"
                       "  - name: c\n"
                       "    health_check: {url: \"http://h/\"}\n"
                       "  - name: d\n"
                       "    health_check: {url: \"http://h/\", interval: 1s, timeout: 300ms}\n"
                       "  - name: e\n"
                       "    health_check:\n"
                       "      interval: 1s\n"
                       "      calculated:\n"
                       "        checks:\n"
                       "          - {url: \"http://h/\"}\n"
                       "          - {url: \"tcp://h:1\", interval: 10s}\n";
    cr_assert_eq(evbus__config_load(&cfg, write_file(yaml), err, sizeof err), EVBUS_OK, "%s", err);
    const int64_t want[] = {500, 1500, 2000, 300, 500};
    for (size_t i = 0; i < 5; i++)
        cr_expect_eq(evbus__config_region(&cfg, i)->check_timeout_ms, want[i],
                     "region %zu: timeout %lld ms, wanted %lld", i,
                     (long long)evbus__config_region(&cfg, i)->check_timeout_ms,
                     (long long)want[i]);
    const evbus__region_cfg *e = evbus__config_region(&cfg, 4);
    cr_assert_eq(e->calc_checks.n, 2);
    cr_expect_eq(((const evbus__region_cfg *)e->calc_checks.v)[0].check_timeout_ms, 500);
    cr_expect_eq(((const evbus__region_cfg *)e->calc_checks.v)[1].check_timeout_ms, 2000);
    evbus__config_free(&cfg);
}

/* `*` (or 0) asks ZeroMQ for any free port: evbusd logs the one bound. */
Test(config, ingest_may_listen_on_any_free_port) {
    evbus__config cfg;
    char err[2048];
    evbus__config_defaults(&cfg);
    cr_assert_eq(evbus__config_load(&cfg,
                                    write_file("ingest:\n  listen: [tcp://127.0.0.1:*, "
                                               "tcp://127.0.0.1:0, tcp://127.0.0.1:65535]\n"),
                                    err, sizeof err),
                 EVBUS_OK, "%s", err);
    evbus__config_free(&cfg);
}

/* A listener host libzmq cannot bind used to pass the check and fail only at
 * start-up. `.invalid` never resolves (RFC 6761); where no resolver answers
 * at all the check stays silent by design, and so is this test skipped. */
Test(config, listener_hosts_that_do_not_resolve_are_refused) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM}, *res = NULL;
    int rc = getaddrinfo("nosuch.invalid", NULL, &hints, &res);
    if (res)
        freeaddrinfo(res);
    if (rc != EAI_NONAME)
        cr_skip_test("the resolver gives no definite answer here (%s)", gai_strerror(rc));
    evbus__config cfg;
    char err[2048];
    evbus__config_defaults(&cfg);
    cr_assert_eq(evbus__config_load(&cfg,
                                    write_file("ingest:\n  listen: [tcp://nosuch.invalid:5555]\n"
                                               "control:\n  listen: tcp://[nosuch.invalid]:5556\n"),
                                    err, sizeof err),
                 EVBUS_ECONFIG);
    cr_assert(strstr(err, "evbus.yaml:2:12: ingest.listen[0]: cannot bind "
                          "tcp://nosuch.invalid:5555: 'nosuch.invalid' is neither an address, an "
                          "interface nor a host name that resolves"),
              "%s", err);
    cr_assert(strstr(err, "evbus.yaml:4:11: control.listen: cannot bind "
                          "tcp://[nosuch.invalid]:5556"),
              "%s", err);
    evbus__config_free(&cfg);

    /* What binds: any interface, addresses, an interface name, a name. */
    evbus__config_defaults(&cfg);
    cr_assert_eq(evbus__config_load(&cfg,
                                    write_file("ingest:\n  listen: [\"tcp://*:5555\", "
                                               "\"tcp://[::1]:5556\", tcp://lo:5557, "
                                               "tcp://localhost:5558]\n"
                                               "  allow_unauthenticated: true\n"),
                                    err, sizeof err),
                 EVBUS_OK, "%s", err);
    evbus__config_free(&cfg);
}

/* libyaml's time grows with the square of the nesting (80,000 levels took
 * 12.5 s, a million over 10 minutes): deeper than 64 is refused at once. */
Test(config, deep_nesting_is_refused_quickly) {
    static const struct {
        const char *open, *close, *where;
    } shapes[] = {
        {"[", "]", "evbus.yaml:3:75: rules[0].pattern[0][0]"},
        {"{a: ", "}", "evbus.yaml:3:258: rules[0].pattern.a.a.a"},
    };
    for (size_t s = 0; s < sizeof shapes / sizeof shapes[0]; s++) {
        size_t levels = 1000000, lo = strlen(shapes[s].open), lc = strlen(shapes[s].close);
        char *yaml = malloc(64 + levels * (lo + lc));
        cr_assert_not_null(yaml);
        size_t n = (size_t)sprintf(yaml, "rules:\n  - name: r\n    pattern: ");
        for (size_t i = 0; i < levels; i++, n += lo)
            memcpy(yaml + n, shapes[s].open, lo);
        for (size_t i = 0; i < levels; i++, n += lc)
            memcpy(yaml + n, shapes[s].close, lc);
        strcpy(yaml + n, "\n");
        const char *path = write_file(yaml);
        free(yaml);
        evbus__config cfg;
        char err[2048];
        evbus__config_defaults(&cfg);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        cr_assert_eq(evbus__config_load(&cfg, path, err, sizeof err), EVBUS_ECONFIG);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        double secs = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
        cr_assert(strstr(err, shapes[s].where), "%s", err);
        cr_assert(strstr(err, ": nested deeper than 64 levels"), "%s", err);
        cr_assert_lt(secs, 2.0, "a million levels took %.1f s", secs);
        evbus__config_free(&cfg);
    }
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
