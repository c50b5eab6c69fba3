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
    EVBUS__CFG_LIST,        /* evbus__cfg_list: a sequence of mappings, each an element
                               of `elem_size` bytes described by `section` */
    EVBUS__CFG_JSON,        /* char *: any YAML value (or a string of JSON text) as JSON */
    EVBUS__CFG_MAP,         /* evbus__cfg_map: a mapping of scalars kept as text, with
                               their positions, for a schema known only later (plugins) */
    EVBUS__CFG_MAPS,        /* evbus__cfg_maps: a mapping of names to such mappings (a
                               target's keys per region); an empty value is an empty map */
} evbus__cfg_type;

/* Where a value starts in the file, 1-based; {0, 0} when it was not read
 * from the file (a default). Kept so that checks made after loading can
 * point at the value. */
typedef struct evbus__cfg_pos {
    unsigned line, column;
} evbus__cfg_pos;

typedef struct evbus__cfg_strings {
    char **v;
    size_t n;
    evbus__cfg_pos *pos; /* of each string; NULL when not read from the file */
    evbus__cfg_pos at;   /* of the value (the list, or the single string) */
} evbus__cfg_strings;

typedef struct evbus__cfg_list {
    void *v; /* n elements of the field's elem_size */
    size_t n;
    unsigned *lines;     /* line of each element in the file, for later errors */
    evbus__cfg_pos *pos; /* line and column of each element */
} evbus__cfg_list;

typedef struct evbus__cfg_kv {
    char *key, *value;
    unsigned line, column;         /* of the value */
    unsigned key_line, key_column; /* of the key */
} evbus__cfg_kv;

typedef struct evbus__cfg_map {
    evbus__cfg_kv *v;
    size_t n;
    unsigned line; /* where the mapping starts (0 when absent) */
} evbus__cfg_map;

/* One entry of an EVBUS__CFG_MAPS value: a name and its mapping. */
typedef struct evbus__cfg_named_map {
    char *name;
    evbus__cfg_pos name_pos; /* of the name, the key in the file */
    evbus__cfg_map map;
} evbus__cfg_named_map;

typedef struct evbus__cfg_maps {
    evbus__cfg_named_map *v; /* in the file's order */
    size_t n;
    evbus__cfg_pos at; /* of the value; {0, 0} when absent */
} evbus__cfg_maps;

/* Longest JSON text an EVBUS__CFG_JSON value may become. */
#define EVBUS_CFG_JSON_MAX (64 * 1024)

/* Deepest nesting of mappings and sequences in a file. libyaml's time grows
 * with the square of the depth (80,000 levels took 12.5 s), so deeper files
 * are refused by a first pass before any document is built. */
#define EVBUS_CFG_DEPTH_MAX 64

/* Largest configuration file read. */
#define EVBUS_CFG_FILE_MAX (16u << 20)

typedef struct evbus__cfg_field {
    const char *key;
    evbus__cfg_type type;
    size_t offset;                          /* into the struct being filled */
    uint64_t min, max;                      /* UINT / SIZE / DURATION bounds; 0,0 = none */
    const char *const *choices;             /* ENUM: NULL-terminated */
    const struct evbus__cfg_field *section; /* SECTION, LIST: fields, ended by key NULL */
    const char *help;                       /* one line, for errors and --help */
    size_t elem_size;                       /* LIST: bytes per element */
    void (*elem_init)(void *elem);          /* LIST: sets an element's defaults */
    bool required;                          /* missing is an error */
    size_t pos_offset; /* if not 0: an evbus__cfg_pos in the struct that receives where the
                          value is (so a position field is never the struct's first) */
} evbus__cfg_field;

/* Problems found in a file, one line each ("file:line:col: key: what"),
 * written into a caller's buffer; what does not fit is counted, not kept. */
typedef struct evbus__cfg_errors {
    const char *path;
    char *buf;
    size_t size, used;
    unsigned count;
} evbus__cfg_errors;

/* Starts collecting after what `buf` already holds (a NUL-terminated text,
 * possibly empty), e.g. the errors evbus__cfg_load() wrote there. */
void evbus__cfg_errors_init(evbus__cfg_errors *e, const char *path, char *buf, size_t size);

/* Adds one problem at `at` (a position of {0, 0} is written without line and
 * column), naming `key`, the dotted path of the value. */
__attribute__((format(printf, 4, 5))) void evbus__cfg_error(evbus__cfg_errors *e, evbus__cfg_pos at,
                                                            const char *key, const char *fmt, ...);

/* Reads the YAML file at `path` into `out` (whose defaults the caller has
 * already set) following `fields`. Returns EVBUS_OK, or EVBUS_ECONFIG /
 * EVBUS_EIO with every problem found written into err (one per line, each
 * "file:line:col: key.path: what is wrong"). A file nested deeper than
 * EVBUS_CFG_DEPTH_MAX or larger than EVBUS_CFG_FILE_MAX is refused whole.
 * Fields that are in error keep their defaults (a list element may lack a
 * required key: NULL), so that the caller can go on checking the rest. Strings it stores are heap
 * allocated; release them with evbus__cfg_free(). */
evbus_err evbus__cfg_load(const char *path, const evbus__cfg_field *fields, void *out, char *err,
                          size_t errlen);

/* Frees the strings and lists that evbus__cfg_load() stored in `obj`. */
void evbus__cfg_free(const evbus__cfg_field *fields, void *obj);

/* Frees the elements of a LIST field and empties it. */
void evbus__cfg_free_list(const evbus__cfg_field *f, evbus__cfg_list *list);

/* Parsers shared with command-line flags. Return 0 on success. */
int evbus__cfg_parse_size(const char *s, uint64_t *out);
int evbus__cfg_parse_duration(const char *s, int64_t *out_ms);

#endif
