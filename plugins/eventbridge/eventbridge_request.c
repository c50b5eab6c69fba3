/* PutEvents requests (AWS JSON 1.1): the event's source, detail type,
 * detail, resources and time become one entry on the configured bus, and
 * entries are sized the way EventBridge sizes them. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>

#include "eventbridge.h"

/* EventBridge counts a Time as 14 bytes, whatever its value. */
#define EB_TIME_BYTES 14

size_t eb_entry_size(const eb_opts *o, const evbus_sink_event *e, char *why, size_t len) {
    size_t size = EB_TIME_BYTES + strlen(e->source) + strlen(e->detail_type) + strlen(e->detail);
    for (size_t i = 0; i < e->n_resources; i++)
        size += strlen(e->resources[i]);
    if (size > o->max_request_bytes) {
        snprintf(why, len,
                 "EntryTooLarge: the entry is %zu bytes as EventBridge counts them (time, "
                 "source, detail type, detail, resources); a PutEvents call takes at most %" PRIu64
                 " (max_request_bytes)",
                 size, o->max_request_bytes);
        return 0;
    }
    return size;
}

static int digits(const char *s, int n, int *out) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* Days from 1970-01-01 to a proleptic Gregorian date, without timegm (not
 * C11) or the TZ environment: March-based years make leap days fall last. */
static int64_t days_from_civil(int64_t y, int m, int d) {
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

int eb_epoch_seconds(const char *s, int64_t *out) {
    int y, mo, d, h, mi, sec;
    if (strlen(s) < 20 || digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' ||
        digits(s + 8, 2, &d) || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) ||
        s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &sec) ||
        mo < 1 || mo > 12)
        return -1;
    const char *p = s + 19;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            ;
    int64_t offset = 0;
    if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) || p[3] != ':' || digits(p + 4, 2, &om) || p[6] != '\0')
            return -1;
        offset = (*p == '-' ? -1 : 1) * (int64_t)(oh * 3600 + om * 60);
    } else if ((*p != 'Z' && *p != 'z') || p[1] != '\0') {
        return -1;
    }
    *out = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - offset;
    return 0;
}

/* Appends a string literal, its length known at compile time. */
#define ADD_LIT(out, lit) evbus_aws_buf_add((out), (lit), sizeof(lit) - 1)

/* KEY (a literal with its syntax) and the value as a JSON string. */
#define add_str(out, key, value) (ADD_LIT(out, key) || add_json(out, value))

static int add_json(evbus_aws_buf *out, const char *value) {
    return evbus_aws_buf_json_str(out, value, strlen(value));
}

/* ,"Time":SECONDS, written by hand: snprintf on every entry cost more
 * than the rest of the entry's fixed text. */
static int add_time(evbus_aws_buf *out, int64_t t) {
    char num[24], *p = num + sizeof num;
    uint64_t u = t < 0 ? 0 - (uint64_t)t : (uint64_t)t;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (t < 0)
        *--p = '-';
    return ADD_LIT(out, ",\"Time\":") || evbus_aws_buf_add(out, p, (size_t)(num + sizeof num - p));
}

int eb_build_request(const eb_opts *o, const evbus_batch *b, const size_t *idx, size_t n,
                     evbus_aws_buf *out) {
    int bad = ADD_LIT(out, "{\"Entries\":[");
    for (size_t k = 0; k < n && !bad; k++) {
        const evbus_sink_event *e = &b->events[idx[k]];
        bad = (k ? ADD_LIT(out, ",{") : ADD_LIT(out, "{")) ||
              add_str(out, "\"EventBusName\":", o->event_bus) ||
              add_str(out, ",\"Source\":", e->source) ||
              add_str(out, ",\"DetailType\":", e->detail_type) ||
              add_str(out, ",\"Detail\":", e->detail);
        if (e->n_resources) {
            bad = bad || ADD_LIT(out, ",\"Resources\":[");
            for (size_t i = 0; i < e->n_resources; i++)
                bad = bad || (i && ADD_LIT(out, ",")) || add_json(out, e->resources[i]);
            bad = bad || ADD_LIT(out, "]");
        }
        /* The wire form of a timestamp in AWS JSON is epoch seconds; the
         * event keeps second precision in EventBridge's envelope anyway. */
        int64_t t;
        if (eb_epoch_seconds(e->time, &t) == 0)
            bad = bad || add_time(out, t);
        bad = bad || ADD_LIT(out, "}");
    }
    bad = bad || ADD_LIT(out, "]}");
    return bad ? -1 : 0;
}
