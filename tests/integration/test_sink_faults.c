/* The AWS sinks through faults: evbusd delivers to a real service
 * implementation (moto_server, signature checking on) through
 * tests/support/fault_proxy.py, which throttles, answers 5xx, fails part of
 * a batch, answers too late or never, cuts connections, breaks the
 * signature; the destination is deleted and created again; evbusd is killed
 * with -9 in the middle of delivering. What arrived is read back with
 * boto3. Each test asserts what a user relies on: nothing acked is lost,
 * nothing the service took is sent again unless the fault left the sink
 * unable to know it did (then a standard queue may hold it twice, a
 * deduplicating destination still once), and target faults are retried and
 * shown, never dead-lettered.
 *
 * The sinks are rows of `sinks` below: every test runs for every row
 * (SQS, FIFO SQS, EventBridge through a rule into a queue, DynamoDB in
 * conditional mode). */
#include <criterion/criterion.h>
#include <criterion/parameterized.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "fault_proxy.h"
#include "harness.h"
#include "moto.h"
#include "sink_status.h"

#define N_EVENTS  30
#define BATCH     10 /* batch_max_events of the target */
#define IN_FLIGHT 2  /* max_in_flight of the target */
/* The sink's `timeout` key, in seconds, for the test of slow answers; the
 * others keep the default (10 s), so that a loaded machine does not turn a
 * slow service into timeouts they do not expect. */
#define SHORT_TIMEOUT 1

/* ---- the sinks ---- */

/* One row per sink (and per destination variant that behaves differently).
 * The functions fail the test themselves; `dest` is what `config` needs to
 * name the destination (a queue URL, a bus, a table). */
typedef struct sink_kind {
    const char *name;   /* test parameters name the row by this */
    const char *plugin; /* the target's plugin: */
    /* The destination deduplicates redeliveries (FIFO queue, DynamoDB
     * conditional mode): every event exactly once, whatever the fault. */
    bool exactly_once;
    /* A second row of a sink already tested: runs only the tests where
     * deduplication changes the outcome (ambiguous faults, kill -9). */
    bool variant;
    /* One call per event (DynamoDB PutItem): no batch a service could
     * take in part, and a batch of the target is BATCH calls. */
    bool call_per_event;
    /* The sink's `timeout` in the test of slow answers (0: SHORT_TIMEOUT):
     * longer than the service takes for a call. moto's PutEvents hands
     * every entry to its SQS, seconds a call on a loaded machine. */
    int short_timeout_s;
    /* The code evbus status shows while the destination does not exist. */
    const char *missing_code;
    /* Creates (or creates again) the destination; its name into dest. */
    void (*create)(const moto *m, char *dest, size_t len);
    void (*destroy)(const moto *m, const char *dest);
    /* The lines under the target's `config:` (six spaces in). */
    void (*config)(char *out, size_t len, const char *endpoint, const char *dest);
    /* The event ids that arrived (a JSON array of strings, caller frees),
     * waiting until at least `want` did (or a deadline, well past it). */
    json_t *(*arrived)(const moto *m, const char *dest, int want);
} sink_kind;

static void sqs_create(const moto *m, const char *queue, char *dest, size_t len) {
    char args[512];
    snprintf(args, sizeof args, "create-queue %s us-east-1 %s", m->endpoint, queue);
    cr_assert_eq(aws_tool(args, dest, len), 0, "create-queue: %s", dest);
    dest[strcspn(dest, "\n")] = '\0';
}

static void sqs_create_std(const moto *m, char *dest, size_t len) {
    sqs_create(m, "orders", dest, len);
}

static void sqs_create_fifo(const moto *m, char *dest, size_t len) {
    sqs_create(m, "orders.fifo", dest, len);
}

static void sqs_destroy(const moto *m, const char *dest) {
    char args[1024], out[1024];
    snprintf(args, sizeof args, "delete-queue %s us-east-1 '%s'", m->endpoint, dest);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "delete-queue: %s", out);
}

static void sqs_config(char *out, size_t len, const char *endpoint, const char *dest) {
    snprintf(out, len, "      endpoint: %s\n      queue_url: %s\n", endpoint, dest);
}

/* The event ids of the messages in the queue at `url`: the body's "id",
 * or with `in_detail` its detail's (EventBridge's envelope carries an id
 * EventBridge made up; the tests put theirs in the detail). */
static json_t *queue_ids(const moto *m, const char *url, int want, bool in_detail) {
    static char out[1 << 21];
    char args[1024];
    /* It returns once `want` arrived and the queue is empty; the deadline
     * only ends a read that lost events (one call per message: slow). */
    snprintf(args, sizeof args, "receive %s us-east-1 '%s' %d 60", m->endpoint, url, want);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "receive: %.2000s", out);
    json_t *msgs = json_loads(out, 0, NULL);
    cr_assert(json_is_array(msgs), "receive: %.2000s", out);
    json_t *ids = json_array();
    size_t i;
    json_t *msg;
    json_array_foreach(msgs, i, msg) {
        json_t *body = json_object_get(msg, "body");
        if (in_detail)
            body = json_object_get(body, "detail");
        json_t *id = json_object_get(body, "id");
        cr_assert(json_is_string(id), "a message without an event id");
        json_array_append(ids, id);
    }
    json_decref(msgs);
    return ids;
}

static json_t *sqs_arrived(const moto *m, const char *dest, int want) {
    return queue_ids(m, dest, want, false);
}

/* EventBridge: a bus `orders` whose rule sends every com.example event to
 * the queue `orders`; dest is "BUS QUEUE_URL". */
static void eb_create(const moto *m, char *dest, size_t len) {
    char url[512], args[1024], out[1024];
    sqs_create(m, "orders", url, sizeof url);
    snprintf(args, sizeof args, "create-bus %s us-east-1 orders", m->endpoint);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "create-bus: %s", out);
    snprintf(args, sizeof args, "bus-to-queue %s us-east-1 orders '%s'", m->endpoint, url);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "bus-to-queue: %s", out);
    snprintf(dest, len, "orders %s", url);
}

static void eb_destroy(const moto *m, const char *dest) {
    char args[512], out[1024];
    (void)dest;
    snprintf(args, sizeof args, "delete-bus %s us-east-1 orders", m->endpoint);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "delete-bus: %s", out);
}

static void eb_config(char *out, size_t len, const char *endpoint, const char *dest) {
    snprintf(out, len, "      endpoint: %s\n      event_bus: %.*s\n", endpoint,
             (int)strcspn(dest, " "), dest);
}

static json_t *eb_arrived(const moto *m, const char *dest, int want) {
    return queue_ids(m, strchr(dest, ' ') + 1, want, true);
}

/* DynamoDB, conditional mode: a table `orders` keyed by `id`; dest is its
 * name. */
static int ddb_tool(const char *args, char *out, size_t len) {
    const char *src = getenv("EVBUS_SRC_DIR");
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/support/ddb_tool.py' %s", src ? src : ".", args);
    return harness_run(cmd, out, len);
}

static void ddb_create(const moto *m, char *dest, size_t len) {
    char args[512], out[1024];
    snprintf(args, sizeof args, "create-table %s us-east-1 orders id", m->endpoint);
    cr_assert_eq(ddb_tool(args, out, sizeof out), 0, "create-table: %s", out);
    snprintf(dest, len, "orders");
}

static void ddb_destroy(const moto *m, const char *dest) {
    char args[512], out[1024];
    snprintf(args, sizeof args, "delete-table %s us-east-1 %s", m->endpoint, dest);
    cr_assert_eq(ddb_tool(args, out, sizeof out), 0, "delete-table: %s", out);
}

static void ddb_config(char *out, size_t len, const char *endpoint, const char *dest) {
    snprintf(out, len, "      endpoint: %s\n      table: %s\n      mode: conditional\n", endpoint,
             dest);
}

/* The table holds an item once whatever was written twice, so a scan
 * cannot show duplicates; the counts the tests compare show losses. */
static json_t *ddb_arrived(const moto *m, const char *dest, int want) {
    static char out[1 << 21];
    char args[512];
    json_t *ids = json_array();
    time_t end = time(NULL) + 20;
    for (;;) {
        snprintf(args, sizeof args, "items %s us-east-1 %s", m->endpoint, dest);
        cr_assert_eq(ddb_tool(args, out, sizeof out), 0, "items: %.2000s", out);
        json_t *items = json_loads(out, 0, NULL);
        cr_assert(json_is_array(items), "items: %.2000s", out);
        json_array_clear(ids);
        size_t i;
        json_t *item;
        json_array_foreach(items, i, item) {
            json_t *id = json_object_get(json_object_get(item, "id"), "S");
            cr_assert(json_is_string(id), "an item without an event id");
            json_array_append(ids, id);
        }
        json_decref(items);
        if ((int)json_array_size(ids) >= want || time(NULL) >= end)
            return ids;
        usleep(100000);
    }
}

/* Adding a sink: its create/destroy/config/arrived functions (aws_tool.py
 * grows the calls they need) and a row here. */
static const sink_kind sinks[] = {
    {"sqs", "sqs", false, false, false, 0, "QueueDoesNotExist", sqs_create_std, sqs_destroy,
     sqs_config, sqs_arrived},
    {"sqs-fifo", "sqs", true, true, false, 0, "QueueDoesNotExist", sqs_create_fifo, sqs_destroy,
     sqs_config, sqs_arrived},
    {"eventbridge", "eventbridge", false, false, false, 8, "ResourceNotFoundException", eb_create,
     eb_destroy, eb_config, eb_arrived},
    {"dynamodb", "dynamodb", true, false, true, 0, "ResourceNotFoundException", ddb_create,
     ddb_destroy, ddb_config, ddb_arrived},
};
#define N_SINKS (sizeof sinks / sizeof sinks[0])

static const sink_kind *sink_named(const char *name) {
    for (size_t i = 0; i < N_SINKS; i++)
        if (strcmp(sinks[i].name, name) == 0)
            return &sinks[i];
    cr_assert_fail("no sink row %s", name);
    return NULL;
}

/* ---- one moto, one proxy, one evbusd per test ---- */

static char dir[64];
static moto m;
static fault_proxy proxy;
static harness h;
static evbus_client_t *client;
static char dest[512];

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
    fault_proxy_stop(&proxy);
    moto_stop(&m);
    harness_remove_dir(dir);
}

TestSuite(faults, .fini = stop, .timeout = 90);

/* moto, the destination, the proxy in front of moto, and the configuration
 * of an evbusd whose target `orders` delivers through the proxy. */
static void setup(const sink_kind *sk, int timeout_s, const char *extra_target) {
    snprintf(dir, sizeof dir, "/tmp/evbus-faults-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char log[128];
    snprintf(log, sizeof log, "%s/moto.log", dir);
    cr_assert(moto_start(&m, log), "moto_server did not start (see %s)", log);
    sk->create(&m, dest, sizeof dest);
    cr_assert(fault_proxy_start(&proxy, m.endpoint, dir), "the proxy did not start (see %s)",
              proxy.log);
    char keys[1024], timeout[64] = "", yaml[4096];
    sk->config(keys, sizeof keys, proxy.endpoint, dest);
    if (timeout_s)
        snprintf(timeout, sizeof timeout, "      timeout: %ds\n", timeout_s);
    snprintf(yaml, sizeof yaml,
             "region: us-east-1\n"
             "targets:\n"
             "  - name: orders\n"
             "    plugin: %s\n"
             "    config:\n"
             "%s%s"
             "    batch_max_events: %d\n"
             "    max_in_flight: %d\n"
             "    retry_base_delay: 10ms\n"
             "    retry_max_delay: 100ms\n"
             "%s"
             "rules:\n"
             "  - name: all\n"
             "    pattern: {source: [{prefix: com.example}]}\n"
             "    targets: [orders]\n",
             sk->plugin, keys, timeout, BATCH, IN_FLIGHT, extra_target ? extra_target : "");
    harness_init(&h, yaml);
}

static void run_evbusd(void) {
    cr_assert(harness_start(&h), "evbusd did not start (see %s)", h.log);
    evbus_client_destroy(&client);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

/* Publishes ids ev-FROM .. ev-(FROM+n-1), BATCH per request; each acked. */
static void publish(int from, int n) {
    for (int i = from; i < from + n; i += BATCH) {
        char ids[BATCH][32], pks[BATCH][32], details[BATCH][96];
        evbus_event e[BATCH];
        evbus_ack acks[BATCH];
        size_t k = 0;
        for (; k < BATCH && i + (int)k < from + n; k++) {
            int x = i + (int)k;
            snprintf(ids[k], sizeof ids[k], "ev-%d", x);
            snprintf(pks[k], sizeof pks[k], "customer-%d", x % 3);
            /* The id in the detail too: EventBridge's envelope carries
             * an id of its own. */
            snprintf(details[k], sizeof details[k], "{\"id\":\"%s\",\"n\":%d}", ids[k], x);
            e[k] = (evbus_event){.id = ids[k],
                                 .source = x % 2 ? "com.example.orders" : "com.example.billing",
                                 .detail_type = "OrderPlaced",
                                 .detail = details[k],
                                 .partition_key = pks[k]};
        }
        cr_assert_eq(evbus_publish(client, e, k, acks), EVBUS_OK);
        for (size_t j = 0; j < k; j++)
            cr_assert_eq(acks[j].status, EVBUS_ACK_ACCEPTED, "%s: %s", ids[j], acks[j].reason);
    }
}

static json_int_t status_num(const json_t *t, const char *key) {
    return json_integer_value(json_object_get(t, key));
}

/* Polls evbus status until nothing is pending or in flight. */
static void wait_all_delivered(int seconds, const char *why) {
    time_t end = time(NULL) + seconds;
    json_int_t pending = -1, in_flight = -1;
    while (time(NULL) < end) {
        json_t *t = sink_status(&h);
        pending = status_num(t, "pending");
        in_flight = status_num(t, "in_flight");
        json_decref(t);
        if (pending == 0 && in_flight == 0)
            return;
        usleep(50000);
    }
    char counters[4096] = "";
    fault_proxy_counters(&proxy, counters, sizeof counters);
    cr_assert_fail("%s: still %lld pending, %lld in flight after %d s (logs: %s, %s; proxy: "
                   "%.300s)",
                   why, (long long)pending, (long long)in_flight, seconds, h.log, dir, counters);
}

static json_t *proxy_counters(void) {
    static char out[1 << 16];
    cr_assert(fault_proxy_counters(&proxy, out, sizeof out), "the proxy does not answer");
    json_t *c = json_loads(out, 0, NULL);
    cr_assert_not_null(c, "%s", out);
    return c;
}

/* The proxy's counters once no relayed call is still waiting for its
 * answer to be sent or lost: only then are the ambiguous calls all known. */
static json_t *settled_proxy_counters(void) {
    time_t end = time(NULL) + 15;
    for (;;) {
        json_t *c = proxy_counters();
        if (json_integer_value(json_object_get(c, "busy")) == 0)
            return c;
        cr_assert(time(NULL) < end, "the proxy still holds calls: %s", json_dumps(c, 0));
        json_decref(c);
        usleep(20000);
    }
}

/* How many times each of ev-0 .. ev-(n-1) arrived; an unknown id fails. */
static void count_arrivals(json_t *ids, int n, int *counts) {
    memset(counts, 0, sizeof *counts * (size_t)n);
    size_t i;
    json_t *id;
    json_array_foreach(ids, i, id) {
        const char *s = json_string_value(id);
        int k = s && strncmp(s, "ev-", 3) == 0 ? atoi(s + 3) : -1;
        cr_assert(k >= 0 && k < n, "an event no one published arrived: %s", s ? s : "(null)");
        counts[k]++;
    }
}

static int times_in(json_t *list, const char *id) {
    int n = 0;
    size_t i;
    json_t *v;
    json_array_foreach(list, i, v) n += strcmp(json_string_value(v), id) == 0;
    return n;
}

/* ---- faults a call can meet ---- */

typedef struct fault_case {
    char name[64]; /* for messages */
    char mode[24]; /* fault_proxy.py's mode */
    int count;     /* calls it hits, then the proxy passes again */
    int delay_ms;
    int timeout_s; /* the sink's timeout; 0: its default */
    /* The service may have processed a call the sink saw fail, so the
     * sink sends it again: a standard queue holds those events twice. */
    bool ambiguous;
    /* The call got no answer at all: a fault of the target (retried without
     * spending attempts, counted in target_faults), where an answer of the
     * service (throttling, 5xx, per-entry failures) is a plain retry and
     * no target fault. */
    bool target_fault;
} fault_case;

static const fault_case fault_cases[] = {
    {"throttling", "throttle", 3, 0, 0, false, false},
    {"500 and 503 answers", "server_error", 4, 0, 0, false, false},
    {"partial batch failures", "partial", 3, 0, 0, false, false},
    {"answers later than the sink's timeout", "slow", 2, SHORT_TIMEOUT * 1000 + 1500, SHORT_TIMEOUT,
     true, true},
    {"a connection cut before the service read the call", "cut_request", 2, 0, 0, false, true},
    {"a connection cut after the service processed the call", "cut_response", 2, 0, 0, true, true},
};

typedef struct fault_param {
    char sink[24];
    fault_case fault;
} fault_param;

static void free_params(struct criterion_test_params *crp) {
    cr_free(crp->params);
}

/* Every sink row meets every fault; a variant row only the ambiguous ones, a
 * sink of one call per event no partial batch. */
ParameterizedTestParameters(faults, nothing_acked_lost_nothing_delivered_sent_twice) {
    size_t n_faults = sizeof fault_cases / sizeof fault_cases[0], n = 0;
    fault_param *p = cr_malloc(sizeof *p * N_SINKS * n_faults);
    for (size_t s = 0; s < N_SINKS; s++) {
        for (size_t f = 0; f < n_faults; f++) {
            if (sinks[s].variant && !fault_cases[f].ambiguous)
                continue;
            if (sinks[s].call_per_event && strcmp(fault_cases[f].mode, "partial") == 0)
                continue;
            memset(&p[n], 0, sizeof p[n]);
            snprintf(p[n].sink, sizeof p[n].sink, "%s", sinks[s].name);
            p[n].fault = fault_cases[f];
            n++;
        }
    }
    return cr_make_param_array(fault_param, p, n, free_params);
}

ParameterizedTest(fault_param *p, faults, nothing_acked_lost_nothing_delivered_sent_twice) {
    const sink_kind *sk = sink_named(p->sink);
    const fault_case *fc = &p->fault;
    /* A short timeout, and answers that much later, for the sink's calls. */
    int timeout_s = fc->timeout_s && sk->short_timeout_s ? sk->short_timeout_s : fc->timeout_s;
    int delay_ms = fc->delay_ms + (timeout_s - fc->timeout_s) * 1000;
    cr_log_info("%s: %s", sk->name, fc->name); /* which row, in --verbose output */
    setup(sk, timeout_s, NULL);
    run_evbusd();
    cr_assert(fault_proxy_set(&proxy, fc->mode, fc->count, delay_ms));
    publish(0, N_EVENTS);
    wait_all_delivered(60, fc->name);

    json_t *t = sink_status(&h);
    cr_assert_eq(status_num(t, "delivered"), N_EVENTS, "%s: %s: %lld delivered (log: %s)", sk->name,
                 fc->name, (long long)status_num(t, "delivered"), h.log);
    cr_assert_eq(status_num(t, "dead_lettered"), 0, "%s: %s dead-lettered %lld events", sk->name,
                 fc->name, (long long)status_num(t, "dead_lettered"));
    cr_assert_gt(status_num(t, "retried"), 0, "%s: %s: the calls it broke were retried", sk->name,
                 fc->name);
    if (fc->target_fault)
        cr_assert_gt(status_num(t, "target_faults"), 0,
                     "%s: %s left calls without an answer: the target's fault", sk->name, fc->name);
    else
        cr_assert_eq(status_num(t, "target_faults"), 0, "%s: %s is not the target's fault",
                     sk->name, fc->name);
    json_decref(t);
    json_t *c = settled_proxy_counters();
    cr_assert_eq(json_integer_value(json_object_get(c, "injected")), fc->count,
                 "%s: the proxy injected %s into %lld calls", sk->name, fc->name,
                 (long long)json_integer_value(json_object_get(c, "injected")));
    json_t *ambiguous = json_object_get(c, "ambiguous_ids");
    int ambiguous_entries = (int)json_integer_value(json_object_get(c, "ambiguous_entries"));
    if (fc->ambiguous)
        cr_assert_gt(ambiguous_entries, 0, "%s: %s left no call ambiguous", sk->name, fc->name);

    json_t *ids = sk->arrived(&m, dest, N_EVENTS);
    int counts[N_EVENTS];
    count_arrivals(ids, N_EVENTS, counts);
    int extra = 0;
    for (int k = 0; k < N_EVENTS; k++) {
        char id[32];
        snprintf(id, sizeof id, "ev-%d", k);
        cr_assert_geq(counts[k], 1, "%s: %s lost acked event %s", sk->name, fc->name, id);
        extra += counts[k] - 1;
        if (sk->exactly_once) {
            cr_assert_eq(counts[k], 1, "%s deduplicates, yet %s arrived %d times after %s",
                         sk->name, id, counts[k], fc->name);
        } else if (json_array_size(ambiguous) > 0 || ambiguous_entries == 0) {
            /* Only an event of a call the service processed while the
             * sink saw it fail may come twice: once per such call. */
            cr_assert_leq(counts[k], 1 + times_in(ambiguous, id),
                          "%s: %s arrived %d times, but only %d of its calls were ambiguous "
                          "(%s); a call the service answered or never saw must not be resent",
                          sk->name, id, counts[k], times_in(ambiguous, id), fc->name);
        }
    }
    /* A sink whose calls carry no readable event id: count the entries. */
    cr_assert_leq(extra, ambiguous_entries,
                  "%s: %d duplicates, but %s left only %d entries ambiguous", sk->name, extra,
                  fc->name, ambiguous_entries);
    json_decref(ids);
    json_decref(c);
}

/* ---- target faults: retried and shown, never dead-lettered ---- */

typedef struct sink_param {
    char sink[24];
} sink_param;

/* Every sink row, or only the first row of each sink (`variants`: false). */
static struct criterion_test_params sink_params(bool variants) {
    sink_param *p = cr_malloc(sizeof *p * N_SINKS);
    size_t n = 0;
    for (size_t s = 0; s < N_SINKS; s++) {
        if (sinks[s].variant && !variants)
            continue;
        memset(&p[n], 0, sizeof p[n]);
        snprintf(p[n].sink, sizeof p[n].sink, "%s", sinks[s].name);
        n++;
    }
    return cr_make_param_array(sink_param, p, n, free_params);
}

/* Polls until evbus status has counted `want` target faults showing `code`,
 * checking at every poll that nothing was delivered or dead-lettered; fails
 * after `seconds`. */
static void wait_target_faults(json_int_t want, const char *code, const char *what, int seconds) {
    time_t end = time(NULL) + seconds;
    json_int_t faults = 0;
    char shown[1024] = "";
    while (time(NULL) < end) {
        json_t *t = sink_status(&h);
        faults = status_num(t, "target_faults");
        const char *f = json_string_value(json_object_get(t, "target_fault"));
        snprintf(shown, sizeof shown, "%s", f ? f : "");
        cr_assert_eq(status_num(t, "dead_lettered"), 0, "%s dead-lettered events", what);
        cr_assert_eq(status_num(t, "delivered"), 0, "%s, yet events were delivered", what);
        json_decref(t);
        if (faults >= want && strstr(shown, code))
            return;
        usleep(50000);
    }
    cr_assert_fail("%s: %lld target faults, status shows \"%s\", wanted %lld and %s", what,
                   (long long)faults, shown, (long long)want, code);
}

static void assert_once_each(const sink_kind *sk, int n, const char *what) {
    json_t *ids = sk->arrived(&m, dest, n);
    int counts[N_EVENTS];
    count_arrivals(ids, n, counts);
    for (int k = 0; k < n; k++)
        cr_assert_eq(counts[k], 1, "%s: after %s, ev-%d arrived %d times", sk->name, what, k,
                     counts[k]);
    json_decref(ids);
}

/* After a target fault is gone: within `seconds` all n events are
 * delivered, none dead-lettered, evbus status no longer shows the fault,
 * and each arrived once. */
static void assert_recovered(const sink_kind *sk, int n, int seconds, const char *what) {
    wait_all_delivered(seconds, what);
    json_t *t = sink_status(&h);
    cr_assert_eq(status_num(t, "delivered"), n, "%s: %s", sk->name, what);
    cr_assert_eq(status_num(t, "dead_lettered"), 0, "%s: %s", sk->name, what);
    cr_assert(!json_is_string(json_object_get(t, "target_fault")),
              "%s: %s: the fault is cleared once it delivers", sk->name, what);
    json_decref(t);
    assert_once_each(sk, n, what);
}

ParameterizedTestParameters(faults, wrong_signature_is_a_target_fault_never_dead_lettered) {
    return sink_params(false);
}

/* The service itself refuses the signature (403): every event is retried
 * well past retry_max_attempts, evbus status names the error, no dead
 * letter; once signatures are right again everything arrives once,
 * without a restart. */
ParameterizedTest(sink_param *p, faults, wrong_signature_is_a_target_fault_never_dead_lettered) {
    const sink_kind *sk = sink_named(p->sink);
    setup(sk, 0, "    retry_max_attempts: 2\n");
    run_evbusd();
    cr_assert(fault_proxy_set(&proxy, "bad_signature", -1, 0));
    publish(0, 10);
    wait_target_faults(50, "SignatureDoesNotMatch", "a wrong signature", 20);
    cr_assert(fault_proxy_set(&proxy, "pass", -1, 0));
    assert_recovered(sk, 10, 20, "signatures right again");
}

ParameterizedTestParameters(faults, deleted_destination_is_a_target_fault_until_created_again) {
    return sink_params(false);
}

/* The destination disappears: a target fault (retried, shown, never
 * dead-lettered); created again, delivery resumes by itself. */
ParameterizedTest(sink_param *p, faults,
                  deleted_destination_is_a_target_fault_until_created_again) {
    const sink_kind *sk = sink_named(p->sink);
    setup(sk, 0, "    retry_max_attempts: 2\n");
    sk->destroy(&m, dest);
    run_evbusd();
    publish(0, 10);
    wait_target_faults(50, sk->missing_code, "a deleted destination", 20);
    /* A destination made in steps (EventBridge: the bus, then the rule
     * into the queue) is whole before evbusd sees it: until then its calls
     * fail on the signature, a fault of the target, so none is spent. */
    cr_assert(fault_proxy_set(&proxy, "bad_signature", -1, 0));
    char again[sizeof dest];
    sk->create(&m, again, sizeof again);
    cr_assert(fault_proxy_set(&proxy, "pass", -1, 0));
    cr_assert_str_eq(again, dest, "created again under the same name");
    wait_all_delivered(20, "the destination created again");
    json_t *t = sink_status(&h);
    cr_assert_eq(status_num(t, "delivered"), 10);
    cr_assert_eq(status_num(t, "dead_lettered"), 0);
    json_decref(t);
    assert_once_each(sk, 10, "the destination was created again");
}

/* Its own suite for its longer limit: its deadlines add up past the 90 s of
 * `faults` (EventBridge: three 8 s timeouts with backoff, up to 56 s, then
 * 30 s to recover, after moto's setup). Not a per-test .timeout: Criterion
 * 2.4.1's runner leaks 48 bytes when a parameterized test overrides its
 * suite's timeout, which LeakSanitizer reports under ASan. */
TestSuite(faults_no_answer, .fini = stop, .timeout = 180);

ParameterizedTestParameters(faults_no_answer,
                            endpoint_that_never_answers_is_a_target_fault_never_dead_lettered) {
    return sink_params(false);
}

/* The service accepts connections and never answers (the proxy holds every
 * call): each call times out, the target's fault, not its events'. Every
 * event is tried well past retry_max_attempts without a dead letter, evbus
 * status names the fault, the log says it once; once the service answers
 * again, every event arrives once, without a restart. */
ParameterizedTest(sink_param *p, faults_no_answer,
                  endpoint_that_never_answers_is_a_target_fault_never_dead_lettered) {
    const sink_kind *sk = sink_named(p->sink);
    /* Short, so that the test sees many timeouts; long enough for the
     * service once it answers (a timeout then would send a call twice). */
    int timeout_s = sk->short_timeout_s ? sk->short_timeout_s : SHORT_TIMEOUT;
    setup(sk, timeout_s, "    retry_max_attempts: 2\n");
    run_evbusd();
    cr_assert(fault_proxy_set(&proxy, "hang", -1, 0));
    publish(0, 10);
    /* Three timeouts for each of the 10 events: one more than
     * retry_max_attempts would allow a retryable failure. */
    wait_target_faults(30, "Timeout", "an endpoint that never answers", 4 * (timeout_s + 1) + 20);
    char out[8192];
    sink_status_text(&h, out, sizeof out);
    cr_assert(strstr(out, "orders: target fault (events are kept and retried): Timeout: "), "%s",
              out);
    cr_assert(strstr(out, "raise timeout"), "what to do: %s", out);
    sink_assert_logged_once(&h, "does not answer this target: Timeout",
                            "does not answer this target");
    cr_assert(fault_proxy_set(&proxy, "pass", -1, 0));
    /* The proxy relayed none of the calls it held: each event once. */
    assert_recovered(sk, 10, 30, "the endpoint answers again");
}

/* ---- kill -9 in the middle of delivering ---- */

#define KILL_EVENTS 100

ParameterizedTestParameters(faults, kill9_during_delivery_loses_nothing_repeats_at_most_a_window) {
    return sink_params(true);
}

/* Every call is answered 200 ms after the service took it, so at the kill
 * up to max_in_flight batches are processed but not yet answered, and as
 * many more answered but not yet recorded (the window is 2 x max_in_flight
 * batches): those, and only those, are delivered again after the restart. */
ParameterizedTest(sink_param *p, faults,
                  kill9_during_delivery_loses_nothing_repeats_at_most_a_window) {
    const sink_kind *sk = sink_named(p->sink);
    setup(sk, 0, NULL);
    run_evbusd();
    /* 500 ms per answer, IN_FLIGHT at a time: delivering everything takes
     * seconds, so a poll delayed by a loaded machine still kills it midway. */
    cr_assert(fault_proxy_set(&proxy, "delay", -1, 500));
    publish(0, KILL_EVENTS);
    /* Calls, not batches, pass the proxy: a batch is BATCH PutItem calls. */
    json_int_t per_batch = sk->call_per_event ? BATCH : 1;
    time_t end = time(NULL) + 20;
    json_int_t relayed = 0;
    while (time(NULL) < end && relayed < 3 * per_batch) {
        json_t *c = proxy_counters();
        relayed = json_integer_value(json_object_get(c, "relayed"));
        json_decref(c);
        usleep(5000);
    }
    harness_kill9(&h);
    cr_assert_geq(relayed, 3 * per_batch, "delivery did not start");
    cr_assert_lt(relayed, KILL_EVENTS / BATCH * per_batch, "killed after delivery had finished");
    evbus_client_destroy(&client);

    cr_assert(fault_proxy_set(&proxy, "pass", -1, 0));
    cr_assert(harness_start(&h), "evbusd did not restart after kill -9 (see %s)", h.log);
    wait_all_delivered(30, "after kill -9");

    json_t *ids = sk->arrived(&m, dest, KILL_EVENTS);
    int counts[KILL_EVENTS];
    count_arrivals(ids, KILL_EVENTS, counts);
    int extra = 0;
    for (int k = 0; k < KILL_EVENTS; k++) {
        cr_assert_geq(counts[k], 1, "%s: acked event ev-%d lost across kill -9", sk->name, k);
        cr_assert_leq(counts[k], sk->exactly_once ? 1 : 2, "%s: ev-%d arrived %d times", sk->name,
                      k, counts[k]);
        extra += counts[k] - 1;
    }
    cr_assert_leq(extra, 2 * IN_FLIGHT * BATCH,
                  "%s: %d events delivered again, more than the window "
                  "(2 x %d batches of %d)",
                  sk->name, extra, IN_FLIGHT, BATCH);
    json_decref(ids);
}
