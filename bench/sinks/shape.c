/* The sinks bench/sinks drives. A row per sink: EventBridge (PutEvents ->
 * Entries with EventIds) and DynamoDB (BatchWriteItem -> UnprocessedItems
 * {}, or PutItem -> {}) are one row and one answer function each. */
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
};
const size_t n_sink_shapes = sizeof sink_shapes / sizeof sink_shapes[0];

const sink_shape *shape_by_target(const char *target) {
    for (size_t i = 0; target && i < n_sink_shapes; i++)
        if (strcmp(sink_shapes[i].amz_target, target) == 0)
            return &sink_shapes[i];
    return NULL;
}
