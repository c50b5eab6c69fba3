/* Authorized-keys files: who may connect with CURVE.
 *
 * One principal per line:
 *
 *   NAME Z85-PUBLIC-KEY [SOURCE-OR-PREFIX* ...]
 *
 * NAME is 1..64 of [A-Za-z0-9._-] and names the principal in logs, status and
 * metrics; the key is the 40 Z85 characters of its PATH.pub; the optional
 * words limit a producer to event sources, each an exact source or, ending in
 * '*', a prefix (as EventBridge resource policies limit events:source). No
 * word: any source. '#' starts a comment line; blank lines are ignored.
 * Names and keys are unique in a file.
 *
 * The operators' key list (control.curve.operator_keys) has the same format
 * without source words. Pure parsing: no sockets, no threads. */
#ifndef EVBUS_AUTH_KEYS_H
#define EVBUS_AUTH_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "evbus/error.h"

#define EVBUS__PRINCIPAL_NAME_MAX 64

typedef struct evbus__principal {
    char name[EVBUS__PRINCIPAL_NAME_MAX + 1];
    unsigned char key[32]; /* the decoded public key */
    char **sources;        /* NULL-free array of n_sources; none: any source */
    size_t n_sources;
    void *stats; /* for the owner of the list (evbusd's per-producer counters) */
} evbus__principal;

/* Sorted by name, so lookups by name (once per request) are a binary
 * search. */
typedef struct evbus__keylist {
    evbus__principal *v;
    size_t n;
} evbus__keylist;

/* Loads `path` into *out (which the caller zeroed or freed). Source words are
 * accepted only when allow_sources. On failure *out is empty and err names the
 * file, the line and what is wrong with it (never the key text: a secret
 * pasted by mistake must not reach a log). Returns EVBUS_OK, EVBUS_EIO or
 * EVBUS_ECONFIG. */
evbus_err evbus__keylist_load(const char *path, bool allow_sources, evbus__keylist *out, char *err,
                              size_t errlen);

/* Frees what the list owns and empties it. Accepts an empty list. */
void evbus__keylist_free(evbus__keylist *l);

/* The principal with this public key / name, or NULL. */
const evbus__principal *evbus__keylist_find_key(const evbus__keylist *l,
                                                const unsigned char key[32]);
const evbus__principal *evbus__keylist_find_name(const evbus__keylist *l, const char *name);

/* True for a well-formed NAME: 1..64 of [A-Za-z0-9._-]. */
bool evbus__principal_name_ok(const char *s, size_t len);

/* True for a well-formed source limit: printable ASCII without spaces, at
 * most 256 bytes, '*' only at the end (a prefix). */
bool evbus__source_word_ok(const char *s, size_t len);

/* True when the principal may publish events of this source. */
bool evbus__principal_allows(const evbus__principal *p, const char *source);

/* Writes "a, b*, c" (the principal's source limits) into out, cut to fit. */
void evbus__principal_sources_text(const evbus__principal *p, char *out, size_t outlen);

#endif
