#include "follow.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <unistd.h>

#include "load.h"

/* Holds many lines, so that a read takes what a batch appended at once; a
 * line longer than this is counted without its latency. */
#define BUF_SIZE (1u << 20)
/* How long the thread waits for a change before it checks whether to stop. */
#define WAIT_MS 50

struct follower {
    dstats *st;
    int fd, ino;
    pthread_t thread;
    atomic_int stop;
    char *buf;
    size_t len;   /* bytes of an unfinished line at the start of buf */
    int overlong; /* the line being read did not fit: skip to its end */
};

/* Records every complete line in buf[0..len) and keeps the unfinished one. */
static void take_lines(follower *f, uint64_t now) {
    char *p = f->buf, *end = f->buf + f->len;
    char *nl;
    while ((nl = memchr(p, '\n', (size_t)(end - p)))) {
        if (f->overlong) {
            dstats_record(f->st, NULL, now, 1);
            f->overlong = 0;
        } else {
            /* The envelope ends with "detail":{...}}: the stamp starts the
             * detail object. */
            *nl = '\0';
            char *d = strstr(p, "\"detail\":");
            dstats_record(f->st, d ? d + 9 : NULL, now, 1);
        }
        p = nl + 1;
    }
    f->len = (size_t)(end - p);
    memmove(f->buf, p, f->len);
    if (f->len == BUF_SIZE) {
        f->overlong = 1;
        f->len = 0;
    }
}

/* Reads until the end of the file as it is now. */
static void read_available(follower *f) {
    for (;;) {
        ssize_t n = read(f->fd, f->buf + f->len, BUF_SIZE - f->len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            return;
        f->len += (size_t)n;
        take_lines(f, bench_real_ns());
    }
}

static void *follow_main(void *arg) {
    follower *f = arg;
    char events[4096];
    while (!atomic_load(&f->stop)) {
        read_available(f);
        struct pollfd pfd = {f->ino, POLLIN, 0};
        /* inotify only says "look again"; what changed is read from the
         * file itself. */
        if (poll(&pfd, 1, WAIT_MS) > 0)
            while (read(f->ino, events, sizeof events) > 0)
                ;
    }
    read_available(f);
    return NULL;
}

int follower_start(const char *path, dstats *st, follower **out, char *err, size_t errlen) {
    follower *f = calloc(1, sizeof *f);
    if (!f) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    f->st = st;
    f->fd = open(path, O_RDONLY | O_CLOEXEC);
    f->ino = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
    f->buf = malloc(BUF_SIZE);
    if (f->fd < 0 || f->ino < 0 || !f->buf || inotify_add_watch(f->ino, path, IN_MODIFY) < 0) {
        snprintf(err, errlen, "cannot follow %s: %s", path, strerror(errno));
        goto fail;
    }
    int e = pthread_create(&f->thread, NULL, follow_main, f);
    if (e) {
        snprintf(err, errlen, "cannot start the follower thread: %s", strerror(e));
        goto fail;
    }
    *out = f;
    return 0;
fail:
    if (f->fd >= 0)
        close(f->fd);
    if (f->ino >= 0)
        close(f->ino);
    free(f->buf);
    free(f);
    return -1;
}

void follower_stop(follower **fp) {
    if (!fp || !*fp)
        return;
    follower *f = *fp;
    atomic_store(&f->stop, 1);
    pthread_join(f->thread, NULL);
    close(f->fd);
    close(f->ino);
    free(f->buf);
    free(f);
    *fp = NULL;
}
