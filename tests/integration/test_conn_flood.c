/* Anyone who can reach the ingest endpoint can open connections without
 * ever finishing a handshake. With more of them than evbusd has file
 * descriptors, libzmq 4.3.4's ipc listener aborts the process on EMFILE
 * (ipc_listener.cpp:325). evbusd must refuse connections past
 * ingest.max_connections instead, stay up, and keep serving producers. */
#include <criterion/criterion.h>
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"

/* More connections than the daemon's descriptor limit. */
#define DAEMON_NOFILE 512
#define FLOOD         700

static harness h;
static evbus_client_t *early, *late;
static int flood[FLOOD];
static int n_flood;

static void close_flood(void) {
    for (int i = 0; i < n_flood; i++)
        close(flood[i]);
    n_flood = 0;
}

static void stop(void) {
    close_flood();
    evbus_client_destroy(&early);
    evbus_client_destroy(&late);
    harness_stop(&h);
    harness_cleanup(&h);
}

TestSuite(conn_flood, .fini = stop, .timeout = 120);

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static bool daemon_alive(void) {
    int st;
    if (h.pid > 0 && waitpid(h.pid, &st, WNOHANG) == h.pid)
        h.pid = 0; /* reaped here: nothing left for harness_stop() */
    return h.pid > 0;
}

static evbus_client_t *new_client(void) {
    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 3000;
    evbus_client_t *c = NULL;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &c), EVBUS_OK);
    return c;
}

/* Publishes one event; returns its ack status, or -1 without an answer. */
static int publish_one(evbus_client_t *c, int n) {
    char id[32];
    snprintf(id, sizeof id, "flood-%d", n);
    evbus_event ev = {.id = id, .source = "com.test", .detail_type = "T", .detail = "{}"};
    evbus_ack ack;
    if (evbus_publish(c, &ev, 1, &ack) != EVBUS_OK)
        return -1;
    return (int)ack.status;
}

/* One connection that sends the 11-byte ZMTP 3 greeting and nothing more:
 * it never finishes a handshake, and needs no key. */
static int greeting_only(const char *path) {
    int fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0)
        return -1;
    struct timeval tv = {2, 0}; /* a connect that the backlog holds up */
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) {
        close(fd);
        return -1;
    }
    memcpy(a.sun_path, path, strlen(path) + 1);
    static const unsigned char greeting[11] = {0xff, 0, 0, 0, 0, 0, 0, 0, 0, 0x7f, 0x03};
    if (connect(fd, (struct sockaddr *)&a, sizeof a) != 0 ||
        send(fd, greeting, sizeof greeting, MSG_NOSIGNAL) != (ssize_t)sizeof greeting) {
        close(fd);
        return -1;
    }
    return fd;
}

Test(conn_flood, more_half_open_connections_than_descriptors_do_not_stop_evbusd) {
    /* The test itself holds every flood connection. */
    struct rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_max != RLIM_INFINITY && rl.rlim_max < FLOOD + 64)
        cr_skip_test("this process may open only %llu files", (unsigned long long)rl.rlim_max);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);

    harness_init(&h, "  # nothing else\n");
    h.nofile = DAEMON_NOFILE;
    cr_assert(harness_start(&h), "evbusd did not start");
    early = new_client();
    cr_assert_eq(publish_one(early, 0), EVBUS_ACK_ACCEPTED);

    const char *path = h.endpoint + strlen("ipc://");
    for (int i = 0; i < FLOOD && daemon_alive(); i++) {
        int fd = greeting_only(path);
        if (fd >= 0)
            flood[n_flood++] = fd;
    }
    cr_assert(daemon_alive(), "evbusd died under a flood of %d connections", n_flood);
    /* A producer connected before the flood is still served during it. */
    cr_assert_eq(publish_one(early, 1), EVBUS_ACK_ACCEPTED, "the connected producer got no ack");
    cr_assert(daemon_alive());

    char log[1 << 16];
    harness_read_log(&h, log, sizeof log);
    cr_assert(strstr(log, "ingest.max_connections"), "no warning about refused connections:\n%s",
              log);

    /* Once the flood ends, a new producer gets in (the refused ones are
     * gone, and the limit counts only open connections). */
    close_flood();
    late = new_client();
    long long end = now_ms() + 20000;
    int st = -1;
    for (int n = 2; st != EVBUS_ACK_ACCEPTED && now_ms() < end; n++)
        st = publish_one(late, n);
    cr_assert_eq(st, EVBUS_ACK_ACCEPTED, "a new producer was not served after the flood");
    cr_assert(daemon_alive());
    cr_assert_eq(harness_stop(&h), 0);
}
