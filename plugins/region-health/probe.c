/* One health check of one region through the host's HTTP service: an HTTP(S)
 * GET whose status must be 2xx/3xx (redirects are not followed, as Route 53
 * does not) and whose first 5,120 bytes must hold `match` when set, or a TCP
 * connection (CURLOPT_CONNECT_ONLY). Certificates are not verified, as
 * Route 53's HTTPS checks do not: the check is about reachability. */
#include <curl/curl.h>
#include <stdio.h>
#include <string.h>

#include "region_health.h"

static size_t on_body(char *data, size_t size, size_t n, void *arg) {
    probe *p = arg;
    size_t take = size * n;
    if (p->body_len + take > RH_BODY_MAX)
        take = RH_BODY_MAX - p->body_len;
    memcpy(p->body + p->body_len, data, take);
    p->body_len += take;
    p->body[p->body_len] = '\0';
    return size * n; /* the rest is read and dropped: an abort would read as a failure */
}

static void on_done(void *arg, void *easy, int code) {
    probe *p = arg;
    p->running = false;
    long status = 0;
    char detail[56];
    bool ok;
    if (code != CURLE_OK) {
        snprintf(detail, sizeof detail, "%s", curl_easy_strerror((CURLcode)code));
        ok = false;
    } else if (p->type == EVBUS_CHECK_TCP) {
        snprintf(detail, sizeof detail, "connected");
        ok = true;
    } else {
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &status);
        ok = status >= 200 && status < 400;
        if (ok && p->match && !memmem(p->body, p->body_len, p->match, strlen(p->match))) {
            snprintf(detail, sizeof detail, "%ld without \"%.24s\"", status, p->match);
            ok = false;
        } else {
            snprintf(detail, sizeof detail, "%ld", status);
        }
    }
    /* A TCP check's connection was only for the check. */
    if (p->type == EVBUS_CHECK_TCP) {
        curl_easy_cleanup(p->easy);
        p->easy = NULL;
    }
    p->done(p->owner, ok, detail);
}

evbus_err rh_probe_start(probe *p, const evbus_host_api *api, evbus_host *host) {
    if (p->running)
        return EVBUS_OK; /* the last one has not ended: its timeout ends it */
    if (!p->easy && !(p->easy = curl_easy_init()))
        return EVBUS_ENOMEM;
    CURL *e = p->easy;
    p->body_len = 0;
    p->body[0] = '\0';
    if (p->type == EVBUS_CHECK_TCP) {
        char url[600];
        snprintf(url, sizeof url, "http://%s", p->url + strlen("tcp://"));
        curl_easy_setopt(e, CURLOPT_URL, url);
        curl_easy_setopt(e, CURLOPT_CONNECT_ONLY, 1L);
    } else {
        curl_easy_setopt(e, CURLOPT_URL, p->url);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(e, CURLOPT_WRITEDATA, p);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 0L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 0L);
        curl_easy_setopt(e, CURLOPT_USERAGENT, "evbus-region-health");
    }
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)p->timeout_ms);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* A fresh connection per check: a kept-alive one would hide a listener
     * that stopped accepting. */
    curl_easy_setopt(e, CURLOPT_FORBID_REUSE, 1L);
    evbus_err rc = api->http_start(host, e, on_done, p);
    if (rc == EVBUS_OK)
        p->running = true;
    return rc;
}

void rh_probe_free(probe *p) {
    if (p->easy)
        curl_easy_cleanup(p->easy);
    p->easy = NULL;
}
