#include "http_keys.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "key_file.h"

#define KEYS_MAX_WORDS 256

static bool key_id_ok(const char *s, size_t len) {
    if (len == 0 || len > EVBUS__ACCESS_KEY_ID_MAX)
        return false;
    for (size_t i = 0; i < len; i++) {
        char c = s[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')))
            return false;
    }
    return true;
}

static bool secret_ok(const char *s, size_t len) {
    if (len == 0 || len > EVBUS__SECRET_KEY_MAX)
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || (unsigned char)s[i] >= 0x7f)
            return false;
    return true;
}

static void key_free(evbus__http_key *k) {
    for (size_t i = 0; i < k->who.n_sources; i++)
        free(k->who.sources[i]);
    free(k->who.sources);
    explicit_bzero(k, sizeof *k);
}

void evbus__http_keys_free(evbus__http_keys *l) {
    for (size_t i = 0; i < l->n; i++)
        key_free(&l->v[i]);
    free(l->v);
    l->v = NULL;
    l->n = 0;
}

/* Parses one line's words into k. Returns NULL or why the line is wrong
 * (never quoting the secret). */
static const char *parse_line(char *line, evbus__http_key *k) {
    char *words[KEYS_MAX_WORDS];
    size_t n = 0;
    for (char *save = NULL, *w = strtok_r(line, " \t\r", &save); w;
         w = strtok_r(NULL, " \t\r", &save)) {
        if (n == KEYS_MAX_WORDS)
            return "too many words";
        words[n++] = w;
    }
    if (n < 3)
        return "expected NAME ACCESS-KEY-ID SECRET-ACCESS-KEY [SOURCE-OR-PREFIX* ...]";
    if (!evbus__principal_name_ok(words[0], strlen(words[0])))
        return "the name must be 1..64 letters, digits, '.', '_' or '-'";
    if (!key_id_ok(words[1], strlen(words[1])))
        return "the access key id must be 1..128 letters and digits";
    if (!secret_ok(words[2], strlen(words[2])))
        return "the secret access key must be 1..128 printable characters without spaces";
    snprintf(k->who.name, sizeof k->who.name, "%s", words[0]);
    snprintf(k->key_id, sizeof k->key_id, "%s", words[1]);
    snprintf(k->secret, sizeof k->secret, "%s", words[2]);
    if (n > 3 && !(k->who.sources = calloc(n - 3, sizeof *k->who.sources)))
        return evbus__key_file_no_memory;
    for (size_t i = 3; i < n; i++) {
        if (!evbus__source_word_ok(words[i], strlen(words[i])))
            return "a source limit must be an event source (printable, no spaces, at most 256 "
                   "bytes) or a prefix ending in '*'";
        if (!(k->who.sources[k->who.n_sources++] = strdup(words[i])))
            return evbus__key_file_no_memory;
    }
    return NULL;
}

static int by_key_id(const void *a, const void *b) {
    return strcmp(((const evbus__http_key *)a)->key_id, ((const evbus__http_key *)b)->key_id);
}

typedef struct keys_load {
    evbus__http_keys *out;
    size_t cap;
} keys_load;

static const char *keys_line(void *arg, char *line) {
    keys_load *ld = arg;
    evbus__http_keys *out = ld->out;
    if (out->n == ld->cap) {
        size_t ncap = ld->cap ? ld->cap * 2 : 16;
        evbus__http_key *v = realloc(out->v, ncap * sizeof *v);
        if (!v)
            return evbus__key_file_no_memory;
        out->v = v;
        ld->cap = ncap;
    }
    evbus__http_key *k = &out->v[out->n++];
    memset(k, 0, sizeof *k);
    const char *why = parse_line(line, k);
    for (size_t i = 0; !why && i + 1 < out->n; i++) {
        if (strcmp(out->v[i].who.name, k->who.name) == 0)
            why = "this name is already used on an earlier line";
        else if (strcmp(out->v[i].key_id, k->key_id) == 0)
            why = "this access key id is already listed on an earlier line";
    }
    return why;
}

evbus_err evbus__http_keys_load(const char *path, evbus__http_keys *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    keys_load ld = {out, 0};
    evbus_err rc = evbus__key_file_read(path, "a credentials file", keys_line, &ld, err, errlen);
    if (rc != EVBUS_OK) {
        evbus__http_keys_free(out);
        return rc;
    }
    if (out->n)
        qsort(out->v, out->n, sizeof *out->v, by_key_id);
    return EVBUS_OK;
}

const evbus__http_key *evbus__http_keys_find(const evbus__http_keys *l, const char *key_id,
                                             size_t len) {
    if (len == 0 || len > EVBUS__ACCESS_KEY_ID_MAX || memchr(key_id, '\0', len))
        return NULL;
    size_t lo = 0, hi = l->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const char *k = l->v[mid].key_id;
        int c = strncmp(key_id, k, len);
        if (c == 0 && k[len] != '\0')
            c = -1; /* key_id is a proper prefix of k: it sorts before */
        if (c == 0)
            return &l->v[mid];
        if (c < 0)
            hi = mid;
        else
            lo = mid + 1;
    }
    return NULL;
}
