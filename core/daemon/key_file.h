/**
 * @file key_file.h
 * @brief Reading a file of keys, one entry a line: the CURVE producer and
 * operator lists (auth_keys.c) and the HTTP access keys (http_keys.c).
 */
#ifndef EVBUS_KEY_FILE_H
#define EVBUS_KEY_FILE_H

#include <stddef.h>

#include "evbus/error.h"

/* A key file lists producers; megabytes of it are a mistake. */
#define EVBUS__KEY_FILE_MAX_BYTES (4u << 20)

/* Returned by a line callback that ran out of memory. */
extern const char evbus__key_file_no_memory[];

/* Called for each line that is neither blank nor a comment ('#' first),
 * with the line NUL-terminated and writable (it may be cut into words).
 * Returns NULL, or a static reason the line is wrong (never quoting a
 * secret), or evbus__key_file_no_memory. */
typedef const char *(*evbus__key_file_line_fn)(void *arg, char *line);

/* Reads `path` (at most EVBUS__KEY_FILE_MAX_BYTES; `what` names the kind of
 * file in the size error, e.g. "a key list") and calls `fn` for each line in
 * order, stopping at the first it refuses. The text is wiped before it is
 * freed: it may hold secrets.
 * Returns EVBUS_OK; EVBUS_EIO (err: "PATH: cannot open: ..." and the like);
 * EVBUS_ECONFIG (err: "PATH:LINE: reason"); EVBUS_ENOMEM. */
evbus_err evbus__key_file_read(const char *path, const char *what, evbus__key_file_line_fn fn,
                               void *arg, char *err, size_t errlen);

#endif
