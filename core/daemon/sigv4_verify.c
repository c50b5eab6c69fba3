#include "sigv4_verify.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/sha.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define ALGORITHM "AWS4-HMAC-SHA256"
/* Signed headers beyond this are refused (real signers sign a handful). */
#define MAX_SIGNED 32
/* Longest canonical request built; the headers of a request evbusd reads
 * are far smaller (libmicrohttpd bounds them). */
#define CANON_MAX (64 * 1024)
/* Longest secret access key (http_keys.h). */
#define EVBUS__SIGV4_SECRET_MAX 128

typedef struct span {
    const char *p;
    size_t n;
} span;

typedef struct auth_parts {
    span key_id, date, region, service, terminator;
    span signed_headers;
    span signature;
} auth_parts;

static void hex(const unsigned char *in, size_t n, char *out) {
    static const char digits[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = digits[in[i] >> 4];
        out[2 * i + 1] = digits[in[i] & 15];
    }
    out[2 * n] = '\0';
}

static void sha256_hex(const void *data, size_t n, char out[65]) {
    unsigned char md[SHA256_DIGEST_LENGTH];
    SHA256(data, n, md);
    hex(md, sizeof md, out);
}

static void hmac(const void *key, size_t keylen, const void *data, size_t n,
                 unsigned char out[32]) {
    unsigned int len = 32;
    HMAC(EVP_sha256(), key, (int)keylen, data, n, out, &len);
}

static bool span_eq(span s, const char *lit) {
    return s.n == strlen(lit) && memcmp(s.p, lit, s.n) == 0;
}

/* Splits s at the first `c`: the part before goes to *head, s moves past it.
 * Returns false when there is no `c`. */
static bool cut(span *s, char c, span *head) {
    const char *at = memchr(s->p, c, s->n);
    if (!at)
        return false;
    head->p = s->p;
    head->n = (size_t)(at - s->p);
    s->n -= head->n + 1;
    s->p = at + 1;
    return true;
}

static span trim(span s) {
    while (s.n && (*s.p == ' ' || *s.p == '\t'))
        s.p++, s.n--;
    while (s.n && (s.p[s.n - 1] == ' ' || s.p[s.n - 1] == '\t'))
        s.n--;
    return s;
}

/* "AWS4-HMAC-SHA256 Credential=ID/DATE/REGION/SERVICE/aws4_request,
 * SignedHeaders=a;b, Signature=HEX" (the three in any order). */
static const char *parse_authorization(const char *value, auth_parts *a) {
    size_t alen = strlen(ALGORITHM);
    if (strncmp(value, ALGORITHM, alen) != 0 || (value[alen] != ' ' && value[alen] != '\t'))
        return "the Authorization header must start with " ALGORITHM;
    memset(a, 0, sizeof *a);
    span rest = {value + alen, strlen(value) - alen};
    bool have_cred = false;
    while (rest.n) {
        span part;
        if (!cut(&rest, ',', &part)) {
            part = rest;
            rest.n = 0;
        }
        part = trim(part);
        span name;
        if (!cut(&part, '=', &name))
            return "the Authorization header has a part without '=' (expected Credential=, "
                   "SignedHeaders= and Signature=)";
        if (span_eq(name, "Credential")) {
            span c = part;
            if (!cut(&c, '/', &a->key_id) || !cut(&c, '/', &a->date) || !cut(&c, '/', &a->region) ||
                !cut(&c, '/', &a->service))
                return "Credential must be ACCESS-KEY-ID/DATE/REGION/SERVICE/aws4_request";
            a->terminator = c;
            have_cred = true;
        } else if (span_eq(name, "SignedHeaders")) {
            a->signed_headers = part;
        } else if (span_eq(name, "Signature")) {
            a->signature = part;
        }
    }
    if (!have_cred || !a->signed_headers.n || !a->signature.n)
        return "the Authorization header needs Credential=, SignedHeaders= and Signature=";
    if (!span_eq(a->terminator, "aws4_request"))
        return "the credential scope must end in aws4_request";
    if (a->date.n != 8 || a->key_id.n == 0 || a->region.n == 0)
        return "Credential must be ACCESS-KEY-ID/YYYYMMDD/REGION/SERVICE/aws4_request";
    if (a->signature.n != 64)
        return "Signature must be 64 hexadecimal digits";
    return NULL;
}

/* YYYYMMDDTHHMMSSZ into Unix seconds; -1 when malformed. */
static int64_t parse_amz_date(const char *s) {
    if (strlen(s) != 16 || s[8] != 'T' || s[15] != 'Z')
        return -1;
    for (int i = 0; i < 15; i++)
        if (i != 8 && (s[i] < '0' || s[i] > '9'))
            return -1;
    struct tm tm = {0};
    tm.tm_year = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0') - 1900;
    tm.tm_mon = (s[4] - '0') * 10 + (s[5] - '0') - 1;
    tm.tm_mday = (s[6] - '0') * 10 + (s[7] - '0');
    tm.tm_hour = (s[9] - '0') * 10 + (s[10] - '0');
    tm.tm_min = (s[11] - '0') * 10 + (s[12] - '0');
    tm.tm_sec = (s[13] - '0') * 10 + (s[14] - '0');
    if (tm.tm_mon > 11 || tm.tm_mday < 1 || tm.tm_mday > 31 || tm.tm_hour > 23 || tm.tm_min > 59 ||
        tm.tm_sec > 60)
        return -1;
    return (int64_t)timegm(&tm);
}

static const char *header(const evbus__sigv4_request *r, const char *name) {
    for (size_t i = 0; i < r->n_headers; i++)
        if (strcasecmp(r->headers[i].name, name) == 0)
            return r->headers[i].value;
    return NULL;
}

typedef struct buf {
    char *p;
    size_t n, cap;
    bool overflow;
} buf;

static void put(buf *b, const char *s, size_t n) {
    if (b->n + n >= b->cap) {
        b->overflow = true;
        return;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

/* A header's value as signed: trimmed, runs of spaces squeezed to one. */
static void put_value(buf *b, const char *v) {
    span s = trim((span){v, strlen(v)});
    bool space = false;
    for (size_t i = 0; i < s.n; i++) {
        char c = s.p[i] == '\t' ? ' ' : s.p[i];
        if (c == ' ' && space)
            continue;
        space = c == ' ';
        put(b, &c, 1);
    }
}

/* Appends "name:v1,v2\n" for one signed header name; false when the request
 * has no such header. */
static bool put_header(buf *b, const evbus__sigv4_request *r, span name) {
    bool found = false;
    for (size_t i = 0; i < r->n_headers; i++) {
        const char *hn = r->headers[i].name;
        if (strlen(hn) != name.n || strncasecmp(hn, name.p, name.n) != 0)
            continue;
        if (!found) {
            put(b, name.p, name.n);
            put(b, ":", 1);
        } else {
            put(b, ",", 1);
        }
        put_value(b, r->headers[i].value);
        found = true;
    }
    if (found)
        put(b, "\n", 1);
    return found;
}

#define FAIL(code, ...)                                                                            \
    do {                                                                                           \
        snprintf(why, whylen, __VA_ARGS__);                                                        \
        rc = code;                                                                                 \
        goto out;                                                                                  \
    } while (0)

evbus__sigv4_result evbus__sigv4_verify(const evbus__sigv4_request *r, const char *service,
                                        int64_t now_s, evbus__sigv4_lookup lookup, void *arg,
                                        const void **who, char *region, size_t regionlen, char *why,
                                        size_t whylen) {
    evbus__sigv4_result rc = EVBUS__SIGV4_OK;
    buf canon = {.cap = CANON_MAX};
    const char *auth = header(r, "authorization");
    if (!auth)
        FAIL(EVBUS__SIGV4_MISSING, "Missing Authentication Token: requests must be signed with "
                                   "AWS Signature Version 4");
    auth_parts a;
    const char *bad = parse_authorization(auth, &a);
    if (bad)
        FAIL(EVBUS__SIGV4_INCOMPLETE, "%s", bad);
    const char *amz_date = header(r, "x-amz-date");
    if (!amz_date)
        FAIL(EVBUS__SIGV4_INCOMPLETE, "the request has no X-Amz-Date header");
    int64_t t = parse_amz_date(amz_date);
    if (t < 0)
        FAIL(EVBUS__SIGV4_INCOMPLETE, "X-Amz-Date must be YYYYMMDDTHHMMSSZ");
    if (memcmp(amz_date, a.date.p, 8) != 0)
        FAIL(EVBUS__SIGV4_INCOMPLETE,
             "the credential scope's date is not the date of X-Amz-Date (%.8s)", amz_date);
    if (!span_eq(a.service, service))
        FAIL(EVBUS__SIGV4_INCOMPLETE, "the credential scope names service '%.*s'; expected '%s'",
             (int)(a.service.n > 64 ? 64 : a.service.n), a.service.p, service);
    const char *secret = lookup(arg, a.key_id.p, a.key_id.n, who);
    if (!secret)
        FAIL(EVBUS__SIGV4_UNKNOWN_KEY, "The security token included in the request is invalid.");
    /* Checked after the key, as AWS does: a stranger learns nothing of the
     * clock from a wrong key. */
    if (t < now_s - EVBUS__SIGV4_SKEW_S)
        FAIL(EVBUS__SIGV4_EXPIRED,
             "Signature expired: %s is now earlier than the %d seconds allowed before evbusd's "
             "clock",
             amz_date, EVBUS__SIGV4_SKEW_S);
    if (t > now_s + EVBUS__SIGV4_SKEW_S)
        FAIL(EVBUS__SIGV4_EXPIRED,
             "Signature not yet current: %s is later than the %d seconds allowed after evbusd's "
             "clock",
             amz_date, EVBUS__SIGV4_SKEW_S);
    /* The canonical request. */
    canon.p = malloc(canon.cap);
    if (!canon.p)
        FAIL(EVBUS__SIGV4_MISMATCH, "out of memory checking the signature");
    put(&canon, r->method, strlen(r->method));
    put(&canon, "\n", 1);
    put(&canon, r->canonical_uri, strlen(r->canonical_uri));
    put(&canon, "\n", 1);
    put(&canon, r->canonical_query, strlen(r->canonical_query));
    put(&canon, "\n", 1);
    span list = a.signed_headers, name;
    bool signed_host = false, signed_date = false;
    int count = 0;
    while (list.n) {
        if (!cut(&list, ';', &name)) {
            name = list;
            list.n = 0;
        }
        if (++count > MAX_SIGNED)
            FAIL(EVBUS__SIGV4_INCOMPLETE, "more than %d signed headers", MAX_SIGNED);
        for (size_t i = 0; i < name.n; i++)
            if (name.p[i] >= 'A' && name.p[i] <= 'Z')
                FAIL(EVBUS__SIGV4_INCOMPLETE, "SignedHeaders must be in lower case");
        signed_host |= span_eq(name, "host");
        signed_date |= span_eq(name, "x-amz-date");
        if (!put_header(&canon, r, name))
            FAIL(EVBUS__SIGV4_INCOMPLETE, "signed header '%.*s' is not in the request",
                 (int)(name.n > 64 ? 64 : name.n), name.p);
    }
    if (!signed_host || !signed_date)
        FAIL(EVBUS__SIGV4_INCOMPLETE, "SignedHeaders must include host and x-amz-date");
    put(&canon, "\n", 1);
    put(&canon, a.signed_headers.p, a.signed_headers.n);
    put(&canon, "\n", 1);
    char body_hash[65];
    sha256_hex(r->body, r->body_len, body_hash);
    /* A payload hash sent along must be the body's: otherwise the body was
     * changed after signing. */
    const char *sent_hash = header(r, "x-amz-content-sha256");
    if (sent_hash && strcmp(sent_hash, body_hash) != 0)
        FAIL(EVBUS__SIGV4_MISMATCH, "X-Amz-Content-Sha256 is not the SHA-256 of the body");
    put(&canon, body_hash, 64);
    if (canon.overflow)
        FAIL(EVBUS__SIGV4_INCOMPLETE, "the signed headers are too long");
    char canon_hash[65];
    sha256_hex(canon.p, canon.n, canon_hash);
    /* The string to sign. */
    char sts[512];
    int sn = snprintf(sts, sizeof sts, ALGORITHM "\n%s\n%.8s/%.*s/%s/aws4_request\n%s", amz_date,
                      a.date.p, (int)a.region.n, a.region.p, service, canon_hash);
    if (sn < 0 || (size_t)sn >= sizeof sts)
        FAIL(EVBUS__SIGV4_INCOMPLETE, "the credential scope is too long");
    /* The signing key: HMAC chain from "AWS4" + secret. */
    char first[EVBUS__SIGV4_SECRET_MAX + 5];
    size_t slen = strlen(secret);
    if (slen > EVBUS__SIGV4_SECRET_MAX)
        FAIL(EVBUS__SIGV4_MISMATCH, "the secret is too long");
    memcpy(first, "AWS4", 4);
    memcpy(first + 4, secret, slen);
    unsigned char k[32], sig[32];
    hmac(first, slen + 4, a.date.p, 8, k);
    explicit_bzero(first, sizeof first);
    hmac(k, 32, a.region.p, a.region.n, k);
    hmac(k, 32, service, strlen(service), k);
    hmac(k, 32, "aws4_request", 12, k);
    hmac(k, 32, sts, (size_t)sn, sig);
    explicit_bzero(k, sizeof k);
    char sig_hex[65];
    hex(sig, 32, sig_hex);
    char sent[65];
    for (size_t i = 0; i < 64; i++) {
        char c = a.signature.p[i];
        sent[i] = c >= 'A' && c <= 'F' ? (char)(c - 'A' + 'a') : c;
    }
    sent[64] = '\0';
    if (CRYPTO_memcmp(sig_hex, sent, 64) != 0)
        FAIL(EVBUS__SIGV4_MISMATCH,
             "The request signature we calculated does not match the signature you provided. "
             "Check your AWS Secret Access Key and signing method.");
    snprintf(region, regionlen, "%.*s", (int)a.region.n, a.region.p);
out:
    free(canon.p);
    return rc;
}
