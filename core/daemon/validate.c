#include "validate.h"

#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "common/json_check.h"
#include "common/util.h"
#include "evbus/evbus.h"

static int digits(const char *s, int n) {
    for (int i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return 0;
    return 1;
}

static int num(const char *s, int n) {
    int v = 0;
    for (int i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

int evbus__time_valid(const char *s) {
    /* YYYY-MM-DDTHH:MM:SS */
    if (strlen(s) < 20 || !digits(s, 4) || s[4] != '-' || !digits(s + 5, 2) || s[7] != '-' ||
        !digits(s + 8, 2) || (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2) || s[13] != ':' ||
        !digits(s + 14, 2) || s[16] != ':' || !digits(s + 17, 2))
        return 0;
    int month = num(s + 5, 2), day = num(s + 8, 2);
    if (day < 1 || day > evbus__days_in_month(num(s, 4), month) || num(s + 11, 2) > 23 ||
        num(s + 14, 2) > 59 || num(s + 17, 2) > 60)
        return 0;
    const char *p = s + 19;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return 0;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if ((*p == 'Z' || *p == 'z') && p[1] == '\0')
        return 1;
    if ((*p == '+' || *p == '-') && digits(p + 1, 2) && p[3] == ':' && digits(p + 4, 2) &&
        p[6] == '\0')
        return num(p + 1, 2) <= 23 && num(p + 4, 2) <= 59;
    return 0;
}

#define REJECT(...)                                                                                \
    do {                                                                                           \
        snprintf(why, whylen, __VA_ARGS__);                                                        \
        return -1;                                                                                 \
    } while (0)

static int check_string(const char *name, const char *s, size_t min, size_t max, char *why,
                        size_t whylen, size_t *total) {
    size_t len = strlen(s);
    /* Before the length, so that a too long id that is not UTF-8 is still
     * refused for the reason that keeps it out of the ack. */
    if (!evbus__utf8_valid(s, len))
        REJECT("%s is not valid UTF-8", name);
    if (len < min)
        REJECT("%s is required (%zu to %zu bytes)", name, min, max);
    if (len > max)
        REJECT("%s is %zu bytes; the limit is %zu", name, len, max);
    *total += len;
    return 0;
}

int evbus__event_validate(const Evbus__V1__Event *ev, size_t max_event_size, char *why,
                          size_t whylen) {
    size_t total = 0;
    if (check_string("id", ev->id, 0, EVBUS_EVENT_ID_MAX, why, whylen, &total) ||
        check_string("source", ev->source, 1, EVBUS_SOURCE_MAX, why, whylen, &total) ||
        check_string("detail_type", ev->detail_type, 1, EVBUS_DETAIL_TYPE_MAX, why, whylen,
                     &total) ||
        check_string("partition_key", ev->partition_key, 0, EVBUS_PARTITION_KEY_MAX, why, whylen,
                     &total) ||
        check_string("origin_region", ev->origin_region, 0, EVBUS_REGION_MAX, why, whylen, &total))
        return -1;
    if (check_string("time", ev->time, 0, SIZE_MAX, why, whylen, &total))
        return -1;
    /* Quoted only whole and short: a reason goes back in a proto3 string,
     * which must stay valid UTF-8, so it is never cut inside a character. */
    if (ev->time[0] && !evbus__time_valid(ev->time)) {
        if (strlen(ev->time) <= 40)
            REJECT("time '%s' is not an RFC 3339 timestamp such as 2026-11-23T17:44:20Z", ev->time);
        REJECT("time is not an RFC 3339 timestamp such as 2026-11-23T17:44:20Z");
    }
    if (ev->n_resources > EVBUS_RESOURCES_MAX)
        REJECT("%zu resources; the limit is %d", ev->n_resources, EVBUS_RESOURCES_MAX);
    for (size_t i = 0; i < ev->n_resources; i++)
        if (check_string("resources", ev->resources[i], 0, EVBUS_RESOURCE_MAX, why, whylen, &total))
            return -1;
    if (ev->n_attributes > EVBUS_ATTRIBUTES_MAX)
        REJECT("%zu attributes; the limit is %d", ev->n_attributes, EVBUS_ATTRIBUTES_MAX);
    for (size_t i = 0; i < ev->n_attributes; i++) {
        const Evbus__V1__Attribute *a = ev->attributes[i];
        /* Named by their path in the message, as the raw-NUL check names
         * them (frame.c): "attributes.key". */
        if (check_string("attributes.key", a->key, 1, EVBUS_ATTRIBUTE_KEY_MAX, why, whylen,
                         &total) ||
            check_string("attributes.value", a->value, 0, max_event_size, why, whylen, &total))
            return -1;
    }
    size_t dlen = strlen(ev->detail);
    if (dlen == 0)
        REJECT("detail is required: a JSON object such as {}");
    const char *jwhy;
    size_t off;
    if (evbus__json_check_object(ev->detail, dlen, &jwhy, &off))
        REJECT("detail is not a JSON object: %s at byte %zu", jwhy, off);
    total += dlen;
    if (total > max_event_size)
        REJECT("event is %zu bytes; the limit is %zu (ingest.max_event_size)", total,
               max_event_size);
    return 0;
}
