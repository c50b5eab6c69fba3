#include "fault_proxy.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

bool fault_proxy_start(fault_proxy *p, const char *upstream, const char *dir) {
    memset(p, 0, sizeof *p);
    char port_file[300];
    snprintf(port_file, sizeof port_file, "%s/proxy.port", dir);
    snprintf(p->log, sizeof p->log, "%s/proxy.log", dir);
    unlink(port_file);
    const char *src = getenv("EVBUS_SRC_DIR");
    char script[512];
    snprintf(script, sizeof script, "%s/tests/support/fault_proxy.py", src ? src : ".");
    pid_t parent = getpid();
    p->pid = fork();
    if (p->pid < 0)
        return false;
    if (p->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        FILE *f = freopen(p->log, "w", stderr);
        (void)f;
        execlp("python3", "python3", script, upstream, port_file, (char *)NULL);
        _exit(127);
    }
    /* The proxy renames its port file into place once it listens. */
    long long deadline = now_ms() + 10000;
    while (now_ms() < deadline) {
        FILE *f = fopen(port_file, "r");
        if (f) {
            int ok = fscanf(f, "%d", &p->port);
            fclose(f);
            if (ok == 1) {
                snprintf(p->endpoint, sizeof p->endpoint, "http://127.0.0.1:%d", p->port);
                return true;
            }
        }
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
            p->pid = 0;
            return false;
        }
        usleep(10000);
    }
    fault_proxy_stop(p);
    return false;
}

void fault_proxy_stop(fault_proxy *p) {
    if (p->pid <= 0)
        return;
    kill(p->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(p->pid, NULL, WNOHANG) == p->pid) {
            p->pid = 0;
            return;
        }
        usleep(50000);
    }
    kill(p->pid, SIGKILL);
    waitpid(p->pid, NULL, 0);
    p->pid = 0;
}

/* One HTTP/1.1 exchange with Connection: close on the control path; the
 * answer's body into out. */
static bool control(fault_proxy *p, const char *method, const char *body, char *out, size_t len) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return false;
    struct timeval tv = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)p->port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    static char buf[1 << 20];
    size_t n = 0;
    bool ok = connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (ok) {
        char req[1024];
        int rl = snprintf(req, sizeof req,
                          "%s /__fault HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: %zu\r\n"
                          "Connection: close\r\n\r\n%s",
                          method, strlen(body), body);
        ok = rl > 0 && (size_t)rl < sizeof req && send(fd, req, (size_t)rl, 0) == rl;
    }
    while (ok && n < sizeof buf - 1) {
        ssize_t r = recv(fd, buf + n, sizeof buf - 1 - n, 0);
        if (r < 0)
            ok = false;
        if (r <= 0)
            break;
        n += (size_t)r;
    }
    close(fd);
    buf[n] = '\0';
    const char *start = strstr(buf, "\r\n\r\n");
    if (!ok || strncmp(buf, "HTTP/1.1 200", 12) != 0 || !start)
        return false;
    if (out)
        snprintf(out, len, "%s", start + 4);
    return true;
}

bool fault_proxy_set(fault_proxy *p, const char *mode, int count, int delay_ms) {
    char body[256];
    snprintf(body, sizeof body, "{\"mode\":\"%s\",\"count\":%d,\"delay_ms\":%d}", mode, count,
             delay_ms);
    return control(p, "POST", body, NULL, 0);
}

bool fault_proxy_counters(fault_proxy *p, char *out, size_t len) {
    return control(p, "GET", "", out, len);
}
