/* The metrics listener under slow and wrong clients: idle and half-sent
 * connections are closed after metrics.connection_timeout, one address
 * cannot take the slots a scraper needs, and methods other than GET and
 * HEAD get 405 with Allow. Everything on loopback; every loop is bounded in
 * count and time. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define SLOW_CLIENTS 300

static harness h;
static int port;
static int slow[SLOW_CLIENTS];

static void stop(void) {
    for (int i = 0; i < SLOW_CLIENTS; i++)
        if (slow[i] > 0)
            close(slow[i]);
    harness_cleanup(&h);
}

TestSuite(metrics, .fini = stop, .timeout = 120);

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0);
    getsockname(fd, (struct sockaddr *)&a, &len);
    close(fd);
    return ntohs(a.sin_port);
}

static void start(const char *metrics_yaml) {
    char extra[512];
    port = free_port();
    snprintf(extra, sizeof extra, "metrics:\n  listen: 127.0.0.1:%d\n%s", port, metrics_yaml);
    harness_init(&h, extra);
    cr_assert(harness_start(&h), "evbusd did not start: see %s", h.log);
}

/* A TCP connection to the listener from `source` (another loopback address
 * stands for another client). */
static int connect_from(const char *source) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    cr_assert_geq(fd, 0);
    struct sockaddr_in src = {.sin_family = AF_INET}, dst = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &src.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
    dst.sin_port = htons((uint16_t)port);
    cr_assert_eq(bind(fd, (struct sockaddr *)&src, sizeof src), 0, "%s", strerror(errno));
    cr_assert_eq(connect(fd, (struct sockaddr *)&dst, sizeof dst), 0, "%s", strerror(errno));
    return fd;
}

/* Sends `request` from 127.0.0.1 and reads the whole answer (the server
 * closes after it: HTTP/1.0) within 5 s. Returns the bytes read. */
static size_t http(const char *request, char *out, size_t outlen) {
    int fd = connect_from("127.0.0.1");
    cr_assert_eq(write(fd, request, strlen(request)), (ssize_t)strlen(request));
    size_t got = 0;
    long long end = now_ms() + 5000;
    while (got + 1 < outlen && now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) <= 0)
            continue;
        ssize_t n = read(fd, out + got, outlen - 1 - got);
        if (n <= 0)
            break;
        got += (size_t)n;
    }
    out[got] = '\0';
    close(fd);
    return got;
}

/* Whether the server has closed fd (EOF or reset) within `ms`. */
static bool closed_within(int fd, int ms) {
    long long end = now_ms() + ms;
    do {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 50) > 0) {
            char buf[256];
            ssize_t n = read(fd, buf, sizeof buf);
            if (n <= 0)
                return true;
        }
    } while (now_ms() < end);
    return false;
}

Test(metrics, slow_clients_are_cut_off_and_scrapes_still_work) {
    start("  connection_timeout: 1s\n  max_connections_per_ip: 16\n");
    /* 300 clients from 127.0.0.2: half connect and say nothing, half send
     * half a request and stop. */
    static const char half[] = "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    for (int i = 0; i < SLOW_CLIENTS; i++) {
        slow[i] = connect_from("127.0.0.2");
        if (i % 2)
            (void)!write(slow[i], half, sizeof half - 1);
    }
    static char body[65536];
    http("GET /metrics HTTP/1.0\r\n\r\n", body, sizeof body);
    cr_assert(strncmp(body, "HTTP/1.0 200", 12) == 0 || strncmp(body, "HTTP/1.1 200", 12) == 0,
              "scrape while 300 slow clients wait: %.200s", body);
    cr_assert(strstr(body, "evbus_ingest_events_total{status=\"accepted\"} 0\n"), "%s", body);
    /* Every slow connection is closed: those past the per-address limit at
     * once, the others once the 1 s timeout has passed. */
    long long started = now_ms();
    int open_after_timeout = 0;
    for (int i = 0; i < SLOW_CLIENTS; i++) {
        int left = (int)(started + 10000 - now_ms());
        if (!closed_within(slow[i], left > 0 ? left : 0))
            open_after_timeout++;
        close(slow[i]);
        slow[i] = -1;
    }
    cr_assert_eq(open_after_timeout, 0, "%d of %d slow connections still open after 10 s",
                 open_after_timeout, SLOW_CLIENTS);
    http("GET /metrics HTTP/1.0\r\n\r\n", body, sizeof body);
    cr_assert(strstr(body, " 200 "), "%.200s", body);
    cr_assert_eq(harness_stop(&h), 0);
    /* libmicrohttpd's refusals reach the log as the project's lines, with a
     * time and a level, not as bare text on stderr. */
    static char log[1 << 20];
    harness_read_log(&h, log, sizeof log);
    cr_assert(strstr(log, "Z warn [metrics] libmicrohttpd: Server reached connection limit"),
              "%.2000s", log);
    cr_assert_null(strstr(log, "\nServer reached"), "%.2000s", log);
}

/* Slowloris: clients that send a header byte every 200 ms were never idle
 * long enough for libmicrohttpd's timeout, so 16 of them held every slot of
 * their address forever. Each request now has connection_timeout to arrive
 * whole. */
Test(metrics, trickling_clients_are_cut_off_at_the_deadline) {
    start("  connection_timeout: 1s\n  max_connections_per_ip: 16\n");
    enum { N = 16 };
    int fds[N];
    for (int i = 0; i < N; i++) {
        fds[i] = slow[i] = connect_from("127.0.0.3");
        (void)!send(fds[i], "GET /metrics HTTP/1.1\r\nX-Slow: ", 31, MSG_NOSIGNAL);
    }
    long long started = now_ms();
    int open = N;
    bool closed[N] = {false};
    while (open > 0 && now_ms() < started + 6000) {
        for (int i = 0; i < N; i++) {
            if (closed[i])
                continue;
            char buf[256];
            if (send(fds[i], "a", 1, MSG_NOSIGNAL) != 1 ||
                (recv(fds[i], buf, sizeof buf, MSG_DONTWAIT) == 0)) {
                closed[i] = true;
                open--;
            }
        }
        struct timespec ts = {0, 200 * 1000000};
        nanosleep(&ts, NULL); /* the trickle's pace, not a synchronisation */
    }
    long long took = now_ms() - started;
    cr_assert_eq(open, 0, "%d of %d trickling connections still open after %lld ms", open, N, took);
    /* The same address can scrape again. */
    int fd = connect_from("127.0.0.3");
    static const char get[] = "GET /metrics HTTP/1.0\r\n\r\n";
    cr_assert_eq(write(fd, get, sizeof get - 1), (ssize_t)(sizeof get - 1));
    char answer[64] = "";
    long long end = now_ms() + 5000;
    ssize_t n = 0;
    while (n <= 0 && now_ms() < end) {
        struct pollfd p = {fd, POLLIN, 0};
        if (poll(&p, 1, 100) > 0)
            n = read(fd, answer, sizeof answer - 1);
    }
    close(fd);
    cr_assert(n > 0 && strstr(answer, " 200 "), "scrape from the same address: %s", answer);
    for (int i = 0; i < N; i++) {
        close(fds[i]);
        slow[i] = -1;
    }
    cr_assert_eq(harness_stop(&h), 0);
}

Test(metrics, only_get_and_head_are_answered) {
    start("");
    static char out[65536];
    static const char *const refused[] = {
        "POST /metrics HTTP/1.0\r\nContent-Length: 5\r\n\r\nhello",
        "DELETE / HTTP/1.0\r\n\r\n",
        "PUT /metrics HTTP/1.0\r\nContent-Length: 0\r\n\r\n",
    };
    for (size_t i = 0; i < sizeof refused / sizeof refused[0]; i++) {
        http(refused[i], out, sizeof out);
        cr_assert(strstr(out, " 405 "), "%s: %.300s", refused[i], out);
        cr_assert(strstr(out, "\r\nAllow: GET, HEAD\r\n"), "%s: %.300s", refused[i], out);
    }
    http("HEAD /metrics HTTP/1.0\r\n\r\n", out, sizeof out);
    cr_assert(strstr(out, " 200 "), "%.300s", out);
    cr_assert_null(strstr(out, "evbus_ingest_events_total"), "HEAD with a body: %.300s", out);
    http("GET / HTTP/1.0\r\n\r\n", out, sizeof out);
    cr_assert(strstr(out, " 200 ") && strstr(out, "\"ingest\""), "%.300s", out);
    cr_assert_eq(harness_stop(&h), 0);
}
