/* One Redis producer, the peer evbus is compared with: the same events as
 * XADDs to one stream, one request = one batch of pipelined XADDs, the same
 * window of requests in flight. RESP is spoken directly over a socket so that
 * no client library's overhead is counted on either side. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define RBUF_SIZE (256 * 1024)
#define STREAM    "bench"

typedef struct flight {
    uint64_t t0;  /* sent (open loop: scheduled) */
    size_t left;  /* replies still to come */
    size_t nerrs; /* error replies so far */
    int measured; /* open loop: scheduled while measuring; -1 in a closed loop */
} flight;

/* Finds one complete reply at b. Returns 1 (its length in *used, *is_err
 * set), 0 when more bytes are needed, -1 for a reply XADD cannot give. */
static int parse_reply(const char *b, size_t len, size_t *used, int *is_err) {
    const char *nl = len ? memchr(b, '\n', len) : NULL;
    if (!nl)
        return 0;
    size_t line = (size_t)(nl - b) + 1;
    switch (b[0]) {
    case '+':
    case ':':
        *is_err = 0;
        *used = line;
        return 1;
    case '-':
        *is_err = 1;
        *used = line;
        return 1;
    case '$': {
        long n = strtol(b + 1, NULL, 10);
        if (n < 0) {
            *is_err = 1;
            *used = line;
            return 1;
        }
        if (len < line + (size_t)n + 2)
            return 0;
        *is_err = 0;
        *used = line + (size_t)n + 2;
        return 1;
    }
    default: return -1;
    }
}

int bench_redis_ping(int port) {
    int fd = bench_tcp_connect_loopback(port);
    if (fd < 0)
        return -1;
    char buf[64];
    int ok = bench_tcp_write_all(fd, "PING\r\n", 6) == 0 && recv(fd, buf, sizeof buf, 0) >= 5 &&
             memcmp(buf, "+PONG", 5) == 0;
    close(fd);
    return ok ? 0 : -1;
}

static size_t append(char *dst, size_t at, const char *s, size_t len) {
    if (dst)
        memcpy(dst + at, s, len);
    return at + len;
}

/* Lays out one request (batch XADDs) into cmd, or only measures it when cmd
 * is NULL; id_at[i] receives where event i's id goes. */
static size_t build_request(char *cmd, size_t *id_at, size_t batch, const char *detail,
                            size_t dlen) {
    char hdr[64];
    size_t at = 0;
    for (size_t i = 0; i < batch; i++) {
        static const char head[] = "*11\r\n$4\r\nXADD\r\n$5\r\n" STREAM "\r\n$1\r\n*\r\n"
                                   "$2\r\nid\r\n$36\r\n";
        at = append(cmd, at, head, sizeof head - 1);
        if (id_at)
            id_at[i] = at;
        at += BENCH_ID_LEN;
        static const char mid[] = "\r\n$6\r\nsource\r\n$17\r\n" BENCH_SOURCE "\r\n"
                                  "$11\r\ndetail-type\r\n$10\r\n" BENCH_DETAIL_TYPE "\r\n"
                                  "$6\r\ndetail\r\n";
        at = append(cmd, at, mid, sizeof mid - 1);
        int n = snprintf(hdr, sizeof hdr, "$%zu\r\n", dlen);
        at = append(cmd, at, hdr, (size_t)n);
        at = append(cmd, at, detail, dlen);
        at = append(cmd, at, "\r\n", 2);
    }
    return at;
}

void *bench_redis_producer(void *arg) {
    bench_producer *p = arg;
    const bench_load *ld = p->load;
    int fd = -1;
    size_t dlen = bench_detail_len(ld->event_size);
    char *detail = malloc(dlen + 1);
    size_t *id_at = calloc(ld->batch, sizeof *id_at);
    flight *ring = calloc(ld->window, sizeof *ring);
    char *rbuf = malloc(RBUF_SIZE);
    char *cmd = NULL;
    if (!detail || !id_at || !ring || !rbuf) {
        snprintf(p->error, sizeof p->error, "out of memory");
        goto out;
    }
    bench_detail_fill(detail, dlen);
    size_t cmd_len = build_request(NULL, NULL, ld->batch, detail, dlen);
    cmd = malloc(cmd_len);
    if (!cmd) {
        snprintf(p->error, sizeof p->error, "out of memory");
        goto out;
    }
    build_request(cmd, id_at, ld->batch, detail, dlen);
    fd = bench_tcp_connect_loopback(ld->port);
    if (fd < 0) {
        snprintf(p->error, sizeof p->error, "cannot connect to redis on port %d: %s", ld->port,
                 strerror(errno));
        goto out;
    }
    atomic_store(&p->ready, 1);
    while (atomic_load(p->phase) == PHASE_SETUP && !bench_interrupted) {
        struct pollfd none = {-1, 0, 0};
        poll(&none, 0, 1);
    }

    size_t head = 0, count = 0, rlen = 0;
    uint64_t drain_deadline = 0;
    bench_schedule sched = {0};
    if (ld->rate > 0)
        bench_schedule_start(&sched, p);
    for (;;) {
        int stopping = atomic_load_explicit(p->phase, memory_order_relaxed) == PHASE_STOP ||
                       bench_interrupted || p->error[0];
        if (stopping && count == 0)
            break;
        if (stopping && !drain_deadline)
            drain_deadline = bench_now_ns() + 20ull * 1000000000u;
        if (stopping && bench_now_ns() > drain_deadline) {
            if (!p->error[0])
                snprintf(p->error, sizeof p->error, "replies to %zu requests never came", count);
            break;
        }
        int flags = MSG_DONTWAIT;
        uint64_t wait = ld->rate > 0 && !stopping ? bench_schedule_wait_ns(&sched) : 0;
        if (!stopping && count < ld->window && wait == 0) {
            for (size_t i = 0; i < ld->batch; i++)
                bench_id_next(p, cmd + id_at[i]);
            flight *f = &ring[(head + count) % ld->window];
            int phase = atomic_load_explicit(p->phase, memory_order_relaxed);
            f->t0 = ld->rate > 0 ? bench_schedule_take(&sched) : bench_now_ns();
            f->measured = ld->rate > 0 ? phase == PHASE_MEASURE : -1;
            f->left = ld->batch;
            f->nerrs = 0;
            if (bench_tcp_write_all(fd, cmd, cmd_len) != 0) {
                snprintf(p->error, sizeof p->error, "send to redis failed: %s", strerror(errno));
                break;
            }
            count++;
        } else {
            /* Replies, or the next request's time when it comes first. */
            uint64_t ns = 20000000;
            if (count < ld->window && wait && wait < ns)
                ns = wait;
            struct timespec ts = {0, (long)ns};
            struct pollfd pfd = {fd, POLLIN, 0};
            if (ppoll(&pfd, 1, &ts, NULL) <= 0)
                continue;
        }
        ssize_t n = recv(fd, rbuf + rlen, RBUF_SIZE - rlen, flags);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            continue;
        if (n <= 0) {
            snprintf(p->error, sizeof p->error, "redis closed the connection%s%s",
                     n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
            break;
        }
        rlen += (size_t)n;
        size_t pos = 0, used;
        int is_err, pr;
        while (count > 0 && (pr = parse_reply(rbuf + pos, rlen - pos, &used, &is_err)) == 1) {
            flight *f = &ring[head];
            if (is_err && f->nerrs++ == 0 && p->not_stored == 0)
                fprintf(stderr, "bench-ingest: redis answered %.*s\n",
                        (int)(used > 2 ? used - 2 : used), rbuf + pos);
            pos += used;
            if (--f->left > 0)
                continue;
            uint64_t t = bench_now_ns();
            p->not_stored += f->nerrs;
            p->durable += ld->batch - f->nerrs;
            int measuring = atomic_load_explicit(p->phase, memory_order_relaxed) == PHASE_MEASURE;
            if (measuring && f->nerrs == 0)
                p->acked += ld->batch;
            if (f->nerrs == 0 && (f->measured < 0 ? measuring : f->measured))
                bench_lat_add(&p->lat, t - f->t0);
            head = (head + 1) % ld->window;
            count--;
        }
        if (pos < rlen && (count == 0 || parse_reply(rbuf + pos, rlen - pos, &used, &is_err) < 0)) {
            int show = rlen - pos < 40 ? (int)(rlen - pos) : 40;
            snprintf(p->error, sizeof p->error, "unexpected reply from redis: %.*s", show,
                     rbuf + pos);
            break;
        }
        memmove(rbuf, rbuf + pos, rlen - pos);
        rlen -= pos;
    }
out:
    if (p->error[0])
        atomic_store(&p->ready, -1);
    if (fd >= 0)
        close(fd);
    free(detail);
    free(id_at);
    free(ring);
    free(rbuf);
    free(cmd);
    return NULL;
}
