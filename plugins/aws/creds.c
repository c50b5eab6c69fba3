/* The credential chain, and the sources that are fetched over HTTP (the
 * container endpoint and EC2 instance metadata): asynchronous through the
 * host's http_start, refreshed by a host timer before they expire, so the
 * delivery thread never waits for them. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <time.h>

#include "aws_http.h"
#include "creds_int.h"

typedef enum source { NONE, ENV, FILES, CONTAINER, IMDS } source;

/* IMDS answers within a second or not at all (botocore: 1 s, 1 try). */
#define FETCH_TIMEOUT_MS 2000L
#define RETRY_MIN_MS     1000
#define RETRY_MAX_MS     60000
/* The shared files are looked at (two stat calls) at most this often while
 * the service keeps refusing their keys: every refused call asks. */
#define FILES_CHECK_MS 1000

struct evbus_aws_creds_provider {
    const evbus_host_api *api;
    evbus_host *host;
    source src;
    char source_name[160];
    evbus_aws_creds cur;
    int have;
    char why[2600];
    /* HTTP sources */
    char url[1024];       /* container: the credentials URL; IMDS: the base */
    char imds_token[512]; /* IMDSv2 session token, "" when none */
    int64_t imds_token_expires_ms;
    int imds_v1; /* the token PUT was refused: IMDSv1 */
    char role[256];
    int fetching;
    int retry_ms;
    uint64_t timer;
    aws_call *open;
    /* FILES: the profile read, the files' versions it was read from, and
     * when they were last compared (monotonic ms; 0: never). */
    char profile[256];
    aws_files_stamp stamp;
    int64_t files_checked_ms;
};

static int64_t wall_ms(void) {
    struct timeval tv;
    gettimeofday(&tv, NULL);
    return (int64_t)tv.tv_sec * 1000 + tv.tv_usec / 1000;
}

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t aws_parse_time_ms(const char *s) {
    struct tm tm = {0};
    int n = 0;
    if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
                     &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    return (int64_t)timegm(&tm) * 1000;
}

static void start_fetch(evbus_aws_creds_provider *p);

static void on_timer(void *arg) {
    evbus_aws_creds_provider *p = arg;
    p->timer = 0;
    start_fetch(p);
}

static void schedule(evbus_aws_creds_provider *p, int64_t delay_ms) {
    if (p->timer)
        p->api->timer_cancel(p->host, p->timer);
    p->timer = p->api->timer_add(p->host, delay_ms, on_timer, p);
}

static void fetch_failed(evbus_aws_creds_provider *p, const char *what) {
    p->fetching = 0;
    snprintf(p->why, sizeof p->why, "no credentials from the %s: %s", p->source_name, what);
    p->api->log(p->host, EVBUS_LOG_LEVEL_WARN, "%s; trying again in %d s", p->why,
                p->retry_ms / 1000);
    schedule(p, p->retry_ms);
    p->retry_ms = p->retry_ms * 2 > RETRY_MAX_MS ? RETRY_MAX_MS : p->retry_ms * 2;
}

/* New credentials from a JSON document (container and IMDS share the
 * field names). */
static void take_json(evbus_aws_creds_provider *p, const char *body, size_t len) {
    json_t *j = json_loadb(body, len, 0, NULL);
    const char *id = json_string_value(json_object_get(j, "AccessKeyId"));
    const char *secret = json_string_value(json_object_get(j, "SecretAccessKey"));
    const char *token = json_string_value(json_object_get(j, "Token"));
    const char *exp = json_string_value(json_object_get(j, "Expiration"));
    const char *code = json_string_value(json_object_get(j, "Code"));
    if (!id || !secret || (code && strcmp(code, "Success") != 0)) {
        json_decref(j);
        fetch_failed(p, code ? code : "the answer has no AccessKeyId and SecretAccessKey");
        return;
    }
    aws_creds_clear(&p->cur);
    p->cur.key_id = strdup(id);
    p->cur.secret = strdup(secret);
    p->cur.token = token && *token ? strdup(token) : NULL;
    p->cur.expires_ms = exp ? aws_parse_time_ms(exp) : 0;
    if (p->cur.expires_ms < 0)
        p->cur.expires_ms = 0;
    json_decref(j);
    if (!p->cur.key_id || !p->cur.secret) {
        aws_creds_clear(&p->cur);
        fetch_failed(p, "out of memory");
        return;
    }
    p->have = 1;
    p->fetching = 0;
    p->retry_ms = RETRY_MIN_MS;
    p->why[0] = '\0';
    if (p->cur.expires_ms) {
        /* Refresh halfway through the remaining life, at most 10 min early,
         * so a failed refresh still leaves time to try again. */
        int64_t left = p->cur.expires_ms - wall_ms();
        int64_t lead = left / 2 < 600000 ? left / 2 : 600000;
        schedule(p, left - lead > 1000 ? left - lead : 1000);
        p->api->log(p->host, EVBUS_LOG_LEVEL_INFO, "credentials from the %s, valid for %lld s",
                    p->source_name, (long long)(left / 1000));
    } else {
        p->api->log(p->host, EVBUS_LOG_LEVEL_INFO, "credentials from the %s", p->source_name);
    }
}

static int http_ok(aws_call *c, int code, long *status) {
    *status = 0;
    curl_easy_getinfo(c->easy, CURLINFO_RESPONSE_CODE, status);
    return code == CURLE_OK && *status >= 200 && *status < 300;
}

static void say_http(char *out, size_t len, aws_call *c, int code, long status) {
    if (code != CURLE_OK)
        snprintf(out, len, "%s", c->error[0] ? c->error : curl_easy_strerror(code));
    else
        snprintf(out, len, "HTTP status %ld from %s", status, "the endpoint");
}

static void on_creds(aws_call *c, int code) {
    evbus_aws_creds_provider *p = c->arg;
    long status;
    if (!http_ok(c, code, &status)) {
        char what[CURL_ERROR_SIZE + 64];
        say_http(what, sizeof what, c, code, status);
        if (p->src == IMDS && status == 401) /* the token expired: get another */
            p->imds_token[0] = '\0';
        fetch_failed(p, what);
        return;
    }
    take_json(p, c->answer.data, c->answer.len);
}

static aws_call *get(evbus_aws_creds_provider *p, const char *url, aws_call_done_fn done) {
    aws_call *c = aws_call_new(NULL, done, p);
    if (!c)
        return NULL;
    curl_easy_setopt(c->easy, CURLOPT_URL, url);
    curl_easy_setopt(c->easy, CURLOPT_TIMEOUT_MS, FETCH_TIMEOUT_MS);
    return c;
}

static void imds_header(evbus_aws_creds_provider *p, aws_call *c) {
    if (p->imds_token[0]) {
        char h[600];
        snprintf(h, sizeof h, "X-aws-ec2-metadata-token: %s", p->imds_token);
        aws_call_header(c, h);
    }
}

static void start(evbus_aws_creds_provider *p, aws_call *c) {
    if (!c) {
        fetch_failed(p, "out of memory");
        return;
    }
    if (aws_call_start(p->api, p->host, c, &p->open) != EVBUS_OK)
        fetch_failed(p, "the host could not start the request");
}

static void on_imds_role(aws_call *c, int code) {
    evbus_aws_creds_provider *p = c->arg;
    long status;
    if (!http_ok(c, code, &status)) {
        char what[CURL_ERROR_SIZE + 64];
        say_http(what, sizeof what, c, code, status);
        if (status == 401)
            p->imds_token[0] = '\0';
        fetch_failed(p, status == 404 ? "the instance has no IAM role (attach an instance profile)"
                                      : what);
        return;
    }
    size_t n = strcspn(c->answer.data, "\r\n");
    if (n == 0 || n >= sizeof p->role) {
        fetch_failed(p, "the instance has no IAM role (attach an instance profile)");
        return;
    }
    memcpy(p->role, c->answer.data, n);
    p->role[n] = '\0';
    char url[1400];
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/%s", p->url, p->role);
    aws_call *next = get(p, url, on_creds);
    if (next)
        imds_header(p, next);
    start(p, next);
}

static void imds_role(evbus_aws_creds_provider *p) {
    char url[1200];
    snprintf(url, sizeof url, "%s/latest/meta-data/iam/security-credentials/", p->url);
    aws_call *c = get(p, url, on_imds_role);
    if (c)
        imds_header(p, c);
    start(p, c);
}

#define IMDS_TOKEN_TTL_S 21600

static void on_imds_token(aws_call *c, int code) {
    evbus_aws_creds_provider *p = c->arg;
    long status;
    if (!http_ok(c, code, &status)) {
        if (code == CURLE_OK && (status == 403 || status == 404 || status == 405)) {
            /* IMDSv2 is not offered here: fall back to v1, as the SDKs do. */
            p->imds_v1 = 1;
            imds_role(p);
            return;
        }
        char what[CURL_ERROR_SIZE + 64];
        say_http(what, sizeof what, c, code, status);
        fetch_failed(p, what);
        return;
    }
    size_t n = strcspn(c->answer.data, "\r\n");
    if (n == 0 || n >= sizeof p->imds_token) {
        fetch_failed(p, "the metadata token answer is empty or too long");
        return;
    }
    memcpy(p->imds_token, c->answer.data, n);
    p->imds_token[n] = '\0';
    p->imds_token_expires_ms = wall_ms() + (IMDS_TOKEN_TTL_S - 60) * 1000LL;
    imds_role(p);
}

/* The container endpoint's Authorization value: the token file (re-read
 * each time, it is rotated) wins over the variable. */
static int container_token(char *out, size_t len) {
    out[0] = '\0';
    const char *file = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
    if (file && *file) {
        FILE *f = fopen(file, "r");
        if (!f)
            return -1;
        size_t n = fread(out, 1, len - 1, f);
        fclose(f);
        out[n] = '\0';
        while (n && (out[n - 1] == '\n' || out[n - 1] == '\r'))
            out[--n] = '\0';
    } else {
        const char *t = getenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
        snprintf(out, len, "%s", t ? t : "");
    }
    return strpbrk(out, "\r\n") ? -1 : 0;
}

static void start_fetch(evbus_aws_creds_provider *p) {
    if (p->fetching)
        return;
    p->fetching = 1;
    if (p->src == CONTAINER) {
        char token[2048];
        if (container_token(token, sizeof token)) {
            fetch_failed(p, "the authorization token file cannot be read or holds a line break");
            return;
        }
        aws_call *c = get(p, p->url, on_creds);
        if (c && token[0]) {
            char h[2100];
            snprintf(h, sizeof h, "Authorization: %s", token);
            aws_call_header(c, h);
            memset(token, 0, sizeof token);
            memset(h, 0, sizeof h);
        }
        start(p, c);
        return;
    }
    /* IMDS: token first (reused until shortly before its TTL). */
    if (!p->imds_v1 && (!p->imds_token[0] || wall_ms() >= p->imds_token_expires_ms)) {
        char url[1200];
        snprintf(url, sizeof url, "%s/latest/api/token", p->url);
        aws_call *c = get(p, url, on_imds_token);
        if (c) {
            curl_easy_setopt(c->easy, CURLOPT_CUSTOMREQUEST, "PUT");
            aws_call_header(c, "X-aws-ec2-metadata-token-ttl-seconds: 21600");
        }
        start(p, c);
        return;
    }
    imds_role(p);
}

/* FULL_URI over plain HTTP only to hosts on the machine or the container
 * agents' link-local addresses (as botocore allows). */
static int allowed_full_uri(const char *uri) {
    if (strncmp(uri, "https://", 8) == 0)
        return 1;
    if (strncmp(uri, "http://", 7) != 0)
        return 0;
    const char *h = uri + 7;
    char host[256];
    size_t n = *h == '[' ? strcspn(h, "]") + 1 : strcspn(h, ":/");
    if (n >= sizeof host)
        return 0;
    memcpy(host, h, n);
    host[n] = '\0';
    return strncmp(host, "127.", 4) == 0 || strcmp(host, "localhost") == 0 ||
           strcmp(host, "[::1]") == 0 || strcmp(host, "169.254.170.2") == 0 ||
           strcmp(host, "169.254.170.23") == 0 || strcmp(host, "[fd00:ec2::23]") == 0;
}

static int env_true(const char *name) {
    const char *v = getenv(name);
    return v && (strcmp(v, "true") == 0 || strcmp(v, "TRUE") == 0 || strcmp(v, "1") == 0);
}

evbus_err evbus_aws_creds_new(const evbus_host_api *api, evbus_host *host, const char *profile,
                              evbus_aws_creds_provider **out, char *err, size_t errlen) {
    evbus_aws_creds_provider *p = calloc(1, sizeof *p);
    if (!p)
        return EVBUS_ENOMEM;
    p->api = api;
    p->host = host;
    p->retry_ms = RETRY_MIN_MS;
    int explicit_profile = profile && *profile;
    /* An explicit profile means: these credentials, not the environment's. */
    if (!explicit_profile && aws_creds_from_env(&p->cur)) {
        p->src = ENV;
        snprintf(p->source_name, sizeof p->source_name, "environment");
        p->have = 1;
        goto done;
    }
    if (!explicit_profile) {
        const char *env = getenv("AWS_PROFILE");
        profile = env && *env ? env : "default";
    }
    char files[2100];
    /* Stamped before the read: a change made during it shows as a change. */
    aws_files_stamp_take(&p->stamp);
    int f = aws_creds_from_files(profile, &p->cur, files, sizeof files, NULL, 0);
    if (f == 1) {
        p->src = FILES;
        snprintf(p->source_name, sizeof p->source_name, "profile %s", profile);
        snprintf(p->profile, sizeof p->profile, "%s", profile);
        p->have = 1;
        goto done;
    }
    if (explicit_profile) {
        snprintf(err, errlen,
                 f < 0 ? "profile '%s' in %s has no aws_access_key_id and aws_secret_access_key"
                       : "profile '%s' is in neither %s",
                 profile, files);
        free(p);
        return EVBUS_ECONFIG;
    }
    const char *rel = getenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
    const char *full = getenv("AWS_CONTAINER_CREDENTIALS_FULL_URI");
    if ((rel && *rel) || (full && *full)) {
        if (rel && *rel) {
            snprintf(p->url, sizeof p->url, "http://169.254.170.2%s", rel);
        } else if (!allowed_full_uri(full)) {
            snprintf(err, errlen,
                     "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or http to a loopback "
                     "or container-agent address");
            free(p);
            return EVBUS_ECONFIG;
        } else {
            snprintf(p->url, sizeof p->url, "%s", full);
        }
        p->src = CONTAINER;
        snprintf(p->source_name, sizeof p->source_name, "container credentials endpoint");
        snprintf(p->why, sizeof p->why, "waiting for the first answer of the %s", p->source_name);
        start_fetch(p);
        goto done;
    }
    if (!env_true("AWS_EC2_METADATA_DISABLED")) {
        const char *ep = getenv("AWS_EC2_METADATA_SERVICE_ENDPOINT");
        snprintf(p->url, sizeof p->url, "%s", ep && *ep ? ep : "http://169.254.169.254");
        size_t n = strlen(p->url);
        if (n && p->url[n - 1] == '/')
            p->url[n - 1] = '\0';
        p->src = IMDS;
        snprintf(p->source_name, sizeof p->source_name, "instance metadata (IMDSv2)");
        snprintf(p->why, sizeof p->why, "waiting for the first answer of the %s", p->source_name);
        start_fetch(p);
        goto done;
    }
    p->src = NONE;
    snprintf(p->source_name, sizeof p->source_name, "nowhere");
    snprintf(p->why, sizeof p->why,
             "no AWS credentials found: set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, a "
             "profile in %s, or run with container or instance credentials",
             files);
done:
    *out = p;
    return EVBUS_OK;
}

const evbus_aws_creds *evbus_aws_creds_get(evbus_aws_creds_provider *p, const char **why) {
    if (p->have && p->cur.expires_ms && wall_ms() >= p->cur.expires_ms) {
        /* Expired before a refresh landed: no signing with dead keys. */
        p->have = 0;
        snprintf(p->why, sizeof p->why, "the credentials from the %s expired; refreshing",
                 p->source_name);
        start_fetch(p);
    }
    if (p->have)
        return &p->cur;
    if (why)
        *why = p->why;
    return NULL;
}

const char *evbus_aws_creds_source(const evbus_aws_creds_provider *p) {
    return p->source_name;
}

void evbus_aws_creds_expired(evbus_aws_creds_provider *p) {
    if (p->src == CONTAINER || p->src == IMDS)
        start_fetch(p);
}

static int same_str(const char *a, const char *b) {
    return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* The operator may have fixed the keys in the file since it was read: read
 * it again if it changed. The files are local and small, and looked at only
 * while the service refuses the keys and at most once per FILES_CHECK_MS,
 * so the delivery thread does not wait on this in the steady state. */
static void reread_files(evbus_aws_creds_provider *p) {
    int64_t now = mono_ms();
    if (p->files_checked_ms && now - p->files_checked_ms < FILES_CHECK_MS)
        return;
    p->files_checked_ms = now;
    aws_files_stamp stamp;
    aws_files_stamp_take(&stamp);
    if (aws_files_stamp_equal(&stamp, &p->stamp))
        return;
    p->stamp = stamp;
    evbus_aws_creds fresh = {0};
    char files[2100], from[1024];
    int f = aws_creds_from_files(p->profile, &fresh, files, sizeof files, from, sizeof from);
    if (f != 1) {
        /* Half-written, or the profile is gone: keep the keys we have (they
         * are refused anyway) and look again at the next change. */
        p->api->log(p->host, EVBUS_LOG_LEVEL_WARN,
                    "%s changed but profile '%s' has no aws_access_key_id and "
                    "aws_secret_access_key in it now; keeping the credentials read before",
                    files, p->profile);
        return;
    }
    if (same_str(fresh.key_id, p->cur.key_id) && same_str(fresh.secret, p->cur.secret) &&
        same_str(fresh.token, p->cur.token)) {
        aws_creds_clear(&fresh); /* touched, not changed: nothing to say */
        return;
    }
    aws_creds_clear(&p->cur);
    p->cur = fresh;
    p->have = 1;
    p->api->log(p->host, EVBUS_LOG_LEVEL_INFO, "credentials reloaded from %s (profile %s)", from,
                p->profile);
}

void evbus_aws_creds_refused(evbus_aws_creds_provider *p) {
    if (p->src == FILES)
        reread_files(p);
}

void evbus_aws_creds_destroy(evbus_aws_creds_provider **pp) {
    if (!pp || !*pp)
        return;
    evbus_aws_creds_provider *p = *pp;
    if (p->timer)
        p->api->timer_cancel(p->host, p->timer);
    aws_call_free_all(&p->open);
    aws_creds_clear(&p->cur);
    memset(p->imds_token, 0, sizeof p->imds_token);
    free(p);
    *pp = NULL;
}
