/* The SQS sink against a real SQS implementation (moto_server, signature
 * checking on; test_sqs_local_aws_sqs: local-aws-sqs), read back with boto3: every event arrives
 * once with its content; FIFO redeliveries are deduplicated; a wrong secret is retried and shown,
 * never dead-lettered; credentials come from the environment, a profile, a container endpoint and
 * IMDSv2 (small local servers here). */
#include <criterion/criterion.h>
#include <jansson.h>
#include <microhttpd.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"
#include "npm_server.h"
#include "sink_status.h"

#ifndef EVBUS_TEST_IMPL
#define EVBUS_TEST_IMPL "moto"
#endif

static harness h;
static moto m;
static evbus_client_t *client;
static struct MHD_Daemon *creds_server;
static char queue_url[512];

static void stop(void) {
    evbus_client_destroy(&client);
    harness_cleanup(&h);
    if (creds_server)
        MHD_stop_daemon(creds_server);
    moto_stop(&m);
}

TestSuite(sqs, .fini = stop, .timeout = 120);

/* moto, a queue, and an evbusd whose target `orders` delivers to it. */
static void start_all(const char *queue, const char *extra_config, const char *extra_target) {
    char log[300];
    snprintf(log, sizeof log, "/tmp/evbus-moto-%d.log", (int)getpid());
    cr_assert(aws_server_start(&m, EVBUS_TEST_IMPL, log), "%s did not start (see %s)",
              EVBUS_TEST_IMPL, log);
    char args[512];
    snprintf(args, sizeof args, "create-queue %s us-east-1 %s", m.endpoint, queue);
    cr_assert_eq(aws_tool(args, queue_url, sizeof queue_url), 0, "%s", queue_url);
    queue_url[strcspn(queue_url, "\n")] = '\0';
    char yaml[2048];
    snprintf(yaml, sizeof yaml,
             "region: us-east-1\n"
             "targets:\n"
             "  - name: orders\n"
             "    plugin: sqs\n"
             "    config:\n"
             "      endpoint: %s\n"
             "      queue_url: %s\n"
             "%s"
             "    retry_base_delay: 10ms\n"
             "    retry_max_delay: 50ms\n"
             "%s"
             "rules:\n"
             "  - name: all\n"
             "    pattern: {source: [{prefix: com.example}]}\n"
             "    targets: [orders]\n",
             m.endpoint, queue_url, extra_config ? extra_config : "",
             extra_target ? extra_target : "");
    harness_init(&h, yaml);
}

/* storage.retention, so that evbus replay can deliver events again. */
static void keep_delivered_events(void) {
    static char text[8192];
    FILE *f = fopen(h.config, "r");
    size_t n = fread(text, 1, sizeof text - 1, f);
    fclose(f);
    text[n] = '\0';
    char *at = strstr(text, "storage:\n");
    cr_assert_not_null(at);
    at += strlen("storage:\n");
    f = fopen(h.config, "w");
    fwrite(text, 1, (size_t)(at - text), f);
    fputs("  retention: 1h\n", f);
    fputs(at, f);
    fclose(f);
}

static void run_evbusd(void) {
    cr_assert(harness_start(&h), "evbusd did not start");
    evbus_client_destroy(&client); /* from a run before a restart */
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 30000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &client), EVBUS_OK);
}

/* Publishes ids PREFIX-0 .. PREFIX-(n-1), two sources, with attributes. */
static void publish(const char *prefix, int n) {
    for (int i = 0; i < n; i++) {
        char id[64], detail[128], pk[32];
        snprintf(id, sizeof id, "%s-%d", prefix, i);
        snprintf(detail, sizeof detail, "{\"n\":%d,\"text\":\"caf\\u00e9 \\\"%d\\\"\"}", i, i);
        snprintf(pk, sizeof pk, "customer-%d", i % 3);
        evbus_attr attrs[] = {{"tenant", "acme"}, {"trace.id", id}};
        evbus_event e = {.id = id,
                         .source = i % 2 ? "com.example.orders" : "com.example.billing",
                         .detail_type = "OrderPlaced",
                         .detail = detail,
                         .partition_key = pk,
                         .attributes = attrs,
                         .n_attributes = 2};
        evbus_ack ack;
        cr_assert_eq(evbus_publish(client, &e, 1, &ack), EVBUS_OK);
        cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED, "%s: %s", id, ack.reason);
    }
}

/* Every message in the queue, read (and deleted) with boto3. */
static json_t *receive_all(int want) {
    static char out[1 << 20];
    char args[1024];
    snprintf(args, sizeof args, "receive %s us-east-1 '%s' %d 10", m.endpoint, queue_url, want);
    cr_assert_eq(aws_tool(args, out, sizeof out), 0, "%s", out);
    json_t *msgs = json_loads(out, 0, NULL);
    cr_assert(json_is_array(msgs), "%s", out);
    return msgs;
}

/* Exactly ids PREFIX-0..n-1, once each, with the content published. */
static void assert_once_each(json_t *msgs, const char *prefix, int n, bool fifo) {
    cr_assert_eq(json_array_size(msgs), (size_t)n, "%zu messages for %d events",
                 json_array_size(msgs), n);
    int *seen = calloc((size_t)n, sizeof *seen);
    size_t i;
    json_t *msg;
    json_array_foreach(msgs, i, msg) {
        json_t *body = json_object_get(msg, "body");
        const char *id = json_string_value(json_object_get(body, "id"));
        cr_assert_not_null(id);
        int k = -1;
        char pfx[64];
        snprintf(pfx, sizeof pfx, "%s-", prefix);
        cr_assert_eq(strncmp(id, pfx, strlen(pfx)), 0, "%s", id);
        k = atoi(id + strlen(pfx));
        cr_assert(k >= 0 && k < n);
        seen[k]++;
        cr_assert_str_eq(json_string_value(json_object_get(body, "source")),
                         k % 2 ? "com.example.orders" : "com.example.billing");
        cr_assert_str_eq(json_string_value(json_object_get(body, "detail-type")), "OrderPlaced");
        cr_assert_str_eq(json_string_value(json_object_get(body, "region")), "us-east-1");
        json_t *detail = json_object_get(body, "detail");
        cr_assert_eq(json_integer_value(json_object_get(detail, "n")), k);
        char text[32];
        snprintf(text, sizeof text, "caf\xc3\xa9 \"%d\"", k);
        cr_assert_str_eq(json_string_value(json_object_get(detail, "text")), text);
        json_t *attrs = json_object_get(msg, "attributes");
        cr_assert_str_eq(json_string_value(json_object_get(attrs, "tenant")), "acme");
        cr_assert_str_eq(json_string_value(json_object_get(attrs, "trace.id")), id);
        if (fifo) {
            cr_assert_str_eq(json_string_value(json_object_get(msg, "dedup")), id);
            cr_assert_str_eq(json_string_value(json_object_get(msg, "group")),
                             json_string_value(json_object_get(body, "source")));
        }
    }
    for (int k = 0; k < n; k++)
        cr_assert_eq(seen[k], 1, "%s-%d arrived %d times", prefix, k, seen[k]);
    free(seen);
}

Test(sqs, events_arrive_once_with_their_content_and_attributes) {
    start_all("orders", NULL, NULL);
    run_evbusd();
    publish("std", 25);
    sink_wait_status(&h, "delivered", 25, 30);
    json_t *msgs = receive_all(25);
    assert_once_each(msgs, "std", 25, false);
    json_decref(msgs);
    json_t *t = sink_status(&h);
    json_t *pc = json_object_get(t, "plugin_counters");
    cr_assert_eq(json_integer_value(json_object_get(pc, "messages_sent")), 25);
    cr_assert_eq(json_integer_value(json_object_get(t, "dead_lettered")), 0);
    json_decref(t);
    cr_assert_eq(harness_stop(&h), 0, "a clean exit (and no leak under ASan)");
}

/* A FIFO queue: the group follows message_group_id, and events delivered
 * again (here: evbus replay) within 5 minutes are deduplicated by id. */
Test(sqs, fifo_groups_by_source_and_deduplicates_redeliveries) {
    start_all("orders.fifo", "      message_group_id: source\n", NULL);
    keep_delivered_events();
    run_evbusd();
    publish("fifo", 12);
    sink_wait_status(&h, "delivered", 12, 30);
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' replay -t orders --since 1h -c '%s' 2>&1", harness_bin("evbus"),
             h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    sink_wait_status(&h, "delivered", 24, 30);
    json_t *msgs = receive_all(12);
    assert_once_each(msgs, "fifo", 12, true);
    json_decref(msgs);
}

/* A wrong secret is the target's fault: retried well past
 * retry_max_attempts without a dead letter, shown in evbus status, logged
 * once, the secret never written; with the right secret everything
 * arrives. */
Test(sqs, wrong_secret_is_retried_and_shown_never_dead_lettered) {
    if (strcmp(EVBUS_TEST_IMPL, "moto") != 0)
        cr_skip_test("%s checks no signatures", EVBUS_TEST_IMPL);
    start_all("orders", NULL, "    retry_max_attempts: 2\n");
    char right[128];
    snprintf(right, sizeof right, "%s", m.secret);
    setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-0123456789", 1);
    run_evbusd();
    publish("bad", 5);
    time_t end = time(NULL) + 30;
    json_int_t faults = 0;
    while (time(NULL) < end && faults < 30) {
        json_t *t = sink_status(&h);
        faults = json_integer_value(json_object_get(t, "target_faults"));
        cr_assert_eq(json_integer_value(json_object_get(t, "dead_lettered")), 0);
        cr_assert_eq(json_integer_value(json_object_get(t, "delivered")), 0);
        json_decref(t);
        usleep(50000);
    }
    cr_assert_geq(faults, 30, "only %lld target faults", (long long)faults);
    char cmd[1024], out[8192];
    sink_status_text(&h, out, sizeof out);
    cr_assert(strstr(out, "orders: target fault (events are kept and retried): "
                          "SignatureDoesNotMatch: "),
              "%s", out);
    cr_assert(strstr(out, "check the credentials"), "%s", out);
    cr_assert_null(strstr(out, "wrong-secret"), "%s", out);
    static char log[1 << 20];
    harness_read_log(&h, log, sizeof log);
    cr_assert_null(strstr(log, "wrong-secret"), "the secret is never logged");
    sink_assert_logged_once(&h, "SQS refuses this target (HTTP 403)", "SQS refuses this target");
    cr_assert_eq(harness_stop(&h), 0);
    setenv("AWS_SECRET_ACCESS_KEY", right, 1);
    run_evbusd();
    sink_wait_status(&h, "delivered", 5, 30);
    json_t *msgs = receive_all(5);
    assert_once_each(msgs, "bad", 5, false);
    json_decref(msgs);
    snprintf(cmd, sizeof cmd, "'%s' dlq list -c '%s' 2>&1", harness_bin("evbus"), h.config);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert_str_eq(out, "no dead letters\n");
}

/* An explicit profile beats the environment, as in the SDKs. */
Test(sqs, credentials_from_a_profile) {
    start_all("orders", "      profile: evbus-test\n", NULL);
    char path[400];
    snprintf(path, sizeof path, "%s/credentials", h.dir);
    FILE *f = fopen(path, "w");
    fprintf(f,
            "[default]\naws_access_key_id = nope\naws_secret_access_key = nope\n\n"
            "[evbus-test]\naws_access_key_id = %s\naws_secret_access_key = %s\n",
            m.key_id, m.secret);
    fclose(f);
    setenv("AWS_SHARED_CREDENTIALS_FILE", path, 1);
    snprintf(path, sizeof path, "%s/no-config", h.dir);
    setenv("AWS_CONFIG_FILE", path, 1);
    char right[128];
    snprintf(right, sizeof right, "%s", m.secret);
    setenv("AWS_SECRET_ACCESS_KEY", "wrong-secret-from-env", 1);
    run_evbusd();
    publish("prof", 3);
    sink_wait_status(&h, "delivered", 3, 30);
    setenv("AWS_SECRET_ACCESS_KEY", right, 1);
    json_t *msgs = receive_all(3);
    assert_once_each(msgs, "prof", 3, false);
    json_decref(msgs);
}

/* ---- credentials served over HTTP: container endpoint and IMDSv2 ---- */

typedef struct creds_srv {
    int container_gets, token_puts, role_gets, creds_gets;
    int bad_auth; /* requests without the expected token */
    int lifetime_s;
} creds_srv;

static creds_srv srv;

static enum MHD_Result answer(struct MHD_Connection *conn, unsigned status, const char *body) {
    struct MHD_Response *r =
        MHD_create_response_from_buffer(strlen(body), (void *)body, MHD_RESPMEM_MUST_COPY);
    enum MHD_Result rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

static void creds_json(char *out, size_t len) {
    time_t exp = time(NULL) + srv.lifetime_s;
    struct tm tm;
    gmtime_r(&exp, &tm);
    char when[32];
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    snprintf(out, len,
             "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\",\"AccessKeyId\":\"%s\","
             "\"SecretAccessKey\":\"%s\",\"Expiration\":\"%s\"}",
             m.key_id, m.secret, when);
}

static enum MHD_Result on_creds(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *upload,
                                size_t *upload_len, void **con_cls) {
    (void)cls, (void)version, (void)upload, (void)upload_len;
    if (!*con_cls) {
        *con_cls = &srv;
        return MHD_YES;
    }
    char body[1024];
    if (strcmp(url, "/container-creds") == 0) {
        const char *auth = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Authorization");
        if (!auth || strcmp(auth, "Bearer from-the-file") != 0) {
            srv.bad_auth++;
            return answer(conn, 403, "{}");
        }
        srv.container_gets++;
        creds_json(body, sizeof body);
        return answer(conn, 200, body);
    }
    if (strcmp(url, "/latest/api/token") == 0) {
        const char *ttl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                      "X-aws-ec2-metadata-token-ttl-seconds");
        if (strcmp(method, "PUT") != 0 || !ttl)
            return answer(conn, 400, "");
        srv.token_puts++;
        return answer(conn, 200, "imds-token-1");
    }
    const char *tok =
        MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "X-aws-ec2-metadata-token");
    if (!tok || strcmp(tok, "imds-token-1") != 0) {
        srv.bad_auth++;
        return answer(conn, 401, "");
    }
    if (strcmp(url, "/latest/meta-data/iam/security-credentials/") == 0) {
        srv.role_gets++;
        return answer(conn, 200, "evbus-role\n");
    }
    if (strcmp(url, "/latest/meta-data/iam/security-credentials/evbus-role") == 0) {
        srv.creds_gets++;
        creds_json(body, sizeof body);
        return answer(conn, 200, body);
    }
    return answer(conn, 404, "");
}

static int start_creds_server(void) {
    creds_server = MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD, 0, NULL, NULL, on_creds, NULL,
                                    MHD_OPTION_END);
    cr_assert_not_null(creds_server);
    const union MHD_DaemonInfo *info = MHD_get_daemon_info(creds_server, MHD_DAEMON_INFO_BIND_PORT);
    return info->port;
}

static void no_env_keys(void) {
    unsetenv("AWS_ACCESS_KEY_ID");
    unsetenv("AWS_SECRET_ACCESS_KEY");
    setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials", 1);
    setenv("AWS_CONFIG_FILE", "/nonexistent/config", 1);
}

/* Short-lived container credentials: fetched with the token file's
 * value, refreshed before they expire, deliveries keep working after. */
Test(sqs, container_credentials_with_token_file_are_refreshed_before_expiry) {
    start_all("orders", NULL, NULL);
    srv.lifetime_s = 6;
    int port = start_creds_server();
    char url[128], path[400];
    snprintf(url, sizeof url, "http://127.0.0.1:%d/container-creds", port);
    snprintf(path, sizeof path, "%s/token", h.dir);
    FILE *f = fopen(path, "w");
    fputs("Bearer from-the-file\n", f);
    fclose(f);
    char key[64], secret[128];
    snprintf(key, sizeof key, "%s", m.key_id);
    snprintf(secret, sizeof secret, "%s", m.secret);
    no_env_keys();
    setenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", url, 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", "Bearer not-this-one", 1);
    setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", path, 1);
    run_evbusd();
    publish("ctr", 3);
    sink_wait_status(&h, "delivered", 3, 30);
    /* Past the first credentials' expiry: only refreshed ones can sign. */
    time_t end = time(NULL) + 20;
    while (time(NULL) < end && srv.container_gets < 3)
        usleep(50000);
    cr_assert_geq(srv.container_gets, 3, "refreshed before expiry (%d fetches)",
                  srv.container_gets);
    publish("ctr2", 3);
    sink_wait_status(&h, "delivered", 6, 30);
    cr_assert_eq(srv.bad_auth, 0);
    cr_assert_eq(sink_status_num(&h, "dead_lettered"), 0);
    cr_assert_eq(harness_stop(&h), 0, "a clean exit (and no leak under ASan)");
    setenv("AWS_ACCESS_KEY_ID", key, 1);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    json_t *msgs = receive_all(6);
    cr_assert_eq(json_array_size(msgs), 6);
    json_decref(msgs);
}

Test(sqs, instance_metadata_credentials_token_first) {
    start_all("orders", NULL, NULL);
    srv.lifetime_s = 3600;
    int port = start_creds_server();
    char ep[128];
    snprintf(ep, sizeof ep, "http://127.0.0.1:%d", port);
    char key[64], secret[128];
    snprintf(key, sizeof key, "%s", m.key_id);
    snprintf(secret, sizeof secret, "%s", m.secret);
    no_env_keys();
    unsetenv("AWS_EC2_METADATA_DISABLED");
    setenv("AWS_EC2_METADATA_SERVICE_ENDPOINT", ep, 1);
    run_evbusd();
    publish("imds", 4);
    sink_wait_status(&h, "delivered", 4, 30);
    cr_assert_eq(srv.token_puts, 1);
    cr_assert_eq(srv.role_gets, 1);
    cr_assert_eq(srv.creds_gets, 1);
    cr_assert_eq(srv.bad_auth, 0, "every metadata GET carried the token");
    cr_assert_eq(harness_stop(&h), 0, "a clean exit (and no leak under ASan)");
    setenv("AWS_ACCESS_KEY_ID", key, 1);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    json_t *msgs = receive_all(4);
    assert_once_each(msgs, "imds", 4, false);
    json_decref(msgs);
}
