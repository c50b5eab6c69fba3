#include "auth_keys.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/curve_keys.h"
#include "key_file.h"

#define KEYLIST_MAX_WORDS 256

bool evbus__principal_name_ok(const char *s, size_t len) {
    if (len == 0 || len > EVBUS__PRINCIPAL_NAME_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-'))
            return false;
    }
    return true;
}

/* A source word: printable ASCII without spaces, at most 256 bytes (the
 * EventBridge limit), '*' only at the end. */
bool evbus__source_word_ok(const char *s, size_t len) {
    if (len == 0 || len > 256)
        return false;
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c <= 0x20 || c >= 0x7f || (c == '*' && i + 1 != len))
            return false;
    }
    return true;
}

static int by_name(const void *a, const void *b) {
    return strcmp(((const evbus__principal *)a)->name, ((const evbus__principal *)b)->name);
}

static void principal_free(evbus__principal *p) {
    for (size_t i = 0; i < p->n_sources; i++)
        free(p->sources[i]);
    free(p->sources);
    p->sources = NULL;
    p->n_sources = 0;
}

void evbus__keylist_free(evbus__keylist *l) {
    for (size_t i = 0; i < l->n; i++)
        principal_free(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Parses one line's words into p. Returns NULL or why the line is wrong. */
static const char *parse_line(char *line, bool allow_sources, evbus__principal *p) {
    char *words[KEYLIST_MAX_WORDS];
    size_t n = 0;
    for (char *save = NULL, *w = strtok_r(line, " \t\r", &save); w;
         w = strtok_r(NULL, " \t\r", &save)) {
        if (n == KEYLIST_MAX_WORDS)
            return "too many words";
        words[n++] = w;
    }
    if (n < 2)
        return "expected NAME Z85-PUBLIC-KEY [SOURCE-OR-PREFIX* ...]";
    if (!evbus__principal_name_ok(words[0], strlen(words[0])))
        return "the name must be 1..64 letters, digits, '.', '_' or '-'";
    if (!evbus__curve_key_decode(words[1], strlen(words[1]), p->key))
        return "the second word is not a 40-character Z85 public key (the line of a PATH.pub)";
    if (n > 2 && !allow_sources)
        return "operators' keys take no source limits (expected NAME Z85-PUBLIC-KEY)";
    snprintf(p->name, sizeof p->name, "%s", words[0]);
    if (n > 2) {
        p->sources = calloc(n - 2, sizeof *p->sources);
        if (!p->sources)
            return evbus__key_file_no_memory;
    }
    for (size_t i = 2; i < n; i++) {
        if (!evbus__source_word_ok(words[i], strlen(words[i])))
            return "a source limit must be an event source (printable, no spaces, at most 256 "
                   "bytes) or a prefix ending in '*'";
        if (!(p->sources[p->n_sources++] = strdup(words[i])))
            return evbus__key_file_no_memory;
    }
    return NULL;
}

typedef struct keylist_load {
    evbus__keylist *out;
    bool allow_sources;
    size_t cap;
} keylist_load;

static const char *keylist_line(void *arg, char *line) {
    keylist_load *ld = arg;
    evbus__keylist *out = ld->out;
    if (out->n == ld->cap) {
        size_t ncap = ld->cap ? ld->cap * 2 : 16;
        evbus__principal *v = realloc(out->v, ncap * sizeof *v);
        if (!v)
            return evbus__key_file_no_memory;
        out->v = v;
        ld->cap = ncap;
    }
    evbus__principal *p = &out->v[out->n++];
    memset(p, 0, sizeof *p);
    const char *why = parse_line(line, ld->allow_sources, p);
    for (size_t i = 0; !why && i + 1 < out->n; i++) {
        if (strcmp(out->v[i].name, p->name) == 0)
            why = "this name is already used on an earlier line";
        else if (memcmp(out->v[i].key, p->key, 32) == 0)
            why = "this key is already listed on an earlier line";
    }
    return why;
}

evbus_err evbus__keylist_load(const char *path, bool allow_sources, evbus__keylist *out, char *err,
                              size_t errlen) {
    memset(out, 0, sizeof *out);
    keylist_load ld = {out, allow_sources, 0};
    evbus_err rc = evbus__key_file_read(path, "a key list", keylist_line, &ld, err, errlen);
    if (rc != EVBUS_OK) {
        evbus__keylist_free(out);
        return rc;
    }
    if (out->n)
        qsort(out->v, out->n, sizeof *out->v, by_name);
    return EVBUS_OK;
}

const evbus__principal *evbus__keylist_find_key(const evbus__keylist *l,
                                                const unsigned char key[32]) {
    for (size_t i = 0; i < l->n; i++)
        if (memcmp(l->v[i].key, key, 32) == 0)
            return &l->v[i];
    return NULL;
}

const evbus__principal *evbus__keylist_find_name(const evbus__keylist *l, const char *name) {
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        int c = strcmp(name, l->v[mid].name);
        if (c == 0)
            return &l->v[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}

bool evbus__principal_allows(const evbus__principal *p, const char *source) {
    if (p->n_sources == 0)
        return true;
    for (size_t i = 0; i < p->n_sources; i++) {
        const char *s = p->sources[i];
        size_t len = strlen(s);
        if (s[len - 1] == '*' ? strncmp(source, s, len - 1) == 0 : strcmp(source, s) == 0)
            return true;
    }
    return false;
}

void evbus__principal_sources_text(const evbus__principal *p, char *out, size_t outlen) {
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; i < p->n_sources && used + 1 < outlen; i++) {
        int n = snprintf(out + used, outlen - used, "%s%s", i ? ", " : "", p->sources[i]);
        if (n < 0)
            break;
        used += (size_t)n < outlen - used ? (size_t)n : outlen - used - 1;
    }
}
