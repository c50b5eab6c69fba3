#include "config_schema.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct loader {
    yaml_document_t *doc;
    evbus__cfg_errors errors;
} loader;

void evbus__cfg_errors_init(evbus__cfg_errors *e, const char *path, char *buf, size_t size) {
    e->path = path;
    e->buf = buf;
    e->size = size;
    e->used = size ? strnlen(buf, size - 1) : 0;
    e->count = 0;
}

static void append(evbus__cfg_errors *e, const char *fmt, va_list ap) {
    if (e->used + 1 >= e->size)
        return;
    int n = vsnprintf(e->buf + e->used, e->size - e->used, fmt, ap);
    if (n > 0)
        e->used = e->used + (size_t)n < e->size ? e->used + (size_t)n : e->size - 1;
}

__attribute__((format(printf, 2, 3))) static void appendf(evbus__cfg_errors *e, const char *fmt,
                                                          ...) {
    va_list ap;
    va_start(ap, fmt);
    append(e, fmt, ap);
    va_end(ap);
}

void evbus__cfg_error(evbus__cfg_errors *e, evbus__cfg_pos at, const char *key, const char *fmt,
                      ...) {
    e->count++;
    appendf(e, "%s%s", e->used ? "\n" : "", e->path);
    if (at.line)
        appendf(e, ":%u:%u", at.line, at.column);
    appendf(e, ": %s: ", key);
    va_list ap;
    va_start(ap, fmt);
    append(e, fmt, ap);
    va_end(ap);
}

static evbus__cfg_pos pos_of(const yaml_node_t *node) {
    return node ? (evbus__cfg_pos){(unsigned)node->start_mark.line + 1,
                                   (unsigned)node->start_mark.column + 1}
                : (evbus__cfg_pos){0, 0};
}

__attribute__((format(printf, 4, 5))) static void
report(loader *l, const yaml_node_t *node, const char *keypath, const char *fmt, ...) {
    char what[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    evbus__cfg_error(&l->errors, pos_of(node), keypath, "%s", what);
}

static const char *scalar(const yaml_node_t *n) {
    return n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

int evbus__cfg_parse_size(const char *s, uint64_t *out) {
    static const struct {
        const char *suffix;
        uint64_t mult;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"KiB", 1ull << 10},
                 {"MiB", 1ull << 20},
                 {"GiB", 1ull << 30},
                 {"TiB", 1ull << 40},
                 {"KB", 1000ull},
                 {"MB", 1000000ull},
                 {"GB", 1000000000ull},
                 {"TB", 1000000000000ull}};
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    while (*end == ' ')
        end++;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > UINT64_MAX / units[i].mult)
                return -1;
            *out = v * units[i].mult;
            return 0;
        }
    }
    return -1;
}

int evbus__cfg_parse_duration(const char *s, int64_t *out_ms) {
    static const struct {
        const char *suffix;
        int64_t mult;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}, {"d", 86400000}};
    if (!s || *s < '0' || *s > '9')
        return -1;
    errno = 0;
    char *end;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno)
        return -1;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcmp(end, units[i].suffix) == 0) {
            if (v > (unsigned long long)(INT64_MAX / units[i].mult))
                return -1;
            *out_ms = (int64_t)v * units[i].mult;
            return 0;
        }
    }
    return -1;
}

static bool in_bounds(const evbus__cfg_field *f, uint64_t v) {
    if (f->min == 0 && f->max == 0)
        return true;
    return v >= f->min && v <= f->max;
}

static void read_section(loader *l, const yaml_node_t *map, const evbus__cfg_field *fields,
                         void *obj, const char *prefix);

static void free_map(evbus__cfg_map *map) {
    for (size_t i = 0; i < map->n; i++) {
        free(map->v[i].key);
        free(map->v[i].value);
    }
    free(map->v);
    map->v = NULL;
    map->n = 0;
}

static void free_strings(evbus__cfg_strings *list) {
    for (size_t i = 0; i < list->n; i++)
        free(list->v[i]);
    free(list->v);
    free(list->pos);
    list->v = NULL;
    list->pos = NULL;
    list->n = 0;
}

typedef struct jbuf {
    char *s;
    size_t len, cap;
    bool too_long;
} jbuf;

static void jput(jbuf *b, const char *s, size_t n) {
    if (b->too_long || b->len + n + 1 > EVBUS_CFG_JSON_MAX) {
        b->too_long = true;
        return;
    }
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 256;
        while (cap < b->len + n + 1)
            cap *= 2;
        char *ns = realloc(b->s, cap);
        if (!ns) {
            b->too_long = true;
            return;
        }
        b->s = ns;
        b->cap = cap;
    }
    memcpy(b->s + b->len, s, n);
    b->len += n;
    b->s[b->len] = '\0';
}

static void jstring(jbuf *b, const char *s, size_t n) {
    jput(b, "\"", 1);
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[8];
        if (c == '"' || c == '\\') {
            esc[0] = '\\', esc[1] = (char)c;
            jput(b, esc, 2);
        } else if (c < 0x20) {
            snprintf(esc, sizeof esc, "\\u%04x", c);
            jput(b, esc, 6);
        } else {
            jput(b, (const char *)&s[i], 1);
        }
    }
    jput(b, "\"", 1);
}

/* A plain (unquoted) YAML scalar that reads as a JSON number, true, false or
 * null is written as one; everything else becomes a string. Quoting in YAML
 * ("12") keeps a number-looking value a string, as a person expects. */
static bool json_literal(const char *s) {
    if (strcmp(s, "true") == 0 || strcmp(s, "false") == 0 || strcmp(s, "null") == 0)
        return true;
    const char *p = s;
    if (*p == '-')
        p++;
    if (*p == '0')
        p++;
    else if (*p >= '1' && *p <= '9')
        while (*p >= '0' && *p <= '9')
            p++;
    else
        return false;
    if (*p == '.') {
        p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    if (*p == 'e' || *p == 'E') {
        p++;
        if (*p == '+' || *p == '-')
            p++;
        if (*p < '0' || *p > '9')
            return false;
        while (*p >= '0' && *p <= '9')
            p++;
    }
    return *p == '\0';
}

/* Writes a YAML node as JSON. Depth is bounded, and so is the output, which
 * also stops aliases that expand exponentially ("billion laughs"). */
static void to_json(loader *l, const yaml_node_t *n, jbuf *b, int depth) {
    if (!n || depth > 64) {
        b->too_long = true;
        return;
    }
    switch (n->type) {
    case YAML_SCALAR_NODE: {
        const char *v = (const char *)n->data.scalar.value;
        size_t len = n->data.scalar.length;
        if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && strlen(v) == len && json_literal(v))
            jput(b, v, len);
        else if (n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE && len == 1 && v[0] == '~')
            jput(b, "null", 4);
        else
            jstring(b, v, len);
        return;
    }
    case YAML_SEQUENCE_NODE:
        jput(b, "[", 1);
        for (const yaml_node_item_t *it = n->data.sequence.items.start;
             it < n->data.sequence.items.top && !b->too_long; it++) {
            if (it != n->data.sequence.items.start)
                jput(b, ",", 1);
            to_json(l, yaml_document_get_node(l->doc, *it), b, depth + 1);
        }
        jput(b, "]", 1);
        return;
    case YAML_MAPPING_NODE:
        jput(b, "{", 1);
        for (const yaml_node_pair_t *p = n->data.mapping.pairs.start;
             p < n->data.mapping.pairs.top && !b->too_long; p++) {
            const yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
            if (p != n->data.mapping.pairs.start)
                jput(b, ",", 1);
            if (k && k->type == YAML_SCALAR_NODE)
                jstring(b, (const char *)k->data.scalar.value, k->data.scalar.length);
            else
                b->too_long = true;
            jput(b, ":", 1);
            to_json(l, yaml_document_get_node(l->doc, p->value), b, depth + 1);
        }
        jput(b, "}", 1);
        return;
    default: b->too_long = true; return;
    }
}

/* The i-th key of a mapping node, if it is a scalar. */
static const char *key_at(loader *l, const yaml_node_t *map, size_t i) {
    const yaml_node_t *k = yaml_document_get_node(l->doc, map->data.mapping.pairs.start[i].key);
    return k ? scalar(k) : NULL;
}

/* Whether the i-th key of a mapping repeats an earlier one. libyaml keeps
 * both; a lookup would silently take the first. */
static bool key_repeated(loader *l, const yaml_node_t *map, size_t i) {
    const char *key = key_at(l, map, i);
    for (size_t j = 0; key && j < i; j++) {
        const char *earlier = key_at(l, map, j);
        if (earlier && strcmp(earlier, key) == 0)
            return true;
    }
    return false;
}

/* A mapping of scalars, kept as text with the positions of keys and values. */
static void read_map(loader *l, const yaml_node_t *val, evbus__cfg_map *map, const char *keypath) {
    size_t count = (size_t)(val->data.mapping.pairs.top - val->data.mapping.pairs.start);
    free_map(map);
    map->v = calloc(count ? count : 1, sizeof *map->v);
    map->line = (unsigned)val->start_mark.line + 1;
    if (!map->v) {
        report(l, val, keypath, "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const yaml_node_pair_t *p = &val->data.mapping.pairs.start[i];
        const yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
        const char *ks = k ? scalar(k) : NULL, *vs = v ? scalar(v) : NULL;
        char kpath[300];
        snprintf(kpath, sizeof kpath, "%s.%s", keypath, ks ? ks : "?");
        if (!ks || !vs) {
            report(l, vs ? k : v, kpath, "expected a key with a plain value");
            continue;
        }
        if (key_repeated(l, val, i)) {
            report(l, k, kpath, "key given twice in the same mapping");
            continue;
        }
        evbus__cfg_kv *kv = &map->v[map->n++];
        kv->key = strdup(ks);
        kv->value = strdup(vs);
        kv->line = (unsigned)v->start_mark.line + 1;
        kv->column = (unsigned)v->start_mark.column + 1;
        kv->key_line = (unsigned)k->start_mark.line + 1;
        kv->key_column = (unsigned)k->start_mark.column + 1;
    }
}

static void free_maps(evbus__cfg_maps *maps) {
    for (size_t i = 0; i < maps->n; i++) {
        free(maps->v[i].name);
        free_map(&maps->v[i].map);
    }
    free(maps->v);
    maps->v = NULL;
    maps->n = 0;
}

/* A plain empty value (`us-east-1:`), `~` or `null`: nothing to set. */
static bool is_null(const yaml_node_t *n) {
    const char *s = scalar(n);
    return s && n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
           (!*s || strcmp(s, "~") == 0 || strcmp(s, "null") == 0);
}

/* A mapping of names to mappings of scalars. */
static void read_maps(loader *l, const yaml_node_t *val, const evbus__cfg_field *f,
                      evbus__cfg_maps *maps, const char *keypath) {
    if (val->type != YAML_MAPPING_NODE) {
        report(l, val, keypath, "expected a mapping of names to mappings of keys (%s)", f->help);
        return;
    }
    size_t count = (size_t)(val->data.mapping.pairs.top - val->data.mapping.pairs.start);
    free_maps(maps);
    maps->at = pos_of(val);
    maps->v = calloc(count ? count : 1, sizeof *maps->v);
    if (!maps->v) {
        report(l, val, keypath, "out of memory");
        return;
    }
    for (size_t i = 0; i < count; i++) {
        const yaml_node_pair_t *p = &val->data.mapping.pairs.start[i];
        const yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
        const char *name = k ? scalar(k) : NULL;
        char npath[300];
        snprintf(npath, sizeof npath, "%s.%s", keypath, name ? name : "?");
        if (!name || !*name) {
            report(l, k, keypath, "names must be non-empty plain strings");
            continue;
        }
        if (key_repeated(l, val, i)) {
            report(l, k, npath, "key given twice in the same mapping");
            continue;
        }
        if (!v || (v->type != YAML_MAPPING_NODE && !is_null(v))) {
            report(l, v, npath, "expected a mapping of keys (%s)", f->help);
            continue;
        }
        evbus__cfg_named_map *m = &maps->v[maps->n++];
        m->name = strdup(name);
        m->name_pos = pos_of(k);
        if (v->type == YAML_MAPPING_NODE)
            read_map(l, v, &m->map, npath);
        else
            m->map.line = (unsigned)v->start_mark.line + 1;
    }
}

static void read_field(loader *l, const yaml_node_t *val, const evbus__cfg_field *f, void *obj,
                       const char *keypath) {
    char *slot = (char *)obj + f->offset;
    const char *s = scalar(val);
    switch (f->type) {
    case EVBUS__CFG_STRING:
        if (!s || !*s) {
            report(l, val, keypath, "expected a non-empty string (%s)", f->help);
            return;
        }
        free(*(char **)slot);
        *(char **)slot = strdup(s);
        return;
    case EVBUS__CFG_STRING_LIST: {
        evbus__cfg_strings *list = (evbus__cfg_strings *)slot;
        const yaml_node_item_t *start = NULL, *top = NULL;
        size_t count = 1;
        if (val->type == YAML_SEQUENCE_NODE) {
            start = val->data.sequence.items.start;
            top = val->data.sequence.items.top;
            count = (size_t)(top - start);
        } else if (!s || !*s) {
            report(l, val, keypath, "expected a string or a list of strings (%s)", f->help);
            return;
        }
        free_strings(list);
        list->v = calloc(count ? count : 1, sizeof(char *));
        list->pos = calloc(count ? count : 1, sizeof *list->pos);
        list->at = pos_of(val);
        if (!list->v || !list->pos) {
            report(l, val, keypath, "out of memory");
            return;
        }
        if (!start) {
            list->pos[list->n] = pos_of(val);
            list->v[list->n++] = strdup(s);
            return;
        }
        for (const yaml_node_item_t *it = start; it < top; it++) {
            const yaml_node_t *item = yaml_document_get_node(l->doc, *it);
            const char *is = scalar(item);
            if (!is || !*is) {
                report(l, item, keypath, "list items must be non-empty strings (%s)", f->help);
                continue;
            }
            list->pos[list->n] = pos_of(item);
            list->v[list->n++] = strdup(is);
        }
        return;
    }
    case EVBUS__CFG_UINT:
    case EVBUS__CFG_SIZE: {
        uint64_t v;
        char *end = NULL;
        int bad;
        if (f->type == EVBUS__CFG_SIZE) {
            bad = evbus__cfg_parse_size(s, &v);
        } else {
            errno = 0;
            bad = !s || *s < '0' || *s > '9';
            v = bad ? 0 : strtoull(s, &end, 10);
            bad = bad || errno || *end;
        }
        if (bad) {
            report(l, val, keypath, "expected %s, got '%s' (%s)",
                   f->type == EVBUS__CFG_SIZE ? "a size such as 4096, 512KiB or 1GiB"
                                              : "a whole number",
                   s ? s : "(not a scalar)", f->help);
            return;
        }
        if (!in_bounds(f, v)) {
            report(l, val, keypath, "%" PRIu64 " is out of range [%" PRIu64 ", %" PRIu64 "] (%s)",
                   v, f->min, f->max, f->help);
            return;
        }
        *(uint64_t *)slot = v;
        return;
    }
    case EVBUS__CFG_DURATION: {
        int64_t ms;
        if (evbus__cfg_parse_duration(s, &ms)) {
            report(l, val, keypath,
                   "expected a duration such as 250ms, 30s, 5m, 24h or 7d, got '%s' (%s)",
                   s ? s : "(not a scalar)", f->help);
            return;
        }
        if (!in_bounds(f, (uint64_t)ms)) {
            report(l, val, keypath, "%s is out of range [%" PRIu64 "ms, %" PRIu64 "ms] (%s)", s,
                   f->min, f->max, f->help);
            return;
        }
        *(int64_t *)slot = ms;
        return;
    }
    case EVBUS__CFG_BOOL:
        if (s && (strcmp(s, "true") == 0 || strcmp(s, "false") == 0)) {
            *(bool *)slot = s[0] == 't';
            return;
        }
        report(l, val, keypath, "expected true or false, got '%s'", s ? s : "(not a scalar)");
        return;
    case EVBUS__CFG_ENUM: {
        char choices[256] = "";
        size_t used = 0;
        for (int i = 0; f->choices[i]; i++) {
            if (s && strcmp(s, f->choices[i]) == 0) {
                *(int *)slot = i;
                return;
            }
            int n = snprintf(choices + used, sizeof choices - used, "%s%s", i ? ", " : "",
                             f->choices[i]);
            if (n > 0 && used + (size_t)n < sizeof choices)
                used += (size_t)n;
        }
        report(l, val, keypath, "expected one of %s, got '%s'", choices, s ? s : "(not a scalar)");
        return;
    }
    case EVBUS__CFG_SECTION:
        if (val->type != YAML_MAPPING_NODE) {
            report(l, val, keypath, "expected a mapping of keys (%s)", f->help);
            return;
        }
        read_section(l, val, f->section, obj, keypath);
        return;
    case EVBUS__CFG_LIST: {
        if (val->type != YAML_SEQUENCE_NODE) {
            report(l, val, keypath, "expected a list (%s)", f->help);
            return;
        }
        evbus__cfg_list *list = (evbus__cfg_list *)slot;
        size_t count = (size_t)(val->data.sequence.items.top - val->data.sequence.items.start);
        evbus__cfg_free_list(f, list);
        list->v = calloc(count ? count : 1, f->elem_size);
        list->lines = calloc(count ? count : 1, sizeof *list->lines);
        list->pos = calloc(count ? count : 1, sizeof *list->pos);
        if (!list->v || !list->lines || !list->pos) {
            report(l, val, keypath, "out of memory");
            return;
        }
        for (size_t i = 0; i < count; i++) {
            const yaml_node_t *item =
                yaml_document_get_node(l->doc, val->data.sequence.items.start[i]);
            char ipath[300];
            snprintf(ipath, sizeof ipath, "%s[%zu]", keypath, i);
            if (!item || item->type != YAML_MAPPING_NODE) {
                report(l, item, ipath, "expected a mapping of keys (%s)", f->help);
                continue;
            }
            void *elem = (char *)list->v + list->n * f->elem_size;
            if (f->elem_init)
                f->elem_init(elem);
            list->pos[list->n] = pos_of(item);
            list->lines[list->n++] = (unsigned)item->start_mark.line + 1;
            read_section(l, item, f->section, elem, ipath);
        }
        return;
    }
    case EVBUS__CFG_MAP:
        if (val->type != YAML_MAPPING_NODE) {
            report(l, val, keypath, "expected a mapping of keys (%s)", f->help);
            return;
        }
        read_map(l, val, (evbus__cfg_map *)slot, keypath);
        return;
    case EVBUS__CFG_MAPS: read_maps(l, val, f, (evbus__cfg_maps *)slot, keypath); return;
    case EVBUS__CFG_JSON: {
        jbuf b = {0};
        if (val->type == YAML_SCALAR_NODE && val->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
            jput(&b, s, strlen(s)); /* a quoted string holds JSON text itself */
        else
            to_json(l, val, &b, 0);
        if (b.too_long || !b.s) {
            free(b.s);
            report(l, val, keypath, "cannot be written as JSON of at most %d bytes (%s)",
                   EVBUS_CFG_JSON_MAX, f->help);
            return;
        }
        free(*(char **)slot);
        *(char **)slot = b.s;
        return;
    }
    }
}

static void read_section(loader *l, const yaml_node_t *map, const evbus__cfg_field *fields,
                         void *obj, const char *prefix) {
    /* Required keys first, so a missing one is reported once per mapping. */
    for (const evbus__cfg_field *f = fields; f->key; f++) {
        if (!f->required)
            continue;
        bool present = false;
        for (const yaml_node_pair_t *p = map->data.mapping.pairs.start;
             p < map->data.mapping.pairs.top && !present; p++) {
            const char *key = scalar(yaml_document_get_node(l->doc, p->key));
            present = key && strcmp(key, f->key) == 0;
        }
        if (!present)
            report(l, map, prefix[0] ? prefix : "(top level)", "missing required key '%s' (%s)",
                   f->key, f->help);
    }
    for (const yaml_node_pair_t *p = map->data.mapping.pairs.start; p < map->data.mapping.pairs.top;
         p++) {
        const yaml_node_t *k = yaml_document_get_node(l->doc, p->key);
        const yaml_node_t *v = yaml_document_get_node(l->doc, p->value);
        const char *key = scalar(k);
        char keypath[256];
        snprintf(keypath, sizeof keypath, "%s%s%s", prefix, *prefix ? "." : "", key ? key : "?");
        if (!key) {
            report(l, k, prefix[0] ? prefix : "(top level)", "keys must be plain strings");
            continue;
        }
        bool repeated = false;
        for (const yaml_node_pair_t *q = map->data.mapping.pairs.start; q < p && !repeated; q++) {
            const char *earlier = scalar(yaml_document_get_node(l->doc, q->key));
            repeated = earlier && strcmp(earlier, key) == 0;
        }
        if (repeated) {
            report(l, k, keypath, "key given twice in the same mapping");
            continue;
        }
        const evbus__cfg_field *f = fields;
        while (f->key && strcmp(f->key, key) != 0)
            f++;
        if (!f->key) {
            char known[512] = "";
            size_t used = 0;
            for (const evbus__cfg_field *g = fields; g->key; g++) {
                int n =
                    snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", g->key);
                if (n > 0 && used + (size_t)n < sizeof known)
                    used += (size_t)n;
            }
            report(l, k, keypath, "unknown key (known here: %s)", known);
            continue;
        }
        if (f->pos_offset)
            *(evbus__cfg_pos *)((char *)obj + f->pos_offset) = pos_of(v);
        read_field(l, v, f, obj, keypath);
    }
}

/* Reads the whole file (configurations are small), so that it can be parsed
 * twice: the depth check, then the document. */
static evbus_err read_file(const char *path, unsigned char **out, size_t *len, char *err,
                           size_t errlen) {
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return EVBUS_EIO;
    }
    size_t cap = 4096, n = 0;
    unsigned char *buf = malloc(cap);
    evbus_err rc = EVBUS_OK;
    while (buf) {
        n += fread(buf + n, 1, cap - n, fp);
        if (n < cap)
            break;
        if (cap >= EVBUS_CFG_FILE_MAX) {
            snprintf(err, errlen, "%s: larger than %u MiB: not a configuration file", path,
                     EVBUS_CFG_FILE_MAX >> 20);
            rc = EVBUS_ECONFIG;
            break;
        }
        unsigned char *bigger = realloc(buf, cap * 2);
        if (!bigger) {
            free(buf);
            buf = NULL;
            break;
        }
        buf = bigger;
        cap *= 2;
    }
    if (rc == EVBUS_OK && buf && ferror(fp)) {
        snprintf(err, errlen, "%s: cannot read: %s", path, strerror(errno));
        rc = EVBUS_EIO;
    }
    fclose(fp);
    if (!buf)
        return EVBUS_ENOMEM;
    if (rc != EVBUS_OK) {
        free(buf);
        return rc;
    }
    *out = buf;
    *len = n;
    return EVBUS_OK;
}

/* One open mapping or sequence, for the path of a too-deep value. */
typedef struct nest {
    bool map, want_key; /* map: the next node is a key */
    size_t index;       /* sequence: the item being read */
    char key[48];       /* map: the key whose value is being read */
} nest;

/* A node has ended inside `top`: a mapping alternates keys and values, a
 * sequence moves to its next item. */
static void node_done(nest *top) {
    if (!top)
        return;
    if (top->map)
        top->want_key = !top->want_key;
    else
        top->index++;
}

static void nest_path(const nest *stack, int depth, char *out, size_t len) {
    size_t used = 0;
    out[0] = '\0';
    for (int i = 0; i < depth && used + 1 < len; i++) {
        int n = stack[i].map
                    ? snprintf(out + used, len - used, "%s%s", used ? "." : "", stack[i].key)
                    : snprintf(out + used, len - used, "[%zu]", stack[i].index);
        if (n > 0)
            used = used + (size_t)n < len ? used + (size_t)n : len - 1;
    }
    if (!out[0])
        snprintf(out, len, "(top level)");
}

/* The first pass: events only, stopping at the first mapping or sequence
 * deeper than EVBUS_CFG_DEPTH_MAX, so that libyaml never builds (or scans
 * the simple keys of) a deep document. Syntax errors are left to the second
 * pass, which reports them. Returns false after reporting a too-deep value. */
static bool depth_ok(loader *l, const unsigned char *text, size_t len) {
    yaml_parser_t parser;
    yaml_event_t ev;
    nest stack[EVBUS_CFG_DEPTH_MAX];
    int depth = 0;
    bool ok = true, done = false;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, text, len);
    while (!done && yaml_parser_parse(&parser, &ev)) {
        nest *top = depth ? &stack[depth - 1] : NULL;
        switch (ev.type) {
        case YAML_SCALAR_EVENT:
            if (top && top->map && top->want_key)
                snprintf(top->key, sizeof top->key, "%s", (const char *)ev.data.scalar.value);
            node_done(top);
            break;
        case YAML_ALIAS_EVENT: node_done(top); break;
        case YAML_SEQUENCE_START_EVENT:
        case YAML_MAPPING_START_EVENT:
            if (top && top->map && top->want_key)
                snprintf(top->key, sizeof top->key, "?");
            if (depth == EVBUS_CFG_DEPTH_MAX) {
                char path[256];
                nest_path(stack, depth, path, sizeof path);
                evbus__cfg_error(&l->errors,
                                 (evbus__cfg_pos){(unsigned)ev.start_mark.line + 1,
                                                  (unsigned)ev.start_mark.column + 1},
                                 path, "nested deeper than %d levels", EVBUS_CFG_DEPTH_MAX);
                ok = false;
                done = true;
                break;
            }
            stack[depth++] = (nest){.map = ev.type == YAML_MAPPING_START_EVENT, .want_key = true};
            break;
        case YAML_SEQUENCE_END_EVENT:
        case YAML_MAPPING_END_EVENT:
            if (depth > 0)
                depth--;
            node_done(depth ? &stack[depth - 1] : NULL);
            break;
        case YAML_STREAM_END_EVENT: done = true; break;
        default: break;
        }
        yaml_event_delete(&ev);
    }
    yaml_parser_delete(&parser);
    return ok;
}

evbus_err evbus__cfg_load(const char *path, const evbus__cfg_field *fields, void *out, char *err,
                          size_t errlen) {
    loader l = {0};
    if (errlen)
        err[0] = '\0';
    evbus__cfg_errors_init(&l.errors, path, err, errlen);
    unsigned char *text;
    size_t len;
    evbus_err rc = read_file(path, &text, &len, err, errlen);
    if (rc != EVBUS_OK)
        return rc;
    rc = EVBUS_ECONFIG;
    if (!depth_ok(&l, text, len)) {
        free(text);
        return rc;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_string(&parser, text, len);
    if (!yaml_parser_load(&parser, &doc)) {
        snprintf(err, errlen, "%s:%zu:%zu: invalid YAML: %s%s%s", path,
                 parser.problem_mark.line + 1, parser.problem_mark.column + 1,
                 parser.problem ? parser.problem : "syntax error", parser.context ? " " : "",
                 parser.context ? parser.context : "");
        goto out_parser;
    }
    l.doc = &doc;
    const yaml_node_t *root = yaml_document_get_root_node(&doc);
    if (!root) {
        rc = EVBUS_OK; /* an empty file means "all defaults" */
    } else if (root->type != YAML_MAPPING_NODE) {
        report(&l, root, "(top level)", "expected a mapping of keys");
    } else {
        read_section(&l, root, fields, out, "");
        rc = l.errors.count ? EVBUS_ECONFIG : EVBUS_OK;
    }
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    free(text);
    return rc;
}

void evbus__cfg_free(const evbus__cfg_field *fields, void *obj) {
    for (const evbus__cfg_field *f = fields; f->key; f++) {
        char *slot = (char *)obj + f->offset;
        if (f->type == EVBUS__CFG_STRING || f->type == EVBUS__CFG_JSON) {
            free(*(char **)slot);
            *(char **)slot = NULL;
        } else if (f->type == EVBUS__CFG_STRING_LIST) {
            free_strings((evbus__cfg_strings *)slot);
        } else if (f->type == EVBUS__CFG_SECTION) {
            evbus__cfg_free(f->section, obj);
        } else if (f->type == EVBUS__CFG_LIST) {
            evbus__cfg_free_list(f, (evbus__cfg_list *)slot);
        } else if (f->type == EVBUS__CFG_MAP) {
            free_map((evbus__cfg_map *)slot);
        } else if (f->type == EVBUS__CFG_MAPS) {
            free_maps((evbus__cfg_maps *)slot);
        }
    }
}

void evbus__cfg_free_list(const evbus__cfg_field *f, evbus__cfg_list *list) {
    for (size_t i = 0; i < list->n; i++)
        evbus__cfg_free(f->section, (char *)list->v + i * f->elem_size);
    free(list->v);
    free(list->lines);
    free(list->pos);
    list->v = NULL;
    list->lines = NULL;
    list->pos = NULL;
    list->n = 0;
}
