/* Audit events: every routing-control change and application-state
 * transition is accepted as an event with source evbus.region and routed
 * by the rules like any other. A rule on that source sends them to the
 * example JSONL sink; the test reads each envelope back and checks what
 * changed, from, to, by whom and why. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "two_regions.h"

TestSuite(region_audit, .fini = tr_stop, .timeout = 120);

/* The audit target (no regions:) and its rule, next to the fixture's
 * `orders`; `extra` at the top level (may be NULL). */
static void start_audited_full(const char *target_extra, const char *extra, bool checks) {
    char targets[512];
    snprintf(targets, sizeof targets,
             "  - name: audit\n"
             "    plugin: %s/evbus_sink_jsonl.so\n"
             "    config: {path: \"@DIR@/audit.jsonl\"}\n",
             getenv("EVBUS_EXAMPLES_DIR"));
    tr_start_full(target_extra, extra, checks, targets,
                  "  - name: audit\n"
                  "    pattern: {source: [evbus.region]}\n"
                  "    targets: [audit]\n");
}

static void start_audited_with(const char *target_extra, bool checks) {
    start_audited_full(target_extra, NULL, checks);
}

static void start_audited(void) {
    start_audited_with(NULL, false);
}

#define ROUTE_CHANGED "Region Route Changed"

/* The envelopes in audit.jsonl, once there are `want` of them: only the
 * selector's route changes when `routes`, else only the operators' changes. */
static json_t *wait_audit_of(size_t want, bool routes) {
    char path[400];
    snprintf(path, sizeof path, "%s/audit.jsonl", tr_h.dir);
    int64_t end = tr_now_ms() + 10000;
    json_t *all = NULL;
    do {
        json_decref(all);
        all = json_array();
        FILE *f = fopen(path, "r");
        char line[8192];
        while (f && fgets(line, sizeof line, f)) {
            json_t *e = json_loads(line, 0, NULL);
            cr_assert_not_null(e, "not JSON: %s", line);
            const char *type = json_string_value(json_object_get(e, "detail-type"));
            if ((type && strcmp(type, ROUTE_CHANGED) == 0) == routes)
                json_array_append_new(all, e);
            else
                json_decref(e);
        }
        if (f)
            fclose(f);
        if (json_array_size(all) >= want)
            return all;
        usleep(20000);
    } while (tr_now_ms() < end);
    cr_assert_fail("%zu audit events, wanted %zu", json_array_size(all), want);
    return NULL;
}

static json_t *wait_audit(size_t want) {
    return wait_audit_of(want, false);
}

typedef struct expect {
    const char *detail_type, *kind, *name, *from, *to, *why;
} expect;

/* `by`: who made the change, in the detail. */
static void check_by(json_t *ev, const expect *x, const char *by) {
    char *text = json_dumps(ev, JSON_COMPACT);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "source")), "evbus.region", "%s", text);
    cr_assert_str_eq(json_string_value(json_object_get(ev, "detail-type")), x->detail_type, "%s",
                     text);
    json_t *d = json_object_get(ev, "detail");
    cr_assert_str_eq(json_string_value(json_object_get(d, x->kind)), x->name, "%s", text);
    cr_assert_str_eq(json_string_value(json_object_get(d, "from")), x->from, "%s", text);
    cr_assert_str_eq(json_string_value(json_object_get(d, "to")), x->to, "%s", text);
    cr_assert_str_eq(json_string_value(json_object_get(d, "why")), x->why, "%s", text);
    cr_assert_str_eq(json_string_value(json_object_get(d, "by")), by, "%s", text);
    const char *at = json_string_value(json_object_get(d, "time"));
    cr_assert(at && strlen(at) == 20 && at[10] == 'T' && at[19] == 'Z', "%s", text);
    free(text);
}

/* An operator's change: by the local control socket's owner (evbusd's own
 * user). */
static void check(json_t *ev, const expect *x) {
    check_by(ev, x, "owner");
}

Test(region_audit, each_control_change_and_state_transition_is_an_event_with_its_detail) {
    start_audited();
    char out[4096];
    cr_assert_eq(tr_cli("region off us-east-1 --reason 'east is degraded'", out, sizeof out), 0,
                 "%s", out);
    cr_assert_eq(tr_cli("region on us-east-1", out, sizeof out), 0, "%s", out);
    cr_assert_eq(tr_cli("region fence -t orders", out, sizeof out), 0, "%s", out);
    cr_assert_eq(tr_cli("region failover -t orders", out, sizeof out), 0, "%s", out);
    cr_assert_eq(tr_cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    /* A refused change is no change: no event. */
    cr_assert_neq(tr_cli("region off us-west-2", out, sizeof out), 0, "%s", out);
    cr_assert_eq(tr_cli("region on us-east-1", out, sizeof out), 0, "%s", out);
    cr_assert_eq(tr_cli("region fence", out, sizeof out), 0, "%s", out);
    cr_assert_eq(tr_cli("region unfence", out, sizeof out), 0, "%s", out);
    const expect want[] = {
        {"Routing Control Changed", "region", "us-east-1", "on", "off",
         "evbus region off us-east-1: east is degraded"},
        {"Routing Control Changed", "region", "us-east-1", "off", "on",
         "evbus region on us-east-1"},
        {"Application State Changed", "target", "orders", "active", "fenced:active",
         "evbus region fence -t orders"},
        {"Application State Changed", "target", "orders", "fenced:active", "failover",
         "evbus region failover -t orders"},
        /* off us-east-1 was allowed (us-west-2 stays on), off us-west-2 refused */
        {"Routing Control Changed", "region", "us-east-1", "on", "off",
         "evbus region off us-east-1"},
        {"Routing Control Changed", "region", "us-east-1", "off", "on",
         "evbus region on us-east-1"},
        {"Application State Changed", "target", "orders", "failover", "fenced:failover",
         "evbus region fence"},
        {"Application State Changed", "target", "orders", "fenced:failover", "failover",
         "evbus region unfence"},
    };
    size_t n = sizeof want / sizeof want[0];
    json_t *all = wait_audit(n);
    /* Delivered in the order they were accepted: one batch at a time here. */
    json_t *ev;
    size_t i;
    json_array_foreach(all, i, ev) {
        cr_assert_lt(i, n, "more audit events than changes");
        check(ev, &want[i]);
    }
    /* And nothing more arrives: each change is one event. */
    usleep(300000);
    json_decref(all);
    all = wait_audit(n);
    cr_assert_eq(json_array_size(all), n);
    json_decref(all);
    /* They are stored events like any other: they survive a restart and
     * are not sent again. */
    cr_assert_eq(harness_stop(&tr_h), 0);
    cr_assert(harness_start(&tr_h), "log: %s", tr_h.log);
    cr_assert_eq(tr_cli("region off us-west-2", out, sizeof out), 0, "%s", out);
    all = wait_audit(n + 1);
    cr_assert_eq(json_array_size(all), n + 1);
    check(json_array_get(all, n), &(expect){"Routing Control Changed", "region", "us-west-2", "on",
                                            "off", "evbus region off us-west-2"});
    json_decref(all);
}

/* The selector's own decisions are audited too: an automatic failover and
 * the failback after it are each an event, "by" the selector, with the
 * target, the regions from and to, and why; committed with the route change
 * through the same path as the operators' (so durable together). */
Test(region_audit, automatic_failover_and_failback_are_events_by_the_selector) {
    start_audited_with("    failback_hold: 0s\n", true);
    tr_wait_status("us-east-1        on       healthy");
    tr_publish_expecting(2, "us-east-1");
    atomic_store(&tr_east.healthy, 0);
    tr_publish_until("us-west-2", tr_now_ms());
    json_t *all = wait_audit_of(1, true);
    check_by(json_array_get(all, 0),
             &(expect){ROUTE_CHANGED, "target", "orders", "us-east-1", "us-west-2",
                       "us-east-1 is unhealthy"},
             "selector:region-health");
    json_decref(all);
    atomic_store(&tr_east.healthy, 1);
    tr_publish_until("us-east-1", tr_now_ms());
    all = wait_audit_of(2, true);
    check_by(json_array_get(all, 1),
             &(expect){ROUTE_CHANGED, "target", "orders", "us-west-2", "us-east-1",
                       "failback: us-east-1 is healthy"},
             "selector:region-health");
    json_decref(all);
    /* No operator changed anything: no other audit event. */
    all = wait_audit_of(0, false);
    cr_assert_eq(json_array_size(all), 0);
    json_decref(all);
    tr_assert_none_lost();
}

/* A route change an operator asked for is the operator's, like the change
 * that asked for it: a manual failback, traffic leaving a region switched
 * off. It is "by" the operator and "via" the selector that moved it; what
 * the selector does on its own stays "by" the selector. */
Test(region_audit, a_route_change_an_operator_asked_for_is_by_the_operator) {
    start_audited_with("    failback: manual\n    failback_hold: 0s\n", true);
    tr_fail_over_and_recover();
    char out[4096];
    cr_assert_eq(tr_cli("region fence -t orders", out, sizeof out), 0, "%s", out);
    cr_assert_eq(tr_cli("region failback -t orders", out, sizeof out), 0, "%s", out);
    tr_publish_until("us-east-1", tr_now_ms());
    cr_assert_eq(tr_cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    tr_publish_until("us-west-2", tr_now_ms());
    json_t *all = wait_audit_of(3, true);
    cr_assert_eq(json_array_size(all), 3);
    check_by(json_array_get(all, 0),
             &(expect){ROUTE_CHANGED, "target", "orders", "us-east-1", "us-west-2",
                       "us-east-1 is unhealthy"},
             "selector:region-health");
    cr_assert_null(json_object_get(json_object_get(json_array_get(all, 0), "detail"), "via"));
    const expect asked[] = {
        {ROUTE_CHANGED, "target", "orders", "us-west-2", "us-east-1",
         "failback: us-east-1 is healthy (asked by an operator)"},
        {ROUTE_CHANGED, "target", "orders", "us-east-1", "us-west-2", "us-east-1 is switched off"},
    };
    for (size_t i = 0; i < 2; i++) {
        json_t *ev = json_array_get(all, i + 1);
        check(ev, &asked[i]);
        cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ev, "detail"), "via")),
                         "selector:region-health");
    }
    json_decref(all);
    tr_assert_none_lost();
}

/* A failback an operator asked for, stored but not yet applied when evbusd
 * stopped (the state written while it is stopped, as a crash between the
 * two commits leaves it), is applied at the next start: its route change is
 * still the operator's, who is stored with the request. */
Test(region_audit, a_failback_applied_after_a_restart_is_still_by_the_operator) {
    start_audited_with("    failback: manual\n    failback_hold: 0s\n", true);
    tr_fail_over_and_recover();
    json_t *all = wait_audit_of(1, true);
    json_decref(all);
    tr_restart_with_state("failback/orders", "1700000000000 by operator:alice");
    tr_publish_until("us-east-1", tr_now_ms());
    all = wait_audit_of(2, true);
    json_t *ev = json_array_get(all, 1);
    check_by(ev,
             &(expect){ROUTE_CHANGED, "target", "orders", "us-west-2", "us-east-1",
                       "failback: us-east-1 is healthy (asked by an operator)"},
             "operator:alice");
    cr_assert_str_eq(json_string_value(json_object_get(json_object_get(ev, "detail"), "via")),
                     "selector:region-health");
    json_decref(all);
    tr_assert_none_lost();
}

/* The router runs in us-east-1 and the audit target has no regions:, so it
 * delivers there: switching us-east-1 off holds it too (as it holds a
 * single-region AWS target, which would otherwise spend its events'
 * retries during the outage). The answer names it, `evbus status` says
 * why it waits, and nothing is lost: back on, the audit trail catches up. */
Test(region_audit, switching_off_the_routers_region_holds_targets_without_regions_and_says_so) {
    start_audited_full(NULL, "region: us-east-1\n", false);
    char out[8192];
    cr_assert_eq(tr_cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "region us-east-1: routing control off\n"
                          "also holds audit (no regions:, runs in us-east-1)\n"),
              "%s", out);
    const char *held = "audit: held, nothing is dispatched (events are kept): no regions: it runs "
                       "in the router's region us-east-1, whose routing control is off: events "
                       "wait for evbus region on us-east-1";
    int64_t end = tr_now_ms() + 15000;
    while (tr_cli("status", out, sizeof out) == 0 && !strstr(out, held) && tr_now_ms() < end)
        usleep(50000);
    if (!strstr(out, held))
        tr_dump("the audit target is not shown held");
    cr_assert(strstr(out, held), "wanted '%s' in:\n%s", held, out);
    cr_assert(strstr(out, "(held: us-east-1 is switched off)"), "%s", out);
    /* orders moved to us-west-2 and delivers; the audit trail waits. */
    tr_publish_expecting(2, "us-west-2");
    cr_assert_eq(tr_cli("region on us-east-1", out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "also resumes audit (no regions:, runs in us-east-1)"), "%s", out);
    json_t *all = wait_audit(2);
    cr_assert_eq(json_array_size(all), 2);
    json_decref(all);
    /* A region the router does not run in holds no such target. */
    cr_assert_eq(tr_cli("region off us-west-2", out, sizeof out), 0, "%s", out);
    cr_assert(!strstr(out, "also holds"), "%s", out);
    all = wait_audit(3);
    json_decref(all);
    tr_assert_none_lost();
}

/* With the router's own region not among the listed ones (test-1 here), a
 * target without regions: has no routing control: switching off the first
 * listed region must not hold it. */
Test(region_audit, a_target_without_regions_outside_the_listed_regions_is_never_held) {
    start_audited();
    char out[4096];
    cr_assert_eq(tr_cli("region off us-east-1", out, sizeof out), 0, "%s", out);
    cr_assert(!strstr(out, "also holds"), "%s", out);
    /* Delivered while us-east-1 stays off. */
    json_t *all = wait_audit(1);
    check(json_array_get(all, 0), &(expect){"Routing Control Changed", "region", "us-east-1", "on",
                                            "off", "evbus region off us-east-1"});
    json_decref(all);
    tr_cli("status", out, sizeof out);
    cr_assert(!strstr(out, "held"), "%s", out);
}
