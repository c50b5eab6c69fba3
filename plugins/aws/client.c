/* A plugin instance's calls to one AWS service: SigV4 signing by libcurl
 * (CURLOPT_AWS_SIGV4), the common configuration keys, and what the plugin
 * does with a whole call's outcome (count it, log a target fault once). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "aws_http.h"

struct evbus_aws_client {
    const evbus_host_api *api;
    evbus_host *host;
    const evbus_aws_service *svc;
    const char *endpoint; /* the host's string; NULL: the region's default */
    const char *ca_file;
    long timeout_ms;
    evbus_aws_creds_provider *creds;
    aws_call *open;
    aws_call_pool pool; /* finished calls, their easy handles kept */
    /* CURLOPT_AWS_SIGV4's value for the region posted to last (an instance
     * posts to one): made once, not per request. */
    char sigv4_region[64], sigv4[200];
    char fault[96]; /* code of the target fault logged last; "" when healthy */
};

static const char *optional(evbus_aws_client *c, const char *key) {
    const char *v = NULL;
    if (c->api->config_string(c->host, key, &v) != EVBUS_OK || !v || !*v)
        return NULL;
    return v;
}

evbus_err evbus_aws_client_new(const evbus_host_api *api, evbus_host *host,
                               const evbus_aws_service *svc, evbus_aws_client **out) {
    evbus_aws_client *c = calloc(1, sizeof *c);
    if (!c)
        return EVBUS_ENOMEM;
    c->api = api;
    c->host = host;
    c->svc = svc;
    c->endpoint = optional(c, "endpoint");
    c->ca_file = optional(c, "ca_file");
    uint64_t timeout = 10000;
    api->config_number(host, "timeout", &timeout);
    c->timeout_ms = timeout > 0 && timeout < 3600000 ? (long)timeout : 10000;
    if (c->endpoint && strncmp(c->endpoint, "https://", 8) != 0 &&
        strncmp(c->endpoint, "http://", 7) != 0) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "endpoint '%s' is not an http:// or https:// URL",
                 c->endpoint);
        free(c);
        return EVBUS_ECONFIG;
    }
    char err[2400];
    evbus_err rc =
        evbus_aws_creds_new(api, host, optional(c, "profile"), &c->creds, err, sizeof err);
    if (rc != EVBUS_OK) {
        api->log(host, EVBUS_LOG_LEVEL_ERROR, "%s", rc == EVBUS_ENOMEM ? "out of memory" : err);
        free(c);
        return rc;
    }
    *out = c;
    return EVBUS_OK;
}

static void on_answer(aws_call *call, int code) {
    evbus_aws_result r = {
        .curl_code = code, .body = call->answer.data, .body_len = call->answer.len};
    curl_easy_getinfo(call->easy, CURLINFO_RESPONSE_CODE, &r.status);
    evbus_aws_classify(&r, &call->h);
    if (code != 0)
        snprintf(r.message, sizeof r.message, "%s",
                 call->error[0] ? call->error : curl_easy_strerror(code));
    call->post_done(call->post_arg, &r);
}

evbus_err evbus_aws_client_post(evbus_aws_client *c, const char *region, const char *target,
                                char *body, size_t len, evbus_aws_done_fn done, void *arg) {
    const char *why = NULL;
    const evbus_aws_creds *cr = evbus_aws_creds_get(c->creds, &why);
    if (!cr) {
        free(body);
        evbus_aws_result r = {.fault = EVBUS_AWS_TARGET_FAULT, .body = "", .retry_after_ms = 1000};
        snprintf(r.code, sizeof r.code, "NoCredentials");
        snprintf(r.message, sizeof r.message, "%s", why ? why : "no credentials");
        done(arg, &r);
        return EVBUS_OK;
    }
    char url_buf[1200], h[2300];
    const char *url = c->endpoint ? c->endpoint : url_buf;
    if (!c->endpoint && evbus_aws_default_endpoint(c->svc, region, url_buf, sizeof url_buf)) {
        free(body);
        evbus_aws_result r = {.fault = EVBUS_AWS_TARGET_FAULT, .body = ""};
        snprintf(r.code, sizeof r.code, "NoEndpoint");
        snprintf(r.message, sizeof r.message, "no region to derive the endpoint from");
        snprintf(r.hint, sizeof r.hint, "set the target's endpoint");
        done(arg, &r);
        return EVBUS_OK;
    }
    /* All four fields: with an IP or localhost endpoint curl would guess the
     * region and service from the host name and sign for the wrong ones. */
    const char *scope = region && *region ? region : "us-east-1";
    if (!c->sigv4[0] || strcmp(scope, c->sigv4_region) != 0) {
        snprintf(c->sigv4_region, sizeof c->sigv4_region, "%s", scope);
        snprintf(c->sigv4, sizeof c->sigv4, "aws:amz:%s:%s", scope, c->svc->signing_name);
    }
    aws_call *call = aws_call_take(&c->pool, body, on_answer, c);
    if (!call)
        return EVBUS_ENOMEM; /* the body is freed */
    call->post_done = done;
    call->post_arg = arg;
    CURL *e = call->easy;
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_POSTFIELDS, call->body);
    curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    curl_easy_setopt(e, CURLOPT_AWS_SIGV4, c->sigv4);
    curl_easy_setopt(e, CURLOPT_USERNAME, cr->key_id);
    curl_easy_setopt(e, CURLOPT_PASSWORD, cr->secret);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    /* Bodies over 1 MiB make curl ask for 100-continue; do not wait long
     * for a server that never says it (a valueless Expect: header would be
     * mis-signed by curl 7.88). */
    curl_easy_setopt(e, CURLOPT_EXPECT_100_TIMEOUT_MS, 50L);
    if (c->ca_file)
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ca_file);
    /* curl signs every header given here, which is what SigV4 wants. */
    int bad = 0;
    snprintf(h, sizeof h, "Content-Type: %s", c->svc->content_type);
    bad |= aws_call_header(call, h);
    snprintf(h, sizeof h, "X-Amz-Target: %s", target);
    bad |= aws_call_header(call, h);
    if (cr->token) {
        int n = snprintf(h, sizeof h, "X-Amz-Security-Token: %s", cr->token);
        char *big = NULL;
        if (n >= (int)sizeof h && (big = malloc((size_t)n + 1)))
            snprintf(big, (size_t)n + 1, "X-Amz-Security-Token: %s", cr->token);
        bad |= aws_call_header(call, big ? big : h);
        if (big)
            memset(big, 0, (size_t)n);
        free(big);
        memset(h, 0, sizeof h);
    }
    if (bad) {
        aws_call_free(call);
        return EVBUS_ENOMEM;
    }
    return aws_call_start(c->api, c->host, call, &c->open); /* frees the call on failure */
}

evbus_result evbus_aws_client_result_for(const evbus_aws_client *c, evbus_aws_fault f) {
    switch (f) {
    case EVBUS_AWS_OK: return EVBUS_RESULT_DELIVERED;
    case EVBUS_AWS_EVENT_FAULT: return EVBUS_RESULT_FAILED;
    case EVBUS_AWS_TARGET_FAULT:
        /* A 1.0 host does not know TARGET_FAULT and would drop the report. */
        return c->api->abi_major == 1 && c->api->abi_minor >= 2 ? EVBUS_RESULT_TARGET_FAULT
                                                                : EVBUS_RESULT_RETRY;
    default: return EVBUS_RESULT_RETRY;
    }
}

evbus_result evbus_aws_client_judge(evbus_aws_client *c, const evbus_aws_result *r, char *reason,
                                    size_t len) {
    const evbus_host_api *api = c->api;
    reason[0] = '\0';
    switch (r->fault) {
    case EVBUS_AWS_OK:
        if (c->fault[0]) {
            api->log(c->host, EVBUS_LOG_LEVEL_INFO, "%s accepts requests again (was: %s)",
                     c->svc->name, c->fault);
            c->fault[0] = '\0';
        }
        break;
    case EVBUS_AWS_EVENT_FAULT:
        api->counter_add(c->host, "aws_event_faults", 1);
        snprintf(reason, len, "%s: %s", r->code, r->message);
        break;
    case EVBUS_AWS_TRANSIENT:
        api->counter_add(c->host,
                         r->curl_code != 0  ? "aws_network_errors"
                         : r->status >= 500 ? "aws_server_errors"
                                            : "aws_throttled",
                         1);
        snprintf(reason, len, "%s: %s", r->code, r->message);
        break;
    case EVBUS_AWS_TARGET_FAULT:
        api->counter_add(c->host, "aws_target_faults", 1);
        /* A call without an answer is a target fault too (error.c); it is
         * still counted where it was counted before. */
        if (r->curl_code != 0)
            api->counter_add(c->host, "aws_network_errors", 1);
        if (r->expired)
            evbus_aws_creds_expired(c->creds);
        if (r->refused_credentials) /* fixed in the file since? */
            evbus_aws_creds_refused(c->creds);
        if (r->curl_code != 0) /* never reached the service: credentials are not in question */
            snprintf(reason, len, "%s: %s%s%s", r->code, r->message, r->hint[0] ? "; " : "",
                     r->hint);
        else
            snprintf(reason, len, "%s: %s%s%s (credentials from the %s)", r->code, r->message,
                     r->hint[0] ? "; " : "", r->hint, evbus_aws_creds_source(c->creds));
        /* Once per fault, not once per event or batch. */
        if (strcmp(c->fault, r->code) != 0) {
            snprintf(c->fault, sizeof c->fault, "%s", r->code);
            if (r->curl_code != 0)
                api->log(c->host, EVBUS_LOG_LEVEL_ERROR,
                         "%s does not answer this target: %s; events are kept and retried "
                         "until it does",
                         c->svc->name, reason);
            else
                api->log(c->host, EVBUS_LOG_LEVEL_ERROR,
                         "%s refuses this target (HTTP %ld): %s; events are kept and retried "
                         "until it is fixed",
                         c->svc->name, r->status, reason);
        }
        break;
    }
    return evbus_aws_client_result_for(c, r->fault);
}

void evbus_aws_client_destroy(evbus_aws_client **cp, void (*drop)(void *arg)) {
    if (!cp || !*cp)
        return;
    evbus_aws_client *c = *cp;
    /* Each open call's caller gets its argument back to free. */
    while (c->open) {
        aws_call *call = c->open;
        c->open = call->next;
        if (drop)
            drop(call->post_arg);
        aws_call_free(call);
    }
    aws_call_pool_drain(&c->pool);
    evbus_aws_creds_destroy(&c->creds);
    free(c);
    *cp = NULL;
}
