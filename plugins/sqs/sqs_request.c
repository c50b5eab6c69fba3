/* SendMessageBatch requests (AWS JSON 1.0): the body of each message is the
 * event's envelope, its attributes become message attributes, and on FIFO
 * queues the group id follows message_group_id and the deduplication id is
 * the event id, so a redelivery within SQS's 5-minute window is dropped. */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "sqs.h"

/* SQS's rule for group and deduplication ids: 1..128 of ASCII 33..126. */
static bool sqs_id_ok(const char *s) {
    size_t n = strlen(s);
    if (n == 0 || n > 128)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s < 33 || (unsigned char)*s > 126)
            return false;
    return true;
}

/* An id SQS accepts for any string: the string when it is one already, else
 * a 128-bit hash of it in hex (stable, so redeliveries still match). */
static void sqs_id(const char *s, char out[129]) {
    if (sqs_id_ok(s)) {
        snprintf(out, 129, "%s", s);
        return;
    }
    uint64_t a = 0xcbf29ce484222325ull, b = 0x84222325cbf29ce4ull;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        a = (a ^ *p) * 0x100000001b3ull;
        b = (b ^ *p) * 0x100000001b3ull + 0x9e3779b97f4a7c15ull;
    }
    snprintf(out, 129, "h-%016llx%016llx", (unsigned long long)a, (unsigned long long)b);
}

static bool attr_name_ok(const char *k, char *why, size_t len) {
    size_t n = strlen(k);
    bool chars = n > 0 && n <= 256;
    for (const char *p = k; chars && *p; p++)
        chars = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') || (*p >= '0' && *p <= '9') ||
                *p == '_' || *p == '-' || *p == '.';
    if (!chars || k[0] == '.' || k[n - 1] == '.' || strstr(k, "..") ||
        strncasecmp(k, "AWS.", 4) == 0 || strncasecmp(k, "Amazon.", 7) == 0) {
        snprintf(why, len,
                 "InvalidParameterValue: attribute name '%.64s' is not a valid SQS message "
                 "attribute name (1-256 of A-Z a-z 0-9 _ - ., no leading, trailing or double "
                 "period, no AWS. or Amazon. prefix)",
                 k);
        return false;
    }
    return true;
}

/* SQS refuses a body with characters outside #x9 #xA #xD #x20-#xD7FF
 * #xE000-#xFFFD #x10000-#x10FFFF. The envelope is JSON text (control
 * characters escaped, valid UTF-8), so only U+FFFE and U+FFFF remain. */
static bool body_chars_ok(const char *s, size_t n) {
    for (const char *p = memchr(s, 0xEF, n); p; p = memchr(p + 1, 0xEF, n - (size_t)(p + 1 - s)))
        if ((size_t)(p - s) + 2 < n && (unsigned char)p[1] == 0xBF &&
            ((unsigned char)p[2] == 0xBE || (unsigned char)p[2] == 0xBF))
            return false;
    return true;
}

size_t sqs_message_size(const sqs_opts *o, const evbus_sink_event *e, char *why, size_t len) {
    size_t size = e->envelope_len;
    if (!body_chars_ok(e->envelope_json, e->envelope_len)) {
        snprintf(why, len,
                 "InvalidMessageContents: the event holds U+FFFE or U+FFFF, which SQS "
                 "does not allow in a message");
        return 0;
    }
    if (o->message_attributes) {
        if (e->n_attributes > 10) {
            snprintf(why, len,
                     "InvalidParameterValue: %zu attributes; an SQS message takes at most 10",
                     e->n_attributes);
            return 0;
        }
        for (size_t i = 0; i < e->n_attributes; i++) {
            const evbus_attr *a = &e->attributes[i];
            if (!attr_name_ok(a->key, why, len))
                return 0;
            if (!a->value[0]) {
                snprintf(why, len,
                         "InvalidParameterValue: attribute '%.64s' is empty; SQS "
                         "does not allow empty attribute values",
                         a->key);
                return 0;
            }
            size += strlen(a->key) + strlen("String") + strlen(a->value);
        }
    }
    if (size > o->max_request_bytes) {
        snprintf(why, len,
                 "MessageTooLong: the message is %zu bytes (envelope and attributes); the "
                 "queue takes at most %llu (max_request_bytes)",
                 size, (unsigned long long)o->max_request_bytes);
        return 0;
    }
    return size;
}

static int add_pair(evbus_aws_buf *out, const char *key, const char *value) {
    return evbus_aws_buf_puts(out, ",\"") || evbus_aws_buf_puts(out, key) ||
           evbus_aws_buf_puts(out, "\":") || evbus_aws_buf_json_str(out, value, strlen(value));
}

int sqs_build_request(const sqs_opts *o, const evbus_batch *b, const size_t *idx, size_t n,
                      evbus_aws_buf *out) {
    int bad = evbus_aws_buf_puts(out, "{\"QueueUrl\":") ||
              evbus_aws_buf_json_str(out, o->queue_url, strlen(o->queue_url)) ||
              evbus_aws_buf_puts(out, ",\"Entries\":[");
    for (size_t k = 0; k < n && !bad; k++) {
        const evbus_sink_event *e = &b->events[idx[k]];
        char id[24], gid[129], did[129];
        /* The entry's Id: its index in the call (at most 10 entries; no
         * snprintf per entry, which showed in the delivery thread's profile). */
        char *d = id + sizeof id - 1;
        *d = '\0';
        size_t v = k;
        do
            *--d = (char)('0' + v % 10);
        while ((v /= 10) && d > id);
        bad = bad || evbus_aws_buf_puts(out, k ? ",{\"Id\":\"" : "{\"Id\":\"") ||
              evbus_aws_buf_puts(out, d) || evbus_aws_buf_puts(out, "\",\"MessageBody\":") ||
              evbus_aws_buf_json_str(out, e->envelope_json, e->envelope_len);
        if (o->fifo) {
            /* No partition key: the source keeps one producer's events in
             * order, which is what a group is for. */
            const char *g = o->group == SQS_GROUP_CONSTANT ? o->group_constant
                            : o->group == SQS_GROUP_SOURCE || !e->partition_key[0]
                                ? e->source
                                : e->partition_key;
            sqs_id(g, gid);
            sqs_id(e->id, did);
            bad = bad || add_pair(out, "MessageGroupId", gid) ||
                  add_pair(out, "MessageDeduplicationId", did);
        }
        if (o->message_attributes && e->n_attributes) {
            bad = bad || evbus_aws_buf_puts(out, ",\"MessageAttributes\":{");
            for (size_t i = 0; i < e->n_attributes; i++) {
                const evbus_attr *a = &e->attributes[i];
                bad = bad || evbus_aws_buf_puts(out, i ? "," : "") ||
                      evbus_aws_buf_json_str(out, a->key, strlen(a->key)) ||
                      evbus_aws_buf_puts(out, ":{\"DataType\":\"String\",\"StringValue\":") ||
                      evbus_aws_buf_json_str(out, a->value, strlen(a->value)) ||
                      evbus_aws_buf_puts(out, "}");
            }
            bad = bad || evbus_aws_buf_puts(out, "}");
        }
        bad = bad || evbus_aws_buf_puts(out, "}");
    }
    bad = bad || evbus_aws_buf_puts(out, "]}");
    return bad ? -1 : 0;
}
