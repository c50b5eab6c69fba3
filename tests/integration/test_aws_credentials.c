/* Temporary credentials that expire and are refreshed, with real parts: the
 * SQS sink delivers to moto_server (signature checking on) through
 * tests/support/fault_proxy.py, signing with session credentials that moto's
 * STS issued (AssumeRole: moto refuses a session token that is not the one
 * issued with the key id). A container credentials endpoint served here
 * (AWS_CONTAINER_CREDENTIALS_FULL_URI) hands out one set at each fetch, with
 * an Expiration a few seconds ahead, and notes when each fetch came. The
 * proxy notes which session token each call carried. */
#include <criterion/criterion.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "fault_proxy.h"
#include "harness.h"
#include "moto.h"
#include "sink_status.h"

/* Sets of temporary credentials issued for the test; the endpoint hands
 * out set k at fetch k (the last one again after that). */
#define N_SETS 6
/* How long each set is valid, as the endpoint says (Expiration). */
#define LIFETIME_S 6
/* Fetches to see before the test stops publishing: the first and three
 * refreshes. */
#define FETCHES     4
#define MAX_FETCHES 64

typedef struct creds_set {
    char key_id[64], secret[128], token[1024];
} creds_set;

static struct {
    pthread_mutex_t lock;
    creds_set set[N_SETS];
    int fetches;
    int64_t fetch_ms[MAX_FETCHES];   /* when fetch k came (wall clock) */
    int64_t expires_ms[MAX_FETCHES]; /* the Expiration fetch k answered */
    int bad_auth;                    /* fetches without the authorization token */
} ep = {.lock = PTHREAD_MUTEX_INITIALIZER};

static char dir[64];
static moto m;
static fault_proxy proxy;
static harness h;
static evbus_client_t *client;
static struct MHD_Daemon *endpoint;

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
    if (endpoint)
        MHD_stop_daemon(endpoint);
    fault_proxy_stop(&proxy);
    moto_stop(&m);
    harness_remove_dir(dir);
}

TestSuite(credentials, .fini = stop, .timeout = 150);

static int64_t wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *body) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* The container credentials endpoint: the next set, valid LIFETIME_S. */
static enum MHD_Result on_fetch(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_len, void **con_cls) {
    (void)cls, (void)url, (void)method, (void)version, (void)upload, (void)upload_len;
    if (!*con_cls) {
        *con_cls = &ep;
        return MHD_YES;
    }
    const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
    pthread_mutex_lock(&ep.lock);
    if (!auth || strcmp(auth, "Bearer container-token") != 0) {
        ep.bad_auth++;
        pthread_mutex_unlock(&ep.lock);
        return answer(conn, 403, "{}");
    }
    int k = ep.fetches < MAX_FETCHES ? ep.fetches++ : MAX_FETCHES - 1;
    time_t exp = time(NULL) + LIFETIME_S;
    ep.fetch_ms[k] = wall_ms();
    ep.expires_ms[k] = (int64_t)exp * 1000;
    const creds_set *c = &ep.set[k < N_SETS ? k : N_SETS - 1];
    struct tm tm;
    gmtime_r(&exp, &tm);
    char when[32], body[2048];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(body, sizeof body,
             "{\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\",\"Token\":\"%s\","
             "\"Expiration\":\"%s\"}",
             c->key_id, c->secret, c->token, when);
    pthread_mutex_unlock(&ep.lock);
    return answer(conn, 200, body);
}

static int fetches(void) {
    pthread_mutex_lock(&ep.lock);
    int n = ep.fetches;
    pthread_mutex_unlock(&ep.lock);
    return n;
}

/* Which set (0..N_SETS-1) a token tail of the proxy's belongs to; -1: none. */
static int set_of_tail(const char *tail) {
    for (int i = 0; i < N_SETS; i++) {
        size_t n = strlen(ep.set[i].token);
        if (*tail && n >= strlen(tail) && strcmp(ep.set[i].token + n - strlen(tail), tail) == 0)
            return i;
    }
    return -1;
}

static void publish_one(int i) {
    char id[32];
    snprintf(id, sizeof id, "tok-%d", i);
    evbus_event e = {
        .id = id, .source = "com.example.orders", .detail_type = "OrderPlaced", .detail = "{}"};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "%s: %s", id, ack.reason);
}

/* Asserts that none of the secrets or tokens handed out is in `text`. */
static void assert_no_secret(const char *text, const char *where) {
    for (int i = 0; i < N_SETS; i++) {
        cr_assert_null(strstr(text, ep.set[i].secret), "a secret key is in %s", where);
        cr_assert_null(strstr(text, ep.set[i].token), "a session token is in %s", where);
        /* Nor a recognisable piece of one. */
        char piece[33];
        snprintf(piece, sizeof piece, "%s", ep.set[i].token + strlen(ep.set[i].token) / 2);
        cr_assert_null(strstr(text, piece), "part of a session token is in %s", where);
    }
}

/* The session credentials expire every LIFETIME_S seconds: the sink
 * fetches new ones before the old ones expire, signs every call after that
 * with the new token (in order: never an older one again), delivery never
 * fails on the way, and no secret is logged or shown. */
Test(credentials, expiring_session_token_is_refreshed_before_it_expires) {
    snprintf(dir, sizeof dir, "/tmp/evbus-creds-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char log[128];
    snprintf(log, sizeof log, "%s/moto.log", dir);
    cr_assert(moto_start(&m, log), "moto_server did not start (see %s)", log);
    char args[1024], out[16384];
    snprintf(args, sizeof args, "create-queue %s us-east-1 orders", m.endpoint);
    char queue_url[512];
    cr_assert_eq(aws_tool(args, queue_url, sizeof queue_url), 0, "%s", queue_url);
    queue_url[strcspn(queue_url, "\n")] = '\0';
    snprintf(args, sizeof args, "assume-role %s %d", m.endpoint, N_SETS);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "assume-role: %s", out);
    const char *line = out;
    for (int i = 0; i < N_SETS; i++) {
        cr_assert_eq(
            sscanf(line, "%63s %127s %1023s", ep.set[i].key_id, ep.set[i].secret, ep.set[i].token),
            3, "assume-role: %s", out);
        line = strchr(line, '\n');
        cr_assert_not_null(line, "assume-role: %s", out);
        line++;
    }
    cr_assert(fault_proxy_start(&proxy, m.endpoint, dir), "the proxy did not start (see %s)",
              proxy.log);
    endpoint = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_fetch, NULL,
                                MHD_OPTION_END);
    cr_assert_not_null(endpoint);
    int port = MHD_get_daemon_info(endpoint, MHD_DAEMON_INFO_BIND_PORT)->port;

    /* One call at a time, so that the proxy sees the calls in the order
     * the sink signed them. */
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "region: us-east-1\n"
             "targets:\n"
             "  - name: orders\n"
             "    plugin: sqs\n"
             "    config:\n"
             "      endpoint: %s\n"
             "      queue_url: %s\n"
             "    max_in_flight: 1\n"
             "    retry_base_delay: 10ms\n"
             "    retry_max_delay: 100ms\n"
             "rules:\n"
             "  - name: all\n"
             "    pattern: {source: [{prefix: com.example}]}\n"
             "    targets: [orders]\n",
             proxy.endpoint, queue_url);
    harness_init(&h, yaml);
    /* evbusd gets nothing but the container endpoint; this process keeps
     * the IAM user's keys for boto3. */
    char url[128];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/creds", port);
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer container-token", 1);
    bool started = harness_start(&h);
    unsetenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
    setenv("AWS_ACCESS_KEY_ID", m.key_id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", m.secret, 1);
    cr_assert(started, "evbusd did not start (see %s)", h.log);
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);

    /* An event every 100 ms across three refreshes. */
    int published = 0;
    time_t end = time(NULL) + 60;
    while (fetches() < FETCHES && time(NULL) < end) {
        publish_one(published++);
        usleep(100000);
    }
    cr_assert_geq(fetches(), FETCHES, "only %d fetches in 60 s: no refresh", fetches());
    for (int i = 0; i < 5; i++) /* after the last refresh too */
        publish_one(published++);
    sink_wait_status(&h, "delivered", published, 30);

    json_t *t = sink_status(&h);
    cr_assert_eq(json_integer_value(json_object_get(t, "delivered")), published);
    cr_assert_eq(json_integer_value(json_object_get(t, "retried")), 0,
                 "a call failed on the way (expired or missing credentials?): %s",
                 json_dumps(t, 0));
    cr_assert_eq(json_integer_value(json_object_get(t, "target_faults")), 0, "%s",
                 json_dumps(t, 0));
    cr_assert_eq(json_integer_value(json_object_get(t, "dead_lettered")), 0);
    char *text = json_dumps(t, 0);
    assert_no_secret(text, "evbus status --json");
    free(text);
    json_decref(t);

    /* Fresh credentials before the old ones expired, every time. */
    pthread_mutex_lock(&ep.lock);
    int n_fetches = ep.fetches;
    cr_assert_eq(ep.bad_auth, 0, "every fetch carried the authorization token");
    for (int k = 1; k < n_fetches; k++)
        cr_assert_lt(ep.fetch_ms[k], ep.expires_ms[k - 1],
                     "fetch %d came %lld ms after the credentials of fetch %d expired", k,
                     (long long)(ep.fetch_ms[k] - ep.expires_ms[k - 1]), k - 1);
    pthread_mutex_unlock(&ep.lock);

    /* The calls carried the tokens in the order they were handed out,
     * each new one from its first use on (never an older one after it),
     * and at least three of them. */
    char counters[65536];
    cr_assert(fault_proxy_counters(&proxy, counters, sizeof counters));
    json_t *c = json_loads(counters, 0, NULL);
    cr_assert_not_null(c, "%s", counters);
    json_t *runs = json_object_get(c, "token_runs");
    cr_assert_geq(json_array_size(runs), 3, "tokens used: %s", counters);
    int last = -1;
    size_t i;
    json_t *tail;
    json_array_foreach(runs, i, tail) {
        int set = set_of_tail(json_string_value(tail));
        cr_assert_geq(set, 0, "a call carried a token no one issued (or none): %s", counters);
        cr_assert_gt(set, last, "a call went back to an older token: %s", counters);
        cr_assert_lt(set, n_fetches, "a token used before it was handed out: %s", counters);
        last = set;
    }
    json_decref(c);

    sink_status_text(&h, out, sizeof out);
    assert_no_secret(out, "evbus status");
    static char daemon_log[1 << 20];
    harness_read_log(&h, daemon_log, sizeof daemon_log);
    assert_no_secret(daemon_log, "the log");
    cr_assert(strstr(daemon_log, "credentials from the container credentials endpoint, valid for"),
              "%s", daemon_log);
    cr_assert_eq(harness_stop(&h), 0, "a clean exit (and no leak under ASan)");

    snprintf(args, sizeof args, "receive %s us-east-1 '%s' %d 20", m.endpoint, queue_url,
             published);
    static char msgs[1 << 20];
    cr_assert_eq(aws_tool(args, msgs, sizeof msgs), 0, "%s", msgs);
    json_t *all = json_loads(msgs, 0, NULL);
    cr_assert_eq(json_array_size(all), (size_t)published, "%zu messages for %d events",
                 json_array_size(all), published);
    json_decref(all);
}

/* Writes the shared credentials file: profile evbus-test with `secret`,
 * through a rename as editors and tools do (a new inode), or in place. */
static void write_profile(const char *path, const char *key_id, const char *secret,
                          bool rename_over) {
    char tmp[300];
    snprintf(tmp, sizeof tmp, "%s.new", path);
    FILE *f = fopen(rename_over ? tmp : path, "w");
    cr_assert_not_null(f);
    fprintf(f, "[evbus-test]\naws_access_key_id = %s\naws_secret_access_key = %s\n", key_id,
            secret);
    cr_assert_eq(fclose(f), 0);
    if (rename_over)
        cr_assert_eq(rename(tmp, path), 0);
}

/* A wrong secret in the shared credentials file: the target shows the
 * fault and keeps the events; the operator fixes the file, and the same
 * evbusd (no restart) reads it again and delivers everything, each event
 * once, nothing dead-lettered, the reload logged once and no secret
 * anywhere. */
Test(credentials, a_secret_fixed_in_the_credentials_file_is_used_without_a_restart) {
    snprintf(dir, sizeof dir, "/tmp/evbus-creds-XXXXXX");
    cr_assert_not_null(mkdtemp(dir));
    char log[128];
    snprintf(log, sizeof log, "%s/moto.log", dir);
    cr_assert(moto_start(&m, log), "moto_server did not start (see %s)", log);
    char args[1024];
    snprintf(args, sizeof args, "create-queue %s us-east-1 orders", m.endpoint);
    char queue_url[512];
    cr_assert_eq(aws_tool(args, queue_url, sizeof queue_url), 0, "%s", queue_url);
    queue_url[strcspn(queue_url, "\n")] = '\0';

    char creds[300], config[300];
    snprintf(creds, sizeof creds, "%s/credentials", dir);
    snprintf(config, sizeof config, "%s/no-config", dir);
    const char *wrong = "wrong-secret-in-the-file-0123456789";
    write_profile(creds, m.key_id, wrong, false);
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "region: us-east-1\n"
             "targets:\n"
             "  - name: orders\n"
             "    plugin: sqs\n"
             "    config:\n"
             "      endpoint: %s\n"
             "      queue_url: %s\n"
             "      profile: evbus-test\n"
             "    retry_base_delay: 10ms\n"
             "    retry_max_delay: 200ms\n"
             "    retry_max_attempts: 2\n"
             "rules:\n"
             "  - name: all\n"
             "    pattern: {source: [{prefix: com.example}]}\n"
             "    targets: [orders]\n",
             m.endpoint, queue_url);
    harness_init(&h, yaml);
    setenv("AWS_SHARED_CREDENTIALS_FILE", creds, 1);
    setenv("AWS_CONFIG_FILE", config, 1);
    cr_assert(harness_start(&h), "evbusd did not start (see %s)", h.log);
    pid_t first_pid = h.pid;
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);

    enum { N = 5 };
    for (int i = 0; i < N; i++)
        publish_one(i);
    /* Refused, retried well past retry_max_attempts, shown. */
    sink_wait_status(&h, "target_faults", 10, 30);
    char out[16384];
    sink_status_text(&h, out, sizeof out);
    cr_assert(strstr(out, "orders: target fault (events are kept and retried): "
                          "SignatureDoesNotMatch: "),
              "%s", out);
    cr_assert_eq(sink_status_num(&h, "delivered"), 0);

    /* Still refused a while later: nothing changed in the file yet. */
    json_int_t before = sink_status_num(&h, "target_faults");
    sink_wait_status(&h, "target_faults", before + 10, 30);
    cr_assert_eq(sink_status_num(&h, "delivered"), 0);

    write_profile(creds, m.key_id, m.secret, true);
    sink_wait_status(&h, "delivered", N, 30);
    json_t *t = sink_status(&h);
    cr_assert_eq(json_integer_value(json_object_get(t, "dead_lettered")), 0, "%s",
                 json_dumps(t, 0));
    json_decref(t);
    sink_status_text(&h, out, sizeof out);
    cr_assert_null(strstr(out, "target fault"), "the fault is cleared: %s", out);
    cr_assert_null(strstr(out, wrong), "%s", out);
    cr_assert_null(strstr(out, m.secret), "%s", out);

    char line[400];
    snprintf(line, sizeof line, "credentials reloaded from %s (profile evbus-test)", creds);
    sink_assert_logged_once(&h, line, "credentials reloaded");
    static char daemon_log[1 << 20];
    harness_read_log(&h, daemon_log, sizeof daemon_log);
    cr_assert_null(strstr(daemon_log, wrong), "the wrong secret is never logged");
    cr_assert_null(strstr(daemon_log, m.secret), "the secret is never logged");
    /* The evbusd started with the wrong secret is the one that delivered. */
    cr_assert_eq(h.pid, first_pid);
    cr_assert_eq(kill(first_pid, 0), 0, "evbusd is still running");
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "'%s' dlq list -c '%s' 2>&1", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "no dead letters\n");
    cr_assert_eq(harness_stop(&h), 0, "a clean exit (and no leak under ASan)");

    snprintf(args, sizeof args, "receive %s us-east-1 '%s' %d 20", m.endpoint, queue_url, N);
    static char msgs[1 << 20];
    cr_assert_eq(aws_tool(args, msgs, sizeof msgs), 0, "%s", msgs);
    json_t *all = json_loads(msgs, 0, NULL);
    cr_assert_eq(json_array_size(all), (size_t)N, "%s", msgs);
    for (int i = 0; i < N; i++) {
        char id[32];
        snprintf(id, sizeof id, "tok-%d", i);
        int seen = 0;
        size_t k;
        json_t *msg;
        json_array_foreach(all, k, msg) {
            seen += strcmp(json_string_value(json_object_get(json_object_get(msg, "body"), "id")),
                           id) == 0;
        }
        cr_assert_eq(seen, 1, "%s arrived %d times: %s", id, seen, msgs);
    }
    json_decref(all);
}
