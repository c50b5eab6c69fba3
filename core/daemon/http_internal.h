/* What the two halves of the HTTP ingest share: the server (http_ingest.c:
 * libmicrohttpd's loop, connections, start and stop) and the life of one
 * request (http_request.c: authenticate, decode, hand to the ingest, answer
 * from its ack). Everything here runs on the HTTP thread alone. */
#ifndef EVBUS_HTTP_INTERNAL_H
#define EVBUS_HTTP_INTERNAL_H

#include <microhttpd.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "common/util.h"
#include "config.h"
#include "http_ingest.h"
#include "http_keys.h"
#include "http_putevents.h"

typedef enum evbus__http_phase {
    EVBUS__HTTP_READING,  /* headers and body arriving */
    EVBUS__HTTP_WAITING,  /* handed to the ingest, connection suspended */
    EVBUS__HTTP_ANSWERED, /* resp is ready to queue */
} evbus__http_phase;

/* One request, from its first byte to its answer (libmicrohttpd's con_cls).
 * Requests are recycled (evbus__http_request_get/put): what comes before
 * `pe` is zeroed for each, what follows is written before it is read. */
typedef struct evbus__http_request {
    struct evbus__http_request *next_spare;
    struct MHD_Connection *mc;
    evbus__http_phase phase;
    char *body;
    size_t len, cap;
    bool too_large;
    unsigned status;
    struct MHD_Response *resp;
    uint32_t slot; /* in the table of requests with the ingest while EVBUS__HTTP_WAITING */
    evbus__putevents pe;
    int sent_as[EVBUS__PUTEVENTS_MAX]; /* index in the Publish, or -1 (answered early) */
    evbus__putevents_result results[EVBUS__PUTEVENTS_MAX];
    char ids[EVBUS__PUTEVENTS_MAX][257];
    char *reasons[EVBUS__PUTEVENTS_MAX]; /* heap copies of the ack's reasons, or NULL */
} evbus__http_request;

/* One open connection, for the deadline of its next request. */
typedef struct evbus__http_conn {
    struct evbus__http_conn *prev, *next;
    int fd;
    int64_t deadline_ms; /* 0: none (its request is with the ingest, or already cut) */
} evbus__http_conn;

typedef struct evbus__http_slot {
    evbus__http_request *req;
    uint32_t gen;
} evbus__http_slot;

struct evbus__http_ingest {
    const evbus__config *cfg;
    evbus__http_keys keys;
    char *tls_cert, *tls_key;
    struct MHD_Daemon *mhd;
    int epoll_fd;
    void *dealer; /* to the ingest's HTTP ROUTER; this thread's alone */
    evbus__http_slot *slots;
    uint32_t *free_slots;
    size_t n_slots, n_free;
    evbus__http_conn *conns;
    evbus__http_request *spares; /* answered requests kept for the next ones */
    size_t n_spares;
    evbus__uuid_gen uuids;
    pthread_t thread;
    bool running;
    atomic_bool stop;
    int64_t log_second;
    int log_lines;
    evbus__http_counters *count;
    volatile sig_atomic_t *reload;
};

/* Counts one more of what counter c counts (the HTTP thread alone writes). */
#define EVBUS__HTTP_COUNT(h, c) atomic_fetch_add_explicit(&(h)->count->c, 1, memory_order_relaxed)

/* Handles a request whose body is in: refuses it (too large, not
 * authenticated, not a PutEvents body), answers it at once (no entry left
 * for the ingest), or hands it to the ingest and suspends its connection
 * (phase EVBUS__HTTP_WAITING). */
void evbus__http_request_process(evbus__http_ingest *h, evbus__http_request *req);

/* Answers the requests whose acks have come, and resumes their connections. */
void evbus__http_take_acks(evbus__http_ingest *h);

/* Sets req's answer to an AWS JSON 1.1 error (type also in X-Amzn-ErrorType),
 * counted in the counter of its kind. */
void evbus__http_set_error(evbus__http_ingest *h, evbus__http_request *req, unsigned status,
                           const char *type, const char *message);

/* Takes req (EVBUS__HTTP_WAITING) out of the table of requests with the ingest: an ack
 * that comes for it later finds no one. */
void evbus__http_give_slot(evbus__http_ingest *h, evbus__http_request *req);

/* A request to fill: a spare one, emptied, or a new one. NULL when out of
 * memory. */
evbus__http_request *evbus__http_request_get(evbus__http_ingest *h);

/* Done with req (accepts NULL): what it holds is released and the request
 * itself kept as a spare (up to a bound; a 12 KiB calloc and a body buffer
 * per request were a visible part of the HTTP thread's time). */
void evbus__http_request_put(evbus__http_ingest *h, evbus__http_request *req);

/* Frees the spare requests. */
void evbus__http_requests_free(evbus__http_ingest *h);

#endif
