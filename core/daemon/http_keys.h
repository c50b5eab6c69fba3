/* Access keys for the HTTP ingest (ingest.http.credentials): who may sign
 * PutEvents requests.
 *
 * One key per line:
 *
 *   NAME ACCESS-KEY-ID SECRET-ACCESS-KEY [SOURCE-OR-PREFIX* ...]
 *
 * NAME is 1..64 of [A-Za-z0-9._-] and names the producer in logs; the access
 * key id is 1..128 letters and digits (an SDK sends it in the clear); the
 * secret is 1..128 printable ASCII characters without spaces, and is never
 * written to a log or an error. The optional words limit the sources the key
 * may publish, as for CURVE producers (auth_keys.h). '#' starts a comment
 * line; blank lines are ignored. Names and key ids are unique in a file. The
 * file should be readable by evbusd's user alone. Pure parsing. */
#ifndef EVBUS_HTTP_KEYS_H
#define EVBUS_HTTP_KEYS_H

#include <stddef.h>

#include "auth_keys.h"
#include "evbus/error.h"

#define EVBUS__ACCESS_KEY_ID_MAX 128
#define EVBUS__SECRET_KEY_MAX    128

typedef struct evbus__http_key {
    evbus__principal who; /* name and source limits (its CURVE key is unused) */
    char key_id[EVBUS__ACCESS_KEY_ID_MAX + 1];
    char secret[EVBUS__SECRET_KEY_MAX + 1];
} evbus__http_key;

/* Sorted by access key id, looked up once per request. */
typedef struct evbus__http_keys {
    evbus__http_key *v;
    size_t n;
} evbus__http_keys;

/* Loads `path` into *out (which the caller zeroed or freed). On failure *out
 * is empty and err says "PATH:LINE: what is wrong" (never a secret).
 * Returns EVBUS_OK, EVBUS_EIO, EVBUS_ENOMEM or EVBUS_ECONFIG. */
evbus_err evbus__http_keys_load(const char *path, evbus__http_keys *out, char *err, size_t errlen);

/* Wipes the secrets, frees what the list owns and empties it. Accepts an
 * empty list. */
void evbus__http_keys_free(evbus__http_keys *l);

/* The key with this access key id (len bytes, not NUL-terminated), or NULL.
 * Valid until evbus__http_keys_free(). */
const evbus__http_key *evbus__http_keys_find(const evbus__http_keys *l, const char *key_id,
                                             size_t len);

#endif
