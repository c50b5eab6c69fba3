/* The EventBridge-compatible HTTP ingest (ingest.http), driven by clients no
 * one here wrote: the AWS CLI and boto3 (botocore's SigV4 signer). Events
 * published over HTTP are stored, routed and delivered like ZeroMQ ones (the
 * example JSON-lines sink); a producer's own id makes a retry a duplicate;
 * bad signatures get 403 and store nothing; bad bodies get clear errors and
 * leave both ingests serving. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"
#include "http_test_util.h"

static harness h;
static int port;

static void stop(void) {
    harness_cleanup(&h);
}

TestSuite(http_ingest, .fini = stop, .timeout = 150);

static void start(const char *http_extra, const char *ingest_extra) {
    port = http_test_start(&h, http_extra, ingest_extra);
}

#define client http_test_client

#define delivered(needle, want) http_test_delivered(&h, needle, want)
#define stored_events()         http_test_stored_events(&h)

Test(http_ingest, aws_cli_publish_is_stored_routed_and_delivered) {
    start(NULL, NULL);
    char cmd[2048], out[4096];
    snprintf(cmd, sizeof cmd,
             "AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY='%s' AWS_DEFAULT_REGION=us-east-1 "
             "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null "
             "aws events put-events --output json --endpoint-url http://127.0.0.1:%d --entries "
             "'[{\"Source\":\"com.example.orders\",\"DetailType\":\"OrderPlaced\","
             "\"Detail\":\"{\\\"amount\\\":12}\",\"Resources\":[\"evbus:id/cli-1\","
             "\"arn:aws:example:::order/1\"]},"
             "{\"Source\":\"com.example.users\",\"DetailType\":\"SignedUp\",\"Detail\":\"{}\"}]' "
             "2>&1",
             KEY, SECRET, port);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "\"FailedEntryCount\": 0"), "%s", out);
    cr_assert(strstr(out, "\"EventId\": \"cli-1\""), "the producer's own id comes back: %s", out);
    cr_assert_eq(delivered("\"id\":\"cli-1\"", 1), 1, "the event reaches the file sink");
    cr_assert_eq(delivered("\"source\":\"com.example.users\"", 1), 1,
                 "the event with an id made by evbus too");
    cr_assert_eq(delivered("arn:aws:example:::order/1", 1), 1, "its other resource is kept");
    cr_assert_eq(delivered("evbus:id/", 1), 0, "the id resource is not stored as a resource");
}

Test(http_ingest, boto3_answers_each_entry_in_order_with_the_region) {
    start(NULL, NULL);
    char out[4096];
    client(out, sizeof out,
           "put http://127.0.0.1:%d %s '%s' '["
           "{\"Source\":\"com.example.a\",\"DetailType\":\"T\",\"Detail\":\"{\\\"n\\\":1}\"},"
           "{\"Source\":\"com.example.b\",\"DetailType\":\"T\",\"Detail\":\"not json\"},"
           "{\"Source\":\"org.elsewhere\",\"DetailType\":\"T\",\"Detail\":\"{}\"},"
           "{\"Source\":\"com.example.c\",\"DetailType\":\"T\",\"Detail\":\"{}\","
           "\"Time\":\"2026-11-23T17:44:20Z\",\"EventBusName\":\"orders\"}]'",
           port, KEY, SECRET);
    cr_assert(strstr(out, "\"status\": 200"), "%s", out);
    cr_assert(strstr(out, "\"region\": \"test-1\""), "X-Evbus-Region names the region: %s", out);
    cr_assert(strstr(out, "\"FailedEntryCount\": 2"), "%s", out);
    const char *a = strstr(out, "EventId"), *b = strstr(out, "MalformedDetail"),
               *c = strstr(out, "NotAuthorizedForSourceException"),
               *d = b ? strstr(b, "EventId") : NULL;
    cr_assert(a && b && c && d && a < b && b < c && c < d, "answers in entry order: %s", out);
    cr_assert_eq(delivered("\"source\":\"com.example.c\"", 1), 1);
    cr_assert_eq(delivered("\"time\":\"2026-11-23T17:44:20Z\"", 1), 1, "Time is kept");
    cr_assert_eq(stored_events(), 2, "the two good entries, nothing else");
}

Test(http_ingest, a_retry_with_the_producers_id_is_acked_and_stored_once) {
    start(NULL, NULL);
    char out[4096];
    for (int i = 0; i < 2; i++) {
        client(out, sizeof out,
               "put http://127.0.0.1:%d %s '%s' '[{\"Source\":\"com.example.pay\","
               "\"DetailType\":\"Paid\",\"Detail\":\"{}\",\"Resources\":[\"evbus:id/pay-42\"]}]'",
               port, KEY, SECRET);
        cr_assert(strstr(out, "\"FailedEntryCount\": 0"), "attempt %d: %s", i, out);
        cr_assert(strstr(out, "\"EventId\": \"pay-42\""), "attempt %d: %s", i, out);
    }
    cr_assert_eq(stored_events(), 1, "stored once");
    char log[1 << 16];
    harness_read_log(&h, log, sizeof log);
    cr_assert(strstr(log, "1 accepted, 1 duplicate"), "%s", log);
}

Test(http_ingest, bad_signatures_get_403_and_store_nothing) {
    start(NULL, NULL);
    const char *body = "{\"Entries\":[{\"Source\":\"com.example.orders\",\"DetailType\":\"T\","
                       "\"Detail\":\"{}\"}]}";
    static const struct {
        const char *key, *secret, *mode, *type;
    } cases[] = {
        {KEY, "wrong-secret", "", "InvalidSignatureException"},
        {"AKIDNOBODY", SECRET, "", "UnrecognizedClientException"},
        {KEY, SECRET, "tamper", "InvalidSignatureException"},
        {KEY, SECRET, "skew=-400", "InvalidSignatureException"},
        {KEY, SECRET, "skew=400", "InvalidSignatureException"},
        {KEY, SECRET, "unsigned", "MissingAuthenticationTokenException"},
    };
    char out[4096];
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        client(out, sizeof out, "raw http://127.0.0.1:%d %s '%s' '%s' '%s'", port, cases[i].key,
               cases[i].secret, body, cases[i].mode);
        cr_assert(strstr(out, "\"status\": 403"), "case %zu: %s", i, out);
        char type[128];
        snprintf(type, sizeof type, "\"type\": \"%s\"", cases[i].type);
        cr_assert(strstr(out, type), "case %zu: %s", i, out);
    }
    cr_assert(strstr(out, "__type"), "the body is an AWS JSON error: %s", out);
    /* The same request, signed right, is taken: the refusals above were for
     * their signatures alone. */
    client(out, sizeof out, "raw http://127.0.0.1:%d %s '%s' '%s' ''", port, KEY, SECRET, body);
    cr_assert(strstr(out, "\"status\": 200") && strstr(out, "FailedEntryCount\\\":0"), "%s", out);
    char log[1 << 16];
    harness_read_log(&h, log, sizeof log);
    cr_assert_null(strstr(log, SECRET), "the secret never reaches the log");
    cr_assert_null(strstr(log, "wrong-secret"));
    cr_assert_eq(stored_events(), 1, "only the request signed right");
}

/* Sends `head` and then closes the connection; returns what came back. */
static void send_and_close(const char *head, size_t len, char *reply, size_t replylen) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    cr_assert_eq(write(fd, head, len), (ssize_t)len);
    shutdown(fd, SHUT_WR);
    struct timeval tv = {.tv_sec = 10};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    ssize_t n = read(fd, reply, replylen - 1);
    reply[n > 0 ? n : 0] = '\0';
    close(fd);
}

Test(http_ingest, bad_bodies_get_clear_errors_and_both_ingests_keep_serving) {
    start("    allow_unsigned: true\n", "  max_request_bytes: 4096\n  max_event_size: 2048\n");
    char out[8192];
    client(out, sizeof out, "raw http://127.0.0.1:%d x y '{\"Entries\": [' unsigned", port);
    cr_assert(strstr(out, "\"status\": 400") && strstr(out, "ValidationException") &&
                  strstr(out, "not valid JSON"),
              "%s", out);
    char eleven[2048] = "{\"Entries\":[";
    for (int i = 0; i < 11; i++)
        strcat(eleven, i ? ",{\"Source\":\"com.example.x\",\"DetailType\":\"T\",\"Detail\":\"{}\"}"
                         : "{\"Source\":\"com.example.x\",\"DetailType\":\"T\",\"Detail\":\"{}\"}");
    strcat(eleven, "]}");
    client(out, sizeof out, "raw http://127.0.0.1:%d x y '%s' unsigned", port, eleven);
    cr_assert(strstr(out, "\"status\": 400") && strstr(out, "ValidationException") &&
                  strstr(out, "less than or equal to 10"),
              "%s", out);
    char big[6000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    client(out, sizeof out, "raw http://127.0.0.1:%d x y '%s' unsigned", port, big);
    cr_assert(strstr(out, "\"status\": 413") && strstr(out, "RequestEntityTooLargeException") &&
                  strstr(out, "ingest.max_request_bytes"),
              "%s", out);
    /* A connection cut in the middle of its body: nothing is answered or
     * stored, and evbusd goes on. */
    char head[512], reply[1024];
    int n = snprintf(head, sizeof head,
                     "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AWSEvents.PutEvents\r\n"
                     "Content-Type: application/x-amz-json-1.1\r\nContent-Length: 1000\r\n\r\n"
                     "{\"Entries\":[{\"Source\":\"com.example.cut\"");
    send_and_close(head, (size_t)n, reply, sizeof reply);
    cr_assert_null(strstr(reply, "200 OK"), "%s", reply);
    /* HTTP still serves. */
    client(out, sizeof out,
           "raw http://127.0.0.1:%d x y '{\"Entries\":[{\"Source\":\"com.example.ok\","
           "\"DetailType\":\"T\",\"Detail\":\"{}\"}]}' unsigned",
           port);
    cr_assert(strstr(out, "\"status\": 200") && strstr(out, "FailedEntryCount\\\":0"), "%s", out);
    /* ZeroMQ still serves. */
    evbus_client_t *zc;
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 10000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &zc), EVBUS_OK);
    evbus_event e = {
        .id = "zmq-1", .source = "com.example.zmq", .detail_type = "T", .detail = "{}"};
    evbus_ack ack;
    cr_assert_eq(evbus_publish(zc, &e, 1, &ack), EVBUS_OK);
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);
    evbus_client_destroy(&zc);
    cr_assert_eq(stored_events(), 2, "the good HTTP request and the ZeroMQ one");
}

Test(http_ingest, allow_unsigned_is_refused_off_loopback) {
    harness_init_ingest(&h,
                        "  http:\n"
                        "    listen: 0.0.0.0:8088\n"
                        "    allow_unsigned: true\n",
                        NULL);
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' --check-config --config '%s' 2>&1", harness_bin("evbusd"),
             h.config);
    cr_assert_neq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "evbus.yaml:8:") && strstr(out, "ingest.http.allow_unsigned") &&
                  strstr(out, "loopback"),
              "file, line and key: %s", out);
}

Test(http_ingest, a_bad_credentials_line_is_reported_without_its_secret) {
    harness_init_ingest(&h,
                        "  http:\n"
                        "    listen: 127.0.0.1:8088\n"
                        "    credentials: http.keys\n",
                        NULL);
    char keys[400];
    snprintf(keys, sizeof keys, "%s/http.keys", h.dir);
    FILE *f = fopen(keys, "w");
    fprintf(f, "good AKIDGOOD goodsecret\nbad AKID-WITH-DASH topsecretvalue\n");
    fclose(f);
    char cmd[1024], out[4096];
    snprintf(cmd, sizeof cmd, "'%s' --check-config --config '%s' 2>&1", harness_bin("evbusd"),
             h.config);
    cr_assert_neq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "ingest.http.credentials") && strstr(out, "http.keys:2:") &&
                  strstr(out, "access key id"),
              "%s", out);
    cr_assert_null(strstr(out, "topsecretvalue"), "%s", out);
}
