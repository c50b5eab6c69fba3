/* HTTPS and TCP health checks against endpoints this test controls.
 *
 * TCP: healthy while a listener accepts connections on the port, unhealthy
 * once it is closed, healthy again when it listens again.
 * HTTPS: region-health does not verify the certificate (as Route 53's HTTPS
 * checks do not: the check is about reachability, and health endpoints
 * often sit behind self-signed or internal certificates). The endpoint here
 * serves a self-signed certificate for another name than the url's host,
 * made with openssl in the test, and the region counts as healthy. */
#include <arpa/inet.h>
#include <criterion/criterion.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "two_regions.h"

TestSuite(check_types, .fini = tr_stop, .timeout = 120);

#define CHECK_KEYS "interval: 1s, timeout: 500ms, failure_threshold: 1, recovery_threshold: 1"

/* ---- TCP ---- */

/* Listens on 127.0.0.1:port (0: any free port); returns the socket. */
static int listen_on(int port) {
    /* CLOEXEC: evbusd, started after, must not inherit the listener (it
     * would keep the port open after the test closes it). */
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    cr_assert_geq(fd, 0);
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    cr_assert_eq(bind(fd, (struct sockaddr *)&a, sizeof a), 0, "bind %d", port);
    cr_assert_eq(listen(fd, 64), 0);
    return fd;
}

static int port_of(int fd) {
    struct sockaddr_in a;
    socklen_t len = sizeof a;
    cr_assert_eq(getsockname(fd, (struct sockaddr *)&a, &len), 0);
    return ntohs(a.sin_port);
}

Test(check_types, tcp_is_healthy_while_a_listener_accepts) {
    int fd = listen_on(0);
    tr_more[0].port = port_of(fd); /* no MHD: tr_stop leaves it alone */
    tr_east_check = "    health_check: {url: \"tcp://127.0.0.1:@P0@\", " CHECK_KEYS "}\n";
    tr_start("    failback_hold: 0s\n", NULL, true);
    tr_wait_status("us-east-1        on       healthy");
    tr_publish_expecting(3, "us-east-1");

    close(fd); /* connections are refused from now on */
    int64_t took = tr_publish_until("us-west-2", tr_now_ms());
    cr_assert_leq(took, 3500, "failover took %lld ms", (long long)took);
    tr_wait_status("us-east-1        on       unhealthy");

    fd = listen_on(tr_more[0].port);
    tr_publish_until("us-east-1", tr_now_ms());
    tr_wait_status("us-east-1        on       healthy");
    close(fd);
    tr_assert_none_lost();
}

/* ---- HTTPS ---- */

static char *slurp(const char *path) {
    FILE *f = fopen(path, "r");
    cr_assert_not_null(f, "%s", path);
    static char buf[2][8192];
    static int which;
    char *out = buf[which++ % 2];
    size_t n = fread(out, 1, sizeof buf[0] - 1, f);
    out[n] = '\0';
    fclose(f);
    return out;
}

static enum MHD_Result on_https(void *cls, struct MHD_Connection *conn, const char *url,
                                const char *method, const char *version, const char *data,
                                size_t *size, void **con_cls) {
    (void)url, (void)method, (void)version, (void)data, (void)size, (void)con_cls;
    tr_health *hs = cls;
    bool ok = atomic_load(&hs->healthy);
    struct MHD_Response *r =
        MHD_create_response_from_buffer(ok ? 2 : 4, ok ? "OK" : "down", MHD_RESPMEM_PERSISTENT);
    enum MHD_Result rc = MHD_queue_response(conn, ok ? 200 : 503, r);
    MHD_destroy_response(r);
    return rc;
}

/* Serves tr_more[0] over TLS with a fresh self-signed certificate for
 * CN=not-this-host (the url says 127.0.0.1: neither the issuer nor the
 * name would pass verification). */
static void serve_https(void) {
    if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES)
        cr_skip_test("libmicrohttpd without TLS");
    char dir[] = "/tmp/evbus-tls-XXXXXX", cmd[512], key[64], cert[64];
    cr_assert_not_null(mkdtemp(dir));
    snprintf(key, sizeof key, "%s/key.pem", dir);
    snprintf(cert, sizeof cert, "%s/cert.pem", dir);
    snprintf(cmd, sizeof cmd,
             "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes "
             "-keyout %s -out %s -days 1 -subj /CN=not-this-host >/dev/null 2>&1",
             key, cert);
    cr_assert_eq(system(cmd), 0, "%s", cmd);
    const char *k = slurp(key), *c = slurp(cert);
    tr_health *hs = &tr_more[0];
    atomic_store(&hs->healthy, 1);
    hs->mhd =
        MHD_start_daemon(MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_TLS, 0, NULL, NULL, on_https, hs,
                         MHD_OPTION_HTTPS_MEM_KEY, k, MHD_OPTION_HTTPS_MEM_CERT, c, MHD_OPTION_END);
    cr_assert_not_null(hs->mhd);
    hs->port = MHD_get_daemon_info(hs->mhd, MHD_DAEMON_INFO_BIND_PORT)->port;
    unlink(key);
    unlink(cert);
    rmdir(dir);
}

Test(check_types, https_with_a_self_signed_certificate_is_checked_without_verifying_it) {
    serve_https();
    tr_east_check =
        "    health_check: {url: \"https://127.0.0.1:@P0@/ok\", match: \"OK\", " CHECK_KEYS "}\n";
    tr_start("    failback_hold: 0s\n", NULL, true);
    /* The check passed over TLS: the status shows the answer, not a TLS error. */
    tr_wait_status("200");
    tr_wait_status("us-east-1        on       healthy");
    tr_publish_expecting(3, "us-east-1");

    atomic_store(&tr_more[0].healthy, 0); /* 503 over TLS */
    int64_t took = tr_publish_until("us-west-2", tr_now_ms());
    cr_assert_leq(took, 3500, "failover took %lld ms", (long long)took);
    tr_wait_status("us-east-1        on       unhealthy");

    atomic_store(&tr_more[0].healthy, 1);
    tr_publish_until("us-east-1", tr_now_ms());
    tr_assert_none_lost();
}
