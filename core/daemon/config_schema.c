#include "config_schema.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct loader {
    const char *path;
    yaml_document_t *doc;
    char *err;
    size_t errlen, used;
    int nerrors;
} loader;

__attribute__((format(printf, 4, 5))) static void
report(loader *l, const yaml_node_t *node, const char *keypath, const char *fmt, ...) {
    l->nerrors++;
    if (l->used + 1 >= l->errlen)
        return;
    int n = snprintf(
        l->err + l->used, l->errlen - l->used, "%s%s:%zu:%zu: %s: ", l->used ? "\n" : "", l->path,
        node ? node->start_mark.line + 1 : 0, node ? node->start_mark.column + 1 : 0, keypath);
    if (n > 0)
        l->used = l->used + (size_t)n < l->errlen ? l->used + (size_t)n : l->errlen - 1;
    va_list ap;
    va_start(ap, fmt);
    n = vsnprintf(l->err + l->used, l->errlen - l->used, fmt, ap);
    va_end(ap);
    if (n > 0)
        l->used = l->used + (size_t)n < l->errlen ? l->used + (size_t)n : l->errlen - 1;
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
        for (size_t i = 0; i < list->n; i++)
            free(list->v[i]);
        free(list->v);
        list->v = calloc(count ? count : 1, sizeof(char *));
        list->n = 0;
        if (!start) {
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
    }
}

static void read_section(loader *l, const yaml_node_t *map, const evbus__cfg_field *fields,
                         void *obj, const char *prefix) {
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
        read_field(l, v, f, obj, keypath);
    }
}

evbus_err evbus__cfg_load(const char *path, const evbus__cfg_field *fields, void *out, char *err,
                          size_t errlen) {
    loader l = {.path = path, .err = err, .errlen = errlen};
    if (errlen)
        err[0] = '\0';
    FILE *fp = fopen(path, "rb");
    if (!fp) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return EVBUS_EIO;
    }
    yaml_parser_t parser;
    yaml_document_t doc;
    evbus_err rc = EVBUS_ECONFIG;
    yaml_parser_initialize(&parser);
    yaml_parser_set_input_file(&parser, fp);
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
        rc = l.nerrors ? EVBUS_ECONFIG : EVBUS_OK;
    }
    yaml_document_delete(&doc);
out_parser:
    yaml_parser_delete(&parser);
    fclose(fp);
    return rc;
}

void evbus__cfg_free(const evbus__cfg_field *fields, void *obj) {
    for (const evbus__cfg_field *f = fields; f->key; f++) {
        char *slot = (char *)obj + f->offset;
        if (f->type == EVBUS__CFG_STRING) {
            free(*(char **)slot);
            *(char **)slot = NULL;
        } else if (f->type == EVBUS__CFG_STRING_LIST) {
            evbus__cfg_strings *list = (evbus__cfg_strings *)slot;
            for (size_t i = 0; i < list->n; i++)
                free(list->v[i]);
            free(list->v);
            list->v = NULL;
            list->n = 0;
        } else if (f->type == EVBUS__CFG_SECTION) {
            evbus__cfg_free(f->section, obj);
        }
    }
}
