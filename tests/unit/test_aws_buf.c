/* The AWS plugins' JSON string writer (plugins/aws/buf.c): every byte that
 * JSON does not take as it is gets escaped, wherever it falls in the 8-byte
 * words the writer checks at once, and nothing else changes. */
#include <criterion/criterion.h>
#include <stdio.h>
#include <string.h>

#include "aws.h"

/* The escaping, one byte at a time. */
static void reference(char *out, const unsigned char *s, size_t n) {
    char *o = out;
    *o++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = s[i];
        if (c == '"' || c == '\\')
            o += sprintf(o, "\\%c", c);
        else if (c == '\n')
            o += sprintf(o, "\\n");
        else if (c == '\r')
            o += sprintf(o, "\\r");
        else if (c == '\t')
            o += sprintf(o, "\\t");
        else if (c < 0x20)
            o += sprintf(o, "\\u%04x", c);
        else
            *o++ = (char)c;
    }
    *o++ = '"';
    *o = '\0';
}

static void check(const unsigned char *s, size_t n) {
    char want[6 * 64 + 3];
    reference(want, s, n);
    evbus_aws_buf b = {0};
    cr_assert_eq(evbus_aws_buf_add(&b, "x", 1), 0);
    cr_assert_eq(evbus_aws_buf_json_str(&b, (const char *)s, n), 0);
    cr_assert_eq(b.len, 1 + strlen(want));
    cr_assert_str_eq(b.data + 1, want, "a string of %zu bytes", n);
    evbus_aws_buf_free(&b);
}

TestSuite(aws_buf, .timeout = 60);

Test(aws_buf, each_byte_to_escape_at_each_place_of_a_word) {
    /* Bytes that need escaping, and neighbours of the boundaries the
     * word-at-a-time check tests (0x1f/0x20, around '"' and '\\', above 0x7f). */
    const unsigned char special[] = {0x00, 0x01, 0x08, '\t', '\n', '\r', 0x1f, '"', '\\'};
    const unsigned char plain[] = {0x20, '!', '#', '[', ']', 'a', 0x7f, 0x80, 0xa2, 0xdc, 0xff};
    unsigned char s[64] = {0};
    for (size_t n = 0; n <= 40; n++) {
        for (size_t at = 0; at < n; at++) {
            for (size_t k = 0; k < sizeof special; k++) {
                for (size_t i = 0; i < n; i++)
                    s[i] = plain[(i + k) % sizeof plain];
                s[at] = special[k];
                check(s, n);
                /* and a second one further on, as in "a\"b\"c" */
                if (at + 3 < n) {
                    s[at + 3] = special[(k + 1) % sizeof special];
                    check(s, n);
                }
            }
        }
        for (size_t i = 0; i < n; i++)
            s[i] = plain[i % sizeof plain];
        check(s, n);
    }
}

Test(aws_buf, an_envelope_comes_out_as_a_json_string) {
    const char *env = "{\"version\":\"0\",\"id\":\"e-1\",\"detail-type\":\"T\",\"source\":\"a\","
                      "\"detail\":{\"path\":\"C:\\\\x\",\"note\":\"tab\\there\"}}";
    check((const unsigned char *)env, strlen(env));
}

/* The writer reserves room for a few escapes only and asks for more as it
 * goes: a string that is all escapes (6 bytes out per byte in), of lengths
 * around the 8- and 16-byte steps, comes out whole. */
Test(aws_buf, a_string_of_nothing_but_escapes_grows_the_buffer) {
    static unsigned char s[2000];
    static char want[6 * sizeof s + 3];
    for (size_t i = 0; i < sizeof s; i++)
        s[i] = i % 3 == 0 ? 0x01 : i % 3 == 1 ? '"' : 0x1f;
    const size_t lens[] = {15, 16, 17, 31, 33, 100, 999, sizeof s};
    for (size_t k = 0; k < sizeof lens / sizeof lens[0]; k++) {
        reference(want, s, lens[k]);
        evbus_aws_buf b = {0};
        cr_assert_eq(evbus_aws_buf_json_str(&b, (const char *)s, lens[k]), 0);
        cr_assert_eq(b.len, strlen(want), "%zu bytes", lens[k]);
        cr_assert_str_eq(b.data, want, "%zu bytes", lens[k]);
        cr_assert_lt(b.len, b.cap, "the NUL is within the buffer");
        evbus_aws_buf_free(&b);
    }
}

Test(aws_buf, plain_runs_end_at_the_first_byte_to_escape) {
    char s[64];
    for (size_t at = 0; at < 40; at++) {
        memset(s, 'a', sizeof s);
        s[at] = (at % 2) ? '"' : 0x0a;
        cr_assert_eq(evbus_aws_json_plain(s, 40), at);
        cr_assert_eq(evbus_aws_json_plain(s, at), at, "all plain within n");
    }
    cr_assert_eq(evbus_aws_json_plain("\xc3\xa9\xe2\x82\xac ok", 8), 8, "UTF-8 is plain");
}
