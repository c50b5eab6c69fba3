/* One HTTP call on the host's shared libcurl multi handle. The host owns the
 * multi and the delivery thread; we own the easy handle, the request body,
 * the header list and the buffered answer. */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws_http.h"

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
    aws_call *c = arg;
    return evbus_aws_buf_add(&c->answer, data, size * n) ? 0 : size * n;
}

/* Copies the value of header `name` when `line` is that header. */
static void take(const char *line, size_t len, const char *name, char *out, size_t outlen) {
    size_t nl = strlen(name);
    if (len <= nl || strncasecmp(line, name, nl) != 0 || line[nl] != ':')
        return;
    const char *v = line + nl + 1;
    const char *end = line + len;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t n = (size_t)(end - v) < outlen - 1 ? (size_t)(end - v) : outlen - 1;
    memcpy(out, v, n);
    out[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t n, void *arg) {
    aws_call *c = arg;
    size_t len = size * n;
    if (len > 5 && strncmp(data, "HTTP/", 5) == 0) /* a new answer (after 100 Continue) */
        memset(&c->h, 0, sizeof c->h);
    /* Every header wanted starts with X or R: the others (Date,
     * Content-Type, ...) are passed over without four comparisons each. */
    if (len == 0 || !strchr("XxRr", data[0]))
        return len;
    take(data, len, "X-Amzn-ErrorType", c->h.error_type, sizeof c->h.error_type);
    take(data, len, "x-amzn-query-error", c->h.query_error, sizeof c->h.query_error);
    take(data, len, "Retry-After", c->h.retry_after, sizeof c->h.retry_after);
    take(data, len, "x-amz-retry-after", c->h.amz_retry_after, sizeof c->h.amz_retry_after);
    return len;
}

/* At most this many finished calls are kept per pool: about the largest
 * max_in_flight, beyond which a burst's calls are freed as before. */
#define POOL_MAX 256

static aws_call *call_init(char *body, aws_call_done_fn done, void *arg) {
    aws_call *c = calloc(1, sizeof *c);
    if (!c || !(c->easy = curl_easy_init())) {
        free(c);
        free(body);
        return NULL;
    }
    c->body = body;
    c->done = done;
    c->arg = arg;
    curl_easy_setopt(c->easy, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(c->easy, CURLOPT_WRITEDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(c->easy, CURLOPT_HEADERDATA, c);
    curl_easy_setopt(c->easy, CURLOPT_ERRORBUFFER, c->error);
    curl_easy_setopt(c->easy, CURLOPT_NOSIGNAL, 1L);
    /* HTTP/1.1: curl 7.88's h2c breaks on reuse and mis-signs non-default
     * ports over HTTP/2; keep-alive gives the reuse that matters. */
    curl_easy_setopt(c->easy, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
    return c;
}

aws_call *aws_call_new(char *body, aws_call_done_fn done, void *arg) {
    return call_init(body, done, arg);
}

aws_call *aws_call_take(aws_call_pool *pool, char *body, aws_call_done_fn done, void *arg) {
    aws_call *c = pool->free;
    if (!c) {
        c = call_init(body, done, arg);
        if (c)
            c->pool = pool;
        return c;
    }
    pool->free = c->next;
    pool->n_free--;
    /* What aws_call_new leaves zero, except the handle and the answer's
     * memory (the options the caller sets per request are set again). */
    c->prev = c->next = NULL;
    c->list = NULL;
    c->answer.len = 0;
    if (c->answer.data)
        c->answer.data[0] = '\0';
    memset(&c->h, 0, sizeof c->h);
    c->error[0] = '\0';
    c->body = body;
    c->done = done;
    c->arg = arg;
    c->post_done = NULL;
    c->post_arg = NULL;
    return c;
}

/* A finished call back to its pool: its request's memory freed, its easy
 * handle (already removed from the multi by the host) kept. */
static void call_release(aws_call *c) {
    aws_call_pool *pool = c->pool;
    if (!pool || pool->n_free >= POOL_MAX) {
        aws_call_free(c);
        return;
    }
    curl_slist_free_all(c->headers);
    c->headers = NULL;
    curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, NULL);
    free(c->body);
    c->body = NULL;
    c->next = pool->free;
    pool->free = c;
    pool->n_free++;
}

void aws_call_pool_drain(aws_call_pool *pool) {
    while (pool->free) {
        aws_call *c = pool->free;
        pool->free = c->next;
        aws_call_free(c);
    }
    pool->n_free = 0;
}

int aws_call_header(aws_call *c, const char *line) {
    struct curl_slist *l = curl_slist_append(c->headers, line);
    if (!l)
        return -1;
    c->headers = l;
    return 0;
}

void aws_call_free(aws_call *c) {
    if (!c)
        return;
    curl_easy_cleanup(c->easy);
    curl_slist_free_all(c->headers);
    free(c->body);
    evbus_aws_buf_free(&c->answer);
    free(c);
}

static void unlink_call(aws_call *c) {
    if (c->prev)
        c->prev->next = c->next;
    else if (c->list)
        *c->list = c->next;
    if (c->next)
        c->next->prev = c->prev;
}

static void on_done(void *arg, void *easy, int code) {
    aws_call *c = arg;
    (void)easy;
    unlink_call(c);
    if (!c->answer.data) /* callers read the body as a string */
        evbus_aws_buf_add(&c->answer, "", 0);
    c->done(c, code);
    call_release(c);
}

evbus_err aws_call_start(const evbus_host_api *api, evbus_host *host, aws_call *c,
                         aws_call **list) {
    if (c->headers)
        curl_easy_setopt(c->easy, CURLOPT_HTTPHEADER, c->headers);
    /* Linked first: the host may complete a transfer inside http_start. */
    c->list = list;
    c->prev = NULL;
    c->next = *list;
    if (*list)
        (*list)->prev = c;
    *list = c;
    evbus_err rc = api->http_start(host, c->easy, on_done, c);
    if (rc != EVBUS_OK) {
        unlink_call(c);
        aws_call_free(c);
    }
    return rc;
}

void aws_call_free_all(aws_call **list) {
    while (*list) {
        aws_call *c = *list;
        *list = c->next;
        aws_call_free(c);
    }
}
