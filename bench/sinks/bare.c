/* The bare libcurl-multi loop. Easy handles are reused: removing one from
 * the multi and adding it again keeps its options and lets the multi's
 * connection cache hand it a kept-alive connection, which is the least a
 * client can do per request. */
#include "bare.h"

#include <curl/curl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "load.h"

static double thread_cpu_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t discard(char *data, size_t size, size_t n, void *arg) {
    (void)data;
    (void)arg;
    return size * n;
}

int bare_run(const bare_opts *o, bare_result *out) {
    memset(out, 0, sizeof *out);
    CURLM *multi = curl_multi_init();
    CURL **easy = calloc(o->concurrency, sizeof *easy);
    struct curl_slist *headers = NULL;
    char sigv4[128], line[256];
    int rc = -1;
    if (!multi || !easy) {
        snprintf(out->error, sizeof out->error, "out of memory");
        goto out;
    }
    snprintf(sigv4, sizeof sigv4, "aws:amz:%s:%s", o->region, o->service);
    snprintf(line, sizeof line, "Content-Type: %s", o->content_type);
    headers = curl_slist_append(headers, line);
    snprintf(line, sizeof line, "X-Amz-Target: %s", o->amz_target);
    headers = curl_slist_append(headers, line);
    for (unsigned i = 0; i < o->concurrency; i++) {
        CURL *e = easy[i] = curl_easy_init();
        if (!e || !headers) {
            snprintf(out->error, sizeof out->error, "out of memory");
            goto out;
        }
        curl_easy_setopt(e, CURLOPT_URL, o->url);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, o->body);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)o->body_len);
        curl_easy_setopt(e, CURLOPT_AWS_SIGV4, sigv4);
        curl_easy_setopt(e, CURLOPT_USERNAME, o->key_id);
        curl_easy_setopt(e, CURLOPT_PASSWORD, o->secret);
        curl_easy_setopt(e, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_1_1);
        curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, 30000L);
        curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, discard);
        curl_multi_add_handle(multi, e);
    }
    double cpu0 = thread_cpu_s();
    unsigned long long ok = 0;
    uint64_t start = bench_now_ns();
    uint64_t measure_from = start + (uint64_t)(o->warmup_s * 1e9);
    uint64_t end = measure_from + (uint64_t)(o->duration_s * 1e9);
    unsigned long long measured = 0;
    int running = 1;
    while (!bench_interrupted) {
        curl_multi_poll(multi, NULL, 0, 100, NULL);
        curl_multi_perform(multi, &running);
        uint64_t now = bench_now_ns();
        CURLMsg *m;
        int left;
        while ((m = curl_multi_info_read(multi, &left))) {
            if (m->msg != CURLMSG_DONE)
                continue;
            CURL *e = m->easy_handle;
            long status = 0;
            curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
            out->requests++;
            if (m->data.result != CURLE_OK || status != 200) {
                out->failed++;
                if (!out->error[0])
                    snprintf(out->error, sizeof out->error, "a request failed: %s, HTTP %ld",
                             curl_easy_strerror(m->data.result), status);
            } else {
                ok += o->entries;
                if (now >= measure_from && now < end)
                    measured += o->entries;
            }
            curl_multi_remove_handle(multi, e);
            if (now < end)
                curl_multi_add_handle(multi, e);
        }
        if (now >= end && !running)
            break;
    }
    if (bench_interrupted)
        snprintf(out->error, sizeof out->error, "interrupted");
    out->events_per_s = (double)measured / o->duration_s;
    out->cpu_us = ok ? (thread_cpu_s() - cpu0) * 1e6 / (double)ok : 0;
    rc = out->error[0] ? -1 : 0;
out:
    for (unsigned i = 0; easy && i < o->concurrency; i++) {
        if (easy[i]) {
            curl_multi_remove_handle(multi, easy[i]);
            curl_easy_cleanup(easy[i]);
        }
    }
    free(easy);
    curl_slist_free_all(headers);
    if (multi)
        curl_multi_cleanup(multi);
    return rc;
}
