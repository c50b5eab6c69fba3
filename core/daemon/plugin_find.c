#include "plugin_find.h"

#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

bool evbus__plugin_is_short_name(const char *s) {
    if (!*s || strlen(s) > 64)
        return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '_' || *s == '-'))
            return false;
    return true;
}

/* DIR/../lib/evbus/plugins for the directory of the running binary: the
 * install layout (bin/ and lib/evbus/plugins/ under one prefix) and the
 * build tree's (core/ and lib/evbus/plugins/ under build/) alike. */
static int beside_binary(char *out, size_t len) {
    char exe[PATH_MAX];
    ssize_t n = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (n <= 0)
        return -1;
    exe[n] = '\0';
    /* The parent of the binary's directory, without "..", so that messages
     * name the directory plainly. */
    char *parent = dirname(dirname(exe));
    int w = snprintf(out, len, "%s%slib/evbus/plugins", parent, strcmp(parent, "/") ? "/" : "");
    return w < 0 || (size_t)w >= len ? -1 : 0;
}

static bool try_dir(const char *dir, const char *prefix, const char *name, char **out) {
    char path[PATH_MAX], abs[PATH_MAX];
    const char *prefixes[] = {prefix, ""};
    for (size_t i = 0; i < 2; i++) {
        snprintf(path, sizeof path, "%s/%s%s.so", dir, prefixes[i], name);
        if (access(path, R_OK) == 0 && realpath(path, abs)) {
            *out = strdup(abs);
            return true;
        }
    }
    return false;
}

evbus_err evbus__plugin_find(const char *name, const char *plugin_dir, char **out, char *err,
                             size_t errlen) {
    return evbus__plugin_find_kind(name, "evbus_sink_", plugin_dir, out, err, errlen);
}

evbus_err evbus__plugin_find_kind(const char *name, const char *prefix, const char *plugin_dir,
                                  char **out, char *err, size_t errlen) {
    const char *dirs[3];
    size_t n = 0;
    char beside[PATH_MAX];
    if (plugin_dir && *plugin_dir)
        dirs[n++] = plugin_dir;
    if (beside_binary(beside, sizeof beside) == 0)
        dirs[n++] = beside;
#ifdef EVBUS_PLUGIN_INSTALL_DIR
    dirs[n++] = EVBUS_PLUGIN_INSTALL_DIR;
#endif
    char *found = NULL;
    for (size_t i = 0; i < n && !found; i++)
        if (try_dir(dirs[i], prefix, name, &found) && !found)
            return EVBUS_ENOMEM;
    if (found) {
        *out = found;
        return EVBUS_OK;
    }
    int w = snprintf(err, errlen, "no plugin '%s' (%s%s.so or %s.so) in", name, prefix, name, name);
    for (size_t i = 0; i < n && w > 0 && (size_t)w < errlen; i++)
        w += snprintf(err + w, errlen - (size_t)w, "%s %s", i ? "," : "", dirs[i]);
    if (w > 0 && (size_t)w < errlen)
        snprintf(err + w, errlen - (size_t)w, "; set plugin_dir, or give the path of the .so");
    return EVBUS_ECONFIG;
}
