/* One producer over evbusd's EventBridge-compatible HTTP ingest: PutEvents
 * requests of `batch` entries (at most 10, EventBridge's limit), each entry
 * carrying its id as a resource evbus:id/ID. HTTP/1.1 has one request in
 * flight per connection, so the producer's window is that many kept-alive
 * connections. Unsigned (ingest.http.allow_unsigned on loopback): signing is
 * the client's cost, not the server's. HTTP is spoken directly over sockets,
 * as RESP is for Redis, so that no client library is measured. */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include "bench.h"

#define RBUF_SIZE 65536

typedef struct hconn {
    int fd;
    int busy; /* a request is in flight */
    uint64_t t0;
    char rbuf[RBUF_SIZE];
    size_t rlen;
} hconn;

/* Lays out one request (headers and body) into req, or only measures it
 * when req is NULL; id_at[i] receives where entry i's id goes. */
static size_t build_request(char *req, size_t *id_at, size_t batch, const char *detail) {
    /* The detail is a JSON object inside a JSON string: its quotes escaped. */
    size_t body = 0;
    char esc[1024 * 1024];
    size_t elen = 0;
    for (const char *d = detail; *d && elen + 2 < sizeof esc; d++) {
        if (*d == '"' || *d == '\\')
            esc[elen++] = '\\';
        esc[elen++] = *d;
    }
    static const char e1[] = "{\"Source\":\"" BENCH_SOURCE "\",\"DetailType\":\"" BENCH_DETAIL_TYPE
                             "\",\"Resources\":[\"evbus:id/";
    static const char e2[] = "\"],\"Detail\":\"";
    size_t entry = sizeof e1 - 1 + BENCH_ID_LEN + sizeof e2 - 1 + elen + 2;
    body = strlen("{\"Entries\":[") + batch * entry + (batch - 1) + 2;
    char head[256];
    int hn = snprintf(head, sizeof head,
                      "POST / HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Amz-Target: AWSEvents.PutEvents\r\n"
                      "Content-Type: application/x-amz-json-1.1\r\nContent-Length: %zu\r\n\r\n",
                      body);
    size_t total = (size_t)hn + body;
    if (!req)
        return total;
    char *p = req;
    memcpy(p, head, (size_t)hn);
    p += hn;
    p += sprintf(p, "{\"Entries\":[");
    for (size_t i = 0; i < batch; i++) {
        if (i)
            *p++ = ',';
        memcpy(p, e1, sizeof e1 - 1);
        p += sizeof e1 - 1;
        id_at[i] = (size_t)(p - req);
        p += BENCH_ID_LEN;
        memcpy(p, e2, sizeof e2 - 1);
        p += sizeof e2 - 1;
        memcpy(p, esc, elen);
        p += elen;
        *p++ = '"';
        *p++ = '}';
    }
    *p++ = ']';
    *p++ = '}';
    return total;
}

/* One complete response in c->rbuf: returns its length (and *failed, the
 * entries not durable), 0 when more bytes are needed, -1 when it is not a
 * PutEvents answer. */
static ssize_t parse_response(hconn *c, size_t batch, size_t *failed) {
    c->rbuf[c->rlen < RBUF_SIZE ? c->rlen : RBUF_SIZE - 1] = '\0';
    char *end = strstr(c->rbuf, "\r\n\r\n");
    if (!end)
        return 0;
    const char *cl = strcasestr(c->rbuf, "\r\nContent-Length:");
    if (!cl || cl > end)
        return -1;
    size_t body = strtoul(cl + 17, NULL, 10);
    size_t total = (size_t)(end + 4 - c->rbuf) + body;
    if (c->rlen < total)
        return total < RBUF_SIZE ? 0 : -1;
    if (strncmp(c->rbuf, "HTTP/1.1 200", 12) != 0) {
        *failed = batch;
    } else {
        const char *f = strstr(end, "\"FailedEntryCount\":");
        *failed = f ? strtoul(f + 19, NULL, 10) : batch;
    }
    return (ssize_t)total;
}

void *bench_http_producer(void *arg) {
    bench_producer *p = arg;
    const bench_load *ld = p->load;
    size_t dlen = bench_detail_len(ld->event_size);
    char *detail = malloc(dlen + 1);
    size_t *id_at = calloc(ld->batch, sizeof *id_at);
    hconn *conns = calloc(ld->window, sizeof *conns);
    struct pollfd *pfds = calloc(ld->window, sizeof *pfds);
    char *req = NULL;
    size_t n_open = 0;
    if (!detail || !id_at || !conns || !pfds) {
        snprintf(p->error, sizeof p->error, "out of memory");
        goto out;
    }
    if (ld->batch > 10) {
        snprintf(p->error, sizeof p->error, "a PutEvents request carries at most 10 entries");
        goto out;
    }
    bench_detail_fill(detail, dlen);
    size_t req_len = build_request(NULL, NULL, ld->batch, detail);
    if (!(req = malloc(req_len + 1))) {
        snprintf(p->error, sizeof p->error, "out of memory");
        goto out;
    }
    build_request(req, id_at, ld->batch, detail);
    for (; n_open < ld->window; n_open++) {
        conns[n_open].fd = bench_tcp_connect_loopback(ld->port);
        if (conns[n_open].fd < 0) {
            snprintf(p->error, sizeof p->error, "cannot connect to evbusd's HTTP port %d: %s",
                     ld->port, strerror(errno));
            goto out;
        }
    }
    atomic_store(&p->ready, 1);
    while (atomic_load(p->phase) == PHASE_SETUP && !bench_interrupted) {
        struct pollfd none = {-1, 0, 0};
        poll(&none, 0, 1);
    }
    uint64_t drain_deadline = 0;
    for (;;) {
        int stopping = atomic_load_explicit(p->phase, memory_order_relaxed) == PHASE_STOP ||
                       bench_interrupted || p->error[0];
        size_t busy = 0;
        for (size_t i = 0; i < n_open; i++) {
            hconn *c = &conns[i];
            if (!c->busy && !stopping) {
                for (size_t k = 0; k < ld->batch; k++)
                    bench_id_next(p, req + id_at[k]);
                c->t0 = bench_now_ns();
                if (bench_tcp_write_all(c->fd, req, req_len) != 0) {
                    snprintf(p->error, sizeof p->error, "send to evbusd failed: %s",
                             strerror(errno));
                    break;
                }
                c->busy = 1;
            }
            busy += (size_t)c->busy;
            pfds[i] = (struct pollfd){c->fd, c->busy ? POLLIN : 0, 0};
        }
        if (stopping && busy == 0)
            break;
        if (stopping && !drain_deadline)
            drain_deadline = bench_now_ns() + 20ull * 1000000000u;
        if (stopping && bench_now_ns() > drain_deadline) {
            if (!p->error[0])
                snprintf(p->error, sizeof p->error, "answers to %zu requests never came", busy);
            break;
        }
        if (poll(pfds, n_open, 20) <= 0)
            continue;
        for (size_t i = 0; i < n_open && !p->error[0]; i++) {
            hconn *c = &conns[i];
            if (!(pfds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                continue;
            ssize_t n = recv(c->fd, c->rbuf + c->rlen, RBUF_SIZE - 1 - c->rlen, MSG_DONTWAIT);
            if (n < 0 && (errno == EAGAIN || errno == EINTR))
                continue;
            if (n <= 0) {
                snprintf(p->error, sizeof p->error, "evbusd closed an HTTP connection%s%s",
                         n < 0 ? ": " : "", n < 0 ? strerror(errno) : "");
                break;
            }
            c->rlen += (size_t)n;
            size_t failed = 0;
            ssize_t used = parse_response(c, ld->batch, &failed);
            if (used < 0) {
                snprintf(p->error, sizeof p->error, "unexpected answer: %.60s", c->rbuf);
                break;
            }
            if (used == 0)
                continue;
            if (failed && p->not_stored == 0)
                fprintf(stderr, "bench-ingest: evbusd over HTTP answered %.200s\n", c->rbuf);
            uint64_t t = bench_now_ns();
            p->not_stored += failed;
            p->durable += ld->batch - failed;
            p->accepted += ld->batch - failed;
            if (atomic_load_explicit(p->phase, memory_order_relaxed) == PHASE_MEASURE &&
                failed == 0) {
                p->acked += ld->batch;
                bench_lat_add(&p->lat, t - c->t0);
            }
            memmove(c->rbuf, c->rbuf + used, c->rlen - (size_t)used);
            c->rlen -= (size_t)used;
            c->busy = 0;
        }
    }
out:
    if (p->error[0])
        atomic_store(&p->ready, -1);
    for (size_t i = 0; conns && i < n_open; i++)
        close(conns[i].fd);
    free(detail);
    free(id_at);
    free(conns);
    free(pfds);
    free(req);
    return NULL;
}
