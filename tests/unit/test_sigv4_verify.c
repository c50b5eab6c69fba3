/* SigV4 verification against the published AWS Signature Version 4 test
 * suite's requests (get-vanilla, post-vanilla: the credentials AKIDEXAMPLE /
 * wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY, 20150830T123600Z, us-east-1,
 * service "service"), and what must fail: another secret, an unknown key,
 * a changed header or body, a clock more than 5 minutes off. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "sigv4_verify.h"

TestSuite(sigv4_verify, .timeout = 30);

#define DATE_S 1440938160 /* 2015-08-30T12:36:00Z */

static const char *secret_of(void *arg, const char *key_id, size_t len, const void **who) {
    *who = arg;
    if (len == 11 && memcmp(key_id, "AKIDEXAMPLE", 11) == 0)
        return arg;
    return NULL;
}

static evbus__sigv4_result verify(const char *method, const char *sig, const char *secret,
                                  const char *host, const char *body, int64_t now, char *why) {
    char auth[512];
    snprintf(auth, sizeof auth,
             "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, "
             "SignedHeaders=host;x-amz-date, Signature=%s",
             sig);
    evbus__sigv4_header hs[] = {
        {"Host", host}, {"X-Amz-Date", "20150830T123600Z"}, {"Authorization", auth}};
    evbus__sigv4_request r = {.method = method,
                              .canonical_uri = "/",
                              .canonical_query = "",
                              .headers = hs,
                              .n_headers = 3,
                              .body = body,
                              .body_len = strlen(body)};
    const void *who;
    char region[64];
    return evbus__sigv4_verify(&r, "service", now, secret_of, (void *)secret, &who, region,
                               sizeof region, why, 256);
}

#define SECRET   "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define GET_SIG  "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"
#define POST_SIG "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"

Test(sigv4_verify, the_aws_test_suite_requests_verify) {
    char why[256] = "";
    cr_assert_eq(verify("GET", GET_SIG, SECRET, "example.amazonaws.com", "", DATE_S, why),
                 EVBUS__SIGV4_OK, "%s", why);
    cr_assert_eq(verify("POST", POST_SIG, SECRET, "example.amazonaws.com", "", DATE_S, why),
                 EVBUS__SIGV4_OK, "%s", why);
    /* Within the 5 minutes either way. */
    cr_assert_eq(verify("GET", GET_SIG, SECRET, "example.amazonaws.com", "", DATE_S + 299, why),
                 EVBUS__SIGV4_OK, "%s", why);
    cr_assert_eq(verify("GET", GET_SIG, SECRET, "example.amazonaws.com", "", DATE_S - 299, why),
                 EVBUS__SIGV4_OK, "%s", why);
}

Test(sigv4_verify, anything_changed_fails) {
    char why[256];
    cr_assert_eq(verify("GET", GET_SIG, "another-secret", "example.amazonaws.com", "", DATE_S, why),
                 EVBUS__SIGV4_MISMATCH);
    cr_assert(strstr(why, "does not match"), "%s", why);
    cr_assert_eq(verify("GET", GET_SIG, SECRET, "example.amazonaws.com:1", "", DATE_S, why),
                 EVBUS__SIGV4_MISMATCH, "a changed signed header");
    cr_assert_eq(verify("GET", GET_SIG, SECRET, "example.amazonaws.com", "x", DATE_S, why),
                 EVBUS__SIGV4_MISMATCH, "a changed body");
    cr_assert_eq(verify("POST", GET_SIG, SECRET, "example.amazonaws.com", "", DATE_S, why),
                 EVBUS__SIGV4_MISMATCH, "another method");
    cr_assert_eq(verify("GET", GET_SIG, SECRET, "example.amazonaws.com", "", DATE_S + 301, why),
                 EVBUS__SIGV4_EXPIRED);
    cr_assert(strstr(why, "Signature expired"), "%s", why);
    cr_assert_eq(verify("GET", GET_SIG, SECRET, "example.amazonaws.com", "", DATE_S - 301, why),
                 EVBUS__SIGV4_EXPIRED);
    cr_assert_eq(verify("GET", GET_SIG, NULL, "example.amazonaws.com", "", DATE_S, why),
                 EVBUS__SIGV4_UNKNOWN_KEY);
    cr_assert_eq(verify("GET", "00", SECRET, "example.amazonaws.com", "", DATE_S, why),
                 EVBUS__SIGV4_INCOMPLETE, "a signature of the wrong length");
}
