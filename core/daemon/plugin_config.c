#include "plugin_config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const evbus_config_key *find_key(const evbus_plugin *p, const char *name) {
    for (const evbus_config_key *k = p->config_keys; k && k->name; k++)
        if (strcmp(k->name, name) == 0)
            return k;
    return NULL;
}

static const evbus__cfg_kv *find_value(const evbus__target_cfg *t, const char *name) {
    for (size_t i = 0; i < t->config.n; i++)
        if (strcmp(t->config.v[i].key, name) == 0)
            return &t->config.v[i];
    return NULL;
}

int evbus__plugin_config_parse(evbus_config_type type, const char *s, int64_t *num) {
    char *end;
    uint64_t u;
    switch (type) {
    case EVBUS_CONFIG_STRING: return 0;
    case EVBUS_CONFIG_INT:
        errno = 0;
        *num = strtoll(s, &end, 10);
        return errno || end == s || *end ? -1 : 0;
    case EVBUS_CONFIG_BOOL:
        if (strcmp(s, "true") && strcmp(s, "false"))
            return -1;
        *num = s[0] == 't';
        return 0;
    case EVBUS_CONFIG_SIZE:
        if (evbus__cfg_parse_size(s, &u) || u > INT64_MAX)
            return -1;
        *num = (int64_t)u;
        return 0;
    case EVBUS_CONFIG_DURATION: return evbus__cfg_parse_duration(s, num);
    }
    return -1;
}

static const char *type_name(evbus_config_type type) {
    switch (type) {
    case EVBUS_CONFIG_STRING: return "a string";
    case EVBUS_CONFIG_INT: return "a whole number";
    case EVBUS_CONFIG_BOOL: return "true or false";
    case EVBUS_CONFIG_SIZE: return "a size such as 4096 or 512KiB";
    case EVBUS_CONFIG_DURATION: return "a duration such as 250ms or 30s";
    }
    return "?";
}

int evbus__plugin_config_check(const char *path, size_t index, unsigned line,
                               const evbus__target_cfg *t, const evbus_plugin *p, char *err,
                               size_t errlen) {
    for (size_t i = 0; i < t->config.n; i++) {
        const evbus__cfg_kv *kv = &t->config.v[i];
        const evbus_config_key *k = find_key(p, kv->key);
        if (!k) {
            char known[256] = "";
            size_t used = 0;
            for (const evbus_config_key *q = p->config_keys; q && q->name; q++) {
                int n =
                    snprintf(known + used, sizeof known - used, "%s%s", used ? ", " : "", q->name);
                if (n > 0 && used + (size_t)n < sizeof known)
                    used += (size_t)n;
            }
            /* The key is what is wrong: point at it, not at its value. */
            snprintf(err, errlen,
                     "%s:%u:%u: targets[%zu].config.%s: unknown key for plugin %s (known: %s)",
                     path, kv->key_line, kv->key_column, index, kv->key, p->name,
                     used ? known : "none");
            return -1;
        }
        int64_t num;
        if (evbus__plugin_config_parse(k->type, kv->value, &num)) {
            snprintf(err, errlen, "%s:%u:%u: targets[%zu].config.%s: expected %s, got '%s' (%s)",
                     path, kv->line, kv->column, index, kv->key, type_name(k->type), kv->value,
                     k->help ? k->help : "");
            return -1;
        }
    }
    for (const evbus_config_key *k = p->config_keys; k && k->name; k++) {
        if (k->required && !find_value(t, k->name)) {
            snprintf(err, errlen, "%s:%u: targets[%zu] (%s): plugin %s needs config key '%s' (%s)",
                     path, line, index, t->name, p->name, k->name, k->help ? k->help : "");
            return -1;
        }
    }
    return 0;
}

evbus_err evbus__plugin_config_value(const evbus_plugin *p, const evbus__target_cfg *t,
                                     const char *key, evbus_config_type type, const char **value) {
    const evbus_config_key *k = key ? find_key(p, key) : NULL;
    if (!k || k->type != type)
        return EVBUS_EINVAL;
    const evbus__cfg_kv *kv = find_value(t, key);
    const char *v = kv ? kv->value : k->default_value;
    if (!v)
        return EVBUS_ENOENT;
    *value = v;
    return EVBUS_OK;
}
