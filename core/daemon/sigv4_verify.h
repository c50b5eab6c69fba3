/* Checking AWS Signature Version 4 (AWS4-HMAC-SHA256, Authorization header)
 * on a request evbusd received, as the AWS General Reference specifies it:
 * the canonical request (method, URI, query, the signed headers with their
 * values trimmed and inner spaces squeezed, the list of signed headers, the
 * SHA-256 of the body), the string to sign (algorithm, X-Amz-Date, credential
 * scope DATE/REGION/SERVICE/aws4_request, hash of the canonical request), and
 * the key derived by the HMAC chain from "AWS4" + secret. Pure: no I/O, no
 * threads, no logging. */
#ifndef EVBUS_SIGV4_VERIFY_H
#define EVBUS_SIGV4_VERIFY_H

#include <stddef.h>
#include <stdint.h>

/* Largest clock difference accepted between the request's X-Amz-Date and
 * now, either way (what AWS services allow). */
#define EVBUS__SIGV4_SKEW_S 300

typedef struct evbus__sigv4_header {
    const char *name, *value; /* as received; names in any case, may repeat */
} evbus__sigv4_header;

typedef struct evbus__sigv4_request {
    const char *method;          /* "POST" */
    const char *canonical_uri;   /* "/" */
    const char *canonical_query; /* "" for none */
    const evbus__sigv4_header *headers;
    size_t n_headers;
    const void *body;
    size_t body_len;
} evbus__sigv4_request;

typedef enum evbus__sigv4_result {
    EVBUS__SIGV4_OK = 0,
    EVBUS__SIGV4_MISSING = 1,     /* no Authorization header */
    EVBUS__SIGV4_INCOMPLETE = 2,  /* malformed Authorization or missing X-Amz-Date */
    EVBUS__SIGV4_UNKNOWN_KEY = 3, /* the access key id is not known */
    EVBUS__SIGV4_MISMATCH = 4,    /* the signature is not the one the secret makes */
    EVBUS__SIGV4_EXPIRED = 5,     /* X-Amz-Date more than EVBUS__SIGV4_SKEW_S from now */
} evbus__sigv4_result;

/* Finds the secret of an access key id (len bytes, not NUL-terminated).
 * Returns it, or NULL when the key is unknown; *who receives the caller's
 * handle of the key. */
typedef const char *(*evbus__sigv4_lookup)(void *arg, const char *key_id, size_t len,
                                           const void **who);

/* Verifies r's signature for `service` at time now_s (Unix seconds). On
 * EVBUS__SIGV4_OK *who is the lookup's handle of the key that signed and
 * *region the scope's region, copied into region (regionlen bytes).
 * Otherwise why says what is wrong, in words for the producer (never a
 * secret, never the expected signature). */
evbus__sigv4_result evbus__sigv4_verify(const evbus__sigv4_request *r, const char *service,
                                        int64_t now_s, evbus__sigv4_lookup lookup, void *arg,
                                        const void **who, char *region, size_t regionlen, char *why,
                                        size_t whylen);

#endif
