/* A sink for tests of the host's HTTP service: POSTs each batch's envelopes,
 * one per line, to `url` through api->http_start (the host's shared libcurl
 * multi handle) and reports from the completion callback: 2xx DELIVERED,
 * 4xx FAILED, anything else (5xx, connection refused, timeout) RETRY. */
#include <curl/curl.h>
#include <evbus/plugin.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct request request;

typedef struct state {
    const evbus_host_api *api;
    evbus_host *host;
    const char *url;
    request *open; /* requests started and not done: freed at shutdown */
} state;

struct request {
    request *next;
    state *s;
    const evbus_batch *batch;
    CURL *easy;
    char *body;
    char error[CURL_ERROR_SIZE];
};

static void request_free(request *r) {
    curl_easy_cleanup(r->easy);
    free(r->body);
    free(r);
}

static void forget(state *s, request *r) {
    for (request **p = &s->open; *p; p = &(*p)->next) {
        if (*p == r) {
            *p = r->next;
            return;
        }
    }
}

static evbus_err init(const evbus_host_api *api, evbus_host *host, void **out) {
    state *s = calloc(1, sizeof *s);
    if (!s)
        return EVBUS_ENOMEM;
    *out = s;
    s->api = api;
    s->host = host;
    return api->config_string(host, "url", &s->url);
}

static void done(void *arg, void *easy, int code) {
    request *r = arg;
    long status = 0;
    curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
    evbus_result result = code == CURLE_OK && status >= 200 && status < 300 ? EVBUS_RESULT_DELIVERED
                          : code == CURLE_OK && status >= 400 && status < 500 ? EVBUS_RESULT_FAILED
                                                                              : EVBUS_RESULT_RETRY;
    char reason[CURL_ERROR_SIZE + 32];
    if (code != CURLE_OK)
        snprintf(reason, sizeof reason, "curl: %s",
                 r->error[0] ? r->error : curl_easy_strerror(code));
    else
        snprintf(reason, sizeof reason, "HTTP %ld", status);
    forget(r->s, r);
    size_t n = r->batch->n_events;
    const evbus_batch *b = r->batch;
    state *s = r->s;
    request_free(r);
    for (size_t i = 0; i < n; i++)
        s->api->report(s->host, b, i, result, 0, reason);
}

/* The answer's body is not needed (libcurl would print it to stdout). */
static size_t discard(char *data, size_t size, size_t n, void *arg) {
    (void)data;
    (void)arg;
    return size * n;
}

static evbus_err submit(void *st, const evbus_batch *b) {
    state *s = st;
    request *r = calloc(1, sizeof *r);
    size_t len = 0;
    for (size_t i = 0; i < b->n_events; i++)
        len += b->events[i].envelope_len + 1;
    if (!r || !(r->body = malloc(len + 1)) || !(r->easy = curl_easy_init())) {
        if (r)
            free(r->body);
        free(r);
        return EVBUS_ENOMEM; /* the host retries the batch */
    }
    size_t off = 0;
    for (size_t i = 0; i < b->n_events; i++) {
        memcpy(r->body + off, b->events[i].envelope_json, b->events[i].envelope_len);
        off += b->events[i].envelope_len;
        r->body[off++] = '\n';
    }
    r->s = s;
    r->batch = b;
    curl_easy_setopt(r->easy, CURLOPT_URL, s->url);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDS, r->body);
    curl_easy_setopt(r->easy, CURLOPT_POSTFIELDSIZE, (long)off);
    curl_easy_setopt(r->easy, CURLOPT_TIMEOUT_MS, 5000L);
    curl_easy_setopt(r->easy, CURLOPT_ERRORBUFFER, r->error);
    curl_easy_setopt(r->easy, CURLOPT_WRITEFUNCTION, discard);
    evbus_err rc = s->api->http_start(s->host, r->easy, done, r);
    if (rc != EVBUS_OK) {
        request_free(r);
        return rc;
    }
    r->next = s->open;
    s->open = r;
    return EVBUS_OK;
}

/* The host has taken its transfers back: free what never completed. */
static void sink_shutdown(void *st) {
    state *s = st;
    if (!s)
        return;
    while (s->open) {
        request *r = s->open;
        s->open = r->next;
        request_free(r);
    }
    free(s);
}

static const evbus_config_key keys[] = {
    {"url", EVBUS_CONFIG_STRING, NULL, 1, "where to POST each batch"},
    {NULL, 0, NULL, 0, NULL},
};

static const evbus_plugin descriptor = {
    .magic = EVBUS_PLUGIN_MAGIC,
    .abi_major = EVBUS_PLUGIN_ABI_MAJOR,
    .abi_minor = EVBUS_PLUGIN_ABI_MINOR,
    .size = sizeof(evbus_plugin),
    .kind = EVBUS_PLUGIN_SINK,
    .name = "test-http",
    .version = "1",
    .description = "POSTs batches through the host's HTTP service",
    .config_keys = keys,
    .max_batch_events = 10,
    .init = init,
    .submit = submit,
    .shutdown = sink_shutdown,
};

EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void);
EVBUS_PLUGIN_EXPORT const evbus_plugin *evbus_plugin_entry(void) {
    return &descriptor;
}
