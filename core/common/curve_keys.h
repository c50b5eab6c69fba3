/* CURVE key files, as `evbus keygen PATH` writes them:
 *
 *   PATH.pub  one line: the Z85 public key (40 characters)
 *   PATH.key  mode 0600: the public key line, then the secret key line
 *
 * Lines starting with '#' and blank lines are ignored when reading. Shared by
 * evbusd (its own secret key), the CLI and libevbus (a producer's key pair).
 * No function here ever puts key material into an error message: a secret key
 * pasted into the wrong file must not end up in a log. */
#ifndef EVBUS_CURVE_KEYS_H
#define EVBUS_CURVE_KEYS_H

#include <stdbool.h>
#include <stddef.h>

#include "evbus/error.h"

/* Characters of a Z85-encoded CURVE key (32 bytes), without the NUL. */
#define EVBUS__Z85_KEY_LEN 40

/* True when `s` is exactly 40 Z85 characters that decode to a key; when `raw`
 * is not NULL the 32 bytes are written there. */
bool evbus__curve_key_decode(const char *s, size_t len, unsigned char raw[32]);

/* Reads a key file written by keygen into pub and sec (41 bytes each, NUL
 * terminated). Checks that the secret key derives the public key, and that
 * no other user can read the file (as ssh does for its keys): a readable
 * secret is refused. Returns EVBUS_OK; EVBUS_EIO when the file cannot be
 * read; EVBUS_ECONFIG when it is not a key file or is readable by others. err
 * names the file and says what to do; it never holds a key. pub and sec are
 * untouched on failure. */
evbus_err evbus__curve_keyfile_read(const char *path, char pub[41], char sec[41], char *err,
                                    size_t errlen);

/* A public key given on a command line or in configuration: 40 Z85
 * characters, or the path of a file whose first key line is one (PATH.pub,
 * or PATH.key, whose first line is its public key). */
evbus_err evbus__curve_pubkey_read(const char *text_or_path, char pub[41], char *err,
                                   size_t errlen);

/* Generates a key pair and writes PATH.pub (mode 0644) and PATH.key (mode
 * 0600, whatever the umask; created exclusively, so an existing key is never
 * overwritten). Returns EVBUS_OK, EVBUS_EBUSY when a file exists, EVBUS_EIO,
 * or EVBUS_EINVAL when this libzmq has no CURVE. */
evbus_err evbus__curve_keygen(const char *path, char pub[41], char *err, size_t errlen);

#endif
