#include "proc.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

int bench_tmpdir_new(const char *base, const char *tag, char *out, size_t len) {
    int n = snprintf(out, len, "%s/evbus-bench-%s-XXXXXX", base, tag);
    if (n < 0 || (size_t)n >= len) {
        errno = ENAMETOOLONG;
        return -1;
    }
    return mkdtemp(out) ? 0 : -1;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
    (void)st;
    (void)flag;
    (void)ftw;
    remove(path);
    return 0;
}

void bench_tmpdir_remove(const char *dir) {
    if (dir && dir[0])
        nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int bench_free_port(void) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    struct sockaddr_in sa;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t sl = sizeof sa;
    int port = -1;
    if (bind(fd, (struct sockaddr *)&sa, sizeof sa) == 0 &&
        getsockname(fd, (struct sockaddr *)&sa, &sl) == 0)
        port = ntohs(sa.sin_port);
    close(fd);
    return port;
}

int bench_spawn(char *const argv[], const char *log_path, pid_t *out, char *err, size_t errlen) {
    int logfd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (logfd < 0) {
        snprintf(err, errlen, "%s: cannot create log: %s", log_path, strerror(errno));
        return -1;
    }
    pid_t parent = getpid();
    pid_t pid = fork();
    if (pid < 0) {
        snprintf(err, errlen, "cannot start %s: fork: %s", argv[0], strerror(errno));
        close(logfd);
        return -1;
    }
    if (pid == 0) {
        /* Only async-signal-safe calls from here to exec. The death signal
         * makes sure no server outlives a benchmark that is killed; its own
         * process group keeps a terminal's ^C away from it, so that the
         * benchmark stops it in order. */
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (getppid() != parent)
            _exit(127);
        setpgid(0, 0);
        int devnull = open("/dev/null", O_RDONLY);
        if (devnull >= 0)
            dup2(devnull, 0);
        dup2(logfd, 1);
        dup2(logfd, 2);
        execvp(argv[0], argv);
        static const char msg[] = "exec failed\n";
        ssize_t w = write(2, msg, sizeof msg - 1);
        (void)w;
        _exit(127);
    }
    close(logfd);
    *out = pid;
    return 0;
}

int bench_alive(pid_t pid, int *status) {
    int st;
    pid_t r = waitpid(pid, &st, WNOHANG);
    if (r == 0)
        return 1;
    if (status)
        *status = r == pid ? st : -1;
    return 0;
}

void bench_describe_status(int st, char *err, size_t errlen) {
    if (WIFEXITED(st))
        snprintf(err, errlen, "exited with status %d", WEXITSTATUS(st));
    else if (WIFSIGNALED(st))
        snprintf(err, errlen, "killed by signal %d (%s)", WTERMSIG(st), strsignal(WTERMSIG(st)));
    else
        snprintf(err, errlen, "ended with wait status %d", st);
}

int bench_stop(pid_t pid, int grace_ms, char *err, size_t errlen) {
    int st = 0;
    if (!bench_alive(pid, &st)) {
        bench_describe_status(st, err, errlen);
        return 1;
    }
    kill(pid, SIGTERM);
    for (int waited = 0; waited < grace_ms; waited += 10) {
        pid_t r = waitpid(pid, &st, WNOHANG);
        if (r == pid) {
            if (WIFEXITED(st) && WEXITSTATUS(st) == 0)
                return 0;
            bench_describe_status(st, err, errlen);
            return 1;
        }
        if (r < 0 && errno != EINTR) {
            snprintf(err, errlen, "cannot wait for pid %ld: %s", (long)pid, strerror(errno));
            return -1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    kill(pid, SIGKILL);
    while (waitpid(pid, &st, 0) < 0) {
        if (errno != EINTR) {
            snprintf(err, errlen, "cannot reap pid %ld: %s", (long)pid, strerror(errno));
            return -1;
        }
    }
    snprintf(err, errlen, "did not stop within %d ms of SIGTERM; killed", grace_ms);
    return 1;
}

double bench_vmhwm_mib(pid_t pid) {
    char path[64], line[256];
    snprintf(path, sizeof path, "/proc/%ld/status", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return 0;
    double mib = 0;
    while (fgets(line, sizeof line, f)) {
        unsigned long long kib;
        if (sscanf(line, "VmHWM: %llu kB", &kib) == 1) {
            mib = (double)kib / 1024.0;
            break;
        }
    }
    fclose(f);
    return mib;
}

double bench_cpu_s(pid_t pid) {
    char path[64], buf[1024];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    FILE *f = fopen(path, "r");
    if (!f)
        return -1;
    size_t n = fread(buf, 1, sizeof buf - 1, f);
    fclose(f);
    buf[n] = '\0';
    /* The command name may hold spaces: fields are counted after its ')'. */
    char *p = strrchr(buf, ')');
    unsigned long long utime, stime;
    if (!p ||
        sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &utime, &stime) != 2)
        return -1;
    return (double)(utime + stime) / (double)sysconf(_SC_CLK_TCK);
}

void bench_log_tail(const char *path, FILE *out, int lines) {
    FILE *f = fopen(path, "r");
    if (!f)
        return;
    /* Logs here are short; keep a ring of the last lines. */
    char ring[16][512];
    int n = 0;
    if (lines > 16)
        lines = 16;
    while (lines > 0 && fgets(ring[n % lines], sizeof ring[0], f))
        n++;
    int first = n > lines ? n - lines : 0;
    for (int i = first; i < n; i++)
        fprintf(out, "    | %s", ring[i % lines]);
    fclose(f);
}
