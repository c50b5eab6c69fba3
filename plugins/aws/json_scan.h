/*
 * A JSON scanner for the answers the AWS sinks read on every call: it walks
 * the text in place and builds nothing, so that the common answer (every
 * entry accepted) costs a pass over its bytes rather than a jansson tree.
 * The readers take only answers they understand whole this way and hand
 * anything else to jansson, which has the last word.
 *
 * Strings are checked for an end and for raw control characters, not for
 * valid escapes or UTF-8; numbers and literals only for their characters
 * (jansson re-reads whatever a reader does not take whole).
 */
#ifndef EVBUS_AWS_JSON_SCAN_H
#define EVBUS_AWS_JSON_SCAN_H

#include <stdbool.h>
#include <stddef.h>

/* Where the scan is: p moves toward end. No ownership: the text is the
 * caller's. */
typedef struct evbus_aws_scan {
    const char *p, *end;
} evbus_aws_scan;

/* Skips white space, then takes c if it is next. False (nothing taken but
 * white space) otherwise. */
bool evbus_aws_scan_eat(evbus_aws_scan *s, char c);

/* Takes a string: its raw text (between the quotes, escapes as written)
 * into *str / *len, and *escaped when it holds a backslash (its text is
 * then not its value). False at anything else, or an unterminated string. */
bool evbus_aws_scan_string(evbus_aws_scan *s, const char **str, size_t *len, bool *escaped);

/* Skips one value of any kind, nested at most 32 deep from `depth`. */
bool evbus_aws_scan_skip(evbus_aws_scan *s, int depth);

/* True when only white space is left. */
bool evbus_aws_scan_done(evbus_aws_scan *s);

/* True when the raw text k (kl bytes, unescaped) is the C string want. */
bool evbus_aws_scan_is(const char *k, size_t kl, const char *want);

#endif
