/* Events as DynamoDB items. The detail is transcoded from its JSON text by
 * hand rather than through jansson, because jansson turns numbers into
 * doubles and DynamoDB numbers keep up to 38 digits: the N value is the
 * number's text as the producer wrote it. Strings and object keys are
 * copied as they are escaped in the JSON text (valid in the request too);
 * only their size is computed from the decoded UTF-8.
 *
 * Sizes follow DynamoDB's documented accounting: a string is its UTF-8
 * bytes, BOOL and NULL 1 byte, a map or list 3 bytes plus 1 per element
 * plus its elements (and a map's key names), a number 1 byte of exponent
 * plus 1 per base-100 digit plus 1 when negative. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "dynamodb.h"

/* Deeper than DynamoDB's own limit (32 levels); only guards the stack. */
#define MAX_DEPTH 100

/* Appends a string literal, its length known at compile time. */
#define ADD_LIT(out, lit) evbus_aws_buf_add((out), (lit), sizeof(lit) - 1)

typedef struct conv {
    const char *p, *end;
    evbus_aws_buf *out;
    char *why;
    size_t whylen;
    int depth;
} conv;

static ddb_conv refuse(conv *c, const char *what) {
    snprintf(c->why, c->whylen, "ValidationException: the detail is not JSON DynamoDB can hold: %s",
             what);
    return DDB_CONV_REFUSED;
}

static void skip_ws(conv *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

static int hex4(const char *p, unsigned *out) {
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        int ch = (unsigned char)p[i];
        v <<= 4;
        if (ch >= '0' && ch <= '9')
            v |= (unsigned)(ch - '0');
        else if (ch >= 'a' && ch <= 'f')
            v |= (unsigned)(ch - 'a' + 10);
        else if (ch >= 'A' && ch <= 'F')
            v |= (unsigned)(ch - 'A' + 10);
        else
            return -1;
    }
    *out = v;
    return 0;
}

/* A JSON string at c->p (on its opening quote): copies it, quotes included,
 * to out and adds its decoded UTF-8 length to *size. */
static ddb_conv string(conv *c, size_t *size) {
    const char *start = c->p++;
    size_t n = 0;
    while (c->p < c->end && *c->p != '"') {
        /* Bytes JSON holds as they are count as they are, 8 at a time:
         * a string is mostly such a run. */
        size_t plain = evbus_aws_json_plain(c->p, (size_t)(c->end - c->p));
        c->p += plain;
        n += plain;
        if (c->p >= c->end || *c->p == '"')
            break;
        if ((unsigned char)*c->p < 0x20)
            return refuse(c, "a control character in a string");
        if (c->end - c->p < 2)
            return refuse(c, "a string ends inside an escape");
        if (c->p[1] != 'u') {
            if (!strchr("\"\\/bfnrt", c->p[1]))
                return refuse(c, "an unknown escape in a string");
            c->p += 2;
            n++;
            continue;
        }
        unsigned cp, lo;
        if (c->end - c->p < 6 || hex4(c->p + 2, &cp))
            return refuse(c, "a bad \\u escape in a string");
        c->p += 6;
        if (cp >= 0xD800 && cp < 0xDC00 && c->end - c->p >= 6 && c->p[0] == '\\' &&
            c->p[1] == 'u' && !hex4(c->p + 2, &lo) && lo >= 0xDC00 && lo < 0xE000) {
            c->p += 6; /* a surrogate pair: one 4-byte character */
            n += 4;
        } else {
            n += cp < 0x80 ? 1 : cp < 0x800 ? 2 : 3;
        }
    }
    if (c->p >= c->end)
        return refuse(c, "an unterminated string");
    c->p++;
    *size += n;
    return evbus_aws_buf_add(c->out, start, (size_t)(c->p - start)) ? DDB_CONV_NOMEM : DDB_CONV_OK;
}

ddb_conv ddb_number(const char *text, size_t len, size_t *size, char *why, size_t whylen) {
    const char *p = text, *end = text + len;
    bool neg = p < end && *p == '-';
    p += neg;
    /* The digits of the mantissa, the decimal point dropped: digit i has
     * the decimal exponent int_len - 1 - i + exp. */
    const char *digits = p;
    long long int_len = 0, n_digits = 0, first = -1, last = -1;
    bool point = false;
    for (; p < end && (isdigit((unsigned char)*p) || (*p == '.' && !point)); p++) {
        if (*p == '.') {
            point = true;
            continue;
        }
        if (*p != '0') {
            if (first < 0)
                first = n_digits;
            last = n_digits;
        }
        n_digits++;
        int_len += !point;
    }
    long long exp = 0;
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        bool eneg = p < end && *p == '-';
        p += p < end && (*p == '-' || *p == '+');
        if (p == end)
            n_digits = 0;
        for (; p < end && isdigit((unsigned char)*p); p++)
            if (exp < 1000000000)
                exp = exp * 10 + (*p - '0');
        exp = eneg ? -exp : exp;
    }
    if (p != end || n_digits == 0 || digits[0] == '.') {
        snprintf(why, whylen, "ValidationException: '%.*s' is not a number",
                 (int)(len > 64 ? 64 : len), text);
        return DDB_CONV_REFUSED;
    }
    if (first < 0) { /* zero, whatever its spelling */
        *size = 1;
        return DDB_CONV_OK;
    }
    long long sig = last - first + 1;
    long long e = int_len - 1 - first + exp; /* exponent of the first significant digit */
    if (sig > 38 || e < -130 || e > 125) {
        snprintf(why, whylen,
                 "ValidationException: the number %.*s%s cannot be stored in DynamoDB: %s",
                 (int)(len > 64 ? 64 : len), text, len > 64 ? "..." : "",
                 sig > 38  ? "more than 38 significant digits"
                 : e > 125 ? "larger than 9.9999999999999999999999999999999999999E+125"
                           : "smaller than 1E-130");
        return DDB_CONV_REFUSED;
    }
    /* DynamoDB stores base-100 digits aligned on even exponents: with the
     * first digit at an even exponent it takes a pair of its own. */
    long long pairs = (e % 2 != 0) ? (sig + 1) / 2 : 1 + sig / 2;
    *size = (size_t)(1 + pairs + neg);
    return DDB_CONV_OK;
}

static ddb_conv value(conv *c, size_t *size);

static ddb_conv put_n(conv *c, const char *s, size_t n) {
    return evbus_aws_buf_add(c->out, s, n) ? DDB_CONV_NOMEM : DDB_CONV_OK;
}

#define put(c, lit) put_n((c), (lit), sizeof(lit) - 1)

/* An object or an array at c->p: {"M":{...}} or {"L":[...]}. */
static ddb_conv container(conv *c, size_t *size) {
    bool map = *c->p == '{';
    char close = map ? '}' : ']';
    ddb_conv rc;
    if (++c->depth > MAX_DEPTH)
        return refuse(c, "nested too deep");
    c->p++;
    if ((rc = map ? put(c, "{\"M\":{") : put(c, "{\"L\":[")))
        return rc;
    size_t total = 3;
    skip_ws(c);
    for (size_t k = 0; c->p < c->end && *c->p != close; k++) {
        if (k) {
            if (*c->p != ',')
                return refuse(c, "a missing comma");
            c->p++;
            skip_ws(c);
        }
        if (k && (rc = put(c, ",")))
            return rc;
        if (map) {
            if (c->p >= c->end || *c->p != '"')
                return refuse(c, "an object key that is not a string");
            if ((rc = string(c, &total)))
                return rc;
            skip_ws(c);
            if (c->p >= c->end || *c->p != ':')
                return refuse(c, "a missing colon");
            c->p++;
            if ((rc = put(c, ":")))
                return rc;
        }
        total += 1; /* per element */
        if ((rc = value(c, &total)))
            return rc;
        skip_ws(c);
    }
    if (c->p >= c->end)
        return refuse(c, "an unterminated object or array");
    c->p++;
    c->depth--;
    *size += total;
    return map ? put(c, "}}") : put(c, "]}");
}

static ddb_conv literal_n(conv *c, const char *word, size_t n, const char *av, size_t avn,
                          size_t *size) {
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n) != 0)
        return refuse(c, "an unknown literal");
    c->p += n;
    *size += 1;
    return put_n(c, av, avn);
}

#define literal(c, word, av, size)                                                                 \
    literal_n((c), (word), sizeof(word) - 1, (av), sizeof(av) - 1, (size))

static ddb_conv value(conv *c, size_t *size) {
    skip_ws(c);
    if (c->p >= c->end)
        return refuse(c, "a missing value");
    ddb_conv rc;
    switch (*c->p) {
    case '{':
    case '[': return container(c, size);
    case '"':
        if ((rc = put(c, "{\"S\":")) || (rc = string(c, size)))
            return rc;
        return put(c, "}");
    case 't': return literal(c, "true", "{\"BOOL\":true}", size);
    case 'f': return literal(c, "false", "{\"BOOL\":false}", size);
    case 'n': return literal(c, "null", "{\"NULL\":true}", size);
    default: break;
    }
    const char *start = c->p;
    while (c->p < c->end && ((*c->p >= '0' && *c->p <= '9') || *c->p == '-' || *c->p == '+' ||
                             *c->p == '.' || *c->p == 'e' || *c->p == 'E'))
        c->p++;
    size_t n = 0;
    if (c->p == start)
        return refuse(c, "an unexpected character");
    if ((rc = ddb_number(start, (size_t)(c->p - start), &n, c->why, c->whylen)))
        return rc;
    *size += n;
    if (ADD_LIT(c->out, "{\"N\":\"") || evbus_aws_buf_add(c->out, start, (size_t)(c->p - start)))
        return DDB_CONV_NOMEM;
    return put(c, "\"}");
}

ddb_conv ddb_json_to_av(const char *json, size_t len, evbus_aws_buf *out, size_t *size, char *why,
                        size_t whylen) {
    conv c = {.p = json, .end = json + len, .out = out, .why = why, .whylen = whylen};
    ddb_conv rc = value(&c, size);
    if (rc)
        return rc;
    skip_ws(&c);
    return c.p == c.end ? DDB_CONV_OK : refuse(&c, "text after the value");
}

/* ---- the item ---- */

/* Seconds since the epoch of an RFC 3339 time ("2024-05-01T12:00:00.5+02:00"),
 * or -1. */
static long long rfc3339(const char *s) {
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2d%*1[Tt ]%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
               &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n == 0)
        return -1;
    s += n;
    if (*s == '.')
        for (s++; isdigit((unsigned char)*s); s++)
            ;
    long off = 0;
    int oh, om;
    if (*s == 'Z' || *s == 'z')
        s++;
    else if ((*s == '+' || *s == '-') && sscanf(s + 1, "%2d:%2d", &oh, &om) == 2) {
        off = (*s == '-' ? -1 : 1) * (oh * 3600L + om * 60L);
        s += 6;
    } else
        return -1;
    if (*s)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    return t == (time_t)-1 ? -1 : (long long)t - off;
}

/* A top-level string attribute: ,"NAME":{"S":"VALUE"}. `name` is one of
 * the item's own names, plain in JSON: it goes in as it is, with the
 * syntax around it, in one piece. */
static int attr_s_n(evbus_aws_buf *out, const char *lead, size_t lead_len, size_t name_len,
                    const char *v, size_t *size) {
    size_t vl = strlen(v);
    *size += name_len + vl;
    return evbus_aws_buf_add(out, lead, lead_len) || evbus_aws_buf_json_str(out, v, vl) ||
           ADD_LIT(out, "}");
}

#define attr_s(out, name, v, size)                                                                 \
    attr_s_n((out), ",\"" name "\":{\"S\":", sizeof(",\"" name "\":{\"S\":") - 1,                  \
             sizeof(name) - 1, (v), (size))

/* Where the envelope carries the account: its fixed shape puts the
 * envelope's own "account" before "detail", and a quote inside a string
 * is escaped, so the first `,"account":"` is the envelope's. evbus events
 * carry an empty account today. */
static int account(const evbus_sink_event *e, char *out, size_t len) {
    static const char detail[] = ",\"detail\":";
    const char *a = strstr(e->envelope_json, ",\"account\":\"");
    /* The detail's key before it would make it the detail's (the two keys
     * cannot overlap: neither has a comma after its first byte). */
    if (!a || memmem(e->envelope_json, (size_t)(a - e->envelope_json), detail, sizeof detail - 1))
        return 0;
    a += strlen(",\"account\":\"");
    size_t n = strcspn(a, "\"\\");
    if (a[n] != '"' || n >= len)
        return 0;
    memcpy(out, a, n);
    out[n] = '\0';
    return n > 0;
}

ddb_conv ddb_item(const ddb_opts *o, const evbus_sink_event *e, evbus_aws_buf *out, size_t *size,
                  char *why, size_t whylen) {
    size_t id_len = strlen(e->id);
    if (id_len > DDB_MAX_KEY_BYTES) {
        snprintf(why, whylen,
                 "ValidationException: the event id is %zu bytes; a DynamoDB partition key takes "
                 "at most %d",
                 id_len, DDB_MAX_KEY_BYTES);
        return DDB_CONV_REFUSED;
    }
    size_t sz = strlen(o->key) + id_len;
    size_t detail_len = strlen(e->detail), key_len = strlen(o->key);
    /* Room for the item at once: the detail grows by its attribute-value
     * syntax (the guess is generous; the buffer grows if it is not). */
    int bad = evbus_aws_buf_reserve(out, 3 * detail_len + strlen(e->envelope_json) + 2 * key_len +
                                             id_len + 256) ||
              ADD_LIT(out, "{") || evbus_aws_buf_json_str(out, o->key, key_len) ||
              ADD_LIT(out, ":{\"S\":") || evbus_aws_buf_json_str(out, e->id, id_len) ||
              ADD_LIT(out, "}") || attr_s(out, "source", e->source, &sz) ||
              attr_s(out, "detail-type", e->detail_type, &sz) ||
              attr_s(out, "time", e->time, &sz) || attr_s(out, "region", e->origin_region, &sz);
    char acct[64];
    if (!bad && account(e, acct, sizeof acct))
        bad = attr_s(out, "account", acct, &sz);
    size_t list = 3;
    bad = bad || ADD_LIT(out, ",\"resources\":{\"L\":[");
    for (size_t i = 0; i < e->n_resources && !bad; i++) {
        size_t rl = strlen(e->resources[i]);
        list += 1 + rl;
        bad = (i ? ADD_LIT(out, ",{\"S\":") : ADD_LIT(out, "{\"S\":")) ||
              evbus_aws_buf_json_str(out, e->resources[i], rl) || ADD_LIT(out, "}");
    }
    sz += strlen("resources") + list;
    if (bad || ADD_LIT(out, "]},\"detail\":"))
        return DDB_CONV_NOMEM;
    sz += strlen("detail");
    ddb_conv rc = ddb_json_to_av(e->detail, detail_len, out, &sz, why, whylen);
    if (rc)
        return rc;
    if (o->ttl_attribute) {
        long long t = rfc3339(e->time);
        if (t < 0)
            t = (long long)time(NULL);
        char n[32];
        snprintf(n, sizeof n, "%lld", t + (long long)(o->ttl_ms / 1000));
        size_t nsize = 0;
        ddb_number(n, strlen(n), &nsize, why, whylen);
        sz += strlen(o->ttl_attribute) + nsize;
        if (evbus_aws_buf_puts(out, ",") ||
            evbus_aws_buf_json_str(out, o->ttl_attribute, strlen(o->ttl_attribute)) ||
            evbus_aws_buf_puts(out, ":{\"N\":\"") || evbus_aws_buf_puts(out, n) ||
            evbus_aws_buf_puts(out, "\"}"))
            return DDB_CONV_NOMEM;
    }
    if (evbus_aws_buf_puts(out, "}"))
        return DDB_CONV_NOMEM;
    if (sz > DDB_MAX_ITEM_SIZE) {
        snprintf(why, whylen,
                 "ValidationException: Item size has exceeded the maximum allowed size: the "
                 "item is %zu bytes as DynamoDB counts them (attribute names and values); "
                 "DynamoDB takes at most %d (400 KB)",
                 sz, DDB_MAX_ITEM_SIZE);
        return DDB_CONV_REFUSED;
    }
    *size = sz;
    return DDB_CONV_OK;
}
