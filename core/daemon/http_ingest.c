#include "http_ingest.h"

#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <zmq.h>

#include "common/log.h"
#include "common/util.h"
#include "http_internal.h"
#include "ingest.h"

/* Each connection's memory pool (headers, read and write buffers), which
 * libmicrohttpd zeroes whole between two requests of a connection: its
 * default, 32 KiB, made that memset the largest single cost of the HTTP
 * thread. A PutEvents request's headers (SigV4 included) take about 1 KiB;
 * bodies are handed over in chunks, so a smaller pool only means more
 * chunks for large bodies. */
#define CONNECTION_MEMORY (16 * 1024)

/* How long stopping waits for the acks of requests already handed over. */
#define STOP_WAIT_MS 1000

/* --- libmicrohttpd callbacks ------------------------------------------ */

static enum MHD_Result queue(evbus__http_request *req) {
    if (!req->resp)
        return MHD_NO;
    enum MHD_Result rc = MHD_queue_response(req->mc, req->status, req->resp);
    return rc;
}

/* The first call for a request: what can be refused from the headers alone
 * is refused before its body is read. */
static void check_headers(evbus__http_ingest *h, evbus__http_request *req, const char *url,
                          const char *method) {
    const char *target = MHD_lookup_connection_value(req->mc, MHD_HEADER_KIND, "X-Amz-Target");
    const char *length =
        MHD_lookup_connection_value(req->mc, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    if (strcmp(method, MHD_HTTP_METHOD_POST) != 0 || strcmp(url, "/") != 0)
        evbus__http_set_error(h, req, MHD_HTTP_NOT_FOUND, "UnknownOperationException",
                              "evbusd answers the EventBridge API with POST / only");
    else if (!target || strcmp(target, "AWSEvents.PutEvents") != 0)
        evbus__http_set_error(h, req, MHD_HTTP_BAD_REQUEST, "UnknownOperationException",
                              "evbusd answers X-Amz-Target: AWSEvents.PutEvents only");
    else if (length && strtoull(length, NULL, 10) > h->cfg->max_request_bytes)
        req->too_large = true;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *mc, const char *url,
                                  const char *method, const char *version, const char *upload_data,
                                  size_t *upload_data_size, void **con_cls) {
    (void)version;
    evbus__http_ingest *h = cls;
    evbus__http_request *req = *con_cls;
    if (!req) {
        req = evbus__http_request_get(h);
        if (!req)
            return MHD_NO;
        req->mc = mc;
        *con_cls = req;
        check_headers(h, req, url, method);
        if (req->phase == EVBUS__HTTP_ANSWERED)
            return queue(req);
        if (req->too_large) {
            /* Refused before its body is read: libmicrohttpd closes the
             * connection after the answer instead of reading the body. */
            evbus__http_request_process(h, req);
            return queue(req);
        }
        return MHD_YES;
    }
    if (req->phase == EVBUS__HTTP_ANSWERED)
        return queue(req);
    if (req->phase == EVBUS__HTTP_WAITING)
        return MHD_NO; /* resumed without an answer: only when stopping */
    if (*upload_data_size) {
        size_t n = *upload_data_size;
        *upload_data_size = 0;
        if (req->too_large || req->len + n > h->cfg->max_request_bytes) {
            req->too_large = true;
            free(req->body);
            req->body = NULL;
            req->len = req->cap = 0;
            return MHD_YES;
        }
        if (req->len + n > req->cap) {
            size_t cap = req->cap ? req->cap * 2 : 4096;
            while (cap < req->len + n)
                cap *= 2;
            char *b = realloc(req->body, cap);
            if (!b)
                return MHD_NO;
            req->body = b;
            req->cap = cap;
        }
        memcpy(req->body + req->len, upload_data, n);
        req->len += n;
        return MHD_YES;
    }
    evbus__http_request_process(h, req);
    if (req->phase == EVBUS__HTTP_WAITING)
        return MHD_YES;
    return queue(req);
}

static evbus__http_conn *conn_of(struct MHD_Connection *mc) {
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(mc, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

static void on_completed(void *cls, struct MHD_Connection *mc, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    evbus__http_ingest *h = cls;
    evbus__http_request *req = *con_cls;
    if (req && toe != MHD_REQUEST_TERMINATED_COMPLETED_OK && req->phase == EVBUS__HTTP_READING) {
        EVBUS__HTTP_COUNT(h, truncated);
        EVBUS_LOG_D("http",
                    "a connection closed before its request was complete (%zu bytes of "
                    "body read): nothing of it was stored",
                    req->len);
    }
    if (req && req->phase == EVBUS__HTTP_WAITING)
        evbus__http_give_slot(h, req); /* its ack, if one comes, finds no one */
    evbus__http_request_put(h, req);
    *con_cls = NULL;
    evbus__http_conn *rec = conn_of(mc);
    if (rec)
        rec->deadline_ms = evbus__now_mono_ms() + h->cfg->http_timeout_ms;
}

static void on_connection(void *cls, struct MHD_Connection *mc, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    evbus__http_ingest *h = cls;
    evbus__http_conn *rec = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(mc, MHD_CONNECTION_INFO_CONNECTION_FD);
        rec = ci ? calloc(1, sizeof *rec) : NULL;
        if (!rec)
            return; /* out of memory: only the idle timeout applies */
        rec->fd = ci->connect_fd;
        rec->deadline_ms = evbus__now_mono_ms() + h->cfg->http_timeout_ms;
        rec->next = h->conns;
        if (h->conns)
            h->conns->prev = rec;
        h->conns = rec;
        *socket_context = rec;
    } else if (rec) {
        if (rec->prev)
            rec->prev->next = rec->next;
        else
            h->conns = rec->next;
        if (rec->next)
            rec->next->prev = rec->prev;
        free(rec);
        *socket_context = NULL;
    }
}

/* libmicrohttpd's timeout counts from the last byte received, so a client
 * trickling a byte a second would hold its connection for ever. Each
 * connection gets ingest.http.connection_timeout to send a whole request
 * (from its start, or the end of its previous one); one that misses it is
 * shut down, which libmicrohttpd sees as the peer leaving. A request with
 * the ingest has no deadline: its answer is on the way. Runs on the loop's
 * thread, between two MHD_run(), so the descriptor is still open. */
static void reap(evbus__http_ingest *h) {
    int64_t now = evbus__now_mono_ms();
    for (evbus__http_conn *r = h->conns; r; r = r->next) {
        if (r->deadline_ms && r->deadline_ms <= now) {
            shutdown(r->fd, SHUT_RDWR);
            r->deadline_ms = 0;
            EVBUS__HTTP_COUNT(h, timed_out);
        }
    }
}

static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    evbus__http_ingest *h = cls;
    int64_t second = evbus__now_mono_ms() / 1000;
    if (second != h->log_second) {
        h->log_second = second;
        h->log_lines = 0;
    }
    if (h->log_lines++ >= 5 || EVBUS_LOG_WARN > evbus__log_threshold)
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    evbus__log_write(EVBUS_LOG_WARN, "http", "libmicrohttpd: %s", line);
}

/* A request suspended while the ingest has it is not known to libmicrohttpd's
 * clock; it stays suspended until its ack. */
static void mark_waiting(evbus__http_ingest *h) {
    for (size_t i = 0; i < h->n_slots; i++) {
        evbus__http_request *req = h->slots[i].req;
        evbus__http_conn *rec = req ? conn_of(req->mc) : NULL;
        if (rec)
            rec->deadline_ms = 0;
    }
}

/* SIGHUP: the credentials file again. A file that cannot be used leaves
 * the keys as they were: refusing every producer for a typo would be worse. */
static void reload_keys(evbus__http_ingest *h) {
    *h->reload = 0;
    if (!h->cfg->http_credentials)
        return;
    evbus__http_keys fresh = {0};
    char kerr[512];
    if (evbus__http_keys_load(h->cfg->http_credentials, &fresh, kerr, sizeof kerr) != EVBUS_OK) {
        EVBUS_LOG_E("http", "reload: ingest.http.credentials: %s; the keys stay as they were",
                    kerr);
        return;
    }
    evbus__http_keys_free(&h->keys);
    h->keys = fresh;
    EVBUS__HTTP_COUNT(h, key_reloads);
    EVBUS_LOG_I("http", "reloaded %s: %zu access keys", h->cfg->http_credentials, h->keys.n);
}

static void *loop_main(void *arg) {
    evbus__http_ingest *h = arg;
    pthread_setname_np(pthread_self(), "evbus-http");
    int64_t next_reap = 0;
    while (!atomic_load(&h->stop)) {
        long timeout = 100;
        MHD_UNSIGNED_LONG_LONG to;
        if (MHD_get_timeout(h->mhd, &to) == MHD_YES && to < (MHD_UNSIGNED_LONG_LONG)timeout)
            timeout = (long)to;
        zmq_pollitem_t items[2] = {{h->dealer, 0, ZMQ_POLLIN, 0},
                                   {NULL, h->epoll_fd, ZMQ_POLLIN, 0}};
        if (zmq_poll(items, 2, timeout) < 0 && errno != EINTR) {
            EVBUS_LOG_E("http", "poll failed: %s", zmq_strerror(errno));
            break;
        }
        if (items[0].revents & ZMQ_POLLIN)
            evbus__http_take_acks(h);
        if (h->reload && *h->reload)
            reload_keys(h);
        MHD_run(h->mhd);
        int64_t now = evbus__now_mono_ms();
        if (now >= next_reap) {
            mark_waiting(h);
            reap(h);
            next_reap = now + 250;
        }
    }
    /* Acks of requests already handed over still come (the ingest answers
     * every request it read); what has none by then is told to retry. */
    int64_t deadline = evbus__now_mono_ms() + STOP_WAIT_MS;
    for (;;) {
        size_t waiting = 0;
        for (size_t i = 0; i < h->n_slots; i++)
            waiting += h->slots[i].req != NULL;
        if (!waiting || evbus__now_mono_ms() >= deadline)
            break;
        zmq_pollitem_t item = {h->dealer, 0, ZMQ_POLLIN, 0};
        zmq_poll(&item, 1, 50);
        evbus__http_take_acks(h);
        MHD_run(h->mhd);
    }
    for (size_t i = 0; i < h->n_slots; i++) {
        evbus__http_request *req = h->slots[i].req;
        if (!req)
            continue;
        evbus__http_give_slot(h, req);
        evbus__http_set_error(h, req, MHD_HTTP_BAD_REQUEST, "ThrottlingException",
                              "evbusd is shutting down; send again later");
        MHD_resume_connection(req->mc);
    }
    for (int i = 0; i < 5; i++)
        MHD_run(h->mhd);
    return NULL;
}

static char *read_file(const char *path, char *err, size_t errlen, const char *key) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open %s: %s", key, path, strerror(errno));
        return NULL;
    }
    size_t cap = 1 << 20;
    char *text = malloc(cap + 1);
    size_t n = text ? fread(text, 1, cap, f) : 0;
    fclose(f);
    if (!text || n == 0 || n == cap) {
        snprintf(err, errlen, "%s: %s: %s", key, path,
                 !text    ? "out of memory"
                 : n == 0 ? "empty or unreadable"
                          : "larger than 1 MiB");
        free(text);
        return NULL;
    }
    text[n] = '\0';
    return text;
}

static void http_free(evbus__http_ingest *h) {
    if (h->mhd)
        MHD_stop_daemon(h->mhd);
    if (h->dealer)
        zmq_close(h->dealer);
    evbus__http_keys_free(&h->keys);
    if (h->tls_key) {
        explicit_bzero(h->tls_key, strlen(h->tls_key));
        free(h->tls_key);
    }
    free(h->tls_cert);
    evbus__http_requests_free(h);
    free(h->slots);
    free(h->free_slots);
    free(h);
}

evbus_err evbus__http_ingest_start(const evbus__config *cfg, void *zctx,
                                   evbus__http_counters *counters, volatile sig_atomic_t *reload,
                                   evbus__http_ingest **out, char *err, size_t errlen) {
    *out = NULL;
    if (!cfg->http_listen)
        return EVBUS_OK;
    struct sockaddr_in addr;
    const char *why;
    if (evbus__config_host_port(cfg->http_listen, &addr, &why)) {
        snprintf(err, errlen, "%s: ingest.http.listen: %s, got '%s'", cfg->path, why,
                 cfg->http_listen);
        return EVBUS_ECONFIG;
    }
    evbus__http_ingest *h = calloc(1, sizeof *h);
    if (!h)
        return EVBUS_ENOMEM;
    h->cfg = cfg;
    h->count = counters;
    h->reload = reload;
    evbus__uuid_gen_init(&h->uuids);
    evbus_err rc = EVBUS_OK;
    if (cfg->http_credentials) {
        char kerr[512];
        rc = evbus__http_keys_load(cfg->http_credentials, &h->keys, kerr, sizeof kerr);
        if (rc != EVBUS_OK) {
            snprintf(err, errlen, "ingest.http.credentials: %s", kerr);
            goto fail;
        }
    }
    h->n_slots = cfg->http_max_connections;
    h->slots = calloc(h->n_slots, sizeof *h->slots);
    h->free_slots = calloc(h->n_slots, sizeof *h->free_slots);
    if (!h->slots || !h->free_slots) {
        rc = EVBUS_ENOMEM;
        snprintf(err, errlen, "out of memory");
        goto fail;
    }
    for (size_t i = 0; i < h->n_slots; i++)
        h->free_slots[h->n_free++] = (uint32_t)(h->n_slots - 1 - i);
    h->dealer = zmq_socket(zctx, ZMQ_DEALER);
    int zero = 0;
    if (!h->dealer || zmq_setsockopt(h->dealer, ZMQ_LINGER, &zero, sizeof zero) != 0 ||
        zmq_setsockopt(h->dealer, ZMQ_SNDHWM, &zero, sizeof zero) != 0 ||
        zmq_connect(h->dealer, EVBUS__HTTP_INGEST_ENDPOINT) != 0) {
        rc = EVBUS_EZMQ;
        snprintf(err, errlen, "cannot connect the HTTP ingest to the ingest loop: %s",
                 zmq_strerror(errno));
        goto fail;
    }
    /* TURBO: read, write and accept before asking epoll, which saves a
     * system call or two per request (system calls are dear on virtual
     * machines). */
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG | MHD_USE_TURBO;
    if (cfg->http_tls_cert) {
        if (!(h->tls_cert = read_file(cfg->http_tls_cert, err, errlen, "ingest.http.tls_cert")) ||
            !(h->tls_key = read_file(cfg->http_tls_key, err, errlen, "ingest.http.tls_key"))) {
            rc = EVBUS_EIO;
            goto fail;
        }
        flags |= MHD_USE_TLS;
    }
    unsigned timeout_s = (unsigned)((cfg->http_timeout_ms + 999) / 1000);
    /* The TLS options only with TLS: libmicrohttpd complains of them
     * otherwise. */
    struct MHD_OptionItem tls[] = {
        {MHD_OPTION_HTTPS_MEM_CERT, 0, h->tls_cert},
        {MHD_OPTION_HTTPS_MEM_KEY, 0, h->tls_key},
        {MHD_OPTION_END, 0, NULL},
    };
    if (!cfg->http_tls_cert)
        tls[0].option = MHD_OPTION_END;
    h->mhd = MHD_start_daemon(
        flags, 0, NULL, NULL, on_request, h, MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, h,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr, MHD_OPTION_CONNECTION_MEMORY_LIMIT,
        (size_t)CONNECTION_MEMORY, MHD_OPTION_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections,
        MHD_OPTION_PER_IP_CONNECTION_LIMIT, (unsigned)cfg->http_max_connections_per_ip,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_NOTIFY_COMPLETED, on_completed, h,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, h, MHD_OPTION_ARRAY, tls, MHD_OPTION_END);
    if (!h->mhd) {
        rc = EVBUS_EIO;
        snprintf(err, errlen, "%s: ingest.http.listen: cannot listen on %s%s", cfg->path,
                 cfg->http_listen,
                 cfg->http_tls_cert ? " (or the TLS certificate and key are not usable)" : "");
        goto fail;
    }
    const union MHD_DaemonInfo *di = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    h->epoll_fd = di ? di->epoll_fd : -1;
    if (h->epoll_fd < 0 || pthread_create(&h->thread, NULL, loop_main, h) != 0) {
        rc = EVBUS_EIO;
        snprintf(err, errlen, "cannot start the HTTP ingest thread");
        goto fail;
    }
    h->running = true;
    EVBUS_LOG_I("evbusd", "EventBridge PutEvents API on %s://%s/ (%s, at most %llu connections)",
                cfg->http_tls_cert ? "https" : "http", cfg->http_listen,
                cfg->http_credentials ? "SigV4 with ingest.http.credentials"
                                      : "unsigned requests allowed",
                (unsigned long long)cfg->http_max_connections);
    *out = h;
    return EVBUS_OK;
fail:
    http_free(h);
    return rc;
}

void evbus__http_ingest_stop(evbus__http_ingest **hp) {
    if (!hp || !*hp)
        return;
    evbus__http_ingest *h = *hp;
    if (h->running) {
        atomic_store(&h->stop, true);
        pthread_join(h->thread, NULL);
    }
    evbus__http_counters *c = h->count;
    EVBUS_LOG_I("http",
                "stopped: %llu requests, %llu refused by authentication, %llu cut short by the "
                "client, %llu timed out",
                (unsigned long long)atomic_load(&c->requests),
                (unsigned long long)atomic_load(&c->refused_signature),
                (unsigned long long)atomic_load(&c->truncated),
                (unsigned long long)atomic_load(&c->timed_out));
    http_free(h);
    *hp = NULL;
}
