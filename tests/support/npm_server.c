#include "npm_server.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

bool aws_server_start(moto *m, const char *impl, const char *log_path) {
    return strcmp(impl, "moto") == 0 ? moto_start(m, log_path)
                                     : npm_server_start(m, impl, log_path);
}

bool npm_server_start(moto *m, const char *impl, const char *log_path) {
    memset(m, 0, sizeof *m);
    snprintf(m->log, sizeof m->log, "%s", log_path);
    const char *src = getenv("EVBUS_SRC_DIR");
    char script[600], port[16];
    bool dynalite = strcmp(impl, "dynalite") == 0;
    if (dynalite)
        snprintf(script, sizeof script, "%s/node_modules/dynalite/cli.js", src ? src : ".");
    else
        snprintf(script, sizeof script, "%s/tests/support/local_sqs.js", src ? src : ".");
    struct stat st;
    char modules[600];
    snprintf(modules, sizeof modules, "%s/node_modules/%s", src ? src : ".",
             dynalite ? "dynalite" : "local-aws-sqs");
    if (stat(modules, &st) != 0) {
        fprintf(stderr, "%s is missing: run scripts/install-deps.sh (npm ci)\n", modules);
        return false;
    }
    if ((m->port = moto_free_port()) < 0)
        return false;
    snprintf(port, sizeof port, "%d", m->port);
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
        if (dynalite) /* without --createTableMs 0 a new table refuses puts for 500 ms */
            execlp("node", "node", script, "--host", "127.0.0.1", "--port", port, "--createTableMs",
                   "0", "--deleteTableMs", "0", (char *)NULL);
        else
            execlp("node", "node", script, port, (char *)NULL);
        _exit(127);
    }
    struct timespec start, now;
    clock_gettime(CLOCK_MONOTONIC, &start);
    while (!moto_port_answers(m->port)) {
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
    /* Neither checks signatures: any well-formed key signs. */
    snprintf(m->key_id, sizeof m->key_id, "AKIAEVBUSTEST0000000");
    snprintf(m->secret, sizeof m->secret, "evbus-test-secret-not-checked");
    setenv("AWS_ACCESS_KEY_ID", m->key_id, 1);
    setenv("AWS_SECRET_ACCESS_KEY", m->secret, 1);
    setenv("AWS_DEFAULT_REGION", "us-east-1", 1);
    unsetenv("AWS_SESSION_TOKEN");
    unsetenv("AWS_PROFILE");
    setenv("AWS_EC2_METADATA_DISABLED", "true", 1);
    return true;
}
