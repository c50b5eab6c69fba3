#include "harness.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

const char *harness_bin(const char *name) {
    static char path[4][512];
    static int next;
    const char *dir = getenv("EVBUS_BIN_DIR");
    char *p = path[next++ % 4];
    snprintf(p, sizeof path[0], "%s/%s", dir ? dir : ".", name);
    return p;
}

void harness_init(harness *h, const char *extra_yaml) {
    harness_init_ingest(h, NULL, extra_yaml);
}

void harness_init_ingest(harness *h, const char *ingest_yaml, const char *extra_yaml) {
    memset(h, 0, sizeof *h);
    snprintf(h->dir, sizeof h->dir, "/tmp/evbus-test-XXXXXX");
    if (!mkdtemp(h->dir)) {
        perror("mkdtemp");
        abort();
    }
    snprintf(h->config, sizeof h->config, "%s/evbus.yaml", h->dir);
    snprintf(h->endpoint, sizeof h->endpoint, "ipc://%s/ingest.sock", h->dir);
    snprintf(h->log, sizeof h->log, "%s/evbusd.log", h->dir);
    FILE *f = fopen(h->config, "w");
    if (!f)
        abort();
    /* A test that needs a real region (AWS implementations know only those)
     * starts its YAML with its own region: line. */
    bool own_region = extra_yaml && strncmp(extra_yaml, "region:", 7) == 0;
    fprintf(f,
            "%s"
            "log_level: debug\n"
            "ingest:\n"
            "  listen: [\"%s\"]\n"
            "  ack_send_timeout: 200ms\n"
            "%s"
            "storage:\n"
            "  data_dir: data\n"
            "  map_size: 256MiB\n"
            "%s",
            own_region ? "" : "region: test-1\n", h->endpoint, ingest_yaml ? ingest_yaml : "",
            extra_yaml ? extra_yaml : "");
    fclose(f);
}

static int count_ready(const harness *h) {
    FILE *f = fopen(h->log, "r");
    if (!f)
        return 0;
    char line[1024];
    int n = 0;
    while (fgets(line, sizeof line, f))
        if (strstr(line, "[evbusd] ready:"))
            n++;
    fclose(f);
    return n;
}

bool harness_start(harness *h) {
    const char *bin = harness_bin("evbusd");
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0)
        return false;
    if (pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        FILE *log = freopen(h->log, "a", stderr);
        (void)log;
        if (h->nofile) {
            struct rlimit rl = {(rlim_t)h->nofile, (rlim_t)h->nofile};
            if (setrlimit(RLIMIT_NOFILE, &rl) != 0) {
                fprintf(stderr, "setrlimit(RLIMIT_NOFILE, %lu): %s\n", h->nofile, strerror(errno));
                _exit(127);
            }
        }
        execl(bin, "evbusd", "--config", h->config, (char *)NULL);
        fprintf(stderr, "exec %s: %s\n", bin, strerror(errno));
        _exit(127);
    }
    h->pid = pid;
    h->starts++;
    long long deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        if (count_ready(h) >= h->starts)
            return true;
        int st;
        if (waitpid(pid, &st, WNOHANG) == pid) {
            h->pid = 0;
            return false;
        }
        usleep(5000);
    }
    return false;
}

int harness_stop(harness *h) {
    if (h->pid <= 0)
        return -1;
    kill(h->pid, SIGTERM);
    long long deadline = now_ms() + 10000;
    int st = 0;
    while (now_ms() < deadline) {
        pid_t r = waitpid(h->pid, &st, WNOHANG);
        if (r == h->pid) {
            h->pid = 0;
            return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
        }
        usleep(5000);
    }
    kill(h->pid, SIGKILL);
    waitpid(h->pid, &st, 0);
    h->pid = 0;
    return -1;
}

void harness_kill9(harness *h) {
    if (h->pid <= 0)
        return;
    kill(h->pid, SIGKILL);
    int st;
    waitpid(h->pid, &st, 0);
    h->pid = 0;
}

void harness_remove_dir(char *dir) {
    if (dir[0] && getenv("EVBUS_KEEP_TEST_DIRS") == NULL) {
        char cmd[400];
        snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
        if (system(cmd) != 0)
            fprintf(stderr, "could not remove %s\n", dir);
    }
    dir[0] = '\0';
}

void harness_cleanup(harness *h) {
    if (h->pid > 0)
        harness_kill9(h);
    harness_remove_dir(h->dir);
}

int harness_run(const char *cmd, char *out, size_t outlen) {
    FILE *p = popen(cmd, "r");
    if (!p)
        return -1;
    size_t n = 0;
    if (out && outlen) {
        n = fread(out, 1, outlen - 1, p);
        out[n] = '\0';
    }
    char sink[4096];
    while (fread(sink, 1, sizeof sink, p) > 0) {
    }
    int st = pclose(p);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

void harness_read_log(const harness *h, char *buf, size_t len) {
    buf[0] = '\0';
    FILE *f = fopen(h->log, "r");
    if (!f)
        return;
    size_t n = fread(buf, 1, len - 1, f);
    buf[n] = '\0';
    fclose(f);
}
