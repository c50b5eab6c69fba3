/* Running the HTTP ingest: HTTPS with a certificate made at test time
 * (verified by boto3 and the AWS CLI), the slow-client timeout, its
 * counters on /metrics, and reloading its access keys on SIGHUP. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "http_test_util.h"
#include "moto.h"

static harness h;
static int port;

static atomic_bool flood_stop;

static void stop(void) {
    atomic_store(&flood_stop, true);
    harness_cleanup(&h);
}

TestSuite(http_ops, .fini = stop, .timeout = 150);

#define client(...)             http_test_client(__VA_ARGS__)
#define delivered(needle, want) http_test_delivered(&h, needle, want)
#define stored_events()         http_test_stored_events(&h)

/* HTTPS with a certificate made for this test: boto3 and the AWS CLI verify
 * it against it as their CA and publish; a client that trusts only the
 * system's CAs refuses the connection. */
Test(http_ops, https_is_served_with_the_configured_certificate) {
    char dir[] = "/tmp/evbus-test-tls-XXXXXX";
    cr_assert_not_null(mkdtemp(dir));
    char cmd[2048], out[8192];
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=127.0.0.1 "
             "-addext subjectAltName=IP:127.0.0.1 -keyout '%s/key.pem' -out '%s/cert.pem' 2>&1",
             dir, dir);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    char tls[600];
    snprintf(tls, sizeof tls, "    tls_cert: %s/cert.pem\n    tls_key: %s/key.pem\n", dir, dir);
    port = http_test_start(&h, tls, NULL);
    /* Without the test's CA the certificate is refused. */
    snprintf(cmd, sizeof cmd,
             "python3 '%s/tests/integration/http_client.py' put https://127.0.0.1:%d %s '%s' "
             "'[{\"Source\":\"com.example.tls\",\"DetailType\":\"T\",\"Detail\":\"{}\"}]' 2>&1",
             getenv("EVBUS_SRC_DIR"), port, KEY, SECRET);
    cr_assert_neq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "CERTIFICATE_VERIFY_FAILED"), "%s", out);
    snprintf(cmd, sizeof cmd,
             "HTTP_CLIENT_CA_BUNDLE='%s/cert.pem' python3 '%s/tests/integration/http_client.py' "
             "put https://127.0.0.1:%d %s '%s' '[{\"Source\":\"com.example.tls\","
             "\"DetailType\":\"T\",\"Detail\":\"{}\",\"Resources\":[\"evbus:id/tls-2\"]}]' 2>&1",
             dir, getenv("EVBUS_SRC_DIR"), port, KEY, SECRET);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "\"status\": 200") && strstr(out, "\"FailedEntryCount\": 0"), "%s", out);
    /* A large request (ten 20 KB entries): bodies cross many TLS records
     * and connection-pool-sized chunks. */
    char ten[1200] = "[";
    for (int i = 0; i < 10; i++)
        snprintf(ten + strlen(ten), sizeof ten - strlen(ten),
                 "%s{\"Source\":\"com.example.tls\",\"DetailType\":\"T\",\"Detail\":\"{}\","
                 "\"Resources\":[\"evbus:id/big-%d\"]}",
                 i ? "," : "", i);
    strcat(ten, "]");
    snprintf(cmd, sizeof cmd,
             "HTTP_CLIENT_PAD=20000 HTTP_CLIENT_CA_BUNDLE='%s/cert.pem' python3 "
             "'%s/tests/integration/http_client.py' put https://127.0.0.1:%d %s '%s' '%s' 2>&1",
             dir, getenv("EVBUS_SRC_DIR"), port, KEY, SECRET, ten);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "\"status\": 200") && strstr(out, "\"FailedEntryCount\": 0"), "%s", out);
    cr_assert_eq(delivered("big-", 10), 10);
    snprintf(cmd, sizeof cmd,
             "AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY='%s' AWS_DEFAULT_REGION=us-east-1 "
             "AWS_CONFIG_FILE=/dev/null AWS_SHARED_CREDENTIALS_FILE=/dev/null "
             "aws events put-events --output json --endpoint-url https://127.0.0.1:%d "
             "--ca-bundle '%s/cert.pem' --entries '[{\"Source\":\"com.example.tls\","
             "\"DetailType\":\"T\",\"Detail\":\"{}\",\"Resources\":[\"evbus:id/tls-3\"]}]' 2>&1",
             KEY, SECRET, port, dir);
    cr_assert_eq(harness_run(cmd, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "\"FailedEntryCount\": 0") && strstr(out, "tls-3"), "%s", out);
    cr_assert_eq(delivered("tls-3", 1), 1);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    cr_assert_eq(system(cmd), 0);
}

/* A client that sends half a request and stalls is cut off after
 * ingest.http.connection_timeout, and evbusd goes on serving. */
Test(http_ops, a_stalled_request_is_cut_off_and_the_daemon_keeps_serving) {
    port = http_test_start(&h, "    connection_timeout: 1s\n", NULL);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    cr_assert_eq(connect(fd, (struct sockaddr *)&a, sizeof a), 0);
    static const char half[] =
        "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AWSEvents.PutEvents\r\n"
        "Content-Length: 1000\r\n\r\n{\"Entries\":[{\"Source\":\"com.exa";
    cr_assert_eq(write(fd, half, sizeof half - 1), (ssize_t)(sizeof half - 1));
    /* The read ends (EOF or reset) when evbusd closes the connection; the
     * socket's own timeout is only the test's deadline. */
    struct timeval tv = {.tv_sec = 20};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    time_t t0 = time(NULL);
    char buf[512];
    ssize_t n;
    while ((n = read(fd, buf, sizeof buf)) > 0)
        ;
    cr_assert(n == 0 || errno == ECONNRESET, "still open after %lds: %s", (long)(time(NULL) - t0),
              strerror(errno));
    close(fd);
    char out[4096];
    client(out, sizeof out,
           "put http://127.0.0.1:%d %s '%s' '[{\"Source\":\"com.example.after\","
           "\"DetailType\":\"T\",\"Detail\":\"{}\"}]'",
           port, KEY, SECRET);
    cr_assert(strstr(out, "\"status\": 200") && strstr(out, "\"FailedEntryCount\": 0"), "%s", out);
    cr_assert_eq(stored_events(), 1, "nothing of the stalled request");
}

/* GETs /metrics from evbusd's metrics endpoint into body. */
static void scrape(int metrics_port, char *body, size_t len) {
    char cmd[256];
    snprintf(cmd, sizeof cmd, "curl -sS http://127.0.0.1:%d/metrics 2>&1", metrics_port);
    cr_assert_eq(harness_run(cmd, body, len), 0, "%s", body);
}

/* Each kind of answer moves its own counter on /metrics. */
Test(http_ops, metrics_count_requests_entries_and_refusals) {
    int mport = moto_free_port();
    char ingest[160];
    snprintf(ingest, sizeof ingest, "  max_request_bytes: 4096\n  max_event_size: 2048\n");
    port = http_test_start(&h, NULL, ingest);
    /* The harness wrote the configuration: metrics go at its end, a
     * top-level section of their own. */
    harness_stop(&h);
    FILE *f = fopen(h.config, "a");
    fprintf(f, "metrics:\n  listen: 127.0.0.1:%d\n", mport);
    fclose(f);
    cr_assert(harness_start(&h), "see %s", h.log);
    char out[8192];
    /* Two entries: one stored, one outside the key's sources. */
    client(out, sizeof out,
           "put http://127.0.0.1:%d %s '%s' '[{\"Source\":\"com.example.m\",\"DetailType\":"
           "\"T\",\"Detail\":\"{}\"},{\"Source\":\"org.other\",\"DetailType\":\"T\","
           "\"Detail\":\"{}\"}]'",
           port, KEY, SECRET);
    cr_assert(strstr(out, "\"FailedEntryCount\": 1"), "%s", out);
    const char *body = "{\"Entries\":[{\"Source\":\"com.example.m\",\"DetailType\":\"T\","
                       "\"Detail\":\"{}\"}]}";
    client(out, sizeof out, "raw http://127.0.0.1:%d %s wrong '%s' ''", port, KEY, body);
    cr_assert(strstr(out, "\"status\": 403"), "%s", out);
    client(out, sizeof out, "raw http://127.0.0.1:%d %s '%s' '{\"Entries\": [' ''", port, KEY,
           SECRET);
    cr_assert(strstr(out, "\"status\": 400"), "%s", out);
    char big[5000];
    memset(big, 'a', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    client(out, sizeof out, "raw http://127.0.0.1:%d %s '%s' '%s' ''", port, KEY, SECRET, big);
    cr_assert(strstr(out, "\"status\": 413"), "%s", out);
    static char m[1 << 16];
    scrape(mport, m, sizeof m);
    static const char *const want[] = {
        "# TYPE evbus_http_requests_total counter\n",
        "evbus_http_requests_total 4\n",
        "evbus_http_entries_total{result=\"stored\"} 1\n",
        "evbus_http_entries_total{result=\"failed\"} 1\n",
        "evbus_http_refused_signature_total 1\n",
        "evbus_http_errors_total{kind=\"validation\"} 1\n",
        "evbus_http_errors_total{kind=\"too_large\"} 1\n",
        "evbus_http_errors_total{kind=\"throttled\"} 0\n",
        "evbus_http_errors_total{kind=\"timed_out\"} 0\n",
        "evbus_http_credential_reloads_total 0\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
        cr_assert(strstr(m, want[i]), "no %s in:\n%s", want[i], m);
}

/* A key added to ingest.http.credentials signs requests after SIGHUP,
 * without a restart; a file broken later leaves the keys as they were. */
Test(http_ops, sighup_reloads_the_access_keys) {
    port = http_test_start(&h, NULL, NULL);
    char out[4096];
    const char *body = "{\"Entries\":[{\"Source\":\"com.example.new\",\"DetailType\":\"T\","
                       "\"Detail\":\"{}\"}]}";
    client(out, sizeof out, "raw http://127.0.0.1:%d AKIDNEWKEY newsecret '%s' ''", port, body);
    cr_assert(strstr(out, "\"status\": 403") && strstr(out, "UnrecognizedClientException"), "%s",
              out);
    char keys[400];
    snprintf(keys, sizeof keys, "%s/http.keys", h.dir);
    FILE *f = fopen(keys, "a");
    fprintf(f, "newcomer AKIDNEWKEY newsecret com.example.*\n");
    fclose(f);
    cr_assert_eq(kill(h.pid, SIGHUP), 0);
    bool taken = false;
    for (time_t end = time(NULL) + 20; !taken && time(NULL) < end;) {
        client(out, sizeof out, "raw http://127.0.0.1:%d AKIDNEWKEY newsecret '%s' ''", port, body);
        taken = strstr(out, "\"status\": 200") != NULL;
    }
    cr_assert(taken, "the new key is still refused: %s", out);
    f = fopen(keys, "a");
    fprintf(f, "broken AKID-NOT-VALID x\n");
    fclose(f);
    cr_assert_eq(kill(h.pid, SIGHUP), 0);
    char log[1 << 16];
    bool refused = false;
    for (time_t end = time(NULL) + 20; !refused && time(NULL) < end; usleep(20000)) {
        harness_read_log(&h, log, sizeof log);
        refused = strstr(log, "the keys stay as they were") != NULL;
    }
    cr_assert(refused, "%s", log);
    client(out, sizeof out, "raw http://127.0.0.1:%d AKIDNEWKEY newsecret '%s' ''", port, body);
    cr_assert(strstr(out, "\"status\": 200"), "%s", out);
    cr_assert_null(strstr(log, "newsecret"), "no secret in the log");
    cr_assert_eq(stored_events(), 2);
}

/* A stream of HTTP requests on many kept-alive connections, and more
 * connections than ingest.http.max_connections, while ZeroMQ producers
 * publish: their events are still acked (the ingest takes HTTP and ZeroMQ
 * requests in turns), and HTTP answers again once the flood stops. */
#define FLOOD_BUSY  24
#define FLOOD_EXTRA 100

static atomic_long flood_answers;

static int connect_http(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

static void *flood_main(void *arg) {
    (void)arg;
    static const char body[] = "{\"Entries\":[{\"Source\":\"com.example.flood\",\"DetailType\":"
                               "\"T\",\"Detail\":\"{}\"}]}";
    char req[512];
    int len = snprintf(req, sizeof req,
                       "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AWSEvents.PutEvents\r\n"
                       "Content-Length: %zu\r\n\r\n%s",
                       sizeof body - 1, body);
    int fds[FLOOD_BUSY];
    for (int i = 0; i < FLOOD_BUSY; i++)
        fds[i] = connect_http();
    while (!atomic_load(&flood_stop)) {
        for (int i = 0; i < FLOOD_BUSY; i++)
            if (fds[i] >= 0 && write(fds[i], req, (size_t)len) != len) {
                close(fds[i]);
                fds[i] = connect_http();
            }
        for (int i = 0; i < FLOOD_BUSY; i++) {
            char buf[4096];
            struct timeval tv = {.tv_sec = 5};
            setsockopt(fds[i], SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
            if (fds[i] >= 0 && read(fds[i], buf, sizeof buf) > 0)
                atomic_fetch_add(&flood_answers, 1);
        }
    }
    for (int i = 0; i < FLOOD_BUSY; i++)
        if (fds[i] >= 0)
            close(fds[i]);
    return NULL;
}

Test(http_ops, an_http_flood_does_not_starve_zeromq_producers) {
    port = http_test_start(&h,
                           "    allow_unsigned: true\n    max_connections: 40\n"
                           "    max_connections_per_ip: 40\n",
                           NULL);
    pthread_t flood;
    cr_assert_eq(pthread_create(&flood, NULL, flood_main, NULL), 0);
    for (time_t end = time(NULL) + 20; atomic_load(&flood_answers) < 100 && time(NULL) < end;)
        usleep(10000);
    cr_assert_geq(atomic_load(&flood_answers), 100, "the flood is not being answered");
    /* Then idle connections up to the limit, and past it (closed at once):
     * HTTP clients are shut out once it is reached, ZeroMQ ones are not. */
    int extra[FLOOD_EXTRA];
    for (int i = 0; i < FLOOD_EXTRA; i++)
        extra[i] = connect_http();
    evbus_client_t *zc;
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 10000;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &zc), EVBUS_OK);
    for (int i = 0; i < 20; i++) {
        char id[32];
        snprintf(id, sizeof id, "zmq-%d", i);
        evbus_event e = {.id = id, .source = "com.example.zmq", .detail_type = "T", .detail = "{}"};
        evbus_ack ack;
        cr_assert_eq(evbus_publish(zc, &e, 1, &ack), EVBUS_OK, "publish %d during the flood", i);
        cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);
    }
    evbus_client_destroy(&zc);
    long during = atomic_load(&flood_answers);
    atomic_store(&flood_stop, true);
    pthread_join(flood, NULL);
    for (int i = 0; i < FLOOD_EXTRA; i++)
        if (extra[i] >= 0)
            close(extra[i]);
    cr_assert_gt(during, 100, "HTTP went on being answered while ZeroMQ published");
    char out[4096];
    client(out, sizeof out,
           "put http://127.0.0.1:%d %s '%s' '[{\"Source\":\"com.example.after\","
           "\"DetailType\":\"T\",\"Detail\":\"{}\"}]'",
           port, KEY, SECRET);
    cr_assert(strstr(out, "\"status\": 200") && strstr(out, "\"FailedEntryCount\": 0"), "%s", out);
}
