#include "moto.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

/* A port the kernel just handed out on loopback: free unless another
 * process grabs it in the moment before moto binds it. */
int moto_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof a) ||
        getsockname(fd, (struct sockaddr *)&a, &len)) {
        if (fd >= 0)
            close(fd);
        return -1;
    }
    close(fd);
    return ntohs(a.sin_port);
}

bool moto_port_answers(int port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET,
                            .sin_port = htons((uint16_t)port),
                            .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    bool ok = fd >= 0 && connect(fd, (struct sockaddr *)&a, sizeof a) == 0;
    if (fd >= 0)
        close(fd);
    return ok;
}

int aws_tool(const char *args, char *out, size_t outlen) {
    const char *src = getenv("EVBUS_SRC_DIR");
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "python3 '%s/tests/support/aws_tool.py' %s", src ? src : ".", args);
    return harness_run(cmd, out, outlen);
}

bool moto_start(moto *m, const char *log_path) {
    memset(m, 0, sizeof *m);
    snprintf(m->log, sizeof m->log, "%s", log_path);
    if ((m->port = moto_free_port()) < 0)
        return false;
    snprintf(m->endpoint, sizeof m->endpoint, "http://127.0.0.1:%d", m->port);
    pid_t parent = getpid();
    m->pid = fork();
    if (m->pid < 0)
        return false;
    if (m->pid == 0) {
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(1);
        FILE *f = freopen(m->log, "w", stdout);
        (void)f;
        dup2(STDOUT_FILENO, STDERR_FILENO);
        char port[16];
        snprintf(port, sizeof port, "%d", m->port);
        setenv("INITIAL_NO_AUTH_ACTION_COUNT", "4", 1);
        execlp("moto_server", "moto_server", "-H", "127.0.0.1", "-p", port, (char *)NULL);
        _exit(127);
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    for (;;) {
        if (moto_port_answers(m->port))
            break;
        if (waitpid(m->pid, NULL, WNOHANG) == m->pid) {
            m->pid = 0;
            return false;
        }
        clock_gettime(CLOCK_MONOTONIC, &now);
        if (now.tv_sec - start.tv_sec > 15) {
            moto_stop(m);
            return false;
        }
        usleep(50000);
    }
    char args[256], out[512];
    snprintf(args, sizeof args, "iam-user %s", m->endpoint);
    if (aws_tool(args, out, sizeof out) != 0 ||
        sscanf(out, "%63s %127s", m->key_id, m->secret) != 2) {
        moto_stop(m);
        return false;
    }
    setenv("AWS_ACCESS_KEY_ID", m->key_id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", m->secret, 1);
    setenv("AWS_DEFAULT_REGION", "us-east-1", 1);
    /* No stray credentials from the machine running the tests. */
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    return true;
}

void moto_stop(moto *m) {
    if (m->pid <= 0)
        return;
    kill(m->pid, SIGTERM);
    for (int i = 0; i < 100; i++) {
        if (waitpid(m->pid, NULL, WNOHANG) == m->pid) {
            m->pid = 0;
            return;
        }
        usleep(50000);
    }
    kill(m->pid, SIGKILL);
    waitpid(m->pid, NULL, 0);
    m->pid = 0;
}
