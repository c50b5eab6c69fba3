/* The sinks bench/sinks drives, a row each: SQS (SendMessageBatch ->
 * Successful), EventBridge (PutEvents -> Entries with EventIds), DynamoDB
 * (BatchWriteItem -> UnprocessedItems {}, PutItem -> {}). */
#include "shape.h"

#include <stdlib.h>
#include <string.h>

int shape_answer_add(shape_answer *a, const char *s, size_t n) {
    if (a->len + n + 1 > a->cap) {
        size_t cap = a->cap ? a->cap * 2 : 4096;
        while (cap < a->len + n + 1)
            cap *= 2;
        char *p = realloc(a->data, cap);
        if (!p)
            return -1;
        a->data = p;
        a->cap = cap;
    }
    memcpy(a->data + a->len, s, n);
    a->len += n;
    a->data[a->len] = '\0';
    return 0;
}

static int add_str(shape_answer *a, const char *s) {
    return shape_answer_add(a, s, strlen(s));
}

int shape_find_stamp(const char *body, size_t len, char out[32]) {
    static const char pat[] = "{\\\"t\\\":";
    const char *end = body + len;
    for (const char *p = memchr(body, '{', len); p; p = memchr(p + 1, '{', (size_t)(end - p - 1))) {
        if ((size_t)(end - p) < sizeof pat - 1 || memcmp(p, pat, sizeof pat - 1) != 0)
            continue;
        size_t k = 0;
        for (const char *q = p; q < end && k < 31; q++)
            if (*q != '\\')
                out[k++] = *q;
        out[k] = '\0';
        return 0;
    }
    return -1;
}

/* ---- SQS: SendMessageBatch (AWS JSON 1.0) ---- */

static void sqs_config(FILE *f, const char *endpoint, const char *resource) {
    if (resource)
        fprintf(f, "      endpoint: %s\n      queue_url: %s\n", endpoint, resource);
    else
        fprintf(f, "      endpoint: %s\n      queue_url: %s/123456789012/bench\n", endpoint,
                endpoint);
    fprintf(f, "      timeout: 30s\n");
}

/* Entries are {"Id":"N","MessageBody":"..."}: the body is a JSON string, so
 * "Id":" cannot occur inside it unescaped, and a scan finds every entry
 * without a JSON parser (the responder must not be the bottleneck). */
static int sqs_answer(const char *body, size_t len, shape_answer *a) {
    static const char key[] = "\"Id\":\"";
    const char *end = body + len, *p = body;
    int n = 0;
    if (!memmem(body, len, "\"Entries\":[", 11))
        return -1;
    if (add_str(a, "{\"Successful\":["))
        return -1;
    const char *next = memmem(p, (size_t)(end - p), key, sizeof key - 1);
    while (next) {
        const char *id = next + sizeof key - 1;
        const char *q = memchr(id, '"', (size_t)(end - id));
        if (!q || q - id > 80)
            return -1;
        const char *after = memmem(q, (size_t)(end - q), key, sizeof key - 1);
        char stamp[32], line[256];
        int has = shape_find_stamp(q, (size_t)((after ? after : end) - q), stamp) == 0;
        a->on_entry(a->arg, has ? stamp : NULL);
        snprintf(line, sizeof line,
                 "%s{\"Id\":\"%.*s\",\"MessageId\":\"00000000-0000-4000-8000-%012d\","
                 "\"MD5OfMessageBody\":\"d41d8cd98f00b204e9800998ecf8427e\"}",
                 n ? "," : "", (int)(q - id), id, n);
        if (add_str(a, line))
            return -1;
        n++;
        next = after;
    }
    if (add_str(a, "],\"Failed\":[]}"))
        return -1;
    return n;
}

/* Calls whose entries each hold `key` once (and nothing else does): reports
 * every entry with the stamp `find` sees between its key and the next, and
 * returns how many there are. */
static int count_entries(const char *body, size_t len, const char *key,
                         int (*find)(const char *, size_t, char[32]), shape_answer *a) {
    size_t kl = strlen(key);
    const char *end = body + len;
    int n = 0;
    for (const char *p = memmem(body, len, key, kl); p; n++) {
        const char *after = memmem(p + kl, (size_t)(end - p - kl), key, kl);
        char stamp[32];
        int has = find(p, (size_t)((after ? after : end) - p), stamp) == 0;
        a->on_entry(a->arg, has ? stamp : NULL);
        p = after;
    }
    return n;
}

/* ---- EventBridge: PutEvents (AWS JSON 1.1) ---- */

static void eb_config(FILE *f, const char *endpoint, const char *resource) {
    fprintf(f, "      endpoint: %s\n      event_bus: %s\n      timeout: 30s\n", endpoint,
            resource ? resource : "bench");
}

/* One "Detail":"..." per entry (a JSON string: the stamp is escaped as in
 * SQS); the answer lists an EventId per entry, in order. */
static int eb_answer(const char *body, size_t len, shape_answer *a) {
    if (!memmem(body, len, "\"Entries\":[", 11))
        return -1;
    int n = count_entries(body, len, "\"Detail\":\"", shape_find_stamp, a);
    if (add_str(a, "{\"FailedEntryCount\":0,\"Entries\":["))
        return -1;
    for (int k = 0; k < n; k++) {
        char line[96];
        snprintf(line, sizeof line, "%s{\"EventId\":\"00000000-0000-4000-8000-%012d\"}",
                 k ? "," : "", k);
        if (add_str(a, line))
            return -1;
    }
    return add_str(a, "]}") ? -1 : n;
}

/* ---- DynamoDB: BatchWriteItem (mode: batch), PutItem (conditional) ---- */

static void ddb_config(FILE *f, const char *endpoint, const char *resource, const char *mode) {
    fprintf(f, "      endpoint: %s\n      table: %s\n      mode: %s\n      timeout: 30s\n",
            endpoint, resource ? resource : "bench", mode);
}

static void ddb_batch_config(FILE *f, const char *endpoint, const char *resource) {
    ddb_config(f, endpoint, resource, "batch");
}

static void ddb_put_config(FILE *f, const char *endpoint, const char *resource) {
    ddb_config(f, endpoint, resource, "conditional");
}

/* The detail arrives as attribute values ("t":{"N":"<digits>"},
 * "m":{"N":"1"}): rebuilds {"t":<digits>,"m":<digit> from them. */
static int ddb_find_stamp(const char *body, size_t len, char out[32]) {
    static const char t[] = "\"t\":{\"N\":\"", m[] = "\"m\":{\"N\":\"";
    const char *end = body + len;
    const char *p = memmem(body, len, t, sizeof t - 1);
    if (!p)
        return -1;
    p += sizeof t - 1;
    const char *q = memchr(p, '"', (size_t)(end - p));
    const char *r = q ? memmem(q, (size_t)(end - q), m, sizeof m - 1) : NULL;
    if (!q || q - p > 20 || !r || r + sizeof m > end)
        return -1;
    snprintf(out, 32, "{\"t\":%.*s,\"m\":%c", (int)(q - p), p, r[sizeof m - 1]);
    return 0;
}

static int ddb_batch_answer(const char *body, size_t len, shape_answer *a) {
    if (!memmem(body, len, "\"RequestItems\":", 15))
        return -1;
    int n = count_entries(body, len, "\"PutRequest\":", ddb_find_stamp, a);
    return add_str(a, "{\"UnprocessedItems\":{}}") ? -1 : n;
}

static int ddb_put_answer(const char *body, size_t len, shape_answer *a) {
    if (!memmem(body, len, "\"Item\":", 7))
        return -1;
    int n = count_entries(body, len, "\"Item\":", ddb_find_stamp, a);
    return add_str(a, "{}") ? -1 : n;
}

const sink_shape sink_shapes[] = {
    {.name = "sqs",
     .plugin = "sqs",
     .service = "sqs",
     .content_type = "application/x-amz-json-1.0",
     .amz_target = "AmazonSQS.SendMessageBatch",
     .max_entries = 10,
     .write_config = sqs_config,
     .answer = sqs_answer,
     .moto_create = "create-queue"},
    {.name = "eventbridge",
     .plugin = "eventbridge",
     .service = "events",
     .content_type = "application/x-amz-json-1.1",
     .amz_target = "AWSEvents.PutEvents",
     .max_entries = 10,
     .write_config = eb_config,
     .answer = eb_answer,
     .moto_create = "create-bus"},
    {.name = "dynamodb-batch",
     .plugin = "dynamodb",
     .service = "dynamodb",
     .content_type = "application/x-amz-json-1.0",
     .amz_target = "DynamoDB_20120810.BatchWriteItem",
     .max_entries = 25,
     .write_config = ddb_batch_config,
     .answer = ddb_batch_answer,
     .moto_create = "create-table"},
    {.name = "dynamodb-put",
     .plugin = "dynamodb",
     .service = "dynamodb",
     .content_type = "application/x-amz-json-1.0",
     .amz_target = "DynamoDB_20120810.PutItem",
     .max_entries = 1,
     .write_config = ddb_put_config,
     .answer = ddb_put_answer,
     .moto_create = "create-table"},
};
const size_t n_sink_shapes = sizeof sink_shapes / sizeof sink_shapes[0];

const sink_shape *shape_by_target(const char *target) {
    for (size_t i = 0; target && i < n_sink_shapes; i++)
        if (strcmp(sink_shapes[i].amz_target, target) == 0)
            return &sink_shapes[i];
    return NULL;
}
