#include "moto_run.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "load.h"
#include "proc.h"

#define REGION "us-east-1"
/* moto answers slowly and retries back off: allow for both. */
#define STALL_MS 60000

static int answers(int port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    int ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

static void sleep_ms(long ms) {
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000};
    nanosleep(&ts, NULL);
}

/* Runs aws_tool.py with args; its first output line into out. */
static int aws_tool(const char *args, char *out, size_t len, char *err, size_t errlen) {
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/support/aws_tool.py' %s 2>&1", BENCH_SOURCE_DIR,
             args);
    FILE *p = popen(cmd, "r");
    if (!p) {
        snprintf(err, errlen, "cannot run python3");
        return -1;
    }
    out[0] = '\0';
    char line[1024];
    int first = 1;
    while (fgets(line, sizeof line, p))
        if (first) {
            snprintf(out, len, "%s", line);
            out[strcspn(out, "\n")] = '\0';
            first = 0;
        }
    int st = pclose(p);
    if (st != 0) {
        snprintf(err, errlen, "aws_tool.py %s failed: %s", args, out);
        return -1;
    }
    return 0;
}

int moto_server_start(moto_server *m, const char *tmpdir, char *why, size_t whylen) {
    memset(m, 0, sizeof *m);
    if (system("command -v moto_server >/dev/null 2>&1") != 0) {
        snprintf(why, whylen, "moto_server is not installed (see ../shared/TESTING.md)");
        return -1;
    }
    int port = bench_free_port();
    if (port < 0 || bench_tmpdir_new(tmpdir, "moto", m->dir, sizeof m->dir)) {
        snprintf(why, whylen, "no free port or temporary directory");
        return -1;
    }
    snprintf(m->endpoint, sizeof m->endpoint, "http://127.0.0.1:%d", port);
    char log[4100], ports[16];
    snprintf(log, sizeof log, "%s/moto.log", m->dir);
    snprintf(ports, sizeof ports, "%d", port);
    char *argv[] = {"moto_server", "-H", "127.0.0.1", "-p", ports, NULL};
    /* Inherited by the server only: the first 4 calls are free. */
    setenv("INITIAL_NO_AUTH_ACTION_COUNT", "4", 1);
    int rc = bench_spawn(argv, log, &m->pid, why, whylen);
    unsetenv("INITIAL_NO_AUTH_ACTION_COUNT");
    if (rc)
        return -1;
    for (int waited = 0; !answers(port); waited += 50) {
        if (!bench_alive(m->pid, NULL) || waited > 20000) {
            snprintf(why, whylen, "moto_server did not start (see %s)", log);
            moto_server_stop(m, 1);
            return -1;
        }
        sleep_ms(50);
    }
    char args[256], out[512], key[64], secret[128];
    snprintf(args, sizeof args, "iam-user %s", m->endpoint);
    if (aws_tool(args, out, sizeof out, why, whylen) ||
        sscanf(out, "%63s %127s", key, secret) != 2) {
        if (!why[0])
            snprintf(why, whylen, "aws_tool.py iam-user printed no key");
        moto_server_stop(m, 0);
        return -1;
    }
    setenv("AWS_ACCESS_KEY_ID", key, 1);
    setenv("AWS_SECRET_ACCESS_KEY", secret, 1);
    setenv("AWS_DEFAULT_REGION", REGION, 1);
    return 0;
}

int moto_create(const moto_server *m, const char *cmd, const char *name, char *out, size_t len,
                char *err, size_t errlen) {
    char args[512];
    snprintf(args, sizeof args, "%s %s " REGION " %s-%ld", cmd, m->endpoint, name,
             (long)time(NULL) % 100000);
    return aws_tool(args, out, len, err, errlen);
}

static size_t collect(char *data, size_t size, size_t n, void *arg) {
    char *buf = arg;
    size_t have = strlen(buf), add = size * n;
    if (have + add < 65536) {
        memcpy(buf + have, data, add);
        buf[have + add] = '\0';
    }
    return size * n;
}

/* evbus_target_delivered_total{target="sink"} from /metrics, or -1. */
static long long delivered(CURL *e, char *buf) {
    buf[0] = '\0';
    if (curl_easy_perform(e) != CURLE_OK)
        return -1;
    const char *p = strstr(buf, "evbus_target_delivered_total{target=\"sink\"} ");
    return p ? atoll(p + strlen("evbus_target_delivered_total{target=\"sink\"} ")) : -1;
}

int moto_wait_delivered(int metrics_port, uint64_t want, pid_t *pid, double *eps, char *err,
                        size_t errlen) {
    CURL *e = curl_easy_init();
    char *buf = malloc(65536);
    char url[64];
    int rc = -1;
    if (!e || !buf) {
        snprintf(err, errlen, "out of memory");
        goto out;
    }
    snprintf(url, sizeof url, "http://127.0.0.1:%d/metrics", metrics_port);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, collect);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, buf);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 5000L);
    long long first = 0, seen = 0;
    uint64_t t_first = 0, t_last = 0, progress = bench_now_ns();
    while (seen < (long long)want) {
        if (bench_interrupted || !bench_alive(*pid, NULL)) {
            if (!bench_interrupted)
                *pid = 0;
            snprintf(err, errlen, "%s with %lld of %llu delivered",
                     bench_interrupted ? "interrupted" : "evbusd ended", seen,
                     (unsigned long long)want);
            goto out;
        }
        if (bench_now_ns() - progress > (uint64_t)STALL_MS * 1000000u) {
            snprintf(err, errlen, "delivery to moto stalled at %lld of %llu events", seen,
                     (unsigned long long)want);
            goto out;
        }
        long long n = delivered(e, buf);
        uint64_t now = bench_now_ns();
        if (n > seen) {
            if (!t_first) {
                t_first = now;
                first = n;
            }
            t_last = now;
            seen = n;
            progress = now;
        }
        sleep_ms(20);
    }
    *eps = t_last > t_first ? (double)(seen - first) / ((double)(t_last - t_first) / 1e9) : 0;
    rc = 0;
out:
    curl_easy_cleanup(e);
    free(buf);
    return rc;
}

void moto_server_stop(moto_server *m, int keep) {
    if (m->pid) {
        char why[256];
        bench_stop(m->pid, 5000, why, sizeof why);
        m->pid = 0;
    }
    if (!keep)
        bench_tmpdir_remove(m->dir);
}
