/* Strict, allocation-free JSON validation for event details. */
#ifndef EVBUS_JSON_CHECK_H
#define EVBUS_JSON_CHECK_H

#include <stddef.h>

/* Deepest nesting of objects and arrays accepted in a detail. */
#define EVBUS_JSON_MAX_DEPTH 128

/* Checks that s[0..len) is one JSON object (RFC 8259, UTF-8, optional
 * surrounding white space) nested at most EVBUS_JSON_MAX_DEPTH deep.
 * Returns 0 when it is. Otherwise returns -1, sets *why to a static
 * description and *offset to the byte offset where reading stopped. */
int evbus__json_check_object(const char *s, size_t len, const char **why, size_t *offset);

/* Returns 1 when s[0..len) is well-formed UTF-8 (no overlong forms, no
 * surrogates, nothing above U+10FFFF), 0 otherwise. */
int evbus__utf8_valid(const char *s, size_t len);

#endif
