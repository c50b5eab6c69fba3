/* Internal to plugins/aws: one HTTP call through the host's http_start, with
 * its answer's body and the headers error classification reads. */
#ifndef EVBUS_AWS_HTTP_H
#define EVBUS_AWS_HTTP_H

#include <curl/curl.h>

#include "aws.h"

typedef struct aws_call aws_call;
typedef struct aws_call_pool aws_call_pool;

/* Runs when the transfer ends; the call is freed right after it returns. */
typedef void (*aws_call_done_fn)(aws_call *call, int curl_code);

struct aws_call {
    aws_call *prev, *next; /* in the owner's list of open calls */
    aws_call **list;       /* that list's head */
    CURL *easy;
    struct curl_slist *headers;
    char *body; /* request body, owned */
    evbus_aws_buf answer;
    evbus_aws_answer_headers h;
    char error[CURL_ERROR_SIZE];
    aws_call_done_fn done;
    void *arg;
    aws_call_pool *pool; /* where it goes back when done; NULL: freed */
    /* The client's (client.c): whose answer this is, and for whom. */
    evbus_aws_done_fn post_done;
    void *post_arg;
};

/* Finished calls of one client kept with their easy handles: a fresh easy
 * handle per request (curl_easy_init, its options, curl_easy_cleanup) cost
 * a tenth of the delivery thread's own work per request. A call taken from
 * the pool has every option its client sets per request set again, so
 * nothing of the previous request's carries over but the handle's
 * constant options (the callbacks, HTTP/1.1). */
struct aws_call_pool {
    aws_call *free;
    size_t n_free;
};

/* Frees the calls kept in the pool. */
void aws_call_pool_drain(aws_call_pool *pool);

/* A call with a fresh easy handle that records the answer's body and
 * headers; the caller sets the URL, method and options. `body` (may be NULL)
 * is taken over. NULL when out of memory (body freed). */
aws_call *aws_call_new(char *body, aws_call_done_fn done, void *arg);

/* Like aws_call_new, with an easy handle of the pool's when it has one; the
 * call goes back to the pool (its easy handle kept) after `done` returns. */
aws_call *aws_call_take(aws_call_pool *pool, char *body, aws_call_done_fn done, void *arg);

/* Adds a request header line ("Name: value"). Returns 0 or -1. */
int aws_call_header(aws_call *c, const char *line);

/* Starts the call through api->http_start and links it into *list, so that
 * aws_call_free_all() can free it at shutdown. On failure frees the call
 * and returns the host's error (done is not called). */
evbus_err aws_call_start(const evbus_host_api *api, evbus_host *host, aws_call *c, aws_call **list);

/* Frees every call still in *list (the host has taken back its transfers). */
void aws_call_free_all(aws_call **list);

/* Frees one call that was never started. */
void aws_call_free(aws_call *c);

#endif
