/* Routing at ingest: each accepted event gets one pending entry per target
 * its rules chose, written in the same commit; unmatched events go to the
 * catch-all target; a bad pattern stops start-up with a clear message. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "evbus/evbus.h"
#include "harness.h"
#include "store.h"

static harness h;
static evbus_client_t *client;

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
}

TestSuite(routing, .fini = stop, .timeout = 60);

static const char RULES[] = "targets:\n"
                            "  - name: orders\n"
                            "  - name: big-orders\n"
                            "  - name: audit\n"
                            "rules:\n"
                            "  - name: all-orders\n"
                            "    pattern: {source: [com.example.orders]}\n"
                            "    targets: [orders]\n"
                            "  - name: big\n"
                            "    pattern:\n"
                            "      source: [com.example.orders]\n"
                            "      detail: {amount: [{numeric: ['>=', 100]}]}\n"
                            "    targets: [big-orders, orders]\n"
                            "  - name: off\n"
                            "    pattern: {source: [{prefix: ''}]}\n"
                            "    targets: [big-orders]\n"
                            "    enabled: false\n"
                            "routing:\n"
                            "  catch_all_target: audit\n";

typedef struct seqs {
    uint64_t v[64];
    size_t n;
} seqs;

static int collect(void *arg, uint64_t seq) {
    seqs *s = arg;
    if (s->n < 64)
        s->v[s->n++] = seq;
    return 0;
}

static int has(const seqs *s, uint64_t seq) {
    for (size_t i = 0; i < s->n; i++)
        if (s->v[i] == seq)
            return 1;
    return 0;
}

Test(routing, pending_entries_follow_the_rules) {
    harness_init(&h, RULES);
    cr_assert(harness_start(&h), "log: %s", h.log);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 10000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
    evbus_event evs[4] = {
        {.id = "small",
         .source = "com.example.orders",
         .detail_type = "Placed",
         .detail = "{\"amount\": 5}"},
        {.id = "big",
         .source = "com.example.orders",
         .detail_type = "Placed",
         .detail = "{\"amount\": 250.5, \"items\": [1, 2]}"},
        {.id = "other", .source = "com.example.users", .detail_type = "SignedUp", .detail = "{}"},
        {.id = "small",
         .source = "com.example.orders",
         .detail_type = "Placed",
         .detail = "{\"amount\": 5}"},
    };
    evbus_ack acks[4];
    cr_assert_eq(evbus_publish(client, evs, 4, acks), EVBUS_OK);
    for (int i = 0; i < 3; i++)
        cr_assert_eq(acks[i].status, EVBUS_ACK_ACCEPTED, "event %d: %s", i, acks[i].reason);
    cr_assert_eq(acks[3].status, EVBUS_ACK_DUPLICATE);
    cr_assert_eq(harness_stop(&h), 0);

    char data[300], err[512];
    snprintf(data, sizeof data, "%s/data", h.dir);
    evbus__store *store;
    cr_assert_eq(evbus__store_open(data, 256 << 20, &store, err, sizeof err), EVBUS_OK, "%s", err);
    seqs orders = {0}, big = {0}, audit = {0};
    evbus__store_foreach_pending(store, 0, 0, collect, &orders);
    evbus__store_foreach_pending(store, 1, 0, collect, &big);
    evbus__store_foreach_pending(store, 2, 0, collect, &audit);
    evbus__store_close(&store);
    uint64_t small_seq = acks[0].sequence, big_seq = acks[1].sequence, other_seq = acks[2].sequence;
    cr_assert_eq(orders.n, 2, "both orders go to 'orders' once each");
    cr_assert(has(&orders, small_seq) && has(&orders, big_seq));
    cr_assert_eq(big.n, 1, "only the big order goes to 'big-orders' (the disabled rule is off)");
    cr_assert(has(&big, big_seq));
    cr_assert_eq(audit.n, 1, "the unmatched event goes to the catch-all");
    cr_assert(has(&audit, other_seq));
}

Test(routing, invalid_pattern_stops_startup_naming_rule_and_line) {
    harness_init(&h, "targets:\n"
                     "  - name: t\n"
                     "rules:\n"
                     "  - name: fine\n"
                     "    pattern: {source: [a]}\n"
                     "    targets: [t]\n"
                     "  - name: broken\n"
                     "    pattern: {detail: {amount: [{numeric: ['>', 'ten']}]}}\n"
                     "    targets: [t]\n");
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' --check-config --config '%s' 2>&1", harness_bin("evbusd"),
             h.config);
    int rc = harness_run(cmd, out, sizeof out);
    cr_assert_eq(rc, 1, "output: %s", out);
    cr_assert(strstr(out, "evbus.yaml:16:14: rules[1] (broken): pattern.detail.amount[0].numeric"),
              "must name the line and column: %s", out);
    cr_assert(strstr(out, "broken"), "must name the rule: %s", out);
    cr_assert(strstr(out, "numeric"), "must name the path: %s", out);
    cr_assert_not(harness_start(&h), "evbusd must refuse to start");
}

Test(routing, evbus_test_pattern_command_answers_like_grep) {
    struct {
        const char *pattern, *event;
        int status;
        const char *first_line;
    } cases[] = {
        {"{\"source\":[\"a\"]}", "{\"source\":\"a\",\"detail\":{}}", 0, "match\n"},
        {"{\"detail\":{\"n\":[{\"numeric\":[\">\",5]}]}}",
         "{\"source\":\"a\",\"detail\":{\"n\":3}}", 1, "no match\ndetail.n"},
        {"{\"source\":\"a\"}", "{\"source\":\"a\"}", 2, "invalid pattern\n"},
    };
    harness_init(&h, NULL);
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char cmd[1024], out[1024];
        snprintf(cmd, sizeof cmd, "'%s' test-pattern '%s' '%s' 2>&1", harness_bin("evbus"),
                 cases[i].pattern, cases[i].event);
        int rc = harness_run(cmd, out, sizeof out);
        cr_assert_eq(rc, cases[i].status, "%s: %s", cases[i].pattern, out);
        cr_assert_eq(strncmp(out, cases[i].first_line, strlen(cases[i].first_line)), 0, "%s: %s",
                     cases[i].pattern, out);
    }
}
