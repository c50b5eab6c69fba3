/*
 * What the AWS sink plugins (sqs, eventbridge, dynamodb) share: endpoints,
 * the credential chain, HTTP calls through the host's libcurl multi signed by
 * libcurl's own SigV4 (CURLOPT_AWS_SIGV4), the AWS JSON protocol, and the
 * classification of errors into event faults, target faults and transient
 * faults. Linked statically into each plugin; sees only <evbus/plugin.h>.
 *
 * Threads: everything here runs on the host's delivery thread, inside plugin
 * callbacks or host timers and HTTP completions, like the plugin itself.
 *
 * Secrets: nothing in this library writes a secret key or session token to
 * a log line, a reason or an error; callers must not either.
 */
#ifndef EVBUS_AWS_H
#define EVBUS_AWS_H

#include <evbus/plugin.h>
#include <stddef.h>
#include <stdint.h>

/* ---- a growable byte buffer, and JSON text written into it ---- */

typedef struct evbus_aws_buf {
    char *data; /* NUL-terminated while len < cap; owned */
    size_t len, cap;
} evbus_aws_buf;

/* Appends n bytes. Returns 0, or -1 when out of memory (buf unchanged). */
int evbus_aws_buf_add(evbus_aws_buf *b, const void *p, size_t n);
/* Appends a C string. */
int evbus_aws_buf_puts(evbus_aws_buf *b, const char *s);
/* Appends s (n bytes, UTF-8) as a quoted JSON string. */
int evbus_aws_buf_json_str(evbus_aws_buf *b, const char *s, size_t n);
/* Makes room for `more` bytes beyond len (and a NUL), so that appending
 * them reallocates nothing. Returns 0, or -1 when out of memory. */
int evbus_aws_buf_reserve(evbus_aws_buf *b, size_t more);
/* How many of s's first n bytes JSON text holds as they are: the length of
 * the run before the first quote, backslash or control character. */
size_t evbus_aws_json_plain(const char *s, size_t n);
/* Frees the data; leaves the buffer empty and reusable. */
void evbus_aws_buf_free(evbus_aws_buf *b);

/* ---- services and endpoints ---- */

/* How one service is reached (AWS JSON protocol over POST /). */
typedef struct evbus_aws_service {
    const char *name;         /* for messages: "SQS" */
    const char *signing_name; /* SigV4 service and host prefix: "sqs" */
    const char *content_type; /* "application/x-amz-json-1.0" */
} evbus_aws_service;

extern const evbus_aws_service evbus_aws_sqs, evbus_aws_eventbridge, evbus_aws_dynamodb;

/* Writes the service's public endpoint in `region` into out:
 * https://SERVICE.REGION.amazonaws.com (amazonaws.com.cn in China regions).
 * Returns 0, or -1 when it does not fit or region is empty. */
int evbus_aws_default_endpoint(const evbus_aws_service *svc, const char *region, char *out,
                               size_t len);

/* ---- credentials ---- */

/* One set of credentials. Owned by the provider; valid until the provider's
 * next refresh completes, so copy what a request needs (libcurl copies the
 * strings given to curl_easy_setopt). */
typedef struct evbus_aws_creds {
    char *key_id;
    char *secret;
    char *token;        /* session token, or NULL */
    int64_t expires_ms; /* wall-clock ms since the epoch; 0: never */
} evbus_aws_creds;

typedef struct evbus_aws_creds_provider evbus_aws_creds_provider;

/*
 * Finds credentials the way the AWS SDKs do, in this order:
 *  1. environment: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN
 *     (skipped when `profile` is given, as the SDKs do for an explicit profile);
 *  2. the shared files AWS_SHARED_CREDENTIALS_FILE (~/.aws/credentials) and
 *     AWS_CONFIG_FILE (~/.aws/config), profile `profile`, else AWS_PROFILE,
 *     else "default";
 *  3. the container endpoint AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or
 *     _FULL_URI, with AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE or _TOKEN;
 *  4. EC2 instance metadata, IMDSv2 (token first; AWS_EC2_METADATA_DISABLED,
 *     AWS_EC2_METADATA_SERVICE_ENDPOINT).
 * 1 and 2 are read now. 3 and 4 are fetched through api->http_start, never
 * blocking, and refreshed before they expire (halfway through their life,
 * at most 10 minutes early); until the first fetch completes,
 * evbus_aws_creds_get() says why there are none.
 *
 * `profile` may be NULL or "". An explicit profile that no file holds is an
 * error: EVBUS_ECONFIG with err saying which files were read. The caller
 * owns *out (evbus_aws_creds_destroy()).
 */
evbus_err evbus_aws_creds_new(const evbus_host_api *api, evbus_host *host, const char *profile,
                              evbus_aws_creds_provider **out, char *err, size_t errlen);

/* The current credentials, or NULL when there are none yet (or the source
 * failed); then *why (if why is not NULL) says why and what to do, without
 * secrets; it lives until the next call into the provider. */
const evbus_aws_creds *evbus_aws_creds_get(evbus_aws_creds_provider *p, const char **why);

/* Where the credentials come from, for messages: "environment",
 * "profile default", "container endpoint", "instance metadata (IMDSv2)". */
const char *evbus_aws_creds_source(const evbus_aws_creds_provider *p);

/* The service said the credentials expired: fetch new ones now (a no-op for
 * sources that cannot be refreshed). */
void evbus_aws_creds_expired(evbus_aws_creds_provider *p);

/* The service refused the credentials (wrong, expired, or without the
 * permission): when they came from the shared files and a file changed
 * since it was read (device, inode, size or times), read it again and use
 * its keys from the next call on, logging once "credentials reloaded from
 * FILE" (never the keys). The files are looked at at most once a second;
 * a no-op for the other sources. */
void evbus_aws_creds_refused(evbus_aws_creds_provider *p);

/* Cancels fetches and timers and frees; NULLs *p; accepts NULL. */
void evbus_aws_creds_destroy(evbus_aws_creds_provider **p);

/* ---- errors ---- */

typedef enum evbus_aws_fault {
    EVBUS_AWS_OK = 0,
    /* The service refused the request's content: FAILED. */
    EVBUS_AWS_EVENT_FAULT = 1,
    /* The target is wrong or unusable (credentials, permission, missing
     * resource, clock), or gave no answer at all (connection refused, DNS,
     * TLS, a timeout, a connection cut mid-request, an empty reply):
     * retried without spending attempts. */
    EVBUS_AWS_TARGET_FAULT = 2,
    /* The service answered that it cannot take it now (throttling, 5xx),
     * or the call failed on this side: RETRY, with a hint. */
    EVBUS_AWS_TRANSIENT = 3,
} evbus_aws_fault;

/* The outcome of one call, as the plugin sees it. */
typedef struct evbus_aws_result {
    evbus_aws_fault fault;
    int curl_code;
    long status;      /* HTTP status; 0 without an answer */
    const char *body; /* the answer's body, NUL-terminated ("" if none) */
    size_t body_len;
    char code[96];           /* service error code ("QueueDoesNotExist"), "" on success */
    char message[384];       /* service error message, or curl's */
    char hint[160];          /* for target faults: what to do */
    uint32_t retry_after_ms; /* from Retry-After / x-amz-retry-after; 0: none */
    int expired;             /* the credentials expired (refresh, then retry) */
    int refused_credentials; /* wrong, expired or unpermitted credentials */
} evbus_aws_result;

/* Headers of an answer that classification reads; each "" when absent. */
typedef struct evbus_aws_answer_headers {
    char error_type[128];     /* X-Amzn-ErrorType */
    char query_error[160];    /* x-amzn-query-error: LEGACYCODE;Sender */
    char retry_after[32];     /* Retry-After (seconds) */
    char amz_retry_after[32]; /* x-amz-retry-after (ms) */
} evbus_aws_answer_headers;

/* Fills r->fault, code, message, hint, retry_after_ms, expired and
 * refused_credentials from a call's curl code, HTTP status, headers and
 * body (JSON, XML, HTML or empty). r->body and r->status must be set. A
 * call without an answer gets code Unreachable (connect, DNS, TLS, URL),
 * Timeout or ConnectionLost (cut, empty reply), all target faults, or
 * TransferError (a failure on this side, transient). Pure: no I/O, no
 * logging. */
void evbus_aws_classify(evbus_aws_result *r, const evbus_aws_answer_headers *h);

/* Classifies a per-entry error code of a 200 answer (PutEvents ErrorCode,
 * DynamoDB codes): EVBUS_AWS_TRANSIENT for throttling and internal errors,
 * EVBUS_AWS_TARGET_FAULT for credentials, permission and missing resources,
 * else EVBUS_AWS_EVENT_FAULT. */
evbus_aws_fault evbus_aws_classify_code(const char *code);

/* ---- the client: one per plugin instance ---- */

typedef struct evbus_aws_client evbus_aws_client;

/* Called once per evbus_aws_client_post(), on the delivery thread. `r` and
 * its strings live until the callback returns. */
typedef void (*evbus_aws_done_fn)(void *arg, const evbus_aws_result *r);

/*
 * Creates the client of one plugin instance for `svc`, reading the common
 * keys the plugin declares (see EVBUS_AWS_COMMON_KEYS): endpoint, profile,
 * ca_file, timeout. Logs and returns EVBUS_ECONFIG on a bad setting. The
 * caller owns *out (evbus_aws_client_destroy()).
 */
evbus_err evbus_aws_client_new(const evbus_host_api *api, evbus_host *host,
                               const evbus_aws_service *svc, evbus_aws_client **out);

/*
 * POSTs `body` (len bytes; the client takes it over and frees it) to the
 * endpoint of `region` with X-Amz-Target `target`, signed with the current
 * credentials. done(arg, result) runs when the answer is in, or at once (from
 * inside this call) when there are no credentials yet (a target fault).
 * Returns EVBUS_OK, or EVBUS_ENOMEM (then done is not called, body freed).
 */
evbus_err evbus_aws_client_post(evbus_aws_client *c, const char *region, const char *target,
                                char *body, size_t len, evbus_aws_done_fn done, void *arg);

/*
 * The plugin's bookkeeping for an outcome that applies to a whole request:
 * counts it (counters aws_target_faults, aws_throttled, aws_server_errors,
 * aws_network_errors for every call without an answer, aws_event_faults), logs a target fault once
 * with what to do (again only when the fault changes, and once when the target recovers), refreshes
 * expired credentials, and returns the result to report for each entry,
 * writing the reason into `reason`. OK gives DELIVERED.
 */
evbus_result evbus_aws_client_judge(evbus_aws_client *c, const evbus_aws_result *r, char *reason,
                                    size_t len);

/* Result to report for a per-entry fault: TARGET_FAULT on a host that
 * knows it (ABI 1.1), else RETRY. */
evbus_result evbus_aws_client_result_for(const evbus_aws_client *c, evbus_aws_fault f);

/* Frees every request still open (at shutdown the host has taken their
 * transfers back, so their callbacks never run), passing each one's `arg` to
 * drop (if not NULL), then the credentials. NULLs *c; accepts NULL. */
void evbus_aws_client_destroy(evbus_aws_client **c, void (*drop)(void *arg));

/* The configuration keys every AWS plugin declares, first in its table. */
#define EVBUS_AWS_COMMON_KEYS                                                                      \
    {"endpoint", EVBUS_CONFIG_STRING, NULL, 0,                                                     \
     "service URL; default: the AWS endpoint of the target's region"},                             \
        {"profile", EVBUS_CONFIG_STRING, NULL, 0,                                                  \
         "profile of the shared credentials/config files; default: AWS_PROFILE, then default"},    \
        {"ca_file", EVBUS_CONFIG_STRING, NULL, 0,                                                  \
         "PEM file of CAs to verify the endpoint with; default: the system's"},                    \
    {                                                                                              \
        "timeout", EVBUS_CONFIG_DURATION, "10s", 0, "longest wait for one request's answer"        \
    }

#endif
