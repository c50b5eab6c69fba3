#include "metrics.h"

#include <arpa/inet.h>
#include <jansson.h>
#include <microhttpd.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "common/log.h"
#include "common/util.h"

/* One open HTTP connection. libmicrohttpd's connection timeout counts from
 * the last byte received, so a client trickling a header byte a second
 * (slowloris) was never closed, and 16 of them took every per-address slot
 * for good. Each connection here gets a deadline to finish sending its
 * request's headers (from its start, or from the end of its previous request
 * on a kept-alive connection); the reaper thread shuts down the socket of
 * one that misses it, which libmicrohttpd sees as the peer leaving and
 * closes. libmicrohttpd 0.9.75 has no call to close a connection from
 * outside its callbacks; shutdown() from another thread is safe because
 * the record is removed (under the lock) in the CLOSED notification, which
 * libmicrohttpd makes before it closes the descriptor. */
typedef struct conn_rec {
    struct conn_rec *prev, *next;
    int fd;
    int64_t deadline_ms; /* 0: headers received, being answered */
} conn_rec;

struct evbus__metrics {
    struct MHD_Daemon *mhd;
    evbus__control *control;
    int64_t request_ms; /* metrics.connection_timeout */
    pthread_mutex_t lock;
    pthread_cond_t wake;
    conn_rec *conns;
    bool stopping, reaper_running;
    pthread_t reaper;
    atomic_int_fast64_t log_second, log_lines; /* libmicrohttpd's messages, rate-limited */
};

typedef struct text {
    char *s;
    size_t len, cap;
} text;

__attribute__((format(printf, 2, 3))) static void add(text *t, const char *fmt, ...) {
    va_list ap;
    for (;;) {
        va_start(ap, fmt);
        int n = vsnprintf(t->s ? t->s + t->len : NULL, t->s ? t->cap - t->len : 0, fmt, ap);
        va_end(ap);
        if (n < 0)
            return;
        if (t->s && t->len + (size_t)n < t->cap) {
            t->len += (size_t)n;
            return;
        }
        size_t cap = t->cap ? t->cap * 2 : 4096;
        while (cap < t->len + (size_t)n + 1)
            cap *= 2;
        char *s = realloc(t->s, cap);
        if (!s)
            return;
        t->s = s;
        t->cap = cap;
    }
}

static long long num(json_t *o, const char *key) {
    return (long long)json_integer_value(json_object_get(o, key));
}

/* Target names come from the configuration: escape them for label values. */
static void label(text *t, const char *v) {
    for (; *v; v++) {
        if (*v == '"' || *v == '\\')
            add(t, "\\%c", *v);
        else if (*v == '\n')
            add(t, "\\n");
        else
            add(t, "%c", *v);
    }
}

/* Per producer (CURVE): what their events became, and connections refused. */
static void render_auth(text *t, json_t *auth) {
    if (!auth)
        return;
    json_t *refused = json_object_get(auth, "refused_connections");
    add(t,
        "# HELP evbus_auth_refused_connections_total Connections the authentication handler "
        "refused (unknown CURVE key, or another user on the control socket).\n"
        "# TYPE evbus_auth_refused_connections_total counter\n"
        "evbus_auth_refused_connections_total{socket=\"ingest\"} %lld\n"
        "evbus_auth_refused_connections_total{socket=\"control\"} %lld\n",
        num(refused, "ingest"), num(refused, "control"));
    json_t *producers = json_object_get(auth, "producers");
    if (!json_array_size(producers))
        return;
    add(t, "# HELP evbus_producer_events_total Events of each authenticated producer, by "
           "outcome (accepted: durable, including duplicates).\n"
           "# TYPE evbus_producer_events_total counter\n");
    size_t i;
    json_t *p;
    static const char *const outcomes[] = {"accepted", "rejected"};
    json_array_foreach(producers, i, p) {
        for (size_t k = 0; k < 2; k++) {
            add(t, "evbus_producer_events_total{producer=\"");
            label(t, json_string_value(json_object_get(p, "name")));
            add(t, "\",outcome=\"%s\"} %lld\n", outcomes[k], num(p, outcomes[k]));
        }
    }
    add(t, "# HELP evbus_producer_refused_requests_total Requests not answered because the "
           "producer's key was revoked after it connected.\n"
           "# TYPE evbus_producer_refused_requests_total counter\n");
    json_array_foreach(producers, i, p) {
        add(t, "evbus_producer_refused_requests_total{producer=\"");
        label(t, json_string_value(json_object_get(p, "name")));
        add(t, "\"} %lld\n", num(p, "refused"));
    }
}

/* The HTTP PutEvents ingest (status "http"), when ingest.http.listen is set. */
static void render_http(text *t, json_t *http) {
    if (!http)
        return;
    json_t *errors = json_object_get(http, "errors");
    add(t,
        "# HELP evbus_http_requests_total PutEvents HTTP requests answered.\n"
        "# TYPE evbus_http_requests_total counter\nevbus_http_requests_total %lld\n"
        "# HELP evbus_http_entries_total PutEvents entries answered, by result (stored: an "
        "EventId; failed: an ErrorCode).\n# TYPE evbus_http_entries_total counter\n"
        "evbus_http_entries_total{result=\"stored\"} %lld\n"
        "evbus_http_entries_total{result=\"failed\"} %lld\n"
        "# HELP evbus_http_refused_signature_total Requests refused with 403: SigV4 missing, "
        "of an unknown key, wrong or out of date.\n"
        "# TYPE evbus_http_refused_signature_total counter\n"
        "evbus_http_refused_signature_total %lld\n"
        "# HELP evbus_http_credential_reloads_total Times ingest.http.credentials was read "
        "again (SIGHUP).\n# TYPE evbus_http_credential_reloads_total counter\n"
        "evbus_http_credential_reloads_total %lld\n"
        "# HELP evbus_http_errors_total Requests refused whole, or connections cut, by kind.\n"
        "# TYPE evbus_http_errors_total counter\n",
        num(http, "requests"), num(http, "entries_stored"), num(http, "entries_failed"),
        num(http, "refused_signature"), num(http, "key_reloads"));
    static const char *const kinds[] = {"validation", "too_large", "unknown_operation", "throttled",
                                        "internal",   "truncated", "timed_out"};
    for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++)
        add(t, "evbus_http_errors_total{kind=\"%s\"} %lld\n", kinds[i], num(errors, kinds[i]));
}

char *evbus__metrics_render(json_t *st) {
    text t = {0};
    json_t *in = json_object_get(st, "ingest"), *store = json_object_get(st, "store");
    add(&t, "# HELP evbus_ingest_events_total Events answered at ingest, by ack status.\n"
            "# TYPE evbus_ingest_events_total counter\n");
    static const char *const results[][2] = {{"accepted", "accepted"},
                                             {"duplicate", "duplicates"},
                                             {"rejected", "rejected"},
                                             {"retry_later", "retry_later"}};
    for (size_t i = 0; i < 4; i++)
        add(&t, "evbus_ingest_events_total{status=\"%s\"} %lld\n", results[i][0],
            num(in, results[i][1]));
    add(&t,
        "# HELP evbus_ingest_bad_frames_total Requests refused whole (not a Publish, too "
        "large, ...).\n# TYPE evbus_ingest_bad_frames_total counter\n"
        "evbus_ingest_bad_frames_total %lld\n"
        "# HELP evbus_ingest_unmatched_total Accepted events no rule matched.\n"
        "# TYPE evbus_ingest_unmatched_total counter\nevbus_ingest_unmatched_total %lld\n"
        "# HELP evbus_ingest_commits_total Group commits.\n"
        "# TYPE evbus_ingest_commits_total counter\nevbus_ingest_commits_total %lld\n"
        "# HELP evbus_store_events Event records stored.\n# TYPE evbus_store_events gauge\n"
        "evbus_store_events %lld\n"
        "# HELP evbus_store_map_used_bytes Bytes of the store in use.\n"
        "# TYPE evbus_store_map_used_bytes gauge\nevbus_store_map_used_bytes %lld\n"
        "# HELP evbus_store_map_size_bytes Largest size of the store (storage.map_size).\n"
        "# TYPE evbus_store_map_size_bytes gauge\nevbus_store_map_size_bytes %lld\n",
        num(in, "bad_frames"), num(in, "unmatched"), num(in, "commits"), num(store, "events"),
        num(store, "map_used"), num(store, "map_size"));
    add(&t,
        "# HELP evbus_store_ids_forgotten_early_total Event ids forgotten before "
        "storage.dedup_window ended, to make room in a store full of them.\n"
        "# TYPE evbus_store_ids_forgotten_early_total counter\n"
        "evbus_store_ids_forgotten_early_total %lld\n"
        "# HELP evbus_store_dedup_window_effective_seconds How long ids were kept when some "
        "were last forgotten early (0: never).\n"
        "# TYPE evbus_store_dedup_window_effective_seconds gauge\n"
        "evbus_store_dedup_window_effective_seconds %.3f\n",
        num(store, "ids_forgotten_early"),
        (double)num(store, "dedup_window_effective_ms") / 1000.0);
    static const char *const per_target[][4] = {
        {"pending", "gauge", "pending", "Deliveries waiting, in flight or scheduled for retry."},
        {"in_flight", "gauge", "in_flight", "Events handed to the plugin and not yet answered."},
        {"delivered_total", "counter", "delivered", "Events the plugin delivered."},
        {"retried_total", "counter", "retried", "Delivery attempts that will be retried."},
        {"dead_lettered_total", "counter", "dead_lettered", "Events moved to dead letters."},
        {"target_faults_total", "counter", "target_faults",
         "Attempts that failed because the target itself is at fault (credentials, access, "
         "missing resource, unreachable)."},
        {"oldest_pending_age_seconds", "gauge", "oldest_pending_age_ms",
         "Age of the oldest pending delivery."}};
    json_t *targets = json_object_get(st, "targets");
    for (size_t m = 0; m < sizeof per_target / sizeof per_target[0]; m++) {
        add(&t, "# HELP evbus_target_%s %s\n# TYPE evbus_target_%s %s\n", per_target[m][0],
            per_target[m][3], per_target[m][0], per_target[m][1]);
        size_t i;
        json_t *tg;
        json_array_foreach(targets, i, tg) {
            add(&t, "evbus_target_%s{target=\"", per_target[m][0]);
            label(&t, json_string_value(json_object_get(tg, "name")));
            long long v = num(tg, per_target[m][2]);
            if (strcmp(per_target[m][2], "oldest_pending_age_ms") == 0)
                add(&t, "\"} %.3f\n", (double)v / 1000.0);
            else
                add(&t, "\"} %lld\n", v);
        }
    }
    /* Where each target delivers: 1 for the region it delivers to now, 0 for
     * its other regions, so that a change of region shows on a graph. */
    add(&t, "# HELP evbus_target_region_active 1 for the region a target delivers to, 0 for "
            "its other regions.\n# TYPE evbus_target_region_active gauge\n");
    size_t i;
    json_t *tg;
    json_array_foreach(targets, i, tg) {
        const char *active = json_string_value(json_object_get(tg, "region"));
        size_t j;
        json_t *r;
        json_array_foreach(json_object_get(tg, "regions"), j, r) {
            add(&t, "evbus_target_region_active{target=\"");
            label(&t, json_string_value(json_object_get(tg, "name")));
            add(&t, "\",region=\"");
            label(&t, json_string_value(r));
            add(&t, "\"} %d\n", active && strcmp(active, json_string_value(r)) == 0);
        }
    }
    /* The plugins' own counters: evbus_sink_NAME_total{target=...}. */
    json_array_foreach(targets, i, tg) {
        const char *name;
        json_t *v;
        json_object_foreach(json_object_get(tg, "plugin_counters"), name, v) {
            add(&t, "evbus_sink_%s_total{target=\"", name);
            label(&t, json_string_value(json_object_get(tg, "name")));
            add(&t, "\"} %lld\n", (long long)json_integer_value(v));
        }
    }
    render_auth(&t, json_object_get(st, "auth"));
    render_http(&t, json_object_get(st, "http"));
    return t.s;
}

/* Everything here only reads: other methods get 405 and what is allowed. */
static enum MHD_Result not_allowed(struct MHD_Connection *conn) {
    static const char body[] = "method not allowed: use GET or HEAD\n";
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(sizeof body - 1, (void *)body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, "GET, HEAD");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain; charset=utf-8");
    enum MHD_Result rc = MHD_queue_response(conn, MHD_HTTP_METHOD_NOT_ALLOWED, resp);
    MHD_destroy_response(resp);
    return rc;
}

static enum MHD_Result answer(void *cls, struct MHD_Connection *conn, const char *url,
                              const char *method, const char *version, const char *upload,
                              size_t *upload_len, void **con_cls) {
    (void)version;
    (void)upload;
    (void)upload_len;
    (void)con_cls;
    evbus__metrics *m = cls;
    /* Called once the request's headers are all in: no deadline while it
     * is answered (the connection timeout still covers a stalled reader). */
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_rec *rec = ci ? ci->socket_context : NULL;
    if (rec) {
        pthread_mutex_lock(&m->lock);
        rec->deadline_ms = 0;
        pthread_mutex_unlock(&m->lock);
    }
    /* HEAD is answered like GET; MHD leaves the body out. */
    if (strcmp(method, MHD_HTTP_METHOD_GET) != 0 && strcmp(method, MHD_HTTP_METHOD_HEAD) != 0)
        return not_allowed(conn);
    json_t *st = evbus__control_status(m->control);
    char *body = NULL;
    const char *type = "text/plain; version=0.0.4; charset=utf-8";
    unsigned status = MHD_HTTP_OK;
    if (strcmp(url, "/metrics") == 0) {
        body = st ? evbus__metrics_render(st) : NULL;
    } else if (strcmp(url, "/") == 0) {
        type = "application/json";
        body = st ? json_dumps(st, JSON_INDENT(2)) : NULL;
    } else {
        status = MHD_HTTP_NOT_FOUND;
        body = strdup("not found: try /metrics (Prometheus) or / (status as JSON)\n");
    }
    json_decref(st);
    if (!body)
        return MHD_NO;
    struct MHD_Response *resp =
        MHD_create_response_from_buffer(strlen(body), body, MHD_RESPMEM_MUST_FREE);
    if (!resp) {
        free(body);
        return MHD_NO;
    }
    MHD_add_response_header(resp, "Content-Type", type);
    enum MHD_Result rc = MHD_queue_response(conn, status, resp);
    MHD_destroy_response(resp);
    return rc;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe) {
    evbus__metrics *m = cls;
    conn_rec *rec = *socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci =
            MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        rec = ci ? calloc(1, sizeof *rec) : NULL;
        if (!rec)
            return; /* out of memory: only the idle timeout applies */
        rec->fd = ci->connect_fd;
        pthread_mutex_lock(&m->lock);
        rec->deadline_ms = evbus__now_mono_ms() + m->request_ms;
        rec->next = m->conns;
        if (m->conns)
            m->conns->prev = rec;
        m->conns = rec;
        pthread_cond_signal(&m->wake);
        pthread_mutex_unlock(&m->lock);
        *socket_context = rec;
    } else if (rec) {
        pthread_mutex_lock(&m->lock);
        if (rec->prev)
            rec->prev->next = rec->next;
        else
            m->conns = rec->next;
        if (rec->next)
            rec->next->prev = rec->prev;
        pthread_mutex_unlock(&m->lock);
        free(rec);
        *socket_context = NULL;
    }
}

/* A request answered: the next one on this connection has its own deadline. */
static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe) {
    (void)con_cls;
    (void)toe;
    evbus__metrics *m = cls;
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    conn_rec *rec = ci ? ci->socket_context : NULL;
    if (!rec)
        return;
    pthread_mutex_lock(&m->lock);
    rec->deadline_ms = evbus__now_mono_ms() + m->request_ms;
    pthread_cond_signal(&m->wake);
    pthread_mutex_unlock(&m->lock);
}

static void *reaper_main(void *arg) {
    evbus__metrics *m = arg;
    pthread_mutex_lock(&m->lock);
    while (!m->stopping) {
        int64_t now = evbus__now_mono_ms(), next = now + 1000;
        unsigned closed = 0;
        for (conn_rec *r = m->conns; r; r = r->next) {
            if (!r->deadline_ms)
                continue;
            if (r->deadline_ms <= now) {
                shutdown(r->fd, SHUT_RDWR);
                r->deadline_ms = 0; /* once; libmicrohttpd closes it soon */
                closed++;
            } else if (r->deadline_ms < next) {
                next = r->deadline_ms;
            }
        }
        if (closed)
            EVBUS_LOG_D("metrics",
                        "closed %u connection(s) that did not send a request within %lld ms",
                        closed, (long long)m->request_ms);
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        int64_t wait_ms = next - now;
        until.tv_sec += wait_ms / 1000;
        until.tv_nsec += (wait_ms % 1000) * 1000000;
        if (until.tv_nsec >= 1000000000) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000;
        }
        pthread_cond_timedwait(&m->wake, &m->lock, &until);
    }
    pthread_mutex_unlock(&m->lock);
    return NULL;
}

/* libmicrohttpd's own messages ("Server reached connection limit", ...) go
 * through the project's log with a time and a level; an attack can make
 * many, so at most 10 a second are written. */
static void on_mhd_log(void *cls, const char *fmt, va_list ap) {
    evbus__metrics *m = cls;
    int64_t second = evbus__now_mono_ms() / 1000;
    if (atomic_exchange(&m->log_second, second) != second)
        atomic_store(&m->log_lines, 0);
    if (atomic_fetch_add(&m->log_lines, 1) >= 10 || EVBUS_LOG_WARN > evbus__log_threshold)
        return;
    char line[512];
    vsnprintf(line, sizeof line, fmt, ap);
    line[strcspn(line, "\r\n")] = '\0';
    evbus__log_write(EVBUS_LOG_WARN, "metrics", "libmicrohttpd: %s", line);
}

static void metrics_free(evbus__metrics *m) {
    if (m->reaper_running) {
        pthread_mutex_lock(&m->lock);
        m->stopping = true;
        pthread_cond_signal(&m->wake);
        pthread_mutex_unlock(&m->lock);
        pthread_join(m->reaper, NULL);
    }
    /* Its CLOSED notifications free the records still open. */
    if (m->mhd)
        MHD_stop_daemon(m->mhd);
    pthread_cond_destroy(&m->wake);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

evbus_err evbus__metrics_start(const evbus__config *cfg, evbus__control *control,
                               evbus__metrics **out, char *err, size_t errlen) {
    *out = NULL;
    if (!cfg->metrics_listen)
        return EVBUS_OK;
    struct sockaddr_in addr;
    const char *why;
    if (evbus__config_host_port(cfg->metrics_listen, &addr, &why)) {
        snprintf(err, errlen, "%s: metrics.listen: %s, got '%s'", cfg->path, why,
                 cfg->metrics_listen);
        return EVBUS_ECONFIG;
    }
    evbus__metrics *m = calloc(1, sizeof *m);
    if (!m)
        return EVBUS_ENOMEM;
    m->control = control;
    m->request_ms = cfg->metrics_timeout_ms;
    pthread_mutex_init(&m->lock, NULL);
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&m->wake, &ca);
    pthread_condattr_destroy(&ca);
    if (pthread_create(&m->reaper, NULL, reaper_main, m) != 0) {
        snprintf(err, errlen, "cannot start the metrics connection reaper");
        metrics_free(m);
        return EVBUS_ENOMEM;
    }
    m->reaper_running = true;
    /* epoll (AUTO on Linux), not select: connections past FD_SETSIZE must
     * not break the listener. The timeout closes idle connections, the
     * reaper half-sent ones; the limits bound how many anyone, and any one
     * address, may hold meanwhile. */
    unsigned timeout_s = (unsigned)((cfg->metrics_timeout_ms + 999) / 1000);
    m->mhd = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_USE_ERROR_LOG, 0, NULL, NULL, answer, m,
        MHD_OPTION_EXTERNAL_LOGGER, on_mhd_log, m, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_TIMEOUT, timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned)cfg->metrics_max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned)cfg->metrics_max_connections_per_ip, MHD_OPTION_NOTIFY_CONNECTION, on_connection,
        m, MHD_OPTION_NOTIFY_COMPLETED, on_completed, m, MHD_OPTION_END);
    if (!m->mhd) {
        snprintf(err, errlen, "%s: metrics.listen: cannot listen on %s (in use?)", cfg->path,
                 cfg->metrics_listen);
        metrics_free(m);
        return EVBUS_EIO;
    }
    *out = m;
    return EVBUS_OK;
}

void evbus__metrics_destroy(evbus__metrics **mp) {
    if (!mp || !*mp)
        return;
    metrics_free(*mp);
    *mp = NULL;
}
