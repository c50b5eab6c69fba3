/* Who may operate, and whose files these are: the control socket changes
 * state only for its owner (ipc://) or a CURVE operator (tcp://); other users
 * can neither read the store nor reach the socket; and a second evbusd
 * cannot take an ipc:// endpoint the first one holds. */
#include <criterion/criterion.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "evbus/evbus.h"
#include "harness.h"

static harness h, h2;

static void stop(void) {
    harness_cleanup(&h2);
    harness_cleanup(&h);
}

TestSuite(operators, .fini = stop, .timeout = 90);

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int free_port(void) {
    int s = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof a;
    cr_assert(bind(s, (struct sockaddr *)&a, sizeof a) == 0);
    getsockname(s, (struct sockaddr *)&a, &len);
    close(s);
    return ntohs(a.sin_port);
}

/* Runs the evbus CLI with `args`, stdout and stderr into out. */
static int cli(const char *args, char *out, size_t outlen) {
    char cmd[4096];
    snprintf(cmd, sizeof cmd, "%s %.2048s 2>&1", harness_bin("evbus"), args);
    return harness_run(cmd, out, outlen);
}

static void keygen(const harness *hh, const char *name, char pub[41]) {
    char cmd[600], out[512], path[400], sec[41], err[256];
    snprintf(cmd, sizeof cmd, "keygen %s/%s", hh->dir, name);
    cr_assert_eq(cli(cmd, out, sizeof out), 0, "%s", out);
    snprintf(path, sizeof path, "%s/%s.key", hh->dir, name);
    cr_assert_eq(evbus_curve_keyfile_read(path, pub, sec, err, sizeof err), EVBUS_OK, "%s", err);
}

Test(operators, state_changes_need_the_ipc_owner_not_a_plain_tcp_peer) {
    int port = free_port();
    char yaml[300], args[1024], out[2048];
    snprintf(yaml, sizeof yaml, "targets:\n  - name: t1\ncontrol:\n  listen: tcp://127.0.0.1:%d\n",
             port);
    harness_init(&h, yaml);
    cr_assert(harness_start(&h), "log in %s", h.log);
    snprintf(args, sizeof args, "status --control tcp://127.0.0.1:%d", port);
    cr_assert_eq(cli(args, out, sizeof out), 0, "reading works: %s", out);
    snprintf(args, sizeof args, "dlq drop -t t1 --control tcp://127.0.0.1:%d", port);
    cr_assert_eq(cli(args, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "this command changes state: it is allowed only on the ipc:// control "
                          "socket to evbusd's own user"),
              "%s", out);
    snprintf(args, sizeof args, "replay -t t1 --since 1h --control tcp://127.0.0.1:%d", port);
    cr_assert_eq(cli(args, out, sizeof out), 1, "%s", out);

    /* The owner, on the default ipc:// socket of another daemon. */
    harness_init(&h2, "targets:\n  - name: t1\n");
    cr_assert(harness_start(&h2), "log in %s", h2.log);
    snprintf(args, sizeof args, "dlq drop -t t1 -c %s", h2.config);
    cr_assert_eq(cli(args, out, sizeof out), 0, "%s", out);
    cr_assert(strstr(out, "0 dead letters dropped"), "%s", out);
}

Test(operators, over_tcp_only_listed_operator_keys_may_change_state) {
    int port = free_port();
    harness_init(&h, NULL);
    char server[41], op[41], stranger[41], keys[200], yaml[600], args[2048], out[2048];
    keygen(&h, "control", server);
    keygen(&h, "op", op);
    keygen(&h, "stranger", stranger);
    snprintf(keys, sizeof keys, "# operators\nops-alice %s\n", op);
    char path[400];
    snprintf(path, sizeof path, "%s/operators.keys", h.dir);
    FILE *f = fopen(path, "w");
    fputs(keys, f);
    fclose(f);
    snprintf(yaml, sizeof yaml,
             "targets:\n  - name: t1\ncontrol:\n  listen: tcp://127.0.0.1:%d\n  curve:\n"
             "    secret_key: control.key\n    operator_keys: operators.keys\n",
             port);
    f = fopen(h.config, "a");
    fputs(yaml, f);
    fclose(f);
    cr_assert(harness_start(&h), "log in %s", h.log);

    snprintf(args, sizeof args,
             "dlq drop -t t1 --control tcp://127.0.0.1:%d --server-key %s/control.pub --key "
             "%s/op.key",
             port, h.dir, h.dir);
    cr_assert_eq(cli(args, out, sizeof out), 0, "an operator may: %s", out);
    cr_assert(strstr(out, "0 dead letters dropped"), "%s", out);
    snprintf(args, sizeof args,
             "dlq drop -t t1 --timeout 1000 --control tcp://127.0.0.1:%d --server-key "
             "%s/control.pub --key %s/stranger.key",
             port, h.dir, h.dir);
    cr_assert_eq(cli(args, out, sizeof out), 1, "%s", out);
    cr_assert(strstr(out, "no answer"), "an unknown key gets no answer: %s", out);
    snprintf(args, sizeof args, "status --timeout 1000 --control tcp://127.0.0.1:%d", port);
    cr_assert_eq(cli(args, out, sizeof out), 1, "without CURVE, nothing: %s", out);
}

static void set_path(struct sockaddr_un *sa, const char *path) {
    size_t n = strlen(path);
    if (n >= sizeof sa->sun_path)
        abort();
    memcpy(sa->sun_path, path, n + 1);
}

/* In a child running as nobody: can it open `path`, and connect to the unix
 * socket `sock`? Returns the two errnos (0: it could) as a*1000+b, or -1. */
static int as_nobody(const char *path, const char *sock) {
    pid_t pid = fork();
    if (pid == 0) {
        if (setgid(65534) != 0 || setuid(65534) != 0)
            _exit(255);
        int e1 = 0, e2 = 0;
        int fd = open(path, O_RDONLY);
        if (fd < 0)
            e1 = errno;
        else
            close(fd);
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        set_path(&sa, sock);
        int s = socket(AF_UNIX, SOCK_STREAM, 0);
        if (connect(s, (struct sockaddr *)&sa, sizeof sa) != 0)
            e2 = errno;
        close(s);
        _exit(e1 != 0 && e2 != 0 ? 1 : 0);
    }
    int st;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

Test(operators, nobody_can_neither_read_the_store_nor_use_the_control_socket) {
    if (geteuid() != 0)
        cr_skip_test("needs root to act as nobody");
    /* Whatever the umask, and with the daemon's parent directory open to
     * all, the store and the socket stay evbusd's. */
    mode_t old = umask(0);
    char yaml[400];
    harness_init(&h, NULL);
    snprintf(yaml, sizeof yaml, "control:\n  listen: ipc://%s/ctl.sock\n", h.dir);
    FILE *f = fopen(h.config, "a");
    fputs(yaml, f);
    fclose(f);
    chmod(h.dir, 0755);
    bool up = harness_start(&h);
    umask(old);
    cr_assert(up, "log in %s", h.log);

    char data[400], mdb[400], sock[400], args[1024], out[2048];
    snprintf(data, sizeof data, "%s/data", h.dir);
    snprintf(mdb, sizeof mdb, "%s/data/data.mdb", h.dir);
    snprintf(sock, sizeof sock, "%s/ctl.sock", h.dir);
    struct stat st;
    cr_assert_eq(stat(data, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0700, "data dir mode %o", st.st_mode & 0777);
    cr_assert_eq(stat(mdb, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "data.mdb mode %o", st.st_mode & 0777);
    snprintf(mdb, sizeof mdb, "%s/data/lock.mdb", h.dir);
    cr_assert_eq(stat(mdb, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "lock.mdb mode %o", st.st_mode & 0777);
    cr_assert_eq(stat(sock, &st), 0);
    cr_assert_eq(st.st_mode & 0777, 0600, "control socket mode %o", st.st_mode & 0777);

    snprintf(mdb, sizeof mdb, "%s/data/data.mdb", h.dir);
    cr_assert_eq(as_nobody(mdb, sock), 1, "nobody could open the store or the socket");
    /* nobody must be able to run the build's evbus at all (a clone in a 0700
     * directory, such as one from mktemp -d, keeps it out before evbusd is
     * even asked). */
    snprintf(args, sizeof args,
             "setpriv --reuid=65534 --regid=65534 --clear-groups %s --version >/dev/null 2>&1",
             harness_bin("evbus"));
    if (harness_run(args, out, sizeof out) != 0)
        cr_skip_test("nobody cannot run %s (a parent directory is closed to others): the "
                     "control socket's refusal is not tested here",
                     harness_bin("evbus"));
    snprintf(args, sizeof args,
             "setpriv --reuid=65534 --regid=65534 --clear-groups %s status --timeout 1000 "
             "--control ipc://%s 2>&1",
             harness_bin("evbus"), sock);
    long long asked = now_ms();
    cr_assert_neq(harness_run(args, out, sizeof out), 0, "nobody got a status: %s", out);
    /* Said at once, not after the timeout as "is evbusd running?". */
    cr_assert(strstr(out, "permission denied: ") && strstr(out, "is only for evbusd's user"), "%s",
              out);
    cr_assert_lt(now_ms() - asked, 900, "%s", out);
    snprintf(args, sizeof args, "status --control ipc://%s", sock);
    cr_assert_eq(cli(args, out, sizeof out), 0, "its owner still can: %s", out);
}

static void write_config(const harness *hh, const char *listen, const char *extra) {
    FILE *f = fopen(hh->config, "w");
    fprintf(f, "ingest:\n  listen: [\"%s\"]\nstorage:\n  data_dir: data\n  map_size: 64MiB\n%s",
            listen, extra);
    fclose(f);
}

Test(operators, a_second_evbusd_cannot_take_the_first_ones_control_socket) {
    harness_init(&h, NULL);
    cr_assert(harness_start(&h), "log in %s", h.log);
    char yaml[400], log[8192], args[600], out[2048];
    harness_init(&h2, NULL);
    snprintf(yaml, sizeof yaml, "control:\n  listen: ipc://%s/data/control.sock\n", h.dir);
    write_config(&h2, h2.endpoint, yaml);
    cr_assert(!harness_start(&h2), "the second evbusd must not start");
    harness_read_log(&h2, log, sizeof log);
    snprintf(yaml, sizeof yaml,
             "control.listen: ipc://%s/data/control.sock is in use by another evbusd (pid %d",
             h.dir, (int)h.pid);
    cr_assert(strstr(log, yaml), "names the endpoint and the holder: %s", log);
    snprintf(args, sizeof args, "status -c %s", h.config);
    cr_assert_eq(cli(args, out, sizeof out), 0, "the first still answers: %s", out);
}

Test(operators, a_second_evbusd_cannot_take_the_first_ones_ingest_socket) {
    harness_init(&h, NULL);
    cr_assert(harness_start(&h), "log in %s", h.log);
    char log[8192], want[600];
    harness_init(&h2, NULL);
    write_config(&h2, h.endpoint, "");
    cr_assert(!harness_start(&h2), "the second evbusd must not start");
    harness_read_log(&h2, log, sizeof log);
    snprintf(want, sizeof want, "ingest.listen: %s is in use by another evbusd", h.endpoint);
    cr_assert(strstr(log, want), "%s", log);

    evbus_client_opts o;
    evbus_client_opts_init(&o);
    o.timeout_ms = 5000;
    evbus_client_t *c;
    cr_assert_eq(evbus_client_new(h.endpoint, &o, &c), EVBUS_OK);
    evbus_event e = {.source = "s", .detail_type = "t", .detail = "{}"};
    evbus_ack ack;
    evbus_err rc = evbus_publish(c, &e, 1, &ack);
    evbus_client_destroy(&c);
    cr_assert_eq(rc, EVBUS_OK, "the first still takes events");
    cr_assert_eq(ack.status, EVBUS_ACK_ACCEPTED);
}

Test(operators, an_ipc_path_another_program_listens_on_is_refused) {
    harness_init(&h, NULL);
    char path[400], ep[420], log[8192];
    snprintf(path, sizeof path, "%s/other.sock", h.dir);
    int s = socket(AF_UNIX, SOCK_STREAM, 0);
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    set_path(&sa, path);
    cr_assert(bind(s, (struct sockaddr *)&sa, sizeof sa) == 0 && listen(s, 4) == 0);
    snprintf(ep, sizeof ep, "ipc://%s", path);
    write_config(&h, ep, "");
    bool started = harness_start(&h);
    close(s);
    cr_assert(!started);
    harness_read_log(&h, log, sizeof log);
    cr_assert(strstr(log, "another process accepts connections on it"), "%s", log);
}
