#include "key_file.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char evbus__key_file_no_memory[] = "out of memory";

static char *read_all(const char *path, const char *what, size_t *len, char *err, size_t errlen) {
    FILE *f = fopen(path, "rb");
    if (!f) {
        snprintf(err, errlen, "%s: cannot open: %s", path, strerror(errno));
        return NULL;
    }
    char *text = malloc(EVBUS__KEY_FILE_MAX_BYTES + 1);
    size_t n = text ? fread(text, 1, EVBUS__KEY_FILE_MAX_BYTES + 1, f) : 0;
    bool bad = ferror(f);
    fclose(f);
    if (!text || bad || n > EVBUS__KEY_FILE_MAX_BYTES) {
        if (!text)
            snprintf(err, errlen, "%s: out of memory", path);
        else if (bad)
            snprintf(err, errlen, "%s: cannot read", path);
        else
            snprintf(err, errlen, "%s: larger than 4 MiB: not %s", path, what);
        if (text)
            explicit_bzero(text, n < EVBUS__KEY_FILE_MAX_BYTES ? n : EVBUS__KEY_FILE_MAX_BYTES);
        free(text);
        return NULL;
    }
    text[n] = '\0';
    *len = n;
    return text;
}

evbus_err evbus__key_file_read(const char *path, const char *what, evbus__key_file_line_fn fn,
                               void *arg, char *err, size_t errlen) {
    size_t len = 0;
    char *text = read_all(path, what, &len, err, errlen);
    if (!text)
        return EVBUS_EIO;
    evbus_err rc = EVBUS_OK;
    unsigned lineno = 0;
    for (char *line = text, *next; line && rc == EVBUS_OK; line = next) {
        lineno++;
        next = strchr(line, '\n');
        if (next)
            *next++ = '\0';
        const char *t = line + strspn(line, " \t\r");
        if (*t == '\0' || *t == '#')
            continue;
        const char *why = fn(arg, line);
        if (why == evbus__key_file_no_memory) {
            snprintf(err, errlen, "%s: out of memory", path);
            rc = EVBUS_ENOMEM;
        } else if (why) {
            snprintf(err, errlen, "%s:%u: %s", path, lineno, why);
            rc = EVBUS_ECONFIG;
        }
    }
    explicit_bzero(text, len);
    free(text);
    return rc;
}
