/* A typed schema for YAML configuration: a table of fields per mapping, read
 * into a C struct. Every error names the file, line, column and the dotted key
 * path, and says what was expected, so a person can fix it without reading
 * code. Unknown keys are errors (a typo must not silently fall back to a
 * default). The same schema will check plugin configuration sections. */
#ifndef EVBUS_CONFIG_SCHEMA_H
#define EVBUS_CONFIG_SCHEMA_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "evbus/error.h"

typedef enum evbus__cfg_type {
    EVBUS__CFG_STRING,      /* char *, heap; replaced value is freed */
    EVBUS__CFG_STRING_LIST, /* evbus__cfg_strings */
    EVBUS__CFG_UINT,        /* uint64_t, within [min, max] */
    EVBUS__CFG_SIZE,        /* uint64_t bytes: 4096, 512KiB, 1GiB (KiB/MiB/GiB/TiB, KB/MB/GB) */
    EVBUS__CFG_DURATION,    /* int64_t milliseconds: 250ms, 30s, 5m, 24h, 7d */
    EVBUS__CFG_BOOL,        /* bool: true / false */
    EVBUS__CFG_ENUM,        /* int: index of the value in `choices` */
    EVBUS__CFG_SECTION,     /* a nested mapping described by `section` */
} evbus__cfg_type;

typedef struct evbus__cfg_strings {
    char **v;
    size_t n;
} evbus__cfg_strings;

typedef struct evbus__cfg_field {
    const char *key;
    evbus__cfg_type type;
    size_t offset;                          /* into the struct being filled */
    uint64_t min, max;                      /* UINT / SIZE / DURATION bounds; 0,0 = none */
    const char *const *choices;             /* ENUM: NULL-terminated */
    const struct evbus__cfg_field *section; /* SECTION: fields, ended by key NULL */
    const char *help;                       /* one line, for errors and --help */
} evbus__cfg_field;

/* Reads the YAML file at `path` into `out` (whose defaults the caller has
 * already set) following `fields`. Returns EVBUS_OK, or EVBUS_ECONFIG /
 * EVBUS_EIO with every problem found written into err (one per line, each
 * "file:line:col: key.path: what is wrong"). Strings it stores are heap
 * allocated; release them with evbus__cfg_free(). */
evbus_err evbus__cfg_load(const char *path, const evbus__cfg_field *fields, void *out, char *err,
                          size_t errlen);

/* Frees the strings and lists that evbus__cfg_load() stored in `obj`. */
void evbus__cfg_free(const evbus__cfg_field *fields, void *obj);

/* Parsers shared with command-line flags. Return 0 on success. */
int evbus__cfg_parse_size(const char *s, uint64_t *out);
int evbus__cfg_parse_duration(const char *s, int64_t *out_ms);

#endif
