/* Error classification for AWS JSON protocol answers. The code comes from
 * the X-Amzn-ErrorType header, else the JSON body's `code` / `__type`, else
 * an XML body's <Code> (moto answers signature errors in XML even to JSON
 * calls), else the HTTP status. Then one table decides who is at fault. */
#include <curl/curl.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "aws.h"

typedef enum kind {
    EVENT,
    CREDENTIALS,
    EXPIRED,
    PERMISSION,
    MISSING,
    CLOCK,
    THROTTLE,
    SERVER
} kind;

static const struct {
    const char *code;
    kind kind;
} codes[] = {
    {"UnrecognizedClientException", CREDENTIALS},
    {"InvalidClientTokenId", CREDENTIALS},
    {"InvalidSignatureException", CREDENTIALS},
    {"SignatureDoesNotMatch", CREDENTIALS},
    {"IncompleteSignatureException", CREDENTIALS},
    {"IncompleteSignature", CREDENTIALS},
    {"MissingAuthenticationToken", CREDENTIALS},
    {"MissingAuthenticationTokenException", CREDENTIALS},
    {"InvalidAccessKeyId", CREDENTIALS},
    {"AuthFailure", CREDENTIALS},
    {"ExpiredTokenException", EXPIRED},
    {"ExpiredToken", EXPIRED},
    {"RequestExpired", CLOCK},
    {"RequestTimeTooSkewed", CLOCK},
    {"RequestInTheFuture", CLOCK},
    {"AccessDeniedException", PERMISSION},
    {"AccessDenied", PERMISSION},
    {"NotAuthorized", PERMISSION},
    {"KmsAccessDenied", PERMISSION},
    {"KmsDisabled", PERMISSION},
    {"KmsInvalidState", PERMISSION},
    {"KmsInvalidKeyUsage", PERMISSION},
    {"KmsNotFound", MISSING},
    {"ResourceNotFoundException", MISSING},
    {"QueueDoesNotExist", MISSING},
    {"AWS.SimpleQueueService.NonExistentQueue", MISSING},
    {"NonExistentQueue", MISSING},
    {"Throttling", THROTTLE},
    {"ThrottlingException", THROTTLE},
    {"ThrottledException", THROTTLE},
    {"RequestThrottledException", THROTTLE},
    {"TooManyRequestsException", THROTTLE},
    {"ProvisionedThroughputExceededException", THROTTLE},
    {"TransactionInProgressException", THROTTLE},
    {"RequestLimitExceeded", THROTTLE},
    {"BandwidthLimitExceeded", THROTTLE},
    {"LimitExceededException", THROTTLE},
    {"RequestThrottled", THROTTLE},
    {"KmsThrottled", THROTTLE},
    {"SlowDown", THROTTLE},
    {"PriorRequestNotComplete", THROTTLE},
    {"EC2ThrottledException", THROTTLE},
    {"TransactionConflictException", THROTTLE},
    {"RequestTimeout", SERVER},
    {"RequestTimeoutException", SERVER},
    {"InternalFailure", SERVER},
    {"InternalError", SERVER},
    {"InternalException", SERVER},
    {"InternalServerError", SERVER},
    {"ServiceUnavailable", SERVER},
    {"ServiceUnavailableException", SERVER},
};

static int lookup(const char *code, kind *out) {
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
        if (strcmp(codes[i].code, code) == 0) {
            *out = codes[i].kind;
            return 1;
        }
    }
    return 0;
}

static evbus_aws_fault fault_of(kind k) {
    switch (k) {
    case EVENT: return EVBUS_AWS_EVENT_FAULT;
    case THROTTLE:
    case SERVER: return EVBUS_AWS_TRANSIENT;
    default: return EVBUS_AWS_TARGET_FAULT;
    }
}

evbus_aws_fault evbus_aws_classify_code(const char *code) {
    kind k;
    return code && lookup(code, &k) ? fault_of(k) : EVBUS_AWS_EVENT_FAULT;
}

/* "com.amazonaws.sqs#QueueDoesNotExist:http://..." -> "QueueDoesNotExist". */
static void clean_code(char *dst, size_t len, const char *src) {
    const char *hash = strrchr(src, '#');
    if (hash)
        src = hash + 1;
    size_t n = strcspn(src, ":");
    if (n >= len)
        n = len - 1;
    memcpy(dst, src, n);
    dst[n] = '\0';
}

/* Text between <tag> and </tag>, XML entities left as they are. */
static int xml_text(const char *body, const char *tag, char *out, size_t len) {
    char open[40], close[40];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    const char *a = strstr(body, open);
    if (!a)
        return 0;
    a += strlen(open);
    const char *b = strstr(a, close);
    if (!b)
        return 0;
    size_t n = (size_t)(b - a) < len - 1 ? (size_t)(b - a) : len - 1;
    memcpy(out, a, n);
    out[n] = '\0';
    return 1;
}

static void from_body(evbus_aws_result *r) {
    const char *b = r->body ? r->body : "";
    while (*b == ' ' || *b == '\n' || *b == '\r' || *b == '\t')
        b++;
    if (*b == '{') {
        json_t *j = json_loadb(r->body, r->body_len, 0, NULL);
        const char *code = json_string_value(json_object_get(j, "code"));
        if (!code)
            code = json_string_value(json_object_get(j, "__type"));
        if (code && !r->code[0])
            clean_code(r->code, sizeof r->code, code);
        const char *msg = json_string_value(json_object_get(j, "message"));
        if (!msg)
            msg = json_string_value(json_object_get(j, "Message"));
        if (msg)
            snprintf(r->message, sizeof r->message, "%s", msg);
        json_decref(j);
    } else if (*b == '<') {
        char tmp[sizeof r->code];
        if (!r->code[0] && xml_text(b, "Code", tmp, sizeof tmp))
            clean_code(r->code, sizeof r->code, tmp);
        xml_text(b, "Message", r->message, sizeof r->message);
    }
}

static uint32_t retry_after(const evbus_aws_answer_headers *h) {
    char *end;
    if (h->amz_retry_after[0]) {
        unsigned long ms = strtoul(h->amz_retry_after, &end, 10);
        if (end != h->amz_retry_after)
            return ms > 600000 ? 600000 : (uint32_t)ms;
    }
    if (h->retry_after[0]) {
        unsigned long s = strtoul(h->retry_after, &end, 10);
        if (end != h->retry_after)
            return s > 600 ? 600000 : (uint32_t)s * 1000;
    }
    return 0;
}

static const char *const hints[] = {
    [CREDENTIALS] = "check the credentials: the key id and secret must belong together and the key "
                    "must be active",
    [EXPIRED] = "the credentials expired: new ones are being fetched; if this persists, renew the "
                "session token",
    [PERMISSION] = "grant the credentials' principal the permission for this action and resource",
    [MISSING] = "create the resource, or fix the target's queue_url, event_bus or table",
    [CLOCK] = "synchronise this machine's clock (NTP): signatures carry the time",
};

/* A call that got no answer. Every failure to reach the service, or to
 * hear back from it, is the target's fault: a wrong endpoint, a dead or
 * stalled service and a broken network look alike from here, and none of
 * them says anything about the events, so they must not spend the events'
 * attempts (an endpoint that is always too slow would otherwise
 * dead-letter good events). Only failures on this side (out of memory)
 * stay TRANSIENT. */
typedef enum no_answer { LOCAL, UNREACHABLE, TIMEOUT, CUT } no_answer;

static no_answer why_no_answer(int curl_code) {
    switch (curl_code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_USE_SSL_FAILED:
    case CURLE_URL_MALFORMAT:
    case CURLE_UNSUPPORTED_PROTOCOL: return UNREACHABLE;
    case CURLE_OPERATION_TIMEDOUT: return TIMEOUT;
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
    case CURLE_HTTP3:
    case CURLE_QUIC_CONNECT_ERROR:
    case CURLE_PROXY: return CUT;
    default: return LOCAL;
    }
}

static const struct {
    const char *code, *hint;
} no_answer_text[] = {
    [LOCAL] = {"TransferError", ""},
    [UNREACHABLE] = {"Unreachable", "check the endpoint, the network and (for TLS) ca_file"},
    [TIMEOUT] = {"Timeout", "the endpoint did not answer within the target's timeout: check it "
                            "and the network, or raise timeout"},
    [CUT] = {"ConnectionLost", "the connection closed without an answer: check the endpoint and "
                               "any proxy or load balancer in between"},
};

void evbus_aws_classify(evbus_aws_result *r, const evbus_aws_answer_headers *h) {
    r->code[0] = r->hint[0] = '\0';
    r->expired = r->refused_credentials = 0;
    r->retry_after_ms = retry_after(h);
    if (r->curl_code != CURLE_OK) {
        /* The request may or may not have landed (a timeout, a cut
         * answer): a resend is what the service's own dedup is for. */
        no_answer why = why_no_answer(r->curl_code);
        r->fault = why == LOCAL ? EVBUS_AWS_TRANSIENT : EVBUS_AWS_TARGET_FAULT;
        snprintf(r->code, sizeof r->code, "%s", no_answer_text[why].code);
        snprintf(r->hint, sizeof r->hint, "%s", no_answer_text[why].hint);
        return;
    }
    if (r->status >= 200 && r->status < 300) {
        r->fault = EVBUS_AWS_OK;
        r->message[0] = '\0';
        return;
    }
    r->message[0] = '\0';
    if (h->error_type[0])
        clean_code(r->code, sizeof r->code, h->error_type);
    from_body(r);
    if (!r->code[0] && h->query_error[0])
        clean_code(r->code, sizeof r->code, h->query_error);
    kind k;
    int known = lookup(r->code, &k);
    /* SQS's legacy spelling rides along in x-amzn-query-error. */
    if (!known && h->query_error[0]) {
        char legacy[sizeof r->code];
        snprintf(legacy, sizeof legacy, "%.*s", (int)strcspn(h->query_error, ";"), h->query_error);
        known = lookup(legacy, &k);
    }
    if (!known) {
        if (r->status == 429)
            k = THROTTLE;
        else if (r->status >= 500)
            k = SERVER;
        else if (r->status == 401 || r->status == 403)
            k = PERMISSION;
        else if (r->status == 404)
            k = MISSING;
        else
            k = EVENT;
    }
    if (!r->code[0])
        snprintf(r->code, sizeof r->code, "HTTP%ld", r->status);
    if (!r->message[0])
        snprintf(r->message, sizeof r->message, "HTTP status %ld", r->status);
    r->fault = fault_of(k);
    r->expired = k == EXPIRED;
    r->refused_credentials = k == CREDENTIALS || k == EXPIRED || k == PERMISSION;
    if (k < (kind)(sizeof hints / sizeof hints[0]) && hints[k])
        snprintf(r->hint, sizeof r->hint, "%s", hints[k]);
}
